// opencode's own share clients, unchanged in algorithm (faithful rewrites in benches/compare/
// baseline/), against the server, run in real Bun: the legacy `Share` module and `ShareNext`,
// plain and as an org account.
import { afterAll, beforeAll, expect, test } from "bun:test";
import * as Share from "../../../../benches/compare/baseline/share.ts";
import * as ShareNext from "../../../../benches/compare/baseline/share-next.ts";
import { fixture, newest, startServer } from "./server.mjs";

const writes = fixture();
const sid: string = writes[0].content.id;
const short = sid.slice(-8);
let server: { url: string; stop(): Promise<void> };

beforeAll(async () => {
  server = await startServer([], { OPENCODE_SHARE_CREATE_TOKEN: "" });
});
afterAll(async () => {
  await server.stop();
});

test("the legacy Share module shares the sample session and removes it", async () => {
  Share.init(server.url);
  const created = await Share.create(sid);
  expect(created.url).toBe(`${server.url}/s/${short}`);
  Share.setShare(sid, created);
  for (const w of writes) await Share.sync(w.key, w.content);
  await Share.drain();
  const data = await (await fetch(`${server.url}/share_data?id=${short}`)).json();
  const want = newest(writes);
  expect(data.info).toEqual(want.get(`session/info/${sid}`));
  let parts = 0;
  for (const [key, content] of want) {
    const [, sub, , mid] = key.split("/");
    if (sub === "message") expect({ ...data.messages[content.id], parts: undefined }).toEqual({ ...content, parts: undefined });
    if (sub === "part") {
      expect(data.messages[mid].parts).toContainEqual(content);
      parts++;
    }
  }
  expect(parts).toBeGreaterThan(3);
  expect(await Share.remove(sid, created.secret)).toEqual({});
  expect((await fetch(`${server.url}/share_data?id=${short}`)).status).toBe(404);
});

/** The fixture as ShareNext's events: session.updated, message.updated, message.part.updated. */
function replay() {
  for (const w of writes) {
    const sub = w.key.split("/")[1];
    if (sub === "info") ShareNext.sessionUpdated(w.content);
    else if (sub === "message") ShareNext.messageUpdated(w.content, w.content.role === "user" ? { id: "claude-sonnet-4", name: "Claude Sonnet 4" } : undefined);
    else if (sub === "part") ShareNext.partUpdated(w.content);
  }
}

async function checkNext(base: string, resource: string, id: string, init?: RequestInit) {
  const items: { type: string; data: any }[] = await (await fetch(`${base}/api/${resource}/${id}/data`, init)).json();
  const want = newest(writes);
  expect(items.find((i) => i.type === "session")?.data).toEqual(want.get(`session/info/${sid}`));
  for (const [key, content] of want) {
    const sub = key.split("/")[1];
    if (sub === "part") expect(items.find((i) => i.type === "part" && i.data.id === content.id)?.data).toEqual(content);
    if (sub === "message") expect(items.find((i) => i.type === "message" && i.data.id === content.id)?.data).toEqual(content);
  }
  expect(items.find((i) => i.type === "model")?.data).toEqual([{ id: "claude-sonnet-4", name: "Claude Sonnet 4" }]);
}

test("ShareNext shares the sample session in 1 s batches, and removes it", async () => {
  ShareNext.init(server.url);
  const created = await ShareNext.create(sid);
  expect(created.id).toBe(short);
  expect(created.url).toBe(`${server.url}/share/${short}`);
  replay();
  await ShareNext.drain();
  expect(ShareNext.log.warn + ShareNext.log.error).toBe(0);
  await checkNext(server.url, "share", short);
  await ShareNext.remove(sid);
  expect((await fetch(`${server.url}/api/share/${short}/data`)).status).toBe(404);
  ShareNext.dispose();
}, 20_000);

test("ShareNext as an org account (/api/shares, Bearer, x-org-id) against a server with a create token", async () => {
  const guarded = await startServer([], { OPENCODE_SHARE_CREATE_TOKEN: "org-token-for-tests" });
  try {
    ShareNext.init(guarded.url);
    await expect(ShareNext.create(sid)).rejects.toThrow("401");
    ShareNext.init(guarded.url, { org: { token: "org-token-for-tests", orgID: "org_1" } });
    const created = await ShareNext.create(sid);
    replay();
    await ShareNext.drain();
    await checkNext(guarded.url, "shares", created.id);
    await ShareNext.remove(sid);
    expect((await fetch(`${guarded.url}/api/shares/${created.id}/data`)).status).toBe(404);
  } finally {
    ShareNext.dispose();
    await guarded.stop();
  }
}, 20_000);
