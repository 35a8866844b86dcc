// The plugin inside the real opencode (npm opencode-ai 1.18.33), headless, with the fake model
// and this repository's share server on loopback: `opencode run --share` leaves the share
// identical to `opencode export`; share "auto"; SIGKILL mid-answer, then a restart completes
// the share from the spool; `opencode serve`'s HTTP API (share, prompt with a live viewer in
// Chromium, unshare, delete) and `opencode import` of our URL.

import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, test } from "node:test";

import { differences } from "./compare.mjs";
import { startModel } from "./fake-model.mjs";
import { exportSession, makeProject, opencode, prompt, startProxy, startServe, startServer, until } from "./harness.mjs";
import { measureLive } from "./live.mjs";

let model;
let server;
let proxy;
const projects = [];

before(async () => {
  model = await startModel();
  server = await startServer();
  proxy = await startProxy(server.url);
});

after(async () => {
  await model?.close();
  await proxy?.close();
  await server?.close();
  if (!process.env.KEEP) for (const p of projects) p.cleanup();
});

function project(options = {}) {
  const p = makeProject({ modelUrl: model.url, pluginOptions: { url: proxy.url }, ...options });
  projects.push(p);
  return p;
}

/** The session id and share URL that `opencode run --print-logs` printed. */
function runOutput(r) {
  const sessionID = /sessionID=(ses_\w+)/.exec(r.stderr)?.[1];
  const url = /~\s+(http:\/\/127\.0\.0\.1:\d+\/(?:share|s)\/[\w-]+)/.exec(r.stdout + r.stderr)?.[1];
  return { sessionID, url, shareID: url?.split("/").pop() };
}

test("opencode run --share: the share holds exactly what opencode export holds, the URL is this server's", async () => {
  model.setPlan({ words: 8, delayMs: 2, tool: "hello.txt", hold: false });
  const p = project();
  const r = await opencode(p, ["run", "--share", "--print-logs", "read hello.txt"]);
  assert.equal(r.code, 0, r.stderr.slice(-3000));
  const { sessionID, url, shareID } = runOutput(r);
  assert.ok(sessionID, "a session id in the log");
  assert.ok(url?.startsWith(`${server.url}/share/`), `the printed share URL is the server's: ${url}\n${r.stdout.slice(-500)}`);
  const exported = await exportSession(p, sessionID);
  const got = await server.data(shareID);
  assert.equal(got.status, 200);
  assert.deepEqual(differences(exported, got.items), []);
  // the answer's text and the tool call went (the real CLI alone loses them)
  const texts = got.items.filter((i) => i.type === "part" && i.data.type === "text").map((i) => i.data.text).join(" ");
  assert.match(texts, /wa7/);
  assert.ok(got.items.some((i) => i.type === "part" && i.data.type === "tool" && i.data.tool === "read"), "the read tool call");
  // opencode's own share client ("opencode/<version>") never reached the service: only the library did
  assert.deepEqual([...proxy.agents].filter((a) => a.startsWith("opencode/")), []);
  assert.ok(proxy.agents.size > 0);
});

test('share "auto" with opencode run: one share, identical to the export', async () => {
  model.setPlan({ words: 6, delayMs: 2, tool: undefined, hold: false });
  const p = project({ share: "auto" });
  const before = proxy.counts.create;
  const r = await opencode(p, ["run", "--print-logs", "say hi [no tool]"]);
  assert.equal(r.code, 0, r.stderr.slice(-3000));
  const { sessionID, shareID } = runOutput(r);
  assert.ok(shareID, `a share URL printed:\n${r.stdout.slice(-500)}`);
  const exported = await exportSession(p, sessionID);
  assert.deepEqual(differences(exported, (await server.data(shareID)).items), []);
  assert.equal(proxy.counts.create - before, 1, "one create reached the service");
});

/** The legacy share's data as items: {info, messages: {<id>: {...message, parts: [...]}}} unfolded. */
async function legacyItems(shareID) {
  const legacy = await (await fetch(`${server.url}/share_data?id=${shareID}`)).json();
  const items = [{ type: "session", data: legacy.info }];
  for (const { parts, ...message } of Object.values(legacy.messages)) {
    items.push({ type: "message", data: message }, ...parts.map((part) => ({ type: "part", data: part })));
  }
  return items;
}

test('protocol "v1": opencode run --share to the legacy API holds the export; a later process adds its turn', async () => {
  model.setPlan({ words: 6, delayMs: 2, tool: undefined, hold: false });
  // no spool: the later process knows the share from the plugin's share records alone
  const p = project({ pluginOptions: { url: proxy.url, protocol: "v1", spoolDir: false } });
  const r = await opencode(p, ["run", "--share", "--print-logs", "say hi [no tool]"]);
  assert.equal(r.code, 0, r.stderr.slice(-3000));
  const { sessionID, url, shareID } = runOutput(r);
  assert.ok(url?.startsWith(`${server.url}/s/`), `the legacy share URL printed: ${url}\n${r.stderr.split("\n").filter((l) => /share|ERROR|WARN/i.test(l)).join("\n").slice(-2000)}`);
  assert.deepEqual(differences(await exportSession(p, sessionID), await legacyItems(shareID)), []);
  // a second opencode process continues the shared session: its turn reaches the same share
  const again = await opencode(p, ["run", "--session", sessionID, "--print-logs", "say more [no tool]"]);
  assert.equal(again.code, 0, again.stderr.slice(-3000));
  const exported = await exportSession(p, sessionID);
  assert.ok(exported.messages.length >= 4, `two turns exported: ${exported.messages.length} messages`);
  assert.deepEqual(differences(exported, await legacyItems(shareID)), []);
});

