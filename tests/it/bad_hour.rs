//! The bad hour: with writers running throughout, a `DELETE` without `WHERE` (and, apart, an
//! `UPDATE` that zeroes a column) hits a live database. `incidents` names the transaction first
//! and prints the restore command for the moment before it; that command brings the table back
//! as it was into a new schema of the live database, touching nothing else; `compare` finds the
//! lost rows and writes the SQL that puts them back. On 15 the steps are docs/runbook.md's
//! section "Someone deleted rows", run as written.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use backstop_tests::postgres::{TestDb, cluster_of, fresh_database_on};

use crate::support::backstop_ok;

const SCHEMA: &str = "
CREATE TABLE customers (id int PRIMARY KEY, name text NOT NULL);
CREATE TABLE orders (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  customer int NOT NULL REFERENCES customers, total numeric(10,2) NOT NULL CHECK (total >= 0),
  status text NOT NULL DEFAULT 'new', note text);
CREATE INDEX orders_by_customer ON orders (customer);
CREATE TABLE accounts (id serial PRIMARY KEY, owner text NOT NULL, balance numeric(12,2) NOT NULL);
CREATE TABLE products (id int PRIMARY KEY, name text);
CREATE TABLE audit (seq bigserial PRIMARY KEY, what text);
CREATE FUNCTION audit_order() RETURNS trigger LANGUAGE plpgsql AS
  $$BEGIN INSERT INTO audit (what) VALUES (TG_OP || ' order'); RETURN NULL; END$$;
CREATE TRIGGER orders_audit AFTER INSERT OR DELETE ON orders
  FOR EACH ROW EXECUTE FUNCTION audit_order();
