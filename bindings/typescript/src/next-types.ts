// The shapes of ShareNext's API (share-next.ts): its items, the host's bus events, the share
// records a host stores, and init's options.

import type { InitOptions } from "./types.js";

/** A share as ShareNext's service hands it out and a host stores it (opencode's session_share row). */
export interface ShareRecord {
  id: string;
  url: string;
  secret: string;
}

/** An SDK object as the host has it: any fields (an `any` index signature, so interfaces fit). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Fields = { [field: string]: any };

/**
 * One item of a sync, as opencode's `Share.Data` union: `data` is the host's SDK object, sent as
 * given. The ids named here make the item's key; every other field is the host's.
 */
export type ShareNextItem =
  | { type: "session"; data: Fields }
  | { type: "message"; data: Fields & { id: string } }
  | { type: "part"; data: Fields & { id: string; messageID: string } }
  | { type: "session_diff"; data: readonly unknown[] }
  | { type: "model"; data: readonly unknown[] };

export type ShareNextItemType = ShareNextItem["type"];

/**
 * A payload of the host's bus (`{ type, properties }`, as opencode's Bus hands it to a
 * subscriber). Loosely typed, so that a host's own event types fit; checked when it arrives.
 */
export interface BusEvent {
  type: string;
  properties?: unknown;
}

/**
 * What the events ShareNext listens to carry (opencode's SDK events). Others are ignored.
 *   session.updated       -> a `session` item        session.diff  -> a `session_diff` item
 *   message.updated       -> a `message` item (and, for a user message with `model`, a `model`
 *                            item when `ShareNextOptions.model` resolves it)
 *   message.part.updated  -> a `part` item           session.deleted -> remove(info.id)
 */
export type ShareNextBusEvent =
  | { type: "session.updated"; properties: { info: { id: string } } }
  | {
      type: "message.updated";
      properties: { info: { id: string; sessionID: string; role?: string; model?: { providerID: string; modelID: string } } };
    }
  | { type: "message.part.updated"; properties: { part: { id: string; sessionID: string; messageID: string } } }
  | { type: "session.diff"; properties: { sessionID: string; diff: readonly unknown[] } }
  | { type: "session.deleted"; properties: { info: { id: string } } };

/** The host's store of share records (opencode's session_share table), all calls synchronous. */
export interface ShareStore {
  /** The record stored for `sessionID`, if any: read once per session per run, before its first sync. */
  get(sessionID: string): ShareRecord | undefined;
  /** Called after `create` succeeded. */
  set?(sessionID: string, record: ShareRecord): void;
  /** Called after `remove`'s DELETE succeeded (a failed one keeps the record, so it can be retried). */
  delete?(sessionID: string): void;
}

/** Hands the bus handler to the host; may return a function that unsubscribes (called by shutdown). */
export type SubscribeBus = (on: (event: BusEvent) => void) => unknown;

export interface ShareNextOptions extends Omit<InitOptions, "subscribe" | "protocol"> {
  /** Always "next" (the default here); anything else is refused. */
  protocol?: "next";
  /** Called once after the library started, with the function to call for every bus event. */
  subscribe?: SubscribeBus;
  /** The host's share records: how a run learns the shares created by earlier runs. */
  shares?: ShareStore;
  /** Resolves a user message's model (opencode's Provider.getModel) for the `model` item. */
  model?: (providerID: string, modelID: string) => unknown;
  /**
   * Everything a session holds (its session, messages, parts, diff, models: opencode's full
   * sync), queued by `create` before it resolves.
   */
  snapshot?: (sessionID: string) => Iterable<ShareNextItem> | Promise<Iterable<ShareNextItem>>;
}
