// Starts support/serve.mjs in a child process of the same runtime and talks to it over stdio.

import { spawn } from "node:child_process";
import { dirname, join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

const SERVE = join(dirname(fileURLToPath(import.meta.url)), "serve.mjs");

/** `gateFile`: sync answers wait until that file exists (see service.mjs). */
export function startRemoteService(latencyMs = 0, gateFile = "") {
  const proc = spawn(process.execPath, [SERVE, String(latencyMs), gateFile], { stdio: ["pipe", "pipe", "inherit"] });
  const lines = createInterface({ input: proc.stdout });
  const waiting = [];
  lines.on("line", (line) => waiting.shift()?.(JSON.parse(line)));
  const next = () => new Promise((resolve) => waiting.push(resolve));
  const ask = (command) => {
    const answer = next();
    proc.stdin.write(`${command}\n`);
    return answer;
  };
  return next().then(({ url }) => ({
    url,
    held: (sessionID) => ask(`held ${sessionID}`),
    counts: () => ask("counts"),
    close: () =>
      new Promise((resolve) => {
        const timer = setTimeout(() => proc.kill("SIGKILL"), 5000);
        proc.on("exit", () => {
          clearTimeout(timer);
          resolve(undefined);
        });
        proc.stdin.end();
      }),
  }));
}
