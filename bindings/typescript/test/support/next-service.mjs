// A share service on loopback that speaks ShareNext's protocol (SPEC.md, "The successor
// protocol") as opencode's real server answers it, for the fault cases and the overlap detector
// (the final-state checks run against the real opencode-share-server: server.mjs). It requires
// content-type: application/json (400 without), answers an unknown share or a wrong secret with
// 500, merges each batch by item key (last write wins), and records every request.
//
//   const service = await startNextService({ latencyMs: 0, org: { token, orgId } })
//   service.url                     // http://127.0.0.1:<port>
//   service.items(shareID)          // { itemKey: {type, data} } the service holds
//   service.fail("sync", 503, 2)    // the next two sync requests answer 503 ("create", "delete" too;
//                                   // status "reset": the connection is dropped instead; a share id
//                                   // as 4th argument: only that share's)
//   service.overlaps                // syncs of one share that arrived while another was in flight
//   service.latencyMs = 100         // every answer waits this long
//   const gate = service.hold("sync", 1)  // the next sync waits until gate.release()
//   await gate.arrived(1)                  // (a moment made, not hoped for)
//   await service.close()
//
// With `org`, the resource is /api/shares and every request needs `authorization: Bearer
// <token>` and `x-org-id: <orgId>` (401 without); /api/share then answers 404. With `randomIds`,
// share ids are random, not the session id's last 8 characters (a client must use the answer's).

import { randomUUID } from "node:crypto";
import { createServer } from "node:http";

import { close, listen, readJson } from "./listen.mjs";

const WEB = "https://opncd.test";
const TYPES = ["session", "message", "part", "session_diff", "model"];

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

/**
 * @param {{ latencyMs?: number, org?: { token: string, orgId: string }, randomIds?: boolean }} [options]
 */
