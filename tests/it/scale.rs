//! Scale in objects: a schema-per-tenant database of a thousand small tables backs up into a
//! handful of parts and restores identically.

use backstop_tests::datasets::tenant_schemas;
use backstop_tests::postgres::fresh_database;

use crate::engine::{options, round_trip};

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
