//! A streamed answer's cost on the wire, with and without the append extension
//! (docs/append-protocol.md), side by side in one run under both protocols: one text part
//! streamed in 1 000 chunks over 10 s to 16 KB (issue 23's workload), then 200 new parts at once,
//! then the sample session (examples/fixtures/session.jsonl, its 108 writes 20 ms apart).
//! The library runs against the real server behind the fault proxy, which counts every sync
//! request and its bytes on the wire; "without" is the same server played as opencode's hosted
//! service (the testkit's `hosted` semantics), which advertises no extension, so the library
//! sends what it always did. Each run checks the server ends with exactly the newest content.
//!
//! ```sh
//! cargo bench --profile dev --bench stream                       # the whole run, about 50 s
//! cargo bench --profile dev --bench stream -- --chunks 200 --seconds 2   # quicker
//! ```
//! With `--store --before BINARY --after BINARY` it measures the server's side instead: its
//! database writes and CPU per streamed KB, two server builds side by side (store.rs).
//! Under `cargo test` it does nothing.

mod store;

use std::time::{Duration, Instant};

use opencode_share::api;
use serde_json::{Value, json};
use testkit::{Passed, Protocol, Service, short_id};

const SID: &str = "ses_bench0stream0000000000001";
const MID: &str = "msg_bench0stream0000000000001";

/// The target: bytes sent ≤ 1.5 × the final text + 200 per request.
fn target(text: usize, requests: usize) -> f64 {
    1.5 * text as f64 + 200.0 * requests as f64
}

struct Figures {
    requests: usize,
    bytes: u64,
    text: usize,
    appends: u64,
    exact: bool,
    took: Duration,
    /// What a live viewer of the page got: its stream's bytes and the median of write → shown.
    viewer: Option<Viewed>,
}

struct Viewed {
    bytes: u64,
    staleness_p50: Duration,
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if !args.iter().any(|a| a == "--bench") {
        return; // cargo test builds and starts bench targets: nothing to do there
    }
    let option = |name: &str, default: u64| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1)?.parse().ok())
            .unwrap_or(default)
    };
    let (chunks, seconds) = (option("--chunks", 1000) as usize, option("--seconds", 10));
    if args.iter().any(|a| a == "--store") {
        store::run(&args, chunks, seconds);
        return;
    }
    println!(
        "one text part streamed in {chunks} chunks of 16 bytes over {seconds} s; then 200 new parts at once; then the sample session's 108 writes 20 ms apart\n"
    );
    println!(
        "| protocol | extension | workload | sync requests | bytes sent | final text | bytes / final text | target (1.5 × text + 200 B/request) | appends | exact | viewer's stream | viewer's staleness p50 | took |"
    );
    println!(
        "| --- | --- | --- | ---: | ---: | ---: | ---: | --- | ---: | --- | ---: | ---: | ---: |"
    );
    for protocol in Protocol::ALL {
        for extension in [false, true] {
            let service = if extension {
                Service::start()
            } else {
                Service::start_hosted()
            };
            start(&service.url(), protocol);
            let stream = stream(&service, protocol, chunks, Duration::from_secs(seconds));
            row(protocol, extension, "stream", &stream);
            let burst = burst(&service, protocol);
            row(protocol, extension, "200-part burst", &burst);
            let session = sample_session(&service, protocol);
            row(protocol, extension, "sample session", &session);
            api::shutdown(Duration::from_secs(10)).expect("shutdown");
        }
    }
}

/// Inits the library on the service at `url` and makes the share with the stream's message.
fn start(url: &str, protocol: Protocol) {
    let mut config = json!({ "url": url });
    if protocol == Protocol::Next {
        config["protocol"] = json!("next");
    }
    api::init(Some(&config.to_string())).expect("init");
    api::create(SID).expect("create");
    let message = json!({ "id": MID, "sessionID": SID, "role": "assistant" });
    api::sync(
        &format!("session/message/{SID}/{MID}"),
        &message.to_string(),
    )
    .expect("sync");
    api::flush(Duration::from_secs(30)).expect("flush");
}

fn part(pid: &str, text: &str) -> Value {
    json!({ "id": pid, "messageID": MID, "sessionID": SID, "type": "text", "text": text,
            "time": { "start": 1_765_000_000_000u64 } })
}

