//! Point-in-time recovery: writers run through a base backup and drains of the change stream;
//! a restore to a moment between drains gives the database exactly as pg_dump saw it then;
//! without a stream, a restore to a moment takes the newest backup before it and says the gap.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use backstop::engine::stream::segment::{Segment, TableTouch, Transaction};
use backstop::engine::stream::{StreamError, StreamOptions, drain};
use backstop::layout::DatabaseId;
use backstop::store::{StoreUrl, open_from_env};
use backstop_tests::postgres::{
    PgCluster, TestDb, cluster, cluster_of, fresh_cluster, fresh_database, fresh_database_on,
};

use crate::support::{backstop, backstop_ok, single_error_line};

const SCHEMA: &str = "
CREATE TABLE accounts (id serial PRIMARY KEY, owner text NOT NULL, balance numeric(12,2) NOT NULL DEFAULT 0,
  note text, tags text[], updated timestamptz);
CREATE TABLE events (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  account int REFERENCES accounts ON DELETE CASCADE, payload jsonb,
  doubled numeric GENERATED ALWAYS AS ((payload->>'n')::numeric * 2) STORED);
CREATE TABLE notes (body text, score float8);
ALTER TABLE notes REPLICA IDENTITY FULL;
CREATE TABLE audit (seq bigserial PRIMARY KEY, what text);
CREATE FUNCTION log_change() RETURNS trigger LANGUAGE plpgsql AS
  $$BEGIN INSERT INTO audit (what) VALUES (TG_OP || ' ' || TG_TABLE_NAME); RETURN NULL; END$$;
CREATE TRIGGER accounts_audit AFTER INSERT OR UPDATE OR DELETE ON accounts
  FOR EACH ROW EXECUTE FUNCTION log_change();
CREATE TABLE big (id int PRIMARY KEY, doc text, flag boolean);
INSERT INTO big SELECT g, (SELECT string_agg(md5(random()::text || g || s), '') FROM generate_series(1, 400) s), false
  FROM generate_series(0, 4) g;
CREATE TABLE measurements (id int, at date, v int, PRIMARY KEY (id, at)) PARTITION BY RANGE (at);
CREATE TABLE measurements_jan PARTITION OF measurements FOR VALUES FROM ('2026-01-01') TO ('2026-02-01');
CREATE TABLE measurements_feb PARTITION OF measurements FOR VALUES FROM ('2026-02-01') TO ('2026-03-01');
CREATE TABLE \"Odd Names\" (\"Key\" text PRIMARY KEY, \"select\" int, bits bit varying(8), at interval);
CREATE TABLE scratch (n int);
INSERT INTO accounts (owner, balance) SELECT 'seed ' || g, g FROM generate_series(1, 30) g;
";

