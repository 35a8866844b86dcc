//! soak: the library from C writing round-robin over many keys, a new version each pass, at 0 ms,
//! its resident memory sampled. Target: memory flat; the report's own section.

use std::fmt::Write as _;

use serde_json::Value;

use super::{At, BASE, Scenario};
use crate::report::format::{fmt_bytes, fmt_num, opt};
use crate::report::targets::Target;
use crate::run::RunResult;
use crate::workload::{Sizes, Texts, Workload, Write, len_soak};

pub const SCENARIO: Scenario = Scenario {
    name: "soak",
    title: |_| "soak".into(),
    writes,
    ..BASE
};

/// Round-robin over the keys, a new version each pass.
fn writes(w: &mut Workload, texts: &Texts, z: &Sizes, _: At) {
    w.total = z.soak_writes;
    w.sample_every = z.soak_sample;
    w.writes = (0..z.soak_keys)
        .map(|k| Write::part(texts, 0, k / 4, k, 0, k, len_soak(k)))
        .collect();
}

/// Memory flat across the soak.
pub fn target(sizes: &Sizes, s: &RunResult) -> Target {
    let series = series(s);
    let ref_w = sizes.soak_sample * 2;
    let reference = series
        .iter()
        .find(|(x, _)| *x == Some(ref_w))
        .map(|(_, kb)| *kb);
    let last = series
        .iter()
        .rev()
        .find(|(x, _)| x.is_some())
        .map(|(_, kb)| *kb);
    let flushed = series.iter().find(|(x, _)| x.is_none()).map(|(_, kb)| *kb);
    let max_after = series
        .iter()
        .filter(|(x, _)| x.is_none_or(|x| x >= ref_w))
        .map(|(_, kb)| *kb)
        .fold(0.0, f64::max);
    let flat = reference.is_some_and(|r| max_after <= r * 1.10 + 2048.0);
    let mib = |kb: Option<f64>| opt(kb.map(|k| k / 1024.0), |x| format!("{x:.1}"));
    Target {
        name: format!(
            "memory flat across {} writes to {} keys (C; no sample after {} writes more than 10% + 2 MiB above it)",
            fmt_num(sizes.soak_writes as f64),
            fmt_num(sizes.soak_keys as f64),
            fmt_num(ref_w as f64)
        ),
        pass: flat && s.keys_final == s.keys_expected,
        figures: format!(
            "RSS at {} writes {} MiB, highest after it {:.1} MiB, at the last write {} MiB, after the final flush {} MiB; {} of {} keys final",
            fmt_num(ref_w as f64),
            mib(reference),
            max_after / 1024.0,
            mib(last),
            mib(flushed),
            s.keys_final,
            s.keys_expected
        ),
    }
}

/// The soak's RSS samples: (Some(writes) or None for "after the final flush", kB).
pub fn series(s: &RunResult) -> Vec<(Option<u64>, f64)> {
    let Some(arr) = s
        .driver
        .as_ref()
        .and_then(|d| d.get("rss_series"))
        .and_then(Value::as_array)
    else {
        return Vec::new();
    };
    arr.iter()
        .filter_map(|p| {
            let p = p.as_array()?;
            let kb = p.get(1)?.as_f64()?;
            Some((p.first()?.as_u64(), kb))
        })
        .collect()
}

/// The report's section: RSS per sample, and how the run ended.
pub fn section(md: &mut String, z: &Sizes, s: &RunResult) {
    let _ = writeln!(md, "## Memory soak (library from C)\n");
    let _ = writeln!(
        md,
        "{} writes round-robin over {} keys of one shared session (contents 100–500 B, each write a new version), \
         as fast as the thread can call `share_sync`, service at 0 ms; resident memory (VmRSS) sampled every {} writes \
         and after the final `share_flush`.\n",
        fmt_num(z.soak_writes as f64),
        fmt_num(z.soak_keys as f64),
        fmt_num(z.soak_sample as f64)
    );
    let series = series(s);
    let after: Vec<String> = series
        .iter()
        .map(|(w, _)| w.map_or("flushed".into(), |w| fmt_num(w as f64)))
        .collect();
    let mib: Vec<String> = series
        .iter()
        .map(|(_, kb)| format!("{:.1}", kb / 1024.0))
        .collect();
    let _ = writeln!(md, "| after writes | {} |", after.join(" | "));
    let _ = writeln!(md, "| --- |{}", " ---: |".repeat(series.len()));
    let _ = writeln!(md, "| RSS, MiB | {} |\n", mib.join(" | "));
    let writes = s.drv("writes").unwrap_or(0.0);
    let stats = s.driver.as_ref().and_then(|d| d.get("stats"));
    let _ = writeln!(
        md,
        "Drained {} ms after `START`; {} of {} keys hold their final content; {} requests ({}); {} per `share_sync` (thread CPU); peak RSS {} MiB; stats: `{}`.\n",
        opt(s.drv("drained_ns").map(|n| n / 1e6), fmt_num),
        s.keys_final,
        s.keys_expected,
        fmt_num(s.requests as f64),
        fmt_bytes(s.wire_bytes as f64),
        opt(
            s.drv("cpu_in_sync_ns").map(|n| n / writes.max(1.0)),
            |x| format!("{x:.0} ns")
        ),
        opt(s.peak_rss_mib(), |x| format!("{x:.1}")),
        stats.map(|v| v.to_string()).unwrap_or_default()
    );
}
