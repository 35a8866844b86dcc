//! The main job, end to end: start a share service on loopback inside this process, start the
//! library against it, share the sample session in examples/fixtures (replayed as opencode's
//! storage writes it, with a little latency on the service), flush, and show what the service
//! now holds next to the stats.
//!
//!     cargo run --example share_demo [-- --latency-ms 20]

#[path = "../tests/support/service.rs"]
mod service;

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use opencode_share::api;
use serde_json::{Value, json};

const FIXTURE: &str = include_str!("fixtures/session.jsonl");

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("share_demo: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), String> {
    let latency = latency_arg()?;
    let writes: Vec<(String, Value)> = FIXTURE
        .lines()
        .map(|line| {
            let v: Value = serde_json::from_str(line).map_err(|e| format!("fixture: {e}"))?;
            Ok((
                v["key"].as_str().unwrap_or_default().to_owned(),
                v["content"].clone(),
            ))
        })
        .collect::<Result<_, String>>()?;
    let session = writes[0].1["id"]
        .as_str()
        .ok_or("fixture: the first write is not session/info")?
        .to_owned();

    let service = service::ShareService::start();
    service.set_latency(latency);
    println!(
        "share service   {} (loopback, {} ms per request)",
        service.url(),
        latency.as_millis()
    );
    api::init(Some(&json!({ "url": service.url() }).to_string())).map_err(|e| e.to_string())?;
    let wakeups = Arc::new(AtomicUsize::new(0));
    let counter = wakeups.clone();
    api::set_event_sink(Some(Arc::new(move || {
        counter.fetch_add(1, Ordering::Relaxed);
    })));

    let created: Value =
        serde_json::from_str(&api::create(&session).map_err(|e| e.to_string())?).unwrap();
    let (url, secret) = (
        created["url"].as_str().unwrap(),
        created["secret"].as_str().unwrap().to_owned(),
    );
    println!("shared          {session} -> {url}");

    // opencode stores the share record, and its auto-share once copied it into session/info:
    // the library learns the share from the first and strips the secret from the second
    let share_record = json!({ "url": url, "secret": secret });
    api::sync(
        &format!("session/share/{session}"),
        &share_record.to_string(),
    )
    .map_err(|e| e.to_string())?;
    let started = Instant::now();
    let mut newest: BTreeMap<String, Value> = BTreeMap::new();
    for (n, (key, content)) in writes.iter().enumerate() {
        let (mut written, mut expected) = (content.clone(), content.clone());
        if key.starts_with("session/info/") {
            written["share"] = share_record.clone();
            expected["share"] = json!({ "url": url });
        }
        api::sync(key, &written.to_string()).map_err(|e| format!("sync {key}: {e}"))?;
        newest.insert(key.clone(), expected);
        if n % 4 == 0 {
            thread::sleep(Duration::from_millis(1)); // a model streams; it does not write all at once
        }
    }
    api::flush(Duration::from_secs(30)).map_err(|e| e.to_string())?;
    let elapsed = started.elapsed();

    let held = service
        .data(&session)
        .ok_or("the service holds no share for the session")?;
    println!("\nthe service holds {} keys of {session}:", held.len());
    for (key, value) in &held {
        println!("  {:<100} {}", key, describe(value));
    }
    let requests = service.requests_to("/share_sync").len();
    let stats: Value = serde_json::from_str(&api::stats().map_err(|e| e.to_string())?).unwrap();
    let events: Vec<Value> = serde_json::from_str(&api::events_take()).unwrap();
    println!("\nstats   {stats}");
    println!(
        "        {} storage writes became {requests} requests in {} ms; {} events ({} host wake-ups)",
        writes.len(),
        elapsed.as_millis(),
        events.len(),
        wakeups.load(Ordering::Relaxed)
    );
    api::shutdown(Duration::from_secs(5)).map_err(|e| e.to_string())?;

    if held != newest {
        let wrong: Vec<&String> = newest
            .keys()
            .filter(|k| held.get(*k) != newest.get(*k))
            .collect();
        return Err(format!(
            "the service's copy differs from storage for {wrong:?}"
        ));
    }
    let leaked = held.values().any(|v| v.to_string().contains(&secret));
    if leaked
        || stats.to_string().contains(&secret)
        || events.iter().any(|e| e.to_string().contains(&secret))
    {
        return Err(
            "the share secret leaked into the shared content, the stats or an event".into(),
        );
    }
    println!(
        "ok      the service holds exactly the newest content of every key; the secret is not in it"
    );
    Ok(())
}

/// A one-line summary of a stored content.
fn describe(v: &Value) -> String {
    let kind = v["type"].as_str().or(v["role"].as_str()).unwrap_or("info");
    let mut text = match kind {
        "text" => format!("text, {} chars", v["text"].as_str().map_or(0, str::len)),
        "tool" => format!(
            "tool {} {}",
            v["tool"].as_str().unwrap_or("?"),
            v["state"]["status"].as_str().unwrap_or("?")
        ),
        "info" => format!("session {:?}", v["title"].as_str().unwrap_or("")),
        other => other.to_owned(),
    };
    if v.get("share").is_some() {
        text.push_str(&format!(", share {}", v["share"]));
    }
    text
}

fn latency_arg() -> Result<Duration, String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.as_slice() {
        [] => Ok(Duration::from_millis(20)),
        [flag, ms] if flag == "--latency-ms" => ms
            .parse()
            .map(Duration::from_millis)
            .map_err(|_| format!("--latency-ms takes a number, not {ms:?}")),
        _ => Err("usage: share_demo [--latency-ms N]".into()),
    }
}
