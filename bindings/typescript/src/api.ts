// The API, the same in Bun and Node: it drives a Native (native.ts) that a loader bound with
// bun:ffi (bun.ts) or koffi (node.ts). Nothing here blocks the event loop on the network:
// sync returns at once; create, remove, flush and the wait of shutdown complete through the
// library's asynchronous entry points; nothing polls.
//
// Lazy hand-over: while a key has content queued or in flight in the library, `sync` keeps the
// key's newest content here, unserialised (the original's `pending` map), and hands it over when
// an event names the key. A content that a newer one replaces is never serialised. The library's
// events are taken only while something is held or someone listens: otherwise every answer
// would wake the JS thread.

import { resolve as resolvePath } from "node:path";

import { libraryFileName, search } from "./locate.js";
import type { Loader, Native, NativeHooks, NativeStart } from "./native.js";

/** The library's major.minor this binding was written for; any patch release loads. */
const COMPATIBLE = "0.2";

/** share_status values, by number. */
export const STATUS = [
  "SHARE_OK",
  "SHARE_ERR_INVALID_ARGUMENT",
  "SHARE_ERR_NOT_INITIALIZED",
  "SHARE_ERR_ALREADY_INITIALIZED",
  "SHARE_ERR_NETWORK",
  "SHARE_ERR_HTTP_STATUS",
  "SHARE_ERR_BAD_RESPONSE",
  "SHARE_ERR_TIMEOUT",
  "SHARE_ERR_QUEUE_FULL",
  "SHARE_ERR_PANIC",
] as const;

/** A share_status name, as in include/opencode_share.h. */
export type StatusName = (typeof STATUS)[number];

/**
 * What a failure's `code` can be: a share_status name, or SHARE_ERR_LIBRARY when the native
 * library could not be found or loaded (its `status` is then -1).
 */
export type ShareErrorCode = Exclude<StatusName, "SHARE_OK"> | "SHARE_ERR_LIBRARY";

const OK = 0;
const INVALID_ARGUMENT = 1;
const NOT_INITIALIZED = 2;
const ALREADY_INITIALIZED = 3;
const TIMEOUT = 7;
const QUEUE_FULL = 8;
const LIBRARY = -1;

/** Every failure of this package: `code` names the library's status, `message` is its message. */
export class ShareError extends Error {
  readonly code: ShareErrorCode;
  readonly status: number;

  constructor(status: number, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "ShareError";
    this.status = status;
    this.code = status === LIBRARY ? "SHARE_ERR_LIBRARY" : ((STATUS[status] ?? `SHARE_ERR_${status}`) as ShareErrorCode);
  }
}

/** share_init's configuration (README's table); every key is optional, unknown keys fail. */
export interface ShareConfig {
  /** Base URL of the share service; default: OPENCODE_API, else chosen from `version`. */
  url?: string;
  /** The host's installation version: "dev" or "0.0.0-…" picks the dev API. */
  version?: string;
  timeout_ms?: number;
  connect_timeout_ms?: number;
  concurrency?: number;
  max_retries?: number;
  retry_initial_ms?: number;
  retry_max_ms?: number;
  max_pending_bytes?: number;
  /** Least time between the starts of two requests of one key (default 25; 0: no pause). */
  min_interval_ms?: number;
  user_agent?: string;
  allow_insecure?: boolean;
}

/** Hands `sync` to the host's storage events; may return a function that unsubscribes. */
export type Subscribe = (sync: (key: string, content: unknown) => void) => unknown;

export interface InitOptions extends ShareConfig {
  /** The native library file; see README for the places looked at without it. */
  libraryPath?: string;
  /**
   * Called once after the library started, with a function to call for every storage write.
   * Whatever function it returns is called by `shutdown` to unsubscribe.
   */
  subscribe?: Subscribe;
}

/** What `create` resolves to. */
export interface ShareInfo {
  url: string;
  secret: string;
}

/** `stats()`: the library's counters; after shutdown, the last run's final figures. */
export interface ShareStats {
  running: boolean;
  url: string;
  queued: number;
  sent: number;
  coalesced: number;
  retried: number;
  failed: number;
  dropped: number;
  rejected: number;
  ignored: number;
  pending_keys: number;
  pending_bytes: number;
  in_flight: number;
  shares: number;
  events_lost: number;
  /** Contents `sync` holds, unserialised, until their key's earlier content settles. */
  held: number;
}

