//! One holder per spool: an exclusive `flock` on `spool.lock`. The OS releases it when the
//! holder's file is closed or its process dies (a SIGKILLed holder never blocks the next start).
//! flock belongs to the open file description, not the process, so a second open of the same
//! folder in the same process is refused as well; the lock file is never renamed, so compaction
//! (which renames over `spool.log`) does not move the lock. Opened close-on-exec (std's
//! default): a child the host spawns does not inherit it. A child the host forks without exec
//! does, and holds the spool while it lives.

use std::fs::File;
use std::path::Path;

use rustix::fs::{FlockOperation, flock};
use rustix::io::Errno;

use super::folder;
use super::{Error, ErrorKind, Result};

/// The lock file's name in the spool folder.
pub const LOCK_NAME: &str = "spool.lock";

/// The held lock; dropping it releases the spool.
#[derive(Debug)]
pub struct Lock {
    _file: File,
}

/// Takes the spool in `dir` (an existing folder), or says who has it.
pub fn acquire(dir: &Path) -> Result<Lock> {
    let path = dir.join(LOCK_NAME);
    let file = folder::open_file(&path, true)
        .map_err(|e| Error::io(format_args!("spool lock {}", path.display()), &e))?;
    match flock(&file, FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => Ok(Lock { _file: file }),
        Err(Errno::WOULDBLOCK) => Err(Error::new(
            ErrorKind::Locked,
            format!(
                "spool folder {} is in use by another process, or already open in this one \
                 (one share_init at a time per spool_dir)",
                dir.display()
            ),
        )),
        Err(e) => Err(Error::io(
            format_args!("spool lock {}", path.display()),
            &std::io::Error::from(e),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};

    const HOLD_ENV: &str = "OPENCODE_SHARE_TEST_HOLD_SPOOL";

    #[test]
    fn a_second_open_in_the_same_process_is_refused_until_the_first_is_dropped() {
        let t = tempfile::tempdir().unwrap();
        let first = acquire(t.path()).unwrap();
        let e = acquire(t.path()).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Locked);
        assert!(e.message.contains(&*t.path().to_string_lossy()), "{e}");
        // from another thread too: the lock is not per thread
        let dir = t.path().to_path_buf();
        let from_thread = std::thread::spawn(move || acquire(&dir).map(drop))
            .join()
            .unwrap();
        assert_eq!(from_thread.unwrap_err().kind, ErrorKind::Locked);
        drop(first);
        let again = acquire(t.path()).unwrap();
        assert_eq!(folder::tests::mode(&t.path().join(LOCK_NAME)), 0o600);
        drop(again);
    }

    /// Run by `a_killed_holder_does_not_block_the_next_open` in a child process: takes the lock
    /// named by the environment, says so, and waits (at most 60 s) to be killed.
    #[test]
    #[ignore = "helper: run as a child process by a_killed_holder_does_not_block_the_next_open"]
    fn hold_lock_until_killed() {
        let Some(dir) = std::env::var_os(HOLD_ENV) else {
            return;
        };
        let _lock = acquire(Path::new(&dir)).unwrap();
        println!("holding");
        std::thread::sleep(std::time::Duration::from_secs(60));
    }

    #[test]
    fn a_killed_holder_does_not_block_the_next_open() {
        let t = tempfile::tempdir().unwrap();
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "spool::lock::tests::hold_lock_until_killed",
                "--ignored",
                "--nocapture",
            ])
            .args(["--test-threads", "1"])
            .env(HOLD_ENV, t.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let held = lines.any(|l| l.is_ok_and(|l| l.contains("holding")));
        let in_child = acquire(t.path()).map(drop);
        child.kill().unwrap(); // SIGKILL: no destructor runs in the child
        child.wait().unwrap();
        assert!(held, "the child did not take the lock");
        assert_eq!(in_child.unwrap_err().kind, ErrorKind::Locked);
        acquire(t.path()).expect("the dead holder's lock is released by the OS");
    }
}