test("SIGKILL mid-answer: the next start sends what the spool holds", async () => {
  model.setPlan({ words: 10, delayMs: 10, tool: undefined, hold: [5, 9] });
  const p = project();
  const trace = join(p.root, "trace.txt");
  p.env.OPENCODE_SHARE_PLUGIN_TRACE = trace;
  const textDeltas = () => (existsSync(trace) ? readFileSync(trace, "utf8").match(/message\.part\.delta text/g)?.length ?? 0 : 0);
  let proc;
  const running = opencode(p, ["run", "--share", "--print-logs", "count [no tool]"], { onSpawn: (c) => (proc = c) });
  await model.held;
  // the service stops answering: what streams from here on reaches only the spool
  server.pause();
  const second = model.held;
  model.release();
  await second; // wa0..wa8 written, the answer not finished: opencode is killed mid-answer
  // the plugin has had every chunk (the first one comes with the part's start), and the spool's
  // log on disk holds the last one: the kill comes after the moment the library made it durable
  assert.ok(await until(async () => textDeltas() >= 8, 30_000), `the plugin saw the chunks (${textDeltas()} text deltas)`);
  const log = join(p.root, "home", ".local", "state", "opencode-share", "spool", "spool.log");
  const spooled = () => existsSync(log) && readFileSync(log).includes("wa8");
  assert.ok(await until(async () => spooled(), 30_000), "the spool's log holds the answer's last chunk");
  proc.kill("SIGKILL");
  const r = await running;
  server.resume();
  assert.equal(r.signal, "SIGKILL");
  const { sessionID, shareID } = runOutput(r);
  assert.ok(shareID, "the share was created before the kill");
  const beforeRestart = await server.data(shareID);
  const textBefore = beforeRestart.items.filter((i) => i.type === "part" && i.data.type === "text").map((i) => i.data.text).join(" ");
  assert.doesNotMatch(textBefore, /wa8/, "the end of the answer never reached the service before the kill");
  // a restart (any opencode command that loads the plugin: export here) sends the spool's contents
  const exported = await exportSession(p, sessionID);
  const after = await until(async () => {
    const d = await server.data(shareID);
    return differences(exported, d.items, { streamed: true }).length === 0 ? d : undefined;
  }, 10_000);
  assert.ok(after, `the share holds the export's items after the restart: ${JSON.stringify(differences(exported, (await server.data(shareID)).items, { streamed: true }))}`);
  assert.match(after.items.filter((i) => i.type === "part" && i.data.type === "text").map((i) => i.data.text).join(" "), /wa8/);
  // and what opencode stored that the plugin never had (a title generated in the last moment) came
  // from opencode's database: the killed process's marker named the session
  assert.match(readFileSync(trace, "utf8"), /start: 1 sessions of killed processes, [1-9]\d* items/);
});

test("opencode serve: share, a live prompt seen in Chromium, unshare, share again, import, delete", async () => {
  const p = project();
  const serve = await startServe(p);
  const { api } = serve;
  try {
    const session = await api("POST", "/session", {});
    // a turn before the share: /share uploads what the session holds already
    model.setPlan({ words: 4, delayMs: 2, tool: undefined, hold: false, tag: "" });
    await prompt(api, session.id, "before the share [no tool]");
    const shared = await api("POST", `/session/${session.id}/share`);
    const url = shared.share?.url;
    assert.ok(url?.startsWith(`${server.url}/share/`), `the share URL is the server's: ${url}`);
    const shareID = url.split("/").pop();

    // a streamed answer while a viewer watches: every chunk's way to the viewer's DOM is timed
    model.setPlan({ words: 40, delayMs: 40, tool: "hello.txt", hold: false, tag: "l" });
    const syncsBefore = proxy.counts.sync;
    const live = await measureLive(`${server.url}/share/${shareID}`, model, () => prompt(api, session.id, "read hello.txt"));
    const syncs = proxy.counts.sync - syncsBefore;
    console.log(`# live: ${live.latencies.length} chunks, p50 ${live.p50} ms, p90 ${live.p90} ms, p99 ${live.p99} ms, max ${live.max} ms; ${syncs} sync requests (min_interval_ms 50) for a ${live.spanMs} ms answer`);
    assert.equal(live.missing.length, 0, `chunks never seen in the viewer: ${live.missing.join(" ")}`);

    const asExport = async () => ({ info: await api("GET", `/session/${session.id}`), messages: await api("GET", `/session/${session.id}/message`) });
    const converged = await until(async () => differences(await asExport(), (await server.data(shareID)).items).length === 0, 10_000);
    assert.ok(converged, `the share matches the session: ${JSON.stringify(differences(await asExport(), (await server.data(shareID)).items))}`);

    // opencode import of our URL rebuilds the session elsewhere
    const other = project();
    const imported = await opencode(other, ["import", url]);
    assert.equal(imported.code, 0, imported.stderr.slice(-2000));
    const again = await exportSession(other, session.id);
    assert.deepEqual(again.messages.map((m) => m.info.id), (await asExport()).messages.map((m) => m.info.id));

    // unshare: gone from the service; share again (this server derives the id from the session:
    // the same id, a new share); delete the session: gone too
    await api("DELETE", `/session/${session.id}/share`);
    assert.equal((await server.data(shareID)).status, 404, "unshare deleted the share");
    const reshared = await api("POST", `/session/${session.id}/share`);
    const shareID2 = reshared.share.url.split("/").pop();
    assert.ok(await until(async () => differences(await asExport(), (await server.data(shareID2)).items).length === 0, 10_000), "the new share holds the session");
    await api("DELETE", `/session/${session.id}`);
    assert.equal((await until(async () => ((await server.data(shareID2)).status === 404 ? 404 : undefined), 10_000)) ?? 200, 404, "deleting the session deleted its share");
  } finally {
    await serve.stop();
  }
});
