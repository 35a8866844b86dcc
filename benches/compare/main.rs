//! Side-by-side benchmark: opencode-share (from C, Bun and Node) against the original `Share`
//! module (benches/compare/baseline/share.ts, in Bun and Node), one loopback share service,
//! the same scenarios, measured on the service's side. Writes benches/report/report.md,
//! benches/report/chart.svg and benches/report/results.json.
//!
//!     scripts/bench [--quick] [--runs N] [--only burst,stream,...] [--latencies 0,20,100]
//!                   [--contenders c-library,bun-library,...] [--cap-s S] [--no-soak]
//!
//! (scripts/bench builds the drivers, then runs `cargo bench --bench compare -- ARGS`.) The method
//! is in benches/compare/README.md. Under `cargo test` (no `--bench` argument) it does nothing.

#[path = "../tests/support/service.rs"]
mod service;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write as _;
use std::fs;
use std::io::{BufRead, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use service::ShareService;

// ------------------------------------------------------------------------------------------
// Workloads: the same ids, keys and contents as driver.c and driver.ts
// ------------------------------------------------------------------------------------------

const ALPHA: &[u8] = b"lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod ";
const MASTER_LEN: usize = 1000 + 70000;

struct Texts {
    master: String,
}

impl Texts {
    fn new() -> Texts {
        let n = ALPHA.len();
        let master = (0..MASTER_LEN)
            .map(|j| ALPHA[(j * 7 + j / 5) % n] as char)
            .collect();
        Texts { master }
    }

    fn text(&self, seed: u64, len: u64) -> &str {
        let off = ((seed * 131) % 1000) as usize;
        &self.master[off..off + len as usize]
    }

    fn content(&self, id: &str, sid: &str, kind: &str, v: u64, seed: u64, len: u64) -> Value {
        json!({"id": id, "sessionID": sid, "type": kind, "v": v, "text": self.text(seed, len)})
    }
}

fn len_part(x: u64) -> u64 {
    200 + (x * 97) % 1600
}
fn len_msg(x: u64) -> u64 {
    100 + (x * 37) % 300
}
fn len_soak(x: u64) -> u64 {
    100 + (x * 97) % 400
}
fn len_stream(v: u64) -> u64 {
    16 + 4 * v
}
fn ses_id(s: u64) -> String {
    format!("ses_bench{s:021}")
}
fn msg_id(m: u64) -> String {
    format!("msg_bench{m:021}")
}
fn prt_id(p: u64) -> String {
    format!("prt_bench{p:021}")
}
fn part_key(s: u64, m: u64, p: u64) -> String {
    format!("session/part/{}/{}/{}", ses_id(s), msg_id(m), prt_id(p))
}

/// Scenario sizes (the full run's, or --quick's smaller ones).
#[derive(Clone, Serialize, Deserialize)]
struct Sizes {
    burst_keys: u64,
    stream_writes: u64,
    stream_interval_us: u64,
    initial_messages: u64,
    initial_parts: u64,
    many_sessions: u64,
    many_keys: u64,
    many_threads: u64,
    faults_keys: u64,
    faults_reset_pct: u32,
    faults_500_pct: u32,
    soak_writes: u64,
    soak_keys: u64,
    soak_sample: u64,
}

impl Sizes {
    fn full() -> Sizes {
        Sizes {
            burst_keys: 200,
            stream_writes: 2000,
            stream_interval_us: 1000,
            initial_messages: 500,
            initial_parts: 2000,
            many_sessions: 50,
            many_keys: 20,
            many_threads: 4,
            faults_keys: 200,
            faults_reset_pct: 10,
            faults_500_pct: 10,
            soak_writes: 1_000_000,
            soak_keys: 10_000,
            soak_sample: 100_000,
        }
    }

    fn quick() -> Sizes {
        Sizes {
            burst_keys: 100,
            stream_writes: 500,
            initial_messages: 100,
            initial_parts: 400,
            many_sessions: 10,
            many_keys: 10,
            faults_keys: 100,
            soak_writes: 200_000,
            soak_keys: 2_000,
            soak_sample: 20_000,
            ..Sizes::full()
        }
    }

    /// The sizes of one run. The stream gets a third of a round trip more writes (1 ms apart) per
    /// run index, modulo 3, so that its last write falls at different points of the request in
    /// flight from run to run: otherwise, with a steady round trip, every run would end at the
    /// same phase and the time from the last write to its arrival would say more about that
    /// phase than about the client.
    fn for_run(&self, scenario: &str, latency: u64, run: usize) -> Sizes {
        let mut s = self.clone();
        if scenario == "stream" && self.stream_interval_us > 0 {
            let third_ms = (latency + 1).div_ceil(3);
            s.stream_writes += (run as u64 % 3) * third_ms * 1000 / self.stream_interval_us;
        }
        s
    }

    /// The driver's arguments for `scenario`.
    fn args(&self, scenario: &str) -> Vec<String> {
        let pairs: Vec<(&str, u64)> = match scenario {
            "burst" => vec![("keys", self.burst_keys)],
            "faults" => vec![("keys", self.faults_keys)],
            "stream" => vec![
                ("writes", self.stream_writes),
                ("interval-us", self.stream_interval_us),
            ],
            "initial" => vec![
                ("messages", self.initial_messages),
                ("parts", self.initial_parts),
            ],
            "many" => vec![
                ("sessions", self.many_sessions),
                ("keys", self.many_keys),
                ("threads", self.many_threads),
            ],
            "soak" => vec![
                ("keys", self.soak_keys),
                ("writes", self.soak_writes),
                ("sample-every", self.soak_sample),
            ],
            _ => vec![],
        };
        let mut out = vec!["--scenario".to_string(), scenario.to_string()];
        for (name, value) in pairs {
            out.push(format!("--{name}"));
            out.push(value.to_string());
        }
        out
    }

    /// What the service must hold at the end: session index, key, final content.
    fn finals(&self, scenario: &str, texts: &Texts) -> Vec<(u64, String, Value)> {
        let mut out = Vec::new();
        let part = |s: u64, p: u64, v: u64, seed: u64, len: u64| {
            texts.content(&prt_id(p), &ses_id(s), "part", v, seed, len)
        };
        match scenario {
            "burst" | "faults" => {
                let n = if scenario == "burst" {
                    self.burst_keys
                } else {
                    self.faults_keys
                };
                for k in 0..n {
                    out.push((0, part_key(0, k / 4, k), part(0, k, 0, k, len_part(k))));
                }
            }
            "stream" => {
                let v = self.stream_writes - 1;
                out.push((0, part_key(0, 0, 0), part(0, 0, v, 0, len_stream(v))));
            }
            "initial" => {
                let sid = ses_id(0);
                out.push((
                    0,
                    format!("session/info/{sid}"),
                    texts.content(&sid, &sid, "info", 0, 0, 200),
                ));
                let (m_n, p_n) = (self.initial_messages, self.initial_parts);
                for m in 0..m_n {
                    let mid = msg_id(m);
                    let c = texts.content(&mid, &sid, "message", 0, m, len_msg(m));
                    out.push((0, format!("session/message/{sid}/{mid}"), c));
                }
                for p in 0..p_n {
                    let m = p * m_n / p_n;
                    out.push((0, part_key(0, m, p), part(0, p, 0, p, len_part(p))));
                }
            }
            "many" => {
                for s in 0..self.many_sessions {
                    for k in 0..self.many_keys {
                        let seed = s * self.many_keys + k;
                        out.push((
                            s,
                            part_key(s, k / 4, k),
                            part(s, k, 0, seed, len_part(seed)),
                        ));
                    }
                }
            }
            "soak" => {
                let (w, n) = (self.soak_writes, self.soak_keys);
                for k in 0..n.min(w) {
                    let v = (w - 1 - k) / n;
                    out.push((0, part_key(0, k / 4, k), part(0, k, v, k, len_soak(k))));
                }
            }
            _ => {}
        }
        out
    }

    /// How many sync requests the original needs at least (one per key, one at a time).
    fn baseline_requests(&self, scenario: &str) -> u64 {
        match scenario {
            "burst" => self.burst_keys,
            "faults" => 0, // it stops at the first reset
            "stream" => 0, // paced by the writes
            "initial" => 1 + self.initial_messages + self.initial_parts,
            "many" => self.many_sessions * self.many_keys,
            _ => 0,
        }
    }
}

// ------------------------------------------------------------------------------------------
// Contenders
// ------------------------------------------------------------------------------------------

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Library,
    Baseline,
    /// The driver alone, writing nowhere: the cost of its own pacing (a reference for stream).
    Null,
}

