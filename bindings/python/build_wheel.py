#!/usr/bin/env python3
"""Builds the wheel of the Python package with the native library inside.

Usage: build_wheel.py --lib target/release/libopencode_share.so --out target/package

The platform tag is what the library needs, read from it the way auditwheel does: every shared
library it links (NEEDED) must be one the manylinux policy lets a wheel assume, and the newest
glibc symbol version it uses gives the tag `manylinux_2_<minor>_<arch>` (PEP 600). A library
that links anything else gets the plain `linux_<arch>` tag, which pip installs only where it
was built. The Python code is plain ctypes, so the wheel fits every Python 3 (`py3-none`).
Standard library only; the metadata comes from pyproject.toml.
"""

import argparse
import base64
import hashlib
import io
import os
import platform
import re
import shutil
import stat
import subprocess
import sys
import tomllib
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
LIBRARY_FILE = "libopencode_share.so"

# The libraries PEP 600's manylinux policies let a wheel take from the system (auditwheel's
# policy list, the part a Rust cdylib can need).
SYSTEM_LIBRARIES = {
    "libc.so.6", "libm.so.6", "libdl.so.2", "librt.so.1", "libpthread.so.0", "libutil.so.1",
    "libgcc_s.so.1", "libstdc++.so.6", "libresolv.so.2", "libnsl.so.1",
    "ld-linux-x86-64.so.2", "ld-linux-aarch64.so.1",
}

# A fixed timestamp for every entry, so the same inputs give the same wheel.
ZIP_TIME = (1980, 1, 1, 0, 0, 0)


def readelf(*args):
    return subprocess.run(["readelf", *args], check=True, capture_output=True, text=True).stdout


def platform_tag(lib):
    """The wheel's platform tag for `lib`, and why."""
    arch = platform.machine()
    needed = set(re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", readelf("--dynamic", lib)))
    versions = re.findall(r"GLIBC_2\.(\d+)", readelf("--version-info", "--wide", lib))
    others = sorted(needed - SYSTEM_LIBRARIES)
    if others or not versions:
        return f"linux_{arch}", f"links {others or 'no glibc'}: not manylinux"
    minor = max(int(v) for v in versions)
    # manylinux2014 (glibc 2.17) is the oldest policy pip still knows by its PEP 600 name
    minor = max(minor, 17)
    return f"manylinux_2_{minor}_{arch}", f"needs {sorted(needed)}, glibc >= 2.{minor}"


def metadata(project, readme):
    lines = [
        "Metadata-Version: 2.1",
        f"Name: {project['name']}",
        f"Version: {project['version']}",
        f"Summary: {project['description']}",
        f"License: {project['license']['text']}",
        f"Requires-Python: {project['requires-python']}",
    ]
    lines += [f"Classifier: {c}" for c in project.get("classifiers", [])]
    lines += ["Description-Content-Type: text/markdown", "", readme]
    return "\n".join(lines)


def build(lib, out):
    with open(os.path.join(HERE, "pyproject.toml"), "rb") as f:
        project = tomllib.load(f)["project"]
    with open(os.path.join(HERE, project["readme"]), encoding="utf-8") as f:
        readme = f.read()
    name = project["name"].replace("-", "_")
    version = project["version"]
    with open(os.path.join(HERE, "src", name, "__init__.py"), encoding="utf-8") as f:
        declared = re.search(r'^__version__ = "([^"]+)"', f.read(), re.M)
    if not declared or declared.group(1) != version:
        sys.exit(f"build_wheel.py: {name}.__version__ is not the pyproject version {version}")
    tag, why = platform_tag(lib)
    wheel_tag = f"py3-none-{tag}"
    dist_info = f"{name}-{version}.dist-info"
    package = os.path.join(HERE, "src", name)

    files = []  # (archive name, bytes, executable)
    for entry in sorted(os.listdir(package)):
        if entry.endswith(".py"):
            with open(os.path.join(package, entry), "rb") as f:
                files.append((f"{name}/{entry}", f.read(), False))
    with open(lib, "rb") as f:
        files.append((f"{name}/{LIBRARY_FILE}", f.read(), True))
    with open(os.path.join(HERE, "..", "..", "LICENSE"), "rb") as f:
        files.append((f"{dist_info}/LICENSE", f.read(), False))
    files.append((f"{dist_info}/METADATA", metadata(project, readme).encode(), False))
    wheel = f"Wheel-Version: 1.0\nGenerator: opencode-share build_wheel.py\nRoot-Is-Purelib: false\nTag: {wheel_tag}\n"
    files.append((f"{dist_info}/WHEEL", wheel.encode(), False))

    record = io.StringIO()
    for arcname, data, _ in files:
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.write(f"{arcname},sha256={digest},{len(data)}\n")
    record.write(f"{dist_info}/RECORD,,\n")
    files.append((f"{dist_info}/RECORD", record.getvalue().encode(), False))

    os.makedirs(out, exist_ok=True)
    path = os.path.join(out, f"{name}-{version}-{wheel_tag}.whl")
    tmp = path + ".tmp"
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as z:
        for arcname, data, executable in files:
            info = zipfile.ZipInfo(arcname, ZIP_TIME)
            mode = 0o755 if executable else 0o644
            info.external_attr = (stat.S_IFREG | mode) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(info, data)
    shutil.move(tmp, path)
    return path, why


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lib", required=True, help="the release libopencode_share.so")
    parser.add_argument("--out", required=True, help="the folder the wheel goes to")
    args = parser.parse_args()
    if not sys.platform.startswith("linux"):
        sys.exit("build_wheel.py: only Linux wheels are built so far")
    path, why = build(args.lib, args.out)
    print(f"{path} ({why})")


if __name__ == "__main__":
    main()
