//! The backup engine and restore: fidelity, consistency, faults, options.

use std::sync::Arc;
use std::time::Duration;

use backstop::engine::backup::{BackupError, BackupOptions, backup};
use backstop::engine::manifest::{Manifest, Part};
use backstop::engine::restore::{
    BackupSelector, RestoreError, RestoreOptions, read_manifest, restore,
};
use backstop::layout::DatabaseId;
use backstop::store::{FileStore, Store};
use backstop_tests::postgres::{TestDb, fresh_database, fresh_database_on};

/// Corpora create the same roles; loading two at once in one cluster would race on them.
pub static ROLE_CREATION: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

pub fn file_store() -> (tempfile::TempDir, Arc<dyn Store>) {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(FileStore::new(dir.path().join("store")));
    (dir, store)
}

/// The first data part of a table in `manifest`, and its file in the [`file_store`] at `dir`.
pub fn first_table_part(dir: &std::path::Path, manifest: &Manifest) -> (Part, std::path::PathBuf) {
    let part = manifest
        .parts
        .iter()
        .find(|p| p.blocks().next().is_some())
        .expect("a data part of a table")
        .clone();
    let path = dir
        .join("store")
        .join(&manifest.database_id)
        .join(&manifest.backup_id)
        .join(&part.key);
    (part, path)
}

pub fn options(db: &TestDb) -> BackupOptions {
    BackupOptions::new(DatabaseId::new(&db.name).unwrap())
}

pub async fn take(
    db: &TestDb,
    store: &Arc<dyn Store>,
    options: &BackupOptions,
) -> Result<Manifest, BackupError> {
    let config = backstop::pg::parse_url(&db.url()).unwrap();
    backup(&config, store.clone(), options, &|_| {}).await
}

pub async fn restore_into(
    manifest: &Manifest,
    store: &Arc<dyn Store>,
    target: &TestDb,
    options: RestoreOptions,
) -> Result<(), RestoreError> {
    let config = backstop::pg::parse_url(&target.url()).unwrap();
    restore(store.clone(), manifest, &config, &options, &|_| {})
        .await
        .map(|_| ())
}

fn all_tables(jobs: usize) -> RestoreOptions {
    RestoreOptions::new(jobs)
}

/// Asserts two dumps are identical, showing the first lines that differ.
pub fn assert_same_dump(source: &str, restored: &str, what: &str) {
    if source == restored {
        return;
    }
    let (a, b): (Vec<&str>, Vec<&str>) = (source.lines().collect(), restored.lines().collect());
    let first = a
        .iter()
        .zip(&b)
        .position(|(x, y)| x != y)
        .unwrap_or(a.len().min(b.len()));
    let window = |lines: &[&str]| {
        lines
            .iter()
            .skip(first.saturating_sub(3))
            .take(12)
            .copied()
            .collect::<Vec<_>>()
            .join("\n")
    };
    panic!(
        "{what}: pg_dump of the restored database differs from the source at line {} \
         ({:?} against {:?})\n--- source\n{}\n--- restored\n{}",
        first + 1,
        a.get(first).copied().unwrap_or("<end>"),
        b.get(first).copied().unwrap_or("<end>"),
        window(&a),
        window(&b)
    );
}

/// Backs up `source`, restores into a fresh database of the same cluster with `jobs`, and
/// compares pg_dump output.
pub async fn round_trip(
    source: &TestDb,
    options: &BackupOptions,
    jobs: usize,
    what: &str,
) -> Manifest {
    let (_dir, store) = file_store();
    let manifest = take(source, &store, options)
        .await
        .unwrap_or_else(|e| panic!("{what}: backup failed: {e}"));
    assert_marks_agree_with_the_sql(&manifest, store.as_ref(), what).await;
    let target = fresh_database_on(source.cluster(), &format!("{what} restored"));
    restore_into(&manifest, &store, &target, all_tables(jobs))
        .await
        .unwrap_or_else(|e| panic!("{what}: restore failed: {e}"));
    assert_same_dump(&source.pg_dump(), &target.pg_dump(), what);
    // Restore-level verification's comparison agrees on the copy: same rows, digests and
    // object inventory (the verifier's own restore is tested in verify.rs).
    let restored = backstop::pg::parse_url(&target.url()).unwrap();
    let findings = backstop::engine::verify::compare_restored(&restored, &manifest)
        .await
        .unwrap_or_else(|e| panic!("{what}: verification could not run: {e}"));
    assert!(
        findings.is_empty(),
        "{what}: restore verification found {findings:?}"
    );
    manifest
}

