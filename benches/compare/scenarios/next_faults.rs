//! next-faults (the successor protocol): new parts written at once; the service answers 500 to the
//! first sync (the research's case), then resets and answers 500 to a share of syncs (seeded per
//! run). Target: every final content, every run (ShareNext loses the whole batch).

use super::{BASE, Faults, NEXT_PARTS, Scenario, next_parts};
use crate::report::stats::Results;
use crate::report::targets::{NextTarget, every_run_final, next_target};

/// Resets and 500s, % of syncs.
const RESET_PCT: u32 = 10;
const STATUS_500_PCT: u32 = 20;

pub const SCENARIO: Scenario = Scenario {
    name: "next-faults",
    next: true,
    title: |_| {
        format!(
            "next-faults: {NEXT_PARTS} new parts; the service answers 500 to the first sync, then resets {RESET_PCT}% and answers 500 to {STATUS_500_PCT}% of syncs"
        )
    },
    writes: |w, texts, _, _| next_parts(w, texts, false),
    faults: |_, run| {
        Some(Faults {
            first_syncs_500: 1,
            reset_pct: RESET_PCT,
            status_500_pct: STATUS_500_PCT,
            seed: 0x4e78 + run as u64,
        })
    },
    ..BASE
};

pub fn target(res: &Results) -> NextTarget {
    next_target(
        res,
        SCENARIO.name,
        "a 500 on the first sync, then 20% 500s + 10% resets: every final content, every run (ShareNext loses whole batches)",
        &every_run_final,
    )
}
