//! Test harness: real components started on demand, once per process.
//!
//! - [`postgres`]: a throwaway PostgreSQL cluster (initdb into a temp dir, free port) and a
//!   fresh database per test.
//! - [`moto`]: moto's server (S3, SNS/SQS, CloudWatch, Secrets Manager, SSM) on a free
//!   loopback port, and an alert inbox (an SQS queue subscribed to a topic).
//! - [`logs`]: captures what code under test logs, so tests can grep it.
//! - [`pgbouncer`]: PgBouncer in transaction pooling mode in front of that cluster.
//! - [`webhook`]: a local HTTP server that records requests and answers scripted statuses.
//! - [`browser`]: headless Chromium through its WebDriver, to look at a page as a person does.
//! - [`blockkit_html`]: a Slack Block Kit message laid out in HTML as Slack shows it.
//! - [`ecs_proxy`]: a loopback proxy that makes moto's ECS task answers readable by the SDK.
//! - [`datasets`]: SQL that builds the datasets of the scale tests and the bench.
//! - [`fakepg`]: a PostgreSQL wire-protocol stand-in with scripted answers, for faults a real
//!   server will not produce on demand.
//! - [`failing_store`]: a store wrapper that fails lease writes or turns slow on demand.
//! - [`tmpfs`]: a small real filesystem for the file store, so a full disk is the kernel's.
//!
//! Services are started from a thread that outlives them and are told to stop (parent-death
//! signal) when the process ends, however it ends; their temp dirs are removed at exit, and
//! leftovers of killed runs are swept at the next start. Separate processes never share a
//! cluster or a port, so parallel test processes are safe.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::disallowed_methods)]

pub mod blockkit_html;
pub mod browser;
pub mod datasets;
pub mod ecs_proxy;
pub mod failing_store;
pub mod fakepg;
pub mod logs;
pub mod moto;
pub mod pgbouncer;
pub mod postgres;
pub mod service;
pub mod tmpfs;

pub use service::free_port;
pub mod webhook;

use std::path::PathBuf;

/// The workspace root (the folder holding the root Cargo.toml).
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(PathBuf::from)
        .unwrap_or_default()
}

/// A fidelity corpus from `../shared/corpora`, or `None` (with a visible message) when the
/// folder is absent. Under `CI=true` its absence fails the test.
pub fn corpus(name: &str) -> Option<PathBuf> {
    let path = workspace_root().join("../shared/corpora").join(name);
    if path.exists() {
        return Some(path);
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!(
            "corpus {} is missing: CI must run with ../shared/corpora beside the repository",
            path.display()
        );
    }
    eprintln!(
        "SKIPPED: corpus {} is absent (../shared/corpora); the fidelity test for it did not run",
        path.display()
    );
    None
}

/// A name fragment unique within this machine: pid plus a random suffix.
pub fn unique_suffix() -> String {
    format!(
        "{}{:06x}",
        std::process::id(),
        rand::random::<u32>() & 0xff_ffff
    )
}