#[derive(Clone, Copy)]
struct Contender {
    id: &'static str,
    label: &'static str,
    runtime: &'static str,
    kind: Kind,
    /// The baseline a library contender is compared with (C has none of its own: Bun's, the
    /// runtime opencode ran the original in).
    versus: &'static str,
    color: &'static str,
}

const CONTENDERS: [Contender; 8] = [
    Contender {
        id: "c-library",
        label: "library · C",
        runtime: "c",
        kind: Kind::Library,
        versus: "bun-baseline",
        color: "#1f4e99",
    },
    Contender {
        id: "bun-library",
        label: "library · Bun",
        runtime: "bun",
        kind: Kind::Library,
        versus: "bun-baseline",
        color: "#3b82d6",
    },
    Contender {
        id: "node-library",
        label: "library · Node",
        runtime: "node",
        kind: Kind::Library,
        versus: "node-baseline",
        color: "#22a39a",
    },
    Contender {
        id: "bun-baseline",
        label: "original · Bun",
        runtime: "bun",
        kind: Kind::Baseline,
        versus: "",
        color: "#f08c2e",
    },
    Contender {
        id: "node-baseline",
        label: "original · Node",
        runtime: "node",
        kind: Kind::Baseline,
        versus: "",
        color: "#d64541",
    },
    Contender {
        id: "c-none",
        label: "driver alone · C",
        runtime: "c",
        kind: Kind::Null,
        versus: "",
        color: "#999999",
    },
    Contender {
        id: "bun-none",
        label: "driver alone · Bun",
        runtime: "bun",
        kind: Kind::Null,
        versus: "",
        color: "#999999",
    },
    Contender {
        id: "node-none",
        label: "driver alone · Node",
        runtime: "node",
        kind: Kind::Null,
        versus: "",
        color: "#999999",
    },
];

/// The contenders that are compared (not the drivers-alone references).
fn compared() -> impl Iterator<Item = &'static Contender> {
    CONTENDERS
        .iter()
        .filter(|c| matches!(c.kind, Kind::Library | Kind::Baseline))
}

fn contender(id: &str) -> &'static Contender {
    CONTENDERS
        .iter()
        .find(|c| c.id == id)
        .expect("known contender")
}

struct Paths {
    root: PathBuf,
    driver_c: PathBuf,
    driver_js: PathBuf,
    bun: PathBuf,
    bindings_dist: PathBuf,
    logs: PathBuf,
}

impl Paths {
    fn new() -> Paths {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        let work = root.join("target/bench-compare");
        // To evaluate a change of the bindings or of the JS driver without touching the tree:
        // COMPARE_BINDINGS_DIST=<a dist/ folder>, COMPARE_DRIVER_JS=<a compiled driver.js>.
        let var =
            |name: &str, default: PathBuf| std::env::var_os(name).map_or(default, PathBuf::from);
        Paths {
            driver_c: work.join("driver_c"),
            driver_js: var("COMPARE_DRIVER_JS", work.join("js/driver.js")),
            bun: root.join("bindings/typescript/node_modules/.bin/bun"),
            bindings_dist: var(
                "COMPARE_BINDINGS_DIST",
                root.join("bindings/typescript/dist"),
            ),
            logs: work.join("logs"),
            root,
        }
    }

    fn command(&self, c: &Contender) -> Command {
        let mut cmd = match c.runtime {
            "c" => Command::new(&self.driver_c),
            "bun" => {
                let mut cmd = Command::new(&self.bun);
                cmd.arg(&self.driver_js);
                cmd
            }
            _ => {
                let mut cmd = Command::new("node");
                cmd.arg(&self.driver_js);
                cmd
            }
        };
        let kind = match c.kind {
            Kind::Library => "library",
            Kind::Baseline => "baseline",
            Kind::Null => "none",
        };
        cmd.args(["--contender", kind]);
        if c.runtime != "c" {
            cmd.arg("--bindings").arg(&self.bindings_dist);
        }
        cmd.current_dir(&self.root);
        cmd
    }

    fn check(&self) -> Result<(), String> {
        for (what, p) in [
            ("the C driver", &self.driver_c),
            ("the JS driver", &self.driver_js),
            ("bun", &self.bun),
            (
                "the bindings (dist/node.js)",
                &self.bindings_dist.join("node.js"),
            ),
        ] {
            if !p.exists() {
                return Err(format!(
                    "{what} is missing: {} (run scripts/bench, which builds it)",
                    p.display()
                ));
            }
        }
        Ok(())
    }
}

// ------------------------------------------------------------------------------------------
// One run
// ------------------------------------------------------------------------------------------

#[derive(Clone, Serialize, Deserialize)]
struct RunResult {
    scenario: String,
    latency_ms: u64,
    contender: String,
    run: usize,
    /// "ok", or why not: "dnf: ..." (the run's time was up), "failed: ..."
    outcome: String,
    /// START to the moment the service held the final content of the last key (all keys delivered)
    time_to_final_ms: Option<f64>,
    /// START to the last final content that did arrive (also when some never did)
    last_final_ms: Option<f64>,
    keys_final: usize,
    keys_expected: usize,
    requests: usize,
    wire_bytes: u64,
    body_bytes: u64,
    answered_200: usize,
    answered_500: usize,
    reset_or_unanswered: usize,
    connections: usize,
    /// stream: the last write (driver's clock from START) to the final content's arrival
    lag_ms: Option<f64>,
    /// stream: the last write to the moment the final content's request reached the service
    final_wait_ms: Option<f64>,
    /// stream: median time from the service's answer to one request to the arrival of the next
    /// (the client's turnaround; with one request in flight it sets how many round trips fit)
    turnaround_ms: Option<f64>,
    wall_s: f64,
    driver: Option<Value>,
}

impl RunResult {
    fn drv(&self, field: &str) -> Option<f64> {
        self.driver.as_ref()?.get(field)?.as_f64()
    }
    fn writes(&self) -> Option<f64> {
        self.drv("writes").filter(|w| *w > 0.0)
    }
    /// Host (writing) thread CPU from START to drained, per write, in µs.
    fn host_cpu_us(&self) -> Option<f64> {
        Some(self.drv("host_thread_cpu_ns")? / self.writes()? / 1000.0)
    }
    /// Inside the write calls, per write, in µs: thread CPU from C, wall from JS.
    fn in_call_us(&self) -> Option<f64> {
        let ns = self
            .drv("cpu_in_sync_ns")
            .or_else(|| self.drv("wall_in_sync_ns"))?;
        Some(ns / self.writes()? / 1000.0)
    }
    fn process_cpu_ms(&self) -> Option<f64> {
        Some(self.drv("process_cpu_ns")? / 1e6)
    }
    fn peak_rss_mib(&self) -> Option<f64> {
        Some(self.drv("peak_rss_kb")? / 1024.0)
    }
}

fn wire_len(r: &service::Recorded) -> u64 {
    // request line + headers as received + blank line + body
    let line = "POST ".len() + r.path.len() + " HTTP/1.1\r\n".len();
    let headers: usize = r
        .headers
        .iter()
        .map(|(n, v)| n.len() + 2 + v.len() + 2)
        .sum();
    (line + headers + 2 + r.body.len()) as u64
}

struct Ctx {
    paths: Paths,
    sizes: Sizes,
    texts: Texts,
    cap: Duration,
}

/// One progress line on stderr per run.
fn progress(scenario: &str, latency: u64, contender: &str, run: usize, r: &RunResult) {
    eprintln!(
        "compare: {scenario:>7} {latency:>3} ms  {contender:<14} run {}: {:<8} keys {}/{}  requests {:>5}  {}  ({:.1} s)",
        run + 1,
        r.time_to_final_ms
            .map_or("-".into(), |t| format!("{t:.0} ms")),
        r.keys_final,
        r.keys_expected,
        r.requests,
        r.outcome,
        r.wall_s
    );
}

