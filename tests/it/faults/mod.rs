//! Faults injected into the paths beside the main round trip, each asserting the property every
//! command owes its user: it ends within its bound, exit 0 means the set it reports restores,
//! and a failure says what happened in one line and loses nothing committed before.

use std::time::Duration;

use backstop_tests::postgres::fresh_database;

use crate::support::{backstop, backstop_ok, backstop_within, single_error_line};

mod chunks;
mod clock;
mod disk;
mod hangs;
mod signals;

const BOUND: Duration = Duration::from_secs(120);

/// Committed backups `list` shows in a store (those without a problem).
fn committed(store: &str) -> Vec<serde_json::Value> {
    let output = backstop_ok(&["list", "--from", store, "--json"], &[]);
    let listed: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    listed
        .as_array()
        .unwrap()
        .iter()
        .filter(|backup| backup["problem"].is_null())
        .cloned()
        .collect()
}

/// The keys a store lists under `prefix`.
async fn keys_under(store: &dyn backstop::store::Store, prefix: &str) -> Vec<String> {
    store
        .list(prefix)
        .await
        .unwrap()
        .into_iter()
        .map(|o| o.key)
        .collect()
}

/// Asserts that a stopped backup of database `main` left nothing in `store`.
async fn assert_left_nothing(store: &dyn backstop::store::Store) {
    let left = keys_under(store, "main/").await;
    assert!(left.is_empty(), "the stopped backup left {left:?}");
}

/// Files a failed write left in the store, hidden partial files included.
fn files_under(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            if entry.file_type().unwrap().is_dir() {
                pending.push(entry.path());
            } else {
                files.push(entry.path());
            }
        }
    }
    files
}

/// A database whose backup is still storing its set seconds after it started (~1.5 million
/// rows), so a signal lands in the middle of it.
fn a_database_that_takes_seconds(label: &str) -> backstop_tests::postgres::TestDb {
    let db = fresh_database(label);
    db.psql(
        "CREATE TABLE events AS
           SELECT g AS id, md5(g::text) || md5((g * 7)::text) AS note
           FROM generate_series(1, 1500000) g;",
    );
    db
}

/// Starts `command`, sends it SIGTERM once it has stored the first object of its set under
/// `root/main` (it is under way), and returns how it ended, failing the test if it had not
/// ended `grace` after the signal.
fn sigterm_once_storing(
    command: &mut std::process::Command,
    root: &std::path::Path,
    grace: Duration,
) -> std::process::Output {
    sigterm_once(command, || root.join("main").exists(), grace)
}

/// Starts `command`, sends it SIGTERM once `under_way` says so, and returns how it ended,
/// failing the test if it had not ended `grace` after the signal.
fn sigterm_once(
    command: &mut std::process::Command,
    under_way: impl Fn() -> bool,
    grace: Duration,
) -> std::process::Output {
    let mut child = command
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + BOUND;
    while !under_way() {
        assert!(
            std::time::Instant::now() < deadline && child.try_wait().unwrap().is_none(),
            "the run never got under way"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let sent = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    let stopped_by = std::time::Instant::now() + grace;
    while child.try_wait().unwrap().is_none() {
        assert!(
            std::time::Instant::now() < stopped_by,
            "the run did not stop within {grace:?} of SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}
