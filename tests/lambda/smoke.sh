#!/usr/bin/env bash
# Smoke test of the Lambda binaries under cargo-lambda, against the embedded emulators.
#
# Starts the local stack (embedded DynamoDB and SQS behind one AWS endpoint; it creates the tables
# and the queues and seeds the products) on free ports, then `cargo lambda watch` on a free invoke
# port with events/cargo-lambda.env plus the addresses from the stack's banner, and invokes every
# function with `cargo lambda invoke <name> --data-file events/<name>.json`. Scripted cases, where
# the order or an exact answer matters, check the answer exactly (with a few events derived from
# the samples: for the order and the hold that exist, an order from that hold, and the webhook
# sample re-signed at the current time with the webhook secret); every other events/<name>.json of a
# function is invoked once with a generic check (an API Gateway event: a 2xx status; any other:
# no error), so a new function needs no line here. Fails if a function was never invoked. Stops
# everything it started when it exits, whichever way it exits.
#
# Run by `make lambda-smoke-test` (part of `make test`). Settings:
#   LOCAL_STACK_BIN  a built local-stack binary (default: `cargo build -p order-localstack --bin local-stack`)
#   LAMBDA_TOOLS     the virtualenv holding cargo-lambda (default: .tools/lambda, made by
#                    `make .tools/lambda/.installed` from localstack/python/lambda.txt)
#   CARGO            cargo (default: cargo)
#   INVOKE_TIMEOUT   seconds one invocation may take, cold start included (default: 120)

set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
# shellcheck source=tests/support/local-stack.sh
source "$ROOT/tests/support/local-stack.sh"

CARGO=${CARGO:-cargo}
LAMBDA_TOOLS=${LAMBDA_TOOLS:-$ROOT/.tools/lambda}
INVOKE_TIMEOUT=${INVOKE_TIMEOUT:-120}
ENV_FILE=events/cargo-lambda.env
# The sample events' order id: no such order exists; derived events put the placed order's id there.
SAMPLE_ORDER_ID=00000000-0000-4000-8000-000000000001

PASSED=0
log() { printf 'lambda-smoke: %s\n' "$*" >&2; }
fail() {
    log "FAIL: $*"
    printf 'lambda-smoke: %d passed, 1 failed\n' "$PASSED"
    exit 1
}

# The pinned cargo-lambda itself: what `cargo lambda` runs with $LAMBDA_TOOLS/bin first on PATH.
LAMBDA=$LAMBDA_TOOLS/bin/cargo-lambda
[[ -x $LAMBDA ]] || fail "no $LAMBDA: run \`make .tools/lambda/.installed\` first"
[[ -f $ENV_FILE ]] || fail "no $ENV_FILE"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/lambda-smoke.XXXXXX")
STACK_PID=
WATCH_PID=

# The processes below $1, whatever their process group: cargo lambda watch starts each function
# instance in a process group of its own.
descendants() {
    ps -e -o pid=,ppid= | awk -v root="$1" '
        { parent[$1] = $2 }
        END { for (p in parent) { q = p; while (q in parent && q != root && q > 1) q = parent[q]; if (q == root && p != root) print p } }'
}

# Whether the process group $1 or any of the processes $2... is still there.
alive() {
    local group=$1 pid
    shift
    kill -0 -- "-$group" 2>/dev/null && return 0
    for pid; do kill -0 "$pid" 2>/dev/null && return 0; done
    return 1
}

