// opencode-share-plugin: makes the real opencode's sharing go through the opencode-share library
// (bun:ffi, inside opencode's own Bun). One line in opencode.json:
//
//   "plugin": ["opencode-share-plugin"]            or   ["opencode-share-plugin", { "url": "https://share.example" }]
//
// Design: the `config` hook points opencode's share base URL (enterprise.url) at a loopback
// endpoint of the plugin's (endpoint.ts), so opencode's /share, /unshare, share "auto",
// `run --share` and session deletion still go through opencode's own code, which shows the URL;
// the endpoint turns create and delete into the library's, and swallows opencode's own syncs.
// What reaches the service comes from the `event` hook (feed.ts): every bus event, deltas
// included, through the library (one request in flight per share, coalescing, retries, a
// durable spool). `dispose` flushes with a blocking call: opencode does not wait for it.

import type { Hooks, Plugin, PluginInput, PluginModule } from "@opencode-ai/plugin";
import { appendFileSync } from "node:fs";
import { join } from "node:path";

import { Share, ShareNext } from "opencode-share";

import { databaseFile, newerItems, streaming } from "./catchup.js";
import { RunMarker, orphanedSessions } from "./crashes.js";
import { serve } from "./endpoint.js";
import { Feed, toItems, type SessionItems } from "./feed.js";
import { blockingFlush } from "./flush.js";
import { settings, type PluginOptions, type Settings } from "./options.js";
import { ShareFile } from "./store.js";
import { V1, itemsOfEvent } from "./v1.js";

export type { PluginOptions } from "./options.js";

const DEFAULT_URL = "https://opncd.ai";

/** One per process: opencode may start the plugin once per project instance, the library runs once. */
interface Runtime {
  settings: Settings;
  feed: Feed;
  store: ShareFile;
  /** This process's marker of the sessions it fed (crashes.ts); its folder. */
  marker: RunMarker;
  markerDir: string;
  endpoint: { url: string; stop: () => void };
  client: PluginInput["client"];
  /** ShareNext's bus handler (set when the library started). */
  bus?: (event: { type: string; properties?: unknown }) => void;
  started: boolean;
  serviceUrl?: string;
  spoolDir?: string;
  removing: Map<string, Promise<void>>;
  creating: Map<string, Promise<ShareNext.Record>>;
  /** The legacy protocol's driver, when `protocol` is "v1". */
  v1?: V1;
  warn: (message: string) => void;
}

/** OPENCODE_SHARE_PLUGIN_TRACE=<file>: one line per event and flush, for diagnosing a host (no contents). */
const TRACE = process.env.OPENCODE_SHARE_PLUGIN_TRACE;
function trace(line: string): void {
  if (TRACE) appendFileSync(TRACE, `${Date.now()} ${line}\n`);
}

const GLOBAL = Symbol.for("opencode-share-plugin.runtime");
type Holder = { [GLOBAL]?: Runtime };

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what} took over ${ms} ms`)), ms)));
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}

/** Everything opencode holds of a session (its API), overlaid with the newer copies the feed saw. */
async function snapshot(rt: Runtime, sessionID: string): Promise<ShareNext.Data[]> {
  const s: SessionItems = { messages: new Map(), parts: new Map() };
  try {
    const path = { path: { id: sessionID } };
    const [info, messages] = await withTimeout(Promise.all([rt.client.session.get(path), rt.client.session.messages(path)]), 5000, "reading the session");
    if (info.data) s.session = info.data as unknown as Record<string, unknown>;
    for (const m of messages.data ?? []) {
      s.messages.set(m.info.id, m.info as unknown as Record<string, unknown>);
      for (const part of m.parts) s.parts.set(part.id, part as unknown as Record<string, unknown>);
    }
  } catch (e) {
    rt.warn(`the snapshot of ${sessionID} from opencode's API failed (${(e as Error).message}); sharing what the plugin saw`);
  }
  const seen = rt.feed.known(sessionID);
  if (seen) {
    if (seen.session) s.session = seen.session;
    for (const [id, m] of seen.messages) s.messages.set(id, m);
    for (const [id, p] of seen.parts) s.parts.set(id, p);
    if (seen.diff) s.diff = seen.diff;
  }
  return toItems(s);
}

/** Whether opencode's API answered the providers once too slowly (then the model item is skipped). */
let providersFailed = false;

/** A user message's model item: the provider's model as opencode's API lists it (best effort). */
async function model(rt: Runtime, providerID: string, modelID: string): Promise<unknown> {
  if (providersFailed) return undefined;
  try {
    const res = await withTimeout(rt.client.config.providers(), 5000, "reading the providers");
    const provider = res.data?.providers.find((p) => p.id === providerID);
    return provider?.models?.[modelID];
  } catch (e) {
    providersFailed = true;
    rt.warn(`no model items: ${(e as Error).message}`);
    return undefined;
  }
}

