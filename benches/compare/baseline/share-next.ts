// The baseline's successor: opencode's `ShareNext` client (packages/opencode/src/share/share-next.ts
// with the glue of share/session.ts, v1.17.9, June 2026), rewritten from
// /work/shared/research/sharenext.md (sections 2 and 4) without Effect, kept step for step where it
// matters: one pending map per session, flushed by ONE 1000 ms timer started by the batch's first
// item; items keyed by `key(item)` so a newer write of an item replaces the older in the map; the
// flush takes the map out, re-reads the share and POSTs `{secret, data}`; a status >= 400 is only
// logged, a network error fails the flush: no retry, no re-queue, no timeout, the batch is gone.
// Items written during a POST start a new map and a new timer, so POSTs may overlap. Since
// 7f571d36 the items are `structuredClone`d as the events hand them over: done here too (its
// cost is on the host's thread, and a later mutation of the host's object does not leak in).
// Instance disposal interrupts the forked fibers: a delayed flush never runs, and a POST in
// flight is interrupted (Effect's HTTP client aborts its fetch): here an AbortController per POST.
//
// Differences, all neutral, and why:
// - The share row (SQLite `session_share`) and its per-instance cache are one in-memory Map.
// - Bus events become calls: the host calls sessionUpdated / messageUpdated / partUpdated /
//   sessionDiff as the subscriptions did; `model` items come from the caller (provider.getModel).
// - create's forked `full(sessionID)` (read session, diff, messages with parts, models) calls the
//   `full` function the caller passes, queued as one sync, not awaited: the first upload is >= 1 s
//   after create, as in the original.
// - `log` keeps counts instead of writing opencode's log file.
// - `drain()` and `dispose()` are for tests and benchmarks: drain waits until no batch is pending
//   or in flight; dispose is instance disposal (pending timers interrupted, queue cleared: what
//   the original loses on exit).
// - OPENCODE_DISABLE_SHARE and config `share: "disabled"` are the `disabled` flag of init().

export type Item =
  | { type: "session"; data: { id: string; [k: string]: unknown } }
  | { type: "message"; data: { id: string; sessionID: string; [k: string]: unknown } }
  | { type: "part"; data: { id: string; messageID: string; sessionID: string; [k: string]: unknown } }
  | { type: "session_diff"; data: unknown[] }
  | { type: "model"; data: unknown[] };

export type ShareRow = { id: string; secret: string; url: string };

/** opencode's Log.create({ service: "share-next" }), reduced to counts. */
export const log = { warn: 0, error: 0, lines: [] as string[] };

let base = "https://opncd.ai";
let org: { token: string; orgID: string } | undefined;
let disabled = false;

/** Where the session_share rows live (SQLite in opencode; the per-instance cache `shared`). */
const shares = new Map<string, ShareRow>();
/** Per-session pending map of the batch whose timer is running. */
const queue = new Map<string, { data: Map<string, Item>; timer: ReturnType<typeof setTimeout> }>();
const inflight = new Set<Promise<void>>();
/** The POSTs in flight, aborted at disposal (the interrupted fibers of the original). */
const aborts = new Set<AbortController>();

export function init(url: string, options: { org?: { token: string; orgID: string }; disabled?: boolean } = {}) {
  base = url;
  org = options.org;
  disabled = options.disabled ?? false;
}

/** `/api/share` or, for an org account, `/api/shares`; plus its headers. */
function resource() {
  return org ? "shares" : "share";
}

function headers(): Record<string, string> {
  const h: Record<string, string> = { "Content-Type": "application/json" };
  if (org) {
    h["authorization"] = `Bearer ${org.token}`;
    h["x-org-id"] = org.orgID;
  }
  return h;
}

/** share-next.ts `key(item)` (since 1d9dcd2a). */
export function key(item: Item): string {
  switch (item.type) {
    case "session":
      return "session";
    case "message":
      return `message/${item.data.id}`;
    case "part":
      return `part/${item.data.messageID}/${item.data.id}`;
    case "session_diff":
      return "session_diff";
    case "model":
      return "model";
  }
}

export function get(sessionID: string): ShareRow | undefined {
  return shares.get(sessionID);
}

