//! Each Lambda function answers a real invocation through its handler.

use std::sync::Arc;

use backstop::config::FunctionConfig;
use backstop::health::HealthStatus;
use backstop::store::{FileStore, PutOptions, Store};
use time::macros::datetime;

use crate::support::{fixture, invocation};

/// A configuration covering `databases` (comma-separated), each with a URL variable.
pub fn config(store: &str, databases: &str) -> FunctionConfig {
    let sources: serde_json::Map<String, serde_json::Value> = databases
        .split(',')
        .map(|id| {
            let var = format!("{}_DATABASE_URL", id.to_uppercase());
            (id.to_string(), serde_json::json!({ "url_env": var }))
        })
        .collect();
    let vars = [
        ("BACKSTOP_STORE", store.to_string()),
        (
            "BACKSTOP_DATABASES",
            serde_json::Value::Object(sources).to_string(),
        ),
    ];
    FunctionConfig::from_lookup(|k| vars.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone()))
        .unwrap()
}

async fn commit_set(store: &dyn Store, key: &str) {
    store
        .put(key, &mut &b"{}"[..], &PutOptions::default())
        .await
        .unwrap();
}

#[tokio::test]
async fn monitor_reports_freshness_of_every_configured_database() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(FileStore::new(dir.path().to_path_buf()));
    commit_set(
        store.as_ref(),
        "main/20261122T020000Z-aaaa0001/manifest.json",
    )
    .await;
    commit_set(
        store.as_ref(),
        "stale/20261120T000000Z-bbbb0002/manifest.json",
    )
    .await;
    // An uncommitted set (no manifest) does not count as a backup.
    commit_set(
        store.as_ref(),
        "main/20261122T050000Z-cccc0003/pre-data.sql.zst",
    )
    .await;

    let deps = monitor::Deps {
        config: config(
            &format!("file://{}", dir.path().display()),
            "main,stale,empty",
        ),
        store,
        now: Arc::new(|| datetime!(2026-11-22 06:00:00 UTC)),
    };
    let response = monitor::handler(invocation(fixture("scheduled.json")), &deps)
        .await
        .unwrap();
    let statuses: Vec<_> = response
        .databases
        .iter()
        .map(|d| (d.database.as_str(), d.status, d.last_backup.as_deref()))
        .collect();
    // Databases are reported in id order.
    assert_eq!(
        statuses,
        [
            ("empty", HealthStatus::Critical, None),
            (
                "main",
                HealthStatus::Healthy,
                Some("20261122T020000Z-aaaa0001")
            ),
            (
                "stale",
                HealthStatus::Critical,
                Some("20261120T000000Z-bbbb0002")
            ),
        ]
    );
    assert_eq!(response.databases[1].age_seconds, Some(4 * 3600));

    let one = monitor::handler(invocation(serde_json::json!({"database": "main"})), &deps)
        .await
        .unwrap();
    assert_eq!(one.databases.len(), 1);
    let error = monitor::handler(invocation(serde_json::json!({"databse": "main"})), &deps)
        .await
        .unwrap_err();
    assert!(
        error.to_string().contains("unknown field `databse`"),
        "{error}"
    );
}

#[tokio::test]
async fn monitor_fails_rather_than_reporting_no_backups_when_the_store_is_unreadable() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("not-a-dir");
    std::fs::write(&file, b"x").unwrap();
    let deps = monitor::Deps {
        config: config(&format!("file://{}", file.display()), "main"),
        store: Arc::new(FileStore::new(file.clone())),
        now: Arc::new(time::OffsetDateTime::now_utc),
    };
    let error = monitor::handler(invocation(fixture("scheduled.json")), &deps)
        .await
        .unwrap_err();
    assert!(error.to_string().contains("list"), "{error}");
}
