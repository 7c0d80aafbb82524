#!/bin/bash
# "Removing a test stack" of docs/deploy.md, taken from the doc as written and run with the AWS CLI
# (.tools/cli, the `aws` on PATH) against moto's DynamoDB and CloudFormation, on what a deployed
# stack leaves: a CloudFormation stack named as the doc's `STACK=` that owns the eight tables of
# template.yaml, each named `<stack>-<table>` as the template names it, with deletion protection on
# (the template's default, `TableDeletionProtection: 'true'`) and the template's DeletionPolicy and
# UpdateReplacePolicy (RetainExceptOnCreate on products and orders, Delete on the others; the
# stand-in says Retain for RetainExceptOnCreate, which is what it means when an existing stack is
# deleted and the only one of the two moto 5.2 knows). Key schemas are minimal (`id`), nothing of
# the block depends on them.
#
#   1. checks that the doc's two loops name the template's tables: the first all eight, the second
#      exactly those the template retains, and that every table's DeletionProtectionEnabled follows
#      TableDeletionProtection, whose default is 'true';
#   2. creates the stack, then checks that moto refuses to delete a protected table (it does: a
#      ValidationException naming DeletionProtectionEnabled, as DynamoDB does);
#   3. runs the doc's block, unchanged (its own STACK value), under `bash -euo pipefail`: its last
#      loop therefore fails if the stack deletion took a retained table with it;
#   4. checks that no table is left and that the stack is gone (DescribeStacks says it does not
#      exist, ListStacks says DELETE_COMPLETE).
#
# Not checked: that `delete-stack` fails while protection is on (the doc's reason for the first
# loop). On AWS the stack ends DELETE_FAILED; moto 5.2's DeleteStack instead passes DynamoDB's JSON
# error through its XML API (the CLI cannot parse the answer) and drops the stack while the
# protected tables stay, a state no later step of the doc could start from.
#
# Run by `make localstack-path-test` (part of `make test`), after migration-backfill.sh.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."
root="$PWD"
# shellcheck source=tests/support/moto.sh
source "$root/tests/support/moto.sh"

reported=""
fail() {
    echo "FAILED: $*" >&2
    echo "stack-removal: failed"
    reported=yes
    exit 1
}
require_moto_tools

work="$(mktemp -d "${TMPDIR:-/tmp}/stack-removal.XXXXXX")"
moto_pid=""
cleanup() {
    local status=$?
    if [[ $status -ne 0 ]]; then
        [[ -n "$reported" ]] || {
            echo "FAILED: a command above exited with $status" >&2
            echo "stack-removal: failed"
        }
        for log in block.log moto.log; do
            if [[ -s "$work/$log" ]]; then
                echo "--- last lines of $log" >&2
                tail -n 40 "$work/$log" >&2
            fi
        done
    fi
    [[ -z "$moto_pid" ]] || kill "$moto_pid" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# The doc's block, the template's tables, and the stack that stands for a deployed one.
facts="$("$python" - "$root/docs/deploy.md" "$root/template.yaml" "$work" <<'PY'
import json, re, sys
import yaml

doc_path, template_path, work = sys.argv[1:]

def problem(message):
    print(message, file=sys.stderr)
    sys.exit(1)

doc = open(doc_path).read()
try:
    start = doc.index("### Removing a test stack")
    body = doc.index("```sh\n", start) + len("```sh\n")
    end = doc.index("```", body)
except ValueError:
    problem("docs/deploy.md: no ```sh block under \"### Removing a test stack\"")
if doc.find("\n#", start + 1, body) != -1:
    problem("docs/deploy.md: the block after \"### Removing a test stack\" is in a later section")
block = doc[body:end]
open(f"{work}/block.sh", "w").write(block)

# template.yaml with its short forms (!Sub, !If, ...) read as the long ones.
class Loader(yaml.SafeLoader):
    pass
def intrinsic(loader, suffix, node):
    name = suffix if suffix in ("Ref", "Condition") else "Fn::" + suffix
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
        if suffix == "GetAtt":
            value = value.split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return {name: value}
Loader.add_multi_constructor("!", intrinsic)
template = yaml.load(open(template_path), Loader=Loader)

default = template["Parameters"]["TableDeletionProtection"].get("Default")
if default != "true":
    problem(f"template.yaml: TableDeletionProtection defaults to {default!r}, the doc says 'true'")
if template["Conditions"].get("ProtectTables") != {"Fn::Equals": [{"Ref": "TableDeletionProtection"}, "true"]}:
    problem("template.yaml: ProtectTables is no longer TableDeletionProtection == 'true'")

tables, retained, resources = [], [], {}
for logical, resource in template["Resources"].items():
    if resource.get("Type") != "AWS::DynamoDB::Table":
        continue
    properties = resource.get("Properties", {})
    name = properties.get("TableName")
    match = re.fullmatch(r"\$\{AWS::StackName\}-([a-z0-9-]+)", (name or {}).get("Fn::Sub", "") if isinstance(name, dict) else "")
    if not match:
        problem(f"template.yaml: {logical}'s TableName is {name!r}, not !Sub ${{AWS::StackName}}-<table>")
    if properties.get("DeletionProtectionEnabled") != {"Fn::If": ["ProtectTables", True, False]}:
        problem(f"template.yaml: {logical}'s DeletionProtectionEnabled does not follow ProtectTables")
    suffix = match.group(1)
    tables.append(suffix)
    policy = resource.get("DeletionPolicy", "Delete")
    if policy in ("Retain", "RetainExceptOnCreate"):
        retained.append(suffix)
        policy = "Retain"
    resources[logical] = {
        "Type": "AWS::DynamoDB::Table",
        "DeletionPolicy": policy,
        "UpdateReplacePolicy": resource.get("UpdateReplacePolicy", "Delete"),
        "Properties": {
            "TableName": {"Fn::Sub": "${AWS::StackName}-" + suffix},
            "BillingMode": "PAY_PER_REQUEST",
            "AttributeDefinitions": [{"AttributeName": "id", "AttributeType": "S"}],
            "KeySchema": [{"AttributeName": "id", "KeyType": "HASH"}],
            "DeletionProtectionEnabled": True,
        },
    }
if len(tables) != 8:
    problem(f"template.yaml has {len(tables)} tables ({' '.join(tables)}), the doc speaks of eight")
open(f"{work}/stack.json", "w").write(json.dumps({"Resources": resources}))

stack = re.search(r"^STACK=(\S+)", block, re.M)
loops = re.findall(r"^for table in ([^;\n]*); do\n(.*)\n", block, re.M)
if not stack:
    problem("docs/deploy.md: the block no longer sets STACK=")
if len(loops) != 2 or "--no-deletion-protection-enabled" not in loops[0][1] \
        or "delete-table" not in loops[1][1]:
    problem("docs/deploy.md: the block no longer has its two loops (protection off, then delete-table)")
unprotected, deleted = (loop[0].split() for loop in loops)
if sorted(unprotected) != sorted(tables) or len(set(unprotected)) != len(unprotected):
    problem(f"docs/deploy.md turns protection off on '{' '.join(unprotected)}', "
            f"template.yaml's tables are '{' '.join(tables)}'")
if sorted(deleted) != sorted(retained):
    problem(f"docs/deploy.md deletes '{' '.join(deleted)}' after the stack, "
            f"template.yaml retains '{' '.join(retained)}'")
print(stack.group(1))
print(" ".join(tables))
print(" ".join(retained))
PY
)" || fail "docs/deploy.md and template.yaml disagree (above)"
{ read -r stack; read -r -a tables; read -r -a retained; } <<<"$facts"
echo "ok: the doc's loops name template.yaml's eight tables (${tables[*]}) and its retained ones (${retained[*]})"

