//! `backstop advise` against real PostgreSQL: four foreign keys without an index (a fifth is
//! covered by a composite primary key) become four `CREATE INDEX CONCURRENTLY` statements and
//! an `ANALYZE` in the next numbered migration, with the duplicate index as a commented-out
//! drop; psql applies the file as written; a second advice proposes nothing; `--check`
//! confirms each index valid, and names one a failed `CONCURRENTLY` build left INVALID with
//! its fix.

use backstop_tests::postgres::fresh_database;

use crate::support::{backstop, backstop_ok};

fn stdout(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[tokio::test]
async fn unindexed_foreign_keys_become_a_migration_psql_applies_and_check_confirms() {
    let db = fresh_database("advise");
    db.psql(
        r#"CREATE TABLE customers (id int PRIMARY KEY);
         CREATE TABLE shops (id int, region text, PRIMARY KEY (id, region));
         CREATE TABLE products (id int PRIMARY KEY);
         CREATE TABLE orders (id int PRIMARY KEY, customer_id int REFERENCES customers,
                              shop_id int, region text, FOREIGN KEY (shop_id, region) REFERENCES shops);
         CREATE TABLE "Order Lines" (order_id int REFERENCES orders, product_id int REFERENCES products,
                                     PRIMARY KEY (order_id, product_id));
         CREATE TABLE reviews (id int PRIMARY KEY, product_id int REFERENCES products);
         CREATE INDEX reviews_id_copy ON reviews (id);
         INSERT INTO customers SELECT generate_series(1, 100);
         INSERT INTO products SELECT generate_series(1, 100);
         INSERT INTO reviews SELECT g, 1 + g % 100 FROM generate_series(1, 1000) g;"#,
    );
    let migrations = tempfile::tempdir().unwrap();
    std::fs::write(migrations.path().join("00019_orders.sql"), "-- earlier\n").unwrap();
    let store_dir = tempfile::tempdir().unwrap();
    let store = format!("file://{}", store_dir.path().display());
    let url = db.url();

    let written = backstop_ok(
        &[
            "advise",
            "--db",
            &url,
            "--out",
            &migrations.path().to_string_lossy(),
            "--store",
            &store,
        ],
        &[],
    );
    assert!(
        stdout(&written).contains("4 index(es) to create"),
        "{}",
        stdout(&written)
    );
    let file = migrations.path().join("00020_add_missing_indexes.sql");
    let sql = std::fs::read_to_string(&file).expect("the next numbered migration");
    let creates: Vec<&str> = sql
        .lines()
        .filter(|l| l.starts_with("CREATE INDEX CONCURRENTLY IF NOT EXISTS"))
        .collect();
    assert_eq!(creates.len(), 4, "{sql}");
    for expected in [
        "orders_customer_id_fk_idx ON public.orders (customer_id)",
        "orders_shop_id_region_fk_idx ON public.orders (shop_id, region)",
        r#""Order Lines_product_id_fk_idx" ON public."Order Lines" (product_id)"#,
        "reviews_product_id_fk_idx ON public.reviews (product_id)",
    ] {
        assert!(
            creates.iter().any(|c| c.contains(expected)),
            "{expected} in {sql}"
        );
    }
    assert!(
        !sql.contains("order_id_fk_idx"),
        "the composite key covers order_id: {sql}"
    );
    // The table a foreign key makes the server scan is named with its size (an ordinary
    // table's own: reviews holds 1,000 rows in five 8 KiB pages).
    assert!(
        sql.contains("scans all of public.reviews (40.0 KiB)"),
        "{sql}"
    );
    assert!(sql.contains("-- DROP INDEX CONCURRENTLY IF EXISTS public.reviews_id_copy;"));
    assert!(sql.contains("ANALYZE public.orders;") && sql.contains("ANALYZE public.reviews;"));

    // psql applies it as written, each CONCURRENTLY statement on its own.
    db.psql_file(&file);
    let again = stdout(&backstop_ok(&["advise", "--db", &url], &[]));
    assert!(
        !again.lines().any(|l| l.starts_with("CREATE INDEX")),
        "a second advice proposes nothing: {again}"
    );
    assert!(again.contains("Every foreign key has an index"), "{again}");

    let checked = stdout(&backstop_ok(
        &["advise", "--check", "--db", &url, "--store", &store],
        &[],
    ));
    assert_eq!(checked.matches(" valid").count(), 4, "{checked}");

    // A CONCURRENTLY build that fails leaves its index behind, INVALID.
    let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    client
        .batch_execute(
            "DROP INDEX public.reviews_product_id_fk_idx;
             INSERT INTO reviews VALUES (5000, 1);",
        )
        .await
        .unwrap();
    let failed = client
        .batch_execute(
            "CREATE UNIQUE INDEX CONCURRENTLY reviews_product_id_fk_idx ON reviews (product_id)",
        )
        .await;
    assert!(
        failed.is_err(),
        "duplicate product ids make the unique build fail"
    );
    let output = backstop(&["advise", "--check", "--db", &url, "--store", &store], &[]);
    assert!(!output.status.success(), "an INVALID index fails the check");
    let report = stdout(&output);
    assert!(report.contains("INVALID"), "{report}");
    assert!(
        report.contains("DROP INDEX CONCURRENTLY IF EXISTS public.reviews_product_id_fk_idx"),
        "{report}"
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("1 of 4 proposed indexes"), "{stderr}");
}