fn run_one(ctx: &Ctx, scenario: &str, latency: u64, c: &Contender, run: usize) -> RunResult {
    let began = Instant::now();
    // Latency and faults are set once the driver is READY: setup and warm-up run at 0 ms, clean.
    let service = ShareService::start();
    let sizes = ctx.sizes.for_run(scenario, latency, run);
    let finals = sizes.finals(scenario, &ctx.texts);
    let mut result = RunResult {
        scenario: scenario.to_string(),
        latency_ms: latency,
        contender: c.id.to_string(),
        run,
        outcome: "ok".into(),
        time_to_final_ms: None,
        last_final_ms: None,
        keys_final: 0,
        keys_expected: finals.len(),
        requests: 0,
        wire_bytes: 0,
        body_bytes: 0,
        answered_200: 0,
        answered_500: 0,
        reset_or_unanswered: 0,
        connections: 0,
        lag_ms: None,
        final_wait_ms: None,
        turnaround_ms: None,
        wall_s: 0.0,
        driver: None,
    };

    let _ = fs::create_dir_all(&ctx.paths.logs);
    let log_path = ctx
        .paths
        .logs
        .join(format!("{scenario}-{latency}ms-{}-{run}.log", c.id));
    let mut cmd = ctx.paths.command(c);
    cmd.args(sizes.args(scenario));
    cmd.args([
        "--url",
        &service.url(),
        "--timeout-ms",
        &ctx.cap.as_millis().to_string(),
    ]);
    cmd.stdin(Stdio::piped()).stdout(Stdio::piped());
    match fs::File::create(&log_path) {
        Ok(f) => cmd.stderr(f),
        Err(_) => cmd.stderr(Stdio::null()),
    };
    let mut child = match cmd.spawn() {
        Ok(child) => child,
        Err(e) => {
            result.outcome = format!("failed: cannot start the driver: {e}");
            return result;
        }
    };
    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, rx) = mpsc::channel::<(Instant, String)>();
    let reader = thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send((Instant::now(), line)).is_err() {
                break;
            }
        }
    });

    // READY: the driver has set up (library started, shares created, warmed up). Configure the
    // service, say GO; START: it begins writing.
    let mut stdin = child.stdin.take().expect("piped stdin");
    let setup_deadline = Instant::now() + Duration::from_secs(120);
    let mut t0 = None;
    let mut said_go = false;
    while t0.is_none() {
        let left = setup_deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok((_, line)) if line.trim() == "READY" && !said_go => {
                service.set_latency(Duration::from_millis(latency));
                if scenario == "faults" {
                    let s = &ctx.sizes;
                    service.set_random_faults(
                        s.faults_reset_pct,
                        s.faults_500_pct,
                        0xfa17 + run as u64,
                    );
                }
                said_go = stdin.write_all(b"GO\n").and_then(|_| stdin.flush()).is_ok();
            }
            Ok((at, line)) if line.trim() == "START" && said_go => t0 = Some(at),
            Ok(_) => {}
            Err(_) => break,
        }
    }
    drop(stdin);
    let Some(t0) = t0 else {
        let _ = child.kill();
        let _ = child.wait();
        result.outcome = format!(
            "failed: no READY/START from the driver (see {})",
            log_path.display()
        );
        return result;
    };

    // RESULT, or the run's time is up (the original has no timeout: it may wait forever).
    let deadline = t0 + ctx.cap + Duration::from_secs(5);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok((_, line)) => {
                if let Some(json) = line.strip_prefix("RESULT ") {
                    result.driver = serde_json::from_str(json).ok();
                    break;
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                result.outcome = format!("dnf: not drained within {} s", ctx.cap.as_secs());
                break;
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                result.outcome = format!(
                    "failed: the driver exited without a result (see {})",
                    log_path.display()
                );
                break;
            }
        }
    }
    let exit_deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if Instant::now() < exit_deadline && result.driver.is_some() => {
                thread::sleep(Duration::from_millis(10))
            }
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                break;
            }
        }
    }
    let _ = reader.join();

    // Everything below is read from the service.
    let requests = service.requests();
    let expected: HashMap<&str, (u64, &Value)> = finals
        .iter()
        .map(|(s, k, v)| (k.as_str(), (*s, v)))
        .collect();
    let mut first_final: HashMap<&str, Instant> = HashMap::new();
    let mut conns = HashSet::new();
    let mut final_received: HashMap<&str, Instant> = HashMap::new();
    // The drivers' warm-up (session ses_warmup..., before START) is not counted.
    let measured =
        |r: &&service::Recorded| r.path == "/share_sync" && !r.body.contains("\"ses_warmup");
    for r in requests.iter().filter(measured) {
        result.requests += 1;
        result.wire_bytes += wire_len(r);
        result.body_bytes += r.body.len() as u64;
        conns.insert(r.conn);
        match r.status {
            200 => result.answered_200 += 1,
            500 => result.answered_500 += 1,
            0 => result.reset_or_unanswered += 1,
            _ => {}
        }
        if r.status != 200 {
            continue;
        }
        let Some(obj) = r.json.as_ref().and_then(Value::as_object) else {
            continue;
        };
        let Some(key) = obj.get("key").and_then(Value::as_str) else {
            continue;
        };
        let Some((key, (_, want))) = expected.get_key_value(key) else {
            continue;
        };
        if obj.get("content") == Some(*want) && !first_final.contains_key(key) {
            first_final.insert(key, r.finished);
            final_received.insert(key, r.received);
        }
    }
    result.connections = conns.len();
    let mut data: BTreeMap<u64, BTreeMap<String, Value>> = BTreeMap::new();
    for (s, _, _) in &finals {
        if !data.contains_key(s) {
            data.insert(*s, service.data(&ses_id(*s)).unwrap_or_default());
        }
    }
    let mut last: Option<Instant> = None;
    for (s, key, want) in &finals {
        if data.get(s).and_then(|d| d.get(key)) == Some(want) {
            result.keys_final += 1;
            if let Some(at) = first_final.get(key.as_str()) {
                last = Some(last.map_or(*at, |l| l.max(*at)));
            }
        }
    }
    let ms = |at: Instant| at.saturating_duration_since(t0).as_secs_f64() * 1000.0;
    result.last_final_ms = last.map(ms);
    if c.kind == Kind::Null {
        // the driver alone sends nothing: only its own costs count
        result.last_final_ms = None;
        if result.outcome == "ok" {
            result.outcome = "reference".into();
        }
    } else if result.keys_final == result.keys_expected {
        result.time_to_final_ms = result.last_final_ms;
    } else if result.outcome == "ok" {
        result.outcome = format!(
            "incomplete: {} of {} keys hold their final content",
            result.keys_final, result.keys_expected
        );
    }
    if scenario == "stream" {
        let syncs: Vec<&service::Recorded> = requests.iter().filter(measured).collect();
        let gaps: Vec<f64> = syncs
            .windows(2)
            .filter(|w| w[1].received >= w[0].finished)
            .map(|w| (w[1].received - w[0].finished).as_secs_f64() * 1000.0)
            .collect();
        result.turnaround_ms = median(gaps);
        let last_write = result.drv("last_write_ns").map(|ns| ns / 1e6);
        if let (Some(lw), Some(t)) = (last_write, result.time_to_final_ms) {
            result.lag_ms = Some(t - lw);
            let key = finals[0].1.as_str();
            result.final_wait_ms = final_received.get(key).map(|at| ms(*at) - lw);
        }
    }
    result.wall_s = began.elapsed().as_secs_f64();
    result
}

// ------------------------------------------------------------------------------------------
// Aggregation
// ------------------------------------------------------------------------------------------

fn median(mut v: Vec<f64>) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

/// Runs of one (scenario, latency, contender).
struct Cell<'a> {
    runs: Vec<&'a RunResult>,
}

impl<'a> Cell<'a> {
    /// Median of `f` over runs; a run where `f` is None counts as +inf when `inf_missing`.
    fn median(&self, f: impl Fn(&RunResult) -> Option<f64>, inf_missing: bool) -> Option<f64> {
        let v: Vec<f64> = self
            .runs
            .iter()
            .filter_map(|r| {
                f(r).or(if inf_missing {
                    Some(f64::INFINITY)
                } else {
                    None
                })
            })
            .collect();
        median(v)
    }
    fn range(&self, f: impl Fn(&RunResult) -> Option<f64>) -> Option<(f64, f64)> {
        let v: Vec<f64> = self.runs.iter().filter_map(|r| f(r)).collect();
        if v.is_empty() {
            return None;
        }
        Some((
            v.iter().cloned().fold(f64::INFINITY, f64::min),
            v.iter().cloned().fold(0.0, f64::max),
        ))
    }
}

struct Results<'a> {
    all: &'a [RunResult],
}

impl<'a> Results<'a> {
    fn cell(&self, scenario: &str, latency: u64, contender: &str) -> Option<Cell<'a>> {
        let runs: Vec<&RunResult> = self
            .all
            .iter()
            .filter(|r| {
                r.scenario == scenario && r.latency_ms == latency && r.contender == contender
            })
            .collect();
        (!runs.is_empty()).then_some(Cell { runs })
    }

    /// Median over run pairs (same run index) of lib/base for `f`; None if no pair has both.
    fn ratio(
        &self,
        scenario: &str,
        latency: u64,
        lib: &str,
        base: &str,
        f: impl Fn(&RunResult) -> Option<f64>,
    ) -> Option<f64> {
        let (l, b) = (
            self.cell(scenario, latency, lib)?,
            self.cell(scenario, latency, base)?,
        );
        let mut v = Vec::new();
        for lr in &l.runs {
            if let Some(br) = b.runs.iter().find(|br| br.run == lr.run) {
                // only pairs where both delivered everything: a contender that stopped early did
                // less work, and a ratio to it would flatter it
                if lr.time_to_final_ms.is_none() || br.time_to_final_ms.is_none() {
                    continue;
                }
                if let (Some(x), Some(y)) = (f(lr), f(br)) {
                    if y > 0.0 && x.is_finite() && y.is_finite() {
                        v.push(x / y);
                    }
                }
            }
        }
        median(v)
    }
}

