//! The alerts of real failures, produced by running the functions' handlers against the
//! harness: a database that is down and a store that denies writes (the backup function), a
//! damaged backup (the verify function), a stale backup (the monitor, on a clock the test sets)
//! and a change stream's slot falling behind (the stream function). Each alert is read back as
//! published (the SNS topic's SQS subscription), then shown as email subscribers read it and
//! as the Slack notifier posts it to a local webhook; snapshots hold both, with the values of
//! the run (backup ids, times, the bucket, the port) redacted. Three are laid out as Slack
//! shows them and looked at in headless Chromium. Unredacted copies go to
//! `target/alerts-sample/`, the screenshot to `target/alerts-blockkit.png`.

use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::event::sns::{SnsEvent, SnsMessage, SnsRecord};
use backstop::alert::{Alert, Severity, kind, logs_link};
use backstop::config::FunctionConfig;
use backstop::engine::backup::BackupOptions;
use backstop::engine::manifest::Manifest;
use backstop::layout::DatabaseId;
use backstop::store::Store;
use backstop_tests::browser::Browser;
use backstop_tests::failing_store::FailingStore;
use backstop_tests::moto::{AlertInbox, Received, moto};
use backstop_tests::postgres::{TestDb, fresh_database};
use backstop_tests::webhook::WebhookRecorder;
use lambda_runtime::{Context, LambdaEvent};
use serde_json::{Value, json};
use time::OffsetDateTime;

use crate::backup_lambda::sample_app;

/// The database id every case uses (each has a bucket of its own).
const ID: &str = "shop";
const REGION: &str = "eu-west-1";
const LOG_STREAM: &str = "2026/11/22/[$LATEST]0f1e2d3c4b5a69788796a5b4c3d2e1f0";

/// What the Lambda runtime sets for `function`, given through the function's environment
/// lookup as the runtime's variables would be.
fn lambda_env(function: &str) -> Vec<(String, String)> {
    vec![
        ("AWS_REGION".into(), REGION.into()),
        ("AWS_LAMBDA_FUNCTION_NAME".into(), function.into()),
        (
            "AWS_LAMBDA_LOG_GROUP_NAME".into(),
            format!("/aws/lambda/{function}"),
        ),
        ("AWS_LAMBDA_LOG_STREAM_NAME".into(), LOG_STREAM.into()),
    ]
}

/// A new bucket, an alert topic with its SQS inbox, and the store over the bucket.
struct Run {
    bucket: String,
    store_url: String,
    inbox: AlertInbox,
    store: Arc<dyn Store>,
    aws: aws_config::SdkConfig,
}

impl Run {
    async fn new(label: &str) -> Self {
        let bucket = moto().new_bucket(label).await;
        let inbox = moto().alert_inbox(label).await;
        let aws = moto().sdk_config().await;
        let store_url = format!("s3://{bucket}/prod");
        let store = backstop::store::open(&store_url.parse().unwrap(), &aws);
        Self {
            bucket,
            store_url,
            inbox,
            store,
            aws,
        }
    }

    /// `function`'s dependencies over this run's store (or `store`, wrapped around it), with
    /// the database `shop` at `url` and the variables in `extra`.
    fn base(
        &self,
        function: &str,
        url: Option<String>,
        extra: &[(&str, &str)],
        store: Arc<dyn Store>,
    ) -> common::Base {
        let mut vars = vec![
            ("BACKSTOP_STORE".to_string(), self.store_url.clone()),
            (
                "BACKSTOP_DATABASES".to_string(),
                json!({ ID: {"url_env": "SHOP_DATABASE_URL"} }).to_string(),
            ),
            (
                "BACKSTOP_ALERT_TOPIC_ARN".to_string(),
                self.inbox.topic_arn.clone(),
            ),
        ];
        vars.extend(url.map(|url| ("SHOP_DATABASE_URL".to_string(), url)));
        vars.extend(lambda_env(function));
        vars.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let lookup = move |k: &str| vars.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        let config = FunctionConfig::from_lookup(&lookup).unwrap();
        common::Base::new(config, store, self.aws.clone(), Arc::new(lookup), function)
    }

    /// A backup of `db` as `shop`, taken by the engine straight into the store.
    async fn backup(&self, db: &TestDb) -> Manifest {
        let options = BackupOptions::new(DatabaseId::new(ID).unwrap());
        let config = backstop::pg::parse_url(&db.url()).unwrap();
        backstop::engine::backup::backup(&config, self.store.clone(), &options, &|_| {})
            .await
            .unwrap()
    }
}

