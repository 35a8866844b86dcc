// Whether the library keeps events for us. It keeps them only while a sink is set; each batch
// wakes the JS thread, so the sink is set only while someone listens or a content is held.

import { state } from "./state.js";
import { OK, failure } from "./status.js";

/**
 * Sets or removes the sink as needed: while anyone listens, while a content is held (its key's
 * event hands it over), or when `needed` (about to hold one).
 */
export function updateSink(needed = false): void {
  const n = state.native;
  if (!n) return;
  let want = needed || state.held.size > 0;
  for (const [name, set] of state.listeners) if (name !== "error" && set.size > 0) want = true;
  if (want === state.sinkOn) return;
  const status = n.setEventSink(want);
  if (status !== OK) throw failure(n, status);
  state.sinkOn = want;
}
