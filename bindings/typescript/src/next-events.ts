// The host's bus events as ShareNext reads them (share-next.ts's subscriptions): what each one
// asks for. Pure: share-next.ts acts on the answer.

import type { BusEvent, ShareNextItem } from "./next-types.js";
import { invalid } from "./status.js";

/** What one bus event asks ShareNext to do. */
export type BusAction =
  | { kind: "sync"; sessionID: string; items: ShareNextItem[]; model?: { providerID: string; modelID: string } }
  | { kind: "remove"; sessionID: string };

/** The events ShareNext listens to; a host may subscribe exactly these. */
export const BUS_EVENTS = ["session.updated", "message.updated", "message.part.updated", "session.diff", "session.deleted"] as const;

/** The object at `properties[name]`, or a ShareError naming the event. */
function member(event: BusEvent, name: string): Record<string, unknown> {
  const properties = event.properties as Record<string, unknown> | null | undefined;
  const value = properties !== null && typeof properties === "object" ? properties[name] : undefined;
  if (value === null || typeof value !== "object") throw invalid(`a ${event.type} event needs properties.${name} (an object)`);
  return value as Record<string, unknown>;
}

/** A string field of `event`'s payload, or a ShareError naming it. */
function text(event: BusEvent, where: string, value: unknown): string {
  if (typeof value !== "string" || value === "") throw invalid(`a ${event.type} event needs ${where} (a non-empty string)`);
  return value;
}

/**
 * What `event` asks for: undefined for an event ShareNext does not listen to; throws a
 * ShareError (SHARE_ERR_INVALID_ARGUMENT) for a listened-to event without the fields it needs.
 */
export function readBusEvent(event: BusEvent): BusAction | undefined {
  if (event === null || typeof event !== "object") throw invalid(`a bus event must be an object {type, properties}, not ${event === null ? "null" : typeof event}`);
  switch (event.type) {
    case "session.updated": {
      const info = member(event, "info");
      return { kind: "sync", sessionID: text(event, "properties.info.id", info.id), items: [{ type: "session", data: info }] };
    }
    case "message.updated": {
      const info = member(event, "info");
      const sessionID = text(event, "properties.info.sessionID", info.sessionID);
      const action: BusAction = { kind: "sync", sessionID, items: [{ type: "message", data: info as { id: string } }] };
      const model = info.model as { providerID?: unknown; modelID?: unknown } | null | undefined;
      if (info.role === "user" && model !== null && typeof model === "object") {
        const { providerID, modelID } = model;
        if (typeof providerID === "string" && typeof modelID === "string") action.model = { providerID, modelID };
      }
      return action;
    }
    case "message.part.updated": {
      const part = member(event, "part");
      const sessionID = text(event, "properties.part.sessionID", part.sessionID);
      return { kind: "sync", sessionID, items: [{ type: "part", data: part as { id: string; messageID: string } }] };
    }
    case "session.diff": {
      const properties = (event.properties ?? {}) as { sessionID?: unknown; diff?: unknown };
      const sessionID = text(event, "properties.sessionID", properties.sessionID);
      if (!Array.isArray(properties.diff)) throw invalid("a session.diff event needs properties.diff (an array)");
      return { kind: "sync", sessionID, items: [{ type: "session_diff", data: properties.diff }] };
    }
    case "session.deleted":
      return { kind: "remove", sessionID: text(event, "properties.info.id", member(event, "info").id) };
    default:
      return undefined;
  }
}