fn ttf(r: &RunResult) -> Option<f64> {
    r.time_to_final_ms
}
fn reqs(r: &RunResult) -> Option<f64> {
    Some(r.requests as f64)
}
fn bytes(r: &RunResult) -> Option<f64> {
    Some(r.wire_bytes as f64)
}

// ------------------------------------------------------------------------------------------
// Formatting
// ------------------------------------------------------------------------------------------

fn fmt_num(x: f64) -> String {
    if !x.is_finite() {
        return "DNF".into();
    }
    let a = x.abs();
    if a >= 100.0 {
        let s = format!("{:.0}", x);
        // thin spaces as thousands separators
        let neg = s.starts_with('-');
        let digits: Vec<char> = s.trim_start_matches('-').chars().collect();
        let mut out = String::new();
        for (i, ch) in digits.iter().enumerate() {
            if i > 0 && (digits.len() - i) % 3 == 0 {
                out.push('\u{202f}');
            }
            out.push(*ch);
        }
        if neg { format!("-{out}") } else { out }
    } else if a >= 10.0 {
        format!("{x:.1}")
    } else if a >= 1.0 {
        format!("{x:.2}")
    } else {
        format!("{x:.3}")
    }
}

/// Short enough for a bar's label: 51.6k for 51 574.
fn fmt_short(x: f64) -> String {
    if x.is_finite() && x >= 10_000.0 {
        format!("{:.1}k", x / 1000.0)
    } else {
        fmt_num(x)
    }
}

/// A count (or a median of counts): no decimals unless it has some.
fn fmt_count(x: f64) -> String {
    if x.is_finite() && x.fract() == 0.0 {
        if x >= 100.0 {
            fmt_num(x)
        } else {
            format!("{x:.0}")
        }
    } else if x.is_finite() {
        format!("{x:.1}")
    } else {
        fmt_num(x)
    }
}

fn fmt_bytes(x: f64) -> String {
    if x >= 1024.0 * 1024.0 {
        format!("{:.2} MiB", x / 1024.0 / 1024.0)
    } else if x >= 1024.0 {
        format!("{:.1} KiB", x / 1024.0)
    } else {
        format!("{x:.0} B")
    }
}

fn fmt_ratio(r: Option<f64>) -> String {
    match r {
        Some(r) if r < 0.01 => " (<0.01×)".into(),
        Some(r) => format!(" ({r:.2}×)"),
        None => String::new(),
    }
}

fn opt(x: Option<f64>, f: impl Fn(f64) -> String) -> String {
    x.map(f).unwrap_or_else(|| "—".into())
}

// ------------------------------------------------------------------------------------------
// Options and main
// ------------------------------------------------------------------------------------------

struct Opts {
    quick: bool,
    runs: usize,
    only: Option<Vec<String>>,
    latencies: Option<Vec<u64>>,
    contenders: Option<Vec<String>>,
    cap_s: Option<u64>,
    soak: bool,
    out: PathBuf,
    render: Option<PathBuf>,
}

fn parse_opts(args: &[String]) -> Result<Opts, String> {
    let mut o = Opts {
        quick: false,
        runs: 0,
        only: None,
        latencies: None,
        contenders: None,
        cap_s: None,
        soak: true,
        out: PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("benches/report"),
        render: None,
    };
    let list = |v: &str| {
        v.split(',')
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = || it.next().cloned().ok_or(format!("{a} needs a value"));
        match a.as_str() {
            "--bench" => {}
            "--quick" => o.quick = true,
            "--no-soak" => o.soak = false,
            "--runs" => o.runs = value()?.parse().map_err(|_| "--runs needs a number")?,
            "--only" => o.only = Some(list(&value()?)),
            "--latencies" => {
                o.latencies = Some(
                    list(&value()?)
                        .iter()
                        .map(|s| s.parse().map_err(|_| format!("bad latency {s}")))
                        .collect::<Result<_, _>>()?,
                )
            }
            "--contenders" => o.contenders = Some(list(&value()?)),
            "--cap-s" => o.cap_s = Some(value()?.parse().map_err(|_| "--cap-s needs a number")?),
            "--out" => o.out = PathBuf::from(value()?),
            "--render" => o.render = Some(PathBuf::from(value()?)),
            other => return Err(format!("unknown option {other}")),
        }
    }
    if o.runs == 0 {
        o.runs = if o.quick { 1 } else { 3 };
    }
    Ok(o)
}

const SCENARIOS: [&str; 5] = ["burst", "stream", "initial", "many", "faults"];

fn scenario_title(s: &str, z: &Sizes) -> String {
    match s {
        "burst" => format!("burst: {} distinct keys written once", z.burst_keys),
        "stream" => format!(
            "stream: one part rewritten {} times (+⅓ round trip of writes per run index), {} ms apart, its text growing",
            z.stream_writes,
            z.stream_interval_us as f64 / 1000.0
        ),
        "initial" => format!(
            "initial share: create, then a {}-message session with {} parts (and its info) synced",
            z.initial_messages, z.initial_parts
        ),
        "many" => format!(
            "many sessions: {} shared sessions × {} keys, from {} threads (C) or interleaved (JS)",
            z.many_sessions, z.many_keys, z.many_threads
        ),
        "faults" => format!(
            "faults: {} distinct keys written once; the service resets {}% and answers 500 to {}% of syncs",
            z.faults_keys, z.faults_reset_pct, z.faults_500_pct
        ),
        _ => s.to_string(),
    }
}

