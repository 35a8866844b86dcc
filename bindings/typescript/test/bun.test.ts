// The behaviour suites in Bun (bun:test), through the package's "bun" export: bun:ffi: Share's
// (suite.mjs) and ShareNext's (next-suite.mjs); and the header checks (header.mjs).
import { test } from "bun:test";
import { existsSync } from "node:fs";
import { join } from "node:path";

import { defineHeaderChecks } from "./header.mjs";
import { defineLedgerSuite } from "./ledger-suite.mjs";
import { defineNextSuite } from "./next-suite.mjs";
import { defineSuite } from "./suite.mjs";

const own = join(import.meta.dir, "..", "libopencode_share.so");
const library =
  process.env.OPENCODE_SHARE_LIB ||
  (existsSync(own) ? own : join(import.meta.dir, "..", "..", "..", "target", "release", "libopencode_share.so"));

defineSuite({
  runtime: "bun",
  library,
  test: (name: string, fn: () => unknown, timeoutMs = 10_000) => test(name, fn as () => Promise<void>, timeoutMs),
});

defineNextSuite({
  test: (name: string, fn: () => unknown, timeoutMs = 10_000) => test(name, fn as () => Promise<void>, timeoutMs),
});

defineHeaderChecks({ test: (name: string, fn: () => unknown) => test(name, fn as () => Promise<void>) });

defineLedgerSuite({
  test: (name: string, fn: () => unknown, timeoutMs = 10_000) => test(name, fn as () => Promise<void>, timeoutMs),
});
