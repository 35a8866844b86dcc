//! Load benchmark of opencode-share-server (release binary, loopback), run by
//! scripts/bench-server. Each run measures three set-ups side by side, each with fresh server
//! processes: SQLite (one server), PostgreSQL (one server) and two servers on one PostgreSQL with
//! the shares split between them (the PostgreSQL ones when `--postgres URL` is given):
//! - upserts: 10 shares, each sending ShareNext batches of 200 parts back to back (one request in
//!   flight per share, as ShareNext's protocol requires), for 4 s: items stored per second;
//! - latency: 100 shares, each syncing one part at a time, closed loop (as fast as answers come)
//!   and paced (20 writes/s per share, a model streaming), 3 s each: p50 / p99 per request;
//! - read: a share of 4 000 parts (~2 MB): GET /api/share/<id>/data, /share_data and the page.
//!
//! For the upserts it reads the CPU seconds each process used (/proc/PID/stat: each server; the
//! PostgreSQL postmaster with its backends and the children it reaped; this load generator),
//! per 1 000 upserts, so scaling on a machine with more cores can be computed. After each
//! set-up every acknowledged write is read back (the newest acknowledged text of every part
//! of every share, through the other instance where there are two): a missing one fails the run.
//! Prints each run and the medians over runs as JSON lines.
//!
//!     cargo run --release -p opencode-share-server --example bench-server -- [--runs 5] \
//!         [--server PATH] [--baseline PATH] [--postgres URL --postgres-pid PID] [--seconds S]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

