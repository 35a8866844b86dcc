//! Which cases run (scenario × latency × contenders), which are skipped and why, and the runs.

use std::time::Duration;

use crate::contenders::{CONTENDERS, Contender, Kind, contender};
use crate::opts::Opts;
use crate::run::{Ctx, RunResult, progress, run_one};
use crate::scenarios::{self, Scenario};
use crate::workload::Sizes;

/// The successor protocol's scenarios run at this latency unless `--latencies` says otherwise
/// (their targets and ShareNext's measured figures are stated at 20 ms).
const NEXT_LATENCY: u64 = 20;

/// One case: a scenario at a latency, with the contenders that run it.
pub type Case<'a> = (&'a str, u64, Vec<&'static Contender>);

/// The cases the options ask for, and the skipped ones with their reason.
pub fn plan(opts: &Opts, sizes: &Sizes, cap: Duration) -> (Vec<Case<'static>>, Vec<String>) {
    let latencies = opts.latencies.clone().unwrap_or(if opts.quick {
        vec![0, 20]
    } else {
        vec![0, 20, 100]
    });
    let asked = |list: &Option<Vec<String>>, name: &str| {
        list.as_ref().is_none_or(|o| o.iter().any(|x| x == name))
    };
    let contenders: Vec<&'static Contender> = CONTENDERS
        .iter()
        .filter(|c| asked(&opts.contenders, c.id))
        .collect();
    let mut skipped = Vec::new();
    let mut cases = Vec::new();
    for &lat in &latencies {
        for sc in scenarios::LEGACY
            .into_iter()
            .filter(|s| asked(&opts.only, s.name))
        {
            if let Some(case) = case(sc, lat, &contenders, sizes, cap, &mut skipped) {
                cases.push(case);
            }
        }
    }
    let next_latencies = opts.latencies.clone().unwrap_or(vec![NEXT_LATENCY]);
    for &lat in &next_latencies {
        for sc in scenarios::NEXT
            .into_iter()
            .filter(|s| asked(&opts.only, s.name))
        {
            let cs: Vec<&'static Contender> = contenders
                .iter()
                .copied()
                .filter(|c| next_runs(sc.name, c))
                .collect();
            if !cs.is_empty() {
                cases.push((sc.name, lat, cs));
            }
        }
    }
    (cases, skipped)
}

/// Who runs a next-* scenario: ShareNext and the library under "next"; in next-stream also the
/// library under v1 (against the v1 service): the legacy comparison row, and the caller-cost one.
fn next_runs(sc: &str, c: &Contender) -> bool {
    match c.kind {
        Kind::ShareNext => true,
        Kind::Library if c.protocol == "next" => true,
        Kind::Library => sc == "next-stream",
        _ => false,
    }
}

/// A scenario at a latency: the contenders that run it (None: skipped for every contender).
fn case(
    scenario: &'static Scenario,
    lat: u64,
    contenders: &[&'static Contender],
    sizes: &Sizes,
    cap: Duration,
    skipped: &mut Vec<String>,
) -> Option<Case<'static>> {
    let sc = scenario.name;
    let baseline_requests = (scenario.baseline_requests)(sizes);
    let need = baseline_requests as f64 * (lat as f64 + 1.0) / 1000.0;
    let baseline_fits = need <= cap.as_secs_f64() * 0.9;
    if lat >= 100 && !baseline_fits {
        skipped.push(format!(
            "{sc} at {lat} ms: skipped for every contender — the original sends one request at a time, so it would need about {} requests × {lat} ms ≈ {:.0} s per run, over the {} s cap",
            baseline_requests, need, cap.as_secs()
        ));
        return None;
    }
    let mut cs = Vec::new();
    for c in contenders.iter().filter(|c| c.protocol == "v1") {
        // the drivers alone only where their pacing matters: stream, at 20 ms
        if c.kind == Kind::Null && (sc != "stream" || lat != 20) {
            continue;
        }
        if c.kind == Kind::Baseline && !baseline_fits {
            skipped.push(format!(
                "{sc} at {lat} ms, {}: skipped — it would need about {need:.0} s per run (one request at a time), over the {} s cap",
                c.label, cap.as_secs()
            ));
            continue;
        }
        cs.push(*c);
    }
    Some((sc, lat, cs))
}

/// Every case `runs` times, the contenders' order rotated from run to run.
pub fn run_cases(ctx: &Ctx, cases: &[Case], runs: usize) -> Vec<RunResult> {
    let mut results = Vec::new();
    for (sc, lat, cs) in cases {
        for run in 0..runs {
            let n = cs.len();
            for i in 0..n {
                let c = cs[(i + run) % n];
                let r = run_one(ctx, sc, *lat, c, run);
                progress(sc, *lat, c.id, run, &r);
                results.push(r);
            }
        }
    }
    results
}

/// The memory soak (the library from C), when asked for and the C library is among the contenders.
pub fn run_soak(ctx: &Ctx, opts: &Opts) -> Option<RunResult> {
    let with_c = opts
        .contenders
        .as_ref()
        .is_none_or(|o| o.iter().any(|x| x == "c-library"));
    if !opts.soak || !with_c {
        return None;
    }
    let r = run_one(ctx, "soak", 0, contender("c-library"), 0);
    progress("soak", 0, "c-library", 0, &r);
    Some(r)
}
