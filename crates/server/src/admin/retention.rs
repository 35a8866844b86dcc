//! `--expire-after DAYS`: a sweep deletes the shares nobody wrote to for that long and closes
//! their viewers. Bounded: at most `BATCH` shares a transaction, a pause between batches, so a
//! backlog (the first sweep after turning it on) never holds the writer for long.

use std::sync::Arc;
use std::time::Duration;

use crate::state::AppState;

/// Most shares one transaction of the sweep deletes (each with all its items: on SQLite the
/// writer's other jobs wait for that transaction, so it stays small).
const BATCH: usize = 100;

/// Sweeps every `every` (the first at once) while the runtime lives.
pub fn spawn(state: Arc<AppState>, idle: Duration, every: Duration) {
    let idle_secs = i64::try_from(idle.as_secs()).unwrap_or(i64::MAX);
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            sweep(&state, idle_secs).await;
        }
    });
}

/// Deletes idle shares batch by batch until none is left (or the store fails: the next tick
/// tries again).
async fn sweep(state: &AppState, idle_secs: i64) {
    let mut total = 0;
    loop {
        match state.store.expire(idle_secs, BATCH).await {
            Ok(gone) => {
                for id in &gone {
                    state.hub.close(id);
                }
                total += gone.len();
                if gone.len() < BATCH {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => {
                tracing::warn!(error = ?e, "the retention sweep failed; it runs again later");
                break;
            }
        }
    }
    if total > 0 {
        tracing::info!(
            expired = total,
            idle_days = idle_secs / 86_400,
            "expired idle shares"
        );
    }
}
