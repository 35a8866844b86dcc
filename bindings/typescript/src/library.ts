// The native library: the loader the entry module installs, and the one copy a process loads.

import { resolve as resolvePath } from "node:path";

import { drainEvents } from "./drain.js";
import { libraryFileName, missingAdvice, search } from "./locate.js";
import type { Loader, Native, NativeHooks } from "./native.js";
import { opDone } from "./ops.js";
import { updateSink } from "./sink.js";
import { state } from "./state.js";
import { LIBRARY, ShareError, invalid } from "./status.js";
import type { LibraryInfo } from "./types.js";

/** The library's major.minor this binding was written for; any patch release loads. */
const COMPATIBLE = "0.2";

/** What the loader calls on the JS thread when the library's notifier announces something. */
const hooks: NativeHooks = {
  opDone,
  events: drainEvents,
  hurried: () => state.held.size > 0,
};

/** Called once by the entry module (bun.ts or node.ts) with its loader. */
export function install(load: Loader): void {
  state.loader ??= load;
}

/** Finds and loads the library once per process (a second copy would be a second library). */
export function load(option: string | undefined): Native {
  const native = state.native;
  if (native) {
    if (option !== undefined && resolvePath(option) !== native.path) {
      throw invalid(`the library is already loaded from ${native.path}; a process loads it once (libraryPath ${option} was given)`);
    }
    return native;
  }
  const loader = state.loader;
  if (!loader) throw new ShareError(LIBRARY, "no loader installed: import opencode-share, not its internal modules");
  const found = search(option);
  const looked = `Looked at: ${found.looked.join("; ")}.`;
  if (!found.file) throw new ShareError(LIBRARY, `cannot find ${libraryFileName()}: ${missingAdvice()} ${looked}`);
  let loaded: Native;
  try {
    loaded = loader(found.file, hooks);
  } catch (e) {
    const reason = e instanceof Error ? e.message : String(e);
    throw new ShareError(LIBRARY, `cannot load ${found.file}: ${reason}. ${looked}`, { cause: e });
  }
  const version = loaded.version();
  if (version.split(".").slice(0, 2).join(".") !== COMPATIBLE) {
    throw new ShareError(LIBRARY, `${found.file} is opencode-share ${version}; this binding needs ${COMPATIBLE}.x. ${looked}`);
  }
  state.native = loaded;
  updateSink();
  return loaded;
}

/** The loaded library, or undefined before the first `init`. */
export function library(): LibraryInfo | undefined {
  const n = state.native;
  return n && { backend: n.backend, path: n.path, version: n.version() };
}
