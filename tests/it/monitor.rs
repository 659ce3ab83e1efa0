//! The monitor function and `backstop health`: statuses driven by real backups and a clock
//! seam (fresh, 6 h, 25 h, none, shrunken, failed verification), one alert for a lasting
//! critical state, the foreign-key advisor and its fix, and the queries through PgBouncer in
//! transaction pooling mode.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use backstop::alert::Severity;
use backstop::engine::verify::{Level, VerifyOptions, record, verify};
use backstop::health::HealthStatus;
use backstop_tests::moto::{AlertInbox, moto};
use backstop_tests::postgres::{TestDb, fresh_database};
use serde_json::json;
use time::OffsetDateTime;

use crate::backup_lambda::{alerts, invocation, metric_sum};
use crate::engine::{options, take};

/// A monitor over a new bucket whose clock the test sets.
pub(crate) struct Monitor {
    pub(crate) deps: monitor::Deps,
    pub(crate) inbox: AlertInbox,
    clock: Arc<Mutex<OffsetDateTime>>,
}

impl Monitor {
    pub(crate) async fn new(label: &str, databases: &[(&str, Option<String>)]) -> Self {
        Self::with_vars(label, databases, Vec::new()).await
    }

    /// A monitor of `databases` with more settings (`BACKSTOP_OBJECTIVES`...).
    pub(crate) async fn with_vars(
        label: &str,
        databases: &[(&str, Option<String>)],
        more: Vec<(String, String)>,
    ) -> Self {
        let sources: serde_json::Map<String, serde_json::Value> = databases
            .iter()
            .map(|(id, _)| (id.to_string(), json!({"url_env": format!("URL_{id}")})))
            .collect();
        let mut urls: Vec<(String, String)> = databases
            .iter()
            .filter_map(|(id, url)| Some((format!("URL_{id}"), url.clone()?)))
            .collect();
        urls.extend(more);
        Self::with_sources(label, serde_json::Value::Object(sources), urls).await
    }

    /// `BACKSTOP_DATABASES` as given, with `vars` (the URLs its sources name) set.
    async fn with_sources(
        label: &str,
        sources: serde_json::Value,
        urls: Vec<(String, String)>,
    ) -> Self {
        let bucket = moto().new_bucket(label).await;
        let inbox = moto().alert_inbox(label).await;
        let aws = moto().sdk_config().await;
        let mut vars = vec![
            ("BACKSTOP_STORE".to_string(), format!("s3://{bucket}/prod")),
            ("BACKSTOP_DATABASES".to_string(), sources.to_string()),
            (
                "BACKSTOP_ALERT_TOPIC_ARN".to_string(),
                inbox.topic_arn.clone(),
            ),
        ];
        vars.extend(urls);
        let lookup = move |k: &str| vars.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        let config = backstop::config::FunctionConfig::from_lookup(&lookup).unwrap();
        let store = backstop::store::open(&config.store, &aws);
        let mut deps = monitor::Deps::new(common::Base::new(
            config,
            store,
            aws,
            Arc::new(lookup),
            monitor::DEFAULT_NAME,
        ))
        .unwrap();
        let clock = Arc::new(Mutex::new(OffsetDateTime::now_utc()));
        let seen = clock.clone();
        deps.now = Arc::new(move || *seen.lock().unwrap());
        Self { deps, inbox, clock }
    }

    pub(crate) fn set_clock(&self, at: OffsetDateTime) {
        *self.clock.lock().unwrap() = at;
    }

    pub(crate) async fn run(&self, database: &str) -> monitor::MonitorResponse {
        monitor::handler(
            invocation(json!({"database": database}), Duration::from_secs(300)),
            &self.deps,
        )
        .await
        .unwrap()
    }

    pub(crate) async fn status(&self, database: &str) -> (HealthStatus, Vec<String>) {
        let response = self.run(database).await;
        let report = &response.reports[0];
        let checks = report
            .findings
            .iter()
            .filter(|f| f.severity != Severity::Info)
            .map(|f| f.check.clone())
            .collect();
        (report.status, checks)
    }
}

