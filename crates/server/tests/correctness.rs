//! Where other servers lose data: rewrites of one item, concurrent syncs of one share, reads in
//! between writes.

mod support;

use std::sync::Arc;
use std::thread;

use serde_json::json;
use support::{Server, part, session_id};

#[test]
fn the_newest_of_20_rewrites_wins_in_20_of_20_trials_with_reads_between() {
    let s = Server::start();
    let mut wins = 0;
    for trial in 0..20 {
        let (id, secret) = s.create_next(&session_id());
        for n in 0..20 {
            assert_eq!(
                s.sync_next(
                    &id,
                    &secret,
                    json!([part("msg_1", "prt_1", &format!("t{trial} v{n}"))])
                ),
                200
            );
            if n % 3 == 0 {
                s.items(&id); // a read between writes must not strand the later ones
            }
        }
        let items = s.items(&id);
        if items.len() == 1 && items[0]["data"]["text"] == format!("t{trial} v19") {
            wins += 1;
        }
    }
    assert_eq!(wins, 20);
}

#[test]
fn fifty_concurrent_syncs_of_one_share_all_land() {
    let s = Arc::new(Server::start());
    let (id, secret) = s.create_next(&session_id());
    let threads: Vec<_> = (0..50)
        .map(|n| {
            let (s, id, secret) = (s.clone(), id.clone(), secret.clone());
            thread::spawn(move || {
                s.sync_next(
                    &id,
                    &secret,
                    json!([part("msg_1", &format!("prt_{n:02}"), &format!("part {n}"))]),
                )
            })
        })
        .collect();
    let statuses: Vec<u16> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    let items = s.items(&id);
    assert_eq!(items.len(), 50);
    for (n, item) in items.iter().enumerate() {
        assert_eq!(item["data"]["text"], format!("part {n}"));
    }
}

#[test]
fn concurrent_rewrites_of_one_item_leave_the_last_acknowledged_one() {
    // writers take turns per round; each round's writes race, and the next round starts only
    // after every write of the round was acknowledged: the stored value is from the last round
    let s = Arc::new(Server::start());
    let (id, secret) = s.create_next(&session_id());
    for round in 0..10 {
        let threads: Vec<_> = (0..8)
            .map(|w| {
                let (s, id, secret) = (s.clone(), id.clone(), secret.clone());
                thread::spawn(move || {
                    s.sync_next(
                        &id,
                        &secret,
                        json!([part("m", "p", &format!("r{round} w{w}"))]),
                    )
                })
            })
            .collect();
        assert!(threads.into_iter().all(|t| t.join().unwrap() == 200));
        let text = s.items(&id)[0]["data"]["text"].as_str().unwrap().to_owned();
        assert!(
            text.starts_with(&format!("r{round} ")),
            "round {round}: {text}"
        );
    }
}
