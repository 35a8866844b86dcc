// A small simulated opencode host: a Bus, and a Storage that writes JSON files the way
// opencode's storage does (`<dir>/<key>.json`, then a Storage.Event.Write on the Bus with the key
// and the content), plus the session flows that write to it: creating a session, sharing it,
// a user message, and a streamed assistant answer that rewrites one text part many times and
// walks a tool part through pending, running and completed.

import { randomBytes } from "node:crypto";
import { mkdir, readFile, readdir, rm, writeFile } from "node:fs/promises";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, relative } from "node:path";

/** opencode's Bus: typed events, subscribe returns an unsubscribe function. */
export function createBus() {
  /** @type {Map<string, Set<(payload: any) => unknown>>} */
  const subscribers = new Map();
  return {
    event(type) {
      return { type };
    },
    subscribe(def, callback) {
      let set = subscribers.get(def.type);
      if (!set) subscribers.set(def.type, (set = new Set()));
      set.add(callback);
      return () => set.delete(callback);
    },
    async publish(def, properties) {
      const payload = { type: def.type, properties };
      const pending = [];
      for (const callback of subscribers.get(def.type) ?? []) pending.push(callback(payload));
      await Promise.all(pending);
    },
    subscriberCount(def) {
      return subscribers.get(def.type)?.size ?? 0;
    },
  };
}

/** opencode's Storage over a temporary folder. */
export function createStorage(Bus) {
  const dir = mkdtempSync(join(tmpdir(), "opencode-share-host-"));
  const Event = { Write: Bus.event("storage.write") };
  return {
    dir,
    Event,
    async writeJSON(key, content) {
      const target = join(dir, `${key}.json`);
      await mkdir(dirname(target), { recursive: true });
      await writeFile(target, JSON.stringify(content, null, 2));
      await Bus.publish(Event.Write, { key, content });
    },
    async readJSON(key) {
      return JSON.parse(await readFile(join(dir, `${key}.json`), "utf8"));
    },
    /** Every key under `prefix`, read back from disk. */
    async list(prefix) {
      const out = {};
      const walk = async (folder) => {
        let entries;
        try {
          entries = await readdir(folder, { withFileTypes: true });
        } catch {
          return;
        }
        for (const entry of entries) {
          const file = join(folder, entry.name);
          if (entry.isDirectory()) await walk(file);
          else if (entry.name.endsWith(".json")) {
            const key = relative(dir, file).slice(0, -".json".length).split("\\").join("/");
            if (key.startsWith(prefix)) out[key] = JSON.parse(await readFile(file, "utf8"));
          }
        }
      };
      await walk(dir);
      return out;
    },
    remove() {
      return rm(dir, { recursive: true, force: true });
    },
  };
}

/** Share.init's `subscribe` as opencode's init() wired it: every storage write goes to sync. */
export function forwardWrites(Bus, Storage) {
  return (fn) => Bus.subscribe(Storage.Event.Write, (e) => fn(e.properties.key, e.properties.content));
}

const ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZabcdefghjkmnpqrstvwxyz";
/**
 * An id like opencode's: prefix + 26 characters, time first, random last (the hosted service keys
 * a share by the last 8, so those must differ between sessions).
 */
export function id(prefix) {
  let tail = "";
  let n = Date.now();
  for (let i = 0; i < 10; i++) {
    tail = ALPHABET[n % ALPHABET.length] + tail;
    n = Math.floor(n / ALPHABET.length);
  }
  for (const byte of randomBytes(16)) tail += ALPHABET[byte % ALPHABET.length];
  return `${prefix}_${tail}`;
}

/**
 * The session flows of opencode, writing through Storage. `Share` is the binding, called the
 * way opencode's Session module calls the original.
 */
export function createSessions(Storage, Share) {
  const now = () => Date.now();
  return {
    async create(title) {
      const info = { id: id("ses"), version: "0.0.0-test", title, time: { created: now(), updated: now() } };
      await Storage.writeJSON(`session/info/${info.id}`, info);
      return info;
    },
    /** Session.share: create the share, store it, publish the info and every message so far. */
    async share(sessionID) {
      const share = await Share.create(sessionID);
      await Storage.writeJSON(`session/share/${sessionID}`, share);
      const info = await Storage.readJSON(`session/info/${sessionID}`);
      info.share = { url: share.url };
      info.time.updated = now();
      await Storage.writeJSON(`session/info/${sessionID}`, info);
      return share;
    },
    async unshare(sessionID) {
      const share = await Storage.readJSON(`session/share/${sessionID}`);
      await Share.remove(sessionID, share.secret);
    },
    async userMessage(sessionID, text) {
      const message = { id: id("msg"), sessionID, role: "user", time: { created: now() } };
      await Storage.writeJSON(`session/message/${sessionID}/${message.id}`, message);
      const part = { id: id("prt"), sessionID, messageID: message.id, type: "text", text };
      await Storage.writeJSON(`session/part/${sessionID}/${message.id}/${part.id}`, part);
      return message;
    },
    /** A streamed answer: the text part is rewritten once per token, a tool part runs. */
    async streamAnswer(sessionID, tokens) {
      const message = {
        id: id("msg"),
        sessionID,
        role: "assistant",
        modelID: "test-model",
        providerID: "test",
        time: { created: now() },
        tokens: { input: 0, output: 0 },
      };
      const messageKey = `session/message/${sessionID}/${message.id}`;
      await Storage.writeJSON(messageKey, message);
      const tool = {
        id: id("prt"),
        sessionID,
        messageID: message.id,
        type: "tool",
        tool: "read",
        callID: "call_1",
        state: { status: "pending" },
      };
      const toolKey = `session/part/${sessionID}/${message.id}/${tool.id}`;
      await Storage.writeJSON(toolKey, tool);
      // a tool input that has a field named secret: not the share's, so it must stay
      tool.state = { status: "running", input: { path: "notes.txt", secret: "tool-input-secret" }, time: { start: now() } };
      await Storage.writeJSON(toolKey, tool);
      tool.state = { ...tool.state, status: "completed", output: "the notes", time: { start: now(), end: now() } };
      await Storage.writeJSON(toolKey, tool);
      const text = { id: id("prt"), sessionID, messageID: message.id, type: "text", text: "", time: { start: now() } };
      const textKey = `session/part/${sessionID}/${message.id}/${text.id}`;
      for (const token of tokens) {
        text.text += token;
        await Storage.writeJSON(textKey, text);
      }
      text.time.end = now();
      await Storage.writeJSON(textKey, text);
      message.time.completed = now();
      message.tokens = { input: 12, output: tokens.length };
      await Storage.writeJSON(messageKey, message);
      return { message, writes: tokens.length + 6 };
    },
  };
}