/// Every item of the set carries the marks its SQL holds: the marks the backup wrote as it
/// rendered each item equal those read back from the SQL by the reader of sets written before
/// items carried them (roles, owner changes, grantors, plain keys, referenced tables). So a
/// restore option edits a new set exactly as it edits an old one. (And every slow index build
/// the SQL shows, which restore starts first, is marked so.)
async fn assert_marks_agree_with_the_sql(manifest: &Manifest, store: &dyn Store, what: &str) {
    use backstop::engine::manifest::PartKind;
    use backstop::engine::{legacy, script};
    let mut compared = 0;
    for part in manifest.parts.iter().filter(|p| p.kind != PartKind::Data) {
        let text = backstop::engine::restore::read_script(store, manifest, part)
            .await
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        let items = script::parse(&text, &manifest.item_marker, manifest.format_version)
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        for item in items {
            let read = legacy::marks(item.header.kind, item.header.table.as_deref(), &item.sql);
            assert_eq!(
                item.header.marks, read,
                "{what}: the marks of {:?} {} differ from its SQL:\n{}",
                item.header.kind, item.header.name, item.sql
            );
            // Read from the index's access method, a slow build is also found where the SQL
            // does not name it (a WITHOUT OVERLAPS key's GiST index); never missed where it does.
            assert!(
                item.header.slow_build || !legacy::slow_build(item.header.kind, &item.sql),
                "{what}: {}",
                item.sql
            );
            if item.header.kind == backstop::engine::item::ItemKind::ForeignKey {
                assert_eq!(
                    item.header.references,
                    legacy::foreign_key_target(&item.sql),
                    "{what}: {}",
                    item.sql
                );
            }
            compared += 1;
        }
    }
    assert!(compared > 0, "{what}: no items compared");
}

#[tokio::test]
async fn edge_cases_round_trip_identically_even_with_tables_split_by_ctid() {
    let source = fresh_database("edge cases");
    {
        let _roles = ROLE_CREATION.lock().await;
        source.psql_file(&backstop_tests::workspace_root().join("tests/fixtures/edge_cases.sql"));
    }
    let manifest = round_trip(&source, &options(&source), 3, "edge cases").await;
    assert!(
        manifest.inventory["table"] >= 10,
        "{:?}",
        manifest.inventory
    );

    // Force every table with more than one page into several block ranges.
    let mut split = options(&source);
    split.split_pages = 1;
    source.psql("INSERT INTO public.shouty SELECT g, 'w' || g FROM generate_series(3, 5000) g");
    let manifest = round_trip(&source, &split, 2, "edge cases split").await;
    let shouty_parts = manifest.tables()["public.shouty"].len();
    assert!(
        shouty_parts > 3,
        "public.shouty should be split, got {shouty_parts} part(s)"
    );
}

