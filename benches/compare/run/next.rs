//! One run of a next-* scenario (the successor protocol): the "next" service (services/next.rs), or
//! the v1 service for the library's v1 comparison row, the driver's handshake, and the figures:
//! time to final state, requests, bytes, items per request, staleness, lost items, overlaps.
//!
//! Staleness of a write: the first time the service held that version of its item, or a newer
//! one, minus the write's time. Both are on the orchestrator's clock from t0: the service stamps
//! its stores with `Instant`s in this process, t0 is the moment this process read the driver's
//! `START`, and the driver reports each write as its offset from the moment it printed `START`
//! (`write_us`, from a monotonic clock: C `CLOCK_MONOTONIC`, JS `performance.now()`). The two
//! origins differ by the pipe's delivery of one line (µs), which makes staleness that much too
//! small, never larger.

use std::collections::HashMap;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::contenders::Contender;
use crate::report::stats::median;
use crate::run::{Ctx, Driver, NextFigures, RunResult, measured, ms_since, wire_len};
use crate::scenarios::Scenario;
use crate::services::legacy::ShareService;
use crate::services::next::{NextService, share_id};
use crate::workload::{Workload, next_item_key};

/// What one service saw, in the terms both protocols share.
#[derive(Default)]
struct Observed {
    /// per sync request: wire bytes, body bytes, items, status (0: reset), received, finished
    syncs: Vec<(u64, u64, usize, u16, Instant, Instant)>,
    /// item key → (time stored, version), in time order
    stores: HashMap<String, Vec<(Instant, u64)>>,
    /// item key → the content it holds at the end
    held: HashMap<String, Value>,
    overlaps: Option<usize>,
}

enum Service {
    Next(NextService),
    V1(ShareService),
}

pub fn run_next(ctx: &Ctx, sc: &Scenario, latency: u64, c: &Contender, run: usize) -> RunResult {
    let began = Instant::now();
    let scenario = sc.name;
    let workload = Workload::new(sc, &ctx.sizes, &ctx.texts, latency, run);
    let finals = workload.finals();
    let mut result = RunResult::new(scenario, latency, c, run, finals.len());
    let service = if c.protocol == "next" {
        Service::Next(NextService::start())
    } else {
        Service::V1(ShareService::start())
    };
    let url = match &service {
        Service::Next(s) => s.url(),
        Service::V1(s) => s.url(),
    };
    let name = format!("{scenario}-{latency}ms-{}-{run}", c.id);
    let mut driver = match Driver::start(ctx, c, &url, &workload, &name) {
        Ok(d) => d,
        Err(e) => {
            result.outcome = format!("failed: {e}");
            return result;
        }
    };
    let configure = || {
        let faults = (sc.faults)(&ctx.sizes, run);
        match &service {
            Service::Next(s) => {
                s.set_latency(Duration::from_millis(latency));
                if let Some(f) = faults {
                    // the first syncs' 500s, then the draws
                    s.fail_next_syncs(f.first_syncs_500);
                    s.set_random_faults(f.reset_pct, f.status_500_pct, f.seed);
                }
            }
            Service::V1(s) => {
                s.set_latency(Duration::from_millis(latency));
                if let Some(f) = faults {
                    s.set_random_faults(f.reset_pct, f.status_500_pct, f.seed);
                }
            }
        }
    };
    let Some(t0) = driver.handshake(configure) else {
        driver.kill();
        result.outcome = match driver.skipped.take() {
            Some(why) => format!("skipped: {why}"),
            None => format!(
                "failed: no READY/START from the driver (see {})",
                driver.log.display()
            ),
        };
        return result;
    };
    driver.collect(&mut result, t0 + ctx.cap + Duration::from_secs(5), ctx.cap);
    driver.reap(result.driver.is_some());
    // requests already received when the driver exited are still being answered: let them end
    thread::sleep(Duration::from_millis(2 * latency + 100));
    let observed = match &service {
        Service::Next(s) => observe_next(s, &finals),
        Service::V1(s) => observe_v1(s, &finals),
    };
    figures(&mut result, &observed, &workload, &finals, t0);
    result.wall_s = began.elapsed().as_secs_f64();
    result
}

/// The item a storage key becomes under either protocol (v1: the key itself).
fn item_of(key: &str, next: bool) -> String {
    if next {
        next_item_key(key).unwrap_or_else(|| key.to_string())
    } else {
        key.to_string()
    }
}

fn observe_next(s: &NextService, finals: &[(String, String, Value)]) -> Observed {
    let share = finals
        .first()
        .map(|(sid, _, _)| share_id(sid))
        .unwrap_or_default();
    let mut o = Observed::default();
    for r in s
        .requests()
        .iter()
        .filter(|r| r.is_sync() && r.share == share)
    {
        o.syncs.push((
            r.wire_bytes,
            r.body_bytes,
            r.items,
            r.status,
            r.received,
            r.finished,
        ));
    }
    for st in s.stored().into_iter().filter(|st| st.share == share) {
        o.stores
            .entry(st.item)
            .or_default()
            .push((st.at, st.v.unwrap_or(0)));
    }
    for (item, v) in s.items(&share).unwrap_or_default() {
        o.held
            .insert(item, v.get("data").cloned().unwrap_or(Value::Null));
    }
    o.overlaps = Some(s.overlaps(&share));
    o
}