INSERT INTO customers SELECT g, 'customer ' || g FROM generate_series(1, 50) g;
INSERT INTO orders (customer, total, status, note)
  SELECT g % 50 + 1, g * 1.25, CASE WHEN g % 3 = 0 THEN 'paid' ELSE 'new' END,
    CASE WHEN g % 7 = 0 THEN NULL ELSE 'note ''' || g || E'''\\t' END
  FROM generate_series(1, 1500) g;
INSERT INTO accounts (owner, balance) SELECT 'owner ' || g, g * 10 FROM generate_series(1, 300) g;
INSERT INTO products SELECT g, 'product ' || g FROM generate_series(1, 40) g;
";

/// A writer that inserts orders and moves balances until stopped; a failed statement (a key
/// taken twice, a table gone) fails the test when it is stopped.
struct Writers {
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<u64>,
}

impl Writers {
    async fn start(url: &str) -> Self {
        let client = connect(url).await;
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let task = tokio::spawn(async move {
            let mut i: u64 = 0;
            while !stopping.load(Ordering::SeqCst) {
                i += 1;
                client
                    .batch_execute(&format!(
                        "BEGIN;
                         INSERT INTO orders (customer, total, note) VALUES ({c}, {i}.5, 'written {i}');
                         UPDATE accounts SET balance = balance + 1 WHERE id = {a};
                         COMMIT;",
                        c = i % 50 + 1,
                        a = i % 300 + 1
                    ))
                    .await
                    .unwrap();
                tokio::time::sleep(Duration::from_millis(4)).await;
            }
            i
        });
        Self { stop, task }
    }

    async fn stop(self) -> u64 {
        self.stop.store(true, Ordering::SeqCst);
        self.task.await.unwrap()
    }
}

async fn connect(url: &str) -> tokio_postgres::Client {
    backstop::pg::connect(&backstop::pg::parse_url(url).unwrap())
        .await
        .unwrap()
}

/// Runs `damage` on `table` in one transaction, holding off every other writer of the table
/// while it copies the rows first: the copy is exactly what the table held just before the
/// damage committed. Returns the copy and the transaction's xid.
async fn damage(url: &str, table: &str, columns: &str, statement: &str) -> (String, u64) {
    let client = connect(url).await;
    client
        .batch_execute(&format!("BEGIN; LOCK TABLE {table} IN EXCLUSIVE MODE"))
        .await
        .unwrap();
    let copy = rows_of(&client, table, columns).await;
    let xid: String = client
        .query_one("SELECT pg_current_xact_id()::text", &[])
        .await
        .unwrap()
        .get(0);
    client.batch_execute(statement).await.unwrap();
    client.batch_execute("COMMIT").await.unwrap();
    (copy, xid.parse().unwrap())
}

/// The rows of `table` as text, one per line, by key.
async fn rows_of(client: &tokio_postgres::Client, table: &str, columns: &str) -> String {
    client
        .query_one(
            &format!(
                "SELECT coalesce(string_agg(r::text, E'\\n' ORDER BY r.id), '') \
                 FROM (SELECT {columns} FROM {table}) r"
            ),
            &[],
        )
        .await
        .unwrap()
        .get(0)
}

/// A digest of every object outside `recovered` (relations with their files, columns,
/// constraints, triggers, policies, grants, schemas) and of the rows no writer touches: what
/// a restore into a schema apart must leave exactly as it was.
fn live_objects(db: &TestDb) -> String {
    db.psql(
        "WITH apart AS (SELECT oid FROM pg_namespace WHERE nspname = 'recovered'),
              rels AS (SELECT c.oid FROM pg_class c
                WHERE c.relnamespace NOT IN (SELECT oid FROM apart)
                  AND c.relnamespace <> 'pg_catalog'::regnamespace
                  AND c.relnamespace <> 'information_schema'::regnamespace
                  AND c.relnamespace <> 'pg_toast'::regnamespace
                  AND c.relpersistence <> 't')
         SELECT md5(string_agg(x, E'\\n' ORDER BY x)) FROM (
           SELECT format('rel %s %s %s %s %s %s', c.oid, c.relnamespace::regnamespace, c.relname,
                         c.relkind, c.relfilenode, c.relacl) AS x
             FROM pg_class c WHERE c.oid IN (SELECT oid FROM rels)
           UNION ALL SELECT format('att %s %s %s %s %s', attrelid, attname, atttypid, attnotnull,
                         attidentity) FROM pg_attribute
             WHERE attrelid IN (SELECT oid FROM rels) AND attnum > 0 AND NOT attisdropped
           UNION ALL SELECT format('con %s %s %s', conrelid, conname, pg_get_constraintdef(oid))
             FROM pg_constraint WHERE conrelid IN (SELECT oid FROM rels)
           UNION ALL SELECT format('trg %s %s %s', tgrelid, tgname, tgenabled) FROM pg_trigger
             WHERE tgrelid IN (SELECT oid FROM rels)
           UNION ALL SELECT format('pol %s %s', polrelid, polname) FROM pg_policy
           UNION ALL SELECT format('nsp %s %s', nspname, nspacl) FROM pg_namespace
             WHERE oid NOT IN (SELECT oid FROM apart) AND nspname NOT LIKE 'pg_temp%'
               AND nspname NOT LIKE 'pg_toast_temp%'
           UNION ALL SELECT format('products %s', md5(string_agg(p::text, ',' ORDER BY id)))
             FROM products p
           UNION ALL SELECT format('customers %s', md5(string_agg(c::text, ',' ORDER BY id)))
             FROM customers c
         ) objects",
    )
    .trim()
    .to_string()
}

/// The restore commands `incidents` printed, in its order.
fn printed_commands(stdout: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(stdout)
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("backstop restore "))
        .map(str::to_string)
        .collect()
}

/// Runs `script` with bash, `backstop` on the PATH and `env` set; returns its stdout.
fn shell(script: &str, env: &[(&str, String)], dir: &std::path::Path) -> String {
    let bin = crate::support::backstop_bin()
        .parent()
        .unwrap()
        .to_path_buf();
    let pg_bin = &backstop_tests::postgres::cluster().bin_dir;
    let output = std::process::Command::new("bash")
        .args(["-euo", "pipefail", "-c", script])
        .current_dir(dir)
        .env(
            "PATH",
            format!(
                "{}:{}:{}",
                bin.display(),
                pg_bin.display(),
                std::env::var("PATH").unwrap_or_default()
            ),
        )
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{script}\nstdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The bash blocks of docs/runbook.md's section "Someone deleted rows", in order.
fn runbook_section() -> Vec<String> {
    let text =
        std::fs::read_to_string(backstop_tests::workspace_root().join("docs/runbook.md")).unwrap();
    let start = text
        .find("## 10. Someone deleted rows")
        .expect("the runbook has the section");
    let section = &text[start..];
    let section = section[3..]
        .find("\n## ")
        .map_or(section, |end| &section[..end + 3]);
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in section.lines() {
        match &mut current {
            Some(block) if line.trim_start().starts_with("```") => {
                blocks.push(std::mem::take(block));
                current = None;
            }
            Some(block) => {
                block.push_str(line);
                block.push('\n');
            }
            None if line.trim() == "```bash" => current = Some(String::new()),
            None => {}
        }
    }
    blocks
}

async fn the_bad_hour(major: u32) {
    let Some(cluster) = cluster_of(major) else {
        return;
    };
    let db = fresh_database_on(cluster, &format!("bad hour {major}"));
    db.psql(SCHEMA);
    let reader = format!("{}_reader", db.name);
    {
        let _roles = crate::engine::ROLE_CREATION.lock().await;
        cluster.psql("postgres", &format!("CREATE ROLE \"{reader}\""));
    }
    db.psql(&format!("GRANT SELECT ON orders TO \"{reader}\""));
    let dir = tempfile::tempdir().unwrap();
    let store = format!("file://{}", dir.path().display());
    let url = db.url();
    backstop_ok(&["stream", "--db", &url, "--to", &store], &[]);
    backstop_ok(&["backup", "--db", &url, "--to", &store], &[]);

    let writers = Writers::start(&url).await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    let order_columns = "id, customer, total, status, note";
    let (orders_before, deleting) =
        damage(&url, "orders", order_columns, "DELETE FROM orders").await;
    let deleted = orders_before.lines().count();
    tokio::time::sleep(Duration::from_millis(400)).await;
    let between = db
        .psql("SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')")
        .trim()
        .to_string();
    let (accounts_before, zeroing) = damage(
        &url,
        "accounts",
        "id, owner, balance",
        "UPDATE accounts SET balance = 0",
    )
    .await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    backstop_ok(&["stream", "--db", &url, "--to", &store], &[]);

    // The delete comes first, with its table and row count.
    let listed = backstop_ok(
        &[
            "incidents",
            "--from",
            &store,
            "--database-id",
            &db.name,
            "--json",
        ],
        &[],
    );
    let listed: serde_json::Value = serde_json::from_slice(&listed.stdout).unwrap();
    let first = &listed["incidents"][0];
    assert_eq!(first["xid"], deleting, "{listed:#}");
    let text = serde_json::to_string(first).unwrap();
    assert!(
        text.contains("public.orders") && text.contains(&format!("{deleted}")),
        "{first:#}"
    );
    let printed = backstop_ok(
        &["incidents", "--from", &store, "--database-id", &db.name],
        &[],
    );
    let commands = printed_commands(&printed.stdout);
    assert!(
        commands[0].contains(&format!("--before-xid {deleting}"))
            && commands[0].contains("public.orders"),
        "{commands:?}"
    );

    let objects = live_objects(&db);
    let live = connect(&url).await;
    let live_orders: i64 = live
        .query_one("SELECT count(*) FROM orders", &[])
        .await
        .unwrap()
        .get(0);
    let env = [
        ("DATABASE_URL", url.clone()),
        ("STORE", store.clone()),
        ("DB_ID", db.name.clone()),
        ("XID", deleting.to_string()),
    ];
    // On 15, the runbook's section as written: look, restore, compare, put back, clean up; on
    // 18, the command incidents printed, as printed.
    let blocks = runbook_section();
    assert_eq!(blocks.len(), 6, "{blocks:#?}");
    if major == 15 {
        for block in &blocks[..3] {
            shell(block, &env, dir.path());
        }
    } else {
        shell(&commands[0], &env, dir.path());
    }

    // recovered.orders holds exactly what orders held just before the delete, with its keys,
    // index and grant, without the trigger or the foreign key to the live customers.
    let recovered = rows_of(&live, "recovered.orders", order_columns).await;
    assert_eq!(recovered, orders_before, "recovered.orders on {major}");
    assert_eq!(
        db.psql(&format!(
            "SELECT (SELECT count(*) FROM pg_indexes WHERE schemaname = 'recovered' AND tablename = 'orders'),
                    (SELECT count(*) FROM pg_trigger WHERE tgrelid = 'recovered.orders'::regclass AND NOT tgisinternal),
                    (SELECT count(*) FROM pg_constraint WHERE conrelid = 'recovered.orders'::regclass AND contype = 'f'),
                    has_table_privilege('{reader}', 'recovered.orders', 'SELECT')"
        ))
        .trim(),
        "2|0|0|t"
    );
    // Nothing outside the new schema changed, and the live table lost no row.
    assert_eq!(
        live_objects(&db),
        objects,
        "objects outside recovered on {major}"
    );
    let after: i64 = live
        .query_one("SELECT count(*) FROM orders", &[])
        .await
        .unwrap()
        .get(0);
    assert!(after >= live_orders, "{after} < {live_orders}");

    // compare finds the deleted rows, changes nothing, and its SQL puts them back.
    let compared = if major == 15 {
        shell(
            &blocks[3].replace("compare ", "compare --json "),
            &env,
            dir.path(),
        )
    } else {
        let output = backstop_ok(
            &[
                "compare",
                "--db",
                &url,
                "--table",
                "public.orders",
                "--with",
                "recovered.orders",
                "--output",
                &dir.path().join("orders.putback.sql").display().to_string(),
                "--json",
            ],
            &[],
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    let compared: serde_json::Value = serde_json::from_str(&compared).unwrap();
    let rows = |difference: &str| {
        compared["differences"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["difference"] == difference)
            .map(|d| d["rows"].as_u64().unwrap())
    };
    assert_eq!(rows("missing"), Some(deleted as u64), "{compared:#}");
    assert_eq!(rows("changed"), Some(0), "{compared:#}");
    assert!(
        rows("extra").unwrap() > 0,
        "the writers' orders: {compared:#}"
    );
    assert_eq!(
        live_objects(&db),
        objects,
        "compare changed nothing on {major}"
    );
    shell(&blocks[4], &env, dir.path());
    // Every order of before the delete is back, as it was; the writers' new ones stay.
    let back = rows_of(
        &live,
        "orders WHERE id IN (SELECT id FROM recovered.orders)",
        order_columns,
    )
    .await;
    assert_eq!(back, orders_before, "the orders put back on {major}");
    shell(&blocks[5], &env, dir.path());

    // The update, listed first after its own start, brought back the same way.
    let listed = backstop_ok(
        &[
            "incidents",
            "--from",
            &store,
            "--database-id",
            &db.name,
            "--since",
            &between,
        ],
        &[],
    );
    let commands = printed_commands(&listed.stdout);
    assert!(
        commands[0].contains(&format!("--before-xid {zeroing}"))
            && commands[0].contains("public.accounts"),
        "{}",
        String::from_utf8_lossy(&listed.stdout)
    );
    shell(&commands[0], &env, dir.path());
    assert_eq!(
        rows_of(&live, "recovered.accounts", "id, owner, balance").await,
        accounts_before,
        "recovered.accounts on {major}"
    );
    let written = writers.stop().await;
    assert!(written > 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_deleted_table_and_a_zeroed_column_come_back_beside_the_live_data_on_15() {
    the_bad_hour(15).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_deleted_table_and_a_zeroed_column_come_back_beside_the_live_data_on_18() {
    the_bad_hour(18).await;
}

/// A schema change is no row change, but as bad an hour: a dropped table is listed by the
/// drain after it (what dropped it is gone from the catalog, so the time between the two
/// drains is said), an altered one with the transaction that altered it; the command printed
/// for the drop brings the table back as the drain before saw it.
#[test]
fn a_dropped_table_is_listed_and_comes_back_as_the_drain_before_saw_it() {
    let db = backstop_tests::postgres::fresh_database("dropped table");
    db.psql(
        "CREATE TABLE orders (id int PRIMARY KEY, v text NOT NULL);
         INSERT INTO orders SELECT g, 'order ' || g FROM generate_series(1, 300) g;
         CREATE TABLE accounts (id int PRIMARY KEY, balance int NOT NULL);
         INSERT INTO accounts SELECT g, g FROM generate_series(1, 50) g;",
    );
    let dir = tempfile::tempdir().unwrap();
    let store = format!("file://{}", dir.path().display());
    let url = db.url();
    backstop_ok(&["stream", "--db", &url, "--to", &store], &[]);
    backstop_ok(&["backup", "--db", &url, "--to", &store], &[]);
    db.psql("INSERT INTO orders VALUES (1001, 'after the backup')");
    backstop_ok(&["stream", "--db", &url, "--to", &store], &[]);
    let orders = |table: &str| {
        db.psql(&format!(
            "SELECT string_agg(r::text, E'\\n' ORDER BY r.id) FROM {table} r"
        ))
    };
    let before = orders("orders");
    let altering = db.psql(
        "BEGIN; ALTER TABLE accounts ADD COLUMN note text; SELECT pg_current_xact_id(); COMMIT;",
    );
    db.psql("DROP TABLE orders");
    backstop_ok(&["stream", "--db", &url, "--to", &store], &[]);

    let listed = backstop_ok(
        &[
            "incidents",
            "--from",
            &store,
            "--database-id",
            &db.name,
            "--json",
        ],
        &[],
    );
    let listed: serde_json::Value = serde_json::from_slice(&listed.stdout).unwrap();
    let incidents = listed["incidents"].as_array().unwrap();
    assert_eq!(incidents[0]["pattern"], "dropped-table", "{listed:#}");
    assert_eq!(
        incidents[0]["tables"][0]["table"], "public.orders",
        "{listed:#}"
    );
    let altered = incidents
        .iter()
        .find(|i| i["pattern"] == "altered-table")
        .unwrap_or_else(|| panic!("{listed:#}"));
    assert_eq!(altered["tables"][0]["table"], "public.accounts");
    assert_eq!(
        altered["xid"].to_string(),
        altering.trim(),
        "the ALTER's transaction, from the catalog"
    );
    let printed = backstop_ok(
        &["incidents", "--from", &store, "--database-id", &db.name],
        &[],
    );
    let commands = printed_commands(&printed.stdout);
    assert!(
        commands[0].contains("public.orders") && commands[0].contains("--to-time"),
        "{commands:?}"
    );
    shell(&commands[0], &[("DATABASE_URL", url.clone())], dir.path());
    assert_eq!(orders("recovered.orders"), before);
}
