//! One run: a fresh service, the driver of one contender replaying one workload, and the
//! figures read from the service afterwards (what only the driver can measure comes in its
//! RESULT line).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs;
use std::io::{BufRead, BufReader, Write as _};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::contenders::{Contender, Kind, Paths};
use crate::service::{self, ShareService};
use crate::stats::median;
use crate::workload::{Sizes, Texts, Workload};

/// What a run needs besides its case.
pub struct Ctx {
    pub paths: Paths,
    pub sizes: Sizes,
    pub texts: Texts,
    pub cap: Duration,
}

#[derive(Clone, Serialize, Deserialize)]
pub struct RunResult {
    pub scenario: String,
    pub latency_ms: u64,
    pub contender: String,
    pub run: usize,
    /// "ok", or why not: "dnf: ..." (the run's time was up), "failed: ..."
    pub outcome: String,
    /// START to the moment the service held the final content of the last key (all keys delivered)
    pub time_to_final_ms: Option<f64>,
    /// START to the last final content that did arrive (also when some never did)
    pub last_final_ms: Option<f64>,
    pub keys_final: usize,
    pub keys_expected: usize,
    pub requests: usize,
    pub wire_bytes: u64,
    pub body_bytes: u64,
    pub answered_200: usize,
    pub answered_500: usize,
    pub reset_or_unanswered: usize,
    pub connections: usize,
    /// stream: the last write (driver's clock from START) to the final content's arrival
    pub lag_ms: Option<f64>,
    /// stream: the last write to the moment the final content's request reached the service
    pub final_wait_ms: Option<f64>,
    /// stream: median time from the service's answer to one request to the arrival of the next
    /// (the client's turnaround; with one request in flight it sets how many round trips fit)
    pub turnaround_ms: Option<f64>,
    pub wall_s: f64,
    pub driver: Option<Value>,
    /// next-*: the successor protocol's figures (absent from the legacy scenarios' records)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<NextFigures>,
}

/// What the next-* scenarios measure beyond the legacy figures (see next_run.rs).
#[derive(Clone, Default, Serialize, Deserialize)]
pub struct NextFigures {
    /// items carried per sync request: mean and max
    pub items_per_request: Option<f64>,
    pub max_items_per_request: Option<f64>,
    /// write → the service first holds that version (or a newer one) of its item: median, max, ms
    pub staleness_median_ms: Option<f64>,
    pub staleness_max_ms: Option<f64>,
    /// writes whose version (or a newer one) the service never held
    pub writes_never_stored: usize,
    /// items not holding their final content at the end
    pub lost_items: usize,
    /// syncs of the measured share that arrived while another of its syncs was being handled
    /// (None: not observable, the v1 protocol has no per-share request)
    pub overlaps: Option<usize>,
}

impl RunResult {
    pub fn new(
        scenario: &str,
        latency: u64,
        c: &Contender,
        run: usize,
        expected: usize,
    ) -> RunResult {
        RunResult {
            scenario: scenario.to_string(),
            latency_ms: latency,
            contender: c.id.to_string(),
            run,
            outcome: "ok".into(),
            time_to_final_ms: None,
            last_final_ms: None,
            keys_final: 0,
            keys_expected: expected,
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
            next: None,
        }
    }

    pub fn drv(&self, field: &str) -> Option<f64> {
        self.driver.as_ref()?.get(field)?.as_f64()
    }
    fn writes(&self) -> Option<f64> {
        self.drv("writes").filter(|w| *w > 0.0)
    }
    /// Host (writing) thread CPU from START to drained, per write, in µs.
    pub fn host_cpu_us(&self) -> Option<f64> {
        Some(self.drv("host_thread_cpu_ns")? / self.writes()? / 1000.0)
    }
    /// Inside the write calls, per write, in µs: thread CPU from C, wall from JS.
    pub fn in_call_us(&self) -> Option<f64> {
        let ns = self
            .drv("cpu_in_sync_ns")
            .or_else(|| self.drv("wall_in_sync_ns"))?;
        Some(ns / self.writes()? / 1000.0)
    }
    pub fn process_cpu_ms(&self) -> Option<f64> {
        Some(self.drv("process_cpu_ns")? / 1e6)
    }
    pub fn peak_rss_mib(&self) -> Option<f64> {
        Some(self.drv("peak_rss_kb")? / 1024.0)
    }
}

