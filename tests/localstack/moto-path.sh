#!/usr/bin/env bash
# Proves the LocalStack path (`AWS_ENDPOINT_URL=... make run` against resources made by
# localstack/init/create-resources.sh) without Docker, against an independent AWS-API server: moto's.
#
#   1. starts moto's server (localstack/tests/moto_server.py, from the project's .venv) on a free port;
#   2. runs the init script against it twice with the AWS CLI from .tools/cli (the second run must
#      create nothing), and checks the six tables, their TTL and the two queues it made;
#   3. starts the local stack with AWS_ENDPOINT_URL=<moto> (no embedded emulator), HTTP_PORT=0,
#      WS_PORT=0, PAYMENT_SUCCESS_RATE=1 and the default JWT secret, and reads its banner;
#   4. checks that the stack created nothing the init script had not (same tables and queues, no
#      "created table" or "enabled TTL" in its log), GET /health (200, dynamodb ok, sqs ok), then
#      places one order (moto's TransactWriteItems is slow, one order is the right size) and polls
#      it until the consumer settles it PAID, and checks the stock went down by one.
# Stops everything it started on exit, however it exits.
#
# Run by `make localstack-path-test` (part of `make test`), which installs .venv and .tools/cli first.
# LOCAL_STACK_BIN=<path> uses that binary instead of `cargo build -p order-localstack --bin local-stack`.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."
root="$PWD"
# shellcheck source=tests/support/local-stack.sh
source "$root/tests/support/local-stack.sh"

MOTO_STARTUP_SECONDS=60
STACK_STARTUP_SECONDS=120
SETTLE_SECONDS=60

python="$root/.venv/bin/python"
aws_cli="$root/.tools/cli/bin/aws"
export AWS_REGION="${AWS_REGION:-${AWS_DEFAULT_REGION:-us-east-1}}"

passed=0
reported=""
pass() {
    passed=$((passed + 1))
    echo "ok: $*"
}
fail() {
    echo "FAILED: $*" >&2
    echo "moto-path: $passed passed, 1 failed"
    reported=yes
    exit 1
}
step() { echo "== $*"; }
oneline() { printf '%s' "$1" | tr '\n' ' '; }

[[ -x "$python" ]] || fail "$python is missing: run \`make .venv/.moto-installed\` (moto's server)"
[[ -x "$aws_cli" ]] || fail "$aws_cli is missing: run \`make .tools/cli/.installed\` (the AWS CLI)"

work="$(mktemp -d "${TMPDIR:-/tmp}/moto-path.XXXXXX")"
moto_pid=""
stack_pid=""

stop_stack() {
    [[ -n "$stack_pid" ]] || return 0
    if kill -0 "$stack_pid" 2>/dev/null; then
        # Ctrl-C: the stack stops its tasks and exits; killed if it takes longer than 15 s.
        kill -INT "$stack_pid" 2>/dev/null || true
        for _ in $(seq 150); do
            kill -0 "$stack_pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$stack_pid" 2>/dev/null || true
    fi
    wait "$stack_pid" 2>/dev/null || true
    stack_pid=""
}

cleanup() {
    local status=$?
    if [[ $status -ne 0 ]]; then
        if [[ -z "$reported" ]]; then
            echo "FAILED: a command above exited with $status" >&2
            echo "moto-path: $passed passed, 1 failed"
        fi
        for log in stack.log moto.log init.log; do
            if [[ -s "$work/$log" ]]; then
                echo "--- last lines of $log" >&2
                tail -n 40 "$work/$log" >&2
            fi
        done
    fi
    stop_stack
    if [[ -n "$moto_pid" ]]; then
        kill "$moto_pid" 2>/dev/null || true
        wait "$moto_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
    exit "$status"
}
trap cleanup EXIT
interrupted() {
    echo "FAILED: interrupted ($1)" >&2
    echo "moto-path: $passed passed, 1 failed"
    reported=yes
    exit "$2"
}
trap 'interrupted SIGINT 130' INT
trap 'interrupted SIGTERM 143' TERM

# Reads JSON on stdin and prints the Python expression $1 of it (`d` is the document).
json() { "$python" -c "import json, sys; d = json.load(sys.stdin); print($1)"; }

# The AWS CLI against moto. Without credentials of its own the stack signs with a dummy key, which
# moto maps to its default account, as it does this one.
cli() {
    AWS_ACCESS_KEY_ID="${AWS_ACCESS_KEY_ID:-test}" AWS_SECRET_ACCESS_KEY="${AWS_SECRET_ACCESS_KEY:-test}" \
        "$aws_cli" --endpoint-url "$moto" --region "$AWS_REGION" "$@"
}

