//! The journal is the engine's durable memory: any sequence of writes, share records, answers
//! (sent, retry, 500, drop, unshared, not sent), removes, timer ticks, spool-thread swaps,
//! crashes and recoveries gives back, by replaying the journal's records (through the spool's
//! on-disk format and its live set), exactly the pending set and the shares the engine had.

use std::sync::Arc;
use std::time::{Duration, Instant};

use foldhash::HashMap;
use proptest::prelude::*;

use super::{Effects, Engine, Outcome};
use crate::events::Reason;
use crate::queue::{Batch, Dispatch, Limits};
use crate::registry::{Secret, Share};
use crate::retry::{Attempt, RetryPolicy};
use crate::spool::live::Live;
use crate::spool::record::FRAME_LEN;
use crate::spool::{Record, Recovery};

#[derive(Debug, Clone)]
enum Answer {
    Sent,
    Retry,
    Refusal,
    Reject,
    Unshared,
    /// The first item was not sent (unsafe), the rest sent.
    FirstUnsafe,
}

#[derive(Debug, Clone)]
enum Op {
    /// A share record for session `s` (secret generation `g`: a new one replaces the share).
    Share {
        s: u8,
        g: u8,
    },
    Write {
        s: u8,
        k: u8,
    },
    Dispatch,
    Answer {
        n: usize,
        answer: Answer,
    },
    Remove {
        s: u8,
    },
    /// The service confirmed the deletion of session `s`'s share.
    Deleted {
        s: u8,
    },
    Tick,
    /// The spool thread takes the journal.
    Swap,
    /// The process dies and a new one recovers from the log.
    Crash,
}

fn op() -> impl Strategy<Value = Op> {
    let answer = prop_oneof![
        4 => Just(Answer::Sent),
        2 => Just(Answer::Retry),
        2 => Just(Answer::Refusal),
        1 => Just(Answer::Reject),
        1 => Just(Answer::Unshared),
        1 => Just(Answer::FirstUnsafe),
    ];
    prop_oneof![
        2 => (0u8..3, 0u8..2).prop_map(|(s, g)| Op::Share { s, g }),
        8 => (0u8..3, 0u8..4).prop_map(|(s, k)| Op::Write { s, k }),
        1 => (0u8..3).prop_map(|s| Op::Deleted { s }),
        4 => Just(Op::Dispatch),
        5 => (0usize..4, answer).prop_map(|(n, answer)| Op::Answer { n, answer }),
        1 => (0u8..3).prop_map(|s| Op::Remove { s }),
        2 => Just(Op::Tick),
        2 => Just(Op::Swap),
        1 => Just(Op::Crash),
    ]
}

struct Run {
    limits: Limits,
    engine: Engine,
    /// The log: every record the spool thread took, in order.
    log: Vec<Record>,
    /// Requests under way: the dispatch and the share it was made with.
    flying: Vec<(Dispatch, Option<Share>)>,
    now: Instant,
    writes: u64,
}

impl Run {
    fn new(batch: bool) -> Run {
        let limits = Limits {
            concurrency: 2,
            max_retries: 2,
            max_pending_bytes: 1 << 30,
            min_interval: Duration::ZERO,
            probe_interval: Duration::from_secs(5),
            batch: batch.then_some(Batch {
                max_bytes: 1 << 20,
                order: |_| 0,
            }),
        };
        let mut run = Run {
            limits,
            engine: Engine::new(limits, policy()),
            log: Vec::new(),
            flying: Vec::new(),
            now: Instant::now(),
            writes: 0,
        };
        run.recover();
        run
    }

    fn apply(&mut self, op: &Op) {
        let mut fx = Effects::default();
        let now = self.now;
        match op {
            Op::Share { s, g } => {
                let share = Share::with_secret(Secret::new(&format!("secret-{s}-{g}")));
                self.engine
                    .accept_share(&session(*s), share, None, now)
                    .unwrap();
            }
            Op::Write { s, k } => {
                self.writes += 1;
                let text: Arc<str> = format!("\"{s}/{k} #{}\"", self.writes).into();
                let key = format!("session/part/{}/m/{k}", session(*s));
                let _ = self
                    .engine
                    .accept_content(&key, &session(*s), text, || now, &mut fx);
            }
            Op::Dispatch => {
                if let Some(d) = self.engine.next_dispatch(now) {
                    self.flying.push((d.dispatch, d.share));
                }
            }
            Op::Answer { n, answer } if !self.flying.is_empty() => {
                let (dispatch, share) = self.flying.remove(n % self.flying.len());
                let outcome = outcome(&dispatch, answer);
                self.engine
                    .settle(&dispatch, share.as_ref(), outcome, now, &mut fx);
            }
            Op::Answer { .. } => {}
            Op::Remove { s } => {
                let secret = self
                    .engine
                    .known_secret(&session(*s))
                    .unwrap_or_else(|| Secret::new("given-by-the-host"));
                self.engine.forget(&session(*s), secret, now, &mut fx);
            }
            Op::Deleted { s } => self.engine.deleted(&session(*s)),
            Op::Tick => {
                self.now += Duration::from_secs(2);
                self.engine.tick(self.now, &mut fx);
            }
            Op::Swap => self.swap(),
            Op::Crash => {
                self.swap();
                self.engine = Engine::new(self.limits, policy());
                self.flying.clear();
                self.recover();
            }
        }
    }

