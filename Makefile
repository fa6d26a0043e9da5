# cozo-broker — the two commands a newcomer needs: `make demo` and `make test`.
SHELL := /bin/bash
CARGO ?= cargo
export TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/test

.PHONY: demo test deps bench lint fmt fuzz audit screenshots

deps:
	@./scripts/deps.sh

## The demo on the embedded default: broker + mocks + demo app, SQLite under ./data/.
demo: deps
	$(CARGO) run --release -- demo

## Every test: unit and integration, on SQLite and PostgreSQL, after the lints (CI enforces them).
test: deps
	./scripts/check-postgres.sh
	./scripts/validate-deploy.sh
	./scripts/audit.sh
	$(MAKE) lint
	./scripts/test.sh

## rustfmt, and clippy with warnings as errors and the workspace lints of Cargo.toml/clippy.toml.
lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

fmt:
	$(CARGO) fmt --all

## Load figures (release build, SQLite): see BENCHMARKS.md.
bench: deps
	./benches/run.sh

## Fuzzing (cargo-fuzz): each target in fuzz/ for FUZZ_SECONDS (default 60). Not part of `make test`.
fuzz: deps
	./scripts/fuzz.sh

## Dependency audit against the RustSec advisory database (installs cargo-audit once).
audit:
	./scripts/audit.sh

## Screenshots of the main pages in English and Dutch (headless Chromium) to docs/screenshots/.
screenshots: deps
	$(CARGO) test --test browser -- --ignored --exact screenshots::screenshots