/// One writer transaction: inserts, updates (keys, FULL identity, unchanged TOAST), deletes
/// (with a cascade), a rolled-back savepoint, and rows in a partitioned table.
fn round(i: u64) -> String {
    format!(
        "BEGIN;
INSERT INTO accounts (owner, balance, note, tags, updated)
  VALUES ('owner {i}', {i} * 1.5, repeat('it''s ', {m7}), ARRAY['a', 'b {i}'], now());
UPDATE accounts SET balance = balance + 1, updated = now() WHERE id = {m20};
INSERT INTO events (account, payload) SELECT id, jsonb_build_object('n', {i}, 'q', 'x\"y') FROM accounts WHERE id = {m15};
DELETE FROM accounts WHERE id = {m40} AND {i} % 5 = 0;
INSERT INTO notes VALUES ('note {i}', {i} / 3.0), ('note {i}', NULL);
UPDATE notes SET score = score + 0.5 WHERE body = 'note {back3}';
DELETE FROM notes WHERE ctid = (SELECT ctid FROM notes WHERE body = 'note {back6}' LIMIT 1);
UPDATE big SET flag = NOT flag WHERE id = {m5};
SAVEPOINT s; INSERT INTO scratch VALUES (-1); ROLLBACK TO s;
INSERT INTO measurements VALUES ({i}, date '2026-01-01' + {m50}, {i});
INSERT INTO \"Odd Names\" VALUES ('k{i}', {i}, B'1010', interval '{i} minutes')
  ON CONFLICT (\"Key\") DO UPDATE SET \"select\" = EXCLUDED.\"select\";
COMMIT;",
        m7 = i % 7,
        m20 = i % 20 + 1,
        m15 = i % 15 + 1,
        m40 = (i * 7) % 40 + 1,
        m5 = i % 5,
        m50 = i % 50,
        back3 = i.saturating_sub(3),
        back6 = i.saturating_sub(6),
    )
}

/// Writers in the background, that can be paused between transactions.
struct Writers {
    pause: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    idle: Arc<AtomicBool>,
    done: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl Writers {
    async fn start(url: &str) -> Self {
        let client = backstop::pg::connect(&backstop::pg::parse_url(url).unwrap())
            .await
            .unwrap();
        let (pause, stop, idle, done) = (
            Arc::new(AtomicBool::new(false)),
            Arc::new(AtomicBool::new(false)),
            Arc::new(AtomicBool::new(false)),
            Arc::new(AtomicU64::new(0)),
        );
        let flags = (pause.clone(), stop.clone(), idle.clone(), done.clone());
        let task = tokio::spawn(async move {
            let (pause, stop, idle, done) = flags;
            let mut i = 0;
            while !stop.load(Ordering::SeqCst) {
                if pause.load(Ordering::SeqCst) {
                    idle.store(true, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    continue;
                }
                idle.store(false, Ordering::SeqCst);
                i += 1;
                client.batch_execute(&round(i)).await.unwrap();
                done.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(3)).await;
            }
        });
        Self {
            pause,
            stop,
            idle,
            done,
            task,
        }
    }

    async fn pause(&self) {
        self.pause.store(true, Ordering::SeqCst);
        while !self.idle.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    fn resume(&self) {
        self.idle.store(false, Ordering::SeqCst);
        self.pause.store(false, Ordering::SeqCst);
    }

    async fn stop(self) -> u64 {
        self.stop.store(true, Ordering::SeqCst);
        self.task.await.unwrap();
        self.done.load(Ordering::SeqCst)
    }
}

fn stream(db: &TestDb, store: &str, extra: &[&str]) -> serde_json::Value {
    let url = db.url();
    let mut args = vec!["stream", "--db", &url, "--to", store, "--json"];
    args.extend_from_slice(extra);
    let output = backstop_ok(&args, &[]);
    serde_json::from_slice(&output.stdout).unwrap()
}

/// `backstop restore` of `source`'s backups into `into`, as it ended.
fn try_restore(
    source: &TestDb,
    store: &str,
    into: &TestDb,
    extra: &[&str],
) -> std::process::Output {
    let url = into.url();
    let mut args = vec![
        "restore",
        "--from",
        store,
        "--database-id",
        &source.name,
        "--db",
        &url,
    ];
    args.extend_from_slice(extra);
    backstop(&args, &[])
}

fn restore(source: &TestDb, store: &str, into: &TestDb, extra: &[&str]) -> serde_json::Value {
    let mut extra = extra.to_vec();
    extra.push("--json");
    let output = try_restore(source, store, into, &extra);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

/// Every stored segment object of `db` in the file store under `dir/backups`.
fn stream_files(dir: &std::path::Path, db: &TestDb) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(dir.join(format!("backups/{}/stream", db.name)))
        .unwrap()
        .flat_map(|chain| std::fs::read_dir(chain.unwrap().path()).unwrap())
        .map(|e| e.unwrap().path())
        .collect()
}

fn now(db: &TestDb) -> String {
    db.psql(
        "SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')",
    )
    .trim()
    .to_string()
}

/// The dump with each table's rows in sorted order: pg_dump writes them in their physical
/// order, which replayed updates may change without changing the data.
pub(crate) fn canonical(dump: &str) -> String {
    let mut out = String::new();
    let mut rows: Option<Vec<&str>> = None;
    for line in dump.lines() {
        match &mut rows {
            Some(block) if line == "\\." => {
                block.sort_unstable();
                for row in block.drain(..) {
                    out.push_str(row);
                    out.push('\n');
                }
                rows = None;
                out.push_str(line);
                out.push('\n');
            }
            Some(block) => block.push(line),
            None => {
                out.push_str(line);
                out.push('\n');
                if line.starts_with("COPY ") && line.ends_with("FROM stdin;") {
                    rows = Some(Vec::new());
                }
            }
        }
    }
    out
}

/// The dump without its sequence values, and the values (which a restore to a time sets as the
/// next drain read them: at least as far).
fn split_sequences(dump: &str) -> (String, Vec<(String, i64)>) {
    let mut rest = String::new();
    let mut values = Vec::new();
    for line in dump.lines() {
        if let Some(call) = line.strip_prefix("SELECT pg_catalog.setval('") {
            let (name, tail) = call.split_once("', ").unwrap();
            let value = tail.split(',').next().unwrap().trim().parse().unwrap();
            values.push((name.to_string(), value));
        } else {
            rest.push_str(line);
            rest.push('\n');
        }
    }
    (rest, values)
}

async fn pitr_on(cluster: &'static PgCluster) {
    let db = fresh_database_on(cluster, "pitr source");
    db.psql(SCHEMA);
    let dir = tempfile::tempdir().unwrap();
    let store = format!("file://{}/backups", dir.path().display());

    let writers = Writers::start(&db.url()).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    // The first drain makes the slot; the stream then needs (and takes) its base.
    let first = stream(&db, &store, &[]);
    assert!(first["needs_base"].is_string(), "{first}");
    assert!(first["base_backup_id"].is_string(), "{first}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let second = stream(&db, &store, &[]);
    assert!(second["needs_base"].is_null(), "{second}");
    assert!(second["transactions"].as_u64().unwrap() > 0, "{second}");

    writers.pause().await;
    db.psql("TRUNCATE scratch; INSERT INTO scratch SELECT generate_series(1, 5);");
    let then = db.pg_dump();
    let at = now(&db);
    writers.resume();
    tokio::time::sleep(Duration::from_millis(600)).await;
    stream(&db, &store, &[]);
    tokio::time::sleep(Duration::from_millis(400)).await;
    let written = writers.stop().await;
    assert!(written > 20, "only {written} writer transactions ran");
    let last = stream(&db, &store, &[]);
    assert!(last["recoverable_through"].is_string(), "{last}");
    let listed = backstop_ok(&["list", "--from", &store], &[]);
    let listed = String::from_utf8_lossy(&listed.stdout);
    assert!(
        listed.contains(&format!(
            "{}: point-in-time recovery (restore --to-time) through {}",
            db.name,
            last["recoverable_through"].as_str().unwrap()
        )),
        "{listed}"
    );
    let end = canonical(&db.pg_dump());

    let at_time = fresh_database_on(cluster, "pitr at time");
    let report = restore(&db, &store, &at_time, &["--to-time", &at]);
    assert!(
        report["replayed"]["transactions"].as_u64().unwrap() > 0,
        "{report}"
    );
    let (expected, expected_sequences) = split_sequences(&canonical(&then));
    let (restored, restored_sequences) = split_sequences(&canonical(&at_time.pg_dump()));
    assert!(
        expected == restored,
        "the database restored to {at} differs from pg_dump then:\n{}",
        first_difference(&expected, &restored)
    );
    for ((name, value), (restored_name, restored_value)) in
        expected_sequences.iter().zip(&restored_sequences)
    {
        assert_eq!(name, restored_name);
        assert!(
            restored_value >= value,
            "{name} is at {restored_value}, behind {value}"
        );
    }

    let latest = fresh_database_on(cluster, "pitr latest");
    let report = restore(&db, &store, &latest, &[]);
    assert!(report["replayed"].is_object(), "{report}");
    let restored = canonical(&latest.pg_dump());
    assert!(
        end == restored,
        "the database restored to the newest change differs from pg_dump at the end:\n{}",
        first_difference(&end, &restored)
    );
}

fn first_difference(expected: &str, actual: &str) -> String {
    for (n, (e, a)) in expected.lines().zip(actual.lines()).enumerate() {
        if e != a {
            return format!("line {n}:\n  expected: {e}\n  restored: {a}");
        }
    }
    format!(
        "{} lines against {}",
        expected.lines().count(),
        actual.lines().count()
    )
}

macro_rules! pitr {
    ($($test:ident: $major:literal;)*) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $test() {
            let Some(cluster) = cluster_of($major) else {
                return;
            };
            pitr_on(cluster).await;
        }
    )*};
}

pitr! {
    a_restore_to_a_time_between_drains_is_that_moment_on_13: 13;
    a_restore_to_a_time_between_drains_is_that_moment_on_14: 14;
    a_restore_to_a_time_between_drains_is_that_moment_on_15: 15;
    a_restore_to_a_time_between_drains_is_that_moment_on_16: 16;
    a_restore_to_a_time_between_drains_is_that_moment_on_17: 17;
    a_restore_to_a_time_between_drains_is_that_moment_on_18: 18;
}

/// A drain that dies after storing its segment and before advancing the slot: the next drain
/// continues right after that segment, and the restore holds every row once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drain_killed_before_advancing_the_slot_loses_and_repeats_nothing() {
    let db = fresh_database_on(cluster(), "pitr crash");
    db.psql(SCHEMA);
    let dir = tempfile::tempdir().unwrap();
    let store_url = format!("file://{}/backups", dir.path().display());
    stream(&db, &store_url, &[]);
    for i in 1..=20 {
        db.psql(&round(i));
    }
    let store = open_from_env(&store_url.parse::<StoreUrl>().unwrap()).await;
    let pg = backstop::pg::parse_url(&db.url()).unwrap();
    let mut options = StreamOptions::new(DatabaseId::new(&db.name).unwrap());
    options.halt_before_advance = true;
    let halted = drain(&pg, store.clone(), &options).await;
    assert!(
        matches!(halted, Err(StreamError::Halted { .. })),
        "{halted:?}"
    );
    for i in 21..=30 {
        db.psql(&round(i));
    }
    options.halt_before_advance = false;
    let report = drain(&pg, store.clone(), &options).await.unwrap();
    assert!(report.new_chain.is_none(), "{report:?}");
    // Each segment starts where the one before it ended: nothing read twice, nothing skipped.
    let seals = stream_files(dir.path(), &db)
        .iter()
        .filter_map(|f| f.file_name().map(|n| n.to_string_lossy().to_string()))
        .filter(|n| n.ends_with(".json"))
        .collect::<std::collections::BTreeSet<_>>();
    let ranges: Vec<(String, String)> = seals
        .iter()
        .map(|n| {
            let (start, end) = n.trim_end_matches(".json").split_once('-').unwrap();
            (start.to_string(), end.to_string())
        })
        .collect();
    assert!(ranges.len() >= 3, "{ranges:?}");
    for pair in ranges.windows(2) {
        assert_eq!(
            pair[0].1, pair[1].0,
            "segments overlap or leave a gap: {ranges:?}"
        );
    }
    let restored = fresh_database_on(cluster(), "pitr crash restored");
    restore(&db, &store_url, &restored, &[]);
    assert!(
        canonical(&db.pg_dump()) == canonical(&restored.pg_dump()),
        "the restore lost or repeated a change"
    );
    // Restore-level verification of the base carries its scratch copy through the stream too.
    let scratch = cluster().url("postgres");
    let verified = backstop_ok(
        &[
            "verify",
            "--from",
            &store_url,
            "--database-id",
            &db.name,
            "--level",
            "restore",
            "--scratch-db",
            &scratch,
            "--json",
        ],
        &[],
    );
    let verified: serde_json::Value = serde_json::from_slice(&verified.stdout).unwrap();
    assert_eq!(verified["verdict"], "passed", "{verified}");
    assert!(verified["replayed_through"].is_string(), "{verified}");
    // The replay adds to both measured times: loaded stays at or under ready.
    let (Some(loaded), Some(ready)) = (
        verified["loaded_seconds"].as_f64(),
        verified["restore_seconds"].as_f64(),
    ) else {
        panic!("loaded and ready are measured: {verified}");
    };
    assert!(loaded <= ready, "{verified}");
}

/// What decoding cannot carry is said: a table without a replica identity is named with the
/// fix, and a restore past an UPDATE of it refuses instead of guessing; a schema change ends
/// the chain, takes a new base, and the newest point still restores exactly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreplayable_tables_and_schema_changes_are_said_not_hidden() {
    let db = fresh_database_on(cluster(), "pitr limits");
    db.psql(SCHEMA);
    db.psql("CREATE TABLE loose (a int, b text); INSERT INTO loose VALUES (1, 'one');");
    let dir = tempfile::tempdir().unwrap();
    let store = format!("file://{}/backups", dir.path().display());
    let first = stream(&db, &store, &[]);
    assert_eq!(
        first["unidentified_tables"],
        serde_json::json!(["public.loose", "public.scratch"]),
        "{first}"
    );
    let url = db.url();
    let output = backstop_ok(&["stream", "--db", &url, "--to", &store], &[]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("public.loose has no replica identity")
            && stdout.contains("ALTER TABLE public.loose REPLICA IDENTITY FULL"),
        "{stdout}"
    );

    // A schema change: the drain says so and takes a new base; the newest point restores.
    db.psql(&round(1));
    db.psql("ALTER TABLE accounts ADD COLUMN region text DEFAULT 'eu';");
    db.psql(&round(2));
    let changed = stream(&db, &store, &[]);
    assert_eq!(changed["schema_changed"], true, "{changed}");
    assert!(changed["base_backup_id"].is_string(), "{changed}");
    db.psql(&round(3));
    stream(&db, &store, &[]);
    let latest = fresh_database_on(cluster(), "pitr limits latest");
    restore(&db, &store, &latest, &[]);
    assert!(
        canonical(&db.pg_dump()) == canonical(&latest.pg_dump()),
        "the newest point after a schema change"
    );
    // Retention keeping only the newest base removes the segments before it, and the newest
    // point still restores.
    let pruned = backstop_ok(
        &[
            "prune",
            "--from",
            &store,
            "--database-id",
            &db.name,
            "--keep-last",
            "1",
            "--keep-stream-days",
            "0",
            "--json",
        ],
        &[],
    );
    let pruned: serde_json::Value = serde_json::from_slice(&pruned.stdout).unwrap();
    assert!(
        pruned["segments_removed"]["objects"].as_u64().unwrap() >= 2,
        "{pruned}"
    );
    let after_prune = fresh_database_on(cluster(), "pitr limits pruned");
    restore(&db, &store, &after_prune, &[]);
    assert!(canonical(&db.pg_dump()) == canonical(&after_prune.pg_dump()));

    // An UPDATE of the table without identity: named at the drain, refused at the restore.
    db.psql("UPDATE loose SET b = 'uno' WHERE a = 1;");
    let updated = stream(&db, &store, &[]);
    assert_eq!(
        updated["unreplayable"],
        serde_json::json!(["public.loose"]),
        "{updated}"
    );
    let refused = fresh_database_on(cluster(), "pitr limits refused");
    let output = try_restore(&db, &store, &refused, &[]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains("public.loose") && stderr.contains("REPLICA IDENTITY FULL"),
        "{stderr}"
    );
}

