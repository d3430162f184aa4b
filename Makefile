# The one place that knows how to set up, build and test Countersign.
# `make test` is the README's test command and what CI runs; it installs what it needs first.

SHELL := /bin/bash
CARGO ?= cargo
export CARGO_TERM_COLOR ?= never

.PHONY: test setup check-toolchain fmt-check clippy unit bench clean

test: setup fmt-check clippy unit

# Installs whatever a fresh Debian 12 machine lacks for the test suite (idempotent, fast when done).
setup: check-toolchain
	@bash scripts/setup.sh

check-toolchain:
	@command -v $(CARGO) >/dev/null || { echo "cargo not found: install Rust (rustup) first"; exit 1; }
	@$(CARGO) fmt --version >/dev/null 2>&1 || { echo "rustfmt missing: rustup component add rustfmt"; exit 1; }
	@$(CARGO) clippy --version >/dev/null 2>&1 || { echo "clippy missing: rustup component add clippy"; exit 1; }

fmt-check:
	$(CARGO) fmt --all --check

clippy:
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings

unit:
	bash scripts/run-tests.sh

# Benchmarks; figures go to BENCHMARKS.md by hand, with the command that produced them.
# Includes the million-entry audit-bundle check, too slow for the debug test run.
bench:
	$(CARGO) bench -p countersign-core
	$(CARGO) test --release -p countersign-core --test bundle -- --ignored --nocapture
	$(CARGO) build --release -p countersign-gate --bin countersign-loadgen
	./target/release/countersign-loadgen

.PHONY: demo bench-app

# Countersign Desk on a demo gate (German-credit data, reviewer enrolled). Needs a display;
# Ctrl-C stops the app and the gate.
demo: check-toolchain
	@bash scripts/demo.sh

# Figures of the real app window for BENCHMARKS.md ("App"): start-up, keystroke to paint, memory.
bench-app: setup
	bash scripts/e2e.sh bench

clean:
	$(CARGO) clean
