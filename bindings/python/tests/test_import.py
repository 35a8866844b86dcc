"""Importing the package where its native library is missing or broken: a clear ImportError that
says what to do, never a bare OSError."""

import os
import shutil
import subprocess
import sys

import opencode_share


def _import_in(folder, **env):
    """`import opencode_share` in a fresh interpreter whose first path entry is `folder`."""
    clean = {k: v for k, v in os.environ.items() if k != "OPENCODE_SHARE_LIB"}
    clean.update(env)
    return subprocess.run(
        [sys.executable, "-c", "import opencode_share"],
        cwd=folder,
        env=clean,
        capture_output=True,
        text=True,
        timeout=60,
    )


def _copy_without_library(tmp_path):
    """The installed package's Python files, without the library, in tmp_path/opencode_share."""
    installed = os.path.dirname(opencode_share.__file__)
    copy = tmp_path / "opencode_share"
    copy.mkdir()
    for name in os.listdir(installed):
        if name.endswith(".py"):
            shutil.copy(os.path.join(installed, name), copy / name)
    return copy


def test_a_package_without_its_library_says_how_to_get_one(tmp_path):
    _copy_without_library(tmp_path)
    run = _import_in(tmp_path)
    assert run.returncode != 0
    last = run.stderr.strip().splitlines()[-1]
    assert last.startswith("opencode_share._native.LibraryMissing: "), run.stderr
    assert "cannot find its native library libopencode_share.so" in last, last
    assert "pip install opencode-share" in last and "OPENCODE_SHARE_LIB" in last, last
    assert "OSError" not in run.stderr, run.stderr


def test_a_library_that_does_not_load_is_named(tmp_path):
    _copy_without_library(tmp_path)
    broken = tmp_path / "libopencode_share.so"
    broken.write_text("not an ELF file\n")
    run = _import_in(tmp_path, OPENCODE_SHARE_LIB=str(broken))
    assert run.returncode != 0
    last = run.stderr.strip().splitlines()[-1]
    assert last.startswith("opencode_share._native.LibraryMissing: "), run.stderr
    assert f"cannot load its native library {broken}" in last, last