fn invocation(payload: Value) -> LambdaEvent<Value> {
    let mut context = Context::default();
    context.request_id = "req-0f1e2d3c".into();
    context.deadline = ((OffsetDateTime::now_utc() + time::Duration::minutes(10))
        .unix_timestamp_nanos()
        / 1_000_000) as u64;
    LambdaEvent::new(payload, context)
}

/// One alert of a real run, as the SQS subscriber received it.
struct Case {
    name: &'static str,
    function: &'static str,
    received: Received,
    alert: Alert,
    /// The store, as the CLI's `--to` and `--from` take it.
    store_url: String,
    /// Values of this run and what they read as in the snapshots.
    redactions: Vec<(String, String)>,
}

impl Case {
    fn new(
        name: &'static str,
        function: &'static str,
        run: &Run,
        mut received: Vec<Received>,
        wanted: &str,
        mut redactions: Vec<(String, String)>,
    ) -> Self {
        let at = received
            .iter()
            .position(|r| r.attributes.get("kind").map(String::as_str) == Some(wanted))
            .unwrap_or_else(|| panic!("{name}: no {wanted} alert was published: {received:?}"));
        let received = received.swap_remove(at);
        let alert: Alert =
            serde_json::from_str(&received.message).expect("the SQS message is the alert JSON");
        redactions.push((run.bucket.clone(), "[bucket]".into()));
        Self {
            name,
            function,
            received,
            alert,
            store_url: run.store_url.clone(),
            redactions,
        }
    }
}

/// A backup against a server that is not there, after an earlier good backup.
async fn database_down() -> Case {
    let db = fresh_database("alerts database down");
    sample_app(&db);
    let run = Run::new("alerts-down").await;
    let good = run.backup(&db).await;
    let port = backstop_tests::free_port();
    let url = format!("postgresql://app@127.0.0.1:{port}/app?sslmode=disable");
    let deps = backup::Deps::new(run.base(backup::DEFAULT_NAME, Some(url), &[], run.store.clone()))
        .unwrap();
    let result = backup::handler(invocation(json!({"database": ID})), &deps).await;
    assert!(result.is_err(), "the invocation fails");
    let received = run.inbox.drain().await;
    Case::new(
        "database_down",
        backup::DEFAULT_NAME,
        &run,
        received,
        kind::BACKUP_FAILED,
        vec![
            (good.backup_id, "[newest good backup]".into()),
            (format!(":{port}"), ":[port]".into()),
        ],
    )
}

/// A backup into a store whose policy denies writes (reads still work), after a good one.
async fn store_denied() -> Case {
    let db = fresh_database("alerts store denied");
    sample_app(&db);
    let run = Run::new("alerts-denied").await;
    let good = run.backup(&db).await;
    let denying = Arc::new(FailingStore::new(run.store.clone()));
    denying.deny_writes();
    let deps =
        backup::Deps::new(run.base(backup::DEFAULT_NAME, Some(db.url()), &[], denying)).unwrap();
    let result = backup::handler(invocation(json!({"database": ID})), &deps).await;
    assert!(result.is_err(), "the invocation fails");
    let received = run.inbox.drain().await;
    Case::new(
        "store_denied",
        backup::DEFAULT_NAME,
        &run,
        received,
        kind::BACKUP_FAILED,
        vec![
            (good.backup_id, "[newest good backup]".into()),
            (db.name.clone(), "[database]".into()),
        ],
    )
}

