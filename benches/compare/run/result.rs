//! A run's record (results.json keeps every one), and its progress line.

use serde::Serialize;
use serde_json::Value;

use crate::contenders::Contender;

/// What a run measured.
#[derive(Clone, Serialize)]
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
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<NextFigures>,
}

/// What the next-* scenarios measure beyond the legacy figures (see run/next.rs).
#[derive(Clone, Default, Serialize)]
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