fn sh(cmd: &str, args: &[&str]) -> String {
    Command::new(cmd)
        .args(args)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown".into())
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if !args.iter().any(|a| a == "--bench") {
        println!("compare: skipped (run it with scripts/bench, or cargo bench --bench compare)");
        return;
    }
    let opts = match parse_opts(&args) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("compare: {e}");
            std::process::exit(2);
        }
    };
    if let Some(file) = &opts.render {
        if let Err(e) = render(file, &opts.out) {
            eprintln!("compare: {e}");
            std::process::exit(1);
        }
        return;
    }
    let paths = Paths::new();
    if let Err(e) = paths.check() {
        eprintln!("compare: {e}");
        // a plain `cargo bench` (every bench target) should not fail for want of the drivers
        let from_script = std::env::var_os("COMPARE_COMMAND").is_some();
        std::process::exit(if from_script { 2 } else { 0 });
    }
    let sizes = if opts.quick {
        Sizes::quick()
    } else {
        Sizes::full()
    };
    let cap = Duration::from_secs(opts.cap_s.unwrap_or(if opts.quick { 30 } else { 90 }));
    let ctx = Ctx {
        paths,
        sizes,
        texts: Texts::new(),
        cap,
    };
    let latencies = opts.latencies.clone().unwrap_or(if opts.quick {
        vec![0, 20]
    } else {
        vec![0, 20, 100]
    });
    let scenarios: Vec<&str> = SCENARIOS
        .iter()
        .copied()
        .filter(|s| opts.only.as_ref().is_none_or(|o| o.iter().any(|x| x == s)))
        .collect();
    let contenders: Vec<&Contender> = CONTENDERS
        .iter()
        .filter(|c| {
            opts.contenders
                .as_ref()
                .is_none_or(|o| o.iter().any(|x| x == c.id))
        })
        .collect();
    let load_before = fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let started = Instant::now();
    let date = sh("date", &["-u", "+%Y-%m-%d %H:%M UTC"]);

    // Plan: which (scenario, latency, contender) run, and which are skipped and why.
    let mut skipped: Vec<String> = Vec::new();
    let mut plan: Vec<(&str, u64, Vec<&Contender>)> = Vec::new();
    for &lat in &latencies {
        for &sc in &scenarios {
            let need = ctx.sizes.baseline_requests(sc) as f64 * (lat as f64 + 1.0) / 1000.0;
            let baseline_fits = need <= ctx.cap.as_secs_f64() * 0.9;
            if lat >= 100 && !baseline_fits {
                skipped.push(format!(
                    "{sc} at {lat} ms: skipped for every contender — the original sends one request at a time, so it would need about {} requests × {lat} ms ≈ {:.0} s per run, over the {} s cap",
                    ctx.sizes.baseline_requests(sc), need, ctx.cap.as_secs()
                ));
                continue;
            }
            let mut cs = Vec::new();
            for c in &contenders {
                // the drivers alone only where their pacing matters: stream, at 20 ms
                if c.kind == Kind::Null && (sc != "stream" || lat != 20) {
                    continue;
                }
                if c.kind == Kind::Baseline && !baseline_fits {
                    skipped.push(format!(
                        "{sc} at {lat} ms, {}: skipped — it would need about {need:.0} s per run (one request at a time), over the {} s cap",
                        c.label, ctx.cap.as_secs()
                    ));
                    continue;
                }
                cs.push(*c);
            }
            plan.push((sc, lat, cs));
        }
    }

    let mut results: Vec<RunResult> = Vec::new();
    for (sc, lat, cs) in &plan {
        for run in 0..opts.runs {
            // rotate the order of contenders from run to run
            let n = cs.len();
            for i in 0..n {
                let c = cs[(i + run) % n];
                let r = run_one(&ctx, sc, *lat, c, run);
                progress(sc, *lat, c.id, run, &r);
                results.push(r);
            }
        }
    }

    let soak = if opts.soak && contenders.iter().any(|c| c.id == "c-library") {
        let r = run_one(&ctx, "soak", 0, contender("c-library"), 0);
        progress("soak", 0, "c-library", 0, &r);
        Some(r)
    } else {
        None
    };

    let elapsed = started.elapsed();
    let load_after = fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let env = Env {
        date,
        commit: {
            let c = sh(
                "git",
                &[
                    "-C",
                    env!("CARGO_MANIFEST_DIR"),
                    "rev-parse",
                    "--short",
                    "HEAD",
                ],
            );
            let dirty = !Command::new("git")
                .args([
                    "-C",
                    env!("CARGO_MANIFEST_DIR"),
                    "diff",
                    "--quiet",
                    "HEAD",
                    "--",
                    "src",
                ])
                .status()
                .is_ok_and(|s| s.success());
            if dirty {
                format!("{c} (src/ has uncommitted changes)")
            } else {
                c
            }
        },
        cpu: fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("model name"))
                    .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
            })
            .unwrap_or_else(|| "unknown".into()),
        cpus: thread::available_parallelism().map_or(0, |n| n.get()),
        kernel: fs::read_to_string("/proc/sys/kernel/osrelease")
            .unwrap_or_default()
            .trim()
            .to_string(),
        bun: sh(&ctx.paths.bun.to_string_lossy(), &["--version"]),
        node: sh("node", &["--version"]),
        rustc: sh("rustc", &["--version"]),
        command: std::env::var("COMPARE_COMMAND")
            .unwrap_or_else(|_| format!("cargo bench --bench compare -- {}", args.join(" "))),
        load_before: load_before
            .split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" "),
        load_after: load_after
            .split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" "),
        elapsed_s: elapsed.as_secs_f64(),
        runs: opts.runs,
        quick: opts.quick,
        cap_s: ctx.cap.as_secs(),
    };

    emit(
        &opts.out,
        &ctx,
        &env,
        &results,
        soak.as_ref(),
        &skipped,
        &plan,
    );
}

/// Writes report.md, chart.svg and results.json into `out`.
fn emit(
    out: &Path,
    ctx: &Ctx,
    env: &Env,
    results: &[RunResult],
    soak: Option<&RunResult>,
    skipped: &[String],
    plan: &[(&str, u64, Vec<&Contender>)],
) {
    let _ = fs::create_dir_all(out);
    let res = Results { all: results };
    let report = write_report(ctx, env, &res, plan, skipped, soak);
    let chart = write_chart(ctx, &res, plan);
    let raw = json!({
        "env": env,
        "sizes": ctx.sizes,
        "runs": results,
        "soak": soak,
        "skipped": skipped,
    });
    for (name, text) in [
        ("report.md", report),
        ("chart.svg", chart),
        (
            "results.json",
            serde_json::to_string_pretty(&raw).unwrap_or_default(),
        ),
    ] {
        if let Err(e) = fs::write(out.join(name), text) {
            eprintln!("compare: cannot write {}: {e}", out.join(name).display());
            std::process::exit(1);
        }
    }
    println!(
        "compare: wrote {} (report.md, chart.svg, results.json); the run took {:.0} s",
        out.display(),
        env.elapsed_s
    );
}

/// `--render FILE`: the report and chart again from a results.json (same figures, no new runs).
fn render(file: &Path, out: &Path) -> Result<(), String> {
    let text = fs::read_to_string(file).map_err(|e| format!("{}: {e}", file.display()))?;
    let raw: Value = serde_json::from_str(&text).map_err(|e| format!("{}: {e}", file.display()))?;
    let field = |name: &str| raw.get(name).cloned().unwrap_or(Value::Null);
    let env: Env = serde_json::from_value(field("env")).map_err(|e| format!("env: {e}"))?;
    let sizes: Sizes = serde_json::from_value(field("sizes")).map_err(|e| format!("sizes: {e}"))?;
    let results: Vec<RunResult> =
        serde_json::from_value(field("runs")).map_err(|e| format!("runs: {e}"))?;
    let soak: Option<RunResult> =
        serde_json::from_value(field("soak")).map_err(|e| format!("soak: {e}"))?;
    let skipped: Vec<String> =
        serde_json::from_value(field("skipped")).map_err(|e| format!("skipped: {e}"))?;
    let mut plan: Vec<(&str, u64, Vec<&Contender>)> = Vec::new();
    for r in &results {
        if !plan
            .iter()
            .any(|(s, l, _)| *s == r.scenario && *l == r.latency_ms)
        {
            let cs = CONTENDERS
                .iter()
                .filter(|c| {
                    results.iter().any(|x| {
                        x.scenario == r.scenario
                            && x.latency_ms == r.latency_ms
                            && x.contender == c.id
                    })
                })
                .collect();
            plan.push((r.scenario.as_str(), r.latency_ms, cs));
        }
    }
    let ctx = Ctx {
        paths: Paths::new(),
        sizes,
        texts: Texts::new(),
        cap: Duration::from_secs(env.cap_s),
    };
    emit(out, &ctx, &env, &results, soak.as_ref(), &skipped, &plan);
    Ok(())
}

#[derive(Serialize, Deserialize)]
struct Env {
    date: String,
    commit: String,
    cpu: String,
    cpus: usize,
    kernel: String,
    bun: String,
    node: String,
    rustc: String,
    command: String,
    load_before: String,
    load_after: String,
    elapsed_s: f64,
    runs: usize,
    quick: bool,
    cap_s: u64,
}

// ------------------------------------------------------------------------------------------
// Report
// ------------------------------------------------------------------------------------------

struct Target {
    name: String,
    pass: bool,
    figures: String,
}

