//! The worker threads: they drain the one job queue, sending ready requests while they hold a
//! sync token and running asynchronous creates and removes. A worker takes a dispatch from the
//! engine, waits until its records are in the spool's log, removes the secret from each
//! content, makes the one request and brings its answer back to the engine, which settles it
//! for every item the request carried. Workers never call the host.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::time::Instant;

use crossbeam_channel::{Receiver, Sender};

use super::instance::Instance;
use super::messages::Job;
use super::spool_writer;
use crate::content;
use crate::engine::{Next, Outcome};
use crate::events::Reason;
use crate::protocol::Item;
use crate::protocol::append::{self, Grown};
use crate::queue::Dispatch;
use crate::registry::Share;
use crate::retry::Attempt;

/// A worker thread's body; `done` is told when it leaves.
pub fn run(instance: Arc<Instance>, jobs: Receiver<Job>, done: Sender<()>) {
    for job in jobs.iter() {
        match job {
            Job::Sync => send_ready(&instance),
            Job::Op(op) => op(), // catches its own panics
            Job::Stop => break,
        }
    }
    let _ = done.send(());
}

/// Sends ready requests, one at a time, until none is ready or `concurrency` are under way;
/// then gives the sync token back.
fn send_ready(instance: &Instance) {
    loop {
        let Some(Next {
            dispatch,
            share,
            bases,
        }) = instance.lock().next_dispatch(Instant::now())
        else {
            return;
        };
        // its records are in the log first; a shutdown may have come meanwhile, and a request
        // of a stopped runtime must not start (it could land after the next run's)
        let seq = dispatch.items.iter().map(|i| i.seq).max().unwrap_or(0);
        let waited = spool_writer::before_send(&instance.spool, seq, instance.config.timeout);
        if waited && instance.lock().is_closed() {
            continue;
        }
        let outcome = match &share {
            Some(share) => post(instance, &dispatch, share, &bases),
            // a purge removes the session's pending keys with its share; kept for safety
            None => Outcome {
                sent: (0..dispatch.items.len()).collect(),
                answer: Some(Attempt::Answered {
                    status: 403,
                    retry_after: None,
                }),
                ..Default::default()
            },
        };
        instance.decide(|engine, fx| {
            engine.settle(&dispatch, share.as_ref(), outcome, Instant::now(), fx)
        });
    }
}

/// Makes one request of the dispatch's items, each with its share's secret removed and its
/// credentials redacted (under `redact`). An item
/// that cannot be made safe, or that is over `max_content_bytes` once made safe, is not sent. A
/// panic in here is a bug: the items are dropped with a `panic` event, never retried.
/// With a service that advertises appends, an item whose content grew from its base (the
/// content acknowledged last) goes as its grows; a refusal (409) sends the items again whole.
fn post(
    instance: &Instance,
    dispatch: &Dispatch,
    share: &Share,
    bases: &[Option<Arc<str>>],
) -> Outcome {
    guarded(dispatch.items.len(), || {
        let mut safe = Vec::with_capacity(dispatch.items.len());
        let (mut not_sent, mut redacted) = (Vec::new(), Vec::new());
        let policy = instance.config.redact.as_deref();
        for (n, item) in dispatch.items.iter().enumerate() {
            let text = content::redact(&item.content, &share.secret)
                .and_then(|text| crate::redact::apply(policy, text))
                .map(|(text, rules, count)| {
                    if count > 0 {
                        redacted.push((n, rules, count));
                    }
                    text
                });
            match text {
                Err(e) => not_sent.push((n, Reason::Unsafe, e.message)),
                Ok(text) if text.len() > instance.config.max_content_bytes => not_sent.push((
                    n,
                    Reason::TooLarge,
                    format!(
                        "{} bytes once the secret was removed; max_content_bytes is {}",
                        text.len(),
                        instance.config.max_content_bytes
                    ),
                )),
                Ok(text) => safe.push((n, text)),
            }
        }
        if safe.is_empty() {
            return Outcome {
                not_sent,
                ..Default::default()
            };
        }
        let appends = instance.http.extensions().append;
        let grown: Vec<Option<Grown>> = safe
            .iter()
            .map(|(n, text)| match &bases[*n] {
                Some(base) if appends => append::grown(base, text),
                _ => None,
            })
            .collect();
        let mut items: Vec<Item<'_>> = safe
            .iter()
            .zip(&grown)
            .map(|((n, text), grown)| Item {
                key: &dispatch.items[*n].key,
                content: text,
                grown: grown.as_ref(),
            })
            .collect();
        let appended = grown.iter().flatten().count();
        let send = |items: &[Item<'_>]| {
            let request = instance.protocol.sync(&dispatch.session, share, items);
            instance.http.send(request, instance.config.timeout)
        };
        let mut answer = send(&items);
        let append_refused = appended > 0 && matches!(&answer, Ok(a) if a.status == 409);
        if append_refused {
            items.iter_mut().for_each(|item| item.grown = None);
            answer = send(&items);
        }
        let texts = if appends {
            safe.iter()
                .map(|(n, text)| (*n, Arc::from(&text[..])))
                .collect()
        } else {
            Vec::new()
        };
        Outcome {
            sent: safe.into_iter().map(|(n, _)| n).collect(),
            answer: Some(answer.map_or_else(|attempt| attempt, |answer| answer.attempt())),
            not_sent,
            redacted,
            texts,
            appended,
            append_refused,
        }
    })
}

/// Runs `send`, turning a panic into a `panic` drop of all `items`.
fn guarded(items: usize, send: impl FnOnce() -> Outcome) -> Outcome {
    catch_unwind(AssertUnwindSafe(send)).unwrap_or_else(|_| panicked(items))
}

/// Every item dropped as a bug.
fn panicked(items: usize) -> Outcome {
    Outcome {
        sent: Vec::new(),
        answer: None,
        not_sent: (0..items)
            .map(|n| {
                (
                    n,
                    Reason::Panic,
                    "the library panicked while sending (a bug; please report it)".into(),
                )
            })
            .collect(),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_while_sending_is_a_dropped_bug_not_a_retried_network_error() {
        let outcome = guarded(3, || panic!("boom"));
        assert!(outcome.answer.is_none() && outcome.sent.is_empty());
        assert_eq!(outcome.not_sent.len(), 3);
        assert!(
            outcome
                .not_sent
                .iter()
                .all(|(_, r, why)| *r == Reason::Panic && why.contains("panicked")),
            "a panic became something else"
        );
    }
}
