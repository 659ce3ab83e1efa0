//! `backstop compare` against real PostgreSQL: a table with a GENERATED ALWAYS identity key, a
//! generated column and a jsonb column loses rows, has some changed and gains one after a copy
//! of it was restored beside it; compare counts the missing, changed and extra rows (in text
//! and JSON), changes nothing, and the SQL it writes (a new 0600 file, no row value in it) puts
//! every recovered row back as it was with psql, leaving the extra one. A table without a key
//! is compared by whole rows, NULLs matching NULLs. A copy that does not exist is one line
//! naming it.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

use backstop_tests::postgres::{TestDb, fresh_database};

use crate::support::{backstop, backstop_bin, backstop_ok, single_error_line};

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The rows of `table` as one digest, in key order (or in text order without a key).
fn digest(db: &TestDb, table: &str) -> String {
    db.psql(&format!(
        "SELECT count(*) || ' ' || md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) FROM {table} t"
    ))
    .trim()
    .to_string()
}

/// `rows` of each difference in `compare --json`'s output.
fn counts(json: &serde_json::Value) -> Vec<(String, u64)> {
    json["differences"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["difference"].as_str().unwrap().to_string(),
                d["rows"].as_u64().unwrap(),
            )
        })
        .collect()
}

/// Runs the CLI in `dir` (where the put-back file goes by default).
fn backstop_in(dir: &Path, args: &[&str]) -> Output {
    let output = Command::new(backstop_bin())
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

#[test]
fn compare_counts_what_an_hour_changed_and_its_sql_puts_the_rows_back() {
    let db = fresh_database("compare");
    db.psql(
        r#"CREATE SCHEMA app;
         CREATE TABLE app.orders (
           id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
           customer text NOT NULL,
           total numeric(10, 2),
           with_tax numeric GENERATED ALWAYS AS (total * 1.2) STORED,
           details jsonb);
         INSERT INTO app.orders (customer, total, details)
           SELECT 'customer ' || g, g * 1.5, jsonb_build_object('n', g, 'tags', jsonb_build_array('a', g))
           FROM generate_series(1, 50) g;
         UPDATE app.orders SET details = NULL WHERE id IN (7, 8);
         CREATE SCHEMA recovered;
         CREATE TABLE recovered.orders (LIKE app.orders INCLUDING ALL);
         INSERT INTO recovered.orders (id, customer, total, details) OVERRIDING SYSTEM VALUE
           SELECT id, customer, total, details FROM app.orders;
         -- The bad hour: three orders deleted, three changed (one NULL became a value), one
         -- written since, and one updated to what it was.
         DELETE FROM app.orders WHERE id IN (3, 4, 40);
         UPDATE app.orders SET total = total + 1 WHERE id = 5;
         UPDATE app.orders SET details = details || '{"x": 1}' WHERE id = 6;
         UPDATE app.orders SET details = '{"n": 7}' WHERE id = 7;
         UPDATE app.orders SET customer = customer WHERE id = 9;
         INSERT INTO app.orders (customer, total) VALUES ('written since', 1);"#,
    );
    let url = db.url();
    let dir = tempfile::tempdir().unwrap();
    let live_before = digest(&db, "app.orders");
    let recovered_before = digest(&db, "recovered.orders");

    let compare = ["compare", "--db", &url, "--table", "app.orders", "--with"];
    let text = stdout(&backstop_in(
        dir.path(),
        &[&compare[..], &["recovered.orders"]].concat(),
    ));
    assert!(
        text.contains("on the primary key orders_pkey (id)"),
        "{text}"
    );
    assert!(
        text.contains(
            "missing: 3 (in recovered.orders, not in app.orders); e.g. id=3, id=4, id=40"
        ),
        "{text}"
    );
    assert!(
        text.contains("changed: 3 (same key, some column differs); e.g. id=5, id=6, id=7"),
        "{text}"
    );
    assert!(
        text.contains(
            "extra:   1 (in app.orders, not in recovered.orders; left as they are); e.g. id=51"
        ),
        "{text}"
    );
    assert!(text.contains("wrote orders.putback.sql"), "{text}");
    let file = dir.path().join("orders.putback.sql");
    let mode = std::fs::metadata(&file).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let sql = std::fs::read_to_string(&file).unwrap();
    assert!(sql.contains("OVERRIDING SYSTEM VALUE"), "{sql}");
    assert!(
        sql.contains("-- Not set by the UPDATE: with_tax (generated)."),
        "{sql}"
    );
    assert!(
        !sql.contains("customer 3") && !sql.contains("DELETE"),
        "{sql}"
    );

    // A file there is never replaced; --json says the same counts.
    let again = backstop(
        &[
            &compare[..],
            &["recovered.orders", "--output", &file.display().to_string()],
        ]
        .concat(),
        &[],
    );
    assert_eq!(again.status.code(), Some(1));
    assert!(single_error_line(&again).contains("already exists"));
    let other = dir.path().join("other.sql");
    let json: serde_json::Value = serde_json::from_slice(
        &backstop_ok(
            &[
                &compare[..],
                &[
                    "recovered.orders",
                    "--output",
                    &other.display().to_string(),
                    "--json",
                ],
            ]
            .concat(),
            &[],
        )
        .stdout,
    )
    .unwrap();
    assert_eq!(
        counts(&json),
        [
            ("missing".to_string(), 3),
            ("changed".to_string(), 3),
            ("extra".to_string(), 1)
        ]
    );
    assert_eq!(json["matched_on"], "primary-key");
    assert_eq!(json["key_columns"], serde_json::json!(["id"]));
    assert_eq!(
        json["differences"][0]["example_keys"],
        serde_json::json!([["3"], ["4"], ["40"]])
    );
    assert_eq!(json["written"], other.display().to_string());
    assert_eq!(
        std::fs::read_to_string(&other).unwrap().lines().count(),
        sql.lines().count()
    );

    // Comparing changed nothing; the SQL puts every recovered row back as it was.
    assert_eq!(digest(&db, "app.orders"), live_before);
    assert_eq!(digest(&db, "recovered.orders"), recovered_before);
    db.psql_file(&file);
    assert_eq!(
        digest(&db, "(SELECT * FROM app.orders WHERE id <= 50)"),
        recovered_before
    );
    assert_eq!(
        db.psql("SELECT customer FROM app.orders WHERE id > 50")
            .trim(),
        "written since"
    );
    let after = stdout(&backstop_in(
        dir.path(),
        &[&compare[..], &["recovered.orders", "--output", "after.sql"]].concat(),
    ));
    assert!(
        after.contains("missing: 0") && after.contains("changed: 0"),
        "{after}"
    );
    assert!(after.contains("nothing to put back"), "{after}");

    // Without a key: whole rows, a NULL matching a NULL; a changed row is one missing and one
    // extra, and the SQL inserts the recovered version beside the live one.
    db.psql(
        "CREATE TABLE app.log (at int, what text);
         INSERT INTO app.log VALUES (1, 'one'), (2, NULL), (3, 'three'), (4, 'four');
         CREATE TABLE recovered.log AS TABLE app.log;
         DELETE FROM app.log WHERE at = 3;
         UPDATE app.log SET what = 'FOUR' WHERE at = 4;",
    );
    let json: serde_json::Value = serde_json::from_slice(
        &backstop_ok(
            &[
                "compare",
                "--db",
                &url,
                "--table",
                "app.log",
                "--with",
                "recovered.log",
                "--output",
                &dir.path().join("log.sql").display().to_string(),
                "--json",
            ],
            &[],
        )
        .stdout,
    )
    .unwrap();
    assert_eq!(json["matched_on"], "whole-row");
    assert_eq!(
        counts(&json),
        [("missing".to_string(), 2), ("extra".to_string(), 1)],
        "{json:#}"
    );
    assert_eq!(
        json["differences"][0]["example_keys"],
        serde_json::json!([["3", "three"], ["4", "four"]])
    );
    assert!(json["message"].as_str().unwrap().contains("no primary key"));
    db.psql_file(&dir.path().join("log.sql"));
    assert_eq!(
        db.psql("SELECT string_agg(at || ':' || coalesce(what, 'NULL'), ' ' ORDER BY at, what COLLATE \"C\") FROM app.log")
            .trim(),
        "1:one 2:NULL 3:three 4:FOUR 4:four"
    );

    // A name two schemas have, and a copy that is not there: one line naming it, exit 1.
    let ambiguous = backstop(
        &[
            "compare",
            "--db",
            &url,
            "--table",
            "log",
            "--with",
            "recovered.log",
        ],
        &[],
    );
    let line = single_error_line(&ambiguous);
    assert!(
        line.contains("log names 2 tables") && line.contains("app.log, recovered.log"),
        "{line}"
    );

    let missing = backstop(&[&compare[..], &["recovered.nope"]].concat(), &[]);
    assert_eq!(missing.status.code(), Some(1));
    let line = single_error_line(&missing);
    assert!(line.contains("no table recovered.nope"), "{line}");
}
