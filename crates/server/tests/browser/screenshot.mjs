// Renders the viewer in headless Chromium and writes the screenshots under docs/: the sample session
// (examples/fixtures/session.jsonl) light and dark, a long session, and a session with edits and
// diffs (split view). Run: node crates/server/tests/browser/screenshot.mjs (after cargo build).
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { chromium } from "playwright-core";
import { chromiumArgs, fixture, repo, startServer, uploadLegacy } from "./server.mjs";
import { createNext, longSession, toolsSession } from "./sessions.mjs";

const server = await startServer();
const browser = await chromium.launch({ executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium", args: chromiumArgs });
const docs = join(repo, "docs");
mkdirSync(docs, { recursive: true });

async function shoot(url, file, { colorScheme = "light", height = 900, fullPage = false, prepare } = {}) {
  const context = await browser.newContext({ colorScheme, viewport: { width: 1200, height }, deviceScaleFactor: 1 });
  const page = await context.newPage();
  await page.goto(url);
  await page.waitForFunction(() => document.getElementById("status")?.textContent === "live", null, { timeout: 10_000 });
  await prepare?.(page);
  const out = join(docs, file);
  await page.screenshot({ path: out, fullPage });
  console.log(`wrote ${out}`);
  await context.close();
}

try {
  const writes = fixture();
  const sid = writes[0].content.id;
  await uploadLegacy(server.url, sid, writes);
  const sample = `${server.url}/s/${sid.slice(-8)}`;
  const openOutput = (page) => page.locator("details.tool-output").first().evaluate((d) => { d.open = true; });
  await shoot(sample, "viewer.png", { fullPage: true, prepare: openOutput });
  await shoot(sample, "viewer-dark.png", { colorScheme: "dark", fullPage: true, prepare: openOutput });

  const tools = "ses_screenshot0000tools01";
  const { id } = await createNext(server.url, tools, toolsSession(tools));
  await shoot(`${server.url}/share/${id}`, "viewer-diffs.png", {
    height: 1500,
    prepare: (page) => page.click("#diff-mode"),
  });

  const long = "ses_screenshot00000long01";
  const share = await createNext(server.url, long, longSession(long, 100, 39));
  await shoot(`${server.url}/share/${share.id}`, "viewer-long.png", { colorScheme: "dark" });
} finally {
  await browser.close();
  await server.stop();
}
