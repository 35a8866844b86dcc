// A share service on loopback that speaks opencode's protocol (SPEC.md), for the tests of both
// runtimes (node:http works in Bun too). It stores each key last-write-wins per session, answers
// a wrong secret with 500 as the hosted service does, and can be made slow or failing.
//
//   const service = await startService({ latencyMs: 0 });
//   service.url               // http://127.0.0.1:<port>
//   service.held(sessionID)   // { key: content } the service holds for the session
//   service.fail("/share_sync", 503, 2)   // the next two sync requests answer 503
//   service.latencyMs = 500   // every answer waits this long
//   const gate = service.hold("/share_sync", 1)  // the next sync request waits until
//   await gate.arrived(1); gate.release()         // released (a moment made, not hoped for)
//   startService({ gateFile })  // sync answers wait until that file exists (a blocked JS
//                               // thread can open the gate with a synchronous file write)
//   await service.close()

import { randomUUID } from "node:crypto";
import { existsSync } from "node:fs";
import { createServer } from "node:http";

import { close, listen, readJson } from "./listen.mjs";

const WEB = "https://opncd.test";
const ACCEPTED = [
  /^session\/info\/([^/]+)$/,
  /^session\/message\/([^/]+)\/[^/]+$/,
  /^session\/part\/([^/]+)\/[^/]+\/[^/]+$/,
];

/**
 * @param {{ latencyMs?: number, record?: boolean, unref?: boolean, gateFile?: string }} [options]
 *   record: keep every request (path and body) in `requests`; off for the memory test.
 *   gateFile: sync answers wait (after the latency) until this file exists.
 *   unref: neither the server nor its latency timers keep the process alive.
 */
export async function startService(options = {}) {
  /** @type {Map<string, { secret: string, url: string, data: Map<string, unknown> }>} */
  const sessions = new Map();
  /** @type {{ path: string, body: any, status: number }[]} */
  const requests = [];
  /** @type {{ path: string, status: number, left: number }[]} */
  const failures = [];
  const counts = { create: 0, sync: 0, delete: 0 };
  const timers = new Set();
  /** @type {{ path: string, left: number, arrived: number, open: boolean }[]} */
  const gates = [];

  const service = {
    url: "",
    latencyMs: options.latencyMs ?? 0,
    record: options.record ?? true,
    requests,
    counts,
    sessions,
    /** The next `count` requests to `path` answer `status`. */
    fail(path, status, count = 1) {
      failures.push({ path, status, left: count });
    },
    /**
     * The next `count` requests to `path` wait (after the latency) until `release()`;
     * `arrived(n)` resolves once `n` of them came (bounded by 10 s).
     */
    hold(path, count = Infinity) {
      const gate = { path, left: count, arrived: 0, open: false };
      gates.push(gate);
      return {
        release() {
          gate.open = true;
        },
        arrived: async (n = 1) => {
          const deadline = Date.now() + 10_000;
          while (gate.arrived < n) {
            if (Date.now() > deadline) throw new Error(`${gate.arrived} of ${n} requests to ${path} arrived`);
            await new Promise((r) => setTimeout(r, 2));
          }
        },
      };
    },
    /** What the service holds for `sessionID`, as a plain object (empty when unknown). */
    held(sessionID) {
      const session = sessions.get(sessionID);
      return session ? Object.fromEntries(session.data) : {};
    },
    /** Sync requests whose content mentions `text` (to look for a leaked secret). */
    mentioning(text) {
      return requests.filter((r) => r.path === "/share_sync" && JSON.stringify(r.body?.content ?? null).includes(text));
    },
    close: () => close(server, timers),
  };

  /** @returns {{ status: number, body?: unknown }} */
  function answer(path, body) {
    const failure = failures.find((f) => f.path === path && f.left > 0);
    if (failure) {
      failure.left -= 1;
      return { status: failure.status, body: { error: "injected" } };
    }
    if (body === undefined || body === null || typeof body !== "object") return { status: 400 };
    const { sessionID } = body;
    if (typeof sessionID !== "string" || sessionID === "") return { status: 400 };
    switch (path) {
      case "/share_create": {
        counts.create += 1;
        const created = { secret: randomUUID(), url: `${WEB}/s/${sessionID.slice(-8)}` };
        sessions.set(sessionID, { ...created, data: new Map() });
        return { status: 200, body: { url: created.url, secret: created.secret } };
      }
      case "/share_sync": {
        counts.sync += 1;
        const session = sessions.get(sessionID);
        if (!session || session.secret !== body.secret) return { status: 500, body: { error: "unauthorized" } };
        const match = typeof body.key === "string" && ACCEPTED.map((r) => r.exec(body.key)).find(Boolean);
        if (match && match[1] === sessionID) session.data.set(body.key, body.content);
        return { status: 200, body: {} };
      }
      case "/share_delete": {
        counts.delete += 1;
        const session = sessions.get(sessionID);
        if (!session || session.secret !== body.secret) return { status: 500, body: { error: "unauthorized" } };
        sessions.delete(sessionID);
        return { status: 200, body: {} };
      }
      default:
        return { status: 404 };
    }
  }

  const server = createServer((req, res) => {
    readJson(req, (body) => {
      const path = (req.url ?? "").split("?")[0];
      const gate = gates.find((g) => g.path === path && g.left > 0 && !g.open);
      if (gate) {
        gate.left -= 1;
        gate.arrived += 1;
      }
      const reply = () => {
        timers.delete(timer);
        if (gate && !gate.open) {
          timer = setTimeout(reply, 2);
          timers.add(timer);
          return;
        }
        if (options.gateFile && path === "/share_sync" && !existsSync(options.gateFile)) {
          timer = setTimeout(reply, 5);
          timers.add(timer);
          return;
        }
        const { status, body: out } = req.method === "POST" ? answer(path, body) : { status: 405 };
        if (service.record) requests.push({ path, body, status });
        const text = out === undefined ? "" : JSON.stringify(out);
        res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text) });
        res.end(text);
      };
      let timer = setTimeout(reply, service.latencyMs);
      if (options.unref) timer.unref();
      timers.add(timer);
    });
  });

  service.url = await listen(server, { unref: options.unref });
  return service;
}