fn targets(ctx: &Ctx, res: &Results, soak: Option<&RunResult>) -> Vec<Target> {
    let mut out = Vec::new();
    let lat = 20;
    let libs = ["c-library", "bun-library", "node-library"];

    // 1. burst at 20 ms: at most a quarter of the baseline's time
    let mut figs = Vec::new();
    let mut pass = true;
    let mut any = false;
    for lib in libs {
        let c = contender(lib);
        let (Some(l), Some(b)) = (
            res.cell("burst", lat, lib),
            res.cell("burst", lat, c.versus),
        ) else {
            continue;
        };
        any = true;
        let r = res.ratio("burst", lat, lib, c.versus, ttf);
        let lm = l.median(ttf, true);
        let bm = b.median(ttf, true);
        pass &= r.is_some_and(|r| r <= 0.25);
        figs.push(format!(
            "{}: {} ms vs {} ms ({}, ratio {})",
            c.label,
            opt(lm, fmt_num),
            opt(bm, fmt_num),
            contender(c.versus).label,
            opt(r, |r| format!("{r:.3}"))
        ));
    }
    if any {
        out.push(Target {
            name: "burst at 20 ms drained in at most ¼ of the original's time".into(),
            pass,
            figures: figs.join("; "),
        });
    }

    // 2. stream at 20 ms: no more requests than the baseline; last content within about one round trip
    let mut figs = Vec::new();
    let mut pass = true;
    let mut any = false;
    let bound = 2.0 * (lat as f64 + 5.0);
    for lib in libs {
        let c = contender(lib);
        let (Some(l), Some(b)) = (
            res.cell("stream", lat, lib),
            res.cell("stream", lat, c.versus),
        ) else {
            continue;
        };
        any = true;
        let lr = l.median(reqs, false).unwrap_or(f64::INFINITY);
        let br = b.median(reqs, false).unwrap_or(0.0);
        let lag = l.median(|r| r.lag_ms, true);
        let wait = l.median(|r| r.final_wait_ms, true);
        let blag = b.median(|r| r.lag_ms, true);
        pass &= lr <= br && lag.is_some_and(|x| x <= bound);
        let turn = l.median(|r| r.turnaround_ms, false);
        let bturn = b.median(|r| r.turnaround_ms, false);
        figs.push(format!(
            "{}: {} requests vs {} ({}); last write → final content {} ms, of which {} ms waiting for the request in flight (the original: {} ms, {} ms); turnaround between requests {} ms (the original: {} ms)",
            c.label,
            fmt_count(lr),
            fmt_count(br),
            contender(c.versus).label,
            opt(lag, fmt_num),
            opt(wait, fmt_num),
            opt(blag, fmt_num),
            opt(b.median(|r| r.final_wait_ms, true), fmt_num),
            opt(turn, fmt_num),
            opt(bturn, fmt_num)
        ));
    }
    if any {
        out.push(Target {
            name: format!(
                "stream at 20 ms: no more requests than the original; the last content ≤ {bound:.0} ms after the last write, i.e. it leaves with the first request after the one in flight (≤ 1 round trip, or the library's 25 ms pace, to end it; then 1 round trip)"
            ),
            pass,
            figures: figs.join("; "),
        });
    }

    // 3. host cost per write no higher than the baseline's, same runtime, every scenario at 20 ms
    let mut figs = Vec::new();
    let mut pass = true;
    let mut any = false;
    for lib in ["bun-library", "node-library"] {
        let c = contender(lib);
        for sc in SCENARIOS.into_iter().filter(|s| *s != "faults") {
            let (Some(l), Some(b)) = (res.cell(sc, lat, lib), res.cell(sc, lat, c.versus)) else {
                continue;
            };
            any = true;
            let lm = l.median(|r| r.host_cpu_us(), false);
            let bm = b.median(|r| r.host_cpu_us(), false);
            let ok = matches!((lm, bm), (Some(x), Some(y)) if x <= y);
            pass &= ok;
            figs.push(format!(
                "{} {sc}: {} vs {} µs{}",
                c.label,
                opt(lm, fmt_num),
                opt(bm, fmt_num),
                if ok { "" } else { " **(higher)**" }
            ));
        }
    }
    if any {
        out.push(Target {
            name: "host cost per write (JS thread CPU, START → drained) no higher than the original's in the same runtime, every scenario at 20 ms (faults excepted: the original stops working there)".into(),
            pass,
            figures: figs.join("; "),
        });
    }

    // 4. faults: every final content delivered
    let mut figs = Vec::new();
    let mut pass = true;
    let mut any = false;
    for lat in [0, 20, 100] {
        for c in compared() {
            let Some(cell) = res.cell("faults", lat, c.id) else {
                continue;
            };
            any = true;
            let got: Vec<String> = cell
                .runs
                .iter()
                .map(|r| format!("{}/{}", r.keys_final, r.keys_expected))
                .collect();
            if c.kind == Kind::Library {
                pass &= cell.runs.iter().all(|r| r.keys_final == r.keys_expected);
            }
            figs.push(format!("{} at {lat} ms: {}", c.label, got.join(", ")));
        }
    }
    if any {
        out.push(Target { name: "faults: every final content delivered by the library (the original's figure beside it)".into(), pass, figures: figs.join("; ") });
    }

    // 5. soak
    if let Some(s) = soak {
        let series = soak_series(s);
        let at = |w: u64| {
            series
                .iter()
                .find(|(x, _)| *x == Some(w))
                .map(|(_, kb)| *kb)
        };
        let ref_w = ctx.sizes.soak_sample * 2;
        let reference = at(ref_w);
        let last = series
            .iter()
            .rev()
            .find(|(x, _)| x.is_some())
            .map(|(_, kb)| *kb);
        let flushed = series.iter().find(|(x, _)| x.is_none()).map(|(_, kb)| *kb);
        let max_after = series
            .iter()
            .filter(|(x, _)| x.is_none_or(|x| x >= ref_w))
            .map(|(_, kb)| *kb)
            .fold(0.0, f64::max);
        let flat = match reference {
            Some(r) => max_after <= r * 1.10 + 2048.0,
            None => false,
        };
        out.push(Target {
            name: format!(
                "memory flat across {} writes to {} keys (C; no sample after {} writes more than 10% + 2 MiB above it)",
                fmt_num(ctx.sizes.soak_writes as f64),
                fmt_num(ctx.sizes.soak_keys as f64),
                fmt_num(ref_w as f64)
            ),
            pass: flat && s.keys_final == s.keys_expected,
            figures: format!(
                "RSS at {} writes {} MiB, highest after it {:.1} MiB, at the last write {} MiB, after the final flush {} MiB; {} of {} keys final",
                fmt_num(ref_w as f64),
                opt(reference.map(|k| k / 1024.0), |x| format!("{x:.1}")),
                max_after / 1024.0,
                opt(last.map(|k| k / 1024.0), |x| format!("{x:.1}")),
                opt(flushed.map(|k| k / 1024.0), |x| format!("{x:.1}")),
                s.keys_final,
                s.keys_expected
            ),
        });
    }
    out
}

/// The soak's RSS samples: (Some(writes) or None for "after the final flush", kB).
fn soak_series(s: &RunResult) -> Vec<(Option<u64>, f64)> {
    let Some(arr) = s
        .driver
        .as_ref()
        .and_then(|d| d.get("rss_series"))
        .and_then(Value::as_array)
    else {
        return Vec::new();
    };
    arr.iter()
        .filter_map(|p| {
            let p = p.as_array()?;
            let kb = p.get(1)?.as_f64()?;
            Some((p.first()?.as_u64(), kb))
        })
        .collect()
}

