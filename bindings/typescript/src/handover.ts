// The lazy hand-over of storage writes. While a key has content queued or in flight in the
// library, `sync` keeps the key's newest content here, unserialised (the original's `pending`
// map), and hands it over when an event names the key (settle), at flush or at shutdown, and
// under "next" at the latest NEXT_HOLD_MS after it began holding the key: there a parked item
// goes when its interval ends (100 ms, five round trips), before any event names it, and it
// must have the newest content by then. Under v1 the interval is about one round trip and the
// key's event comes first; a bound there costs a second serialisation per round trip of a
// streaming part (measured: Bun's host CPU per write in the stream 54 -> 67 us). A content that
// a newer one replaces is never serialised.

import { textArg } from "./args.js";
import type { DroppedEvent, ShareEvent } from "./event-types.js";
import { emit, listened } from "./events.js";
import type { Native } from "./native.js";
import { updateSink } from "./sink.js";
import { state } from "./state.js";
import { OK, QUEUE_FULL, asShareError, failure, invalid, notInitialized } from "./status.js";

/** Past this many keys, `state.recent` is cleared (a hint, not a record). */
const RECENT_MAX = 4096;
/** Under "next", the longest a key's content waits here before it is handed over anyway, in ms. */
export const NEXT_HOLD_MS = 10;

/** The hold bound of a run of `protocol`. */
export function holdBound(protocol: unknown): number {
  return protocol === "next" ? NEXT_HOLD_MS : Infinity;
}
/** The timer that hands a held key over at the latest, per held key. */
const deadlines = new Map<string, ReturnType<typeof setTimeout>>();

/**
 * Takes one storage write: `content` is any JSON value. Returns at once; the request goes out on
 * a library thread if the session is shared. Throws a ShareError for a malformed key, content
 * that is not JSON, a full queue, or before `init`. While the key's previous content is still
 * queued or in flight, `content` is kept as given (not copied, like the original's pending map)
 * and serialised when the key is free, unless a newer write replaces it first; if it cannot be
 * serialised then, it is dropped with a `dropped` event (reason `invalid`) and counted in
 * `stats().rejected`.
 */
export function sync(key: string, content: unknown): void {
  const n = state.native;
  if (!n) throw notInitialized();
  if (state.liveRun !== 0 && state.holds) {
    const held = state.held;
    if (held.has(key)) {
      state.heldCounts.coalesced++;
      held.set(key, content);
      return;
    }
    if (state.recent.has(key) && stillPending(n, key)) {
      held.set(key, content);
      if (state.holdMs !== Infinity) arm(key, state.holdMs);
      return;
    }
  }
  textArg("key", key);
  handOver(n, key, content);
}

/** `sync` for a write the host handed over through `subscribe`: a refusal becomes an `error` event. */
export function syncFromHost(key: string, content: unknown): void {
  try {
    sync(key, content);
  } catch (e) {
    reportHostError(key, e);
  }
}

/** A failure of work the host handed over and no longer waits for: an `error` event (or a process warning). */
export function reportHostError(key: unknown, e: unknown, what = `sync(${JSON.stringify(key)})`): void {
  const error = asShareError(e);
  if (listened("error")) emit("error", { type: "error", key, error });
  else process.emitWarning(`opencode-share: ${what} failed: ${error.message}`, { code: error.code });
}

/**
 * Whether `key` still has content pending in the library. The event sink is set before asking,
 * so the event that ends a pending content cannot slip by unseen.
 */
function stillPending(n: Native, key: string): boolean {
  updateSink(true);
  if (n.pending(key)) return true;
  state.recent.delete(key);
  updateSink();
  return false;
}

/** Hands `key` over in `ms` unless an event does first (the timer keeps no process alive). */
function arm(key: string, ms: number): void {
  const timer = setTimeout(() => {
    deadlines.delete(key);
    pass(key);
  }, ms);
  (timer as { unref?: () => void }).unref?.();
  deadlines.set(key, timer);
}

/** Serialises `content` and gives it to the library; notes the key if it was queued. */
function handOver(n: Native, key: string, content: unknown): void {
  let json: string | undefined;
  try {
    json = JSON.stringify(content);
  } catch (e) {
    throw invalid(`content cannot be serialised as JSON: ${e instanceof Error ? e.message : String(e)}`, e);
  }
  if (json === undefined) throw invalid(`content is not a JSON value (${typeof content})`);
  const status = n.sync(key, json);
  if (status !== OK) throw failure(n, status);
  if (state.liveRun !== 0 && n.queued()) {
    const recent = state.recent;
    if (recent.size >= RECENT_MAX) recent.clear();
    recent.add(key);
  }
}

/** The session a storage key belongs to: `session/<kind>/<sessionID>/…`. */
function sessionOf(key: string): string | undefined {
  return key.split("/", 3)[2];
}

/** Hands every held content (of `session` only, if given) to the library now. */
export function passAll(session?: string): void {
  for (const key of [...state.held.keys()]) if (session === undefined || sessionOf(key) === session) pass(key);
}

/**
 * Hands `key`'s held content, if any, to the library. One that cannot be serialised or is
 * refused now is reported as dropped: the write that gave it returned long ago.
 */
function pass(key: string): void {
  const n = state.native;
  const held = state.held;
  if (!n || !held.has(key)) return;
  const content = held.get(key);
  held.delete(key);
  const timer = deadlines.get(key);
  if (timer !== undefined) {
    clearTimeout(timer);
    deadlines.delete(key);
  }
  try {
    handOver(n, key, content);
  } catch (e) {
    const error = asShareError(e);
    if (error.status === QUEUE_FULL) return; // the library counted and reported this one
    state.heldCounts.refused++;
    const event: DroppedEvent = { type: "dropped", reason: "invalid", key, count: 1, error: error.message };
    emit("dropped", event);
    emit("*", event);
  }
}

/** Hands over what the library's `event` frees: its key's held content, or its session's, or all. */
export function settle(event: ShareEvent): void {
  if (state.held.size === 0) return;
  // a refused share's keys stay pending in the library, which holds their newest content anyway
  if (event.type === "unshared" || event.type === "refused" || event.type === "resumed") passAll(event.session);
  else if (event.type === "lost") passAll();
  // names no key, or a key whose request is under way (its synced, retry or failed follows)
  else if (event.type === "spool" || event.type === "outage" || event.type === "recovered" || event.type === "redacted") return;
  else if (event.type !== "dropped" || event.key !== undefined) pass(event.key!);
  else passAll(event.session); // a dropped event for a session, or for all
}

/** Forgets what an earlier run held (at init). */
export function resetHeld(): void {
  for (const timer of deadlines.values()) clearTimeout(timer);
  deadlines.clear();
  state.recent.clear();
  state.held.clear();
  state.heldCounts.coalesced = 0;
  state.heldCounts.refused = 0;
}
