//! initial: the share is created after `START` (the create is part of the work), then a session's
//! info and each message followed by its parts, each write awaited from JS as `Session.share()`
//! awaited `Share.sync`. Judged by the host-cost target only (report/targets.rs).

use super::{At, BASE, Scenario};
use crate::workload::{Sizes, Texts, Workload, Write, len_msg, len_part, msg_id, ses_id};

pub const SCENARIO: Scenario = Scenario {
    name: "initial",
    title: |z| {
        format!(
            "initial share: create, then a {}-message session with {} parts (and its info) synced",
            z.initial_messages, z.initial_parts
        )
    },
    label: |z| {
        format!(
            "initial ({} keys)",
            1 + z.initial_messages + z.initial_parts
        )
    },
    writes,
    baseline_requests: |z| 1 + z.initial_messages + z.initial_parts,
    ..BASE
};

/// The create, then the session's info, and each message followed by its parts.
fn writes(w: &mut Workload, texts: &Texts, z: &Sizes, _: At) {
    let sid = ses_id(0);
    w.timed_creates = std::mem::take(&mut w.creates);
    w.await_each = true;
    let info = Write::other(texts, format!("session/info/{sid}"), &sid, "info", 0, 200);
    w.writes.push(info);
    let (m_n, p_n) = (z.initial_messages, z.initial_parts);
    let mut p = 0;
    for m in 0..m_n {
        let (mid, key) = (msg_id(m), format!("session/message/{sid}/{}", msg_id(m)));
        w.writes
            .push(Write::other(texts, key, &mid, "message", m, len_msg(m)));
        while p < p_n && p * m_n / p_n == m {
            w.writes
                .push(Write::part(texts, 0, m, p, 0, p, len_part(p)));
            p += 1;
        }
    }
}