# Stops the process group led by $1 (started with setsid) and everything below it: TERM (the watch
# then stops its function instances itself), KILL what is left after 10 s.
stop_group() {
    local leader=$1 below killer i
    [[ -n $leader ]] || return 0
    below=$(descendants "$leader")
    kill -TERM -- "-$leader" 2>/dev/null || true
    (sleep 10 && kill -KILL -- "-$leader") 2>/dev/null &
    killer=$!
    wait "$leader" 2>/dev/null || true
    kill "$killer" 2>/dev/null || true
    wait "$killer" 2>/dev/null || true
    # shellcheck disable=SC2086 # one pid per word
    for ((i = 0; i < 50; i++)); do
        alive "$leader" $below || return 0
        sleep 0.1
    done
    # shellcheck disable=SC2086
    kill -KILL -- "-$leader" $below 2>/dev/null || true
}

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    set +e
    stop_group "$WATCH_PID"
    stop_group "$STACK_PID"
    if ((rc != 0)); then
        [[ -s $WORK/watch.log ]] && { log "cargo lambda watch, last lines:"; tail -n 40 "$WORK/watch.log" >&2; }
        [[ -s $WORK/stack.log ]] && { log "local stack, last lines:"; tail -n 20 "$WORK/stack.log" >&2; }
    fi
    rm -rf "$WORK"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- build -------------------------------------------------------------------------------------
# The functions are built up front, in debug like `cargo lambda watch` builds them (same target
# directory, same features), so the watch's own `cargo run` finds them fresh and a compile error
# shows here rather than as an invoke time-out.
log "building the functions (debug)"
"$CARGO" build --quiet -p order-functions --bins
[[ -n ${LOCAL_STACK_BIN:-} ]] || log "building the local stack (debug)"
LOCAL_STACK_BIN=$(local_stack_bin "$ROOT")
[[ -x $LOCAL_STACK_BIN ]] || fail "no local stack binary at $LOCAL_STACK_BIN"

# --- the local stack ---------------------------------------------------------------------------
# Free ports, state in memory, its own emulators (no AWS_ENDPOINT_URL), its development secrets
# under their default names (which the env file's JWT_SECRET_ID and WEBHOOK_SECRET_ID name: the
# functions read both from its Secrets Manager), and the table names the functions get from the
# env file.
log "starting the local stack ($LOCAL_STACK_BIN)"
TABLES=()
while IFS= read -r line; do TABLES+=("$line"); done < <(grep -E '^[A-Z_]+_TABLE=' "$ENV_FILE")
setsid env -u AWS_ENDPOINT_URL -u JWT_SECRET -u JWT_SECRET_ID -u JWT_PUBLIC_KEY -u LOCAL_DATA_DIR \
    -u ORDER_QUEUE_URL -u WEBHOOK_SECRET -u WEBHOOK_SECRET_ID \
    -u ORDER_QUEUE_NAME -u ORDER_DLQ_NAME -u WS_MANAGEMENT_ENDPOINT \
    HTTP_PORT=0 WS_PORT=0 AWS_PORT=0 LOG_FORMAT=json "${TABLES[@]}" \
    "$LOCAL_STACK_BIN" >"$WORK/stack.log" 2>&1 </dev/null &
STACK_PID=$!
wait_for_banner "$WORK/stack.log" "$STACK_PID" 60 || fail "the local stack did not get ready"
AWS_ENDPOINT=$(banner_value "$WORK/stack.log" aws)
ORDER_QUEUE_URL=$(banner_value "$WORK/stack.log" queue)
ORDER_DLQ_URL=$(banner_value "$WORK/stack.log" dlq)
WS_MANAGEMENT_ENDPOINT=$(banner_value "$WORK/stack.log" management)
[[ -n $AWS_ENDPOINT && -n $ORDER_QUEUE_URL && -n $ORDER_DLQ_URL && -n $WS_MANAGEMENT_ENDPOINT ]] ||
    fail "no AWS endpoint, order queue URL or management endpoint in the local stack's banner"
log "AWS endpoint $AWS_ENDPOINT, order queue $ORDER_QUEUE_URL, management API $WS_MANAGEMENT_ENDPOINT"

