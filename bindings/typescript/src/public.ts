// What the package exports, the same from both entry points (bun.ts, node.ts).
export { Share, ShareError, STATUS, init, sync, create, remove, flush, shutdown, stats, on, off, url, library } from "./api.js";
export type {
  DroppedEvent,
  FailedEvent,
  InitOptions,
  LostEvent,
  LibraryInfo,
  RefusedEvent,
  ResumedEvent,
  RetryEvent,
  ShareConfig,
  ShareErrorCode,
  ShareEvent,
  ShareEventMap,
  ShareEventName,
  ShareInfo,
  ShareStats,
  StatusName,
  Subscribe,
  SyncedEvent,
  SyncErrorEvent,
  UnsharedEvent,
} from "./api.js";