/** The service accepted the newest content of `key` (the original's "synced" log line). */
export interface SyncedEvent {
  type: "synced";
  key: string;
  status: number;
}
/** An attempt failed and will be retried after `delay_ms`. */
export interface RetryEvent {
  type: "retry";
  key: string;
  retry: number;
  delay_ms: number;
  status?: number;
  error?: string;
}
/** An attempt failed for good; a `dropped` event follows. */
export interface FailedEvent {
  type: "failed";
  key: string;
  status?: number;
  error?: string;
}
/** Contents given up, and why. */
export interface DroppedEvent {
  type: "dropped";
  /** `invalid`: a held content that could not be serialised when it was handed over (see `error`). */
  reason: "rejected" | "retries_exhausted" | "unshared" | "removed" | "shutdown" | "queue_full" | "invalid";
  key?: string;
  session?: string;
  count: number;
  error?: string;
}
/** The service answered 401/403 for `session`: its share is forgotten. */
export interface UnsharedEvent {
  type: "unshared";
  session: string;
  status: number;
}
/** `count` events did not fit in the library's buffer (the JS thread was busy for long). */
export interface LostEvent {
  type: "lost";
  count: number;
}
/** Every event the library reports. */
export type ShareEvent = SyncedEvent | RetryEvent | FailedEvent | DroppedEvent | UnsharedEvent | LostEvent;

/** A storage write handed over through `subscribe` that `sync` refused. */
export interface SyncErrorEvent {
  type: "error";
  key: unknown;
  error: ShareError;
}

export interface ShareEventMap {
  synced: SyncedEvent;
  retry: RetryEvent;
  failed: FailedEvent;
  dropped: DroppedEvent;
  unshared: UnsharedEvent;
  lost: LostEvent;
  /** Every library event. */
  "*": ShareEvent;
  /** A write from `subscribe` that failed (without a listener: a process warning). */
  error: SyncErrorEvent;
}

export type ShareEventName = keyof ShareEventMap;

/** Which copy of the library is in use. */
export interface LibraryInfo {
  backend: "bun:ffi" | "koffi";
  path: string;
  version: string;
}

const EVENT_NAMES: readonly ShareEventName[] = ["synced", "retry", "failed", "dropped", "unshared", "lost", "*", "error"];
const DEFAULT_TIMEOUT_MS = 10_000;
const MAX_U32 = 0xffff_ffff;

let loader: Loader | undefined;
let native: Native | undefined;
let unsubscribe: (() => void) | undefined;
/**
 * Which run's `subscribe` hand-over is live (one of an earlier run ignores writes); 0 when the
 * library is not running or shutting down, when `sync` holds nothing.
 */
let run = 0;
let liveRun = 0;
let stopping: Promise<void> | undefined;
let sinkOn = false;
let keepAlive: ReturnType<typeof setInterval> | undefined;
/** Pending asynchronous operations by id; `flush` marks share_flush_async's (not a create/remove). */
const ops = new Map<number, { resolve: (json: string) => void; reject: (error: ShareError) => void; flush: boolean }>();
/** Called once no create/remove is pending (shutdown waits for that). */
const idleWaiters: (() => void)[] = [];
/**
 * Keys the library queued lately (share_sync_queued): a hint that a key may still be pending,
 * confirmed with share_sync_pending before holding. Stale entries cost one check; the set is
 * cleared when it passes RECENT_MAX, so it stays small in a long session.
 */
const recent = new Set<string>();
const RECENT_MAX = 4096;
/** The newest content of a key still pending in the library, unserialised, until an event names the key. */
const held = new Map<string, unknown>();
/** This run's held contents replaced by a newer one, and those refused when handed over. */
const heldCounts = { coalesced: 0, refused: 0 };
const listeners = new Map<ShareEventName, Set<(event: never) => void>>();

/** Called once by the entry module (bun.ts or node.ts) with its loader. */
export function install(load: Loader): void {
  loader ??= load;
}

const hooks: NativeHooks = {
  opDone(opId) {
    const n = native;
    if (!n) return;
    // events raised before the operation ended reach listeners (and settle keys) before it resolves
    drainEvents();
    // the result is taken whoever started the operation, so the library never keeps it
    const out = n.opTake(opId);
    const op = ops.get(opId);
    const error = out.status === OK ? undefined : failure(n, out.status);
    if (!op) return;
    ops.delete(opId);
    if (ops.size === 0) release();
    if (pendingCreatesAndRemoves() === 0) for (const wake of idleWaiters.splice(0)) wake();
    if (error) op.reject(error);
    else op.resolve(out.json ?? "{}");
  },
  events() {
    drainEvents();
  },
};

function failure(n: Native, status: number): ShareError {
  return new ShareError(status, n.lastError() || `${STATUS[status] ?? status}`);
}

