//! One sync's round trip on a kept-alive connection, side by side: the benchmarks' own v1 service
//! (benches/compare/services/legacy.rs), the real server alone, and the real server behind the testkit's
//! proxy (what the tests use). Why the side-by-side benchmark keeps its own service: its clients'
//! figures must not carry the service's cost (docs/benchmarks.md).
//!
//!     cargo bench --bench service_rtt
//!
//! Six rounds, each 500 syncs (400-character parts, 16 keys) to each service in turn; prints the
//! medians in µs and their ratios to the bench service's.

#[path = "compare/services/legacy.rs"]
#[allow(dead_code)] // the v1 service and its URL only
mod service;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Instant;

/// POSTs `body` on the kept-alive connection `r`; returns the status and the answer's body.
fn post(r: &mut BufReader<TcpStream>, host: &str, path: &str, body: &str) -> (u16, String) {
    let req = format!(
        "POST {path} HTTP/1.1\r\nhost: {host}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    r.get_mut().write_all(req.as_bytes()).expect("a write");
    let mut line = String::new();
    r.read_line(&mut line).expect("a status line");
    let status = line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let mut len = 0;
    loop {
        let mut h = String::new();
        r.read_line(&mut h).expect("a header");
        if h == "\r\n" || h.is_empty() {
            break;
        }
        if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
            len = v.trim().parse().unwrap_or(0);
        }
    }
    let mut b = vec![0; len];
    r.read_exact(&mut b).expect("the body");
    (status, String::from_utf8_lossy(&b).into_owned())
}

/// Creates the share of `sid` at `url`, then times `n` syncs of it; microseconds each.
fn round(url: &str, sid: &str, n: usize) -> Vec<f64> {
    let host = url.trim_start_matches("http://").to_owned();
    let stream = TcpStream::connect(&host).expect("a connection");
    stream.set_nodelay(true).expect("TCP_NODELAY");
    let mut r = BufReader::new(stream);
    let (status, created) = post(
        &mut r,
        &host,
        "/share_create",
        &format!(r#"{{"sessionID":"{sid}"}}"#),
    );
    assert_eq!(status, 200, "{created}");
    let created: serde_json::Value = serde_json::from_str(&created).expect("JSON");
    let secret = created["secret"].as_str().expect("a secret").to_owned();
    let text = "x".repeat(400);
    (0..n)
        .map(|i| {
            let p = i % 16;
            let body = format!(
                r#"{{"sessionID":"{sid}","secret":"{secret}","key":"session/part/{sid}/msg_1/prt_{p}","content":{{"id":"prt_{p}","v":{i},"text":"{text}"}}}}"#
            );
            let t = Instant::now();
            let (status, _) = post(&mut r, &host, "/share_sync", &body);
            assert_eq!(status, 200);
            t.elapsed().as_secs_f64() * 1e6
        })
        .collect()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    // `cargo test` runs bench targets too: measure only under `cargo bench`
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let bench = service::ShareService::start();
    let kit = testkit::Service::start();
    let alone = format!("http://{}", kit.addr());
    let (mut a, mut b, mut c) = (Vec::new(), Vec::new(), Vec::new());
    for n in 0..6 {
        a.extend(round(
            &bench.url(),
            &format!("ses_rtt{n:011}bench{n:03}"),
            500,
        ));
        b.extend(round(&alone, &format!("ses_rtt{n:011}alone{n:03}"), 500));
        c.extend(round(
            &kit.url(),
            &format!("ses_rtt{n:011}proxy{n:03}"),
            500,
        ));
    }
    let (a, b, c) = (median(a), median(b), median(c));
    println!(
        "sync round trip, median of 3 000: bench service {a:.0} µs; real server {b:.0} µs ({:.1}×); real server behind the proxy {c:.0} µs ({:.1}×)",
        b / a,
        c / a
    );
}
