# shellcheck shell=bash
# Sourced by the scripts `make test` runs after cargo (tests/contract, tests/lambda,
# tests/localstack): the local-stack binary, and its start-up banner (localstack/src/main.rs), read
# in one place so the three scripts cannot drift from the banner's format.

# Prints the local-stack binary: $LOCAL_STACK_BIN as an absolute path, or a fresh
# `cargo build -p order-localstack --bin local-stack` from the repository root $1 ($CARGO, default
# cargo; $CARGO_TARGET_DIR honoured). Build output goes to standard error.
local_stack_bin() {
    local root=$1
    if [[ -n "${LOCAL_STACK_BIN:-}" ]]; then
        [[ "$LOCAL_STACK_BIN" == /* ]] && echo "$LOCAL_STACK_BIN" || echo "$PWD/$LOCAL_STACK_BIN"
        return
    fi
    # shellcheck disable=SC2086 # CARGO may carry arguments, as in the Makefile (`cargo +stable`)
    (cd "$root" && ${CARGO:-cargo} build -p order-localstack --bin local-stack) >&2
    echo "${CARGO_TARGET_DIR:-$root/target}/debug/local-stack"
}

# Waits until the stack logging to $1 (process $2) has printed its banner, whose last line is the
# admin token, for at most $3 seconds. On failure prints why and the log, and returns 1.
wait_for_banner() {
    local log=$1 pid=$2 seconds=$3 i
    for ((i = 0; i < seconds * 10; i++)); do
        grep -q '^  export ADMIN_TOKEN=' "$log" && return 0
        if ! kill -0 "$pid" 2>/dev/null; then
            echo "the local stack exited before it was ready:" >&2
            cat "$log" >&2
            return 1
        fi
        sleep 0.1
    done
    echo "the local stack printed no banner within ${seconds}s:" >&2
    cat "$log" >&2
    return 1
}

# Prints one address or token from the banner in log $1: `http` (the HTTP API), `aws` (the AWS
# endpoint), `queue` (the order queue's URL), `dlq` (its dead-letter queue's), `management` (the WebSocket management API),
# `token` or `admin-token`.
banner_value() {
    local log=$1 pattern
    case $2 in
        http) pattern='^  HTTP API  *\(http[^ ]*\).*' ;;
        aws) pattern='^  AWS endpoint  *\(http[^ ]*\).*' ;;
        queue) pattern='^  Order queue  *\(http[^ ]*\).*' ;;
        dlq) pattern='^  Dead letters  *\(http[^ ]*\).*' ;;
        management) pattern='.*(management API: \(http[^ ]*\)/@connections/.*' ;;
        token) pattern='^  export TOKEN=\([^ ]*\).*' ;;
        admin-token) pattern='^  export ADMIN_TOKEN=\([^ ]*\).*' ;;
        *) echo "banner_value: unknown field $2" >&2; return 2 ;;
    esac
    sed -n "s|$pattern|\\1|p" "$log" | head -n 1
}
