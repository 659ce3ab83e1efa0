//! Alerts people read: the SNS form published by the real code path (read back from an SQS
//! queue and an HTTP subscriber), and the Slack notifier against a local webhook: the kinds no
//! failure below produces rendered from samples (snapshots), 429 retried, 400 refused once, a
//! hanging webhook given up on in time, and the webhook URL never in a message or a log line.
//! [`real`]: the alerts of real failures, produced by running the functions.

mod real;

use std::time::Duration;

use aws_lambda_events::event::sns::{SnsEvent, SnsMessage, SnsRecord};
use backstop::alert::{Alert, AlertSink, Link, Severity, kind};
use backstop_tests::logs;
use backstop_tests::moto::moto;
use backstop_tests::webhook::{Reply, WebhookRecorder};
use lambda_runtime::{Context, LambdaEvent};
use time::macros::datetime;

fn sample(kind: &str, severity: Severity) -> Alert {
    let (summary, details, action) = match kind {
        kind::BACKUP_FAILED => (
            "backup failed: cannot connect to database `shop` on db.internal:5432: connection refused",
            "cannot connect to database `shop` on db.internal:5432: connection refused\n\nThe backup did not start, so nothing was written.",
            "Fix the cause above, then run the backup again:\n  aws lambda invoke --function-name backstop-backup --invocation-type Event --cli-binary-format raw-in-base64-out --payload '{\"database\":\"shop\",\"tier\":\"auto\"}' /dev/null\nor from the CLI:\n  backstop backup --db \"$DATABASE_URL\" --to s3://acme-backups/prod --database-id shop --tier auto",
        ),
        kind::BACKUP_DEADLINE_EXCEEDED => (
            "backup failed: the backup was stopped after 870 s because the time limit was reached",
            "the backup was stopped after 870 s because the time limit was reached; nothing was committed",
            "This backup needs more time than one Lambda invocation allows. Run the same backup as a container task (ECS/Fargate) or from the CLI on a host near the database:\n  backstop backup --db \"$DATABASE_URL\" --to s3://acme-backups/prod --database-id shop --tier auto",
        ),
        kind::BACKUP_SUCCEEDED => (
            "backup 20261122T060000Z-1a2b3c4d committed (daily tier)",
            "12 tables, 1804220 rows, 93 MiB stored in 41.2 s.",
            "Nothing to do.",
        ),
        kind::VERIFY_FAILED => (
            "backup 20261122T060000Z-1a2b3c4d failed deep verification: data/0003.copy.zst: SHA-256 does not match",
            "- data/0003.copy.zst: SHA-256 9f2c... does not match the manifest's 41d0...",
            "Do not rely on backup 20261122T060000Z-1a2b3c4d. The newest backup that passed verification is 20261121T060000Z-0a0b0c0d (restore level); restore from it if you need to:\n  backstop restore --from s3://acme-backups/prod --database-id shop --backup 20261121T060000Z-0a0b0c0d --db \"$TARGET_URL\"",
        ),
        kind::HEALTH_WARNING => (
            "transaction ID age 1.2 billion (warning above 1 billion)",
            "Database shop: datfrozenxid age 1204331002; autovacuum has not frozen the oldest tables.",
            "Find the oldest tables and vacuum them:\n  psql \"$DATABASE_URL\" -c \"SELECT relname, age(relfrozenxid) FROM pg_class ORDER BY 2 DESC LIMIT 5\"",
        ),
        kind::HEALTH_RECOVERED => (
            "backup freshness is healthy again",
            "The newest committed backup is 2.1 hours old.",
            "Nothing to do.",
        ),
        kind::RETENTION_REPORT => (
            "retention: kept 23 backup(s), deleted 2 (180.4 MiB freed)",
            "Deleted:\n- 20251020T060000Z-00000001 (14 objects)\n- 20251019T060000Z-00000002 (14 objects)",
            "Nothing to do.",
        ),
        _ => ("something happened", "details", "Nothing to do."),
    };
    Alert {
        severity,
        kind: kind.into(),
        database_id: "shop".into(),
        backup_id: matches!(kind, "verify_failed" | "backup_succeeded")
            .then(|| "20261122T060000Z-1a2b3c4d".into()),
        links: if kind == kind::VERIFY_FAILED {
            vec![Link {
                label: "Backup set in the S3 console".into(),
                url: "https://s3.console.aws.amazon.com/s3/buckets/acme-backups?prefix=prod%2Fshop%2F20261122T060000Z-1a2b3c4d%2F".into(),
            }]
        } else {
            Vec::new()
        },
        summary: summary.into(),
        details: details.into(),
        action: action.into(),
        source: "backup".into(),
        occurred_at: datetime!(2026-11-22 06:00:07 UTC),
    }
}

