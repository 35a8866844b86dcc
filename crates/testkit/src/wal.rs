//! What the server's SQLite database writes, counted in its write-ahead log: every commit
//! appends its pages there as frames. A read transaction held open ([`Hold`]) keeps the log
//! from restarting, so the frames of the log's current generation are the bytes written since
//! the hold began. (Shared with the server's tests by path: std and rusqlite only.)

use std::path::{Path, PathBuf};

/// An open read transaction on a SQLite database in WAL mode: while it lives, no checkpoint
/// reaches past it and the log is never restarted.
pub struct Hold {
    conn: rusqlite::Connection,
    wal: PathBuf,
}

impl Hold {
    /// Begins a read transaction on `database` (which must already be in WAL mode).
    pub fn begin(database: &Path) -> Result<Hold, String> {
        let failed = |e: rusqlite::Error| format!("holding {}: {e}", database.display());
        let conn = rusqlite::Connection::open(database).map_err(failed)?;
        conn.execute_batch("BEGIN").map_err(failed)?;
        // a transaction reads its snapshot at its first read
        conn.query_row("SELECT count(*) FROM sqlite_master", [], |r| {
            r.get::<_, i64>(0)
        })
        .map_err(failed)?;
        let mut wal = database.as_os_str().to_owned();
        wal.push("-wal");
        Ok(Hold {
            conn,
            wal: wal.into(),
        })
    }

    /// The bytes of the log's current generation (frames and their headers).
    pub fn written(&self) -> u64 {
        frame_bytes(&std::fs::read(&self.wal).unwrap_or_default())
    }
}

impl Drop for Hold {
    fn drop(&mut self) {
        let _ = self.conn.execute_batch("COMMIT");
    }
}

/// The frames of `log` whose salts are its header's (the current generation), in bytes.
fn frame_bytes(log: &[u8]) -> u64 {
    if log.len() < 32 {
        return 0;
    }
    let word = |at: usize| u32::from_be_bytes(log[at..at + 4].try_into().expect("4 bytes"));
    let page = word(8) as usize;
    let (salt1, salt2) = (word(16), word(20));
    let mut at = 32;
    while at + 24 + page <= log.len() && word(at + 8) == salt1 && word(at + 12) == salt2 {
        at += 24 + page;
    }
    (at - 32) as u64
}
