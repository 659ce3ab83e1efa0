//! The backup Lambda against real PostgreSQL and moto (S3, SNS→SQS, CloudWatch, Secrets
//! Manager): complete tagged sets with metrics and no alert on success; on every failure no
//! manifest, no part, no unfinished upload, the lease released, one critical alert and a
//! failed invocation; one backup at a time; and never the password anywhere.

use std::sync::Arc;
use std::time::Duration;

use aws_sdk_cloudwatch::types::{Dimension, Statistic};
use backstop::alert::{Alert, Severity};
use backstop::config::FunctionConfig;
use backstop::store::Store;
use backstop_tests::failing_store::FailingStore;
use backstop_tests::logs;
use backstop_tests::moto::{AlertInbox, moto};
use backstop_tests::postgres::{TestDb, cluster, fresh_database};
use lambda_runtime::{Context, LambdaEvent};
use serde_json::{Value, json};
use time::OffsetDateTime;

use crate::support::fixture;

/// A bucket, an alert inbox and the function's dependencies pointing at them.
pub(crate) struct Stack {
    pub(crate) bucket: String,
    pub(crate) prefix: String,
    pub(crate) inbox: AlertInbox,
    pub(crate) deps: backup::Deps,
}

/// A database id no other test uses (metrics in CloudWatch are per database id).
pub(crate) fn database_id(label: &str) -> String {
    format!("{label}-{}", backstop_tests::unique_suffix())
}

/// The store the function writes to.
pub(crate) enum StoreChoice {
    /// `s3://<new bucket>/prod`.
    Bucket,
    /// The same, through a [`FailingStore`] whose puts stall once after `after` bytes.
    Stalling { after: usize, pause: Duration },
    /// A bucket that does not exist.
    MissingBucket,
}

/// Databases as `(id, source JSON)`; `env` holds the variables `url_env` sources name.
pub(crate) async fn stack(
    label: &str,
    databases: &[(&str, Value)],
    env: Vec<(String, String)>,
    choice: StoreChoice,
) -> Stack {
    let moto = moto();
    let bucket = moto.new_bucket(label).await;
    let prefix = "prod".to_string();
    let inbox = moto.alert_inbox(label).await;
    let aws = moto.sdk_config().await;
    let store_url = match choice {
        StoreChoice::MissingBucket => {
            format!("s3://missing-{}/{prefix}", backstop_tests::unique_suffix())
        }
        _ => format!("s3://{bucket}/{prefix}"),
    };
    let sources: serde_json::Map<String, Value> = databases
        .iter()
        .map(|(id, source)| (id.to_string(), source.clone()))
        .collect();
    let vars = [
        ("BACKSTOP_STORE", store_url),
        ("BACKSTOP_DATABASES", Value::Object(sources).to_string()),
        ("BACKSTOP_ALERT_TOPIC_ARN", inbox.topic_arn.clone()),
    ];
    let config = FunctionConfig::from_lookup(|k| {
        vars.iter()
            .find(|(name, _)| *name == k)
            .map(|(_, v)| v.clone())
    })
    .unwrap();
    let store = backstop::store::open(&config.store, &aws);
    let store: Arc<dyn Store> = match choice {
        StoreChoice::Stalling { after, pause } => {
            let stalling = FailingStore::new(store);
            stalling.stall_puts_after(after, pause);
            Arc::new(stalling)
        }
        _ => store,
    };
    let env =
        Arc::new(move |name: &str| env.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()));
    let deps = backup::Deps::new(common::Base::new(
        config,
        store,
        aws,
        env,
        backup::DEFAULT_NAME,
    ))
    .unwrap();
    let mut deps = deps;
    deps.ecs = moto.ecs().await;
    Stack {
        bucket,
        prefix,
        inbox,
        deps,
    }
}

/// A login role with a password unique to this test, and a URL that uses it.
pub(crate) fn role_with_password(db: &TestDb, label: &str) -> (String, String) {
    let role = format!("app_{label}_{}", backstop_tests::unique_suffix());
    let password = format!("Pw-{}-n0t-in-logs", backstop_tests::unique_suffix());
    db.psql(&format!(
        "CREATE ROLE {role} LOGIN SUPERUSER PASSWORD '{password}'"
    ));
    let c = cluster();
    let url = format!(
        "postgresql://{role}:{password}@{}:{}/{}?sslmode=disable",
        c.host, c.port, db.name
    );
    (url, password)
}