/// What the engine cannot reproduce fails the backup by name unless excluded. Here: user
/// mappings whose options the backup role may not read (one holds a remote password), which
/// a restore would bring back without them.
#[tokio::test]
async fn an_object_the_engine_cannot_reproduce_fails_the_backup_by_name_unless_excluded() {
    let source = fresh_database("unsupported");
    let role = format!("backup_{}", backstop_tests::unique_suffix());
    source.psql(&format!(
        "CREATE FOREIGN DATA WRAPPER hidden; \
         CREATE SERVER hidden_a FOREIGN DATA WRAPPER hidden; CREATE SERVER hidden_b FOREIGN DATA WRAPPER hidden; \
         CREATE USER MAPPING FOR PUBLIC SERVER hidden_a OPTIONS (password 'remote-secret'); \
         CREATE USER MAPPING FOR PUBLIC SERVER hidden_b; \
         CREATE ROLE {role} LOGIN PASSWORD 'backup-pw';"
    ));
    let c = backstop_tests::postgres::cluster();
    let url = format!(
        "postgresql://{role}:backup-pw@{}:{}/{}?sslmode=disable",
        c.host, c.port, source.name
    );
    let pg = backstop::pg::parse_url(&url).unwrap();
    let (_dir, store) = file_store();
    let error = backup(&pg, store.clone(), &options(&source), &|_| {})
        .await
        .unwrap_err()
        .to_string();
    for expected in [
        "user mapping public on server hidden_a",
        "user mapping public on server hidden_b",
        "--exclude 'user mapping public on server hidden_a'",
    ] {
        assert!(error.contains(expected), "missing `{expected}` in: {error}");
    }
    assert!(!error.contains("remote-secret"), "{error}");
    assert!(
        store.list("").await.unwrap().is_empty(),
        "a refused backup wrote something"
    );

    let mut excluded = options(&source);
    excluded.exclude = vec![
        "user mapping public on server hidden_a".into(),
        "user mapping public on server hidden_b".into(),
    ];
    let manifest = backup(&pg, store.clone(), &excluded, &|_| {})
        .await
        .unwrap();
    assert_eq!(manifest.excluded.len(), 2, "{:?}", manifest.excluded);
    // The superuser sees the options: the same database backs up whole.
    let whole = take(&source, &store, &options(&source)).await.unwrap();
    assert_eq!(whole.inventory.get("user mapping"), Some(&2));
}

/// An exclusion names an object or is refused; what depends on an excluded object is named
/// and must be excluded too; then everything else round-trips and the excluded objects are
/// gone from the backup.
#[tokio::test]
async fn exclusions_name_objects_and_take_their_dependents_along_only_when_named() {
    let source = fresh_database("exclusions");
    source.psql(
        "CREATE SCHEMA app;
         CREATE TYPE app.mood AS ENUM ('sad', 'happy');
         CREATE FUNCTION app.cheer(m app.mood) RETURNS app.mood LANGUAGE sql AS $$ SELECT 'happy'::app.mood $$;
         CREATE TABLE app.diary (id int PRIMARY KEY, mood app.mood);
         CREATE INDEX diary_mood ON app.diary (mood);
         INSERT INTO app.diary VALUES (1, 'sad');
         CREATE TABLE app.kept (id int PRIMARY KEY); INSERT INTO app.kept VALUES (7);",
    );
    let (_dir, store) = file_store();
    let with = |exclusions: &[&str]| {
        let mut o = options(&source);
        o.exclude = exclusions.iter().map(|e| e.to_string()).collect();
        o
    };
    let error = take(&source, &store, &with(&["bogus kind xyz"]))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        error.starts_with("--exclude 'bogus kind xyz' matches no object") && !error.contains('\n'),
        "{error}"
    );
    let error = take(&source, &store, &with(&["type app.mood"]))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("excluding type app.mood would leave 2 object(s)")
            && error.contains("function app.cheer(app.mood)")
            && error.contains("table app.diary"),
        "{error}"
    );
    assert!(store.list("").await.unwrap().is_empty());

    let manifest = take(
        &source,
        &store,
        &with(&["type app.mood", "app.cheer(app.mood)", "table app.diary"]),
    )
    .await
    .unwrap();
    assert_eq!(manifest.excluded.len(), 3, "{:?}", manifest.excluded);
    let target = fresh_database("exclusions restored");
    restore_into(&manifest, &store, &target, all_tables(2))
        .await
        .unwrap();
    assert_eq!(target.psql("SELECT id FROM app.kept").trim(), "7");
    assert_eq!(
        target
            .psql("SELECT count(*) FROM pg_class WHERE relname IN ('diary', 'diary_mood')")
            .trim(),
        "0"
    );
}

#[tokio::test]
async fn a_backup_under_concurrent_transfers_restores_with_the_invariant_intact() {
    backup_under_transfers(false).await;
}

/// Through PgBouncer in transaction mode, the leader's snapshot transaction holds its server
/// connection and every worker imports the snapshot in its own transaction, whichever server
/// connection that gets: the set is as consistent as a direct one.
#[tokio::test]
async fn a_backup_through_a_transaction_pooler_is_as_consistent_as_a_direct_one() {
    backup_under_transfers(true).await;
}

