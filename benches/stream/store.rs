//! The server's side of issue 23's stream: the bytes it writes to its database and the CPU it
//! spends per streamed KB, with appends off (whole rewrites) and on, for two builds of the server
//! binary side by side in one run (main's and this branch's, say). Each run starts the binary as
//! a child process on a database of its own (a SQLite file; a PostgreSQL database of the cluster
//! at `--postgres URL` too), behind the fault proxy, which plays opencode's hosted service (no
//! extension advertised) when appends are off. Measured around the stream only (the share is
//! made before): SQLite's write-ahead log frames (a read transaction held open keeps the log from
//! restarting, so none is missed; checkpoints wait until the end), PostgreSQL's WAL (the
//! cluster's: nothing else writes to it), the bytes the process handed to write calls
//! (/proc/PID/io `wchar`: the log, checkpoints, answers and access log lines), and its user and
//! system CPU time (/proc/PID/stat).
//!
//! ```sh
//! git checkout main -- crates/server && cargo build -p opencode-share-server \
//!   && cp target/debug/opencode-share-server /tmp/server-main && git checkout HEAD -- crates/server
//! cargo build -p opencode-share-server
//! cargo bench --profile dev --bench stream -- --store --before /tmp/server-main \
//!   --after target/debug/opencode-share-server [--postgres postgres://...] [--runs 3]
//! ```

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use fault_proxy::{FaultProxy, Semantics, Transparent};
use opencode_share::api;
use serde_json::Value;
use testkit::{Protocol, hosted::Hosted, short_id, wal};

use super::{SID, part, part_key, start};

/// What one server build did for one stream.
struct Spent {
    requests: usize,
    db_bytes: u64,
    wchar: u64,
    cpu: Duration,
    text: usize,
    exact: bool,
}

/// Runs the table: `args` names the binaries (`--before`, `--after`), `--postgres` and
/// `--runs` (rounds; each figure is the median of its rounds).
pub fn run(args: &[String], chunks: usize, seconds: u64) {
    let value = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1).cloned())
    };
    let builds: Vec<(&str, String)> = [("before", value("--before")), ("after", value("--after"))]
        .into_iter()
        .filter_map(|(label, path)| Some((label, path?)))
        .collect();
    let postgres = value("--postgres");
    println!(
        "the server's side: one text part streamed in {chunks} chunks of 16 bytes over {seconds} s\n"
    );
    println!(
        "| server | database | protocol | appends | sync requests | DB bytes written | DB bytes / streamed KB | process write() bytes | server CPU | CPU / streamed KB | CPU / request | exact |"
    );
    println!("| --- | --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |");
    let mut databases = vec!["sqlite"];
    if postgres.is_some() {
        databases.push("postgres");
    }
    let mut configs = Vec::new();
    for database in &databases {
        for protocol in Protocol::ALL {
            for extension in [false, true] {
                for (label, binary) in &builds {
                    configs.push((*database, protocol, extension, *label, binary.as_str()));
                }
            }
        }
    }
    // rounds of every configuration in turn, so a slow minute of the machine hits all alike
    let runs = args
        .iter()
        .position(|a| a == "--runs")
        .and_then(|i| args.get(i + 1)?.parse().ok())
        .unwrap_or(1usize);
    let mut spent: Vec<Vec<Spent>> = configs.iter().map(|_| Vec::new()).collect();
    for round in 0..runs {
        for (n, &(database, protocol, extension, _, binary)) in configs.iter().enumerate() {
            let dir = tempfile::tempdir().expect("a temporary folder");
            let db = match database {
                "sqlite" => Db::Sqlite(dir.path().join("share.db")),
                _ => Db::postgres(
                    postgres.as_deref().expect("--postgres"),
                    round * configs.len() + n,
                ),
            };
            spent[n].push(stream(binary, &db, protocol, extension, chunks, seconds));
        }
    }
    for (&(database, protocol, extension, label, _), runs) in configs.iter().zip(&spent) {
        row(label, database, protocol, extension, &median(runs));
    }
}

/// Each figure's median over `runs` (exact only if every run was).
fn median(runs: &[Spent]) -> Spent {
    fn mid<T: Ord + Copy>(mut v: Vec<T>) -> T {
        v.sort();
        v[v.len() / 2]
    }
    Spent {
        requests: mid(runs.iter().map(|r| r.requests).collect()),
        db_bytes: mid(runs.iter().map(|r| r.db_bytes).collect()),
        wchar: mid(runs.iter().map(|r| r.wchar).collect()),
        cpu: mid(runs.iter().map(|r| r.cpu).collect()),
        text: runs[0].text,
        exact: runs.iter().all(|r| r.exact),
    }
}

/// A run's database.
enum Db {
    Sqlite(std::path::PathBuf),
    /// A fresh database of the cluster: (its URL, the cluster's URL).
    Postgres(String, String),
}

impl Db {
    fn postgres(cluster: &str, n: usize) -> Db {
        let name = format!("stream_bench_{}_{n}", std::process::id());
        psql(cluster, &format!("CREATE DATABASE {name}"));
        let base = cluster.rsplit_once('/').map_or(cluster, |(b, _)| b);
        Db::Postgres(format!("{base}/{name}"), cluster.to_owned())
    }

    fn url(&self) -> String {
        match self {
            Db::Sqlite(path) => format!("sqlite://{}", path.display()),
            Db::Postgres(url, _) => url.clone(),
        }
    }
}