# --- cargo lambda watch ------------------------------------------------------------------------
# A free port: bind port 0, read the port, release it. --ignore-changes: files edited meanwhile
# must not restart the functions under the test.
INVOKE_PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')
log "starting cargo lambda watch on 127.0.0.1:$INVOKE_PORT"
setsid env -u JWT_PUBLIC_KEY -u JWT_SECRET -u WEBHOOK_SECRET -u AWS_PROFILE -u AWS_DEFAULT_PROFILE -u AWS_SESSION_TOKEN \
    "$LAMBDA" lambda watch --ignore-changes \
    --invoke-address 127.0.0.1 --invoke-port "$INVOKE_PORT" --timeout "$INVOKE_TIMEOUT" \
    --env-file "$ENV_FILE" \
    --env-var "AWS_ENDPOINT_URL=$AWS_ENDPOINT" \
    --env-var "ORDER_QUEUE_URL=$ORDER_QUEUE_URL" \
    --env-var "ORDER_DLQ_URL=$ORDER_DLQ_URL" \
    --env-var "WS_MANAGEMENT_ENDPOINT=$WS_MANAGEMENT_ENDPOINT" \
    >"$WORK/watch.log" 2>&1 </dev/null &
WATCH_PID=$!
for ((i = 0; ; i++)); do
    (exec 3<>"/dev/tcp/127.0.0.1/$INVOKE_PORT") 2>/dev/null && break
    kill -0 "$WATCH_PID" 2>/dev/null || fail "cargo lambda watch exited before it listened"
    ((i < 300)) || fail "cargo lambda watch did not listen on $INVOKE_PORT within 30 s"
    sleep 0.1
done

# --- invoking and checking ---------------------------------------------------------------------

# How many function processes have exited so far (cargo lambda watch logs "command exited").
exits() { grep -c 'command exited' "$WORK/watch.log" || true; }

# The functions invoked so far, by name.
declare -A INVOKED=()

# invoke LABEL FUNCTION EVENT-FILE: the response lands in $WORK/LABEL.json. A function that exits
# (a refused start: its error is in the watch log) fails the test at once, not at the time-out.
invoke() {
    local label=$1 function=$2 event=$3 pid exited
    INVOKED[$function]=1
    exited=$(exits)
    timeout $((INVOKE_TIMEOUT + 30)) "$LAMBDA" lambda invoke "$function" --data-file "$event" \
        --invoke-address 127.0.0.1 --invoke-port "$INVOKE_PORT" \
        >"$WORK/$label.json" 2>"$WORK/$label.err" &
    pid=$!
    while kill -0 "$pid" 2>/dev/null; do
        if (($(exits) > exited)); then
            kill "$pid" 2>/dev/null || true
            wait "$pid" 2>/dev/null || true
            fail "$function exited instead of answering (its error is in the watch log below)"
        fi
        sleep 0.1
    done
    if ! wait "$pid"; then
        cat "$WORK/$label.err" >&2
        fail "cargo lambda invoke $function --data-file $event did not answer"
    fi
    printf '%s: %s\n' "$label" "$(tr -d '\n' <"$WORK/$label.json")"
}

# expect LABEL CHECK...: each CHECK is a Python expression over the response of LABEL: r (the whole
# response), s (its statusCode), h (its headers), b (its body, parsed as JSON).
expect() {
    local label=$1
    shift
    python3 - "$WORK/$label.json" "$@" <<'PY' || fail "$label answered something else (above)"
import json, sys
raw = open(sys.argv[1]).read()
r = json.loads(raw)
s = r.get("statusCode") if isinstance(r, dict) else None
h = (r.get("headers") or {}) if isinstance(r, dict) else {}
body = r.get("body") if isinstance(r, dict) else None
b = json.loads(body) if isinstance(body, str) and body else None
for check in sys.argv[2:]:
    if not eval(check):
        print(f"  expected: {check}\n  got: {raw.strip()}", file=sys.stderr)
        sys.exit(1)
PY
    PASSED=$((PASSED + 1))
}