/** Starts the library (once): under the service URL of the options, else opencode's enterprise.url. */
function start(rt: Runtime, enterpriseUrl: string | undefined): void {
  if (rt.started) return;
  rt.started = true;
  const s = rt.settings;
  rt.serviceUrl = s.url ?? enterpriseUrl ?? DEFAULT_URL;
  const config = {
    url: rt.serviceUrl,
    min_interval_ms: s.minIntervalMs,
    libraryPath: s.libraryPath,
    ...(s.token ? { token: s.token, org_id: s.orgId } : {}),
    ...s.library,
  };
  const hooks = {
    shares: rt.store,
    subscribe: (on: (event: { type: string; properties?: unknown }) => void) => {
      rt.bus = on;
    },
    model: (providerID: string, modelID: string) => model(rt, providerID, modelID),
    snapshot: (sessionID: string) => snapshot(rt, sessionID),
  };
  if (s.protocol === "v1") rt.v1 = new V1(rt.store);
  const init = (spool: string | undefined) =>
    rt.v1 ? Share.init({ ...config, ...(spool ? { spool_dir: spool } : {}) }) : ShareNext.init({ ...config, ...hooks, ...(spool ? { spool_dir: spool } : {}) });
  // one process per spool: a second opencode at the same time takes the next free slot
  const slots = s.spoolDir ? [s.spoolDir, ...[2, 3, 4, 5, 6, 7, 8].map((n) => `${s.spoolDir}-${n}`)] : [undefined];
  for (const spool of slots) {
    try {
      init(spool);
      rt.spoolDir = spool;
      break;
    } catch (e) {
      const message = (e as Error).message ?? String(e);
      if (spool && /spool/i.test(message) && spool !== slots[slots.length - 1]) continue;
      rt.started = false;
      throw e;
    }
  }
  process.once("exit", () => atExit(rt));
  catchUpKilled(rt);
  ShareNext.on("error", (e) => rt.warn(`${e.key ?? ""}: ${e.error?.message}`));
  ShareNext.on("dropped", (e) => rt.warn(`dropped ${e.count ?? ""} (${e.reason}) ${e.key ?? e.session ?? ""}`));
}

/** Sessions fed by processes that were killed: their newest items stored in opencode's database. */
function catchUpKilled(rt: Runtime): void {
  const sessions = orphanedSessions(rt.markerDir);
  const file = sessions.length > 0 ? databaseFile() : undefined;
  let count = 0;
  for (const sessionID of sessions) {
    if (!file || !rt.store.get(sessionID)) continue;
    // a part that was still streaming: the spool holds its deltas, the database does not
    const items = newerItems(file, sessionID, undefined).filter((item) => !streaming(item));
    count += items.length;
    try {
      if (items.length > 0) syncItems(rt, sessionID, items);
    } catch (e) {
      rt.warn(`catching up ${sessionID} after a killed process: ${(e as Error).message}`);
    }
  }
  if (sessions.length > 0) trace(`start: ${sessions.length} sessions of killed processes, ${count} items from opencode's database`);
}

/** At exit (after opencode's last writes, which no hook sees): the newest stored items, then a blocking flush. */
function atExit(rt: Runtime): void {
  const file = databaseFile();
  let late = 0;
  if (file) {
    for (const sessionID of rt.feed.sessions()) {
      if (!rt.store.get(sessionID)) continue;
      const items = newerItems(file, sessionID, rt.feed.known(sessionID));
      if (items.length === 0) continue;
      late += items.length;
      try {
        syncItems(rt, sessionID, items);
      } catch (e) {
        trace(`exit sync failed: ${(e as Error).message}`);
      }
    }
  }
  const status = blockingFlush(rt.settings.flushTimeoutMs);
  trace(`exit: ${late} late items, flushed ${status}`);
  // what the flush did not send stays in the spool; without one, the next start catches it up
  if (status === 0 || rt.spoolDir) rt.marker.clear();
}

/** Hands items of a session to the library (ShareNext's, or the v1 driver's storage keys). */
function syncItems(rt: Runtime, sessionID: string, items: ShareNext.Data[]): void {
  if (rt.v1) rt.v1.sync(sessionID, items);
  else ShareNext.sync(sessionID, items);
}

/**
 * Creates the share of a session once: a session that has one answers it (opencode's share
 * "auto" asks twice within 50 ms under `run`), and concurrent asks share one create.
 */
