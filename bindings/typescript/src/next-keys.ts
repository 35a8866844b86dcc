// ShareNext's items as the library's storage keys: under protocol "next" the library turns
// each key back into its item (session/info/<sid> -> session, session/message/<sid>/<mid> ->
// message, session/part/<sid>/<mid>/<pid> -> part, session/diff/<sid> -> session_diff,
// session/model/<sid> -> model), so one key per item key gives ShareNext's merge by item key.

import type { ShareNextItem, ShareNextItemType } from "./next-types.js";
import { invalid } from "./status.js";

export const ITEM_TYPES: readonly ShareNextItemType[] = ["session", "message", "part", "session_diff", "model"];

/** An id that makes one key segment: a non-empty string without "/" or NUL. */
export function idArg(name: string, value: unknown): string {
  if (typeof value !== "string" || value === "") {
    throw invalid(`${name} must be a non-empty string, not ${value === null ? "null" : typeof value === "string" ? '""' : typeof value}`);
  }
  if (value.includes("/") || value.includes("\0")) throw invalid(`${name} ${JSON.stringify(value)} holds a "/" or a NUL character`);
  return value;
}

/** The storage key of `item` of `sessionID`; throws a ShareError naming what is wrong. */
export function storageKey(sessionID: string, item: ShareNextItem): string {
  if (item === null || typeof item !== "object") throw invalid(`an item must be an object {type, data}, not ${item === null ? "null" : typeof item}`);
  const { type, data } = item as { type: unknown; data: unknown };
  if (!ITEM_TYPES.includes(type as ShareNextItemType)) {
    throw invalid(`unknown item type ${JSON.stringify(type)}; expected one of ${ITEM_TYPES.join(", ")}`);
  }
  if (type === "session_diff" || type === "model") {
    if (!Array.isArray(data)) throw invalid(`a ${type} item's data must be an array`);
    return `session/${type === "model" ? "model" : "diff"}/${sessionID}`;
  }
  if (data === null || typeof data !== "object" || Array.isArray(data)) throw invalid(`a ${String(type)} item's data must be an object`);
  const ids = data as { id?: unknown; messageID?: unknown };
  if (type === "session") return `session/info/${sessionID}`;
  if (type === "message") return `session/message/${sessionID}/${idArg("a message item's data.id", ids.id)}`;
  return `session/part/${sessionID}/${idArg("a part item's data.messageID", ids.messageID)}/${idArg("a part item's data.id", ids.id)}`;
}

/** The key under which the library learns a session's share record (never sent). */
export function shareKey(sessionID: string): string {
  return `session/share/${sessionID}`;
}