fn observe_v1(s: &ShareService, finals: &[(String, String, Value)]) -> Observed {
    let mut o = Observed::default();
    for r in s.requests().iter().filter(|r| measured(r)) {
        o.syncs.push((
            wire_len(r),
            r.body.len() as u64,
            1,
            r.status,
            r.received,
            r.finished,
        ));
        let Some(obj) = r.json.as_ref().filter(|_| r.status == 200) else {
            continue;
        };
        let key = obj.get("key").and_then(Value::as_str).unwrap_or_default();
        let v = obj
            .pointer("/content/v")
            .and_then(Value::as_u64)
            .unwrap_or(0);
        // the v1 service stores a content just before it answers
        o.stores
            .entry(key.to_string())
            .or_default()
            .push((r.finished, v));
    }
    let mut sids: Vec<&str> = finals.iter().map(|(sid, _, _)| sid.as_str()).collect();
    sids.dedup();
    for sid in sids {
        for (key, v) in s.data(sid).unwrap_or_default() {
            o.held.insert(key, v);
        }
    }
    o
}

fn figures(
    result: &mut RunResult,
    o: &Observed,
    workload: &Workload,
    finals: &[(String, String, Value)],
    t0: Instant,
) {
    let next = o.overlaps.is_some();
    let mut items = Vec::new();
    for &(wire, body, n, status, _, _) in &o.syncs {
        result.requests += 1;
        result.wire_bytes += wire;
        result.body_bytes += body;
        match status {
            200 => result.answered_200 += 1,
            500 => result.answered_500 += 1,
            0 => result.reset_or_unanswered += 1,
            _ => {}
        }
        items.push(n as f64);
    }
    // per item: the running highest version stored, by time
    let mut highest: HashMap<&str, Vec<(Instant, u64)>> = HashMap::new();
    for (item, list) in &o.stores {
        let mut l = list.clone();
        l.sort_by_key(|(at, _)| *at);
        let mut top = 0;
        let run: Vec<(Instant, u64)> = l
            .into_iter()
            .enumerate()
            .map(|(i, (at, v))| {
                top = if i == 0 { v } else { top.max(v) };
                (at, top)
            })
            .collect();
        highest.insert(item.as_str(), run);
    }
    let first_at = |item: &str, v: u64| -> Option<Instant> {
        let run = highest.get(item)?;
        let i = run.partition_point(|(_, top)| *top < v);
        run.get(i).map(|(at, _)| *at)
    };
    // final state
    let mut last: Option<Instant> = None;
    for (_, key, want) in finals {
        let item = item_of(key, next);
        if o.held.get(&item) == Some(want) {
            result.keys_final += 1;
            let v = want.get("v").and_then(Value::as_u64).unwrap_or(0);
            if let Some(at) = first_at(&item, v) {
                last = Some(last.map_or(at, |l| l.max(at)));
            }
        }
    }
    result.last_final_ms = last.map(|at| ms_since(t0, at));
    if result.keys_final == result.keys_expected {
        result.time_to_final_ms = result.last_final_ms;
    } else if result.outcome == "ok" {
        result.outcome = format!(
            "incomplete: {} of {} items hold their final content",
            result.keys_final, result.keys_expected
        );
    }
    // staleness, write by write (the driver's stamps are in file order)
    let stamps: Vec<f64> = result
        .driver
        .as_ref()
        .and_then(|d| d.get("write_us"))
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_f64).collect())
        .unwrap_or_default();
    let mut stale = Vec::new();
    let mut never = 0;
    for ((key, v), us) in workload.written().into_iter().zip(&stamps) {
        let wrote = t0 + Duration::from_secs_f64(us / 1e6);
        match first_at(&item_of(key, next), v) {
            Some(at) => stale.push(at.saturating_duration_since(wrote).as_secs_f64() * 1000.0),
            None => never += 1,
        }
    }
    never += workload.written().len().saturating_sub(stamps.len());
    let max = stale
        .iter()
        .cloned()
        .fold(None, |m: Option<f64>, x| Some(m.map_or(x, |m| m.max(x))));
    let lw = result.drv("last_write_ns").map(|ns| ns / 1e6);
    if let (Some(lw), Some(t)) = (lw, result.time_to_final_ms) {
        result.lag_ms = Some(t - lw);
    }
    let gaps: Vec<f64> = o
        .syncs
        .windows(2)
        .filter(|w| w[1].4 >= w[0].5)
        .map(|w| (w[1].4 - w[0].5).as_secs_f64() * 1000.0)
        .collect();
    result.turnaround_ms = median(gaps);
    let n = items.len().max(1) as f64;
    result.next = Some(NextFigures {
        items_per_request: (!items.is_empty()).then(|| items.iter().sum::<f64>() / n),
        max_items_per_request: items
            .iter()
            .cloned()
            .fold(None, |m: Option<f64>, x| Some(m.map_or(x, |m| m.max(x)))),
        staleness_median_ms: if stamps.is_empty() {
            None
        } else {
            median(stale)
        },
        staleness_max_ms: if never == 0 { max } else { None },
        writes_never_stored: never,
        lost_items: result.keys_expected - result.keys_final,
        overlaps: o.overlaps,
    });
}
