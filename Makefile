# The two commands of the README, plus conveniences. Everything runs through cargo, and the one
# Python tool the tests use (moto's server) goes into the project's own .venv; nothing is installed
# outside the project.

CARGO ?= cargo
PYTHON ?= python3
VENV := .venv
MOTO_REQUIREMENTS := localstack/tests/moto-requirements.txt

.PHONY: run test fmt fmt-check lint

## run: the whole stack on one machine (HTTP API on $HTTP_PORT, default 3000) until Ctrl-C
run:
	$(CARGO) run -p order-localstack --bin local-stack

## test: formatting, lints and every test; .ci/run calls exactly this
test: fmt-check lint $(VENV)/.moto-installed
	$(CARGO) test --workspace

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

## fmt: format the workspace in place
fmt:
	$(CARGO) fmt --all

fmt-check:
	$(CARGO) fmt --all -- --check

## lint: clippy over every target, warnings as errors
lint:
	$(CARGO) clippy --workspace --all-targets -- -D warnings
