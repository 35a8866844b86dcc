"""hatchling's build hook for the Python package: puts the native library inside the wheel.

The library is OPENCODE_SHARE_LIB_FILE when that is set (scripts/package passes the release
build it has checked: linked against glibc 2.17 by cargo-zigbuild, so the tag says
manylinux_2_17), else what `cargo build --release --lib` makes in the opencode-share
checkout this folder sits in (CARGO_TARGET_DIR honoured). Without a library it stops with what to
do, so `pip install bindings/python` never installs a package that cannot load.

The platform tag is what the library needs, read from it the way auditwheel does: every shared
library it links (NEEDED) must be one the manylinux policy lets a wheel assume, and the newest
glibc symbol version it uses gives `manylinux_2_<minor>_<arch>` (PEP 600; a plain
`cargo build --release` on a current distribution needs 2.34 or newer). A library that links
anything else, or a machine without readelf, gets `linux_<arch>`, which pip installs only where
it was built. The Python code is plain ctypes, so the wheel fits every Python 3 (`py3-none`).
"""

import os
import platform
import re
import shutil
import subprocess
import sys

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

LIBRARY_FILE = "libopencode_share.so"

# The libraries PEP 600's manylinux policies let a wheel take from the system (auditwheel's
# policy list, the part a Rust cdylib can need).
SYSTEM_LIBRARIES = {
    "libc.so.6", "libm.so.6", "libdl.so.2", "librt.so.1", "libpthread.so.0", "libutil.so.1",
    "libgcc_s.so.1", "libstdc++.so.6", "libresolv.so.2", "libnsl.so.1",
    "ld-linux-x86-64.so.2", "ld-linux-aarch64.so.1",
}


def stop(message):
    """Ends the build with `message` (pip shows it under the build's output)."""
    raise SystemExit(f"\nopencode-share: {message}\n")


def readelf(*args):
    return subprocess.run(["readelf", *args], check=True, capture_output=True, text=True).stdout


def platform_tag(lib):
    """The wheel's platform tag for `lib`, and why."""
    arch = platform.machine()
    if shutil.which("readelf") is None:
        return f"linux_{arch}", "no readelf to read the library's needs: not manylinux"
    needed = set(re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", readelf("--dynamic", lib)))
    versions = re.findall(r"GLIBC_2\.(\d+)", readelf("--version-info", "--wide", lib))
    others = sorted(needed - SYSTEM_LIBRARIES)
    if others or not versions:
        return f"linux_{arch}", f"links {others or 'no glibc'}: not manylinux"
    # manylinux2014 (glibc 2.17) is the oldest policy pip still knows by its PEP 600 name
    minor = max(17, *(int(v) for v in versions))
    return f"manylinux_2_{minor}_{arch}", f"needs {sorted(needed)}, glibc >= 2.{minor}"


def checkout_of(folder):
    """The opencode-share checkout `folder` (bindings/python) belongs to, or None."""
    repo = os.path.dirname(os.path.dirname(folder))
    try:
        with open(os.path.join(repo, "Cargo.toml"), encoding="utf-8") as f:
            manifest = f.read()
    except OSError:
        return None
    return repo if re.search(r'^name = "opencode-share"$', manifest, re.M) else None


def build_library(repo):
    """`cargo build --release --lib` in `repo`; the library's path."""
    if shutil.which("cargo") is None:
        stop(
            "building this package compiles the native library, and there is no cargo on PATH.\n"
            "Install Rust (https://rustup.rs) and run pip again, or install a built wheel\n"
            "(scripts/package writes one into target/package/), or set OPENCODE_SHARE_LIB_FILE\n"
            "to a libopencode_share.so built already."
        )
    print("opencode-share: cargo build --release --lib (a few minutes the first time)", file=sys.stderr)
    built = subprocess.run(["cargo", "build", "--release", "--locked", "--lib"], cwd=repo, stdout=sys.stderr)
    if built.returncode != 0:
        stop(f"cargo build --release --lib failed in {repo} (its output is above)")
    target = os.environ.get("CARGO_TARGET_DIR") or "target"
    return os.path.join(repo, target, "release", LIBRARY_FILE)


class NativeLibrary(BuildHookInterface):
    PLUGIN_NAME = "custom"

    def initialize(self, version, build_data):
        if self.target_name != "wheel":
            return
        if not sys.platform.startswith("linux"):
            stop(f"only Linux wheels are built so far (this is {sys.platform})")
        lib = os.environ.get("OPENCODE_SHARE_LIB_FILE")
        if not lib:
            repo = checkout_of(self.root)
            if repo is None:
                stop(
                    f"{self.root} is not inside an opencode-share checkout, so there is no Rust\n"
                    "source to build the native library from. Build from a checkout\n"
                    "(pip install path/to/opencode-share/bindings/python), or set\n"
                    "OPENCODE_SHARE_LIB_FILE to a libopencode_share.so built already."
                )
            lib = build_library(repo)
        if not os.path.isfile(lib):
            stop(f"{lib} is not a file: no native library to put into the wheel")
        tag, why = platform_tag(lib)
        print(f"opencode-share: {lib} -> wheel tag py3-none-{tag} ({why})", file=sys.stderr)
        build_data["pure_python"] = False
        build_data["tag"] = f"py3-none-{tag}"
        if version == "editable":
            return  # the package then loads the checkout's target/release copy (_native.py)
        build_data["force_include"][lib] = f"opencode_share/{LIBRARY_FILE}"
        license_file = os.path.join(os.path.dirname(os.path.dirname(self.root)), "LICENSE")
        if os.path.isfile(license_file):
            build_data["extra_metadata"][license_file] = "LICENSE"
