//! Two server processes' worth of servers on one PostgreSQL: writes through either land, a viewer
//! on one sees writes made through the other, live (LISTEN/NOTIFY), and a delete closes it.
//! Needs OPENCODE_SHARE_TEST_POSTGRES (scripts/test starts a cluster with scripts/start-postgres).

mod support;

use std::sync::Arc;
use std::thread;

use opencode_share_server::Config;
use serde_json::json;
use support::{Events, Server, part, session_id, start_binary};

/// The database URL, or None (the test then says it skipped; in CI a missing cluster fails it).
fn database() -> Option<String> {
    match std::env::var("OPENCODE_SHARE_TEST_POSTGRES") {
        Ok(url) => Some(url),
        Err(_) if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("CI must start PostgreSQL (.ci/run)")
        }
        Err(_) => {
            eprintln!("skipped: OPENCODE_SHARE_TEST_POSTGRES is not set (scripts/test sets it)");
            None
        }
    }
}

fn pair() -> Option<(Server, Server)> {
    let url = database()?;
    let on_pg = |c: &mut Config| c.database = url.clone();
    Some((
        Server::with(on_pg),
        Server::with(|c| c.database = url.clone()),
    ))
}

/// Two processes of the binary on one database, stopped when dropped.
struct Processes(Vec<std::process::Child>);

impl Drop for Processes {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

#[test]
fn a_viewer_on_one_server_process_sees_writes_through_the_other_live() {
    let Some(database) = database() else { return };
    let (first, a_url) = start_binary(&database);
    let (second, b_url) = start_binary(&database);
    let _processes = Processes(vec![first, second]);
    let http = support::http_client(std::time::Duration::from_secs(20));
    let post = |url: String, body: serde_json::Value| {
        let r = http
            .post(url)
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .unwrap();
        (
            r.status().as_u16(),
            r.json::<serde_json::Value>().unwrap_or_default(),
        )
    };
    let (_, created) = post(
        format!("{a_url}/api/share"),
        json!({ "sessionID": session_id() }),
    );
    let (id, secret) = (
        created["id"].as_str().unwrap().to_owned(),
        created["secret"].as_str().unwrap().to_owned(),
    );
    let sync = |base: &str, text: &str| {
        post(
            format!("{base}/api/share/{id}/sync"),
            json!({ "secret": secret, "data": [part("msg_1", "prt_1", text)] }),
        )
        .0
    };
    assert_eq!(sync(&b_url, "one"), 200);
    let mut on_b = Events::open(&http, &b_url, &id, 0);
    assert!(on_b.next().1["html"].as_str().unwrap().contains("one"));
    for n in 0..5 {
        assert_eq!(sync(&a_url, &format!("through a {n}")), 200);
        let (kind, event) = on_b.next();
        assert_eq!(kind, "item");
        assert!(
            event["html"]
                .as_str()
                .unwrap()
                .contains(&format!("through a {n}")),
            "{event}"
        );
    }
    let r = http
        .delete(format!("{a_url}/api/share/{id}"))
        .body(json!({ "secret": secret }).to_string())
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(on_b.next().0, "deleted");
    assert_eq!(
        http.get(format!("{b_url}/api/share/{id}/data"))
            .send()
            .unwrap()
            .status()
            .as_u16(),
        404
    );
    let again = http
        .delete(format!("{b_url}/api/share/{id}"))
        .body(json!({ "secret": secret }).to_string())
        .send()
        .unwrap();
    assert_eq!(again.status().as_u16(), 404);
}

#[test]
fn on_postgres_fifty_concurrent_syncs_through_two_servers_all_land_and_statuses_hold() {
    let Some((a, b)) = pair() else { return };
    let (a, b) = (Arc::new(a), Arc::new(b));
    let sid = session_id();
    let (id, secret) = a.create_next(&sid);
    assert_eq!(b.post("/api/share", json!({ "sessionID": sid })).0, 409);
    assert_eq!(b.sync_next(&id, "wrong", json!([])), 403);
    assert_eq!(b.sync_next("nosuchid", &secret, json!([])), 404);
    let threads: Vec<_> = (0..50)
        .map(|n| {
            let s = if n % 2 == 0 { a.clone() } else { b.clone() };
            let (id, secret) = (id.clone(), secret.clone());
            thread::spawn(move || {
                s.sync_next(
                    &id,
                    &secret,
                    json!([part("msg_1", &format!("prt_{n:02}"), &format!("part {n}"))]),
                )
            })
        })
        .collect();
    assert!(threads.into_iter().all(|t| t.join().unwrap() == 200));
    let items = b.items(&id);
    assert_eq!(items.len(), 50);
    // newest wins, alternating servers, reads between
    for n in 0..20 {
        let s = if n % 2 == 0 { &a } else { &b };
        assert_eq!(
            s.sync_next(
                &id,
                &secret,
                json!([part("msg_1", "prt_00", &format!("v{n}"))])
            ),
            200
        );
        a.items(&id);
    }
    assert_eq!(b.items(&id)[0]["data"]["text"], "v19");
    // a duplicate key inside one batch: the later one wins
    assert_eq!(
        a.sync_next(
            &id,
            &secret,
            json!([part("m", "dup", "first"), part("m", "dup", "second")])
        ),
        200
    );
    assert!(a.items(&id).iter().any(|i| i["data"]["text"] == "second"));
}
