//! A restored database plans like its source before any ANALYZE: the planner's statistics
//! of a backup taken on 15, 17 and 18, restored onto 18, are what pg_dump 18 prints of the
//! source (`--statistics-only`, pg_dump's own round trip as the oracle), and a reference
//! query's plan is the source's (on 18) and that of a copy made by `pg_dump --statistics |
//! psql` once VACUUM has given back the empty pages COPY leaves (a plain pg_restore plans
//! with tables a third bigger than they are). Onto a server before 18 the restore ANALYZEs
//! instead; `--no-statistics` gives none.

use std::sync::Arc;

use backstop::engine::manifest::Manifest;
use backstop::engine::restore::{RestoreOptions, RestoreReport, StatisticsOutcome};
use backstop::store::Store;
use backstop_tests::postgres::{TestDb, cluster_of, fresh_database_on};

use crate::engine::{file_store, options, take};

/// Tables of every shape statistics cover, autovacuum off so that only the restore gives the
/// copy its statistics: scalars with common values and histograms, arrays (element
/// statistics), ranges, an expression index, a partitioned table, a materialized view.
const SOURCE: &str = "
CREATE SCHEMA app;
CREATE TABLE app.customers (id int PRIMARY KEY, country text NOT NULL, tier int NOT NULL)
    WITH (autovacuum_enabled = false);
INSERT INTO app.customers SELECT g, (ARRAY['fr','de','us','jp','br'])[1 + g % 5], g % 3
    FROM generate_series(1, 5000) g;
CREATE TABLE app.orders (id int PRIMARY KEY, customer int NOT NULL REFERENCES app.customers,
    placed date NOT NULL, note text, tags text[], window_ int4range)
    WITH (autovacuum_enabled = false);
INSERT INTO app.orders SELECT g, 1 + g % 5000, date '2024-01-01' + g % 700,
    CASE WHEN g % 10 = 0 THEN NULL ELSE 'Note ' || (g % 97) END,
    ARRAY['t' || (g % 11), 'all'], int4range(g % 1000, g % 1000 + 1 + g % 30)
    FROM generate_series(1, 30000) g;
CREATE INDEX orders_customer ON app.orders (customer);
CREATE INDEX orders_note_lower ON app.orders (lower(note));
CREATE TABLE app.events (id int, kind int, at date) PARTITION BY RANGE (at);
CREATE TABLE app.events_2024 PARTITION OF app.events FOR VALUES FROM ('2024-01-01') TO ('2025-01-01')
    WITH (autovacuum_enabled = false);
CREATE TABLE app.events_2025 PARTITION OF app.events FOR VALUES FROM ('2025-01-01') TO ('2026-01-01')
    WITH (autovacuum_enabled = false);
INSERT INTO app.events SELECT g, g % 7, date '2024-01-01' + g % 730 FROM generate_series(1, 8000) g;
CREATE MATERIALIZED VIEW app.per_country AS
    SELECT country, count(*) AS customers FROM app.customers GROUP BY country;
ALTER MATERIALIZED VIEW app.per_country SET (autovacuum_enabled = false);
";

/// A query whose plan leans on every kind of statistic above.
const REFERENCE: &str = "EXPLAIN SELECT c.country, count(*) FROM app.orders o \
    JOIN app.customers c ON c.id = o.customer \
    WHERE c.country = 'jp' AND o.tags @> ARRAY['t3'] AND o.window_ && int4range(10, 20) \
    AND lower(o.note) = 'note 5' AND o.placed > date '2025-06-01' GROUP BY c.country";

const EVENTS: &str =
    "EXPLAIN SELECT kind, count(*) FROM app.events WHERE at >= date '2025-03-01' GROUP BY kind";

/// pg_dump 18's `--statistics-only` of `db`, without what differs by construction: the
/// source's version number, and `relallfrozen`, which a server before 18 does not keep.
fn statistics_of(db: &TestDb) -> String {
    db.cluster()
        .pg_dump_with(&db.name, &["--statistics-only", "--schema=app"])
        .lines()
        .filter(|l| !l.contains("'version',") && !l.contains("'relallfrozen',"))
        .filter(|l| !l.starts_with("--") && !l.trim().is_empty())
        .map(|l| format!("{}\n", l.trim_end_matches(',')))
        .collect()
}

/// Restores `manifest` into `target` with `options`: its report.
async fn restore(
    store: &Arc<dyn Store>,
    manifest: &Manifest,
    target: &TestDb,
    options: RestoreOptions,
) -> RestoreReport {
    let config = backstop::pg::parse_url(&target.url()).unwrap();
    backstop::engine::restore::restore(store.clone(), manifest, &config, &options, &|_| {})
        .await
        .unwrap()
}

fn plan_of(db: &TestDb, query: &str) -> String {
    db.psql(query)
}