function createOnce(rt: Runtime, sessionID: string): Promise<ShareNext.Record> {
  const known = rt.store.get(sessionID);
  if (known) return Promise.resolve(known);
  let pending = rt.creating.get(sessionID);
  if (!pending) {
    pending = (rt.v1 ? rt.v1.create(sessionID, () => snapshot(rt, sessionID)) : ShareNext.create(sessionID)).finally(() =>
      rt.creating.delete(sessionID),
    );
    rt.creating.set(sessionID, pending);
  }
  return pending;
}

/** Removes the share of a session once, however many paths ask (opencode's DELETE and session.deleted). */
function removeSession(rt: Runtime, sessionID: string): Promise<void> {
  let pending = rt.removing.get(sessionID);
  if (!pending) {
    pending = (rt.v1 ? rt.v1.remove(sessionID) : ShareNext.remove(sessionID)).finally(() => rt.removing.delete(sessionID));
    rt.removing.set(sessionID, pending);
  }
  return pending;
}

/** A share the plugin never knew (made before it was installed): opencode's secret deletes it. */
async function removeUnknown(rt: Runtime, id: string, secret: string | undefined): Promise<void> {
  if (!secret) throw new Error(`no share ${id} is known here, and opencode sent no secret`);
  const res = await fetch(`${rt.serviceUrl}/api/share/${encodeURIComponent(id)}`, {
    method: "DELETE",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ secret }),
    signal: AbortSignal.timeout(30_000),
  });
  if (!res.ok && res.status !== 404) throw new Error(`the service answered ${res.status} to the delete of share ${id}`);
}

function runtime(input: PluginInput, options: PluginOptions | undefined): Runtime {
  const holder = globalThis as Holder;
  if (holder[GLOBAL]) return holder[GLOBAL];
  const s = settings(options);
  const warn = (message: string) => {
    const line = `opencode-share: ${message}`;
    input.client.app.log({ body: { service: "opencode-share", level: "warn", message: line } }).catch(() => console.error(line));
  };
  const rt: Runtime = {
    settings: s,
    feed: new Feed(),
    store: new ShareFile(join(s.stateDir, "shares.json")),
    marker: new RunMarker(join(s.stateDir, "running")),
    markerDir: join(s.stateDir, "running"),
    client: input.client,
    started: false,
    removing: new Map(),
    creating: new Map(),
    warn,
    endpoint: { url: "", stop: () => {} },
  };
  rt.endpoint = serve({
    create: (sessionID) => {
      start(rt, undefined);
      return createOnce(rt, sessionID);
    },
    remove: async (id, secret) => {
      start(rt, undefined);
      const sessionID = rt.store.sessionOf(id);
      if (sessionID) await removeSession(rt, sessionID);
      else await removeUnknown(rt, id, secret);
    },
    warn,
  });
  holder[GLOBAL] = rt;
  return rt;
}

export const server: Plugin = async (input, options) => {
  const rt = runtime(input, options as PluginOptions | undefined);
  const hooks: Hooks = {
    config: async (config) => {
      const own = config.enterprise?.url;
      start(rt, own && own !== rt.endpoint.url ? own.replace(/\/+$/, "") : undefined);
      config.enterprise = { ...config.enterprise, url: rt.endpoint.url };
    },
    event: async ({ event }) => {
      if (!rt.started) return;
      const e = event as { type: string; properties?: unknown };
      if (TRACE) trace(`event ${e.type}${e.type === "message.part.delta" ? ` ${(e.properties as { field?: string }).field}` : ""}`);
      const grown = rt.feed.take(e);
      rt.marker.note(rt.feed.sessions());
      try {
        if (e.type === "session.deleted") {
          const id = (e.properties as { info?: { id?: string } })?.info?.id;
          if (id) removeSession(rt, id).catch((err) => rt.warn(`removing the share of ${id}: ${err.message}`));
        } else if (rt.v1) {
          const found = itemsOfEvent(e);
          if (found) rt.v1.sync(found.sessionID, found.items);
        } else if ((ShareNext.EVENTS as readonly string[]).includes(e.type)) {
          rt.bus?.(e);
        }
        if (grown) syncItems(rt, grown.sessionID, grown.items);
      } catch (err) {
        rt.warn(`the ${e.type} event: ${(err as Error).message}`);
      }
    },
    // opencode does not await this: a blocking flush holds its exit until everything queued
    // is sent (or the spool has it), within flushTimeoutMs
    dispose: async () => {
      if (!rt.started) return;
      const status = blockingFlush(rt.settings.flushTimeoutMs);
      trace(`dispose: flushed ${status}`);
      if (status !== 0) rt.warn(`the flush at exit ended with status ${status}${rt.spoolDir ? " (the rest stays in the spool for the next start)" : ""}`);
    },

  };
  return hooks;
};

const plugin: PluginModule = { id: "opencode-share", server };
export default plugin;
