// The shapes of the API's arguments and results (not events: event-types.ts).

/** share_init's configuration (README's table); every key is optional, unknown keys fail. */
export interface ShareConfig {
  /** Base URL of the share service; default: OPENCODE_API, else chosen from `version`. */
  url?: string;
  /** The host's installation version: "dev" or "0.0.0-…" picks the dev API. */
  version?: string;
  timeout_ms?: number;
  connect_timeout_ms?: number;
  concurrency?: number;
  max_retries?: number;
  retry_initial_ms?: number;
  retry_max_ms?: number;
  max_pending_bytes?: number;
  /** Least time between the starts of two requests of one key, under "next" of one item (default 25, under "next" 100; 0: no pause). */
  min_interval_ms?: number;
  user_agent?: string;
  allow_insecure?: boolean;
  /** "v1" (default): the legacy `/share_sync` protocol; "next": ShareNext's `/api/share` protocol. */
  protocol?: "v1" | "next";
  /** Under "next": an org account's access token (sent as `authorization: Bearer`, nowhere else). */
  token?: string;
  /** Under "next", with `token`: the org id (sent as `x-org-id`; the resource becomes `/api/shares`). */
  org_id?: string;
  /** The durable spool's folder (`spoolDir` in InitOptions says the same). */
  spool_dir?: string;
  spool_interval_ms?: number;
  spool_fsync_ms?: number;
  /**
   * Redaction before upload (docs/redaction.md), on unless false: on the library's worker,
   * credentials of well-known formats in any string of a content (cloud keys, GitHub/GitLab/npm/
   * PyPI tokens, OpenAI/Anthropic/OpenRouter/Google keys, Slack, Stripe and other service
   * tokens, private-key blocks, JWTs, passwords in URLs, `Authorization:` headers, `API_KEY=…`
   * assignments) become `[redacted: RULE-ID]`; stats count them (`redacted`) and one `redacted`
   * event per content names the rules, never the values. NOT redacted: paths, user and host
   * names, e-mail addresses and other personal data, and credentials of no known format or
   * context (a bare random password in prose).
   */
  redact?: boolean;
  /**
   * Extra rules, id (1 to 64 of a-z 0-9 - _) to a regex in Rust `regex` syntax; group 1, if
   * any, is what is replaced. For every user instead: a rule in src/redact/ours.toml.
   */
  redact_patterns?: Record<string, string>;
  /** Values never redacted (compared with what a rule would replace), e.g. documented examples. */
  redact_allow?: string[];
}

/** Hands `sync` to the host's storage events; may return a function that unsubscribes. */
export type Subscribe = (sync: (key: string, content: unknown) => void) => unknown;

export interface InitOptions extends ShareConfig {
  /** The native library file; see README for the places looked at without it. */
  libraryPath?: string;
  /**
   * The durable spool's folder (share_init's `spool_dir`): what a crash or an exit without
   * shutdown left unsent is sent by the next init on it. With a spool, `sync` hands every write
   * to the library at once instead of holding it while the key is busy (README: Durability).
   */
  spoolDir?: string;
  /**
   * Called once after the library started, with a function to call for every storage write.
   * Whatever function it returns is called by `shutdown` to unsubscribe.
   */
  subscribe?: Subscribe;
}

/**
 * What `create` resolves to: the library's answer as given. `id` is there only when the
 * protocol's share records carry one (the legacy protocol's do not).
 */
export interface ShareInfo {
  id?: string;
  url: string;
  secret: string;
}

/**
 * One share of the ledger (`list()`, share_list): every share the library created or was told
 * of, kept (with `spool_dir`, across runs) until the service confirmed its deletion. Never its
 * secret: the ledger keeps that in the spool file only, and `removeKnown` uses it there.
 */
export interface LedgerEntry {
  session: string;
  /** The share's id on the service (under v1 the last 8 characters of the session id). */
  id: string;
  /** The share's page; null if never known. */
  url: string | null;
  /** When the library first knew the share, ms since the Unix epoch; null if unknown. */
  created: number | null;
  /** When the service last accepted a content of it, ms since the Unix epoch; null if never. */
  synced: number | null;
  /** "removing": its removal was asked for and the service has not confirmed it (it is sent again at the next init). */
  state: "shared" | "removing";
  /** Where it lives; null for a share an older spool kept. */
  service: string | null;
  protocol: "v1" | "next" | null;
}

/** `stats()`: the library's counters; after shutdown, the last run's final figures. */
export interface ShareStats {
  running: boolean;
  url: string;
  queued: number;
  sent: number;
  coalesced: number;
  retried: number;
  failed: number;
  dropped: number;
  rejected: number;
  ignored: number;
  pending_keys: number;
  pending_bytes: number;
  in_flight: number;
  shares: number;
  events_lost: number;
  /** Sync requests sent (under "next" one carries many items). */
  requests: number;
  /** The protocol the library speaks. */
  protocol: "v1" | "next";
  /** Contents `sync` holds, unserialised, until their key's earlier content settles. */
  held: number;
  /** The durable spool's figures (README: Durability); null without a spool. */
  spool?: Record<string, number> | null;
  /** Credentials replaced by a marker (each upload of a content counts its own). */
  redacted: number;
  /** The service as the library sees it: "down" while its outage gate is closed. */
  service: { state: "up" | "down"; for_ms: number | null };
  /** The append extension: appends sent, refused (sent again whole), bytes of acknowledged contents kept as their base. */
  appends: { sent: number; refused: number; acked_bytes: number };
}

/** Which copy of the library is in use. */
export interface LibraryInfo {
  backend: "bun:ffi" | "koffi";
  path: string;
  version: string;
}
