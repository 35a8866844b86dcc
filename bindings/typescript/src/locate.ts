// Where the native library is looked for, in order: the `libraryPath` option, the
// OPENCODE_SHARE_LIB environment variable, the package's own folder, the repository's
// target/release (for a checkout of opencode-share). A place that was named explicitly (option
// or variable) must hold the file: a typo never falls back to some other copy.

import { existsSync, statSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

/** The library's file name on this platform. */
export function libraryFileName(platform: string = process.platform): string {
  if (platform === "win32") return "opencode_share.dll";
  if (platform === "darwin") return "libopencode_share.dylib";
  return "libopencode_share.so";
}

/** The package's root folder (this module lives in src/ or dist/). */
export function packageRoot(): string {
  return resolve(dirname(fileURLToPath(import.meta.url)), "..");
}

export interface Place {
  /** Where the candidate comes from, for the error message. */
  source: string;
  /** The file, or undefined when the source was not set. */
  file: string | undefined;
  /** The source was named explicitly: if its file is missing, the search stops there. */
  explicit: boolean;
}

/** Every place looked at, in order. */
export function places(option?: string, env: NodeJS.ProcessEnv = process.env): Place[] {
  const name = libraryFileName();
  const root = packageRoot();
  const fromEnv = env.OPENCODE_SHARE_LIB;
  return [
    { source: "the libraryPath option", file: option ? resolve(option) : undefined, explicit: true },
    { source: "OPENCODE_SHARE_LIB", file: fromEnv ? resolve(fromEnv) : undefined, explicit: true },
    { source: "the package folder", file: join(root, name), explicit: false },
    { source: "the repository's target/release", file: resolve(root, "..", "..", "target", "release", name), explicit: false },
  ];
}

/** How the search went: the file to load, or none, and the list of places for messages. */
export interface Search {
  file: string | undefined;
  looked: string[];
}

function isFile(file: string): boolean {
  try {
    return existsSync(file) && statSync(file).isFile();
  } catch {
    return false;
  }
}

/** Walks the places in order; stops at the first file found or at a missing explicit one. */
export function search(option?: string, env: NodeJS.ProcessEnv = process.env): Search {
  const looked: string[] = [];
  for (const place of places(option, env)) {
    if (place.file === undefined) {
      looked.push(`${place.source}: not set`);
      continue;
    }
    if (isFile(place.file)) {
      looked.push(`${place.source}: ${place.file}`);
      return { file: place.file, looked };
    }
    looked.push(`${place.source}: ${place.file} (no such file)`);
    if (place.explicit) return { file: undefined, looked };
  }
  return { file: undefined, looked };
}
