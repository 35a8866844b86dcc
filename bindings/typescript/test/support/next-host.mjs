// A small simulated opencode host of the ShareNext era: sessions held in memory and published on
// a Bus as opencode's SDK events (session.updated, message.updated, message.part.updated,
// session.diff, session.deleted), a share store (opencode's session_share table), a model
// provider, and the full snapshot of a session that ShareNext uploads after create. `expected`
// is what a share service must hold for a session: its items by item key.

import { randomUUID } from "node:crypto";

import { id } from "./host.mjs";
import { itemKey } from "./testkit.mjs";

/**
 * A session id like opencode's (ses_ + 26 characters) whose last 8 characters, the share id of
 * ShareNext's services, are random: host.mjs's ids repeat them every few dozen ids.
 */
export function sessionId() {
  return `ses_${randomUUID().replace(/-/g, "").slice(0, 26)}`;
}

export const MODEL = { id: "test-model", providerID: "test", name: "Test Model", limit: { context: 1000, output: 100 } };

/** @param {ReturnType<import("./host.mjs").createBus>} Bus */
export function createNextHost(Bus) {
  const Event = {
    SessionUpdated: Bus.event("session.updated"),
    MessageUpdated: Bus.event("message.updated"),
    PartUpdated: Bus.event("message.part.updated"),
    Diff: Bus.event("session.diff"),
    Deleted: Bus.event("session.deleted"),
  };
  /** @type {Map<string, { info: any, messages: Map<string, { info: any, parts: Map<string, any> }>, diff?: any[] }>} */
  const sessions = new Map();
  /** The session_share rows. */
  const table = new Map();
  const now = () => Date.now();
  const clone = (value) => structuredClone(value);

  const updateSession = (info) => Bus.publish(Event.SessionUpdated, { info: clone(info) });
  const updateMessage = (sessionID, info) => {
    const session = sessions.get(sessionID);
    const held = session.messages.get(info.id) ?? { info, parts: new Map() };
    held.info = info;
    session.messages.set(info.id, held);
    return Bus.publish(Event.MessageUpdated, { info: clone(info) });
  };
  const updatePart = (part) => {
    sessions.get(part.sessionID).messages.get(part.messageID).parts.set(part.id, part);
    return Bus.publish(Event.PartUpdated, { part: clone(part) });
  };

  const host = {
    Event,
    table,
    /** The ShareStore handed to ShareNext.init. */
    store: {
      get: (sessionID) => table.get(sessionID),
      set: (sessionID, record) => void table.set(sessionID, record),
      delete: (sessionID) => void table.delete(sessionID),
    },
    /** Provider.getModel: asynchronous, as opencode's is. */
    model: async (providerID, modelID) => (providerID === MODEL.providerID && modelID === MODEL.id ? clone(MODEL) : undefined),
    /** ShareNext's full sync: everything the session holds, as items. */
    snapshot(sessionID) {
      const session = sessions.get(sessionID);
      const messages = [...session.messages.values()];
      const users = messages.filter((m) => m.info.role === "user");
      return [
        { type: "session", data: clone(session.info) },
        ...messages.map((m) => ({ type: "message", data: clone(m.info) })),
        ...messages.flatMap((m) => [...m.parts.values()].map((p) => ({ type: "part", data: clone(p) }))),
        { type: "session_diff", data: clone(session.diff ?? []) },
        { type: "model", data: users.length ? [clone(MODEL)] : [] },
      ];
    },
    /** What a service must hold for the session once everything is uploaded: { itemKey: item }. */
    expected(sessionID) {
      return Object.fromEntries(host.snapshot(sessionID).map((item) => [itemKey(item), item]));
    },
    /** Every bus event ShareNext reads goes to `on`; returns the unsubscribe function. */
    subscribe(on, events) {
      const offs = events.map((type) => Bus.subscribe({ type }, on));
      return () => offs.forEach((off) => off());
    },
    async create(title) {
      const info = { id: sessionId(), slug: title.replace(/\W+/g, "-"), version: "1.17.9", title, time: { created: now(), updated: now() } };
      sessions.set(info.id, { info, messages: new Map() });
      await updateSession(info);
      return info;
    },
    /** SessionShare.share: ShareNext.create, then the session's share.url (its session.updated). */
    async share(sessionID, ShareNext) {
      const record = await ShareNext.create(sessionID);
      const info = sessions.get(sessionID).info;
      info.share = { url: record.url };
      info.time.updated = now();
      await updateSession(info);
      return record;
    },
    async userMessage(sessionID, text) {
      const info = { id: id("msg"), sessionID, role: "user", time: { created: now() }, model: { providerID: MODEL.providerID, modelID: MODEL.id } };
      await updateMessage(sessionID, info);
      await updatePart({ id: id("prt"), sessionID, messageID: info.id, type: "text", text });
      return info;
    },
    /** A streamed answer: the text part is rewritten once per token, a tool part runs, then the diff. */
    async streamAnswer(sessionID, tokens) {
      const info = { id: id("msg"), sessionID, role: "assistant", modelID: MODEL.id, providerID: MODEL.providerID, time: { created: now() } };
      await updateMessage(sessionID, info);
      const tool = { id: id("prt"), sessionID, messageID: info.id, type: "tool", tool: "edit", callID: "call_1", state: { status: "pending" } };
      await updatePart(tool);
      // a tool input with a field named secret: not the share's, so it stays
      tool.state = { status: "running", input: { path: "notes.txt", secret: "tool-input-secret" } };
      await updatePart(tool);
      const text = { id: id("prt"), sessionID, messageID: info.id, type: "text", text: "" };
      for (const token of tokens) {
        text.text += token;
        await updatePart(text);
      }
      tool.state = { ...tool.state, status: "completed", output: "edited" };
      await updatePart(tool);
      info.time.completed = now();
      await updateMessage(sessionID, info);
      const diff = [{ file: "notes.txt", patch: "@@ -1 +1 @@\n-a\n+b\n", additions: 1, deletions: 1, status: "modified" }];
      sessions.get(sessionID).diff = diff;
      await Bus.publish(Event.Diff, { sessionID, diff: clone(diff) });
      return info;
    },
    /** A message whose `n` parts are published at once (an import, a big tool result). */
    async manyParts(sessionID, n) {
      const info = { id: id("msg"), sessionID, role: "assistant", time: { created: now() } };
      await updateMessage(sessionID, info);
      const parts = Array.from({ length: n }, (_, i) => ({ id: id("prt"), sessionID, messageID: info.id, type: "text", text: `part ${i}` }));
      await Promise.all(parts.map(updatePart));
      return info;
    },
    /** Session.remove: the session.deleted event (ShareNext removes the share). */
    async delete(sessionID) {
      const session = sessions.get(sessionID);
      sessions.delete(sessionID);
      await Bus.publish(Event.Deleted, { info: clone(session.info) });
    },
  };
  return host;
}
