// The viewer's benchmark (not a test): for each server binary given, side by side in one run,
//  - the page of a 4 000-part share in Chromium: DOMContentLoaded and load (median of 7 cold loads)
//    and the bytes of its first screen (HTML, CSS, script; before compression);
//  - the page render of 10k / 20k / 40k-message shares over HTTP (median of 3; the whole page, with
//    `?all=1` where the binary knows it);
//  - `GET /` while two 40k-message pages render.
// Run: BINS="old-binary new-binary" node crates/server/tests/browser/bench-page.mjs
import { performance } from "node:perf_hooks";
import { chromium } from "playwright-core";
import { chromiumArgs, startServer } from "./server.mjs";
import { createNext, longSession } from "./sessions.mjs";

const bins = (process.env.BINS ?? "").split(/\s+/).filter(Boolean);
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const ms = (x) => `${x.toFixed(0)} ms`;

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
      const sid = "ses_benchpage0000000long1";
      const { id } = await createNext(server.url, sid, longSession(sid, 100, 39));
      const dcl = [], load = [];
      let bytes = 0;
      for (let i = 0; i < 7; i++) {
        const context = await browser.newContext();
        const page = await context.newPage();
        let total = 0;
        page.on("response", async (r) => { try { total += (await r.body()).length; } catch { /* stream */ } });
        await page.goto(`${server.url}/share/${id}`, { waitUntil: "load" });
        const t = await page.evaluate(() => performance.getEntriesByType("navigation")[0].toJSON());
        dcl.push(t.domContentLoadedEventEnd);
        load.push(t.loadEventEnd);
        bytes = total;
        await context.close();
      }
      console.log(`4 000 parts: DOMContentLoaded ${ms(median(dcl))}, load ${ms(median(load))}, first screen ${(bytes / 1024).toFixed(0)} kB (HTML+CSS+JS)`);
      const urls = {};
      for (const n of [10_000, 20_000, 40_000]) {
        const s = `ses_benchpage00000${String(n).padStart(7, "0")}`;
        const share = await createNext(server.url, s, messages(s, n));
        urls[n] = `${server.url}/share/${share.id}?all=1`;
        const times = [];
        let size = 0;
        for (let i = 0; i < 3; i++) {
          const t0 = performance.now();
          size = (await (await fetch(urls[n])).text()).length;
          times.push(performance.now() - t0);
        }
        console.log(`${n} messages, whole page: ${ms(median(times))} (${(size / 1e6).toFixed(1)} MB)`);
      }
      const renders = [fetch(urls[40_000]).then((r) => r.text()), fetch(urls[40_000]).then((r) => r.text())];
      await new Promise((r) => setTimeout(r, 50));
      const t0 = performance.now();
      await (await fetch(`${server.url}/`)).text();
      const root = performance.now() - t0;
      await Promise.all(renders);
      console.log(`GET / while two 40k-message pages render: ${ms(root)}`);
    } finally {
      await server.stop();
    }
  }
} finally {
  await browser.close();
}