fn shop(db: &TestDb) {
    db.psql(
        "CREATE TABLE public.customers (id int PRIMARY KEY, name text);
         INSERT INTO public.customers SELECT g, repeat('n', 200) || g FROM generate_series(1, 3000) g;",
    );
}

#[tokio::test]
async fn statuses_follow_real_backups_on_a_clock_the_test_sets() {
    let db = fresh_database("monitor statuses");
    shop(&db);
    let id = db.name.clone();
    let monitor = Monitor::new(
        "monitor-statuses",
        &[(&id, Some(db.url())), ("never", None)],
    )
    .await;
    let store = monitor.deps.base.store.clone();
    let first = take(&db, &store, &options(&db)).await.unwrap();
    let taken = first.started_at;

    monitor.set_clock(taken + time::Duration::hours(1));
    assert_eq!(monitor.status(&id).await, (HealthStatus::Healthy, vec![]));
    monitor.set_clock(taken + time::Duration::hours(6));
    assert_eq!(
        monitor.status(&id).await,
        (HealthStatus::Warning, vec!["backup_age".into()])
    );
    monitor.set_clock(taken + time::Duration::hours(25));
    assert_eq!(
        monitor.status(&id).await,
        (HealthStatus::Critical, vec!["backup_age".into()])
    );
    assert_eq!(
        monitor.status("never").await,
        (
            HealthStatus::Critical,
            vec!["backup_age".into(), "database".into()]
        ),
        "no backup at all is critical (and its URL variable is not set: health unknown)"
    );
    assert_eq!(
        metric_sum("HealthStatus", &id).await.map(|s| s > 0.0),
        Some(true)
    );
    assert!(metric_sum("BackupAgeSeconds", &id).await.is_some());
    assert!(
        metric_sum("DatabaseBytes", &id)
            .await
            .is_some_and(|b| b > 0.0)
    );

    // Seven more backups of the same size, then one after most rows were deleted: shrunken.
    for _ in 0..6 {
        take(&db, &store, &options(&db)).await.unwrap();
    }
    take(&db, &store, &options(&db)).await.unwrap();
    db.psql("DELETE FROM public.customers WHERE id > 100");
    let small = take(&db, &store, &options(&db)).await.unwrap();
    monitor.set_clock(small.started_at + time::Duration::minutes(5));
    assert_eq!(
        monitor.status(&id).await,
        (HealthStatus::Warning, vec!["backup_size".into()])
    );

    // The newest verification failed (a damaged part, found by a real deep verification).
    let part = small
        .parts
        .iter()
        .find(|p| p.blocks().next().is_some())
        .unwrap();
    let key = format!("{id}/{}/{}", small.backup_id, part.key);
    let mut bytes = crate::store_contract::read_all(store.as_ref(), &key).await;
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x20;
    store
        .put(
            &key,
            &mut bytes.as_slice(),
            &backstop::store::PutOptions::default(),
        )
        .await
        .unwrap();
    let options = VerifyOptions {
        level: Level::Deep,
        scratch: None,
        jobs: 1,
        interrupt: Default::default(),
    };
    let result = verify(store.clone(), &small, &options).await.unwrap();
    record(store.as_ref(), &small, &result).await.unwrap();
    let (status, checks) = monitor.status(&id).await;
    assert_eq!(status, HealthStatus::Critical);
    assert!(checks.contains(&"verification".to_string()), "{checks:?}");
}

