// The asynchronous operations: create, remove and flush start on the library's _async entry
// points and settle in opDone (from the op callback under Node, from bun.ts's poller under Bun);
// nothing blocks the event loop.

import { textArg, timeoutArg } from "./args.js";
import { drainEvents } from "./drain.js";
import { passAll } from "./handover.js";
import type { NativeStart, Native } from "./native.js";
import { updateSink } from "./sink.js";
import { state } from "./state.js";
import { OK, failure, notInitialized } from "./status.js";
import type { ShareInfo } from "./types.js";

export const DEFAULT_TIMEOUT_MS = 10_000;

/** Starts an operation with `call`; the promise settles when the library's callback says it ended. */
export function start(call: (n: Native) => NativeStart, flush = false): Promise<string> {
  const n = state.native;
  if (!n) return Promise.reject(notInitialized());
  let started: NativeStart;
  try {
    started = call(n);
  } catch (e) {
    return Promise.reject(e);
  }
  if (started.status !== OK) return Promise.reject(failure(n, started.status));
  return new Promise((resolve, reject) => {
    state.ops.set(started.opId, { resolve, reject, flush });
    keepAlive();
  });
}

/** The library's op callback, on the JS thread: takes the result and settles the promise. */
export function opDone(opId: number): void {
  const n = state.native;
  if (!n) return;
  // events raised before the operation ended reach listeners (and settle keys) before it resolves
  drainEvents();
  // the result is taken whoever started the operation, so the library never keeps it
  const out = n.opTake(opId);
  const op = state.ops.get(opId);
  const error = out.status === OK ? undefined : failure(n, out.status);
  if (!op) return;
  state.ops.delete(opId);
  if (state.ops.size === 0) letExit();
  if (pendingCreatesAndRemoves() === 0) for (const wake of state.idleWaiters.splice(0)) wake();
  if (error) op.reject(error);
  else op.resolve(out.json ?? "{}");
}

/**
 * Creates the share of `sessionID` (POST /share_create, retried within timeout_ms) and
 * remembers it, so later syncs of the session go out. Never blocks the event loop.
 */
export async function create(sessionID: string): Promise<ShareInfo> {
  const json = await start((n) => n.createAsync(textArg("sessionID", sessionID)));
  const { id, url, secret } = JSON.parse(json) as ShareInfo;
  return id === undefined ? { url, secret } : { id, url, secret };
}

/**
 * Removes the share of `sessionID`: its pending syncs are dropped and its share forgotten at
 * once; the promise settles after its requests in flight ended and /share_delete answered.
 */
export async function remove(sessionID: string, secret: string): Promise<void> {
  await start((n) => n.removeAsync(textArg("sessionID", sessionID), textArg("secret", secret)));
}

/**
 * Removes the share of `sessionID` with the secret the ledger holds (see `list`), for a host
 * that no longer has the session (after a restart on the same `spool_dir`, say). Rejects with
 * SHARE_ERR_INVALID_ARGUMENT if the ledger has no share of it. The share leaves the ledger once
 * the service confirms (2xx, 404 or 410); otherwise the next init on the folder sends it again.
 */
export async function removeKnown(sessionID: string): Promise<void> {
  await start((n) => n.removeKnownAsync(textArg("sessionID", sessionID)));
}

/**
 * Resolves when every write accepted before the call has been sent or dropped (retries
 * included); rejects with SHARE_ERR_TIMEOUT after `timeoutMs`. Completes through
 * share_flush_async's callback: nothing polls, and writes made meanwhile do not move the goal.
 */
export async function flush(timeoutMs: number = DEFAULT_TIMEOUT_MS): Promise<void> {
  const ms = timeoutArg("timeoutMs", timeoutMs);
  passAll();
  updateSink();
  await start((n) => n.flushAsync(ms), true);
}

/**
 * The blocking flush, for exit paths where nobody awaits a promise (opencode's plugin `dispose`,
 * `process.on("exit")`): holds the JS thread until every write accepted before the call has been
 * sent or dropped (with a spool, what is left stays there for the next start), or `timeoutMs`.
 * Throws SHARE_ERR_TIMEOUT when time ran out. Creates and removes in flight are not waited for.
 */
export function flushSync(timeoutMs: number = DEFAULT_TIMEOUT_MS): void {
  const ms = timeoutArg("timeoutMs", timeoutMs);
  const n = state.native;
  if (!n) throw notInitialized();
  passAll();
  updateSink();
  const status = n.flush(ms);
  drainEvents();
  if (status !== OK) throw failure(n, status);
}

export function pendingCreatesAndRemoves(): number {
  let n = 0;
  for (const op of state.ops.values()) if (!op.flush) n++;
  return n;
}

/** Resolves once no create/remove is pending. */
export function noCreatesOrRemoves(): Promise<void> {
  if (pendingCreatesAndRemoves() === 0) return Promise.resolve();
  return new Promise((resolve) => state.idleWaiters.push(resolve));
}

/**
 * Keeps the process alive while an operation is pending: Bun's threadsafe callbacks and koffi's
 * registered callbacks do not, so a process could exit before a create's answer arrives.
 */
function keepAlive(): void {
  state.keepAlive ??= setInterval(() => {}, 1 << 30);
}

function letExit(): void {
  if (state.keepAlive !== undefined) clearInterval(state.keepAlive);
  state.keepAlive = undefined;
}