function notInitialized(): ShareError {
  return new ShareError(NOT_INITIALIZED, "the library is not running: call Share.init first");
}

function invalid(message: string, cause?: unknown): ShareError {
  return new ShareError(INVALID_ARGUMENT, message, cause === undefined ? undefined : { cause });
}

/** Finds and loads the library once per process (a second copy would be a second library). */
function load(option: string | undefined): Native {
  if (native) {
    if (option !== undefined && resolvePath(option) !== native.path) {
      throw invalid(`the library is already loaded from ${native.path}; a process loads it once (libraryPath ${option} was given)`);
    }
    return native;
  }
  if (!loader) throw new ShareError(LIBRARY, "no loader installed: import opencode-share, not its internal modules");
  const found = search(option);
  const looked = `Looked at: ${found.looked.join("; ")}.`;
  if (!found.file) {
    throw new ShareError(
      LIBRARY,
      `cannot find ${libraryFileName()}. ${looked} Build it with \`cargo build --release\` in the opencode-share repository, pass libraryPath, or set OPENCODE_SHARE_LIB.`,
    );
  }
  let loaded: Native;
  try {
    loaded = loader(found.file, hooks);
  } catch (e) {
    const reason = e instanceof Error ? e.message : String(e);
    throw new ShareError(LIBRARY, `cannot load ${found.file}: ${reason}. ${looked}`, { cause: e });
  }
  const version = loaded.version();
  if (version.split(".").slice(0, 2).join(".") !== COMPATIBLE) {
    throw new ShareError(LIBRARY, `${found.file} is opencode-share ${version}; this binding needs ${COMPATIBLE}.x. ${looked}`);
  }
  native = loaded;
  updateSink();
  return loaded;
}

function timeoutArg(name: string, value: number): number {
  if (typeof value !== "number" || Number.isNaN(value) || value < 0) {
    throw invalid(`${name} must be a number of milliseconds >= 0, not ${String(value)}`);
  }
  return Math.min(Math.floor(value), MAX_U32);
}

function textArg(name: string, value: unknown): string {
  if (typeof value !== "string") throw invalid(`${name} must be a string, not ${value === null ? "null" : typeof value}`);
  if (value.includes("\0")) throw invalid(`${name} contains a NUL character`);
  return value;
}

/**
 * Starts the library. `options` are share_init's configuration keys plus `libraryPath` and
 * `subscribe`. Throws a ShareError (SHARE_ERR_ALREADY_INITIALIZED while running, nothing
 * changed; SHARE_ERR_INVALID_ARGUMENT for a bad config; SHARE_ERR_LIBRARY when the library
 * cannot be found or loaded).
 */
export function init(options: InitOptions = {}): void {
  if (stopping) throw new ShareError(ALREADY_INITIALIZED, "Share.shutdown is still running: await it before Share.init");
  const { libraryPath, subscribe, ...config } = options;
  const n = load(libraryPath);
  const status = n.init(JSON.stringify(config));
  if (status !== OK) throw failure(n, status);
  recent.clear();
  held.clear();
  heldCounts.coalesced = 0;
  heldCounts.refused = 0;
  const mine = ++run;
  liveRun = mine;
  if (subscribe) {
    const off = subscribe((key, content) => {
      // a host that cannot unsubscribe keeps calling: after shutdown its writes are ignored
      if (liveRun === mine) syncFromHost(key, content);
    });
    if (typeof off === "function") unsubscribe = off as () => void;
  }
}

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
  const n = native;
  if (!n) throw notInitialized();
  if (liveRun !== 0) {
    if (held.has(key)) {
      heldCounts.coalesced++;
      held.set(key, content);
      return;
    }
    if (recent.has(key) && stillPending(n, key)) {
      held.set(key, content);
      return;
    }
  }
  textArg("key", key);
  handOver(n, key, content);
}

/**
 * Whether `key` still has content pending in the library. The event sink is set before asking,
 * so the event that ends a pending content cannot slip by unseen.
 */
function stillPending(n: Native, key: string): boolean {
  updateSink(true);
  if (n.pending(key)) return true;
  recent.delete(key);
  updateSink();
  return false;
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
  if (liveRun !== 0 && n.queued()) {
    if (recent.size >= RECENT_MAX) recent.clear();
    recent.add(key);
  }
}

/** Hands every held content (of `session` only, if given) to the library now. */
function passAll(session?: string): void {
  for (const key of [...held.keys()]) if (session === undefined || key.split("/", 3)[2] === session) pass(key);
}

