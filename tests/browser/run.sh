#!/usr/bin/env bash
# Browser tests of the console (GET /): starts a fresh local stack on free ports, then runs
# tests/browser/test_console.py (unittest, Selenium driving Debian's headless Chromium) against its
# HTTP API, and stops the stack when it exits, whichever way it exits.
#
# Run by `make browser-test` (part of `make test`) and `make screenshots`. Settings:
#   LOCAL_STACK_BIN  a built local-stack binary (default: `cargo build -p order-localstack --bin local-stack`)
#   BROWSER_TOOLS    the virtualenv holding Selenium (default: .tools/browser, made by
#                    `make .tools/browser/.installed` from localstack/python/browser.txt)
#   SCREENSHOT_DIR   when set, the tests also write console-desktop.png and console-phone.png there
#   CARGO            cargo (default: cargo)
#   STARTUP_SECS     how long to wait for the stack's banner (default: 120)
# Extra arguments go to the test runner (test names: `bash tests/browser/run.sh FlashSaleTest`).

set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
# shellcheck source=tests/support/local-stack.sh
source "$ROOT/tests/support/local-stack.sh"

BROWSER_TOOLS=${BROWSER_TOOLS:-$ROOT/.tools/browser}
STARTUP_SECS=${STARTUP_SECS:-120}

log() { printf 'browser: %s\n' "$*" >&2; }
fail() {
    log "FAIL: $*"
    printf 'browser: 0 passed, 1 failed\n'
    exit 1
}

PYTHON=$BROWSER_TOOLS/bin/python
[[ -x $PYTHON ]] || fail "no $PYTHON: run \`make .tools/browser/.installed\` first"
for bin in /usr/bin/chromium /usr/bin/chromedriver; do
    [[ -x $bin ]] || fail "no $bin: run \`make browser-deps\` first"
done

WORK=$(mktemp -d "${TMPDIR:-/tmp}/browser-test.XXXXXX")
STACK_PID=

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    set +e
    if [[ -n $STACK_PID ]] && kill -0 "$STACK_PID" 2>/dev/null; then
        # Ctrl-C is the stack's graceful stop; KILL what is left after 10 s.
        kill -INT -- "-$STACK_PID" 2>/dev/null
        for ((i = 0; i < 100; i++)); do
            kill -0 "$STACK_PID" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL -- "-$STACK_PID" 2>/dev/null
        wait "$STACK_PID" 2>/dev/null
    fi
    if ((rc != 0)) && [[ -s $WORK/stack.log ]]; then
        log "local stack, last lines:"
        tail -n 30 "$WORK/stack.log" >&2
    fi
    rm -rf "$WORK"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

[[ -n ${LOCAL_STACK_BIN:-} ]] || log "building the local stack (debug)"
LOCAL_STACK_BIN=$(local_stack_bin "$ROOT")
[[ -x $LOCAL_STACK_BIN ]] || fail "no local stack binary at $LOCAL_STACK_BIN"

# Free ports, state in memory, its own emulators (no AWS_ENDPOINT_URL) and its development secret
# (the console's dev tokens), whatever the caller's environment says. Otherwise the settings of
# `make run`, the rate limit (120 a minute) included, so the page is tested as a developer sees it:
# payments settle as soon as the consumer takes them (no CANCEL_WINDOW_SECONDS), one in five is
# declined (the tests accept PAID and FAILED alike), and PAYMENT_SEED makes the gateway's choices
# repeatable. HOLD_SWEEP_SECONDS=1: an expired hold gives its stock back at once.
# The late-push test reads the page's connection ids from this table and pushes to them through the
# management API, as the functions do; naming it here tells the stack and the test the same name.
export CONNECTIONS_TABLE=browser-test-connections
log "starting the local stack ($LOCAL_STACK_BIN)"
setsid env -u AWS_ENDPOINT_URL -u JWT_SECRET -u JWT_PUBLIC_KEY -u LOCAL_DATA_DIR -u ORDER_QUEUE_URL \
    -u WS_MANAGEMENT_ENDPOINT -u CANCEL_WINDOW_SECONDS -u CORS_ALLOW_ORIGINS \
    -u RATE_LIMIT_PER_MINUTE -u PAYMENT_SUCCESS_RATE -u PAYMENT_TRANSIENT_ERROR_RATE -u STOCK_LOCKS \
    HTTP_PORT=0 WS_PORT=0 AWS_PORT=0 LOG_FORMAT=json PAYMENT_SEED=7 HOLD_SWEEP_SECONDS=1 \
    "$LOCAL_STACK_BIN" >"$WORK/stack.log" 2>&1 </dev/null &
STACK_PID=$!
wait_for_banner "$WORK/stack.log" "$STACK_PID" "$STARTUP_SECS" || fail "the local stack did not get ready"
API_URL=$(banner_value "$WORK/stack.log" http)
[[ -n $API_URL ]] || fail "no HTTP API address in the local stack's banner"
AWS_URL=$(banner_value "$WORK/stack.log" aws)
MANAGEMENT_URL=$(banner_value "$WORK/stack.log" management)
[[ -n $AWS_URL && -n $MANAGEMENT_URL ]] || fail "no AWS endpoint or management API in the local stack's banner"
log "local stack (pid $STACK_PID) at $API_URL"

# Selenium is given the browser and the driver (test_console.py); SE_OFFLINE keeps Selenium
# Manager from reaching the network should it run at all.
set +e
SE_OFFLINE=true CONSOLE_URL=$API_URL STACK_AWS_URL=$AWS_URL STACK_MANAGEMENT_URL=$MANAGEMENT_URL \
    "$PYTHON" tests/browser/test_console.py "$@"
rc=$?
set -e
if grep -q '"level":"ERROR"' "$WORK/stack.log"; then
    log "the local stack logged errors:"
    grep '"level":"ERROR"' "$WORK/stack.log" | head -n 20 >&2
fi
exit "$rc"
