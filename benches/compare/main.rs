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
//! This file runs the whole; the jobs are its modules beside it: `scenarios/` (one file each: its
//! writes, faults, targets and headings), `workload` (the file of writes handed to the drivers),
//! `services/` (the bench's own loopback services, v1 and "next": they measure the clients, not a
//! server), `contenders`, `plan` (cases and skips), `run/` (one run of a scenario, the driver
//! process, the run's record), `report/` (targets, medians,
//! report.md, chart.svg, results.json), `env` (the circumstances), `opts` (the command line).

mod contenders;
mod env;
mod opts;
mod plan;
mod report;
mod run;
mod scenarios;
mod services;
mod workload;

use std::time::{Duration, Instant};

use contenders::Paths;
use env::{Before, Env, Made};
use plan::{plan, run_cases, run_soak};
use report::output::{Outcome, emit};
use run::Ctx;
use workload::{Sizes, Texts};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if !args.iter().any(|a| a == "--bench") {
        println!("compare: skipped (run it with scripts/bench, or cargo bench --bench compare)");
        return;
    }
    let opts = opts::parse_opts(&args).unwrap_or_else(|e| fail(&e, 2));
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
