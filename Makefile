# The two commands of the README, plus conveniences. Everything runs through cargo; nothing is
# installed outside the project.

CARGO ?= cargo

.PHONY: run test fmt fmt-check lint

## run: the whole stack on one machine (HTTP API on $HTTP_PORT, default 3000) until Ctrl-C
run:
	$(CARGO) run -p order-localstack --bin local-stack

## test: formatting, lints and every test; .ci/run calls exactly this
test: fmt-check lint
	$(CARGO) test --workspace

## fmt: format the workspace in place
fmt:
	$(CARGO) fmt --all

fmt-check:
	$(CARGO) fmt --all -- --check

## lint: clippy over every target, warnings as errors
lint:
	$(CARGO) clippy --workspace --all-targets -- -D warnings
