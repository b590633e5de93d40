#!/usr/bin/env bash
# The console's end-to-end test (crates/cli/tests/console.rs) drives a real
# browser: Debian's Chromium, through playwright-core, with axe-core for the
# accessibility check (both pinned in console/package.json). Installs what
# is missing and prints the path of Chromium.
#
#   export STRATUS_TEST_CHROMIUM="$(bash scripts/browser.sh)"
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v chromium >/dev/null; then
    echo "installing Debian's chromium" >&2
    apt-get install -y -q --no-install-recommends chromium >&2 ||
        { apt-get update -q >&2 && apt-get install -y -q --no-install-recommends chromium >&2; }
fi
if [ ! -d console/node_modules/playwright-core ] || [ ! -d console/node_modules/axe-core ] ||
    [ console/package-lock.json -nt console/node_modules/.package-lock.json ]; then
    echo "installing the console's npm packages (console/package-lock.json)" >&2
    (cd console && npm ci --no-audit --no-fund --loglevel=error >&2)
fi
command -v chromium
