//! Every supported PostgreSQL, 13 to 18 (`BACKSTOP_PG_VERSIONS` picks them, all by default):
//! each corpus round-trips on each version where it loads, a backup taken on an older
//! version restores onto a newer one exactly as `pg_dump | psql` migrates it, and health and
//! restore-level verification run on the oldest and the newest.

use backstop::engine::restore::RestoreOptions;
use backstop_tests::postgres::{PgCluster, TestDb, cluster_of, fresh_database_on};

use crate::engine::{
    ROLE_CREATION, assert_same_dump, file_store, options, restore_into, round_trip, take,
};
use crate::support::{backstop, backstop_ok};

/// Loads corpus `name` into a fresh database on `cluster`.
async fn load(cluster: &'static PgCluster, name: &str) -> Option<TestDb> {
    let path = backstop_tests::corpus(name)?;
    let source = fresh_database_on(cluster, name);
    let _roles = ROLE_CREATION.lock().await;
    source.psql_file(&path);
    Some(source)
}

/// Loads the fixtures of every version from 13 up to the cluster's own
/// (`tests/fixtures/versions/<major>.sql`): what each major added to the catalogs.
async fn load_features(cluster: &'static PgCluster) -> TestDb {
    let source = fresh_database_on(cluster, "version features");
    let _roles = ROLE_CREATION.lock().await;
    for major in 13..=cluster.major {
        source.psql_file(
            &backstop_tests::workspace_root().join(format!("tests/fixtures/versions/{major}.sql")),
        );
    }
    source
}

async fn features_round_trip(major: u32) {
    let Some(cluster) = cluster_of(major) else {
        return;
    };
    let source = load_features(cluster).await;
    round_trip(
        &source,
        &options(&source),
        2,
        &format!("version features on {major}"),
    )
    .await;
}

async fn corpus_round_trip(name: &str, major: u32) {
    let Some(cluster) = cluster_of(major) else {
        return;
    };
    let Some(source) = load(cluster, name).await else {
        return;
    };
    round_trip(&source, &options(&source), 2, &format!("{name} on {major}")).await;
}

macro_rules! features_round_trip {
    ($($test:ident: $major:literal;)*) => {$(
        #[tokio::test]
        async fn $test() {
            features_round_trip($major).await;
        }
    )*};
}

features_round_trip! {
    what_13_added_round_trips_on_13: 13;
    what_14_added_round_trips_on_14: 14;
    what_15_added_round_trips_on_15: 15;
    what_16_added_round_trips_on_16: 16;
    what_17_added_round_trips_on_17: 17;
    what_18_added_round_trips_on_18: 18;
}

/// An extension's configuration data (`pg_extension_config_dump`): the rows its condition
/// selects, a table dumped whole and a sequence's value come back beside the rows and value
/// CREATE EXTENSION makes; the extension's own rows are neither duplicated nor lost.
async fn extension_configuration_round_trip(major: u32) {
    let Some(cluster) = cluster_of(major) else {
        return;
    };
    cluster.install_fixture_extensions();
    let source = fresh_database_on(cluster, "extension configuration");
    source.psql(
        "CREATE EXTENSION backstop_fixture; \
         INSERT INTO fixture.settings VALUES ('theme', 'dark', false), ('locale', 'fr''CA', false); \
         INSERT INTO fixture.notes SELECT g, 'note ' || g FROM generate_series(1, 50) g; \
         SELECT nextval('fixture.ticket_seq') FROM generate_series(1, 7);",
    );
    let manifest = round_trip(
        &source,
        &options(&source),
        2,
        &format!("extension configuration on {major}"),
    )
    .await;
    let rows = |table: &str| -> u64 { manifest.tables()[table].iter().map(|(_, t)| t.rows).sum() };
    assert_eq!(
        rows("fixture.settings"),
        2,
        "only the database's own settings"
    );
    assert_eq!(rows("fixture.notes"), 50);
}

macro_rules! extension_configuration_round_trip {
    ($($test:ident: $major:literal;)*) => {$(
        #[tokio::test]
        async fn $test() {
            extension_configuration_round_trip($major).await;
        }
    )*};
}