tables_expected="$(printf '%s\n' "${PRODUCTS_TABLE:-products}" "${ORDERS_TABLE:-orders}" \
    "${IDEMPOTENCY_TABLE:-idempotency}" "${LOCKS_TABLE:-stock-locks}" \
    "${RATE_LIMITS_TABLE:-rate-limits}" "${CONNECTIONS_TABLE:-ws-connections}" \
    "${HOLDS_TABLE:-holds}" "${WEBHOOKS_TABLE:-payment-webhooks}" | sort)"
ttl_tables=("${IDEMPOTENCY_TABLE:-idempotency}" "${LOCKS_TABLE:-stock-locks}"
    "${RATE_LIMITS_TABLE:-rate-limits}" "${CONNECTIONS_TABLE:-ws-connections}"
    "${HOLDS_TABLE:-holds}" "${WEBHOOKS_TABLE:-payment-webhooks}")
queue_name="${ORDER_QUEUE_NAME:-orders}"
dlq_name="${ORDER_DLQ_NAME:-orders-dlq}"

list_tables() { cli dynamodb list-tables --output json | json '"\n".join(sorted(d["TableNames"]))'; }
list_queues() {
    cli sqs list-queues --output json |
        json '"\n".join(sorted(u.rsplit("/", 1)[1] for u in d.get("QueueUrls", [])))'
}

# --- the binary
[[ -n "${LOCAL_STACK_BIN:-}" ]] || step "cargo build -p order-localstack --bin local-stack"
stack_bin="$(local_stack_bin "$root")"
[[ -x "$stack_bin" ]] || fail "no local-stack binary at $stack_bin"

# --- moto's server on a free port; it exits when its standard input (our pipe) closes
step "moto's server"
coproc MOTO { exec "$python" localstack/tests/moto_server.py 2>"$work/moto.log"; }
# shellcheck disable=SC2153 # set by coproc
moto_pid="$MOTO_PID"
moto_port=""
read -r -t "$MOTO_STARTUP_SECONDS" moto_port <&"${MOTO[0]}" || true
[[ "$moto_port" =~ ^[0-9]+$ ]] || fail "moto's server printed '$moto_port' instead of its port"
moto="http://127.0.0.1:$moto_port"
pass "moto's server listens on $moto"

# --- the init script, twice
step "localstack/init/create-resources.sh against $moto"
init() {
    PATH="$(dirname "$aws_cli"):$PATH" AWS_ENDPOINT_URL="$moto" \
        bash localstack/init/create-resources.sh >"$work/init.log" 2>&1 ||
        fail "the init script failed (exit $?)"
    sed 's/^/  /' "$work/init.log"
}
init
grep -q ' created$' "$work/init.log" || fail "the first run of the init script created nothing"
step "localstack/init/create-resources.sh again (idempotent)"
init
if grep ' created$' "$work/init.log"; then
    fail "the second run of the init script created something again"
fi
pass "the init script runs twice; the second run creates nothing"

tables_after_init="$(list_tables)"
[[ "$tables_after_init" == "$tables_expected" ]] ||
    fail "tables after the init script: $(oneline "$tables_after_init"), expected $(oneline "$tables_expected")"
pass "the init script made the six tables: $(oneline "$tables_after_init")"
for table in "${ttl_tables[@]}"; do
    ttl="$(cli dynamodb describe-time-to-live --table-name "$table" --output json |
        json 'd["TimeToLiveDescription"].get("TimeToLiveStatus"), d["TimeToLiveDescription"].get("AttributeName")')"
    [[ "$ttl" == "ENABLED expires_at" ]] || fail "TTL of $table: $ttl"
done
pass "TTL on expires_at: ${ttl_tables[*]}"

queues_after_init="$(list_queues)"
[[ "$queues_after_init" == "$(printf '%s\n' "$queue_name" "$dlq_name" | sort)" ]] ||
    fail "queues after the init script: $(oneline "$queues_after_init")"
# Sets $queue_attributes to the order queue's redrive target, maxReceiveCount and visibility timeout.
check_queue_attributes() {
    local queue_url dlq_arn
    queue_url="$(cli sqs get-queue-url --queue-name "$queue_name" --query QueueUrl --output text)"
    dlq_arn="$(cli sqs get-queue-attributes --queue-url "$(cli sqs get-queue-url \
        --queue-name "$dlq_name" --query QueueUrl --output text)" --attribute-names QueueArn \
        --query Attributes.QueueArn --output text)"
    queue_attributes="$(cli sqs get-queue-attributes --queue-url "$queue_url" \
        --attribute-names RedrivePolicy VisibilityTimeout --output json |
        json 'json.loads(d["Attributes"]["RedrivePolicy"])["deadLetterTargetArn"], int(json.loads(d["Attributes"]["RedrivePolicy"])["maxReceiveCount"]), d["Attributes"]["VisibilityTimeout"]')"
    [[ "$queue_attributes" == "$dlq_arn ${ORDER_QUEUE_MAX_RECEIVE_COUNT:-5} ${ORDER_QUEUE_VISIBILITY_SECONDS:-30}" ]] ||
        fail "queue $queue_name: redrive target, maxReceiveCount, visibility timeout are '$queue_attributes'"
}
check_queue_attributes
pass "queues $dlq_name and $queue_name (redrive to, maxReceiveCount, visibility): $queue_attributes"

