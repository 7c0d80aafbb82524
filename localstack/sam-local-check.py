"""What `sam local invoke` / `sam local start-api` would hand each function, resolved with the SAM
CLI's own code (no Docker needed): template.yaml, the parameter overrides and env_vars file of
samconfig.toml's local sections (events/sam-local-env.json). Fails unless every function gets the
local stack's AWS endpoint on loopback and, from that file, the local value of every variable the
template declares for it that points at a resource or a key (tables, queue URL, management
endpoint, the JWT secret's name where tokens are verified, the webhook secret where webhook signatures are
verified). `make lint-template` runs it.

    .tools/sam/bin/python localstack/sam-local-check.py
"""

import json
import os
import sys
import tomllib

os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")

from samcli.commands.local.lib.local_lambda import LocalLambdaRunner  # noqa: E402
from samcli.lib.providers.sam_function_provider import SamFunctionProvider  # noqa: E402
from samcli.lib.providers.sam_stack_provider import SamLocalStackProvider  # noqa: E402

# Variables a function cannot start or work without under sam local (the rest have defaults).
REQUIRED = {
    "AWS_ENDPOINT_URL",
    "JWT_SECRET_ID",
    "WEBHOOK_SECRET_ID",
    "ORDER_QUEUE_URL",
    "ORDER_DLQ_URL",
    "WS_MANAGEMENT_ENDPOINT",
    "PRODUCTS_TABLE",
    "ORDERS_TABLE",
    "IDEMPOTENCY_TABLE",
    "LOCKS_TABLE",
    "RATE_LIMITS_TABLE",
    "CONNECTIONS_TABLE",
    "HOLDS_TABLE",
    "WEBHOOKS_TABLE",
}


def main():
    config = tomllib.load(open("samconfig.toml", "rb"))["default"]["local_invoke"]["parameters"]
    overrides = dict(item.split("=", 1) for item in config["parameter_overrides"])
    env_file = json.load(open(config["env_vars"]))
    stacks, _ = SamLocalStackProvider.get_stacks("template.yaml", parameter_overrides=overrides)
    provider = SamFunctionProvider(stacks)
    runner = LocalLambdaRunner(
        local_runtime=None,
        function_provider=provider,
        cwd=".",
        real_path=".",
        env_vars_values=env_file,
    )
    failures = []
    functions = sorted(provider.get_all(), key=lambda f: f.name)
    for function in functions:
        declared = set((function.environment or {}).get("Variables", {}))
        env = runner._make_env_vars(function).resolve()
        local = {**env_file.get("Parameters", {}), **env_file.get(function.name, {})}
        for name in sorted(REQUIRED & declared):
            # The template's own value is a reference to a cloud resource (SAM local leaves the
            # logical id); only the file's value points at the local stack.
            if name not in local or env.get(name) != local[name]:
                failures.append(
                    f"{function.name}: {name} is {env.get(name)!r} under sam local, "
                    f"not the local stack's (set it in {config['env_vars']})"
                )
        if not env.get("AWS_ENDPOINT_URL", "").startswith("http://127.0.0.1:"):
            failures.append(f"{function.name}: AWS_ENDPOINT_URL {env.get('AWS_ENDPOINT_URL')!r}")
    for failure in failures:
        print(failure, file=sys.stderr)
    if failures:
        sys.exit(1)
    print(f"sam local: all {len(functions)} functions get the local stack's settings "
          f"({config['env_vars']})")


if __name__ == "__main__":
    main()
