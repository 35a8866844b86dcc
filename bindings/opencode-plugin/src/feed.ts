// opencode's bus events, as the plugin's `event` hook receives them, turned into ShareNext's
// items. ShareNext reads session.updated, message.updated, message.part.updated, session.diff
// and session.deleted itself; what it does not read is `message.part.delta` (one per streamed
// chunk): here a delta is appended to the newest copy of its part, and the grown part is synced,
// so a viewer sees the text while the model writes it. The newest copy of every item of every
// session seen is kept (forgotten at session.deleted), for deltas and for the share's snapshot.

import type { ShareNext } from "opencode-share";

type Item = ShareNext.Data;
type Fields = { [field: string]: unknown };

export interface SessionItems {
  session?: Fields;
  messages: Map<string, Fields>;
  parts: Map<string, Fields>;
  diff?: unknown[];
}

export class Feed {
  private readonly sessionsSeen = new Map<string, SessionItems>();

  private of(sessionID: string): SessionItems {
    let items = this.sessionsSeen.get(sessionID);
    if (!items) this.sessionsSeen.set(sessionID, (items = { messages: new Map(), parts: new Map() }));
    return items;
  }

  /**
   * Remembers what `event` carries; answers the part items a `message.part.delta` grew (to sync
   * now), or undefined when the event needs nothing beyond ShareNext's own reading.
   */
  take(event: { type: string; properties?: unknown }): { sessionID: string; items: Item[] } | undefined {
    const p = (event.properties ?? {}) as Fields;
    switch (event.type) {
      case "session.updated": {
        const info = p.info as Fields | undefined;
        if (info && typeof info.id === "string") this.of(info.id).session = info;
        return undefined;
      }
      case "message.updated": {
        const info = p.info as Fields | undefined;
        if (info && typeof info.sessionID === "string" && typeof info.id === "string") this.of(info.sessionID).messages.set(info.id, info);
        return undefined;
      }
      case "message.part.updated": {
        const part = p.part as Fields | undefined;
        if (part && typeof part.sessionID === "string" && typeof part.id === "string") this.of(part.sessionID).parts.set(part.id, part);
        return undefined;
      }
      case "session.diff":
        if (typeof p.sessionID === "string" && Array.isArray(p.diff)) this.of(p.sessionID).diff = p.diff;
        return undefined;
      case "session.deleted": {
        const info = p.info as Fields | undefined;
        if (info && typeof info.id === "string") this.sessionsSeen.delete(info.id);
        return undefined;
      }
      case "message.part.delta": {
        const { sessionID, partID, field, delta } = p;
        if (typeof sessionID !== "string" || typeof partID !== "string" || typeof field !== "string" || typeof delta !== "string") return undefined;
        const parts = this.sessionsSeen.get(sessionID)?.parts;
        const part = parts?.get(partID);
        // a delta before its part's start event has nothing to grow (the part's update follows)
        if (!parts || !part) return undefined;
        const before = part[field];
        if (before !== undefined && typeof before !== "string") return undefined;
        const grown = { ...part, [field]: (before ?? "") + delta };
        parts.set(partID, grown);
        return { sessionID, items: [{ type: "part", data: grown as Fields & { id: string; messageID: string } }] };
      }
      default:
        return undefined;
    }
  }

  /** The newest items seen of `sessionID`, in ShareNext's order (session, then each message before its parts). */
  items(sessionID: string): Item[] {
    const s = this.sessionsSeen.get(sessionID);
    if (!s) return [];
    return toItems(s);
  }

  /** The sessions seen in this process. */
  sessions(): string[] {
    return [...this.sessionsSeen.keys()];
  }

  known(sessionID: string): SessionItems | undefined {
    return this.sessionsSeen.get(sessionID);
  }
}

/** A session's items in ShareNext's order: the session, each message then its parts, the diff. */
export function toItems(s: SessionItems): Item[] {
  const out: Item[] = [];
  if (s.session) out.push({ type: "session", data: s.session });
  const parts = [...s.parts.values()];
  for (const message of s.messages.values()) {
    out.push({ type: "message", data: message as Fields & { id: string } });
    for (const part of parts) if (part.messageID === message.id) out.push({ type: "part", data: part as Fields & { id: string; messageID: string } });
  }
  if (s.diff) out.push({ type: "session_diff", data: s.diff });
  return out;
}
