//! many: many shared sessions, a few keys each, written from several C threads (interleaved from
//! JS). Judged by the host-cost target only (report/targets.rs).

use super::{At, BASE, Scenario};
use crate::workload::{Sizes, Texts, Workload, Write, len_part, ses_id};

pub const SCENARIO: Scenario = Scenario {
    name: "many",
    title: |z| {
        format!(
            "many sessions: {} shared sessions × {} keys, from {} threads (C) or interleaved (JS)",
            z.many_sessions, z.many_keys, z.many_threads
        )
    },
    label: |z| format!("many ({}×{})", z.many_sessions, z.many_keys),
    writes,
    baseline_requests: |z| z.many_sessions * z.many_keys,
    ..BASE
};

/// Key k of every session, then key k + 1; from C, session s is written by thread s mod T.
fn writes(w: &mut Workload, texts: &Texts, z: &Sizes, _: At) {
    w.threads = z.many_threads.max(1);
    w.creates = (0..z.many_sessions).map(ses_id).collect();
    for k in 0..z.many_keys {
        for s in 0..z.many_sessions {
            let seed = s * z.many_keys + k;
            let mut part = Write::part(texts, s, k / 4, k, 0, seed, len_part(seed));
            part.thread = s % w.threads;
            w.writes.push(part);
        }
    }
}
