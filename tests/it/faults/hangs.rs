//! Waits that must end: a server that never answers or freezes mid-run, a lease that cannot
//! be renewed, more jobs than the server allows, a stop while the manifest is written.

use super::*;

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

    let (db, _dir, store) = beside_a_failing_store(
        "lease lost",
        "CREATE TABLE ledger AS SELECT g AS id, md5(g::text) AS note FROM generate_series(1, 1000) g;",
    );
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
    assert_left_nothing(store.as_ref()).await;
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
    use backstop::store::Store;

    use std::sync::Arc;

    let (db, _dir, store) = beside_a_failing_store(
        "frozen server",
        "CREATE TABLE ledger AS SELECT g AS id, md5(g::text) AS note FROM generate_series(1, 20000) g;",
    );
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
    let frozen = Frozen::all_of(&db);
    let ended = tokio::time::timeout(Duration::from_secs(60), running).await;
    drop(frozen);
    let result = ended
        .expect("the backup ended while the server was frozen")
        .unwrap();
    match result {
        Err(BackupError::ServerSilent { ref reason }) => {
            assert!(reason.contains("no answer"), "{reason}")
        }
        other => panic!("{:?}", other.map(|m| m.backup_id)),
    }
    assert_left_nothing(store.as_ref()).await;
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
    let keys = keys_under(inner.as_ref(), "main/").await;
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

/// The store failing at each of a backup's writes in turn, and at each of a change-stream
/// drain's: every failing run ends in an error and commits nothing (no manifest, no seal past
/// what was proven), the next clean run succeeds, and what it stores restores identically.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_failing_at_each_write_in_turn_commits_nothing_and_loses_nothing() {
    use backstop::engine::backup::{BackupOptions, backup};
    use backstop::engine::restore::{BackupSelector, RestoreOptions, read_manifest, restore};
    use backstop::engine::stream::{StreamOptions, drain};
    use backstop::layout::DatabaseId;
    use backstop::store::{FileStore, Store};
    use backstop_tests::failing_store::FailingStore;
    use std::sync::Arc;

    let db = fresh_database("nth write");
    db.psql(
        "CREATE TABLE ledger (id int PRIMARY KEY, note text);
         INSERT INTO ledger SELECT g, md5(g::text) FROM generate_series(1, 3000) g;
         CREATE TABLE tags (id int PRIMARY KEY, tag text); INSERT INTO tags VALUES (1, 'a'), (2, 'b');",
    );
    let dir = tempfile::tempdir().unwrap();
    let inner: Arc<dyn Store> = Arc::new(FileStore::new(dir.path().to_path_buf()));
    let store = Arc::new(FailingStore::new(inner.clone()));
    let target = backstop::pg::parse_url(&db.url()).unwrap();
    let database = DatabaseId::new(&db.name).unwrap();
    let options = BackupOptions::new(database.clone());
    let committed = || async {
        backstop::layout::committed_backups(
            &database,
            inner
                .list(&format!("{database}/"))
                .await
                .unwrap()
                .iter()
                .map(|o| o.key.as_str()),
        )
    };

    // How many writes a clean backup makes.
    backup(&target, store.clone(), &options, &|_| {})
        .await
        .unwrap();
    let writes = store.puts();
    assert!(writes >= 4, "{writes} writes");
    let before = committed().await;
    for n in 1..=writes {
        store.fail_nth_put(n);
        let result = backup(&target, store.clone(), &options, &|_| {}).await;
        assert!(
            result.is_err(),
            "a backup whose write {n} of {writes} failed exited 0"
        );
        assert_eq!(
            committed().await,
            before,
            "write {n} of {writes} failed and a set was committed"
        );
    }

    // A drain: the stream starts, changes come, each write of the next drain fails in turn.
    let stream = StreamOptions::new(database.clone());
    store.fail_nth_put(0);
    drain(&target, store.clone(), &stream).await.unwrap();
    // The base the stream replays onto: a backup taken once the slot exists.
    backup(&target, store.clone(), &options, &|_| {})
        .await
        .unwrap();
    db.psql("INSERT INTO ledger SELECT g, 'late ' || g FROM generate_series(3001, 3500) g; UPDATE tags SET tag = 'c';");
    store.fail_nth_put(u64::MAX);
    let probe = drain(&target, store.clone(), &stream).await;
    let drain_writes = store.puts();
    probe.unwrap();
    db.psql("INSERT INTO ledger SELECT g, 'later ' || g FROM generate_series(3501, 3600) g; DELETE FROM tags WHERE id = 1;");
    for n in 1..=drain_writes.max(1) {
        store.fail_nth_put(n);
        assert!(
            drain(&target, store.clone(), &stream).await.is_err(),
            "a drain whose write {n} failed succeeded"
        );
    }
    store.fail_nth_put(0);
    drain(&target, store.clone(), &stream).await.unwrap();

    // Everything is there: the newest backup plus the stream reach the source as it is now.
    let restored = fresh_database("nth write restored");
    let into = backstop::pg::parse_url(&restored.url()).unwrap();
    let recovery = backstop::engine::stream::replay::plan_recovery(
        inner.as_ref(),
        &database,
        backstop::engine::stream::plan::RecoveryTarget::Latest,
        None,
    )
    .await
    .unwrap();
    let manifest = read_manifest(
        inner.as_ref(),
        &database,
        &BackupSelector::Id(
            backstop::layout::BackupId::parse(&recovery.manifest.backup_id).unwrap(),
        ),
    )
    .await
    .unwrap();
    restore(
        inner.clone(),
        &manifest,
        &into,
        &RestoreOptions::new(2),
        &|_| {},
    )
    .await
    .unwrap();
    backstop::engine::stream::replay::replay(inner.clone(), &recovery, &into, None)
        .await
        .unwrap();
    let digest = "SELECT (SELECT md5(string_agg(id || note, ',' ORDER BY id)) FROM ledger), \
                  (SELECT md5(string_agg(id || tag, ',' ORDER BY id)) FROM tags)";
    assert_eq!(restored.psql(digest), db.psql(digest));
}

