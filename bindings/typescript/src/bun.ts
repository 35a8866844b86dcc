// Bun's entry point: the API of api.ts over a loader that binds the library with bun:ffi.
//
// Bun's threadsafe JSCallback returns to the library's notifier thread at once and runs the JS
// function later on the JS thread, so the callbacks receive scalars only (user_data is NULL)
// and the data is taken with a call. The two callbacks are made once per process and never
// closed: the library may still hold them after a shutdown whose deadline passed, and an open
// JSCallback does not keep the process alive.

import { CString, JSCallback, dlopen } from "bun:ffi";

import { install } from "./api.js";
import { CALLBACKS, SYMBOLS } from "./bun-symbols.js";
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

let callbacks: { op: JSCallback; notify: JSCallback; hooks: NativeHooks } | undefined;

const load: Loader = (path, hooks) => {
  const { symbols: c } = dlopen(path, SYMBOLS);
  // One pair per process: the hooks of the first load stay in use (api.ts loads the library once).
  callbacks ??= {
    hooks,
    op: new JSCallback((_userData: number, opId: number, status: number) => callbacks!.hooks.opDone(opId, status), {
      ...CALLBACKS.share_op_callback,
      threadsafe: true,
    }),
    notify: new JSCallback(() => callbacks!.hooks.events(), { ...CALLBACKS.share_event_notify, threadsafe: true }),
  };
  const { op, notify } = callbacks;
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
    createAsync: (sessionID) => starting((out) => c.share_create_async(cstr(sessionID), op.ptr, null, out)),
    removeAsync: (sessionID, secret) =>
      starting((out) => c.share_remove_async(cstr(sessionID), cstr(secret), op.ptr, null, out)),
    opTake: (opId) => taking((out) => c.share_op_take(opId, out)),
    flushAsync: (timeoutMs) => starting((out) => c.share_flush_async(timeoutMs, op.ptr, null, out)),
    flush: (timeoutMs) => c.share_flush(timeoutMs),
    // Blocking, but short: api.ts calls it after the queue drained and no operation is pending,
    // and the library never waits for its notifier thread.
    shutdown: async (timeoutMs) => {
      const status = c.share_shutdown(timeoutMs);
      return { status, message: status === OK ? "" : read(c.share_last_error()) };
    },
    stats: () => taking((out) => c.share_stats(out)),
    list: () => taking((out) => c.share_list(out)),
    removeKnownAsync: (sessionID) => starting((out) => c.share_remove_known_async(cstr(sessionID), op.ptr, null, out)),
    eventsTake: () => taking((out) => c.share_events_take(out)),
    setEventSink: (on) => c.share_set_event_callback(on ? notify.ptr : null, null),
  };
  return native;
};

install(load);

export * from "./public.js";
