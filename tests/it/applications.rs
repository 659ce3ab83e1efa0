//! Real application shapes that are not corpora: each backs up with no `--exclude`, restores,
//! and gives the same `pg_dump` output.

use backstop_tests::postgres::{cluster_of, fresh_database, fresh_database_on};

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
        .map(|blocks| blocks.iter().map(|(_, t)| t.rows).sum::<u64>());
    assert_eq!(
        srs,
        Some(1),
        "only the application's own projection is its data"
    );
}

/// Loads `fixture` into a fresh database on `major` and round-trips it with no `--exclude`.
async fn application_round_trip(fixture: &str, major: u32) {
    let Some(cluster) = cluster_of(major) else {
        return;
    };
    let source = fresh_database_on(cluster, fixture);
    {
        let _roles = ROLE_CREATION.lock().await;
        source.psql_file(
            &backstop_tests::workspace_root().join(format!("tests/fixtures/{fixture}.sql")),
        );
    }
    round_trip(
        &source,
        &options(&source),
        2,
        &format!("{fixture} on {major}"),
    )
    .await;
}

macro_rules! application_round_trip {
    ($($test:ident: $fixture:literal on $major:literal;)*) => {$(
        #[tokio::test]
        async fn $test() {
            application_round_trip($fixture, $major).await;
        }
    )*};
}

// A music-metadata database: ICU collations (one nondeterministic), text search on unaccent,
// trigram and earthdistance indexes.
application_round_trip! {
    a_music_metadata_database_round_trips_on_13: "music_metadata" on 13;
    a_music_metadata_database_round_trips_on_14: "music_metadata" on 14;
    a_music_metadata_database_round_trips_on_15: "music_metadata" on 15;
    a_music_metadata_database_round_trips_on_16: "music_metadata" on 16;
    a_music_metadata_database_round_trips_on_17: "music_metadata" on 17;
    a_music_metadata_database_round_trips_on_18: "music_metadata" on 18;
}

// A Rust web application's database: sqlx and diesel bookkeeping, tenants under RLS,
// extended statistics with targets.
application_round_trip! {
    a_rust_web_apps_database_round_trips_on_13: "web_app" on 13;
    a_rust_web_apps_database_round_trips_on_14: "web_app" on 14;
    a_rust_web_apps_database_round_trips_on_15: "web_app" on 15;
    a_rust_web_apps_database_round_trips_on_16: "web_app" on 16;
    a_rust_web_apps_database_round_trips_on_17: "web_app" on 17;
    a_rust_web_apps_database_round_trips_on_18: "web_app" on 18;
}