/// Every backend of a database stopped (SIGSTOP) until dropped (SIGCONT): a server that
/// accepted its connections and answers none of them.
struct Frozen(String);

impl Frozen {
    fn all_of(db: &backstop_tests::postgres::TestDb) -> Self {
        let pids = db.cluster().psql(
            "postgres",
            &format!(
                "SELECT string_agg(pid::text, ' ') FROM pg_stat_activity WHERE datname = '{}'",
                db.name
            ),
        );
        let frozen = Frozen(pids);
        frozen.signal("STOP");
        frozen
    }

    fn signal(&self, name: &str) {
        let status = std::process::Command::new("kill")
            .arg(format!("-{name}"))
            .args(self.0.split_whitespace())
            .status()
            .unwrap();
        assert!(status.success(), "kill -{name} {}", self.0);
    }
}

impl Drop for Frozen {
    fn drop(&mut self) {
        self.signal("CONT");
    }
}

/// A server that freezes in the middle of a change-stream drain: the drain stops within its
/// silence limit saying so, its lease is free, and the next drain (the server back) carries
/// the stream through with nothing lost. Before: the drain waited forever holding its lease.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_freezes_mid_drain_stops_it_and_loses_nothing() {
    use backstop::engine::stream::{StreamError, StreamOptions, drain_exclusively};
    use backstop::layout::DatabaseId;
    use backstop::store::Store;

    use std::sync::Arc;

    let (db, _dir, store) = beside_a_failing_store(
        "frozen drain",
        "CREATE TABLE ledger (id int PRIMARY KEY, note text);",
    );
    let target = backstop::pg::parse_url(&db.url()).unwrap();
    let mut options = StreamOptions::new(DatabaseId::new(&db.name).unwrap());
    options.silence_limit = Duration::from_secs(1);
    options.page_changes = 200;
    drain_exclusively(&target, store.clone(), &options, "first")
        .await
        .unwrap();
    // The base the stream carries forward.
    let database = DatabaseId::new(&db.name).unwrap();
    let inner: Arc<dyn Store> = store.clone();
    let base = backstop::engine::backup::BackupOptions::new(database.clone());
    backstop::engine::backup::backup(&target, inner.clone(), &base, &|_| {})
        .await
        .unwrap();
    db.psql("INSERT INTO ledger SELECT g, md5(g::text) FROM generate_series(1, 3000) g;");
    // Each page takes seconds to store: the drain is under way when the server freezes.
    store.delay_puts(Duration::from_secs(2));
    let running = {
        let (store, options, target): (Arc<dyn Store>, _, _) =
            (store.clone(), options.clone(), target.clone());
        tokio::spawn(async move { drain_exclusively(&target, store, &options, "frozen").await })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    let frozen = Frozen::all_of(&db);
    let ended = tokio::time::timeout(Duration::from_secs(60), running).await;
    drop(frozen);
    match ended
        .expect("the drain ended while the server was frozen")
        .unwrap()
    {
        Err(StreamError::ServerSilent { .. }) => {}
        other => panic!("{:?}", other.map(|r| r.through)),
    }
    store.delay_puts(Duration::ZERO);
    drain_exclusively(&target, store.clone(), &options, "after")
        .await
        .unwrap();
    let digest = "SELECT count(*), md5(string_agg(id || note, ',' ORDER BY id)) FROM ledger";
    let restored = fresh_database("frozen drain restored");
    let into = backstop::pg::parse_url(&restored.url()).unwrap();
    let recovery = backstop::engine::stream::replay::plan_recovery(
        inner.as_ref(),
        &database,
        backstop::engine::stream::plan::RecoveryTarget::Latest,
        None,
    )
    .await
    .unwrap();
    backstop::engine::restore::restore(
        inner.clone(),
        &recovery.manifest,
        &into,
        &backstop::engine::restore::RestoreOptions::new(2),
        &|_| {},
    )
    .await
    .unwrap();
    backstop::engine::stream::replay::replay(inner.clone(), &recovery, &into, None)
        .await
        .unwrap();
    assert_eq!(restored.psql(digest), db.psql(digest));
}

