//! Backstop's core crate: everything the CLI and the Lambda functions share.
//!
//! - [`engine`]: the native backup engine (catalog, order, export, manifest, restore).
//! - [`store`]: where backup sets live (`file://` and `s3://`), behind one trait.
//! - [`layout`]: the key layout of a store (database ids, backup ids, set keys).
//! - [`clock`]: clocks that disagree (a backup's host and its server; sets from the future).
//! - [`lease`]: one run at a time, through a lease object taken with a conditional write.
//! - [`tier`]: the pure choice of a new backup's tier.
//! - [`units`]: sizes for people.
//! - [`health`]: pure classification of backup freshness.
//! - [`advise`]: index advice as a migration to review and apply, and its check afterwards.
//! - [`retention`]: GFS pruning (a pure selection plus its safety rails) and the leftover sweep.
//! - [`runner`]: where a backup runs (this invocation or a container task), from the last runs.
//! - [`signals`]: SIGTERM and SIGINT, which a run answers by stopping cleanly.
//! - [`config`]: settings read from the environment, each error naming its variable.
//! - [`connection`]: where each database's connection comes from (env, Secrets Manager, SSM).
//! - [`pg`]: connecting to PostgreSQL.
//! - [`version`]: the server's version, read once, and the supported range (13 to 18).
//! - [`readiness`]: what a database role may do (read everything, bypass RLS, monitor, create).
//! - [`alert`]: alerts (severity, summary, action) and their publication to SNS.
//! - [`metrics`]: CloudWatch metrics under the `Backstop` namespace.
//! - [`aws`]: the one place AWS SDK configuration and clients are built.
//!
//! Nothing here knows about Lambda events or terminals; decisions are pure functions.

pub mod advise;
pub mod alert;
pub mod aws;
pub mod clock;
pub mod config;
pub mod connection;
pub mod engine;
pub mod health;
pub mod layout;
pub mod lease;
pub mod metrics;
pub mod pg;
pub mod readiness;
pub mod retention;
pub mod runner;
pub mod signals;
pub mod store;
pub mod tier;
pub mod units;
pub mod version;
