// The blocking flush of dispose and exit: opencode does not await a plugin's dispose, so the only
// way to send what is queued before the process exits is to hold the JS thread in the library's
// share_flush (it sends from its own threads meanwhile): the bindings' flushSync.

import { Share, ShareError } from "opencode-share";

/** Share.flushSync(timeoutMs) as a status: 0 when everything accepted was sent or dropped (or spooled). */
export function blockingFlush(timeoutMs: number): number {
  try {
    Share.flushSync(timeoutMs);
    return 0;
  } catch (e) {
    return e instanceof ShareError ? e.status : -1;
  }
}
