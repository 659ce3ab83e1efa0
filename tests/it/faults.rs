//! Faults injected into the paths beside the main round trip, each asserting the property every
//! command owes its user: it ends within its bound, exit 0 means the set it reports restores,
//! and a failure says what happened in one line and loses nothing committed before.

use std::time::Duration;

use backstop_tests::postgres::fresh_database;
use backstop_tests::tmpfs::Tmpfs;

use crate::support::{backstop, backstop_ok, backstop_within, single_error_line};

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

/// A file store on a disk that fills up during the backup, at sizes that run out in the
/// manifest, in a part, and before anything: the backup fails within its bound in one line
/// naming the full disk, no set is listed as committed, no partial file is left, `health` does
/// not call the store healthy, and once space is back the next backup succeeds and restores.
/// (Before the file store proved its writes, the small sizes exited 0 with 0-byte objects.)
#[test]
fn a_backup_to_a_full_disk_fails_in_one_line_and_commits_nothing() {
    let db = fresh_database("fulldisk");
    db.psql(
        "CREATE TABLE events AS
           SELECT g AS id, md5(g::text) || md5((g * 7)::text) AS note
           FROM generate_series(1, 40000) g;",
    );
    for free_kib in [2u64, 12, 48, 200] {
        let Some(disk) = Tmpfs::mount(2 << 20) else {
            return;
        };
        disk.fill_leaving(free_kib * 1024);
        let root = disk.path().join("backups");
        let store = format!("file://{}", root.display());
        let output = backstop_within(
            BOUND,
            &[
                "backup",
                "--db",
                &db.url(),
                "--to",
                &store,
                "--database-id",
                "main",
            ],
            &[],
        );
        let line = single_error_line(&output);
        assert!(
            line.contains("No space left on device"),
            "with {free_kib} KiB free the error does not say the disk is full: {line}"
        );
        assert!(
            committed(&store).is_empty(),
            "with {free_kib} KiB free a set is listed as committed"
        );
        let leftovers: Vec<_> = files_under(&root)
            .into_iter()
            .filter(|path| path.to_string_lossy().contains(".partial-"))
            .collect();
        assert!(leftovers.is_empty(), "partial files left: {leftovers:?}");
        let health = backstop(&["health", "--from", &store, "--database-id", "main"], &[]);
        assert_ne!(
            health.status.code(),
            Some(0),
            "health calls a store with no backup healthy:\n{}",
            String::from_utf8_lossy(&health.stdout)
        );

        // Space back: the same command now succeeds and the set restores.
        disk.unfill();
        backstop_ok(
            &[
                "backup",
                "--db",
                &db.url(),
                "--to",
                &store,
                "--database-id",
                "main",
            ],
            &[],
        );
        let target = fresh_database("fulldisk_restore");
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
        assert_eq!(
            target.psql("SELECT count(*), md5(string_agg(note, ',' ORDER BY id)) FROM events"),
            db.psql("SELECT count(*), md5(string_agg(note, ',' ORDER BY id)) FROM events"),
        );
    }
}

