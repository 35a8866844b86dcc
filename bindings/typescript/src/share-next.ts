// ShareNext: opencode's successor client (packages/opencode/src/share/share-next.ts) as its
// host calls it, over the library under protocol "next". Bus events and explicit syncs become
// storage-key writes (next-keys.ts), which the library batches per share (one request in
// flight per share, coalescing per item); create and remove keep the host's share records
// (next-shares.ts) in step. The library run is the same one `Share` drives.

import { off, on } from "./events.js";
import { reportHostError, sync as write } from "./handover.js";
import { init as startLibrary, shutdown, stats, url } from "./lifecycle.js";
import { BUS_EVENTS, readBusEvent, type BusAction } from "./next-events.js";
import { idArg, shareKey, storageKey } from "./next-keys.js";
import { created, recordOf, removed, resetShares, storeInUse } from "./next-shares.js";
import type { BusEvent, ShareNextItem, ShareNextOptions, ShareRecord, ShareStore } from "./next-types.js";
import { create as createShare, flush, flushSync, remove as removeShare } from "./ops.js";
import { state } from "./state.js";
import { BAD_RESPONSE, NOT_INITIALIZED, ShareError, invalid } from "./status.js";

/** The library run ShareNext.init started (0: none), and that run's host hooks. */
let run = 0;
let hooks: Pick<ShareNextOptions, "model" | "snapshot"> = {};
/** Model lookups, chained so that their items are written in event order. */
let models: Promise<void> = Promise.resolve();

function notRunning(): ShareError {
  return new ShareError(NOT_INITIALIZED, "ShareNext is not running: call ShareNext.init first");
}

/** Whether ShareNext's run is the library's live one, or the one its shutdown is stopping. */
function ours(): boolean {
  return run !== 0 && run === state.run && (state.liveRun === run || state.stopping !== undefined);
}

/**
 * Starts the library under protocol "next". `options`: share_init's configuration keys (`url`,
 * `token`, `org_id`, ...), `libraryPath`, and the host's hooks: `subscribe` (the bus), `shares`
 * (its share records), `model` and `snapshot`. Throws a ShareError as Share.init does.
 */
export function init(options: ShareNextOptions = {}): void {
  const { subscribe, shares, model, snapshot, protocol, ...config } = options;
  if (protocol !== undefined && protocol !== "next") throw invalid(`ShareNext speaks protocol "next", not ${JSON.stringify(protocol)}`);
  for (const [name, hook] of Object.entries({ subscribe, model, snapshot })) {
    if (hook !== undefined && typeof hook !== "function") throw invalid(`${name} must be a function`);
  }
  if (shares !== undefined && typeof shares?.get !== "function") throw invalid("shares must be a store with a get(sessionID) function");
  startLibrary({
    ...config,
    protocol: "next",
    // called by init once the library runs, before it returns: the run is ShareNext's from here
    subscribe: () => {
      const mine = state.run;
      run = mine;
      hooks = { model, snapshot };
      models = Promise.resolve();
      resetShares(shares);
      return subscribe?.((event) => {
        if (state.liveRun === mine) fromBus(event);
      });
    },
  });
}

/** One bus event of the host's: what it asks for, done; a failure is an `error` event. */
function fromBus(event: BusEvent): void {
  let action: BusAction | undefined;
  try {
    action = readBusEvent(event);
    if (!action) return;
    if (action.kind === "remove") {
      const sessionID = action.sessionID;
      remove(sessionID).catch((e) => reportHostError(shareKey(sessionID), e, `remove(${JSON.stringify(sessionID)})`));
      return;
    }
    sync(action.sessionID, action.items);
  } catch (e) {
    reportHostError(event?.type, e, `the ${JSON.stringify(event?.type)} event`);
    return;
  }
  const wanted = action.model;
  const resolve = hooks.model;
  if (!wanted || !resolve) return;
  const { sessionID } = action;
  const mine = run;
  models = models.then(async () => {
    try {
      const found = await resolve(wanted.providerID, wanted.modelID);
      if (found !== undefined && found !== null && state.liveRun === mine) sync(sessionID, [{ type: "model", data: [found] }]);
    } catch (e) {
      reportHostError(`session/model/${sessionID}`, e);
    }
  });
}

