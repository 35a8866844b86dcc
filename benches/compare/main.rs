//! Side-by-side benchmark: opencode-share (from C, Bun and Node) against the original `Share`
//! module (benches/compare/baseline/share.ts, in Bun and Node), one loopback share service,
//! the same scenarios, measured on the service's side. Writes benches/report/report.md,
//! benches/report/chart.svg and benches/report/results.json.
//!
//!     scripts/bench [--quick] [--runs N] [--only burst,stream,...] [--latencies 0,20,100]
//!                   [--contenders c-library,bun-library,...] [--cap-s S] [--no-soak]
//!
//! (scripts/bench builds the drivers, then runs `cargo bench --bench compare -- ARGS`.) The method
//! is in benches/compare/README.md. Under `cargo test` (no `--bench` argument) it does nothing.
//!
//! This file runs the whole; the jobs are its modules beside it: `workload` (every write of every
//! scenario, handed to the drivers as a file), `contenders`, `plan` (cases and skips), `run`
//! (one run and its measures), `stats`, `targets`, `report`, `chart`, `format`, `env`, `output`;
//! for the successor protocol's next-* scenarios `next_service` (its loopback service),
//! `next_run` (one run and its figures) and `next_report` (its section of report.md).

/// The bench's own loopback v1 service (no storage, so it measures the clients, not a server).
mod service;

mod chart;
mod contenders;
mod env;
mod format;
mod next_report;
mod next_run;
mod next_service;
mod opts;
mod output;
mod plan;
mod report;
mod run;
mod stats;
mod targets;
mod workload;

use std::time::{Duration, Instant};

use contenders::Paths;
use env::{Before, Env, Made};
use output::{Outcome, emit, render};
use plan::{plan, run_cases, run_soak};
use run::Ctx;
use workload::{Sizes, Texts};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if !args.iter().any(|a| a == "--bench") {
        println!("compare: skipped (run it with scripts/bench, or cargo bench --bench compare)");
        return;
    }
    let opts = opts::parse_opts(&args).unwrap_or_else(|e| fail(&e, 2));
    if let Some(file) = &opts.render {
        return render(file, &opts.out).unwrap_or_else(|e| fail(&e, 1));
    }
    let paths = Paths::new();
    if let Err(e) = paths.check() {
        // a plain `cargo bench` (every bench target) should not fail for want of the drivers
        let from_script = std::env::var_os("COMPARE_COMMAND").is_some();
        fail(&e, if from_script { 2 } else { 0 });
    }
    let sizes = if opts.quick {
        Sizes::quick()
    } else {
        Sizes::full()
    };
    let cap = Duration::from_secs(opts.cap_s.unwrap_or(if opts.quick { 30 } else { 90 }));
    let ctx = Ctx {
        paths,
        sizes,
        texts: Texts::new(),
        cap,
    };
    let before = Before::now();
    let started = Instant::now();
    let (cases, skipped) = plan(&opts, &ctx.sizes, cap);
    let results = run_cases(&ctx, &cases, opts.runs);
    let soak = run_soak(&ctx, &opts);
    let bun = ctx.paths.bun.to_string_lossy();
    let made = Made {
        bun: &bun,
        args: &args,
        elapsed: started.elapsed(),
        runs: opts.runs,
        quick: opts.quick,
        cap,
    };
    let env = Env::collect(before, made);
    let outcome = Outcome {
        env: &env,
        sizes: &ctx.sizes,
        results: &results,
        soak: soak.as_ref(),
        skipped: &skipped,
        plan: &cases,
    };
    emit(&opts.out, &outcome);
}

fn fail(message: &str, code: i32) -> ! {
    eprintln!("compare: {message}");
    std::process::exit(code)
}