pub(crate) fn sample_app(db: &TestDb) {
    db.psql(
        "CREATE TABLE public.accounts (id int PRIMARY KEY, owner text NOT NULL, balance numeric);
         INSERT INTO public.accounts SELECT g, 'owner ' || g, g * 10 FROM generate_series(1, 500) g;
         CREATE TABLE public.events (id bigserial PRIMARY KEY, account int REFERENCES public.accounts, payload jsonb);
         INSERT INTO public.events (account, payload) SELECT 1 + g % 500, jsonb_build_object('n', g) FROM generate_series(1, 2000) g;",
    );
}

pub(crate) fn invocation(payload: Value, timeout: Duration) -> LambdaEvent<Value> {
    let mut context = Context::default();
    context.request_id = format!("req-{}", backstop_tests::unique_suffix());
    context.deadline =
        ((OffsetDateTime::now_utc() + timeout).unix_timestamp_nanos() / 1_000_000) as u64;
    LambdaEvent::new(payload, context)
}

pub fn scheduled_event() -> Value {
    let mut event = fixture("scheduled.json");
    event["id"] = json!(format!("evt-{}", backstop_tests::unique_suffix()));
    event
}

pub(crate) async fn keys(stack: &Stack) -> Vec<String> {
    let s3 = moto().s3().await;
    let mut keys = Vec::new();
    let mut pages = s3
        .list_objects_v2()
        .bucket(&stack.bucket)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.unwrap();
        keys.extend(
            page.contents()
                .iter()
                .filter_map(|o| o.key().map(str::to_string)),
        );
    }
    keys
}

async fn pending_uploads(bucket: &str) -> usize {
    let listed = moto()
        .s3()
        .await
        .list_multipart_uploads()
        .bucket(bucket)
        .send()
        .await
        .unwrap();
    listed.uploads().len()
}

pub(crate) fn alerts(received: &[backstop_tests::moto::Received]) -> Vec<Alert> {
    received
        .iter()
        .map(|r| serde_json::from_str(&r.message).expect("the SQS message is the alert JSON"))
        .collect()
}

/// Sum of a metric's datapoints for one database within two days of now (tests set clocks).
pub(crate) async fn metric_sum(name: &str, database: &str) -> Option<f64> {
    let cloudwatch = aws_sdk_cloudwatch::Client::new(&moto().sdk_config().await);
    let now = OffsetDateTime::now_utc();
    let output = cloudwatch
        .get_metric_statistics()
        .namespace("Backstop")
        .metric_name(name)
        .dimensions(
            Dimension::builder()
                .name("DatabaseId")
                .value(database)
                .build(),
        )
        .start_time(aws_sdk_cloudwatch::primitives::DateTime::from_secs(
            (now - time::Duration::days(2)).unix_timestamp(),
        ))
        .end_time(aws_sdk_cloudwatch::primitives::DateTime::from_secs(
            (now + time::Duration::days(2)).unix_timestamp(),
        ))
        .period(3600)
        .statistics(Statistic::Sum)
        .send()
        .await
        .unwrap();
    let points = output.datapoints();
    (!points.is_empty()).then(|| points.iter().filter_map(|p| p.sum()).sum())
}

