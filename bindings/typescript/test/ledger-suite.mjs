// The ledger through the bindings, the same for Bun and Node, against the real share server
// (support/server.mjs): `list()` shows a share made in an earlier run (its URL and state, never
// its secret) and `removeKnown()` takes it down from the ledger alone.

import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { Share, ShareError } from "opencode-share";

import { config } from "./support/checks.mjs";
import { startService } from "./support/testkit.mjs";

const SID = "ses_tsledger0000000000000007";

/** @param {{ test: (name: string, fn: () => Promise<void> | void, timeoutMs?: number) => void }} t */
export function defineLedgerSuite({ test }) {
  test("ledger: list() shows a share of an earlier run without its secret; removeKnown() takes it down", async () => {
    const server = await startService({ hosted: false });
    const dir = mkdtempSync(join(tmpdir(), "share-ledger-"));
    const spoolDir = join(dir, "spool");
    try {
      Share.init(config(server, { spoolDir }));
      const { secret, url } = await Share.create(SID);
      Share.sync(`session/info/${SID}`, { title: "ledger" });
      await Share.flush(5000);
      await Share.shutdown(3000);

      // a new run that kept nothing of the last
      Share.init(config(server, { spoolDir }));
      const entries = Share.list();
      assert.equal(entries.length, 1);
      const [entry] = entries;
      assert.equal(entry.session, SID);
      assert.equal(entry.url, url);
      assert.equal(entry.state, "shared");
      assert.equal(entry.protocol, "v1");
      assert.ok(entry.created > 0 && entry.synced >= entry.created, JSON.stringify(entry));
      assert.ok(!JSON.stringify(entries).includes(secret));

      await Share.removeKnown(SID);
      assert.deepEqual(Share.list(), []);
      const gone = await fetch(`${server.url}/share_data?id=${SID.slice(-8)}`);
      assert.equal(gone.status, 404);
      await assert.rejects(Share.removeKnown(SID), (e) => {
        assert.ok(e instanceof ShareError);
        assert.equal(e.code, "SHARE_ERR_INVALID_ARGUMENT");
        assert.match(e.message, /ledger has no share/);
        return true;
      });
    } finally {
      await Share.shutdown(3000).catch(() => {});
      await server.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
}
