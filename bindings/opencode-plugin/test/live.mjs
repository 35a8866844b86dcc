// Times a streamed answer's chunks from the fake model to a viewer's DOM in real headless
// Chromium (playwright-core, /usr/bin/chromium): a MutationObserver notes when each chunk's
// word ("wa12", unique per answer: see the model's `tag`) first appears in the page; the model noted when it wrote the chunk. Both clocks
// are this machine's wall clock.

import { chromium } from "playwright-core";

export const CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync"];

function percentile(sorted, q) {
  return sorted.length ? sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)] : NaN;
}

/** Opens `pageUrl`, runs `act` (which makes the model stream), answers the latencies and percentiles. */
export async function measureLive(pageUrl, model, act) {
  const browser = await chromium.launch({ executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium", args: CHROMIUM_ARGS });
  try {
    const page = await browser.newPage();
    await page.goto(pageUrl);
    await page.waitForFunction(() => document.getElementById("status")?.textContent === "live", null, { timeout: 15_000 });
    await page.evaluate(() => {
      const seen = (window.__seen = {});
      const scan = () => {
        const now = performance.timeOrigin + performance.now();
        for (const m of document.body.textContent.matchAll(/\bw([a-z]*\d+)\b/g)) if (!(m[1] in seen)) seen[m[1]] = now;
      };
      new MutationObserver(scan).observe(document.body, { subtree: true, childList: true, characterData: true });
      scan();
    });
    await act();
    // every chunk of the answer (both turns around a tool call); the last ones may still be on
    // their way when the prompt's answer returns
    const sent = model.sent;
    const words = sent.map((s) => s.word.slice(1));
    await page.waitForFunction((w) => w.every((k) => k in window.__seen), words, { timeout: 10_000 }).catch(() => {});
    const seen = await page.evaluate(() => window.__seen);
    const latencies = [];
    const missing = [];
    for (const { word, at } of sent) {
      const when = seen[word.slice(1)];
      if (when === undefined) missing.push(word);
      else latencies.push(Math.round(when - at));
    }
    const sorted = [...latencies].sort((a, b) => a - b);
    return {
      latencies,
      missing,
      p50: percentile(sorted, 0.5),
      p90: percentile(sorted, 0.9),
      p99: percentile(sorted, 0.99),
      max: sorted[sorted.length - 1],
      spanMs: sent.length ? sent[sent.length - 1].at - sent[0].at : 0,
    };
  } finally {
    await browser.close();
  }
}
