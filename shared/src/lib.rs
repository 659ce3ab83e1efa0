//! Backstop's core crate: everything the CLI and the Lambda functions share.
//!
//! - [`engine`]: the native backup engine (catalog, order, export, manifest, restore).
//! - [`store`]: where backup sets live (`file://` and `s3://`), behind one trait.
//! - [`layout`]: the key layout of a store (database ids, backup ids, set keys).
//! - [`tier`]: the pure choice of a new backup's tier.
//! - [`health`]: pure classification of backup freshness.
//! - [`config`]: settings read from the environment, each error naming its variable.
//! - [`pg`]: connecting to PostgreSQL.
//! - [`aws`]: the one place AWS SDK configuration and clients are built.
//!
//! Nothing here knows about Lambda events or terminals; decisions are pure functions.

pub mod aws;
pub mod config;
pub mod engine;
pub mod health;
pub mod layout;
pub mod pg;
pub mod store;
pub mod tier;
