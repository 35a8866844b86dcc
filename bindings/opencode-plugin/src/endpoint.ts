// The loopback share endpoint opencode's own share client is pointed at (the `config` hook sets
// enterprise.url to it). opencode keeps its commands, its share table and the URL it shows; the
// endpoint turns its create and delete into the library's calls, and answers its syncs with 200
// without sending them anywhere: the plugin's event feed syncs, through the library.
//
//   POST   /api/share            {sessionID}  -> the library's create: {id, url, secret} of the real service
//   POST   /api/share/:id/sync   {secret, data} -> 200 (ignored)
//   DELETE /api/share/:id        {secret}     -> the library's remove of the share's session
// (/api/shares/... the same: an org account's paths.) Every path starts with a random token of
// this process (the URL opencode is given holds it), so another local process cannot make the
// plugin share a session by guessing its id.

export interface Shares {
  create(sessionID: string): Promise<{ id: string; url: string; secret: string }>;
  /** Removes the share `id`; `secret` is what opencode holds (for a share the plugin never knew). */
  remove(id: string, secret: string | undefined): Promise<void>;
  /** Reports a failure (a log line of opencode's). */
  warn(message: string): void;
}

const ROUTE = /^\/([0-9a-f]{32})\/api\/shares?(?:\/([^/]+)(\/sync)?)?\/?$/;
const MAX_BODY = 64 << 20;

function answer(status: number, body: unknown): Response {
  return new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json" } });
}

async function bodyOf(req: Request): Promise<Record<string, unknown>> {
  const length = Number(req.headers.get("content-length") ?? 0);
  if (length > MAX_BODY) throw new Error("the body is too large");
  const text = await req.text();
  if (text === "") return {};
  const parsed = JSON.parse(text);
  if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) throw new Error("the body is not a JSON object");
  return parsed as Record<string, unknown>;
}

/** Starts the endpoint on 127.0.0.1 (a free port); answers its base URL and a stop function. */
export function serve(shares: Shares): { url: string; stop: () => void } {
  const token = [...crypto.getRandomValues(new Uint8Array(16))].map((b) => b.toString(16).padStart(2, "0")).join("");
  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    // opencode's create waits for the real service's answer, which the library retries
    idleTimeout: 120,
    async fetch(req) {
      const path = new URL(req.url).pathname;
      const route = ROUTE.exec(path);
      // the token stays out of answers and log lines
      const shown = path.replace(/^\/[^/]+/, "/<token>");
      if (!route || route[1] !== token) return answer(404, { message: `opencode-share: no ${req.method} ${shown} here` });
      const [, , id, sync] = route;
      let body: Record<string, unknown>;
      try {
        body = await bodyOf(req);
      } catch (e) {
        return answer(400, { message: `opencode-share: ${(e as Error).message}` });
      }
      try {
        if (req.method === "POST" && !id) {
          if (typeof body.sessionID !== "string" || body.sessionID === "") return answer(400, { message: "opencode-share: create needs {sessionID}" });
          return answer(200, await shares.create(body.sessionID));
        }
        if (req.method === "POST" && id && sync) return answer(200, {});
        if (req.method === "DELETE" && id && !sync) {
          await shares.remove(decodeURIComponent(id), typeof body.secret === "string" ? body.secret : undefined);
          return answer(200, {});
        }
      } catch (e) {
        const message = (e as Error)?.message ?? String(e);
        shares.warn(`${req.method} ${shown}: ${message}`);
        return answer(502, { message: `opencode-share: ${message}` });
      }
      return answer(405, { message: `opencode-share: no ${req.method} ${shown} here` });
    },
  });
  return { url: `http://127.0.0.1:${server.port}/${token}`, stop: () => server.stop(true) };
}
