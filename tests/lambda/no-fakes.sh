#!/usr/bin/env bash
# What a Lambda binary is built from (and, last, that it holds only its own route): the functions package alone (as `cargo lambda build
# --package order-functions` builds it) must not enable the shared crate's `fakes` (in-memory ports)
# or `provision` (table creation) features, and a built binary must carry none of their symbols.
set -euo pipefail
CARGO=${CARGO:-cargo}

features=$("$CARGO" tree -p order-functions --edges normal,features --prefix none | grep -o 'order-shared feature "[a-z-]*"' | sort -u)
echo "order-functions enables: ${features//$'\n'/, }"
if grep -qE '"(fakes|provision)"' <<<"$features"; then
    echo "no-fakes: a Lambda binary's dependency tree enables fakes or provisioning" >&2
    exit 1
fi

"$CARGO" build -q -p order-functions --bin create-order --bin payment-webhook --bin get-product
for bin in create-order payment-webhook; do
    symbols=$(nm -C "target/debug/$bin" | grep -cE 'shared::adapters::in_memory|InMemoryStore|ensure_tables' || true)
    echo "$bin: $symbols symbols of fakes or provisioning"
    [[ $symbols == 0 ]] || { echo "no-fakes: $bin carries fakes or provisioning" >&2; exit 1; }
done
# Each HTTP binary names its one route: a read of a product carries no order placement or webhook.
others=$(nm -C target/debug/get-product | grep -cE 'shared::application::(place_order|payment_webhook)' || true)
echo "get-product: $others symbols of other routes' use cases"
[[ $others == 0 ]] || { echo "no-fakes: get-product carries other routes' code" >&2; exit 1; }
echo "no-fakes: passed"
