// Takes the library's waiting events (share_events_take): each hands over the held contents it
// frees, then reaches the listeners.

import type { ShareEvent } from "./event-types.js";
import { emit } from "./events.js";
import { settle } from "./handover.js";
import { updateSink } from "./sink.js";
import { state } from "./state.js";
import { OK } from "./status.js";

/** Takes and delivers the waiting events, if the sink is set (else the library kept none). */
export function drainEvents(): void {
  const n = state.native;
  if (!n || !state.sinkOn) return;
  const out = n.eventsTake();
  if (out.status !== OK || !out.json || out.json === "[]") return;
  for (const event of JSON.parse(out.json) as ShareEvent[]) {
    settle(event);
    emit(event.type, event as never);
    emit("*", event);
  }
  updateSink(); // nothing held any more: stop taking events nobody needs
}
