// The loopback plumbing the JS share services (service.mjs, next-service.mjs) share: listen on
// a free port of 127.0.0.1, read a request's JSON body, and close with every pending answer's
// timer and connection.

/**
 * Listens on 127.0.0.1:<free port>; resolves to the base URL. `unref`: neither the server nor
 * its connections keep the process alive.
 */
export async function listen(server, { unref = false } = {}) {
  await new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", resolve);
  });
  if (unref) {
    server.unref();
    server.on("connection", (socket) => socket.unref());
  }
  const address = server.address();
  if (!address || typeof address === "string") throw new Error("no address");
  return `http://127.0.0.1:${address.port}`;
}

/** Stops `server`: clears the `timers` of answers still waiting, drops its connections. */
export function close(server, timers) {
  for (const timer of timers) clearTimeout(timer);
  timers.clear();
  return new Promise((resolve) => {
    server.close(() => resolve(undefined));
    server.closeAllConnections?.();
  });
}

/** Reads `req`'s whole body and calls `done` with it parsed as JSON (undefined if it is not JSON). */
export function readJson(req, done) {
  const chunks = [];
  req.on("data", (c) => chunks.push(c));
  req.on("end", () => {
    let body;
    try {
      body = JSON.parse(Buffer.concat(chunks).toString("utf8"));
    } catch {
      body = undefined;
    }
    done(body);
  });
}
