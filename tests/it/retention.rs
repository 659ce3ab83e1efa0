//! Retention against moto: a 400-day history pruned by 7 daily / 4 weekly / 12 monthly keeps
//! exactly what the policy says, honours the rails (newest, newest verified, Object Lock,
//! maximum deletions), sweeps leftovers, and deletes nothing when the listing fails or looks
//! incomplete.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use backstop::engine::manifest::{FORMAT_VERSION, Manifest};
use backstop::engine::verify::{Level, Verdict, Verification};
use backstop::layout::{BackupId, DatabaseId};
use backstop::retention::{Policy, PruneError, PruneOptions, Reason, prune};
use backstop::store::{PutOptions, Store, StoreUrl};
use backstop_tests::failing_store::FailingStore;
use backstop_tests::moto::moto;
use time::OffsetDateTime;
use time::macros::datetime;

fn manifest(database: &str, id: &BackupId, at: OffsetDateTime) -> Manifest {
    Manifest {
        format_version: FORMAT_VERSION,
        engine_version: "test".into(),
        database_id: database.into(),
        database_name: database.into(),
        backup_id: id.to_string(),
        server_version: "15".into(),
        server_version_num: 150000,
        started_at: at,
        finished_at: at,
        tier: backstop::tier::Tier::Daily,
        database_bytes: None,
        snapshot: None,
        wal_lsn: None,
        stream: None,
        item_marker: "backstop:0".into(),
        parts: Vec::new(),
        globals: None,
        inventory: BTreeMap::new(),
        excluded: Vec::new(),
        reason: None,
        encryption: None,
        wal_origin: None,
        new_bytes: None,
        seal: None,
        keys: Default::default(),
    }
    .sealed()
}

async fn put(store: &dyn Store, key: &str, body: &[u8]) {
    store
        .put(key, &mut &body[..], &PutOptions::default())
        .await
        .unwrap();
}

/// Writes a committed set (manifest and one part) taken at `at`.
async fn committed(store: &dyn Store, database: &str, at: OffsetDateTime) -> BackupId {
    let id = BackupId::generate(at);
    let m = manifest(database, &id, at);
    put(
        store,
        &format!("{database}/{id}/data/0001.copy.zst"),
        &[7u8; 100],
    )
    .await;
    put(
        store,
        &format!("{database}/{id}/manifest.json"),
        &serde_json::to_vec(&m).unwrap(),
    )
    .await;
    id
}

/// The newest backup of each of the `n` most recent periods, computed plainly.
fn newest_per_period(
    backups: &[(BackupId, OffsetDateTime)],
    n: usize,
    period: impl Fn(OffsetDateTime) -> String,
) -> BTreeSet<String> {
    let mut by_period: BTreeMap<String, (OffsetDateTime, String)> = BTreeMap::new();
    for (id, at) in backups {
        let entry = by_period
            .entry(period(*at))
            .or_insert((*at, id.to_string()));
        if *at > entry.0 {
            *entry = (*at, id.to_string());
        }
    }
    by_period
        .values()
        .rev()
        .take(n)
        .map(|(_, id)| id.clone())
        .collect()
}

async fn keys(store: &dyn Store, prefix: &str) -> Vec<String> {
    store
        .list(prefix)
        .await
        .unwrap()
        .into_iter()
        .map(|o| o.key)
        .collect()
}

