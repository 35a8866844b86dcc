// What the package exports, the same from both entry points (bun.ts, node.ts).
export { Share, ShareNext, ShareError, STATUS, init, sync, create, remove, removeKnown, flush, flushSync, shutdown, stats, list, on, off, url, library } from "./api.js";
// every type of the API (install, the loaders' hook, stays a value of api.ts only)
export type * from "./api.js";
