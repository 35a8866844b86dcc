// DOMContentLoaded of a 4 000-part share's page in Chromium, old and new servers interleaved load by
// load (so both see the same machine load), with a 2-message share as the floor. Not a test.
// Run: BINS="old-binary new-binary" node crates/server/tests/browser/bench-dcl.mjs
import { chromium } from "playwright-core";
import { chromiumArgs, startServer } from "./server.mjs";
import { createNext, longSession } from "./sessions.mjs";

const bins = (process.env.BINS ?? "").split(/\s+/).filter(Boolean);
const rounds = Number(process.env.ROUNDS ?? 15);
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const browser = await chromium.launch({ executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium", args: chromiumArgs });
const servers = [];
try {
  const targets = [];
  for (const bin of bins) {
    const server = await startServer([], {}, bin);
    servers.push(server);
    for (const [name, prompts, each] of [["2 messages", 1, 1], ["4 000 parts", 100, 39]]) {
      const sid = `ses_benchdcl00000long${String(prompts).padStart(4, "0")}`;
      const { id } = await createNext(server.url, sid, longSession(sid, prompts, each));
      targets.push({ label: `${bin} ${name}`, url: `${server.url}/share/${id}`, dcl: [] });
    }
  }
  for (let i = 0; i < rounds; i++) {
    for (const t of targets) {
      const context = await browser.newContext();
      const page = await context.newPage();
      await page.goto(t.url, { waitUntil: "load" });
      t.dcl.push(await page.evaluate(() => performance.getEntriesByType("navigation")[0].domContentLoadedEventEnd));
      await context.close();
    }
  }
  for (const t of targets) console.log(`${t.label}: DOMContentLoaded median ${median(t.dcl).toFixed(0)} ms, min ${Math.min(...t.dcl).toFixed(0)} ms (${rounds} loads)`);
} finally {
  await browser.close();
  for (const s of servers) await s.stop();
}
