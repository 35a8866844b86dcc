// The viewer page in real headless Chromium (Debian's /usr/bin/chromium through playwright-core):
// it follows a streamed part stage by stage, hostile content in any field never runs, and the
// sample session reads well with and without JavaScript.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { chromium } from "playwright-core";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { chromiumArgs, fixture, legacy, startServer, uploadLegacy } from "./server.mjs";
import { createNext, longSession, toolsSession } from "./sessions.mjs";

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

test("streamed words after a text that ended in a space are not glued to it", async () => {
  const sid = sessionID();
  const created = await legacy(server.url, "/share_create", { sessionID: sid });
  const sync = async (key, content) => {
    const r = await legacy(server.url, "/share_sync", { sessionID: sid, secret: created.body.secret, key, content });
    assert.equal(r.status, 200);
  };
  await sync(`session/info/${sid}`, { id: sid, title: "Spaces" });
  await sync(`session/message/${sid}/msg_1`, { id: "msg_1", sessionID: sid, role: "assistant", modelID: "m" });
  const page = await browser.newPage();
  await page.goto(`${server.url}/s/${sid.slice(-8)}`);
  await shows(page, "#status", "live");
  const text = (t) => ({ id: "prt_1", messageID: "msg_1", sessionID: sid, type: "text", text: t });
  // the first version comes whole (rendered as markdown, which drops the trailing space), the
  // next as an append of "world" in the page's live tail
  await sync(`session/part/${sid}/msg_1/prt_1`, text("Hello "));
  await shows(page, '[id="p/msg_1/prt_1"]', "Hello");
  await sync(`session/part/${sid}/msg_1/prt_1`, text("Hello world"));
  await shows(page, '[id="p/msg_1/prt_1"]', "world");
  assert.equal(await page.locator('[id="p/msg_1/prt_1"] .live-tail').count(), 1, "appended in place");
  assert.match(await page.locator('[id="p/msg_1/prt_1"]').textContent(), /Hello\s+world/);
  await page.close();
});

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
  const text = (t, extra = {}) => ({ id: "prt_1", messageID: "msg_1", sessionID: sid, type: "text", text: t, ...extra });
  // while the text grows the server sends only what it appended, shown in place as it came
  // (docs/append-protocol.md); the finished part (its end time set) is rendered whole
  for (const stage of ["Hel", "Hello wor", "Hello world, **streamed** <b>x</b>"]) {
    await sync(`session/part/${sid}/msg_1/prt_1`, text(stage));
    await shows(page, '[id="p/msg_1/prt_1"]', stage);
  }
  assert.equal(await page.locator('[id="p/msg_1/prt_1"] .live-tail').count(), 1, "appended in place");
  assert.equal(await page.locator('[id="p/msg_1/prt_1"] b').count(), 0, "appended text is text, never markup");
  await sync(`session/part/${sid}/msg_1/prt_1`, text("Hello world, **streamed** <b>x</b>", { time: { start: 1, end: 2 } }));
  await shows(page, '[id="p/msg_1/prt_1"]', "Hello world, streamed");
  assert.equal(await page.locator('[id="p/msg_1/prt_1"] strong').textContent(), "streamed");
  assert.equal(await page.locator('[id="p/msg_1/prt_1"] .live-tail').count(), 0);
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
  // a new prompt joins the navigation, as text
  await sync(`session/message/${sid}/msg_2`, { id: "msg_2", sessionID: sid, role: "user" });
  await sync(`session/part/${sid}/msg_2/prt_1`, { id: "prt_1", messageID: "msg_2", sessionID: sid, type: "text", text: "And <b>then</b>?" });
  await shows(page, "#nav", "And <b>then</b>?");
  assert.equal(await page.locator('#nav a[data-target="msg_2"]').getAttribute("href"), "#m/msg_2");
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

