// The baseline: opencode's original `Share` module (packages/opencode/src/share/share.ts), as
// /work/shared/share-module.md gives its code, kept line for line where it matters: one `pending`
// map, one promise chain `queue`, `fetch` with no timeout, no retry and no error handling.
//
// Differences, all in the baseline's favour or neutral, and why:
// - `Session.getShare(sessionID)` read `session/share/<id>` from disk (Storage.readJSON) on every
//   write. Here it is an in-memory Map lookup behind the same `await` (setShare() fills it, as
//   Session.share() wrote the file after Share.create). This is the benefit the issue asks for.
// - `URL` came from Installation (snapshot/dev/production); here init() sets it (the loopback
//   service of the benchmark).
// - `log.info("synced", ...)` wrote a line to opencode's log file; here it formats the same line
//   and keeps only a count (no disk I/O).
// - `init()` subscribed `sync` to Bus events `Storage.Event.Write`; the benchmark's driver calls
//   `sync` as that subscriber did (`await sync(key, content)` per write).
// - `drain()` is added for the benchmark only: it returns the current tail of the chain, so the
//   driver knows when the original has nothing left to send (it has no flush). It changes
//   nothing in the algorithm.
// Failure behaviour is the original's: a fetch that rejects (connection reset) leaves `queue`
// rejected, so every later link is skipped and nothing more is ever sent; a 5xx answer is
// logged as "synced" with its status and the content is lost.

let URL = "";

/** opencode's Log.create({ service: "share" }), reduced to formatting the line in memory. */
const log = {
  lines: 0,
  info(message: string, extra: Record<string, unknown>) {
    const fields = Object.entries(extra)
      .map(([k, v]) => `${k}=${typeof v === "object" ? JSON.stringify(v) : String(v)}`)
      .join(" ");
    const line = `INFO  ${new Date().toISOString()} service=share ${fields} ${message}\n`;
    if (line.length > 0) this.lines++;
  },
};

/** Session.getShare with the benefit: the share record from memory instead of disk. */
const shares = new Map<string, { url: string; secret: string }>();
const Session = {
  async getShare(sessionID: string) {
    const share = shares.get(sessionID);
    if (!share) throw new Error(`Resource not found: session/share/${sessionID}`);
    return share;
  },
};

/** What Session.share() did after Share.create: store the share record. */
export function setShare(sessionID: string, share: { url: string; secret: string }) {
  shares.set(sessionID, share);
}

export function init(url: string) {
  URL = url;
}

const pending = new Map<string, any>();
let queue: Promise<void> = Promise.resolve();

// packages/opencode/src/share/share.ts:13-45
export async function sync(key: string, content: any) {
  const [root, ...splits] = key.split("/");
  if (root !== "session") return;
  const [sub, sessionID] = splits;
  if (sub === "share") return;
  const share = await Session.getShare(sessionID!).catch(() => {});
  if (!share) return;
  const { secret } = share;
  pending.set(key, content);
  queue = queue
    .then(async () => {
      const content = pending.get(key);
      if (content === undefined) return;
      pending.delete(key);

      return fetch(`${URL}/share_sync`, {
        method: "POST",
        body: JSON.stringify({
          sessionID: sessionID,
          secret,
          key: key,
          content,
        }),
      });
    })
    .then((x) => {
      if (x) {
        log.info("synced", {
          key: key,
          status: x.status,
        });
      }
    });
}

// packages/opencode/src/share/share.ts:57-63
export async function create(sessionID: string) {
  return fetch(`${URL}/share_create`, {
    method: "POST",
    body: JSON.stringify({ sessionID: sessionID }),
  })
    .then((x) => x.json())
    .then((x) => x as { url: string; secret: string });
}

// packages/opencode/src/share/share.ts:65-70
export async function remove(sessionID: string, secret: string) {
  return fetch(`${URL}/share_delete`, {
    method: "POST",
    body: JSON.stringify({ sessionID, secret }),
  }).then((x) => x.json());
}

/** Benchmark only: the chain's current tail (settles when everything queued so far is done). */
export function drain(): Promise<void> {
  return queue;
}

/** Benchmark only: what the module holds and has logged. */
export function info() {
  return { pending: pending.size, logged: log.lines };
}
