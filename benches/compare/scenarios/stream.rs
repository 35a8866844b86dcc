//! stream: one part rewritten many times 1 ms apart, its text growing. Target: no more requests
//! than the original at 20 ms, and the last content within about one round trip of the last
//! write. Its own figures: the turnaround between requests, the last write to its arrival.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::time::Instant;

use super::{At, BASE, Scenario};
use crate::contenders::contender;
use crate::report::format::{fmt_count, fmt_num, opt};
use crate::report::stats::{Cell, Results, median, reqs};
use crate::report::targets::{LAT, LIBS, Tally, Target, pairs};
use crate::run::{Finals, RunResult, ms_since};
use crate::services::legacy as service;
use crate::workload::{Sizes, Texts, Workload, Write, len_stream};

pub const SCENARIO: Scenario = Scenario {
    name: "stream",
    title: |z| {
        format!(
            "stream: one part rewritten {} times (+⅓ round trip of writes per run index), {} ms apart, its text growing",
            z.stream_writes,
            z.stream_interval_us as f64 / 1000.0
        )
    },
    label: |z| format!("stream ({} writes)", z.stream_writes),
    writes,
    // baseline_requests: none (the original is paced by the writes)
    ..BASE
};

/// The rewrites. A run gets a third of a round trip more writes (1 ms apart) per run index,
/// modulo 3, so that its last write falls at different points of the request in flight from run
/// to run: otherwise, with a steady round trip, every run would end at the same phase and the time
/// from the last write to its arrival would say more about that phase than about the client.
fn writes(w: &mut Workload, texts: &Texts, z: &Sizes, at: At) {
    let third_ms = (at.latency + 1).div_ceil(3);
    let extra = ((at.run as u64 % 3) * third_ms * 1000)
        .checked_div(z.stream_interval_us)
        .unwrap_or(0);
    let n = z.stream_writes + extra;
    w.interval_us = z.stream_interval_us;
    w.writes = (0..n)
        .map(|v| Write::part(texts, 0, 0, 0, v, 0, len_stream(v)))
        .collect();
}

/// At 20 ms: no more requests than the original; the last content within about one round trip.
pub fn target(res: &Results) -> Option<Target> {
    let mut t = Tally::new();
    let bound = 2.0 * (LAT as f64 + 5.0);
    for (c, l, b) in pairs(res, SCENARIO.name, &LIBS) {
        let lr = l.median(reqs, false).unwrap_or(f64::INFINITY);
        let br = b.median(reqs, false).unwrap_or(0.0);
        let lag = l.median(|r| r.lag_ms, true);
        let figure = format!(
            "{}: {} requests vs {} ({}); last write → final content {} ms, of which {} ms waiting for the request in flight (the original: {} ms, {} ms); turnaround between requests {} ms (the original: {} ms)",
            c.label,
            fmt_count(lr),
            fmt_count(br),
            contender(c.versus).label,
            opt(lag, fmt_num),
            opt(l.median(|r| r.final_wait_ms, true), fmt_num),
            opt(b.median(|r| r.lag_ms, true), fmt_num),
            opt(b.median(|r| r.final_wait_ms, true), fmt_num),
            opt(l.median(|r| r.turnaround_ms, false), fmt_num),
            opt(b.median(|r| r.turnaround_ms, false), fmt_num)
        );
        t.add(lr <= br && lag.is_some_and(|x| x <= bound), figure);
    }
    t.target(format!(
        "stream at 20 ms: no more requests than the original; the last content ≤ {bound:.0} ms after the last write, i.e. it leaves with the first request after the one in flight (≤ 1 round trip, or the library's 25 ms pace, to end it; then 1 round trip)"
    ))
}

/// The stream's own figures: turnaround between requests, last write to final, and its wait.
pub fn figures(
    result: &mut RunResult,
    syncs: &[&service::Recorded],
    finals: &Finals,
    arrivals: &HashMap<&str, (Instant, Instant)>,
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

/// The report table's extra columns for the stream: their heads and rule.
pub const COLUMNS: (&str, &str) = (
    " last write → final, ms | turnaround, ms |",
    " ---: | ---: |",
);

/// A row's extra cells (a driver-alone row has none).
pub fn cells(md: &mut String, cell: Option<&Cell>) {
    let Some(cell) = cell else {
        let _ = write!(md, " — | — |");
        return;
    };
    let _ = write!(
        md,
        " {} (waiting {}) | {} |",
        opt(cell.median(|r| r.lag_ms, true), fmt_num),
        opt(cell.median(|r| r.final_wait_ms, true), fmt_num),
        opt(cell.median(|r| r.turnaround_ms, false), fmt_num)
    );
}
