//! report.md's section for the successor protocol: the next targets (PASS / MISS / not measured)
//! and a table per next-* case (time to final state, requests, bytes, items per request,
//! staleness, lost items, overlaps, the caller's cost).

use std::fmt::Write as _;

use crate::contenders::contender;
use crate::plan::Case;
use crate::report::format::{fmt_bytes, fmt_count, fmt_num, opt};
use crate::report::stats::{Cell, Results, bytes, reqs, ttf};
use crate::report::targets::next_targets;
use crate::run::{NextFigures, RunResult};
use crate::scenarios::{self, is_next};
use crate::workload::Sizes;

const COLUMNS: &str = "Columns (medians over runs): **time to final** — from `START` until the service held the final \
     content of every item (DNF: some never did); **requests**, **bytes** — sync requests of the share the service \
     received (every status, resets included) and their size on the wire; **items/request** — mean (max); \
     **staleness** — per write, the first time the service held that version of its item or a newer one, minus the \
     write's time, median / max over the writes (max DNF when some write was never held); **lost** — items not holding \
     their final content at the end; **overlaps** — syncs of the share that arrived while another was being handled \
     (the real server then loses one; — under v1, which has no per-share request); **in call** — per write, inside \
     the write call (C: thread CPU; JS: wall).";

pub fn next_section(md: &mut String, sizes: &Sizes, res: &Results, plan: &[Case]) {
    let cases: Vec<&Case> = plan.iter().filter(|(sc, ..)| is_next(sc)).collect();
    if cases.is_empty() {
        return;
    }
    let _ = writeln!(
        md,
        "## The successor protocol (\"next\"): the library against ShareNext's own client\n"
    );
    let _ = writeln!(
        md,
        "| target | result | figures (medians) |\n| --- | --- | --- |"
    );
    for t in next_targets(res) {
        let verdict = match t.pass {
            Some(true) => "**PASS**",
            Some(false) => "**MISS**",
            None => "not measured",
        };
        let _ = writeln!(md, "| {} | {verdict} | {} |", t.name, t.figures);
    }
    let _ = writeln!(md, "\n{COLUMNS}\n");
    for (sc, lat, cs) in cases {
        let title = (scenarios::get(sc).title)(sizes);
        let _ = writeln!(md, "### {title} — {lat} ms\n");
        let _ = writeln!(
            md,
            "| contender | time to final, ms | requests | bytes | items/request | staleness median / max, ms | lost | overlaps | in call, µs | host CPU/write, µs |\n| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
        );
        let mut odd = Vec::new();
        for c in cs {
            let Some(cell) = res.cell(sc, *lat, c.id) else {
                continue;
            };
            if let Some(why) = cell
                .runs
                .iter()
                .find_map(|r| r.outcome.strip_prefix("skipped: "))
            {
                // the library's own message (its whole list of known config keys) stays in results.json
                let why = why.split(" (share_init").next().unwrap_or(why);
                let _ = writeln!(md, "| {} | skipped: {why} | | | | | | | | |", c.label);
                continue;
            }
            row(md, c.label, &cell);
            for r in &cell.runs {
                if r.outcome != "ok" {
                    odd.push(format!(
                        "{} run {}: {}",
                        contender(&r.contender).label,
                        r.run + 1,
                        r.outcome
                    ));
                }
            }
        }
        if !odd.is_empty() {
            let _ = writeln!(md, "\nNot clean: {}", odd.join("; "));
        }
        let _ = writeln!(md);
    }
}

fn row(md: &mut String, label: &str, cell: &Cell) {
    let nf = |r: &RunResult| r.next.clone().unwrap_or_default();
    let m = |f: &dyn Fn(&NextFigures) -> Option<f64>, inf: bool| cell.median(|r| f(&nf(r)), inf);
    let _ = writeln!(
        md,
        "| {label} | {} | {} | {} | {} ({}) | {} / {} | {} | {} | {} | {} |",
        opt(cell.median(ttf, true), fmt_num),
        opt(cell.median(reqs, false), fmt_count),
        opt(cell.median(bytes, false), fmt_bytes),
        opt(m(&|n| n.items_per_request, false), fmt_count),
        opt(m(&|n| n.max_items_per_request, false), fmt_count),
        opt(m(&|n| n.staleness_median_ms, false), fmt_num),
        opt(m(&|n| n.staleness_max_ms, true), fmt_num),
        opt(m(&|n| Some(n.lost_items as f64), false), fmt_count),
        opt(m(&|n| n.overlaps.map(|x| x as f64), false), fmt_count),
        opt(cell.median(|r| r.in_call_us(), false), fmt_num),
        opt(cell.median(|r| r.host_cpu_us(), false), fmt_num),
    );
}