/// `sql` run by `psql` on `url`: its output, trimmed.
fn psql(url: &str, sql: &str) -> String {
    let out = Command::new("psql")
        .args([url, "-tAc", sql])
        .output()
        .expect("psql runs");
    assert!(
        out.status.success(),
        "psql: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// Where a database's writes are counted from.
enum Meter {
    Wal(wal::Hold),
    /// The cluster's URL and its WAL position at the start.
    Lsn(String, String),
}

impl Meter {
    fn start(db: &Db) -> Meter {
        match db {
            Db::Sqlite(path) => Meter::Wal(wal::Hold::begin(path).expect("the log held")),
            Db::Postgres(_, cluster) => Meter::Lsn(
                cluster.clone(),
                psql(cluster, "SELECT pg_current_wal_lsn()"),
            ),
        }
    }

    fn written(&self, at_start: u64) -> u64 {
        match self {
            Meter::Wal(hold) => hold.written() - at_start,
            Meter::Lsn(cluster, from) => psql(
                cluster,
                &format!("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '{from}')::BIGINT"),
            )
            .parse()
            .expect("a byte count"),
        }
    }

    fn at_start(&self) -> u64 {
        match self {
            Meter::Wal(hold) => hold.written(),
            Meter::Lsn(..) => 0,
        }
    }
}

/// The server binary on `db`, listening on loopback; its base URL from its first line.
fn spawn(binary: &str, db: &Db) -> (Child, std::net::SocketAddr) {
    use std::io::BufRead;
    let mut child = Command::new(binary)
        .args(["--listen", "127.0.0.1:0", "--database", &db.url()])
        .args(["--rate-limit", "0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the server starts");
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("its first line");
    let url = line
        .trim()
        .strip_prefix("listening on http://")
        .expect("its address");
    (child, url.parse().expect("an address"))
}

/// The process's user + system CPU time and its write() bytes so far.
fn usage(pid: u32) -> (Duration, u64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or(vec![], |(_, rest)| rest.split_whitespace().collect());
    let ticks: u64 = fields
        .get(11..13)
        .map_or(0, |f| f.iter().filter_map(|t| t.parse::<u64>().ok()).sum());
    let io = std::fs::read_to_string(format!("/proc/{pid}/io")).unwrap_or_default();
    let wchar = io
        .lines()
        .find_map(|l| l.strip_prefix("wchar: "))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    // the kernel's clock tick is 1/100 s on Linux (sysconf(_SC_CLK_TCK))
    (Duration::from_millis(ticks * 10), wchar)
}

fn stream(
    binary: &str,
    db: &Db,
    protocol: Protocol,
    extension: bool,
    chunks: usize,
    seconds: u64,
) -> Spent {
    let (mut child, addr) = spawn(binary, db);
    let semantics: Arc<dyn Semantics> = if extension {
        Arc::new(Transparent)
    } else {
        Arc::new(Hosted::default())
    };
    let proxy = FaultProxy::start_with(addr, semantics).expect("the proxy starts");
    start(&proxy.url(), protocol);
    let meter = Meter::start(db);
    let from = meter.at_start();
    let requests_before = proxy.passed().len();
    let (cpu_before, wchar_before) = usage(child.id());
    let over = Duration::from_secs(seconds);
    let mut text = String::new();
    let started = Instant::now();
    for n in 0..chunks {
        text.push_str(&format!("w{:04} é \"q\" ok. ", n % 10_000)[..16]);
        let content = part("prt_stream", &text).to_string();
        api::sync(&part_key("prt_stream"), &content).expect("sync");
        let due = started + over.mul_f64((n + 1) as f64 / chunks as f64);
        std::thread::sleep(due.saturating_duration_since(Instant::now()));
    }
    api::flush(Duration::from_secs(60)).expect("flush");
    let (cpu_after, wchar_after) = usage(child.id());
    let db_bytes = meter.written(from);
    drop(meter);
    let requests = proxy.passed().len() - requests_before;
    let exact = stored(&addr, &text);
    api::shutdown(Duration::from_secs(10)).expect("shutdown");
    let _ = child.kill();
    let _ = child.wait();
    Spent {
        requests,
        db_bytes,
        wchar: wchar_after - wchar_before,
        cpu: cpu_after - cpu_before,
        text: text.len(),
        exact,
    }
}

/// Whether the server's `/data` of the share holds the part with exactly `text`.
fn stored(addr: &std::net::SocketAddr, text: &str) -> bool {
    let url = format!("http://{addr}/api/share/{}/data", short_id(SID));
    let items: Value = reqwest::blocking::get(url)
        .and_then(|r| r.text())
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default();
    let want = part("prt_stream", text);
    items.as_array().is_some_and(|items| {
        items
            .iter()
            .any(|i| i["data"]["id"] == "prt_stream" && i["data"] == want)
    })
}

fn row(label: &str, database: &str, protocol: Protocol, extension: bool, s: &Spent) {
    let kb = s.text as f64 / 1000.0;
    println!(
        "| {label} | {database} | {} | {} | {} | {:.1} KB | {:.0} B | {:.1} KB | {} ms | {:.1} ms | {:.2} ms | {} |",
        match protocol {
            Protocol::V1 => "v1",
            Protocol::Next => "next",
        },
        if extension { "on" } else { "off" },
        s.requests,
        s.db_bytes as f64 / 1000.0,
        s.db_bytes as f64 / kb,
        s.wchar as f64 / 1000.0,
        s.cpu.as_millis(),
        s.cpu.as_secs_f64() * 1000.0 / kb,
        s.cpu.as_secs_f64() * 1000.0 / s.requests.max(1) as f64,
        if s.exact { "yes" } else { "NO" },
    );
}
