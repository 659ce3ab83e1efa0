//! The integration suite: one test binary over real PostgreSQL, moto and HTTP servers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::disallowed_methods)]

mod advise;
mod alerts;
mod applications;
mod backup_lambda;
mod catalog_kinds;
mod clean;
mod cli;
mod cli_output;
mod conninfo;
mod dispatch;
mod encryption;
mod engine;
mod faults;
mod functions;
mod infra;
mod inputs;
mod json;
mod monitor;
mod pitr;
mod postgres;
mod retention;
mod roles;
mod runbook;
mod scale;
mod selection;
mod status;
mod store_contract;
mod store_file;
mod store_s3;
mod support;
mod tamper;
mod tls;
mod verify;
mod verify_function;
mod versions;
