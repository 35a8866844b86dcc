// Renders the sample session (examples/fixtures/session.jsonl) in headless Chromium and writes
// docs/viewer.png. Run: node crates/server/tests/browser/screenshot.mjs (after cargo build).
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { chromium } from "playwright-core";
import { chromiumArgs, fixture, repo, startServer, uploadLegacy } from "./server.mjs";

const server = await startServer();
const browser = await chromium.launch({ executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium", args: chromiumArgs });
try {
  const writes = fixture();
  const sid = writes[0].content.id;
  await uploadLegacy(server.url, sid, writes);
  const page = await browser.newPage({ viewport: { width: 960, height: 900 }, deviceScaleFactor: 1 });
  await page.goto(`${server.url}/s/${sid.slice(-8)}`);
  await page.waitForFunction(() => document.getElementById("status")?.textContent === "live", null, { timeout: 10_000 });
  await page.locator("details.tool-output").first().evaluate((d) => { d.open = true; });
  const out = join(repo, "docs", "viewer.png");
  mkdirSync(join(repo, "docs"), { recursive: true });
  await page.screenshot({ path: out, fullPage: true });
  console.log(`wrote ${out}`);
} finally {
  await browser.close();
  await server.stop();
}