/**
 * Queues `items` of `sessionID` (each replaces the pending content of its item key). Returns at
 * once. Every item is checked before any is queued: a ShareError (SHARE_ERR_INVALID_ARGUMENT)
 * names the first bad one. Items of a session without a share are not handed over (counted in
 * stats' `ignored`).
 */
export function sync(sessionID: string, items: Iterable<ShareNextItem>): void {
  if (!ours()) throw notRunning();
  idArg("sessionID", sessionID);
  if (items === null || typeof (items as Partial<Iterable<ShareNextItem>>)?.[Symbol.iterator] !== "function") {
    throw invalid("items must be an array (or iterable) of {type, data}");
  }
  const list = [...items];
  const keys = list.map((item) => storageKey(sessionID, item));
  if (!recordOf(sessionID)) {
    state.skipped += list.length;
    return;
  }
  for (let i = 0; i < list.length; i++) write(keys[i]!, list[i]!.data);
}

/**
 * Creates the share of `sessionID` (POST /api/share) and resolves to `{ id, url, secret }`,
 * after the host's store got the record and `snapshot`'s items were queued.
 */
export async function create(sessionID: string): Promise<ShareRecord> {
  if (!ours()) throw notRunning();
  const mine = run;
  const store = storeInUse();
  const info = await createShare(sessionID);
  if (typeof info.id !== "string" || info.id === "") {
    throw new ShareError(BAD_RESPONSE, "create: the library's answer has no share id (is it running protocol \"next\"?)");
  }
  const record: ShareRecord = { id: info.id, url: info.url, secret: info.secret };
  // the share exists on the service: its record is stored even if the run ended meanwhile, or
  // nothing could ever remove it
  const what = `set(${JSON.stringify(sessionID)})`;
  if (run === mine) hostStore(() => created(sessionID, record), what);
  else hostStore(() => store?.set?.(sessionID, record), what);
  const snapshot = hooks.snapshot;
  if (snapshot && run === mine && ours()) {
    try {
      sync(sessionID, await snapshot(sessionID));
    } catch (e) {
      reportHostError(shareKey(sessionID), e, `the snapshot of ${JSON.stringify(sessionID)}`);
    }
  }
  return record;
}

/**
 * Removes the share of `sessionID`: its pending items are dropped at once; DELETE
 * /api/share/<id> with its secret; then the host's store forgets the record (a failed DELETE
 * rejects and keeps it, so it can be retried). A session without a record: nothing is sent.
 */
export async function remove(sessionID: string): Promise<void> {
  if (!ours()) throw notRunning();
  const record = recordOf(idArg("sessionID", sessionID));
  if (!record) return;
  // the library forgets a share at remove, even when the DELETE fails: a retry teaches it the
  // record again, so the DELETE goes to the record's id
  write(shareKey(sessionID), record);
  await removeShare(sessionID, record.secret);
  hostStore(() => removed(sessionID), `delete(${JSON.stringify(sessionID)})`);
}

/** Runs a call that reaches the host's share store; its failure is an `error` event (the share's state is settled). */
function hostStore(call: () => void, what: string): void {
  try {
    call();
  } catch (e) {
    reportHostError(undefined, e, `the share store's ${what}`);
  }
}

/**
 * opencode's `ShareNext` module's shape: `import { ShareNext } from "opencode-share"`. flush,
 * flushSync, shutdown, stats, on and off are Share's (one library run serves both; `Share.library` tells
 * which library file is loaded).
 */
export const ShareNext = {
  init,
  sync,
  create,
  remove,
  flush,
  flushSync,
  shutdown,
  stats,
  on,
  off,
  /** The bus events `subscribe`'s handler reads; a host may subscribe exactly these. */
  EVENTS: BUS_EVENTS,
  /** The share service's base URL in use (or last used), as ShareNext.url() returned it; undefined before init. */
  url,
};

// Types under the namespace, as share-next.ts users may spell them.
// eslint-disable-next-line @typescript-eslint/no-namespace
export declare namespace ShareNext {
  export type Options = ShareNextOptions;
  export type Data = ShareNextItem;
  export type Record = ShareRecord;
  export type Store = ShareStore;
  export type Event = BusEvent;
}
