// The legacy protocol ("v1": /share_create, /share_sync, /share_delete), for a service that
// speaks only that: the library's `Share` API with opencode's storage keys. What ShareNext does
// for "next" (share records, the bus events as items) is done here by hand. A v1 library learns
// a share by creating it, from its spool, or from opencode's storage key `session/share/<id>`
// ({secret, url}): the driver tells it each share of the plugin's records once per process, so a
// share an earlier process made gets this one's items too.

import { Share, type ShareNext } from "opencode-share";

import type { ShareFile } from "./store.js";

type Item = ShareNext.Data;

/** An item's storage key under v1 (no diff or model items there); undefined for those. */
function keyOf(sessionID: string, item: Item): string | undefined {
  const data = item.data as { id?: string; messageID?: string };
  if (item.type === "session") return `session/info/${sessionID}`;
  if (item.type === "message" && data.id) return `session/message/${sessionID}/${data.id}`;
  if (item.type === "part" && data.id && data.messageID) return `session/part/${sessionID}/${data.messageID}/${data.id}`;
  return undefined;
}

/** What the bus event carries, as v1 items of one session (undefined: nothing to sync). */
export function itemsOfEvent(event: { type: string; properties?: unknown }): { sessionID: string; items: Item[] } | undefined {
  const p = (event.properties ?? {}) as { info?: { id?: string; sessionID?: string }; part?: { sessionID?: string } };
  if (event.type === "session.updated" && p.info?.id) return { sessionID: p.info.id, items: [{ type: "session", data: p.info }] };
  if (event.type === "message.updated" && p.info?.sessionID) return { sessionID: p.info.sessionID, items: [{ type: "message", data: p.info as Item["data"] & { id: string } }] };
  if (event.type === "message.part.updated" && p.part?.sessionID) return { sessionID: p.part.sessionID, items: [{ type: "part", data: p.part as Item["data"] & { id: string; messageID: string } }] };
  return undefined;
}

export class V1 {
  /** The sessions whose share the library was told (or made) in this process. */
  private readonly known = new Set<string>();

  constructor(private readonly store: ShareFile) {}

  /** Items of a shared session go to the library; others are not handed over. */
  sync(sessionID: string, items: Item[]): void {
    const record = this.store.get(sessionID);
    if (!record) return;
    if (!this.known.has(sessionID)) {
      Share.sync(`session/share/${sessionID}`, { secret: record.secret, url: record.url });
      this.known.add(sessionID);
    }
    for (const item of items) {
      const key = keyOf(sessionID, item);
      if (key) Share.sync(key, item.data);
    }
  }

  async create(sessionID: string, snapshot: () => Promise<Item[]>): Promise<ShareNext.Record> {
    const { url, secret } = await Share.create(sessionID);
    const id = new URL(url).pathname.split("/").filter(Boolean).pop() ?? sessionID;
    const record = { id, url, secret };
    this.store.set(sessionID, record);
    this.known.add(sessionID);
    this.sync(sessionID, await snapshot());
    return record;
  }

  async remove(sessionID: string): Promise<void> {
    const record = this.store.get(sessionID);
    if (!record) return;
    await Share.remove(sessionID, record.secret);
    this.store.delete(sessionID);
    this.known.delete(sessionID);
  }
}