/// A change-stream drain on a disk that fills up, at sizes that run out in the segment and in
/// its seal: a drain that cannot store its changes fails in one line and does not advance the
/// slot, so once space is back the next drain stores them and the newest point restores the
/// source exactly. (Before the file store proved its writes, a drain wrote an empty seal, then
/// advanced the slot past changes stored nowhere.)
#[test]
fn a_drain_on_a_full_disk_keeps_its_changes_for_the_next_one() {
    let db = fresh_database("fulldisk stream");
    db.psql(
        "CREATE TABLE ledger (id int PRIMARY KEY, note text);
         INSERT INTO ledger SELECT g, md5(g::text) FROM generate_series(1, 100) g;",
    );
    let Some(disk) = Tmpfs::mount(8 << 20) else {
        return;
    };
    let store = format!("file://{}/backups", disk.path().display());
    let url = db.url();
    let drain = || backstop_within(BOUND, &["stream", "--db", &url, "--to", &store], &[]);
    let first = drain();
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );

    let mut next = 100;
    for free_kib in [0u64, 4, 12, 24, 48] {
        db.psql(&format!(
            "INSERT INTO ledger SELECT g, md5(g::text) || repeat('x', g % 50)
               FROM generate_series({}, {}) g;
             UPDATE ledger SET note = note || ' changed' WHERE id % 7 = {};",
            next + 1,
            next + 1500,
            free_kib % 7
        ));
        next += 1500;
        disk.fill_leaving(free_kib * 1024);
        let output = drain();
        if !output.status.success() {
            let line = single_error_line(&output);
            assert!(
                line.contains("No space left on device"),
                "with {free_kib} KiB free the error does not say the disk is full: {line}"
            );
        }
        disk.unfill();
    }
    let last = drain();
    assert!(
        last.status.success(),
        "{}",
        String::from_utf8_lossy(&last.stderr)
    );

    let target = fresh_database("fulldisk stream restore");
    backstop_ok(
        &[
            "restore",
            "--from",
            &store,
            "--database-id",
            &db.name,
            "--db",
            &target.url(),
        ],
        &[],
    );
    let digest = "SELECT count(*), md5(string_agg(id || ':' || note, ',' ORDER BY id)) FROM ledger";
    assert_eq!(
        target.psql(digest),
        db.psql(digest),
        "the newest point lost changes a drain could not store"
    );
}

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
    let skewed = committed(&store)[0]["backup"].as_str().unwrap().to_string();
    let skewed = as_if_from_a_clock_ahead(&root, "main", &skewed, time::Duration::days(2));
    db.psql("INSERT INTO ledger VALUES (2);");
    backstop_ok(&backup_args, &[]);

    let true_newest = committed(&store)
        .iter()
        .map(|b| b["backup"].as_str().unwrap().to_string())
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
        .map(|b| b["backup"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(left.len(), 2, "prune deleted one of {left:?}");
    assert!(left.contains(&skewed), "{left:?}");

    let health = backstop(&["health", "--from", &store, "--database-id", "main"], &[]);
    let report = String::from_utf8_lossy(&health.stdout);
    assert_eq!(health.status.code(), Some(2), "{report}");
    assert!(report.contains("in the future"), "{report}");
}

/// Runs the CLI with a stdout whose reader has already gone, as `backstop … | head` leaves it
/// once head has what it wants.
fn backstop_into_a_closed_pipe(args: &[&str]) -> std::process::Output {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let mut child = std::process::Command::new(crate::support::backstop_bin())
        .args(args)
        .env_remove("AWS_ENDPOINT_URL")
        .stdout(writer)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + BOUND;
    while child.try_wait().unwrap().is_none() {
        assert!(
            std::time::Instant::now() < deadline,
            "`backstop {}` did not end",
            args.join(" ")
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

/// A reader that stops reading ends the command quietly, as it ends `cat`: status 141 and
/// nothing on stderr, for `list --json` (which panicked with 101) and for `export` (which said
/// a part "is corrupt … restore an earlier backup"); an export to a full disk says the disk is
/// full, blames no part, and leaves no partial file.
#[test]
fn a_closed_pipe_is_a_quiet_exit_and_a_full_disk_blames_no_part() {
    let db = fresh_database("pipes");
    db.psql(
        "CREATE TABLE ledger AS
           SELECT g AS id, md5(g::text) AS note FROM generate_series(1, 20000) g;",
    );
    let dir = tempfile::tempdir().unwrap();
    let store = format!("file://{}/backups", dir.path().display());
    backstop_ok(
        &[
            "backup",
            "--db",
            &db.url(),
            "--to",
            &store,
            "--database-id",
            "main",
        ],
        &[],
    );
    for args in [
        vec!["list", "--from", &store, "--json"],
        vec!["export", "--from", &store, "--database-id", "main"],
    ] {
        let output = backstop_into_a_closed_pipe(&args);
        assert_eq!(
            output.status.code(),
            Some(141),
            "`backstop {}`: {:?}\n{}",
            args.join(" "),
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(
            output.stderr.is_empty(),
            "`backstop {}` wrote: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr)
        );
    }

    let Some(disk) = Tmpfs::mount(256 * 1024) else {
        return;
    };
    let script = disk.path().join("backup.sql");
    let output = backstop_within(
        BOUND,
        &[
            "export",
            "--from",
            &store,
            "--database-id",
            "main",
            "--output",
            script.to_str().unwrap(),
        ],
        &[],
    );
    let line = single_error_line(&output);
    assert!(
        line.contains("No space left on device") && !line.contains("corrupt"),
        "{line}"
    );
    assert!(
        files_under(disk.path()).is_empty(),
        "the failed export left {:?}",
        files_under(disk.path())
    );
}

/// A server that accepts connections and never answers: every command that connects ends
/// within its connect bound (`connect_timeout=2` here; 30 s when the URL sets none), fails,
/// and says the server did not answer. (Before, each one hung forever.)
#[test]
fn a_server_that_never_answers_ends_each_command_within_its_bound() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming() {
            held.push(stream); // accepted, never answered
        }
    });
    let url = format!("postgresql://backup@127.0.0.1:{port}/app?connect_timeout=2");
    let dir = tempfile::tempdir().unwrap();
    let store = format!("file://{}/backups", dir.path().display());
    for args in [
        vec!["doctor", "--db", &url, "--store", &store],
        vec![
            "backup",
            "--db",
            &url,
            "--to",
            &store,
            "--database-id",
            "main",
        ],
        vec![
            "stream",
            "--db",
            &url,
            "--to",
            &store,
            "--database-id",
            "main",
        ],
        vec![
            "health",
            "--from",
            &store,
            "--database-id",
            "main",
            "--db",
            &url,
        ],
    ] {
        let output = backstop_within(Duration::from_secs(30), &args, &[]);
        let said = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(
            !output.status.success(),
            "`backstop {}` exited 0",
            args.join(" ")
        );
        assert!(
            said.contains("no answer within 2 s"),
            "`backstop {}` did not say the server is silent:\n{said}",
            args.join(" ")
        );
    }
}

/// A backup whose lease can no longer be renewed (the store refuses the lease's writes once
/// the run is under way, and has turned slow) stops when the lease would expire, instead of
/// running on while another run may take the lease; it says why and leaves none of its set
/// behind. (Before, the renewal only warned and the backup went on to commit.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_that_cannot_renew_its_lease_stops_and_leaves_nothing() {
    use backstop::engine::backup::{BackupError, BackupOptions, backup_exclusively};
    use backstop::layout::DatabaseId;
    use backstop::store::{FileStore, Store};
    use backstop_tests::failing_store::FailingStore;
    use std::sync::Arc;

    let db = fresh_database("lease lost");
    db.psql("CREATE TABLE ledger AS SELECT g AS id, md5(g::text) AS note FROM generate_series(1, 1000) g;");
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(FailingStore::new(Arc::new(FileStore::new(
        dir.path().to_path_buf(),
    ))));
    let mut options = BackupOptions::new(DatabaseId::new("main").unwrap());
    options.lease = Duration::from_millis(900);
    // Once the lease is taken: its renewals fail, and every part takes seconds to store.
    store.delay_puts(Duration::from_secs(3));
    let faults = store.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(100)).await;
        faults.fail_state_writes();
    });
    let target = backstop::pg::parse_url(&db.url()).unwrap();
    let started = std::time::Instant::now();
    let result = backup_exclusively(&target, store.clone(), &options, "fault test", &|_| {}).await;
    assert!(
        matches!(result, Err(BackupError::LeaseLost { .. })),
        "{:?}",
        result.map(|m| m.backup_id)
    );
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "the backup ran on for {:?} after its lease was lost",
        started.elapsed()
    );
    let left: Vec<String> = store
        .list("main/")
        .await
        .unwrap()
        .into_iter()
        .map(|o| o.key)
        .collect();
    assert!(left.is_empty(), "the stopped backup left {left:?}");
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

