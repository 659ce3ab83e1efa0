//! Backstop's core crate: everything the CLI and the Lambda functions share. Its floors are
//! crates of their own, re-exported here under their old names: `backstop-pg` ([`pg`],
//! [`version`]), `backstop-store` ([`store`], [`layout`], [`lease`], [`clock`], [`tier`],
//! [`units`], [`aws`]) and `backstop-engine` ([`engine`]), which sees only those two; the
//! operations (health, retention, advise, runner, alerts, metrics, settings) live here, above it.
//!
//! - [`engine`]: the native backup engine (catalog, order, export, manifest, restore).
//! - [`store`]: where backup sets live (`file://` and `s3://`), behind one trait.
//! - [`layout`]: the key layout of a store (database ids, backup ids, set keys).
//! - [`clock`]: clocks that disagree (a backup's host and its server; sets from the future).
//! - [`lease`]: one run at a time, through a lease object taken with a conditional write.
//! - [`tier`]: the pure choice of a new backup's tier.
//! - [`units`]: sizes for people.
//! - [`health`]: pure classification of backup freshness.
//! - [`objectives`]: declared RPO, RTO and restore-test cadence, judged against the evidence.
//! - [`status`]: every database in a store on one screen, as a table, JSON or an HTML page.
//! - [`report`]: per database over a period, objectives met and missed, restore tests, record.
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
pub mod config;
pub mod connection;
pub mod health;
pub mod metrics;
pub mod objectives;
pub mod readiness;
pub mod report;
pub mod retention;
pub mod runner;
pub mod signals;
pub mod status;

pub use backstop_engine as engine;
pub use backstop_pg as pg;
pub use backstop_pg::version;
pub use backstop_store::{aws, clock, layout, lease, store, tier, units};