test("each part type and built-in tool has its own view, with a summary, changed files and navigation", async () => {
  const sid = sessionID();
  const { id } = await createNext(server.url, sid, toolsSession(sid));
  const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  await page.goto(`${server.url}/share/${id}`);
  await shows(page, "#status", "live");
  const text = (sel) => page.locator(sel).first().textContent();
  const tool = (name) => `.part-tool:has(.tool-name[data-tool="${name}"])`;
  // summary: version, date, models, cost and tokens summed over the assistant messages
  assert.match(await text("#session"), /opencode 0\.15\.2 · 2025-07-10 09:20 UTC/);
  const summary = await text("#summary");
  assert.match(summary, /anthropic\/claude-sonnet-4-20250514/);
  assert.match(summary, /Cost\$0\.0453/);
  assert.match(summary, /6\u202f010 in · 870 out · cache 2\u202f400 read, 600 written/);
  // tools
  assert.match(await text(`${tool("bash")} pre.terminal`), /^\$ bun test src\/net\n[^]*1 pass/);
  assert.equal(await page.locator(`${tool("edit")} table.diff tr.add`).count(), 2);
  assert.equal(await page.locator(`${tool("edit")} table.diff tr.del`).count(), 2);
  assert.ok(await page.locator(`${tool("edit")} table.diff .c-storage`).count() > 0, "the diff is highlighted");
  assert.match(await text(`${tool("edit")} .diff-stats`), /\+2 −2/);
  assert.ok(await page.locator(`${tool("write")} pre.code .c-string`).count() > 0, "written code highlighted");
  assert.match(await text(`${tool("read")} pre.code`), /^export async function withRetry/);
  assert.match(await text(`${tool("grep")}`), /Grep withRetry[^]*2 results/);
  assert.match(await text(`${tool("glob")}`), /Glob src\/\*\*\/\*\.test\.ts/);
  assert.match(await text(`${tool("list")}`), /List \/home\/dev\/netkit\/src\/net/);
  assert.deepEqual(await page.locator(`${tool("todowrite")} li`).evaluateAll((l) => l.map((e) => e.className)), ["todo todo-completed", "todo todo-in_progress", "todo todo-pending"]);
  assert.equal(await page.locator(`${tool("webfetch")} a`).getAttribute("href"), "https://developer.mozilla.org/en-US/docs/Web/HTTP/Status/503");
  assert.match(await text(`${tool("task")}`), /Task Check other callers[^]*agent general/);
  assert.match(await text('.part-tool:has(.status-error)'), /bun run lint[^]*exited with code 1/);
  assert.equal(await page.locator(".part-reasoning summary").textContent(), "Thinking");
  assert.match(await text(".part-subtask"), /Subtask for agent general: Summarize the change/);
  assert.match(await text(".part-compaction"), /Session compacted/);
  assert.ok(await page.locator(".part-text pre.code .c-comment").count() > 0, "Markdown code blocks highlighted");
  assert.equal(await page.locator(".part-file img").getAttribute("alt"), "trace.png");
  // opencode's noise hidden
  assert.equal(await page.locator(".part-step-start").first().isVisible(), false);
  assert.equal(await page.locator(".part-step-finish").first().isVisible(), false);
  // changed files: a unified diff per file, and a split view on request
  assert.match(await text("#changes"), /Changed files \(2\)/);
  assert.equal(await page.locator("#diffs details.diff-file").count(), 2);
  assert.equal(await page.locator("#diffs table.diff-split").count(), 0);
  await page.click("#diff-mode");
  assert.equal(await page.locator("#diffs table.diff-split").count(), 2);
  assert.ok(await page.locator("#diffs table.diff-split").first().isVisible());
  assert.equal(await page.locator("#diffs table.diff:not(.diff-split)").first().isVisible(), false);
  const splitRow = await page.locator("#diffs table.diff-split tr.change").first().evaluate((tr) => [...tr.cells].map((c) => c.className));
  assert.deepEqual(splitRow, ["ln", "src del", "ln", "src add"]);
  // navigation between prompts
  const prompts = await page.locator("#nav a").evaluateAll((l) => l.map((a) => [a.getAttribute("href"), a.textContent]));
  assert.deepEqual(prompts, [["#m/msg_001", "Make the retry limit of `withRetry` configurable, and add a test."], ["#m/msg_003", "Summarize and compact, please."]]);
  await page.click('#nav a[data-target="msg_003"]');
  assert.ok(await page.locator('[id="m/msg_003"]').isVisible());
  // link previews and indexing
  const meta = await page.evaluate(() => Object.fromEntries([...document.querySelectorAll("meta[property], meta[name=robots]")].map((m) => [m.getAttribute("property") ?? "robots", m.content])));
  assert.equal(meta.robots, "noindex, nofollow");
  assert.equal(meta["og:title"], "Make retries configurable");
  assert.match(meta["og:description"], /4 messages, anthropic\/claude-sonnet-4-20250514, opencode 0\.15\.2/);
  assert.equal(meta["og:url"], `${server.url}/share/${id}`);
  assert.deepEqual(errors, []);
  await page.close();
});

