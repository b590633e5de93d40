#!/usr/bin/env bash
# Builds Stratus and the example apps and serves them on a local node:
# gateway http://127.0.0.1:8080, admin API http://127.0.0.1:8081. Ctrl-C stops it.
#
# Stratus is built in cargo's `dev` profile, with its dependencies optimised
# (Cargo.toml): the build `bash scripts/test.sh` uses, so the README's two
# commands compile the workspace once. Production builds are `cargo build
# --release`.
set -euo pipefail
cd "$(dirname "$0")/.."
started=$SECONDS
step() { printf '\n== %s\n' "$*"; }

rustup target list --installed | grep -qx wasm32-wasip2 || rustup target add wasm32-wasip2
# The event-driven examples take MQTT messages from Mosquitto on 1883.
bash scripts/brokers.sh

step "the Python and JavaScript toolchains (pinned, installed when missing) and their examples"
bash scripts/guest-toolchains.sh

step "the Rust examples (wasm32-wasip2)"
env -u CARGO_TARGET_DIR cargo build --release --target wasm32-wasip2 --manifest-path examples/Cargo.toml

target=${CARGO_TARGET_DIR:-target}
case $target in
/*) bin=$target/debug ;;
*) bin=$PWD/$target/debug ;;
esac
if [ -x "$bin/stratus" ]; then
    step "Stratus (only what changed since the last build)"
else
    step "Stratus: the first build takes about 20 minutes on 2 cores (most of it wasmtime); later ones take seconds"
fi
build_started=$SECONDS
cargo build --bin stratus
echo "built $bin/stratus in $((SECONDS - build_started)) s"

step "serving the examples ($((SECONDS - started)) s so far)"
echo "The CLI is $bin/stratus; to run it as \`stratus\` in another shell:"
echo "  export PATH=\"$bin:\$PATH\""
# Every example is built above, so `up` only deploys them.
exec "$bin/stratus" up --no-build \
    examples/hello examples/json-api examples/payments examples/iot-telemetry \
    examples/shop examples/python-notes examples/js-counter "$@"
