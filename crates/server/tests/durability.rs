//! A 200 means committed: writers load the server binary, it is killed with SIGKILL mid-load,
//! restarted on the same database, and every acknowledged write is there.

mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::{part, start_binary};

#[test]
fn every_acknowledged_write_survives_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("share.db").display());
    let (mut server, url) = start_binary(&db);
    let http = support::http_client(Duration::from_secs(10));
    let created: Value = http
        .post(format!("{url}/api/share"))
        .body(json!({ "sessionID": "ses_durability01" }).to_string())
        .send()
        .unwrap()
        .json()
        .unwrap();
    let (id, secret) = (
        created["id"].as_str().unwrap().to_owned(),
        created["secret"].as_str().unwrap().to_owned(),
    );

    let acked = Arc::new(Mutex::new(Vec::<(String, String)>::new()));
    let stop = Arc::new(AtomicBool::new(false));
    // writers 0 to 3 rewrite 50 parts each whole; writer 4 streams one part by appends
    // (docs/append-protocol.md), so appends (pending beside the part, and folded into it) are in
    // the mix when the kill comes
    let writers: Vec<_> = (0..5)
        .map(|w| {
            let (http, url, id, secret, acked, stop) = (
                http.clone(),
                url.clone(),
                id.clone(),
                secret.clone(),
                acked.clone(),
                stop.clone(),
            );
            thread::spawn(move || {
                let deadline = Instant::now() + Duration::from_secs(10);
                for n in 0..100_000 {
                    if stop.load(Ordering::Relaxed) || Instant::now() > deadline {
                        break;
                    }
                    let (pid, text, body) = if w == 4 {
                        let acked = acked.lock().unwrap();
                        let last = acked.iter().rev().find(|(p, _)| p == "prt_stream");
                        match last {
                            Some((pid, before)) => {
                                let grow = json!({ "path": "/text", "at": before.len(), "text": format!(" n{n}") });
                                let key = json!({ "id": pid, "messageID": "msg_1" });
                                let item = json!({ "type": "part", "key": key, "append": [grow] });
                                (pid.clone(), format!("{before} n{n}"), json!({ "secret": secret, "data": [item] }))
                            }
                            None => {
                                // past a database page, so the server keeps its appends
                                // beside it (store/pending.rs) until it folds them in
                                let (pid, text) = ("prt_stream".to_owned(), format!("w4 {} n{n}", "p".repeat(5000)));
                                let body = json!({ "secret": secret, "data": [part("msg_1", &pid, &text)] });
                                (pid, text, body)
                            }
                        }
                    } else {
                        let (pid, text) = (format!("prt_{w}_{}", n % 50), format!("w{w} n{n}"));
                        let body = json!({ "secret": secret, "data": [part("msg_1", &pid, &text)] });
                        (pid, text, body)
                    };
                    match http
                        .post(format!("{url}/api/share/{id}/sync"))
                        .body(body.to_string())
                        .send()
                    {
                        Ok(r) if r.status().as_u16() == 200 => {
                            acked.lock().unwrap().push((pid, text))
                        }
                        _ => break, // killed
                    }
                }
            })
        })
        .collect();
    thread::sleep(Duration::from_millis(700));
    server.kill().unwrap(); // SIGKILL
    server.wait().unwrap();
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.join().unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    assert!(
        acked.len() > 20,
        "only {} writes were acknowledged before the kill",
        acked.len()
    );

    let (mut again, url) = start_binary(&db);
    let items: Vec<Value> = http
        .get(format!("{url}/api/share/{id}/data"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    again.kill().unwrap();
    again.wait().unwrap();
    // the newest acknowledged text of each part is stored, or a later one that was written but
    // whose answer the kill cut off
    let stored: std::collections::HashMap<String, String> = items
        .iter()
        .map(|i| {
            (
                i["data"]["id"].as_str().unwrap().to_owned(),
                i["data"]["text"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let n_of = |t: &str| t.rsplit(" n").next().unwrap().parse::<u64>().unwrap();
    for (pid, text) in &acked {
        let held = stored
            .get(pid)
            .unwrap_or_else(|| panic!("acknowledged part {pid} is gone"));
        assert!(
            n_of(held) >= n_of(text),
            "{pid}: holds {held:?}, {text:?} was acknowledged"
        );
        // the streamed part holds every acknowledged append, each once
        assert!(
            pid != "prt_stream" || held.starts_with(text.as_str()),
            "{pid}: holds {held:?}, {text:?} was acknowledged"
        );
    }
    assert!(
        acked.iter().filter(|(p, _)| p == "prt_stream").count() >= 3,
        "few appends were acknowledged before the kill"
    );
    if let Some((_, text)) = acked.iter().rev().find(|(p, _)| p == "prt_stream") {
        let held = &stored["prt_stream"];
        let rest = &held[text.len()..];
        assert!(
            rest.is_empty() || rest.matches(" n").count() == 1,
            "{held:?} after {text:?}"
        );
    }
}