fn part_key(pid: &str) -> String {
    format!("session/part/{SID}/{MID}/{pid}")
}

/// The sync requests of the share from the `from`-th on: (count, bytes on the wire).
fn sent(service: &Service, protocol: Protocol, from: usize) -> (usize, u64, Vec<Passed>) {
    let syncs = service.syncs_of(protocol, SID);
    let wire = |p: &Passed| {
        p.header("content-length")
            .and_then(|n| n.parse().ok())
            .unwrap_or(p.body.len() as u64)
    };
    let new = &syncs[from.min(syncs.len())..];
    (new.len(), new.iter().map(wire).sum(), syncs)
}

fn stored(service: &Service, pid: &str) -> Option<Value> {
    let items = service.next_items(short_id(SID))?;
    Some(items.get(&format!("part/{MID}/{pid}"))?["data"].clone())
}

fn appends() -> u64 {
    let stats: Value = serde_json::from_str(&api::stats().expect("stats")).expect("JSON");
    stats["appends"]["sent"].as_u64().unwrap_or(0)
}

/// Issue 23's stream: `chunks` chunks of 16 bytes, evenly over `over`.
fn stream(service: &Service, protocol: Protocol, chunks: usize, over: Duration) -> Figures {
    let before = sent(service, protocol, 0).0;
    let appends_before = appends();
    let viewer = Viewer::open(&service.server.url, short_id(SID), 16 * chunks, over);
    let mut text = String::new();
    let mut written = Vec::with_capacity(chunks);
    let started = Instant::now();
    for n in 0..chunks {
        text.push_str(&format!("w{:04} é \"q\" ok. ", n % 10_000)[..16]);
        let content = part("prt_stream", &text).to_string();
        written.push((Instant::now(), text.len()));
        api::sync(&part_key("prt_stream"), &content).expect("sync");
        let due = started + over.mul_f64((n + 1) as f64 / chunks as f64);
        std::thread::sleep(due.saturating_duration_since(Instant::now()));
    }
    api::flush(Duration::from_secs(60)).expect("flush");
    let took = started.elapsed();
    let viewer = viewer.finish(&written);
    let (requests, bytes, _) = sent(service, protocol, before);
    Figures {
        requests,
        bytes,
        text: text.len(),
        appends: appends() - appends_before,
        exact: stored(service, "prt_stream") == Some(part("prt_stream", &text)),
        took,
        viewer,
    }
}

/// 200 new parts written at once (nothing to append to: the extension must cost nothing).
fn burst(service: &Service, protocol: Protocol) -> Figures {
    let before = sent(service, protocol, 0).0;
    let appends_before = appends();
    let started = Instant::now();
    let mut text = 0;
    let mut last = Value::Null;
    for n in 0..200 {
        let body = format!("part {n}: a short answer of a few words.");
        text += body.len();
        last = part(&format!("prt_burst{n:03}"), &body);
        api::sync(&part_key(&format!("prt_burst{n:03}")), &last.to_string()).expect("sync");
    }
    api::flush(Duration::from_secs(60)).expect("flush");
    let took = started.elapsed();
    let (requests, bytes, _) = sent(service, protocol, before);
    Figures {
        requests,
        bytes,
        text,
        appends: appends() - appends_before,
        exact: stored(service, "prt_burst199") == Some(last),
        took,
        viewer: None,
    }
}

/// The sample session's writes, 20 ms apart, to a share of its own; "final text" is the size of
/// its keys' final contents.
fn sample_session(service: &Service, protocol: Protocol) -> Figures {
    const FIXTURE: &str = include_str!("../../examples/fixtures/session.jsonl");
    let writes: Vec<(String, Value)> = FIXTURE
        .lines()
        .map(|line| {
            let mut v: Value = serde_json::from_str(line).expect("a fixture line");
            (
                v["key"].as_str().expect("a key").to_owned(),
                v["content"].take(),
            )
        })
        .collect();
    let sid = writes[0]
        .0
        .rsplit('/')
        .next()
        .expect("the session")
        .to_owned();
    api::create(&sid).expect("create");
    let appends_before = appends();
    let started = Instant::now();
    let mut newest = std::collections::BTreeMap::new();
    for (key, content) in &writes {
        api::sync(key, &content.to_string()).expect("sync");
        newest.insert(key.clone(), content.clone());
        std::thread::sleep(Duration::from_millis(20));
    }
    api::flush(Duration::from_secs(60)).expect("flush");
    let took = started.elapsed();
    let syncs = service.syncs_of(protocol, &sid);
    let wire = |p: &Passed| {
        p.header("content-length")
            .and_then(|n| n.parse().ok())
            .unwrap_or(p.body.len() as u64)
    };
    Figures {
        requests: syncs.len(),
        bytes: syncs.iter().map(wire).sum(),
        text: newest.values().map(|v| v.to_string().len()).sum(),
        appends: appends() - appends_before,
        exact: service.data(&sid) == Some(newest),
        took,
        viewer: None,
    }
}