/// Transfers between two tables run while the backup is taken (directly, or through the
/// transaction-pooling PgBouncer); the restored balances must add up.
async fn backup_under_transfers(through_pooler: bool) {
    let source = fresh_database("consistency");
    source.psql(
        "CREATE TABLE public.checking (id int PRIMARY KEY, balance bigint NOT NULL);
         CREATE TABLE public.savings (id int PRIMARY KEY, balance bigint NOT NULL);
         INSERT INTO public.checking SELECT g, 1000 FROM generate_series(1, 200000) g;
         INSERT INTO public.savings SELECT g, 1000 FROM generate_series(1, 200000) g;",
    );
    let total: i64 = 400_000 * 1000;
    let config = backstop::pg::parse_url(&source.url()).unwrap();
    let mover = backstop::pg::connect(&config).await.unwrap();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stopped = stop.clone();
    let transfers = tokio::spawn(async move {
        let mut done = 0u64;
        while !stopped.load(std::sync::atomic::Ordering::SeqCst) {
            let id = 1 + (done * 7919 % 200_000) as i32;
            mover
                .batch_execute(&format!(
                    "BEGIN; UPDATE public.checking SET balance = balance - 7 WHERE id = {id};
                     UPDATE public.savings SET balance = balance + 7 WHERE id = {};
                     COMMIT;",
                    200_001 - id
                ))
                .await
                .unwrap();
            done += 1;
        }
        done
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (_dir, store) = file_store();
    let mut opts = options(&source);
    opts.split_pages = 64; // several chunks per table, copied at different moments
    let manifest = if through_pooler {
        let pooled = backstop_tests::pgbouncer::pgbouncer().url(&source.name);
        let config = backstop::pg::parse_url(&pooled).unwrap();
        backstop::engine::backup::backup(&config, store.clone(), &opts, &|_| {})
            .await
            .unwrap()
    } else {
        take(&source, &store, &opts).await.unwrap()
    };
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let moved = transfers.await.unwrap();
    assert!(moved > 0, "no transfer ran during the backup");

    let target = fresh_database("consistency restored");
    restore_into(&manifest, &store, &target, all_tables(2))
        .await
        .unwrap();
    let sum = target.psql("SELECT (SELECT sum(balance) FROM public.checking) + (SELECT sum(balance) FROM public.savings)");
    assert_eq!(
        sum.trim(),
        total.to_string(),
        "the restored balances do not add up ({moved} transfers ran)"
    );
}

#[tokio::test]
async fn a_corrupted_part_stops_the_restore_naming_the_part() {
    let source = fresh_database("corrupt");
    source.psql("CREATE TABLE public.t (id int, v text); INSERT INTO public.t SELECT g, md5(g::text) FROM generate_series(1, 5000) g;");
    let (dir, store) = file_store();
    let manifest = take(&source, &store, &options(&source)).await.unwrap();
    let (part, path) = first_table_part(dir.path(), &manifest);
    let mut bytes = std::fs::read(&path).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x40;
    std::fs::write(&path, bytes).unwrap();

    let target = fresh_database("corrupt restored");
    let error = restore_into(&manifest, &store, &target, all_tables(1))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        error.contains(&format!("part `{}`", part.key)) && error.contains("corrupt"),
        "{error}"
    );
    let rows = target.psql("SELECT count(*) FROM public.t");
    assert_eq!(rows.trim(), "0", "rows of a corrupt part were committed");
}

/// A large-object part is a script of `lo_put` calls; restore runs only lines of exactly that
/// shape, so a part rewritten to hold other SQL (with its checksums and the manifest's seal
/// made to match) is refused before anything in it runs.
#[tokio::test]
async fn a_large_object_part_holding_other_sql_is_refused_before_it_runs() {
    use sha2::Digest as _;
    let source = fresh_database("lo tamper");
    source.psql(
        "CREATE TABLE public.victim (id int); INSERT INTO public.victim VALUES (1); \
         SELECT lo_from_bytea(0, 'payload'::bytea);",
    );
    let (dir, store) = file_store();
    let mut manifest = take(&source, &store, &options(&source)).await.unwrap();
    let part = manifest
        .parts
        .iter_mut()
        .find(|p| p.large_objects.is_some())
        .expect("a large-object part");
    let path = dir
        .path()
        .join("store")
        .join(&source.name)
        .join(&manifest.backup_id)
        .join(&part.key);
    let original =
        String::from_utf8(zstd::decode_all(&std::fs::read(&path).unwrap()[..]).unwrap()).unwrap();
    let tampered = format!("DROP TABLE public.victim;\n{original}");
    let stored = zstd::encode_all(tampered.as_bytes(), 1).unwrap();
    std::fs::write(&path, &stored).unwrap();
    part.bytes = stored.len() as u64;
    part.plain_bytes = Some(tampered.len() as u64);
    part.sha256 = hex::encode(sha2::Sha256::digest(&stored));
    let manifest = backstop::engine::manifest::Manifest {
        seal: None,
        ..manifest
    }
    .sealed();

    let target = fresh_database("lo tamper restored");
    let error = restore_into(&manifest, &store, &target, all_tables(1))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("DROP TABLE public.victim;") && error.contains("is not a large-object line"),
        "{error}"
    );
    assert_eq!(
        target
            .psql("SELECT count(*) FROM pg_tables WHERE tablename = 'victim'")
            .trim(),
        "1",
        "the tampered line ran"
    );
    assert_eq!(
        target.psql("SELECT count(*) FROM pg_largeobject_metadata m WHERE EXISTS (SELECT FROM pg_largeobject l WHERE l.loid = m.oid)").trim(),
        "0",
        "no content of the refused part was committed"
    );
}

