// Starts the real share server, `opencode-share-server` (crates/server; scripts/test.sh builds
// it into target/debug), on loopback with a fresh SQLite database, for the final-state checks of
// ShareNext: it speaks both protocols. OPENCODE_SHARE_SERVER names another binary.
//
//   const server = await startServer({ createToken })
//   server.url                // http://127.0.0.1:<port>
//   await server.data(id)     // GET /api/share/<id>/data: { status, items: [{type, data}] }
//   await server.close()      // SIGTERM, then the database folder goes

import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "..", "..");
export const SERVER = process.env.OPENCODE_SHARE_SERVER || join(root, "target", "debug", "opencode-share-server");

/** @param {{ createToken?: string }} [options] */
export async function startServer(options = {}) {
  if (!existsSync(SERVER)) {
    throw new Error(`no share server at ${SERVER}: build it with \`cargo build -p opencode-share-server\` (scripts/test.sh does)`);
  }
  const dir = mkdtempSync(join(tmpdir(), "opencode-share-server-"));
  const args = ["--listen", "127.0.0.1:0", "--database", `sqlite://${join(dir, "db")}`];
  // the create token goes by environment, as the server's help advises (it stays out of `ps`)
  const env = { ...process.env, OPENCODE_SHARE_CREATE_TOKEN: options.createToken ?? "" };
  const proc = spawn(SERVER, args, { env, stdio: ["ignore", "pipe", "pipe"] });
  let stderr = "";
  proc.stderr.on("data", (d) => (stderr += d));
  const exited = new Promise((resolve) => proc.once("exit", (code, signal) => resolve({ code, signal })));
  const url = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the share server did not start within 10 s: ${stderr}`)), 10_000);
    const lines = createInterface({ input: proc.stdout });
    lines.once("line", (line) => {
      clearTimeout(timer);
      const m = /^listening on (http:\/\/\S+)$/.exec(line);
      if (m) resolve(m[1]);
      else reject(new Error(`the share server's first line is not "listening on …": ${line}`));
    });
    exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`the share server exited (${code ?? signal}) before listening: ${stderr}`));
    });
  });
  return {
    url,
    async data(id) {
      const res = await fetch(`${url}/api/share/${id}/data`);
      return { status: res.status, items: res.ok ? await res.json() : await res.text() };
    },
    async close() {
      proc.kill("SIGTERM");
      const timer = setTimeout(() => proc.kill("SIGKILL"), 5000);
      await exited;
      clearTimeout(timer);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
