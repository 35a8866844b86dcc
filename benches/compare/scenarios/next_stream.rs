//! next-stream (the successor protocol): one part rewritten 2 000 times 1 ms apart; the library
//! under v1 runs it too (against the v1 service), for the legacy row and the caller's cost.
//! Targets: at most 25 requests and a median staleness of at most 120 ms; `share_sync`'s cost on
//! the caller's thread unchanged from v1's.

use super::{BASE, Scenario};
use crate::contenders::contender;
use crate::report::format::{fmt_count, fmt_num};
use crate::report::stats::{Results, reqs};
use crate::report::targets::{LIBS, NEXT_LIBS, NextTarget, next_target, ran};
use crate::workload::{Write, len_stream};

/// Rewrites of the part, 1 ms apart.
pub const REWRITES: u64 = 2000;

pub const SCENARIO: Scenario = Scenario {
    name: "next-stream",
    next: true,
    title: |_| format!("next-stream: one part rewritten {REWRITES} times, 1 ms apart"),
    writes: |w, texts, _, _| {
        w.next(texts, false);
        w.interval_us = 1000;
        w.writes = (0..REWRITES)
            .map(|v| Write::next_part(texts, 0, 0, v, 0, len_stream(v)))
            .collect();
    },
    ..BASE
};

pub fn target(res: &Results) -> NextTarget {
    next_target(
        res,
        SCENARIO.name,
        "one part rewritten 2 000 times 1 ms apart: at most 25 requests, median staleness at most 120 ms (ShareNext, research: 3 requests, 571 ms; legacy v1 here 81-88 requests)",
        &|c| {
            let q = c.median(reqs, false)?;
            let s = c.median(
                |r| r.next.clone().unwrap_or_default().staleness_median_ms,
                true,
            )?;
            Some((
                q <= 25.0 && s <= 120.0,
                format!(
                    "{} requests, staleness median {} ms",
                    fmt_count(q),
                    fmt_num(s)
                ),
            ))
        },
    )
}

/// share_sync's cost on the caller's thread unchanged within noise: in call per write under
/// "next" at most 1.25 × the same runtime's library under v1 + 0.5 µs (both run this scenario).
pub fn caller_cost(res: &Results) -> NextTarget {
    let mut figs = Vec::new();
    let mut pass: Option<bool> = None;
    for (next, v1) in NEXT_LIBS.into_iter().zip(LIBS) {
        let (Some(n), Some(o)) = (ran(res, SCENARIO.name, next), ran(res, SCENARIO.name, v1))
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
