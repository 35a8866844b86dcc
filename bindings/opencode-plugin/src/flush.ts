// The blocking flush of dispose: opencode does not await a plugin's dispose, so the only way to
// send what is queued before the process exits is to hold the JS thread in share_flush (the
// library sends from its own threads meanwhile). The library is already loaded by the
// opencode-share package; dlopen of the same file hands back the same instance.

import { dlopen } from "bun:ffi";

import { Share } from "opencode-share";

let flush: ((timeoutMs: number) => number) | undefined;

/** share_flush(timeoutMs): 0 when everything accepted was sent or dropped (or spooled), else the status. */
export function blockingFlush(timeoutMs: number): number {
  if (!flush) {
    const path = Share.library?.path;
    if (!path) return -1;
    const { symbols } = dlopen(path, { share_flush: { args: ["u32"], returns: "i32" } });
    flush = (ms) => symbols.share_flush(ms) as number;
  }
  return flush(timeoutMs);
}