/// SIGTERM (a Fargate Spot stop, `kill`) or Ctrl-C in the middle of a backup: the CLI stops
/// within its bound, says so in one line, leaves no part of its set, and releases its lease,
/// so the next backup starts at once. (Before, the parts and the lease stayed for minutes and
/// nothing was said.)
#[test]
fn a_backup_stopped_by_sigterm_removes_its_set_and_frees_its_lease() {
    let db = a_database_that_takes_seconds("sigterm");
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
    ];
    let mut backup = std::process::Command::new(crate::support::backstop_bin());
    backup.args(args);
    let output = sigterm_once_storing(&mut backup, &root, BOUND);
    let line = single_error_line(&output);
    assert!(line.contains("interrupted"), "{line}");
    let left = files_under(&root.join("main"));
    assert!(left.is_empty(), "the interrupted backup left {left:?}");
    assert!(committed(&store).is_empty());
    // The lease was released: the next run does not wait for it to expire.
    backstop_ok(&args, &[]);
}

/// The backup function run as a container job (how the Fargate task runs it) and stopped with
/// SIGTERM, as ECS stops a task on a Spot reclaim: it exits non-zero within ECS's 30 s grace,
/// leaves no part of its set and no lease, and sends one critical alert saying it was
/// interrupted. (Before, the task was killed with its parts and lease left, and said nothing.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_job_stopped_by_sigterm_cleans_up_and_alerts() {
    use backstop_tests::moto::moto;
    let db = a_database_that_takes_seconds("job sigterm");
    let inbox = moto().alert_inbox("job-sigterm").await;
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("backups");
    let function = crate::support::backstop_bin().with_file_name("backup");
    let mut job = std::process::Command::new(&function);
    job.env("BACKSTOP_JOB", r#"{"database": "main", "tier": "daily"}"#)
        .env("BACKSTOP_STORE", format!("file://{}", root.display()))
        .env(
            "BACKSTOP_DATABASES",
            r#"{"main": {"url_env": "MAIN_DATABASE_URL"}}"#,
        )
        .env("MAIN_DATABASE_URL", db.url())
        .env("BACKSTOP_ALERT_TOPIC_ARN", &inbox.topic_arn)
        .envs(moto().env());
    // ECS kills a task 30 s after its SIGTERM.
    let output = sigterm_once_storing(&mut job, &root, Duration::from_secs(30));
    assert!(!output.status.success());
    let left: Vec<_> = files_under(&root)
        .into_iter()
        .filter(|path| !path.starts_with(root.join("_backstop")))
        .collect();
    assert!(left.is_empty(), "the stopped job left {left:?}");
    let alerts = inbox.drain().await;
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert!(
        alerts[0].message.contains("interrupted"),
        "{}",
        alerts[0].message
    );
    // Its lease was released: the next run starts at once.
    let next = std::process::Command::new(&function)
        .envs(job.get_envs().filter_map(|(k, v)| Some((k, v?))))
        .output()
        .unwrap();
    assert!(
        next.status.success(),
        "{}",
        String::from_utf8_lossy(&next.stderr)
    );
}