extension_configuration_round_trip! {
    extension_configuration_data_round_trips_on_13: 13;
    extension_configuration_data_round_trips_on_14: 14;
    extension_configuration_data_round_trips_on_15: 15;
    extension_configuration_data_round_trips_on_16: 16;
    extension_configuration_data_round_trips_on_17: 17;
    extension_configuration_data_round_trips_on_18: 18;
}

/// Large objects: contents across several 128 KiB lines, an empty one, more than one batch of
/// them, an owner, a comment and grants, beside a table that refers to them by OID.
async fn large_objects_round_trip(major: u32) {
    let Some(cluster) = cluster_of(major) else {
        return;
    };
    let source = fresh_database_on(cluster, "large objects");
    {
        let _roles = ROLE_CREATION.lock().await;
        source.psql(
            "DO $$ BEGIN \
               IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'lo_owner') THEN CREATE ROLE lo_owner; END IF; \
               IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'lo_reader') THEN CREATE ROLE lo_reader; END IF; \
             END $$;",
        );
    }
    source.psql(
        "CREATE TABLE public.documents (id int PRIMARY KEY, title text, body oid); \
         INSERT INTO public.documents SELECT 1, 'big', lo_from_bytea(0, \
             (SELECT string_agg(md5(g::text), '') FROM generate_series(1, 20000) g)::bytea); \
         INSERT INTO public.documents SELECT 2, 'empty', lo_create(0); \
         INSERT INTO public.documents SELECT 2 + g, 'note ' || g, lo_from_bytea(0, convert_to('note ' || g || E'\\n\\t\\\\', 'UTF8')) \
             FROM generate_series(1, 1200) g; \
         SELECT lo_from_bytea(0, '\\x00ff10'::bytea) AS orphan;",
    );
    let big: String = source.psql("SELECT body FROM public.documents WHERE id = 1");
    let big = big.trim();
    source.psql(&format!(
        "ALTER LARGE OBJECT {big} OWNER TO lo_owner; \
         COMMENT ON LARGE OBJECT {big} IS 'the big one'; \
         GRANT SELECT ON LARGE OBJECT {big} TO lo_reader; \
         GRANT UPDATE ON LARGE OBJECT {big} TO lo_reader WITH GRANT OPTION;"
    ));
    let manifest = round_trip(
        &source,
        &options(&source),
        2,
        &format!("large objects on {major}"),
    )
    .await;
    let parts: Vec<_> = manifest
        .parts
        .iter()
        .filter_map(|p| p.large_objects.as_ref())
        .collect();
    assert_eq!(parts.len(), 2, "1203 large objects make two batches");
    assert_eq!(parts.iter().map(|p| p.objects).sum::<u64>(), 1203);
    assert_eq!(manifest.inventory.get("large object"), Some(&1203));
}

macro_rules! large_objects_round_trip {
    ($($test:ident: $major:literal;)*) => {$(
        #[tokio::test]
        async fn $test() {
            large_objects_round_trip($major).await;
        }
    )*};
}

large_objects_round_trip! {
    large_objects_round_trip_on_13: 13;
    large_objects_round_trip_on_14: 14;
    large_objects_round_trip_on_15: 15;
    large_objects_round_trip_on_16: 16;
    large_objects_round_trip_on_17: 17;
    large_objects_round_trip_on_18: 18;
}

/// One object of each kind pg_dump's own suite (`002_pg_dump.pl`) checks, in the shapes it
/// singles out (`tests/fixtures/pg_dump_kinds.sql`).
async fn pg_dump_kinds_round_trip(major: u32) {
    let Some(cluster) = cluster_of(major) else {
        return;
    };
    let source = fresh_database_on(cluster, "pg_dump kinds");
    {
        let _roles = ROLE_CREATION.lock().await;
        source
            .psql_file(&backstop_tests::workspace_root().join("tests/fixtures/pg_dump_kinds.sql"));
    }
    round_trip(
        &source,
        &options(&source),
        2,
        &format!("pg_dump's kinds on {major}"),
    )
    .await;
}

macro_rules! pg_dump_kinds_round_trip {
    ($($test:ident: $major:literal;)*) => {$(
        #[tokio::test]
        async fn $test() {
            pg_dump_kinds_round_trip($major).await;
        }
    )*};
}

