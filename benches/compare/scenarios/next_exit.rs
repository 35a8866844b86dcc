//! next-exit (the successor protocol): new parts written, then the library shut down (ShareNext's
//! process exits) at once. Target: all delivered, every run (ShareNext: none).

use super::{BASE, NEXT_PARTS, Scenario, next_parts};
use crate::report::stats::Results;
use crate::report::targets::{NextTarget, every_run_final, next_target};

pub const SCENARIO: Scenario = Scenario {
    name: "next-exit",
    next: true,
    title: |_| {
        format!(
            "next-exit: {NEXT_PARTS} new parts, then shutdown (the library) or exit (ShareNext) at once"
        )
    },
    writes: |w, texts, _, _| next_parts(w, texts, true),
    ..BASE
};

pub fn target(res: &Results) -> NextTarget {
    next_target(
        res,
        SCENARIO.name,
        "shutdown right after 200 writes: all 200 delivered, every run (ShareNext, research: 0)",
        &every_run_final,
    )
}