#[tokio::test]
async fn a_400_day_history_keeps_exactly_what_7_daily_4_weekly_12_monthly_says() {
    let moto = moto();
    let s3 = moto.s3().await;
    let bucket = format!("retention-{}", backstop_tests::unique_suffix());
    s3.create_bucket()
        .bucket(&bucket)
        .object_lock_enabled_for_bucket(true)
        .send()
        .await
        .unwrap();
    let url: StoreUrl = format!("s3://{bucket}/prod").parse().unwrap();
    let store = backstop::store::open(&url, &moto.sdk_config().await);
    let database = "shop";
    let db = DatabaseId::new(database).unwrap();

    // A backup every 40 hours over 400 days (the last one on 2026-11-22).
    let newest_at = datetime!(2026-11-22 06:00 UTC);
    let mut history = Vec::new();
    let mut at = newest_at - time::Duration::days(400);
    while at <= newest_at {
        history.push((committed(store.as_ref(), database, at).await, at));
        at += time::Duration::hours(40);
    }
    let (newest_id, _) = history.last().cloned().unwrap();

    // An old backup outside the policy passed a restore verification: the rail keeps it.
    let (verified_id, _) = history[10].clone();
    let verification = Verification {
        database_id: database.into(),
        backup_id: verified_id.to_string(),
        level: Level::Restore,
        verdict: Verdict::Passed,
        findings: Vec::new(),
        checked_at: newest_at,
        duration_seconds: 1.0,
        restore_seconds: Some(1.0),
        loaded_seconds: Some(0.8),
        statistics: Some("analyzed".into()),
        replayed_through: None,
        engine_version: "test".into(),
    };
    put(
        store.as_ref(),
        &format!("{database}/{verified_id}/verification/restore.json"),
        &serde_json::to_vec(&verification).unwrap(),
    )
    .await;
    // Another old one is under legal hold.
    let (held_id, _) = history[20].clone();
    s3.put_object_legal_hold()
        .bucket(&bucket)
        .key(format!("prod/{database}/{held_id}/manifest.json"))
        .legal_hold(
            aws_sdk_s3::types::ObjectLockLegalHold::builder()
                .status(aws_sdk_s3::types::ObjectLockLegalHoldStatus::On)
                .build(),
        )
        .send()
        .await
        .unwrap();
    // Leftovers: a set that never got its manifest, and an upload never completed.
    let orphan = BackupId::generate(datetime!(2026-11-01 06:00 UTC));
    put(
        store.as_ref(),
        &format!("{database}/{orphan}/data/0001.copy.zst"),
        b"half",
    )
    .await;
    s3.create_multipart_upload()
        .bucket(&bucket)
        .key(format!("prod/{database}/{orphan}/data/0002.copy.zst"))
        .send()
        .await
        .unwrap();

    let mut expected: BTreeSet<String> = BTreeSet::new();
    expected.extend(newest_per_period(&history, 7, |t| t.date().to_string()));
    expected.extend(newest_per_period(&history, 4, |t| {
        let (y, w, _) = t.to_iso_week_date();
        format!("{y}-{w:02}")
    }));
    expected.extend(newest_per_period(&history, 12, |t| {
        format!("{}-{:02}", t.year(), u8::from(t.month()))
    }));
    expected.insert(verified_id.to_string());

    let policy = Policy {
        daily: 7,
        weekly: 4,
        monthly: 12,
        ..Policy::default()
    };
    let later = OffsetDateTime::now_utc() + time::Duration::days(2);
    let options = |dry_run, max_deletions| PruneOptions {
        policy,
        dry_run,
        max_deletions,
        now: later,
        stream_window: backstop::retention::DEFAULT_STREAM_WINDOW,
    };

    // A dry run decides everything and touches nothing.
    let before = keys(store.as_ref(), "").await;
    let dry = prune(store.as_ref(), &db, &options(true, 1000))
        .await
        .unwrap();
    assert_eq!(keys(store.as_ref(), "").await, before);
    let kept: BTreeSet<String> = dry.kept.iter().map(|k| k.backup_id.clone()).collect();
    assert_eq!(kept, expected);
    assert_eq!(dry.retained_by_lock, [held_id.to_string()]);
    assert_eq!(
        dry.deleted.len() + dry.kept.len() + 1,
        history.len(),
        "every backup is kept, deleted or held"
    );
    let why = |id: &BackupId| {
        dry.kept
            .iter()
            .find(|k| k.backup_id == id.as_str())
            .map(|k| k.reasons.clone())
    };
    assert!(why(&newest_id).unwrap().contains(&Reason::NewestBackup));
    assert_eq!(why(&verified_id), Some(vec![Reason::NewestVerified]));

    // At most 10 deletions per run, oldest first.
    let first = prune(store.as_ref(), &db, &options(false, 10))
        .await
        .unwrap();
    assert_eq!(first.deleted.len(), 10);
    // Deferred: the rest of the selection, the held one included (its lock is checked when
    // its turn comes).
    assert_eq!(first.deferred.len(), dry.deleted.len() + 1 - 10);
    assert_eq!(first.deleted[0].name, dry.deleted[0].name);
    assert!(first.deleted[0].name < first.deleted[9].name);
    assert_eq!(first.orphans_removed[0].name, orphan.to_string());
    assert_eq!(first.uploads_aborted.len(), 1);
    let uploads = s3
        .list_multipart_uploads()
        .bucket(&bucket)
        .send()
        .await
        .unwrap();
    assert!(uploads.uploads().is_empty());

    let rest = prune(store.as_ref(), &db, &options(false, 1000))
        .await
        .unwrap();
    assert_eq!(rest.deleted.len(), first.deferred.len() - 1);
    assert_eq!(rest.retained_by_lock, [held_id.to_string()]);
    assert!(rest.bytes_freed > 0);
    let left: BTreeSet<String> = keys(store.as_ref(), &format!("{database}/"))
        .await
        .into_iter()
        .filter(|k| k.ends_with("/manifest.json"))
        .map(|k| k.split('/').nth(1).unwrap().to_string())
        .collect();
    let mut expected_left = expected.clone();
    expected_left.insert(held_id.to_string());
    assert_eq!(left, expected_left);
    assert!(
        !keys(store.as_ref(), &format!("{database}/{orphan}/"))
            .await
            .iter()
            .any(|_| true),
        "the orphaned parts are gone"
    );

    // Applying the policy again deletes nothing more.
    let again = prune(store.as_ref(), &db, &options(false, 1000))
        .await
        .unwrap();
    assert!(again.deleted.is_empty(), "{:?}", again.deleted);
    assert!(
        again
            .summary()
            .starts_with(&format!("kept {} backup(s), deleted 0", expected.len()))
    );
}