/// A server that freezes in the middle of a backup (its backends stopped, as on a stalled host
/// or behind a proxy that lost its upstream: TCP still answers, no query does) stops the
/// backup within its silence limit: it says the server stopped answering, commits nothing,
/// leaves nothing and frees its lease. Before: it waited forever, renewing its lease all the
/// while, and the monitor said "in progress".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_freezes_mid_backup_stops_it_and_frees_the_lease() {
    use backstop::engine::backup::{BackupError, BackupOptions, backup_exclusively};
    use backstop::layout::DatabaseId;
    use backstop::store::{FileStore, Store};
    use backstop_tests::failing_store::FailingStore;
    use std::sync::Arc;

    let db = fresh_database("frozen server");
    db.psql("CREATE TABLE ledger AS SELECT g AS id, md5(g::text) AS note FROM generate_series(1, 20000) g;");
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(FailingStore::new(Arc::new(FileStore::new(
        dir.path().to_path_buf(),
    ))));
    // Every part takes seconds to store: the backup is under way when the server freezes.
    store.delay_puts(Duration::from_secs(2));
    let mut options = BackupOptions::new(DatabaseId::new("main").unwrap());
    options.silence_limit = Duration::from_secs(1);
    let target = backstop::pg::parse_url(&db.url()).unwrap();
    let running = {
        let store: Arc<dyn Store> = store.clone();
        tokio::spawn(async move {
            backup_exclusively(&target, store, &options, "fault test", &|_| {}).await
        })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    let pids = db.cluster().psql(
        "postgres",
        &format!(
            "SELECT string_agg(pid::text, ' ') FROM pg_stat_activity WHERE datname = '{}'",
            db.name
        ),
    );
    let signal = |name: &str| {
        let status = std::process::Command::new("kill")
            .arg(format!("-{name}"))
            .args(pids.split_whitespace())
            .status()
            .unwrap();
        assert!(status.success(), "kill -{name} {pids}");
    };
    signal("STOP");
    let ended = tokio::time::timeout(Duration::from_secs(60), running).await;
    signal("CONT");
    let result = ended
        .expect("the backup ended while the server was frozen")
        .unwrap();
    match result {
        Err(BackupError::ServerSilent { ref reason }) => {
            assert!(reason.contains("no answer"), "{reason}")
        }
        other => panic!("{:?}", other.map(|m| m.backup_id)),
    }
    let left: Vec<String> = store
        .list("main/")
        .await
        .unwrap()
        .into_iter()
        .map(|o| o.key)
        .collect();
    assert!(left.is_empty(), "the stopped backup left {left:?}");
    let key = backstop::lease::lease_key(&DatabaseId::new("main").unwrap(), "backup");
    backstop::lease::acquire(store.clone(), &key, "next run", Duration::from_secs(60))
        .await
        .expect("the lease is free for the next run");
}