#[tokio::test]
async fn a_scheduled_event_backs_up_every_database_with_tags_metrics_and_no_alert() {
    let logs = logs::capture();
    let main = fresh_database("lambda main");
    sample_app(&main);
    let (main_url, main_password) = role_with_password(&main, "main");
    let billing = fresh_database("lambda billing");
    sample_app(&billing);
    let (_, billing_password) = role_with_password(&billing, "billing");

    // billing's connection comes from Secrets Manager, in the RDS JSON shape.
    let aws = moto().sdk_config().await;
    let secrets = aws_sdk_secretsmanager::Client::new(&aws);
    let secret_name = format!("backstop/billing-{}", backstop_tests::unique_suffix());
    let billing_role = cluster()
        .psql(
            &billing.name,
            "SELECT rolname FROM pg_roles WHERE rolname LIKE 'app_billing_%' ORDER BY oid DESC LIMIT 1",
        )
        .trim()
        .to_string();
    let secret_arn = secrets
        .create_secret()
        .name(&secret_name)
        .secret_string(
            json!({
                "engine": "postgres",
                "host": cluster().host,
                "port": cluster().port,
                "username": billing_role,
                "password": billing_password,
                "dbname": billing.name,
            })
            .to_string(),
        )
        .send()
        .await
        .unwrap()
        .arn()
        .unwrap()
        .to_string();

    let stack = stack(
        "lambda-scheduled",
        &[
            ("main", json!({"url_env": "MAIN_DATABASE_URL"})),
            (
                "billing",
                json!({"secret": secret_arn, "sslmode": "disable"}),
            ),
        ],
        vec![("MAIN_DATABASE_URL".into(), main_url)],
        StoreChoice::Bucket,
    )
    .await;

    let event = scheduled_event();
    // A first delivery that fails (no time left) releases its claim, so Lambda's retry of the
    // same event is not mistaken for a duplicate.
    let error = backup::handler(invocation(event.clone(), Duration::ZERO), &stack.deps)
        .await
        .unwrap_err();
    assert!(error.to_string().contains("reserve left"), "{error}");
    assert_eq!(stack.inbox.drain().await.len(), 2, "one alert per database");
    let response = backup::handler(
        invocation(event.clone(), Duration::from_secs(600)),
        &stack.deps,
    )
    .await
    .expect("the scheduled backup succeeds");
    assert!(response.skipped.is_empty(), "{:?}", response.skipped);
    let mut done: Vec<_> = response.backups.iter().collect();
    done.sort_by(|a, b| a.database.cmp(&b.database));
    assert_eq!(
        done.iter()
            .map(|d| (d.database.as_str(), d.tables, d.rows, d.tier.as_str()))
            .collect::<Vec<_>>(),
        [
            ("billing", 2, 2500, "monthly"),
            ("main", 2, 2500, "monthly")
        ]
    );

    let keys = keys(&stack).await;
    let s3 = moto().s3().await;
    for backup in &done {
        assert!(backup.bytes > 0 && backup.duration_seconds > 0.0);
        let set = format!("{}/{}/{}/", stack.prefix, backup.database, backup.backup_id);
        let set_keys: Vec<&String> = keys.iter().filter(|k| k.starts_with(&set)).collect();
        assert!(set_keys.iter().any(|k| k.ends_with("/manifest.json")));
        assert!(set_keys.iter().any(|k| k.ends_with("/pre-data.sql.zst")));
        assert!(set_keys.iter().any(|k| k.ends_with("/post-data.sql.zst")));
        // Its two small tables share one part.
        assert_eq!(set_keys.iter().filter(|k| k.contains("/data/")).count(), 1);
        for key in set_keys {
            let tags = s3
                .get_object_tagging()
                .bucket(&stack.bucket)
                .key(key)
                .send()
                .await
                .unwrap();
            let tier: Vec<_> = tags
                .tag_set()
                .iter()
                .filter(|t| t.key() == "backstop-tier")
                .map(|t| t.value().to_string())
                .collect();
            assert_eq!(tier, ["monthly"], "tier tag of {key}");
        }
        assert_eq!(
            metric_sum("BackupSucceeded", &backup.database).await,
            Some(1.0)
        );
        assert_eq!(
            metric_sum("BackupBytes", &backup.database).await,
            Some(backup.bytes as f64)
        );
        assert!(
            metric_sum("BackupDurationSeconds", &backup.database)
                .await
                .is_some_and(|s| s > 0.0)
        );
    }
    for backup in &done {
        assert!(
            lease_released(&stack, &backup.database).await,
            "the lease was released"
        );
    }
    assert!(
        stack.inbox.drain().await.is_empty(),
        "a success sends no alert"
    );

    // The same event delivered again (EventBridge delivers at least once): no second backup.
    let again = backup::handler(invocation(event, Duration::from_secs(600)), &stack.deps)
        .await
        .unwrap();
    assert!(again.backups.is_empty(), "{:?}", again.backups);
    assert_eq!(again.skipped.len(), 2);
    assert!(
        again.skipped[0].reason.contains("duplicate"),
        "{:?}",
        again.skipped
    );
    let manifests = self::keys(&stack)
        .await
        .into_iter()
        .filter(|k| k.ends_with("manifest.json"))
        .count();
    assert_eq!(manifests, 2);

    // An on-demand run with its reason, at the tier asked for.
    let on_demand = backup::handler(
        invocation(
            json!({"database": "main", "tier": "weekly", "reason": "before migration 00021"}),
            Duration::from_secs(600),
        ),
        &stack.deps,
    )
    .await
    .unwrap();
    assert_eq!(on_demand.backups[0].tier, "weekly");

    let metrics = aws_sdk_cloudwatch::Client::new(&moto().sdk_config().await)
        .list_metrics()
        .namespace("Backstop")
        .send()
        .await
        .unwrap();
    let dimensions = format!("{:?}", metrics.metrics());
    assert!(dimensions.contains("DatabaseId"), "{dimensions}");
    let logged = logs.text();
    assert!(logged.contains("backup committed"), "{logged}");
    for password in [&main_password, &billing_password] {
        assert!(
            !dimensions.contains(password.as_str()),
            "a password reached a metric"
        );
    }
    for password in [&main_password, &billing_password] {
        assert!(!logged.contains(password.as_str()), "a password was logged");
    }
}