#[tokio::test]
async fn a_listing_that_fails_or_looks_incomplete_deletes_nothing() {
    let bucket = moto().new_bucket("retention-faulty").await;
    let url: StoreUrl = format!("s3://{bucket}/prod").parse().unwrap();
    let store = backstop::store::open(&url, &moto().sdk_config().await);
    let db = DatabaseId::new("shop").unwrap();
    let mut ids = Vec::new();
    for day in 0..10 {
        ids.push(
            committed(
                store.as_ref(),
                "shop",
                datetime!(2026-11-01 06:00 UTC) + time::Duration::days(day),
            )
            .await,
        );
    }
    let options = PruneOptions {
        policy: Policy {
            last: 2,
            ..Policy::default()
        },
        dry_run: false,
        max_deletions: 100,
        now: OffsetDateTime::now_utc(),
        stream_window: backstop::retention::DEFAULT_STREAM_WINDOW,
    };
    let before = keys(store.as_ref(), "shop/").await;

    let failing = FailingStore::new(store.clone());
    failing.fail_listings();
    let error = prune(&failing, &db, &options).await.unwrap_err();
    assert!(matches!(error, PruneError::Store(_)), "{error}");
    assert_eq!(keys(store.as_ref(), "shop/").await, before);

    // One good run records the newest backup it saw; a set still being written (no manifest
    // yet, minutes old) is left alone.
    let in_progress = BackupId::generate(OffsetDateTime::now_utc());
    put(
        store.as_ref(),
        &format!("shop/{in_progress}/data/0001.copy.zst"),
        b"rows",
    )
    .await;
    let mut keep_all = options.clone();
    keep_all.policy.last = 100;
    let report = prune(store.as_ref(), &db, &keep_all).await.unwrap();
    assert!(report.orphans_removed.is_empty() && report.deleted.is_empty());
    store
        .delete(&format!("shop/{in_progress}/data/0001.copy.zst"))
        .await
        .unwrap();
    // ...so a later listing without it is recognised as incomplete.
    let hiding = FailingStore::new(store.clone());
    hiding.hide_from_listings(&ids.last().unwrap().to_string());
    let error = prune(&hiding, &db, &options).await.unwrap_err().to_string();
    assert!(
        error.contains("looks incomplete") && error.contains("nothing was deleted"),
        "{error}"
    );
    assert_eq!(keys(store.as_ref(), "shop/").await, before);

    // An unreadable manifest stops the run too.
    put(
        store.as_ref(),
        &format!("shop/{}/manifest.json", ids[0]),
        b"{not json",
    )
    .await;
    let error = prune(store.as_ref(), &db, &options)
        .await
        .unwrap_err()
        .to_string();
    assert!(error.contains(&ids[0].to_string()), "{error}");
    assert_eq!(keys(store.as_ref(), "shop/").await.len(), before.len());

    let no_policy = PruneOptions {
        policy: Policy::default(),
        ..options
    };
    assert!(matches!(
        prune(store.as_ref(), &db, &no_policy).await,
        Err(PruneError::NoPolicy)
    ));
}

