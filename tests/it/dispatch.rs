//! The backup function past its 15 minutes, against real PostgreSQL and moto: a backup whose
//! estimate exceeds the invocation's time left, or whose last run stopped at its deadline, is
//! handed to the container task (RunTask, read back from moto's ECS) and answered
//! "dispatched"; a second invocation does not start a second task; the monitor holds the run
//! as in progress; and the job the task was given, run by the same backup binary outside
//! Lambda, commits the set. (moto places Fargate tasks by launch type, not through the Spot
//! capacity provider; what RunTask is asked is read back, not what a task would do.)

use std::time::Duration;

use backstop::health::FreshnessThresholds;
use backstop::health::backups::{assess, gather};
use backstop::layout::DatabaseId;
use backstop_tests::moto::moto;
use backstop_tests::postgres::fresh_database;
use serde_json::{Value, json};
use time::OffsetDateTime;

use crate::backup_lambda::{
    StoreChoice, database_id, invocation, metric_sum, role_with_password, sample_app, stack,
};

/// An ECS cluster and a Fargate task definition in moto, as the module creates them.
pub(crate) async fn ecs_task(label: &str) -> (String, String) {
    let ecs = moto().ecs().await;
    let name = format!("{label}-{}", backstop_tests::unique_suffix());
    let cluster = ecs
        .create_cluster()
        .cluster_name(&name)
        .capacity_providers("FARGATE")
        .capacity_providers("FARGATE_SPOT")
        .send()
        .await
        .unwrap();
    let cluster_arn = cluster
        .cluster()
        .unwrap()
        .cluster_arn()
        .unwrap()
        .to_string();
    let task_definition = ecs
        .register_task_definition()
        .family(format!("{name}-backup"))
        .requires_compatibilities(aws_sdk_ecs::types::Compatibility::Fargate)
        .network_mode(aws_sdk_ecs::types::NetworkMode::Awsvpc)
        .cpu("2048")
        .memory("8192")
        .container_definitions(
            aws_sdk_ecs::types::ContainerDefinition::builder()
                .name("backstop")
                .image("123456789012.dkr.ecr.us-east-1.amazonaws.com/backstop:0.1.0")
                .essential(true)
                // moto adds up the containers' memory (Fargate needs only the task's), and
                // answers a container's `memory` as a number where ECS sends a string: a
                // reservation is what it reads without echoing it.
                .memory_reservation(8192)
                .build(),
        )
        .send()
        .await
        .unwrap();
    let task_definition_arn = task_definition
        .task_definition()
        .unwrap()
        .task_definition_arn()
        .unwrap()
        .to_string();
    (cluster_arn, task_definition_arn)
}

