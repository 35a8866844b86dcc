// Compiled, never run (tsc -p tsconfig.test.json): the shipped .d.ts serve a host written like
// opencode, through the package's name.
import { Share, ShareError, create, init, on, type ShareEvent, type ShareStats } from "opencode-share";

declare const Bus: {
  subscribe<T>(def: { type: string; properties: T }, cb: (e: { properties: T }) => void): () => void;
};
declare const Storage: { Event: { Write: { type: string; properties: { key: string; content: unknown } } } };

export async function host(): Promise<void> {
  Share.init({
    url: "http://127.0.0.1:8787",
    timeout_ms: 1000,
    subscribe: (fn) => Bus.subscribe(Storage.Event.Write, (e) => fn(e.properties.key, e.properties.content)),
  });
  Share.sync("session/info/ses_1", { title: "x" });
  const { url, secret }: { url: string; secret: string } = await Share.create("ses_1");
  await Share.remove("ses_1", secret);
  await Share.flush(1000);
  const stats: ShareStats = Share.stats();
  const base: string | undefined = Share.URL;
  const off = Share.on("synced", (e) => {
    const key: string = e.key;
    const status: number = e.status;
    void [key, status];
  });
  off();
  on("*", (e: ShareEvent) => {
    if (e.type === "dropped") void e.reason;
  });
  on("error", (e) => void e.error.code);
  try {
    init({ libraryPath: "/x" });
    await create("ses_2");
  } catch (e) {
    if (e instanceof ShareError) {
      const code: "SHARE_ERR_TIMEOUT" | string = e.code;
      void [code, e.status, e.message];
    }
  }
  const info: Share.Info = { url, secret };
  void [stats, base, info];
  await Share.shutdown(1000);
}

// A host's share-next.ts written against ShareNext, as opencode wires its Bus and session_share table.
import { ShareNext, type ShareNextItem, type ShareRecord, type ShareStore } from "opencode-share";

declare const NextBus: { subscribe(def: { type: string }, cb: (e: { type: "message.part.updated"; properties: { part: { id: string; sessionID: string; messageID: string; text: string } } }) => void): () => void };
declare const Db: { row(sessionID: string): ShareRecord | undefined };
declare const Provider: { getModel(providerID: string, modelID: string): Promise<{ id: string }> };

export async function nextHost(): Promise<void> {
  const shares: ShareStore = { get: (sessionID) => Db.row(sessionID) };
  ShareNext.init({
    url: "http://127.0.0.1:8787",
    token: "t",
    org_id: "o",
    shares,
    model: (providerID, modelID) => Provider.getModel(providerID, modelID),
    snapshot: async (sessionID): Promise<ShareNextItem[]> => [{ type: "session", data: { id: sessionID } }],
    subscribe: (on) => {
      const offs = ShareNext.EVENTS.map((type) => NextBus.subscribe({ type }, on));
      return () => offs.forEach((off) => off());
    },
  });
  const { id, url, secret }: ShareRecord = await ShareNext.create("ses_1");
  ShareNext.sync("ses_1", [
    { type: "part", data: { id: "prt_1", messageID: "msg_1", text: "x" } },
    { type: "model", data: [{ id: "m" }] },
  ]);
  await ShareNext.remove("ses_1");
  const base: string | undefined = await ShareNext.url();
  const item: ShareNext.Data = { type: "session_diff", data: [] };
  void [id, url, secret, base, item, ShareNext.stats().protocol];
  await ShareNext.shutdown(1000);
}
