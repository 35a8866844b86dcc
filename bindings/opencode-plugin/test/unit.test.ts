// The plugin's parts that need no opencode, in real Bun: the loopback endpoint's answers to bad
// and good requests (over HTTP), the feed's deltas, the options' checks, the markers of killed
// processes and the catch-up from a database shaped like opencode's.
import { afterAll, describe, expect, test } from "bun:test";
import { Database } from "bun:sqlite";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { newerItems, streaming } from "../src/catchup.ts";
import { RunMarker, orphanedSessions } from "../src/crashes.ts";
import { serve } from "../src/endpoint.ts";
import { Feed } from "../src/feed.ts";
import { settings } from "../src/options.ts";

describe("the loopback endpoint", () => {
  const calls: string[] = [];
  const warnings: string[] = [];
  const endpoint = serve({
    create: async (sessionID) => {
      calls.push(`create ${sessionID}`);
      if (sessionID === "ses_fail") throw new Error("the service answered 500");
      return { id: "abc", url: "http://share/abc", secret: "s3cret" };
    },
    remove: async (id, secret) => {
      calls.push(`remove ${id} ${secret}`);
    },
    warn: (m) => warnings.push(m),
  });
  const token = new URL(endpoint.url).pathname.slice(1);
  afterAll(() => endpoint.stop());
  const call = (path: string, init?: RequestInit) => fetch(`${endpoint.url}${path}`, { headers: { "content-type": "application/json" }, ...init });

  test("its URL carries a 32-hex-digit token; a path without it is 404 and the answer never shows it", async () => {
    expect(token).toMatch(/^[0-9a-f]{32}$/);
    const base = endpoint.url.slice(0, -token.length - 1);
    const res = await fetch(`${base}/${"0".repeat(32)}/api/share`, { method: "POST", body: JSON.stringify({ sessionID: "ses_a" }) });
    expect(res.status).toBe(404);
    const res2 = await fetch(`${base}/api/share`, { method: "POST", body: "{}" });
    expect(res2.status).toBe(404);
    expect(calls).toEqual([]);
  });

  test("create answers the record; sync is 200 and goes nowhere; delete removes by id with opencode's secret", async () => {
    const created = await call("/api/share", { method: "POST", body: JSON.stringify({ sessionID: "ses_a" }) });
    expect(created.status).toBe(200);
    expect(await created.json()).toEqual({ id: "abc", url: "http://share/abc", secret: "s3cret" });
    expect((await call("/api/share/abc/sync", { method: "POST", body: JSON.stringify({ secret: "x", data: [] }) })).status).toBe(200);
    expect((await call("/api/shares/abc", { method: "DELETE", body: JSON.stringify({ secret: "s3cret" }) })).status).toBe(200);
    expect(calls).toEqual(["create ses_a", "remove abc s3cret"]);
  });

  test("bad input: a status and a message, nothing called", async () => {
    calls.length = 0;
    const notJson = await call("/api/share", { method: "POST", body: "{nope" });
    expect(notJson.status).toBe(400);
    const noSession = await call("/api/share", { method: "POST", body: JSON.stringify({ id: 1 }) });
    expect(noSession.status).toBe(400);
    expect((await noSession.json()).message).toContain("sessionID");
    const array = await call("/api/share", { method: "POST", body: "[]" });
    expect(array.status).toBe(400);
    const wrongMethod = await call("/api/share/abc", { method: "PUT", body: "{}" });
    expect(wrongMethod.status).toBe(405);
    expect(JSON.stringify(await wrongMethod.json())).not.toContain(token);
    expect(calls).toEqual([]);
  });

  test("a failed create is 502 with the reason, and a warning without the token", async () => {
    const res = await call("/api/share", { method: "POST", body: JSON.stringify({ sessionID: "ses_fail" }) });
    expect(res.status).toBe(502);
    expect((await res.json()).message).toContain("500");
    expect(warnings.length).toBe(1);
    expect(warnings[0]).not.toContain(token);
  });
});