pg_dump_kinds_round_trip! {
    what_pg_dumps_own_suite_checks_round_trips_on_13: 13;
    what_pg_dumps_own_suite_checks_round_trips_on_14: 14;
    what_pg_dumps_own_suite_checks_round_trips_on_15: 15;
    what_pg_dumps_own_suite_checks_round_trips_on_16: 16;
    what_pg_dumps_own_suite_checks_round_trips_on_17: 17;
    what_pg_dumps_own_suite_checks_round_trips_on_18: 18;
}

/// A database shaped like a Supabase project's (`tests/fixtures/supabase_like.sql`): API roles,
/// grants on extension functions, RLS policies calling auth functions, the realtime
/// publication, DDL event triggers. Supabase runs 15 and later.
async fn supabase_like_round_trip(major: u32) {
    let Some(cluster) = cluster_of(major) else {
        return;
    };
    let source = fresh_database_on(cluster, "supabase like");
    {
        let _roles = ROLE_CREATION.lock().await;
        source
            .psql_file(&backstop_tests::workspace_root().join("tests/fixtures/supabase_like.sql"));
    }
    round_trip(
        &source,
        &options(&source),
        2,
        &format!("supabase-like on {major}"),
    )
    .await;
}

#[tokio::test]
async fn a_supabase_shaped_database_round_trips_on_15() {
    supabase_like_round_trip(15).await;
}

#[tokio::test]
async fn a_supabase_shaped_database_round_trips_on_16() {
    supabase_like_round_trip(16).await;
}

#[tokio::test]
async fn a_supabase_shaped_database_round_trips_on_17() {
    supabase_like_round_trip(17).await;
}

#[tokio::test]
async fn a_supabase_shaped_database_round_trips_on_18() {
    supabase_like_round_trip(18).await;
}

macro_rules! round_trips {
    ($($test:ident: $corpus:literal on $major:literal;)*) => {$(
        #[tokio::test]
        async fn $test() {
            corpus_round_trip($corpus, $major).await;
        }
    )*};
}

round_trips! {
    pagila_round_trips_on_13: "pagila.sql" on 13;
    pagila_round_trips_on_14: "pagila.sql" on 14;
    pagila_round_trips_on_15: "pagila.sql" on 15;
    pagila_round_trips_on_16: "pagila.sql" on 16;
    pagila_round_trips_on_17: "pagila.sql" on 17;
    pagila_round_trips_on_18: "pagila.sql" on 18;
    chinook_round_trips_on_13: "chinook.sql" on 13;
    chinook_round_trips_on_14: "chinook.sql" on 14;
    chinook_round_trips_on_15: "chinook.sql" on 15;
    chinook_round_trips_on_16: "chinook.sql" on 16;
    chinook_round_trips_on_17: "chinook.sql" on 17;
    chinook_round_trips_on_18: "chinook.sql" on 18;
    northwind_round_trips_on_13: "northwind.sql" on 13;
    northwind_round_trips_on_14: "northwind.sql" on 14;
    northwind_round_trips_on_15: "northwind.sql" on 15;
    northwind_round_trips_on_16: "northwind.sql" on 16;
    northwind_round_trips_on_17: "northwind.sql" on 17;
    northwind_round_trips_on_18: "northwind.sql" on 18;
    // rich.sql has SQL-standard function bodies (14+): it does not load on 13.
    rich_round_trips_on_14: "rich.sql" on 14;
    rich_round_trips_on_15: "rich.sql" on 15;
    rich_round_trips_on_16: "rich.sql" on 16;
    rich_round_trips_on_17: "rich.sql" on 17;
    rich_round_trips_on_18: "rich.sql" on 18;
}

