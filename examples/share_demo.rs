//! The main job, end to end: start this workspace's share server (opencode-share-server, SQLite in
//! a temporary folder) on loopback inside this process, start the library against it, share the
//! sample session in examples/fixtures (replayed as opencode's storage writes it), flush, and show
//! what the server now holds next to the stats and the viewer URL.
//!
//!     cargo run --example share_demo [-- --serve] [-- --listen 127.0.0.1:8787] [-- --protocol next]
//!
//! `--serve` keeps the server running afterwards so a person can open the viewer page;
//! `--protocol next` shares under opencode's successor protocol (items batched per share)
//! instead of the legacy one (`v1`, the default); `--crash-at N` keeps the server's database and
//! a durable spool in a fixed folder and kills the process (SIGKILL) after N writes: the next
//! run finds them and finishes the upload from the spool (see `demo/crash.rs`).

#[path = "demo/crash.rs"]
mod crash;

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

struct Args {
    serve: bool,
    listen: String,
    protocol: String,
    crash_at: Option<usize>,
}

fn args() -> Result<Args, String> {
    let mut out = Args {
        serve: false,
        listen: "127.0.0.1:0".into(),
        protocol: "v1".into(),
        crash_at: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--serve" => out.serve = true,
            "--listen" => out.listen = args.next().ok_or("--listen needs HOST:PORT")?,
            "--protocol" => {
                out.protocol = args
                    .next()
                    .filter(|p| p == "v1" || p == "next")
                    .ok_or("--protocol needs v1 or next")?
            }
            "--crash-at" => {
                out.crash_at = Some(
                    args.next()
                        .and_then(|n| n.parse().ok())
                        .ok_or("--crash-at needs a number of writes")?,
                )
            }
            _ => {
                return Err(
                    "usage: share_demo [--serve] [--listen HOST:PORT] [--protocol v1|next] [--crash-at N]".into(),
                );
            }
        }
    }
    Ok(out)
}