# field LABEL EXPRESSION: prints a value from the parsed body b of LABEL's response.
field() {
    python3 -c 'import json, sys; r = json.load(open(sys.argv[1])); b = json.loads(r["body"]); print(eval(sys.argv[2]))' \
        "$WORK/$1.json" "$2"
}

# until_settled LABEL ORDER-ID WHY [CHECK...]: invokes get-order with $WORK/LABEL.event.json every
# half second until order ORDER-ID is PAID or FAILED (each answer held to CHECK too), and sets
# SETTLED to that status; fails after 30 s, WHY saying what that means. Counted as one check.
until_settled() {
    local label=$1 order=$2 why=$3 i
    shift 3
    for ((i = 0; ; i++)); do
        invoke "$label" get-order "$WORK/$label.event.json"
        expect "$label" 's == 200' "b['data']['id'] == '$order'" "$@"
        SETTLED=$(field "$label" 'b["data"]["status"]')
        [[ $SETTLED == PAID || $SETTLED == FAILED ]] && return
        PASSED=$((PASSED - 1)) # counted once, for the answer that shows it settled
        ((i < 60)) || fail "order $order is still $SETTLED after 30 s$why"
        sleep 0.5
    done
}

# with_order SAMPLE DEST: the sample event with the sample order id replaced by $ORDER_ID.
with_order() { sed "s/$SAMPLE_ORDER_ID/$ORDER_ID/g" "$1" >"$2"; }

invoke health health events/health.json
expect health 's == 200' 'h.get("x-trace-id") == "sample-health"' \
    'b["status"] == "ok"' 'b["services"] and all(v == "ok" for v in b["services"].values())'

invoke list-products list-products events/list-products.json
expect list-products 's == 200' 'len(b["data"]) == 2' 'b.get("next_cursor")'

invoke get-product get-product events/get-product.json
expect get-product 's == 200' 'b["data"]["id"] == "espresso-beans"' 'b["data"]["price"] == "14.90"'

invoke create-product create-product events/create-product.json
expect create-product 's == 201' \
    '(b["data"]["name"], b["data"]["price"], b["data"]["stock"]) == ("Milk jug", "12.50", 40)'

# The local stack is new, so the sample's idempotency key is unused: 201, then a replay of it.
invoke create-order create-order events/create-order.json
expect create-order 's == 201' 'h.get("x-trace-id") == "sample-create-order"' \
    'b["data"]["status"] == "PENDING"' 'b["data"]["user_id"] == "dev-user"' \
    'b["data"]["idempotency_key"] == "sample-order-1"' 'b["data"]["total_amount"] == "29.80"' \
    'b["data"]["items"] == [{"product_id": "espresso-beans", "quantity": 2, "unit_price": "14.90"}]'
ORDER_ID=$(field create-order 'b["data"]["id"]')
invoke create-order-replay create-order events/create-order.json
expect create-order-replay 's == 200' "b['data']['id'] == '$ORDER_ID'"

invoke update-product update-product events/update-product.json
expect update-product 's == 200' 'b["data"]["id"] == "espresso-beans"' 'b["data"]["price"] == "13.90"'

invoke list-orders list-orders events/list-orders.json
expect list-orders 's == 200' 'isinstance(b["data"], list)' \
    'all(o["status"] == "PENDING" and o["user_id"] == "dev-user" for o in b["data"])'
python3 - events/list-orders.json "$WORK/list-orders-all.event.json" <<'PY'
import json, sys
event = json.load(open(sys.argv[1]))
event["rawQueryString"] = "limit=10"
event["queryStringParameters"] = {"limit": "10"}
json.dump(event, open(sys.argv[2], "w"))
PY
invoke list-orders-all list-orders "$WORK/list-orders-all.event.json"
expect list-orders-all 's == 200' "[o['id'] for o in b['data']] == ['$ORDER_ID']"

# The sample asks for an order that does not exist.
invoke get-order get-order events/get-order.json
expect get-order 's == 404' 'b["error_code"] == "NOT_FOUND"' "b['details']['id'] == '$SAMPLE_ORDER_ID'"

