//! A driver process (C or JS) replaying one workload: started, handshaken, its RESULT read.

use std::fs;
use std::io::{BufRead, BufReader, Write as _};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use super::{Ctx, RunResult};
use crate::contenders::Contender;
use crate::workload::Workload;

/// A driver process and the lines it prints, read on a thread with their arrival time.
pub struct Driver {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<(Instant, String)>,
    reader: Option<thread::JoinHandle<()>>,
    pub log: PathBuf,
    /// Set when the driver said `SKIP <why>` instead of READY (its contender cannot run this)
    pub skipped: Option<String>,
}

impl Driver {
    /// Writes the workload file and starts the contender's driver on it.
    pub fn start(
        ctx: &Ctx,
        c: &Contender,
        url: &str,
        workload: &Workload,
        name: &str,
    ) -> Result<Driver, String> {
        let paths = &ctx.paths;
        let _ = fs::create_dir_all(&paths.logs);
        let _ = fs::create_dir_all(&paths.workloads);
        // one file per scenario, rewritten by each run (its contenders' files would be the same)
        let file = paths.workloads.join(format!("{}.tsv", workload.scenario()));
        fs::write(&file, workload.file())
            .map_err(|e| format!("cannot write {}: {e}", file.display()))?;
        let log = paths.logs.join(format!("{name}.log"));
        let mut cmd = paths.command(c);
        cmd.arg("--workload").arg(&file);
        cmd.args([
            "--url",
            url,
            "--timeout-ms",
            &ctx.cap.as_millis().to_string(),
        ]);
        cmd.stdin(Stdio::piped()).stdout(Stdio::piped());
        cmd.stderr(fs::File::create(&log).map_or(Stdio::null(), Stdio::from));
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("cannot start the driver: {e}"))?;
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, lines) = mpsc::channel();
        let reader = thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send((Instant::now(), line)).is_err() {
                    break;
                }
            }
        });
        let stdin = child.stdin.take();
        Ok(Driver {
            child,
            stdin,
            lines,
            reader: Some(reader),
            log,
            skipped: None,
        })
    }

    /// READY: the driver has set up (library started, shares created, warmed up): `configure`
    /// the service, say GO. START: it begins writing; its arrival is t0.
    pub fn handshake(&mut self, configure: impl FnOnce()) -> Option<Instant> {
        let deadline = Instant::now() + Duration::from_secs(120);
        let mut configure = Some(configure);
        let mut said_go = false;
        let mut t0 = None;
        while t0.is_none() {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok((_, line)) if line.trim() == "READY" && !said_go => {
                    if let Some(f) = configure.take() {
                        f();
                    }
                    let stdin = self.stdin.as_mut()?;
                    said_go = stdin.write_all(b"GO\n").and_then(|_| stdin.flush()).is_ok();
                }
                Ok((at, line)) if line.trim() == "START" && said_go => t0 = Some(at),
                Ok((_, line)) if line.starts_with("SKIP ") => {
                    self.skipped = Some(line["SKIP ".len()..].trim().to_string());
                    break;
                }
                Ok(_) => {}
                Err(_) => break,
            }
        }
        self.stdin = None;
        t0
    }

    /// Reads up to the RESULT line, or until `deadline` (the original has no timeout: it may
    /// wait forever), into `result`.
    pub fn collect(&mut self, result: &mut RunResult, deadline: Instant, cap: Duration) {
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok((_, line)) => {
                    if let Some(json) = line.strip_prefix("RESULT ") {
                        result.driver = serde_json::from_str(json).ok();
                        return;
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    result.outcome = format!("dnf: not drained within {} s", cap.as_secs());
                    return;
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    result.outcome = format!(
                        "failed: the driver exited without a result (see {})",
                        self.log.display()
                    );
                    return;
                }
            }
        }
    }

    /// Waits a little for a driver that gave its result to exit; kills it otherwise.
    pub fn reap(&mut self, gave_result: bool) {
        let exit_deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match self.child.try_wait() {
                Ok(Some(_)) => break,
                Ok(None) if Instant::now() < exit_deadline && gave_result => {
                    thread::sleep(Duration::from_millis(10))
                }
                _ => return self.kill(),
            }
        }
        self.join();
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.join();
    }

    fn join(&mut self) {
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
    }
}