test("light and dark follow the reader's setting, and the switch overrides it", async () => {
  const sid = sessionID();
  const { id } = await createNext(server.url, sid, toolsSession(sid));
  const background = (page) => page.evaluate(() => getComputedStyle(document.body).backgroundColor);
  const context = await browser.newContext({ colorScheme: "dark" });
  const page = await context.newPage();
  await page.goto(`${server.url}/share/${id}`);
  await shows(page, "#status", "live");
  assert.equal(await background(page), "rgb(13, 17, 23)");
  assert.equal(await page.locator("#theme").getAttribute("aria-pressed"), "true");
  await page.click("#theme");
  assert.equal(await background(page), "rgb(246, 248, 250)");
  await page.reload();
  assert.equal(await background(page), "rgb(246, 248, 250)", "the choice is kept");
  await page.emulateMedia({ colorScheme: "light" });
  await page.click("#theme");
  assert.equal(await background(page), "rgb(13, 17, 23)");
  await context.close();
  const light = await browser.newContext({ colorScheme: "light" });
  const p2 = await light.newPage();
  await p2.goto(`${server.url}/share/${id}`);
  assert.equal(await background(p2), "rgb(246, 248, 250)");
  await light.close();
});

test("parts whose ids only differ by where the dash is stay apart, server-rendered and live", async () => {
  const sid = sessionID();
  const part = (mid, pid, t) => ({ type: "part", data: { id: pid, messageID: mid, sessionID: sid, type: "text", text: t } });
  const { id, push } = await createNext(server.url, sid, [
    { type: "message", data: { id: "a", sessionID: sid, role: "user" } },
    { type: "message", data: { id: "a-b", sessionID: sid, role: "assistant" } },
    part("a-b", "c", "first under a-b"),
    part("a", "b-c", "first under a"),
  ]);
  const page = await browser.newPage();
  await page.goto(`${server.url}/share/${id}`);
  await shows(page, "#status", "live");
  const under = (mid) => page.locator(`[id="m/${mid}"] .part`).evaluateAll((l) => l.map((e) => e.textContent.trim()));
  assert.deepEqual(await under("a"), ["first under a"]);
  assert.deepEqual(await under("a-b"), ["first under a-b"]);
  await push([part("a-b", "c", "live under a-b"), part("a", "b-c", "live under a")]);
  await shows(page, '[id="m/a"]', "live under a");
  await shows(page, '[id="m/a-b"]', "live under a-b");
  assert.deepEqual(await under("a"), ["live under a"]);
  assert.deepEqual(await under("a-b"), ["live under a-b"]);
  await page.close();
});

test("an item nested deeper than any parser's limit is shown, server-rendered and live", async () => {
  const sid = sessionID();
  const deep = (t) => `{"id":"prt_1","messageID":"msg_1","sessionID":"${sid}","type":"text","text":"${t}","metadata":${"[".repeat(5000)}${"]".repeat(5000)}}`;
  const { id, secret } = await createNext(server.url, sid, [{ type: "message", data: { id: "msg_1", sessionID: sid, role: "assistant" } }]);
  const sync = async (t) => {
    const r = await fetch(`${server.url}/api/share/${id}/sync`, { method: "POST", headers: { "content-type": "application/json" }, body: `{"secret":"${secret}","data":[{"type":"part","data":${deep(t)}}]}` });
    assert.equal(r.status, 200, await r.text());
  };
  await sync("deep and shown");
  const page = await browser.newPage();
  await page.goto(`${server.url}/share/${id}`);
  await shows(page, '[id="p/msg_1/prt_1"]', "deep and shown");
  await shows(page, "#status", "live");
  await sync("deep and live");
  await shows(page, '[id="p/msg_1/prt_1"]', "deep and live");
  await page.close();
});