/// A slot the server invalidated (a small max_slot_wal_keep_size), and one past the cap, are
/// dropped: the drain says why, a new stream starts and a new base is taken.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalidated_or_oversized_slot_is_dropped_and_the_stream_restarts() {
    let server: &'static PgCluster = Box::leak(Box::new(fresh_cluster()));
    let db = fresh_database_on(server, "pitr lost slot");
    db.psql("CREATE TABLE t (id int PRIMARY KEY, v text);");
    let dir = tempfile::tempdir().unwrap();
    let store = format!("file://{}/backups", dir.path().display());
    let first = stream(&db, &store, &[]);
    assert_eq!(first["unlimited_slot_wal"], true, "{first}");
    let url = db.url();
    let doctor = backstop_ok(&["doctor", "--db", &url], &[]);
    let said = String::from_utf8_lossy(&doctor.stdout);
    assert!(
        said.contains("stream    WARN  max_slot_wal_keep_size is unlimited"),
        "{said}"
    );
    server.psql(
        "postgres",
        "ALTER SYSTEM SET max_slot_wal_keep_size = '1MB'",
    );
    server.psql("postgres", "SELECT pg_reload_conf()");
    let doctor = backstop_ok(&["doctor", "--db", &url], &[]);
    let said = String::from_utf8_lossy(&doctor.stdout);
    assert!(said.contains("a slot keeps at most 1MB of WAL"), "{said}");
    for _ in 0..4 {
        db.psql(
            "INSERT INTO t SELECT g, repeat('x', 100) FROM generate_series(1, 20000) g ON CONFLICT (id) DO UPDATE SET v = EXCLUDED.v || 'y';
             SELECT pg_switch_wal();",
        );
    }
    db.psql("CHECKPOINT;");
    let status = db.psql("SELECT wal_status FROM pg_replication_slots");
    assert_eq!(
        status.trim(),
        "lost",
        "the server did not invalidate the slot"
    );
    let lost = stream(&db, &store, &[]);
    assert!(
        lost["new_chain"].as_str().unwrap().contains("invalidated"),
        "{lost}"
    );
    assert!(lost["base_backup_id"].is_string(), "{lost}");

    // Past the cap Backstop drops the slot itself, before the server has to.
    db.psql("INSERT INTO t VALUES (-1, 'after');");
    let capped = stream(&db, &store, &["--max-slot-wal-mib", "0"]);
    assert!(
        capped["new_chain"]
            .as_str()
            .unwrap()
            .contains("past the cap"),
        "{capped}"
    );
    let restored = fresh_database_on(server, "pitr lost slot restored");
    restore(&db, &store, &restored, &[]);
    assert!(canonical(&db.pg_dump()) == canonical(&restored.pg_dump()));
}