/// Whether the database's backup lease is free: absent, or marked expired by its release.
async fn lease_released(stack: &Stack, database: &str) -> bool {
    let key = format!("_backstop/locks/{database}/backup");
    match stack.deps.base.store.read_versioned(&key).await {
        Ok(None) => true,
        Ok(Some(found)) => serde_json::from_slice::<backstop::lease::LeaseRecord>(&found.body)
            .is_ok_and(|l| l.is_expired(OffsetDateTime::now_utc())),
        Err(_) => true, // a store that cannot be read (missing bucket) holds no lease
    }
}

/// What every failure must leave: a failed invocation naming the cause, no manifest, no part,
/// no lease, no unfinished upload, one critical alert, and no password anywhere.
async fn assert_failed_cleanly(
    stack: &Stack,
    database: &str,
    result: Result<backup::BackupResponse, backup::BackupError>,
    cause: &str,
    password: &str,
    logs: &logs::LogCapture,
) -> Alert {
    let error = result.expect_err("the invocation must fail").to_string();
    assert!(error.contains(cause), "expected `{cause}` in: {error}");
    assert_eq!(error.lines().count(), 1, "{error}");
    // Only Backstop's own state may remain: the released lease (and a released claim).
    let keys: Vec<String> = keys(stack)
        .await
        .into_iter()
        .filter(|k| !k.starts_with(&format!("{}/_backstop/", stack.prefix)))
        .collect();
    assert!(
        keys.is_empty(),
        "a failed backup left objects behind: {keys:?}"
    );
    assert!(
        lease_released(stack, database).await,
        "the lease is released"
    );
    assert_eq!(
        pending_uploads(&stack.bucket).await,
        0,
        "an upload was left unfinished"
    );
    let received = stack.inbox.drain().await;
    assert_eq!(received.len(), 1, "exactly one alert: {received:?}");
    assert!(
        received[0]
            .subject
            .starts_with(&format!("[CRITICAL] {database}: backup failed")),
        "{}",
        received[0].subject
    );
    let alert = alerts(&received).remove(0);
    assert_eq!(
        (
            alert.severity,
            alert.kind.as_str(),
            alert.database_id.as_str()
        ),
        (Severity::Critical, alert.kind.as_str(), database)
    );
    assert!(
        ["backup_failed", "backup_deadline_exceeded"].contains(&alert.kind.as_str()),
        "{}",
        alert.kind
    );
    assert_eq!(
        metric_sum("BackupSucceeded", database).await,
        Some(0.0),
        "the failure is recorded as BackupSucceeded = 0"
    );
    let everything = format!("{error}\n{}\n{}", received[0].message, logs.text());
    assert!(
        !everything.contains(password),
        "the password leaked: {everything}"
    );
    alert
}