test("a part that grows keeps the reader's view, and follows when they are at the bottom", async () => {
  const sid = sessionID();
  const items = longSession(sid, 12, 3);
  const { id, push } = await createNext(server.url, sid, items);
  const page = await browser.newPage({ viewport: { width: 1000, height: 600 } });
  await page.goto(`${server.url}/share/${id}`);
  await shows(page, "#status", "live");
  await page.evaluate(() => { window.__sameDocument = true; });
  const grow = (mid, pid, t) => push([{ type: "part", data: { id: pid, messageID: mid, sessionID: sid, type: "text", text: t } }]);
  const long = (n) => Array.from({ length: n }, (_, i) => `Line ${i} of a growing answer.`).join("\n\n");
  // reading the middle: a part above the view grows, what the reader looks at does not move
  const anchor = page.locator('[id="m/msg_000012"]');
  await anchor.evaluate((el) => el.scrollIntoView());
  const before = await anchor.evaluate((el) => el.getBoundingClientRect().top);
  const scrollBefore = await page.evaluate(() => scrollY);
  await grow("msg_000001", "prt_001", long(30));
  await shows(page, '[id="p/msg_000001/prt_001"]', "Line 29");
  assert.ok(await page.evaluate(() => scrollY) > scrollBefore + 200, "scrolled by the growth");
  assert.ok(Math.abs((await anchor.evaluate((el) => el.getBoundingClientRect().top)) - before) < 2, "the message in view stays put");
  // at the bottom: the view follows the growing end
  await page.evaluate(() => scrollTo(0, document.documentElement.scrollHeight));
  await grow("msg_000023", "prt_003", long(30));
  await shows(page, '[id="p/msg_000023/prt_003"]', "Line 29");
  assert.ok(await page.evaluate(() => innerHeight + scrollY >= document.documentElement.scrollHeight - 4), "still at the bottom");
  assert.ok(await page.evaluate(() => window.__sameDocument), "updated in place");
  await page.close();
});

test("a 4 000-part share opens with its first messages and brings the rest as the reader scrolls", async () => {
  const sid = sessionID();
  const items = longSession(sid, 100, 39); // 100 prompts, 200 messages, 4 000 parts
  const { id, push } = await createNext(server.url, sid, items);
  const html = await (await fetch(`${server.url}/share/${id}`)).text();
  assert.ok(html.length < 300_000, `first screen ${html.length} bytes`);
  const data = await (await fetch(`${server.url}/api/share/${id}/data`)).json();
  assert.equal(data.length, items.length, "/data stays complete");
  const page = await browser.newPage({ viewport: { width: 1000, height: 800 } });
  await page.goto(`${server.url}/share/${id}`);
  await shows(page, "#status", "live");
  const parts = () => page.locator("#messages .part").count();
  const first = await parts();
  assert.ok(first > 0 && first < 1000, `${first} parts first`);
  // a live write to a message not fetched yet shows once it is
  await push([{ type: "part", data: { id: "prt_001", messageID: "msg_000199", sessionID: sid, type: "text", text: "written while unseen" } }]);
  // the prompts' navigation fetches up to the last prompt
  await page.click('#nav a[data-target="msg_000198"]');
  await page.waitForFunction(() => document.getElementById("m/msg_000198"), null, { timeout: 10_000 });
  for (let i = 0; i < 40 && (await page.locator("#more").count()) > 0; i++) {
    await page.evaluate(() => scrollTo(0, document.documentElement.scrollHeight));
    await page.waitForTimeout(100);
  }
  assert.equal(await page.locator("#more").count(), 0, "everything fetched");
  assert.equal(await parts(), 4000);
  assert.equal(await page.locator("article.message").count(), 200);
  await shows(page, '[id="p/msg_000199/prt_001"]', "written while unseen");
  // without JavaScript, all of it on request
  const all = await (await fetch(`${server.url}/share/${id}?all=1`)).text();
  assert.equal(all.match(/class="part part-text"/g).length, 4000);
  await page.close();
});

test("no serious or critical accessibility violation (axe-core), light and dark", async () => {
  const sid = sessionID();
  const { id } = await createNext(server.url, sid, toolsSession(sid));
  const axe = readFileSync(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8");
  for (const colorScheme of ["light", "dark"]) {
    const context = await browser.newContext({ colorScheme });
    const page = await context.newPage();
    await page.goto(`${server.url}/share/${id}`);
    await shows(page, "#status", "live");
    await page.evaluate(() => document.querySelectorAll("details").forEach((d) => { d.open = true; }));
    await page.evaluate(axe); // through the DevTools protocol: the page's CSP still holds for its own scripts
    const result = await page.evaluate(() => window.axe.run(document, { resultTypes: ["violations"] }));
    const bad = result.violations.filter((v) => v.impact === "serious" || v.impact === "critical")
      .map((v) => `${v.id} (${v.impact}): ${v.nodes.slice(0, 3).map((n) => n.target.join(" ")).join(", ")}`);
    assert.deepEqual(bad, [], `${colorScheme}: ${bad.join("\n")}`);
    await context.close();
  }
});