/// Backs `source` up and restores it onto `new`; the result must equal what `pg_dump` (18)
/// of the source piped into psql on `new` gives, as an upgrade by dump would.
async fn restores_onto(source: &TestDb, new: &'static PgCluster, what: &str) {
    // The roles the sources refer to exist on the new server, as they would after
    // pg_dumpall --globals-only.
    new.psql(
        "postgres",
        "DO $$ BEGIN \
           IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'app_user') THEN CREATE ROLE app_user NOLOGIN; END IF; \
           IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'authenticated') THEN CREATE ROLE authenticated NOLOGIN; END IF; \
           IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'version_app') THEN CREATE ROLE version_app NOLOGIN; END IF; \
         END $$",
    );

    let (_dir, store) = file_store();
    let manifest = take(source, &store, &options(source))
        .await
        .unwrap_or_else(|e| panic!("{what}: backup failed: {e}"));
    let restored = fresh_database_on(new, &format!("{what} backstop"));
    restore_into(&manifest, &store, &restored, RestoreOptions::new(2))
        .await
        .unwrap_or_else(|e| panic!("{what}: restore failed: {e}"));

    let migrated = fresh_database_on(new, &format!("{what} pg_dump"));
    let script = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(script.path(), source.pg_dump()).unwrap();
    migrated.psql_file(script.path());

    assert_same_dump(&migrated.pg_dump(), &restored.pg_dump(), what);
}

async fn corpus_restores_onto_a_newer_version(corpus: &str, from: u32, onto: u32) {
    let (Some(old), Some(new)) = (cluster_of(from), cluster_of(onto)) else {
        return;
    };
    let Some(source) = load(old, corpus).await else {
        return;
    };
    restores_onto(&source, new, &format!("{corpus} from {from} onto {onto}")).await;
}

async fn features_restore_onto_a_newer_version(from: u32, onto: u32) {
    let (Some(old), Some(new)) = (cluster_of(from), cluster_of(onto)) else {
        return;
    };
    let source = load_features(old).await;
    restores_onto(
        &source,
        new,
        &format!("version features from {from} onto {onto}"),
    )
    .await;
}

#[tokio::test]
async fn a_backup_taken_on_13_restores_onto_17_as_pg_dump_migrates_it() {
    corpus_restores_onto_a_newer_version("pagila.sql", 13, 17).await;
    features_restore_onto_a_newer_version(13, 17).await;
}

#[tokio::test]
async fn a_backup_taken_on_13_restores_onto_18_as_pg_dump_migrates_it() {
    corpus_restores_onto_a_newer_version("pagila.sql", 13, 18).await;
    features_restore_onto_a_newer_version(13, 18).await;
}

#[tokio::test]
async fn a_backup_taken_on_15_restores_onto_17_as_pg_dump_migrates_it() {
    corpus_restores_onto_a_newer_version("rich.sql", 15, 17).await;
    features_restore_onto_a_newer_version(15, 17).await;
}

#[tokio::test]
async fn a_backup_taken_on_15_restores_onto_18_as_pg_dump_migrates_it() {
    corpus_restores_onto_a_newer_version("rich.sql", 15, 18).await;
    features_restore_onto_a_newer_version(15, 18).await;
}

#[tokio::test]
async fn a_backup_taken_on_16_restores_onto_17_with_grants_as_pg_dump_writes_them() {
    features_restore_onto_a_newer_version(16, 17).await;
}

/// The operator's path on the oldest and the newest server, through the CLI: doctor, backup,
/// health with the database figures, and a restore-level verification into a scratch
/// database of the same server.
fn the_cli_cycle_on(major: u32) {
    let Some(cluster) = cluster_of(major) else {
        return;
    };
    let db = fresh_database_on(cluster, &format!("cli on {major}"));
    db.psql(
        "CREATE TABLE orders (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, total numeric NOT NULL); \
         CREATE TABLE lines (order_id bigint REFERENCES orders, sku text); \
         INSERT INTO orders (total) SELECT i FROM generate_series(1, 500) i; \
         INSERT INTO lines SELECT i, 'sku-' || i FROM generate_series(1, 500) i;",
    );
    let dir = tempfile::tempdir().unwrap();
    let store = format!("file://{}/store", dir.path().display());

    let doctor = backstop_ok(&["doctor", "--db", &db.url(), "--json"], &[]);
    let checks: serde_json::Value = serde_json::from_slice(&doctor.stdout).unwrap();
    let server = checks
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["check"] == "server")
        .unwrap_or_else(|| panic!("doctor on {major} has no server check: {checks}"));
    assert_eq!(server["outcome"], "ok", "{server}");
    assert!(
        server["message"]
            .as_str()
            .unwrap()
            .starts_with(&format!("PostgreSQL {major}.")),
        "{server}"
    );

    backstop_ok(&["backup", "--db", &db.url(), "--to", &store], &[]);

    let health = backstop(
        &[
            "health",
            "--from",
            &store,
            "--database-id",
            &db.name,
            "--db",
            &db.url(),
            "--json",
        ],
        &[],
    );
    let report: serde_json::Value = serde_json::from_slice(&health.stdout).unwrap_or_else(|_| {
        panic!(
            "health on {major}: {}",
            String::from_utf8_lossy(&health.stderr)
        )
    });
    assert_eq!(health.status.code(), Some(0), "health on {major}: {report}");
    let text = report.to_string();
    assert!(
        text.contains("fk_without_index") && text.contains("checkpoints_timed"),
        "health on {major} did not read the database figures: {report}"
    );

    let verify = backstop_ok(
        &[
            "verify",
            "--from",
            &store,
            "--database-id",
            &db.name,
            "--level",
            "restore",
            "--scratch-db",
            &cluster.url("postgres"),
            "--json",
        ],
        &[],
    );
    let result: serde_json::Value = serde_json::from_slice(&verify.stdout).unwrap();
    assert_eq!(result["verdict"], "passed", "verify on {major}: {result}");
}

