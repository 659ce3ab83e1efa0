//! The verify function, and verification against what happens around it: a manifest that
//! does not read, retention deleting the set being read, a change stream with a damaged or
//! missing segment.

use std::path::Path;
use std::sync::Arc;

use backstop::engine::verify::{Level, Verdict, VerifyOptions, verify};
use backstop::store::{FileStore, Store};
use backstop_tests::moto::moto;
use backstop_tests::postgres::{cluster, fresh_database};

use crate::engine::{options, take};
use crate::support::{backstop, backstop_ok};
use crate::verify::shop;

/// The verify function's dependencies over `bucket`, alerting to `inbox`, with a scratch
/// server behind `scratch_url`.
async fn verify_deps(
    bucket: &str,
    database: &str,
    topic: &str,
    scratch_url: String,
) -> verify::Deps {
    let vars = [
        ("BACKSTOP_STORE", format!("s3://{bucket}/prod")),
        (
            "BACKSTOP_DATABASES",
            serde_json::json!({ database: {"url_env": "UNUSED_URL"} }).to_string(),
        ),
        ("BACKSTOP_ALERT_TOPIC_ARN", topic.to_string()),
        (
            "BACKSTOP_SCRATCH",
            r#"{"url_env": "SCRATCH_URL"}"#.to_string(),
        ),
        ("SCRATCH_URL", scratch_url),
    ];
    let lookup = move |k: &str| vars.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone());
    let config = backstop::config::FunctionConfig::from_lookup(&lookup).unwrap();
    let aws = moto().sdk_config().await;
    let store = backstop::store::open(&config.store, &aws);
    verify::Deps::new(common::Base::new(
        config,
        store,
        aws,
        Arc::new(lookup),
        verify::DEFAULT_NAME,
    ))
    .unwrap()
}

#[tokio::test]
async fn the_verify_function_records_results_metrics_and_alerts_with_the_backup_to_use_instead() {
    use crate::backup_lambda::{alerts, invocation, metric_sum};
    use std::time::Duration;

    let db = fresh_database("verify lambda");
    shop(&db);
    let database = db.name.clone();
    let bucket = moto().new_bucket("verify-lambda").await;
    let inbox = moto().alert_inbox("verify-lambda").await;
    let deps = verify_deps(
        &bucket,
        &database,
        &inbox.topic_arn,
        cluster().url("postgres"),
    )
    .await;
    let good = take(&db, &deps.base.store, &options(&db)).await.unwrap();

    // A restore-level run on demand: passes, records the result and the measured RTO.
    let response = verify::handler(
        invocation(
            serde_json::json!({"database": database, "level": "restore"}),
            Duration::from_secs(900),
        ),
        &deps,
    )
    .await
    .unwrap();
    assert_eq!(response.results.len(), 1);
    let checked = &response.results[0];
    assert_eq!(
        (checked.verdict, checked.backup_id.as_str()),
        (Verdict::Passed, good.backup_id.as_str())
    );
    // The RTO as two numbers: loaded (rows, indexes, constraints), then ready (statistics too).
    let (Some(loaded), Some(ready)) = (checked.loaded_seconds, checked.restore_seconds) else {
        panic!("a restore-level run measures loaded and ready: {checked:?}");
    };
    assert!(loaded <= ready, "loaded {loaded} s after ready {ready} s");
    assert_eq!(metric_sum("VerifySucceeded", &database).await, Some(1.0));
    let (Some(loaded), Some(ready)) = (
        metric_sum("RestoreLoadedSeconds", &database).await,
        metric_sum("RestoreSeconds", &database).await,
    ) else {
        panic!("RestoreLoadedSeconds and RestoreSeconds are both in CloudWatch");
    };
    assert!(
        loaded <= ready,
        "RestoreLoadedSeconds {loaded} above RestoreSeconds {ready}"
    );
    let recorded = deps
        .base
        .store
        .head(&format!(
            "{database}/{}/verification/restore.json",
            good.backup_id
        ))
        .await
        .unwrap();
    assert!(recorded.is_some());
    assert!(inbox.drain().await.is_empty(), "a pass sends no alert");

    // A newer backup with a damaged data part; the scheduled (deep) run catches it and points
    // at the backup that did verify.
    let bad = take(&db, &deps.base.store, &options(&db)).await.unwrap();
    let part = bad
        .parts
        .iter()
        .find(|p| p.blocks().next().is_some())
        .unwrap();
    let key = format!("{database}/{}/{}", bad.backup_id, part.key);
    let mut bytes = crate::store_contract::read_all(deps.base.store.as_ref(), &key).await;
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x10;
    deps.base
        .store
        .put(
            &key,
            &mut bytes.as_slice(),
            &backstop::store::PutOptions::default(),
        )
        .await
        .unwrap();
    let response = verify::handler(
        invocation(
            crate::support::fixture("scheduled.json"),
            Duration::from_secs(900),
        ),
        &deps,
    )
    .await
    .unwrap();
    let checked = &response.results[0];
    assert_eq!(
        (checked.verdict, checked.level),
        (Verdict::Failed, Level::Deep)
    );
    assert!(
        checked.findings[0].contains(&part.key),
        "{:?}",
        checked.findings
    );
    let received = alerts(&inbox.drain().await);
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].kind, "verify_failed");
    assert!(
        received[0].summary.contains(&part.key),
        "{}",
        received[0].summary
    );
    assert!(
        received[0]
            .action
            .contains(&format!("--backup {}", good.backup_id)),
        "{}",
        received[0].action
    );

    // A scratch server that cannot be reached: the verification could not run.
    let port = backstop_tests::free_port();
    let deps = verify_deps(
        &bucket,
        &database,
        &inbox.topic_arn,
        format!("postgresql://nobody:x@127.0.0.1:{port}/postgres?sslmode=disable"),
    )
    .await;
    let error = verify::handler(
        invocation(
            serde_json::json!({"database": database, "backup": good.backup_id, "level": "restore"}),
            Duration::from_secs(900),
        ),
        &deps,
    )
    .await
    .unwrap_err();
    assert!(error.to_string().contains("could not run"), "{error}");
    let received = alerts(&inbox.drain().await);
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].kind, "verify_not_run");

    let error = verify::plan(
        serde_json::json!({"backup": "yesterday"}),
        &deps.base.config,
    )
    .unwrap_err();
    assert!(error.to_string().contains("needs a database"), "{error}");
    let error = verify::plan(
        serde_json::json!({"database": database, "backup": "yesterday"}),
        &deps.base.config,
    )
    .unwrap_err();
    assert!(
        error
            .to_string()
            .contains("`yesterday` is not a valid backup id"),
        "{error}"
    );
}

