//! Shared chunks under faults: a backup killed mid-way or a prune stopped at any step leaves
//! every committed set with all of its chunks; what a killed backup stored is taken up by the
//! next backup, and swept once no set names it.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use backstop::layout::DatabaseId;
use backstop::retention::{Policy, PruneOptions, prune};
use backstop::store::{FileStore, Store};
use backstop_tests::failing_store::FailingStore;
use backstop_tests::postgres::fresh_database;

use crate::engine::assert_same_dump;
use crate::incremental::{application, change};
use crate::support::{backstop_bin, backstop_ok};

/// The ids of the committed sets of `database` under `root`, oldest first.
fn committed(root: &Path, database: &str) -> Vec<String> {
    let mut ids: Vec<String> = std::fs::read_dir(root.join(database))
        .map(|entries| {
            entries
                .flatten()
                .filter(|e| e.path().join("manifest.json").exists())
                .map(|e| e.file_name().to_string_lossy().to_string())
                .collect()
        })
        .unwrap_or_default();
    ids.sort();
    ids
}

/// The chunk ids the committed sets name.
fn named(root: &Path, database: &str) -> BTreeSet<String> {
    let mut ids = BTreeSet::new();
    for set in committed(root, database) {
        let text = std::fs::read(root.join(database).join(&set).join("manifest.json")).unwrap();
        let manifest: serde_json::Value = serde_json::from_slice(&text).unwrap();
        for part in manifest["parts"].as_array().unwrap() {
            for chunk in part["chunks"].as_array().into_iter().flatten() {
                ids.insert(chunk["id"].as_str().unwrap().to_string());
            }
        }
    }
    ids
}

/// The chunk ids stored.
fn stored(root: &Path, database: &str) -> BTreeSet<String> {
    let mut ids = BTreeSet::new();
    let Ok(folders) = std::fs::read_dir(root.join(database).join("chunks")) else {
        return ids;
    };
    for folder in folders.flatten() {
        for file in std::fs::read_dir(folder.path()).unwrap().flatten() {
            let name = file.file_name().to_string_lossy().to_string();
            if let Some(id) = name.strip_suffix(".zst") {
                ids.insert(id.to_string());
            }
        }
    }
    ids
}

fn verify_deep(store: &str, database: &str, backup: &str) {
    backstop_ok(
        &[
            "verify",
            "--from",
            store,
            "--database-id",
            database,
            "--backup",
            backup,
            "--level",
            "deep",
        ],
        &[],
    );
}

fn keep_last(last: usize) -> PruneOptions {
    PruneOptions {
        policy: Policy {
            last,
            ..Policy::default()
        },
        dry_run: false,
        max_deletions: 100,
        // Past the hour an unnamed chunk is left for (a writer may still be ending).
        now: time::OffsetDateTime::now_utc() + time::Duration::hours(2),
        stream_window: backstop::retention::DEFAULT_STREAM_WINDOW,
    }
}

#[test]
fn a_backup_killed_mid_way_loses_no_chunk_and_the_next_takes_up_what_it_stored() {
    let db = super::a_database_that_takes_seconds("chunks sigkill");
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("backups");
    let store = format!("file://{}", root.display());
    let url = db.url();
    let args = [
        "backup",
        "--db",
        &url,
        "--to",
        &store,
        "--database-id",
        "main",
        "--incremental",
    ];
    backstop_ok(&args, &[]);
    // Every row changes: the next backup stores new chunks from its first part on.
    db.psql("UPDATE events SET note = upper(note)");
    let before = stored(&root, "main").len();
    let mut child = std::process::Command::new(backstop_bin())
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + super::BOUND;
    while stored(&root, "main").len() < before + 3 {
        assert!(
            std::time::Instant::now() < deadline,
            "the killed backup never stored a chunk"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let left = stored(&root, "main").len() - before;
    assert!(left >= 3);

    // The set before it has every chunk it names.
    let sets = committed(&root, "main");
    assert_eq!(sets.len(), 1);
    assert!(named(&root, "main").is_subset(&stored(&root, "main")));
    verify_deep(&store, "main", &sets[0]);

    // Once the dead run's lease has expired, the next backup takes up the chunks it stored.
    std::fs::remove_file(root.join("_backstop/locks/main/backup")).unwrap();
    backstop_ok(&args, &[]);
    let sets = committed(&root, "main");
    assert_eq!(sets.len(), 2);
    let target = fresh_database("chunks sigkill restored");
    backstop_ok(
        &[
            "restore",
            "--from",
            &store,
            "--database-id",
            "main",
            "--db",
            &target.url(),
        ],
        &[],
    );
    assert_same_dump(&db.pg_dump(), &target.pg_dump(), "after the killed backup");

    // Retention keeping the newest leaves no chunk unnamed and the kept set whole.
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let files: Arc<dyn Store> = Arc::new(FileStore::new(root.clone()));
    let report = runtime
        .block_on(prune(
            files.as_ref(),
            &DatabaseId::new("main").unwrap(),
            &keep_last(1),
        ))
        .unwrap();
    assert!(report.chunks.removed > 0, "{report:?}");
    assert_eq!(stored(&root, "main"), named(&root, "main"));
    verify_deep(&store, "main", &sets[1]);
}

#[test]
fn a_prune_stopped_at_any_step_leaves_every_kept_set_whole() {
    let source = application("chunks prune stopped");
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("backups");
    let store = format!("file://{}", root.display());
    for round in 0..4 {
        if round > 0 {
            change(&source, round);
        }
        backstop_ok(
            &[
                "backup",
                "--db",
                &source.url(),
                "--to",
                &store,
                "--database-id",
                "app",
                "--incremental",
            ],
            &[],
        );
    }
    let sets = committed(&root, "app");
    let kept = &sets[2..];
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let database = DatabaseId::new("app").unwrap();
    for step in [0, 1, 2, 3, 5, 8, 13, 40] {
        let copy = dir.path().join(format!("step-{step}"));
        let status = std::process::Command::new("cp")
            .args(["-a", root.to_str().unwrap(), copy.to_str().unwrap()])
            .status()
            .unwrap();
        assert!(status.success());
        let failing = FailingStore::new(Arc::new(FileStore::new(copy.clone())));
        failing.stop_deleting_after(step);
        let stopped = runtime.block_on(prune(&failing, &database, &keep_last(2)));
        // Wherever it stopped, every set still committed has all its chunks, and the kept
        // ones are committed.
        let left = committed(&copy, "app");
        assert!(
            kept.iter().all(|k| left.contains(k)),
            "step {step}: {left:?}"
        );
        assert!(
            named(&copy, "app").is_subset(&stored(&copy, "app")),
            "step {step}: a committed set lost a chunk ({stopped:?})"
        );
        // The next run finishes the work.
        let files = FileStore::new(copy.clone());
        runtime
            .block_on(prune(&files, &database, &keep_last(2)))
            .unwrap();
        assert_eq!(committed(&copy, "app"), kept, "step {step}");
        assert_eq!(stored(&copy, "app"), named(&copy, "app"), "step {step}");
        let copy_store = format!("file://{}", copy.display());
        for set in kept {
            verify_deep(&copy_store, "app", set);
        }
        std::fs::remove_dir_all(&copy).unwrap();
    }
}