start_moto

# The doc's `aws`: .tools/cli's, on PATH, with moto as its endpoint, dummy credentials and no
# profile or config file of the machine.
export PATH="$root/.tools/cli/bin:$PATH"
export AWS_ENDPOINT_URL="http://127.0.0.1:$moto_port"
export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test
export AWS_REGION="$region" AWS_DEFAULT_REGION="$region"
export AWS_CONFIG_FILE="$work/no-config" AWS_SHARED_CREDENTIALS_FILE="$work/no-credentials"
unset AWS_PROFILE AWS_DEFAULT_PROFILE AWS_SESSION_TOKEN
[[ "$(command -v aws)" == "$aws_cli" ]] || fail "the aws on PATH is $(command -v aws), not $aws_cli"

# What a deployed stack leaves.
aws cloudformation create-stack --stack-name "$stack" --template-body "file://$work/stack.json" \
    >/dev/null
aws cloudformation wait stack-create-complete --stack-name "$stack"
expected="$(printf '%s\n' "${tables[@]/#/$stack-}" | sort | tr '\n' ' ')"
found="$(aws dynamodb list-tables --query 'TableNames[]' --output text | tr '\t' '\n' | sort |
    tr '\n' ' ')"
[[ "$found" == "$expected" ]] || fail "the stack made the tables '$found', expected '$expected'"
for table in "${tables[@]}"; do
    protected="$(aws dynamodb describe-table --table-name "$stack-$table" \
        --query Table.DeletionProtectionEnabled --output text)"
    [[ "$protected" == True ]] || fail "$stack-$table: DeletionProtectionEnabled is '$protected'"
done
echo "ok: stack $stack holds the eight tables, each with deletion protection on"

# Protection holds: deleting a table is refused until the doc's first loop turns it off.
victim="$stack-${tables[0]}"
if refusal="$(aws dynamodb delete-table --table-name "$victim" 2>&1)"; then
    fail "moto deleted $victim although its deletion protection was on"
fi
[[ "$refusal" == *DeletionProtectionEnabled* ]] ||
    fail "deleting $victim failed, but not for its protection: $refusal"
aws dynamodb describe-table --table-name "$victim" >/dev/null ||
    fail "$victim is gone after the refused deletion"
echo "ok: moto refuses to delete the protected $victim (\"${refusal##*: }\")"

# The doc's block, as written. `timeout`: the waiter would otherwise poll for an hour.
if ! timeout 300 bash -euo pipefail "$work/block.sh" >"$work/block.log" 2>&1; then
    fail "docs/deploy.md's block failed (block.log below)"
fi
echo "ok: docs/deploy.md's block ran as written (STACK=$stack), its last loop deleted ${retained[*]}"

left="$(aws dynamodb list-tables --query 'TableNames[]' --output text)"
[[ -z "$left" ]] || fail "tables left after the block: $left"
if described="$(aws cloudformation describe-stacks --stack-name "$stack" \
    --query 'Stacks[0].StackStatus' --output text 2>&1)"; then
    [[ "$described" == DELETE_COMPLETE ]] || fail "stack $stack is still there: $described"
else
    [[ "$described" == *"does not exist"* ]] || fail "describe-stacks $stack: $described"
fi
summary="$(aws cloudformation list-stacks \
    --query "StackSummaries[?StackName=='$stack'].StackStatus" --output text)"
[[ "$summary" == DELETE_COMPLETE ]] || fail "list-stacks shows $stack as '$summary'"
echo "ok: no table is left and stack $stack is DELETE_COMPLETE"
echo "stack-removal: passed"
