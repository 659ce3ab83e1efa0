//! What the function tests share: a configuration from a list of database ids.

use backstop::config::FunctionConfig;

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

/// The same backup binary outside Lambda (how a container task runs it): the job comes from
/// `BACKSTOP_JOB`, the response is printed as JSON with the metrics recorded and no alert, and
/// a failed job exits non-zero with one critical alert.
#[tokio::test]
async fn the_backup_binary_runs_one_job_from_backstop_job_outside_lambda() {
    use backstop_tests::moto::moto;
    let db = backstop_tests::postgres::fresh_database("job outside lambda");
    db.psql("CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t SELECT generate_series(1, 42);");
    let bucket = moto().new_bucket("job").await;
    let inbox = moto().alert_inbox("job").await;
    let binary = crate::support::backstop_bin().with_file_name("backup");
    let main = crate::backup_lambda::database_id("job");
    let run = |job: &str| {
        let mut command = std::process::Command::new(&binary);
        command
            .env_remove("AWS_LAMBDA_RUNTIME_API")
            .env("BACKSTOP_JOB", job)
            .env("BACKSTOP_STORE", format!("s3://{bucket}/prod"))
            .env(
                "BACKSTOP_DATABASES",
                serde_json::json!({
                    main.as_str(): {"url_env": "MAIN_DATABASE_URL"},
                    "gone": {"url_env": "GONE_DATABASE_URL"}
                })
                .to_string(),
            )
            .env("MAIN_DATABASE_URL", db.url())
            .env(
                "GONE_DATABASE_URL",
                "postgresql://nobody:secret@127.0.0.1:1/none?sslmode=disable",
            )
            .env("BACKSTOP_ALERT_TOPIC_ARN", &inbox.topic_arn);
        for (name, value) in moto().env() {
            command.env(name, value);
        }
        command.output().unwrap()
    };
    let output = run(&serde_json::json!({"database": main, "tier": "auto"}).to_string());
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let response: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(response["backups"][0]["rows"], 42, "{response}");
    assert_eq!(response["backups"][0]["database"], main.as_str());
    use crate::backup_lambda::metric_sum;
    assert_eq!(metric_sum("BackupSucceeded", &main).await, Some(1.0));
    assert!(
        metric_sum("BackupBytes", &main)
            .await
            .is_some_and(|b| b > 0.0)
    );
    assert!(
        inbox.drain().await.is_empty(),
        "a committed job sends no alert"
    );
    // The answer says what the backup cost in objects and store requests.
    // (manifest, globals.json, pre-data, data, post-data, statistics)
    assert_eq!(response["backups"][0]["objects"], 6, "{response}");
    assert_eq!(
        response["backups"][0]["requests"]["objects_written"], 6,
        "{response}"
    );

    let output = run(r#"{"database": "gone"}"#);
    assert!(!output.status.success(), "a failed job exits non-zero");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("gone"), "{stderr}");
    assert!(!stderr.contains("secret"), "{stderr}");
    let received = inbox.drain().await;
    assert_eq!(received.len(), 1, "the failure alerted as in Lambda");
    let alert = crate::backup_lambda::alerts(&received).remove(0);
    assert_eq!(alert.severity, backstop::alert::Severity::Critical);
    assert_eq!(alert.database_id, "gone");

    let output = run("not json");
    assert!(!output.status.success());
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("BACKSTOP_JOB is not a request"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}
