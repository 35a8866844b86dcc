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
import type { Loader, Native, NativeHooks, NativeOut, NativeStart } from "./native.js";

interface Bound {
  share_init(config: string): number;
  share_sync_queued(key: string, content: string, out: Uint8Array): number;
  share_sync_pending(key: string, out: Uint8Array): number;
  share_create_async(session: string, cb: unknown, userData: null, out: number[]): number;
  share_remove_async(session: string, secret: string, cb: unknown, userData: null, out: number[]): number;
  share_op_take(opId: number, out: unknown[]): number;
  share_flush_async(timeoutMs: number, cb: unknown, userData: null, out: number[]): number;
  share_shutdown: ((timeoutMs: number) => number) & {
    async(timeoutMs: number, done: (err: unknown, status: number) => void): void;
  };
  share_stats(out: unknown[]): number;
  share_events_take(out: unknown[]): number;
  share_set_event_callback(notify: unknown, userData: null): number;
  share_last_error(): string;
  share_version(): string;
  share_string_free(pointer: unknown): void;
}

/** share_shutdown's failures, for the `.async` call whose thread-local message JS cannot read. */
const SHUTDOWN_MESSAGES: Record<number, string> = {
  2: "the library is not running: call Share.init first",
  7: "shutdown: the deadline came first; the work left was dropped (see stats and the dropped event)",
  9: "the library panicked during shutdown (a bug; please report it); it is stopped",
};

let callbacks: { op: unknown; notify: unknown; hooks: NativeHooks } | undefined;
let protos: { OpCallback: TypeObject; EventNotify: TypeObject } | undefined;

const load: Loader = (path, hooks) => {
  const lib = koffi.load(path);
  // koffi names types process-wide: declare them once, however many times a file is loaded
  protos ??= {
    OpCallback: koffi.proto("void share_op_callback(void *user_data, uint32_t op_id, int32_t status)"),
    EventNotify: koffi.proto("void share_event_notify(void *user_data)"),
  };
  const { OpCallback, EventNotify } = protos;
  const fn = (definition: string) => lib.func(definition);
  const c: Bound = {
    share_init: fn("int32_t share_init(const char *config_json)"),
    // the flag is written into a reused byte that koffi passes by address (no out-array per call)
    share_sync_queued: fn("int32_t share_sync_queued(const char *key, const char *content_json, uint8_t *out_queued)"),
    share_sync_pending: fn("int32_t share_sync_pending(const char *key, uint8_t *out_pending)"),
    share_create_async: fn(
      "int32_t share_create_async(const char *session_id, share_op_callback *callback, void *user_data, _Out_ uint32_t *out_op_id)",
    ),
    share_remove_async: fn(
      "int32_t share_remove_async(const char *session_id, const char *secret, share_op_callback *callback, void *user_data, _Out_ uint32_t *out_op_id)",
    ),
    // char ** out-parameters are read as plain pointers: the string is decoded, then freed once
    share_op_take: fn("int32_t share_op_take(uint32_t op_id, _Out_ void **out_json)"),
    share_flush_async: fn(
      "int32_t share_flush_async(uint32_t timeout_ms, share_op_callback *callback, void *user_data, _Out_ uint32_t *out_op_id)",
    ),
    share_shutdown: fn("int32_t share_shutdown(uint32_t timeout_ms)") as Bound["share_shutdown"],
    share_stats: fn("int32_t share_stats(_Out_ void **out_json)"),
    share_events_take: fn("int32_t share_events_take(_Out_ void **out_json)"),
    share_set_event_callback: fn("int32_t share_set_event_callback(share_event_notify *notify, void *user_data)"),
    share_last_error: fn("const char *share_last_error(void)"),
    share_version: fn("const char *share_version(void)"),
    share_string_free: fn("void share_string_free(void *s)"),
  };
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
    pending: (key) => c.share_sync_pending(key, outPending) === 0 && outPending[0] === 1,
    createAsync: (sessionID) => starting((out) => c.share_create_async(sessionID, op, null, out)),
    removeAsync: (sessionID, secret) => starting((out) => c.share_remove_async(sessionID, secret, op, null, out)),
    opTake: (opId) => taking((out) => c.share_op_take(opId, out)),
    flushAsync: (timeoutMs) => starting((out) => c.share_flush_async(timeoutMs, op, null, out)),
    shutdown: (timeoutMs) =>
      new Promise((resolve, reject) => {
        c.share_shutdown.async(timeoutMs, (err, status) => {
          if (err) return reject(err);
          resolve({ status, message: SHUTDOWN_MESSAGES[status] ?? "" });
        });
      }),
    stats: () => taking((out) => c.share_stats(out)),
    eventsTake: () => taking((out) => c.share_events_take(out)),
    setEventSink: (on) => c.share_set_event_callback(on ? notify : null, null),
  };
  return native;
};

install(load);

export * from "./public.js";
