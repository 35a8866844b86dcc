// Sessions made for the viewer's tests and screenshots, as ShareNext items ({type, data}): one that
// uses every part type and each of opencode's built-in tools, and long ones.

const T0 = 1752139200000;

/** A session with edits, writes, a shell, searches, a plan, a fetch, a subtask and the changed files. */
export function toolsSession(sid) {
  const items = [];
  const msg = (id, role, extra = {}) => items.push({ type: "message", data: { id, sessionID: sid, role, time: { created: T0 + items.length * 1000 }, ...extra } });
  let n = 0;
  const part = (mid, data) => items.push({ type: "part", data: { id: `prt_${String(++n).padStart(3, "0")}`, messageID: mid, sessionID: sid, ...data } });
  const tool = (mid, name, input, output, metadata = {}, title = "") =>
    part(mid, { type: "tool", tool: name, callID: `call_${n}`, state: { status: "completed", input, output, metadata, title, time: { start: T0, end: T0 + 900 } } });
  const assistant = (id, cost, input, output) => msg(id, "assistant", { modelID: "claude-sonnet-4-20250514", providerID: "anthropic", mode: "build", cost, tokens: { input, output, reasoning: 0, cache: { read: 1200, write: 300 } } });

  items.push({ type: "session", data: { id: sid, title: "Make retries configurable", version: "0.15.2", directory: "/home/dev/netkit", time: { created: T0, updated: T0 + 60000 } } });
  const before = "export async function withRetry<T>(op: () => Promise<T>): Promise<T> {\n  for (let attempt = 0; ; attempt++) {\n    try {\n      return await op();\n    } catch (e) {\n      if (attempt >= 5) throw e; // give up\n      await sleep(100 * 2 ** attempt);\n    }\n  }\n}\n";
  const after = before.replace("(op: () => Promise<T>)", "(op: () => Promise<T>, maxAttempts = 5)").replace("attempt >= 5", "attempt >= maxAttempts");
  msg("msg_001", "user");
  part("msg_001", { type: "text", text: "Make the retry limit of `withRetry` configurable, and add a test." });
  part("msg_001", { type: "file", mime: "image/png", filename: "trace.png", url: "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==" });
  assistant("msg_002", 0.0421, 5210, 830);
  part("msg_002", { type: "step-start" });
  part("msg_002", { type: "reasoning", text: "The limit is the literal `5` in the catch block; a parameter with a default keeps callers working." });
  tool("msg_002", "todowrite", { todos: [
    { id: "1", content: "Read src/net/backoff.ts", status: "completed", priority: "high" },
    { id: "2", content: "Add a maxAttempts parameter", status: "in_progress", priority: "high" },
    { id: "3", content: "Write a test for the limit", status: "pending", priority: "medium" },
  ] }, "3 todos", {}, "3 todos");
  tool("msg_002", "grep", { pattern: "withRetry", include: "*.ts" }, "Found 2 matches\nsrc/net/backoff.ts:\n  Line 1: export async function withRetry<T>(\nsrc/net/client.ts:\n  Line 14: return withRetry(() => fetch(url));", { matches: 2, truncated: false }, "withRetry");
  tool("msg_002", "glob", { pattern: "src/**/*.test.ts" }, "src/net/client.test.ts", { count: 1, truncated: false }, "src");
  tool("msg_002", "list", { path: "/home/dev/netkit/src/net" }, "src/net/\n  backoff.ts\n  client.ts\n  client.test.ts\n", { count: 3 }, "src/net");
  tool("msg_002", "read", { filePath: "/home/dev/netkit/src/net/backoff.ts" }, `<file>\n${before.split("\n").filter(Boolean).map((l, i) => `${String(i + 1).padStart(5, "0")}| ${l}`).join("\n")}\n</file>`, {}, "src/net/backoff.ts");
  tool("msg_002", "edit", { filePath: "/home/dev/netkit/src/net/backoff.ts", oldString: "attempt >= 5", newString: "attempt >= maxAttempts" }, "", {
    diff: "Index: /home/dev/netkit/src/net/backoff.ts\n===================================================================\n--- /home/dev/netkit/src/net/backoff.ts\n+++ /home/dev/netkit/src/net/backoff.ts\n@@ -1,6 +1,6 @@\n-export async function withRetry<T>(op: () => Promise<T>): Promise<T> {\n+export async function withRetry<T>(op: () => Promise<T>, maxAttempts = 5): Promise<T> {\n   for (let attempt = 0; ; attempt++) {\n     try {\n       return await op();\n     } catch (e) {\n-      if (attempt >= 5) throw e; // give up\n+      if (attempt >= maxAttempts) throw e; // give up\n",
  }, "src/net/backoff.ts");
  tool("msg_002", "write", { filePath: "/home/dev/netkit/src/net/backoff.test.ts", content: "import { expect, test } from \"bun:test\";\nimport { withRetry } from \"./backoff\";\n\ntest(\"gives up after maxAttempts\", async () => {\n  let calls = 0;\n  const failing = () => { calls++; return Promise.reject(new Error(\"503\")); };\n  await expect(withRetry(failing, 2)).rejects.toThrow(\"503\");\n  expect(calls).toBe(3);\n});\n" }, "", {}, "src/net/backoff.test.ts");
  tool("msg_002", "bash", { command: "bun test src/net", description: "Run the network tests" }, "bun test v1.2.19\n\nsrc/net/backoff.test.ts:\n✓ gives up after maxAttempts [0.41ms]\n\n 1 pass\n 0 fail\n", { exit: 0 }, "bun test src/net");
  tool("msg_002", "webfetch", { url: "https://developer.mozilla.org/en-US/docs/Web/HTTP/Status/503", format: "markdown" }, "# 503 Service Unavailable\n\nThe server is not ready to handle the request.", {}, "developer.mozilla.org");
  tool("msg_002", "task", { description: "Check other callers", prompt: "Find every caller of `withRetry` and check none passes a second argument.", subagent_type: "general" }, "No caller passes a second argument.", { summary: [{ id: "t1", tool: "grep", state: { status: "completed", title: "withRetry(" } }] }, "Check other callers");
  part("msg_002", { type: "tool", tool: "bash", callID: "call_err", state: { status: "error", input: { command: "bun run lint" }, error: "error: script \"lint\" exited with code 1" } });
  part("msg_002", { type: "text", text: "Done: `withRetry` takes `maxAttempts` (default 5), and a test checks that it gives up." });
  part("msg_002", { type: "step-finish", cost: 0.0421, tokens: { input: 5210, output: 830, reasoning: 0, cache: { read: 1200, write: 300 } } });
  msg("msg_003", "user");
  part("msg_003", { type: "text", text: "Summarize and compact, please." });
  part("msg_003", { type: "subtask", agent: "general", description: "Summarize the change", prompt: "Summarize the change in one line." });
  assistant("msg_004", 0.0032, 800, 40);
  part("msg_004", { type: "compaction", auto: false });
  part("msg_004", { type: "text", text: "The limit is a parameter now:\n\n```ts\nawait withRetry(() => fetch(url), 3); // at most 4 calls\n```" });
  items.push({ type: "session_diff", data: [
    { file: "src/net/backoff.ts", before, after, additions: 2, deletions: 2, status: "modified" },
    { file: "src/net/backoff.test.ts", before: "", after: items.find((i) => i.data?.tool === "write").data.state.input.content, additions: 9, deletions: 0, status: "added" },
  ] });
  items.push({ type: "model", data: [{ id: "claude-sonnet-4-20250514", providerID: "anthropic", name: "Claude Sonnet 4" }] });
  return items;
}

