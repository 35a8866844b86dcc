// driver.ts: one run of the side-by-side benchmark (benches/compare/) in Bun or Node, for
// either contender: `--contender library` (opencode-share through bindings/typescript; with
// `--protocol next` it starts the library with `"protocol": "next"`, and prints `SKIP <why>`
// instead of READY when the library refuses that), `--contender baseline` (the original module,
// benches/compare/baseline/share.ts) or `--contender sharenext` (ShareNext's own client,
// benches/compare/baseline/share-next.ts: each write becomes the item its storage event carried).
// next-* workloads add `finish exit` (after the writes: shut down at once, ShareNext's instance
// disposal, instead of waiting until drained) and `stamp 1` (RESULT's `write_us`: each write's
// time since START, in µs, in file order).
//
// Compiled by tsc into target/bench-compare/js/ and run as the same JS file by `node` and `bun`.
// It reads the workload file the orchestrator wrote (benches/compare/workload.rs: every key and
// content of the scenario, so this driver generates nothing), creates the shares it names, warms
// up with its warm-up writes, prints "READY" and waits for "GO" on stdin, prints
// "START" (the orchestrator's clock starts when it reads the line), makes the scenario's writes, waits until its contender has nothing left to send
// (library: Share.flush; baseline: the tail of its promise chain, since the original has no
// flush), then prints "RESULT {json}": the JS thread's CPU from START to drained (from
// /proc/self/task/<pid>/schedstat: neither runtime has a thread CPU clock), the wall time spent
// inside the write calls, process CPU, peak resident memory. Delivery is measured by the
// orchestrator on the service's side.

import { readFileSync, readSync, writeSync } from "node:fs";

import * as Baseline from "./baseline/share.js";
import * as ShareNext from "./baseline/share-next.js";

// ------------------------------------------------------------------------------------------
// The workload file (written by benches/compare/workload.rs, which documents the format)
// ------------------------------------------------------------------------------------------

type Content = Record<string, unknown>;
type Write = [key: string, content: Content];

interface Workload {
  intervalUs: number;
  awaitEach: boolean;
  warmupSid: string;
  warmup: Write[];
  creates: string[];
  timedCreates: string[];
  /** In file order (from C, `thread` splits them; JS writes them in this order). */
  writes: Write[];
  /** next-*: shut down right after the writes instead of draining; stamp each write */
  exit: boolean;
  stamp: boolean;
}

/** Reads the workload; a content is `head + v + tail`, parsed here, before START. */
function readWorkload(path: string): Workload {
  const w: Workload = {
    intervalUs: 0,
    awaitEach: false,
    warmupSid: "",
    warmup: [],
    creates: [],
    timedCreates: [],
    writes: [],
    exit: false,
    stamp: false,
  };
  let total = 0;
  // one string per distinct key, as a host that keeps its key (the stream's one part) passes it
  const keys = new Map<string, string>();
  const intern = (key: string) => keys.get(key) ?? (keys.set(key, key), key);
  const write = ([key, v, head, tail]: string[]): Write => [intern(key!), JSON.parse(`${head}${v}${tail}`) as Content];
  for (const line of readFileSync(path, "utf8").split("\n")) {
    if (line === "") continue;
    const [record, ...f] = line.split("\t");
    if (record === "write") w.writes.push(write(f.slice(1)));
    else if (record === "warmup") w.warmup.push(write(f));
    else if (record === "create") w.creates.push(f[0]!);
    else if (record === "create_timed") w.timedCreates.push(f[0]!);
    else if (record === "warmup_create") w.warmupSid = f[0]!;
    else if (record === "interval_us") w.intervalUs = Number(f[0]);
    else if (record === "await_each") w.awaitEach = f[0] === "1";
    else if (record === "total") total = Number(f[0]);
    else if (record === "finish") w.exit = f[0] === "exit";
    else if (record === "stamp") w.stamp = f[0] === "1";
  }
  if (total !== w.writes.length) throw new Error(`a workload replayed in passes (total ${total}) is for the C driver`);
  return w;
}

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
const workload = readWorkload(opts.workload!);
const contender = opts.contender ?? "library";
const protocol = opts.protocol ?? "v1";
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
  /** next-exit: what the host does at exit right after its writes (shutdown / instance disposal). */
  exit(ms: number): Promise<string>;
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
  try {
    Share.init(protocol === "v1" ? { url: URL_ } : { url: URL_, protocol });
  } catch (e) {
    // today's library answers SHARE_ERR_INVALID_ARGUMENT for the unknown config key
    writeSync(1, `SKIP the library does not speak ${protocol} yet (share_init: ${(e as Error).message})\n`);
    process.exit(0);
  }
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
    async exit(ms) {
      try {
        await Share.shutdown(ms);
        return "shut down";
      } catch (e) {
        return `shutdown failed: ${(e as Error).message}`;
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
    async exit() {
      return "exited";
    },
    report: () => ({}),
    async close() {},
  };
}