/// The stream function on its schedule (moto for S3, SNS and CloudWatch): the first run makes
/// the slot and takes the base; a schema change is alerted and answered with a new base; the
/// recovery point's age and the changes stored are recorded; the store then restores.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stream_function_drains_alerts_and_takes_the_bases_it_needs() {
    use backstop_tests::moto::moto;
    use std::time::Duration;
    let db = fresh_database_on(cluster(), "stream lambda");
    db.psql(SCHEMA);
    let database = format!("stream-{}", backstop_tests::unique_suffix());
    let bucket = moto().new_bucket("stream").await;
    let inbox = moto().alert_inbox("stream").await;
    let aws = moto().sdk_config().await;
    let store_url = format!("s3://{bucket}/prod");
    let vars = [
        ("BACKSTOP_STORE", store_url.clone()),
        (
            "BACKSTOP_DATABASES",
            format!(r#"{{"{database}": {{"url_env": "STREAM_DATABASE_URL"}}}}"#),
        ),
        ("BACKSTOP_ALERT_TOPIC_ARN", inbox.topic_arn.clone()),
    ];
    let config = backstop::config::FunctionConfig::from_lookup(|k| {
        vars.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone())
    })
    .unwrap();
    let store = backstop::store::open(&config.store, &aws);
    let url = db.url();
    let env = Arc::new(move |name: &str| (name == "STREAM_DATABASE_URL").then(|| url.clone()));
    let deps = stream::Deps::new(common::Base::new(
        config,
        store,
        aws,
        env,
        stream::DEFAULT_NAME,
    ))
    .unwrap();
    let scheduled = serde_json::json!({
        "version": "0", "id": "tick-1", "detail-type": "Scheduled Event", "source": "aws.events",
        "account": "1", "time": "2026-12-01T00:00:00Z", "region": "eu-west-1", "resources": [], "detail": {}
    });
    let invoke = |payload: serde_json::Value| {
        crate::backup_lambda::invocation(payload, Duration::from_secs(600))
    };
    let first = stream::handler(invoke(scheduled.clone()), &deps)
        .await
        .unwrap();
    assert!(first.drained[0].base_backup.is_some(), "{first:?}");
    assert!(
        inbox.drain().await.is_empty(),
        "a stream that starts is not an alert"
    );

    db.psql(&round(1));
    db.psql("ALTER TABLE notes ADD COLUMN tag text;");
    db.psql(&round(2));
    let changed = stream::handler(invoke(serde_json::json!({"database": database})), &deps)
        .await
        .unwrap();
    assert!(changed.drained[0].base_backup.is_some(), "{changed:?}");
    let alerts = inbox.drain().await;
    assert!(
        alerts
            .iter()
            .any(|a| a.message.contains("stream_schema_changed")),
        "{alerts:?}"
    );
    db.psql(&round(3));
    stream::handler(invoke(scheduled), &deps).await.unwrap();
    assert!(
        crate::backup_lambda::metric_sum("RecoveryPointAgeSeconds", &database)
            .await
            .is_some()
    );
    assert!(
        crate::backup_lambda::metric_sum("ChangesBytes", &database)
            .await
            .unwrap()
            > 0.0
    );
    let restored = fresh_database_on(cluster(), "stream lambda restored");
    let into = restored.url();
    let output = backstop_ok(
        &[
            "restore",
            "--from",
            &store_url,
            "--database-id",
            &database,
            "--db",
            &into,
        ],
        &moto().env(),
    );
    assert!(String::from_utf8_lossy(&output.stdout).contains("replayed"));
    assert!(canonical(&db.pg_dump()) == canonical(&restored.pg_dump()));
}