    /// What the spool thread does: the journal's records go to the log, through the format.
    fn swap(&mut self) {
        let mut records = Vec::new();
        let mut index = HashMap::default();
        self.engine.journal_mut().swap(&mut records, &mut index);
        for record in records {
            let mut frame = Vec::new();
            record.encode(&mut frame).expect("fits");
            let read = Record::decode(&frame[FRAME_LEN..]).expect("reads back");
            self.log.push(read);
        }
    }

    fn live(&self) -> Live {
        let mut live = Live::default();
        for record in &self.log {
            live.apply(record);
        }
        live
    }

    /// A new engine takes what the log holds, as `share_init` does.
    fn recover(&mut self) {
        let live = self.live();
        let recovery = Recovery {
            shares: live.shares(),
            ledger: live.ledger(),
            contents: live.contents(),
            next_seq: live.next_seq(),
            records: self.log.len() as u64,
            skipped_bytes: 0,
        };
        let (deferred, _) = self.engine.recover(recovery, self.now);
        assert_eq!(deferred, 0);
    }

    /// The pending set and the shares, as the engine has them and as the log replays them.
    fn check(&mut self) -> Result<(), TestCaseError> {
        self.swap();
        let live = self.live();
        let replayed: Vec<(Arc<str>, Arc<str>)> = {
            let mut all: Vec<_> = live
                .contents()
                .into_iter()
                .map(|c| (c.key, c.text))
                .collect();
            all.sort();
            all
        };
        prop_assert_eq!(&replayed, &self.engine.queue.contents());
        let shares: Vec<(String, String)> = live
            .shares()
            .into_iter()
            .map(|s| (s.session.to_string(), s.secret.expose().to_owned()))
            .collect();
        let mut held: Vec<(String, String)> = (0..3)
            .filter_map(|s| {
                let share = self.engine.registry.get(&session(s))?;
                Some((session(s), share.secret.expose().to_owned()))
            })
            .collect();
        held.sort();
        prop_assert_eq!(shares, held);
        // the ledger, as the engine has it and as the log replays it (its "last synced" times
        // are journaled at most once a second, so they are not compared)
        let ledger = |entries: Vec<crate::spool::Entry>| -> Vec<(String, String, bool)> {
            entries
                .into_iter()
                .map(|e| {
                    let s = e.share;
                    (
                        s.session.to_string(),
                        s.secret.expose().to_owned(),
                        e.removing,
                    )
                })
                .collect()
        };
        prop_assert_eq!(ledger(live.ledger()), ledger(self.engine.ledger.entries()));
        Ok(())
    }
}

fn policy() -> RetryPolicy {
    RetryPolicy {
        initial: Duration::from_millis(100),
        max: Duration::from_secs(1),
        max_retries: 2,
    }
}

fn session(s: u8) -> String {
    format!("ses_{s}")
}

fn outcome(dispatch: &Dispatch, answer: &Answer) -> Outcome {
    let answered = |status| {
        Some(Attempt::Answered {
            status,
            retry_after: None,
        })
    };
    let all = (0..dispatch.items.len()).collect();
    let (sent, answer, not_sent) = match answer {
        Answer::Sent => (all, answered(200), Vec::new()),
        Answer::Retry => (all, answered(503), Vec::new()),
        Answer::Refusal => (all, answered(500), Vec::new()),
        Answer::Reject => (all, answered(400), Vec::new()),
        Answer::Unshared => (all, answered(404), Vec::new()),
        Answer::FirstUnsafe => {
            let rest: Vec<usize> = (1..dispatch.items.len()).collect();
            let answer = if rest.is_empty() { None } else { answered(200) };
            (rest, answer, vec![(0, Reason::Unsafe, "unsafe".into())])
        }
    };
    Outcome {
        sent,
        answer,
        not_sent,
        ..Default::default()
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, .. ProptestConfig::default() })]

    #[test]
    fn replaying_the_journal_gives_back_the_pending_set(
        batch in any::<bool>(),
        ops in proptest::collection::vec(op(), 1..120),
    ) {
        let mut run = Run::new(batch);
        for op in &ops {
            run.apply(op);
            run.engine.queue.check();
            if matches!(op, Op::Crash | Op::Swap) {
                run.check()?;
            }
        }
        run.check()?;
    }
}

/// A 404 for a request made with a share the host has replaced since: the engine drops the
/// request's contents (the new share stays), and so must the journal.
#[test]
fn contents_given_up_under_a_replaced_share_are_journaled() {
    let mut run = Run::new(false);
    for op in [
        Op::Share { s: 0, g: 0 },
        Op::Write { s: 0, k: 0 },
        Op::Dispatch,
        Op::Share { s: 0, g: 1 },
        Op::Answer {
            n: 0,
            answer: Answer::Unshared,
        },
    ] {
        run.apply(&op);
    }
    assert!(run.engine.queue.contents().is_empty());
    run.check().unwrap();
}