# The placed order: create-order sent it to ORDER_QUEUE_URL, whose event source (the local stack)
# settles it within seconds. It stays PENDING if the function sent it anywhere else.
with_order events/get-order.json "$WORK/get-order-placed.event.json"
until_settled get-order-placed "$ORDER_ID" \
    ": nothing consumed what create-order sent to $ORDER_QUEUE_URL" 'b["data"]["total_amount"] == "29.80"'
STATUS=$SETTLED

# The sample names an unknown order: a poison message, reported so it reaches the DLQ.
invoke order-consumer order-consumer events/order-consumer.json
expect order-consumer 'r == {"batchItemFailures": [{"itemIdentifier": "2e1424d4-f796-459a-8184-9c92662be6da"}]}'
# A duplicate delivery for the settled order: acknowledged, nothing to retry.
with_order events/order-consumer.json "$WORK/order-consumer-placed.event.json"
invoke order-consumer-placed order-consumer "$WORK/order-consumer-placed.event.json"
expect order-consumer-placed 'r == {"batchItemFailures": []}'
invoke get-order-settled get-order "$WORK/get-order-placed.event.json"
expect get-order-settled "b['data']['status'] == '$STATUS'"

invoke cancel-order cancel-order events/cancel-order.json
expect cancel-order 's == 404' 'b["error_code"] == "NOT_FOUND"'
with_order events/cancel-order.json "$WORK/cancel-order-placed.event.json"
invoke cancel-order-placed cancel-order "$WORK/cancel-order-placed.event.json"
expect cancel-order-placed 's == 422' 'b["error_code"] == "ORDER_NOT_CANCELLABLE"' \
    "b['details']['status'] == '$STATUS'"

# Nothing is PENDING or PROCESSING: nothing to enqueue again.
invoke reconciler reconciler events/reconciler.json
expect reconciler 'r == {"requeued": 0, "enqueue_failures": 0, "redriven": 0, "dead_removed": 0, "dead_left": 0, "journal": {"released": 0, "undone": 0, "applied": 0, "dropped": 0}}'

# Payment webhooks.
# The sample's order_id is the id derived from dev-user and the create-order sample's key: the
# order placed above, already settled by the consumer, so the webhook (a terminal order) answers
# with its status and changes nothing. Its signature is for a fixed past time: re-signed here with
# the webhook secret at the current time (a timestamp more than 300 s from now is refused): the
# value of the secret WEBHOOK_SECRET_ID names in the stack's local Secrets Manager, read over its
# wire protocol, which is where payment-webhook reads it too.
WEBHOOK_SECRET_ID=$(sed -n 's/^WEBHOOK_SECRET_ID=//p' "$ENV_FILE")
[[ -n $WEBHOOK_SECRET_ID ]] || fail "no WEBHOOK_SECRET_ID in $ENV_FILE"
WEBHOOK_SECRET=$(curl -sf "$AWS_ENDPOINT" -H 'X-Amz-Target: secretsmanager.GetSecretValue' \
    -H 'Content-Type: application/x-amz-json-1.1' -d "{\"SecretId\":\"$WEBHOOK_SECRET_ID\"}" |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["SecretString"])') ||
    fail "the local Secrets Manager has no $WEBHOOK_SECRET_ID"
# signed_webhook SAMPLE DEST SECRET: the sample event signed now with SECRET.
signed_webhook() {
    python3 - "$1" "$2" "$3" <<'PY'
import hashlib, hmac, json, sys, time
event = json.load(open(sys.argv[1]))
t = str(int(time.time()))
v1 = hmac.new(sys.argv[3].encode(), f"{t}.{event['body']}".encode(), hashlib.sha256).hexdigest()
event["headers"]["x-webhook-signature"] = f"t={t},v1={v1}"
json.dump(event, open(sys.argv[2], "w"))
PY
}
[[ $(python3 -c 'import json, sys; print(json.loads(json.load(open(sys.argv[1]))["body"])["order_id"])' \
    events/payment-webhook.json) == "$ORDER_ID" ]] ||
    fail "events/payment-webhook.json names another order than the one create-order placed ($ORDER_ID)"
