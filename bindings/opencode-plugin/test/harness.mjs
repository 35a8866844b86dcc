// Runs the real opencode (npm opencode-ai, pinned in package.json) headless with the plugin:
// a temporary HOME and XDG folders, a project folder with opencode.json (the fake model, the
// plugin by path with its options), every online feature off, PWD set (opencode takes its
// project from $PWD). Also starts this repository's share server on loopback.

import { spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, rmSync, cpSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

export const here = dirname(fileURLToPath(import.meta.url));
export const pkg = join(here, "..");
export const repo = join(pkg, "..", "..");
export const OPENCODE = process.env.OPENCODE_BIN ?? join(pkg, "node_modules", "opencode-linux-x64", "bin", "opencode");
export const SERVER = process.env.OPENCODE_SHARE_SERVER ?? join(repo, "target", "debug", "opencode-share-server");
export const LIBRARY = process.env.OPENCODE_SHARE_LIB ?? join(repo, "target", "debug", "libopencode_share.so");
export const PLUGIN = join(pkg, "src", "index.ts");
export const CONFIG_TEMPLATE = join(here, "opencode-config");

/** The share server on 127.0.0.1:0 with a fresh SQLite database. */
export async function startServer() {
  if (!existsSync(SERVER)) throw new Error(`no share server at ${SERVER}: cargo build -p opencode-share-server`);
  const dir = mkdtempSync(join(tmpdir(), "ocp-server-"));
  const proc = spawn(SERVER, ["--listen", "127.0.0.1:0", "--database", `sqlite://${join(dir, "db")}`], { stdio: ["ignore", "pipe", "pipe"] });
  let stderr = "";
  proc.stderr.on("data", (d) => (stderr += d));
  const url = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the share server did not start: ${stderr}`)), 15_000);
    createInterface({ input: proc.stdout }).once("line", (line) => {
      clearTimeout(timer);
      const m = /^listening on (http:\/\/\S+)$/.exec(line);
      m ? resolve(m[1]) : reject(new Error(`unexpected first line: ${line}`));
    });
  });
  return {
    url,
    /** Freezes the server (SIGSTOP): requests to it hang until resume(). */
    pause: () => proc.kill("SIGSTOP"),
    resume: () => proc.kill("SIGCONT"),
    /** GET /api/share/<id>/data: the items, or the status when not 200. */
    async data(id) {
      const res = await fetch(`${url}/api/share/${id}/data`);
      return res.ok ? { status: 200, items: await res.json() } : { status: res.status, items: [] };
    },
    async close() {
      proc.kill("SIGCONT");
      proc.kill("SIGTERM");
      await new Promise((r) => (proc.exitCode !== null ? r() : proc.once("exit", r)));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A temporary HOME and project for opencode, with the plugin (options: the plugin's). */
export function makeProject({ modelUrl, pluginOptions = {}, share = "manual", plugin = true, enterpriseUrl }) {
  const root = mkdtempSync(join(tmpdir(), "ocp-"));
  const home = join(root, "home");
  const project = join(root, "project");
  for (const d of [home, project, join(home, ".config"), join(home, ".local", "share"), join(home, ".local", "state"), join(home, ".cache")]) mkdirSync(d, { recursive: true });
  writeFileSync(join(project, "hello.txt"), "hello from the project\n");
  const config = {
    $schema: "https://opencode.ai/config.json",
    autoupdate: false,
    share,
    ...(enterpriseUrl ? { enterprise: { url: enterpriseUrl } } : {}),
    provider: {
      fake: {
        npm: "@ai-sdk/openai-compatible",
        name: "Fake",
        options: { baseURL: modelUrl, apiKey: "x" },
        models: { "fake-model": { name: "Fake Model", tool_call: true, reasoning: true } },
      },
    },
    model: "fake/fake-model",
    small_model: "fake/fake-model",
    ...(plugin ? { plugin: [[`file://${PLUGIN}`, { libraryPath: LIBRARY, ...pluginOptions }]] } : {}),
  };
  writeFileSync(join(project, "opencode.json"), JSON.stringify(config, null, 2));
  // with a plugin configured, opencode installs @opencode-ai/plugin into its config folder with
  // npm at start (8-15 s here, and the network) unless that folder holds it already, with its
  // lock: test/opencode-config (npm ci'd by scripts/test.sh) is copied there
  const configDir = join(home, ".config", "opencode");
  mkdirSync(configDir, { recursive: true });
  writeFileSync(join(configDir, "package.json"), JSON.stringify({ dependencies: { "@opencode-ai/plugin": "1.18.33" } }));
  cpSync(CONFIG_TEMPLATE, configDir, { recursive: true });
  const env = {
    PATH: process.env.PATH,
    HOME: home,
    PWD: project,
    XDG_CONFIG_HOME: join(home, ".config"),
    XDG_DATA_HOME: join(home, ".local", "share"),
    XDG_STATE_HOME: join(home, ".local", "state"),
    XDG_CACHE_HOME: join(home, ".cache"),
    OPENCODE_DISABLE_AUTOUPDATE: "1",
    OPENCODE_DISABLE_MODELS_FETCH: "1",
    OPENCODE_DISABLE_LSP_DOWNLOAD: "1",
    OPENCODE_DISABLE_DEFAULT_PLUGINS: "1",
    OPENCODE_DISABLE_CLAUDE_CODE: "1",
    OPENCODE_DISABLE_EXTERNAL_SKILLS: "1",
    NO_COLOR: "1",
  };
  return { root, home, project, env, cleanup: () => rmSync(root, { recursive: true, force: true }) };
}