/// `--clean` over an earlier restore of the same backup: what lives outside schemas
/// (publications, event triggers, large objects, subscriptions) is dropped too, so the second
/// restore does not trip over the first.
#[tokio::test]
async fn clean_drops_what_lives_outside_schemas() {
    let source = fresh_database("clean outside schemas");
    source.psql(
        "CREATE TABLE public.t (id int PRIMARY KEY); INSERT INTO public.t VALUES (1); \
         CREATE PUBLICATION everything FOR ALL TABLES; \
         CREATE FUNCTION public.on_ddl() RETURNS event_trigger LANGUAGE plpgsql AS 'BEGIN END'; \
         CREATE EVENT TRIGGER audit_ddl ON ddl_command_end EXECUTE FUNCTION public.on_ddl(); \
         SELECT lo_from_bytea(0, 'kept'::bytea); \
         CREATE SUBSCRIPTION feed CONNECTION 'host=127.0.0.1 port=1 dbname=nowhere' \
             PUBLICATION upstream WITH (connect = false, slot_name = 'feed_slot');",
    );
    let (_dir, store) = file_store();
    let manifest = take(&source, &store, &options(&source)).await.unwrap();
    let target = fresh_database("clean outside schemas restored");
    restore_into(&manifest, &store, &target, all_tables(2))
        .await
        .unwrap();
    let clean = RestoreOptions {
        clean: true,
        ..all_tables(2)
    };
    restore_into(&manifest, &store, &target, clean)
        .await
        .unwrap_or_else(|e| panic!("restore --clean over the first restore: {e}"));
    assert_same_dump(&source.pg_dump(), &target.pg_dump(), "restore --clean");
    for db in [&source, &target] {
        db.psql("ALTER SUBSCRIPTION feed SET (slot_name = NONE); DROP SUBSCRIPTION feed;");
    }
}

