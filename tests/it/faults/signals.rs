//! SIGTERM and SIGKILL in the middle of backup, restore, verification and a stream drain.

use super::*;

/// SIGTERM (a Fargate Spot stop, `kill`) or Ctrl-C in the middle of a backup: the CLI stops
/// within its bound, says so in one line, leaves no part of its set, and releases its lease,
/// so the next backup starts at once. (Before, the parts and the lease stayed for minutes and
/// nothing was said.)
#[test]
fn a_backup_stopped_by_sigterm_removes_its_set_and_frees_its_lease() {
    backup_stopped_by_sigterm("sigterm", &[]);
}

/// The same for an incremental backup: its set goes and its lease is freed; the shared chunks
/// it stored stay (another run may take them) until retention's sweep finds no set naming them,
/// and the next backup, which takes them up, restores.
#[test]
fn an_incremental_backup_stopped_by_sigterm_removes_its_set_and_frees_its_lease() {
    backup_stopped_by_sigterm("sigterm incremental", &["--incremental"]);
}

fn backup_stopped_by_sigterm(label: &str, extra: &[&str]) {
    let db = a_database_that_takes_seconds(label);
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("backups");
    let store = format!("file://{}", root.display());
    let url = db.url();
    let mut args = vec![
        "backup",
        "--db",
        &url,
        "--to",
        &store,
        "--database-id",
        "main",
    ];
    args.extend_from_slice(extra);
    let mut backup = std::process::Command::new(crate::support::backstop_bin());
    backup.args(&args);
    let output = sigterm_once_storing(&mut backup, &root, BOUND);
    let line = single_error_line(&output);
    assert!(line.contains("interrupted"), "{line}");
    let chunks = root.join("main").join("chunks");
    let left: Vec<_> = files_under(&root.join("main"))
        .into_iter()
        .filter(|path| !path.starts_with(&chunks))
        .collect();
    assert!(left.is_empty(), "the interrupted backup left {left:?}");
    assert!(committed(&store).is_empty());
    // The lease was released: the next run does not wait for it to expire.
    backstop_ok(&args, &[]);
    if extra.is_empty() {
        return;
    }
    let target = fresh_database(&format!("{label} restored"));
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
    let count = "SELECT count(*), md5(string_agg(note, ',' ORDER BY id)) FROM events";
    assert_eq!(target.psql(count), db.psql(count));
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
        report["backups"]["last_backup_id"].as_str(),
        first[0]["backup_id"].as_str(),
        "{report}"
    );
    let output = backstop(&args, &[]);
    let line = single_error_line(&output);
    assert!(line.contains("expires"), "{line}");
}
