# The two commands of the README, plus conveniences. Everything runs through cargo, and the one
# Python tool the tests use (moto's server) goes into the project's own .venv; nothing is installed
# outside the project.

CARGO ?= cargo
PYTHON ?= python3
VENV := .venv
MOTO_REQUIREMENTS := localstack/tests/moto-requirements.txt

.PHONY: run test fmt fmt-check lint

## run: the whole stack on one machine (HTTP API on $HTTP_PORT, default 3000) until Ctrl-C; an
## optimized build (profile `local`: docs/benchmarks.md compares it with the debug build), in the
## same cargo build as the bundled tools target/local/ws-listen, target/local/load-test and
## target/local/token, so that they start at once afterwards
RUN_BUILD = $(CARGO) build --profile local -p order-localstack -p order-load-tests --bin local-stack --bin ws-listen --bin load-test --bin token
run:
	$(RUN_BUILD)
	exec $${CARGO_TARGET_DIR:-target}/local/local-stack

## token: one signed bearer token on stdout for SUB (required; ROLE=admin for an admin), with the
## key a stack verifies: SECRET_ID=<JwtSecretName or its ARN> (HS256, read from Secrets Manager with
## the AWS SDK's default credentials, region and endpoint: needs an AWS account and
## secretsmanager:GetSecretValue), or KEY_FILE=<PEM private key> (RS256, the pair of
## JwtPublicKeyParameterName), or neither: the local stack's development secret (--local). TTL
## (default 1h), ISSUER and AUDIENCE (the stack's JwtIssuer, JwtAudience) pass through. Built by
## `make run`'s own cargo build (target/local/token), so neither rebuilds after the other; only the
## token goes to stdout (docs/deploy.md, "Getting a token after deploying")
.PHONY: token
token:
	$(if $(SUB),,$(error SUB=<user id> is required: make token SUB=alice [ROLE=admin] [SECRET_ID=<name or ARN> | KEY_FILE=<private key PEM>]))
	@$(RUN_BUILD)
	@$${CARGO_TARGET_DIR:-target}/local/token --sub '$(SUB)' $(if $(ROLE),--role '$(ROLE)') \
	  $(if $(TTL),--ttl '$(TTL)') $(if $(ISSUER),--issuer '$(ISSUER)') $(if $(AUDIENCE),--audience '$(AUDIENCE)') \
	  $(if $(SECRET_ID),--secret-id '$(SECRET_ID)') $(if $(KEY_FILE),--key-file '$(KEY_FILE)') \
	  $(if $(SECRET_ID)$(KEY_FILE),,--local)

## test: formatting, lints and every test; .ci/run calls exactly this
test: fmt-check lint lint-template $(VENV)/.moto-installed
	$(CARGO) test --workspace
	$(MAKE) test-aws-conditions
	$(MAKE) deny
	$(MAKE) lambda-deps-check
	$(MAKE) contract-test
	$(MAKE) readme-session LOCAL_STACK_BIN=$${CARGO_TARGET_DIR:-target}/debug/local-stack
	$(MAKE) localstack-path-test
	$(MAKE) lambda-smoke-test
	$(MAKE) browser-test

## test-aws-conditions: the end-to-end tests of races and crashes (oversell, idempotency, shards,
## crashes, cancel, holds) with AWS_CONDITIONS=on: AWS's latency, transaction conflicts and
## per-key partition limits on the embedded endpoint (docs/aws-conditions.md); part of `test`.
.PHONY: test-aws-conditions
test-aws-conditions:
	AWS_CONDITIONS=on $(CARGO) test -p order-e2e-tests --test e2e -- oversell:: idempotency:: shards:: crashes:: cancel:: holds::

## .venv with moto's server, pinned in $(MOTO_REQUIREMENTS): the independent SQS the queue-semantics
## tests check rustack-sqs against. Reinstalled when the pins change.
$(VENV)/.moto-installed: $(MOTO_REQUIREMENTS)
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --requirement $(MOTO_REQUIREMENTS)
	touch $@

## Python tools beyond moto, one virtualenv per group under .tools/ (their pins conflict: aws-sam-cli
## and awscli each pin their own botocore). Pins live in localstack/python/<group>.txt; a venv is
## rebuilt when its pins change. Use as a prerequisite: `.tools/sam/.installed`.
TOOLS := .tools
PY_PINS := localstack/python

