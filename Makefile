# The entry points people type. `make demo` and `make test` work on a fresh clone.

CARGO ?= cargo
export CARGO_TARGET_DIR ?= $(CURDIR)/target
BIN := $(CARGO_TARGET_DIR)/debug

.PHONY: all build demo test check fmt clippy unit bench stress clean

all: build

build:
	$(CARGO) build --bins

## Run warden on the bundled demo config (Ctrl-C to stop everything).
demo: build
	cd config && PATH="$(BIN):$$PATH" "$(BIN)/warden" up -c demo.toml

## What CI runs: formatting, lints as errors, every test.
test: check

check: fmt clippy unit

fmt:
	$(CARGO) fmt --all -- --check

clippy:
	$(CARGO) clippy --all-targets -- -D warnings

unit:
	$(CARGO) test --all-targets

## Benchmarks against supervisord and s6; results go to BENCHMARKS.md.
bench:
	bash assets/bench/run.sh

## What children, log sinks and clients can do to warden (release build); see BENCHMARKS.md.
stress:
	$(CARGO) build --release --bins
	python3 assets/stress/stress.py $(STRESS)

clean:
	$(CARGO) clean
