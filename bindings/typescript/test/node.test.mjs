// The behaviour suites in Node (node:test), through the package's "node" export: koffi: Share's
// (suite.mjs) and ShareNext's (next-suite.mjs); and the header checks (header.mjs).
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

import { defineHeaderChecks } from "./header.mjs";
import { defineLedgerSuite } from "./ledger-suite.mjs";
import { defineNextSuite } from "./next-suite.mjs";
import { defineSuite } from "./suite.mjs";

const here = dirname(fileURLToPath(import.meta.url));
const own = join(here, "..", "libopencode_share.so");
const library =
  process.env.OPENCODE_SHARE_LIB ||
  (existsSync(own) ? own : join(here, "..", "..", "..", "target", "release", "libopencode_share.so"));

defineSuite({
  // a plain `bun test` picks this file up too (Bun implements node:test): then it tests bun:ffi
  runtime: process.versions.bun ? "bun" : "node",
  library,
  test: (name, fn, timeoutMs = 10_000) => test(name, { timeout: timeoutMs }, fn),
});

defineNextSuite({ test: (name, fn, timeoutMs = 10_000) => test(name, { timeout: timeoutMs }, fn) });

defineHeaderChecks({ test: (name, fn) => test(name, fn) });

defineLedgerSuite({ test: (name, fn, timeoutMs = 10_000) => test(name, { timeout: timeoutMs }, fn) });
