//! Incremental backups: table data stored as shared chunks, each stored once for the database.
//! A backup after a few changes stores about what changed, an unchanged database almost
//! nothing; every set restores pg_dump-identical, exports a plain script and passes deep
//! verification; a damaged or missing chunk is named, and a restore changes nothing then.

use std::path::{Path, PathBuf};

use backstop_tests::postgres::{PgCluster, TestDb, cluster_of, fresh_database, fresh_database_on};
use serde_json::Value;

use crate::engine::assert_same_dump;
use crate::support::{backstop, backstop_ok};

/// An application-shaped database: an append-only events table, static reference data and a
/// hot table with updates.
pub(crate) fn application(label: &str) -> TestDb {
    application_on(fresh_database(label))
}

fn application_on(db: TestDb) -> TestDb {
    db.psql(
        "CREATE TABLE public.events (id bigint PRIMARY KEY, at timestamptz NOT NULL, kind text, payload text);
         INSERT INTO public.events SELECT g, '2026-01-01'::timestamptz + g * interval '1 second',
             'kind-' || (g % 17), md5(g::text) || repeat(chr(97 + g % 26), 60) FROM generate_series(1, 120000) g;
         CREATE TABLE public.countries (code text PRIMARY KEY, name text, notes text);
         INSERT INTO public.countries SELECT 'c' || g, 'country ' || g, repeat(md5(g::text), 4) FROM generate_series(1, 20000) g;
         CREATE TABLE public.accounts (id int PRIMARY KEY, balance numeric NOT NULL, touched int NOT NULL DEFAULT 0);
         INSERT INTO public.accounts SELECT g, g * 10, 0 FROM generate_series(1, 20000) g;
         CREATE TABLE public.tiny (id int PRIMARY KEY);
         INSERT INTO public.tiny VALUES (1), (2);",
    );
    db
}

/// 1 % more events and 2 % of accounts updated.
pub(crate) fn change(db: &TestDb, round: u32) {
    db.psql(&format!(
        "INSERT INTO public.events SELECT g, now(), 'late', md5(g::text) FROM generate_series({from}, {to}) g;
         UPDATE public.accounts SET balance = balance + 1, touched = touched + 1 WHERE id % 50 = {round};",
        from = 1_000_000 * round,
        to = 1_000_000 * round + 1200,
    ));
}

fn backup(db: &TestDb, store: &str, env: &[(&str, String)], extra: &[&str]) -> Value {
    let url = db.url();
    let mut args = vec![
        "backup",
        "--db",
        &url,
        "--to",
        store,
        "--incremental",
        "--json",
    ];
    args.extend_from_slice(extra);
    let output = backstop_ok(&args, env);
    eprint!("{}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice(&output.stdout).unwrap()
}

fn restore(store: &str, db: &TestDb, backup_id: &str, extra: &[&str]) -> TestDb {
    let target = fresh_database_on(db.cluster(), "incremental restored");
    let url = target.url();
    let mut args = vec![
        "restore",
        "--from",
        store,
        "--database-id",
        &db.name,
        "--backup",
        backup_id,
        "--db",
        &url,
    ];
    args.extend_from_slice(extra);
    backstop_ok(&args, &[]);
    target
}

/// Every chunk object under the store's database folder.
fn chunk_files(root: &Path, database: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut pending = vec![root.join(database).join("chunks")];
    while let Some(dir) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                pending.push(path);
            } else if !path.file_name().unwrap().to_string_lossy().starts_with('.') {
                found.push(path);
            }
        }
    }
    found.sort();
    found
}

fn number(summary: &Value, field: &str) -> u64 {
    summary[field]
        .as_u64()
        .unwrap_or_else(|| panic!("{field} in {summary}"))
}

