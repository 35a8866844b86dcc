// A write on screen with 1 000 live viewers of one share: 999 SSE viewers (plain HTTP clients)
// and one real page in headless Chromium follow the share while a writer rewrites a part 20
// times; each write's latency is the time from just before its POST to the moment the page's
// DOM holds it (a MutationObserver in the page) and to the moment the last SSE viewer got it.
// Prints each run and the medians as JSON. Run by scripts/bench-server (release binary).
import http from "node:http";
import { createRequire } from "node:module";
import { join } from "node:path";
import { chromiumArgs, repo, startServer } from "../../crates/server/tests/browser/server.mjs";

const require = createRequire(join(repo, "crates", "server", "tests", "browser", "package.json"));
const { chromium } = require("playwright-core");
const runs = Number(process.argv[2] ?? 3);
const viewers = Number(process.argv[3] ?? 1000);
const writes = 20;
const now = () => performance.timeOrigin + performance.now();
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function sseViewer(url, id, seen) {
  return new Promise((resolve, reject) => {
    const req = http.get(`${url}/share/${id}/events?after=0`, { agent: false }, (res) => {
      res.setEncoding("utf8");
      let buffer = "";
      res.on("data", (chunk) => {
        const t = now();
        buffer += chunk;
        let at;
        while ((at = buffer.indexOf("\n\n")) >= 0) {
          const event = buffer.slice(0, at);
          buffer = buffer.slice(at + 2);
          const m = /marker (\d+)/.exec(event);
          if (m) {
            seen.count[m[1]] = (seen.count[m[1]] ?? 0) + 1;
            seen.last[m[1]] = Math.max(seen.last[m[1]] ?? 0, t);
          }
        }
      });
      resolve(req);
    });
    req.on("error", reject);
  });
}

const median = (a) => { const s = [...a].sort((x, y) => x - y); return s[Math.floor((s.length - 1) / 2)]; };
const p99 = (a) => { const s = [...a].sort((x, y) => x - y); return s[Math.round((s.length - 1) * 0.99)]; };

const results = [];
const browser = await chromium.launch({ executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium", args: chromiumArgs });
try {
  for (let run = 0; run < runs; run++) {
    const server = await startServer(["--rate-limit", "0"]);
    try {
      const sid = `ses_viewerbench${run}0000`;
      const post = (path, body) => fetch(`${server.url}${path}`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
      const { id, secret } = await (await post("/api/share", { sessionID: sid })).json();
      const part = (text) => ({ type: "part", data: { id: "prt_1", messageID: "msg_1", sessionID: sid, type: "text", text } });
      await post(`/api/share/${id}/sync`, { secret, data: [
        { type: "session", data: { id: sid, title: "1 000 viewers" } },
        { type: "message", data: { id: "msg_1", sessionID: sid, role: "assistant" } },
        part("start"),
      ] });
      const seen = { count: {}, last: {} };
      const sockets = [];
      for (let v = 0; v < viewers - 1; v++) sockets.push(await sseViewer(server.url, id, seen));
      const page = await browser.newPage();
      await page.goto(`${server.url}/share/${id}`);
      await page.waitForFunction(() => document.getElementById("status")?.textContent === "live", null, { timeout: 20_000 });
      await page.evaluate(() => {
        window.__seen = {};
        new MutationObserver(() => {
          const m = /marker (\d+)/.exec((document.getElementById("p/msg_1/prt_1") ?? document.getElementById("p-msg_1-prt_1"))?.textContent ?? "");
          if (m && !(m[1] in window.__seen)) window.__seen[m[1]] = performance.timeOrigin + performance.now();
        }).observe(document.getElementById("messages"), { subtree: true, childList: true, characterData: true });
      });
      await sleep(500);
      const pageMs = [], lastViewerMs = [];
      let complete = 0;
      for (let k = 0; k < writes; k++) {
        const t0 = now();
        const r = await post(`/api/share/${id}/sync`, { secret, data: [part(`marker ${k} ${"z".repeat(200)}`)] });
        if (r.status !== 200) throw new Error(`sync: ${r.status}`);
        const deadline = Date.now() + 10_000;
        let shown;
        while (Date.now() < deadline) {
          shown = await page.evaluate((k) => window.__seen[k], k);
          if (shown && (seen.count[k] ?? 0) >= viewers - 1) break;
          await sleep(5);
        }
        if (shown) pageMs.push(shown - t0);
        if ((seen.count[k] ?? 0) >= viewers - 1) { lastViewerMs.push(seen.last[k] - t0); complete++; }
        await sleep(100);
      }
      const result = { run, viewers, writes, page_median_ms: median(pageMs), page_p99_ms: p99(pageMs), page_shown: pageMs.length,
        last_sse_viewer_median_ms: median(lastViewerMs), last_sse_viewer_p99_ms: p99(lastViewerMs), writes_all_viewers_got: complete };
      console.log(JSON.stringify(result));
      results.push(result);
      await page.close();
      for (const s of sockets) s.destroy();
    } finally {
      await server.stop();
    }
  }
} finally {
  await browser.close();
}
const pick = (k) => median(results.map((r) => r[k]));
console.log("summary " + JSON.stringify({ median_of_runs: runs, viewers, page_median_ms: pick("page_median_ms"), page_p99_ms: pick("page_p99_ms"),
  last_sse_viewer_median_ms: pick("last_sse_viewer_median_ms"), last_sse_viewer_p99_ms: pick("last_sse_viewer_p99_ms") }));
