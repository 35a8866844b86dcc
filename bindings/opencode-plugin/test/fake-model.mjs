// A fake OpenAI-compatible model on loopback for running the real opencode headless:
// POST /v1/chat/completions answers with server-sent `chat.completion.chunk`s (reasoning deltas,
// text deltas, a `read` tool call, finish_reason, usage, [DONE]), or one chat.completion when
// `stream` is false. What it does per request is the test's plan (`setPlan`); every text chunk's
// send time is recorded, so a test can time a chunk's way to a viewer.
//
//   const model = await startModel()
//   model.url                       // http://127.0.0.1:<port>/v1
//   model.setPlan({ words: 20, delayMs: 30, tool: "/abs/file", hold: false })
//   model.sent                      // [{ word, at }] text chunks as written (Date.now())
//   model.held                      // a promise, resolved when the answer reached its next hold
//   model.release()                 // lets a held answer go on
//   await model.close()

import { createServer } from "node:http";

/** The word indexes where an answer waits for release(): `hold` true = half way, or a list. */
function holdsAt(p, words) {
  if (p.hold === true) return [Math.floor(words / 2)];
  return Array.isArray(p.hold) ? p.hold : [];
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** The text of a request's messages (OpenAI shape: content as string or parts). */
function textOf(messages) {
  return (messages ?? [])
    .map((m) => (typeof m.content === "string" ? m.content : (m.content ?? []).map((p) => p.text ?? "").join("")))
    .join("\n");
}

export async function startModel() {
  /** tag: letters in each word ("w<tag>a3"), so that answers of one session differ; words: text chunks of the answer; delayMs between chunks; tool: a file for `read` (first turn only); hold: true (half way) or a list of word indexes where the answer waits for release(); `held` resolves at each */
  let plan = { words: 8, delayMs: 5, tool: undefined, hold: false, tag: "" };
  let release = () => {};
  let reachHold = () => {};
  const model = {
    url: "",
    sent: [],
    requests: 0,
    held: Promise.resolve(),
    setPlan(p) {
      plan = { ...plan, ...p };
      model.sent = [];
      model.held = new Promise((r) => (reachHold = r));
    },
    release: () => release(),
    close: () => new Promise((r) => { server.closeAllConnections?.(); server.close(() => r()); }),
  };

  const server = createServer(async (req, res) => {
    if (req.method !== "POST" || !req.url?.endsWith("/chat/completions")) {
      res.writeHead(404).end(JSON.stringify({ error: { message: `no ${req.method} ${req.url} here` } }));
      return;
    }
    let body = "";
    for await (const chunk of req) body += chunk;
    let request;
    try {
      request = JSON.parse(body);
    } catch {
      res.writeHead(400).end(JSON.stringify({ error: { message: "the body is not JSON" } }));
      return;
    }
    model.requests++;
    const messages = request.messages ?? [];
    // "[no tool]" in the newest user message: answer without the tool call
    const lastUser = textOf(messages.filter((m) => m.role === "user").slice(-1));
    const id = `chatcmpl-${model.requests}`;
    const created = Math.floor(Date.now() / 1000);
    const title = /title/i.test(textOf(messages.filter((m) => m.role === "system"))) && !request.tools?.length;
    const afterTool = messages.some((m) => m.role === "tool");
    const usage = { prompt_tokens: 11, completion_tokens: 7, total_tokens: 18 };

    if (!request.stream) {
      const content = title ? "Fake title" : "Fake answer.";
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify({ id, object: "chat.completion", created, model: request.model,
        choices: [{ index: 0, message: { role: "assistant", content }, finish_reason: "stop" }], usage }));
      return;
    }
    res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache", connection: "keep-alive" });
    const send = (delta, finish = null, extra = {}) =>
      res.write(`data: ${JSON.stringify({ id, object: "chat.completion.chunk", created, model: request.model,
        choices: [{ index: 0, delta, finish_reason: finish }], ...extra })}\n\n`);
    let closed = false;
    res.on("close", () => (closed = true));

    if (title) {
      send({ role: "assistant", content: "Fake title" });
      send({}, "stop");
    } else {
      const p = plan;
      send({ role: "assistant", reasoning_content: "Thinking about " });
      send({ reasoning_content: "the request." });
      const words = afterTool ? Math.max(2, Math.floor(p.words / 2)) : p.words;
      for (let i = 0; i < words && !closed; i++) {
        if (holdsAt(p, words).includes(i) && !afterTool) {
          const reached = reachHold;
          const next = new Promise((r) => (release = r));
          model.held = new Promise((r) => (reachHold = r));
          reached();
          await next;
        }
        const word = `w${p.tag ?? ""}${afterTool ? "b" : "a"}${i}`;
        send({ content: `${word} ` });
        model.sent.push({ word, at: Date.now() });
        if (p.delayMs) await sleep(p.delayMs);
      }
      if (p.tool && !afterTool && !/\[no tool\]/.test(lastUser)) {
        send({ tool_calls: [{ index: 0, id: `call_${model.requests}`, type: "function",
          function: { name: "read", arguments: "" } }] });
        send({ tool_calls: [{ index: 0, function: { arguments: JSON.stringify({ filePath: p.tool }) } }] });
        send({}, "tool_calls");
      } else {
        send({}, "stop");
      }
    }
    res.write(`data: ${JSON.stringify({ id, object: "chat.completion.chunk", created, model: request.model, choices: [], usage })}\n\n`);
    res.end("data: [DONE]\n\n");
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  model.url = `http://127.0.0.1:${server.address().port}/v1`;
  return model;
}

// run alone: node test/fake-model.mjs  (prints the base URL; for trying opencode by hand)
if (import.meta.url === `file://${process.argv[1]}`) {
  const model = await startModel();
  model.setPlan({ words: 20, delayMs: 50 });
  console.log(model.url);
}