#[tokio::test]
async fn ten_runs_on_an_unchanged_critical_state_send_one_alert_then_a_recovery() {
    let db = fresh_database("monitor alerts");
    shop(&db);
    let id = db.name.clone();
    let monitor = Monitor::new("monitor-alerts", &[(&id, Some(db.url()))]).await;
    let store = monitor.deps.base.store.clone();
    let backup = take(&db, &store, &options(&db)).await.unwrap();
    let start = backup.started_at + time::Duration::hours(30);

    let mut sent = 0;
    for minute in 0..10 {
        monitor.set_clock(start + time::Duration::minutes(minute * 5));
        sent += monitor.run(&id).await.alerts_sent;
    }
    assert_eq!(sent, 1);
    let received = alerts(&monitor.inbox.drain().await);
    assert_eq!(received.len(), 1);
    assert_eq!(
        (received[0].kind.as_str(), received[0].severity),
        ("health_critical", Severity::Critical)
    );
    assert!(
        received[0].summary.contains("no backup for 30"),
        "{}",
        received[0].summary
    );
    assert!(
        received[0].action.contains("backstop backup --db"),
        "{}",
        received[0].action
    );

    // Still critical six hours later: reminded once.
    monitor.set_clock(start + time::Duration::hours(6));
    assert_eq!(monitor.run(&id).await.alerts_sent, 1);
    assert!(
        alerts(&monitor.inbox.drain().await)[0]
            .summary
            .starts_with("still critical")
    );

    // A new backup: one recovery message.
    let fresh = take(&db, &store, &options(&db)).await.unwrap();
    monitor.set_clock(fresh.started_at + time::Duration::minutes(1));
    assert_eq!(monitor.run(&id).await.alerts_sent, 1);
    let recovered = alerts(&monitor.inbox.drain().await);
    assert_eq!(
        (recovered[0].kind.as_str(), recovered[0].severity),
        ("health_recovered", Severity::Info)
    );
    assert_eq!(monitor.run(&id).await.alerts_sent, 0);
}

#[tokio::test]
async fn the_advisor_finds_a_foreign_key_without_an_index_and_its_fix_works() {
    let db = fresh_database("monitor advisor");
    db.psql(
        "CREATE TABLE public.customers (id int PRIMARY KEY);
         CREATE TABLE public.orders (id int PRIMARY KEY, customer_id int REFERENCES public.customers, region text, customer_region int);
         CREATE TABLE public.regions (code text, n int, PRIMARY KEY (code, n));
         ALTER TABLE public.orders ADD FOREIGN KEY (region, customer_region) REFERENCES public.regions;
         CREATE TABLE public.audit_log (at timestamptz, note text);",
    );
    let target = backstop::pg::parse_url(&db.url()).unwrap();
    let client = backstop::pg::connect(&target).await.unwrap();
    let figures = backstop::health::database::gather(&client).await.unwrap();
    let fks = &figures.foreign_keys_without_index;
    assert_eq!(fks.len(), 2, "{fks:?}");
    assert!(fks.iter().all(|a| a.object == "public.orders"));
    assert_eq!(
        fks.iter()
            .map(|a| a.fix.clone().unwrap())
            .collect::<Vec<_>>(),
        [
            "CREATE INDEX CONCURRENTLY ON public.orders (customer_id);",
            "CREATE INDEX CONCURRENTLY ON public.orders (region, customer_region);",
        ]
    );
    assert_eq!(
        figures.tables_without_primary_key[0].object,
        "public.audit_log"
    );

    // The suggested statements, run as given, make the findings go away.
    for advice in fks {
        db.psql(advice.fix.as_deref().unwrap());
    }
    let figures = backstop::health::database::gather(&client).await.unwrap();
    assert!(
        figures.foreign_keys_without_index.is_empty(),
        "{:?}",
        figures.foreign_keys_without_index
    );
    // An index on the columns in another order does not count; a wider one starting with them does.
    db.psql(
        "CREATE TABLE public.lines (order_id int REFERENCES public.orders, n int);
         CREATE INDEX ON public.lines (n, order_id);",
    );
    let figures = backstop::health::database::gather(&client).await.unwrap();
    assert_eq!(figures.foreign_keys_without_index.len(), 1);
    db.psql("CREATE INDEX ON public.lines (order_id, n);");
    let figures = backstop::health::database::gather(&client).await.unwrap();
    assert!(figures.foreign_keys_without_index.is_empty());
}