/**
 * Hands `key`'s held content, if any, to the library. One that cannot be serialised or is
 * refused now is reported as dropped: the write that gave it returned long ago.
 */
function pass(key: string): void {
  const n = native;
  if (!n || !held.has(key)) return;
  const content = held.get(key);
  held.delete(key);
  try {
    handOver(n, key, content);
  } catch (e) {
    const error = e instanceof ShareError ? e : new ShareError(INVALID_ARGUMENT, String(e), { cause: e });
    if (error.status === QUEUE_FULL) return; // the library counted and reported this one
    heldCounts.refused++;
    const event: DroppedEvent = { type: "dropped", reason: "invalid", key, count: 1, error: error.message };
    emit("dropped", event);
    emit("*", event);
  }
}

function syncFromHost(key: string, content: unknown): void {
  try {
    sync(key, content);
  } catch (e) {
    const error = e instanceof ShareError ? e : new ShareError(INVALID_ARGUMENT, String(e), { cause: e });
    if (listeners.get("error")?.size) emit("error", { type: "error", key, error });
    else process.emitWarning(`opencode-share: sync(${JSON.stringify(key)}) failed: ${error.message}`, { code: error.code });
  }
}

function start(call: (n: Native) => NativeStart, flush = false): Promise<string> {
  const n = native;
  if (!n) return Promise.reject(notInitialized());
  let started: NativeStart;
  try {
    started = call(n);
  } catch (e) {
    return Promise.reject(e);
  }
  if (started.status !== OK) return Promise.reject(failure(n, started.status));
  return new Promise((resolve, reject) => {
    ops.set(started.opId, { resolve, reject, flush });
    hold();
  });
}

/**
 * Creates the share of `sessionID` (POST /share_create, retried within timeout_ms) and
 * remembers it, so later syncs of the session go out. Never blocks the event loop.
 */
export async function create(sessionID: string): Promise<ShareInfo> {
  const json = await start((n) => n.createAsync(textArg("sessionID", sessionID)));
  const { url, secret } = JSON.parse(json) as ShareInfo;
  return { url, secret };
}

/**
 * Removes the share of `sessionID`: its pending syncs are dropped and its share forgotten at
 * once; the promise settles after its requests in flight ended and /share_delete answered.
 */
export async function remove(sessionID: string, secret: string): Promise<void> {
  await start((n) => n.removeAsync(textArg("sessionID", sessionID), textArg("secret", secret)));
}

function pendingCreatesAndRemoves(): number {
  let n = 0;
  for (const op of ops.values()) if (!op.flush) n++;
  return n;
}

