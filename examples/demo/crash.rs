//! `share_demo --crash-at N`: the run keeps the server's database and a durable spool in a fixed
//! folder and kills itself (SIGKILL) after N writes. The next run finds the folder, starts the
//! server on the same database, and share_init re-queues what the spool holds: the demo then
//! checks that the server ends with the newest content of every key written before the crash.

use std::fs;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Value, json};

/// The spool's interval here: the run waits three of them before it kills itself, so its last
/// writes are in the spool (a write in the last interval before a crash may not be).
const SPOOL_INTERVAL_MS: u64 = 20;
const MARK: &str = "crashed.json";

/// How this run goes.
pub enum Mode {
    Normal,
    /// Kill the process after `at` writes.
    Crash {
        at: usize,
    },
    /// A run was killed after `at` writes of `session`: finish its upload from the spool.
    Resume {
        at: usize,
        session: String,
        created: Value,
    },
}

fn folder() -> PathBuf {
    std::env::temp_dir().join("opencode-share-demo-crash")
}

/// The mode, and the folder to keep the database (and the spool) in, if not a temporary one.
pub fn prepare(crash_at: Option<usize>) -> Result<(Option<PathBuf>, Mode), String> {
    let dir = folder();
    if let Ok(text) = fs::read_to_string(dir.join(MARK)) {
        let v: Value = serde_json::from_str(&text).map_err(|e| format!("{MARK}: {e}"))?;
        let at = v["at"].as_u64().unwrap_or(0) as usize;
        println!(
            "resuming        the run killed after {at} writes ({})",
            dir.display()
        );
        return Ok((
            Some(dir),
            Mode::Resume {
                at,
                session: v["session"]
                    .as_str()
                    .ok_or(format!("{MARK}: no session"))?
                    .to_owned(),
                created: v["created"].clone(),
            },
        ));
    }
    let Some(at) = crash_at else {
        return Ok((None, Mode::Normal));
    };
    let _ = fs::remove_dir_all(&dir); // a crash run interrupted before its crash
    fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)).map_err(|e| e.to_string())?;
    Ok((Some(dir), Mode::Crash { at }))
}

/// share_init's configuration: `config` with the spool in `dir` unless the run is a normal one.
pub fn config(mut config: Value, mode: &Mode, dir: &Path) -> String {
    if !matches!(mode, Mode::Normal) {
        config["spool_dir"] = json!(dir.join("spool"));
        config["spool_interval_ms"] = json!(SPOOL_INTERVAL_MS);
    }
    if let Mode::Crash { .. } = mode {
        // a key rewritten within 500 ms waits (and coalesces): the crash catches some undelivered
        config["min_interval_ms"] = json!(500);
    }
    config.to_string()
}

impl Mode {
    /// How many of the fixture's `len` writes this run covers.
    pub fn writes(&self, len: usize) -> usize {
        match self {
            Mode::Normal => len,
            Mode::Crash { at } | Mode::Resume { at, .. } => (*at).min(len),
        }
    }

    /// After write number `n`: at the crash point, leave a mark for the next run (with the
    /// session and the create's answer) and die.
    pub fn after_write(&self, n: usize, session: &str, created: &Value, dir: &Path) {
        let Mode::Crash { at } = self else {
            return;
        };
        if n != *at {
            return;
        }
        let mark = json!({ "at": n, "session": session, "created": created }).to_string();
        let written = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(dir.join(MARK))
            .and_then(|mut f| std::io::Write::write_all(&mut f, mark.as_bytes()));
        if let Err(e) = written {
            eprintln!("share_demo: {MARK}: {e}");
            std::process::exit(1);
        }
        std::thread::sleep(Duration::from_millis(3 * SPOOL_INTERVAL_MS));
        println!(
            "crash           SIGKILL after {n} writes: run share_demo again (same --protocol, without --crash-at) to finish the upload"
        );
        // SAFETY: kill(2) on this process, no memory involved
        unsafe { libc::kill(libc::getpid(), libc::SIGKILL) };
    }

    /// After a resumed run's check: what came from the spool.
    pub fn report(&self, stats: &Value) {
        if let Mode::Resume { .. } = self {
            let spool = &stats["spool"];
            println!(
                "spool           {} shares and {} contents of the killed run were re-queued from the spool and are now on the server",
                spool["recovered_shares"], spool["recovered_contents"]
            );
        }
    }
}