/// A deep verification of a backup with a damaged part, after an older one passed.
async fn verification_failed() -> Case {
    let db = fresh_database("alerts verification failed");
    sample_app(&db);
    let run = Run::new("alerts-verify").await;
    let deps =
        verify::Deps::new(run.base(verify::DEFAULT_NAME, None, &[], run.store.clone())).unwrap();
    let deep = json!({"database": ID, "level": "deep"});
    let good = run.backup(&db).await;
    let passed = verify::handler(invocation(deep.clone()), &deps)
        .await
        .unwrap();
    assert_eq!(
        passed.results[0].verdict,
        backstop::engine::verify::Verdict::Passed
    );
    assert!(run.inbox.drain().await.is_empty(), "a pass sends no alert");

    let bad = run.backup(&db).await;
    let part = bad
        .parts
        .iter()
        .find(|p| p.blocks().next().is_some())
        .unwrap();
    let key = format!("{ID}/{}/{}", bad.backup_id, part.key);
    let mut bytes = crate::store_contract::read_all(run.store.as_ref(), &key).await;
    // The frame's magic number: whatever the rows, the part no longer decompresses.
    bytes[0] ^= 0xff;
    run.store
        .put(
            &key,
            &mut bytes.as_slice(),
            &backstop::store::PutOptions::default(),
        )
        .await
        .unwrap();
    let failed = verify::handler(invocation(deep), &deps).await.unwrap();
    assert_eq!(
        failed.results[0].verdict,
        backstop::engine::verify::Verdict::Failed
    );
    let received = run.inbox.drain().await;
    Case::new(
        "verification_failed",
        verify::DEFAULT_NAME,
        &run,
        received,
        kind::VERIFY_FAILED,
        vec![
            (good.backup_id, "[verified backup]".into()),
            (bad.backup_id, "[damaged backup]".into()),
        ],
    )
}

/// The monitor 30 hours after the only backup (its clock set, nothing waited for).
async fn backup_stale() -> Case {
    let db = fresh_database("alerts backup stale");
    sample_app(&db);
    let run = Run::new("alerts-stale").await;
    let only = run.backup(&db).await;
    let mut deps = monitor::Deps::new(run.base(
        monitor::DEFAULT_NAME,
        Some(db.url()),
        &[],
        run.store.clone(),
    ))
    .unwrap();
    let now = only.started_at + time::Duration::hours(30);
    deps.now = Arc::new(move || now);
    let response = monitor::handler(invocation(json!({"database": ID})), &deps)
        .await
        .unwrap();
    assert_eq!(response.alerts_sent, 1);
    let received = run.inbox.drain().await;
    Case::new(
        "backup_stale",
        monitor::DEFAULT_NAME,
        &run,
        received,
        kind::HEALTH_CRITICAL,
        vec![(only.backup_id, "[newest good backup]".into())],
    )
}

/// Two drains with ~5 MiB of WAL written between them, the warning level at 1 MiB.
async fn stream_lagging() -> Case {
    let db = fresh_database("alerts stream lagging");
    sample_app(&db);
    let run = Run::new("alerts-stream").await;
    let deps = stream::Deps::new(run.base(
        stream::DEFAULT_NAME,
        Some(db.url()),
        &[("BACKSTOP_STREAM_WARN_SLOT_WAL_MIB", "1")],
        run.store.clone(),
    ))
    .unwrap();
    let first = stream::handler(invocation(json!({"database": ID})), &deps)
        .await
        .unwrap();
    let base = first.drained[0].base_backup.clone().expect("a base backup");
    assert!(
        run.inbox.drain().await.is_empty(),
        "a stream that starts is not an alert"
    );
    db.psql(
        "INSERT INTO public.events (account, payload) \
         SELECT 1 + g % 500, jsonb_build_object('pad', repeat('x', 200)) FROM generate_series(1, 20000) g",
    );
    let second = stream::handler(invocation(json!({"database": ID})), &deps).await;
    let slot = backstop::engine::stream::slot_name(&DatabaseId::new(ID).unwrap());
    db.psql(&format!(
        "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots \
         WHERE slot_name = '{slot}' AND NOT active"
    ));
    second.unwrap();
    let received = run.inbox.drain().await;
    Case::new(
        "stream_lagging",
        stream::DEFAULT_NAME,
        &run,
        received,
        kind::STREAM_SLOT_LAG,
        vec![(base, "[base backup]".into())],
    )
}

/// The length of the match of `pattern` at the start of `text`: `9` a digit, `x` a hex digit,
/// `+` one or more digits, any other character itself.
fn matches_at(text: &str, pattern: &str) -> Option<usize> {
    let bytes = text.as_bytes();
    let mut at = 0;
    for p in pattern.bytes() {
        match p {
            b'9' => {
                bytes.get(at).filter(|b| b.is_ascii_digit())?;
                at += 1;
            }
            b'x' => {
                bytes.get(at).filter(|b| b.is_ascii_hexdigit())?;
                at += 1;
            }
            b'+' => {
                let run = bytes[at..]
                    .iter()
                    .take_while(|b| b.is_ascii_digit())
                    .count();
                (run > 0).then_some(())?;
                at += run;
            }
            other => {
                bytes.get(at).filter(|b| **b == other)?;
                at += 1;
            }
        }
    }
    Some(at)
}

