// The tests' share service: the real share server, `opencode-share-server` (crates/server),
// behind the testkit's fault proxy, `testkit-proxy` (crates/testkit; both built into
// target/debug by scripts/test.sh), each in its own process on loopback. The proxy plays
// opencode's hosted service over the server (a wrong secret, an unknown share: 500), injects the
// faults a test asks for, holds requests at gates, logs every request and counts overlaps (two
// syncs of one share, or of one v1 key, in flight at once). OPENCODE_SHARE_SERVER and
// TESTKIT_PROXY name other binaries.
//
//   const service = await startService({ latencyMs: 0 })   // { org: {token, orgId}, createToken }
//   service.url                         // the proxy: what the library is configured with
//   await service.fail("/share_sync", 503, 2)   // the next two syncs answer 503 ("reset": the
//                                               // connection is reset; { method, containing })
//   await service.setLatency(100)       // every answer waits this long
//   const gate = await service.hold("/share_sync", 1)   // { file }: released when it exists
//   await gate.arrived(1); await gate.release()         // (a moment made, not hoped for)
//   await service.log("/share_sync")    // [{ method, path, headers, body, status, answer, ... }]
//   await service.held(sessionID)       // v1: { storage key: content } the server holds
//   await service.items(shareID)        // next: { item key: item } the server holds (null: none)
//   await service.close()

import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "..", "..");
const SERVER = process.env.OPENCODE_SHARE_SERVER || join(root, "target", "debug", "opencode-share-server");
const PROXY = process.env.TESTKIT_PROXY || join(root, "target", "debug", "testkit-proxy");

/** ShareNext's item key (the server's merge key). */
export function itemKey(item) {
  switch (item.type) {
    case "message":
      return `message/${item.data.id}`;
    case "part":
      return `part/${item.data.messageID}/${item.data.id}`;
    default:
      return item.type;
  }
}

/** Items by item key, as the server merges them. */
export const byKey = (items) => Object.fromEntries(items.map((item) => [itemKey(item), item]));

/**
 * Spawns `binary` with `args`; resolves to the process, its stdout lines and the URL of its first
 * line, "listening on <url>" (bounded by 10 s).
 */
async function started(binary, args, env) {
  if (!existsSync(binary)) {
    throw new Error(`no ${binary}: build it with \`cargo build -p opencode-share-server -p testkit --bins\` (scripts/test.sh does)`);
  }
  const proc = spawn(binary, args, { env: { ...process.env, ...env }, stdio: ["pipe", "pipe", "pipe"] });
  let stderr = "";
  proc.stderr.on("data", (d) => (stderr = (stderr + d).slice(-10_000)));
  const exited = new Promise((resolve) => proc.once("exit", (code, signal) => resolve({ code, signal })));
  const lines = createInterface({ input: proc.stdout });
  const url = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${binary} did not start within 10 s: ${stderr}`)), 10_000);
    lines.once("line", (line) => {
      clearTimeout(timer);
      const m = /^listening on (http:\/\/\S+)$/.exec(line);
      if (m) resolve(m[1]);
      else reject(new Error(`${binary}'s first line is not "listening on …": ${line}`));
    });
    exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`${binary} exited (${code ?? signal}) before listening: ${stderr}`));
    });
  });
  return { proc, lines, url, exited, stderr: () => stderr };
}

/**
 * @param {{ latencyMs?: number, hosted?: boolean, org?: { token: string, orgId: string },
 *           createToken?: string, logging?: boolean }} [options]
 *   hosted (default true): the proxy plays opencode's hosted service; false: it only forwards.
 *   org: an org account's service (/api/shares only, 401 without the token and org id).
 *   createToken: the server wants it to create a share.
 *   logging (default true): false keeps no log (a long run's would grow without bound).
 */
