//! The verification log: every verification, by the CLI or the verify function and at every
//! level, is an entry chained to the one before it; an entry edited or deleted in the store
//! afterwards is named by `backstop health`, the monitor's check and `backstop verify`,
//! the newest entry too once a check has seen it.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use backstop::engine::verify::log::{entry_key, read_chain};
use backstop::engine::verify::{Level, Verdict};
use backstop::layout::DatabaseId;
use backstop::store::{FileStore, PutOptions, Store};
use backstop_tests::moto::moto;
use backstop_tests::postgres::{cluster, fresh_database};

use crate::backup_lambda::{alerts, invocation};
use crate::engine::{options, take};
use crate::support::backstop;
use crate::verify::shop;

/// `backstop verify` at `level`: its exit code and stdout.
fn verify_cli(store: &str, database: &str, level: &str) -> (Option<i32>, String) {
    let scratch = cluster().url("postgres");
    let mut args = vec![
        "verify",
        "--from",
        store,
        "--database-id",
        database,
        "--level",
        level,
    ];
    if level == "restore" {
        args.extend(["--scratch-db", &scratch]);
    }
    let output = backstop(&args, &[]);
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
    )
}

/// `backstop health`: its exit code and stdout.
fn health_cli(store: &str, database: &str) -> (Option<i32>, String) {
    let output = backstop(&["health", "--from", store, "--database-id", database], &[]);
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
    )
}

/// What the monitor's check (`health::check`, now) says: the status, and the messages of its
/// verification-log findings.
async fn log_findings(
    store: &dyn Store,
    database: &DatabaseId,
) -> (backstop::health::HealthStatus, Vec<String>) {
    let report = backstop::health::check(
        store,
        database,
        None,
        time::OffsetDateTime::now_utc(),
        &backstop::health::Thresholds::default(),
    )
    .await
    .unwrap();
    let logged = report
        .findings
        .into_iter()
        .filter(|f| f.check == "verification_log")
        .map(|f| f.message)
        .collect();
    (report.status, logged)
}

fn entry_path(root: &Path, database: &DatabaseId, seq: u64) -> std::path::PathBuf {
    root.join(entry_key(database, seq))
}

