// The API, the same in Bun and Node: it drives a Native (native.ts) that a loader bound with
// bun:ffi (bun.ts) or koffi (node.ts). Nothing here blocks the event loop on the network:
// sync returns at once; create, remove, flush and the wait of shutdown complete through the
// library's asynchronous entry points; nothing polls. The work is split by job:
//
//   status.ts       share_status names and ShareError     args.ts      argument checks
//   types.ts        config, results, stats                event-types.ts  event shapes
//   state.ts        the one state object                  library.ts   loading the library
//   lifecycle.ts    init, stats, shutdown                 ops.ts       create, remove, flush
//   handover.ts     sync and the held contents            drain.ts     taking the library's events
//   events.ts       on, off, emit                         sink.ts      when the library keeps events
//
//   share-next.ts   ShareNext (protocol "next"), over:    next-events.ts  the host's bus events
//   next-keys.ts    items as storage keys                 next-shares.ts  share records
//   next-types.ts   ShareNext's shapes
//
// This file composes them into `Share`, the original module's shape; share-next.ts composes
// `ShareNext`.

import { off, on } from "./events.js";
import { sync } from "./handover.js";
import { library } from "./library.js";
import { init, list, shutdown, stats, url } from "./lifecycle.js";
import { create, flush, flushSync, remove, removeKnown } from "./ops.js";
import type { ShareError } from "./status.js";
import type { ShareEvent, ShareEventMap } from "./event-types.js";
import type { InitOptions, LedgerEntry, LibraryInfo, ShareConfig, ShareInfo, ShareStats } from "./types.js";

export { install, library } from "./library.js";
export { init, list, shutdown, stats, url } from "./lifecycle.js";
export { sync } from "./handover.js";
export { create, remove, removeKnown, flush, flushSync } from "./ops.js";
export { on, off } from "./events.js";
export { STATUS, ShareError } from "./status.js";
export { ShareNext } from "./share-next.js";
export type {
  BusEvent,
  ShareNextBusEvent,
  ShareNextItem,
  ShareNextItemType,
  ShareNextOptions,
  ShareRecord,
  ShareStore,
  SubscribeBus,
} from "./next-types.js";
export type { ShareErrorCode, StatusName } from "./status.js";
export type { InitOptions, LedgerEntry, LibraryInfo, ShareConfig, ShareInfo, ShareStats, Subscribe } from "./types.js";
export type {
  DroppedEvent,
  FailedEvent,
  LostEvent,
  RefusedEvent,
  ResumedEvent,
  RetryEvent,
  ShareEvent,
  ShareEventMap,
  ShareEventName,
  SyncedEvent,
  SyncErrorEvent,
  UnsharedEvent,
} from "./event-types.js";

/** The original module's shape: `import { Share } from "opencode-share"`. */
export const Share = {
  init,
  sync,
  create,
  remove,
  removeKnown,
  flush,
  flushSync,
  shutdown,
  stats,
  list,
  on,
  off,
  /** The share service's base URL (read from the running or last library); undefined before init. */
  get URL(): string | undefined {
    return url();
  },
  /** The loaded library: backend, file and version; undefined before the first init. */
  get library(): LibraryInfo | undefined {
    return library();
  },
};

// Types under the namespace, as share.ts users may spell them.
// eslint-disable-next-line @typescript-eslint/no-namespace
export declare namespace Share {
  export type Config = ShareConfig;
  export type Options = InitOptions;
  export type Info = ShareInfo;
  export type Stats = ShareStats;
  export type Ledger = LedgerEntry;
  export type Event = ShareEvent;
  export type EventMap = ShareEventMap;
  export type Error = ShareError;
}
