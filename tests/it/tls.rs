//! TLS to PostgreSQL: each sslmode against the harness server, whose certificate is signed by
//! a throwaway CA and issued for `localhost` only.

use backstop_tests::postgres::{cluster, fresh_database};

async fn ssl_in_use(url: &str) -> Result<bool, String> {
    let target = backstop::pg::parse_url(url).map_err(|e| e.to_string())?;
    let client = backstop::pg::connect(&target)
        .await
        .map_err(|e| e.to_string())?;
    let row = client
        .query_one(
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .await
        .map_err(|e| e.to_string())?;
    Ok(row.get(0))
}

fn url(host: &str, database: &str, params: &str) -> String {
    let c = cluster();
    format!(
        "postgresql://{}:{}@{host}:{}/{database}?{params}",
        c.user, c.password, c.port
    )
}

#[tokio::test]
async fn every_sslmode_behaves_as_libpq_documents() {
    let db = fresh_database("tls modes");
    let ca = cluster().ca_cert.display().to_string();
    let other = cluster().other_ca_cert.display().to_string();

    assert_eq!(
        ssl_in_use(&url("127.0.0.1", &db.name, "sslmode=disable")).await,
        Ok(false)
    );
    assert_eq!(
        ssl_in_use(&url("127.0.0.1", &db.name, "sslmode=prefer")).await,
        Ok(true)
    );
    assert_eq!(
        ssl_in_use(&url("127.0.0.1", &db.name, "sslmode=require")).await,
        Ok(true)
    );
    // verify-ca checks the chain, not the name: 127.0.0.1 is not on the certificate.
    assert_eq!(
        ssl_in_use(&url(
            "127.0.0.1",
            &db.name,
            &format!("sslmode=verify-ca&sslrootcert={ca}")
        ))
        .await,
        Ok(true)
    );
    assert_eq!(
        ssl_in_use(&url(
            "localhost",
            &db.name,
            &format!("sslmode=verify-full&sslrootcert={ca}")
        ))
        .await,
        Ok(true)
    );

    let error = ssl_in_use(&url(
        "127.0.0.1",
        &db.name,
        &format!("sslmode=verify-full&sslrootcert={ca}"),
    ))
    .await
    .unwrap_err();
    assert!(
        error.contains("cannot connect to database") && !error.contains(&cluster().password),
        "{error}"
    );
    let error = ssl_in_use(&url(
        "localhost",
        &db.name,
        &format!("sslmode=verify-ca&sslrootcert={other}"),
    ))
    .await
    .unwrap_err();
    assert!(error.contains("cannot connect to database"), "{error}");
    let error = ssl_in_use(&url(
        "localhost",
        &db.name,
        "sslmode=verify-full&sslrootcert=/nonexistent/ca.pem",
    ))
    .await
    .unwrap_err();
    assert!(error.contains("/nonexistent/ca.pem"), "{error}");
}

#[test]
fn backup_and_restore_run_over_verified_tls() {
    let source = fresh_database("tls backup");
    source.psql("CREATE TABLE public.t (id int PRIMARY KEY, v text); INSERT INTO public.t SELECT g, g::text FROM generate_series(1, 1000) g;");
    let target = fresh_database("tls restore");
    let ca = cluster().ca_cert.display().to_string();
    let secure = |db: &str| {
        url(
            "localhost",
            db,
            &format!("sslmode=verify-full&sslrootcert={ca}"),
        )
    };
    let dir = tempfile::tempdir().unwrap();
    let store = format!("file://{}", dir.path().display());
    let output = crate::support::backstop(
        &["backup", "--db", &secure(&source.name), "--to", &store],
        &[],
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let output = crate::support::backstop(
        &[
            "restore",
            "--from",
            &store,
            "--database-id",
            &source.name,
            "--db",
            &secure(&target.name),
        ],
        &[],
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(source.pg_dump(), target.pg_dump());
}
