// Compares what the share service holds with `opencode export` of the session: every session,
// message and part item identical (deep equality), nothing missing, nothing extra of those types.

import { isDeepStrictEqual } from "node:util";

/** The export's items keyed as the service merges them: session, message/<id>, part/<id>. */
export function exportItems(exported) {
  const items = new Map([["session", exported.info]]);
  for (const m of exported.messages) {
    items.set(`message/${m.info.id}`, m.info);
    for (const p of m.parts) items.set(`part/${p.id}`, p);
  }
  return items;
}

/** The service's items keyed the same way (model and session_diff items are not in an export). */
export function serviceItems(items) {
  const out = new Map();
  for (const { type, data } of items) {
    if (type === "session") out.set("session", data);
    else if (type === "message") out.set(`message/${data.id}`, data);
    else if (type === "part") out.set(`part/${data.id}`, data);
  }
  return out;
}

/**
 * A list of differences (empty when the service holds exactly the export). With `streamed`, a
 * part whose text on the service extends the export's (opencode keeps a streaming part's text
 * only at its end: a process killed mid-answer leaves it empty) counts as the same.
 */
export function differences(exported, items, { streamed = false } = {}) {
  const want = exportItems(exported);
  const got = serviceItems(items);
  const out = [];
  for (const [key, value] of want) {
    if (!got.has(key)) out.push(`${key}: missing on the service`);
    else if (streamed && key.startsWith("part/") && extends_(got.get(key), value)) continue;
    else if (!isDeepStrictEqual(got.get(key), value)) out.push(`${key}: differs: ${fieldDiff(got.get(key), value)}`);
  }
  for (const key of got.keys()) if (!want.has(key)) out.push(`${key}: on the service, not in the export`);
  return out;
}

/** The top-level fields where `a` (the service's) and `b` (the export's) differ, with both values. */
function fieldDiff(a, b) {
  const fields = new Set([...Object.keys(a ?? {}), ...Object.keys(b ?? {})]);
  return [...fields]
    .filter((f) => !isDeepStrictEqual(a?.[f], b?.[f]))
    .map((f) => `${f}: service ${JSON.stringify(a?.[f])?.slice(0, 200)} vs export ${JSON.stringify(b?.[f])?.slice(0, 200)}`)
    .join("; ");
}

/** `a` is `b` with a longer text that starts with b's. */
function extends_(a, b) {
  return typeof a?.text === "string" && typeof b?.text === "string" && a.text.startsWith(b.text) && isDeepStrictEqual({ ...a, text: b.text }, b);
}
