#!/usr/bin/env bash
# The web console's build (console/ → crates/console/assets/, which the node
# embeds at compile time).
#
#   bash scripts/console.sh build   install the pinned packages (npm ci) and
#                                   build into crates/console/assets/
#   bash scripts/console.sh check   build into a temporary directory and fail
#                                   if the committed build differs (CI)
#   bash scripts/console.sh e2e     run console/tests/e2e.mjs (needs a node;
#                                   see the script's header for its inputs)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
console="$root/console"
assets="$root/crates/console/assets"

install() {
  command -v node >/dev/null || { echo "console.sh: node (20 or later) is needed" >&2; exit 1; }
  command -v npm >/dev/null || { echo "console.sh: npm is needed" >&2; exit 1; }
  local log
  log="$(mktemp)"
  if ! (cd "$console" && npm ci --no-audit --no-fund --loglevel=error) >"$log" 2>&1; then
    cat "$log" >&2
    rm -f "$log"
    echo "console.sh: npm ci failed in console/" >&2
    exit 1
  fi
  rm -f "$log"
}

case "${1:-}" in
  build)
    install
    node "$console/build.mjs" "$assets"
    ;;
  check)
    install
    out="$(mktemp -d)"
    trap 'rm -rf "$out"' EXIT
    node "$console/build.mjs" "$out" --quiet
    differ=()
    for f in "$out"/* "$assets"/*; do
      [ -e "$f" ] || continue
      name="$(basename "$f")"
      case " ${differ[*]:-} " in *" $name "*) continue ;; esac
      if ! cmp -s "$out/$name" "$assets/$name"; then
        differ+=("$name")
      fi
    done
    if [ "${#differ[@]}" -gt 0 ]; then
      echo "the committed console build does not match console/src: run bash scripts/console.sh build" >&2
      echo "differing files in crates/console/assets/: ${differ[*]}" >&2
      exit 1
    fi
    echo "console build is up to date"
    ;;
  e2e)
    node "$console/tests/e2e.mjs"
    ;;
  *)
    echo "usage: bash scripts/console.sh build|check|e2e" >&2
    exit 2
    ;;
esac
