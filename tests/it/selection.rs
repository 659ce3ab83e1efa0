//! Inside a backup and parts of it: `backstop show` lists a backup's tables, rows, items and
//! exclusions as `pg_restore -l` does; a restore takes tables by pattern (`-t 'app.*'`), by
//! schema (`-n`), without some tables' rows (`--exclude-table-data`), the schema alone (`-s`),
//! and a `--filter` file in pg_dump 17's syntax; a pattern that matches nothing, or a filter
//! line a restore does not take, is refused before anything changes.

use backstop_tests::postgres::{TestDb, fresh_database};

use crate::support::{backstop, backstop_ok, single_error_line};

fn source() -> TestDb {
    let db = fresh_database("selection source");
    db.psql(
        "CREATE SCHEMA app; CREATE SCHEMA audit;
         CREATE TABLE app.orders (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, total numeric);
         CREATE TABLE app.order_lines (order_id bigint REFERENCES app.orders, sku text);
         CREATE INDEX order_lines_sku ON app.order_lines (sku);
         CREATE TABLE audit.log (at timestamptz DEFAULT now(), what text);
         CREATE INDEX log_at ON audit.log (at);
         CREATE VIEW app.big_orders AS SELECT * FROM app.orders WHERE total > 100;
         INSERT INTO app.orders (total) SELECT g FROM generate_series(1, 200) g;
         INSERT INTO app.order_lines SELECT g, 'sku' || g FROM generate_series(1, 200) g;
         INSERT INTO audit.log (what) SELECT 'event ' || g FROM generate_series(1, 1000) g;",
    );
    db
}

/// What a restored database holds: each table with its row count (absent: `-`).
fn counts(db: &TestDb) -> String {
    db.psql(
        "SELECT string_agg(t, ' ' ORDER BY t) FROM (
           SELECT n.nspname || '.' || c.relname || '=' ||
                  (xpath('/row/n/text()', query_to_xml(format('SELECT count(*) AS n FROM %I.%I', n.nspname, c.relname), false, true, '')))[1]::text AS t
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE c.relkind = 'r' AND n.nspname IN ('app', 'audit')) s",
    )
    .trim()
    .to_string()
}

#[test]
fn show_lists_what_a_backup_holds_and_restores_take_parts_of_it() {
    let db = source();
    let dir = tempfile::tempdir().unwrap();
    let store = format!("file://{}/store", dir.path().display());
    backstop_ok(&["backup", "--db", &db.url(), "--to", &store], &[]);
    let from = ["--from", store.as_str(), "--database-id", db.name.as_str()];

    let mut args = vec!["show"];
    args.extend(from);
    args.push("--json");
    let shown: serde_json::Value = serde_json::from_slice(&backstop_ok(&args, &[]).stdout).unwrap();
    let tables: Vec<(String, u64)> = shown["tables"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["table"].as_str().unwrap().to_string(),
                t["rows"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        tables,
        [
            ("app.order_lines".to_string(), 200),
            ("app.orders".to_string(), 200),
            ("audit.log".to_string(), 1000)
        ]
    );
    let items: Vec<String> = shown["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            format!(
                "{} {} {}",
                i["section"].as_str().unwrap(),
                i["kind"].as_str().unwrap(),
                i["name"].as_str().unwrap()
            )
        })
        .collect();
    for expected in [
        "pre-data view app.big_orders",
        "post-data index app.order_lines_sku",
        "post-data foreign-key app.order_lines_order_id_fkey",
    ] {
        assert!(
            items.iter().any(|i| i == expected),
            "{expected} not in {items:?}"
        );
    }
    assert_eq!(shown["excluded"], serde_json::json!([]));
    assert_eq!(shown["encrypted"], false);
    let mut args = vec!["show"];
    args.extend(from);
    let text = String::from_utf8(backstop_ok(&args, &[]).stdout).unwrap();
    assert!(
        text.contains("audit.log")
            && text.contains("1000")
            && text.contains("; post-data; index; app.order_lines_sku"),
        "{text}"
    );

    let restore = |extra: &[&str]| {
        let target = fresh_database("selection target");
        let url = target.url();
        let mut args = vec!["restore", "--db", url.as_str()];
        args.extend(from);
        args.extend_from_slice(extra);
        let output = backstop(&args, &[]);
        (target, output)
    };
    let restored = |extra: &[&str]| {
        let (target, output) = restore(extra);
        assert!(
            output.status.success(),
            "{extra:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        target
    };

    let by_pattern = restored(&["-t", "app.*"]);
    assert_eq!(counts(&by_pattern), "app.order_lines=200 app.orders=200");
    let by_schema = restored(&["-n", "audit"]);
    assert_eq!(counts(&by_schema), "audit.log=1000");
    let without_log_rows = restored(&["--exclude-table-data", "audit.*"]);
    assert_eq!(
        counts(&without_log_rows),
        "app.order_lines=200 app.orders=200 audit.log=0"
    );
    assert_eq!(
        without_log_rows
            .psql("SELECT count(*) FROM pg_indexes WHERE indexname = 'log_at'")
            .trim(),
        "1",
        "a table without its rows keeps its indexes"
    );
    let schema_only = restored(&["-s"]);
    assert_eq!(
        counts(&schema_only),
        "app.order_lines=0 app.orders=0 audit.log=0"
    );
    assert_eq!(
        schema_only
            .psql("INSERT INTO app.orders (total) VALUES (1) RETURNING id")
            .trim(),
        "1",
        "only the schema: the identity starts where a new one does"
    );
    assert_eq!(
        schema_only
            .psql("SELECT count(*) FROM app.big_orders")
            .trim(),
        "0"
    );

    let filter = dir.path().join("restore.filter");
    std::fs::write(
        &filter,
        "# the orders, without the audit trail's rows\ninclude table app.orders\ninclude schema audit\nexclude table_data audit.log\n",
    )
    .unwrap();
    let filtered = restored(&["--filter", filter.to_str().unwrap()]);
    assert_eq!(counts(&filtered), "app.orders=200 audit.log=0");

    let (untouched, output) = restore(&["-t", "app.nothing_*"]);
    let line = single_error_line(&output);
    assert!(line.contains("app.nothing_*"), "{line}");
    assert_eq!(counts(&untouched), "");
    std::fs::write(
        &filter,
        "include table app.orders\nexclude function app.f\n",
    )
    .unwrap();
    let (untouched, output) = restore(&["--filter", filter.to_str().unwrap()]);
    let line = single_error_line(&output);
    assert!(
        line.contains("line 2") && line.contains("exclude function app.f"),
        "{line}"
    );
    assert_eq!(counts(&untouched), "");
}

