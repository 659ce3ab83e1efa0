# Thin aliases; the work is in cargo, scripts/ and the test harness.
SHELL := /bin/bash
export CARGO_TERM_COLOR ?= never

.PHONY: deps infra-deps test lint demo bench build cli image release docs infra-check

## deps: install PostgreSQL, PgBouncer, jq and moto (into .venv), and the PostgreSQL 13-18
## test matrix with the 18 client tools (into .local/pg), when missing; .venv and .local/pg
## live in the cache of scripts/cache.sh
deps:
	scripts/install-deps.sh
	scripts/install-pg-versions.sh

## infra-deps: the cross Rust targets, umoci and skopeo, cargo-lambda (with zig) and checkov
## (into .venv-tools)
infra-deps:
	scripts/install-infra-deps.sh

## lint: formatting and clippy, warnings are errors
lint:
	cargo fmt --all --check
	cargo clippy --workspace --all-targets --locked -- -D warnings

## test: everything CI runs, from a fresh clone, each step timed (scripts/ci.sh): deps, fmt,
## clippy, one dev build, the Lambda zips, the image, infra-check, the infra tests and the suite
test:
	scripts/ci.sh

## demo: a throwaway PostgreSQL with a ~100 MB sample database through the whole CLI cycle
demo: deps
	cargo build --workspace --bins --locked --quiet
	target/debug/demo

## bench: backup and restore against pg_dump/pg_restore on a ~1.2 GB database (BENCH_SCALE=40)
bench: deps
	cargo build --release --workspace --bins --locked --quiet
	target/release/bench

## build: deployable Lambda zips, arm64: target/lambda/<function>/bootstrap.zip. Statically
## linked (musl), the same build the container image takes its arm64 binaries from.
build: infra-deps
	scripts/build-lambda.sh

## cli: the installable `backstop`, statically linked (musl) for amd64 and arm64 (CLI_ARCHES):
## target/cli/backstop-linux-<arch>, with shell completions and man pages in target/cli
cli: infra-deps
	scripts/build-cli.sh

## image: the container task's OCI image without a container daemon: static (musl) backup,
## stream, verify and the backstop CLI on an empty base, one per architecture (IMAGE_ARCHES, default
## "arm64 amd64"): target/image/backstop-<arch>.oci.tar
image: infra-deps build cli
	scripts/build-image.sh

## release: the zips, the images and the CLI, built and packed with a SHA256SUMS into
## target/dist/backstop-<version>/ (lambda/arm64/<function>.zip, image/, cli/, VERSION);
## RELEASE_S3_URI=s3://bucket/prefix uploads the folder to s3://bucket/prefix/backstop-<version>/,
## where the Terraform module's lambda_artifacts = { s3_bucket, s3_prefix } takes it
release: deps image
	scripts/release.sh

## docs: the module's requirements, inputs and outputs tables (infra/modules/backstop/README.md,
## infra/README.md) from versions.tf, variables.tf and outputs.tf
docs: infra-deps
	.venv-tools/bin/python scripts/infra-docs.py

## infra-check: terraform fmt/validate and checkov on infra/, the apply against moto, a
## function under `cargo lambda watch` and the image's job against the harness
infra-check: deps infra-deps build image
	scripts/infra-check.sh
	scripts/run-tests.sh --output target/test-output-infra.txt --workspace --test it -- --ignored infra::