#[tokio::test]
async fn the_retention_function_prunes_every_database_and_reports_what_it_removed() {
    let bucket = moto().new_bucket("retention-lambda").await;
    let inbox = moto().alert_inbox("retention-lambda").await;
    let aws = moto().sdk_config().await;
    let vars = [
        ("BACKSTOP_STORE", format!("s3://{bucket}/prod")),
        (
            "BACKSTOP_DATABASES",
            r#"{"shop": {"url_env": "SHOP_URL"}, "crm": {"url_env": "CRM_URL"}}"#.to_string(),
        ),
        ("BACKSTOP_ALERT_TOPIC_ARN", inbox.topic_arn.clone()),
        ("BACKSTOP_KEEP_LAST", "2".to_string()),
    ];
    let lookup = move |k: &str| vars.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone());
    let config = backstop::config::FunctionConfig::from_lookup(&lookup).unwrap();
    let store = backstop::store::open(&config.store, &aws);
    let env: backstop::config::Env = Arc::new(lookup);
    let deps = retention::Deps::new(common::Base::new(
        config,
        store.clone(),
        aws,
        env,
        retention::DEFAULT_NAME,
    ))
    .unwrap();
    for day in 0..5 {
        committed(
            store.as_ref(),
            "shop",
            datetime!(2026-11-10 06:00 UTC) + time::Duration::days(day),
        )
        .await;
    }
    committed(store.as_ref(), "crm", datetime!(2026-11-10 06:00 UTC)).await;

    let dry = retention::handler(
        crate::backup_lambda::invocation(
            serde_json::json!({"database": "shop", "dry_run": true}),
            std::time::Duration::from_secs(300),
        ),
        &deps,
    )
    .await
    .unwrap();
    assert_eq!(dry.reports[0].deleted.len(), 3);
    assert!(inbox.drain().await.is_empty(), "a dry run sends no alert");
    assert_eq!(keys(store.as_ref(), "shop/").await.len(), 10);

    let response = retention::handler(
        crate::backup_lambda::invocation(
            crate::support::fixture("scheduled.json"),
            std::time::Duration::from_secs(300),
        ),
        &deps,
    )
    .await
    .unwrap();
    let deleted: Vec<(String, usize)> = response
        .reports
        .iter()
        .map(|r| (r.database.clone(), r.deleted.len()))
        .collect();
    assert_eq!(deleted, [("crm".to_string(), 0), ("shop".to_string(), 3)]);
    assert_eq!(keys(store.as_ref(), "shop/").await.len(), 4);
    let alerts = crate::backup_lambda::alerts(&inbox.drain().await);
    assert_eq!(
        alerts.len(),
        1,
        "one info alert, for the database that lost backups"
    );
    assert_eq!(
        (
            alerts[0].severity,
            alerts[0].kind.as_str(),
            alerts[0].database_id.as_str()
        ),
        (backstop::alert::Severity::Info, "retention_report", "shop")
    );
    assert!(
        alerts[0].summary.contains("deleted 3"),
        "{}",
        alerts[0].summary
    );
}