/// Every backup records its snapshot and WAL position: a transaction committed before it is in
/// the snapshot, one committed after it is not (what a change stream replays on top).
#[tokio::test]
async fn a_backup_records_its_snapshot_and_wal_position() {
    let source = fresh_database("snapshot position");
    source.psql("CREATE TABLE public.t (id int)");
    let insert = "INSERT INTO public.t VALUES (1) RETURNING pg_current_xact_id()::text";
    let before = source.psql(insert).trim().to_string();
    let (_dir, store) = file_store();
    let manifest = take(&source, &store, &options(&source)).await.unwrap();
    let after = source.psql(insert).trim().to_string();
    let snapshot = manifest.snapshot.clone().expect("the snapshot");
    let visible = |xid: &str| {
        source.psql(&format!(
            "SELECT pg_visible_in_snapshot('{xid}'::xid8, '{snapshot}'::pg_snapshot)"
        ))
    };
    assert_eq!(visible(&before).trim(), "t", "{before} in {snapshot}");
    assert_eq!(visible(&after).trim(), "f", "{after} in {snapshot}");
    let lsn = manifest.wal_lsn.clone().expect("the WAL position");
    assert_eq!(
        source
            .psql(&format!("SELECT '{lsn}'::pg_lsn <= pg_current_wal_lsn()"))
            .trim(),
        "t"
    );
}

/// A database restored with `--clean` has a `public` schema made again (a new OID): backed up
/// in turn, it still restores into a new database, whose own `public` schema is that one,
/// with the same owner, privileges and comment.
#[tokio::test]
async fn a_public_schema_made_again_by_clean_is_still_the_public_schema() {
    let source = fresh_database("public again");
    source
        .psql("CREATE TABLE public.t (id int PRIMARY KEY); INSERT INTO public.t VALUES (1), (2);");
    let (_dir, store) = file_store();
    let first = take(&source, &store, &options(&source)).await.unwrap();
    let cleaned = fresh_database("public again cleaned");
    cleaned.psql("CREATE TABLE public.old (id int)");
    let clean = RestoreOptions {
        clean: true,
        ..all_tables(2)
    };
    restore_into(&first, &store, &cleaned, clean).await.unwrap();
    let public = "SELECT oid >= 16384, pg_get_userbyid(nspowner), nspacl, obj_description(oid, 'pg_namespace')                   FROM pg_namespace WHERE nspname = 'public'";
    assert!(
        cleaned.psql(public).starts_with('t'),
        "--clean made public again"
    );

    let second = take(&cleaned, &store, &options(&cleaned)).await.unwrap();
    let target = fresh_database("public again restored");
    restore_into(&second, &store, &target, all_tables(2))
        .await
        .unwrap_or_else(|e| panic!("a backup of a cleaned database: {e}"));
    let without_oid = |db: &TestDb| db.psql(public).split_once('|').unwrap().1.to_string();
    assert_eq!(without_oid(&target), without_oid(&cleaned));
    assert_eq!(target.psql("SELECT count(*) FROM public.t").trim(), "2");
}

#[tokio::test]
async fn restore_refuses_a_non_empty_target_unless_clean_and_can_restore_chosen_tables() {
    let source = fresh_database("targets");
    source.psql(
        "CREATE TABLE public.a (id int PRIMARY KEY); INSERT INTO public.a SELECT generate_series(1, 10);
         CREATE TABLE public.b (id int PRIMARY KEY, a int REFERENCES public.a); INSERT INTO public.b VALUES (1, 1);
         CREATE VIEW public.ab AS SELECT a.id FROM public.a JOIN public.b ON b.a = a.id;",
    );
    let (_dir, store) = file_store();
    let manifest = take(&source, &store, &options(&source)).await.unwrap();

    let target = fresh_database("targets busy");
    target.psql("CREATE TABLE public.precious (id int)");
    let error = restore_into(&manifest, &store, &target, all_tables(2))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("is not empty")
            && error.contains("table public.precious")
            && error.contains("--clean"),
        "{error}"
    );
    assert_eq!(
        target
            .psql("SELECT count(*) FROM pg_tables WHERE tablename = 'precious'")
            .trim(),
        "1"
    );

    restore_into(
        &manifest,
        &store,
        &target,
        RestoreOptions {
            clean: true,
            ..RestoreOptions::new(2)
        },
    )
    .await
    .unwrap();
    assert_same_dump(&source.pg_dump(), &target.pg_dump(), "--clean");

    let partial = fresh_database("targets partial");
    let only_b = RestoreOptions {
        tables: Some(vec!["public.b".into()]),
        ..RestoreOptions::new(1)
    };
    restore_into(&manifest, &store, &partial, only_b)
        .await
        .unwrap();
    assert_eq!(partial.psql("SELECT count(*) FROM public.b").trim(), "1");
    assert_eq!(
        partial
            .psql("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")
            .trim(),
        "1"
    );

    let error = restore_into(
        &manifest,
        &store,
        &fresh_database("targets unknown"),
        RestoreOptions {
            tables: Some(vec!["public.nope".into()]),
            ..RestoreOptions::new(1)
        },
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(error.contains("public.nope"), "{error}");
}

