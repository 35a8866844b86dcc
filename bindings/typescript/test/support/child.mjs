// Runs one scenario in a fresh process (the library is loaded once per process) and prints one
// JSON line. Run with the runtime under test: `node child.mjs <scenario>` or `bun child.mjs …`.

import { Share } from "opencode-share";

const scenario = process.argv[2];

function report(value) {
  process.stdout.write(`${JSON.stringify(value)}\n`);
}

function failure(e) {
  return { code: e.code, status: e.status, message: e.message };
}

async function load(options) {
  try {
    Share.init({ url: "http://127.0.0.1:9", ...options });
  } catch (e) {
    return report(failure(e));
  }
  const { path, backend } = Share.library;
  await Share.shutdown(1000);
  report({ ok: true, path, backend });
}

switch (scenario) {
  case "missing-option":
    await load({ libraryPath: "/nonexistent/libopencode_share.so" });
    break;
  case "option":
    await load({ libraryPath: process.env.CHILD_LIBRARY });
    break;
  case "default":
    await load({});
    break;
  case "keep-alive": {
    // Nothing but the pending create holds this process: the service (CHILD_URL, answering
    // after 300 ms) runs in other processes, and nothing awaits at the top level.
    Share.init({ url: process.env.CHILD_URL, timeout_ms: 5000 });
    Share.create("ses_keepalive0000000000000001").then(
      () => {
        report({ created: true, backend: Share.library.backend });
        return Share.shutdown(1000);
      },
      (e) => report({ created: false, error: failure(e) }),
    );
    break;
  }
  default:
    report({ error: `unknown scenario ${scenario}` });
}
