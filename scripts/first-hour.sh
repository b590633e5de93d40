#!/usr/bin/env bash
# The path a new user takes after the README (issue 16), run as they would
# run it: `stratus new` makes a Rust function, `stratus up` builds and
# serves it, and the CLI in a second process — another directory, no token
# given — lists it, invokes it, reads its logs, usage and the node's status.
# Fails naming the step that did not do what the README says. CI runs it.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

step() { printf '\n== first hour: %s\n' "$*"; }
fail() {
    echo "first hour: FAILED: $*" >&2
    if [ -f "${work:-}/up.log" ]; then
        echo "--- stratus up printed:" >&2
        cat "$work/up.log" >&2
    fi
    exit 1
}

rustup target list --installed | grep -qx wasm32-wasip2 || rustup target add wasm32-wasip2
cargo build --bin stratus
target=${CARGO_TARGET_DIR:-target}
case $target in
/*) bin=$target/debug ;;
*) bin=$root/$target/debug ;;
esac
# As the README says: the binary on PATH, as `stratus`.
export PATH="$bin:$PATH"

work=$(mktemp -d)
up_pid=
cleanup() {
    if [ -n "$up_pid" ]; then kill "$up_pid" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT
# A runtime dir of this run's own, where `up` leaves its token: a fresh
# user's, not the machine's.
export XDG_RUNTIME_DIR=$work/runtime
mkdir -m 700 "$XDG_RUNTIME_DIR"
unset STRATUS_TOKEN STRATUS_SERVER STRATUS_ADMIN_TOKEN

step "stratus new rust greeter"
(cd "$work" && stratus new rust greeter) | tee "$work/new.log"
grep -q "stratus up" "$work/new.log" || fail "\`stratus new\` did not say to run \`stratus up\`"

step "stratus up (builds the function with cargo, then serves it)"
# A new user has no CARGO_TARGET_DIR: the template's component path is
# cargo's default target directory.
(cd "$work/greeter" && exec env -u CARGO_TARGET_DIR stratus up \
    --listen 127.0.0.1:0 --admin-listen 127.0.0.1:0) >"$work/up.log" 2>&1 &
up_pid=$!
for _ in $(seq 1 600); do
    grep -q "Press Ctrl-C" "$work/up.log" && break
    kill -0 "$up_pid" 2>/dev/null || fail "\`stratus up\` exited before serving"
    sleep 1
done
grep -q "Press Ctrl-C" "$work/up.log" || fail "\`stratus up\` did not serve within 10 minutes"
cat "$work/up.log"
url=$(grep -o 'http://[0-9.:]*/greeter$' "$work/up.log" | head -n 1)
admin=$(sed -n 's/^ *admin: *\(http:[^ ]*\).*/\1/p' "$work/up.log" | head -n 1)
[ -n "$url" ] || fail "\`stratus up\` printed no URL for /greeter"
[ -n "$admin" ] || fail "\`stratus up\` printed no admin URL"

step "curl $url"
body=$(curl -fsS "$url") || fail "GET $url did not answer 2xx"
echo "$body"

# The second shell: another directory, nothing but the server's address
# (its port is not the default here; a user on :8081 needs not even that).
second() { (cd "$work" && STRATUS_SERVER=$admin stratus "$@"); }

step "stratus functions (second process, no token)"
listing=$(second functions) || fail "\`stratus functions\` failed"
echo "$listing"
grep -q "greeter/greeter" <<<"$listing" || fail "\`stratus functions\` does not list greeter"
grep -q "/greeter" <<<"$listing" || fail "\`stratus functions\` does not show the route"

step "stratus invoke greeter"
second invoke greeter --path /greeter -X GET || fail "\`stratus invoke\` failed"

step "stratus logs greeter"
second logs greeter || fail "\`stratus logs\` failed"

step "stratus usage"
usage=$(second usage) || fail "\`stratus usage\` failed"
echo "$usage"
grep -q "greeter" <<<"$usage" || fail "\`stratus usage\` shows nothing for greeter"

step "stratus status"
second status || fail "\`stratus status\` does not say the node is ready"

step "Ctrl-C stops the node and takes its token away"
kill -INT "$up_pid"
wait "$up_pid" || fail "\`stratus up\` did not exit cleanly on Ctrl-C"
up_pid=
if ls "$XDG_RUNTIME_DIR"/stratus/up-*.json >/dev/null 2>&1; then
    fail "the token file outlived the node"
fi
echo "first hour: every step did what the README says"
