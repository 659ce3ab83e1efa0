//! Real application shapes that are not corpora: each backs up with no `--exclude`, restores,
//! and gives the same `pg_dump` output.

use backstop_tests::postgres::fresh_database;

use crate::engine::{ROLE_CREATION, options, round_trip};

/// A PostGIS application (`tests/fixtures/postgis_app.sql`) on the default cluster, where
/// PostGIS is installed: geometry and geography columns, GiST indexes, a spatial view and
/// materialized view, and a projection of its own in `spatial_ref_sys`, whose added rows are
/// extension configuration data.
#[tokio::test]
async fn a_postgis_application_round_trips_with_its_own_spatial_reference_rows() {
    let source = fresh_database("postgis app");
    {
        let _roles = ROLE_CREATION.lock().await;
        source.psql_file(&backstop_tests::workspace_root().join("tests/fixtures/postgis_app.sql"));
    }
    let manifest = round_trip(&source, &options(&source), 2, "postgis app").await;
    let srs = manifest
        .tables()
        .get("public.spatial_ref_sys")
        .map(|parts| {
            parts
                .iter()
                .filter_map(|p| p.table.as_ref())
                .map(|t| t.rows)
                .sum::<u64>()
        });
    assert_eq!(
        srs,
        Some(1),
        "only the application's own projection is its data"
    );
}
