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

// ------------------------------------------------------------------------------------------
// The successor protocol (issue 10, item 6): the library under "next" against ShareNext's own
// client, at 20 ms. A target is "not measured" while no library-next contender ran (today's
// library refuses `"protocol": "next"`: its runs are "skipped").
// ------------------------------------------------------------------------------------------

/// A next target: None when not measured.
pub struct NextTarget {
    pub name: String,
    pub pass: Option<bool>,
    pub figures: String,
}

const NEXT_LIBS: [&str; 3] = ["c-library-next", "bun-library-next", "node-library-next"];
const SHARENEXTS: [&str; 2] = ["bun-sharenext", "node-sharenext"];

pub fn next_targets(res: &Results) -> Vec<NextTarget> {
    let nf = |r: &RunResult| r.next.clone().unwrap_or_default();
    vec![
        next_target(
            res,
            "next-burst",
            "200 new parts: final state within 0.1 s in at most 5 requests (ShareNext, research: 1.02 s, 1 request)",
            &|c| {
                let t = c.median(ttf, true)?;
                let q = c.median(reqs, false)?;
                Some((
                    t <= 100.0 && q <= 5.0,
                    format!("{} ms, {} requests", fmt_num(t), fmt_count(q)),
                ))
            },
        ),
        next_target(
            res,
            "next-stream",
            "one part rewritten 2 000 times 1 ms apart: at most 25 requests, median staleness at most 120 ms (ShareNext, research: 3 requests, 571 ms; legacy v1 here 81-88 requests)",
            &|c| {
                let q = c.median(reqs, false)?;
                let s = c.median(|r| nf(r).staleness_median_ms, true)?;
                Some((
                    q <= 25.0 && s <= 120.0,
                    format!(
                        "{} requests, staleness median {} ms",
                        fmt_count(q),
                        fmt_num(s)
                    ),
                ))
            },
        ),
        next_target(
            res,
            "next-faults",
            "a 500 on the first sync, then 20% 500s + 10% resets: every final content, every run (ShareNext loses whole batches)",
            &every_run_final,
        ),
        next_target(
            res,
            "next-exit",
            "shutdown right after 200 writes: all 200 delivered, every run (ShareNext, research: 0)",
            &every_run_final,
        ),
        overlap_target(res),
        caller_cost(res),
    ]
}

/// Every run held every final content: (verdict, "got/expected" per run).
fn every_run_final(c: &Cell) -> Option<(bool, String)> {
    let got: Vec<String> = c
        .runs
        .iter()
        .map(|r| format!("{}/{}", r.keys_final, r.keys_expected))
        .collect();
    let all = c
        .runs
        .iter()
        .all(|r| r.keys_final == r.keys_expected && r.keys_expected > 0);
    Some((all, got.join(", ")))
}

/// The library-next contenders' cells of `sc` at 20 ms that really ran (not skipped).
fn ran<'a>(res: &Results<'a>, sc: &str, id: &str) -> Option<Cell<'a>> {
    let cell = res.cell(sc, LAT, id)?;
    let runs: Vec<&RunResult> = cell
        .runs
        .into_iter()
        .filter(|r| !r.outcome.starts_with("skipped"))
        .collect();
    (!runs.is_empty()).then_some(Cell { runs })
}

fn next_target(
    res: &Results,
    sc: &str,
    name: &str,
    judge: &dyn Fn(&Cell) -> Option<(bool, String)>,
) -> NextTarget {
    let mut figs = Vec::new();
    let mut pass: Option<bool> = None;
    for id in NEXT_LIBS {
        match ran(res, sc, id).and_then(|c| judge(&c)) {
            Some((ok, fig)) => {
                pass = Some(pass.unwrap_or(true) && ok);
                figs.push(format!("{}: {fig}", contender(id).label));
            }
            None if res.cell(sc, LAT, id).is_some() => {
                figs.push(format!("{}: skipped", contender(id).label))
            }
            None => {}
        }
    }
    for id in SHARENEXTS.into_iter().chain(["c-library"]) {
        if let Some((_, fig)) = ran(res, sc, id).and_then(|c| judge(&c)) {
            figs.push(format!("{}: {fig}", contender(id).label));
        }
    }
    NextTarget {
        name: name.to_string(),
        pass,
        figures: figs.join("; "),
    }
}

/// Never two syncs of one share in flight: 0 overlaps in every run of every next scenario.
fn overlap_target(res: &Results) -> NextTarget {
    let mut figs = Vec::new();
    let mut pass: Option<bool> = None;
    for id in NEXT_LIBS.into_iter().chain(SHARENEXTS) {
        let mut total = 0;
        let mut any = false;
        for sc in crate::workload::NEXT_SCENARIOS {
            for r in ran(res, sc, id).map(|c| c.runs).unwrap_or_default() {
                any = true;
                total += r.next.as_ref().and_then(|n| n.overlaps).unwrap_or(0);
            }
        }
        if any {
            if contender(id).kind == Kind::Library {
                pass = Some(pass.unwrap_or(true) && total == 0);
            }
            figs.push(format!("{}: {total}", contender(id).label));
        }
    }
    NextTarget {
        name:
            "never two syncs of one share in flight: 0 overlaps, every run of every next scenario"
                .into(),
        pass,
        figures: figs.join("; "),
    }
}

/// share_sync's cost on the caller's thread unchanged within noise: in call per write under
/// "next" at most 1.25 × the same runtime's library under v1 + 0.5 µs, in next-stream (both run it).
fn caller_cost(res: &Results) -> NextTarget {
    let mut figs = Vec::new();
    let mut pass: Option<bool> = None;
    for (next, v1) in NEXT_LIBS.into_iter().zip(LIBS) {
        let (Some(n), Some(o)) = (ran(res, "next-stream", next), ran(res, "next-stream", v1))
        else {
            continue;
        };
        let (Some(a), Some(b)) = (
            n.median(|r| r.in_call_us(), false),
            o.median(|r| r.in_call_us(), false),
        ) else {
            continue;
        };
        pass = Some(pass.unwrap_or(true) && a <= 1.25 * b + 0.5);
        figs.push(format!(
            "{}: {} µs vs {} µs under v1",
            contender(next).label,
            fmt_num(a),
            fmt_num(b)
        ));
    }
    NextTarget {
        name: "share_sync's cost on the caller's thread unchanged within noise: in call per write in next-stream ≤ 1.25 × v1's + 0.5 µs, same runtime".into(),
        pass,
        figures: figs.join("; "),
    }
}