export async function startService(options = {}) {
  const dir = mkdtempSync(join(tmpdir(), "opencode-share-service-"));
  const database = join(dir, "share.db");
  const args = ["--database", database];
  if (options.org) args.push("--org-id", options.org.orgId);
  else if (options.hosted ?? true) args.push("--hosted");
  // the proxy first: the server's share URLs start with the proxy's, as behind a real one
  const proxy = await started(PROXY, args, { TESTKIT_ORG_TOKEN: options.org?.token ?? "" });
  const waiting = [];
  proxy.lines.on("line", (line) => waiting.shift()?.(JSON.parse(line)));
  /** One command to the proxy; resolves to its answer (rejects on an error answer). */
  const ask = (command) =>
    new Promise((resolve, reject) => {
      waiting.push((answer) => (answer.error ? reject(new Error(`testkit-proxy: ${answer.error}`)) : resolve(answer)));
      proxy.proc.stdin.write(`${JSON.stringify(command)}\n`);
    });
  let server;
  try {
    server = await started(
      SERVER,
      // no limits (a suite creates hundreds of shares from one address), no fsync per commit
      ["--listen", "127.0.0.1:0", "--database", `sqlite://${database}?synchronous=normal`, "--public-url", proxy.url]
        .concat(["--create-limit", "0", "--wrong-secret-limit", "0", "--rate-limit", "0"]),
      // the create token goes by environment, as the server's help advises (it stays out of `ps`)
      { OPENCODE_SHARE_CREATE_TOKEN: options.createToken ?? "" },
    );
    server.proc.stdin.end();
    await ask({ cmd: "upstream", addr: new URL(server.url).host });
    if (options.latencyMs) await ask({ cmd: "latency", ms: options.latencyMs });
    if (options.logging === false) await ask({ cmd: "logging", on: false });
  } catch (e) {
    proxy.proc.kill("SIGKILL");
    server?.proc.kill("SIGKILL");
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }
  // a test runner that exits without closing the service takes both processes with it
  const reap = () => {
    proxy.proc.kill("SIGKILL");
    server.proc.kill("SIGKILL");
  };
  process.once("exit", reap);
  const times = (n) => (n === Infinity ? undefined : n);

  return {
    url: proxy.url,
    /** The server itself (reads here pass no proxy and no log). */
    serverUrl: server.url,
    /** The next `count` requests to paths starting with `path` answer `status` ("reset": a reset). */
    fail: (path, status, count = 1, { method, containing } = {}) =>
      ask({ cmd: "rule", path, times: count, method, containing, ...(status === "reset" ? { action: "reset" } : { status }) }),
    /** The next `count` requests to `path` are answered `status` with the JSON `body` by the proxy. */
    reply: (path, status, body, count = 1, { method } = {}) => ask({ cmd: "rule", path, times: count, method, status, reply: body }),
    setLatency: (ms) => ask({ cmd: "latency", ms }),
    /**
     * The next `count` requests to `path` wait until `release()` (or, with `file`, until that file
     * exists); `arrived(n)` resolves once `n` of them came (bounded by 10 s).
     */
    async hold(path, count = Infinity, { method, file } = {}) {
      const { gate } = await ask({ cmd: "hold", path, times: times(count), method, file });
      return {
        release: () => ask({ cmd: "release", gate }),
        async arrived(n = 1) {
          const deadline = Date.now() + 10_000;
          for (;;) {
            const { arrived } = await ask({ cmd: "gate", gate });
            if (arrived >= n) return;
            if (Date.now() > deadline) throw new Error(`${arrived} of ${n} requests to ${path} arrived`);
            await new Promise((r) => setTimeout(r, 5));
          }
        },
      };
    },
    /** The requests so far (to paths starting with `prefix`), in the order answered. */
    async log(prefix = "") {
      const { log } = await ask({ cmd: "log" });
      return log.filter((r) => r.path.startsWith(prefix));
    },
    /** Requests that arrived while another of their flow (a share's syncs, a v1 key's) was in flight. */
    overlaps: async () => (await ask({ cmd: "overlaps" })).overlaps,
    /** v1: what the server holds for `sessionID`'s share, by storage key ({} when there is none). */
    held: async (sessionID) => (await ask({ cmd: "data", session: sessionID })).data ?? {},
    /** Whether the server has share `id`. */
    has: async (id) => (await ask({ cmd: "stored", id })).items !== null,
    /** next: what the server holds for share `id`, by item key ({} when there is none). */
    async items(id) {
      const res = await fetch(`${server.url}/api/share/${id}/data`);
      return res.ok ? byKey(await res.json()) : {};
    },
    /** GET /api/share/<id>/data from the server: { status, items: [{type, data}] }. */
    async data(id) {
      const res = await fetch(`${server.url}/api/share/${id}/data`);
      return { status: res.status, items: res.ok ? await res.json() : await res.text() };
    },
    async close() {
      process.off("exit", reap);
      proxy.proc.stdin.end();
      server.proc.kill("SIGTERM");
      const timer = setTimeout(() => {
        proxy.proc.kill("SIGKILL");
        server.proc.kill("SIGKILL");
      }, 5000);
      await Promise.all([proxy.exited, server.exited]);
      clearTimeout(timer);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
