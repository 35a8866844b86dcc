// The behaviour suite, the same for Bun (test/bun.test.ts, bun:test) and Node
// (test/node.test.mjs, node:test): both import the package by its name, so Bun gets the bun:ffi
// loader and Node the koffi one. Every test talks to the real share server behind the testkit's
// fault proxy on loopback (support/testkit.mjs), playing opencode's hosted service, and is bounded
// in time.

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { chmodSync, copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

import { Share, ShareError } from "opencode-share";

import { config, failsWith, until } from "./support/checks.mjs";
import { createBus, createSessions, createStorage, forwardWrites, id } from "./support/host.mjs";
import { startService } from "./support/testkit.mjs";

const here = dirname(fileURLToPath(import.meta.url));
const CHILD = join(here, "support", "child.mjs");
/** The package's version: the library it loads must be the same release. */
const VERSION = JSON.parse(readFileSync(join(here, "..", "package.json"), "utf8")).version;
const MiB = 1024 * 1024;

/** Runs `body` with a fresh service and a running library; always shuts both down. */
async function withShare(extra, body, serviceOptions = {}) {
  const service = await startService(serviceOptions);
  try {
    Share.init(config(service, extra));
    return await body(service);
  } finally {
    await Share.shutdown(3000).catch(() => {});
    await service.close();
  }
}

/** Runs support/child.mjs in a fresh process of this runtime; resolves to its JSON output. */
function child(scenario, env = {}) {
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, [CHILD, scenario], {
      env: { ...process.env, OPENCODE_SHARE_LIB: "", ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    let err = "";
    const timer = setTimeout(() => proc.kill("SIGKILL"), 15_000);
    proc.stdout.on("data", (d) => (out += d));
    proc.stderr.on("data", (d) => (err += d));
    proc.on("close", (code) => {
      clearTimeout(timer);
      try {
        resolve({ code, result: JSON.parse(out.trim().split("\n").pop() || "null"), stderr: err });
      } catch {
        reject(new Error(`child ${scenario} exited ${code}: ${out}\n${err}`));
      }
    });
  });
}

/** The sync requests whose content mentions `text` (to look for a leaked secret). */
async function mentioning(service, text) {
  const syncs = await service.log("/share_sync");
  return syncs.filter((r) => JSON.stringify(r.body?.content ?? null).includes(text));
}

/** The secret the service answered `sessionID`'s create with. */
async function createdSecret(service, sessionID) {
  const creates = await service.log("/share_create");
  return creates.find((r) => r.body?.sessionID === sessionID && r.status === 200).answer.secret;
}

/** A loopback URL where nothing listens (a port just freed). */
async function nowhere() {
  const server = createServer();
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address();
  await new Promise((resolve) => server.close(resolve));
  return `http://127.0.0.1:${port}`;
}

function collectGarbage() {
  if (typeof globalThis.Bun !== "undefined") globalThis.Bun.gc(true);
  else if (typeof globalThis.gc === "function") globalThis.gc();
}

const tick = () => new Promise((r) => setImmediate(r));

/**
 * @param {{ test: (name: string, fn: () => Promise<void> | void, timeoutMs?: number) => void,
 *           runtime: "bun" | "node", library: string }} t
 */
export function defineSuite({ test, runtime, library }) {
  const backend = runtime === "bun" ? "bun:ffi" : "koffi";

  test("loads the native library with this runtime's FFI", async () => {
    await withShare({}, async (service) => {
      const info = Share.library;
      assert.ok(info);
      assert.equal(info.backend, backend);
      assert.equal(info.path, library);
      assert.equal(info.version, VERSION);
      assert.equal(Share.URL, service.url);
    });
  });

  test("create, sync, flush: the service holds what was synced; synced events name key and status", async () => {
    await withShare({}, async (service) => {
      const synced = [];
      const off = Share.on("synced", (e) => synced.push(e));
      try {
        const sid = id("ses");
        const share = await Share.create(sid);
        assert.deepEqual(Object.keys(share).sort(), ["secret", "url"]);
        assert.equal(share.url, `${service.url}/s/${sid.slice(-8)}`);
        assert.equal(share.secret, await createdSecret(service, sid));
        const info = { id: sid, title: "hello", share: { url: share.url } };
        const message = { id: "msg_1", role: "user" };
        Share.sync(`session/info/${sid}`, info);
        Share.sync(`session/message/${sid}/msg_1`, message);
        Share.sync(`session/part/${sid}/msg_1/prt_1`, "a string is a JSON string");
        Share.sync(`session/part/${sid}/msg_1/prt_2`, [1, 2.5, null, true, { deep: { é: "ü 😀" } }]);
        Share.sync("project/global", { ignored: true });
        await Share.flush(5000);
        assert.deepEqual(await service.held(sid), {
          [`session/info/${sid}`]: info,
          [`session/message/${sid}/msg_1`]: message,
          [`session/part/${sid}/msg_1/prt_1`]: "a string is a JSON string",
          [`session/part/${sid}/msg_1/prt_2`]: [1, 2.5, null, true, { deep: { é: "ü 😀" } }],
        });
        await until(() => synced.length === 4, 3000, "4 synced events");
        for (const e of synced) {
          assert.equal(e.type, "synced");
          assert.equal(e.status, 200);
          assert.ok(e.key.startsWith("session/"));
        }
        const stats = Share.stats();
        assert.equal(stats.running, true);
        assert.equal(stats.url, service.url);
        assert.equal(stats.sent, 4);
        assert.equal(stats.ignored, 1);
        assert.equal(stats.shares, 1);
      } finally {
        off();
      }
    });
  });

  test("content is serialised once, with JSON.stringify semantics", async () => {
    await withShare({}, async (service) => {
      const sid = id("ses");
      await Share.create(sid);
      let calls = 0;
      const content = {
        toJSON() {
          calls += 1;
          return { when: new Date(0), skipped: undefined, n: 1 };
        },
      };
      Share.sync(`session/info/${sid}`, content);
      assert.equal(calls, 1);
      await Share.flush(5000);
      assert.deepEqual((await service.held(sid))[`session/info/${sid}`], { when: "1970-01-01T00:00:00.000Z", n: 1 });
    });
  });

  test("while a key's request is in flight, its newer contents wait unserialised: only the newest goes next; flush covers them", async () => {
    await withShare({}, async (service) => {
      const sid = id("ses");
      await Share.create(sid);
      const key = `session/part/${sid}/msg_1/prt_1`;
      await service.setLatency(100);
      const serialised = [];
      const content = (n) => ({
        toJSON() {
          serialised.push(n);
          return { text: `v${n}`, n };
        },
      });
      const sentNs = async () => (await service.log("/share_sync")).map((r) => r.body.content.n);

      Share.sync(key, content(1)); // the key is free: serialised and queued at once
      for (let n = 2; n <= 5; n++) Share.sync(key, content(n));
      Share.sync(key, { toJSON: () => assert.fail("a replaced content is never serialised") });
      Share.sync(key, content(6));
      assert.deepEqual(serialised, [1]);
      let stats = Share.stats();
      assert.equal(stats.held, 1);
      assert.equal(stats.coalesced, 5);
      assert.equal(stats.queued, 7);
      // the key's synced event hands the newest over, without a flush
      // (the proxy logs a request once the server answered it: by then the server holds it)
      await until(async () => (await sentNs()).includes(6), 3000, "content 6 sent");
      assert.equal((await service.held(sid))[key]?.n, 6);
      assert.deepEqual(serialised, [1, 6]);
      assert.deepEqual(await sentNs(), [1, 6]);

      // after a flush the key is free (its events came first): 7 goes over at once; 8 is held,
      // and the next flush hands it over (the library may still coalesce it with 7)
      await Share.flush(5000);
      Share.sync(key, content(7));
      Share.sync(key, content(8));
      assert.deepEqual(serialised, [1, 6, 7]);
      await Share.flush(5000);
      assert.deepEqual(serialised, [1, 6, 7, 8]);
      assert.deepEqual((await service.held(sid))[key], { text: "v8", n: 8 });
      assert.match((await sentNs()).join(","), /^1,6,(7,)?8$/);

      // a held content that cannot be serialised when its turn comes: dropped, reported, counted
      const dropped = [];
      const off = Share.on("dropped", (e) => dropped.push(e));
      try {
        Share.sync(key, content(9));
        Share.sync(key, { big: 10n });
        await Share.flush(5000);
      } finally {
        off();
      }
      assert.equal(dropped.length, 1);
      assert.equal(dropped[0].reason, "invalid");
      assert.equal(dropped[0].key, key);
      assert.match(dropped[0].error, /BigInt/i);
      stats = Share.stats();
      assert.equal(stats.rejected, 1);
      assert.equal(stats.held, 0);
      assert.equal(stats.sent, (await sentNs()).length);
      assert.equal(stats.queued, stats.sent + stats.coalesced + stats.dropped + stats.pending_keys + stats.in_flight + stats.held);
      assert.deepEqual((await service.held(sid))[key], { text: "v9", n: 9 });
    });
  });

  test("spoolDir: every write goes to the library at once (a held one would be in no spool); the next init on the spool sends what was left", async () => {
    const dir = mkdtempSync(join(tmpdir(), "share-spool-"));
    chmodSync(dir, 0o700);
    const spoolDir = join(dir, "spool");
    const service = await startService({ latencyMs: 100 });
    try {
      Share.init(config(service, { spoolDir, retry_initial_ms: 2000, retry_max_ms: 4000 }));
      const sid = id("ses");
      await Share.create(sid);
      const key = `session/part/${sid}/msg_1/prt_1`;
      await service.fail("/share_sync", 503, 1); // the first request fails: nothing reaches the service
      for (let n = 1; n <= 6; n++) Share.sync(key, { n }); // 2..6 while 1 is in flight
      const stats = Share.stats();
      assert.equal(stats.held, 0);
      assert.equal(stats.queued, 6);
      assert.equal(typeof stats.spool.log_bytes, "number");
      await failsWith("SHARE_ERR_TIMEOUT", () => Share.shutdown(50));
      assert.equal((await service.held(sid))?.[key], undefined);
      await service.setLatency(0);
      Share.init(config(service, { spoolDir }));
      assert.equal(Share.stats().spool.recovered_contents, 1);
      await Share.flush(5000);
      assert.deepEqual((await service.held(sid))[key], { n: 6 });
    } finally {
      await Share.shutdown(3000).catch(() => {});
      await service.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("a held content of a session removed meanwhile is never sent", async () => {
    await withShare({}, async (service) => {
      const sid = id("ses");
      const { secret } = await Share.create(sid);
      const key = `session/part/${sid}/msg_1/prt_1`;
      await service.setLatency(100);
      Share.sync(key, { n: 1 });
      Share.sync(key, { n: 2 }); // held behind 1
      assert.equal(Share.stats().held, 1);
      await Share.remove(sid, secret);
      await until(() => Share.stats().held === 0, 3000, "the held content to be handed over");
      await Share.flush(5000);
      const sent = (await service.log("/share_sync")).map((r) => r.body.content.n);
      assert.ok(sent.length <= 1 && !sent.includes(2), `sent: ${sent}`);
    });
  });

  test("events lost while the JS thread was blocked: busy keys are released, a held content still goes out", async () => {
    // sync answers wait for the gate, which the blocked JS thread opens with a file write
    const gateDir = mkdtempSync(join(tmpdir(), "opencode-share-gate-"));
    const gate = join(gateDir, "open");
    const service = await startService();
    await service.hold("/share_sync", Infinity, { file: gate });
    const lost = [];
    const off = Share.on("lost", (e) => lost.push(e));
    try {
      // the held request must outlive the blocked loop (9.7 s once under load), not time out at 3 s
      Share.init(config(service, { concurrency: 1, max_pending_bytes: 1000, timeout_ms: 60_000 }));
      const sid = id("ses");
      await Share.create(sid);
      const k = (i) => `session/part/${sid}/msg_1/prt_${i}`;
      Share.sync(k(0), { n: 0 }); // in flight until the gate opens
      Share.sync(k(1), { text: "x".repeat(900) }); // waits behind it, filling the queue
      Share.sync(k(1), { n: 2 }); // held until k(1)'s event
      // every refused write raises a dropped event: more than the library's buffer holds
      const refused = 65_536 + 100;
      for (let i = 0; i < refused; i++) {
        try {
          Share.sync(k(2), { text: "y".repeat(200) });
          assert.fail("the queue should be full");
        } catch (e) {
          assert.equal(e.code, "SHARE_ERR_QUEUE_FULL");
        }
      }
      writeFileSync(gate, "");
      // stay blocked until both requests were answered: their synced events do not fit either
      const deadline = Date.now() + 10_000;
      while (Share.stats().sent < 2) if (Date.now() > deadline) assert.fail("k(0) and k(1) were not sent");
      await until(() => lost.length === 1, 5000, "the lost event");
      assert.equal(lost[0].count, refused + 2 - 65_536);
      assert.equal(Share.stats().events_lost, lost[0].count);
      // k(1)'s synced event was lost, yet its held content went out, and no flush was needed
      const until2 = Date.now() + 5000;
      while ((await service.held(sid))[k(1)]?.n !== 2) {
        if (Date.now() > until2) assert.fail(`k(1) holds ${JSON.stringify((await service.held(sid))[k(1)])}`);
        await new Promise((r) => setTimeout(r, 20));
      }
      assert.equal(Share.stats().held, 0);
    } finally {
      off();
      await Share.shutdown(3000).catch(() => {});
      await service.close();
      rmSync(gateDir, { recursive: true, force: true });
    }
  }, 30_000);

  test("the event loop keeps running while create and syncs wait for the service", async () => {
    await withShare({}, async (service) => {
      let ticks = 0;
      const timer = setInterval(() => (ticks += 1), 5);
      const tick = () => new Promise((r) => setTimeout(r, 20));
      const sid = id("ses");
      try {
        // the create is held at the service until the timers have fired: a blocked loop fires none
        const gate = await service.hold("/share_create", 1);
        let created = false;
        const creating = Share.create(sid).then((share) => ((created = true), share));
        await gate.arrived(1);
        await tick();
        assert.ok(ticks >= 1 && !created, `the timer fired ${ticks} times while create was pending`);
        await gate.release();
        assert.ok((await creating).secret);
        // sync returns at once too, while its requests are held
        const syncs = await service.hold("/share_sync");
        for (let i = 0; i < 1000; i++) Share.sync(`session/part/${sid}/msg_1/prt_${i % 16}`, { i });
        await syncs.arrived(1);
        const before = ticks;
        await tick();
        assert.ok(ticks > before, "timers fire while syncs are in flight");
        await syncs.release();
        await Share.flush(5000);
        assert.equal(Object.keys(await service.held(sid)).length, 16);
      } finally {
        clearInterval(timer);
      }
    });
  }, 15_000);

  test("invalid input throws (sync) or rejects (create, remove) with the status name and the library's message", async () => {
    await failsWith("SHARE_ERR_NOT_INITIALIZED", () => Share.sync("session/info/ses_1", {}));
    await failsWith("SHARE_ERR_NOT_INITIALIZED", () => Share.create("ses_1"));
    await withShare({ max_retries: 1 }, async (service) => {
      const bad = await failsWith("SHARE_ERR_INVALID_ARGUMENT", () => Share.sync("session/info", {}));
      assert.equal(bad.status, 1);
      assert.match(bad.message, /^malformed key "session\/info": /);
      const empty = await failsWith("SHARE_ERR_INVALID_ARGUMENT", () => Share.sync("session//ses_1", {}));
      assert.match(empty.message, /malformed key/);
      await failsWith("SHARE_ERR_INVALID_ARGUMENT", () => Share.sync("session/info/ses_1", undefined));
      await failsWith("SHARE_ERR_INVALID_ARGUMENT", () => Share.sync("session/info/ses_1", { n: 1n }));
      await failsWith("SHARE_ERR_INVALID_ARGUMENT", () => Share.sync(42, {}));
      await failsWith("SHARE_ERR_INVALID_ARGUMENT", () => Share.sync("session/info/ses\u0000_1", {}));
      const created = await failsWith("SHARE_ERR_INVALID_ARGUMENT", () => Share.create(""));
      assert.equal(created.message, "session id is empty");
      const slash = await failsWith("SHARE_ERR_INVALID_ARGUMENT", () => Share.create("ses/1"));
      assert.match(slash.message, /contains '\/'/);
      const secret = await failsWith("SHARE_ERR_INVALID_ARGUMENT", () => Share.remove("ses_1", ""));
      assert.equal(secret.message, "secret is empty");
      // a promise-returning function never throws synchronously
      let threw = false;
      let promise;
      try {
        promise = Share.create(undefined);
      } catch {
        threw = true;
      }
      assert.equal(threw, false);
      await failsWith("SHARE_ERR_INVALID_ARGUMENT", () => promise);
      const again = await failsWith("SHARE_ERR_ALREADY_INITIALIZED", () => Share.init({ url: service.url }));
      assert.match(again.message, /already running/);
      // the service refusing a create: the status of the last attempt
      await service.fail("/share_create", 500, 2); // the attempt and its one retry
      const http = await failsWith("SHARE_ERR_HTTP_STATUS", () => Share.create(id("ses")));
      assert.match(http.message, /500/);
      // a wrong secret: the hosted service answers 500
      const sid = id("ses");
      await Share.create(sid);
      const wrong = await failsWith("SHARE_ERR_HTTP_STATUS", () => Share.remove(sid, "not-the-secret"));
      assert.match(wrong.message, /share_delete/);
      await failsWith("SHARE_ERR_INVALID_ARGUMENT", () => Share.flush(-1));
    });
    const config = await failsWith("SHARE_ERR_INVALID_ARGUMENT", () =>
      Share.init({ url: "http://127.0.0.1:9", no_such_key: 1 }),
    );
    assert.match(config.message, /no_such_key/);
    await failsWith("SHARE_ERR_NOT_INITIALIZED", () => Share.shutdown(100));
  });

  test("a network failure rejects create with SHARE_ERR_NETWORK", async () => {
    const url = await nowhere();
    try {
      Share.init({ url, timeout_ms: 1000, max_retries: 1, retry_initial_ms: 5, retry_max_ms: 10 });
      const error = await failsWith("SHARE_ERR_NETWORK", () => Share.create(id("ses")));
      assert.match(error.message, /share_create/);
    } finally {
      await Share.shutdown(1000).catch(() => {});
    }
  });

  test("flush rejects with SHARE_ERR_TIMEOUT when the service is slower than its deadline", async () => {
    await withShare({}, async (service) => {
      const sid = id("ses");
      await Share.create(sid);
      await service.setLatency(1000);
      Share.sync(`session/info/${sid}`, { title: "slow" });
      const started = performance.now();
      const error = await failsWith("SHARE_ERR_TIMEOUT", () => Share.flush(100));
      const took = performance.now() - started;
      assert.ok(took >= 90 && took < 900, `flush gave up after ${took} ms`);
      assert.match(error.message, /flush: .* \d+ keys still pending and \d+ contents in flight/);
      await Share.flush(3000);
      assert.deepEqual(await service.held(sid), { [`session/info/${sid}`]: { title: "slow" } });
    });
  });

  test("flushSync holds the JS thread until the writes are sent; too short a deadline throws SHARE_ERR_TIMEOUT", async () => {
    // the service answers 300 ms late, from other processes (this thread is held meanwhile)
    const service = await startService({ latencyMs: 300 });
    try {
      Share.init(config(service));
      const sid = id("ses");
      await Share.create(sid);
      Share.sync(`session/info/${sid}`, { title: "one" });
      assert.throws(() => Share.flushSync(50), (e) => e instanceof ShareError && e.code === "SHARE_ERR_TIMEOUT");
      Share.sync(`session/info/${sid}`, { title: "two" });
      Share.flushSync(5000);
      // no turn of the event loop since the call: the library sent both while the thread was held
      const stats = Share.stats();
      assert.deepEqual([stats.pending_keys, stats.in_flight], [0, 0]);
      assert.deepEqual(await service.held(sid), { [`session/info/${sid}`]: { title: "two" } });
      await failsWith("SHARE_ERR_INVALID_ARGUMENT", async () => Share.flushSync(-1));
    } finally {
      await Share.shutdown(3000).catch(() => {});
      await service.close();
    }
  }, 20_000);

  test("flush is not starved by writes that keep arriving after it began", async () => {
    await withShare({ concurrency: 1 }, async (service) => {
      const sid = id("ses");
      await Share.create(sid);
      // the first sync is held while new keys keep coming; those after it are held too
      const first = await service.hold("/share_sync", 1);
      const later = await service.hold("/share_sync");
      Share.sync(`session/info/${sid}`, { title: "first" });
      let flushed = false;
      const flushing = Share.flush(5000).then(() => (flushed = true));
      await first.arrived(1);
      for (let n = 0; n < 20; n++) Share.sync(`session/part/${sid}/msg_1/prt_${n}`, { n });
      await first.release();
      await flushing;
      assert.ok(flushed);
      assert.deepEqual((await service.held(sid))[`session/info/${sid}`], { title: "first" });
      assert.ok(Share.stats().pending_keys > 0, "it did not wait for the later writes");
      await later.release();
      await Share.flush(5000);
    });
  });

  test("events: retry, failed, dropped, refused and unshared reach listeners; '*' sees all; off() stops them", async () => {
    await withShare({ max_retries: 2 }, async (service) => {
      const all = [];
      const retries = [];
      const offAll = Share.on("*", (e) => all.push(e));
      const offRetry = Share.on("retry", (e) => retries.push(e));
      const seen = (type, pred = () => true) => all.some((e) => e.type === type && pred(e));
      // a flush rejects with SHARE_ERR_HTTP_STATUS when contents before it were given up or wait
      // for a refused share
      const flushed = () =>
        Share.flush(5000).catch((e) => {
          if (e.code !== "SHARE_ERR_HTTP_STATUS") throw e;
        });
      try {
        const sid = id("ses");
        const { secret } = await Share.create(sid);
        // one 503, then success: a retry event, then synced
        await service.fail("/share_sync", 503, 1);
        Share.sync(`session/info/${sid}`, { v: 1 });
        await Share.flush(5000);
        await until(() => seen("synced"), 3000, "synced after a retry");
        assert.equal(retries.length, 1);
        assert.equal(retries[0].status, 503);
        assert.equal(retries[0].key, `session/info/${sid}`);
        assert.equal(typeof retries[0].delay_ms, "number");
        // 400: rejected, dropped
        await service.fail("/share_sync", 400, 1);
        Share.sync(`session/message/${sid}/msg_1`, { v: 2 });
        const given = await failsWith("SHARE_ERR_HTTP_STATUS", () => Share.flush(5000));
        assert.match(given.message, /1 contents were given up/);
        await until(() => seen("dropped", (e) => e.reason === "rejected"), 3000, "dropped (rejected)");
        assert.ok(seen("failed", (e) => e.status === 400));
        // 500 max_retries times in a row: the share counts as refused (its contents wait)
        await service.fail("/share_sync", 500, 3);
        Share.sync(`session/message/${sid}/msg_2`, { v: 3 });
        await flushed();
        await until(() => seen("refused", (e) => e.session === sid), 3000, "refused");
        // 403: the share is gone
        await service.fail("/share_sync", 403, 1);
        Share.sync(`session/message/${sid}/msg_3`, { v: 4 });
        await flushed();
        await until(() => seen("unshared", (e) => e.session === sid && e.status === 403), 3000, "unshared");
        await flushed(); // reports what the 403 gave up
        // the session's later writes are not sent any more
        const before = (await service.log("/share_sync")).length;
        Share.sync(`session/message/${sid}/msg_4`, { v: 5 });
        await Share.flush(5000);
        assert.equal((await service.log("/share_sync")).length, before);
        for (const e of all) assert.equal(JSON.stringify(e).includes(secret), false);
      } finally {
        offAll();
        offRetry();
      }
      const count = all.length;
      const sid = id("ses");
      await Share.create(sid);
      Share.sync(`session/info/${sid}`, { after: "off" });
      await Share.flush(5000);
      await new Promise((r) => setTimeout(r, 50));
      assert.equal(all.length, count, "no listener, no event");
      assert.throws(() => Share.on("nope", () => {}), ShareError);
    });
  });

  test("remove: the service forgets the share and later writes of the session are not sent", async () => {
    await withShare({}, async (service) => {
      const sid = id("ses");
      const { secret } = await Share.create(sid);
      Share.sync(`session/info/${sid}`, { v: 1 });
      await Share.flush(5000);
      assert.equal(Share.stats().shares, 1);
      const removed = Share.remove(sid, secret);
      assert.equal(Share.stats().shares, 0, "the local part is done before remove returns");
      assert.equal(await removed, undefined);
      assert.equal(await service.has(sid.slice(-8)), false);
      const before = (await service.log("/share_sync")).length;
      Share.sync(`session/info/${sid}`, { v: 2 });
      await Share.flush(5000);
      assert.equal((await service.log("/share_sync")).length, before);
    });
  });

  test("init({ subscribe }) reproduces the original init(); shutdown unsubscribes", async () => {
    const service = await startService();
    const Bus = createBus();
    const Storage = createStorage(Bus);
    const errors = [];
    const offError = Share.on("error", (e) => errors.push(e));
    try {
      Share.init({
        ...config(service),
        subscribe: forwardWrites(Bus, Storage),
      });
      assert.equal(Bus.subscriberCount(Storage.Event.Write), 1);
      const sid = id("ses");
      const share = await Share.create(sid);
      await Storage.writeJSON(`session/share/${sid}`, share);
      await Storage.writeJSON(`session/info/${sid}`, { id: sid, title: "via the bus" });
      await Storage.writeJSON("session/broken", { bad: "key" });
      await Share.flush(5000);
      assert.deepEqual(await service.held(sid), { [`session/info/${sid}`]: { id: sid, title: "via the bus" } });
      assert.equal(errors.length, 1);
      assert.equal(errors[0].type, "error");
      assert.equal(errors[0].key, "session/broken");
      assert.equal(errors[0].error.code, "SHARE_ERR_INVALID_ARGUMENT");
      await Share.shutdown(3000);
      assert.equal(Bus.subscriberCount(Storage.Event.Write), 0);
      // a host whose subscribe returns nothing: after shutdown its writes are ignored quietly
      let forward;
      Share.init({ ...config(service), subscribe: (fn) => void (forward = fn) });
      forward(`session/share/${sid}`, share); // a new run learns the share from storage
      forward(`session/info/${sid}`, { id: sid, title: "second run" });
      await Share.shutdown(3000);
      forward(`session/info/${sid}`, { id: sid, title: "after shutdown" });
      forward("session/broken", {});
      assert.equal(errors.length, 1, "no error for writes after shutdown");
      assert.deepEqual(await service.held(sid), { [`session/info/${sid}`]: { id: sid, title: "second run" } });
    } finally {
      offError();
      await Share.shutdown(1000).catch(() => {});
      await Storage.remove();
      await service.close();
    }
  });

  test("a share learnt from a session/share write: syncs go out and the secret is stripped", async () => {
    await withShare({}, async (service) => {
      const sid = id("ses");
      // created elsewhere (another process of the host): the library learns it from storage
      const created = await fetch(`${service.url}/share_create`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ sessionID: sid }),
      }).then((r) => r.json());
      Share.sync(`session/share/${sid}`, created);
      // opencode's auto-share once stored the secret in session/info
      Share.sync(`session/info/${sid}`, { id: sid, share: { url: created.url, secret: created.secret } });
      await Share.flush(5000);
      assert.deepEqual(await service.held(sid), { [`session/info/${sid}`]: { id: sid, share: { url: created.url } } });
      assert.equal((await mentioning(service, created.secret)).length, 0, "the secret is never published as content");
    });
  });

  test("shutdown flushes first, then stops; stats stay readable; init works again", async () => {
    const service = await startService({ latencyMs: 50 });
    try {
      Share.init(config(service));
      const sid = id("ses");
      await Share.create(sid);
      for (let i = 0; i < 20; i++) Share.sync(`session/part/${sid}/msg_1/prt_${i}`, { i });
      await Share.shutdown(5000);
      assert.equal(Object.keys(await service.held(sid)).length, 20, "everything was sent before stopping");
      const stats = Share.stats();
      assert.equal(stats.running, false);
      assert.equal(stats.sent, 20);
      assert.equal(Share.URL, service.url);
      await failsWith("SHARE_ERR_NOT_INITIALIZED", () => Share.sync(`session/info/${sid}`, {}));
      await failsWith("SHARE_ERR_NOT_INITIALIZED", () => Share.flush(100));
      // startable again, with a new config
      Share.init(config(service, { concurrency: 1 }));
      assert.equal(Share.stats().running, true);
      await Share.shutdown(1000);
    } finally {
      await Share.shutdown(100).catch(() => {});
      await service.close();
    }
  });

  test("shutdown's deadline: pending work is dropped and reported, a pending create rejects, the library stops", async () => {
    const service = await startService({ latencyMs: 1500 });
    const dropped = [];
    const off = Share.on("dropped", (e) => dropped.push(e));
    try {
      Share.init(config(service, { timeout_ms: 5000 }));
      const pending = Share.create(id("ses"));
      const outcome = pending.then(
        () => "resolved",
        (e) => e,
      );
      const started = performance.now();
      const error = await failsWith("SHARE_ERR_TIMEOUT", () => Share.shutdown(200));
      const took = performance.now() - started;
      assert.ok(took < 1200, `shutdown took ${took} ms with a 200 ms deadline`);
      assert.match(error.message, /deadline/);
      const result = await outcome;
      assert.ok(result instanceof ShareError, `create settled with ${result}`);
      assert.equal(result.code, "SHARE_ERR_TIMEOUT");
      assert.equal(Share.stats().running, false);
      // init again at once (the abandoned request may still be in flight on a library thread)
      Share.init(config(service, { timeout_ms: 5000 }));
      await Share.shutdown(1000);
    } finally {
      off();
      await Share.shutdown(100).catch(() => {});
      await service.close();
    }
  });

  test("shutdown right after an event returns at once, not at its deadline; QUEUE_FULL is reported", async () => {
    const service = await startService();
    const seen = [];
    const off = Share.on("*", (e) => seen.push(e));
    try {
      Share.init(config(service, { max_pending_bytes: 1000 }));
      const sid = id("ses");
      await Share.create(sid);
      const full = await failsWith("SHARE_ERR_QUEUE_FULL", () =>
        Share.sync(`session/part/${sid}/msg_1/prt_1`, { text: "x".repeat(5000) }),
      );
      assert.equal(full.status, 8);
      // the library's notifier is announcing the dropped event right now: a shutdown that
      // waited for it on the JS thread (koffi blocks the notifier until JS runs) would take 3 s
      const started = performance.now();
      await Share.shutdown(3000);
      const took = performance.now() - started;
      assert.ok(took < 1500, `shutdown took ${took.toFixed(0)} ms`);
      await until(() => seen.some((e) => e.type === "dropped" && e.reason === "queue_full"), 2000, "dropped (queue_full)");
    } finally {
      off();
      await Share.shutdown(100).catch(() => {});
      await service.close();
    }
  });

  test("a host: Bus + Storage writing like opencode, wired through subscribe; after flush the service holds exactly what storage holds", async () => {
    const service = await startService({ latencyMs: 5 });
    const Bus = createBus();
    const Storage = createStorage(Bus);
    const synced = [];
    const off = Share.on("synced", (e) => synced.push(e.key));
    try {
      Share.init({
        ...config(service, { version: "0.0.0-test" }),
        subscribe: forwardWrites(Bus, Storage),
      });
      const Session = createSessions(Storage, Share);
      const shared = await Session.create("shared session");
      const other = await Session.create("not shared");
      await Session.userMessage(shared.id, "before the share");
      const share = await Session.share(shared.id);
      // opencode publishes what the session had before it was shared
      for (const [key, value] of Object.entries(await Storage.list(`session/message/${shared.id}/`)))
        Share.sync(key, value);
      for (const [key, value] of Object.entries(await Storage.list(`session/part/${shared.id}/`)))
        Share.sync(key, value);
      await Session.userMessage(shared.id, "explain the notes");
      const tokens = Array.from({ length: 300 }, (_, i) => `token${i} `);
      const streamed = Session.streamAnswer(shared.id, tokens);
      const unsharedStream = Session.streamAnswer(other.id, tokens.slice(0, 20));
      await Promise.all([streamed, unsharedStream]);
      await Storage.writeJSON("project/global", { some: "other storage" });
      await Share.flush(10_000);

      const stored = {
        ...(await Storage.list(`session/info/${shared.id}`)),
        ...(await Storage.list(`session/message/${shared.id}/`)),
        ...(await Storage.list(`session/part/${shared.id}/`)),
      };
      assert.ok(Object.keys(stored).length >= 7, "info, 3 messages and their parts");
      assert.deepEqual(await service.held(shared.id), stored);
      assert.deepEqual(await service.held(other.id), {}, "an unshared session is never sent");
      assert.equal((await mentioning(service, share.secret)).length, 0);
      const stats = Share.stats();
      assert.ok(stats.coalesced > 0, "the streamed part was coalesced");
      const syncs = (await service.log("/share_sync")).length;
      assert.ok(syncs < 300, `${syncs} sync requests for ${tokens.length} rewrites`);
      await until(() => synced.length > 0 && Share.stats().in_flight === 0, 3000, "synced events");
      await Share.shutdown(5000);
      assert.equal(Bus.subscriberCount(Storage.Event.Write), 0);
      // unshare after the fact: the host's remove through a new run
      Share.init(config(service));
      Share.sync(`session/share/${shared.id}`, share);
      await Session.unshare(shared.id);
      assert.equal(await service.has(shared.id.slice(-8)), false);
    } finally {
      off();
      await Share.shutdown(3000).catch(() => {});
      await Storage.remove();
      await service.close();
    }
  }, 30_000);

  test("no leaks across the boundary: 100 000 syncs, 1 000 creates and 200 000 stats leave resident memory flat", async () => {
    // the service runs in its own processes: this process's memory is the binding's and the library's
    const service = await startService({ logging: false });
    let events = 0;
    const off = Share.on("*", () => (events += 1));
    const sid = id("ses");
    const keys = Array.from({ length: 64 }, (_, i) => `session/part/${sid}/msg_1/prt_${i}`);
    const content = { type: "text", text: "x".repeat(400), meta: { n: 0 } };
    const syncs = async (n) => {
      for (let i = 0; i < n; i++) {
        content.meta.n = i;
        Share.sync(keys[i % keys.length], content);
        if (i % 2000 === 1999) await tick();
      }
      await Share.flush(30_000);
    };
    const creates = async (n) => {
      for (let i = 0; i < n; i += 50) {
        await Promise.all(
          Array.from({ length: Math.min(50, n - i) }, async () => {
            const s = id("ses");
            const { secret } = await Share.create(s);
            await Share.remove(s, secret);
          }),
        );
      }
    };
    try {
      Share.init(config(service, { timeout_ms: 10_000 }));
      await Share.create(sid);
      // warm up: allocators, HTTP connections, JIT
      await syncs(20_000);
      await creates(200);
      collectGarbage();
      await tick();
      collectGarbage();
      const before = process.memoryUsage().rss;
      await syncs(100_000);
      await creates(1_000);
      // every out-string freed: 200 000 stats strings (~350 bytes each) would be some 70 MiB
      for (let i = 0; i < 200_000; i++) Share.stats();
      collectGarbage();
      await tick();
      collectGarbage();
      const after = process.memoryUsage().rss;
      const grew = (after - before) / MiB;
      console.log(
        `[${runtime}] rss before ${(before / MiB).toFixed(1)} MiB, after 100000 syncs + 1000 creates + 200000 stats ${(after / MiB).toFixed(1)} MiB (${grew >= 0 ? "+" : ""}${grew.toFixed(1)} MiB), ${events} events`,
      );
      assert.ok(grew < 32, `resident memory grew by ${grew.toFixed(1)} MiB`);
      const stats = Share.stats();
      assert.equal(stats.pending_keys, 0);
      assert.ok(stats.queued >= 120_000);
      assert.ok(events > 0);
      assert.equal(Object.keys(await service.held(sid)).length, keys.length);
    } finally {
      off();
      await Share.shutdown(5000).catch(() => {});
      await service.close();
    }
  }, 120_000);

  test("library lookup: a missing explicit path is an error naming every place looked at", async () => {
    const { code, result } = await child("missing-option");
    assert.equal(code, 0);
    assert.equal(result.code, "SHARE_ERR_LIBRARY");
    assert.equal(result.status, -1);
    assert.match(result.message, /the libraryPath option: \/nonexistent\/libopencode_share\.so \(no such file\)/);
    assert.match(result.message, /cargo build --release/);
    const env = await child("default", { OPENCODE_SHARE_LIB: "/nonexistent/env/libopencode_share.so" });
    assert.equal(env.result.code, "SHARE_ERR_LIBRARY");
    assert.match(env.result.message, /the libraryPath option: not set/);
    assert.match(env.result.message, /OPENCODE_SHARE_LIB: \/nonexistent\/env\/libopencode_share\.so \(no such file\)/);
  });

  test("library lookup: a wrong file is an error naming the file; OPENCODE_SHARE_LIB is used before the defaults", async () => {
    const dir = mkdtempSync(join(tmpdir(), "opencode-share-lib-"));
    try {
      const text = join(dir, "not-a-library.so");
      writeFileSync(text, "this is not an ELF file\n");
      const wrong = await child("default", { OPENCODE_SHARE_LIB: text });
      assert.equal(wrong.result.code, "SHARE_ERR_LIBRARY");
      assert.ok(wrong.result.message.startsWith(`cannot load ${text}: `), wrong.result.message);
      assert.match(wrong.result.message, /Looked at: /);
      const copy = join(dir, "libopencode_share.so");
      copyFileSync(library, copy);
      const viaEnv = await child("default", { OPENCODE_SHARE_LIB: copy });
      assert.deepEqual(viaEnv.result, { ok: true, path: copy, backend });
      const link = join(dir, "link.so");
      symlinkSync(library, link);
      const viaOption = await child("option", { OPENCODE_SHARE_LIB: copy, CHILD_LIBRARY: link });
      assert.deepEqual(viaOption.result, { ok: true, path: link, backend }, "the option comes first");
      const defaults = await child("default");
      assert.equal(defaults.result.ok, true);
      const ownFolder = join(here, "..", "libopencode_share.so");
      const expected = existsSync(ownFolder) ? ownFolder : join(here, "..", "..", "..", "target", "release", "libopencode_share.so");
      assert.equal(defaults.result.path, expected, "without option or variable: the package folder, then target/release");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 30_000);

  test("a pending create keeps the process alive until it settles", async () => {
    // the service answers after 300 ms, from other processes: only the create holds the child's
    const service = await startService({ latencyMs: 300 });
    try {
      const { code, result } = await child("keep-alive", { CHILD_URL: service.url });
      assert.equal(code, 0);
      assert.equal(result.created, true);
      assert.equal(result.backend, backend);
    } finally {
      await service.close();
    }
  }, 20_000);
}