signed_webhook events/payment-webhook.json "$WORK/payment-webhook.event.json" "$WEBHOOK_SECRET"
invoke payment-webhook payment-webhook "$WORK/payment-webhook.event.json"
expect payment-webhook 's == 200' 'h.get("x-trace-id") == "sample-payment-webhook"' \
    "b == {'data': {'order_id': '$ORDER_ID', 'order_status': '$STATUS'}}"
# The same delivery again: the first answer, byte for byte.
invoke payment-webhook-replay payment-webhook "$WORK/payment-webhook.event.json"
expect payment-webhook-replay 's == 200' \
    "r['body'] == json.load(open('$WORK/payment-webhook.json'))['body']"
signed_webhook events/payment-webhook.json "$WORK/payment-webhook-bad.event.json" "not-$WEBHOOK_SECRET"
invoke payment-webhook-bad payment-webhook "$WORK/payment-webhook-bad.event.json"
expect payment-webhook-bad 's == 401' 'b["error_code"] == "UNAUTHENTICATED"'
# The sample as it is: signed long ago, so refused however valid its signature.
invoke payment-webhook-stale payment-webhook events/payment-webhook.json
expect payment-webhook-stale 's == 401' 'b["error_code"] == "UNAUTHENTICATED"'
# The order is as it was before the webhooks, updated_at included.
invoke get-order-after-webhook get-order "$WORK/get-order-placed.event.json"
expect get-order-after-webhook \
    "b == json.loads(json.load(open('$WORK/get-order-settled.json'))['body'])"

# Holds.
# A hold takes one unit at the current price (13.90 since update-product); an order from it takes
# no second unit, pays the hold's price and consumes it.
invoke get-product-before-hold get-product events/get-product.json
expect get-product-before-hold 's == 200'
STOCK=$(field get-product-before-hold 'b["data"]["stock"]')
invoke create-hold create-hold events/create-hold.json
expect create-hold 's == 201' 'h.get("x-trace-id") == "sample-create-hold"' \
    'b["data"]["status"] == "ACTIVE"' 'b["data"]["product_id"] == "espresso-beans"' \
    'b["data"]["quantity"] == 1' 'b["data"]["user_id"] == "dev-user"' \
    'b["data"]["unit_price"] == "13.90"' 'b["data"]["order_id"] is None' 'b["data"]["expires_at"]'
HOLD_ID=$(field create-hold 'b["data"]["hold_id"]')
invoke get-product-held get-product events/get-product.json
expect get-product-held "b['data']['stock'] == $STOCK - 1"

# The sample asks for a hold that does not exist; with the placed hold's id, that hold.
SAMPLE_HOLD_ID=00000000-0000-4000-8000-000000000002
invoke get-hold get-hold events/get-hold.json
expect get-hold 's == 404' 'b["error_code"] == "NOT_FOUND"' "b['details']['id'] == '$SAMPLE_HOLD_ID'"
sed "s/$SAMPLE_HOLD_ID/$HOLD_ID/g" events/get-hold.json >"$WORK/get-hold-placed.event.json"
invoke get-hold-placed get-hold "$WORK/get-hold-placed.event.json"
expect get-hold-placed 's == 200' "b['data'] == json.loads(json.load(open('$WORK/create-hold.json'))['body'])['data']"