/** Spawns opencode with `args` in the project; resolves {code, signal, stdout, stderr} (bounded by timeoutMs). */
export function opencode(p, args, { timeoutMs = 120_000, onSpawn } = {}) {
  const proc = spawn(OPENCODE, args, { cwd: p.project, env: p.env, stdio: ["ignore", "pipe", "pipe"] });
  onSpawn?.(proc);
  let stdout = "";
  let stderr = "";
  proc.stdout.on("data", (d) => (stdout += d));
  proc.stderr.on("data", (d) => (stderr += d));
  return new Promise((resolve) => {
    const timer = setTimeout(() => proc.kill("SIGKILL"), timeoutMs);
    proc.once("exit", (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

/** `opencode export <sessionID>`: the session's JSON (after a line of text). */
export async function exportSession(p, sessionID) {
  const r = await opencode(p, ["export", sessionID]);
  const start = r.stdout.indexOf("{");
  if (r.code !== 0 || start < 0) throw new Error(`opencode export failed (${r.code}): ${r.stderr.slice(-2000)}`);
  return JSON.parse(r.stdout.slice(start));
}

/** A counting proxy in front of `target`: `counts` of create, sync and delete requests that went through, and their `agents`. */
export async function startProxy(target) {
  const { createServer, request } = await import("node:http");
  const counts = { create: 0, sync: 0, delete: 0, other: 0 };
  /** The user-agents of the requests that went through (opencode's own client says "opencode/<version>"). */
  const agents = new Set();
  const server = createServer((req, res) => {
    agents.add(req.headers["user-agent"] ?? "");
    const kind = req.method === "DELETE" ? "delete" : /\/sync$/.test(req.url) ? "sync" : req.method === "POST" && /^\/api\/shares?$/.test(req.url) ? "create" : "other";
    counts[kind]++;
    const up = request(`${target}${req.url}`, { method: req.method, headers: req.headers }, (r) => {
      res.writeHead(r.statusCode, r.headers);
      r.pipe(res);
    });
    up.on("error", () => { if (!res.headersSent) res.writeHead(502); res.end(); });
    req.pipe(up);
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  return { url: `http://127.0.0.1:${server.address().port}`, counts, agents, close: () => new Promise((r) => { server.closeAllConnections?.(); server.close(() => r()); }) };
}

/** A free loopback port (for opencode serve --port). */
export async function freePort() {
  const { createServer } = await import("node:net");
  const s = createServer();
  await new Promise((r) => s.listen(0, "127.0.0.1", r));
  const port = s.address().port;
  await new Promise((r) => s.close(r));
  return port;
}

/** Polls `check` (async, truthy when done) every 50 ms up to `ms`; answers its last value. */
export async function until(check, ms = 10_000) {
  const end = Date.now() + ms;
  let last;
  while (Date.now() < end) {
    last = await check();
    if (last) return last;
    await new Promise((r) => setTimeout(r, 50));
  }
  return last;
}

/**
 * `opencode serve` on a free loopback port in project `p`: resolves once it answers, with
 * `api(method, path, body)` (JSON; throws on a non-2xx answer) and `stop()`.
 */
export async function startServe(p) {
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  let proc;
  let log = "";
  const serving = opencode(p, ["serve", "--port", String(port), "--hostname", "127.0.0.1", "--print-logs"], {
    timeoutMs: 300_000,
    onSpawn: (c) => {
      proc = c;
      c.stdout.on("data", (d) => (log = (log + d).slice(-20_000)));
      c.stderr.on("data", (d) => (log = (log + d).slice(-20_000)));
    },
  });
  const stop = async () => {
    proc.kill("SIGTERM");
    return await serving;
  };
  const up = await until(async () => (await fetch(`${base}/config`, { signal: AbortSignal.timeout(5000) }).catch(() => undefined))?.ok, 90_000);
  if (!up) {
    await stop();
    throw new Error(`opencode serve did not answer within 90 s: ${log.slice(-3000)}`);
  }
  const api = async (method, path, body) => {
    const res = await fetch(`${base}${path}`, { method, headers: { "content-type": "application/json" }, body: body && JSON.stringify(body) });
    const text = await res.text();
    if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${text.slice(0, 500)}`);
    return text ? JSON.parse(text) : undefined;
  };
  return { base, api, stop, log: () => log };
}

/** A prompt through the serve API, answered by the fake model. */
export function prompt(api, sessionID, text) {
  return api("POST", `/session/${sessionID}/message`, { parts: [{ type: "text", text }], model: { providerID: "fake", modelID: "fake-model" } });
}