export async function startNextService(options = {}) {
  /** @type {Map<string, { sessionID: string, secret: string, items: Map<string, any> }>} */
  const shares = new Map();
  /** @type {{ method: string, path: string, headers: Record<string, any>, body: any, status: number, at: number, done: number }[]} */
  const requests = [];
  /** @type {{ kind: string, status: number | "reset", left: number, id?: string }[]} */
  const failures = [];
  /** @type {{ kind: string, left: number, arrived: number, open: boolean }[]} */
  const gates = [];
  /** share id -> syncs of it being answered now */
  const inFlight = new Map();
  const timers = new Set();
  const resource = options.org ? "/api/shares" : "/api/share";

  const service = {
    url: "",
    latencyMs: options.latencyMs ?? 0,
    requests,
    shares,
    /** Sync requests of one share that arrived while another of that share was in flight. */
    overlaps: 0,
    /** The most sync requests of one share ever in flight at once. */
    maxInFlight: 0,
    /** The next `count` requests of `kind` ("create", "sync", "delete"; of share `id` only, if given) answer `status`. */
    fail(kind, status, count = 1, id = undefined) {
      failures.push({ kind, status, left: count, id });
    },
    /**
     * The next `count` requests of `kind` wait (after the latency) until `release()`;
     * `arrived(n)` resolves once `n` of them came (bounded by 10 s).
     */
    hold(kind, count = Infinity) {
      const gate = { kind, left: count, arrived: 0, open: false };
      gates.push(gate);
      return {
        release() {
          gate.open = true;
        },
        arrived: async (n = 1) => {
          const deadline = Date.now() + 10_000;
          while (gate.arrived < n) {
            if (Date.now() > deadline) throw new Error(`${gate.arrived} of ${n} ${kind} requests arrived`);
            await new Promise((r) => setTimeout(r, 2));
          }
        },
      };
    },
    /** What the service holds for share `id`: { itemKey: item } (empty when unknown). */
    items(id) {
      const share = shares.get(id);
      return share ? Object.fromEntries(share.items) : {};
    },
    /** The sync requests (of share `id`, if given). */
    syncs(id) {
      return requests.filter((r) => r.kind === "sync" && (id === undefined || r.id === id));
    },
    close: () => close(server, timers),
  };

  function injected(kind, id) {
    const failure = failures.find((f) => f.kind === kind && f.left > 0 && (f.id === undefined || f.id === id));
    if (!failure) return undefined;
    failure.left -= 1;
    return { status: failure.status, body: { error: "injected" } };
  }

  /** @returns {{ kind: string, id?: string, answer: () => { status: number, body?: unknown } }} */
  function route(req, body) {
    const path = (req.url ?? "").split("?")[0];
    const bad = (status) => ({ kind: "bad", answer: () => ({ status }) });
    if (!path.startsWith(`${resource}`) || (path.length > resource.length && path[resource.length] !== "/")) return bad(404);
    if (options.org && (req.headers.authorization !== `Bearer ${options.org.token}` || req.headers["x-org-id"] !== options.org.orgId)) {
      return bad(401);
    }
    if (!/^application\/json\b/.test(req.headers["content-type"] ?? "")) return bad(400);
    if (body === undefined || body === null || typeof body !== "object") return bad(400);
    const rest = path.slice(resource.length).split("/").filter(Boolean);
    if (req.method === "POST" && rest.length === 0) {
      return {
        kind: "create",
        answer: () => {
          const { sessionID } = body;
          if (typeof sessionID !== "string" || sessionID.length < 8) return { status: 400 };
          const id = options.randomIds ? randomUUID().slice(0, 8) : sessionID.slice(-8);
          if (shares.has(id)) return { status: 500, body: "Internal Server Error" };
          const secret = randomUUID();
          shares.set(id, { sessionID, secret, items: new Map() });
          return { status: 200, body: { id, secret, url: `${WEB}/share/${id}` } };
        },
      };
    }
    const id = rest[0];
    if (req.method === "POST" && rest.length === 2 && rest[1] === "sync") {
      return {
        kind: "sync",
        id,
        answer: () => {
          const { secret, data } = body;
          if (typeof secret !== "string" || !Array.isArray(data) || data.some((i) => !TYPES.includes(i?.type))) return { status: 400 };
          const share = shares.get(id);
          if (!share || share.secret !== secret) return { status: 500, body: "Internal Server Error" };
          for (const item of data) share.items.set(itemKey(item), item);
          return { status: 200, body: {} };
        },
      };
    }
    if (req.method === "DELETE" && rest.length === 1) {
      return {
        kind: "delete",
        id,
        answer: () => {
          const share = shares.get(id);
          if (!share || share.secret !== body.secret) return { status: 500, body: "Internal Server Error" };
          shares.delete(id);
          return { status: 200, body: {} };
        },
      };
    }
    return bad(404);
  }

  const server = createServer((req, res) => {
    readJson(req, (body) => {
      const { kind, id, answer } = route(req, body);
      const record = { kind, id, method: req.method, path: req.url, headers: req.headers, body, status: 0, at: performance.now(), done: 0 };
      requests.push(record);
      if (kind === "sync") {
        const now = (inFlight.get(id) ?? 0) + 1;
        if (now > 1) service.overlaps += 1;
        service.maxInFlight = Math.max(service.maxInFlight, now);
        inFlight.set(id, now);
      }
      const gate = gates.find((g) => g.kind === kind && g.left > 0 && !g.open);
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
        // the answer is decided when it is sent, as a server that took this long would
        const { status, body: out } = injected(kind, id) ?? answer();
        if (kind === "sync") inFlight.set(id, inFlight.get(id) - 1);
        if (status === "reset") {
          record.status = 0;
          record.done = performance.now();
          req.socket.destroy();
          return;
        }
        record.status = status;
        record.done = performance.now();
        const text = out === undefined ? "" : typeof out === "string" ? out : JSON.stringify(out);
        const type = typeof out === "string" ? "text/plain" : "application/json";
        res.writeHead(status, { "content-type": type, "content-length": Buffer.byteLength(text) });
        res.end(text);
      };
      let timer = setTimeout(reply, service.latencyMs);
      timers.add(timer);
    });
  });

  service.url = await listen(server);
  return service;
}
