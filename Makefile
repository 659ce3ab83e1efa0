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

## bench: backup and restore timings against pg_dump (arrives with the backup engine)
bench:
	@echo "make bench: not yet available: it measures the backup engine, which is not built yet" >&2; exit 1

## build: deployable Lambda zips (arrives with the Terraform bundle)
build:
	@echo "make build: not yet available: the Lambda zips are built with the Terraform bundle" >&2; exit 1

## infra-check: terraform fmt/validate, checkov and an apply against moto (arrives with infra/)
infra-check:
	@echo "make infra-check: not yet available: infra/ holds no Terraform module yet" >&2; exit 1