fn write_report(
    ctx: &Ctx,
    env: &Env,
    res: &Results,
    plan: &[(&str, u64, Vec<&Contender>)],
    skipped: &[String],
    soak: Option<&RunResult>,
) -> String {
    let mut md = String::new();
    let z = &ctx.sizes;
    let _ = writeln!(md, "# opencode-share against the original `Share` module\n");
    let _ = writeln!(
        md,
        "Generated by `benches/compare.rs` — method, contenders and caveats in [benches/compare/README.md](../compare/README.md). \
         Raw figures of every run: [results.json](results.json).\n"
    );
    let _ = writeln!(md, "| | |\n| --- | --- |");
    let _ = writeln!(md, "| command | `{}` |", env.command);
    let _ = writeln!(md, "| date | {} |", env.date);
    let _ = writeln!(md, "| commit | {} |", env.commit);
    let _ = writeln!(
        md,
        "| machine | {} CPUs, {}, Linux {} |",
        env.cpus, env.cpu, env.kernel
    );
    let _ = writeln!(
        md,
        "| runtimes | Bun {}, Node {}, {} |",
        env.bun, env.node, env.rustc
    );
    let _ = writeln!(
        md,
        "| runs | {} per contender and case{}; medians; ratios library/original are medians of per-run pairs (same run index, same runtime; C is paired with Bun) |",
        env.runs,
        if env.quick {
            " (--quick: smaller sizes)"
        } else {
            ""
        }
    );
    let _ = writeln!(
        md,
        "| cap | {} s per run; a run not drained by then is DNF |",
        env.cap_s
    );
    let _ = writeln!(
        md,
        "| took | {:.0} s; load average before {}, after {} |",
        env.elapsed_s, env.load_before, env.load_after
    );
    let _ = writeln!(md);
    let _ = writeln!(md, "![time to final content at 20 ms](chart.svg)\n");

    let _ = writeln!(md, "## Targets\n");
    let _ = writeln!(
        md,
        "| target | result | figures (medians) |\n| --- | --- | --- |"
    );
    for t in targets(ctx, res, soak) {
        let _ = writeln!(
            md,
            "| {} | **{}** | {} |",
            t.name,
            if t.pass { "PASS" } else { "MISS" },
            t.figures
        );
    }
    let _ = writeln!(md);

    let _ = writeln!(md, "## Scenarios\n");
    let _ = writeln!(
        md,
        "Columns: **time to final** — from the driver's `START` (after setup: library started, shares created; \
         for the initial share the create is inside) until the service held the final content of every key, \
         median (min–max) in ms, DNF when some key never got it; **requests** and **bytes** — `/share_sync` requests \
         the service received and their size on the wire (request line, headers, body); **final** — keys whose \
         stored content is the last one written; **host CPU/write** — CPU of the thread(s) that wrote, from `START` \
         until the contender had nothing left to send, per write (C: the writer threads; Bun/Node: the JS thread, \
         which also runs the original's fetches and the bindings' hand-over of held contents); **in call** — per write, inside the \
         write call only (C: thread CPU; JS: wall); **process CPU** — the whole driver process from `START` to drained; \
         **peak RSS** — the driver's VmHWM. `(0.12×)` is library/original, pair by pair in the same runtime.\n"
    );
    for (sc, lat, cs) in plan {
        let _ = writeln!(md, "### {} — {} ms\n", scenario_title(sc, z), lat);
        let stream = *sc == "stream";
        let _ = write!(
            md,
            "| contender | time to final, ms | requests | bytes | final | host CPU/write, µs | in call, µs | process CPU, ms | peak RSS, MiB |"
        );
        if stream {
            let _ = write!(md, " last write → final, ms | turnaround, ms |");
        }
        let _ = writeln!(md);
        let _ = write!(
            md,
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
        );
        if stream {
            let _ = write!(md, " ---: | ---: |");
        }
        let _ = writeln!(md);
        for c in cs {
            let Some(cell) = res.cell(sc, *lat, c.id) else {
                continue;
            };
            if c.kind == Kind::Null {
                let _ = write!(
                    md,
                    "| *{} (reference)* | — | — | — | — | {} | — | {} | {} |",
                    c.label,
                    opt(cell.median(|r| r.host_cpu_us(), false), fmt_num),
                    opt(cell.median(|r| r.process_cpu_ms(), false), fmt_num),
                    opt(cell.median(|r| r.peak_rss_mib(), false), |x| format!(
                        "{x:.1}"
                    )),
                );
                if stream {
                    let _ = write!(md, " — | — |");
                }
                let _ = writeln!(md);
                continue;
            }
            let versus = (c.kind == Kind::Library && cs.iter().any(|x| x.id == c.versus))
                .then_some(c.versus);
            let ratio = |f: fn(&RunResult) -> Option<f64>| {
                versus.and_then(|b| res.ratio(sc, *lat, c.id, b, f))
            };
            let t = cell.median(ttf, true);
            let range = cell.range(ttf);
            let dnf = cell
                .runs
                .iter()
                .filter(|r| r.time_to_final_ms.is_none())
                .count();
            let time = match t {
                Some(t) if t.is_finite() => {
                    let mut s = fmt_num(t);
                    if let Some((lo, hi)) = range.filter(|_| cell.runs.len() > 1) {
                        let _ = write!(s, " ({}–{})", fmt_num(lo), fmt_num(hi));
                    }
                    if dnf > 0 {
                        let _ = write!(s, ", {dnf} DNF");
                    }
                    s + &fmt_ratio(ratio(ttf))
                }
                _ => {
                    let last = cell.median(|r| r.last_final_ms, false);
                    format!(
                        "DNF ({} of {} runs){}",
                        dnf,
                        cell.runs.len(),
                        last.map_or(String::new(), |l| format!(
                            "; last final at {} ms",
                            fmt_num(l)
                        ))
                    )
                }
            };
            let finals = cell
                .median(|r| Some(r.keys_final as f64), false)
                .unwrap_or(0.0);
            let _ = write!(
                md,
                "| {} | {} | {}{} | {}{} | {finals:.0}/{} | {}{} | {} | {} | {} |",
                c.label,
                time,
                opt(cell.median(reqs, false), fmt_count),
                fmt_ratio(ratio(reqs)),
                opt(cell.median(bytes, false), fmt_bytes),
                fmt_ratio(ratio(bytes)),
                cell.runs[0].keys_expected,
                opt(cell.median(|r| r.host_cpu_us(), false), fmt_num),
                fmt_ratio(ratio(|r| r.host_cpu_us())),
                opt(cell.median(|r| r.in_call_us(), false), fmt_num),
                opt(cell.median(|r| r.process_cpu_ms(), false), fmt_num),
                opt(cell.median(|r| r.peak_rss_mib(), false), |x| format!(
                    "{x:.1}"
                )),
            );
            if stream {
                let lag = cell.median(|r| r.lag_ms, true);
                let wait = cell.median(|r| r.final_wait_ms, true);
                let _ = write!(
                    md,
                    " {} (waiting {}) | {} |",
                    opt(lag, fmt_num),
                    opt(wait, fmt_num),
                    opt(cell.median(|r| r.turnaround_ms, false), fmt_num)
                );
            }
            let _ = writeln!(md);
        }
        if *sc == "faults" {
            let _ = writeln!(md);
            for c in cs {
                let Some(cell) = res.cell(sc, *lat, c.id) else {
                    continue;
                };
                let r = cell.runs[0];
                let _ = writeln!(
                    md,
                    "- {} (run 1): {} requests: {} answered 200, {} answered 500, {} reset; {} connections; {}",
                    c.label,
                    r.requests,
                    r.answered_200,
                    r.answered_500,
                    r.reset_or_unanswered,
                    r.connections,
                    r.driver
                        .as_ref()
                        .and_then(|d| d.get("drain"))
                        .and_then(Value::as_str)
                        .unwrap_or(&r.outcome)
                );
            }
        }
        let odd: Vec<String> = cs
            .iter()
            .filter_map(|c| res.cell(sc, *lat, c.id))
            .flat_map(|cell| cell.runs.into_iter())
            .filter(|r| {
                r.outcome != "ok"
                    && r.outcome != "reference"
                    && !(r.scenario == "faults" && r.contender.ends_with("baseline"))
            })
            .map(|r| {
                format!(
                    "{} run {}: {}",
                    contender(&r.contender).label,
                    r.run + 1,
                    r.outcome
                )
            })
            .collect();
        if !odd.is_empty() {
            let _ = writeln!(md, "\nNot clean: {}", odd.join("; "));
        }
        let _ = writeln!(md);
    }
    if !skipped.is_empty() {
        let _ = writeln!(md, "### Skipped\n");
        for s in skipped {
            let _ = writeln!(md, "- {s}");
        }
        let _ = writeln!(md);
    }
    if let Some(s) = soak {
        let _ = writeln!(md, "## Memory soak (library from C)\n");
        let _ = writeln!(
            md,
            "{} writes round-robin over {} keys of one shared session (contents 100–500 B, each write a new version), \
             as fast as the thread can call `share_sync`, service at 0 ms; resident memory (VmRSS) sampled every {} writes \
             and after the final `share_flush`.\n",
            fmt_num(z.soak_writes as f64),
            fmt_num(z.soak_keys as f64),
            fmt_num(z.soak_sample as f64)
        );
        let series = soak_series(s);
        let _ = writeln!(
            md,
            "| after writes | {} |",
            series
                .iter()
                .map(|(w, _)| w.map_or("flushed".into(), |w| fmt_num(w as f64)))
                .collect::<Vec<_>>()
                .join(" | ")
        );
        let _ = writeln!(md, "| --- |{}", " ---: |".repeat(series.len()));
        let _ = writeln!(
            md,
            "| RSS, MiB | {} |\n",
            series
                .iter()
                .map(|(_, kb)| format!("{:.1}", kb / 1024.0))
                .collect::<Vec<_>>()
                .join(" | ")
        );
        let writes = s.drv("writes").unwrap_or(0.0);
        let _ = writeln!(
            md,
            "Drained {} ms after `START`; {} of {} keys hold their final content; {} requests ({}); {} per `share_sync` (thread CPU); peak RSS {} MiB; stats: `{}`.\n",
            opt(s.drv("drained_ns").map(|n| n / 1e6), fmt_num),
            s.keys_final,
            s.keys_expected,
            fmt_num(s.requests as f64),
            fmt_bytes(s.wire_bytes as f64),
            opt(
                s.drv("cpu_in_sync_ns").map(|n| n / writes.max(1.0)),
                |x| format!("{x:.0} ns")
            ),
            opt(s.peak_rss_mib(), |x| format!("{x:.1}")),
            s.driver
                .as_ref()
                .and_then(|d| d.get("stats"))
                .map(|v| v.to_string())
                .unwrap_or_default()
        );
    }
    md
}

// ------------------------------------------------------------------------------------------
// Chart (hand-written SVG): time to final, requests and host CPU per write at 20 ms
// ------------------------------------------------------------------------------------------

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

struct Bar {
    color: &'static str,
    value: Option<f64>,
    note: String,
    /// some final content never arrived: the bar is hatched
    incomplete: bool,
}

