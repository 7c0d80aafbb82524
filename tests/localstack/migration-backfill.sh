#!/bin/bash
# The backfill of docs/deploy.md ("Moving to the lean order items", step 3), taken from the doc as
# written and run with the AWS CLI against moto's DynamoDB, on an orders table in the state steps
# 1 and 2 leave (the old and the new indexes), holding the orders a move meets: PENDING and
# PROCESSING ones of the old functions (only `status_shard`), a PAID one, and one the new
# functions settled with a stale `status_shard`. Checks that exactly the unsettled ones get an
# `unsettled_shard`, so the new reconciler's index finds them.
#
# Run by `make localstack-path-test` (part of `make test`), after moto-path.sh.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."
root="$PWD"
# shellcheck source=tests/support/moto.sh
source "$root/tests/support/moto.sh"

fail() {
    echo "FAILED: $*" >&2
    echo "migration-backfill: failed"
    exit 1
}
require_moto_tools

work="$(mktemp -d "${TMPDIR:-/tmp}/migration-backfill.XXXXXX")"
moto_pid=""
trap '[[ -z "$moto_pid" ]] || kill "$moto_pid" 2>/dev/null || true; rm -rf "$work"' EXIT
start_moto

# The doc's `aws` is the CLI against moto.
aws() {
    AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test \
        "$aws_cli" --endpoint-url "http://127.0.0.1:$moto_port" --region "$region" "$@"
}
table=mig-orders
key() { printf '{"AttributeName":"%s","KeyType":"%s"}' "$1" "$2"; }
gsi() {
    printf '{"IndexName":"%s","KeySchema":[%s,%s],"Projection":{"ProjectionType":"%s"}}' \
        "$1" "$(key "$2" HASH)" "$(key "$3" RANGE)" "$4"
}
definitions=()
for attribute in id user_id user_created status_shard updated_at unsettled_shard created_at; do
    definitions+=("AttributeName=$attribute,AttributeType=S")
done
aws dynamodb create-table --table-name "$table" --billing-mode PAY_PER_REQUEST \
    --attribute-definitions "${definitions[@]}" --key-schema AttributeName=id,KeyType=HASH \
    --global-secondary-indexes "[$(gsi user-orders user_id user_created ALL),
        $(gsi unsettled status_shard updated_at ALL),
        $(gsi user-orders-keys user_id user_created KEYS_ONLY),
        $(gsi unsettled-orders unsettled_shard created_at KEYS_ONLY)]" >/dev/null

order() { # ID STATUS [STATUS_SHARD]
    local at="2026-12-01T00:00:00.000Z" shard=""
    [[ -n "${3:-}" ]] && shard=",\"status_shard\":{\"S\":\"$3\"}"
    aws dynamodb put-item --table-name "$table" --item "{\"id\":{\"S\":\"$1\"},
        \"user_id\":{\"S\":\"u\"},\"status\":{\"S\":\"$2\"},\"updated_at\":{\"S\":\"$at\"},
        \"created_at\":{\"S\":\"$at\"},\"user_created\":{\"S\":\"$at#$1\"}$shard}" >/dev/null
}
order old-pending PENDING 'PENDING#3'
order old-processing PROCESSING 'PROCESSING#7'
order old-paid PAID
order new-paid PAID 'PENDING#1'

# Step 3's block, as docs/deploy.md has it, with the stack's table name.
backfill="$("$python" - "$root/docs/deploy.md" <<'PY'
import sys
doc = open(sys.argv[1]).read()
start = doc.index("3. **Backfill `unsettled_shard`.**")
body = doc.index("```sh", start) + len("```sh")
end = doc.index("```", body)
print("\n".join(line[3:] if line.startswith("   ") else line
                 for line in doc[body:end].splitlines()))
PY
)"
[[ "$backfill" == *"table=<stack>-orders"* ]] || fail "docs/deploy.md's step 3 no longer sets table=<stack>-orders"
eval "${backfill//<stack>-orders/$table}"

found="$(aws dynamodb scan --table-name "$table" \
    --query 'Items[].[id.S, unsettled_shard.S]' --output text | sort | tr '\t\n' ': ')"
expected="new-paid:None old-paid:None old-pending:0 old-processing:0 "
[[ "$found" == "$expected" ]] || fail "after the backfill: '$found', expected '$expected'"
indexed="$(aws dynamodb scan --table-name "$table" --index-name unsettled-orders \
    --query 'Items[].id.S' --output text | tr '\t' '\n' | sort | tr '\n' ' ')"
[[ "$indexed" == "old-pending old-processing " ]] ||
    fail "unsettled-orders holds '$indexed', expected the two unsettled orders"
echo "ok: the backfill of docs/deploy.md gave the two unsettled orders an unsettled_shard and left the settled ones alone"
echo "migration-backfill: passed"