#[test]
fn doctor_backup_health_and_restore_verification_work_on_13() {
    the_cli_cycle_on(13);
}

#[test]
fn doctor_backup_health_and_restore_verification_work_on_18() {
    the_cli_cycle_on(18);
}

#[tokio::test]
async fn a_backup_taken_on_18_refuses_to_restore_onto_13_in_one_line_and_touches_nothing() {
    let (Some(new), Some(old)) = (cluster_of(18), cluster_of(13)) else {
        return;
    };
    let source = fresh_database_on(new, "newer source");
    source.psql("CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t VALUES (1);");
    let (_dir, store) = file_store();
    let manifest = take(&source, &store, &options(&source)).await.unwrap();
    let target = fresh_database_on(old, "older target");
    let error = restore_into(&manifest, &store, &target, RestoreOptions::new(1))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("was taken on PostgreSQL 18.")
            && error.contains("the older 13.")
            && error.contains("restore onto PostgreSQL 18 or later")
            && !error.contains('\n'),
        "{error}"
    );
    assert_eq!(
        target
            .psql("SELECT count(*) FROM pg_class WHERE relname = 't'")
            .trim(),
        "0"
    );
}

/// regress.sql: the database PostgreSQL 15's regression suite leaves behind (what pg_upgrade's
/// tests dump), every object kind in its strangest forms, large objects included. On 15 it
/// loads whole and must round-trip with no `--exclude`: identical `pg_dump`, restore-level
/// verification passing with the inventory equal per kind.
#[tokio::test]
async fn the_regression_database_round_trips_identically_on_15() {
    let Some(cluster) = cluster_of(15) else {
        return;
    };
    let Some(source) = load(cluster, "regress.sql").await else {
        return;
    };
    let manifest = round_trip(&source, &options(&source), 2, "regress.sql on 15").await;
    assert!(
        manifest.inventory.get("large object").copied().unwrap_or(0) > 0
            && manifest
                .inventory
                .get("operator class")
                .copied()
                .unwrap_or(0)
                > 0,
        "the regression database's kinds are in the inventory: {:?}",
        manifest.inventory
    );
    // The operator's check, through the CLI: a backup, then restore-level verification.
    let dir = tempfile::tempdir().unwrap();
    let store = format!("file://{}/store", dir.path().display());
    backstop_ok(&["backup", "--db", &source.url(), "--to", &store], &[]);
    let verify = backstop_ok(
        &[
            "verify",
            "--from",
            &store,
            "--database-id",
            &source.name,
            "--level",
            "restore",
            "--scratch-db",
            &cluster.url("postgres"),
            "--json",
        ],
        &[],
    );
    let result: serde_json::Value = serde_json::from_slice(&verify.stdout).unwrap();
    assert_eq!(
        result["verdict"], "passed",
        "verify of regress.sql: {result}"
    );
}