describe("the feed", () => {
  const part = { id: "prt_1", sessionID: "ses_1", messageID: "msg_1", type: "text", text: "" };
  const delta = (d: string, field = "text") => ({ type: "message.part.delta", properties: { sessionID: "ses_1", messageID: "msg_1", partID: "prt_1", field, delta: d } });

  test("a delta grows the newest copy of its part; the part's update replaces it", () => {
    const feed = new Feed();
    expect(feed.take(delta("early"))).toBeUndefined(); // no part yet: nothing to grow
    feed.take({ type: "message.part.updated", properties: { part } });
    expect(feed.take(delta("Hel"))?.items[0]?.data).toEqual({ ...part, text: "Hel" });
    expect(feed.take(delta("lo"))?.items[0]?.data).toEqual({ ...part, text: "Hello" });
    expect(part.text).toBe(""); // the event's object is not changed
    feed.take({ type: "message.part.updated", properties: { part: { ...part, text: "Hello!" } } });
    expect(feed.take(delta(" more"))?.items[0]?.data.text).toBe("Hello! more");
  });

  test("a delta of a field that is not a string, or a malformed one, is ignored; session.deleted forgets", () => {
    const feed = new Feed();
    feed.take({ type: "message.part.updated", properties: { part: { ...part, time: { start: 1 } } } });
    expect(feed.take(delta("x", "time"))).toBeUndefined();
    expect(feed.take({ type: "message.part.delta", properties: { sessionID: "ses_1", partID: "prt_1", field: "text", delta: 5 } })).toBeUndefined();
    expect(feed.take({ type: "message.part.delta" })).toBeUndefined();
    feed.take({ type: "session.deleted", properties: { info: { id: "ses_1" } } });
    expect(feed.sessions()).toEqual([]);
  });

  test("items: the session, then each message before its parts, then the diff", () => {
    const feed = new Feed();
    feed.take({ type: "message.part.updated", properties: { part } });
    feed.take({ type: "message.updated", properties: { info: { id: "msg_1", sessionID: "ses_1" } } });
    feed.take({ type: "session.updated", properties: { info: { id: "ses_1" } } });
    feed.take({ type: "session.diff", properties: { sessionID: "ses_1", diff: [] } });
    expect(feed.items("ses_1").map((i) => i.type)).toEqual(["session", "message", "part", "session_diff"]);
  });
});

describe("the options", () => {
  test("defaults: next, opncd.ai's url left to opencode's config, a spool under XDG_STATE_HOME", () => {
    const s = settings({}, { XDG_STATE_HOME: "/state" });
    expect(s.protocol).toBe("next");
    expect(s.url).toBeUndefined();
    expect(s.spoolDir).toBe("/state/opencode-share/spool");
    expect(s.minIntervalMs).toBe(50);
    expect(settings({ spoolDir: false }, {}).spoolDir).toBeUndefined();
    expect(settings({ url: "https://share.example/" }, {}).url).toBe("https://share.example");
  });

  test("bad options throw with a clear message", () => {
    expect(() => settings({ nope: 1 } as never, {})).toThrow(/unknown option "nope"/);
    expect(() => settings({ protocol: "v2" } as never, {})).toThrow(/protocol must be "next" or "v1"/);
    expect(() => settings({ url: "ftp://x" }, {})).toThrow(/url must be an http/);
    expect(() => settings({ minIntervalMs: -1 }, {})).toThrow(/minIntervalMs/);
  });
});

describe("the markers of killed processes", () => {
  /** The pid of a process that has ended. */
  const deadPid = () => {
    const child = Bun.spawnSync(["true"]);
    return child.pid;
  };

  test("a dead process's marker names its sessions once; a clean exit leaves none", () => {
    const dir = mkdtempSync(join(tmpdir(), "ocp-markers-"));
    const killed = new RunMarker(dir, deadPid());
    killed.note(["ses_a"]);
    killed.note(["ses_a", "ses_b"]);
    const clean = new RunMarker(dir, deadPid());
    clean.note(["ses_c"]);
    clean.clear();
    expect(orphanedSessions(dir).sort()).toEqual(["ses_a", "ses_b"]);
    expect(orphanedSessions(dir)).toEqual([]);
    expect(readdirSync(dir)).toEqual([]);
  });

  test("a live process's marker stays; one whose pid now belongs to another process is claimed", async () => {
    const dir = mkdtempSync(join(tmpdir(), "ocp-markers-"));
    const sleeper = Bun.spawn(["sleep", "30"]);
    try {
      new RunMarker(dir, sleeper.pid).note(["ses_live"]);
      expect(orphanedSessions(dir)).toEqual([]);
      expect(existsSync(join(dir, `${sleeper.pid}.json`))).toBe(true);
      // the same pid, started at another time: the process that wrote it is gone
      writeFileSync(join(dir, `${sleeper.pid}.json`), JSON.stringify({ pid: sleeper.pid, started: "1", sessions: ["ses_reused"] }));
      expect(orphanedSessions(dir)).toEqual(["ses_reused"]);
    } finally {
      sleeper.kill();
    }
  });

  test("damaged markers are skipped, never thrown", () => {
    const dir = mkdtempSync(join(tmpdir(), "ocp-markers-"));
    writeFileSync(join(dir, "12.json"), "{not json");
    writeFileSync(join(dir, "13.json"), JSON.stringify({ pid: "x" }));
    expect(orphanedSessions(dir)).toEqual([]);
    expect(orphanedSessions(join(dir, "missing"))).toEqual([]);
  });
});

