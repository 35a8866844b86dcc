// Side by side in one run: a streamed answer's way from the fake model's chunk to a viewer's DOM
// (this repository's server viewer, headless Chromium), through opencode serve with the plugin
// (spool on, spool off) and with opencode's own share client (no plugin). Also the sync requests
// each made. Prints a markdown table.
//
//   node test/measure-live.mjs [prompts per mode, default 2]
// The library is target/debug's unless OPENCODE_SHARE_LIB names another (a release build).

import { execSync } from "node:child_process";

import { startModel } from "./fake-model.mjs";
import { makeProject, prompt, startProxy, startServe, startServer } from "./harness.mjs";
import { measureLive } from "./live.mjs";

const rounds = Number(process.argv[2] ?? 2);
const model = await startModel();
const server = await startServer();
const proxy = await startProxy(server.url);
const modes = [
  { name: "plugin, spool on", plugin: true, pluginOptions: { url: proxy.url } },
  { name: "plugin, spool off", plugin: true, pluginOptions: { url: proxy.url, spoolDir: false } },
  { name: "opencode alone (no plugin)", plugin: false, enterpriseUrl: proxy.url },
];
const pct = (sorted, q) => sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)];
const rows = [];
try {
  for (const mode of modes) {
    const p = makeProject({ modelUrl: model.url, plugin: mode.plugin, pluginOptions: mode.pluginOptions, enterpriseUrl: mode.enterpriseUrl });
    const serve = await startServe(p);
    try {
      const session = await serve.api("POST", "/session", {});
      const shared = await serve.api("POST", `/session/${session.id}/share`);
      const page = `${server.url}/share/${shared.share.url.split("/").pop()}`;
      const all = [];
      let missing = 0;
      const syncs = proxy.counts.sync;
      for (let i = 0; i < rounds; i++) {
        model.setPlan({ words: 40, delayMs: 40, tool: undefined, hold: false, tag: `${"xyz"[modes.indexOf(mode)]}${"abcdefghij"[i % 10]}` });
        const live = await measureLive(page, model, () => prompt(serve.api, session.id, `count ${i} [no tool]`));
        all.push(...live.latencies);
        missing += live.missing.length;
      }
      const sorted = all.sort((a, b) => a - b);
      rows.push(`| ${mode.name} | ${sorted.length} | ${pct(sorted, 0.5)} | ${pct(sorted, 0.9)} | ${pct(sorted, 0.99)} | ${sorted[sorted.length - 1]} | ${missing} | ${proxy.counts.sync - syncs} |`);
      console.error(rows[rows.length - 1]);
    } finally {
      await serve.stop();
      p.cleanup();
    }
  }
} finally {
  await model.close();
  await proxy.close();
  await server.close();
}
let commit = "";
try {
  commit = execSync("git rev-parse --short HEAD", { encoding: "utf8" }).trim();
} catch {}
console.log(`${new Date().toISOString().slice(0, 10)}, commit ${commit}, load average ${(await import("node:os")).loadavg().map((l) => l.toFixed(1)).join(" ")}; ${rounds} prompts of 40 chunks 40 ms apart per mode`);
console.log("| mode | chunks | p50 ms | p90 ms | p99 ms | max ms | never seen | sync requests |");
console.log("| --- | --- | --- | --- | --- | --- | --- | --- |");
for (const row of rows) console.log(row);
