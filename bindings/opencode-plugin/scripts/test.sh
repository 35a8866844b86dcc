#!/usr/bin/env bash
# Tests the opencode plugin inside the real opencode CLI (npm opencode-ai, pinned in
# package.json / package-lock.json): builds the library (target/debug) and the share server,
# installs the npm packages when missing (opencode-ai, the plugin types, playwright-core; and the
# config folder opencode would otherwise install at every start), compiles the opencode-share
# package's dist/ when missing, type-checks the plugin, runs test/unit.test.ts in Bun, then
# test/plugin.test.mjs with node --test, in a network
# namespace with only loopback when `unshare -n` is allowed. Ends with "N passed, M failed".
set -uo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
root="$(cd "$here/../.." && pwd)"
cd "$here"

give_up() { echo "$1" >&2; echo "0 passed, 1 failed"; exit 1; }
step() { echo "== $*"; }

step "cargo build --lib -p opencode-share and -p opencode-share-server (target/debug)"
(cd "$root" && cargo build --locked --quiet --lib && cargo build --locked --quiet -p opencode-share-server) || give_up "the library or the server did not build"

if [ ! -d node_modules ]; then
    # `npm install` from the lockfile, not `npm ci`: opencode-ai's platform packages for other
    # systems are optional, and a registry that lacks them (as the one here does) leaves them
    # out of the lockfile, which `npm ci` then refuses as out of sync
    step "npm install from the lockfile (opencode-ai $(node -p 'require("./package.json").devDependencies["opencode-ai"]'))"
    npm install --no-audit --no-fund --no-save || give_up "npm install failed"
fi
if [ ! -d test/opencode-config/node_modules ]; then
    step "npm ci in test/opencode-config (what opencode installs into its config folder)"
    (cd test/opencode-config && npm ci --no-audit --no-fund --ignore-scripts) || give_up "npm ci in test/opencode-config failed"
fi
ts="$here/../typescript"
if [ ! -f "$ts/dist/bun.js" ]; then
    step "the opencode-share package's dist/ (npm ci, tsc)"
    (cd "$ts" && { [ -d node_modules ] || npm ci --no-audit --no-fund; } && node_modules/.bin/tsc -p .) || give_up "building opencode-share's dist/ failed"
fi
step "tsc --noEmit (the plugin against @opencode-ai/plugin's and Bun's types)"
node_modules/.bin/tsc -p . || give_up "the plugin does not type-check"
[ -x node_modules/opencode-linux-x64/bin/opencode ] || give_up "no opencode binary in node_modules/opencode-linux-x64 (npm ci with optional dependencies)"

log=$(mktemp)
trap 'rm -f "$log"' EXIT

step "bun test test/unit.test.ts (the endpoint, the feed, the options; no opencode)"
node_modules/.bin/bun test ./test/unit.test.ts 2>&1 | tee "$log"
unit_status=${PIPESTATUS[0]}
unit_pass=$(grep -Eo '^ *[0-9]+ pass$' "$log" | tail -1 | tr -dc 0-9)
unit_fail=$(grep -Eo '^ *[0-9]+ fail$' "$log" | tail -1 | tr -dc 0-9)
unit_pass=${unit_pass:-0}
unit_fail=${unit_fail:-0}
if [ "$unit_status" -ne 0 ] && [ "$unit_fail" -eq 0 ]; then unit_fail=1; fi
run_tests='node --test --test-concurrency=1 --test-reporter=tap test/plugin.test.mjs'
if unshare -n true 2>/dev/null; then
    step "node --test test/plugin.test.mjs (opencode $(node_modules/opencode-linux-x64/bin/opencode --version), loopback only: unshare -n)"
    unshare -n sh -c "ip link set lo up && $run_tests" 2>&1 | tee "$log"
else
    step "node --test test/plugin.test.mjs (opencode $(node_modules/opencode-linux-x64/bin/opencode --version))"
    sh -c "$run_tests" 2>&1 | tee "$log"
fi
status=${PIPESTATUS[0]}
pass=$(grep -E '^# pass [0-9]+$' "$log" | tail -1 | tr -dc 0-9)
fail=$(grep -E '^# fail [0-9]+$' "$log" | tail -1 | tr -dc 0-9)
pass=${pass:-0}
fail=${fail:-0}
if [ "$status" -ne 0 ] && [ "$fail" -eq 0 ]; then fail=1; fi
pass=$((pass + unit_pass)); fail=$((fail + unit_fail))
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
