//! Where Backstop keeps what it writes, and the state beside it.
//!
//! - [`store`]: where backup sets live (`file://` and `s3://`), behind one trait.
//! - [`layout`]: the key layout of a store (database ids, backup ids, set keys).
//! - [`lease`]: one run at a time, through a lease object taken with a conditional write.
//! - [`clock`]: clocks that disagree (a backup's host and its server; sets from the future).
//! - [`tier`]: the pure choice of a new backup's tier.
//! - [`units`]: sizes for people.
//! - [`aws`]: the one place AWS SDK configuration and clients are built.

pub mod aws;
pub mod clock;
pub mod layout;
pub mod lease;
pub mod store;
pub mod tier;
pub mod units;