/// `--jobs` more than the role may connect with: backup and restore use the connections
/// there are (a warning says so) instead of failing halfway on "too many connections".
/// Before: both failed once the role's CONNECTION LIMIT was reached.
#[test]
fn jobs_beyond_what_the_role_may_open_are_capped_not_fatal() {
    let db = fresh_database("jobs capped");
    db.psql(
        "CREATE TABLE a AS SELECT g AS id FROM generate_series(1, 1000) g;
         CREATE TABLE b AS SELECT g AS id FROM generate_series(1, 2000) g;
         CREATE TABLE c AS SELECT g AS id FROM generate_series(1, 3000) g;",
    );
    let cluster = db.cluster();
    let role = format!("{}_few", db.name);
    let target = format!("{}_restored", db.name);
    cluster.run_psql(
        "postgres",
        &[
            "-c",
            &format!(
                "CREATE ROLE \"{role}\" LOGIN PASSWORD 'few-pw' CONNECTION LIMIT 3; \
                 GRANT pg_read_all_data TO \"{role}\";"
            ),
            "-c",
            &format!("CREATE DATABASE \"{target}\" OWNER \"{role}\""),
        ],
    );
    let dir = tempfile::tempdir().unwrap();
    let store = format!("file://{}", dir.path().display());
    let source = cluster.url_as(&role, "few-pw", &db.name);
    let output = backstop(
        &[
            "backup",
            "--db",
            &source,
            "--to",
            &store,
            "--database-id",
            "main",
            "--jobs",
            "8",
        ],
        &[],
    );
    assert!(output.status.success(), "{}", single_error_line(&output));
    let into = cluster.url_as(&role, "few-pw", &target);
    let output = backstop(
        &[
            "restore",
            "--from",
            &store,
            "--database-id",
            "main",
            "--db",
            &into,
            "--jobs",
            "8",
            "--no-owner",
            "--no-acl",
        ],
        &[],
    );
    assert!(output.status.success(), "{}", single_error_line(&output));
    assert_eq!(
        cluster
            .psql(&target, "SELECT (SELECT count(*) FROM a) + (SELECT count(*) FROM b) + (SELECT count(*) FROM c)")
            .trim(),
        "6000"
    );
    cluster.run_psql(
        "postgres",
        &[
            "-c",
            &format!("DROP DATABASE \"{target}\" WITH (FORCE)"),
            "-c",
            &format!("DROP ROLE \"{role}\""),
        ],
    );
}

