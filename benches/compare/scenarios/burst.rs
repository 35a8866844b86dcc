//! burst: distinct keys of one session written once, back to back. Target: drained in at most a
//! quarter of the original's time at 20 ms.

use super::{At, BASE, Scenario};
use crate::contenders::contender;
use crate::report::format::{fmt_num, opt};
use crate::report::stats::{Results, ttf};
use crate::report::targets::{LAT, LIBS, Tally, Target, pairs};
use crate::workload::{Sizes, Texts, Workload, distinct_parts};

pub const SCENARIO: Scenario = Scenario {
    name: "burst",
    title: |z| format!("burst: {} distinct keys written once", z.burst_keys),
    label: |z| format!("burst ({} keys)", z.burst_keys),
    writes,
    baseline_requests: |z| z.burst_keys,
    ..BASE
};

fn writes(w: &mut Workload, texts: &Texts, z: &Sizes, _: At) {
    w.writes = distinct_parts(texts, z.burst_keys);
}

/// Drained at 20 ms in at most a quarter of the original's time, in each runtime.
pub fn target(res: &Results) -> Option<Target> {
    let mut t = Tally::new();
    for (c, l, b) in pairs(res, SCENARIO.name, &LIBS) {
        let r = res.ratio(SCENARIO.name, LAT, c.id, c.versus, ttf);
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
