#!/usr/bin/env bash
# Runs every test of the workspace. Installs the wasm32-wasip2 and wasip1 targets and the
# Python and JavaScript guest toolchains and promtool when they are missing
# (the tests build guest components with them, and check /metrics) and
# starts NATS and Mosquitto when they are not running.
set -euo pipefail
cd "$(dirname "$0")/.."
rustup target list --installed | grep -qx wasm32-wasip2 || rustup target add wasm32-wasip2
# The Spin app of the portability tests is built as Spin builds it.
rustup target list --installed | grep -qx wasm32-wasip1 || rustup target add wasm32-wasip1
env -u CARGO_TARGET_DIR cargo build --release --target wasm32-wasip2 --quiet --manifest-path examples/Cargo.toml
env -u CARGO_TARGET_DIR cargo build --release --target wasm32-wasip2 --quiet --manifest-path tests/guests/Cargo.toml
env -u CARGO_TARGET_DIR cargo build --release --target wasm32-wasip1 --quiet --manifest-path tests/spin-app/Cargo.toml
# The Python and JavaScript toolchains (pinned, installed when missing) and
# the examples built with them.
bash scripts/guest-toolchains.sh
# The trigger tests talk to real brokers on loopback.
bash scripts/brokers.sh
# The cluster tests start (and kill) NATS servers of their own: a current
# release, pinned.
STRATUS_TEST_NATS_SERVER="${STRATUS_TEST_NATS_SERVER:-$(bash scripts/nats-server.sh)}"
export STRATUS_TEST_NATS_SERVER
# The API contract test runs schemathesis (pinned, from PyPI) against a
# live node.
STRATUS_TEST_SCHEMATHESIS="${STRATUS_TEST_SCHEMATHESIS:-$(bash scripts/schemathesis.sh)}"
export STRATUS_TEST_SCHEMATHESIS
# The console test drives Debian's Chromium with playwright-core (pinned in
# console/package.json).
STRATUS_TEST_CHROMIUM="${STRATUS_TEST_CHROMIUM:-$(bash scripts/browser.sh)}"
export STRATUS_TEST_CHROMIUM
# The metrics test has promtool (Debian's prometheus package) read /metrics;
# without it that check is skipped, except in CI.
if ! command -v promtool >/dev/null; then
    echo "installing Debian's prometheus package (promtool)"
    apt-get install -y -q --no-install-recommends prometheus >/dev/null ||
        { apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends prometheus >/dev/null; } ||
        echo "warning: cannot install prometheus; the promtool check will be skipped (or fail with CI set)" >&2
fi
# The end-to-end tests mostly wait on the servers and brokers they start,
# so they run two to a core; a test that waits on a timeout then overlaps
# the rest instead of holding up a thread.
export RUST_TEST_THREADS="${RUST_TEST_THREADS:-$(($(nproc) * 2))}"
cargo test --workspace "$@"
