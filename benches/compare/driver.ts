// driver.ts: one scenario of the side-by-side benchmark (benches/compare.rs) in Bun or Node, for
// either contender: `--contender library` (opencode-share through bindings/typescript) or
// `--contender baseline` (the original module, benches/compare/baseline/share.ts).
//
// Compiled by tsc into target/bench-compare/js/ and run as the same JS file by `node` and `bun`.
// It creates the shares it needs, warms up, prints "READY" and waits for "GO" on stdin, prints
// "START" (the orchestrator's clock starts when it reads the line), makes the scenario's writes, waits until its contender has nothing left to send
// (library: Share.flush; baseline: the tail of its promise chain, since the original has no
// flush), then prints "RESULT {json}": the JS thread's CPU from START to drained (from
// /proc/self/task/<pid>/schedstat: neither runtime has a thread CPU clock), the wall time spent
// inside the write calls, process CPU, peak resident memory. Delivery is measured by the
// orchestrator on the service's side.
//
// Contents come from the same function as driver.c and compare.rs (benches/compare/README.md).

import { readFileSync, readSync, writeSync } from "node:fs";

import * as Baseline from "./baseline/share.js";

// ------------------------------------------------------------------------------------------
// Workload (identical in driver.c and compare.rs)
// ------------------------------------------------------------------------------------------

const ALPHA = "lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod ";
const MASTER_LEN = 1000 + 70000;
const MASTER = (() => {
  const chars: string[] = [];
  for (let j = 0; j < MASTER_LEN; j++) chars.push(ALPHA[(j * 7 + Math.floor(j / 5)) % ALPHA.length]!);
  return chars.join("");
})();

const textOff = (seed: number) => (seed * 131) % 1000;
const lenPart = (x: number) => 200 + ((x * 97) % 1600);
const lenMsg = (x: number) => 100 + ((x * 37) % 300);
const lenStream = (v: number) => 16 + 4 * v;
const pad21 = (n: number) => String(n).padStart(21, "0");
const sesId = (s: number) => `ses_bench${pad21(s)}`;
const msgId = (m: number) => `msg_bench${pad21(m)}`;
const prtId = (p: number) => `prt_bench${pad21(p)}`;

interface Content {
  id: string;
  sessionID: string;
  type: string;
  v: number;
  text: string;
}

function content(id: string, sessionID: string, type: string, v: number, seed: number, len: number): Content {
  const off = textOff(seed);
  if (off + len > MASTER_LEN) throw new Error(`text length ${len} too large`);
  return { id, sessionID, type, v, text: MASTER.substring(off, off + len) };
}

const partKey = (s: number, m: number, p: number) => `session/part/${sesId(s)}/${msgId(m)}/${prtId(p)}`;
const partContent = (s: number, p: number, v: number, seed: number, len: number) =>
  content(prtId(p), sesId(s), "part", v, seed, len);

// ------------------------------------------------------------------------------------------
// Options
// ------------------------------------------------------------------------------------------

const opts: Record<string, string> = {};
{
  const argv = process.argv.slice(2);
  for (let i = 0; i < argv.length; i += 2) {
    const name = argv[i]!;
    const value = argv[i + 1];
    if (!name.startsWith("--") || value === undefined) throw new Error(`bad option ${name}`);
    opts[name.slice(2)] = value;
  }
}
const num = (name: string, fallback: number) => (opts[name] === undefined ? fallback : Number(opts[name]));
const URL_ = opts.url!;
const scenario = opts.scenario!;
const contender = opts.contender ?? "library";
const keys = num("keys", 200);
const writesN = num("writes", 2000);
const intervalUs = num("interval-us", 1000);
const sessions = num("sessions", 50);
const messages = num("messages", 500);
const parts = num("parts", 2000);
const timeoutMs = num("timeout-ms", 90000);
const isBun = typeof (globalThis as { Bun?: unknown }).Bun !== "undefined";

// ------------------------------------------------------------------------------------------
// Measures
// ------------------------------------------------------------------------------------------

/** CPU time of the JS (main) thread in ns: field 1 of /proc/self/task/<pid>/schedstat. */
function jsThreadCpuNs(): number {
  const text = readFileSync(`/proc/self/task/${process.pid}/schedstat`, "utf8");
  return Number(text.split(" ")[0]);
}

