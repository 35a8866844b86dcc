#!/usr/bin/env bash
# Tests the Python wheel as a user gets it: a fresh virtual environment, the wheel from
# target/package/ (scripts/package builds it) and pytest and auditwheel installed into it from a
# local wheelhouse (target/wheelhouse; scripts/wheelhouse fetches it from PyPI once);
# auditwheel must find the wheel's platform tag right, then bindings/python/tests run by pytest
# from outside the source tree, so `import opencode_share` is the installed copy.
# Ends with one line: "N passed, N failed" (pytest's tests and the tag check).
set -uo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
root="$(cd "$here/../.." && pwd)"
target=${CARGO_TARGET_DIR:-target}
case "$target" in /*) ;; *) target=$root/$target ;; esac
packages=${OPENCODE_SHARE_PACKAGE_DIR:-$target/package}
venv=$target/python-venv

give_up() { echo "$1" >&2; echo "0 passed, 1 failed"; exit 1; }

wheel=$(ls "$packages"/opencode_share-*.whl 2>/dev/null | head -1)
[ -n "$wheel" ] || give_up "no wheel in $packages: run scripts/package first"
wheelhouse=$("$root/scripts/wheelhouse") || give_up "cannot fill the wheelhouse (scripts/wheelhouse)"

echo "== fresh venv, pip install $(basename "$wheel"), pytest and auditwheel (no index)"
rm -rf "$venv"
python3 -m venv "$venv" || give_up "python3 -m venv failed (Debian: apt-get install python3-venv)"
"$venv/bin/pip" install --quiet --no-index --find-links "$wheelhouse" pytest auditwheel "$wheel" || give_up "pip install failed"

tag=$(basename "$wheel" .whl); tag=${tag##*-}
echo "== auditwheel show: the platform tag is $tag"
tag_ok=0
if "$venv/bin/auditwheel" show "$wheel" | tr -s ' \n' ' ' | grep -q "consistent with the following platform tag: \"$tag\""; then
    tag_ok=1
else
    "$venv/bin/auditwheel" show "$wheel"
    echo "auditwheel does not agree with the tag $tag" >&2
fi

echo "== cargo build -p opencode-share-server -p testkit --bins (the real server and the testkit's proxy the tests talk to)"
(cd "$root" && cargo build --locked --quiet -p opencode-share-server -p testkit --bins) || give_up "the server or the testkit's proxy did not build"

echo "== pytest ($("$venv/bin/python" --version))"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
# run from an empty folder: nothing of the source tree is importable
work=$(mktemp -d)
(cd "$work" && OPENCODE_SHARE_HEADER="$root/include/opencode_share.h" \
    timeout 600 "$venv/bin/python" -m pytest -p no:cacheprovider -q "$here/tests" 2>&1) | tee "$log"
status=${PIPESTATUS[0]}
rm -rf "$work"
passed=$(grep -Eo '[0-9]+ passed' "$log" | tail -1 | tr -dc 0-9)
failed=$(grep -Eo '[0-9]+ (failed|error)' "$log" | awk '{s+=$1} END {print s+0}')
passed=${passed:-0}
if [ "$status" -ne 0 ] && [ "$failed" -eq 0 ]; then failed=1; fi
if [ "$tag_ok" -eq 1 ]; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
