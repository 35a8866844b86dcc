// The binding's state: one object, one per process, shared by the modules that act on it. Every
// field is touched on the JS thread only (the loaders deliver the library's callbacks there).

import type { ShareEventName } from "./event-types.js";
import type { ShareError } from "./status.js";
import type { Loader, Native } from "./native.js";

/** A pending asynchronous operation; `flush` marks share_flush_async's (not a create/remove). */
export interface PendingOp {
  resolve: (json: string) => void;
  reject: (error: ShareError) => void;
  flush: boolean;
}

export interface State {
  /** The entry module's loader (bun:ffi or koffi), installed once. */
  loader: Loader | undefined;
  /** The loaded library, once the first `init` found it; never unloaded. */
  native: Native | undefined;
  /** What the run's `subscribe` returned, called by `shutdown`. */
  unsubscribe: (() => void) | undefined;
  /** Runs started so far: a run's `subscribe` hand-over knows its number. */
  run: number;
  /**
   * Which run's `subscribe` hand-over is live (one of an earlier run ignores writes); 0 when the
   * library is not running or shutting down, when `sync` holds nothing.
   */
  liveRun: number;
  /** Whether `sync` may hold a busy key's newer content (not with a spool: see lifecycle.ts). */
  holds: boolean;
  /** The running `shutdown`, if any. */
  stopping: Promise<void> | undefined;
  /** Whether the library's event sink is set (see sink.ts). */
  sinkOn: boolean;
  /** The timer that keeps the process alive while an operation is pending (see ops.ts). */
  keepAlive: ReturnType<typeof setInterval> | undefined;
  /** Pending asynchronous operations by id. */
  ops: Map<number, PendingOp>;
  /** Called once no create/remove is pending (shutdown waits for that). */
  idleWaiters: (() => void)[];
  /**
   * Keys the library queued lately (share_sync_queued): a hint that a key may still be pending,
   * confirmed with share_sync_pending before holding. Stale entries cost one check; the set is
   * cleared when it passes RECENT_MAX (handover.ts), so it stays small in a long session.
   */
  recent: Set<string>;
  /** The newest content of a key still pending in the library, unserialised, until an event names the key. */
  held: Map<string, unknown>;
  /** This run's held contents replaced by a newer one, and those refused when handed over. */
  heldCounts: { coalesced: number; refused: number };
  /** Longest a key's content is held before it is handed over anyway, in ms (handover.ts). */
  holdMs: number;
  /** This run's ShareNext writes of sessions without a share, never handed over (stats' `ignored`). */
  skipped: number;
  /** Listeners by event name (see events.ts). */
  listeners: Map<ShareEventName, Set<(event: never) => void>>;
}

export const state: State = {
  loader: undefined,
  native: undefined,
  unsubscribe: undefined,
  run: 0,
  liveRun: 0,
  holds: true,
  stopping: undefined,
  sinkOn: false,
  keepAlive: undefined,
  ops: new Map(),
  idleWaiters: [],
  recent: new Set(),
  held: new Map(),
  heldCounts: { coalesced: 0, refused: 0 },
  holdMs: Infinity,
  skipped: 0,
  listeners: new Map(),
};