/// A newest backup whose manifest is there but is not one (cut short, overwritten): the verify
/// function records a failed verification naming the manifest, puts `VerifySucceeded` 0 and
/// alerts; the CLI says FAILED and exits 1; health is critical and does not count it as the
/// newest backup. Before: "could not run" (no metric; an older pass stayed the newest result)
/// and health HEALTHY.
#[tokio::test]
async fn an_unreadable_newest_manifest_fails_verification_and_health() {
    use crate::backup_lambda::{alerts, invocation, metric_sum};
    use backstop::health::backups::{assess, gather};

    let db = fresh_database("verify unreadable manifest");
    shop(&db);
    let database = db.name.clone();
    let bucket = moto().new_bucket("verify-unreadable").await;
    let inbox = moto().alert_inbox("verify-unreadable").await;
    let deps = verify_deps(
        &bucket,
        &database,
        &inbox.topic_arn,
        cluster().url("postgres"),
    )
    .await;
    let store = deps.base.store.clone();
    let older = take(&db, &store, &options(&db)).await.unwrap();
    let newest = take(&db, &store, &options(&db)).await.unwrap();
    let key = format!("{database}/{}/manifest.json", newest.backup_id);
    let whole = crate::store_contract::read_all(store.as_ref(), &key).await;
    store
        .put(
            &key,
            &mut &whole[..whole.len() / 3],
            &backstop::store::PutOptions::default(),
        )
        .await
        .unwrap();

    let response = verify::handler(
        invocation(
            crate::support::fixture("scheduled.json"),
            std::time::Duration::from_secs(900),
        ),
        &deps,
    )
    .await
    .unwrap();
    let checked = &response.results[0];
    assert_eq!(
        (checked.verdict, checked.backup_id.as_str()),
        (Verdict::Failed, newest.backup_id.as_str())
    );
    assert!(checked.findings[0].contains("manifest.json"), "{checked:?}");
    assert_eq!(metric_sum("VerifySucceeded", &database).await, Some(0.0));
    let received = alerts(&inbox.drain().await);
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].kind, "verify_failed");

    let facts = gather(
        store.as_ref(),
        &backstop::layout::DatabaseId::new(&database).unwrap(),
    )
    .await
    .unwrap();
    let (health, findings) = assess(&facts, time::OffsetDateTime::now_utc(), &Default::default());
    assert_eq!(
        health.last_backup.as_deref(),
        Some(older.backup_id.as_str())
    );
    assert!(
        findings
            .iter()
            .any(|f| f.check == "manifest" && f.severity == backstop::alert::Severity::Critical),
        "{findings:?}"
    );
}

