// The viewer page in real headless Chromium (Debian's /usr/bin/chromium through playwright-core):
// it follows a streamed part stage by stage, hostile content in any field never runs, and the
// sample session reads well with and without JavaScript.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { chromium } from "playwright-core";
import { chromiumArgs, fixture, legacy, startServer, uploadLegacy } from "./server.mjs";

let server, browser;
before(async () => {
  server = await startServer();
  browser = await chromium.launch({ executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium", args: chromiumArgs });
});
after(async () => {
  await browser?.close();
  await server?.stop();
});

let n = 0;
const sessionID = () => `ses_browser${process.pid}x${String(++n).padStart(4, "0")}`;
/** Bounded wait for the page to show `text` (generous: speed is measured in the benchmark). */
const shows = (page, selector, text) =>
  page.waitForFunction(([s, t]) => document.querySelector(s)?.textContent.includes(t), [selector, text], { timeout: 10_000 });

test("a page open while a client streams a part shows each stage, live", async () => {
  const sid = sessionID();
  const short = sid.slice(-8);
  const created = await legacy(server.url, "/share_create", { sessionID: sid });
  const secret = created.body.secret;
  const sync = async (key, content) => {
    const r = await legacy(server.url, "/share_sync", { sessionID: sid, secret, key, content });
    assert.equal(r.status, 200);
  };
  await sync(`session/info/${sid}`, { id: sid, title: "Streaming" });
  await sync(`session/message/${sid}/msg_1`, { id: "msg_1", sessionID: sid, role: "assistant", modelID: "m" });
  const page = await browser.newPage();
  await page.goto(`${server.url}/s/${short}`);
  await shows(page, "#status", "live");
  await page.evaluate(() => { window.__sameDocument = true; });
  const text = (t) => ({ id: "prt_1", messageID: "msg_1", sessionID: sid, type: "text", text: t });
  for (const stage of ["Hel", "Hello wor", "Hello world, **streamed**"]) {
    await sync(`session/part/${sid}/msg_1/prt_1`, text(stage));
    await shows(page, '[id="p/msg_1/prt_1"]', stage.replace(/\*/g, ""));
  }
  assert.equal(await page.locator('[id="p/msg_1/prt_1"] strong').textContent(), "streamed");
  const tool = (status, extra = {}) => ({ id: "prt_2", messageID: "msg_1", sessionID: sid, type: "tool", tool: "read", callID: "c1", state: { status, ...extra } });
  await sync(`session/part/${sid}/msg_1/prt_2`, tool("pending"));
  await shows(page, '[id="p/msg_1/prt_2"] .status', "pending");
  await sync(`session/part/${sid}/msg_1/prt_2`, tool("running", { input: { filePath: "src/a.ts" } }));
  await shows(page, '[id="p/msg_1/prt_2"] .status', "running");
  await shows(page, '[id="p/msg_1/prt_2"] .tool-title', "src/a.ts");
  await sync(`session/part/${sid}/msg_1/prt_2`, tool("completed", { input: { filePath: "src/a.ts" }, output: "file contents", title: "src/a.ts" }));
  await shows(page, '[id="p/msg_1/prt_2"] .status', "completed");
  await shows(page, '[id="p/msg_1/prt_2"] .tool-output', "file contents");
  await sync(`session/info/${sid}`, { id: sid, title: "Streaming, renamed" });
  await shows(page, "#title", "renamed");
  assert.equal(await page.title(), "Streaming, renamed · opencode share");
  assert.ok(await page.evaluate(() => window.__sameDocument), "updated in place, not reloaded");
  // the order of parts is by id whatever the order of writes
  const ids = await page.$$eval('[id="ps/msg_1"] > .part', (els) => els.map((e) => e.id));
  assert.deepEqual(ids, ["p/msg_1/prt_1", "p/msg_1/prt_2"]);
  // delete: the open page says so and drops the content
  assert.equal((await legacy(server.url, "/share_delete", { sessionID: sid, secret })).status, 200);
  await shows(page, "#status", "deleted");
  assert.equal(await page.locator("#messages .part").count(), 0);
  await page.close();
});

const X = [
  `<img src=x onerror="window.__xss=(window.__xss||0)+1">`,
  `<script>window.__xss=(window.__xss||0)+1</script>`,
  `"><svg onload="window.__xss=(window.__xss||0)+1">`,
  `'><iframe srcdoc="<script>parent.__xss=1</script>">`,
  `</textarea></pre></details><style>body{display:none}</style>`,
].join(" ");
const xlink = "[click](javascript:window.__xss=1) ![i](javascript:window.__xss=1) <a href=javascript:window.__xss=1>a</a>";

function hostileItems(sid) {
  const mid = `msg_${"x".repeat(4)}`;
  return [
    { type: "session", data: { id: sid, title: `T ${X}`, version: X, directory: X, time: { created: X } } },
    { type: "model", data: [{ id: X, name: X }] },
    { type: "message", data: { id: mid, sessionID: sid, role: X, modelID: X, providerID: X, cost: 1, tokens: { input: 1, output: 2 }, error: { name: X, data: { message: X } } } },
    { type: "message", data: { id: "msg_user", sessionID: sid, role: "user" } },
    { type: "part", data: { id: "prt_1", messageID: mid, sessionID: sid, type: "text", text: `# ${X}\n\n${X}\n\n${xlink}\n\n\`\`\`${X}\ncode\n\`\`\`` } },
    { type: "part", data: { id: "prt_2", messageID: mid, sessionID: sid, type: "reasoning", text: X } },
    { type: "part", data: { id: "prt_3", messageID: mid, sessionID: sid, type: "tool", tool: X, callID: X, state: { status: X, input: { [X]: X }, output: X, title: X, error: X } } },
    { type: "part", data: { id: "prt_4", messageID: mid, sessionID: sid, type: "file", mime: `image/png" onerror="window.__xss=1`, filename: X, url: `javascript:window.__xss=1` } },
    { type: "part", data: { id: "prt_5", messageID: mid, sessionID: sid, type: "file", mime: "image/svg+xml", filename: X, url: "data:image/svg+xml,<svg onload=window.__xss=1>" } },
    { type: "part", data: { id: "prt_6", messageID: mid, sessionID: sid, type: "step-finish", cost: X, tokens: { input: X } } },
    { type: "part", data: { id: "prt_7", messageID: mid, sessionID: sid, type: "patch", files: [X] } },
    { type: "part", data: { id: "prt_8", messageID: mid, sessionID: sid, type: "agent", name: X } },
    { type: "part", data: { id: "prt_9", messageID: mid, sessionID: sid, type: X, text: X } },
    { type: "session_diff", data: [{ file: X, patch: `--- a\n+++ b\n@@ -1,2 +1,2 @@\n+${X}\n-${X}`, additions: X, deletions: 1, status: X },
      { file: `${X}.ts`, before: `const a = "${X}";\n// ${X}\n`, after: `const b = '${X}';\n/* ${X} */\n` }] },
    ...hostileTools(sid, mid),
  ];
}

/** Each built-in tool's own view, with hostile text in every field it shows (code and diffs highlighted). */
function hostileTools(sid, mid) {
  const code = `const x = "${X}"; // ${X}\nfunction f() { return '${X}'; }\n/* ${X} */`;
  const tool = (id, name, input, output, metadata = {}, status = "completed") =>
    ({ type: "part", data: { id, messageID: mid, sessionID: sid, type: "tool", tool: name, callID: X, state: { status, input, output, metadata, title: X, error: status === "error" ? X : undefined } } });
  return [
    tool("prt_t01", "bash", { command: X, description: X }, X, { output: X }),
    tool("prt_t02", "read", { filePath: `${X}.ts` }, `<file>\n00001| ${code.split("\n").join("\n00002| ")}\n</file>`),
    tool("prt_t03", "edit", { filePath: `${X}.ts`, oldString: code, newString: `${code}\n${X}` }, X),
    tool("prt_t04", "edit", { filePath: `${X}.js`, oldString: X, newString: X }, X, { diff: `--- a\n+++ b\n@@ -1,2 +1,2 @@\n ${code}\n-${X}\n+${X}` }),
    tool("prt_t05", "write", { filePath: `${X}.html`, content: `<script>window.__xss=1</script>\n${code}` }, X),
    tool("prt_t06", "write", { filePath: `x.md`, content: `# ${X}\n[a](javascript:window.__xss=1)` }, X),
    tool("prt_t07", "patch", { patchText: `@@ -1 +1 @@\n-${X}\n+${X}` }, X, { diff: `@@ -1 +1 @@\n-${X}\n+${X}` }),
    tool("prt_t08", "multiedit", { filePath: `${X}.py`, edits: [{ oldString: X, newString: `# ${X}` }] }, X),
    tool("prt_t09", "grep", { pattern: X, include: X }, X, { matches: X }),
    tool("prt_t10", "glob", { pattern: X }, X, { count: 1 }),
    tool("prt_t11", "list", { path: X }, X),
    tool("prt_t12", "todowrite", { todos: [{ content: X, status: X, priority: X, id: X }, { content: X, status: "completed" }] }, X, { todos: X }),
    tool("prt_t13", "webfetch", { url: "javascript:window.__xss=1", format: X }, X),
    tool("prt_t14", "webfetch", { url: `https://example.com/"><script>window.__xss=1</script>`, format: X }, X),
    tool("prt_t15", "task", { description: X, prompt: `${X}\n\n${xlink}`, subagent_type: X }, `${X} ${xlink}`, { summary: [{ tool: X, state: { title: X } }] }),
    tool("prt_t16", "bash", { command: X }, X, {}, "error"),
    { type: "part", data: { id: "prt_t17", messageID: mid, sessionID: sid, type: "subtask", agent: X, description: X, prompt: `${X} ${xlink}` } },
    { type: "part", data: { id: "prt_t18", messageID: mid, sessionID: sid, type: "compaction", auto: X } },
    { type: "part", data: { id: "prt_t19", messageID: mid, sessionID: sid, type: "retry", attempt: X, error: { name: X, data: { message: X } } } },
    { type: "part", data: { id: "prt_t20", messageID: mid, sessionID: sid, type: "text", text: `\`\`\`ts\n${code}\n\`\`\`` } },
  ];
}

/** Nothing of the payloads became markup: no handlers, no foreign scripts, frames or javascript: links. */
async function assertInert(page) {
  const report = await page.evaluate(() => ({
    xss: window.__xss ?? 0,
    handlers: [...document.querySelectorAll("*")].flatMap((e) => [...e.attributes].filter((a) => a.name.startsWith("on")).map((a) => `${e.tagName} ${a.name}`)),
    scripts: [...document.scripts].map((s) => s.getAttribute("src")),
    frames: document.querySelectorAll("iframe, svg, object, embed, style").length,
    jsLinks: [...document.querySelectorAll("[href], [src]")].filter((e) => /^\s*javascript:/i.test(e.getAttribute("href") ?? e.getAttribute("src") ?? "")).length,
    images: [...document.images].map((i) => i.getAttribute("src")),
  }));
  assert.deepEqual(report, { xss: 0, handlers: [], scripts: ["/assets/viewer.js"], frames: 0, jsLinks: 0, images: [] });
}

test("hostile content in every field never runs, server-rendered or live", async () => {
  const sid = sessionID();
  const r = await fetch(`${server.url}/api/share`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ sessionID: sid }) });
  const { id, secret } = await r.json();
  const push = async (data) => {
    const s = await fetch(`${server.url}/api/share/${id}/sync`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ secret, data }) });
    assert.equal(s.status, 200);
  };
  const dialogs = [];
  // server-rendered: everything is there before the page loads
  await push(hostileItems(sid));
  const page = await browser.newPage();
  page.on("dialog", (d) => { dialogs.push(d.message()); d.dismiss(); });
  await page.goto(`${server.url}/share/${id}`);
  await shows(page, "#status", "live");
  await assertInert(page);
  assert.ok((await page.locator("#title").textContent()).includes("<img src=x onerror="), "shown as text");
  assert.ok((await page.locator('[id="p/msg_xxxx/prt_3"] .tool-name').textContent()).includes("<script>"));
  // live: the same payloads arrive while the page is open (a second round with new text)
  await push(hostileItems(sid).map((i) => (i.type === "part" ? { ...i, data: { ...i.data, text: `live ${X}` } } : i)));
  await shows(page, '[id="p/msg_xxxx/prt_1"]', "live");
  await page.waitForTimeout(300);
  await assertInert(page);
  assert.deepEqual(dialogs, []);
  const headers = (await page.goto(`${server.url}/share/${id}`)).headers();
  assert.match(headers["content-security-policy"], /script-src 'self'/);
  assert.doesNotMatch(headers["content-security-policy"], /unsafe-inline/);
  await page.close();
});

