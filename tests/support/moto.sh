# shellcheck shell=bash
# Sourced by the scripts that run docs/deploy.md's blocks against moto's server
# (tests/localstack/migration-backfill.sh, stack-removal.sh), from the repository root $root with
# `fail` defined: the project's python (.venv, with moto) and AWS CLI (.tools/cli), the region, and
# moto's server started on a free port.

python="$root/.venv/bin/python"
aws_cli="$root/.tools/cli/bin/aws"
region="${AWS_REGION:-${AWS_DEFAULT_REGION:-us-east-1}}"

# Fails unless the python with moto and the AWS CLI are installed.
require_moto_tools() {
    [[ -x "$python" ]] || fail "$python is missing: run \`make .venv/.moto-installed\`"
    [[ -x "$aws_cli" ]] || fail "$aws_cli is missing: run \`make .tools/cli/.installed\`"
}

# Starts moto's server (localstack/tests/moto_server.py, its log in $work/moto.log) as the
# coprocess MOTO; sets moto_pid (for the caller's exit trap, set before this) and moto_port.
start_moto() {
    coproc MOTO { exec "$python" localstack/tests/moto_server.py 2>"$work/moto.log"; }
    # shellcheck disable=SC2153 # set by coproc
    moto_pid="$MOTO_PID"
    moto_port=""
    read -r -t 60 moto_port <&"${MOTO[0]}" || true
    [[ "$moto_port" =~ ^[0-9]+$ ]] || fail "moto's server printed '$moto_port' instead of its port"
}