/** ShareNext.sync(sessionID, items) */
export function sync(sessionID: string, items: Item[]) {
  if (disabled) return;
  if (!shares.has(sessionID)) return;
  const existing = queue.get(sessionID);
  if (existing) {
    for (const item of items) existing.data.set(key(item), item);
    return;
  }
  const data = new Map<string, Item>();
  for (const item of items) data.set(key(item), item);
  const timer = setTimeout(() => {
    const p = flush(sessionID).catch((e) => {
      log.error++;
      log.lines.push(`share flush failed ${String(e)}`);
    });
    inflight.add(p);
    p.finally(() => inflight.delete(p));
  }, 1000);
  queue.set(sessionID, { data, timer });
}

/** The delayed flush: take the map out, re-read the share, POST the batch; nothing is retried. */
async function flush(sessionID: string) {
  const batch = queue.get(sessionID);
  if (!batch) return;
  queue.delete(sessionID);
  const share = get(sessionID);
  if (!share) return;
  const abort = new AbortController();
  aborts.add(abort);
  let response: Response;
  try {
    response = await fetch(`${base}/api/${resource()}/${share.id}/sync`, {
      method: "POST",
      headers: headers(),
      body: JSON.stringify({ secret: share.secret, data: Array.from(batch.data.values()) }),
      signal: abort.signal,
    });
  } finally {
    aborts.delete(abort);
  }
  if (response.status >= 400) {
    log.warn++;
    log.lines.push(`failed to sync share ${share.id} status=${response.status}`);
  }
}

/** SessionShare.share → ShareNext.create: POST, store the row, fork the full sync. */
export async function create(sessionID: string, full?: () => Item[]): Promise<ShareRow> {
  if (disabled) return { id: "", url: "", secret: "" };
  const response = await fetch(`${base}/api/${resource()}`, {
    method: "POST",
    headers: headers(),
    body: JSON.stringify({ sessionID }),
  });
  if (!response.ok) throw new Error(`failed to create share: ${response.status}`);
  const result = (await response.json()) as ShareRow;
  shares.set(sessionID, { id: result.id, secret: result.secret, url: result.url });
  if (full) void Promise.resolve().then(() => sync(sessionID, full()));
  return result;
}

/** ShareNext.remove: DELETE with the stored secret, then forget the row and the pending map. */
export async function remove(sessionID: string) {
  if (disabled) return;
  const share = get(sessionID);
  if (!share) return;
  const response = await fetch(`${base}/api/${resource()}/${share.id}`, {
    method: "DELETE",
    headers: headers(),
    body: JSON.stringify({ secret: share.secret }),
  });
  if (!response.ok) throw new Error(`failed to remove share: ${response.status}`);
  shares.delete(sessionID);
  const pending = queue.get(sessionID);
  if (pending) clearTimeout(pending.timer);
  queue.delete(sessionID);
}

// The subscriptions of ShareNext.init (one item or two per event), each structuredClone'd.
export function sessionUpdated(info: { id: string; [k: string]: unknown }) {
  sync(info.id, [{ type: "session", data: structuredClone(info) }]);
}
export function messageUpdated(info: { id: string; sessionID: string; role?: string; [k: string]: unknown }, model?: unknown) {
  const items: Item[] = [{ type: "message", data: structuredClone(info) }];
  if (info.role === "user" && model !== undefined) items.push({ type: "model", data: [structuredClone(model)] });
  sync(info.sessionID, items);
}
export function partUpdated(part: { id: string; messageID: string; sessionID: string; [k: string]: unknown }) {
  sync(part.sessionID, [{ type: "part", data: structuredClone(part) }]);
}
export function sessionDiff(sessionID: string, diff: unknown[]) {
  sync(sessionID, [{ type: "session_diff", data: structuredClone(diff) }]);
}

/** Tests only: resolves once no batch is pending (timer running) or in flight. */
export async function drain(limitMs = 10_000) {
  const deadline = Date.now() + limitMs;
  while ((queue.size > 0 || inflight.size > 0) && Date.now() < deadline) {
    await Promise.allSettled([...inflight]);
    if (queue.size > 0) await new Promise((r) => setTimeout(r, 20));
  }
}

/** Instance disposal: delayed flushes and POSTs in flight interrupted, the queue cleared (lost, as in the original). */
export function dispose() {
  for (const batch of queue.values()) clearTimeout(batch.timer);
  for (const abort of aborts) abort.abort();
  aborts.clear();
  queue.clear();
  shares.clear();
}
