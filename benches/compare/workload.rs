//! The workload file: every id, key and content of a run, generated once (by its scenario, in
//! scenarios/) and handed to the drivers (C and JS), so the drivers only replay it and the
//! orchestrator knows each key's final content from the same list. This file holds the format,
//! the ids and texts the scenarios build with, and the warm-ups.
//!
//! The file is text, one record per line, fields separated by tabs (keys and compact JSON never
//! hold a tab):
//!
//! ```text
//! workload        1
//! scenario        <name>
//! interval_us     <U>      write i is due at START + i * U µs (0: back to back)
//! threads         <T>      C writes with T threads (each write names its thread); JS in file order
//! await_each      0|1      JS awaits each write (as Session.share() awaited Share.sync)
//! total           <N>      writes to make: the list is replayed in order until N; pass p adds p to v
//! sample_every    <S>      the C driver samples VmRSS every S writes (0: never)
//! warmup_create   <sid>    before READY: create this share, then the warmup writes, drained
//! warmup          <key> <v> <head> <tail>
//! create          <sid>    after setup, before START
//! create_timed    <sid>    after START (the initial share: the create is part of the work)
//! write           <thread> <key> <v> <head> <tail>
//! finish          drain|exit  (only in next-* workloads) after the writes: wait until sent, or
//!                          shut down / exit at once (next-exit)
//! stamp           1        (only in next-* workloads) report each write's time since START
//! ```
//!
//! The `next-*` scenarios (the successor protocol) use a warm-up session of their own (the
//! service keys shares by the last 8 characters of the session id, and the bench session's end as
//! the legacy warm-up's does), and part contents that carry `messageID` (a "next" part item needs
//! it for its item key).
//!
//! A content is `head + v + tail`: `{"id":…,"sessionID":…,"type":…,"v":` + the version + `,"text":…}`.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;
use serde_json::Value;

use crate::scenarios::{At, Scenario};

const ALPHA: &[u8] = b"lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod ";
const MASTER_LEN: usize = 1000 + 70000;

/// The warm-up's session: its requests are not counted (see run/mod.rs).
pub const WARMUP_SID: &str = "ses_warmup00000000000000000000";

/// The next-* scenarios' warm-up session (its share id, `0warmup1`, is its own).
pub const NEXT_WARMUP_SID: &str = "ses_warmup0000000000000warmup1";
/// A storage key's item key under "next" (`session/part/<sid>/<mid>/<pid>` → `part/<mid>/<pid>`).
pub fn next_item_key(key: &str) -> Option<String> {
    let seg: Vec<&str> = key.split('/').collect();
    match seg.as_slice() {
        ["session", "info", _] => Some("session".into()),
        ["session", "message", _, mid] => Some(format!("message/{mid}")),
        ["session", "part", _, mid, pid] => Some(format!("part/{mid}/{pid}")),
        ["session", "diff", _] => Some("session_diff".into()),
        ["session", "model", _] => Some("model".into()),
        _ => None,
    }
}

/// The texts every content's `text` is cut from.
pub struct Texts {
    master: String,
}

impl Texts {
    pub fn new() -> Texts {
        let n = ALPHA.len();
        let master = (0..MASTER_LEN)
            .map(|j| ALPHA[(j * 7 + j / 5) % n] as char)
            .collect();
        Texts { master }
    }

    fn text(&self, seed: u64, len: u64) -> &str {
        let off = ((seed * 131) % 1000) as usize;
        &self.master[off..off + len as usize]
    }

    /// A content around its version: `{"id","sessionID","type","v":` and `,"text"}`.
    pub fn content(
        &self,
        id: &str,
        sid: &str,
        kind: &str,
        seed: u64,
        len: u64,
    ) -> (String, String) {
        self.content_in(id, None, sid, kind, seed, len)
    }

