//! Self-tests of the loopback share service, driven by a plain std TcpStream client.

#[path = "support/service.rs"]
mod service;

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use service::{Fault, FaultRule, ShareService};

/// Session id used throughout.
const SID: &str = "ses_0123456789abcdefghijklmnop";

/// A parsed response.
#[derive(Debug)]
struct Resp {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Resp {
    /// The value of a header.
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON.
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).expect("JSON body")
    }
}

/// A minimal HTTP/1.1 keep-alive client.
struct Client {
    reader: BufReader<TcpStream>,
}

impl Client {
    /// Connects with a 5 s read timeout.
    fn connect(svc: &ShareService) -> Client {
        let stream = TcpStream::connect(("127.0.0.1", svc.port())).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        stream
            .set_write_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        Client {
            reader: BufReader::new(stream),
        }
    }

    /// Sends a POST with a Content-Length body and extra header lines (no content-type).
    fn send(&mut self, path: &str, body: &str, extra: &str) -> io::Result<()> {
        let req = format!(
            "POST {path} HTTP/1.1\r\nhost: localhost\r\ncontent-length: {}\r\n{extra}\r\n{body}",
            body.len()
        );
        self.reader.get_mut().write_all(req.as_bytes())
    }

    /// Reads one response.
    fn read(&mut self) -> io::Result<Resp> {
        let mut line = String::new();
        if self.reader.read_line(&mut line)? == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        let status = line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .expect("status line");
        let mut headers = Vec::new();
        loop {
            let mut h = String::new();
            self.reader.read_line(&mut h)?;
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            let (n, v) = h.split_once(':').expect("header");
            headers.push((n.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
        let len: usize = headers
            .iter()
            .find(|(n, _)| n == "content-length")
            .expect("content-length")
            .1
            .parse()
            .unwrap();
        let mut body = vec![0; len];
        self.reader.read_exact(&mut body)?;
        Ok(Resp {
            status,
            headers,
            body: String::from_utf8(body).unwrap(),
        })
    }

    /// Sends and reads one JSON request.
    fn post(&mut self, path: &str, body: &Value) -> Resp {
        self.send(path, &body.to_string(), "").expect("send");
        self.read().expect("response")
    }

    /// Whether the server closed the connection (EOF) within the read timeout.
    fn read_eof(&mut self) -> bool {
        let mut buf = [0u8; 64];
        matches!(self.reader.read(&mut buf), Ok(0))
    }
}

/// A share_sync body.
fn sync_body(secret: &str, key: &str, content: Value) -> Value {
    json!({"sessionID": SID, "secret": secret, "key": key, "content": content})
}

#[test]
fn keep_alive_create_sync_delete() {
    let svc = ShareService::start();
    assert_eq!(svc.url(), format!("http://127.0.0.1:{}", svc.port()));
    let mut c = Client::connect(&svc);
    let r = c.post("/share_create", &json!({"sessionID": SID}));
    assert_eq!(r.status, 200);
    let created = r.json();
    assert_eq!(created["url"], json!(format!("{}/s/ijklmnop", svc.url())));
    let secret = created["secret"].as_str().unwrap().to_string();
    assert_eq!(secret.len(), 36);
    assert_eq!(&secret[14..15], "4");
    assert_eq!(svc.secret(SID).as_deref(), Some(secret.as_str()));

    let info = format!("session/info/{SID}");
    for (i, key) in [&info, &info, &format!("session/message/{SID}/msg_1")]
        .into_iter()
        .enumerate()
    {
        let r = c.post("/share_sync", &sync_body(&secret, key, json!({"n": i})));
        assert_eq!((r.status, r.body.as_str()), (200, "{}"));
        assert!(r.header("connection").is_none());
    }
    let data = svc.data(SID).unwrap();
    assert_eq!(data.len(), 2);
    assert_eq!(data[&info], json!({"n": 1}), "last write wins");

    assert_eq!(
        c.post("/share_sync", &sync_body("nope", &info, json!(9)))
            .status,
        500
    );
    assert_eq!(
        c.post(
            "/share_delete",
            &json!({"sessionID": SID, "secret": "nope"})
        )
        .status,
        500
    );
    assert_eq!(
        svc.data(SID).unwrap()[&info],
        json!({"n": 1}),
        "wrong secret stores nothing"
    );
    assert_eq!(
        c.post(
            "/share_delete",
            &json!({"sessionID": SID, "secret": secret})
        )
        .status,
        200
    );
    assert!(svc.data(SID).is_none() && svc.secret(SID).is_none());
    assert_eq!(
        c.post("/share_sync", &sync_body(&secret, &info, json!(1)))
            .status,
        500
    );

    let reqs = svc.requests();
    assert_eq!(reqs.len(), 8);
    assert!(
        reqs.iter().all(|r| r.conn == reqs[0].conn),
        "all on one connection"
    );
    assert!(reqs.windows(2).all(|w| w[0].seq < w[1].seq));
    assert_eq!(reqs[1].path, "/share_sync");
    assert_eq!(reqs[1].header("host"), Some("localhost"));
    assert_eq!(reqs[1].json.as_ref().unwrap()["key"], json!(info));
    assert!(reqs[1].finished >= reqs[1].received);
    assert_eq!(svc.requests_to("share_sync").len(), 5);
    assert_eq!(
        svc.requests_to("/share_delete")
            .iter()
            .map(|r| r.status)
            .collect::<Vec<_>>(),
        [500, 200]
    );
    svc.clear_requests();
    assert!(svc.requests().is_empty());
}

#[test]
fn direct_create_and_wrong_secret_status() {
    let svc = ShareService::start();
    let (url, secret) = svc.create_share(SID);
    assert_eq!(url, format!("{}/s/ijklmnop", svc.url()));
    svc.set_wrong_secret_status(401);
    let mut c = Client::connect(&svc);
    assert_eq!(
        c.post("/share_sync", &sync_body("bad", "k", json!(1)))
            .status,
        401
    );
    assert_eq!(
        c.post("/share_sync", &sync_body(&secret, "k", json!(1)))
            .status,
        200
    );
    assert_eq!(svc.data(SID).unwrap()["k"], json!(1));
}

#[test]
fn connection_close_and_errors() {
    let svc = ShareService::start();
    let mut c = Client::connect(&svc);
    c.send(
        "/share_create",
        &json!({"sessionID": SID}).to_string(),
        "connection: close\r\n",
    )
    .unwrap();
    let r = c.read().unwrap();
    assert_eq!((r.status, r.header("connection")), (200, Some("close")));
    assert!(c.read_eof());

    let mut c = Client::connect(&svc);
    assert_eq!(c.post("/nope", &json!({})).status, 404);
    c.send("/share_create", "{not json", "").unwrap();
    assert_eq!(c.read().unwrap().status, 400);
    assert_eq!(c.post("/share_create", &json!({"id": 1})).status, 400);
    assert_eq!(
        c.post("/share_sync", &json!({"sessionID": SID, "secret": "s"}))
            .status,
        400
    );
    assert_eq!(
        c.post("/share_create", &json!({"sessionID": SID})).status,
        200,
        "still alive"
    );

    let mut c = Client::connect(&svc);
    let req = "POST /share_create HTTP/1.1\r\ntransfer-encoding: chunked\r\n\r\n5\r\n{\"a\":\r\n0\r\n\r\n";
    c.reader.get_mut().write_all(req.as_bytes()).unwrap();
    let r = c.read().unwrap();
    assert!(
        matches!(r.status, 400 | 411),
        "chunked refused: {}",
        r.status
    );
    assert!(c.read_eof());
}

#[test]
fn status_faults_match_path_and_key() {
    let svc = ShareService::start();
    let (_, secret) = svc.create_share(SID);
    let fault = Fault::Status(503);
    svc.push_fault(FaultRule {
        path: Some("/share_sync".into()),
        key: Some("a".into()),
        fault,
        times: 2,
    });
    let retry = Fault::StatusRetryAfter(429, "1".into());
    svc.push_fault(FaultRule {
        path: Some("share_delete".into()),
        key: None,
        fault: retry,
        times: 1,
    });
    let mut c = Client::connect(&svc);
    assert_eq!(
        c.post("/share_sync", &sync_body(&secret, "b", json!(1)))
            .status,
        200
    );
    assert_eq!(
        c.post("/share_sync", &sync_body(&secret, "a", json!(1)))
            .status,
        503
    );
    assert!(
        !svc.data(SID).unwrap().contains_key("a"),
        "faulted request stores nothing"
    );
    assert_eq!(
        c.post("/share_sync", &sync_body(&secret, "a", json!(2)))
            .status,
        503
    );
    assert_eq!(
        c.post("/share_sync", &sync_body(&secret, "a", json!(3)))
            .status,
        200
    );
    assert_eq!(svc.data(SID).unwrap()["a"], json!(3));
    let r = c.post(
        "/share_delete",
        &json!({"sessionID": SID, "secret": secret}),
    );
    assert_eq!((r.status, r.header("retry-after")), (429, Some("1")));
    assert!(svc.data(SID).is_some());
    let statuses: Vec<u16> = svc.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, [200, 503, 503, 200, 429]);
}

#[test]
fn reset_close_and_delay_faults() {
    let svc = ShareService::start();
    let (_, secret) = svc.create_share(SID);
    let rule = |fault| FaultRule {
        path: Some("/share_sync".into()),
        key: None,
        fault,
        times: 1,
    };

    svc.push_fault(rule(Fault::Reset));
    let mut c = Client::connect(&svc);
    c.send(
        "/share_sync",
        &sync_body(&secret, "k", json!(1)).to_string(),
        "",
    )
    .unwrap();
    let err = c.read().expect_err("reset");
    assert_eq!(err.kind(), io::ErrorKind::ConnectionReset, "{err}");

    svc.push_fault(rule(Fault::Close));
    let mut c = Client::connect(&svc);
    c.send(
        "/share_sync",
        &sync_body(&secret, "k", json!(1)).to_string(),
        "",
    )
    .unwrap();
    assert!(c.read_eof());
    assert!(svc.data(SID).unwrap().is_empty());

    svc.push_fault(rule(Fault::Delay(Duration::from_millis(150))));
    let mut c = Client::connect(&svc);
    let t = Instant::now();
    assert_eq!(
        c.post("/share_sync", &sync_body(&secret, "k", json!(2)))
            .status,
        200
    );
    assert!(t.elapsed() >= Duration::from_millis(150));
    assert_eq!(svc.data(SID).unwrap()["k"], json!(2));
    let statuses: Vec<u16> = svc.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, [0, 0, 200]);
}

#[test]
fn latency_overlaps_and_concurrency() {
    let svc = ShareService::start();
    let (_, secret) = svc.create_share(SID);
    svc.set_latency(Duration::from_millis(300));
    let barrier = Arc::new(Barrier::new(3));
    let t = Instant::now();
    let workers: Vec<_> = ["same", "same", "other"]
        .into_iter()
        .map(|key| {
            let (svc, secret, barrier) = (svc.clone(), secret.clone(), barrier.clone());
            thread::spawn(move || {
                let mut c = Client::connect(&svc);
                barrier.wait();
                c.post("/share_sync", &sync_body(&secret, key, json!(key)))
                    .status
            })
        })
        .collect();
    for w in workers {
        assert_eq!(w.join().unwrap(), 200);
    }
    let elapsed = t.elapsed();
    assert!(elapsed >= Duration::from_millis(300), "{elapsed:?}");
    assert!(
        elapsed < Duration::from_millis(850),
        "requests overlap: {elapsed:?}"
    );
    assert_eq!(svc.max_concurrent_syncs(), 3);
    assert_eq!(svc.key_overlaps(), 1);
    svc.reset_max_concurrent();
    assert_eq!(svc.max_concurrent_syncs(), 0);
    let conns: std::collections::HashSet<u64> = svc.requests().iter().map(|r| r.conn).collect();
    assert_eq!(conns.len(), 3);
}

#[test]
fn random_faults_are_seeded() {
    let run = |seed| {
        let svc = ShareService::start();
        let (_, secret) = svc.create_share(SID);
        svc.set_random_faults(20, 30, seed);
        let mut c = Client::connect(&svc);
        for i in 0..60 {
            if c.send(
                "/share_sync",
                &sync_body(&secret, "k", json!(i)).to_string(),
                "",
            )
            .is_err()
                || c.read().is_err()
            {
                c = Client::connect(&svc);
            }
        }
        assert_eq!(
            c.post("/share_create", &json!({"sessionID": "ses_x"}))
                .status,
            200,
            "create never faulted"
        );
        svc.requests_to("/share_sync")
            .iter()
            .map(|r| r.status)
            .collect::<Vec<_>>()
    };
    let statuses = run(7);
    let count = |s| statuses.iter().filter(|&&x| x == s).count();
    assert_eq!(statuses.len(), 60);
    assert!(
        count(0) > 3 && count(500) > 5 && count(200) > 10,
        "{statuses:?}"
    );
    assert_eq!(statuses, run(7), "same seed, same faults");
}

#[test]
fn down_and_up_keep_port_and_data() {
    let svc = ShareService::start();
    let (_, secret) = svc.create_share(SID);
    let port = svc.port();
    let mut idle = Client::connect(&svc);
    assert_eq!(
        idle.post("/share_sync", &sync_body(&secret, "k", json!(1)))
            .status,
        200
    );

    svc.go_down();
    assert!(
        TcpStream::connect(("127.0.0.1", port)).is_err(),
        "connections refused while down"
    );
    idle.send(
        "/share_sync",
        &sync_body(&secret, "k", json!(2)).to_string(),
        "",
    )
    .unwrap();
    assert!(idle.read_eof(), "existing connection closed unanswered");
    assert_eq!(svc.requests().last().unwrap().status, 0);
    svc.go_down();

    svc.come_up();
    assert_eq!(svc.port(), port);
    let mut c = Client::connect(&svc);
    assert_eq!(
        c.post("/share_sync", &sync_body(&secret, "k", json!(3)))
            .status,
        200
    );
    assert_eq!(svc.data(SID).unwrap()["k"], json!(3));

    for _ in 0..3 {
        svc.go_down();
        svc.come_up();
    }
    assert_eq!(
        Client::connect(&svc)
            .post("/share_create", &json!({"sessionID": SID}))
            .status,
        200
    );
}

#[test]
fn wait_for_and_stop() {
    let svc = ShareService::start();
    let t = Instant::now();
    assert!(!svc.wait_for(Duration::from_millis(50), |s| !s.requests().is_empty()));
    assert!(t.elapsed() < Duration::from_secs(1));
    let mut c = Client::connect(&svc);
    let other = svc.clone();
    let poster = thread::spawn(move || {
        thread::sleep(Duration::from_millis(30));
        Client::connect(&other)
            .post("/share_create", &json!({"sessionID": SID}))
            .status
    });
    assert!(svc.wait_for(Duration::from_secs(5), |s| s.secret(SID).is_some()));
    assert_eq!(poster.join().unwrap(), 200);

    let port = svc.port();
    drop(svc);
    assert!(
        TcpStream::connect(("127.0.0.1", port)).is_err(),
        "listener closed after drop"
    );
    assert!(c.read_eof(), "open connection shut down");
}

#[test]
fn hosted_mode_has_the_hosted_services_semantics() {
    let svc = ShareService::start_hosted();
    let mut c = Client::connect(&svc);
    let other = "ses_ZZZZZZZZZZZZZZZZZZghijklmnop"; // same last 8 characters as SID
    let first = c.post("/share_create", &json!({"sessionID": SID})).json();
    let second = c.post("/share_create", &json!({"sessionID": other})).json();
    assert_eq!(
        first, second,
        "create is idempotent per short id, whoever asks"
    );
    assert!(
        first["url"].as_str().unwrap().ends_with("/s/ijklmnop"),
        "{first}"
    );
    let secret = first["secret"].as_str().unwrap().to_owned();
    let info = format!("session/info/{SID}");
    let r = c.post(
        "/share_sync",
        &json!({"sessionID": SID, "secret": secret, "key": info, "content": {"a": 1}}),
    );
    assert_eq!(r.status, 200);
    // keys outside the stored session's prefixes: 200, not stored
    for key in [
        format!("session/info/{other}"),
        format!("session/diff/{SID}"),
    ] {
        let body = json!({"sessionID": other, "secret": secret, "key": key, "content": 1});
        assert_eq!(c.post("/share_sync", &body).status, 200, "{key}");
    }
    assert_eq!(svc.data(SID).unwrap().len(), 1);
    // a wrong secret, a value over 131 072 bytes: 500
    let wrong = json!({"sessionID": SID, "secret": "nope", "key": info, "content": 2});
    assert_eq!(c.post("/share_sync", &wrong).status, 500);
    let big =
        json!({"sessionID": SID, "secret": secret, "key": info, "content": "x".repeat(131_072)});
    assert_eq!(c.post("/share_sync", &big).status, 500);
    assert_eq!(svc.data(SID).unwrap()[&info], json!({"a": 1}));
    // unknown routes: 200 "Not Found"
    let r = c.post("/nothing_here", &json!({}));
    assert_eq!((r.status, r.body.as_str()), (200, "Not Found"));
    // deleted: its secret is gone, and syncs get 500
    let del = json!({"sessionID": SID, "secret": secret});
    assert_eq!(c.post("/share_delete", &del).status, 200);
    let sync = json!({"sessionID": SID, "secret": secret, "key": info, "content": 3});
    assert_eq!(c.post("/share_sync", &sync).status, 500);
    assert_eq!(c.post("/share_delete", &del).status, 500);
    assert!(svc.data(SID).is_none());
}
