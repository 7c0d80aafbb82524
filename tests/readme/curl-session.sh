#!/usr/bin/env bash
# The README's curl sessions, run as written against fresh local stacks, each curl's HTTP status
# compared with the code the README gives it. `make readme-session` (part of `make test`) builds
# the local stack as `make run` does and runs this.
#
# Two ```sh blocks of README.md are taken verbatim, from their heading to the closing fence:
#   "## A curl session"          against a stack with the default settings;
#   "## Cancelling within a window"  against a second stack started with the variables its first
#                                line puts before `make run` (CANCEL_WINDOW_SECONDS=30); that line,
#                                which starts the stack in another terminal, is not run, and the
#                                block gets the first block's `export TOKEN=` line and this
#                                stack's API ("with API and TOKEN as above").
# Only the value of the `export API=` line changes: each stack listens on ports the OS picks
# (HTTP_PORT=0 WS_PORT=0 AWS_PORT=0) and its HTTP API's URL is read from its banner. A stack runs
# from the repository root, as `make run` does, with an otherwise empty environment (PATH and HOME
# only), so that no setting of the caller's changes its defaults; it is stopped when this ends,
# however it ends.
#
# The expected codes are the README's: every curl command ends, on its last line, with a comment
# holding only its status code (`curl -s $API/health  # 200`). The block runs with a shell function
# `curl` defined first that calls the real curl with `--write-out '%{stderr}%{http_code}'` added
# (and a 30 s `--max-time`), so that what the block reads from curl's standard output is unchanged;
# the codes go to a file, in call order, and are compared with the README's, in order. A command
# without a code, a code without a command, or a code that differs fails the run with the README
# line concerned.
#
# Settings (environment):
#   LOCAL_STACK_BIN        the local-stack binary (default: target/local/local-stack, `make run`'s)
#   README_STARTUP_SECS    how long to wait for a stack's banner (default 120)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
README=$ROOT/README.md
STARTUP_SECS=${README_STARTUP_SECS:-120}
SESSION_HEADING='## A curl session'
WINDOW_HEADING='## Cancelling within a window'

# shellcheck source=tests/support/local-stack.sh
source "$ROOT/tests/support/local-stack.sh"

