//! next-burst (the successor protocol): new parts written at once. Target: the final state within
//! 0.1 s in at most 5 requests (ShareNext: about 1 s, one request).

use super::{BASE, NEXT_PARTS, Scenario, next_parts};
use crate::report::format::{fmt_count, fmt_num};
use crate::report::stats::Results;
use crate::report::stats::{reqs, ttf};
use crate::report::targets::{NextTarget, next_target};

pub const SCENARIO: Scenario = Scenario {
    name: "next-burst",
    next: true,
    title: |_| format!("next-burst: {NEXT_PARTS} new parts written at once"),
    writes: |w, texts, _, _| next_parts(w, texts, false),
    ..BASE
};

pub fn target(res: &Results) -> NextTarget {
    next_target(
        res,
        SCENARIO.name,
        "200 new parts: final state within 0.1 s in at most 5 requests (ShareNext, research: 1.02 s, 1 request)",
        &|c| {
            let t = c.median(ttf, true)?;
            let q = c.median(reqs, false)?;
            Some((
                t <= 100.0 && q <= 5.0,
                format!("{} ms, {} requests", fmt_num(t), fmt_count(q)),
            ))
        },
    )
}
