//! The targets the report judges (README, "Targets, and how the report judges them"), one
//! function each.

use serde_json::Value;

use crate::contenders::{Contender, Kind, compared, contender};
use crate::format::{fmt_count, fmt_num, opt};
use crate::plan::SCENARIOS;
use crate::run::RunResult;
use crate::stats::{Cell, Results, reqs, ttf};
use crate::workload::Sizes;

pub struct Target {
    pub name: String,
    pub pass: bool,
    pub figures: String,
}

/// The latency the targets are judged at.
const LAT: u64 = 20;
const LIBS: [&str; 3] = ["c-library", "bun-library", "node-library"];

pub fn targets(sizes: &Sizes, res: &Results, soak: Option<&RunResult>) -> Vec<Target> {
    [
        burst(res),
        stream(res),
        host_cost(res),
        faults(res),
        soak.map(|s| memory(sizes, s)),
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// Figures per contender and whether all pass; None when no contender had both cells.
struct Tally {
    figs: Vec<String>,
    pass: bool,
    any: bool,
}

impl Tally {
    fn new() -> Tally {
        Tally {
            figs: Vec::new(),
            pass: true,
            any: false,
        }
    }
    fn add(&mut self, pass: bool, figure: String) {
        self.any = true;
        self.pass &= pass;
        self.figs.push(figure);
    }
    fn target(self, name: String) -> Option<Target> {
        self.any.then(|| Target {
            name,
            pass: self.pass,
            figures: self.figs.join("; "),
        })
    }
}

/// Each library contender of `libs` with its cell of `sc` at 20 ms and its original's, where both ran.
fn pairs<'a>(
    res: &Results<'a>,
    sc: &str,
    libs: &[&str],
) -> Vec<(&'static Contender, Cell<'a>, Cell<'a>)> {
    libs.iter()
        .map(|lib| contender(lib))
        .filter_map(|c| Some((c, res.cell(sc, LAT, c.id)?, res.cell(sc, LAT, c.versus)?)))
        .collect()
}

/// 1. burst at 20 ms: at most a quarter of the baseline's time.
fn burst(res: &Results) -> Option<Target> {
    let mut t = Tally::new();
    for (c, l, b) in pairs(res, "burst", &LIBS) {
        let r = res.ratio("burst", LAT, c.id, c.versus, ttf);
        let figure = format!(
            "{}: {} ms vs {} ms ({}, ratio {})",
            c.label,
            opt(l.median(ttf, true), fmt_num),
            opt(b.median(ttf, true), fmt_num),
            contender(c.versus).label,
            opt(r, |r| format!("{r:.3}"))
        );
        t.add(r.is_some_and(|r| r <= 0.25), figure);
    }
    t.target("burst at 20 ms drained in at most ¼ of the original's time".into())
}

/// 2. stream at 20 ms: no more requests than the baseline; last content within about one round trip.
fn stream(res: &Results) -> Option<Target> {
    let mut t = Tally::new();
    let bound = 2.0 * (LAT as f64 + 5.0);
    for (c, l, b) in pairs(res, "stream", &LIBS) {
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

/// 3. host cost per write no higher than the baseline's, same runtime, every scenario at 20 ms.
fn host_cost(res: &Results) -> Option<Target> {
    let mut t = Tally::new();
    for lib in ["bun-library", "node-library"] {
        for sc in SCENARIOS.into_iter().filter(|s| *s != "faults") {
            let Some((c, l, b)) = pairs(res, sc, &[lib]).pop() else {
                continue;
            };
            let lm = l.median(|r| r.host_cpu_us(), false);
            let bm = b.median(|r| r.host_cpu_us(), false);
            let ok = matches!((lm, bm), (Some(x), Some(y)) if x <= y);
            let figure = format!(
                "{} {sc}: {} vs {} µs{}",
                c.label,
                opt(lm, fmt_num),
                opt(bm, fmt_num),
                if ok { "" } else { " **(higher)**" }
            );
            t.add(ok, figure);
        }
    }
    t.target("host cost per write (JS thread CPU, START → drained) no higher than the original's in the same runtime, every scenario at 20 ms (faults excepted: the original stops working there)".into())
}

/// 4. faults: every final content delivered by the library, at every latency.
fn faults(res: &Results) -> Option<Target> {
    let mut t = Tally::new();
    for lat in [0, 20, 100] {
        for c in compared() {
            let Some(cell) = res.cell("faults", lat, c.id) else {
                continue;
            };
            let got: Vec<String> = cell
                .runs
                .iter()
                .map(|r| format!("{}/{}", r.keys_final, r.keys_expected))
                .collect();
            let all = cell.runs.iter().all(|r| r.keys_final == r.keys_expected);
            t.add(
                c.kind != Kind::Library || all,
                format!("{} at {lat} ms: {}", c.label, got.join(", ")),
            );
        }
    }
    t.target(
        "faults: every final content delivered by the library (the original's figure beside it)"
            .into(),
    )
}

/// 5. memory flat across the soak.
fn memory(sizes: &Sizes, s: &RunResult) -> Target {
    let series = soak_series(s);
    let ref_w = sizes.soak_sample * 2;
    let reference = series
        .iter()
        .find(|(x, _)| *x == Some(ref_w))
        .map(|(_, kb)| *kb);
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
    let flat = reference.is_some_and(|r| max_after <= r * 1.10 + 2048.0);
    let mib = |kb: Option<f64>| opt(kb.map(|k| k / 1024.0), |x| format!("{x:.1}"));
    Target {
        name: format!(
            "memory flat across {} writes to {} keys (C; no sample after {} writes more than 10% + 2 MiB above it)",
            fmt_num(sizes.soak_writes as f64),
            fmt_num(sizes.soak_keys as f64),
            fmt_num(ref_w as f64)
        ),
        pass: flat && s.keys_final == s.keys_expected,
        figures: format!(
            "RSS at {} writes {} MiB, highest after it {:.1} MiB, at the last write {} MiB, after the final flush {} MiB; {} of {} keys final",
            fmt_num(ref_w as f64),
            mib(reference),
            max_after / 1024.0,
            mib(last),
            mib(flushed),
            s.keys_final,
            s.keys_expected
        ),
    }
}

/// The soak's RSS samples: (Some(writes) or None for "after the final flush", kB).
pub fn soak_series(s: &RunResult) -> Vec<(Option<u64>, f64)> {
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
