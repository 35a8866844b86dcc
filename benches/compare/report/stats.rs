//! Aggregation: medians over runs, the cells of (scenario, latency, contender), paired ratios.

use crate::run::RunResult;

pub fn median(mut v: Vec<f64>) -> Option<f64> {
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
pub struct Cell<'a> {
    pub runs: Vec<&'a RunResult>,
}

impl<'a> Cell<'a> {
    /// Median of `f` over runs; a run where `f` is None counts as +inf when `inf_missing`.
    pub fn median(&self, f: impl Fn(&RunResult) -> Option<f64>, inf_missing: bool) -> Option<f64> {
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
    pub fn range(&self, f: impl Fn(&RunResult) -> Option<f64>) -> Option<(f64, f64)> {
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

pub struct Results<'a> {
    pub all: &'a [RunResult],
}

impl<'a> Results<'a> {
    pub fn cell(&self, scenario: &str, latency: u64, contender: &str) -> Option<Cell<'a>> {
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
    pub fn ratio(
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

pub fn ttf(r: &RunResult) -> Option<f64> {
    r.time_to_final_ms
}
pub fn reqs(r: &RunResult) -> Option<f64> {
    Some(r.requests as f64)
}
pub fn bytes(r: &RunResult) -> Option<f64> {
    Some(r.wire_bytes as f64)
}