/// An encrypted stream: segments are age files with the transactions and sequences sealed
/// away; a restore reads them only with the identity, and says whose it needs without one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_encrypted_change_stream_restores_only_with_its_identity() {
    let db = fresh_database_on(cluster(), "pitr sealed");
    db.psql(SCHEMA);
    let dir = tempfile::tempdir().unwrap();
    let store = format!("file://{}/backups", dir.path().display());
    let (secret, recipient) = backstop::engine::encryption::generate();
    let key = dir.path().join("restore.key");
    std::fs::write(&key, secret).unwrap();
    stream(&db, &store, &["--recipient", &recipient]);
    for i in 1..=5 {
        db.psql(&round(i));
    }
    stream(&db, &store, &["--recipient", &recipient]);
    let files = stream_files(dir.path(), &db);
    assert!(
        files
            .iter()
            .any(|f| f.to_string_lossy().ends_with(".changes.zst.age"))
    );
    for file in &files {
        let text = String::from_utf8_lossy(&std::fs::read(file).unwrap()).to_string();
        assert!(
            !text.contains("owner 3") && !text.contains("accounts_id_seq"),
            "{} holds plaintext",
            file.display()
        );
    }
    let without = fresh_database_on(cluster(), "pitr sealed refused");
    let output = try_restore(&db, &store, &without, &[]);
    assert!(!output.status.success());
    assert!(
        String::from_utf8_lossy(&output.stderr).contains(&recipient),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let restored = fresh_database_on(cluster(), "pitr sealed restored");
    restore(
        &db,
        &store,
        &restored,
        &["--identity", key.to_str().unwrap()],
    );
    assert!(canonical(&db.pg_dump()) == canonical(&restored.pg_dump()));
}

