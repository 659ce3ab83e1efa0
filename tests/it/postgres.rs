//! The PostgreSQL harness, reached through Backstop's own connection code.

use backstop_tests::postgres::{cluster, fresh_database};

#[tokio::test]
async fn each_test_gets_its_own_empty_database_on_one_cluster() {
    let first = fresh_database("harness first");
    let second = fresh_database("harness second");
    assert_ne!(first.name, second.name);

    let config = backstop::pg::parse_url(&first.url()).unwrap();
    let client = backstop::pg::connect(&config).await.unwrap();
    client
        .batch_execute("CREATE TABLE t (id int); INSERT INTO t VALUES (1), (2)")
        .await
        .unwrap();
    let count: i64 = client
        .query_one("SELECT count(*) FROM t", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(count, 2);
    assert_eq!(
        second
            .psql("SELECT count(*) FROM pg_class WHERE relname = 't'")
            .trim(),
        "0"
    );

    let name = first.name.clone();
    drop(client);
    drop(first);
    let exists = cluster().psql(
        "postgres",
        &format!("SELECT count(*) FROM pg_database WHERE datname = '{name}'"),
    );
    assert_eq!(
        exists.trim(),
        "0",
        "the test database is dropped with its handle"
    );
}

#[tokio::test]
async fn a_wrong_password_is_refused_without_echoing_it() {
    let db = fresh_database("harness password");
    let url = db.url().replace(&cluster().password, "not-the-password");
    let config = backstop::pg::parse_url(&url).unwrap();
    let error = backstop::pg::connect(&config)
        .await
        .unwrap_err()
        .to_string();
    assert!(error.contains("password authentication failed"), "{error}");
    assert!(
        !error.contains("not-the-password"),
        "the password leaked: {error}"
    );
}
