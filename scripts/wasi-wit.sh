#!/usr/bin/env bash
# Regenerates templates/wit/wasi/: the standard WASI 0.2 WIT (cli, clocks,
# filesystem, http, io, random, sockets) that Python and JavaScript functions
# build against, and that `stratus new` writes into a new function.
#
# The source is the WIT of the wasmtime-wasi-http crate the node links
# (WASI 0.2.12, in cargo's registry once the workspace has been fetched),
# renumbered to 0.2.10 for the JavaScript engine of componentize-js
# (StarlingMonkey), which exports exactly `wasi:http/incoming-handler@0.2.10`
# and merges a function's world into its own WIT, which must then agree:
#   - `exit-with-code`, stable since 0.2.12, is the unstable feature it was;
#   - `network-error-code` (wasi:sockets) loses its feature gate: the engine
#     has it (nothing else in a function's world can reach it).
# Every other feature gate stays: a gated function a component imported
# would be missing on the node. The 0.2.x releases are semver-compatible,
# the node accepts any of them, and Python functions use the same files.
#
# Only needed when the node's wasmtime is upgraded; the output is committed.
set -euo pipefail
cd "$(dirname "$0")/.."

crate=$(grep -A1 '^name = "wasmtime-wasi-http"$' Cargo.lock | sed -n 's/^version = "\(.*\)"$/\1/p')
cargo fetch --quiet
src=$(ls -d "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/"wasmtime-wasi-http-$crate"/wit/deps | head -n 1)
out=templates/wit/wasi
mkdir -p "$out"
for file in cli clocks filesystem http io random sockets; do
    {
        echo "// The standard WASI \`$file\` WIT of wasmtime-wasi-http $crate, renumbered"
        echo "// to version 0.2.10 by scripts/wasi-wit.sh (see there); do not edit."
        sed -e 's/\(wasi:[a-z-]*\(\/[a-z-]*\)\{0,1\}\)@0\.2\.12/\1@0.2.10/g' \
            -e 's/@since(version = 0\.2\.12)/@unstable(feature = cli-exit-with-code)/' \
            -e '/^ *@unstable(feature = network-error-code)$/d' \
            "$src/$file.wit"
    } >"$out/$file.wit"
done
if grep -n '@0\.2\.1[1-9]\|= 0\.2\.1[1-9]\|network-error-code)' "$out"/*.wit; then
    echo "error: a newer WASI version or the network-error-code gate is left above; extend the changes" >&2
    exit 1
fi
echo "wrote $out from $src"