test("the sample session reads with and without JavaScript", async () => {
  const writes = fixture();
  const sid = writes[0].content.id;
  await uploadLegacy(server.url, sid, writes);
  for (const javaScriptEnabled of [true, false]) {
    const context = await browser.newContext({ javaScriptEnabled });
    const page = await context.newPage();
    const errors = [];
    page.on("pageerror", (e) => errors.push(String(e)));
    await page.goto(`${server.url}/s/${sid.slice(-8)}`);
    assert.equal(await page.locator("#title").textContent(), "withRetry backoff and retry limits");
    assert.equal(await page.locator("article.message").count(), 2);
    assert.ok((await page.locator(".part-text").first().textContent()).includes("withRetry"));
    assert.equal(await page.locator(".part-tool .tool-name").textContent(), "Read");
    assert.equal(await page.locator(".part-tool .status").textContent(), "completed");
    // steps are hidden as opencode does; their cost is in the message's head and the summary
    assert.equal(await page.locator(".part-step-finish").isVisible(), false);
    assert.ok((await page.locator(".role-assistant .msg-head .cost").textContent()).startsWith("$"));
    assert.match(await page.locator("#summary").textContent(), /Cost\$0\.0659/);
    if (javaScriptEnabled) await shows(page, "#status", "live");
    else assert.match(await page.locator("#status").textContent(), /static/);
    assert.deepEqual(errors, []);
    await context.close();
  }
});