describe("the catch-up from opencode's database", () => {
  test("every item's newest stored version, the session with the row's totals", () => {
    const dir = mkdtempSync(join(tmpdir(), "ocp-db-"));
    mkdirSync(dir, { recursive: true });
    const file = join(dir, "opencode.db");
    const db = new Database(file);
    db.run("CREATE TABLE event (aggregate_id TEXT, seq INTEGER, type TEXT, data TEXT)");
    db.run(`CREATE TABLE session (id TEXT, cost REAL, tokens_input INTEGER, tokens_output INTEGER, tokens_reasoning INTEGER,
            tokens_cache_read INTEGER, tokens_cache_write INTEGER, time_updated INTEGER)`);
    const events: [string, unknown][] = [
      ["session.updated.1", { info: { id: "ses_1", title: "New session", time: { created: 1, updated: 1 } } }],
      ["message.updated.1", { info: { id: "msg_1", sessionID: "ses_1", role: "assistant" } }],
      ["message.part.updated.1", { part: { id: "prt_1", messageID: "msg_1", sessionID: "ses_1", type: "text", text: "wa0" } }],
      ["session.updated.1", { info: { id: "ses_1", title: "Fake title", time: { created: 1, updated: 2 } } }],
      ["message.part.updated.1", { part: { id: "prt_1", messageID: "msg_1", sessionID: "ses_1", type: "text", text: "wa0 wa1" } }],
    ];
    events.forEach(([type, data], seq) => db.run("INSERT INTO event VALUES ('ses_1', ?, ?, ?)", [seq, type, JSON.stringify(data)]));
    db.run("INSERT INTO event VALUES ('ses_2', 9, 'session.updated.1', ?)", [JSON.stringify({ info: { id: "ses_2", title: "other" } })]);
    db.run("INSERT INTO session VALUES ('ses_1', 0.5, 10, 20, 0, 1, 2, 3)");
    db.close();

    const items = newerItems(file, "ses_1", undefined);
    expect(items.map((i) => i.type)).toEqual(["message", "session", "part"]);
    const session = items.find((i) => i.type === "session")!.data as Record<string, unknown>;
    expect(session.title).toBe("Fake title");
    expect(session.cost).toBe(0.5);
    expect(session.tokens).toEqual({ input: 10, output: 20, reasoning: 0, cache: { read: 1, write: 2 } });
    expect((session.time as Record<string, number>).updated).toBe(3);
    expect((items.find((i) => i.type === "part")!.data as Record<string, unknown>).text).toBe("wa0 wa1");
    // a text part without an end was still streaming (the spool's copy is newer); with one, it is final
    const part = items.find((i) => i.type === "part")!;
    expect(streaming(part)).toBe(true);
    expect(streaming({ ...part, data: { ...part.data, time: { start: 1, end: 2 } } } as typeof part)).toBe(false);
    expect(streaming({ type: "part", data: { id: "prt_t", type: "tool", state: {} } } as never)).toBe(false);
    expect(items.filter((i) => !streaming(i)).map((i) => i.type)).toEqual(["message", "session"]);
    // no database: nothing, no throw
    expect(newerItems(join(dir, "missing.db"), "ses_1", undefined)).toEqual([]);
  });
});
