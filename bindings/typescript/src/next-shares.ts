// The share records ShareNext knows in this run: the ones its `create` made and the ones the
// host's store holds (read once per session, "none" included, as ShareNext caches its rows).
// A record the store hands over is given to the library as a session/share/<sid> write, which
// is how the library learns a share it did not create.

import { sync } from "./handover.js";
import { shareKey } from "./next-keys.js";
import type { ShareRecord, ShareStore } from "./next-types.js";

/** Per session: its record, or null when it has none (or it was removed in this run). */
const known = new Map<string, ShareRecord | null>();
let store: ShareStore | undefined;

/** A new run: forgets the last run's records, uses `shares` from now on. */
export function resetShares(shares: ShareStore | undefined): void {
  known.clear();
  store = shares;
}

/** The record of `sessionID`: known in this run, else the store's (the library then learns it). */
export function recordOf(sessionID: string): ShareRecord | undefined {
  let record = known.get(sessionID);
  if (record === undefined) {
    record = store?.get(sessionID) ?? null;
    known.set(sessionID, record);
    if (record) sync(shareKey(sessionID), record);
  }
  return record ?? undefined;
}

/** The host's store of this run. */
export function storeInUse(): ShareStore | undefined {
  return store;
}

/** `create` succeeded: the library knows the share already; the host's store gets it. */
export function created(sessionID: string, record: ShareRecord): void {
  known.set(sessionID, record);
  store?.set?.(sessionID, record);
}

/** `remove`'s DELETE succeeded: the record goes, here and in the host's store. */
export function removed(sessionID: string): void {
  known.set(sessionID, null);
  store?.delete?.(sessionID);
}
