// The boundary between the runtime-independent API (api.ts) and a loader (bun:ffi or koffi).
// A loader binds the C functions of include/opencode_share.h and nothing more: statuses are
// returned as numbers, out-strings are copied to JS strings and freed before it returns.

/** A call's status and, on SHARE_OK, the string the library handed out (already freed). */
export interface NativeOut {
  status: number;
  json: string | null;
}

/** A call that starts an asynchronous operation: its status and, on SHARE_OK, the op id. */
export interface NativeStart {
  status: number;
  opId: number;
}

/** One loaded copy of libopencode_share. Every method runs on the JS thread. */
export interface Native {
  readonly backend: "bun:ffi" | "koffi";
  readonly path: string;
  version(): string;
  /** share_last_error() of the JS thread: read it right after a failing call. */
  lastError(): string;
  init(configJson: string): number;
  /** share_sync_queued: the status; `queued()` then says whether it queued the content. */
  sync(key: string, contentJson: string): number;
  /** share_sync_queued's out flag of the last sync: an event naming the key (or its session) follows. */
  queued(): boolean;
  /** share_sync_pending: the key has content queued, parked or in flight (false on failure). */
  pending(key: string): boolean;
  createAsync(sessionID: string): NativeStart;
  removeAsync(sessionID: string, secret: string): NativeStart;
  opTake(opId: number): NativeOut;
  /** share_flush_async: completes through the op callback, like createAsync. */
  flushAsync(timeoutMs: number): NativeStart;
  /** share_flush: blocks the JS thread until the queue drained or `timeoutMs`; the status. */
  flush(timeoutMs: number): number;
  /**
   * share_shutdown. Bun calls it on the JS thread (its callbacks never block the library's
   * notifier); koffi runs it on a worker thread, so a callback the notifier is delivering can run
   * meanwhile. A message for a failure is given when the loader cannot read share_last_error().
   */
  shutdown(timeoutMs: number): Promise<{ status: number; message: string }>;
  stats(): NativeOut;
  /** share_list: the ledger's JSON. */
  list(): NativeOut;
  /** share_remove_known_async: remove with the secret the ledger holds. */
  removeKnownAsync(sessionID: string): NativeStart;
  eventsTake(): NativeOut;
  /** share_set_event_callback with the loader's notify callback (on) or NULL (off). */
  setEventSink(on: boolean): number;
}

/** What a loader calls on the JS thread when the library's notifier announces something (or its poller finds it). */
export interface NativeHooks {
  /** An asynchronous operation ended: take its result with opTake(opId). */
  opDone(opId: number, status: number): void;
  /** Events are waiting: take them with eventsTake(). */
  events(): void;
  /** Whether a content is held for its key's event (a polling loader then polls soon). */
  hurried(): boolean;
}

/** Loads the library at `path` (dlopen and bind every symbol) or throws with the reason. */
export type Loader = (path: string, hooks: NativeHooks) => Native;
