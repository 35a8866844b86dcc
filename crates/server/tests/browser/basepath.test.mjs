// The viewer under a sub-path behind a path-prefixing reverse proxy, in real headless Chromium:
// the server runs with --base-path /tools/share; a small proxy serves it at
// http://proxy/tools/share/ and either forwards the path as it is or strips the prefix (the two
// ways proxies are set up). The page loads its style and script, follows its live stream through
// the proxy, and asks for nothing outside the sub-path.
import assert from "node:assert/strict";
import http from "node:http";
import { after, before, test } from "node:test";
import { chromium } from "playwright-core";
import { chromiumArgs, startServer } from "./server.mjs";
import { createNext } from "./sessions.mjs";

const prefix = "/tools/share";
let server, browser;
before(async () => {
  server = await startServer(["--base-path", prefix]);
  browser = await chromium.launch({ executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium", args: chromiumArgs });
});
after(async () => {
  await browser?.close();
  await server?.stop();
});

/** A reverse proxy on a free port serving the server at `prefix`; `strip`: forward without it. */
async function proxy(strip) {
  const target = new URL(server.url);
  const outside = [];
  const front = http.createServer((req, res) => {
    if (!req.url.startsWith(`${prefix}/`)) {
      outside.push(req.url);
      res.writeHead(404).end("not under the proxy's sub-path");
      return;
    }
    const path = strip ? req.url.slice(prefix.length) : req.url;
    const back = http.request({ host: target.hostname, port: target.port, path, method: req.method, headers: req.headers }, (answer) => {
      res.writeHead(answer.statusCode, answer.headers);
      res.flushHeaders(); // as a proxy with buffering off does for a live stream
      answer.pipe(res);
    });
    back.on("error", () => res.destroy());
    req.pipe(back);
  });
  await new Promise((r) => front.listen(0, "127.0.0.1", r));
  const url = `http://127.0.0.1:${front.address().port}${prefix}`;
  return { url, outside, close: () => new Promise((r) => { front.closeAllConnections(); front.close(r); }) };
}

let n = 0;
const part = (sid, pid, text) => ({ type: "part", data: { id: pid, messageID: "msg_1", sessionID: sid, type: "text", text } });
const message = (sid) => ({ type: "message", data: { id: "msg_1", sessionID: sid, role: "user", time: { created: 1 } } });

for (const strip of [false, true]) {
  test(`the page works behind a proxy that ${strip ? "strips" : "keeps"} the sub-path`, async () => {
    const front = await proxy(strip);
    const sid = `ses_basepath${process.pid}x${String(++n).padStart(4, "0")}`;
    const share = await createNext(front.url, sid, [message(sid), part(sid, "prt_1", "first words")]);
    const page = await browser.newPage();
    try {
      const failed = [];
      page.on("requestfailed", (r) => failed.push(r.url()));
      page.on("response", (r) => { if (r.status() >= 400) failed.push(`${r.status()} ${r.url()}`); });
      await page.goto(`${front.url}/share/${share.id}`);
      await page.waitForFunction(() => document.querySelector("#status")?.textContent === "live", null, { timeout: 10_000 });
      // the stylesheet came through the proxy and applies
      const styled = await page.evaluate(() => [...document.styleSheets].some((s) => s.href?.includes("/tools/share/assets/viewer.css") && s.cssRules.length > 0));
      assert.ok(styled, "the stylesheet loaded under the sub-path");
      await share.push([part(sid, "prt_2", "arrived live through the proxy")]);
      await page.waitForFunction(() => document.querySelector("#messages")?.textContent.includes("arrived live through the proxy"), null, { timeout: 10_000 });
      assert.deepEqual(failed, []);
      // (the browser's own /favicon.ico guess is not the page's)
      assert.deepEqual(front.outside.filter((u) => u !== "/favicon.ico"), [], "the page asked for nothing outside the sub-path");
    } finally {
      await page.close();
      await front.close();
    }
  });
}