LOCAL_STACK_BIN=${LOCAL_STACK_BIN:-${CARGO_TARGET_DIR:-$ROOT/target}/local/local-stack}
[[ "$LOCAL_STACK_BIN" == /* ]] || LOCAL_STACK_BIN="$PWD/$LOCAL_STACK_BIN"
if [[ ! -x "$LOCAL_STACK_BIN" ]]; then
    echo "no local-stack binary at $LOCAL_STACK_BIN: \`make readme-session\` builds it as \`make run\` does" >&2
    exit 2
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/readme-session.XXXXXX")
STACK_PIDS=()

stop_stacks() {
    local status=$? pid
    for pid in "${STACK_PIDS[@]}"; do
        kill -INT "$pid" 2>/dev/null || true
    done
    for pid in "${STACK_PIDS[@]}"; do
        for _ in $(seq 1 50); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.2
        done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$WORK"
    exit "$status"
}
trap stop_stacks EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Prints `<README line>\t<text>` for each line of the first ```sh block after heading $1, and fails
# when the section has none or the block is not closed.
block() {
    awk -v heading="$1" '
        $0 == heading { section = 1; next }
        section && !inside && /^## / { exit }
        section && !inside && $0 == "```sh" { inside = 1; next }
        inside && $0 == "```" { closed = 1; exit }
        inside { print NR "\t" $0 }
        END { if (!closed) exit 1 }
    ' "$README" || {
        echo "README.md: no closed \`\`\`sh block under \"$1\"" >&2
        return 1
    }
}

# Starts a stack with the extra settings $2... (NAME=value), logging to $WORK/$1.log.
start_stack() {
    local name=$1
    shift
    : >"$WORK/$name.log"
    (cd "$ROOT" && exec env -i PATH="$PATH" HOME="$HOME" HTTP_PORT=0 WS_PORT=0 AWS_PORT=0 "$@" \
        "$LOCAL_STACK_BIN") >"$WORK/$name.log" 2>&1 &
    STACK_PIDS+=($!)
}

# Prints stack $1's HTTP API URL once its banner is out (its pid is $2).
stack_url() {
    local url
    wait_for_banner "$WORK/$1.log" "$2" "$STARTUP_SECS" || return 1
    url=$(banner_value "$WORK/$1.log" http)
    [[ -n "$url" ]] || {
        echo "cannot read the HTTP API's URL from the $1 stack's banner:" >&2
        cat "$WORK/$1.log" >&2
        return 1
    }
    echo "$url"
}

# What the blocks run before their own lines: the recording `curl`.
cat >"$WORK/preamble.sh" <<'EOF'
curl() {
    local status out arg previous='' method=GET url=''
    for arg in "$@"; do
        [[ "$previous" == -X ]] && method=$arg
        [[ "$arg" == http://* || "$arg" == https://* ]] && url=$arg
        previous=$arg
    done
    out=$(mktemp "${TMPDIR:-/tmp}/readme-curl.XXXXXX")
    command curl --max-time 30 "$@" --write-out '%{stderr}%{http_code}\n' 2>"$out"
    status=$?
    # Anything curl said on standard error besides the code goes where it would have gone.
    sed '$d' "$out" >&2
    printf '%s\t%s %s\n' "$(tail -n 1 "$out")" "$method" "$url" >>"$README_CODES"
    # The log shows each answer's status after it (standard error: the block never reads it).
    printf '  # -> %s\n' "$(tail -n 1 "$out")" >&2
    rm -f "$out"
    return "$status"
}
EOF

# Runs block file $1 (README lines in $1.lines) against $2, with $3 prepended (exports), and
# compares its curl calls' codes with the README's. Prints what the block printed.
run_block() {
    local name=$1 api=$2 prelude=$3 codes="$WORK/$1.codes" script="$WORK/$1.sh"
    local -a expected=() expected_at=() got=() calls=()
    local line text n=0 commands=0 failures=0 i
    : >"$codes"
    # The README's codes: a trailing `# NNN` on a command line (not on a comment line).
    while IFS=$'\t' read -r line text; do
        [[ "$text" =~ ^[[:space:]]*# ]] && continue
        # curl commands on this line, outside its trailing comment and quoted payloads' words.
        local code_part=${text%%[[:space:]]#*}
        commands=$((commands + $(grep -o '\bcurl\b' <<<"$code_part" | wc -l)))
        if [[ "$text" =~ [[:space:]]#[[:space:]]*([1-5][0-9][0-9])[[:space:]]*$ ]]; then
            expected+=("${BASH_REMATCH[1]}")
            expected_at+=("$line")
        fi
    done <"$WORK/$name.block"
    if ((commands != ${#expected[@]})); then
        echo "README.md, \"$name\" block: ${commands} curl commands but ${#expected[@]} expected codes (end each curl command's last line with \`  # <status>\`)" >&2
        return 1
    fi
    {
        cat "$WORK/preamble.sh"
        printf '%s\n' "$prelude"
        cut -f2- "$WORK/$name.block" | sed "s|^export API=.*|export API=$api|"
    } >"$script"
    echo "=== README.md: $name, against $api ==="
    (cd "$WORK" && README_CODES="$codes" timeout 300 bash --noprofile --norc "$script") || true
    echo
    while IFS=$'\t' read -r line text; do
        got+=("$line")
        calls+=("$text")
    done <"$codes"
    n=${#expected[@]}
    ((${#got[@]} > n)) && n=${#got[@]}
    for ((i = 0; i < n; i++)); do
        if ((i >= ${#expected[@]})); then
            echo "README.md ($name): call $((i + 1)) was not expected (got ${got[i]}, ${calls[i]})" >&2
            failures=$((failures + 1))
        elif ((i >= ${#got[@]})); then
            echo "README.md:${expected_at[i]}: expected ${expected[i]}, but the session stopped before this call" >&2
            failures=$((failures + 1))
        elif [[ "${expected[i]}" != "${got[i]}" ]]; then
            echo "README.md:${expected_at[i]}: expected ${expected[i]}, got ${got[i]} (${calls[i]})" >&2
            failures=$((failures + 1))
        fi
    done
    if ((failures)); then
        return 1
    fi
    echo "README.md ($name): ${#expected[@]} curl calls, every status as the README says ($(
        IFS=' '
        echo "${got[*]}"
    ))"
}

block "$SESSION_HEADING" >"$WORK/session.block"
block "$WINDOW_HEADING" >"$WORK/window.block"
grep -q $'^[0-9]*\texport API=' "$WORK/session.block" || {
    echo "README.md: the \"$SESSION_HEADING\" block has no \`export API=\` line" >&2
    exit 1
}
TOKEN_LINE=$(grep $'^[0-9]*\texport TOKEN=' "$WORK/session.block" | cut -f2- | head -n 1)

# The window block's first line starts its stack: `NAME=value ... make run  # ...`.
first=$(head -n 1 "$WORK/window.block" | cut -f2-)
if [[ ! "$first" =~ ^(([A-Z_]+=[^[:space:]]+[[:space:]]+)+)make[[:space:]]+run([[:space:]]|$) ]]; then
    echo "README.md: the \"$WINDOW_HEADING\" block does not start with \`NAME=value make run\`: $first" >&2
    exit 1
fi
read -r -a WINDOW_SETTINGS <<<"${BASH_REMATCH[1]}"
sed -i '1s|\t.*|\t# (started by tests/readme/curl-session.sh)|' "$WORK/window.block"

start_stack session
SESSION_PID=${STACK_PIDS[0]}
start_stack window "${WINDOW_SETTINGS[@]}"
WINDOW_PID=${STACK_PIDS[1]}
SESSION_API=$(stack_url session "$SESSION_PID")
WINDOW_API=$(stack_url window "$WINDOW_PID")

status=0
run_block session "$SESSION_API" "" || status=1
run_block window "$WINDOW_API" "export API=$WINDOW_API
$TOKEN_LINE" || status=1
if ((status)); then
    echo "README curl sessions FAILED (the stacks' logs follow)" >&2
    for name in session window; do
        echo "--- $name stack ---" >&2
        tail -n 40 "$WORK/$name.log" >&2
    done
    exit 1
fi
echo "README curl sessions passed (window stack: ${WINDOW_SETTINGS[*]})"