function statusKb(field: string): number {
  const text = readFileSync("/proc/self/status", "utf8");
  const m = new RegExp(`^${field}:\\s+(\\d+)`, "m").exec(text);
  return m ? Number(m[1]) : -1;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const yieldIo = () => new Promise<void>((r) => setImmediate(r));

// ------------------------------------------------------------------------------------------
// Contenders: the same four operations over the library and over the baseline
// ------------------------------------------------------------------------------------------

interface Contender {
  create(sessionID: string): Promise<void>;
  /** One storage write, as the host's storage event hands it over. */
  write(key: string, content: Content): void | Promise<void>;
  /** Resolves when the contender has nothing left to send (or can never send it). */
  drain(ms: number): Promise<string>;
  report(): unknown;
  close(): Promise<void>;
}

interface ShareApi {
  init(options: Record<string, unknown>): void;
  sync(key: string, content: unknown): void;
  create(sessionID: string): Promise<{ url: string; secret: string }>;
  flush(ms?: number): Promise<void>;
  shutdown(ms?: number): Promise<void>;
  stats(): unknown;
}

async function library(): Promise<Contender> {
  const dir = opts.bindings!;
  const mod = (await import(`${dir}/${isBun ? "bun.js" : "node.js"}`)) as { Share: ShareApi };
  const Share = mod.Share;
  Share.init({ url: URL_ });
  return {
    async create(sid) {
      await Share.create(sid);
    },
    write(key, c) {
      Share.sync(key, c);
    },
    async drain(ms) {
      try {
        await Share.flush(ms);
        return "flushed";
      } catch (e) {
        return `flush failed: ${(e as Error).message}`;
      }
    },
    report: () => Share.stats(),
    close: () => Share.shutdown(5000).catch(() => {}),
  };
}

/** The driver alone: writes go nowhere (measures the driver's own cost, e.g. its pacing). */
function none(): Contender {
  return {
    async create() {},
    write() {},
    async drain() {
      return "drained";
    },
    report: () => ({}),
    async close() {},
  };
}

async function baseline(): Promise<Contender> {
  Baseline.init(URL_);
  // The original ran inside opencode, whose entry point logs unhandled rejections instead of
  // exiting: a poisoned chain rejects again at every later write, and the process lives on.
  let rejections = 0;
  process.on("unhandledRejection", () => {
    rejections++;
  });
  const inFlight: Promise<void>[] = [];
  return {
    async create(sid) {
      const share = await Baseline.create(sid);
      Baseline.setShare(sid, share); // what Session.share() stored after Share.create
    },
    write(key, c) {
      // Storage.writeJSON published the write without awaiting the subscriber's promise
      inFlight.push(Baseline.sync(key, c));
    },
    async drain() {
      await Promise.all(inFlight.splice(0));
      try {
        await Baseline.drain();
        return "drained";
      } catch (e) {
        return `chain rejected: ${(e as Error).message}`;
      }
    },
    report: () => ({ ...Baseline.info(), unhandled_rejections: rejections }),
    async close() {},
  };
}

// ------------------------------------------------------------------------------------------
// The run
// ------------------------------------------------------------------------------------------

/**
 * Warm-up, before START: a share of its own session, 1 000 writes of 10 keys, drained. Both
 * contenders do the same, so the JIT, caches and connections are warm when timing starts (as
 * in a long-running opencode); the orchestrator ignores this session's requests.
 */
async function warmUp(c: Contender) {
  const sid = "ses_warmup00000000000000000000";
  await c.create(sid);
  for (let i = 0; i < 1000; i++) {
    const k = i % 10;
    await c.write(`session/part/${sid}/msg_warmup00000000000000000000/${prtId(k)}`, content(prtId(k), sid, "part", Math.floor(i / 10), k, lenPart(k)));
  }
  const status = await c.drain(60000);
  if (status !== "flushed" && status !== "drained") throw new Error(`warm-up: ${status}`);
}

async function main() {
  const c =
    contender === "baseline"
      ? await baseline()
      : contender === "none"
        ? none()
        : await library();
  await warmUp(c);
  const plan: [string, Content][] = [];
  let tStart = 0;
  let cpu0 = 0;
  let proc0: NodeJS.CpuUsage = process.cpuUsage();
  const start = () => {
    // "READY", then wait (blocking: nothing is pending now) for the orchestrator's "GO"; it sets the
    // service's latency and faults in between, so setup and warm-up ran at 0 ms without faults.
    writeSync(1, "READY\n");
    const buf = Buffer.alloc(64);
    let line = "";
    while (!line.includes("\n")) {
      let n = 0;
      try {
        n = readSync(0, buf, 0, buf.length, null);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === "EAGAIN") continue;
        throw e;
      }
      if (n === 0) throw new Error("no GO from the orchestrator");
      line += buf.toString("utf8", 0, n);
    }
    if (!line.startsWith("GO")) throw new Error(`expected GO, got ${line}`);
    tStart = performance.now();
    cpu0 = jsThreadCpuNs();
    proc0 = process.cpuUsage();
    writeSync(1, "START\n");
  };
  let wallInWrites = 0;
  let writes = 0;
  let errors = 0;
  const writeAll = async (list: [string, Content][], awaitEach: boolean) => {
    const w0 = performance.now();
    for (const [key, body] of list) {
      try {
        const p = c.write(key, body);
        if (awaitEach && p) await p;
      } catch {
        errors++;
      }
    }
    wallInWrites += performance.now() - w0;
    writes += list.length;
  };

  if (scenario === "burst" || scenario === "faults") {
    await c.create(sesId(0));
    for (let k = 0; k < keys; k++) plan.push([partKey(0, Math.floor(k / 4), k), partContent(0, k, 0, k, lenPart(k))]);
    start();
    await writeAll(plan, false);
  } else if (scenario === "stream") {
    await c.create(sesId(0));
    const key = partKey(0, 0, 0);
    const bodies: Content[] = [];
    for (let v = 0; v < writesN; v++) bodies.push(partContent(0, 0, v, 0, lenStream(v)));
    start();
    for (let v = 0; v < writesN; v++) {
      // write v is due at START + v * interval (absolute schedule: no drift); always yield to I/O
      const wait = tStart + (v * intervalUs) / 1000 - performance.now();
      if (wait > 0) await sleep(wait);
      else await yieldIo();
      const w0 = performance.now();
      try {
        void c.write(key, bodies[v]!);
      } catch {
        errors++;
      }
      wallInWrites += performance.now() - w0;
    }
    writes = writesN;
  } else if (scenario === "initial") {
    const sid = sesId(0);
    plan.push([`session/info/${sid}`, content(sid, sid, "info", 0, 0, 200)]);
    let p = 0;
    for (let m = 0; m < messages; m++) {
      plan.push([`session/message/${sid}/${msgId(m)}`, content(msgId(m), sid, "message", 0, m, lenMsg(m))]);
      for (; p < parts && Math.floor((p * messages) / parts) === m; p++)
        plan.push([partKey(0, m, p), partContent(0, p, 0, p, lenPart(p))]);
    }
    start(); // the create is part of the timed work: "synced right after create"
    await c.create(sid);
    // Session.share() awaited each Share.sync of its initial full sync
    await writeAll(plan, true);
  } else if (scenario === "many") {
    for (let s = 0; s < sessions; s++) await c.create(sesId(s));
    // 50 sessions x 20 keys, interleaved: key k of every session, then key k + 1
    for (let k = 0; k < keys; k++)
      for (let s = 0; s < sessions; s++) {
        const seed = s * keys + k;
        plan.push([partKey(s, Math.floor(k / 4), k), partContent(s, k, 0, seed, lenPart(seed))]);
      }
    start();
    await writeAll(plan, false);
  } else {
    throw new Error(`unknown scenario ${scenario}`);
  }
  const lastWrite = performance.now() - tStart;
  const left = Math.max(0, timeoutMs - (performance.now() - tStart));
  const drainStatus = await c.drain(left);
  const drained = performance.now() - tStart;
  const hostCpu = jsThreadCpuNs() - cpu0;
  const proc = process.cpuUsage(proc0);
  const result = {
    runtime: isBun ? "bun" : "node",
    contender,
    writes,
    sync_errors: errors,
    drain: drainStatus,
    wall_in_sync_ns: Math.round(wallInWrites * 1e6),
    host_thread_cpu_ns: hostCpu,
    process_cpu_ns: (proc.user + proc.system) * 1000,
    last_write_ns: Math.round(lastWrite * 1e6),
    drained_ns: Math.round(drained * 1e6),
    peak_rss_kb: statusKb("VmHWM"),
    stats: c.report(),
  };
  writeSync(1, `RESULT ${JSON.stringify(result)}\n`);
  await c.close();
  process.exit(0);
}

main().catch((e) => {
  process.stderr.write(`driver: ${(e as Error).stack ?? e}\n`);
  process.exit(2);
});