/// One progress line on stderr per run.
pub fn progress(scenario: &str, latency: u64, contender: &str, run: usize, r: &RunResult) {
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

/// A key's final content and the session it belongs to.
type Finals = Vec<(String, String, Value)>;

pub fn run_one(ctx: &Ctx, scenario: &str, latency: u64, c: &Contender, run: usize) -> RunResult {
    if crate::workload::is_next(scenario) {
        return crate::next_run::run_next(ctx, scenario, latency, c, run);
    }
    let began = Instant::now();
    // Latency and faults are set once the driver is READY: setup and warm-up run at 0 ms, clean.
    let service = ShareService::start();
    let sizes = ctx.sizes.for_run(scenario, latency, run);
    let workload = Workload::new(scenario, &sizes, &ctx.texts);
    let finals = workload.finals();
    let mut result = RunResult::new(scenario, latency, c, run, finals.len());
    let name = format!("{scenario}-{latency}ms-{}-{run}", c.id);
    let mut driver = match Driver::start(ctx, c, &service.url(), &workload, &name) {
        Ok(d) => d,
        Err(e) => {
            result.outcome = format!("failed: {e}");
            return result;
        }
    };
    let Some(t0) = driver.handshake(|| configure(&service, ctx, scenario, latency, run)) else {
        driver.kill();
        result.outcome = format!(
            "failed: no READY/START from the driver (see {})",
            driver.log.display()
        );
        return result;
    };
    driver.collect(&mut result, t0 + ctx.cap + Duration::from_secs(5), ctx.cap);
    driver.reap(result.driver.is_some());
    let requests = service.requests();
    let syncs: Vec<&service::Recorded> = requests.iter().filter(|r| measured(r)).collect();
    let arrivals = count_requests(&mut result, &syncs, &finals);
    judge_finals(&mut result, &service, &finals, &arrivals, t0, c.kind);
    if scenario == "stream" {
        stream_figures(&mut result, &syncs, &finals, &arrivals, t0);
    }
    result.wall_s = began.elapsed().as_secs_f64();
    result
}

/// The service as the scenario wants it once setup is done: its latency, and faults.
fn configure(service: &ShareService, ctx: &Ctx, scenario: &str, latency: u64, run: usize) {
    service.set_latency(Duration::from_millis(latency));
    if scenario == "faults" {
        let s = &ctx.sizes;
        service.set_random_faults(s.faults_reset_pct, s.faults_500_pct, 0xfa17 + run as u64);
    }
}

/// A request that counts: a sync outside the drivers' warm-up (session ses_warmup..., before START).
pub fn measured(r: &service::Recorded) -> bool {
    r.path == "/share_sync" && !r.body.contains("\"ses_warmup")
}

/// A driver process and the lines it prints, read on a thread with their arrival time.
pub struct Driver {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<(Instant, String)>,
    reader: Option<thread::JoinHandle<()>>,
    pub log: PathBuf,
    /// Set when the driver said `SKIP <why>` instead of READY (its contender cannot run this)
    pub skipped: Option<String>,
}

impl Driver {
    /// Writes the workload file and starts the contender's driver on it.
    pub fn start(
        ctx: &Ctx,
        c: &Contender,
        url: &str,
        workload: &Workload,
        name: &str,
    ) -> Result<Driver, String> {
        let paths = &ctx.paths;
        let _ = fs::create_dir_all(&paths.logs);
        let _ = fs::create_dir_all(&paths.workloads);
        // one file per scenario, rewritten by each run (its contenders' files would be the same)
        let file = paths.workloads.join(format!("{}.tsv", workload.scenario()));
        fs::write(&file, workload.file())
            .map_err(|e| format!("cannot write {}: {e}", file.display()))?;
        let log = paths.logs.join(format!("{name}.log"));
        let mut cmd = paths.command(c);
        cmd.arg("--workload").arg(&file);
        cmd.args([
            "--url",
            url,
            "--timeout-ms",
            &ctx.cap.as_millis().to_string(),
        ]);
        cmd.stdin(Stdio::piped()).stdout(Stdio::piped());
        cmd.stderr(fs::File::create(&log).map_or(Stdio::null(), Stdio::from));
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("cannot start the driver: {e}"))?;
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, lines) = mpsc::channel();
        let reader = thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send((Instant::now(), line)).is_err() {
                    break;
                }
            }
        });
        let stdin = child.stdin.take();
        Ok(Driver {
            child,
            stdin,
            lines,
            reader: Some(reader),
            log,
            skipped: None,
        })
    }

    /// READY: the driver has set up (library started, shares created, warmed up): `configure`
    /// the service, say GO. START: it begins writing; its arrival is t0.
    pub fn handshake(&mut self, configure: impl FnOnce()) -> Option<Instant> {
        let deadline = Instant::now() + Duration::from_secs(120);
        let mut configure = Some(configure);
        let mut said_go = false;
        let mut t0 = None;
        while t0.is_none() {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok((_, line)) if line.trim() == "READY" && !said_go => {
                    if let Some(f) = configure.take() {
                        f();
                    }
                    let stdin = self.stdin.as_mut()?;
                    said_go = stdin.write_all(b"GO\n").and_then(|_| stdin.flush()).is_ok();
                }
                Ok((at, line)) if line.trim() == "START" && said_go => t0 = Some(at),
                Ok((_, line)) if line.starts_with("SKIP ") => {
                    self.skipped = Some(line["SKIP ".len()..].trim().to_string());
                    break;
                }
                Ok(_) => {}
                Err(_) => break,
            }
        }
        self.stdin = None;
        t0
    }

    /// Reads up to the RESULT line, or until `deadline` (the original has no timeout: it may
    /// wait forever), into `result`.
    pub fn collect(&mut self, result: &mut RunResult, deadline: Instant, cap: Duration) {
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok((_, line)) => {
                    if let Some(json) = line.strip_prefix("RESULT ") {
                        result.driver = serde_json::from_str(json).ok();
                        return;
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    result.outcome = format!("dnf: not drained within {} s", cap.as_secs());
                    return;
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    result.outcome = format!(
                        "failed: the driver exited without a result (see {})",
                        self.log.display()
                    );
                    return;
                }
            }
        }
    }

    /// Waits a little for a driver that gave its result to exit; kills it otherwise.
    pub fn reap(&mut self, gave_result: bool) {
        let exit_deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match self.child.try_wait() {
                Ok(Some(_)) => break,
                Ok(None) if Instant::now() < exit_deadline && gave_result => {
                    thread::sleep(Duration::from_millis(10))
                }
                _ => return self.kill(),
            }
        }
        self.join();
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.join();
    }

    fn join(&mut self) {
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
    }
}

