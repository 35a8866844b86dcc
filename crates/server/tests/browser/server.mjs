// Helpers for the browser and client tests: the server binary on a free loopback port with
// SQLite in a temporary folder, the sample session, and bounded waits.
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
export const repo = join(here, "..", "..", "..", "..");
const binary = process.env.OPENCODE_SHARE_SERVER_BIN ?? join(repo, "target", "debug", "opencode-share-server");

/** Starts the server (`bin`: another build of it); resolves with { url, stop } once it printed its address. */
export async function startServer(args = [], env = {}, bin = binary) {
  const dir = mkdtempSync(join(tmpdir(), "share-server-test-"));
  const child = spawn(bin, ["--listen", "127.0.0.1:0", "--database", `sqlite://${join(dir, "share.db")}`, ...args], {
    stdio: ["ignore", "pipe", "inherit"],
    env: { ...process.env, ...env },
  });
  const line = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("the server did not start within 20 s")), 20_000);
    child.once("error", reject);
    child.once("exit", (code) => reject(new Error(`the server exited (${code})`)));
    createInterface({ input: child.stdout }).once("line", (l) => { clearTimeout(timer); resolve(l); });
  });
  const url = line.replace(/^listening on /, "");
  return {
    url,
    pid: child.pid,
    async stop() {
      child.kill("SIGTERM");
      await new Promise((r) => { if (child.exitCode !== null) r(); else child.once("exit", r); setTimeout(r, 3000); });
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** The sample session's storage writes, in order: [{key, content}]. */
export function fixture() {
  return readFileSync(join(repo, "examples", "fixtures", "session.jsonl"), "utf8")
    .split("\n").filter(Boolean).map((l) => JSON.parse(l));
}

/** The newest content of each key of a list of writes. */
export function newest(writes) {
  const m = new Map();
  for (const w of writes) m.set(w.key, w.content);
  return m;
}

/** POST JSON the way opencode's legacy client did: no content-type. */
export async function legacy(url, path, body) {
  const r = await fetch(`${url}${path}`, { method: "POST", body: JSON.stringify(body) });
  const text = await r.text();
  return { status: r.status, body: text ? JSON.parse(text) : null };
}

/** Creates a legacy share of `sid` and uploads the newest content of each key; returns the secret. */
export async function uploadLegacy(url, sid, writes) {
  const created = await legacy(url, "/share_create", { sessionID: sid });
  if (created.status !== 200) throw new Error(`create: ${created.status}`);
  const secret = created.body.secret;
  for (const [key, content] of newest(writes)) {
    const r = await legacy(url, "/share_sync", { sessionID: sid, secret, key, content });
    if (r.status !== 200) throw new Error(`sync ${key}: ${r.status} ${JSON.stringify(r.body)}`);
  }
  return secret;
}

export const chromiumArgs = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
  "--disable-component-update", "--disable-sync", "--no-first-run"];