#[tokio::test]
async fn the_cli_chains_every_verification_and_names_each_entry_changed_or_deleted() {
    let db = fresh_database("verification log");
    shop(&db);
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("store");
    let store_url = format!("file://{}", root.display());
    let store: Arc<dyn Store> = Arc::new(FileStore::new(root.clone()));
    let manifest = take(&db, &store, &options(&db)).await.unwrap();
    let database = DatabaseId::new(&db.name).unwrap();
    let parts = manifest.parts.len() as u64;

    for level in ["manifest", "deep", "restore", "deep", "manifest"] {
        let (code, stdout) = verify_cli(&store_url, &db.name, level);
        assert_eq!(code, Some(0), "{level}: {stdout}");
        assert!(
            stdout.contains("verification log: entry ") && stdout.contains("none edited"),
            "{stdout}"
        );
    }

    // (1) Intact: five entries in order, each with its level, runner and checksums.
    let chain = read_chain(store.as_ref(), &database).await.unwrap();
    assert!(chain.problems.is_empty(), "{:?}", chain.problems);
    let seen: Vec<(u64, Level, u64)> = chain
        .entries
        .iter()
        .map(|e| (e.seq, e.level, e.checksums_checked))
        .collect();
    assert_eq!(
        seen,
        [
            (1, Level::Manifest, 0),
            (2, Level::Deep, parts),
            (3, Level::Restore, parts),
            (4, Level::Deep, parts),
            (5, Level::Manifest, 0),
        ]
    );
    assert!(chain.entries.iter().all(|e| {
        e.verdict == Verdict::Passed
            && e.backup_id == manifest.backup_id
            && e.by.starts_with("backstop verify (")
            && e.by.contains('@')
    }));
    assert!(chain.entries[2].restore_seconds.is_some());
    assert_eq!(chain.entries[0].previous, None);
    // A health check sees the log whole, and remembers its newest entry.
    let (code, stdout) = health_cli(&store_url, &db.name);
    assert_eq!(code, Some(0), "{stdout}");
    assert!(!stdout.contains("verification log"), "{stdout}");
    assert!(
        root.join(format!(
            "_backstop/health/verification-log/{}.json",
            db.name
        ))
        .exists()
    );

    // (2) A middle entry edited in place (same file, same permissions): named as changed.
    let second = entry_path(&root, &database, 2);
    let original = std::fs::read(&second).unwrap();
    let edited = String::from_utf8(original.clone())
        .unwrap()
        .replace("\"verdict\": \"passed\"", "\"verdict\": \"failed\"");
    assert_ne!(edited.as_bytes(), original.as_slice());
    std::fs::write(&second, &edited).unwrap();
    let changed = format!(
        "entry 2 (_backstop/verifications/{}/000000000002.json) was changed after it was written",
        db.name
    );
    let (code, stdout) = health_cli(&store_url, &db.name);
    assert_eq!(code, Some(2), "critical: {stdout}");
    assert!(stdout.contains(&changed), "{stdout}");
    let (code, stdout) = verify_cli(&store_url, &db.name, "manifest");
    assert_eq!(code, Some(1), "{stdout}");
    // Entry 2's hash of entry 1 may be edited too: entry 1 cannot be checked.
    assert!(stdout.contains("entry 6 added; 2 problem(s)"), "{stdout}");
    assert!(stdout.contains(&changed), "{stdout}");
    assert!(
        stdout.contains("entry 1 (") && stdout.contains("cannot be checked: entry 2"),
        "{stdout}"
    );
    std::fs::write(&second, &original).unwrap();

    // (3) A middle entry deleted: named as missing.
    let third = entry_path(&root, &database, 3);
    let kept = std::fs::read(&third).unwrap();
    std::fs::remove_file(&third).unwrap();
    let (code, stdout) = health_cli(&store_url, &db.name);
    assert_eq!(code, Some(2), "{stdout}");
    assert!(
        stdout.contains(&format!(
            "entry 3 (_backstop/verifications/{}/000000000003.json) is missing",
            db.name
        )),
        "{stdout}"
    );
    std::fs::write(&third, &kept).unwrap();
    let (code, stdout) = health_cli(&store_url, &db.name);
    assert_eq!(code, Some(0), "whole again, entry 6 remembered: {stdout}");

    // (4) The newest entry, once seen, deleted: nothing after it tells, the memory does.
    let sixth = entry_path(&root, &database, 6);
    std::fs::remove_file(&sixth).unwrap();
    let (code, stdout) = health_cli(&store_url, &db.name);
    assert_eq!(code, Some(2), "{stdout}");
    let gone = format!(
        "entry 6 (_backstop/verifications/{}/000000000006.json), seen by the monitor at ",
        db.name
    );
    assert!(
        stdout.contains(&gone) && stdout.contains(", is gone"),
        "{stdout}"
    );
    // A verification appended in its place is not the entry that was seen.
    let (code, stdout) = verify_cli(&store_url, &db.name, "manifest");
    assert_eq!(code, Some(1), "{stdout}");
    assert!(
        stdout.contains(&gone) && stdout.contains("was changed since"),
        "{stdout}"
    );
    let (code, stdout) = health_cli(&store_url, &db.name);
    assert_eq!(code, Some(2), "the finding stays: {stdout}");
    assert!(stdout.contains("was changed since"), "{stdout}");

    // --json carries the entry and the problems.
    let output = backstop(
        &[
            "verify",
            "--from",
            &store_url,
            "--database-id",
            &db.name,
            "--level",
            "manifest",
            "--json",
        ],
        &[],
    );
    assert_eq!(output.status.code(), Some(1));
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(json["verdict"], "passed");
    assert_eq!(json["verification_log"]["seq"], 7);
    assert_eq!(json["verification_log"]["problems"][0]["seq"], 6);
}

