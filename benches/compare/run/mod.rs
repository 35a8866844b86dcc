//! One run of a legacy scenario: a fresh service, the driver of one contender replaying one
//! workload, and the figures read from the service afterwards (what only the driver can measure
//! comes in its RESULT line). Beside it: the driver process, a run's record, a next-* run.

mod driver;
pub mod next;
mod result;

pub use driver::Driver;
pub use result::{NextFigures, RunResult, progress};

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::contenders::{Contender, Kind, Paths};
use crate::scenarios::{self, Scenario, stream};
use crate::services::legacy::{self as service, ShareService};
use crate::workload::{Sizes, Texts, Workload};

/// What a run needs besides its case.
pub struct Ctx {
    pub paths: Paths,
    pub sizes: Sizes,
    pub texts: Texts,
    pub cap: Duration,
}

/// A key's final content and the session it belongs to.
pub type Finals = Vec<(String, String, Value)>;

pub fn run_one(ctx: &Ctx, scenario: &str, latency: u64, c: &Contender, run: usize) -> RunResult {
    let sc = scenarios::get(scenario);
    if sc.next {
        return next::run_next(ctx, sc, latency, c, run);
    }
    let began = Instant::now();
    // Latency and faults are set once the driver is READY: setup and warm-up run at 0 ms, clean.
    let service = ShareService::start();
    let workload = Workload::new(sc, &ctx.sizes, &ctx.texts, latency, run);
    let finals = workload.finals();
    let mut result = RunResult::new(scenario, latency, c, run, finals.len());
    let name = format!("{scenario}-{latency}ms-{}-{run}", c.id);
    let mut driver = match Driver::start(ctx, c, &service.url(), &workload, &name) {
        Ok(d) => d,
        Err(e) => {
            result.outcome = format!("failed: {e}");
            return result;
        }
    };
    let Some(t0) = driver.handshake(|| configure(&service, ctx, sc, latency, run)) else {
        driver.kill();
        result.outcome = format!(
            "failed: no READY/START from the driver (see {})",
            driver.log.display()
        );
        return result;
    };
    driver.collect(&mut result, t0 + ctx.cap + Duration::from_secs(5), ctx.cap);
    driver.reap(result.driver.is_some());
    let requests = service.requests();
    let syncs: Vec<&service::Recorded> = requests.iter().filter(|r| measured(r)).collect();
    let arrivals = count_requests(&mut result, &syncs, &finals);
    judge_finals(&mut result, &service, &finals, &arrivals, t0, c.kind);
    if scenario == stream::SCENARIO.name {
        stream::figures(&mut result, &syncs, &finals, &arrivals, t0);
    }
    result.wall_s = began.elapsed().as_secs_f64();
    result
}

/// The service as the scenario wants it once setup is done: its latency, and faults.
fn configure(service: &ShareService, ctx: &Ctx, sc: &Scenario, latency: u64, run: usize) {
    service.set_latency(Duration::from_millis(latency));
    if let Some(f) = (sc.faults)(&ctx.sizes, run) {
        service.set_random_faults(f.reset_pct, f.status_500_pct, f.seed);
    }
}

/// A request that counts: a sync outside the drivers' warm-up (session ses_warmup..., before START).
pub fn measured(r: &service::Recorded) -> bool {
    r.path == "/share_sync" && !r.body.contains("\"ses_warmup")
}

/// When a key's final content first arrived (received) and was stored (finished).
type Arrivals<'a> = HashMap<&'a str, (Instant, Instant)>;

/// Counts the syncs, their bytes and answers; notes each key's first 200 carrying its final content.
fn count_requests<'a>(
    result: &mut RunResult,
    syncs: &[&service::Recorded],
    finals: &'a Finals,
) -> Arrivals<'a> {
    let expected: HashMap<&str, &Value> = finals.iter().map(|(_, k, v)| (k.as_str(), v)).collect();
    let mut arrivals: Arrivals = HashMap::new();
    let mut conns = HashSet::new();
    for r in syncs {
        result.requests += 1;
        result.wire_bytes += wire_len(r);
        result.body_bytes += r.body.len() as u64;
        conns.insert(r.conn);
        match r.status {
            200 => result.answered_200 += 1,
            500 => result.answered_500 += 1,
            0 => result.reset_or_unanswered += 1,
            _ => {}
        }
        let Some(obj) = r
            .json
            .as_ref()
            .and_then(Value::as_object)
            .filter(|_| r.status == 200)
        else {
            continue;
        };
        let key = obj.get("key").and_then(Value::as_str).unwrap_or_default();
        let Some((key, want)) = expected.get_key_value(key) else {
            continue;
        };
        if obj.get("content") == Some(*want) {
            arrivals.entry(key).or_insert((r.received, r.finished));
        }
    }
    result.connections = conns.len();
    arrivals
}

pub fn wire_len(r: &service::Recorded) -> u64 {
    // request line + headers as received + blank line + body
    let line = "POST ".len() + r.path.len() + " HTTP/1.1\r\n".len();
    let headers: usize = r
        .headers
        .iter()
        .map(|(n, v)| n.len() + 2 + v.len() + 2)
        .sum();
    (line + headers + 2 + r.body.len()) as u64
}

/// Which keys the service holds with their final content at the end, and when the last arrived.
fn judge_finals(
    result: &mut RunResult,
    service: &ShareService,
    finals: &Finals,
    arrivals: &Arrivals,
    t0: Instant,
    kind: Kind,
) {
    let mut data: BTreeMap<&str, BTreeMap<String, Value>> = BTreeMap::new();
    for (sid, _, _) in finals {
        data.entry(sid)
            .or_insert_with(|| service.data(sid).unwrap_or_default());
    }
    let mut last: Option<Instant> = None;
    for (sid, key, want) in finals {
        if data.get(sid.as_str()).and_then(|d| d.get(key)) == Some(want) {
            result.keys_final += 1;
            if let Some((_, at)) = arrivals.get(key.as_str()) {
                last = Some(last.map_or(*at, |l| l.max(*at)));
            }
        }
    }
    result.last_final_ms = last.map(|at| ms_since(t0, at));
    if kind == Kind::Null {
        // the driver alone sends nothing: only its own costs count
        result.last_final_ms = None;
        if result.outcome == "ok" {
            result.outcome = "reference".into();
        }
    } else if result.keys_final == result.keys_expected {
        result.time_to_final_ms = result.last_final_ms;
    } else if result.outcome == "ok" {
        result.outcome = format!(
            "incomplete: {} of {} keys hold their final content",
            result.keys_final, result.keys_expected
        );
    }
}

pub fn ms_since(t0: Instant, at: Instant) -> f64 {
    at.saturating_duration_since(t0).as_secs_f64() * 1000.0
}
