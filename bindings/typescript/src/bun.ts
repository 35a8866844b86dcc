// Bun's entry point: the API of api.ts over a loader that binds the library with bun:ffi.
//
// The library never calls into Bun. A threadsafe JSCallback called from a library thread can
// corrupt Bun's heap (oven-sh/bun#28113, #33840, #41857; opencode ships Bun 1.3.14, and a
// plugin run ended by a signal once in six), so operations start with a NULL callback, events
// are kept for polling (share_set_event_polling), and a timer on the JS thread asks
// share_op_pending and share_events_take (the Poller below).

import { CString, dlopen } from "bun:ffi";

import { install } from "./api.js";
import { SYMBOLS } from "./bun-symbols.js";
import type { Loader, Native, NativeHooks, NativeOut, NativeStart } from "./native.js";
import { OK } from "./status.js";

/** A JS string as a NUL-terminated UTF-8 buffer (callers reject strings holding NUL). */
function cstr(text: string): Buffer {
  return Buffer.from(`${text}\0`, "utf8");
}

const encoder = new TextEncoder();

/**
 * A reusable NUL-terminated UTF-8 buffer for the hot path (sync): encoded in one pass, with no
 * allocation once grown. The library copies what it keeps, so the next call may overwrite it.
 */
class Scratch {
  /** Larger contents get a buffer of their own, so one huge write does not pin its size. */
  static readonly KEEP = 1 << 20;
  private bytes = new Uint8Array(4096);

  encode(text: string): Uint8Array {
    // UTF-16 to UTF-8 takes at most 3 bytes per code unit, plus the NUL
    const need = text.length * 3 + 1;
    let bytes = this.bytes;
    if (bytes.length < need) {
      bytes = new Uint8Array(need);
      if (need <= Scratch.KEEP) this.bytes = bytes;
    }
    const { written } = encoder.encodeInto(text, bytes);
    bytes[written] = 0;
    return bytes;
  }
}

function read(pointer: number | null): string {
  return pointer ? new CString(pointer).toString() : "";
}

/** Polls while an operation runs or a content is held, this often at first (ms), backing off. */
const FAST_MS = 1;
const FAST_MAX_MS = 16;
/** Polls events this often while only listeners wait for them (an unref'd timer). */
const IDLE_MS = 50;

type Symbols = ReturnType<typeof dlopen<typeof SYMBOLS>>["symbols"];

/**
 * Asks the library, from a timer on the JS thread, which operations ended and which events
 * wait, and tells the hooks. Runs only while something waits: an operation (the timer keeps the
 * process alive, as a pending callback would), a held content (its key's event hands it over),
 * or the event sink (unref'd: listeners alone do not keep a process alive).
 */
class Poller {
  private readonly ops = new Set<number>();
  private sink = false;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private delay = FAST_MS;
  private readonly outPending = new Uint8Array(1);

  constructor(
    private readonly c: Symbols,
    private readonly hooks: NativeHooks,
  ) {}

  /** An operation started: poll for its end soon. */
  started(opId: number): void {
    this.ops.add(opId);
    this.delay = FAST_MS;
    this.arm(true);
  }

  /** The event sink was set or removed. */
  sinkSet(on: boolean): void {
    this.sink = on;
    this.delay = FAST_MS;
    this.arm(true);
  }

  private arm(sooner: boolean): void {
    if (this.timer !== undefined) {
      if (!sooner) return;
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    if (this.ops.size === 0 && !this.sink) return;
    const fast = this.ops.size > 0 || this.hooks.hurried();
    this.timer = setTimeout(() => this.tick(), fast ? this.delay : IDLE_MS);
    if (this.ops.size === 0) this.timer.unref?.();
  }

  private tick(): void {
    this.timer = undefined;
    let ended = false;
    // events first: those raised before an operation ended reach listeners before it settles
    if (this.sink) this.hooks.events();
    for (const opId of [...this.ops]) {
      this.outPending[0] = 1;
      const status = this.c.share_op_pending(opId, this.outPending);
      if (status === OK && this.outPending[0] === 1) continue;
      this.ops.delete(opId);
      ended = true;
      this.hooks.opDone(opId, status);
    }
    this.delay = ended ? FAST_MS : Math.min(this.delay * 2, FAST_MAX_MS);
    this.arm(false);
  }
}

/** One poller per process: the hooks of the first load stay in use (api.ts loads the library once). */
let poller: Poller | undefined;

const load: Loader = (path, hooks) => {
  const { symbols: c } = dlopen(path, SYMBOLS);
  const polls = (poller ??= new Poller(c, hooks));
  // Out-parameters, reused: every call runs on the JS thread and reads them before returning.
  const outJson = new BigUint64Array(1);
  const outId = new Uint32Array(1);
  const outQueued = new Uint8Array(1);
  const outPending = new Uint8Array(1);
  const keyScratch = new Scratch();
  const contentScratch = new Scratch();

  /** Runs `call` with a char** out-parameter; copies the string out and frees it (once). */
  const taking = (call: (out: BigUint64Array) => number): NativeOut => {
    outJson[0] = 0n;
    const status = call(outJson);
    const pointer = Number(outJson[0]);
    outJson[0] = 0n;
    if (!pointer) return { status, json: null };
    try {
      return { status, json: new CString(pointer).toString() };
    } finally {
      c.share_string_free(pointer);
    }
  };

  const starting = (call: (out: Uint32Array) => number): NativeStart => {
    outId[0] = 0;
    const status = call(outId);
    if (status === OK) polls.started(outId[0]!);
    return { status, opId: outId[0]! };
  };

  const native: Native = {
    backend: "bun:ffi",
    path,
    version: () => read(c.share_version()),
    lastError: () => read(c.share_last_error()),
    init: (config) => c.share_init(cstr(config)),
    sync: (key, content) => c.share_sync_queued(keyScratch.encode(key), contentScratch.encode(content), outQueued),
    queued: () => outQueued[0] === 1,
    pending: (key) => c.share_sync_pending(keyScratch.encode(key), outPending) === OK && outPending[0] === 1,
    createAsync: (sessionID) => starting((out) => c.share_create_async(cstr(sessionID), null, null, out)),
    removeAsync: (sessionID, secret) =>
      starting((out) => c.share_remove_async(cstr(sessionID), cstr(secret), null, null, out)),
    opTake: (opId) => taking((out) => c.share_op_take(opId, out)),
    flushAsync: (timeoutMs) => starting((out) => c.share_flush_async(timeoutMs, null, null, out)),
    flush: (timeoutMs) => c.share_flush(timeoutMs),
    // Blocking, but short: api.ts calls it after the queue drained and no operation is pending,
    // and the library never waits for its notifier thread.
    shutdown: async (timeoutMs) => {
      const status = c.share_shutdown(timeoutMs);
      return { status, message: status === OK ? "" : read(c.share_last_error()) };
    },
    stats: () => taking((out) => c.share_stats(out)),
    list: () => taking((out) => c.share_list(out)),
    removeKnownAsync: (sessionID) => starting((out) => c.share_remove_known_async(cstr(sessionID), null, null, out)),
    eventsTake: () => taking((out) => c.share_events_take(out)),
    setEventSink: (on) => {
      const status = on ? c.share_set_event_polling() : c.share_set_event_callback(null, null);
      if (status === OK) polls.sinkSet(on);
      return status;
    },
  };
  return native;
};

install(load);

export * from "./public.js";