#[test]
fn each_backup_stores_what_changed_and_every_set_restores_identically() {
    let source = application("incremental");
    let dir = tempfile::tempdir().unwrap();
    let store = format!("file://{}", dir.path().display());

    let first = backup(&source, &store, &[], &[]);
    let first_dump = source.pg_dump();
    let full = number(&first, "bytes");
    assert_eq!(
        number(&first, "new_bytes"),
        full,
        "the first set stores it all"
    );
    assert!(!chunk_files(dir.path(), &source.name).is_empty());

    change(&source, 1);
    let second = backup(&source, &store, &[], &[]);
    let second_dump = source.pg_dump();
    let added = number(&second, "new_bytes");
    assert!(
        added * 4 < full,
        "after 1 % appended and 2 % updated, {added} bytes added of a {full}-byte set"
    );
    // The set's own size is still the whole database's.
    assert!(number(&second, "bytes") * 10 > full * 9, "{second}");

    let unchanged = backup(&source, &store, &[], &[]);
    let added = number(&unchanged, "new_bytes");
    assert!(
        added * 20 < full,
        "an unchanged database: {added} bytes added of a {full}-byte set"
    );

    for (summary, dump, what) in [
        (&first, &first_dump, "first"),
        (&second, &second_dump, "second"),
        (&unchanged, &second_dump, "unchanged"),
    ] {
        let id = summary["backup_id"].as_str().unwrap();
        let target = restore(&store, &source, id, &[]);
        assert_same_dump(dump, &target.pg_dump(), what);
        backstop_ok(
            &[
                "verify",
                "--from",
                &store,
                "--database-id",
                &source.name,
                "--backup",
                id,
                "--level",
                "deep",
            ],
            &[],
        );
    }

    // `export` still writes one plain script.
    let script = dir.path().join("export.sql");
    backstop_ok(
        &[
            "export",
            "--from",
            &store,
            "--database-id",
            &source.name,
            "-o",
            script.to_str().unwrap(),
        ],
        &[],
    );
    let target = fresh_database("incremental exported");
    target.psql_file(&script);
    assert_same_dump(&second_dump, &target.pg_dump(), "exported");

    // `list` shows each set's own bytes and what it added.
    let listed = backstop_ok(
        &[
            "list",
            "--from",
            &store,
            "--database-id",
            &source.name,
            "--json",
        ],
        &[],
    );
    let listed: Vec<Value> = serde_json::from_slice(&listed.stdout).unwrap();
    assert_eq!(listed.len(), 3);
    assert!(
        listed
            .iter()
            .all(|e| number(e, "new_bytes") <= number(e, "bytes"))
    );
}

#[test]
fn a_damaged_or_missing_chunk_is_named_and_a_restore_changes_nothing() {
    let source = application("incremental damaged");
    let dir = tempfile::tempdir().unwrap();
    let store = format!("file://{}", dir.path().display());
    let summary = backup(&source, &store, &[], &[]);
    let id = summary["backup_id"].as_str().unwrap().to_string();
    let chunks = chunk_files(dir.path(), &source.name);
    let victim = chunks.last().unwrap().clone();
    let name = victim.file_stem().unwrap().to_string_lossy().to_string();
    let chunk_id = &name[..12];

    let mut bytes = std::fs::read(&victim).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    std::fs::write(&victim, &bytes).unwrap();
    let verify = |level: &str| {
        backstop(
            &[
                "verify",
                "--from",
                &store,
                "--database-id",
                &source.name,
                "--level",
                level,
                "--json",
            ],
            &[],
        )
    };
    let deep = verify("deep");
    assert_eq!(deep.status.code(), Some(1));
    let report = String::from_utf8_lossy(&deep.stdout);
    assert!(
        report.contains(chunk_id) && report.contains("SHA-256"),
        "{report}"
    );

    // A restore over a database in use reads every part first: nothing is dropped.
    let target = fresh_database("incremental target");
    target.psql("CREATE TABLE public.keep (id int); INSERT INTO public.keep VALUES (7);");
    let refused = backstop(
        &[
            "restore",
            "--from",
            &store,
            "--database-id",
            &source.name,
            "--backup",
            &id,
            "--db",
            &target.url(),
            "--clean",
        ],
        &[],
    );
    assert_eq!(refused.status.code(), Some(1));
    let line = String::from_utf8_lossy(&refused.stderr);
    assert!(line.contains(chunk_id), "{line}");
    assert_eq!(target.psql("SELECT id FROM public.keep").trim(), "7");

    std::fs::remove_file(&victim).unwrap();
    let cheap = verify("manifest");
    assert_eq!(cheap.status.code(), Some(1));
    let report = String::from_utf8_lossy(&cheap.stdout);
    assert!(
        report.contains(&name[..64]) && report.contains("missing"),
        "{report}"
    );
}