/** A long session: `prompts` rounds of a user prompt and an assistant answer of `partsEach` parts. */
export function longSession(sid, prompts, partsEach) {
  const items = [{ type: "session", data: { id: sid, title: "A long session", version: "0.15.2", time: { created: T0 } } }];
  for (let i = 0; i < prompts; i++) {
    const u = `msg_${String(2 * i).padStart(6, "0")}`;
    const a = `msg_${String(2 * i + 1).padStart(6, "0")}`;
    items.push({ type: "message", data: { id: u, sessionID: sid, role: "user" } });
    items.push({ type: "part", data: { id: "prt_000", messageID: u, sessionID: sid, type: "text", text: `Prompt ${i}: what does step ${i} do?` } });
    items.push({ type: "message", data: { id: a, sessionID: sid, role: "assistant", modelID: "m", providerID: "p", cost: 0.001, tokens: { input: 10, output: 20 } } });
    for (let j = 0; j < partsEach; j++) {
      items.push({ type: "part", data: { id: `prt_${String(j + 1).padStart(3, "0")}`, messageID: a, sessionID: sid, type: "text", text: `Answer ${i}.${j}: step ${i} reads the **input**, checks it and writes \`out/${i}.json\`; nothing else changes.` } });
    }
  }
  return items;
}

/** Creates a ShareNext share and pushes items in batches; resolves with {id, secret, push}. */
export async function createNext(url, sid, items = []) {
  const r = await fetch(`${url}/api/share`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ sessionID: sid }) });
  if (r.status !== 200) throw new Error(`create: ${r.status}`);
  const { id, secret } = await r.json();
  const push = async (data) => {
    for (let i = 0; i < data.length; i += 500) {
      const s = await fetch(`${url}/api/share/${id}/sync`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ secret, data: data.slice(i, i + 500) }) });
      if (s.status !== 200) throw new Error(`sync: ${s.status} ${await s.text()}`);
    }
  };
  await push(items);
  return { id, secret, push };
}