/// pg_restore's sections: pre-data, then data (`-a`), then post-data, one after the other,
/// end where a whole restore does; the data goes only into tables that are there and empty
/// (or emptied with `--clean`, foreign keys and all), and says what is missing otherwise.
#[test]
fn sections_restored_one_after_another_make_the_whole() {
    let db = source();
    let dir = tempfile::tempdir().unwrap();
    let store = format!("file://{}/store", dir.path().display());
    backstop_ok(&["backup", "--db", &db.url(), "--to", &store], &[]);
    let target = fresh_database("sections target");
    let url = target.url();
    let run = |extra: &[&str]| {
        let mut args = vec![
            "restore",
            "--from",
            store.as_str(),
            "--database-id",
            db.name.as_str(),
            "--db",
            url.as_str(),
        ];
        args.extend_from_slice(extra);
        backstop(&args, &[])
    };
    let ok = |extra: &[&str]| {
        let output = run(extra);
        assert!(
            output.status.success(),
            "{extra:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    };
    let objects = |db: &TestDb| {
        db.psql(
            "SELECT (SELECT count(*) FROM pg_indexes WHERE schemaname IN ('app', 'audit')) || ' indexes, ' ||
                    (SELECT count(*) FROM pg_constraint WHERE contype = 'f') || ' foreign keys'",
        )
        .trim()
        .to_string()
    };

    // The data before its tables: refused, naming the section that makes them.
    let line = single_error_line(&run(&["-a"]));
    assert!(line.contains("--section pre-data"), "{line}");

    ok(&["--section", "pre-data"]);
    assert_eq!(
        counts(&target),
        "app.order_lines=0 app.orders=0 audit.log=0"
    );
    assert_eq!(objects(&target), "0 indexes, 0 foreign keys");
    ok(&["-a"]);
    assert_eq!(
        counts(&target),
        "app.order_lines=200 app.orders=200 audit.log=1000"
    );
    // Rows again into tables that hold some: refused, and with --clean replaced.
    let line = single_error_line(&run(&["-a"]));
    assert!(
        line.contains("already hold rows") && line.contains("--clean"),
        "{line}"
    );
    ok(&["--section", "post-data"]);
    assert_eq!(objects(&target), "3 indexes, 1 foreign keys");
    ok(&["-a", "--clean"]);
    assert_eq!(
        counts(&target),
        "app.order_lines=200 app.orders=200 audit.log=1000"
    );
    assert_eq!(
        target
            .psql("INSERT INTO app.orders (total) VALUES (1) RETURNING id")
            .trim(),
        "201",
        "the sequence value is data: set where the source's stood"
    );
    let whole = fresh_database("sections whole");
    backstop_ok(
        &[
            "restore",
            "--from",
            &store,
            "--database-id",
            &db.name,
            "--db",
            &whole.url(),
        ],
        &[],
    );
    assert_eq!(objects(&target), objects(&whole));
    target.psql("DELETE FROM app.orders WHERE id = 201");
    assert_eq!(counts(&target), counts(&whole));
}