/// When a key's final content first arrived (received) and was stored (finished).
type Arrivals<'a> = HashMap<&'a str, (Instant, Instant)>;

/// Counts the syncs, their bytes and answers; notes each key's first 200 carrying its final content.
fn count_requests<'a>(
    result: &mut RunResult,
    syncs: &[&service::Recorded],
    finals: &'a Finals,
) -> Arrivals<'a> {
    let expected: HashMap<&str, &Value> = finals.iter().map(|(_, k, v)| (k.as_str(), v)).collect();
    let mut arrivals: Arrivals = HashMap::new();
    let mut conns = HashSet::new();
    for r in syncs {
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
        let Some(obj) = r
            .json
            .as_ref()
            .and_then(Value::as_object)
            .filter(|_| r.status == 200)
        else {
            continue;
        };
        let key = obj.get("key").and_then(Value::as_str).unwrap_or_default();
        let Some((key, want)) = expected.get_key_value(key) else {
            continue;
        };
        if obj.get("content") == Some(*want) {
            arrivals.entry(key).or_insert((r.received, r.finished));
        }
    }
    result.connections = conns.len();
    arrivals
}

pub fn wire_len(r: &service::Recorded) -> u64 {
    // request line + headers as received + blank line + body
    let line = "POST ".len() + r.path.len() + " HTTP/1.1\r\n".len();
    let headers: usize = r
        .headers
        .iter()
        .map(|(n, v)| n.len() + 2 + v.len() + 2)
        .sum();
    (line + headers + 2 + r.body.len()) as u64
}

/// Which keys the service holds with their final content at the end, and when the last arrived.
fn judge_finals(
    result: &mut RunResult,
    service: &ShareService,
    finals: &Finals,
    arrivals: &Arrivals,
    t0: Instant,
    kind: Kind,
) {
    let mut data: BTreeMap<&str, BTreeMap<String, Value>> = BTreeMap::new();
    for (sid, _, _) in finals {
        data.entry(sid)
            .or_insert_with(|| service.data(sid).unwrap_or_default());
    }
    let mut last: Option<Instant> = None;
    for (sid, key, want) in finals {
        if data.get(sid.as_str()).and_then(|d| d.get(key)) == Some(want) {
            result.keys_final += 1;
            if let Some((_, at)) = arrivals.get(key.as_str()) {
                last = Some(last.map_or(*at, |l| l.max(*at)));
            }
        }
    }
    result.last_final_ms = last.map(|at| ms_since(t0, at));
    if kind == Kind::Null {
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
}

pub fn ms_since(t0: Instant, at: Instant) -> f64 {
    at.saturating_duration_since(t0).as_secs_f64() * 1000.0
}

/// The stream's own figures: turnaround between requests, last write to final, and its wait.
fn stream_figures(
    result: &mut RunResult,
    syncs: &[&service::Recorded],
    finals: &Finals,
    arrivals: &Arrivals,
    t0: Instant,
) {
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
        result.final_wait_ms = arrivals.get(key).map(|(at, _)| ms_since(t0, *at) - lw);
    }
}
