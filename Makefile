# One command runs everything CI runs: `make test`.
SHELL := /bin/bash
CARGO ?= cargo

.PHONY: test deps lint unit bench bench-aggregator check-deploy demo image fuzz

# check-deploy before unit: it installs the renderers tests/container_e2e.rs reads the pod
# specs with; image before unit: that test runs the image (it rebuilds it if sources changed).
test: deps lint check-deploy image unit

deps:
	./ci/install-deps.sh

# The fuzz targets live in their own workspace (fuzz/): type-checked here so an API change
# in the crate breaks the build, not the next `make fuzz` (stable toolchain; no sanitizer).
lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --all-targets --locked -- -D warnings
	$(CARGO) check --locked --manifest-path fuzz/Cargo.toml --bins --target-dir target/fuzz-check

# The output is kept in target/test-output.txt for the closing count .ci/run prints.
unit:
	mkdir -p target; set -o pipefail; $(CARGO) test --locked 2>&1 | tee target/test-output.txt

# Manifests, chart, Dockerfile, alert rules and systemd unit (tools go to target/ci-tools).
check-deploy:
	bash ci/check-deploy.sh

# A static (musl) regtrust in an OCI image from scratch, by buildah without a daemon:
# target/image/regtrust.oci.tar, tag regtrust:<version> (packaging/image/build.sh).
image:
	./packaging/image/build.sh

bench:
	$(CARGO) run --release --locked --example bench_sync

# Needs Debian's prometheus-pushgateway (the bench runs it on loopback itself).
bench-aggregator:
	$(CARGO) build --release --locked --bin regtrust
	$(CARGO) test --locked --test aggregator_bench -- --ignored --nocapture

# The quick start: a registry with a private CA, the aggregator and an agent, on loopback.
# `make demo ARGS=--exit` stops after showing ok (scripts, CI); Ctrl-C ends it with exit 0.
ARGS ?=
demo:
	./scripts/quickstart.sh $(ARGS)

# Fuzz every target for FUZZ_CPU_SECONDS of CPU time each (default 60; fuzz/run-cpu.sh
# stops each fuzzer by its own CPU time, not wall time); not part of `make test` or CI.
# cargo-fuzz needs nightly features: on the pinned stable toolchain RUSTC_BOOTSTRAP=1 turns
# them on; install it with `cargo install cargo-fuzz`. The 10-CPU-minute runs (README,
# Fuzzing): `make fuzz FUZZ_CPU_SECONDS=600`. New corpus entries go to fuzz/corpus/
# (ignored), seeds are fuzz/seeds/<target>/, crashes land in fuzz/artifacts/<target>/, each
# run's libFuzzer output in fuzz/logs/<target>.log.
FUZZ_TARGETS ?= pull_secret ca_pem report_admission hosts_toml containerd_config intent_journal
FUZZ_CPU_SECONDS ?= 60
fuzz:
	cd fuzz && RUSTC_BOOTSTRAP=1 $(CARGO) fuzz build -O
	for t in $(FUZZ_TARGETS); do ./fuzz/run-cpu.sh $$t $(FUZZ_CPU_SECONDS) || exit 1; done
