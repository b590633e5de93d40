#!/usr/bin/env bash
# Builds Stratus and the example apps and serves them on a local node:
# gateway http://127.0.0.1:8080, admin API http://127.0.0.1:8081. Ctrl-C stops it.
set -euo pipefail
cd "$(dirname "$0")/.."
rustup target list --installed | grep -qx wasm32-wasip2 || rustup target add wasm32-wasip2
# The event-driven examples take MQTT messages from Mosquitto on 1883.
bash scripts/brokers.sh
# The Python and JavaScript examples need componentize-py and jco (pinned,
# installed when missing).
bash scripts/guest-toolchains.sh
exec cargo run --release --quiet --bin stratus -- up \
  examples/hello examples/json-api examples/payments examples/iot-telemetry \
  examples/shop examples/python-notes examples/js-counter "$@"