/// The verify function's entries (who ran them, over S3), a changed entry alerted by the
/// function and found by the monitor's check, and the newest entry deleted after it was seen.
#[tokio::test]
async fn the_verify_function_logs_to_s3_and_alerts_a_changed_entry() {
    let db = fresh_database("verification log lambda");
    shop(&db);
    let database = DatabaseId::new(&db.name).unwrap();
    let bucket = moto().new_bucket("verification-log").await;
    let inbox = moto().alert_inbox("verification-log").await;
    let vars = [
        ("BACKSTOP_STORE", format!("s3://{bucket}/prod")),
        (
            "BACKSTOP_DATABASES",
            serde_json::json!({ db.name.as_str(): {"url_env": "UNUSED_URL"} }).to_string(),
        ),
        ("BACKSTOP_ALERT_TOPIC_ARN", inbox.topic_arn.clone()),
    ];
    let lookup = move |k: &str| vars.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone());
    let config = backstop::config::FunctionConfig::from_lookup(&lookup).unwrap();
    let aws = moto().sdk_config().await;
    let store = backstop::store::open(&config.store, &aws);
    let deps = verify::Deps::new(common::Base::new(
        config,
        store.clone(),
        aws,
        Arc::new(lookup),
        verify::DEFAULT_NAME,
    ))
    .unwrap();
    let manifest = take(&db, &store, &options(&db)).await.unwrap();
    let run = |level: &str| {
        invocation(
            serde_json::json!({"database": db.name, "level": level}),
            Duration::from_secs(900),
        )
    };
    for level in ["deep", "manifest", "deep"] {
        let event = run(level);
        let request = event.context.request_id.clone();
        let response = verify::handler(event, &deps).await.unwrap();
        assert_eq!(response.results[0].verdict, Verdict::Passed);
        let seq = response.results[0].log_seq.unwrap();
        let chain = read_chain(store.as_ref(), &database).await.unwrap();
        let entry = chain.entries.last().unwrap();
        assert_eq!(entry.seq, seq);
        assert_eq!(
            entry.by,
            format!("backstop-verify function (request {request})")
        );
    }
    let chain = read_chain(store.as_ref(), &database).await.unwrap();
    assert!(chain.problems.is_empty(), "{:?}", chain.problems);
    let counts: Vec<u64> = chain.entries.iter().map(|e| e.checksums_checked).collect();
    let parts = manifest.parts.len() as u64;
    assert_eq!(counts, [parts, 0, parts]);
    assert!(
        inbox.drain().await.is_empty(),
        "an intact log sends no alert"
    );
    // The monitor's check sees it whole and remembers entry 3.
    let (_, logged) = log_findings(store.as_ref(), &database).await;
    assert!(logged.is_empty(), "{logged:?}");

    // Entry 1 overwritten in the bucket: the next verification alerts, naming it.
    let first = entry_key(&database, 1);
    let original = crate::store_contract::read_all(store.as_ref(), &first).await;
    let mut edited = original.clone();
    edited.extend_from_slice(b" ");
    store
        .put(&first, &mut edited.as_slice(), &PutOptions::default())
        .await
        .unwrap();
    let response = verify::handler(run("manifest"), &deps).await.unwrap();
    assert_eq!(
        response.results[0].verdict,
        Verdict::Passed,
        "it still counts"
    );
    assert_eq!(response.results[0].log_seq, Some(4));
    let received = alerts(&inbox.drain().await);
    assert_eq!(received.len(), 1, "{received:?}");
    assert_eq!(received[0].kind, verify::LOG_CHANGED_KIND);
    let named = format!(
        "entry 1 (_backstop/verifications/{}/000000000001.json) was changed",
        db.name
    );
    assert!(
        received[0].details.contains(&named),
        "{}",
        received[0].details
    );

    // The newest entry, seen by the monitor, deleted: the monitor's check names it.
    let (_, logged) = log_findings(store.as_ref(), &database).await;
    assert_eq!(logged.len(), 1, "{logged:?}");
    assert!(logged[0].contains(&named), "{logged:?}");
    store
        .put(&first, &mut original.as_slice(), &PutOptions::default())
        .await
        .unwrap();
    let (_, logged) = log_findings(store.as_ref(), &database).await;
    assert!(logged.is_empty(), "whole again: {logged:?}");
    store.delete(&entry_key(&database, 4)).await.unwrap();
    let (status, logged) = log_findings(store.as_ref(), &database).await;
    assert_eq!(status, backstop::health::HealthStatus::Critical);
    assert!(
        logged.iter().any(|message| message.contains(&format!(
            "entry 4 (_backstop/verifications/{}/000000000004.json), seen by the monitor at",
            db.name
        )) && message.ends_with("is gone")),
        "{logged:?}"
    );
}
