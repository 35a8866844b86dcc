// What a killed process left unsent. opencode stores every item in its database before its bus
// delivers it to the plugin, so a process killed in between (SIGKILL, a crash, power loss) took
// items with it that the spool never had (a late title, the last step's totals). Each process
// keeps a marker file, <stateDir>/running/<pid>.json, naming the sessions it fed; a clean exit
// removes it. The next start claims the markers of processes no longer alive, and the plugin
// catches those sessions up from opencode's database.

import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";

type Marker = { pid: number; started?: string; sessions: string[] };

/** A process's start time as /proc gives it (clock ticks since boot), to tell a reused pid apart. */
function startTime(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // the fields after the command's closing parenthesis; starttime is field 22 of the whole line
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19];
  } catch {
    return undefined;
  }
}

/** Whether the process that wrote `marker` still runs. */
function alive(marker: Marker): boolean {
  try {
    process.kill(marker.pid, 0);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "EPERM") return false;
  }
  const now = startTime(marker.pid);
  return marker.started === undefined || now === undefined || now === marker.started;
}

/** This process's marker: the sessions it fed, on disk from the first one until a clean exit. */
export class RunMarker {
  private readonly sessions = new Set<string>();
  private readonly file: string;

  constructor(
    private readonly dir: string,
    private readonly pid = process.pid,
  ) {
    this.file = join(dir, `${pid}.json`);
  }

  /** Adds sessions; the file is rewritten only when one is new. */
  note(sessionIDs: Iterable<string>): void {
    const before = this.sessions.size;
    for (const id of sessionIDs) this.sessions.add(id);
    if (this.sessions.size === before) return;
    try {
      mkdirSync(this.dir, { recursive: true, mode: 0o700 });
      const marker: Marker = { pid: this.pid, started: startTime(this.pid), sessions: [...this.sessions] };
      writeFileSync(`${this.file}.tmp`, JSON.stringify(marker), { mode: 0o600 });
      renameSync(`${this.file}.tmp`, this.file);
    } catch {
      // best effort: without a marker a crash loses what it lost before markers existed
    }
  }

  /** A clean exit: nothing to catch up for this process. */
  clear(): void {
    rmSync(this.file, { force: true });
  }
}

/**
 * The sessions fed by processes that ended without a clean exit. Each such marker is claimed
 * (renamed, so that two starting processes do not both take it) and removed.
 */
export function orphanedSessions(dir: string): string[] {
  if (!existsSync(dir)) return [];
  const sessions = new Set<string>();
  let names: string[];
  try {
    names = readdirSync(dir).filter((name) => /^\d+\.json$/.test(name));
  } catch {
    return [];
  }
  for (const name of names) {
    const file = join(dir, name);
    let marker: Marker;
    try {
      marker = JSON.parse(readFileSync(file, "utf8"));
    } catch {
      continue;
    }
    if (typeof marker?.pid !== "number" || !Array.isArray(marker.sessions) || marker.pid === process.pid || alive(marker)) continue;
    const claimed = `${file}.${process.pid}.claimed`;
    try {
      renameSync(file, claimed);
    } catch {
      continue; // another process claimed it first
    }
    for (const id of marker.sessions) if (typeof id === "string") sessions.add(id);
    rmSync(claimed, { force: true });
  }
  return [...sessions];
}