$(TOOLS)/%/.installed: $(PY_PINS)/%.txt
	rm -rf $(TOOLS)/$*
	$(PYTHON) -m venv $(TOOLS)/$*
	$(TOOLS)/$*/bin/python -m pip install --quiet --requirement $<
	touch $@

## localstack-path-test: the LocalStack path without Docker: localstack/init/create-resources.sh
## (AWS CLI from .tools/cli) against moto's server, then the local stack on that endpoint, one order
## placed and paid (tests/localstack/moto-path.sh; LOCAL_STACK_BIN=<path> skips the cargo build);
## then docs/deploy.md's backfill, as written, against moto (tests/localstack/migration-backfill.sh),
## and its removal of a test stack, as written, against moto (tests/localstack/stack-removal.sh)
.PHONY: localstack-path-test
localstack-path-test: $(VENV)/.moto-installed $(TOOLS)/cli/.installed
	CARGO='$(CARGO)' bash tests/localstack/moto-path.sh
	bash tests/localstack/migration-backfill.sh
	bash tests/localstack/stack-removal.sh

## readme-session: the README's curl sessions ("A curl session", "Cancelling within a window"), as
## written, against fresh local stacks built as `make run` builds them (the same cargo build), each
## curl's status compared with the `# <status>` the README ends it with (tests/readme/curl-session.sh;
## LOCAL_STACK_BIN=<path> skips the cargo build and runs them against that binary: `make test` uses
## the debug build contract-test made, the same code without a second optimized build)
.PHONY: readme-session
readme-session:
	$(if $(LOCAL_STACK_BIN),,$(RUN_BUILD))
	LOCAL_STACK_BIN=$${LOCAL_STACK_BIN:-$${CARGO_TARGET_DIR:-target}/local/local-stack} bash tests/readme/curl-session.sh

## contract-test: schemathesis (pinned in localstack/python/api.txt, into .tools/api) against
## openapi.yaml and a fresh local stack, without a token, with the user's and with the admin's;
## fails on any 5xx or any response the document does not describe (tests/contract/schemathesis.sh;
## LOCAL_STACK_BIN=<path> skips the cargo build)
.PHONY: contract-test
contract-test: $(TOOLS)/api/.installed
	CARGO='$(CARGO)' SCHEMATHESIS='$(abspath $(TOOLS))/api/bin/st' bash tests/contract/schemathesis.sh

## lambda-deps-check: a Lambda binary is built without the shared crate's in-memory fakes and table
## provisioning, in its dependency tree and in its symbols (tests/lambda/no-fakes.sh)
.PHONY: lambda-deps-check
lambda-deps-check:
	CARGO='$(CARGO)' bash tests/lambda/no-fakes.sh

## lambda-smoke-test: every Lambda binary under `cargo lambda watch` (cargo-lambda pinned in
## localstack/python/lambda.txt, into .tools/lambda) against a fresh local stack's emulators, invoked
## with its events/<name>.json and the answer checked (tests/lambda/smoke.sh; settings in
## events/cargo-lambda.env; LOCAL_STACK_BIN=<path> skips the cargo build of the local stack)
.PHONY: lambda-smoke-test
lambda-smoke-test: $(TOOLS)/lambda/.installed
	CARGO='$(CARGO)' LAMBDA_TOOLS='$(abspath $(TOOLS))/lambda' bash tests/lambda/smoke.sh

## browser-test: the console (GET /) in headless Chromium, driven by Selenium (pinned in
## localstack/python/browser.txt, into .tools/browser) against a fresh local stack: the page loads
## without console errors, an order placed in it reaches its terminal event (and keeps it when an
## older event is pushed late), a small flash sale ends
## with the numbers the API reports, and the page works at phone width (tests/browser/run.sh;
## LOCAL_STACK_BIN=<path> skips the cargo build). Debian's chromium and chromium-driver come from
## browser-deps; Selenium never downloads a browser or a driver.
.PHONY: browser-test browser-deps screenshots
browser-test: browser-deps $(TOOLS)/browser/.installed
	CARGO='$(CARGO)' BROWSER_TOOLS='$(abspath $(TOOLS))/browser' bash tests/browser/run.sh

## screenshots: the browser tests again, writing docs/console-desktop.png (1280x900, mid flash
## sale) and docs/console-phone.png (390 wide, the whole page)
screenshots: browser-deps $(TOOLS)/browser/.installed
	CARGO='$(CARGO)' BROWSER_TOOLS='$(abspath $(TOOLS))/browser' SCREENSHOT_DIR='$(abspath docs)' \
	  bash tests/browser/run.sh