/// A database holding what `sql` makes, and a file store in a temporary folder wrapped in a
/// [`FailingStore`] (the folder lives as long as the returned guard).
fn beside_a_failing_store(
    label: &str,
    sql: &str,
) -> (
    backstop_tests::postgres::TestDb,
    tempfile::TempDir,
    std::sync::Arc<backstop_tests::failing_store::FailingStore>,
) {
    let db = fresh_database(label);
    db.psql(sql);
    let dir = tempfile::tempdir().unwrap();
    let store = std::sync::Arc::new(backstop_tests::failing_store::FailingStore::new(
        std::sync::Arc::new(backstop::store::FileStore::new(dir.path().to_path_buf())),
    ));
    (db, dir, store)
}

/// An `ACCESS EXCLUSIVE` request on a table queued behind the backup's lock (a migration
/// started mid-backup): the worker that copies the table would wait for it while it waits for
/// the leader. The backup stops within a second or so of reaching the table, naming it, and
/// commits nothing; the migration then runs. (pg_dump's workers use `LOCK … NOWAIT` for this;
/// Backstop's COPY waits under a short `lock_timeout`.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exclusive_lock_queued_behind_the_backup_stops_it_naming_the_table() {
    use backstop::engine::backup::{BackupError, BackupEvent, BackupOptions, backup};
    use backstop::layout::DatabaseId;
    use backstop::store::{FileStore, Store};
    use std::sync::{Arc, Mutex};

    let db = fresh_database("queued exclusive lock");
    db.psql(
        "CREATE TABLE public.a (id int); CREATE TABLE public.migrated (id int);
         INSERT INTO public.a VALUES (1); INSERT INTO public.migrated VALUES (1);",
    );
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(FileStore::new(dir.path().join("backups")));
    let mut options = BackupOptions::new(DatabaseId::new("main").unwrap());
    options.jobs = 1;
    let migration: Arc<Mutex<Option<std::process::Child>>> = Arc::default();
    let on_event = {
        let (migration, db_url, cluster) = (migration.clone(), db.url(), db.cluster());
        let name = db.name.clone();
        move |event: BackupEvent| {
            if !matches!(event, BackupEvent::Started { .. }) {
                return;
            }
            // The leader holds every table's lock and no data is copied yet: the migration's
            // request queues behind it.
            let child = std::process::Command::new(cluster.bin_dir.join("psql"))
                .args([
                    &db_url,
                    "-c",
                    "ALTER TABLE public.migrated ADD COLUMN note text",
                ])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .unwrap();
            *migration.lock().unwrap() = Some(child);
            let waiting = format!(
                "SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database \
                 WHERE d.datname = '{name}' AND l.mode = 'AccessExclusiveLock' AND NOT l.granted"
            );
            let deadline = std::time::Instant::now() + Duration::from_secs(20);
            while cluster.psql("postgres", &waiting).trim() != "1" {
                assert!(
                    std::time::Instant::now() < deadline,
                    "the migration never queued"
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    };
    let target = backstop::pg::parse_url(&db.url()).unwrap();
    let ended = tokio::time::timeout(
        Duration::from_secs(60),
        backup(&target, store.clone(), &options, &on_event),
    )
    .await
    .expect("the backup ended instead of waiting for the migration");
    match ended {
        Err(BackupError::Locked { ref table, .. }) => {
            assert!(table.contains("migrated"), "{table}")
        }
        other => panic!("{:?}", other.map(|m| m.backup_id)),
    }
    assert_left_nothing(store.as_ref()).await;
    let mut child = migration.lock().unwrap().take().expect("the migration ran");
    assert!(
        child.wait().unwrap().success(),
        "the migration ran once the backup let go"
    );
}
