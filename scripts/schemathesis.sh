#!/usr/bin/env bash
# Schemathesis, the property-based API fuzzer the contract test
# (crates/cli/tests/api_contract.rs) runs against a live node. Installs the
# pinned release from PyPI into a virtualenv of its own, so it never mixes
# with the system's Python packages, and prints the path of its `st`.
#
#   export STRATUS_TEST_SCHEMATHESIS="$(bash scripts/schemathesis.sh)"
set -euo pipefail

SCHEMATHESIS_VERSION=4.32.5
dir="${STRATUS_TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/stratus}/schemathesis-$SCHEMATHESIS_VERSION"
st="$dir/bin/st"

if ! "$st" --version 2>/dev/null | grep -q "version $SCHEMATHESIS_VERSION"; then
    echo "installing schemathesis $SCHEMATHESIS_VERSION (PyPI) into $dir" >&2
    rm -rf "$dir"
    python3 -m venv "$dir" >&2
    "$dir/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION" >&2
    "$st" --version >&2
fi
echo "$st"
