# The entry points people type. `make demo` and `make test` work on a fresh clone.

CARGO ?= cargo
export CARGO_TARGET_DIR ?= $(CURDIR)/target
BIN := $(CARGO_TARGET_DIR)/debug

.PHONY: all build demo screenshots test check fmt clippy unit bench stress man clean

all: build

build:
	$(CARGO) build --bins

## Run warden on the bundled demo config, with the dashboard on a terminal
## (q, then Enter, stops everything; `?` lists every key). The demo's `stubborn` ignores
## SIGTERM, so warden ends by SIGKILLing it and exits 3, as documented: not a failure here.
demo: build
	cd config && PATH="$(BIN):$$PATH" "$(BIN)/warden" up -c demo.toml || [ $$? -eq 3 ]

## Regenerate the README's screenshots from the real program (assets/screenshots/).
screenshots: build
	PATH="$(BIN):$$PATH" WARDEN="$(BIN)/warden" $(CARGO) run --example screenshots

## What CI runs: formatting, lints as errors, every test.
test: check

check: fmt clippy unit

fmt:
	$(CARGO) fmt --all -- --check

clippy:
	$(CARGO) clippy --all-targets -- -D warnings

unit:
	$(CARGO) test --all-targets

## Manual pages (warden.1, warden-up.1, …) generated from the CLI definition.
man: build
	"$(BIN)/warden" manpage --dir "$(CARGO_TARGET_DIR)/man"
	@echo "man pages in $(CARGO_TARGET_DIR)/man (try: man -l $(CARGO_TARGET_DIR)/man/warden.1)"

## Benchmarks against supervisord and s6; results go to BENCHMARKS.md.
bench:
	bash assets/bench/run.sh

## What children, log sinks and clients can do to warden (release build); see BENCHMARKS.md.
stress:
	$(CARGO) build --release --bins
	python3 assets/stress/stress.py $(STRESS)

clean:
	$(CARGO) clean
