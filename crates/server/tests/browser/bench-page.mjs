// The viewer's benchmark (not a test): for each server binary given, side by side in one run,
//  - the page of a 4 000-part share in Chromium (and of a 2-message one, the floor on this machine):
//    DOMContentLoaded, first byte and load (median of 7 cold loads), the bytes of its first screen
//    (HTML, CSS, script; before compression);
//  - the page render of 10k / 20k / 40k-message shares over HTTP (median of 3; the whole page, with
//    `?all=1` where the binary knows it);
//  - `GET /` while two 40k-message pages render (the slowest of the answers polled meanwhile), and
//    `/data` of the 40k share (the store's read and the transfer alone, for comparison).
// Run: BINS="old-binary new-binary" node crates/server/tests/browser/bench-page.mjs
import { readFileSync } from "node:fs";
import { performance } from "node:perf_hooks";
import { chromium } from "playwright-core";
import { chromiumArgs, startServer } from "./server.mjs";
import { createNext, longSession } from "./sessions.mjs";

const bins = (process.env.BINS ?? "").split(/\s+/).filter(Boolean);
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const ms = (x) => `${x.toFixed(0)} ms`;
/** CPU time the server process has used, in ms (user + system; the machine's other load aside). */
const cpu = (pid) => {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ");
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100;
};

/** A share of `n` messages alternating user/assistant, each with one text part. */
function messages(sid, n) {
  const items = [{ type: "session", data: { id: sid, title: `${n} messages`, version: "0.15.2" } }];
  for (let i = 0; i < n; i++) {
    const mid = `msg_${String(i).padStart(7, "0")}`;
    items.push({ type: "message", data: { id: mid, sessionID: sid, role: i % 2 ? "assistant" : "user", modelID: "m", providerID: "p", cost: 0.001, tokens: { input: 1, output: 2 } } });
    items.push({ type: "part", data: { id: "prt_1", messageID: mid, sessionID: sid, type: "text", text: `Message ${i}: some **Markdown** and \`code\`.` } });
  }
  return items;
}

const browser = await chromium.launch({ executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium", args: chromiumArgs });
try {
  for (const bin of bins) {
    const server = await startServer([], {}, bin);
    console.log(`\n## ${bin}`);
    try {
      const size = async (path) => (await (await fetch(`${server.url}${path}`)).arrayBuffer()).byteLength;
      for (const [name, prompts, each] of [["1 prompt, 1 answer (baseline)", 1, 1], ["4 000 parts", 100, 39]]) {
        const sid = `ses_benchpage0000long${String(prompts).padStart(4, "0")}`;
        const { id } = await createNext(server.url, sid, longSession(sid, prompts, each));
        const bytes = (await size(`/share/${id}`)) + (await size("/assets/viewer.css")) + (await size("/assets/viewer.js"));
        const dcl = [], load = [], first = [];
        for (let i = 0; i < 7; i++) {
          const context = await browser.newContext();
          const page = await context.newPage();
          await page.goto(`${server.url}/share/${id}`, { waitUntil: "load" });
          const t = await page.evaluate(() => performance.getEntriesByType("navigation")[0].toJSON());
          dcl.push(t.domContentLoadedEventEnd);
          load.push(t.loadEventEnd);
          first.push(t.responseStart);
          await context.close();
        }
        console.log(`${name}: DOMContentLoaded ${ms(median(dcl))} (first byte ${ms(median(first))}), load ${ms(median(load))}, first screen ${(bytes / 1024).toFixed(0)} kB (HTML+CSS+JS)`);
      }
      const urls = {};
      for (const n of [10_000, 20_000, 40_000]) {
        const s = `ses_benchpage00000${String(n).padStart(7, "0")}`;
        const share = await createNext(server.url, s, messages(s, n));
        urls[n] = `${server.url}/share/${share.id}?all=1`;
        const times = [], cpus = [];
        let size = 0;
        for (let i = 0; i < 3; i++) {
          const t0 = performance.now(), c0 = cpu(server.pid);
          size = (await (await fetch(urls[n])).text()).length;
          times.push(performance.now() - t0);
          cpus.push(cpu(server.pid) - c0);
        }
        console.log(`${n} messages, whole page: ${ms(median(times))}, server CPU ${ms(median(cpus))} (${(size / 1e6).toFixed(1)} MB)`);
      }
      const data = [], dataCpu = [];
      for (let i = 0; i < 3; i++) {
        const t0 = performance.now(), c0 = cpu(server.pid);
        await (await fetch(urls[40_000].replace("/share/", "/api/share/").replace("?all=1", "/data"))).arrayBuffer();
        data.push(performance.now() - t0);
        dataCpu.push(cpu(server.pid) - c0);
      }
      console.log(`40000 messages, /data: ${ms(median(data))}, server CPU ${ms(median(dataCpu))}`);
      let done = false;
      const renders = Promise.all([1, 2].map(() => fetch(urls[40_000]).then((r) => r.text()))).then(() => { done = true; });
      const roots = [];
      while (!done && roots.length < 200) {
        const t0 = performance.now();
        await (await fetch(`${server.url}/`)).text();
        roots.push(performance.now() - t0);
        await new Promise((r) => setTimeout(r, 20));
      }
      await renders;
      console.log(`GET / while two 40k-message pages render: slowest ${ms(Math.max(...roots))}, median ${ms(median(roots))} (${roots.length} requests)`);
    } finally {
      await server.stop();
    }
  }
} finally {
  await browser.close();
}
