//! Measures what a dead service gets from the library during an outage (issue 25 item 2), on
//! loopback: the real server behind the fault proxy, which closes every request while down.
//! For each protocol: 5 sessions stream a part write every 50 ms each (20 parts per session,
//! rewritten) for `SECONDS` (default 10) while the service is down; then the service comes
//! back. Prints the requests the dead service got (total and per second), how long after the
//! service came back every content was delivered, and the stats.
//!
//! Run: `cargo run --release --example outage_load -- 10` (seconds of outage).

use std::time::{Duration, Instant};

use opencode_share::api;
use testkit::{Protocol, Service};

fn part(sid: &str, p: u32, n: u32) -> (String, String) {
    let (mid, pid) = ("msg_00000000000000000000000001", format!("prt_{p:026}"));
    let key = format!("session/part/{sid}/{mid}/{pid}");
    let content = format!(
        r#"{{"id":"{pid}","messageID":"{mid}","sessionID":"{sid}","type":"text","text":"write {n}"}}"#
    );
    (key, content)
}

fn run(protocol: Protocol, outage: Duration) {
    let service = Service::start();
    let sep = if protocol.config().is_empty() {
        ""
    } else {
        ","
    };
    let config = format!(r#"{{"url":"{}"{sep}{}}}"#, service.url(), protocol.config());
    api::init(Some(&config)).expect("init");
    let sessions: Vec<String> = (0..5).map(|n| format!("ses_{:026}", 900 + n)).collect();
    for sid in &sessions {
        api::create(sid).expect("create");
    }
    service.go_down();
    let before = service.requests().len();
    let start = Instant::now();
    let mut n = 0;
    while start.elapsed() < outage {
        for sid in &sessions {
            let (key, content) = part(sid, n % 20, n);
            api::sync(&key, &content).expect("sync");
        }
        n += 1;
        std::thread::sleep(Duration::from_millis(50));
    }
    let down_requests = service.requests().len() - before;
    let down_for = start.elapsed();
    service.come_up();
    let back = Instant::now();
    let flushed = api::flush(Duration::from_secs(120));
    let delivered_after = back.elapsed();
    let stats = api::stats().expect("stats");
    println!(
        "{protocol:?}: {} writes; {down_requests} requests to the dead service in {:.1} s ({:.2}/s); \
         everything delivered {:.2} s after it came back ({flushed:?})\n  stats: {stats}",
        n * 5,
        down_for.as_secs_f64(),
        down_requests as f64 / down_for.as_secs_f64(),
        delivered_after.as_secs_f64(),
    );
    let _ = api::shutdown(Duration::from_secs(5));
}

fn main() {
    let seconds = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    for protocol in Protocol::ALL {
        run(protocol, Duration::from_secs(seconds));
    }
}
