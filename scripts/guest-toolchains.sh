#!/usr/bin/env bash
# The Python and JavaScript guest toolchains, and the example functions built
# with them. Installs, only when missing or at another version:
#   - componentize-py (PyPI), with pip, into the current Python;
#   - jco and componentize-js (npm), into examples/node_modules from
#     examples/package-lock.json;
# then builds examples/python-notes and examples/js-counter with the `build`
# command of their stratus.toml, when a source is newer than the component.
# Quick when everything is there.
#
#   bash scripts/guest-toolchains.sh              # install what is missing, build
#   bash scripts/guest-toolchains.sh --no-install # build with the tools present;
#                                                 # skip a language whose tool is missing
set -euo pipefail
cd "$(dirname "$0")/.."

# Pinned versions. The JavaScript ones are pinned in examples/package.json
# (and, with everything they pull in, in its package-lock.json); the `stratus
# new` templates pin the same (crates/cli/src/commands/new.rs checks it).
COMPONENTIZE_PY_VERSION=0.25.1

install=true
case "${1:-}" in
"") ;;
--no-install) install=false ;;
*)
    echo "usage: bash scripts/guest-toolchains.sh [--no-install]" >&2
    exit 2
    ;;
esac

have_python=false
if [ "$(componentize-py --version 2>/dev/null)" = "componentize-py $COMPONENTIZE_PY_VERSION" ]; then
    have_python=true
elif $install; then
    echo "installing componentize-py $COMPONENTIZE_PY_VERSION"
    python3 -m pip install --quiet --disable-pip-version-check "componentize-py==$COMPONENTIZE_PY_VERSION"
    hash -r
    if [ "$(componentize-py --version 2>/dev/null)" != "componentize-py $COMPONENTIZE_PY_VERSION" ]; then
        echo "error: componentize-py $COMPONENTIZE_PY_VERSION was installed but \`componentize-py\` on PATH is $(command -v componentize-py || echo missing); add pip's script directory to PATH" >&2
        exit 1
    fi
    have_python=true
fi

# Whether examples/node_modules holds exactly what the lock file pins.
js_installed() {
    [ -x examples/node_modules/.bin/jco ] &&
        [ examples/node_modules/.package-lock.json -nt examples/package-lock.json ]
}
have_js=false
if js_installed; then
    have_js=true
elif $install; then
    echo "installing jco and componentize-js (examples/package-lock.json)"
    (cd examples && npm ci --no-audit --no-fund --loglevel=error)
    # The marker must end up newer than the lock, even within the same second.
    touch examples/node_modules/.package-lock.json
    have_js=true
fi

# Builds an example with its manifest's `build` command unless the component
# is newer than every input (sources, WIT through its links, pinned versions).
build() {
    local dir=$1 component=$2
    shift 2
    local command
    command=$(sed -n 's/^build = "\(.*\)"$/\1/p' "$dir/stratus.toml")
    if [ -z "$command" ]; then
        echo "error: $dir/stratus.toml has no build = \"...\" line" >&2
        exit 1
    fi
    if [ -f "$dir/$component" ] &&
        [ -z "$(find -L "$@" scripts/guest-toolchains.sh examples/package-lock.json -newer "$dir/$component" -print -quit)" ]; then
        echo "$dir/$component is up to date"
        return
    fi
    echo "building $dir: $command"
    local start=$SECONDS
    (cd "$dir" && sh -c "$command")
    echo "built $dir/$component ($(du -h "$dir/$component" | cut -f1), $((SECONDS - start)) s)"
}

if $have_python; then
    build examples/python-notes python_notes.wasm \
        examples/python-notes/app.py examples/python-notes/wit examples/python-notes/stratus.toml
else
    echo "skipping examples/python-notes: componentize-py $COMPONENTIZE_PY_VERSION is not installed"
fi
if $have_js; then
    build examples/js-counter js_counter.wasm \
        examples/js-counter/counter.js examples/js-counter/wit examples/js-counter/stratus.toml
else
    echo "skipping examples/js-counter: examples/node_modules is not installed"
fi
