//! The container tasks of infra/examples/complete as applied against moto (called by the
//! apply test, between its apply and its destroy).

use backstop_tests::moto::moto;

use super::{example_schedule, role_policy};

/// The container task as applied: the ECR repository (from the state moto answered), the
/// cluster and task definition (read back from moto's ECS), the warehouse database's schedule
/// that starts it, and the backup function's leave to start it and nothing else (from the
/// applied policy). moto does not run what RunTask starts; the dispatch tests read RunTask back.
pub(super) async fn reads_back(
    state: &serde_json::Value,
    outputs: &serde_json::Value,
    scheduler: &aws_sdk_scheduler::Client,
) {
    let module = state["values"]["root_module"]["child_modules"][0]["resources"]
        .as_array()
        .unwrap();
    let only = |kind: &str, name: &str| -> serde_json::Value {
        module
            .iter()
            .find(|r| r["type"] == kind && r["name"] == name)
            .unwrap_or_else(|| panic!("no {kind}.{name} in the state"))["values"]
            .clone()
    };
    let task = &outputs["container_task"]["value"];
    let repository = only("aws_ecr_repository", "this");
    assert_eq!(repository["image_tag_mutability"], "IMMUTABLE");
    assert_eq!(
        repository["image_scanning_configuration"][0]["scan_on_push"],
        true
    );
    assert_eq!(
        repository["encryption_configuration"][0]["encryption_type"],
        "KMS"
    );
    let lifecycle: serde_json::Value = serde_json::from_str(
        only("aws_ecr_lifecycle_policy", "this")["policy"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(lifecycle["rules"].as_array().unwrap().len(), 2);

    let ecs = moto().ecs().await;
    let cluster = task["cluster"].as_str().unwrap();
    let clusters = ecs
        .describe_clusters()
        .clusters(cluster)
        .send()
        .await
        .unwrap();
    let mut providers = clusters.clusters()[0].capacity_providers().to_vec();
    providers.sort();
    assert_eq!(providers, ["FARGATE", "FARGATE_SPOT"]);
    let describe = async |arn: &serde_json::Value| {
        ecs.describe_task_definition()
            .task_definition(arn.as_str().unwrap())
            .send()
            .await
            .unwrap()
            .task_definition()
            .unwrap()
            .clone()
    };
    let definition = &describe(&task["task_definition"]).await;
    assert_eq!(
        definition
            .runtime_platform()
            .and_then(|p| p.cpu_architecture())
            .map(|a| a.as_str()),
        Some("ARM64")
    );
    assert_eq!(
        definition.network_mode().map(|m| m.as_str()),
        Some("awsvpc")
    );
    assert_eq!(definition.task_role_arn(), task["task_role"].as_str());
    let container = &definition.container_definitions()[0];
    let image = container.image().unwrap();
    assert!(
        image.starts_with(task["repository_url"].as_str().unwrap()) && image.ends_with(":0.1.0"),
        "{image}"
    );
    assert_eq!(container.readonly_root_filesystem(), Some(true));
    assert_eq!(container.entry_point(), ["/backup"]);
    let env: std::collections::BTreeMap<&str, &str> = container
        .environment()
        .iter()
        .filter_map(|p| Some((p.name()?, p.value()?)))
        .collect();
    assert_eq!(
        env.get("BACKSTOP_FUNCTION_NAME"),
        Some(&"backstop-example-backup")
    );
    assert!(env.contains_key("BACKSTOP_STORE") && env.contains_key("BACKSTOP_DATABASES"));
    // It stores shared chunks as the backup function does, the key read with its own role.
    assert_eq!(env.get("BACKSTOP_INCREMENTAL"), Some(&"true"));
    assert!(
        env.get("BACKSTOP_CHUNK_KEY_SECRET")
            .is_some_and(|arn| arn.contains(":secret:backstop/example/chunk-key")),
        "{env:?}"
    );
    assert!(!env.contains_key("BACKSTOP_CHUNK_KEY"), "{env:?}");
    assert!(
        !env.keys().any(|k| k.starts_with("BACKSTOP_TASK_")),
        "the task does not dispatch: {env:?}"
    );
    assert_eq!(
        container
            .log_configuration()
            .map(|l| l.log_driver().as_str()),
        Some("awslogs")
    );

    // The backup function knows the task; warehouse's schedule starts it directly.
    let backup_env = module
        .iter()
        .find(|r| r["type"] == "aws_lambda_function" && r["index"] == "backup")
        .unwrap()["values"]["environment"][0]["variables"]
        .clone();
    assert_eq!(
        backup_env["BACKSTOP_TASK_DEFINITION"],
        "backstop-example-backup"
    );
    assert_eq!(backup_env["BACKSTOP_TASK_CLUSTER"], cluster);
    assert_eq!(backup_env["BACKSTOP_TASK_SPOT"], "true");
    assert_eq!(
        backup_env["BACKSTOP_TASK_SUBNETS"],
        "subnet-0123456789abcdef0"
    );
    let warehouse = example_schedule(scheduler, "backstop-example-backup-warehouse").await;
    let target = warehouse.target().unwrap();
    assert_eq!(target.arn(), cluster);
    let parameters = target.ecs_parameters().expect("an ECS target");
    assert!(
        parameters
            .task_definition_arn()
            .contains("task-definition/backstop-example-backup")
    );
    // Its test restore takes as long as its backup: the verify task runs it.
    let verify = describe(&task["verify_task_definition"]).await;
    let verifier = &verify.container_definitions()[0];
    assert_eq!(verifier.entry_point(), ["/verify"]);
    assert_eq!(verify.task_role_arn(), task["verify_task_role"].as_str());
    assert!(verifier.environment().iter().any(|p| {
        p.name() == Some("BACKSTOP_FUNCTION_NAME") && p.value() == Some("backstop-example-verify")
    }));
    let restore = example_schedule(scheduler, "backstop-example-verify-restore-warehouse").await;
    let restore_target = restore.target().unwrap();
    assert_eq!(restore_target.arn(), cluster);
    assert!(
        restore_target
            .ecs_parameters()
            .unwrap()
            .task_definition_arn()
            .contains("task-definition/backstop-example-verify")
    );
    let input: serde_json::Value = serde_json::from_str(target.input().unwrap()).unwrap();
    let overrides = &input["containerOverrides"][0];
    assert_eq!(overrides["name"], "backstop");
    assert_eq!(overrides["environment"][0]["name"], "BACKSTOP_JOB");
    let job: serde_json::Value =
        serde_json::from_str(overrides["environment"][0]["value"].as_str().unwrap()).unwrap();
    assert_eq!(job["database"], "warehouse");
    let main = example_schedule(scheduler, "backstop-example-backup-main").await;
    assert!(main.target().unwrap().arn().contains(":function:"));

    // RunTask on that one task definition in that one cluster, and PassRole of its two roles
    // to ECS: all the backup function may do with ECS and IAM.
    let dispatch: serde_json::Value = serde_json::from_str(
        only("aws_iam_role_policy", "dispatch")["policy"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    let statements = dispatch["Statement"].as_array().unwrap();
    assert_eq!(statements.len(), 2, "{dispatch}");
    let run = statements
        .iter()
        .find(|s| s["Sid"] == "StartBackupTask")
        .unwrap();
    assert_eq!(run["Action"], "ecs:RunTask");
    assert!(
        run["Resource"]
            .as_str()
            .unwrap()
            .ends_with(":task-definition/backstop-example-backup:*"),
        "{run}"
    );
    assert_eq!(run["Condition"]["ArnEquals"]["ecs:cluster"], cluster);
    let pass = statements
        .iter()
        .find(|s| s["Sid"] == "PassTaskRoles")
        .unwrap();
    assert_eq!(pass["Action"], "iam:PassRole");
    assert_eq!(
        pass["Condition"]["StringEquals"]["iam:PassedToService"],
        "ecs-tasks.amazonaws.com"
    );
    // Each task's own role is its function's policy, without ECS.
    for job in ["backup", "verify"] {
        let policy = module
            .iter()
            .find(|r| {
                r["type"] == "aws_iam_role_policy" && r["name"] == "task" && r["index"] == job
            })
            .unwrap_or_else(|| panic!("no {job} task policy"))["values"]["policy"]
            .as_str()
            .unwrap()
            .to_string();
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&policy).unwrap(),
            role_policy(state, job),
            "the {job} task's role has its function's policy"
        );
        assert!(!policy.contains("ecs:"));
    }
}