#[tokio::test]
async fn the_health_queries_work_through_pgbouncer_in_transaction_mode() {
    let db = fresh_database("monitor pgbouncer");
    shop(&db);
    db.psql("CREATE TABLE public.orders (id int, customer_id int REFERENCES public.customers);");
    let url = backstop_tests::pgbouncer::pgbouncer().url(&db.name);
    let target = backstop::pg::parse_url(&url).unwrap();
    let client = backstop::pg::connect(&target).await.unwrap();
    // Twice on one client: through a transaction pooler the server session may change between
    // statements, which breaks named prepared statements.
    for _ in 0..2 {
        let figures = backstop::health::database::gather(&client).await.unwrap();
        assert_eq!(figures.tables, 2);
        assert!(figures.max_connections > 0 && figures.database_bytes > 0);
        assert_eq!(figures.foreign_keys_without_index.len(), 1);
    }
    let shown = client.simple_query("SHOW pool_mode").await;
    assert!(
        shown.is_err(),
        "the connection must go through PgBouncer, not to PostgreSQL directly"
    );
}

/// `backstop health --pooler` reads the harness PgBouncer's admin console: the test's pool,
/// and "clients waiting" as a warning while the test holds every server connection of it.
#[tokio::test]
async fn health_reports_the_pooler_and_warns_while_clients_wait() {
    use backstop_tests::pgbouncer::{PgBouncer, pgbouncer};
    let db = fresh_database("pooler waiting");
    let pooled = pgbouncer().url(&db.name);
    let mut holders = Vec::new();
    for _ in 0..PgBouncer::POOL_SIZE {
        let (client, connection) = tokio_postgres::connect(&pooled, tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(connection);
        // In transaction mode a server connection is the client's until its transaction ends.
        client.batch_execute("BEGIN; SELECT 1").await.unwrap();
        holders.push(client);
    }
    let (waiter, connection) = tokio_postgres::connect(&pooled, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    let waiting = tokio::spawn(async move { waiter.batch_execute("SELECT 1").await });
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;

    let dir = tempfile::tempdir().unwrap();
    let store = format!("file://{}", dir.path().display());
    let admin = pgbouncer().admin_url();
    // The database itself directly (through the full pool it would wait too); its name picks
    // the pool to report.
    let direct = db.url();
    let output = tokio::task::spawn_blocking(move || {
        crate::support::backstop(
            &[
                "health",
                "--from",
                &store,
                "--database-id",
                "pooled",
                "--db",
                &direct,
                "--pooler",
                &admin,
                "--json",
            ],
            &[],
        )
    })
    .await
    .unwrap();
    let report: serde_json::Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&output.stderr)));
    let pools = report["pooler"]["pools"].as_array().expect("the pools");
    assert_eq!(pools.len(), 1, "{report}");
    assert_eq!(pools[0]["database"], db.name.as_str());
    assert_eq!(pools[0]["servers_active"], PgBouncer::POOL_SIZE as u64);
    assert!(
        pools[0]["clients_waiting"].as_u64().unwrap() >= 1,
        "{report}"
    );
    let finding = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["check"] == "pooler_clients_waiting")
        .unwrap_or_else(|| panic!("no clients-waiting finding: {report}"));
    assert_eq!(finding["severity"], "warning");
    assert!(
        finding["message"]
            .as_str()
            .unwrap()
            .starts_with("clients waiting")
    );

    // Once the transactions end, the waiting client gets its connection.
    for holder in &holders {
        holder.batch_execute("COMMIT").await.unwrap();
    }
    waiting.await.unwrap().unwrap();
}