/// Patterns of values that change from run to run, and what they read as.
const VARYING: &[(&str, &str)] = &[
    ("99999999T999999Z-xxxxxxxx", "[backup id]"),
    ("9999-99-99T99:99:+.+Z", "[time]"),
    ("9999-99-99T99:99:+Z", "[time]"),
    ("+ min + s", "[n] min [n] s"),
    ("after +.+ s", "after [n] s"),
    ("holds back + MiB", "holds back [n] MiB"),
    (
        "SHA-256 xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
        "SHA-256 [hash]",
    ),
    (
        "manifest's xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
        "manifest's [hash]",
    ),
];

/// `text` with `known` values replaced, then every [`VARYING`] pattern.
fn redact(text: &str, known: &[(String, String)]) -> String {
    let mut out = known
        .iter()
        .filter(|(value, _)| !value.is_empty())
        .fold(text.to_string(), |t, (value, with)| t.replace(value, with));
    for (pattern, with) in VARYING {
        let mut redacted = String::with_capacity(out.len());
        let mut rest = out.as_str();
        while let Some(c) = rest.chars().next() {
            match matches_at(rest, pattern) {
                Some(len) => {
                    redacted.push_str(with);
                    rest = &rest[len..];
                }
                None => {
                    redacted.push(c);
                    rest = &rest[c.len_utf8()..];
                }
            }
        }
        out = redacted;
    }
    out
}

#[test]
fn run_values_are_redacted_and_the_rest_is_kept() {
    let text = "backup 20261122T060000Z-1a2b3c4d at 2026-11-22T06:00:07.123Z, 1 d 6 h and \
                0 min 12 s ago, failed after 0.4 s; 2026-11-22T06:00:07Z in b-1";
    assert_eq!(
        redact(text, &[("b-1".into(), "[bucket]".into())]),
        "backup [backup id] at [time], 1 d 6 h and [n] min [n] s ago, failed after [n] s; \
         [time] in [bucket]"
    );
}

/// Each alert as the Slack notifier posts it (to a local webhook), in order.
async fn block_kit(cases: &[Case]) -> Vec<Value> {
    let recorder = WebhookRecorder::start(vec![]);
    let records = cases
        .iter()
        .enumerate()
        .map(|(i, case)| {
            let mut sns = SnsMessage::default();
            sns.message_id = format!("msg-{i}");
            sns.subject = Some(case.received.subject.clone());
            sns.message = case.received.message.clone();
            let mut record = SnsRecord::default();
            record.sns = sns;
            record
        })
        .collect();
    let mut event = SnsEvent::default();
    event.records = records;
    let response = notify_slack::handler(
        super::invocation(event, Duration::from_secs(30)),
        &super::deps(&recorder),
    )
    .await
    .unwrap();
    assert_eq!(response.delivered, cases.len());
    recorder
        .bodies()
        .iter()
        .map(|body| serde_json::from_str(body).unwrap())
        .collect()
}

