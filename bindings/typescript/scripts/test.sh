#!/usr/bin/env bash
# Tests the TypeScript bindings in real Bun (bun test, bun:ffi) and real Node (node --test,
# koffi): builds the release library and the share server, installs the npm dev dependencies if
# missing, compiles dist/ with tsc, runs the same behaviour suites (Share under "v1", ShareNext
# under "next") in both runtimes against the real share server behind the testkit's fault proxy
# on loopback, and ends with one line:
# "N passed, N failed" (both runtimes added up).
set -uo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
root="$(cd "$here/../.." && pwd)"
cd "$here"

passed=0
failed=0
status=0
log=$(mktemp)
trap 'rm -f "$log"' EXIT

step() { echo "== $*"; }
give_up() { echo "$1" >&2; echo "$passed passed, $((failed + 1)) failed"; exit 1; }

# OPENCODE_SHARE_TEST_LIB=<file>: test that library (scripts/test passes the release artifact
# scripts/package built), copied for the run into the package's own folder, where an installed
# package carries it; else the repository's release build
own_lib="$here/libopencode_share.so"
if [ -n "${OPENCODE_SHARE_TEST_LIB:-}" ]; then
    step "the library under test: $OPENCODE_SHARE_TEST_LIB (copied to the package's folder for this run)"
    [ -f "$OPENCODE_SHARE_TEST_LIB" ] || give_up "OPENCODE_SHARE_TEST_LIB: no such file"
    install -m 0755 "$OPENCODE_SHARE_TEST_LIB" "$own_lib" || give_up "cannot copy the library to $own_lib"
    trap 'rm -f "$log" "$own_lib"' EXIT
else
    step "cargo build --release (the optimised libopencode_share the bindings load: a few minutes the first time, then reused)"
    (cd "$root" && cargo build --release --locked --quiet) || give_up "the release library did not build"
fi
# the real server every test talks to, and the testkit's fault proxy in front of it: the debug
# builds that scripts/test's cargo test already made (a release build would add minutes to CI)
step "cargo build -p opencode-share-server -p testkit --bins (target/debug)"
(cd "$root" && cargo build --locked --quiet -p opencode-share-server -p testkit --bins) || give_up "the share server or the testkit's proxy did not build"

if [ ! -d node_modules ]; then
    step "npm ci"
    npm ci --no-audit --no-fund || give_up "npm ci failed"
fi

# node_modules/.bin/bun is the real binary once bun's postinstall ran; the platform package
# holds the same binary and needs no script (npm may skip install scripts).
bun="$here/node_modules/.bin/bun"
if ! "$bun" --version >/dev/null 2>&1; then
    bun=$(ls "$here"/node_modules/@oven/bun-*/bin/bun 2>/dev/null | head -1)
    [ -n "$bun" ] && "$bun" --version >/dev/null 2>&1 || give_up "no working bun in node_modules (npm ci, or npm install --allow-scripts=bun)"
fi

step "tsc (dist/ and the type check of test/types.ts)"
node_modules/.bin/tsc -p . || give_up "tsc failed"
node_modules/.bin/tsc -p tsconfig.test.json || give_up "the type check of test/types.ts failed"

step "bun test ($("$bun" --version), bun:ffi)"
"$bun" test ./test/bun.test.ts 2>&1 | tee "$log"
bun_status=${PIPESTATUS[0]}
bun_pass=$(grep -Eo '^ *[0-9]+ pass$' "$log" | tail -1 | tr -dc 0-9)
bun_fail=$(grep -Eo '^ *[0-9]+ fail$' "$log" | tail -1 | tr -dc 0-9)
bun_pass=${bun_pass:-0}
bun_fail=${bun_fail:-0}
if [ "$bun_status" -ne 0 ] && [ "$bun_fail" -eq 0 ]; then bun_fail=1; fi
passed=$((passed + bun_pass)); failed=$((failed + bun_fail))

step "node --test ($(node --version), koffi)"
node --expose-gc --test --test-reporter=tap test/node.test.mjs 2>&1 | tee "$log"
node_status=${PIPESTATUS[0]}
node_pass=$(grep -E '^# pass [0-9]+$' "$log" | tail -1 | tr -dc 0-9)
node_fail=$(grep -E '^# fail [0-9]+$' "$log" | tail -1 | tr -dc 0-9)
node_pass=${node_pass:-0}
node_fail=${node_fail:-0}
if [ "$node_status" -ne 0 ] && [ "$node_fail" -eq 0 ]; then node_fail=1; fi
passed=$((passed + node_pass)); failed=$((failed + node_fail))

echo "bun: $bun_pass passed, $bun_fail failed; node: $node_pass passed, $node_fail failed"
if [ "$failed" -ne 0 ]; then status=1; fi
echo "$passed passed, $failed failed"
exit $status