fn row(protocol: Protocol, extension: bool, workload: &str, f: &Figures) {
    let name = match protocol {
        Protocol::V1 => "v1",
        Protocol::Next => "next",
    };
    let bound = target(f.text, f.requests);
    let verdict = if (f.bytes as f64) <= bound {
        "PASS"
    } else {
        "MISS"
    };
    let (viewed, stale) = match &f.viewer {
        Some(v) => (
            format!("{:.1} KB", v.bytes as f64 / 1000.0),
            format!("{} ms", v.staleness_p50.as_millis()),
        ),
        None => ("".into(), "".into()),
    };
    println!(
        "| {name} | {} | {workload} | {} | {:.1} KB | {:.1} KB | {:.2}× | {verdict} ({:.1} KB) | {} | {} | {viewed} | {stale} | {:.2} s |",
        if extension { "on" } else { "off" },
        f.requests,
        f.bytes as f64 / 1000.0,
        f.text as f64 / 1000.0,
        f.bytes as f64 / f.text.max(1) as f64,
        bound / 1000.0,
        f.appends,
        if f.exact { "yes" } else { "NO" },
        f.took.as_secs_f64(),
    );
}

/// A live viewer of the share's page: its event stream read on a thread until the part's text
/// is whole, each event's time and the text length it brings the viewer to.
struct Viewer(std::thread::JoinHandle<(u64, Vec<(Instant, usize)>)>);

impl Viewer {
    fn open(base: &str, id: &str, final_len: usize, over: Duration) -> Viewer {
        use std::io::BufRead;
        let http = reqwest::blocking::Client::builder()
            .timeout(over + Duration::from_secs(60))
            .build()
            .expect("a client");
        // a fresh share holds only the message before the stream: the viewer starts from 0
        let response = http
            .get(format!("{base}/share/{id}/events?after=0"))
            .send()
            .expect("the viewer's stream");
        Viewer(std::thread::spawn(move || {
            let (mut bytes, mut shown, mut len) = (0u64, Vec::new(), 0usize);
            let mut kind = String::new();
            for line in std::io::BufReader::new(response).lines() {
                let Ok(line) = line else { break };
                bytes += line.len() as u64 + 1;
                if let Some(k) = line.strip_prefix("event: ") {
                    kind = k.to_owned();
                } else if let Some(data) = line.strip_prefix("data: ") {
                    let event: Value = serde_json::from_str(data).unwrap_or_default();
                    match kind.as_str() {
                        "append" => len += event["text"].as_str().map_or(0, str::len),
                        "item" if event["pid"] == "prt_stream" => {
                            len = shown_text(event["html"].as_str().unwrap_or("")).len()
                        }
                        _ => continue,
                    }
                    shown.push((Instant::now(), len));
                    if len >= final_len {
                        break;
                    }
                }
            }
            (bytes, shown)
        }))
    }

    /// The stream's bytes and the median time from each write to the first event showing it.
    fn finish(self, written: &[(Instant, usize)]) -> Option<Viewed> {
        let (bytes, shown) = self.0.join().ok()?;
        let mut stale: Vec<Duration> = written
            .iter()
            .filter_map(|(at, len)| {
                let (seen, _) = shown.iter().find(|(_, l)| l >= len)?;
                Some(seen.saturating_duration_since(*at))
            })
            .collect();
        stale.sort();
        Some(Viewed {
            bytes,
            staleness_p50: *stale.get(stale.len() / 2)?,
        })
    }
}

/// The text a rendered text part shows: its tags left out, the page's escapes undone.
fn shown_text(html: &str) -> String {
    let mut out = String::new();
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' => in_tag = false,
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    out.replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
        .trim()
        .to_owned()
}
