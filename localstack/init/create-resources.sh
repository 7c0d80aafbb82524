#!/bin/bash
# Creates what the local stack provisions (localstack/src/provision.rs and
# shared/src/adapters/dynamodb/schema.rs), with the AWS CLI against one AWS endpoint: the eight
# DynamoDB tables (keys, GSIs with projection ALL or KEYS_ONLY, on-demand capacity, TTL on `expires_at` where
# items expire), the dead-letter queue and the order queue with its redrive policy and visibility
# timeout. Idempotent: whatever exists already is kept (a queue's attributes are set again), so
# running it twice, or before or after `make run`, is fine.
#
# Runs in two places:
#   - inside LocalStack's container, as a ready.d init hook (localstack/docker-compose.yml mounts it
#     into /etc/localstack/init/ready.d/); the image has the AWS CLI (`aws`) and `awslocal`;
#   - on the host with the AWS CLI on PATH: `AWS_ENDPOINT_URL=http://localhost:4566
#     localstack/init/create-resources.sh` (`make test` runs it against moto's server this way).
#
# Settings, the same environment variables the code reads, with the same defaults:
#   AWS_ENDPOINT_URL (http://localhost:4566), AWS_REGION / AWS_DEFAULT_REGION (us-east-1),
#   PRODUCTS_TABLE, ORDERS_TABLE, IDEMPOTENCY_TABLE, LOCKS_TABLE, RATE_LIMITS_TABLE,
#   CONNECTIONS_TABLE, HOLDS_TABLE, WEBHOOKS_TABLE, ORDER_QUEUE_NAME, ORDER_DLQ_NAME,
#   ORDER_QUEUE_VISIBILITY_SECONDS (30), ORDER_QUEUE_MAX_RECEIVE_COUNT (5).
set -euo pipefail

endpoint="${AWS_ENDPOINT_URL:-http://localhost:4566}"
region="${AWS_REGION:-${AWS_DEFAULT_REGION:-us-east-1}}"

# Without credentials of its own, the local stack signs with a dummy key, which LocalStack and moto
# both map to their default account; do the same, so the resources land in that account. (Init hooks
# run with no AWS credentials in their environment; LocalStack restores the variables afterwards.)
if [[ -z "${AWS_ACCESS_KEY_ID:-}" ]]; then
    export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test
    unset AWS_SESSION_TOKEN AWS_PROFILE
fi

products_table="${PRODUCTS_TABLE:-products}"
orders_table="${ORDERS_TABLE:-orders}"
idempotency_table="${IDEMPOTENCY_TABLE:-idempotency}"
locks_table="${LOCKS_TABLE:-stock-locks}"
rate_limits_table="${RATE_LIMITS_TABLE:-rate-limits}"
connections_table="${CONNECTIONS_TABLE:-ws-connections}"
holds_table="${HOLDS_TABLE:-holds}"
webhooks_table="${WEBHOOKS_TABLE:-payment-webhooks}"
queue_name="${ORDER_QUEUE_NAME:-orders}"
dlq_name="${ORDER_DLQ_NAME:-orders-dlq}"
visibility_timeout="${ORDER_QUEUE_VISIBILITY_SECONDS:-30}"
max_receive_count="${ORDER_QUEUE_MAX_RECEIVE_COUNT:-5}"

aws_() {
    aws --endpoint-url "$endpoint" --region "$region" --output text "$@"
}

