// Listeners: `on`, `off`, and the delivery of one event to them.

import { EVENT_NAMES, type ShareEventMap, type ShareEventName } from "./event-types.js";
import { updateSink } from "./sink.js";
import { state } from "./state.js";
import { invalid } from "./status.js";

/**
 * Listens to the library's events (`synced`, `retry`, `failed`, `dropped`, `unshared`, or `*`
 * for all) or to `error` (a write from `subscribe` that sync refused). Listeners run on the JS
 * thread. Returns a function that removes the listener.
 */
export function on<K extends ShareEventName>(event: K, listener: (event: ShareEventMap[K]) => void): () => void {
  if (!EVENT_NAMES.includes(event)) throw invalid(`unknown event ${JSON.stringify(event)}; expected one of ${EVENT_NAMES.join(", ")}`);
  if (typeof listener !== "function") throw invalid("listener must be a function");
  let set = state.listeners.get(event);
  if (!set) state.listeners.set(event, (set = new Set()));
  set.add(listener as (event: never) => void);
  updateSink();
  return () => off(event, listener);
}

/** Removes a listener added with `on`. */
export function off<K extends ShareEventName>(event: K, listener: (event: ShareEventMap[K]) => void): void {
  state.listeners.get(event)?.delete(listener as (event: never) => void);
  updateSink();
}

/** Whether anyone listens to `name`. */
export function listened(name: ShareEventName): boolean {
  return (state.listeners.get(name)?.size ?? 0) > 0;
}

/** Calls `name`'s listeners with `event`; one that throws does not stop the others. */
export function emit<K extends ShareEventName>(name: K, event: ShareEventMap[K]): void {
  const set = state.listeners.get(name);
  if (!set) return;
  for (const listener of [...set]) {
    try {
      (listener as (event: ShareEventMap[K]) => void)(event);
    } catch (error) {
      // like an EventEmitter's listener: reported as uncaught, after the other listeners ran
      queueMicrotask(() => {
        throw error;
      });
    }
  }
}