pub(super) fn sns_event(alerts: &[Alert]) -> SnsEvent {
    let records = alerts
        .iter()
        .enumerate()
        .map(|(i, alert)| {
            let mut sns = SnsMessage::default();
            sns.message_id = format!("msg-{i}");
            sns.subject = Some(alert.subject());
            sns.message = serde_json::to_string(alert).unwrap();
            let mut record = SnsRecord::default();
            record.sns = sns;
            record
        })
        .collect();
    let mut event = SnsEvent::default();
    event.records = records;
    event
}

pub(super) fn invocation(event: SnsEvent, timeout: Duration) -> LambdaEvent<SnsEvent> {
    let mut context = Context::default();
    context.request_id = "req-slack".into();
    context.deadline =
        ((time::OffsetDateTime::now_utc() + timeout).unix_timestamp_nanos() / 1_000_000) as u64;
    LambdaEvent::new(event, context)
}

pub(super) fn deps(recorder: &WebhookRecorder) -> notify_slack::Deps {
    notify_slack::Deps::from_lookup(|_| Some(recorder.url.clone())).unwrap()
}

/// The kinds [`real`] does not produce from a real run (its snapshots hold the others).
#[tokio::test]
async fn every_other_kind_renders_as_block_kit() {
    let kinds = [
        (kind::BACKUP_DEADLINE_EXCEEDED, Severity::Critical),
        (kind::BACKUP_SUCCEEDED, Severity::Info),
        (kind::HEALTH_WARNING, Severity::Warning),
        (kind::HEALTH_RECOVERED, Severity::Info),
        (kind::RETENTION_REPORT, Severity::Info),
    ];
    let alerts: Vec<Alert> = kinds.iter().map(|(k, s)| sample(k, *s)).collect();
    let recorder = WebhookRecorder::start(vec![]);
    let response = notify_slack::handler(
        invocation(sns_event(&alerts), Duration::from_secs(30)),
        &deps(&recorder),
    )
    .await
    .unwrap();
    assert_eq!(response.delivered, kinds.len());
    let bodies = recorder.bodies();
    assert_eq!(bodies.len(), kinds.len(), "each record delivered once");
    for ((kind, _), body) in kinds.iter().zip(&bodies) {
        let posted: serde_json::Value = serde_json::from_str(body).unwrap();
        insta::assert_json_snapshot!(format!("slack_{kind}"), posted);
    }
}

#[tokio::test]
async fn a_429_with_retry_after_is_retried_and_delivered_once() {
    let recorder = WebhookRecorder::start(vec![
        Reply::status(429)
            .header("Retry-After", "1")
            .body("rate_limited"),
    ]);
    let event = sns_event(&[sample(kind::BACKUP_FAILED, Severity::Critical)]);
    let response =
        notify_slack::handler(invocation(event, Duration::from_secs(30)), &deps(&recorder))
            .await
            .unwrap();
    assert_eq!(response.delivered, 1);
    assert!(response.refused.is_empty());
    let bodies = recorder.bodies();
    assert_eq!(bodies.len(), 2, "one refused attempt, one delivery");
    assert_eq!(bodies[0], bodies[1]);
}

#[tokio::test]
async fn a_400_is_reported_and_not_retried() {
    let logs = logs::capture();
    let recorder = WebhookRecorder::start(vec![Reply::status(400).body("invalid_blocks")]);
    let event = sns_event(&[
        sample(kind::BACKUP_FAILED, Severity::Critical),
        sample(kind::RETENTION_REPORT, Severity::Info),
    ]);
    let response =
        notify_slack::handler(invocation(event, Duration::from_secs(30)), &deps(&recorder))
            .await
            .unwrap();
    assert_eq!(response.delivered, 1, "the other record still goes out");
    assert_eq!(response.refused.len(), 1);
    assert_eq!(response.refused[0].message_id, "msg-0");
    assert!(
        response.refused[0].reason.contains("HTTP 400")
            && response.refused[0].reason.contains("invalid_blocks"),
        "{:?}",
        response.refused
    );
    assert_eq!(
        recorder.bodies().len(),
        2,
        "the refused record was not retried"
    );
    let logged = logs.text();
    assert!(logged.contains("Slack refused the alert"), "{logged}");
    assert!(
        !logged.contains("secret-token"),
        "the webhook URL was logged"
    );
}

