// The plugin's share records ({id, url, secret} per session), kept in one JSON file beside the
// spool (0600: it holds secrets), so a later opencode process knows the shares of earlier ones.
// Every change re-reads the file and replaces it atomically (several opencode processes may
// share it).

import { chmodSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";

import type { ShareNext } from "opencode-share";

type Record = ShareNext.Record;

export class ShareFile implements ShareNext.Store {
  constructor(private readonly file: string) {}

  private read(): { [sessionID: string]: Record } {
    try {
      const parsed = JSON.parse(readFileSync(this.file, "utf8"));
      return parsed && typeof parsed === "object" && !Array.isArray(parsed) ? parsed : {};
    } catch {
      return {};
    }
  }

  private write(all: { [sessionID: string]: Record }): void {
    mkdirSync(dirname(this.file), { recursive: true, mode: 0o700 });
    const temp = `${this.file}.${process.pid}.tmp`;
    writeFileSync(temp, JSON.stringify(all), { mode: 0o600 });
    chmodSync(temp, 0o600);
    renameSync(temp, this.file);
  }

  get(sessionID: string): Record | undefined {
    const record = this.read()[sessionID];
    return record && typeof record.id === "string" && typeof record.secret === "string" ? record : undefined;
  }

  set(sessionID: string, record: Record): void {
    const all = this.read();
    all[sessionID] = { id: record.id, url: record.url, secret: record.secret };
    this.write(all);
  }

  delete(sessionID: string): void {
    const all = this.read();
    if (!(sessionID in all)) return;
    delete all[sessionID];
    this.write(all);
  }

  /** The session whose share has this id (the loopback endpoint gets ids, not sessions). */
  sessionOf(shareID: string): string | undefined {
    for (const [sessionID, record] of Object.entries(this.read())) if (record.id === shareID) return sessionID;
    return undefined;
  }
}