#[tokio::test]
async fn latest_resolves_to_the_newest_committed_backup() {
    let source = fresh_database("latest");
    source.psql("CREATE TABLE public.t (id int); INSERT INTO public.t VALUES (1)");
    let (_dir, store) = file_store();
    let database = DatabaseId::new(&source.name).unwrap();
    let error = read_manifest(store.as_ref(), &database, &BackupSelector::Latest)
        .await
        .unwrap_err()
        .to_string();
    assert!(error.contains("no backups"), "{error}");
    let first = take(&source, &store, &options(&source)).await.unwrap();
    let second = take(&source, &store, &options(&source)).await.unwrap();
    let latest = read_manifest(store.as_ref(), &database, &BackupSelector::Latest)
        .await
        .unwrap();
    assert_eq!(latest.backup_id, second.backup_id);
    assert_ne!(first.backup_id, second.backup_id);
    assert_eq!(first.tier, backstop::tier::Tier::Monthly);
    assert_eq!(second.tier, backstop::tier::Tier::Daily);
}

#[tokio::test]
async fn a_backend_killed_mid_copy_fails_the_backup_and_leaves_nothing_in_s3() {
    let source = fresh_database("killed copy");
    source.psql(
        "CREATE TABLE public.big (id int, filler text);
         INSERT INTO public.big SELECT g, repeat(md5(g::text), 8) FROM generate_series(1, 250000) g;",
    );
    let moto = backstop_tests::moto::moto();
    let bucket = moto.new_bucket("killed-copy").await;
    let url: backstop::store::StoreUrl = format!("s3://{bucket}/backups").parse().unwrap();
    let store = backstop::store::open(&url, &moto.sdk_config().await);

    let killer = crate::support::terminate_copy_when_seen(&source).await;
    let error = take(&source, &store, &options(&source))
        .await
        .expect_err("the backup must fail")
        .to_string();
    assert!(killer.await.unwrap(), "the COPY was never seen running");
    assert!(
        error.contains("public.big"),
        "the error should name the table: {error}"
    );
    assert!(
        error.contains("closed the connection") || error.contains("terminating connection"),
        "the error should say the session ended: {error}"
    );
    assert_eq!(error.lines().count(), 1);

    let s3 = moto.s3().await;
    let objects = s3.list_objects_v2().bucket(&bucket).send().await.unwrap();
    let keys: Vec<&str> = objects.contents().iter().filter_map(|o| o.key()).collect();
    assert!(
        keys.is_empty(),
        "a failed backup left objects behind: {keys:?}"
    );
    let mut waited = 0;
    loop {
        let pending = s3
            .list_multipart_uploads()
            .bucket(&bucket)
            .send()
            .await
            .unwrap();
        if pending.uploads().is_empty() {
            break;
        }
        assert!(waited < 100, "a multipart upload was left pending");
        waited += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_role_that_row_level_security_would_filter_fails_instead_of_missing_rows() {
    let source = fresh_database("rls filter");
    let role = format!("reader_{}", backstop_tests::unique_suffix());
    source.psql(&format!(
        "CREATE TABLE public.secrets (id int, owner text);
         INSERT INTO public.secrets SELECT g, 'u' || g FROM generate_series(1, 100) g;
         ALTER TABLE public.secrets ENABLE ROW LEVEL SECURITY;
         CREATE POLICY own_rows ON public.secrets USING (owner = current_user);
         CREATE ROLE {role} LOGIN PASSWORD 'reader-pw';
         GRANT SELECT ON ALL TABLES IN SCHEMA public TO {role};"
    ));
    let c = backstop_tests::postgres::cluster();
    let url = format!(
        "postgresql://{role}:reader-pw@{}:{}/{}?sslmode=disable",
        c.host, c.port, source.name
    );
    let (_dir, store) = file_store();
    let error = backup(
        &backstop::pg::parse_url(&url).unwrap(),
        store.clone(),
        &options(&source),
        &|_| {},
    )
    .await
    .expect_err("a filtered backup must fail")
    .to_string();
    assert!(
        error.contains("row-level security") && error.contains("secrets"),
        "{error}"
    );
    assert!(
        store
            .list("")
            .await
            .unwrap()
            .iter()
            .all(|o| !o.key.ends_with("manifest.json"))
    );
}

#[tokio::test]
async fn a_role_with_pg_read_all_data_takes_a_complete_backup() {
    let source = fresh_database("read all data");
    let role = format!("backup_{}", backstop_tests::unique_suffix());
    source.psql(&format!(
        "CREATE SCHEMA app;
         CREATE TABLE app.orders (id serial PRIMARY KEY, note text, total numeric);
         INSERT INTO app.orders (note, total) SELECT 'n' || g, g FROM generate_series(1, 500) g;
         CREATE VIEW app.big AS SELECT * FROM app.orders WHERE total > 100;
         CREATE FUNCTION app.double(int) RETURNS int LANGUAGE sql AS 'SELECT $1 * 2';
         CREATE ROLE {role} LOGIN PASSWORD 'backup-pw';
         GRANT pg_read_all_data TO {role};"
    ));
    let c = backstop_tests::postgres::cluster();
    let url = format!(
        "postgresql://{role}:backup-pw@{}:{}/{}?sslmode=disable",
        c.host, c.port, source.name
    );
    let (_dir, store) = file_store();
    let manifest = backup(
        &backstop::pg::parse_url(&url).unwrap(),
        store.clone(),
        &options(&source),
        &|_| {},
    )
    .await
    .unwrap_or_else(|e| panic!("a non-superuser backup failed: {e}"));
    assert_eq!(manifest.total_rows(), 500);
    let target = fresh_database("read all data restored");
    restore_into(&manifest, &store, &target, all_tables(2))
        .await
        .unwrap();
    assert_same_dump(&source.pg_dump(), &target.pg_dump(), "non-superuser backup");
}

/// A subscription's connection string is readable by superusers (and `pg_read_all_data`)
/// only: a backup role without it cannot reproduce the subscription, so the subscription is refused by name, never lost,
/// and the backup runs once the operator excludes it. (With it, subscriptions round-trip:
/// `versions::what_13_added_round_trips_on_13` and on.)
#[tokio::test]
async fn a_subscription_the_backup_role_cannot_read_is_refused_by_name_not_lost() {
    let source = fresh_database("subscription");
    let role = format!("backup_{}", backstop_tests::unique_suffix());
    source.psql(&format!(
        "CREATE TABLE public.t (id int); \
         CREATE SUBSCRIPTION feed CONNECTION 'host=127.0.0.1 port=1 dbname=nowhere password=sub-secret' \
             PUBLICATION upstream WITH (connect = false); \
         CREATE ROLE {role} LOGIN PASSWORD 'backup-pw'; GRANT SELECT ON public.t TO {role};"
    ));
    let c = backstop_tests::postgres::cluster();
    let url = format!(
        "postgresql://{role}:backup-pw@{}:{}/{}?sslmode=disable",
        c.host, c.port, source.name
    );
    let pg = backstop::pg::parse_url(&url).unwrap();
    let (_dir, store) = file_store();
    let error = backup(&pg, store.clone(), &options(&source), &|_| {})
        .await
        .unwrap_err()
        .to_string();
    let mut excluded = options(&source);
    excluded.exclude = vec!["subscription feed".into()];
    let manifest = backup(&pg, store.clone(), &excluded, &|_| {}).await;
    // A database with a subscription cannot be dropped: drop it first.
    source.psql("ALTER SUBSCRIPTION feed SET (slot_name = NONE); DROP SUBSCRIPTION feed;");
    assert!(
        error.contains("subscription feed") && error.contains("--exclude 'subscription feed'"),
        "{error}"
    );
    assert!(!error.contains("sub-secret"), "{error}");
    assert_eq!(manifest.unwrap().excluded, ["subscription feed"]);
}