## browser-deps: Debian's chromium and chromium-driver (/usr/bin/chromium, /usr/bin/chromedriver),
## installed with apt only when missing: as root, else through sudo; if neither works, it says what
## to run
BROWSER_DEBS := chromium chromium-driver
BROWSER_APT := apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $(BROWSER_DEBS)
browser-deps:
	@dpkg -s $(BROWSER_DEBS) >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then sh -c '$(BROWSER_APT)'; \
	  elif command -v sudo >/dev/null 2>&1 && sudo sh -c '$(BROWSER_APT)'; then :; \
	  else \
	    echo "browser: $(BROWSER_DEBS) are missing and could not be installed (neither root nor sudo)."; \
	    echo "As root, run:  apt-get update && apt-get install -y --no-install-recommends $(BROWSER_DEBS)"; \
	    echo "then run make again."; \
	    exit 1; \
	  fi; \
	}
	@echo "browser: $(BROWSER_DEBS) installed ($$(/usr/bin/chromium --version 2>/dev/null))"

## lint-template: template.yaml through cfn-lint with the Serverless Rules, then `sam validate
## --lint`, then what sam local would give each function (localstack/sam-local-check.py); all
## offline (pinned in localstack/python/sam.txt, into .tools/sam)
.PHONY: lint-template
lint-template: $(TOOLS)/sam/.installed
	$(TOOLS)/sam/bin/cfn-lint template.yaml --append-rules cfn_lint_serverless.rules
	SAM_CLI_TELEMETRY=0 $(TOOLS)/sam/bin/sam validate --lint --region us-east-1 --template-file template.yaml
	SAM_CLI_TELEMETRY=0 $(TOOLS)/sam/bin/python localstack/sam-local-check.py

## package: every function of template.yaml built for arm64 by `sam build` (rust-cargolambda;
## cargo-lambda links with zig against an old glibc) into target/sam/build (samconfig.toml's
## build_dir, where `sam deploy` finds it; kept out of the work tree), then each bootstrap's
## size, zipped size, architecture and newest glibc symbol (localstack/package-report.py). Installs
## what it needs: an aarch64 standard library (the route arm64-toolchain chooses), .tools/lambda
## and .tools/sam. Release builds go to target/lambda-arm64, so they never wait for the debug
## builds' lock on target/.
LAMBDA_TARGET_DIR := $(abspath target/lambda-arm64)
SAM_BUILD_DIR := target/sam/build
LAMBDA_ENV := PATH="$(abspath $(TOOLS))/lambda/bin:$(abspath $(TOOLS))/sam/bin:$$PATH" \
	CARGO_TARGET_DIR='$(LAMBDA_TARGET_DIR)' SAM_CLI_BETA_RUST_CARGO_LAMBDA=1 SAM_CLI_TELEMETRY=0
.PHONY: package arm64-toolchain
package: $(TOOLS)/lambda/.installed $(TOOLS)/sam/.installed
	toolchain="$$(sh localstack/arm64-toolchain.sh)" && eval "$$toolchain" && export $(LAMBDA_ENV) && \
	nice -n 10 cargo lambda build --release --arm64 --package order-functions && \
	nice -n 10 sam build --beta-features --template-file template.yaml --build-dir $(SAM_BUILD_DIR)
	$(TOOLS)/sam/bin/python localstack/package-report.py $(SAM_BUILD_DIR) template.yaml

## arm64-toolchain: the route `make package` takes to an aarch64 standard library, set up when
## missing (localstack/arm64-toolchain.sh): rustup's own when rustup has or can add
## aarch64-unknown-linux-gnu, else Debian's Rust 1.96 with libstd-rust-web-dev:arm64 (apt, as root;
## otherwise it says what to run). ARM64_TOOLCHAIN=rustup or debian forces one.
arm64-toolchain:
	@sh localstack/arm64-toolchain.sh >/dev/null

