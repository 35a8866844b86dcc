// The plugin's options (opencode.json: ["opencode-share-plugin", { ... }]), with their defaults
// and the environment variables that may set them, checked once at start.

import { homedir } from "node:os";
import { join } from "node:path";

export interface PluginOptions {
  /** The share service's base URL. Default: opencode.json's enterprise.url, else https://opncd.ai. */
  url?: string;
  /** "next" (opncd.ai and this repository's server; the default) or "v1" (a legacy service). */
  protocol?: "next" | "v1";
  /** The durable spool's folder; false turns it off. Default: $XDG_STATE_HOME/opencode-share/spool. */
  spoolDir?: string | false;
  /** Shortest time between two sync requests of one share (the library's min_interval_ms; default 50). */
  minIntervalMs?: number;
  /** How long dispose may hold opencode's exit to send what is queued (default 5000 ms). */
  flushTimeoutMs?: number;
  /** The library file (default: the opencode-share package's lookup). */
  libraryPath?: string;
  /** An org account's token and org id ("next": /api/shares with authorization and x-org-id). */
  token?: string;
  orgId?: string;
  /** Other configuration keys of the library, passed as given (timeout_ms, max_retries, ...). */
  library?: Record<string, unknown>;
}

export interface Settings {
  url: string | undefined;
  protocol: "next" | "v1";
  stateDir: string;
  spoolDir: string | undefined;
  minIntervalMs: number;
  flushTimeoutMs: number;
  libraryPath: string | undefined;
  token: string | undefined;
  orgId: string | undefined;
  library: Record<string, unknown>;
}

const KEYS = new Set(["url", "protocol", "spoolDir", "minIntervalMs", "flushTimeoutMs", "libraryPath", "token", "orgId", "library"]);

function count(name: string, value: unknown, fallback: number): number {
  if (value === undefined || value === "") return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 600_000) throw new Error(`opencode-share: ${name} must be a whole number of milliseconds (0 to 600000), not ${JSON.stringify(value)}`);
  return n;
}

/** The settings of `options` (else OPENCODE_SHARE_* variables, else defaults); throws on a bad one. */
export function settings(options: PluginOptions = {}, env: NodeJS.ProcessEnv = process.env): Settings {
  if (options === null || typeof options !== "object") throw new Error("opencode-share: the plugin's options must be an object");
  for (const key of Object.keys(options)) {
    if (!KEYS.has(key)) throw new Error(`opencode-share: unknown option ${JSON.stringify(key)} (known: ${[...KEYS].join(", ")})`);
  }
  const protocol = options.protocol ?? (env.OPENCODE_SHARE_PROTOCOL as "next" | "v1" | undefined) ?? "next";
  if (protocol !== "next" && protocol !== "v1") throw new Error(`opencode-share: protocol must be "next" or "v1", not ${JSON.stringify(protocol)}`);
  const url = options.url ?? env.OPENCODE_SHARE_URL;
  if (url !== undefined && !/^https?:\/\/[^/]/.test(url)) throw new Error(`opencode-share: url must be an http(s) URL, not ${JSON.stringify(url)}`);
  const state = join(env.XDG_STATE_HOME || join(homedir(), ".local", "state"), "opencode-share");
  const spool = options.spoolDir ?? env.OPENCODE_SHARE_SPOOL_DIR;
  return {
    url: url?.replace(/\/+$/, ""),
    protocol,
    stateDir: state,
    spoolDir: spool === false || spool === "off" ? undefined : (spool ?? join(state, "spool")),
    minIntervalMs: count("minIntervalMs", options.minIntervalMs ?? env.OPENCODE_SHARE_MIN_INTERVAL_MS, 50),
    flushTimeoutMs: count("flushTimeoutMs", options.flushTimeoutMs, 5000),
    libraryPath: options.libraryPath ?? undefined,
    token: options.token,
    orgId: options.orgId,
    library: options.library ?? {},
  };
}
