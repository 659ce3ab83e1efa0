//! `backstop incidents` over a real change stream: among ordinary small writes, a `DELETE`
//! without a `WHERE` is listed first, with its share of the table and the restore of the table
//! just before it; `--json` says the same; `--show` previews the keys it deleted; an
//! unreadable seal is named and fails the run after the list; a store without a stream says how
//! to start one.

use backstop_tests::postgres::{cluster, fresh_database};
use serde_json::Value;

use crate::support::{backstop, backstop_ok, single_error_line};

/// A few ordinary transactions: single rows updated, an order placed and another one removed.
fn small_writes(db: &backstop_tests::postgres::TestDb, round: u32) {
    for i in 1..=5 {
        let id = round * 10 + i;
        db.psql(&format!(
            "UPDATE accounts SET balance = balance + 1 WHERE id = {id};
             UPDATE orders SET note = 'paid' WHERE id = {id};
             INSERT INTO orders VALUES (100000 + {id}, 1, 'new');
             DELETE FROM orders WHERE id = 100000 + {id};"
        ));
    }
}

fn stdout(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn a_delete_without_where_is_listed_first_with_the_restore_just_before_it() {
    let db = fresh_database("incidents");
    db.psql(
        "CREATE TABLE orders (id int PRIMARY KEY, customer int, note text);
         CREATE TABLE accounts (id int PRIMARY KEY, owner text, balance numeric);
         INSERT INTO orders SELECT g, g % 50, 'order ' || g FROM generate_series(1, 1000) g;
         INSERT INTO accounts SELECT g, 'owner ' || g, g FROM generate_series(1, 200) g;",
    );
    let dir = tempfile::tempdir().unwrap();
    let store = format!("file://{}/backups", dir.path().display());
    let url = db.url();
    let id = db.name.as_str();
    // The first drain makes the slot and takes the backup the stream starts from.
    backstop_ok(&["stream", "--db", &url, "--to", &store], &[]);
    small_writes(&db, 1);
    let xid: u64 = db
        .psql("BEGIN; SELECT pg_current_xact_id(); DELETE FROM orders; COMMIT;")
        .trim()
        .parse()
        .unwrap();
    small_writes(&db, 2);
    backstop_ok(&["stream", "--db", &url, "--to", &store], &[]);

    let from = ["incidents", "--from", store.as_str(), "--database-id", id];
    let text = stdout(&backstop_ok(&from, &[]));
    let first = text
        .lines()
        .find(|l| l.starts_with("1. "))
        .unwrap_or_else(|| panic!("no incident listed:\n{text}"));
    assert!(
        first.contains(&format!("xid {xid}"))
            && first.contains("public.orders: 1000 deleted (100% of ~1000 rows)"),
        "{text}"
    );
    assert!(
        !text.contains("\n2. "),
        "ordinary writes were listed:\n{text}"
    );
    let command = format!(
        "backstop restore --from {store} --database-id {id} --tables public.orders \
         --before-xid {xid} --into-schema recovered --db \"$DATABASE_URL\""
    );
    assert!(
        text.lines().any(|l| l.trim() == command),
        "no line is `{command}`:\n{text}"
    );

    let json: Value =
        serde_json::from_slice(&backstop_ok(&[&from[..], &["--json"]].concat(), &[]).stdout)
            .unwrap();
    let incidents = json["incidents"].as_array().unwrap();
    assert_eq!(incidents.len(), 1, "{json:#}");
    let incident = &incidents[0];
    assert_eq!(incident["xid"], xid, "{json:#}");
    assert_eq!(incident["pattern"], "mass-delete");
    assert_eq!(incident["fix"], command.as_str());
    assert!(incident["role"].is_null());
    let table = &incident["tables"][0];
    assert_eq!(table["table"], "public.orders");
    assert_eq!(table["deletes"], 1000);
    assert_eq!(table["rows_before"], 1000);
    assert_eq!(table["share"], 1.0);
    assert!(json["unreadable_segments"].as_array().unwrap().is_empty());

    let xid_text = xid.to_string();
    let show = [&from[..], &["--show", &xid_text, "--limit", "5"]].concat();
    let shown = stdout(&backstop_ok(&show, &[]));
    assert!(shown.contains(&command), "{shown}");
    assert!(
        shown.contains("public.orders: 1000 change(s); the first 5:"),
        "{shown}"
    );
    assert_eq!(
        shown
            .lines()
            .filter(|l| l.trim().starts_with("DELETE id="))
            .count(),
        5,
        "{shown}"
    );
    assert!(
        shown
            .contains("old values beyond the key are not in the stream (replica identity DEFAULT)"),
        "{shown}"
    );
    let shown: Value =
        serde_json::from_slice(&backstop_ok(&[&show[..], &["--json"]].concat(), &[]).stdout)
            .unwrap();
    let orders = &shown["tables"][0];
    assert_eq!(orders["changes"], 1000, "{shown:#}");
    assert_eq!(orders["old_values_complete"], false);
    assert_eq!(orders["preview"][0]["action"], "delete");
    assert_eq!(orders["preview"][0]["old"][0]["column"], "id");
    assert!(orders["preview"][0]["new"].is_null());

    // A seal that does not read: named, the list still printed, and the run fails.
    let chain = std::fs::read_dir(dir.path().join(format!("backups/{id}/stream")))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    std::fs::write(
        chain.join("FFFFFFFFFFFFFFF0-FFFFFFFFFFFFFFFF.json"),
        b"{\"not\": \"a seal\"",
    )
    .unwrap();
    let output = backstop(&from, &[]);
    assert!(!output.status.success());
    assert!(stdout(&output).contains(&command), "{}", stdout(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("FFFFFFFFFFFFFFF0-FFFFFFFFFFFFFFFF.json cannot be read")
            && stderr.contains("1 segment(s) of the change stream"),
        "{stderr}"
    );

    // A store with backups and no stream says how to start one.
    let plain = format!("file://{}/plain", dir.path().display());
    backstop_ok(&["backup", "--db", &url, "--to", &plain], &[]);
    let line = single_error_line(&backstop(
        &["incidents", "--from", &plain, "--database-id", id],
        &[],
    ));
    assert!(line.contains("backstop stream"), "{line}");

    cluster().run_psql(
        "postgres",
        &[
            "-c",
            &format!(
                "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots \
                 WHERE database = '{id}'"
            ),
        ],
    );
}