/// SIGTERM or Ctrl-C in the middle of a restore, and of a restore-level verification: each
/// stops within its bound and says so in one line; the restore says what the target may hold
/// and that `--clean` replaces it, the verification drops its scratch database. (Before, the
/// process died without a word and the scratch database stayed until a later run swept it.)
#[test]
fn a_restore_and_a_verification_stopped_by_sigterm_say_so_and_leave_no_scratch() {
    let db = a_database_that_takes_seconds("restore sigterm");
    let dir = tempfile::tempdir().unwrap();
    let store = format!("file://{}", dir.path().join("backups").display());
    let url = db.url();
    // An id of its own: scratch databases are named after it.
    let id = db.name.clone();
    backstop_ok(
        &["backup", "--db", &url, "--to", &store, "--database-id", &id],
        &[],
    );

    let target = fresh_database("restore sigterm target");
    let into = target.url();
    let mut restore = std::process::Command::new(crate::support::backstop_bin());
    restore.args([
        "restore",
        "--from",
        &store,
        "--database-id",
        &id,
        "--db",
        &into,
    ]);
    let loading = || {
        target
            .psql("SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'COPY%FROM STDIN%' AND datname = current_database()")
            .trim()
            != "0"
    };
    let output = sigterm_once(&mut restore, loading, BOUND);
    let line = single_error_line(&output);
    assert!(
        line.contains("interrupted") && line.contains("--clean"),
        "{line}"
    );

    let label: String = id.chars().take(30).collect();
    let scratch = |db: &backstop_tests::postgres::TestDb| {
        db.cluster().psql(
            "postgres",
            &format!(
                "SELECT count(*) FROM pg_database WHERE datname LIKE 'backstop_verify_{label}%'"
            ),
        )
    };
    let mut verify = std::process::Command::new(crate::support::backstop_bin());
    let server = db.cluster().url("postgres");
    verify.args([
        "verify",
        "--from",
        &store,
        "--database-id",
        &id,
        "--level",
        "restore",
        "--scratch-db",
        &server,
    ]);
    let output = sigterm_once(&mut verify, || scratch(&db).trim() != "0", BOUND);
    let line = single_error_line(&output);
    assert!(line.contains("interrupted"), "{line}");
    assert_eq!(scratch(&db).trim(), "0", "the scratch database was left");
}

/// SIGTERM in the middle of a change-stream drain: it stops within its bound and says so, the
/// slot keeps every change not sealed, the lease is free, and the next drain carries the
/// stream to the end: a restore to the newest point holds every row. (Before, the process
/// died without a word and the lease blocked the next drain until it expired.)
#[test]
fn a_drain_stopped_by_sigterm_loses_nothing_and_frees_its_lease() {
    let db = fresh_database("stream sigterm");
    db.psql("CREATE TABLE ledger (id int PRIMARY KEY, note text);");
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("backups");
    let store = format!("file://{}", root.display());
    let url = db.url();
    let args = [
        "stream",
        "--db",
        &url,
        "--to",
        &store,
        "--page-changes",
        "5000",
    ];
    backstop_ok(&args, &[]);
    db.psql(
        "INSERT INTO ledger SELECT g, md5(g::text) || md5((g * 3)::text) FROM generate_series(1, 400000) g;",
    );
    let stream = root.join(&db.name).join("stream");
    let segments = || files_under(&stream).len();
    let before = segments();
    let mut drain = std::process::Command::new(crate::support::backstop_bin());
    drain.args(args);
    let output = sigterm_once(&mut drain, || segments() > before, BOUND);
    let line = single_error_line(&output);
    assert!(line.contains("interrupted"), "{line}");
    // The lease is free and nothing was lost: the next drain carries the stream through.
    backstop_ok(&args, &[]);
    let target = fresh_database("stream sigterm restore");
    backstop_ok(
        &[
            "restore",
            "--from",
            &store,
            "--database-id",
            &db.name,
            "--db",
            &target.url(),
        ],
        &[],
    );
    let digest = "SELECT count(*), md5(string_agg(id || ':' || note, ',' ORDER BY id)) FROM ledger";
    assert_eq!(target.psql(digest), db.psql(digest));
}