/// The same on the other majors, for the part of the PostgreSQL 15 dump that loads there
/// (statements a major does not know, and lz4 where the server was built without it, fail
/// and are skipped; nearly every table still loads).
async fn regression_database_round_trip(major: u32) {
    let Some(cluster) = cluster_of(major) else {
        return;
    };
    let Some(path) = backstop_tests::corpus("regress.sql") else {
        return;
    };
    let source = fresh_database_on(cluster, "regress.sql");
    let errors;
    {
        let _roles = ROLE_CREATION.lock().await;
        errors = source.psql_file_as_far_as_it_loads(&path);
    }
    let tables: usize = source
        .psql("SELECT count(*) FROM pg_class WHERE relkind IN ('r', 'p') AND relnamespace = 'public'::regnamespace")
        .trim()
        .parse()
        .unwrap();
    assert!(
        tables > 500,
        "only {tables} tables of regress.sql loaded on {major}: {errors:#?}"
    );
    round_trip(
        &source,
        &options(&source),
        2,
        &format!("regress.sql on {major}"),
    )
    .await;
}

macro_rules! regression_database_round_trip {
    ($($test:ident: $major:literal;)*) => {$(
        #[tokio::test]
        async fn $test() {
            regression_database_round_trip($major).await;
        }
    )*};
}

regression_database_round_trip! {
    the_regression_database_round_trips_on_13_as_far_as_it_loads: 13;
    the_regression_database_round_trips_on_14_as_far_as_it_loads: 14;
    the_regression_database_round_trips_on_16_as_far_as_it_loads: 16;
    the_regression_database_round_trips_on_17_as_far_as_it_loads: 17;
    the_regression_database_round_trips_on_18_as_far_as_it_loads: 18;
}

/// Onto 18, a GIN index over a table past `min_parallel_table_scan_size`, its table's only
/// build, is built with the parallel worker of the connection left with nothing to do; the
/// index is the source's: the same definition, amcheck's GIN check passes, and a query
/// through it finds what a scan of the table finds.
#[tokio::test]
async fn a_restore_onto_18_builds_a_big_gin_index_with_a_parallel_worker_as_the_source_has_it() {
    let Some(cluster) = cluster_of(18) else {
        return;
    };
    let source = fresh_database_on(cluster, "parallel gin source");
    source.psql(
        "CREATE TABLE public.docs (id bigint NOT NULL, payload jsonb NOT NULL);
         INSERT INTO public.docs SELECT g, jsonb_build_object('user', g % 1000,
             'tags', jsonb_build_array('t' || (g % 50), 't' || (g % 7)), 'meta', md5(g::text))
         FROM generate_series(1, 120000) g;
         CREATE INDEX docs_payload ON public.docs USING gin (payload);",
    );
    let (_dir, store) = file_store();
    let manifest = take(&source, &store, &options(&source)).await.unwrap();
    let target = fresh_database_on(cluster, "parallel gin target");
    let logs = backstop_tests::logs::capture();
    restore_into(&manifest, &store, &target, RestoreOptions::new(2))
        .await
        .unwrap();
    let logs = logs.text();
    let heap: u64 = target
        .psql("SELECT pg_relation_size('public.docs')")
        .trim()
        .parse()
        .unwrap();
    assert!(
        heap >= 8 << 20,
        "the table is too small for a parallel build: {heap} bytes"
    );
    assert!(
        logs.lines()
            .any(|l| l.contains("index build with parallel workers")
                && l.contains("public.docs_payload")
                && l.contains("workers=1")),
        "{logs}"
    );

    let definitions =
        "SELECT indexdef FROM pg_indexes WHERE schemaname = 'public' ORDER BY indexname";
    assert_eq!(target.psql(definitions), source.psql(definitions));
    target.psql("CREATE EXTENSION amcheck");
    target.psql("SELECT gin_index_check('public.docs_payload')");
    let through_the_index = target.psql(
        "SET enable_seqscan = off; EXPLAIN (COSTS OFF) SELECT count(*) FROM public.docs WHERE payload @> '{\"tags\": [\"t7\"]}'",
    );
    assert!(
        through_the_index.contains("docs_payload"),
        "{through_the_index}"
    );
    let count = "SELECT count(*) FROM public.docs WHERE payload @> '{\"tags\": [\"t7\"]}'";
    let by_index = target.psql(&format!("SET enable_seqscan = off; {count}"));
    let by_scan = target.psql(&format!(
        "SET enable_bitmapscan = off; SET enable_indexscan = off; {count}"
    ));
    assert_eq!(by_index, by_scan);
    assert_eq!(by_index, source.psql(count));
}
