// The events' shapes. EVENT_TYPES and DROP_REASONS are the library's (src/events.rs, documented
// at share_events_take in include/opencode_share.h); test/header.mjs checks them against both,
// and the type checks at the end keep the interfaces in step with the lists.

import type { ShareError } from "./status.js";

/** The `type` of every event the library reports. */
export const EVENT_TYPES = [
  "synced",
  "retry",
  "failed",
  "dropped",
  "redacted",
  "unshared",
  "refused",
  "resumed",
  "outage",
  "recovered",
  "lost",
  "spool",
] as const;
export type EventType = (typeof EVENT_TYPES)[number];

/** Why the library gave contents up (a `dropped` event's `reason`). */
export const DROP_REASONS = [
  "rejected",
  "too_large",
  "unsafe",
  "panic",
  "unshared",
  "removed",
  "shutdown",
  "queue_full",
] as const;

/** The service accepted the newest content of `key` (the original's "synced" log line). */
export interface SyncedEvent {
  type: "synced";
  key: string;
  status: number;
}
/** An attempt failed and will be retried after `delay_ms`. */
export interface RetryEvent {
  type: "retry";
  key: string;
  retry: number;
  delay_ms: number;
  status?: number;
  error?: string;
}
/** An attempt failed for good; a `dropped` event follows. */
export interface FailedEvent {
  type: "failed";
  key: string;
  status?: number;
  error?: string;
}
/** Contents given up, and why. */
export interface DroppedEvent {
  type: "dropped";
  /** `invalid` (the binding's own): a held content that could not be serialised when it was handed over (see `error`). */
  reason: (typeof DROP_REASONS)[number] | "invalid";
  key?: string;
  session?: string;
  count: number;
  /** The content's size, for `too_large`. */
  bytes?: number;
  /** Why, for `unsafe`, `panic` and `invalid`. */
  error?: string;
}
/** Credentials in `key`'s content were replaced by markers before upload: the rules that
 * matched (never the values) and how many. */
export interface RedactedEvent {
  type: "redacted";
  key: string;
  rules: string[];
  count: number;
}
/** The service answered 401/403/404 for `session`: its share is forgotten. */
export interface UnsharedEvent {
  type: "unshared";
  session: string;
  status: number;
}
/** The service answered `count` 500s in a row for `session`'s share: it counts as refused (its
 * contents wait, flushes stop waiting for them, one request per `retry_max_ms` probes it). */
export interface RefusedEvent {
  type: "refused";
  session: string;
  count: number;
}
/** A request of refused `session`'s share succeeded: its contents go again. */
export interface ResumedEvent {
  type: "resumed";
  session: string;
}
/** The service failed `failures` requests in a row: it counts as down; one request at a time
 * probes it until one succeeds, and writes keep coalescing. */
export interface OutageEvent {
  type: "outage";
  failures: number;
}
/** A request succeeded after an outage of `duration_ms`; `held_back`: requests it did not make. */
export interface RecoveredEvent {
  type: "recovered";
  duration_ms: number;
  held_back: number;
}
/** `count` events did not fit in the library's buffer (the JS thread was busy for long). */
export interface LostEvent {
  type: "lost";
  count: number;
}
/** The durable spool: init cut `skipped_bytes` of damage off its end, or writing it failed (`error`, retried). */
export interface SpoolEvent {
  type: "spool";
  skipped_bytes?: number;
  error?: string;
}
/** Every event the library reports. */
export type ShareEvent =
  | SyncedEvent
  | RetryEvent
  | FailedEvent
  | DroppedEvent
  | RedactedEvent
  | UnsharedEvent
  | RefusedEvent
  | ResumedEvent
  | OutageEvent
  | RecoveredEvent
  | LostEvent
  | SpoolEvent;

/** A storage write handed over through `subscribe` that `sync` refused. */
export interface SyncErrorEvent {
  type: "error";
  key: unknown;
  error: ShareError;
}

export interface ShareEventMap {
  synced: SyncedEvent;
  retry: RetryEvent;
  failed: FailedEvent;
  dropped: DroppedEvent;
  redacted: RedactedEvent;
  unshared: UnsharedEvent;
  refused: RefusedEvent;
  resumed: ResumedEvent;
  outage: OutageEvent;
  recovered: RecoveredEvent;
  lost: LostEvent;
  spool: SpoolEvent;
  /** Every library event. */
  "*": ShareEvent;
  /** A write from `subscribe` that failed (without a listener: a process warning). */
  error: SyncErrorEvent;
}

export type ShareEventName = keyof ShareEventMap;

/** What `on` accepts. */
export const EVENT_NAMES: readonly ShareEventName[] = [...EVENT_TYPES, "*", "error"];

// Compile-time checks: every listed type has an interface and a name in ShareEventMap, and
// every interface a listed type.
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const everyTypeListed: Same<ShareEvent["type"], EventType> = true;
const everyTypeNamed: Same<Exclude<ShareEventName, "*" | "error">, EventType> = true;
void [everyTypeListed, everyTypeNamed];