#[tokio::test]
async fn an_unreachable_database_fails_with_one_alert_and_nothing_stored() {
    let logs = logs::capture();
    let id = database_id("unreachable");
    let port = backstop_tests::free_port();
    let password = format!("Pw-{}-unreachable", backstop_tests::unique_suffix());
    let url = format!("postgresql://app:{password}@127.0.0.1:{port}/app?sslmode=disable");
    let stack = stack(
        "lambda-unreachable",
        &[(id.as_str(), json!({"url_env": "MAIN_DATABASE_URL"}))],
        vec![("MAIN_DATABASE_URL".into(), url)],
        StoreChoice::Bucket,
    )
    .await;
    let result = backup::handler(
        invocation(json!({"database": id}), Duration::from_secs(600)),
        &stack.deps,
    )
    .await;
    let alert =
        assert_failed_cleanly(&stack, &id, result, "cannot connect", &password, &logs).await;
    // Asynchronous, so the AWS CLI does not give up after 60 s; and how exposed the database is.
    assert!(
        alert.action.contains("aws lambda invoke")
            && alert.action.contains("--invocation-type Event"),
        "{}",
        alert.action
    );
    assert!(
        alert
            .details
            .contains("There is no committed backup of this database at all"),
        "{}",
        alert.details
    );
}

#[tokio::test]
async fn a_wrong_password_fails_with_one_alert_and_nothing_stored() {
    let logs = logs::capture();
    let id = database_id("wrong");
    let db = fresh_database("lambda wrong password");
    sample_app(&db);
    let (url, real_password) = role_with_password(&db, "wrongpw");
    let wrong = format!("Wr0ng-{}-guess", backstop_tests::unique_suffix());
    let url = url.replace(&real_password, &wrong);
    let stack = stack(
        "lambda-wrong-password",
        &[(id.as_str(), json!({"url_env": "MAIN_DATABASE_URL"}))],
        vec![("MAIN_DATABASE_URL".into(), url)],
        StoreChoice::Bucket,
    )
    .await;
    let result = backup::handler(
        invocation(json!({"database": id}), Duration::from_secs(600)),
        &stack.deps,
    )
    .await;
    assert_failed_cleanly(
        &stack,
        &id,
        result,
        "password authentication failed",
        &wrong,
        &logs,
    )
    .await;
    assert!(!logs.text().contains(&real_password));
}

#[tokio::test]
async fn a_missing_bucket_fails_with_one_alert() {
    let logs = logs::capture();
    let id = database_id("missing");
    let db = fresh_database("lambda no bucket");
    sample_app(&db);
    let (url, password) = role_with_password(&db, "nobucket");
    let stack = stack(
        "lambda-no-bucket",
        &[(id.as_str(), json!({"url_env": "MAIN_DATABASE_URL"}))],
        vec![("MAIN_DATABASE_URL".into(), url)],
        StoreChoice::MissingBucket,
    )
    .await;
    let result = backup::handler(
        invocation(json!({"database": id}), Duration::from_secs(600)),
        &stack.deps,
    )
    .await;
    // The missing bucket was never created, and nothing went anywhere else.
    assert_failed_cleanly(&stack, &id, result, "does not exist", &password, &logs).await;
}

#[tokio::test]
async fn a_backend_terminated_mid_copy_fails_with_one_alert_and_nothing_stored() {
    let logs = logs::capture();
    let id = database_id("backend");
    let db = fresh_database("lambda killed copy");
    db.psql(
        "CREATE TABLE public.big (id int, filler text);
         INSERT INTO public.big SELECT g, repeat(md5(g::text), 8) FROM generate_series(1, 250000) g;",
    );
    let (url, password) = role_with_password(&db, "killed");
    // Slow storage keeps the COPY running long enough to be seen and terminated.
    let stack = stack(
        "lambda-killed",
        &[(id.as_str(), json!({"url_env": "MAIN_DATABASE_URL"}))],
        vec![("MAIN_DATABASE_URL".into(), url)],
        StoreChoice::Stalling {
            after: 1024 * 1024,
            pause: Duration::from_secs(2),
        },
    )
    .await;
    let killer = crate::support::terminate_copy_when_seen(&db).await;
    let result = backup::handler(
        invocation(json!({"database": id}), Duration::from_secs(600)),
        &stack.deps,
    )
    .await;
    assert!(killer.await.unwrap(), "the COPY was never seen running");
    assert_failed_cleanly(&stack, &id, result, "public.big", &password, &logs).await;
}