/** Resolves once no create/remove is pending. */
function noCreatesOrRemoves(): Promise<void> {
  if (pendingCreatesAndRemoves() === 0) return Promise.resolve();
  return new Promise((resolve) => idleWaiters.push(resolve));
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
 * Flushes and waits for pending creates/removes up to `timeoutMs`, then stops the library
 * (share_shutdown with the time left). Work left at the deadline is dropped (a `dropped`
 * event) and the promise rejects with SHARE_ERR_TIMEOUT; the library is stopped either way and
 * `init` may be called again. Unsubscribes what `subscribe` returned.
 */
export function shutdown(timeoutMs: number = DEFAULT_TIMEOUT_MS): Promise<void> {
  if (stopping) return stopping;
  let ms: number;
  try {
    ms = timeoutArg("timeoutMs", timeoutMs);
  } catch (e) {
    return Promise.reject(e);
  }
  const n = native;
  if (!n) return Promise.reject(notInitialized());
  const stop = async () => {
    // from now on every write goes straight to the library, which flushes or counts it
    passAll();
    liveRun = 0;
    recent.clear();
    const off = unsubscribe;
    unsubscribe = undefined;
    if (off) off();
    const deadline = performance.now() + ms;
    // the queue's flush and the pending creates/removes, or the deadline, whichever comes first
    const flushed = start((n) => n.flushAsync(ms), true).catch(() => undefined);
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeUp = new Promise<void>((resolve) => (timer = setTimeout(resolve, ms)));
    await Promise.race([flushed.then(noCreatesOrRemoves), timeUp]);
    clearTimeout(timer);
    const abandoned = pendingCreatesAndRemoves();
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
  };
  stopping = stop().finally(() => {
    stopping = undefined;
  });
  return stopping;
}

/** The library's counters (see ShareStats); after shutdown, the last run's. */
export function stats(): ShareStats {
  const n = native;
  if (!n) throw notInitialized();
  const out = n.stats();
  if (out.status !== OK) throw failure(n, out.status);
  const stats = JSON.parse(out.json ?? "{}") as ShareStats;
  // held writes count as accepted; so queued = sent + coalesced + dropped + pending + in flight + held
  stats.queued += heldCounts.coalesced + held.size;
  stats.coalesced += heldCounts.coalesced;
  stats.rejected += heldCounts.refused;
  stats.held = held.size;
  return stats;
}

/** The share service's base URL in use (or last used); undefined before `init`. */
export function url(): string | undefined {
  try {
    return stats().url;
  } catch {
    return undefined;
  }
}

/** The loaded library, or undefined before the first `init`. */
export function library(): LibraryInfo | undefined {
  const n = native;
  return n && { backend: n.backend, path: n.path, version: n.version() };
}

/**
 * Listens to the library's events (`synced`, `retry`, `failed`, `dropped`, `unshared`, or `*`
 * for all) or to `error` (a write from `subscribe` that sync refused). Listeners run on the JS
 * thread. Returns a function that removes the listener.
 */
export function on<K extends ShareEventName>(event: K, listener: (event: ShareEventMap[K]) => void): () => void {
  if (!EVENT_NAMES.includes(event)) throw invalid(`unknown event ${JSON.stringify(event)}; expected one of ${EVENT_NAMES.join(", ")}`);
  if (typeof listener !== "function") throw invalid("listener must be a function");
  let set = listeners.get(event);
  if (!set) listeners.set(event, (set = new Set()));
  set.add(listener as (event: never) => void);
  updateSink();
  return () => off(event, listener);
}

/** Removes a listener added with `on`. */
export function off<K extends ShareEventName>(event: K, listener: (event: ShareEventMap[K]) => void): void {
  listeners.get(event)?.delete(listener as (event: never) => void);
  updateSink();
}

/**
 * The library keeps events only while a sink is set: set it while anyone listens, while a
 * content is held (its key's event hands it over), or when `needed` (about to hold one).
 */
function updateSink(needed = false): void {
  const n = native;
  if (!n) return;
  let want = needed || held.size > 0;
  for (const [name, set] of listeners) if (name !== "error" && set.size > 0) want = true;
  if (want === sinkOn) return;
  const status = n.setEventSink(want);
  if (status !== OK) throw failure(n, status);
  sinkOn = want;
}

function drainEvents(): void {
  const n = native;
  if (!n || !sinkOn) return;
  const out = n.eventsTake();
  if (out.status !== OK || !out.json || out.json === "[]") return;
  for (const event of JSON.parse(out.json) as ShareEvent[]) {
    if (held.size > 0) {
      if (event.type === "unshared") passAll(event.session);
      else if (event.type === "lost") passAll();
      else if (event.type !== "dropped" || event.key !== undefined) pass(event.key!);
      else passAll(event.session); // a dropped event for a session, or for all
    }
    emit(event.type, event as never);
    emit("*", event);
  }
  updateSink(); // nothing held any more: stop taking events nobody needs
}

function emit<K extends ShareEventName>(name: K, event: ShareEventMap[K]): void {
  const set = listeners.get(name);
  if (!set) return;
  for (const listener of [...set]) {
    try {
      (listener as (event: ShareEventMap[K]) => void)(event);
    } catch (error) {
      // like an EventEmitter's listener: reported as uncaught, after the other listeners ran
      queueMicrotask(() => {
        throw error;
      });
    }
  }
}

/**
 * Keeps the process alive while an operation is pending: Bun's threadsafe callbacks and koffi's
 * registered callbacks do not, so a process could exit before a create's answer arrives.
 */
function hold(): void {
  keepAlive ??= setInterval(() => {}, 1 << 30);
}

function release(): void {
  if (keepAlive !== undefined) clearInterval(keepAlive);
  keepAlive = undefined;
}

/** The original module's shape: `import { Share } from "opencode-share"`. */
export const Share = {
  init,
  sync,
  create,
  remove,
  flush,
  shutdown,
  stats,
  on,
  off,
  /** The share service's base URL (read from the running or last library); undefined before init. */
  get URL(): string | undefined {
    return url();
  },
  /** The loaded library: backend, file and version; undefined before the first init. */
  get library(): LibraryInfo | undefined {
    return library();
  },
};

// Types under the namespace, as share.ts users may spell them.
// eslint-disable-next-line @typescript-eslint/no-namespace
export declare namespace Share {
  export type Config = ShareConfig;
  export type Options = InitOptions;
  export type Info = ShareInfo;
  export type Stats = ShareStats;
  export type Event = ShareEvent;
  export type EventMap = ShareEventMap;
  export type Error = ShareError;
}