# --- the local stack against moto: no embedded emulator, its default JWT secret
step "$stack_bin with AWS_ENDPOINT_URL=$moto"
env -u JWT_SECRET -u JWT_PUBLIC_KEY -u ORDER_QUEUE_URL -u LOG_FORMAT -u PAYMENT_TRANSIENT_ERROR_RATE \
    AWS_ENDPOINT_URL="$moto" HTTP_PORT=0 WS_PORT=0 PAYMENT_SUCCESS_RATE=1 NO_COLOR=1 \
    "$stack_bin" >"$work/stack.log" 2>&1 </dev/null &
stack_pid=$!
wait_for_banner "$work/stack.log" "$stack_pid" "$STACK_STARTUP_SECONDS" ||
    fail "the local stack did not get ready"
api="$(banner_value "$work/stack.log" http)"
token="$(banner_value "$work/stack.log" token)"
[[ "$api" =~ ^http://127\.0\.0\.1:[0-9]+$ ]] || fail "no HTTP API address in the banner: '$api'"
[[ -n "$token" ]] || fail "no TOKEN in the banner"
grep -q "AWS endpoint   $moto " "$work/stack.log" || fail "the banner does not name $moto as its AWS endpoint"
pass "the local stack is ready: HTTP API $api, AWS endpoint $moto"

[[ "$(list_tables)" == "$tables_after_init" ]] ||
    fail "the stack changed the tables: $(oneline "$(list_tables)")"
[[ "$(list_queues)" == "$queues_after_init" ]] ||
    fail "the stack changed the queues: $(oneline "$(list_queues)")"
if grep -E 'created table|enabled TTL' "$work/stack.log"; then
    fail "the stack created tables or turned on TTL that the init script had not"
fi
check_queue_attributes
pass "the stack created nothing: same tables and queues, no table created, no TTL turned on"

# --- the API
status="$(curl -sS -o "$work/health.json" -w '%{http_code}' "$api/health")"
[[ "$status" == 200 ]] || fail "GET /health answered $status: $(cat "$work/health.json")"
services="$(json 'd["services"]["dynamodb"], d["services"]["sqs"]' <"$work/health.json")"
[[ "$services" == "ok ok" ]] || fail "GET /health: $(cat "$work/health.json")"
pass "GET /health: 200 $(cat "$work/health.json")"

stock() {
    curl -sS "$api/products/espresso-beans" | json 'd["data"]["stock"]'
}
stock_before="$(stock)"
status="$(curl -sS -o "$work/order.json" -w '%{http_code}' -X POST "$api/orders" \
    -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
    -d "{\"idempotency_key\":\"moto-path-$(date +%s)-$$\",\"items\":[{\"product_id\":\"espresso-beans\",\"quantity\":1}]}")"
[[ "$status" == 201 ]] || fail "POST /orders answered $status: $(cat "$work/order.json")"
order_id="$(json 'd["data"]["id"]' <"$work/order.json")"
pass "POST /orders: 201, order $order_id $(json 'd["data"]["status"]' <"$work/order.json")"

order_status=""
deadline=$((SECONDS + SETTLE_SECONDS))
while ((SECONDS < deadline)); do
    order_status="$(curl -sS "$api/orders/$order_id" -H "Authorization: Bearer $token" |
        json 'd["data"]["status"]')"
    [[ "$order_status" == PAID || "$order_status" == FAILED ]] && break
    sleep 0.5
done
[[ "$order_status" == PAID ]] ||
    fail "order $order_id is $order_status after $SETTLE_SECONDS s (PAYMENT_SUCCESS_RATE=1: PAID expected)"
stock_after="$(stock)"
[[ "$stock_after" == $((stock_before - 1)) ]] ||
    fail "espresso-beans stock went from $stock_before to $stock_after, not down by one"
pass "the consumer settled order $order_id: PAID; espresso-beans stock $stock_before -> $stock_after"

stop_stack
echo "moto-path: $passed passed, 0 failed"