/// What every alert of a real failure must give the person who reads it.
fn check(case: &Case, posted: &Value) {
    let alert = &case.alert;
    let name = case.name;
    if alert.severity == Severity::Critical {
        assert!(
            !alert.action.contains("Nothing to do"),
            "{name}: a critical says what to do: {}",
            alert.action
        );
    }
    let logs = logs_link(
        REGION,
        &format!("/aws/lambda/{}", case.function),
        LOG_STREAM,
    );
    assert!(
        alert.links.contains(&logs),
        "{name}: no link to the logs of the run: {:?}",
        alert.links
    );
    assert!(
        posted
            .to_string()
            .contains(&format!("<{}|Logs of this run>", logs.url)),
        "{name}: Slack shows no link to the logs"
    );
    // How bad: a failure says the newest good backup (and the RPO when the database streams
    // changes); a slot falling behind says how far point-in-time recovery reaches.
    let exposure: &[&str] = match alert.severity {
        Severity::Critical => &[
            "The newest good backup is ",
            "The newest backup that passed verification is ",
        ],
        _ => &["point-in-time recovery reaches "],
    };
    assert!(
        exposure.iter().any(|e| alert.details.contains(e)),
        "{name}: the details do not say how exposed the database is: {}",
        alert.details
    );
    // A command that works as printed: the function invoked asynchronously, or the CLI
    // against this store.
    let command = alert
        .action
        .lines()
        .filter_map(|line| line.strip_prefix("  "))
        .find(|line| {
            line.contains("--invocation-type Event")
                || line.contains(&format!(" {} ", case.store_url))
        });
    assert!(
        command.is_some(),
        "{name}: no command to run: {}",
        alert.action
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_failures_alert_with_what_happened_how_bad_what_to_do_and_the_logs() {
    // One after the other: the harness's psql calls block, and a blocked thread must not hold
    // up another case's connection half-way through its start-up.
    let cases = [
        database_down().await,
        store_denied().await,
        verification_failed().await,
        backup_stale().await,
        stream_lagging().await,
    ];
    let posted = block_kit(&cases).await;
    let samples = backstop_tests::workspace_root().join("target/alerts-sample");
    std::fs::create_dir_all(&samples).unwrap();
    for (case, posted) in cases.iter().zip(&posted) {
        check(case, posted);
        let email = format!(
            "Subject: {}\n\n{}",
            case.received.subject,
            case.alert.text()
        );
        std::fs::write(samples.join(format!("{}.txt", case.name)), &email).unwrap();
        std::fs::write(
            samples.join(format!("{}.json", case.name)),
            serde_json::to_string_pretty(posted).unwrap(),
        )
        .unwrap();
        insta::assert_snapshot!(
            format!("{}_email", case.name),
            redact(&email, &case.redactions)
        );
        let slack: Value =
            serde_json::from_str(&redact(&posted.to_string(), &case.redactions)).unwrap();
        insta::assert_json_snapshot!(format!("{}_slack", case.name), slack);
    }
    let wanted = [
        ("database_down", "Backup failed: shop", "aws lambda invoke"),
        (
            "verification_failed",
            "Verification failed: shop",
            "backstop restore",
        ),
        (
            "backup_stale",
            "Database health critical: shop",
            "backstop backup",
        ),
    ];
    let shown: Vec<Value> = wanted
        .iter()
        .map(|(name, _, _)| {
            let at = cases.iter().position(|c| c.name == *name).unwrap();
            posted[at].clone()
        })
        .collect();
    let page = samples.join("blockkit.html");
    std::fs::write(
        &page,
        backstop_tests::blockkit_html::page("Backstop alerts", &shown),
    )
    .unwrap();
    tokio::task::spawn_blocking(move || look_at(&page, &wanted))
        .await
        .unwrap();
}

/// Opens the page in headless Chromium: each message's header says what happened and its
/// command block and logs link are shown; the whole page goes to `target/alerts-blockkit.png`.
fn look_at(page: &std::path::Path, wanted: &[(&str, &str, &str)]) {
    let profile = tempfile::tempdir().unwrap();
    let Some(browser) = Browser::start(profile.path()) else {
        return;
    };
    browser.open(page);
    browser.fit_to_page();
    assert_eq!(browser.visible("article").len(), wanted.len());
    for (i, (name, header, command)) in wanted.iter().enumerate() {
        let message = format!("#message-{}", i + 1);
        let headers = browser.visible(&format!("{message} .bk-header"));
        assert_eq!(headers.len(), 1, "{name}: one header shown");
        let said = browser.text(&headers[0]);
        assert!(said.contains(header), "{name}: the header says {said}");
        let commands: Vec<String> = browser
            .visible(&format!("{message} pre.bk-pre"))
            .iter()
            .map(|id| browser.text(id))
            .collect();
        assert!(
            commands.iter().any(|c| c.starts_with(command)),
            "{name}: no command block starting with {command}: {commands:?}"
        );
        let links: Vec<String> = browser
            .visible(&format!("{message} a.bk-link"))
            .iter()
            .map(|id| browser.text(id))
            .collect();
        assert!(
            links.iter().any(|l| l == "Logs of this run"),
            "{name}: the logs link is not shown: {links:?}"
        );
    }
    let shot = backstop_tests::workspace_root().join("target/alerts-blockkit.png");
    std::fs::write(&shot, browser.screenshot(None)).unwrap();
    eprintln!("Block Kit screenshot: {}", shot.display());
}
