// Checks the binding makes itself before calling the library (same status, its own message).

import { invalid } from "./status.js";

const MAX_U32 = 0xffff_ffff;

/** A timeout in ms as the library takes it: a number >= 0, floored, capped at u32. */
export function timeoutArg(name: string, value: number): number {
  if (typeof value !== "number" || Number.isNaN(value) || value < 0) {
    throw invalid(`${name} must be a number of milliseconds >= 0, not ${String(value)}`);
  }
  return Math.min(Math.floor(value), MAX_U32);
}

/** A string argument: a JS string without NUL (the library takes NUL-terminated UTF-8). */
export function textArg(name: string, value: unknown): string {
  if (typeof value !== "string") throw invalid(`${name} must be a string, not ${value === null ? "null" : typeof value}`);
  if (value.includes("\0")) throw invalid(`${name} contains a NUL character`);
  return value;
}