/// A folder for the server's SQLite file (and the spool), removed when dropped.
struct TempDir(std::path::PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A fresh session id as opencode makes them (its `Identifier.descending("session")`): `ses_`,
/// 12 hex digits of the time in milliseconds × 4096 inverted (newer sessions sort first), then
/// 14 random base62 characters. Each run shares a session of its own, so a run never meets the
/// share of an earlier one.
fn fresh_session_id() -> String {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let time = !(ms.wrapping_mul(0x1000) + 1) & 0xffff_ffff_ffff;
    let random: String = std::iter::repeat_with(fastrand::alphanumeric)
        .take(14)
        .collect();
    format!("ses_{time:012x}{random}")
}

fn run() -> Result<(), String> {
    let args = args()?;
    // --crash-at, or the run after it: a fixed folder with the database and the spool, and the
    // session the killed run shared
    let (dir, crash) = crash::prepare(args.crash_at)?;
    let session = match &crash {
        crash::Mode::Resume { session, .. } => session.clone(),
        _ => fresh_session_id(),
    };
    // the fixture's writes, moved to this run's session
    let recorded = FIXTURE
        .split('"')
        .find(|s| s.starts_with("ses_"))
        .ok_or("fixture: no session id")?;
    let writes: Vec<(String, Value)> = FIXTURE
        .replace(recorded, &session)
        .lines()
        .map(|line| {
            let v: Value = serde_json::from_str(line).map_err(|e| format!("fixture: {e}"))?;
            Ok((
                v["key"].as_str().unwrap_or_default().to_owned(),
                v["content"].clone(),
            ))
        })
        .collect::<Result<_, String>>()?;
    let dir = TempDir(dir.unwrap_or_else(|| {
        std::env::temp_dir().join(format!("opencode-share-demo-{}", std::process::id()))
    }));
    std::fs::create_dir_all(&dir.0).map_err(|e| format!("{}: {e}", dir.0.display()))?;
    // the run after a crash serves where the killed run's server did: the spool's shares belong
    // to that service (the library sends a share only to the service it was made on)
    let listen = match &crash {
        crash::Mode::Resume { created, .. } if args.listen == "127.0.0.1:0" => created["url"]
            .as_str()
            .and_then(|url| url.strip_prefix("http://"))
            .and_then(|rest| rest.split('/').next())
            .map_or_else(|| args.listen.clone(), str::to_owned),
        _ => args.listen.clone(),
    };
    let server = opencode_share_server::spawn(opencode_share_server::Config {
        listen,
        database: format!("sqlite://{}", dir.0.join("share.db").display()),
        ..Default::default()
    })?;
    println!(
        "share server    {} (opencode-share-server, SQLite in {})",
        server.url,
        dir.0.display()
    );
    let config = json!({ "url": server.url, "protocol": args.protocol });
    api::init(Some(&crash::config(config, &crash, &dir.0))).map_err(|e| e.to_string())?;
    let wakeups = Arc::new(AtomicUsize::new(0));
    let counter = wakeups.clone();
    api::set_event_sink(Some(Arc::new(move || {
        counter.fetch_add(1, Ordering::Relaxed);
    })));

    let created: Value = match &crash {
        crash::Mode::Resume { created, .. } => created.clone(),
        _ => serde_json::from_str(&api::create(&session).map_err(|e| e.to_string())?).unwrap(),
    };
    let (url, secret) = (
        created["url"].as_str().unwrap().to_owned(),
        created["secret"].as_str().unwrap().to_owned(),
    );
    println!(
        "shared          {session} -> {url} (protocol {})",
        args.protocol
    );

    // opencode stores the share record, and its auto-share once copied it into session/info:
    // the library learns the share from the first and strips the secret from the second
    let share_record = json!({ "url": url, "secret": secret });
    let mut record = share_record.clone();
    if let Some(id) = created.get("id") {
        record["id"] = id.clone(); // "next": the share id the server gave
    }
    let started = Instant::now();
    let mut newest: BTreeMap<String, Value> = BTreeMap::new();
    for (n, (key, content)) in writes.iter().enumerate().take(crash.writes(writes.len())) {
        if n == 0 && !matches!(crash, crash::Mode::Resume { .. }) {
            api::sync(&format!("session/share/{session}"), &record.to_string())
                .map_err(|e| e.to_string())?;
        }
        let (mut written, mut expected) = (content.clone(), content.clone());
        if key.starts_with("session/info/") {
            written["share"] = share_record.clone();
            expected["share"] = json!({ "url": url });
        }
        newest.insert(key.clone(), expected);
        if let crash::Mode::Resume { .. } = crash {
            continue; // written before the crash: the spool has it
        }
        api::sync(key, &written.to_string()).map_err(|e| format!("sync {key}: {e}"))?;
        crash.after_write(n + 1, &session, &created, &dir.0);
        if n % 4 == 0 {
            thread::sleep(Duration::from_millis(1)); // a model streams; it does not write all at once
        }
    }
    api::flush(Duration::from_secs(30)).map_err(|e| e.to_string())?;
    let elapsed = started.elapsed();

    let held = server_holds(&server.url, &session)?;
    println!("\nthe server holds {} keys of {session}:", held.len());
    for (key, value) in &held {
        println!("  {:<100} {}", key, describe(value));
    }
    let stats: Value = serde_json::from_str(&api::stats().map_err(|e| e.to_string())?).unwrap();
    let events: Vec<Value> = serde_json::from_str(&api::events_take()).unwrap();
    println!("\nstats   {stats}");
    // every item a request delivered has its `synced` event
    let items = events.iter().filter(|e| e["type"] == "synced").count();
    let requests = stats["requests"].as_u64().unwrap_or(0);
    println!(
        "        {} storage writes became {requests} requests carrying {items} items ({:.1} per request) in {} ms; \
         {} events ({} host wake-ups)",
        writes.len(),
        items as f64 / requests.max(1) as f64,
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
            "the server's copy differs from storage for {wrong:?}"
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
        "ok      the server holds exactly the newest content of every key; the secret is not in it"
    );
    crash.report(&stats);
    let short = &session[session.len() - 8..];
    let page = format!("{}/share/{short}", server.url);
    match page == url {
        true => println!("viewer  {url}"),
        false => println!("viewer  {url}  (also {page})"),
    }
    if args.serve {
        println!("serving until Ctrl-C");
        loop {
            thread::sleep(Duration::from_secs(3600));
        }
    }
    server.stop();
    Ok(())
}

/// What the server holds, read back through ShareNext's public data route, as storage keys.
fn server_holds(base: &str, session: &str) -> Result<BTreeMap<String, Value>, String> {
    let short = &session[session.len() - 8..];
    // the library's reqwest has rustls without a provider; ring is installed as the library does
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .map_err(|e| e.to_string())?;
    let response = client
        .get(format!("{base}/api/share/{short}/data"))
        .send()
        .map_err(|e| e.to_string())?;
    if !response.status().is_success() {
        return Err(format!(
            "the server answered {} for the share's data",
            response.status()
        ));
    }
    let text = response
        .text()
        .map_err(|e| format!("the share's data: {e}"))?;
    let items: Vec<Value> =
        serde_json::from_str(&text).map_err(|e| format!("the share's data: {e}"))?;
    let mut held = BTreeMap::new();
    for item in items {
        let data = &item["data"];
        let key = match item["type"].as_str() {
            Some("session") => format!("session/info/{session}"),
            Some("message") => format!(
                "session/message/{session}/{}",
                data["id"].as_str().unwrap_or("?")
            ),
            Some("part") => format!(
                "session/part/{session}/{}/{}",
                data["messageID"].as_str().unwrap_or("?"),
                data["id"].as_str().unwrap_or("?")
            ),
            other => format!("{other:?}"),
        };
        held.insert(key, data.clone());
    }
    Ok(held)
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
