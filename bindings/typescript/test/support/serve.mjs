// Runs a share service (service.mjs) in its own process (args: latency in ms, optional gate file), so that a test measuring this process's
// memory does not count the service's. Prints {"url"} once listening; answers "held <sessionID>"
// and "counts" lines on stdin with one JSON line each; exits when stdin closes.

import { createInterface } from "node:readline";

import { startService } from "./service.mjs";

const service = await startService({
  latencyMs: Number(process.argv[2] ?? 0),
  gateFile: process.argv[3] || undefined,
  record: false,
});
process.stdout.write(`${JSON.stringify({ url: service.url })}\n`);
const lines = createInterface({ input: process.stdin });
lines.on("line", (line) => {
  const [command, arg] = line.split(" ");
  const answer = command === "held" ? service.held(arg) : command === "counts" ? service.counts : null;
  process.stdout.write(`${JSON.stringify(answer)}\n`);
});
lines.on("close", () => {
  service.close().then(() => process.exit(0));
});
