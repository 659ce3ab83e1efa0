# Thin aliases; the work is in cargo, scripts/ and the test harness.
SHELL := /bin/bash
export CARGO_TERM_COLOR ?= never

.PHONY: deps test lint demo bench build infra-check

## deps: install PostgreSQL and moto (into .venv) when missing
deps:
	scripts/install-deps.sh

## lint: formatting and clippy, warnings are errors
lint:
	cargo fmt --all --check
	cargo clippy --workspace --all-targets --locked -- -D warnings

## test: everything CI runs, from a fresh clone
test: deps lint
	cargo build --workspace --bins --locked
	scripts/run-tests.sh

## demo: a throwaway PostgreSQL with a sample database, written to and read back from a store
demo: deps
	cargo build --workspace --bins --locked --quiet
	target/debug/demo

## bench: backup and restore against pg_dump/pg_restore on a ~1.2 GB database (BENCH_SCALE=40)
bench: deps
	cargo build --release --workspace --bins --locked --quiet
	target/release/bench

## build: deployable Lambda zips (arrives with the Terraform bundle)
build:
	@echo "make build: not yet available: the Lambda zips are built with the Terraform bundle" >&2; exit 1

## infra-check: terraform fmt/validate, checkov and an apply against moto (arrives with infra/)
infra-check:
	@echo "make infra-check: not yet available: infra/ holds no Terraform module yet" >&2; exit 1