/// A seal records, per transaction, every table it touched and how: rows inserted, updated
/// and deleted, and TRUNCATEs, each table of a TRUNCATE that names several counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seal_records_the_tables_each_transaction_touched() {
    let db = fresh_database_on(cluster(), "pitr touched tables");
    db.psql(
        "CREATE TABLE orders (id int PRIMARY KEY, item text);
         CREATE SCHEMA app;
         CREATE TABLE app.\"Users\" (id int PRIMARY KEY, name text);
         INSERT INTO app.\"Users\" VALUES (1, 'a'), (2, 'b'), (3, 'c');
         CREATE TABLE audit_log (line text);
         CREATE TABLE audit_archive (line text);
         INSERT INTO audit_log VALUES ('x');
         CREATE TABLE untouched (n int PRIMARY KEY);",
    );
    let dir = tempfile::tempdir().unwrap();
    let store_url = format!("file://{}/backups", dir.path().display());
    stream(&db, &store_url, &[]);
    db.psql(
        "BEGIN;
         INSERT INTO orders VALUES (1, 'pen'), (2, 'ink');
         UPDATE app.\"Users\" SET name = upper(name) WHERE id <= 2;
         DELETE FROM app.\"Users\" WHERE id = 3;
         TRUNCATE audit_log, audit_archive;
         TRUNCATE audit_log;
         COMMIT;",
    );
    let store = open_from_env(&store_url.parse::<StoreUrl>().unwrap()).await;
    let pg = backstop::pg::parse_url(&db.url()).unwrap();
    let options = StreamOptions::new(DatabaseId::new(&db.name).unwrap());
    let report = drain(&pg, store, &options).await.unwrap();
    assert_eq!(report.transactions, 1, "{report:?}");
    let transactions: Vec<Transaction> = report
        .segments
        .iter()
        .flat_map(|key| {
            let bytes = std::fs::read(dir.path().join("backups").join(key)).unwrap();
            let seal = Segment::open(key, &bytes, None).unwrap();
            assert!(seal.records_tables(), "{key}");
            seal.transactions
        })
        .collect();
    let [transaction] = transactions.as_slice() else {
        panic!("one transaction: {transactions:?}");
    };
    let touch = |table: &str, [inserts, updates, deletes, truncates]: [u64; 4]| TableTouch {
        table: table.to_string(),
        inserts,
        updates,
        deletes,
        truncates,
    };
    assert_eq!(
        transaction.tables,
        vec![
            touch("app.\"Users\"", [0, 2, 1, 0]),
            touch("public.audit_archive", [0, 0, 0, 1]),
            touch("public.audit_log", [0, 0, 0, 2]),
            touch("public.orders", [2, 0, 0, 0]),
        ]
    );
}

