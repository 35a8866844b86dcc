//! The report's files: report.md, chart.svg and results.json, from new runs or a results.json.

use std::fs;
use std::path::Path;

use serde_json::{Value, json};

use crate::chart::write_chart;
use crate::contenders::CONTENDERS;
use crate::env::Env;
use crate::plan::Case;
use crate::report::write_report;
use crate::run::RunResult;
use crate::stats::Results;
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
        .filter(|(sc, ..)| !crate::workload::is_next(sc))
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

/// `--render FILE`: the report and chart again from a results.json (same figures, no new runs).
pub fn render(file: &Path, out: &Path) -> Result<(), String> {
    let text = fs::read_to_string(file).map_err(|e| format!("{}: {e}", file.display()))?;
    let raw: Value = serde_json::from_str(&text).map_err(|e| format!("{}: {e}", file.display()))?;
    let field = |name: &str| raw.get(name).cloned().unwrap_or(Value::Null);
    let env: Env = serde_json::from_value(field("env")).map_err(|e| format!("env: {e}"))?;
    let sizes: Sizes = serde_json::from_value(field("sizes")).map_err(|e| format!("sizes: {e}"))?;
    let results: Vec<RunResult> =
        serde_json::from_value(field("runs")).map_err(|e| format!("runs: {e}"))?;
    let soak: Option<RunResult> =
        serde_json::from_value(field("soak")).map_err(|e| format!("soak: {e}"))?;
    let skipped: Vec<String> =
        serde_json::from_value(field("skipped")).map_err(|e| format!("skipped: {e}"))?;
    let plan = plan_of(&results);
    let outcome = Outcome {
        env: &env,
        sizes: &sizes,
        results: &results,
        soak: soak.as_ref(),
        skipped: &skipped,
        plan: &plan,
    };
    emit(out, &outcome);
    Ok(())
}

/// The cases that `results` hold, in the order they first appear.
fn plan_of(results: &[RunResult]) -> Vec<Case<'_>> {
    let mut plan: Vec<Case> = Vec::new();
    for r in results {
        if plan
            .iter()
            .any(|(s, l, _)| *s == r.scenario && *l == r.latency_ms)
        {
            continue;
        }
        let ran = |id: &str| {
            results.iter().any(|x| {
                x.scenario == r.scenario && x.latency_ms == r.latency_ms && x.contender == id
            })
        };
        plan.push((
            r.scenario.as_str(),
            r.latency_ms,
            CONTENDERS.iter().filter(|c| ran(c.id)).collect(),
        ));
    }
    plan
}
