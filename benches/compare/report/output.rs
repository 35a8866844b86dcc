//! The report's files: report.md, chart.svg and results.json.

use std::fs;
use std::path::Path;

use serde_json::json;

use crate::env::Env;
use crate::plan::Case;
use crate::report::chart::write_chart;
use crate::report::stats::Results;
use crate::report::write_report;
use crate::run::RunResult;
use crate::workload::Sizes;

/// Everything a report is made of.
pub struct Outcome<'a> {
    pub env: &'a Env,
    pub sizes: &'a Sizes,
    pub results: &'a [RunResult],
    pub soak: Option<&'a RunResult>,
    pub skipped: &'a [String],
    pub plan: &'a [Case<'a>],
}

/// Writes report.md, chart.svg and results.json into `out`.
pub fn emit(out: &Path, o: &Outcome) {
    let _ = fs::create_dir_all(out);
    let res = Results { all: o.results };
    let report = write_report(o.sizes, o.env, &res, o.plan, o.skipped, o.soak);
    // the chart is the legacy scenarios' (the next-* figures are in report.md)
    let legacy: Vec<Case> = o
        .plan
        .iter()
        .filter(|(sc, ..)| !crate::scenarios::is_next(sc))
        .cloned()
        .collect();
    let chart = write_chart(o.sizes, &res, &legacy);
    let raw = json!({
        "env": o.env,
        "sizes": o.sizes,
        "runs": o.results,
        "soak": o.soak,
        "skipped": o.skipped,
    });
    let raw = serde_json::to_string_pretty(&raw).unwrap_or_default();
    for (name, text) in [
        ("report.md", report),
        ("chart.svg", chart),
        ("results.json", raw),
    ] {
        if let Err(e) = fs::write(out.join(name), text) {
            eprintln!("compare: cannot write {}: {e}", out.join(name).display());
            std::process::exit(1);
        }
    }
    println!(
        "compare: wrote {} (report.md, chart.svg, results.json); the run took {:.0} s",
        out.display(),
        o.env.elapsed_s
    );
}
