// Measures how long `sync` holds a key's newer content in JS (not yet in the library, so not in
// a spool) while the key's previous content is in flight: at service latency L, and through an
// outage of N failed answers, against the real server behind the testkit's proxy. Prints one
// JSON line. Run: node test/measure-handover.mjs [spoolDir]
import { mkdtempSync, chmodSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { Share } from "opencode-share";
import { startService } from "./support/testkit.mjs";

const here = dirname(fileURLToPath(import.meta.url));
const library = process.env.OPENCODE_SHARE_LIB || join(here, "..", "..", "..", "target", "release", "libopencode_share.so");
const withSpool = process.argv[2] === "spool";
const results = {};
for (const [name, latencyMs, failures] of [["latency_100ms", 100, 0], ["latency_20ms", 20, 0], ["outage_5x503", 20, 5]]) {
  const service = await startService({ latencyMs });
  const extra = {};
  if (withSpool) {
    const t = mkdtempSync(join(tmpdir(), "measure-"));
    chmodSync(t, 0o700);
    extra.spoolDir = join(t, "spool");
  }
  Share.init({ libraryPath: library, url: service.url, retry_initial_ms: 100, retry_max_ms: 400, ...extra });
  const sid = `ses_${"m".repeat(26)}`;
  await Share.create(sid);
  const key = `session/part/${sid}/msg_1/prt_1`;
  const runs = [];
  for (let i = 0; i < 10; i++) {
    if (failures) await service.fail("/share_sync", 503, failures);
    Share.sync(key, { n: 2 * i });
    Share.sync(key, { n: 2 * i + 1 }); // the first is in flight: this one may be held
    const t0 = performance.now();
    while (Share.stats().held > 0) await new Promise((r) => setTimeout(r, 1));
    runs.push(performance.now() - t0);
    await Share.flush(10000);
  }
  runs.sort((a, b) => a - b);
  results[name] = { median_ms: +runs[5].toFixed(1), max_ms: +runs[9].toFixed(1) };
  await Share.shutdown(3000);
  await service.close();
}
console.log(JSON.stringify({ spool: withSpool, held_until_handed_over: results }));