#[tokio::test]
async fn a_deadline_too_short_stops_cleanly_and_points_to_a_container_task() {
    let logs = logs::capture();
    let id = database_id("deadline");
    let db = fresh_database("lambda deadline");
    // About 11 MiB of incompressible data: one multipart upload.
    db.psql(
        "CREATE TABLE public.blobs (id int, data bytea);
         INSERT INTO public.blobs SELECT g, decode(md5(g::text) || md5((-g)::text), 'hex')
           FROM generate_series(1, 360000) g;",
    );
    let (url, password) = role_with_password(&db, "deadline");
    let (cluster, task_definition) = crate::dispatch::ecs_task("deadline").await;
    let mut env = vec![("MAIN_DATABASE_URL".to_string(), url)];
    env.extend(crate::dispatch::task_env(&cluster, &task_definition).await);
    // Storage that stalls after 9 MiB of a part: the multipart upload is under way when the
    // deadline comes.
    let mut stack = stack(
        "lambda-deadline",
        &[(id.as_str(), json!({"url_env": "MAIN_DATABASE_URL"}))],
        env,
        StoreChoice::Stalling {
            after: 9 * 1024 * 1024,
            pause: Duration::from_secs(60),
        },
    )
    .await;
    stack.deps.reserve = Duration::from_secs(2);
    let bucket = stack.bucket.clone();
    let watcher = tokio::spawn(async move {
        for _ in 0..100 {
            if pending_uploads(&bucket).await > 0 {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        false
    });
    let result = backup::handler(
        invocation(json!({"database": id}), Duration::from_secs(8)),
        &stack.deps,
    )
    .await;
    assert!(
        watcher.await.unwrap(),
        "the deadline should come while a multipart upload is under way"
    );
    let alert = assert_failed_cleanly(&stack, &id, result, "time limit", &password, &logs).await;
    assert_eq!(alert.kind, "backup_deadline_exceeded");
    assert!(
        alert.action.contains("dispatches it to the container task"),
        "{}",
        alert.action
    );
    assert!(
        alert.action.contains("backstop backup --db"),
        "{}",
        alert.action
    );

    // The next run does not try again in Lambda: it goes to the container task.
    let next = backup::handler(
        invocation(json!({"database": id}), Duration::from_secs(600)),
        &stack.deps,
    )
    .await
    .unwrap();
    assert!(next.backups.is_empty());
    let dispatched = &next.dispatched[0];
    assert!(
        dispatched.reason.contains("stopped at its deadline"),
        "{}",
        dispatched.reason
    );
    let (_, job) = crate::dispatch::started_task(&cluster, &dispatched.task).await;
    assert_eq!(job, json!({"database": id, "tier": "auto"}));
}

#[tokio::test]
async fn two_concurrent_invocations_take_exactly_one_backup() {
    let id = database_id("concurrent");
    let db = fresh_database("lambda concurrent");
    db.psql(
        "CREATE TABLE public.big (id int, filler text);
         INSERT INTO public.big SELECT g, repeat(md5(g::text), 4) FROM generate_series(1, 100000) g;",
    );
    let (url, _) = role_with_password(&db, "concurrent");
    let stack = stack(
        "lambda-concurrent",
        &[(id.as_str(), json!({"url_env": "MAIN_DATABASE_URL"}))],
        vec![("MAIN_DATABASE_URL".into(), url)],
        StoreChoice::Bucket,
    )
    .await;
    let first = backup::handler(
        invocation(json!({"database": id}), Duration::from_secs(600)),
        &stack.deps,
    );
    let second = backup::handler(
        invocation(json!({"database": id}), Duration::from_secs(600)),
        &stack.deps,
    );
    let (first, second) = tokio::join!(first, second);
    let (first, second) = (first.unwrap(), second.unwrap());
    assert_eq!(first.backups.len() + second.backups.len(), 1);
    let skipped: Vec<_> = first.skipped.iter().chain(&second.skipped).collect();
    assert_eq!(skipped.len(), 1);
    assert!(skipped[0].reason.contains("already running"), "{skipped:?}");
    let manifests = keys(&stack)
        .await
        .into_iter()
        .filter(|k| k.ends_with("manifest.json"))
        .count();
    assert_eq!(manifests, 1);
    assert!(stack.inbox.drain().await.is_empty());
}

/// A run killed without a word (its task aborted mid-backup: what an out-of-memory kill or a
/// hard timeout does) leaves its claim `claimed`. The redelivered event waits for the dead
/// run's lease to expire, takes the claim over, says so, and takes the backup.
#[tokio::test]
async fn a_run_killed_mid_way_is_taken_over_by_its_redelivery_once_its_lease_expired() {
    let logs = logs::capture();
    let id = database_id("killed");
    let db = fresh_database("lambda killed");
    sample_app(&db);
    db.psql(
        "CREATE TABLE public.big (id int, filler text);
         INSERT INTO public.big SELECT g, repeat(md5(g::text), 4) FROM generate_series(1, 200000) g;",
    );
    let (url, _) = role_with_password(&db, "killed");
    let mut stack = stack(
        "lambda-killed",
        &[(id.as_str(), json!({"url_env": "MAIN_DATABASE_URL"}))],
        vec![("MAIN_DATABASE_URL".into(), url)],
        StoreChoice::Bucket,
    )
    .await;
    stack.deps.lease = Duration::from_secs(3);
    let event =
        json!({"database": id, "run_id": format!("evt-{}", backstop_tests::unique_suffix())});

    let store = stack.deps.base.store.clone();
    let first = backup::handler(
        invocation(event.clone(), Duration::from_secs(600)),
        &stack.deps,
    );
    // Mid-way: the set's first part is stored, the manifest is not.
    let first_part_stored = async {
        loop {
            if let Ok(objects) = store.list(&format!("{id}/")).await
                && !objects.is_empty()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::select! {
        result = first => panic!("the first run was to be killed mid-way, but it ended: {result:?}"),
        () = first_part_stored => {} // dropping `first` here kills the run without a word
    }
    let claims = keys(&stack)
        .await
        .into_iter()
        .filter(|k| k.contains("/_backstop/runs/"))
        .collect::<Vec<_>>();
    assert_eq!(claims.len(), 1, "{claims:?}");
    assert!(
        stack.inbox.drain().await.is_empty(),
        "a killed run alerts nothing"
    );

    let retry = backup::handler(
        invocation(event.clone(), Duration::from_secs(600)),
        &stack.deps,
    )
    .await
    .expect("the redelivery takes the backup");
    assert_eq!(retry.backups.len(), 1, "{retry:?}");
    assert!(
        logs.text().contains("took over a dead run's claim"),
        "the takeover is logged: {}",
        logs.text()
    );
    let manifests = keys(&stack)
        .await
        .into_iter()
        .filter(|k| k.ends_with("manifest.json"))
        .count();
    assert_eq!(manifests, 1);

    // Delivered once more: the claim now says which backup handled it.
    let again = backup::handler(invocation(event, Duration::from_secs(600)), &stack.deps)
        .await
        .unwrap();
    assert!(again.backups.is_empty(), "{again:?}");
    assert!(
        again.skipped[0]
            .reason
            .contains(&retry.backups[0].backup_id),
        "{:?}",
        again.skipped
    );
}

/// A dozen databases on one schedule: the Scheduler delivers twelve events at once, Lambda runs
/// as many as the module's reserved concurrency allows side by side and queues the rest (for
/// up to six hours), and every database gets its committed backup.
#[tokio::test]
async fn twelve_databases_on_one_schedule_all_get_their_backup() {
    let concurrency = crate::infra::MODULE_BACKUP_CONCURRENCY;
    let dbs: Vec<TestDb> = (0..12)
        .map(|i| {
            let db = fresh_database(&format!("fleet {i}"));
            db.psql(&format!(
                "CREATE TABLE public.t (id int PRIMARY KEY); INSERT INTO public.t SELECT generate_series(1, {})",
                100 + i
            ));
            db
        })
        .collect();
    let ids: Vec<String> = (0..12).map(|i| database_id(&format!("fleet{i}"))).collect();
    let sources: Vec<(&str, Value)> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| (id.as_str(), json!({"url_env": format!("DB_{i}_URL")})))
        .collect();
    let env = dbs
        .iter()
        .enumerate()
        .map(|(i, db)| (format!("DB_{i}_URL"), db.url()))
        .collect();
    let stack = stack("lambda-fleet", &sources, env, StoreChoice::Bucket).await;

    let slots = tokio::sync::Semaphore::new(concurrency);
    let in_flight = std::sync::atomic::AtomicUsize::new(0);
    let most_at_once = std::sync::atomic::AtomicUsize::new(0);
    let (slots, in_flight, most_at_once, deps) = (&slots, &in_flight, &most_at_once, &stack.deps);
    let runs = ids.iter().map(|id| async move {
        let _slot = slots.acquire().await.unwrap();
        let now = in_flight.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
        most_at_once.fetch_max(now, std::sync::atomic::Ordering::SeqCst);
        let event = json!({"database": id, "tier": "auto", "run_id": format!("exec-{id}")});
        let result = backup::handler(invocation(event, Duration::from_secs(900)), deps).await;
        in_flight.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
        result
    });
    let results = futures::future::join_all(runs).await;
    let done: Vec<String> = results
        .into_iter()
        .flat_map(|r| r.expect("every invocation succeeds").backups)
        .map(|b| b.database)
        .collect();
    assert_eq!(done.len(), 12, "{done:?}");
    assert!(
        most_at_once.load(std::sync::atomic::Ordering::SeqCst) > 1,
        "backups ran side by side"
    );
    let manifests = keys(&stack)
        .await
        .into_iter()
        .filter(|k| k.ends_with("manifest.json"))
        .count();
    assert_eq!(manifests, 12);
    assert!(stack.inbox.drain().await.is_empty());
}

#[tokio::test]
async fn requests_are_validated_and_name_what_is_wrong() {
    let config = crate::functions::config("s3://backups/prod", "main");
    let plan = backup::plan(fixture("backup-on-demand.json"), &config).unwrap();
    assert_eq!(plan.tier, backup::TierChoice::Monthly);
    assert_eq!(plan.reason.as_deref(), Some("before migration 00021"));
    let plan = backup::plan(
        json!({"database": "main", "tier": "auto", "run_id": "exec-1"}),
        &config,
    )
    .unwrap();
    assert_eq!(plan.run_id.as_deref(), Some("exec-1"));
    let plan = backup::plan(fixture("scheduled.json"), &config).unwrap();
    assert_eq!(
        plan.run_id.as_deref(),
        Some("53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa")
    );
    let error = backup::plan(json!({"database": "billing"}), &config).unwrap_err();
    assert!(error.to_string().contains("BACKSTOP_DATABASES"), "{error}");
    let error = backup::plan(json!({"tier": "hourly"}), &config).unwrap_err();
    assert!(matches!(error, backup::BackupError::BadEvent(_)), "{error}");
}

#[tokio::test]
async fn an_ssm_secure_string_or_secret_url_is_a_connection_source() {
    let db = fresh_database("ssm source");
    let (url, password) = role_with_password(&db, "ssm");
    let aws = moto().sdk_config().await;
    let name = format!("/backstop/{}/url", backstop_tests::unique_suffix());
    aws_sdk_ssm::Client::new(&aws)
        .put_parameter()
        .name(&name)
        .value(&url)
        .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
        .send()
        .await
        .unwrap();
    let source: backstop::connection::DatabaseSource =
        serde_json::from_value(json!({"ssm_parameter": name})).unwrap();
    let no_env = |_: &str| None;
    let target = backstop::connection::resolve("main", &source, &aws, &no_env)
        .await
        .unwrap();
    let client = backstop::pg::connect(&target).await.unwrap();
    let database: String = client
        .query_one("SELECT current_database()::text", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(database, db.name);

    // Sources that cannot be read say which one and why, never the value.
    let missing: backstop::connection::DatabaseSource =
        serde_json::from_value(json!({"secret": "backstop/nope"})).unwrap();
    let error = backstop::connection::resolve("main", &missing, &aws, &no_env)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("backstop/nope") && error.contains("ResourceNotFound"),
        "{error}"
    );
    let env_source: backstop::connection::DatabaseSource =
        serde_json::from_value(json!({"url_env": "MAIN_DATABASE_URL"})).unwrap();
    let error = backstop::connection::resolve("main", &env_source, &aws, &no_env)
        .await
        .unwrap_err()
        .to_string();
    assert!(error.contains("MAIN_DATABASE_URL"), "{error}");
    let bad = aws_sdk_secretsmanager::Client::new(&aws)
        .create_secret()
        .name(format!("backstop/bad-{}", backstop_tests::unique_suffix()))
        .secret_string(
            json!({"host": "h", "username": "u", "password": password, "port": "x"}).to_string(),
        )
        .send()
        .await
        .unwrap();
    let bad_source: backstop::connection::DatabaseSource =
        serde_json::from_value(json!({"secret": bad.arn().unwrap()})).unwrap();
    let error = backstop::connection::resolve("main", &bad_source, &aws, &no_env)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("`port`") && !error.contains(&password),
        "{error}"
    );
}
