//! Reading a ledger folder without running the library (no request is made), listing it, and
//! finding the shares a target names.

use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, UNIX_EPOCH};

use opencode_share::engine::ledger::{self, share_id, state};
use opencode_share::spool::{Entry, Spool};

/// The entries of the ledger in `dir` (none if there is no such folder). Opening it takes its
/// lock for the moment it is read: a folder a running opencode holds is refused, by name.
pub fn read(dir: &Path) -> Result<Vec<Entry>, String> {
    if !dir.join("spool.log").is_file() {
        return Ok(Vec::new());
    }
    let (spool, recovery) =
        Spool::open(dir).map_err(|e| format!("ledger {}: {e}", dir.display()))?;
    drop(spool);
    Ok(recovery.ledger)
}

/// True if `target` names the entry: its session id, share id or URL.
pub fn names(entry: &Entry, target: &str) -> bool {
    let s = &entry.share;
    let target = target.trim_end_matches('/');
    &*s.session == target
        || &*share_id(s) == target
        || s.url
            .as_deref()
            .is_some_and(|u| u.trim_end_matches('/') == target)
}

/// `list`: a table per folder, or one JSON array of every folder's entries.
pub fn list(dirs: &[impl AsRef<Path>], json: bool) -> Result<ExitCode, String> {
    let mut all = Vec::new();
    for dir in dirs {
        let dir = dir.as_ref();
        let entries = read(dir)?;
        if !json {
            println!("{} ({} shares)", dir.display(), entries.len());
            for e in &entries {
                println!("  {}", line(e));
            }
        }
        all.extend(entries);
    }
    if json {
        println!("{}", ledger::to_json(&all));
    }
    Ok(ExitCode::SUCCESS)
}

/// One entry as a line of the table (never its secret).
fn line(e: &Entry) -> String {
    let s = &e.share;
    let time = |ms: u64| match ms {
        0 => "-".to_owned(),
        ms => httpdate::fmt_http_date(UNIX_EPOCH + Duration::from_millis(ms)),
    };
    format!(
        "{:<8} {} id {} {} created {} synced {}",
        state(e),
        s.session,
        share_id(s),
        s.url.as_deref().unwrap_or("(no URL known)"),
        time(s.created),
        time(e.synced),
    )
}
