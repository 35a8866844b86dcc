//! faults: distinct keys written once while the service resets connections and answers 500 to a
//! share of syncs (seeded per run). Target: every final content delivered by the library, at every
//! latency; the report lists how each contender's run 1 went.

use std::fmt::Write as _;

use serde_json::Value;

use super::{At, BASE, Faults, Scenario};
use crate::contenders::{Contender, Kind, compared};
use crate::report::stats::Results;
use crate::report::targets::{Tally, Target};
use crate::workload::{Sizes, Texts, Workload, distinct_parts};

pub const SCENARIO: Scenario = Scenario {
    name: "faults",
    title: |z| {
        format!(
            "faults: {} distinct keys written once; the service resets {}% and answers 500 to {}% of syncs",
            z.faults_keys, z.faults_reset_pct, z.faults_500_pct
        )
    },
    label: |z| format!("faults ({} keys)", z.faults_keys),
    writes,
    faults: |z, run| {
        Some(Faults {
            first_syncs_500: 0,
            reset_pct: z.faults_reset_pct,
            status_500_pct: z.faults_500_pct,
            seed: 0xfa17 + run as u64,
        })
    },
    // baseline_requests: none (the original stops at the first reset)
    ..BASE
};

fn writes(w: &mut Workload, texts: &Texts, z: &Sizes, _: At) {
    w.writes = distinct_parts(texts, z.faults_keys);
}

/// Every final content delivered by the library, at every latency.
pub fn target(res: &Results) -> Option<Target> {
    let mut t = Tally::new();
    for lat in [0, 20, 100] {
        for c in compared() {
            let Some(cell) = res.cell(SCENARIO.name, lat, c.id) else {
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

/// Run 1 of each contender under faults: answers, resets, connections, how it drained.
pub fn details(md: &mut String, res: &Results, lat: u64, cs: &[&Contender]) {
    let _ = writeln!(md);
    for c in cs {
        let Some(cell) = res.cell(SCENARIO.name, lat, c.id) else {
            continue;
        };
        let r = cell.runs[0];
        let drain = r
            .driver
            .as_ref()
            .and_then(|d| d.get("drain"))
            .and_then(Value::as_str);
        let _ = writeln!(
            md,
            "- {} (run 1): {} requests: {} answered 200, {} answered 500, {} reset; {} connections; {}",
            c.label,
            r.requests,
            r.answered_200,
            r.answered_500,
            r.reset_or_unanswered,
            r.connections,
            drain.unwrap_or(&r.outcome)
        );
    }
}