## bench: everything measured, written to docs/benchmarks.md (with its charts in docs/benchmarks/):
## the load scenarios against the local stack in both STOCK_LOCKS modes, the backend ceiling and
## the cost per order (load-tests/), the Lambda figures (stripped release size, cold start against
## a local Runtime API, peak memory; handler CPU with criterion: lambda-bench/), the embedded
## DynamoDB's transaction rate over 60,000 transactions, and a hot product over 1, 8 and 64 stock
## shards under AWS_CONDITIONS=on, lock-free and locked (rerun alone: load-tests/README.md). Builds included;
## see docs/benchmarks.md for how long it takes. The `make run` options are measured apart
## (load-tests/scripts/make-run-options.sh, half an hour) into docs/benchmarks/make-run.json, which
## the report reads.
BENCH_OUT := target/bench
BENCH_FUNCTIONS := create-order order-consumer get-product payment-webhook ws-connect
.PHONY: bench
bench:
	rm -rf $(BENCH_OUT) && mkdir -p $(BENCH_OUT) && date +%s > $(BENCH_OUT)/make-bench-started
	$(CARGO) build --profile local -p order-localstack -p order-load-tests -p order-lambda-bench \
	  --bin local-stack --bin load-test --bin lambda-figures --bin handler-cpu-report --example transaction_rate
	$(CARGO) build --release -p order-functions $(addprefix --bin ,$(BENCH_FUNCTIONS))
	$(CARGO) build --release -p order-lambda-bench --no-default-features --features baseline --bin lambda-baseline
	$(CARGO) bench --profile local -p order-lambda-bench --no-default-features --bench create_order
	target/local/handler-cpu-report --out-dir $(BENCH_OUT)
	target/local/lambda-figures --runs 30 --out-dir $(BENCH_OUT) --baseline target/release/lambda-baseline \
	  $(foreach f,$(BENCH_FUNCTIONS),--bin $(f)=target/release/$(f))
	target/local/examples/transaction_rate 60000 16 | tail -n 1 > $(BENCH_OUT)/transaction-rate.json
	cp docs/benchmarks/make-run.json $(BENCH_OUT)/
	target/local/load-test bench --stack-bin target/local/local-stack --out docs/benchmarks.md --extra-dir $(BENCH_OUT)

## soak: the randomized soak (load-tests/src/soak/) against a local stack in-process for
## SOAK_FOR (5m; 90s, 300 and 1h work too): shoppers' orders, cancels, holds, expiries, webhooks and
## duplicate deliveries under a random schedule of injected faults and worker crashes, every
## invariant checked at a checkpoint every 15 s and the stock watched in between; prints the seed
## (SOAK_SEED=<n> replays its choices), operations, faults, checks passed and peak memory, and
## exits 1 when a check fails. Built with the `local` profile, as `make run` is. Under AWS
## conditions: `AWS_CONDITIONS=on make soak` (AWS_LATENCY, AWS_TRANSACTION_CONFLICTS, PARTITION_LIMIT,
## PARTITION_SCALE, PARTITION_WRITE_UNITS and PARTITION_READ_UNITS pass through too;
## load-tests/src/soak/mod.rs). The short soak of `make test` (load-tests/tests/soak.rs) reads them too.
SOAK_FOR ?= 5m
SOAK_SEED ?=
.PHONY: soak
soak:
	$(CARGO) run --profile local -p order-load-tests --bin load-test -- soak --for $(SOAK_FOR) $(if $(SOAK_SEED),--seed $(SOAK_SEED))

## fmt: format the workspace in place
fmt:
	$(CARGO) fmt --all

fmt-check:
	$(CARGO) fmt --all -- --check

## deny: cargo-deny over the dependency graph with deny.toml: licenses, bans and duplicate versions
## (each exception justified there), sources. The RustSec advisories are checked when their
## database can be fetched (it lives on GitHub); otherwise one line says they were skipped.
CARGO_DENY_VERSION := 0.20.2
CARGO_DENY := $(TOOLS)/cargo/bin/cargo-deny
$(CARGO_DENY):
	$(CARGO) install --locked --quiet --root $(TOOLS)/cargo cargo-deny --version $(CARGO_DENY_VERSION)

.PHONY: deny
deny: $(CARGO_DENY)
	$(CARGO_DENY) --locked check licenses bans sources
	@if timeout 120 $(CARGO_DENY) fetch db >/dev/null 2>&1; then \
		$(CARGO_DENY) --locked --offline check advisories; \
	else \
		echo "cargo-deny advisories: skipped, the RustSec advisory database (https://github.com/RustSec/advisory-db) could not be fetched from this machine"; \
	fi

## lint: clippy over every target, warnings as errors
lint:
	$(CARGO) clippy --workspace --all-targets -- -D warnings