    /// The same with `"messageID"` after `id` when `mid` is given (a "next" part).
    fn content_in(
        &self,
        id: &str,
        mid: Option<&str>,
        sid: &str,
        kind: &str,
        seed: u64,
        len: u64,
    ) -> (String, String) {
        let s = |x: &str| serde_json::to_string(x).expect("a string serialises");
        let mid = mid.map_or(String::new(), |m| format!(r#","messageID":{}"#, s(m)));
        let head = format!(
            r#"{{"id":{}{mid},"sessionID":{},"type":{},"v":"#,
            s(id),
            s(sid),
            s(kind)
        );
        (head, format!(r#","text":{}}}"#, s(self.text(seed, len))))
    }
}

pub fn len_part(x: u64) -> u64 {
    200 + (x * 97) % 1600
}
pub fn len_msg(x: u64) -> u64 {
    100 + (x * 37) % 300
}
pub fn len_soak(x: u64) -> u64 {
    100 + (x * 97) % 400
}
pub fn len_stream(v: u64) -> u64 {
    16 + 4 * v
}
pub fn ses_id(s: u64) -> String {
    format!("ses_bench{s:021}")
}
pub fn msg_id(m: u64) -> String {
    format!("msg_bench{m:021}")
}
pub fn prt_id(p: u64) -> String {
    format!("prt_bench{p:021}")
}
pub fn part_key(s: u64, m: u64, p: u64) -> String {
    format!("session/part/{}/{}/{}", ses_id(s), msg_id(m), prt_id(p))
}

/// Scenario sizes (the full run's, or --quick's smaller ones).
#[derive(Clone, Serialize)]
pub struct Sizes {
    pub burst_keys: u64,
    pub stream_writes: u64,
    pub stream_interval_us: u64,
    pub initial_messages: u64,
    pub initial_parts: u64,
    pub many_sessions: u64,
    pub many_keys: u64,
    pub many_threads: u64,
    pub faults_keys: u64,
    pub faults_reset_pct: u32,
    pub faults_500_pct: u32,
    pub soak_writes: u64,
    pub soak_keys: u64,
    pub soak_sample: u64,
}

impl Sizes {
    pub fn full() -> Sizes {
        Sizes {
            burst_keys: 200,
            stream_writes: 2000,
            stream_interval_us: 1000,
            initial_messages: 500,
            initial_parts: 2000,
            many_sessions: 50,
            many_keys: 20,
            many_threads: 4,
            faults_keys: 200,
            faults_reset_pct: 10,
            faults_500_pct: 10,
            soak_writes: 1_000_000,
            soak_keys: 10_000,
            soak_sample: 100_000,
        }
    }

    pub fn quick() -> Sizes {
        Sizes {
            burst_keys: 100,
            stream_writes: 500,
            initial_messages: 100,
            initial_parts: 400,
            many_sessions: 10,
            many_keys: 10,
            faults_keys: 100,
            soak_writes: 200_000,
            soak_keys: 2_000,
            soak_sample: 20_000,
            ..Sizes::full()
        }
    }
}

/// One storage write: which C writer thread makes it, its key, its content around the version.
pub struct Write {
    pub thread: u64,
    pub key: String,
    pub v: u64,
    pub head: String,
    pub tail: String,
}

impl Write {
    pub fn part(texts: &Texts, s: u64, m: u64, p: u64, v: u64, seed: u64, len: u64) -> Write {
        let (head, tail) = texts.content(&prt_id(p), &ses_id(s), "part", seed, len);
        Write {
            thread: 0,
            key: part_key(s, m, p),
            v,
            head,
            tail,
        }
    }

    /// A part of the successor protocol: its content carries `messageID`.
    pub fn next_part(texts: &Texts, m: u64, p: u64, v: u64, seed: u64, len: u64) -> Write {
        let mid = msg_id(m);
        let (head, tail) = texts.content_in(&prt_id(p), Some(&mid), &ses_id(0), "part", seed, len);
        Write {
            thread: 0,
            key: part_key(0, m, p),
            v,
            head,
            tail,
        }
    }

    pub fn other(texts: &Texts, key: String, id: &str, kind: &str, seed: u64, len: u64) -> Write {
        let (head, tail) = texts.content(id, &ses_id(0), kind, seed, len);
        Write {
            thread: 0,
            key,
            v: 0,
            head,
            tail,
        }
    }

    fn content(&self, pass: u64) -> String {
        format!("{}{}{}", self.head, self.v + pass, self.tail)
    }
}

/// One scenario's writes and how the drivers make them (its scenario fills them in).
pub struct Workload {
    scenario: String,
    pub interval_us: u64,
    pub threads: u64,
    pub await_each: bool,
    /// Writes to make: `writes` replayed in order (only the soak makes more than one pass).
    pub total: u64,
    pub sample_every: u64,
    pub creates: Vec<String>,
    pub timed_creates: Vec<String>,
    warmup_sid: &'static str,
    warmup: Vec<Write>,
    pub writes: Vec<Write>,
    /// next-*: Some(exit right after the writes?); the writes are time-stamped
    next: Option<bool>,
}

impl Workload {
    /// The workload of `sc` at `sizes`, for run `run` at `latency` ms.
    pub fn new(sc: &Scenario, z: &Sizes, texts: &Texts, latency: u64, run: usize) -> Workload {
        let mut w = Workload {
            scenario: sc.name.to_string(),
            interval_us: 0,
            threads: 1,
            await_each: false,
            total: 0,
            sample_every: 0,
            creates: vec![ses_id(0)],
            timed_creates: Vec::new(),
            warmup_sid: WARMUP_SID,
            warmup: warmup(texts),
            writes: Vec::new(),
            next: None,
        };
        (sc.writes)(&mut w, texts, z, At { latency, run });
        if w.total == 0 {
            w.total = w.writes.len() as u64;
        }
        w
    }

    /// A successor protocol's workload: its own warm-up, time stamps, and how it ends.
    pub fn next(&mut self, texts: &Texts, exit: bool) {
        self.warmup_sid = NEXT_WARMUP_SID;
        self.warmup = warmup_of(texts, NEXT_WARMUP_SID, true);
        self.next = Some(exit);
    }

    /// Each write's key and version, in file order (what the drivers' time stamps refer to).
    pub fn written(&self) -> Vec<(&str, u64)> {
        self.writes.iter().map(|w| (w.key.as_str(), w.v)).collect()
    }

    pub fn scenario(&self) -> &str {
        &self.scenario
    }

    /// What the service must hold at the end: the last content written to each key, by session.
    pub fn finals(&self) -> Vec<(String, String, Value)> {
        let n = self.writes.len() as u64;
        let mut last: BTreeMap<&str, (usize, u64)> = BTreeMap::new();
        for (j, w) in self
            .writes
            .iter()
            .enumerate()
            .take(self.total.min(n) as usize)
        {
            // the last pass that reaches write j
            let pass = (self.total - 1 - j as u64) / n;
            last.insert(&w.key, (j, pass));
        }
        let mut out: Vec<(usize, String, String, Value)> = last
            .into_iter()
            .map(|(key, (j, pass))| {
                let w = &self.writes[j];
                let content = serde_json::from_str(&w.content(pass)).expect("contents are JSON");
                let sid = key.split('/').nth(2).unwrap_or_default().to_string();
                (j, sid, key.to_string(), content)
            })
            .collect();
        out.sort_by_key(|(j, ..)| *j);
        out.into_iter().map(|(_, s, k, v)| (s, k, v)).collect()
    }

    /// The workload file the drivers read (format: this module's comment).
    pub fn file(&self) -> String {
        let mut f = String::new();
        let _ = writeln!(f, "workload\t1\nscenario\t{}", self.scenario);
        let _ = writeln!(
            f,
            "interval_us\t{}\nthreads\t{}",
            self.interval_us, self.threads
        );
        let _ = writeln!(f, "await_each\t{}", u8::from(self.await_each));
        let _ = writeln!(
            f,
            "total\t{}\nsample_every\t{}",
            self.total, self.sample_every
        );
        let _ = writeln!(f, "warmup_create\t{}", self.warmup_sid);
        if let Some(exit) = self.next {
            let finish = if exit { "exit" } else { "drain" };
            let _ = writeln!(f, "finish\t{finish}\nstamp\t1");
        }
        for w in &self.warmup {
            let _ = writeln!(f, "warmup\t{}\t{}\t{}\t{}", w.key, w.v, w.head, w.tail);
        }
        for sid in &self.creates {
            let _ = writeln!(f, "create\t{sid}");
        }
        for sid in &self.timed_creates {
            let _ = writeln!(f, "create_timed\t{sid}");
        }
        for w in &self.writes {
            let (t, k) = (w.thread, &w.key);
            let _ = writeln!(f, "write\t{t}\t{k}\t{}\t{}\t{}", w.v, w.head, w.tail);
        }
        f
    }
}

/// Part k of session 0 (message k / 4), written once each.
pub fn distinct_parts(texts: &Texts, n: u64) -> Vec<Write> {
    (0..n)
        .map(|k| Write::part(texts, 0, k / 4, k, 0, k, len_part(k)))
        .collect()
}

/// The warm-up: 1 000 writes of 10 keys of the warm-up session, version i / 10.
fn warmup(texts: &Texts) -> Vec<Write> {
    warmup_of(texts, WARMUP_SID, false)
}

/// The warm-up of session `sid`; its part contents carry `messageID` when `next`.
fn warmup_of(texts: &Texts, sid: &str, next: bool) -> Vec<Write> {
    const MID: &str = "msg_warmup00000000000000000000";
    (0..1000)
        .map(|i| {
            let k = i % 10;
            let mid = next.then_some(MID);
            let (head, tail) = texts.content_in(&prt_id(k), mid, sid, "part", k, len_part(k));
            Write {
                thread: 0,
                key: format!("session/part/{sid}/{MID}/{}", prt_id(k)),
                v: i / 10,
                head,
                tail,
            }
        })
        .collect()
}