/// Drains through a session-mode pooler (a managed database's pooler port): the slot's SQL
/// functions need no replication connection, and the restore is exact.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_change_stream_drains_through_a_session_pooler() {
    let db = fresh_database_on(cluster(), "pitr pooler");
    db.psql(SCHEMA);
    let dir = tempfile::tempdir().unwrap();
    let store = format!("file://{}/backups", dir.path().display());
    let pooled = backstop_tests::pgbouncer::session_pgbouncer().url(&db.name);
    let drain = |extra: &[&str]| {
        let mut args = vec![
            "stream",
            "--db",
            &pooled,
            "--to",
            &store,
            "--database-id",
            &db.name,
            "--json",
        ];
        args.extend_from_slice(extra);
        let output = backstop_ok(&args, &[]);
        serde_json::from_slice::<serde_json::Value>(&output.stdout).unwrap()
    };
    assert!(drain(&[])["base_backup_id"].is_string());
    for i in 1..=10 {
        db.psql(&round(i));
    }
    let drained = drain(&[]);
    assert!(drained["changes"].as_u64().unwrap() > 50, "{drained}");
    let restored = fresh_database_on(cluster(), "pitr pooler restored");
    restore(&db, &store, &restored, &[]);
    assert!(canonical(&db.pg_dump()) == canonical(&restored.pg_dump()));
}