async fn restored_onto_18(source_major: u32) {
    let (Some(source_cluster), Some(target_cluster)) = (cluster_of(source_major), cluster_of(18))
    else {
        return;
    };
    let source = fresh_database_on(source_cluster, &format!("statistics from {source_major}"));
    source.psql(SOURCE);
    source.psql("VACUUM ANALYZE");
    let (_dir, store) = file_store();
    let manifest = take(&source, &store, &options(&source)).await.unwrap();
    assert!(
        manifest.inventory["planner statistics"] >= 8,
        "{:?}",
        manifest.inventory
    );

    let restored = fresh_database_on(
        target_cluster,
        &format!("statistics onto 18 from {source_major}"),
    );
    let report = restore(&store, &manifest, &restored, RestoreOptions::new(2)).await;
    let StatisticsOutcome::Applied {
        relations,
        analyzed,
        dropped,
    } = &report.statistics
    else {
        panic!(
            "onto 18 the backup's statistics are applied: {:?}",
            report.statistics
        );
    };
    assert_eq!(
        (*relations as u64, *analyzed),
        (manifest.inventory["planner statistics"], 0)
    );
    assert!(dropped.is_empty(), "{dropped:?}");
    assert!(report.loaded_seconds <= report.ready_seconds);

    let expected = statistics_of(&source);
    assert!(
        expected.contains("'relname', 'orders_note_lower'"),
        "{expected}"
    );
    assert!(expected.contains("'most_common_elems'"), "{expected}");
    assert_eq!(
        statistics_of(&restored),
        expected,
        "the restored statistics are the source's (backup from {source_major})"
    );

    // pg_dump's own statistics round trip onto 18, its tables VACUUMed of the empty pages
    // COPY leaves at their ends (which pg_restore keeps, and the planner reads as rows) and
    // the statistics put back: the plans it gives are the plans ours give.
    let oracle = fresh_database_on(
        target_cluster,
        &format!("pg_dump statistics from {source_major}"),
    );
    let script = tempfile::NamedTempFile::new().unwrap();
    let dump_into_oracle = |options: &[&str]| {
        std::fs::write(
            script.path(),
            source.cluster().pg_dump_with(&source.name, options),
        )
        .unwrap();
        oracle.psql_file(script.path());
    };
    dump_into_oracle(&["--statistics", "--no-owner"]);
    oracle.psql("VACUUM");
    dump_into_oracle(&["--statistics-only"]);
    assert_eq!(statistics_of(&oracle), expected);
    for query in [REFERENCE, EVENTS] {
        assert_eq!(
            plan_of(&restored, query),
            plan_of(&oracle, query),
            "{query}"
        );
        if source_major == 18 {
            assert_eq!(
                plan_of(&restored, query),
                plan_of(&source, query),
                "{query}"
            );
        }
    }
}

#[tokio::test]
async fn statistics_of_a_15_backup_are_the_source_s_on_18() {
    restored_onto_18(15).await;
}

#[tokio::test]
async fn statistics_of_a_17_backup_are_the_source_s_on_18() {
    restored_onto_18(17).await;
}

#[tokio::test]
async fn statistics_of_an_18_backup_are_the_source_s_and_it_plans_alike() {
    restored_onto_18(18).await;
}

/// Onto 15 the target cannot import statistics: every restored table is ANALYZEd, the
/// partitioned and materialized ones too; `--no-statistics` leaves the planner without.
#[tokio::test]
async fn before_18_the_restore_analyzes_and_no_statistics_gives_none() {
    let Some(cluster) = cluster_of(15) else {
        return;
    };
    let source = fresh_database_on(cluster, "statistics onto 15");
    source.psql(SOURCE);
    source.psql("VACUUM ANALYZE");
    let (_dir, store) = file_store();
    let manifest = take(&source, &store, &options(&source)).await.unwrap();
    let analyzed_tables = "SELECT string_agg(relname, ',' ORDER BY relname) FROM pg_class c \
        JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'app' \
        AND c.relkind IN ('r', 'p', 'm') AND EXISTS (SELECT 1 FROM pg_stats s \
        WHERE s.schemaname = 'app' AND s.tablename = c.relname)";

    let restored = fresh_database_on(cluster, "analyzed on 15");
    let report = restore(&store, &manifest, &restored, RestoreOptions::new(2)).await;
    assert_eq!(
        report.statistics,
        StatisticsOutcome::Analyzed {
            tables: 6,
            dropped: Vec::new()
        }
    );
    assert_eq!(
        restored.psql(analyzed_tables).trim(),
        "customers,events,events_2024,events_2025,orders,per_country"
    );

    let bare = fresh_database_on(cluster, "no statistics on 15");
    let options = RestoreOptions {
        statistics: false,
        ..RestoreOptions::new(2)
    };
    let report = restore(&store, &manifest, &bare, options).await;
    assert_eq!(report.statistics, StatisticsOutcome::Skipped);
    assert_eq!(bare.psql(analyzed_tables).trim(), "");
}

/// Names and values that would break out of a badly quoted literal come back as themselves:
/// the copy's statistics are the source's, and nothing else ran.
#[tokio::test]
async fn hostile_names_and_values_in_statistics_are_only_data() {
    let Some(cluster) = cluster_of(18) else {
        return;
    };
    let source = fresh_database_on(cluster, "hostile statistics");
    source.psql(
        r#"CREATE SCHEMA app;
        CREATE TABLE app."it's'); DROP TABLE app.keep; --" ("a\'b" text, "x""y" int)
            WITH (autovacuum_enabled = false);
        INSERT INTO app."it's'); DROP TABLE app.keep; --"
            SELECT (ARRAY[E'o\'clock', E'back\\slash', '$$;DROP', '}{"'])[1 + g % 4], g % 3
            FROM generate_series(1, 400) g;
        CREATE TABLE app.keep (id int);"#,
    );
    source.psql("VACUUM ANALYZE");
    let (_dir, store) = file_store();
    let manifest = take(&source, &store, &options(&source)).await.unwrap();
    let restored = fresh_database_on(cluster, "hostile statistics restored");
    let report = restore(&store, &manifest, &restored, RestoreOptions::new(2)).await;
    assert!(
        matches!(&report.statistics, StatisticsOutcome::Applied { dropped, .. } if dropped.is_empty()),
        "{:?}",
        report.statistics
    );
    let expected = statistics_of(&source);
    assert!(
        expected.contains("DROP TABLE app.keep") && expected.contains("o''clock"),
        "{expected}"
    );
    assert_eq!(statistics_of(&restored), expected);
    assert_eq!(
        restored.psql("SELECT count(*) FROM app.keep").trim(),
        "0",
        "app.keep is still there"
    );
}
