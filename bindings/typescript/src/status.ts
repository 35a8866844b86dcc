// The library's statuses as the binding reports them: share_status names and numbers
// (include/opencode_share.h; test/header.mjs checks them against it) and ShareError.

import type { Native } from "./native.js";

/** share_status values, by number. */
export const STATUS = [
  "SHARE_OK",
  "SHARE_ERR_INVALID_ARGUMENT",
  "SHARE_ERR_NOT_INITIALIZED",
  "SHARE_ERR_ALREADY_INITIALIZED",
  "SHARE_ERR_NETWORK",
  "SHARE_ERR_HTTP_STATUS",
  "SHARE_ERR_BAD_RESPONSE",
  "SHARE_ERR_TIMEOUT",
  "SHARE_ERR_QUEUE_FULL",
  "SHARE_ERR_PANIC",
] as const;

/** A share_status name, as in include/opencode_share.h. */
export type StatusName = (typeof STATUS)[number];

/**
 * What a failure's `code` can be: a share_status name, or SHARE_ERR_LIBRARY when the native
 * library could not be found or loaded (its `status` is then -1).
 */
export type ShareErrorCode = Exclude<StatusName, "SHARE_OK"> | "SHARE_ERR_LIBRARY";

/** The number of a share_status name (its index in STATUS). */
const code = (name: StatusName): number => STATUS.indexOf(name);

export const OK = code("SHARE_OK");
export const INVALID_ARGUMENT = code("SHARE_ERR_INVALID_ARGUMENT");
export const NOT_INITIALIZED = code("SHARE_ERR_NOT_INITIALIZED");
export const ALREADY_INITIALIZED = code("SHARE_ERR_ALREADY_INITIALIZED");
export const BAD_RESPONSE = code("SHARE_ERR_BAD_RESPONSE");
export const TIMEOUT = code("SHARE_ERR_TIMEOUT");
export const QUEUE_FULL = code("SHARE_ERR_QUEUE_FULL");
export const PANIC = code("SHARE_ERR_PANIC");
/** Not a share_status: the library could not be found or loaded. */
export const LIBRARY = -1;

/** Every failure of this package: `code` names the library's status, `message` is its message. */
export class ShareError extends Error {
  readonly code: ShareErrorCode;
  readonly status: number;

  constructor(status: number, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "ShareError";
    this.status = status;
    this.code = status === LIBRARY ? "SHARE_ERR_LIBRARY" : ((STATUS[status] ?? `SHARE_ERR_${status}`) as ShareErrorCode);
  }
}

/** A failing call's error, with share_last_error()'s message (read right after the call). */
export function failure(n: Native, status: number): ShareError {
  return new ShareError(status, n.lastError() || `${STATUS[status] ?? status}`);
}

export function notInitialized(): ShareError {
  return new ShareError(NOT_INITIALIZED, "the library is not running: call Share.init first");
}

export function invalid(message: string, cause?: unknown): ShareError {
  return new ShareError(INVALID_ARGUMENT, message, cause === undefined ? undefined : { cause });
}

/** `e` as a ShareError (a non-ShareError thrown by a host's value becomes INVALID_ARGUMENT). */
export function asShareError(e: unknown): ShareError {
  return e instanceof ShareError ? e : new ShareError(INVALID_ARGUMENT, String(e), { cause: e });
}