/// A database configured with its pooler: the monitor reports the pooler's pool for it, and
/// the pooler's figures reach CloudWatch.
#[tokio::test]
async fn the_monitor_reports_a_configured_pooler_to_cloudwatch() {
    use backstop_tests::pgbouncer::pgbouncer;
    let db = fresh_database("monitor pooler");
    shop(&db);
    // A client through the pooler opens the database's pool.
    let (client, connection) =
        tokio_postgres::connect(&pgbouncer().url(&db.name), tokio_postgres::NoTls)
            .await
            .unwrap();
    tokio::spawn(connection);
    client.batch_execute("SELECT 1").await.unwrap();
    let id = format!("pooled-{}", backstop_tests::unique_suffix());
    let monitor = Monitor::with_sources(
        "monitor-pooler",
        json!({ id.as_str(): {"url_env": "DB_URL", "pooler": {"url_env": "POOLER_URL"}} }),
        vec![
            ("DB_URL".into(), db.url()),
            ("POOLER_URL".into(), pgbouncer().admin_url()),
        ],
    )
    .await;
    let response = monitor.run(&id).await;
    let pooler = response.reports[0]
        .pooler
        .as_ref()
        .expect("the pooler's figures");
    assert_eq!(pooler.pools.len(), 1, "{pooler:?}");
    assert_eq!(pooler.pools[0].database, db.name);
    assert!(pooler.pools[0].servers_idle + pooler.pools[0].servers_active >= 1);
    assert!(metric_sum("PoolerServersIdle", &id).await.is_some());
    assert!(metric_sum("PoolerClientsWaiting", &id).await.is_some());
}

/// With pg_stat_statements preloaded (the harness preloads it where the installation ships it)
/// and installed in the database, the monitor names the slowest statement of a workload the
/// test ran, and its time reaches CloudWatch.
#[tokio::test]
async fn the_slowest_statement_of_a_workload_is_named_and_its_time_reaches_cloudwatch() {
    let db = fresh_database("statements");
    shop(&db);
    db.psql("CREATE EXTENSION pg_stat_statements");
    for _ in 0..3 {
        db.psql("SELECT pg_sleep(0.2), 'the slow report'");
    }
    db.psql("SELECT count(*) FROM public.customers");
    let id = format!("statements-{}", backstop_tests::unique_suffix());
    let monitor = Monitor::new("statements", &[(id.as_str(), Some(db.url()))]).await;
    let response = monitor.run(&id).await;
    let report = &response.reports[0];
    let queries = &report
        .database_health
        .as_ref()
        .expect("database figures")
        .queries;
    assert!(queries.statements_available);
    let top = &queries.top[0];
    assert!(top.query.contains("pg_sleep"), "{queries:?}");
    assert_eq!(top.calls, 3);
    assert!(top.total_ms >= 600.0, "{top:?}");
    assert!(queries.sequential_scans >= 1);
    let finding = report
        .findings
        .iter()
        .find(|f| f.check == "slow_statement")
        .expect("the slowest statement as advice");
    assert!(
        finding.message.starts_with("statement #1 by total time"),
        "{}",
        finding.message
    );
    assert!(finding.message.contains("pg_sleep"));
    let seconds = metric_sum("TopStatementTotalSeconds", &id).await.unwrap();
    assert!(seconds >= 0.6, "{seconds}");
}

#[test]
fn the_cli_exits_0_1_2_3_like_a_nagios_check() {
    let db = fresh_database("health cli");
    shop(&db);
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("store");
    let store = format!("file://{}", root.display());
    let health = |extra: &[&str]| {
        let mut args = vec!["health", "--from", &store, "--database-id", &db.name];
        args.extend_from_slice(extra);
        crate::support::backstop(&args, &[])
    };
    // No backup yet: critical.
    let output = health(&[]);
    assert_eq!(
        output.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );
    assert!(String::from_utf8_lossy(&output.stdout).contains("no committed backup"));

    let output = crate::support::backstop(&["backup", "--db", &db.url(), "--to", &store], &[]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let output = health(&["--db", &db.url()]);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        text.contains("HEALTHY") && text.contains("connections"),
        "{text}"
    );
    assert!(!text.contains(&backstop_tests::postgres::cluster().password));

    // Only a seven-hour-old backup (a manifest that reads): warning.
    let old =
        backstop::layout::BackupId::generate(OffsetDateTime::now_utc() - time::Duration::hours(7));
    let taken = std::fs::read_dir(root.join(&db.name))
        .unwrap()
        .map(|e| e.unwrap().path().join("manifest.json"))
        .find(|p| p.exists())
        .unwrap();
    // The same backup, as if taken seven hours ago (a manifest says which set it is).
    let manifest: backstop::engine::manifest::Manifest =
        serde_json::from_slice(&std::fs::read(taken).unwrap()).unwrap();
    let manifest = backstop::engine::manifest::Manifest {
        backup_id: old.to_string(),
        seal: None,
        ..manifest
    }
    .sealed();
    let manifest = serde_json::to_vec(&manifest).unwrap();
    std::fs::remove_dir_all(root.join(&db.name)).unwrap();
    std::fs::create_dir_all(root.join(&db.name).join(old.to_string())).unwrap();
    std::fs::write(
        root.join(&db.name)
            .join(old.to_string())
            .join("manifest.json"),
        manifest,
    )
    .unwrap();
    let output = health(&["--json"]);
    assert_eq!(output.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["status"], "warning");

    // A store that cannot be read: unknown.
    let file = dir.path().join("not-a-dir");
    std::fs::write(&file, b"x").unwrap();
    let output = crate::support::backstop(
        &[
            "health",
            "--from",
            &format!("file://{}", file.display()),
            "--database-id",
            "shop",
        ],
        &[],
    );
    assert_eq!(output.status.code(), Some(3));
}

