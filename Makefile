# One command runs everything CI runs: `make test`.
SHELL := /bin/bash
CARGO ?= cargo

.PHONY: test deps lint unit bench check-deploy

test: deps lint unit

deps:
	./ci/install-deps.sh

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --all-targets --locked -- -D warnings

unit:
	$(CARGO) test --locked

bench:
	$(CARGO) run --release --locked --example bench_sync