/// The backup function's settings for that task (as the module sets them), in moto's default
/// VPC.
pub(crate) async fn task_env(cluster: &str, task_definition: &str) -> Vec<(String, String)> {
    let (subnet, security_group) = moto().default_network().await;
    [
        ("BACKSTOP_TASK_CLUSTER", cluster),
        ("BACKSTOP_TASK_DEFINITION", task_definition),
        ("BACKSTOP_TASK_SUBNETS", subnet.as_str()),
        ("BACKSTOP_TASK_SECURITY_GROUPS", security_group.as_str()),
        // moto starts Fargate tasks by launch type only, not through the FARGATE_SPOT
        // capacity provider: Spot is left to the module's plan and the unit tests.
        ("BACKSTOP_TASK_SPOT", "false"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// The task `arn` as moto holds it, and the `BACKSTOP_JOB` it was started with.
pub(crate) async fn started_task(cluster: &str, arn: &str) -> (aws_sdk_ecs::types::Task, Value) {
    let ecs = moto().ecs().await;
    let described = ecs
        .describe_tasks()
        .cluster(cluster)
        .tasks(arn)
        .send()
        .await
        .unwrap();
    let task = described
        .tasks()
        .first()
        .expect("the task moto started")
        .clone();
    let overrides = task.overrides().expect("the task's overrides");
    let container = &overrides.container_overrides()[0];
    assert_eq!(container.name(), Some("backstop"));
    let job: Value = container
        .environment()
        .iter()
        .find(|pair| pair.name() == Some("BACKSTOP_JOB"))
        .and_then(|pair| pair.value())
        .map(|job| serde_json::from_str(job).unwrap())
        .expect("the job is the container's BACKSTOP_JOB");
    (task, job)
}

async fn tasks_started(cluster: &str) -> usize {
    let ecs = moto().ecs().await;
    ecs.list_tasks()
        .cluster(cluster)
        .send()
        .await
        .unwrap()
        .task_arns()
        .len()
}

#[tokio::test]
async fn a_backup_that_will_not_fit_is_dispatched_and_its_task_commits_it() {
    let id = database_id("dispatch");
    let db = fresh_database("dispatch");
    sample_app(&db);
    let (url, password) = role_with_password(&db, "dispatch");
    let (cluster, task_definition) = ecs_task("dispatch").await;
    let mut env = vec![("MAIN_DATABASE_URL".to_string(), url.clone())];
    env.extend(task_env(&cluster, &task_definition).await);
    let stack = stack(
        "dispatch",
        &[(id.as_str(), json!({"url_env": "MAIN_DATABASE_URL"}))],
        env,
        StoreChoice::Bucket,
    )
    .await;

    // The first backup has no history to estimate from: it runs in the invocation.
    let first = backup::handler(
        invocation(json!({"database": id}), Duration::from_secs(600)),
        &stack.deps,
    )
    .await
    .unwrap();
    assert_eq!(first.backups.len(), 1);
    assert!(first.dispatched.is_empty());

    // 20 s left after the 30 s reserve: less than any estimate (the last run scaled by the
    // database's growth, plus 30 s for connecting, the catalogs and the manifest).
    let second = backup::handler(
        invocation(
            json!({"database": id, "tier": "weekly", "reason": "before migration 42"}),
            Duration::from_secs(50),
        ),
        &stack.deps,
    )
    .await
    .unwrap();
    assert!(second.backups.is_empty() && second.skipped.is_empty());
    let dispatched = &second.dispatched[0];
    assert!(
        dispatched.reason.contains("estimated") && dispatched.reason.contains("20 s"),
        "{}",
        dispatched.reason
    );
    let (task, job) = started_task(&cluster, &dispatched.task).await;
    assert_eq!(task.task_definition_arn(), Some(task_definition.as_str()));
    assert_eq!(
        job,
        json!({"database": id, "tier": "weekly", "reason": "before migration 42"})
    );
    assert_eq!(job, dispatched.job);
    assert_eq!(metric_sum("BackupDispatched", &id).await, Some(1.0));
    assert!(
        stack.inbox.drain().await.is_empty(),
        "a dispatch is not an alert"
    );

    // Another invocation while the task starts leaves it alone.
    let third = backup::handler(
        invocation(json!({"database": id}), Duration::from_secs(50)),
        &stack.deps,
    )
    .await
    .unwrap();
    assert!(third.dispatched.is_empty() && third.backups.is_empty());
    assert!(
        third.skipped[0].reason.contains("still in progress"),
        "{:?}",
        third.skipped
    );
    assert_eq!(tasks_started(&cluster).await, 1);

    // The monitor holds the dispatched run as in progress.
    let database = DatabaseId::new(&id).unwrap();
    let store = stack.deps.base.store.clone();
    let facts = gather(store.as_ref(), &database).await.unwrap();
    let (health, _) = assess(
        &facts,
        OffsetDateTime::now_utc(),
        &FreshnessThresholds::default(),
    );
    assert!(
        health
            .in_progress
            .as_deref()
            .is_some_and(|p| p.contains(&dispatched.task)),
        "{health:?}"
    );

    // The task: the same binary, outside Lambda, with the job it was given.
    let binary = crate::support::backstop_bin().with_file_name("backup");
    let mut command = std::process::Command::new(&binary);
    command
        .env_remove("AWS_LAMBDA_RUNTIME_API")
        .env("BACKSTOP_JOB", job.to_string())
        .env(
            "BACKSTOP_STORE",
            format!("s3://{}/{}", stack.bucket, stack.prefix),
        )
        .env(
            "BACKSTOP_DATABASES",
            json!({ id.as_str(): {"url_env": "MAIN_DATABASE_URL"} }).to_string(),
        )
        .env("MAIN_DATABASE_URL", &url)
        .env("BACKSTOP_ALERT_TOPIC_ARN", &stack.inbox.topic_arn);
    for (name, value) in moto().env() {
        command.env(name, value);
    }
    let output = command.output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(!stderr.contains(&password), "{stderr}");
    let response: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(response["backups"][0]["tier"], "weekly", "{response}");
    assert!(stack.inbox.drain().await.is_empty());

    // It landed: two committed backups, nothing in progress.
    let facts = gather(store.as_ref(), &database).await.unwrap();
    let (health, findings) = assess(
        &facts,
        OffsetDateTime::now_utc(),
        &FreshnessThresholds::default(),
    );
    assert_eq!(health.backup_count, 2);
    assert_eq!(health.in_progress, None);
    assert!(findings.is_empty(), "{findings:?}");
}