/// A figure the server returns that is not a number makes the database's health unknown
/// (exit 3), naming the figure, instead of a zero that reads as healthy. A real server does
/// not return such a figure on demand, so a wire-protocol stand-in answers the queries.
#[test]
fn a_figure_that_cannot_be_read_is_unknown_naming_it_not_zero() {
    use backstop_tests::fakepg::{self, Answer};
    let db = fresh_database("health unknown");
    shop(&db);
    let dir = tempfile::tempdir().unwrap();
    let store = format!("file://{}", dir.path().join("store").display());
    crate::support::backstop_ok(
        &[
            "backup",
            "--db",
            &db.url(),
            "--to",
            &store,
            "--database-id",
            "shop",
        ],
        &[],
    );
    let n = |v: &'static str| Some(v);
    let fake = fakepg::start(vec![
        Answer::new("server_version_num", &[&[n("170002")]]),
        Answer::new(
            "pg_database_size(current_database())",
            &[&[
                n("8000000"),
                n("3"),
                n("4"),
                n("2"),
                n("100"),
                n("0.99"),
                n("0.98"),
                n("50000"),
                n("0"),
                n("0"),
                n("about a billion"),
            ]],
        ),
        Answer::new("pg_stat_checkpointer", &[&[n("10"), n("1"), n("1GB")]]),
    ]);
    let output = crate::support::backstop(
        &[
            "health",
            "--from",
            &store,
            "--database-id",
            "shop",
            "--db",
            &fake.url("shop"),
        ],
        &[],
    );
    let text = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(3), "{text}");
    assert!(
        text.contains("UNKNOWN")
            && text.contains("`about a billion` for the transaction ID age, which is not a number"),
        "{text}"
    );
}

/// A scheduled run leaves the whole store's status page in the bucket, naming each database.
#[tokio::test]
async fn a_scheduled_run_writes_the_status_page_into_the_bucket() {
    let db = fresh_database("monitor page");
    shop(&db);
    let id = db.name.clone();
    let monitor = Monitor::new("monitor-page", &[(&id, Some(db.url()))]).await;
    let store = monitor.deps.base.store.clone();
    take(&db, &store, &options(&db)).await.unwrap();
    monitor::handler(
        invocation(
            crate::backup_lambda::scheduled_event(),
            Duration::from_secs(300),
        ),
        &monitor.deps,
    )
    .await
    .unwrap();
    let page = store
        .read_versioned(monitor::STATUS_PAGE_KEY)
        .await
        .unwrap()
        .expect("the status page");
    let page = String::from_utf8(page.body.to_vec()).unwrap();
    assert!(page.starts_with("<!DOCTYPE html>"), "{page}");
    assert!(page.contains(&format!("id=\"db-{id}\"")), "{page}");
    assert!(page.contains("badge healthy"), "{page}");
}
