// A run of the library: init (with the host's subscription), stats, and shutdown.

import { timeoutArg } from "./args.js";
import { drainEvents } from "./drain.js";
import { holdBound, passAll, resetHeld, syncFromHost } from "./handover.js";
import { load } from "./library.js";
import { DEFAULT_TIMEOUT_MS, noCreatesOrRemoves, pendingCreatesAndRemoves, start } from "./ops.js";
import { updateSink } from "./sink.js";
import { state } from "./state.js";
import { ALREADY_INITIALIZED, OK, STATUS, ShareError, TIMEOUT, failure, notInitialized } from "./status.js";
import type { InitOptions, LedgerEntry, ShareStats } from "./types.js";

/**
 * Starts the library. `options` are share_init's configuration keys plus `libraryPath` and
 * `subscribe`. Throws a ShareError (SHARE_ERR_ALREADY_INITIALIZED while running, nothing
 * changed; SHARE_ERR_INVALID_ARGUMENT for a bad config; SHARE_ERR_LIBRARY when the library
 * cannot be found or loaded).
 */
export function init(options: InitOptions = {}): void {
  if (state.stopping) throw new ShareError(ALREADY_INITIALIZED, "Share.shutdown is still running: await it before Share.init");
  const { libraryPath, subscribe, spoolDir, ...config } = options;
  const n = load(libraryPath);
  const status = n.init(JSON.stringify(spoolDir === undefined ? config : { ...config, spool_dir: spoolDir }));
  if (status !== OK) throw failure(n, status);
  resetHeld();
  state.holdMs = holdBound(config.protocol);
  state.skipped = 0;
  // spool: a held content is in no spool, so with one every write goes to the library at once
  state.holds = spoolDir === undefined && config.spool_dir === undefined;
  const mine = ++state.run;
  state.liveRun = mine;
  if (subscribe) {
    const off = subscribe((key, content) => {
      // a host that cannot unsubscribe keeps calling: after shutdown its writes are ignored
      if (state.liveRun === mine) syncFromHost(key, content);
    });
    if (typeof off === "function") state.unsubscribe = off as () => void;
  }
}

/**
 * Flushes and waits for pending creates/removes up to `timeoutMs`, then stops the library
 * (share_shutdown with the time left). Work left at the deadline is dropped (a `dropped`
 * event) and the promise rejects with SHARE_ERR_TIMEOUT; the library is stopped either way and
 * `init` may be called again. Unsubscribes what `subscribe` returned.
 */
export function shutdown(timeoutMs: number = DEFAULT_TIMEOUT_MS): Promise<void> {
  if (state.stopping) return state.stopping;
  let ms: number;
  try {
    ms = timeoutArg("timeoutMs", timeoutMs);
  } catch (e) {
    return Promise.reject(e);
  }
  if (!state.native) return Promise.reject(notInitialized());
  state.stopping = stop(ms).finally(() => {
    state.stopping = undefined;
  });
  return state.stopping;
}

/** shutdown's work: stop holding, unsubscribe, wait within `ms`, then stop the library. */
async function stop(ms: number): Promise<void> {
  const n = state.native!;
  // from now on every write goes straight to the library, which flushes or counts it
  passAll();
  state.liveRun = 0;
  state.recent.clear();
  const off = state.unsubscribe;
  state.unsubscribe = undefined;
  if (off) off();
  const deadline = performance.now() + ms;
  const abandoned = await settleWithin(ms);
  const left = Math.max(0, Math.floor(deadline - performance.now()));
  const { status, message } = await n.shutdown(left);
  drainEvents();
  updateSink();
  if (status !== OK) throw new ShareError(status, message || `${STATUS[status] ?? status}`);
  // Creates/removes still pending when the wait ended are abandoned (they reject with
  // SHARE_ERR_TIMEOUT): the deadline came with work left, whatever the library answered.
  if (abandoned > 0) {
    throw new ShareError(
      TIMEOUT,
      `shutdown: the deadline came with ${abandoned} create/remove operation(s) pending; they were abandoned`,
    );
  }
}

/**
 * Waits for the queue's flush and the pending creates/removes, or `ms`, whichever comes first;
 * resolves to the number of creates/removes still pending.
 */
async function settleWithin(ms: number): Promise<number> {
  const flushed = start((n) => n.flushAsync(ms), true).catch(() => undefined);
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeUp = new Promise<void>((resolve) => (timer = setTimeout(resolve, ms)));
  await Promise.race([flushed.then(noCreatesOrRemoves), timeUp]);
  clearTimeout(timer);
  return pendingCreatesAndRemoves();
}

/** The library's counters (see ShareStats); after shutdown, the last run's. */
export function stats(): ShareStats {
  const n = state.native;
  if (!n) throw notInitialized();
  const out = n.stats();
  if (out.status !== OK) throw failure(n, out.status);
  const stats = JSON.parse(out.json ?? "{}") as ShareStats;
  const { held, heldCounts } = state;
  // held writes count as accepted; so queued = sent + coalesced + dropped + pending + in flight + held
  stats.queued += heldCounts.coalesced + held.size;
  stats.coalesced += heldCounts.coalesced;
  stats.rejected += heldCounts.refused;
  stats.ignored += state.skipped;
  stats.held = held.size;
  return stats;
}

/**
 * The ledger: every share the library created or was told of whose deletion the service has
 * not confirmed (with `spool_dir`, across runs), by session id, without secrets.
 */
export function list(): LedgerEntry[] {
  const n = state.native;
  if (!n) throw notInitialized();
  const out = n.list();
  if (out.status !== OK) throw failure(n, out.status);
  return JSON.parse(out.json ?? "[]") as LedgerEntry[];
}

/** The share service's base URL in use (or last used); undefined before `init`. */
export function url(): string | undefined {
  try {
    return stats().url;
  } catch {
    return undefined;
  }
}
