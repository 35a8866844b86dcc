// The last word at exit. opencode writes a session's final state (its token totals, its
// updated time) just after it disposes its plugins, so no event hook sees it; it keeps every bus
// event in its database (the `event` table: aggregate_id = the session, seq, type such as
// "session.updated.1", data = the event's properties), but about half the time the final totals
// reach only the `session` row, with no event at all. At process exit the plugin reads the newest
// events of the sessions it shares and their `session` rows, synchronously (bun:sqlite,
// read-only), and answers the items whose newest content it has not seen. Best effort: a missing
// database or table answers nothing.

import { Database } from "bun:sqlite";
import { existsSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { isDeepStrictEqual } from "node:util";

import type { ShareNext } from "opencode-share";

import type { SessionItems } from "./feed.js";

/** How many of a session's newest events are read at exit (bounds the work at exit). */
const LAST_EVENTS = 2000;

/** opencode's database file (XDG data folder), if it exists. */
export function databaseFile(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const file = join(env.XDG_DATA_HOME || join(homedir(), ".local", "share"), "opencode", "opencode.db");
  return existsSync(file) ? file : undefined;
}

type Fields = { [field: string]: unknown };

/** The items of `sessionID` whose newest stored content differs from `seen` (what the feed had). */
export function newerItems(file: string, sessionID: string, seen: SessionItems | undefined): ShareNext.Data[] {
  let db: Database | undefined;
  try {
    db = new Database(file, { readonly: true });
    const rows = db
      .query("SELECT type, data FROM event WHERE aggregate_id = ? ORDER BY seq DESC LIMIT ?")
      .all(sessionID, LAST_EVENTS) as { type: string; data: string }[];
    const newest = new Map<string, ShareNext.Data>();
    // newest first: the first row of each item key wins
    for (const row of rows) {
      const kind = row.type.replace(/\.\d+$/, "");
      let data: Fields;
      try {
        data = JSON.parse(row.data);
      } catch {
        continue;
      }
      if (kind === "session.updated" && data.info && !newest.has("session")) newest.set("session", { type: "session", data: data.info as Fields });
      else if (kind === "message.updated" && data.info) {
        const info = data.info as Fields & { id: string };
        if (!newest.has(`message/${info.id}`)) newest.set(`message/${info.id}`, { type: "message", data: info });
      } else if (kind === "message.part.updated" && data.part) {
        const part = data.part as Fields & { id: string; messageID: string };
        if (!newest.has(`part/${part.id}`)) newest.set(`part/${part.id}`, { type: "part", data: part });
      }
    }
    const session = (newest.get("session")?.data ?? seen?.session) as Fields | undefined;
    const totals = session && rowTotals(db, sessionID);
    if (session && totals) newest.set("session", { type: "session", data: withTotals(session, totals) });
    const out: ShareNext.Data[] = [];
    for (const item of [...newest.values()].reverse()) {
      const data = item.data as Fields & { id?: string };
      const before =
        item.type === "session" ? seen?.session : item.type === "message" ? seen?.messages.get(data.id!) : seen?.parts.get(data.id!);
      // as JSON: a bus object may hold undefined fields that the stored JSON lacks
      if (before === undefined || !isDeepStrictEqual(JSON.parse(JSON.stringify(before)), data)) out.push(item);
    }
    return out;
  } catch {
    return [];
  } finally {
    db?.close();
  }
}

type Row = { cost: number; input: number; output: number; reasoning: number; cacheRead: number; cacheWrite: number; updated: number };

/** The session row's cost, token totals and updated time (the row is what `opencode export` reads). */
function rowTotals(db: Database, sessionID: string): Row | undefined {
  const row = db
    .query(
      `SELECT cost, tokens_input AS input, tokens_output AS output, tokens_reasoning AS reasoning,
              tokens_cache_read AS cacheRead, tokens_cache_write AS cacheWrite, time_updated AS updated
       FROM session WHERE id = ?`,
    )
    .get(sessionID) as Row | null;
  return row ?? undefined;
}

/** `info` with the row's totals and updated time laid over it. */
function withTotals(info: Fields, row: Row): Fields {
  const tokens = { input: row.input, output: row.output, reasoning: row.reasoning, cache: { read: row.cacheRead, write: row.cacheWrite } };
  return { ...info, cost: row.cost, tokens, time: { ...(info.time as Fields), updated: row.updated } };
}

/**
 * Whether `item` is a text or reasoning part still streaming when it was stored: opencode stores
 * no deltas, so the spool's grown copy of such a part is newer than the database's.
 */
export function streaming(item: ShareNext.Data): boolean {
  if (item.type !== "part") return false;
  const part = item.data as Fields & { time?: { end?: unknown } };
  return (part.type === "text" || part.type === "reasoning") && part.time?.end === undefined;
}