#[tokio::test]
async fn a_webhook_that_never_answers_fails_within_the_deadline() {
    let logs = logs::capture();
    let recorder = WebhookRecorder::start(vec![
        Reply::status(200).after(Duration::from_secs(120)),
        Reply::status(200).after(Duration::from_secs(120)),
        Reply::status(200).after(Duration::from_secs(120)),
    ]);
    let event = sns_event(&[sample(kind::BACKUP_FAILED, Severity::Critical)]);
    let outcome = tokio::time::timeout(
        Duration::from_secs(20),
        notify_slack::handler(invocation(event, Duration::from_secs(3)), &deps(&recorder)),
    )
    .await
    .expect("the handler must give up by its own deadline, not hang with the webhook");
    let error = outcome.unwrap_err();
    assert!(error.to_string().contains("before the deadline"), "{error}");
    assert_eq!(
        lambda_runtime::Diagnostic::from(error).error_type,
        "Retryable"
    );
    assert!(!logs.text().contains("secret-token"));
}

#[tokio::test]
async fn a_published_alert_reaches_sqs_and_http_subscribers_in_its_sns_form() {
    let moto = moto();
    let aws = moto.sdk_config().await;
    let inbox = moto.alert_inbox("alert-form").await;
    // An HTTP subscriber gets the readable text (moto posts the SNS envelope).
    let http = WebhookRecorder::start(vec![]);
    aws_sdk_sns::Client::new(&aws)
        .subscribe()
        .topic_arn(&inbox.topic_arn)
        .protocol("http")
        .endpoint(&http.url)
        .send()
        .await
        .unwrap();
    let mut alert = sample(kind::VERIFY_FAILED, Severity::Critical);
    alert.database_id = format!("a-very-long-database-identifier-{}", "x".repeat(90));
    AlertSink::new(&aws, Some(inbox.topic_arn.clone()))
        .publish(&alert)
        .await
        .unwrap();

    let received = inbox.drain().await;
    assert_eq!(received.len(), 1);
    assert!(received[0].subject.len() <= 100, "{}", received[0].subject);
    assert!(received[0].subject.is_ascii());
    assert!(
        received[0]
            .subject
            .starts_with("[CRITICAL] a-very-long-database-identifier-")
    );
    let back: Alert = serde_json::from_str(&received[0].message).unwrap();
    assert_eq!(back, alert, "SQS subscribers get the alert as JSON");
    assert_eq!(
        received[0].attributes.get("severity").map(String::as_str),
        Some("critical")
    );
    assert_eq!(
        received[0].attributes.get("kind").map(String::as_str),
        Some("verify_failed")
    );

    let mut waited = 0;
    while http.bodies().is_empty() && waited < 50 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        waited += 1;
    }
    let bodies = http.bodies();
    let envelope: serde_json::Value = serde_json::from_str(&bodies[0]).unwrap();
    let text = envelope["Message"].as_str().unwrap();
    assert!(text.starts_with(&alert.summary), "{text}");
    assert!(text.contains("What to do\nDo not rely on backup"), "{text}");
    assert!(
        serde_json::from_str::<serde_json::Value>(text).is_err(),
        "the text form is not JSON"
    );
}

#[tokio::test]
async fn the_webhook_can_come_from_secrets_manager_and_errors_never_show_it() {
    let aws = moto().sdk_config().await;
    let recorder = WebhookRecorder::start(vec![]);
    let name = format!("backstop/slack-{}", backstop_tests::unique_suffix());
    aws_sdk_secretsmanager::Client::new(&aws)
        .create_secret()
        .name(&name)
        .secret_string(&recorder.url)
        .send()
        .await
        .unwrap();
    let lookup = |k: &str| (k == "SLACK_WEBHOOK_SECRET").then(|| name.clone());
    let deps = notify_slack::Deps::from_env(lookup, &aws).await.unwrap();
    let event = sns_event(&[sample(kind::HEALTH_RECOVERED, Severity::Info)]);
    let response = notify_slack::handler(invocation(event, Duration::from_secs(30)), &deps)
        .await
        .unwrap();
    assert_eq!(response.delivered, 1);
    assert_eq!(recorder.bodies().len(), 1);

    let missing = |k: &str| (k == "SLACK_WEBHOOK_SECRET").then(|| "backstop/none".to_string());
    let error = notify_slack::Deps::from_env(missing, &aws)
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(
        error.contains("backstop/none") && error.contains("SLACK_WEBHOOK_SECRET"),
        "{error}"
    );
    let bad = |k: &str| (k == "SLACK_WEBHOOK_URL").then(|| "not a url secret-token".to_string());
    let error = notify_slack::Deps::from_env(bad, &aws)
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(
        error.contains("SLACK_WEBHOOK_URL") && !error.contains("secret-token"),
        "{error}"
    );
}
