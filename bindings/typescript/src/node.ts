// Node's entry point: the API of api.ts over a loader that binds the library with koffi.
//
// koffi runs a callback invoked from a foreign thread on the JS thread and blocks that thread
// until the JS function returns. The library calls back only from its notifier thread, never
// from inside a call of ours, so this cannot deadlock as long as the JS thread never waits for
// the notifier: that is why share_shutdown (which joins it) runs through koffi's `.async`, on a
// worker thread. share_last_error() is per thread, so a failure there gets a message of ours.
// The callbacks are registered once per process and never unregistered (the library may still
// hold them after a shutdown whose deadline passed); they do not keep the process alive.

import koffi from "koffi";
import type { TypeObject } from "koffi";

import { install } from "./api.js";
import { CALLBACKS, FUNCTIONS } from "./node-symbols.js";
import type { Loader, Native, NativeHooks, NativeOut, NativeStart } from "./native.js";
import { NOT_INITIALIZED, OK, PANIC, TIMEOUT } from "./status.js";

interface Bound {
  share_init(config: string): number;
  share_sync_queued(key: string, content: string, out: Uint8Array): number;
  share_sync_pending(key: string, out: Uint8Array): number;
  share_create_async(session: string, cb: unknown, userData: null, out: number[]): number;
  share_remove_async(session: string, secret: string, cb: unknown, userData: null, out: number[]): number;
  share_op_take(opId: number, out: unknown[]): number;
  share_flush_async(timeoutMs: number, cb: unknown, userData: null, out: number[]): number;
  share_flush(timeoutMs: number): number;
  share_shutdown: ((timeoutMs: number) => number) & {
    async(timeoutMs: number, done: (err: unknown, status: number) => void): void;
  };
  share_stats(out: unknown[]): number;
  share_list(out: unknown[]): number;
  share_remove_known_async(session: string, cb: unknown, userData: null, out: number[]): number;
  share_events_take(out: unknown[]): number;
  share_set_event_callback(notify: unknown, userData: null): number;
  share_last_error(): string;
  share_version(): string;
  share_string_free(pointer: unknown): void;
}

/** share_shutdown's failures, for the `.async` call whose thread-local message JS cannot read. */
const SHUTDOWN_MESSAGES: Record<number, string> = {
  [NOT_INITIALIZED]: "the library is not running: call Share.init first",
  [TIMEOUT]: "shutdown: the deadline came first; the work left was dropped (see stats and the dropped event)",
  [PANIC]: "the library panicked during shutdown (a bug; please report it); it is stopped",
};

let callbacks: { op: unknown; notify: unknown; hooks: NativeHooks } | undefined;
let protos: { OpCallback: TypeObject; EventNotify: TypeObject } | undefined;

const load: Loader = (path, hooks) => {
  const lib = koffi.load(path);
  // koffi names types process-wide: declare them once, however many times a file is loaded
  protos ??= {
    OpCallback: koffi.proto(CALLBACKS.share_op_callback),
    EventNotify: koffi.proto(CALLBACKS.share_event_notify),
  };
  const { OpCallback, EventNotify } = protos;
  const c = Object.fromEntries(Object.entries(FUNCTIONS).map(([name, definition]) => [name, lib.func(definition)])) as unknown as Bound;
  // Bound types exactly the functions FUNCTIONS declares (a compile-time check)
  const typed: [keyof Bound] extends [keyof typeof FUNCTIONS] ? ([keyof typeof FUNCTIONS] extends [keyof Bound] ? true : false) : false = true;
  void typed;
  callbacks ??= {
    hooks,
    op: koffi.register(
      (_userData: unknown, opId: number, status: number) => callbacks!.hooks.opDone(opId, status),
      koffi.pointer(OpCallback),
    ),
    notify: koffi.register(() => callbacks!.hooks.events(), koffi.pointer(EventNotify)),
  };
  const { op, notify } = callbacks;

  const taking = (call: (out: unknown[]) => number): NativeOut => {
    const out: unknown[] = [null];
    const status = call(out);
    const pointer = out[0];
    if (pointer === null || pointer === undefined || pointer === 0n || pointer === 0) return { status, json: null };
    try {
      // decode.string, not decode(pointer, "char", -1): the latter leaks ~18 bytes a call in koffi 3.3.4
      return { status, json: koffi.decode.string(pointer) };
    } finally {
      c.share_string_free(pointer);
    }
  };

  const outQueued = new Uint8Array(1);
  const outPending = new Uint8Array(1);

  const starting = (call: (out: number[]) => number): NativeStart => {
    const out = [0];
    const status = call(out);
    return { status, opId: out[0]! };
  };

  const native: Native = {
    backend: "koffi",
    path,
    version: () => c.share_version(),
    lastError: () => c.share_last_error(),
    init: (config) => c.share_init(config),
    sync: (key, content) => c.share_sync_queued(key, content, outQueued),
    queued: () => outQueued[0] === 1,
    pending: (key) => c.share_sync_pending(key, outPending) === OK && outPending[0] === 1,
    createAsync: (sessionID) => starting((out) => c.share_create_async(sessionID, op, null, out)),
    removeAsync: (sessionID, secret) => starting((out) => c.share_remove_async(sessionID, secret, op, null, out)),
    opTake: (opId) => taking((out) => c.share_op_take(opId, out)),
    flushAsync: (timeoutMs) => starting((out) => c.share_flush_async(timeoutMs, op, null, out)),
    flush: (timeoutMs) => c.share_flush(timeoutMs),
    shutdown: (timeoutMs) =>
      new Promise((resolve, reject) => {
        c.share_shutdown.async(timeoutMs, (err, status) => {
          if (err) return reject(err);
          resolve({ status, message: SHUTDOWN_MESSAGES[status] ?? "" });
        });
      }),
    stats: () => taking((out) => c.share_stats(out)),
    list: () => taking((out) => c.share_list(out)),
    removeKnownAsync: (sessionID) => starting((out) => c.share_remove_known_async(sessionID, op, null, out)),
    eventsTake: () => taking((out) => c.share_events_take(out)),
    setEventSink: (on) => c.share_set_event_callback(on ? notify : null, null),
  };
  return native;
};

install(load);

export * from "./public.js";
