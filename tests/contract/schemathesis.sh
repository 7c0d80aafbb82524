#!/usr/bin/env bash
# Contract test: runs schemathesis against openapi.yaml and a fresh local stack, once without a
# token, once with the development user's token and once with the admin's. Fails on any 5xx and on
# any response the document does not describe (undocumented status, wrong content type, body or
# headers that do not match the schema). `make contract-test` runs it with the pinned schemathesis.
# Every run includes the stateful phase: schemathesis follows openapi.yaml's `links` (POST /products
# -> GET/PUT/DELETE /products/{id} and POST /holds, POST /orders -> GET /orders/{id} and its cancel,
# POST /holds -> GET /holds/{id}) and the links it infers, chaining calls on what the previous
# answer created; with the user's token and the admin's those chains reach real orders and holds.
#
# Settings (environment):
#   LOCAL_STACK_BIN         the local-stack binary to run; unset: `cargo build` it and use target/debug/local-stack
#   SCHEMATHESIS            the schemathesis CLI (default: .tools/api/bin/st, built by `make .tools/api/.installed`)
#   CONTRACT_MAX_EXAMPLES   test cases per operation and phase (default 100)
#   CONTRACT_STARTUP_SECS   how long to wait for the stack's banner (default 120)
# Extra arguments are passed to every `st run` (for example `--seed 1234` to replay a run).
#
# The stack listens on ports the OS picks (HTTP_PORT=0, WS_PORT=0, AWS_PORT=0) and runs with
# RATE_LIMIT_PER_MINUTE=0 (rate limiting off: schemathesis sends far more than 120 requests a
# minute). It is stopped on exit, whatever happens; schemathesis' own files go to a temporary
# directory that is removed too.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
SCHEMA="$ROOT/openapi.yaml"
SCHEMATHESIS=${SCHEMATHESIS:-$ROOT/.tools/api/bin/st}
MAX_EXAMPLES=${CONTRACT_MAX_EXAMPLES:-100}
STARTUP_SECS=${CONTRACT_STARTUP_SECS:-120}

if [[ ! -x "$SCHEMATHESIS" ]]; then
    echo "schemathesis not found at $SCHEMATHESIS; run \`make .tools/api/.installed\` or set SCHEMATHESIS" >&2
    exit 2
fi

# shellcheck source=tests/support/local-stack.sh
source "$ROOT/tests/support/local-stack.sh"
LOCAL_STACK_BIN=$(local_stack_bin "$ROOT")
# schemathesis runs in a temporary directory: make relative paths absolute first.
[[ "$SCHEMATHESIS" == /* ]] || SCHEMATHESIS="$PWD/$SCHEMATHESIS"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/contract-test.XXXXXX")
STACK_LOG="$WORK/local-stack.log"
STACK_PID=""

stop_stack() {
    local status=$?
    if [[ -n "$STACK_PID" ]] && kill -0 "$STACK_PID" 2>/dev/null; then
        # Ctrl-C is the stack's graceful stop; TERM, then KILL, if it takes too long.
        kill -INT "$STACK_PID" 2>/dev/null || true
        for _ in $(seq 1 50); do
            kill -0 "$STACK_PID" 2>/dev/null || break
            sleep 0.2
        done
        if kill -0 "$STACK_PID" 2>/dev/null; then
            kill -TERM "$STACK_PID" 2>/dev/null || true
            sleep 1
            kill -KILL "$STACK_PID" 2>/dev/null || true
        fi
        wait "$STACK_PID" 2>/dev/null || true
    fi
    rm -rf "$WORK"
    exit "$status"
}
trap stop_stack EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Embedded emulators (no AWS_ENDPOINT_URL), in memory (no LOCAL_DATA_DIR), HS256 development
# tokens in the banner (no JWT_PUBLIC_KEY), whatever the caller's environment says.
env -u AWS_ENDPOINT_URL -u LOCAL_DATA_DIR -u JWT_PUBLIC_KEY \
    HTTP_PORT=0 WS_PORT=0 AWS_PORT=0 RATE_LIMIT_PER_MINUTE=0 LOG_FORMAT=json \
    "$LOCAL_STACK_BIN" >"$STACK_LOG" 2>&1 &
STACK_PID=$!

# The HTTP API's address and both tokens come from the banner.
wait_for_banner "$STACK_LOG" "$STACK_PID" "$STARTUP_SECS" || exit 1
API_URL=$(banner_value "$STACK_LOG" http)
TOKEN=$(banner_value "$STACK_LOG" token)
ADMIN_TOKEN=$(banner_value "$STACK_LOG" admin-token)
if [[ -z "$API_URL" || -z "$TOKEN" || -z "$ADMIN_TOKEN" ]]; then
    echo "cannot read the HTTP API URL and the tokens from the banner:" >&2
    cat "$STACK_LOG" >&2
    exit 1
fi
echo "local stack (pid $STACK_PID) at $API_URL"

CHECKS=not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance

# One schemathesis run; its first argument names it, the rest are extra `st run` options.
run() {
    local name=$1
    shift
    echo
    echo "=== schemathesis: $name ==="
    # Its working directory is the temporary one: .hypothesis/ and .schemathesis/ stay out of the tree.
    (cd "$WORK" && "$SCHEMATHESIS" run "$SCHEMA" \
        --url "$API_URL" \
        --checks "$CHECKS" \
        --phases examples,coverage,fuzzing,stateful \
        --max-examples "$MAX_EXAMPLES" \
        --request-timeout 30 \
        --generation-database none \
        --no-color \
        "$@")
}

failed=()
run "without a token" "$@" || failed+=("without a token")
run "user token" -H "Authorization: Bearer $TOKEN" "$@" || failed+=("user token")
run "admin token" -H "Authorization: Bearer $ADMIN_TOKEN" "$@" || failed+=("admin token")

# A 5xx the checks may have missed (e.g. in a stateful step) still shows in the stack's log.
if grep -q '"level":"ERROR"' "$STACK_LOG"; then
    echo
    echo "the local stack logged errors:"
    grep '"level":"ERROR"' "$STACK_LOG" | head -n 20
fi

echo
if ((${#failed[@]})); then
    echo "contract test FAILED: $(IFS=,; echo "${failed[*]}")"
    exit 1
fi
echo "contract test passed: 3 schemathesis runs against $SCHEMA"