/// `--to-time` without a change stream restores the newest backup taken before that time and
/// says how far it is from it; a time before every backup is refused, naming the oldest.
#[test]
fn to_time_without_a_stream_restores_the_newest_backup_before_it() {
    let db = fresh_database("to time without stream");
    db.psql("CREATE TABLE ledger (id int); INSERT INTO ledger VALUES (1)");
    let dir = tempfile::tempdir().unwrap();
    let store = format!("file://{}/store", dir.path().display());
    let stamp = || {
        time::OffsetDateTime::now_utc()
            .replace_nanosecond(0)
            .unwrap()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap()
    };
    let before_all = stamp();
    std::thread::sleep(std::time::Duration::from_millis(1100));
    backstop_ok(&["backup", "--db", &db.url(), "--to", &store], &[]);
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let between = stamp();
    db.psql("INSERT INTO ledger VALUES (2)");
    backstop_ok(&["backup", "--db", &db.url(), "--to", &store], &[]);

    let target = fresh_database("to time without stream target");
    let restored = backstop_ok(
        &[
            "restore",
            "--from",
            &store,
            "--database-id",
            &db.name,
            "--db",
            &target.url(),
            "--to-time",
            &between,
        ],
        &[],
    );
    assert_eq!(
        target.psql("SELECT array_agg(id) FROM ledger").trim(),
        "{1}"
    );
    let said = String::from_utf8_lossy(&restored.stderr);
    assert!(
        said.contains("has no change stream: restoring backup") && said.contains(" before "),
        "{said}"
    );

    let empty = fresh_database("to time without stream too early");
    let line = single_error_line(&backstop(
        &[
            "restore",
            "--from",
            &store,
            "--database-id",
            &db.name,
            "--db",
            &empty.url(),
            "--to-time",
            &before_all,
        ],
        &[],
    ));
    assert!(
        line.contains("no backup of") && line.contains("the oldest is"),
        "{line}"
    );
    assert_eq!(
        empty
            .psql("SELECT count(*) FROM pg_class WHERE relname = 'ledger'")
            .trim(),
        "0"
    );
}
