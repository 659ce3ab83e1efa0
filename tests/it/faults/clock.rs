//! Clocks that are wrong (faketime): a host ahead of its server, a set from the future.

use super::*;

/// `faketime` (Debian's libfaketime, which `make deps` installs), or `None` with a visible
/// message; under `CI=true` its absence fails the test.
fn faketime() -> Option<std::path::PathBuf> {
    let path = std::path::PathBuf::from("/usr/bin/faketime");
    if path.exists() {
        return Some(path);
    }
    assert!(
        std::env::var("CI").map_or(true, |v| v != "true"),
        "faketime is missing: run `make deps` (CI runs the clock tests)"
    );
    eprintln!("SKIPPED: faketime is missing (make deps installs it); the clock test did not run");
    None
}

/// Moves the set `id` of `database` in the file store at `root` to an id `ahead` in the future,
/// as a host whose clock was that far ahead would have named and dated it.
fn as_if_from_a_clock_ahead(
    root: &std::path::Path,
    database: &str,
    id: &str,
    ahead: time::Duration,
) -> String {
    let (_, suffix) = id.split_once('-').unwrap();
    let started = time::OffsetDateTime::now_utc() + ahead;
    let format = time::macros::format_description!("[year][month][day]T[hour][minute][second]Z");
    let skewed = format!("{}-{suffix}", started.format(format).unwrap());
    let set = root.join(database).join(id);
    let manifest = std::fs::read_to_string(set.join("manifest.json")).unwrap();
    let mut manifest: serde_json::Value =
        serde_json::from_str(&manifest.replace(id, &skewed)).unwrap();
    let rfc3339 = |t: time::OffsetDateTime| {
        t.format(&time::format_description::well_known::Rfc3339)
            .unwrap()
    };
    manifest["started_at"] = rfc3339(started).into();
    manifest["finished_at"] = rfc3339(started + time::Duration::seconds(1)).into();
    std::fs::write(set.join("manifest.json"), manifest.to_string()).unwrap();
    std::fs::rename(&set, root.join(database).join(&skewed)).unwrap();
    skewed
}

/// Clocks that are wrong. A host a day ahead of the database server is refused before it
/// stores anything, in one line naming the skew. A set that a skewed host did leave (dated two
/// days ahead) captures nothing: `restore` (latest) refuses, naming it and the newest before
/// now for `--backup`, `prune --keep-last 1` keeps both, and `health` is critical, naming the
/// skew, instead of calling the backup 0 s old. (Before, the skewed set was restored as
/// "latest", the true newest was pruned, and the age read 0.)
#[test]
fn a_clock_ahead_is_refused_and_a_set_from_the_future_captures_nothing() {
    let Some(faketime) = faketime() else {
        return;
    };
    let db = fresh_database("skew");
    db.psql("CREATE TABLE ledger (id int PRIMARY KEY); INSERT INTO ledger VALUES (1);");
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("backups");
    let store = format!("file://{}", root.display());
    let url = db.url();
    let backup_args = [
        "backup",
        "--db",
        &url,
        "--to",
        &store,
        "--database-id",
        "main",
    ];

    let ahead = std::process::Command::new(&faketime)
        .args(["-f", "+1d"])
        .arg(crate::support::backstop_bin())
        .args(backup_args)
        .output()
        .unwrap();
    let line = single_error_line(&ahead);
    assert!(
        line.contains("1 d 0 h ahead of the database server's"),
        "{line}"
    );
    assert!(
        committed(&store).is_empty(),
        "a set was committed from a skewed clock"
    );

    // A set from a skewed host, then the true newest with one more row.
    backstop_ok(&backup_args, &[]);
    let skewed = committed(&store)[0]["backup_id"]
        .as_str()
        .unwrap()
        .to_string();
    let skewed = as_if_from_a_clock_ahead(&root, "main", &skewed, time::Duration::days(2));
    db.psql("INSERT INTO ledger VALUES (2);");
    backstop_ok(&backup_args, &[]);

    let true_newest = committed(&store)
        .iter()
        .map(|b| b["backup_id"].as_str().unwrap().to_string())
        .filter(|id| *id != skewed)
        .max()
        .unwrap();
    let target = fresh_database("skew restore");
    let url = target.url();
    let latest = backstop(
        &[
            "restore",
            "--from",
            &store,
            "--database-id",
            "main",
            "--db",
            &url,
        ],
        &[],
    );
    let line = single_error_line(&latest);
    assert!(
        line.contains(&format!("--backup {skewed}"))
            && line.contains(&format!("--backup {true_newest} (the newest before now)")),
        "latest was not refused naming both candidates: {line}"
    );
    let restore = [
        "restore",
        "--from",
        &store,
        "--database-id",
        "main",
        "--backup",
        &true_newest,
        "--db",
        &url,
    ];
    backstop_ok(&restore, &[]);
    assert_eq!(target.psql("SELECT count(*) FROM ledger").trim(), "2");

    backstop_ok(
        &[
            "prune",
            "--from",
            &store,
            "--database-id",
            "main",
            "--keep-last",
            "1",
        ],
        &[],
    );
    let left: Vec<String> = committed(&store)
        .iter()
        .map(|b| b["backup_id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(left.len(), 2, "prune deleted one of {left:?}");
    assert!(left.contains(&skewed), "{left:?}");

    let health = backstop(&["health", "--from", &store, "--database-id", "main"], &[]);
    let report = String::from_utf8_lossy(&health.stdout);
    assert_eq!(health.status.code(), Some(2), "{report}");
    assert!(report.contains("in the future"), "{report}");
}