struct Server {
    child: Child,
    url: String,
    _dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `binary` on `database` (None: a fresh SQLite file in a temporary folder).
fn start(binary: &str, database: Option<&str>) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let db = database.map(str::to_owned).unwrap_or_else(|| {
        format!(
            "sqlite://{}{}",
            dir.path().join("bench.db").display(),
            std::env::var("BENCH_SQLITE_QUERY").unwrap_or_default()
        )
    });
    let mut child = Command::new(binary)
        .args([
            "--listen",
            "127.0.0.1:0",
            "--database",
            &db,
            "--rate-limit",
            "0",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {binary}: {e}"));
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line
        .trim()
        .strip_prefix("listening on ")
        .expect("first line")
        .to_owned();
    Server {
        child,
        url,
        _dir: dir,
    }
}

fn part(mid: &str, pid: &str, text: &str) -> Value {
    json!({ "type": "part", "data": { "id": pid, "messageID": mid, "sessionID": "ses_bench", "type": "text", "text": text } })
}

/// The share id is the session id's last 8 characters: a counter from a start that differs from
/// one benchmark process to the next, so set-ups and runs sharing one PostgreSQL never collide.
static NEXT_SESSION: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

/// Creates a share for session `ses_bench_<tag>_<n>_<unique 8 hex digits>`: (id, secret).
async fn create(http: &reqwest::Client, url: &str, n: usize, tag: &str) -> (String, String) {
    let unique = NEXT_SESSION.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let body = json!({ "sessionID": format!("ses_bench_{tag}_{n:05}_{unique:08x}") });
    let answer = http
        .post(format!("{url}/api/share"))
        .body(body.to_string())
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let r: Value = serde_json::from_str(&answer).unwrap();
    assert!(r["id"].is_string(), "create {body}: {answer}");
    (
        r["id"].as_str().unwrap().to_owned(),
        r["secret"].as_str().unwrap().to_owned(),
    )
}

async fn sync(http: &reqwest::Client, url: &str, id: &str, body: String) {
    let r = http
        .post(format!("{url}/api/share/{id}/sync"))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status().as_u16(),
        200,
        "{}",
        r.text().await.unwrap_or_default()
    );
}

fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

fn sorted(mut v: Vec<f64>) -> Vec<f64> {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v
}

/// What a share was acknowledged to hold: its id, the instance that wrote it, and the newest
/// acknowledged text of each part id.
struct Acked {
    id: String,
    writer: usize,
    parts: std::collections::HashMap<String, String>,
}

/// 10 shares (split over `urls` in turn), each sending batches of 200 parts back to back for
/// `secs`: (items stored, what was acknowledged).
async fn upserts(
    http: &reqwest::Client,
    urls: &[String],
    tag: &str,
    secs: f64,
) -> (usize, Vec<Acked>) {
    let pad = "x".repeat(290);
    let mut tasks = Vec::new();
    for s in 0..10 {
        let writer = s % urls.len();
        let (http, url, pad, tag) = (
            http.clone(),
            urls[writer].clone(),
            pad.clone(),
            tag.to_owned(),
        );
        tasks.push(tokio::spawn(async move {
            let (id, secret) = create(&http, &url, 100 + s, &tag).await;
            let mut acked = Acked {
                id: id.clone(),
                writer,
                parts: Default::default(),
            };
            let mut items = 0usize;
            let mut batch_no = 0;
            let deadline = Instant::now() + Duration::from_secs_f64(secs);
            while Instant::now() < deadline && batch_no < 100_000 {
                let batch: Vec<(String, String)> = (0..200)
                    .map(|i| {
                        (
                            format!("prt_{:05}", (batch_no * 200 + i) % 2000),
                            format!("b{batch_no} {pad}"),
                        )
                    })
                    .collect();
                let data: Vec<Value> = batch
                    .iter()
                    .map(|(pid, text)| part("msg_1", pid, text))
                    .collect();
                sync(
                    &http,
                    &url,
                    &id,
                    json!({ "secret": secret, "data": data }).to_string(),
                )
                .await;
                acked.parts.extend(batch);
                items += 200;
                batch_no += 1;
            }
            (items, acked)
        }));
    }
    let (mut total, mut acked) = (0, Vec::new());
    for t in tasks {
        let (items, a) = t.await.unwrap();
        total += items;
        acked.push(a);
    }
    (total, acked)
}

/// 100 shares (split over `urls`), one part per request for `secs`; `pace` = None for a closed
/// loop, else the gap between writes: (p50 ms, p99 ms, requests, what was acknowledged).
async fn latency(
    http: &reqwest::Client,
    urls: &[String],
    tag: &str,
    pace: Option<Duration>,
    secs: f64,
) -> (f64, f64, usize, Vec<Acked>) {
    let mut tasks = Vec::new();
    for s in 0..100 {
        let writer = s % urls.len();
        let (http, url, tag) = (http.clone(), urls[writer].clone(), tag.to_owned());
        tasks.push(tokio::spawn(async move {
            let (id, secret) = create(&http, &url, 1000 + s + pace.map_or(0, |_| 1000), &tag).await;
            let mut acked = Acked {
                id: id.clone(),
                writer,
                parts: Default::default(),
            };
            let mut lat = Vec::new();
            let deadline = Instant::now() + Duration::from_secs_f64(secs);
            // stagger the paced writers so they do not all fire at once
            if let Some(p) = pace {
                tokio::time::sleep(p * s as u32 / 100).await;
            }
            let mut n = 0;
            while Instant::now() < deadline && n < 100_000 {
                let text = format!("stream {n} {}", "y".repeat(200));
                let body = json!({ "secret": secret, "data": [part("msg_1", "prt_1", &text)] })
                    .to_string();
                let t = Instant::now();
                sync(&http, &url, &id, body).await;
                lat.push(t.elapsed().as_secs_f64() * 1000.0);
                acked.parts.insert("prt_1".into(), text);
                n += 1;
                if let Some(p) = pace {
                    tokio::time::sleep(p.saturating_sub(t.elapsed())).await;
                }
            }
            (lat, acked)
        }));
    }
    let (mut all, mut acked) = (Vec::new(), Vec::new());
    for t in tasks {
        let (lat, a) = t.await.unwrap();
        all.extend(lat);
        acked.push(a);
    }
    let all = sorted(all);
    (quantile(&all, 0.5), quantile(&all, 0.99), all.len(), acked)
}

/// Reads every share back (through the other instance where there are two) and counts the
/// acknowledged parts whose newest acknowledged text is not what the server holds.
async fn missing_writes(http: &reqwest::Client, urls: &[String], acked: &[Acked]) -> usize {
    let mut missing = 0;
    for share in acked {
        let url = &urls[(share.writer + 1) % urls.len()];
        let items: Vec<Value> = http
            .get(format!("{url}/api/share/{}/data", share.id))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let held: std::collections::HashMap<&str, &str> = items
            .iter()
            .filter(|i| i["type"] == "part")
            .filter_map(|i| Some((i["data"]["id"].as_str()?, i["data"]["text"].as_str()?)))
            .collect();
        missing += share
            .parts
            .iter()
            .filter(|(pid, text)| held.get(pid.as_str()) != Some(&text.as_str()))
            .count();
    }
    missing
}

async fn read(http: &reqwest::Client, url: &str, tag: &str) -> Value {
    let (id, secret) = create(http, url, 9999, tag).await;
    let text = "lorem ipsum dolor sit amet, **consectetur** adipiscing elit. ".repeat(7);
    for b in 0..20 {
        let data: Vec<Value> = (0..200)
            .map(|i| {
                part(
                    &format!("msg_{:03}", (b * 200 + i) / 40),
                    &format!("prt_{:05}", b * 200 + i),
                    &text,
                )
            })
            .collect();
        sync(
            http,
            url,
            &id,
            json!({ "secret": secret, "data": data }).to_string(),
        )
        .await;
    }
    let mut out = json!({});
    let sid_short = id.clone();
    for (name, path) in [
        ("data_ms", format!("/api/share/{id}/data")),
        ("legacy_data_ms", format!("/share_data?id={sid_short}")),
        ("page_ms", format!("/share/{id}")),
    ] {
        let mut times = Vec::new();
        let mut bytes = 0;
        for _ in 0..30 {
            let t = Instant::now();
            let r = http.get(format!("{url}{path}")).send().await.unwrap();
            assert_eq!(r.status().as_u16(), 200);
            bytes = r.bytes().await.unwrap().len();
            times.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        let times = sorted(times);
        out[name] = json!(quantile(&times, 0.5));
        out[format!("{name}_p99")] = json!(quantile(&times, 0.99));
        out[format!("{name}_bytes")] = json!(bytes);
    }
    out
}

fn median(values: &[f64]) -> f64 {
    quantile(&sorted(values.to_vec()), 0.5)
}

/// Clock ticks per second of /proc/PID/stat's times (sysconf(_SC_CLK_TCK): 100 on Linux).
const TICKS_PER_S: f64 = 100.0;

/// The fields of /proc/PID/stat after the command (which may hold spaces, in parentheses):
/// field N of proc(5) is at index N - 3. None when the process is gone.
fn stat_fields(pid: u32) -> Option<Vec<String>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = stat.rsplit_once(')')?;
    Some(rest.split_whitespace().map(str::to_owned).collect())
}

/// CPU seconds (user + system) of `pid` from /proc/PID/stat; with `reaped`, also those of its
/// children it has waited for (PostgreSQL's ended backends). 0 when the process is gone.
fn cpu_s(pid: u32, reaped: bool) -> f64 {
    let Some(fields) = stat_fields(pid) else {
        return 0.0;
    };
    let field = |n: usize| {
        fields
            .get(n - 3)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    let own = field(14) + field(15);
    (if reaped {
        own + field(16) + field(17)
    } else {
        own
    }) / TICKS_PER_S
}

/// CPU seconds of the PostgreSQL postmaster `pid`, its live children (backends, walwriter,
/// checkpointer...: found by their parent pid) and those it reaped.
fn postgres_cpu_s(pid: u32) -> f64 {
    let children: f64 = std::fs::read_dir("/proc")
        .map(|dir| {
            dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
                .filter(|&c| {
                    stat_fields(c)
                        .is_some_and(|f| f.get(1).is_some_and(|ppid| *ppid == pid.to_string()))
                })
                .map(|c| cpu_s(c, false))
                .sum()
        })
        .unwrap_or(0.0);
    cpu_s(pid, true) + children
}

/// One set-up of a run: where the servers keep their data and how many there are.
struct Setup {
    name: &'static str,
    database: Option<String>,
    instances: usize,
}

struct Options {
    secs: f64,
    postgres_pid: Option<u32>,
}

fn one_run(
    runtime: &tokio::runtime::Runtime,
    http: &reqwest::Client,
    binary: &str,
    setup: &Setup,
    run: usize,
    options: &Options,
) -> Value {
    let servers: Vec<Server> = (0..setup.instances)
        .map(|_| start(binary, setup.database.as_deref()))
        .collect();
    let urls: Vec<String> = servers.iter().map(|s| s.url.clone()).collect();
    let tag = format!("{}_{}_{run:03}", std::process::id(), setup.name);
    let secs = options.secs;
    runtime.block_on(async {
        let cpu = |servers: &[Server]| -> (Vec<f64>, f64, f64) {
            (
                servers.iter().map(|s| cpu_s(s.child.id(), false)).collect(),
                options.postgres_pid.filter(|_| setup.database.is_some()).map_or(0.0, postgres_cpu_s),
                cpu_s(std::process::id(), false),
            )
        };
        let before = cpu(&servers);
        let start = Instant::now();
        let (items, mut acked) = upserts(http, &urls, &tag, secs).await;
        let elapsed = start.elapsed().as_secs_f64();
        let after = cpu(&servers);
        let per_1000 = |b: f64, a: f64| (a - b) / (items as f64 / 1000.0);
        let servers_cpu: Vec<f64> = before.0.iter().zip(&after.0).map(|(b, a)| per_1000(*b, *a)).collect();
        let (closed_p50, closed_p99, closed_n, closed_acked) = latency(http, &urls, &tag, None, secs * 0.75).await;
        let (paced_p50, paced_p99, paced_n, paced_acked) =
            latency(http, &urls, &tag, Some(Duration::from_millis(50)), secs * 0.75).await;
        acked.extend(closed_acked);
        acked.extend(paced_acked);
        let missing = missing_writes(http, &urls, &acked).await;
        let acked_parts: usize = acked.iter().map(|a| a.parts.len()).sum();
        assert_eq!(missing, 0, "{}: {missing} of {acked_parts} acknowledged writes are missing", setup.name);
        let reads = read(http, &urls[0], &tag).await;
        json!({
            "run": run,
            "setup": setup.name,
            "server": binary,
            "upserts_per_s": (items as f64 / elapsed).round(),
            "cpu_s_per_1000_upserts": {
                "servers": servers_cpu,
                "postgres": per_1000(before.1, after.1),
                "load": per_1000(before.2, after.2),
            },
            "closed_loop_100_shares": { "p50_ms": closed_p50, "p99_ms": closed_p99, "requests": closed_n },
            "paced_100_shares_20_per_s": { "p50_ms": paced_p50, "p99_ms": paced_p99, "requests": paced_n },
            "acknowledged_writes_checked": acked_parts,
            "read_4000_parts": reads,
        })
    })
}

fn summary(results: &[Value]) -> Value {
    let pick = |path: &[&str]| -> f64 {
        median(
            &results
                .iter()
                .map(|r| path.iter().fold(r, |v, k| &v[*k]).as_f64().unwrap())
                .collect::<Vec<_>>(),
        )
    };
    let servers_cpu = median(
        &results
            .iter()
            .map(|r| {
                r["cpu_s_per_1000_upserts"]["servers"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|v| v.as_f64().unwrap())
                    .sum::<f64>()
            })
            .collect::<Vec<_>>(),
    );
    json!({
        "setup": results.first().map_or(Value::Null, |r| r["setup"].clone()),
        "server": results.first().map_or(Value::Null, |r| r["server"].clone()),
        "median_of_runs": results.len(),
        "upserts_per_s": pick(&["upserts_per_s"]),
        "cpu_s_per_1000_upserts_servers": servers_cpu,
        "cpu_s_per_1000_upserts_postgres": pick(&["cpu_s_per_1000_upserts", "postgres"]),
        "cpu_s_per_1000_upserts_load": pick(&["cpu_s_per_1000_upserts", "load"]),
        "closed_loop_p50_ms": pick(&["closed_loop_100_shares", "p50_ms"]),
        "closed_loop_p99_ms": pick(&["closed_loop_100_shares", "p99_ms"]),
        "paced_p50_ms": pick(&["paced_100_shares_20_per_s", "p50_ms"]),
        "paced_p99_ms": pick(&["paced_100_shares_20_per_s", "p99_ms"]),
        "read_data_ms": pick(&["read_4000_parts", "data_ms"]),
        "read_legacy_data_ms": pick(&["read_4000_parts", "legacy_data_ms"]),
        "read_page_ms": pick(&["read_4000_parts", "page_ms"]),
        "acknowledged_writes_missing": 0,
    })
}

/// `--baseline PATH` runs that binary too (SQLite), alternating with `--server` run by run, so
/// both are measured in the same window of the (shared) machine's load. `--postgres URL` adds
/// the PostgreSQL set-ups (`--postgres-pid` the postmaster's pid, for its CPU seconds);
/// `--seconds S` sets the upsert phase's length (the latency phases take 3/4 of it).
fn main() {
    let args: Vec<String> = std::env::args().collect();
    let flag = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let start = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    NEXT_SESSION.store(
        start.subsec_nanos() ^ start.as_secs() as u32,
        std::sync::atomic::Ordering::Relaxed,
    );
    let runs: usize = flag("--runs").map_or(5, |r| r.parse().unwrap());
    let binary = flag("--server").unwrap_or_else(|| "target/release/opencode-share-server".into());
    let baseline = flag("--baseline");
    let options = Options {
        secs: flag("--seconds").map_or(4.0, |s| s.parse().unwrap()),
        postgres_pid: flag("--postgres-pid").map(|p| p.parse().unwrap()),
    };
    let mut setups = vec![Setup {
        name: "sqlite",
        database: None,
        instances: 1,
    }];
    if let Some(pg) = flag("--postgres") {
        setups.push(Setup {
            name: "postgres",
            database: Some(pg.clone()),
            instances: 1,
        });
        setups.push(Setup {
            name: "postgres_x2",
            database: Some(pg),
            instances: 2,
        });
    }
    // reqwest is built with rustls-no-provider (the library's features): give it ring's provider
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .pool_max_idle_per_host(200)
        .build()
        .unwrap();
    let mut results: Vec<Vec<Value>> = vec![Vec::new(); setups.len()];
    let mut baseline_results = Vec::new();
    for run in 0..runs {
        if let Some(b) = &baseline {
            let result = one_run(&runtime, &http, b, &setups[0], run, &options);
            println!("{result}");
            baseline_results.push(result);
        }
        for (setup, results) in setups.iter().zip(&mut results) {
            let result = one_run(&runtime, &http, &binary, setup, run, &options);
            println!("{result}");
            results.push(result);
        }
    }
    if !baseline_results.is_empty() {
        println!("baseline {}", summary(&baseline_results));
    }
    for results in &results {
        println!("summary {}", summary(results));
    }
}