# create_table NAME HASH [RANGE] [--gsi|--gsi-keys INDEX HASH [RANGE]]... : every key attribute is a string.
create_table() {
    local name="$1" hash="$2" range=""
    shift 2
    if [[ $# -gt 0 && "$1" != --gsi* ]]; then
        range="$1"
        shift
    fi
    local attributes=("$hash") keys="AttributeName=$hash,KeyType=HASH" indexes=()
    if [[ -n "$range" ]]; then
        attributes+=("$range")
        keys="$keys AttributeName=$range,KeyType=RANGE"
    fi
    while [[ $# -gt 0 ]]; do
        # --gsi INDEX HASH [RANGE] (projection ALL) or --gsi-keys INDEX HASH [RANGE] (KEYS_ONLY)
        local projection=ALL
        if [[ "$1" == --gsi-keys ]]; then
            projection=KEYS_ONLY
        fi
        local index="$2" index_hash="$3" index_range=""
        shift 3
        if [[ $# -gt 0 && "$1" != --gsi* ]]; then
            index_range="$1"
            shift
        fi
        local index_keys="{\"AttributeName\":\"$index_hash\",\"KeyType\":\"HASH\"}"
        attributes+=("$index_hash")
        if [[ -n "$index_range" ]]; then
            index_keys="$index_keys,{\"AttributeName\":\"$index_range\",\"KeyType\":\"RANGE\"}"
            attributes+=("$index_range")
        fi
        indexes+=("{\"IndexName\":\"$index\",\"KeySchema\":[$index_keys],\"Projection\":{\"ProjectionType\":\"$projection\"}}")
    done

    if aws_ dynamodb describe-table --table-name "$name" --query Table.TableStatus >/dev/null 2>&1; then
        echo "table $name exists"
    else
        local definitions=() attribute
        for attribute in $(printf '%s\n' "${attributes[@]}" | sort -u); do
            definitions+=("AttributeName=$attribute,AttributeType=S")
        done
        local gsi_args=()
        if [[ ${#indexes[@]} -gt 0 ]]; then
            local joined
            joined="$(IFS=,; echo "${indexes[*]}")"
            gsi_args=(--global-secondary-indexes "[$joined]")
        fi
        # shellcheck disable=SC2086 # $keys is a list of shorthand key elements
        aws_ dynamodb create-table --table-name "$name" --billing-mode PAY_PER_REQUEST \
            --attribute-definitions "${definitions[@]}" --key-schema $keys ${gsi_args[@]+"${gsi_args[@]}"} \
            --query TableDescription.TableArn >/dev/null
        echo "table $name created"
    fi
    aws_ dynamodb wait table-exists --table-name "$name"
}

# Turns on TTL on `expires_at` unless it is on (or turning on) already.
enable_ttl() {
    local name="$1" status
    status="$(aws_ dynamodb describe-time-to-live --table-name "$name" \
        --query TimeToLiveDescription.TimeToLiveStatus)"
    case "$status" in
    ENABLED | ENABLING) echo "table $name: TTL on expires_at already $status" ;;
    *)
        aws_ dynamodb update-time-to-live --table-name "$name" \
            --time-to-live-specification Enabled=true,AttributeName=expires_at >/dev/null
        echo "table $name: TTL on expires_at enabled"
        ;;
    esac
}

# ensure_queue NAME [ATTRIBUTES_JSON]: creates the queue, or brings an existing one to the attributes
# (CreateQueue refuses a name that exists with other attributes). Sets $queue_url.
ensure_queue() {
    local name="$1" wanted="${2:-}"
    if queue_url="$(aws_ sqs get-queue-url --queue-name "$name" --query QueueUrl 2>/dev/null)"; then
        if [[ -n "$wanted" ]]; then
            aws_ sqs set-queue-attributes --queue-url "$queue_url" --attributes "$wanted"
        fi
        echo "queue $name exists"
    else
        local args=()
        [[ -n "$wanted" ]] && args=(--attributes "$wanted")
        queue_url="$(aws_ sqs create-queue --queue-name "$name" ${args[@]+"${args[@]}"} --query QueueUrl)"
        echo "queue $name created"
    fi
}

echo "Creating the tables and queues at $endpoint ($region)"

create_table "$products_table" id
# Both keys only; unsettled-orders is sparse: only PENDING and PROCESSING orders carry
# unsettled_shard.
create_table "$orders_table" id \
    --gsi-keys user-orders-keys user_id user_created \
    --gsi-keys unsettled-orders unsettled_shard created_at
create_table "$idempotency_table" user_id idempotency_key
create_table "$locks_table" product_id
create_table "$connections_table" connection_id --gsi user-connections user_id
create_table "$rate_limits_table" pk
# active-holds is sparse: only ACTIVE holds carry sweep_shard.
create_table "$holds_table" id --gsi active-holds sweep_shard hold_expires_at
create_table "$webhooks_table" pk
for table in "$idempotency_table" "$locks_table" "$connections_table" "$rate_limits_table" \
    "$holds_table" "$webhooks_table"; do
    enable_ttl "$table"
done

# The dead-letter queue first, then the order queue whose redrive policy names it. maxReceiveCount
# is a JSON number: rustack-sqs accepts nothing else, AWS, LocalStack and moto accept it too.
ensure_queue "$dlq_name"
dlq_url="$queue_url"
dlq_arn="$(aws_ sqs get-queue-attributes --queue-url "$dlq_url" --attribute-names QueueArn \
    --query Attributes.QueueArn)"
redrive_policy="{\\\"deadLetterTargetArn\\\":\\\"$dlq_arn\\\",\\\"maxReceiveCount\\\":$max_receive_count}"
ensure_queue "$queue_name" \
    "{\"RedrivePolicy\":\"$redrive_policy\",\"VisibilityTimeout\":\"$visibility_timeout\"}"

echo "order queue     $queue_url"
echo "dead letters    $dlq_url"
echo "Done."