/**
 * ShareNext's own client: a storage write reaches it as the bus event opencode published for it
 * (session.updated, message.updated, message.part.updated), i.e. as one item of its session.
 */
function shareNext(): Contender {
  ShareNext.init(URL_);
  return {
    async create(sid) {
      await ShareNext.create(sid);
    },
    write(key, c) {
      const [, sub] = key.split("/");
      if (sub === "part") ShareNext.partUpdated(c as Parameters<typeof ShareNext.partUpdated>[0]);
      else if (sub === "message") ShareNext.messageUpdated(c as Parameters<typeof ShareNext.messageUpdated>[0]);
      else if (sub === "info") ShareNext.sessionUpdated(c as Parameters<typeof ShareNext.sessionUpdated>[0]);
    },
    async drain(ms) {
      await ShareNext.drain(ms);
      return "drained";
    },
    async exit() {
      ShareNext.dispose();
      return "disposed";
    },
    report: () => ({ warn: ShareNext.log.warn, error: ShareNext.log.error }),
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
    async exit() {
      return "exited";
    },
    report: () => ({ ...Baseline.info(), unhandled_rejections: rejections }),
    async close() {},
  };
}

// ------------------------------------------------------------------------------------------
// The run
// ------------------------------------------------------------------------------------------

/**
 * Warm-up, before START: a share of its own session and the workload's warm-up writes, drained.
 * Both contenders do the same, so the JIT, caches and connections are warm when timing starts
 * (as in a long-running opencode); the orchestrator ignores this session's requests.
 */
async function warmUp(c: Contender) {
  await c.create(workload.warmupSid);
  for (const [key, content] of workload.warmup) await c.write(key, content);
  const status = await c.drain(60000);
  if (status !== "flushed" && status !== "drained") throw new Error(`warm-up: ${status}`);
}

async function main() {
  const c =
    contender === "baseline"
      ? await baseline()
      : contender === "none"
        ? none()
        : contender === "sharenext"
          ? shareNext()
          : await library();
  await warmUp(c);
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
  // next-*: each write's time since START (µs), taken right after the call returned
  const stamps = workload.stamp ? new Float64Array(workload.writes.length) : undefined;
  const writeAll = async (list: Write[], awaitEach: boolean) => {
    const w0 = performance.now();
    for (let i = 0; i < list.length; i++) {
      const [key, body] = list[i]!;
      try {
        const p = c.write(key, body);
        if (stamps) stamps[i] = (performance.now() - tStart) * 1000;
        if (awaitEach && p) await p;
      } catch {
        errors++;
      }
    }
    wallInWrites += performance.now() - w0;
    writes += list.length;
  };

  for (const sid of workload.creates) await c.create(sid);
  const plan = workload.writes;
  start();
  // the initial share: the create is part of the timed work ("synced right after create")
  for (const sid of workload.timedCreates) await c.create(sid);
  if (workload.intervalUs > 0) {
    // write v is due at START + v * interval (absolute schedule: no drift); always yield to I/O
    for (let v = 0; v < plan.length; v++) {
      const wait = tStart + (v * workload.intervalUs) / 1000 - performance.now();
      if (wait > 0) await sleep(wait);
      else await yieldIo();
      const [key, body] = plan[v]!;
      const w0 = performance.now();
      try {
        void c.write(key, body);
      } catch {
        errors++;
      }
      const w1 = performance.now();
      if (stamps) stamps[v] = (w1 - tStart) * 1000;
      wallInWrites += w1 - w0;
    }
    writes = plan.length;
  } else {
    // Session.share() awaited each Share.sync of its initial full sync (await_each)
    await writeAll(plan, workload.awaitEach);
  }
  const lastWrite = performance.now() - tStart;
  const left = Math.max(0, timeoutMs - (performance.now() - tStart));
  const drainStatus = workload.exit ? await c.exit(left) : await c.drain(left);
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
    ...(stamps ? { write_us: Array.from(stamps, (x) => Math.round(x * 10) / 10) } : {}),
  };
  writeSync(1, `RESULT ${JSON.stringify(result)}\n`);
  await c.close();
  process.exit(0);
}

main().catch((e) => {
  process.stderr.write(`driver: ${(e as Error).stack ?? e}\n`);
  process.exit(2);
});
