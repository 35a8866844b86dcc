//! The run's circumstances, recorded in the report: machine, runtimes, commit, load, command.

use std::fs;
use std::process::Command;
use std::thread;
use std::time::Duration;

use serde::Serialize;

#[derive(Serialize)]
pub struct Env {
    pub date: String,
    pub commit: String,
    pub cpu: String,
    pub cpus: usize,
    pub kernel: String,
    pub bun: String,
    pub node: String,
    pub rustc: String,
    pub command: String,
    pub load_before: String,
    pub load_after: String,
    pub elapsed_s: f64,
    pub runs: usize,
    pub quick: bool,
    pub cap_s: u64,
}

/// What is known before the runs: the date and the load average.
pub struct Before {
    pub date: String,
    pub load: String,
}

impl Before {
    pub fn now() -> Before {
        Before {
            date: sh("date", &["-u", "+%Y-%m-%d %H:%M UTC"]),
            load: load_average(),
        }
    }
}

/// How the runs were made: the options that the report states.
pub struct Made<'a> {
    pub bun: &'a str,
    pub args: &'a [String],
    pub elapsed: Duration,
    pub runs: usize,
    pub quick: bool,
    pub cap: Duration,
}

impl Env {
    pub fn collect(before: Before, made: Made) -> Env {
        Env {
            date: before.date,
            commit: commit(),
            cpu: cpu_model(),
            cpus: thread::available_parallelism().map_or(0, |n| n.get()),
            kernel: fs::read_to_string("/proc/sys/kernel/osrelease")
                .unwrap_or_default()
                .trim()
                .to_string(),
            bun: sh(made.bun, &["--version"]),
            node: sh("node", &["--version"]),
            rustc: sh("rustc", &["--version"]),
            command: std::env::var("COMPARE_COMMAND").unwrap_or_else(|_| {
                format!("cargo bench --bench compare -- {}", made.args.join(" "))
            }),
            load_before: before.load,
            load_after: load_average(),
            elapsed_s: made.elapsed.as_secs_f64(),
            runs: made.runs,
            quick: made.quick,
            cap_s: made.cap.as_secs(),
        }
    }
}

/// The first three fields of /proc/loadavg.
fn load_average() -> String {
    let text = fs::read_to_string("/proc/loadavg").unwrap_or_default();
    text.split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

/// The short commit, marked when src/ has uncommitted changes.
fn commit() -> String {
    let root = env!("CARGO_MANIFEST_DIR");
    let c = sh("git", &["-C", root, "rev-parse", "--short", "HEAD"]);
    let dirty = !Command::new("git")
        .args(["-C", root, "diff", "--quiet", "HEAD", "--", "src"])
        .status()
        .is_ok_and(|s| s.success());
    if dirty {
        format!("{c} (src/ has uncommitted changes)")
    } else {
        c
    }
}

fn cpu_model() -> String {
    fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into())
}

/// A command's trimmed output, or "unknown".
fn sh(cmd: &str, args: &[&str]) -> String {
    Command::new(cmd)
        .args(args)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown".into())
}