fn panel(
    svg: &mut String,
    y0: f64,
    title: &str,
    groups: &[(String, Vec<Bar>)],
    fmt: fn(f64) -> String,
) -> f64 {
    let (left, width, height) = (70.0, 860.0, 200.0);
    let _ = writeln!(
        svg,
        r#"<text x="{left}" y="{}" class="title">{}</text>"#,
        y0 + 16.0,
        esc(title)
    );
    let top = y0 + 30.0;
    let vals: Vec<f64> = groups
        .iter()
        .flat_map(|(_, bs)| bs.iter().filter_map(|b| b.value))
        .filter(|v| *v > 0.0 && v.is_finite())
        .collect();
    if vals.is_empty() {
        return top + 20.0;
    }
    let lo = vals
        .iter()
        .cloned()
        .fold(f64::INFINITY, f64::min)
        .log10()
        .floor();
    let hi = vals
        .iter()
        .cloned()
        .fold(0.0, f64::max)
        .log10()
        .ceil()
        .max(lo + 1.0);
    let y_of = |v: f64| top + height - (v.log10() - lo) / (hi - lo) * height;
    // axis and decade grid
    let mut d = lo;
    while d <= hi + 1e-9 {
        let y = y_of(10f64.powf(d));
        let _ = writeln!(
            svg,
            r#"<line x1="{left}" x2="{}" y1="{y:.1}" y2="{y:.1}" class="grid"/>"#,
            left + width
        );
        let tick = 10f64.powf(d);
        let label = if tick >= 1.0 {
            fmt_count(tick)
        } else {
            format!("{tick}")
        };
        let _ = writeln!(
            svg,
            r#"<text x="{}" y="{:.1}" class="axis" text-anchor="end">{}</text>"#,
            left - 6.0,
            y + 4.0,
            label
        );
        d += 1.0;
    }
    let gw = width / groups.len() as f64;
    for (gi, (label, bars)) in groups.iter().enumerate() {
        let gx = left + gi as f64 * gw;
        let bw = (gw - 30.0) / bars.len().max(1) as f64;
        for (bi, b) in bars.iter().enumerate() {
            let x = gx + 15.0 + bi as f64 * bw;
            match b.value.filter(|v| *v > 0.0 && v.is_finite()) {
                Some(v) => {
                    let y = y_of(v);
                    let _ = writeln!(
                        svg,
                        r#"<rect x="{x:.1}" y="{y:.1}" width="{:.1}" height="{:.1}" fill="{}"><title>{}</title></rect>"#,
                        bw - 3.0,
                        top + height - y,
                        b.color,
                        esc(&b.note)
                    );
                    if b.incomplete {
                        let _ = writeln!(
                            svg,
                            r#"<rect x="{x:.1}" y="{y:.1}" width="{:.1}" height="{:.1}" fill="url(#hatch)"/>"#,
                            bw - 3.0,
                            top + height - y
                        );
                    }
                    let _ = writeln!(
                        svg,
                        r#"<text x="{:.1}" y="{:.1}" class="val" text-anchor="middle">{}</text>"#,
                        x + (bw - 3.0) / 2.0,
                        y - 3.0,
                        esc(&fmt(v))
                    );
                }
                None => {
                    let _ = writeln!(
                        svg,
                        r#"<rect x="{x:.1}" y="{top:.1}" width="{:.1}" height="{height:.1}" fill="url(#hatch)" stroke="{}" stroke-width="1"><title>{}</title></rect>"#,
                        bw - 3.0,
                        b.color,
                        esc(&b.note)
                    );
                    let _ = writeln!(
                        svg,
                        r#"<text x="{:.1}" y="{:.1}" class="dnf" text-anchor="middle" transform="rotate(-90 {:.1} {:.1})">{}</text>"#,
                        x + (bw - 3.0) / 2.0 + 4.0,
                        top + height / 2.0,
                        x + (bw - 3.0) / 2.0 + 4.0,
                        top + height / 2.0,
                        esc(&b.note)
                    );
                }
            }
        }
        let _ = writeln!(
            svg,
            r#"<text x="{:.1}" y="{:.1}" class="group" text-anchor="middle">{}</text>"#,
            gx + gw / 2.0,
            top + height + 18.0,
            esc(label)
        );
    }
    top + height + 36.0
}

fn write_chart(ctx: &Ctx, res: &Results, plan: &[(&str, u64, Vec<&Contender>)]) -> String {
    let lat = 20;
    let cases: Vec<&(&str, u64, Vec<&Contender>)> =
        plan.iter().filter(|(_, l, _)| *l == lat).collect();
    let group = |f: &dyn Fn(&Cell) -> (Option<f64>, String)| -> Vec<(String, Vec<Bar>)> {
        cases
            .iter()
            .map(|(sc, _, cs)| {
                let bars = compared()
                    .map(|c| {
                        let not_run = || Bar {
                            color: c.color,
                            value: None,
                            note: "not run".into(),
                            incomplete: false,
                        };
                        if !cs.iter().any(|x| x.id == c.id) {
                            return not_run();
                        }
                        match res.cell(sc, lat, c.id) {
                            Some(cell) => {
                                let (value, note) = f(&cell);
                                let incomplete =
                                    cell.median(ttf, true).is_none_or(|t| !t.is_finite());
                                Bar {
                                    color: c.color,
                                    value,
                                    note: format!("{} {}", c.label, note),
                                    incomplete,
                                }
                            }
                            None => not_run(),
                        }
                    })
                    .collect();
                let n = match *sc {
                    "stream" => format!("stream ({} writes)", ctx.sizes.stream_writes),
                    "initial" => format!(
                        "initial ({} keys)",
                        1 + ctx.sizes.initial_messages + ctx.sizes.initial_parts
                    ),
                    "many" => format!("many ({}×{})", ctx.sizes.many_sessions, ctx.sizes.many_keys),
                    "burst" => format!("burst ({} keys)", ctx.sizes.burst_keys),
                    "faults" => format!("faults ({} keys)", ctx.sizes.faults_keys),
                    s => s.to_string(),
                };
                (n, bars)
            })
            .collect()
    };
    let time = group(&|cell| {
        let t = cell.median(ttf, true).filter(|t| t.is_finite());
        let finals = cell
            .median(|r| Some(r.keys_final as f64), false)
            .unwrap_or(0.0);
        match t {
            Some(t) => (Some(t), format!("{} ms", fmt_num(t))),
            None => (
                None,
                format!(
                    "DNF: {} of {} final",
                    fmt_count(finals),
                    cell.runs[0].keys_expected
                ),
            ),
        }
    });
    let requests = group(&|cell| {
        let v = cell.median(reqs, false);
        (v, format!("{} requests", opt(v, fmt_count)))
    });
    let cpu = group(&|cell| {
        let v = cell.median(|r| r.host_cpu_us(), false);
        (v, format!("{} µs", opt(v, fmt_num)))
    });
    let mut body = String::new();
    let mut y = 56.0;
    y = panel(
        &mut body,
        y,
        "Time until the service holds every final content, ms (log scale)",
        &time,
        fmt_short,
    );
    y = panel(
        &mut body,
        y,
        "/share_sync requests sent (log scale)",
        &requests,
        |x| {
            if x >= 10_000.0 {
                fmt_short(x)
            } else {
                fmt_count(x)
            }
        },
    );
    y = panel(
        &mut body,
        y,
        "Host thread CPU per write, µs (log scale; the JS thread in Bun/Node, the writer threads in C)",
        &cpu,
        fmt_num,
    );
    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="960" height="{:.0}" viewBox="0 0 960 {:.0}" font-family="Helvetica, Arial, sans-serif">"##,
        y + 10.0,
        y + 10.0
    );
    let _ = writeln!(
        svg,
        r##"<defs><pattern id="hatch" width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(45)"><line x1="0" y1="0" x2="0" y2="6" stroke="#999" stroke-width="2"/></pattern></defs>
<style>.title{{font-size:13px;font-weight:bold;fill:#222}}.axis{{font-size:10px;fill:#555}}.val{{font-size:9px;fill:#333}}.group{{font-size:12px;fill:#222}}.grid{{stroke:#ddd;stroke-width:1}}.dnf{{font-size:10px;fill:#444}}.legend{{font-size:12px;fill:#222}}</style>
<rect width="100%" height="100%" fill="white"/>"##
    );
    let _ = writeln!(
        svg,
        r#"<text x="70" y="18" class="title">opencode-share vs the original Share module — service latency 20 ms, medians</text>"#
    );
    let _ = writeln!(
        svg,
        r#"<text x="70" y="56" class="axis">hatched: some final content never arrived (the original stops sending at the first connection reset)</text>"#
    );
    let mut x = 70.0;
    for c in compared() {
        let _ = writeln!(
            svg,
            r#"<rect x="{x}" y="26" width="12" height="12" fill="{}"/><text x="{}" y="36" class="legend">{}</text>"#,
            c.color,
            x + 16.0,
            esc(c.label)
        );
        x += 150.0;
    }
    svg.push_str(&body);
    svg.push_str("</svg>\n");
    svg
}