HOLD_ORDER_KEY=smoke-hold-order-1
python3 - events/create-order.json "$WORK/create-order-hold.event.json" "$HOLD_ORDER_KEY" "$HOLD_ID" <<'PY'
import json, sys
event = json.load(open(sys.argv[1]))
event["body"] = json.dumps({"idempotency_key": sys.argv[3], "hold_id": sys.argv[4]})
json.dump(event, open(sys.argv[2], "w"))
PY
invoke create-order-hold create-order "$WORK/create-order-hold.event.json"
expect create-order-hold 's == 201' 'b["data"]["status"] == "PENDING"' \
    "b['data']['idempotency_key'] == '$HOLD_ORDER_KEY'" 'b["data"]["total_amount"] == "13.90"' \
    'b["data"]["items"] == [{"product_id": "espresso-beans", "quantity": 1, "unit_price": "13.90"}]'
HOLD_ORDER_ID=$(field create-order-hold 'b["data"]["id"]')
invoke get-hold-consumed get-hold "$WORK/get-hold-placed.event.json"
expect get-hold-consumed 's == 200' 'b["data"]["status"] == "CONSUMED"' \
    "b['data']['hold_id'] == '$HOLD_ID'" "b['data']['order_id'] == '$HOLD_ORDER_ID'"

# No hold is past its window (HOLD_TTL_SECONDS, 120 s by default): nothing to expire.
invoke hold-sweeper hold-sweeper events/hold-sweeper.json
expect hold-sweeper 'r == {"expired": 0, "lost_races": 0}'

# The order from the hold settles like any other; its unit is gone for good if PAID, back if FAILED.
sed "s/$SAMPLE_ORDER_ID/$HOLD_ORDER_ID/g" events/get-order.json >"$WORK/get-order-hold.event.json"
until_settled get-order-hold "$HOLD_ORDER_ID" ""
HOLD_STATUS=$SETTLED
invoke get-product-hold-settled get-product events/get-product.json
expect get-product-hold-settled \
    "b['data']['stock'] == $STOCK - (1 if '$HOLD_STATUS' == 'PAID' else 0)"

# The samples' token is signed with the development secret and expires in 2100.
invoke ws-connect ws-connect events/ws-connect.json
expect ws-connect 's == 200'
invoke ws-default ws-default events/ws-default.json
expect ws-default 's == 200' 'b == {"event": "pong"}'
invoke ws-disconnect ws-disconnect events/ws-disconnect.json
expect ws-disconnect 's == 200'

# Every other function: its sample event once, while the product the samples name still exists,
# with a generic check. A function whose sample needs a derived event or an exact answer gets a
# scripted case above instead.
SCRIPTED_BELOW=(delete-product) # it deletes the product the samples name
for event in events/*.json; do
    name=$(basename "$event" .json)
    [[ -f functions/src/bin/$name.rs && -z ${INVOKED[$name]:-} ]] || continue
    [[ " ${SCRIPTED_BELOW[*]} " == *" $name "* ]] && continue
    invoke "$name" "$name" "$event"
    if python3 -c 'import json, sys; sys.exit(0 if "requestContext" in json.load(open(sys.argv[1])) else 1)' "$event"; then
        # An API Gateway (HTTP or WebSocket) event: the handler answered with a 2xx status.
        expect "$name" 'isinstance(s, int) and 200 <= s < 300'
    else
        # An SQS or scheduled event: no error, and no message reported as failed.
        expect "$name" 'not (isinstance(r, dict) and ("errorType" in r or "errorMessage" in r))' \
            'not (isinstance(r, dict) and r.get("batchItemFailures"))'
    fi
done

# Last: the samples name the product it deletes.
invoke delete-product delete-product events/delete-product.json
expect delete-product 's == 204'
invoke get-product-deleted get-product events/get-product.json
expect get-product-deleted 's == 404' 'b["error_code"] == "NOT_FOUND"'


# Every function answered, scripted or with its sample event.
for bin in functions/src/bin/*.rs; do
    name=$(basename "$bin" .rs)
    [[ -n ${INVOKED[$name]:-} ]] || fail "$name was never invoked (no events/$name.json?)"
done
printf 'lambda-smoke: %d passed, 0 failed\n' "$PASSED"