/// A stop (SIGTERM, a lost lease) that lands while the manifest is being written waits for
/// that write: the run ends committed and restorable. It never removes the parts of a set
/// whose manifest then lands (a request already sent completes on the store's side): no
/// manifest is ever left without its parts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_during_the_manifest_write_never_leaves_a_manifest_without_its_parts() {
    use backstop::engine::backup::{BackupOptions, backup};
    use backstop::engine::restore::{BackupSelector, read_manifest};
    use backstop::layout::DatabaseId;
    use backstop::store::{FileStore, Store};
    use backstop_tests::failing_store::FailingStore;
    use std::sync::Arc;

    let db = fresh_database("stop while committing");
    db.psql("CREATE TABLE ledger AS SELECT g AS id, md5(g::text) AS note FROM generate_series(1, 5000) g;");
    let dir = tempfile::tempdir().unwrap();
    let inner: Arc<dyn Store> = Arc::new(FileStore::new(dir.path().to_path_buf()));
    let store = Arc::new(FailingStore::new(inner.clone()));
    let options = BackupOptions::new(DatabaseId::new("main").unwrap());
    let interrupt = options.interrupt.clone();
    store.at_next_manifest_put(
        Box::pin(async move { interrupt.cancel() }),
        Duration::from_millis(500),
    );
    let target = backstop::pg::parse_url(&db.url()).unwrap();
    let result = backup(&target, store.clone(), &options, &|_| {}).await;
    // Let a write the run stopped waiting for land, as it would on S3.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let keys: Vec<String> = inner
        .list("main/")
        .await
        .unwrap()
        .into_iter()
        .map(|o| o.key)
        .collect();
    let database = DatabaseId::new("main").unwrap();
    match result {
        Ok(manifest) => {
            let stored = read_manifest(
                inner.as_ref(),
                &database,
                &BackupSelector::Id(
                    backstop::layout::BackupId::parse(&manifest.backup_id).unwrap(),
                ),
            )
            .await
            .unwrap();
            for part in &stored.parts {
                let key = format!("main/{}/{}", stored.backup_id, part.key);
                assert!(keys.contains(&key), "committed without {key}: {keys:?}");
            }
        }
        Err(e) => assert!(keys.is_empty(), "the run failed ({e}) and left {keys:?}"),
    }
}

/// SIGKILL in the middle of a backup (the OOM killer, a host lost): nothing runs to clean
/// up, and still nothing is taken for a backup: the set has no manifest, `list`, `restore`
/// (latest) and `health` see only the backup before it, and the next backup is refused in one
/// line naming when the dead run's lease expires.
#[test]
fn a_backup_killed_mid_way_is_never_taken_for_a_backup() {
    let db = a_database_that_takes_seconds("sigkill");
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
    ];
    backstop_ok(&args, &[]);
    let first = committed(&store);
    assert_eq!(first.len(), 1);
    let before = files_under(&root.join("main")).len();
    let mut child = std::process::Command::new(crate::support::backstop_bin())
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + BOUND;
    while files_under(&root.join("main")).len() <= before {
        assert!(
            std::time::Instant::now() < deadline,
            "the second backup never stored anything"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap();
    child.wait().unwrap();

    assert_eq!(committed(&store), first, "a killed run is not listed");
    let target = fresh_database("sigkill restored");
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
    let count = "SELECT count(*) FROM events";
    assert_eq!(target.psql(count), db.psql(count));
    let output = backstop(
        &[
            "health",
            "--from",
            &store,
            "--database-id",
            "main",
            "--json",
        ],
        &[],
    );
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(
        report["backups"]["last_backup"].as_str(),
        first[0]["backup"].as_str(),
        "{report}"
    );
    let output = backstop(&args, &[]);
    let line = single_error_line(&output);
    assert!(line.contains("expires"), "{line}");
}
