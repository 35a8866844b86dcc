//! Load benchmark of opencode-share-server (release binary, SQLite, loopback), run by
//! scripts/bench-server: each run starts a fresh server process and measures
//! - upserts: 10 shares, each sending ShareNext batches of 200 parts back to back (one request in
//!   flight per share, as ShareNext's protocol requires), for 4 s: items stored per second;
//! - latency: 100 shares, each syncing one part at a time, closed loop (as fast as answers come)
//!   and paced (20 writes/s per share, a model streaming), 3 s each: p50 / p99 per request;
//! - read: a share of 4 000 parts (~2 MB): GET /api/share/<id>/data, /share_data and the page.
//!
//! Prints each run and the medians over runs as JSON lines.
//!
//!     cargo run --release -p opencode-share-server --example bench-server -- [--runs 5] [--server PATH]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
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

fn start(binary: &str) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let db = format!(
        "sqlite://{}{}",
        dir.path().join("bench.db").display(),
        std::env::var("BENCH_SQLITE_QUERY").unwrap_or_default()
    );
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

async fn create(http: &reqwest::Client, url: &str, n: usize, run: usize) -> (String, String) {
    let body = json!({ "sessionID": format!("ses_bench_{run:03}_{n:05}") });
    let r: Value = serde_json::from_str(
        &http
            .post(format!("{url}/api/share"))
            .body(body.to_string())
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
    )
    .unwrap();
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

async fn upserts(http: &reqwest::Client, url: &str, run: usize) -> f64 {
    let text = "x".repeat(300);
    let mut tasks = Vec::new();
    let start = Instant::now();
    for s in 0..10 {
        let (http, url, text) = (http.clone(), url.to_owned(), text.clone());
        tasks.push(tokio::spawn(async move {
            let (id, secret) = create(&http, &url, 100 + s, run).await;
            let mut items = 0usize;
            let mut batch_no = 0;
            let deadline = Instant::now() + Duration::from_secs(4);
            while Instant::now() < deadline && batch_no < 100_000 {
                let data: Vec<Value> = (0..200)
                    .map(|i| {
                        part(
                            "msg_1",
                            &format!("prt_{:05}", (batch_no * 200 + i) % 2000),
                            &text,
                        )
                    })
                    .collect();
                sync(
                    &http,
                    &url,
                    &id,
                    json!({ "secret": secret, "data": data }).to_string(),
                )
                .await;
                items += 200;
                batch_no += 1;
            }
            items
        }));
    }
    let mut total = 0;
    for t in tasks {
        total += t.await.unwrap();
    }
    total as f64 / start.elapsed().as_secs_f64()
}

/// 100 shares, one part per request; `pace` = None for a closed loop, else the gap between writes.
async fn latency(
    http: &reqwest::Client,
    url: &str,
    run: usize,
    pace: Option<Duration>,
) -> (f64, f64, usize) {
    let mut tasks = Vec::new();
    for s in 0..100 {
        let (http, url) = (http.clone(), url.to_owned());
        tasks.push(tokio::spawn(async move {
            let (id, secret) = create(&http, &url, 1000 + s + pace.map_or(0, |_| 1000), run).await;
            let mut lat = Vec::new();
            let deadline = Instant::now() + Duration::from_secs(3);
            // stagger the paced writers so they do not all fire at once
            if let Some(p) = pace {
                tokio::time::sleep(p * s as u32 / 100).await;
            }
            let mut n = 0;
            while Instant::now() < deadline && n < 100_000 {
                let body = json!({ "secret": secret, "data": [part("msg_1", "prt_1", &format!("stream {n} {}", "y".repeat(200)))] }).to_string();
                let t = Instant::now();
                sync(&http, &url, &id, body).await;
                lat.push(t.elapsed().as_secs_f64() * 1000.0);
                n += 1;
                if let Some(p) = pace {
                    tokio::time::sleep(p.saturating_sub(t.elapsed())).await;
                }
            }
            lat
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    let all = sorted(all);
    (quantile(&all, 0.5), quantile(&all, 0.99), all.len())
}

async fn read(http: &reqwest::Client, url: &str, run: usize) -> Value {
    let (id, secret) = create(http, url, 9999, run).await;
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

fn one_run(
    runtime: &tokio::runtime::Runtime,
    http: &reqwest::Client,
    binary: &str,
    run: usize,
) -> Value {
    let server = Arc::new(start(binary));
    let url = server.url.clone();
    runtime.block_on(async {
        let upserts_per_s = upserts(http, &url, run).await;
        let (closed_p50, closed_p99, closed_n) = latency(http, &url, run, None).await;
        let (paced_p50, paced_p99, paced_n) = latency(http, &url, run, Some(Duration::from_millis(50))).await;
        let reads = read(http, &url, run).await;
        json!({
            "run": run,
            "server": binary,
            "upserts_per_s": upserts_per_s.round(),
            "closed_loop_100_shares": { "p50_ms": closed_p50, "p99_ms": closed_p99, "requests": closed_n },
            "paced_100_shares_20_per_s": { "p50_ms": paced_p50, "p99_ms": paced_p99, "requests": paced_n },
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
    json!({
        "server": results.first().map_or(Value::Null, |r| r["server"].clone()),
        "median_of_runs": results.len(),
        "upserts_per_s": pick(&["upserts_per_s"]),
        "closed_loop_p50_ms": pick(&["closed_loop_100_shares", "p50_ms"]),
        "closed_loop_p99_ms": pick(&["closed_loop_100_shares", "p99_ms"]),
        "paced_p50_ms": pick(&["paced_100_shares_20_per_s", "p50_ms"]),
        "paced_p99_ms": pick(&["paced_100_shares_20_per_s", "p99_ms"]),
        "read_data_ms": pick(&["read_4000_parts", "data_ms"]),
        "read_legacy_data_ms": pick(&["read_4000_parts", "legacy_data_ms"]),
        "read_page_ms": pick(&["read_4000_parts", "page_ms"]),
    })
}

/// `--baseline PATH` runs that binary too, alternating with `--server` run by run, so both are
/// measured in the same window of the (shared) machine's load.
fn main() {
    let args: Vec<String> = std::env::args().collect();
    let flag = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let runs: usize = flag("--runs").map_or(5, |r| r.parse().unwrap());
    let binary = flag("--server").unwrap_or_else(|| "target/release/opencode-share-server".into());
    let baseline = flag("--baseline");
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
    let (mut results, mut baseline_results) = (Vec::new(), Vec::new());
    for run in 0..runs {
        if let Some(b) = &baseline {
            let result = one_run(&runtime, &http, b, run);
            println!("{result}");
            baseline_results.push(result);
        }
        let result = one_run(&runtime, &http, &binary, run);
        println!("{result}");
        results.push(result);
    }
    if !baseline_results.is_empty() {
        println!("baseline {}", summary(&baseline_results));
    }
    println!("summary {}", summary(&results));
}