#[test]
fn the_cli_prunes_with_a_dry_run_first() {
    let db = backstop_tests::postgres::fresh_database("prune cli");
    db.psql("CREATE TABLE public.t (id int); INSERT INTO public.t VALUES (1);");
    let dir = tempfile::tempdir().unwrap();
    let store = format!("file://{}/store", dir.path().display());
    for _ in 0..3 {
        let output = crate::support::backstop(&["backup", "--db", &db.url(), "--to", &store], &[]);
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let prune = |extra: &[&str]| {
        let mut args = vec!["prune", "--from", &store, "--keep-last", "1", "--json"];
        args.extend_from_slice(extra);
        crate::support::backstop(&args, &[])
    };
    let output = prune(&["--dry-run"]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["deleted"].as_array().unwrap().len(), 2);
    let sets = || {
        std::fs::read_dir(dir.path().join("store").join(&db.name))
            .unwrap()
            .count()
    };
    assert_eq!(sets(), 3);
    let output = prune(&[]);
    assert!(output.status.success());
    assert_eq!(sets(), 1);
    let line = crate::support::single_error_line(&crate::support::backstop(
        &["prune", "--from", &store],
        &[],
    ));
    assert!(line.contains("no keep rule"), "{line}");
}

/// The monitor's samples of the objectives are kept a year and a month
/// (`SAMPLE_RETENTION`), then swept with the other leftovers; younger ones stay.
#[tokio::test]
async fn the_monitor_s_samples_are_kept_a_year_and_a_month() {
    use backstop::objectives::samples::{self, Sample};
    use backstop::objectives::{Judged, ObjectiveFigures, Objectives, State};
    let dir = tempfile::tempdir().unwrap();
    let url: StoreUrl = format!("file://{}", dir.path().display()).parse().unwrap();
    let store = backstop::store::open_from_env(&url).await;
    let db = DatabaseId::new("shop").unwrap();
    let judged = |state| Judged {
        state,
        seconds: Some(60.0),
        objective_seconds: 3600.0,
    };
    let sample = Sample {
        database_id: "shop".into(),
        checked_at: OffsetDateTime::now_utc(),
        objectives: Objectives {
            rpo: std::time::Duration::from_secs(3600),
            rto: std::time::Duration::from_secs(3600),
            restore_test_every: None,
        },
        figures: ObjectiveFigures {
            rpo: judged(State::Met),
            rto: judged(State::Met),
            restore_test: None,
            rto_backup_id: None,
            rto_is_loaded: false,
        },
    };
    samples::record(store.as_ref(), &sample).await.unwrap();
    let options = |days| PruneOptions {
        policy: Policy {
            daily: 7,
            ..Policy::default()
        },
        dry_run: false,
        max_deletions: 100,
        now: OffsetDateTime::now_utc() + time::Duration::days(days),
        stream_window: backstop::retention::DEFAULT_STREAM_WINDOW,
    };
    prune(store.as_ref(), &db, &options(399)).await.unwrap();
    let kept = samples::read(store.as_ref(), &db, None).await.unwrap().0;
    assert_eq!(kept.len(), 1, "a sample 399 days old stays");
    prune(store.as_ref(), &db, &options(401)).await.unwrap();
    let kept = samples::read(store.as_ref(), &db, None).await.unwrap().0;
    assert!(kept.is_empty(), "a sample 401 days old goes");
}
