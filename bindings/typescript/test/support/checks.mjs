// What both behaviour suites (suite.mjs: Share, next-suite.mjs: ShareNext) check with: bounded
// waits, ShareError assertions, and the test configuration of the library.

import assert from "node:assert/strict";

import { ShareError } from "opencode-share";

/** Waits until `condition()` is true (or resolves true), polling every 5 ms; fails after `ms`. */
export async function until(condition, ms = 3000, what = "condition") {
  const deadline = Date.now() + ms;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** Asserts that `fn` throws (or rejects with) a ShareError with `code`; returns it. */
export async function failsWith(code, fn) {
  let error;
  try {
    await fn();
  } catch (e) {
    error = e;
  }
  assert.ok(error, `expected a ${code} error, got none`);
  assert.ok(error instanceof ShareError, `expected a ShareError, got ${error}`);
  assert.ok(error instanceof Error);
  assert.equal(error.code, code, error.message);
  assert.equal(error.name, "ShareError");
  assert.equal(typeof error.status, "number");
  assert.ok(error.message.length > 0);
  return error;
}

/** The library's configuration for a service on loopback: short timeouts and backoff, plus `extra`. */
export function config(service, extra = {}) {
  return { url: service.url, timeout_ms: 3000, connect_timeout_ms: 1000, retry_initial_ms: 5, retry_max_ms: 50, ...extra };
}
