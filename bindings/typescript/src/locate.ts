// Where the native library is looked for, in order: the `libraryPath` option, the
// OPENCODE_SHARE_LIB environment variable, the package's own folder, the platform package
// (`opencode-share-linux-x64-gnu` and the like, an optional dependency that npm installs only on
// its platform, as napi-rs and koffi packages do), the repository's target/release (for a
// checkout of opencode-share). A place that was named explicitly (option or variable) must
// hold the file: a typo never falls back to some other copy.

import { existsSync, statSync } from "node:fs";
import { createRequire } from "node:module";
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

/** glibc or musl, for the platform package's name on Linux (napi-rs's `gnu` / `musl`). */
export function linuxLibc(): "gnu" | "musl" {
  try {
    const report = process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined;
    if (report?.header && "glibcVersionRuntime" in report.header) {
      return report.header.glibcVersionRuntime ? "gnu" : "musl";
    }
  } catch {
    // no process.report here: look for musl's loader instead
  }
  return existsSync(`/lib/ld-musl-${process.arch === "x64" ? "x86_64" : process.arch}.so.1`) ? "musl" : "gnu";
}

/** The name of the npm package that carries the library for this platform. */
export function platformPackage(platform: string = process.platform, arch: string = process.arch): string {
  const libc = platform === "linux" ? `-${linuxLibc()}` : "";
  return `opencode-share-${platform}-${arch}${libc}`;
}

/** The library file inside the installed platform package, or undefined if it is not installed. */
export function platformPackageFile(): string | undefined {
  try {
    const manifest = createRequire(import.meta.url).resolve(`${platformPackage()}/package.json`);
    return join(dirname(manifest), libraryFileName());
  } catch {
    return undefined;
  }
}

/** True when this package was installed by a package manager (it sits in a node_modules). */
export function installed(root: string = packageRoot()): boolean {
  return root.split(/[\\/]/).includes("node_modules");
}

/** What to do when no library was found: an installed package misses its platform package (npm
 * installs it with opencode-share unless optional dependencies are omitted); a checkout misses
 * its release build. */
export function missingAdvice(root: string = packageRoot()): string {
  const named = "or pass libraryPath, or set OPENCODE_SHARE_LIB to the library's path.";
  if (installed(root)) {
    const platform = platformPackage();
    return `the platform package ${platform} is not installed (npm skips it when optional dependencies are omitted, or on another platform). Install it: \`npm install ${platform}\`, ${named}`;
  }
  return `build it in this opencode-share checkout: \`cargo build --release\`, ${named}`;
}

export interface Place {
  /** Where the candidate comes from, for the error message. */
  source: string;
  /** The file, or undefined when the source was not set. */
  file: string | undefined;
  /** The source was named explicitly: if its file is missing, the search stops there. */
  explicit: boolean;
  /** What the message says when `file` is undefined (default "not set"). */
  absent?: string;
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
    { source: `the platform package ${platformPackage()}`, file: platformPackageFile(), explicit: false, absent: "not installed" },
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
      looked.push(`${place.source}: ${place.absent ?? "not set"}`);
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