#[test]
fn an_encrypted_incremental_backup_needs_its_chunk_key_and_keeps_nothing_readable() {
    let source = application("incremental encrypted");
    let dir = tempfile::tempdir().unwrap();
    let store = format!("file://{}", dir.path().join("store").display());
    let key = dir.path().join("restore.key");
    let output = backstop_ok(&["keygen", "-o", key.to_str().unwrap()], &[]);
    let recipient = String::from_utf8_lossy(&output.stdout).trim().to_string();
    let chunk_key = ("BACKSTOP_CHUNK_KEY", "5e".repeat(32));

    // Without a chunk key an encrypted backup stores whole parts.
    let whole = backup(&source, &store, &[], &["--recipient", &recipient]);
    assert_eq!(number(&whole, "new_bytes"), number(&whole, "bytes"));
    assert!(chunk_files(&dir.path().join("store"), &source.name).is_empty());

    let first = backup(
        &source,
        &store,
        std::slice::from_ref(&chunk_key),
        &["--recipient", &recipient],
    );
    change(&source, 1);
    let second = backup(
        &source,
        &store,
        std::slice::from_ref(&chunk_key),
        &["--recipient", &recipient],
    );
    let dump = source.pg_dump();
    let added = number(&second, "new_bytes");
    assert!(
        added * 4 < number(&first, "bytes"),
        "{added} bytes added of {first}"
    );
    let chunks = chunk_files(&dir.path().join("store"), &source.name);
    assert!(!chunks.is_empty());
    for chunk in &chunks {
        assert!(
            chunk.to_string_lossy().ends_with(".zst.age"),
            "{}",
            chunk.display()
        );
        let bytes = std::fs::read(chunk).unwrap();
        assert!(
            zstd::decode_all(bytes.as_slice()).is_err(),
            "{} is readable",
            chunk.display()
        );
        assert!(!String::from_utf8_lossy(&bytes).contains("customer"));
    }
    let id = second["backup_id"].as_str().unwrap();
    let target = restore(&store, &source, id, &["--identity", key.to_str().unwrap()]);
    assert_same_dump(&dump, &target.pg_dump(), "encrypted incremental");

    // The recipients change (one removed, say): with the same chunk key, the next set names
    // none of the chunks encrypted to the old ones, so only the new identity reads it.
    let new_key = dir.path().join("new.key");
    let output = backstop_ok(&["keygen", "-o", new_key.to_str().unwrap()], &[]);
    let new_recipient = String::from_utf8_lossy(&output.stdout).trim().to_string();
    let rotated = backup(
        &source,
        &store,
        std::slice::from_ref(&chunk_key),
        &["--recipient", &new_recipient],
    );
    assert_eq!(
        number(&rotated, "new_bytes"),
        number(&rotated, "bytes"),
        "nothing is shared across recipients"
    );
    let id = rotated["backup_id"].as_str().unwrap();
    let target = restore(
        &store,
        &source,
        id,
        &["--identity", new_key.to_str().unwrap()],
    );
    assert_same_dump(&dump, &target.pg_dump(), "after the recipients changed");
    let old_reader = backstop(
        &[
            "restore",
            "--from",
            &store,
            "--database-id",
            &source.name,
            "--backup",
            id,
            "--db",
            &fresh_database("old identity").url(),
            "--identity",
            key.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(
        old_reader.status.code(),
        Some(1),
        "the old identity reads nothing"
    );
}

#[tokio::test]
async fn the_chunk_sweep_waits_for_a_running_backup() {
    use backstop::layout::DatabaseId;
    use backstop::retention::{Policy, PruneOptions, prune};
    use backstop::store::{FileStore, Store};
    use std::sync::Arc;

    let source = application("incremental sweep waits");
    let dir = tempfile::tempdir().unwrap();
    let store_url = format!("file://{}", dir.path().display());
    backup(&source, &store_url, &[], &[]);
    source.psql("UPDATE public.events SET kind = upper(kind)");
    backup(&source, &store_url, &[], &[]);
    let store: Arc<dyn Store> = Arc::new(FileStore::new(dir.path().to_path_buf()));
    let database = DatabaseId::new(&source.name).unwrap();
    let options = PruneOptions {
        policy: Policy {
            last: 1,
            ..Policy::default()
        },
        dry_run: false,
        max_deletions: 10,
        now: time::OffsetDateTime::now_utc() + time::Duration::hours(2),
        stream_window: backstop::retention::DEFAULT_STREAM_WINDOW,
    };
    let before = chunk_files(dir.path(), &source.name);
    let running = backstop::lease::acquire(
        store.clone(),
        &backstop::lease::lease_key(&database, "backup"),
        "a backup in progress",
        std::time::Duration::from_secs(60),
    )
    .await
    .unwrap();
    let report = prune(store.as_ref(), &database, &options).await.unwrap();
    assert_eq!(report.deleted.len(), 1, "the older set goes");
    let why = report.chunks.postponed.clone().unwrap_or_default();
    assert!(why.contains("a backup in progress"), "{report:?}");
    assert!(
        report.summary().contains("a backup is running"),
        "{}",
        report.summary()
    );
    assert_eq!(
        chunk_files(dir.path(), &source.name),
        before,
        "no chunk went"
    );
    running.release().await.unwrap();

    // A set of a newer format may name chunks where this version does not look: nothing goes.
    let kept = report.kept[0].backup_id.clone();
    let manifest_path = dir
        .path()
        .join(&source.name)
        .join(&kept)
        .join("manifest.json");
    let original = std::fs::read(&manifest_path).unwrap();
    let mut newer: Value = serde_json::from_slice(&original).unwrap();
    newer["format_version"] = Value::from(99);
    std::fs::write(&manifest_path, serde_json::to_vec(&newer).unwrap()).unwrap();
    let report = prune(store.as_ref(), &database, &options).await.unwrap();
    let why = report.chunks.postponed.clone().unwrap_or_default();
    assert!(why.contains("newer format"), "{report:?}");
    assert_eq!(
        chunk_files(dir.path(), &source.name),
        before,
        "no chunk went"
    );
    std::fs::write(&manifest_path, &original).unwrap();

    let report = prune(store.as_ref(), &database, &options).await.unwrap();
    assert!(report.chunks.removed > 0, "{report:?}");
    assert!(chunk_files(dir.path(), &source.name).len() < before.len());
}

/// How each table's rows came to the newest set: `table -> read | wal-summary`.
fn proofs(
    root: &Path,
    database: &str,
    backup_id: &str,
) -> std::collections::BTreeMap<String, String> {
    let text = std::fs::read(root.join(database).join(backup_id).join("manifest.json")).unwrap();
    let manifest: Value = serde_json::from_slice(&text).unwrap();
    let mut proofs = std::collections::BTreeMap::new();
    for part in manifest["parts"].as_array().unwrap() {
        let blocks = part["table"]
            .as_object()
            .map(|t| vec![Value::Object(t.clone())])
            .unwrap_or_else(|| part["bundle"].as_array().cloned().unwrap_or_default());
        for block in blocks {
            proofs.insert(
                block["qualified_name"].as_str().unwrap().to_string(),
                block["proof"]["how"].as_str().unwrap_or("-").to_string(),
            );
        }
    }
    proofs
}

/// Turns the WAL summarizer on (once per cluster) and waits until it runs.
fn summarize_wal(cluster: &PgCluster) {
    cluster.psql("postgres", "ALTER SYSTEM SET summarize_wal = on");
    cluster.psql("postgres", "SELECT pg_reload_conf()");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while cluster
        .psql(
            "postgres",
            "SELECT summarizer_pid FROM pg_get_wal_summarizer_state()",
        )
        .trim()
        .parse::<i64>()
        .unwrap_or(-1)
        <= 0
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the WAL summarizer did not start"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

async fn tables_proven_unchanged_are_named_not_read(major: u32) {
    let Some(cluster) = cluster_of(major) else {
        return;
    };
    summarize_wal(cluster);
    let source = application_on(fresh_database_on(cluster, &format!("unchanged {major}")));
    source.psql(
        "CREATE UNLOGGED TABLE public.scratch (id int); INSERT INTO public.scratch VALUES (1);",
    );
    // No autovacuum between the steps, and every change settled (hint bits, visibility) by a
    // VACUUM before the backup after it: reading rows for the first time after they were
    // written sets their hint bits, which (with data checksums, as 18 initializes by default)
    // writes the block, and the next backup must then read the table again.
    for table in ["events", "countries", "accounts", "tiny"] {
        source.psql(&format!(
            "ALTER TABLE public.{table} SET (autovacuum_enabled = off)"
        ));
    }
    // The harness's servers commit asynchronously: a hint bit is only set once a commit is
    // flushed, so the VACUUMs below follow a flush (a checkpoint, or synchronous commits).
    source.psql("CHECKPOINT");
    source.psql("VACUUM");
    // A summary runs from one checkpoint to the next: without one here, the first summary
    // would still hold the database's creation, which says every file of it is new.
    source.psql("CHECKPOINT");
    let dir = tempfile::tempdir().unwrap();
    let store = format!("file://{}", dir.path().display());
    let run = |what: &str| {
        let summary = backup(&source, &store, &[("RUST_LOG", "info".into())], &[]);
        let id = summary["backup_id"].as_str().unwrap().to_string();
        eprintln!("{what}: {summary}");
        (id, summary)
    };
    let read_all = |proofs: &std::collections::BTreeMap<String, String>| {
        proofs.values().all(|how| how == "read")
    };

    // A transaction in progress at the first backup's snapshot commits after it: its row is
    // in no block written later, so nothing can be proven and everything is read.
    let (client, connection) = tokio_postgres::connect(&source.url(), tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    client
        .batch_execute("BEGIN; INSERT INTO public.countries VALUES ('late', 'in progress', 'x')")
        .await
        .unwrap();
    let (first, _) = run("first");
    client
        .batch_execute("SET LOCAL synchronous_commit = on; COMMIT")
        .await
        .unwrap();
    source.psql("VACUUM public.countries");
    assert!(read_all(&proofs(dir.path(), &source.name, &first)));
    let (second, _) = run("after a transaction in progress committed");
    let proven = proofs(dir.path(), &source.name, &second);
    let first_manifest = std::fs::read_to_string(
        dir.path()
            .join(&source.name)
            .join(&first)
            .join("manifest.json"),
    )
    .unwrap();
    let first_manifest: Value = serde_json::from_str(&first_manifest).unwrap();
    assert!(
        read_all(&proven),
        "{proven:?} {}",
        first_manifest["snapshot"]
    );
    let dump = source.pg_dump();
    let target = restore(&store, &source, &second, &[]);
    assert_same_dump(&dump, &target.pg_dump(), "with the late row");

    // Only the hot table changes: the tables not bundled with it are named from the set
    // before; it goes into a bundle apart from those that did not change.
    change_accounts(&source);
    let (third, _) = run("accounts changed");
    let third_dump = source.pg_dump();
    let proven = proofs(dir.path(), &source.name, &third);
    assert_eq!(proven["public.accounts"], "read", "{proven:?}");
    assert_eq!(proven["public.scratch"], "read", "unlogged: {proven:?}");
    assert_eq!(proven["public.events"], "wal-summary", "{proven:?}");

    // Nothing changed: nothing logged is read, and almost nothing is stored.
    let (fourth, summary) = run("unchanged");
    let proven = proofs(dir.path(), &source.name, &fourth);
    assert!(
        proven
            .iter()
            .all(|(table, how)| how == "wal-summary" || table == "public.scratch"),
        "{proven:?}"
    );
    assert!(
        number(&summary, "new_bytes") * 100 < number(&summary, "bytes"),
        "{summary}"
    );

    // A rewrite gives the table new files: it is read again.
    source.psql("VACUUM FULL public.countries");
    let (fifth, _) = run("countries rewritten");
    let proven = proofs(dir.path(), &source.name, &fifth);
    assert_eq!(proven["public.countries"], "read", "{proven:?}");
    assert_eq!(proven["public.events"], "wal-summary", "{proven:?}");

    // A column dropped and added again changes how the same bytes read, without a write.
    source.psql("ALTER TABLE public.events DROP COLUMN kind, ADD COLUMN kind text");
    let (sixth, _) = run("a column dropped and added");
    let sixth_dump = source.pg_dump();
    let proven = proofs(dir.path(), &source.name, &sixth);
    assert_eq!(proven["public.events"], "read", "{proven:?}");

    for (id, dump) in [
        (&third, &third_dump),
        (&fourth, &third_dump),
        (&fifth, &third_dump),
        (&sixth, &sixth_dump),
    ] {
        let target = restore(&store, &source, id, &[]);
        assert_same_dump(dump, &target.pg_dump(), id);
    }
    let _ = first;
}

/// 2 % of accounts updated.
fn change_accounts(db: &TestDb) {
    db.psql(
        "SET synchronous_commit = on; UPDATE public.accounts SET balance = balance + 1 WHERE id % 50 = 7",
    );
    db.psql("VACUUM public.accounts");
}

#[tokio::test(flavor = "multi_thread")]
async fn tables_proven_unchanged_by_wal_summaries_are_named_not_read_on_17() {
    tables_proven_unchanged_are_named_not_read(17).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn tables_proven_unchanged_by_wal_summaries_are_named_not_read_on_18() {
    tables_proven_unchanged_are_named_not_read(18).await;
}

/// The parts of a set that carry their table by row deltas: table, number of deltas.
fn delta_parts(
    root: &Path,
    database: &str,
    backup_id: &str,
) -> std::collections::BTreeMap<String, usize> {
    let text = std::fs::read(root.join(database).join(backup_id).join("manifest.json")).unwrap();
    let manifest: Value = serde_json::from_slice(&text).unwrap();
    manifest["parts"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|part| {
            let starts = part["deltas"]["starts"].as_array()?;
            Some((
                part["table"]["qualified_name"].as_str()?.to_string(),
                starts.len(),
            ))
        })
        .collect()
}

/// With a change stream running, an incremental backup drains it and reads only the tables
/// its transactions touched; of those, a table with a key stores only its changed rows (a
/// delta on the previous part), until the deltas grow too big beside the base. Every set
/// restores to the source's rows; a truncated table is read whole.
async fn the_change_stream_says_what_to_read_and_which_rows_to_store(major: u32) {
    let Some(cluster) = cluster_of(major) else {
        return;
    };
    let source = application_on(fresh_database_on(
        cluster,
        &format!("stream deltas {major}"),
    ));
    // A deferrable key is no replica identity: the stream cannot say which row an UPDATE of
    // its key moved, so the table is never stored as a delta.
    source.psql(
        "CREATE TABLE public.deferred (id int PRIMARY KEY DEFERRABLE, v text NOT NULL);
         INSERT INTO public.deferred SELECT g, repeat(md5(g::text), 4) FROM generate_series(1, 5000) g;",
    );
    let dir = tempfile::tempdir().unwrap();
    let store = format!("file://{}", dir.path().display());
    let url = source.url();
    // The first drain makes the slot and takes its base; the first incremental set reads all.
    backstop_ok(&["stream", "--db", &url, "--to", &store], &[]);
    let run = |what: &str| {
        let summary = backup(&source, &store, &[("RUST_LOG", "info".into())], &[]);
        eprintln!("{what}: {summary}");
        (summary["backup_id"].as_str().unwrap().to_string(), summary)
    };
    let (first, _) = run("first");
    assert!(
        proofs(dir.path(), &source.name, &first)
            .values()
            .all(|how| how == "read")
    );

    // Nothing changed: no table is read, almost nothing stored.
    let (unchanged, summary) = run("unchanged");
    let proven = proofs(dir.path(), &source.name, &unchanged);
    assert!(proven.values().all(|how| how == "stream"), "{proven:?}");
    assert!(
        number(&summary, "new_bytes") * 100 < number(&summary, "bytes"),
        "{summary}"
    );

    // Events appended, accounts updated: events (a part of its own) is read and stored as a
    // delta; accounts, bundled with the reference tables until now, is read into a part of
    // its own; the reference tables are named from the set before.
    change(&source, 1);
    source.psql("UPDATE public.deferred SET v = v || 'x' WHERE id = 1");
    let (changed, summary) = run("changed");
    let changed_dump = source.pg_dump();
    let proven = proofs(dir.path(), &source.name, &changed);
    assert_eq!(proven["public.accounts"], "read", "{proven:?}");
    let deltas = delta_parts(dir.path(), &source.name, &changed);
    assert_eq!(deltas.get("public.events"), Some(&1), "{deltas:?}");
    assert!(!deltas.contains_key("public.accounts"), "{deltas:?}");

    // The next change: both tables store only their changed rows.
    change(&source, 2);
    let (again, summary_again) = run("changed again");
    let again_dump = source.pg_dump();
    let proven = proofs(dir.path(), &source.name, &again);
    assert_eq!(proven["public.countries"], "stream", "{proven:?}");
    let deltas = delta_parts(dir.path(), &source.name, &again);
    assert_eq!(deltas.get("public.events"), Some(&2), "{deltas:?}");
    assert_eq!(deltas.get("public.accounts"), Some(&1), "{deltas:?}");
    let changed_rows: u64 = source
        .psql(
            "SELECT (SELECT sum(pg_column_size(e.*)) FROM public.events e WHERE id >= 2000000) \
             + (SELECT sum(pg_column_size(a.*)) FROM public.accounts a WHERE id % 50 = 2)",
        )
        .trim()
        .parse()
        .unwrap();
    eprintln!("changed rows: {changed_rows} bytes before compression; {summary}");
    assert!(
        number(&summary_again, "new_bytes") < changed_rows,
        "{summary_again}"
    );

    // Deletes, a key changed, an update of a row inserted since: one more delta on each.
    source.psql(
        "DELETE FROM public.accounts WHERE id BETWEEN 100 AND 140;
         UPDATE public.accounts SET id = 500000 WHERE id = 7;
         UPDATE public.events SET kind = 'edited' WHERE id = 1000001;
         INSERT INTO public.accounts VALUES (600000, 1, 1);
         UPDATE public.deferred SET id = id + 100000 WHERE id % 100 = 5;",
    );
    let (second, _) = run("deletes and a key change");
    let second_dump = source.pg_dump();
    let deltas = delta_parts(dir.path(), &source.name, &second);
    assert_eq!(deltas.get("public.accounts"), Some(&2), "{deltas:?}");
    assert_eq!(deltas.get("public.events"), Some(&3), "{deltas:?}");
    assert!(!deltas.contains_key("public.deferred"), "{deltas:?}");

    // A TRUNCATE: the table is read whole.
    source.psql("TRUNCATE public.tiny; INSERT INTO public.tiny VALUES (3);");
    let (truncated, _) = run("truncated");
    let truncated_dump = source.pg_dump();
    let proven = proofs(dir.path(), &source.name, &truncated);
    assert_eq!(proven["public.tiny"], "read", "{proven:?}");
    assert_eq!(proven["public.accounts"], "stream", "{proven:?}");
    assert!(!delta_parts(dir.path(), &source.name, &truncated).contains_key("public.tiny"));

    // A schema change ends what the stream can say about the sets before it: every table is
    // read (the chunks still keep what is stored the same), and the next backup is proven
    // again from this one.
    source.psql("CREATE TABLE public.keyless (v text); INSERT INTO public.keyless VALUES ('a');");
    let (migrated, _) = run("a table created");
    assert!(
        proofs(dir.path(), &source.name, &migrated)
            .values()
            .all(|how| how == "read")
    );
    source.psql("INSERT INTO public.keyless VALUES ('b');");
    let (after, _) = run("after the migration");
    let after_dump = source.pg_dump();
    let proven = proofs(dir.path(), &source.name, &after);
    assert_eq!(proven["public.keyless"], "read", "{proven:?}");
    assert_eq!(proven["public.events"], "stream", "{proven:?}");

    for (id, dump) in [
        (&changed, &changed_dump),
        (&again, &again_dump),
        (&second, &second_dump),
        (&truncated, &truncated_dump),
        (&after, &after_dump),
    ] {
        let target = restore(&store, &source, id, &[]);
        assert_eq!(
            crate::pitr::canonical(dump),
            crate::pitr::canonical(&target.pg_dump()),
            "{id}"
        );
    }
    // Deep verification checks every chunk of the deltas; a restore-level one loads them.
    backstop_ok(
        &[
            "verify",
            "--from",
            &store,
            "--database-id",
            &source.name,
            "--backup",
            &after,
            "--level",
            "deep",
        ],
        &[],
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_change_stream_says_what_to_read_and_which_rows_to_store_on_15() {
    the_change_stream_says_what_to_read_and_which_rows_to_store(15).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_change_stream_says_what_to_read_and_which_rows_to_store_on_13() {
    the_change_stream_says_what_to_read_and_which_rows_to_store(13).await;
}

/// A change stream encrypted to recipients is not read by a backup that has none (its
/// transactions are not for it) and not drained by it (its segments would be in clear):
/// every table is read, and every segment stays encrypted.
#[test]
fn an_encrypted_change_stream_is_neither_read_nor_drained_by_a_plain_backup() {
    let source = application("stream sealed incremental");
    let dir = tempfile::tempdir().unwrap();
    let store = format!("file://{}", dir.path().display());
    let (_, recipient) = backstop::engine::encryption::generate();
    let url = source.url();
    let drain = || {
        backstop_ok(
            &[
                "stream",
                "--db",
                &url,
                "--to",
                &store,
                "--recipient",
                &recipient,
            ],
            &[],
        )
    };
    drain();
    backup(&source, &store, &[], &[]);
    change(&source, 1);
    drain();
    let second = backup(&source, &store, &[], &[]);
    let id = second["backup_id"].as_str().unwrap();
    let proven = proofs(dir.path(), &source.name, id);
    assert!(proven.values().all(|how| how == "read"), "{proven:?}");
    let segments: Vec<PathBuf> = std::fs::read_dir(dir.path().join(&source.name).join("stream"))
        .unwrap()
        .flat_map(|chain| std::fs::read_dir(chain.unwrap().path()).unwrap())
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().contains(".changes."))
        .collect();
    assert!(!segments.is_empty());
    assert!(
        segments
            .iter()
            .all(|p| p.to_string_lossy().ends_with(".age")),
        "{segments:?}"
    );
}
