//! Scale in objects: a schema-per-tenant database of a thousand small tables backs up into a
//! handful of parts and restores identically.

use backstop_tests::postgres::fresh_database;

use crate::engine::{options, round_trip};

/// `tenants` schemas of ten tables each: a key, a foreign key to the previous table, an index
/// and 20 rows per table (the shape of a multi-tenant SaaS database).
pub fn tenant_schemas(tenants: usize) -> String {
    (1..=tenants)
        .map(|s| {
            format!(
                "DO $$ DECLARE t int; BEGIN CREATE SCHEMA tenant_{s}; FOR t IN 1..10 LOOP \
                 EXECUTE format('CREATE TABLE tenant_{s}.t%s (id serial PRIMARY KEY, parent int %s, label text, \
                     created_at timestamptz DEFAULT now())', t, \
                     CASE WHEN t > 1 THEN format('REFERENCES tenant_{s}.t%s', t - 1) ELSE '' END); \
                 EXECUTE format('CREATE INDEX ON tenant_{s}.t%s (label)', t); \
                 EXECUTE format('INSERT INTO tenant_{s}.t%s (parent, label) SELECT %s, ''row '' || g \
                     FROM generate_series(1, 20) g', t, CASE WHEN t > 1 THEN 'g' ELSE 'NULL' END); \
                 END LOOP; END $$;\n"
            )
        })
        .collect()
}

#[tokio::test]
async fn a_thousand_small_tables_share_a_few_parts_and_round_trip() {
    let source = fresh_database("thousand tables");
    let script = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(script.path(), tenant_schemas(100)).unwrap();
    source.psql_file(script.path());
    let manifest = round_trip(&source, &options(&source), 2, "a thousand tables").await;
    let tables = manifest.tables();
    assert_eq!(tables.len(), 1000);
    let data_parts = manifest
        .parts
        .iter()
        .filter(|p| p.blocks().next().is_some())
        .count();
    assert!(
        data_parts <= 10,
        "{data_parts} data parts for 1000 small tables"
    );
    assert_eq!(manifest.total_rows(), 20_000);
}