/// Retention deleting the set a verification is reading (manifest first, as it does) gives no
/// verdict: the verification says the set was deleted, and records nothing. Before: the
/// missing parts read as a damaged backup ("could not verify", or a failed verdict).
#[tokio::test]
async fn a_set_retention_deletes_during_its_verification_is_not_called_damaged() {
    use backstop::retention::{DEFAULT_STREAM_WINDOW, Policy, PruneOptions, prune};
    use backstop_tests::failing_store::FailingStore;

    let db = fresh_database("verify while pruned");
    shop(&db);
    let dir = tempfile::tempdir().unwrap();
    let inner: Arc<dyn Store> = Arc::new(FileStore::new(dir.path().join("store")));
    let older = take(&db, &inner, &options(&db)).await.unwrap();
    take(&db, &inner, &options(&db)).await.unwrap();
    let failing = Arc::new(FailingStore::new(inner.clone()));
    let database = backstop::layout::DatabaseId::new(&db.name).unwrap();
    let (pruned, id) = (inner.clone(), database.clone());
    failing.before_next_part_read(Box::pin(async move {
        let options = PruneOptions {
            policy: Policy {
                last: 1,
                daily: 0,
                weekly: 0,
                monthly: 0,
                yearly: 0,
            },
            dry_run: false,
            max_deletions: 10,
            now: time::OffsetDateTime::now_utc(),
            stream_window: DEFAULT_STREAM_WINDOW,
        };
        let report = prune(pruned.as_ref(), &id, &options).await.unwrap();
        assert_eq!(report.deleted.len(), 1, "retention deleted the older set");
    }));
    let store: Arc<dyn Store> = failing;
    let options = VerifyOptions {
        level: Level::Deep,
        scratch: None,
        jobs: 2,
        interrupt: Default::default(),
    };
    let error = verify(store.clone(), &older, &options).await.unwrap_err();
    assert!(
        matches!(
            error,
            backstop::engine::verify::VerifyError::Removed { ref backup } if *backup == older.backup_id
        ),
        "{error}"
    );
    assert!(
        inner
            .list(&format!("{}/{}/", db.name, older.backup_id))
            .await
            .unwrap()
            .is_empty(),
        "nothing was recorded for the deleted set"
    );
}

/// The change stream after a backup is checked by deep verification (every segment there, in
/// order, its changes matching their seal) and by health (no changes missing inside the
/// newest chain). Before: neither looked at the stream; a damaged or missing segment was
/// found only by the restore that needed it.
#[test]
fn deep_verification_and_health_check_the_change_stream() {
    let db = fresh_database("verify stream");
    db.psql("CREATE TABLE ledger (id int PRIMARY KEY, note text);");
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("backups");
    let store = format!("file://{}", root.display());
    let url = db.url();
    // The first drain starts the stream and takes its base; three more carry it on.
    backstop_ok(&["stream", "--db", &url, "--to", &store], &[]);
    for round in 0..3 {
        db.psql(&format!(
            "INSERT INTO ledger SELECT g, md5(g::text) FROM generate_series({}, {}) g;",
            round * 100 + 1,
            round * 100 + 100
        ));
        backstop_ok(&["stream", "--db", &url, "--to", &store], &[]);
    }
    let id = db.name.as_str();
    let verify = || {
        backstop(
            &[
                "verify",
                "--from",
                &store,
                "--database-id",
                id,
                "--level",
                "deep",
            ],
            &[],
        )
    };
    let health = || backstop(&["health", "--from", &store, "--database-id", id], &[]);
    assert_eq!(verify().status.code(), Some(0));
    assert_eq!(health().status.code(), Some(0));

    let mut files: Vec<std::path::PathBuf> = walk(&root.join(id).join("stream"));
    files.sort();
    let (seals, changes): (Vec<_>, Vec<_>) = files
        .into_iter()
        .partition(|p| p.extension().is_some_and(|e| e == "json"));
    assert!(seals.len() >= 3, "{seals:?}");
    let middle = &changes[changes.len() / 2];
    let original = std::fs::read(middle).unwrap();
    let mut damaged = original.clone();
    let at = damaged.len() / 2;
    damaged[at] ^= 0x20;
    std::fs::write(middle, &damaged).unwrap();
    let output = verify();
    assert_eq!(output.status.code(), Some(1));
    let name = middle.file_name().unwrap().to_string_lossy().to_string();
    assert!(
        String::from_utf8_lossy(&output.stdout).contains(&name),
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );
    std::fs::write(middle, &original).unwrap();

    // A segment gone from the middle: changes stored nowhere.
    let seal = &seals[seals.len() / 2];
    let gone = std::fs::read(seal).unwrap();
    std::fs::remove_file(seal).unwrap();
    assert_eq!(verify().status.code(), Some(1));
    let output = health();
    assert_eq!(output.status.code(), Some(2));
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(text.contains("in no segment"), "{text}");
    std::fs::write(seal, gone).unwrap();
    assert_eq!(verify().status.code(), Some(0));
}

/// Every file under `dir`, at any depth.
fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            found.extend(walk(&path));
        } else {
            found.push(path);
        }
    }
    found
}
