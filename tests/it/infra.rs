//! infra/examples/complete applied against moto from `make build` zips: the bucket's
//! versioning, encryption, lifecycle (shared chunks to Glacier Instant Retrieval only) and
//! public access block, the schedules and the alarms read back through the AWS SDK; the backup
//! role never deletes or replaces backup data and the retention role never puts any (only its
//! state and the backup lease); no writer role retags an object with a tier tag; the writers
//! of backups store shared chunks with the chunk key only they may read; no function's failures
//! feed the topic that feeds it; the monitor is given each database's recovery objectives, the
//! dashboard draws the RPO and RTO against them and no function may delete the verification
//! record (objectives); then destroyed. And `terraform validate` refusing each invalid input
//! with its message, and plan warning of encrypted incremental backups without a chunk key.
//!
//! These tests need terraform, the provider mirror and the zips: they are `#[ignore]`d in the
//! main suite and run by `make infra-check` (`cargo test ... -- --ignored infra::`).

use std::path::{Path, PathBuf};
use std::process::Command;

use backstop_tests::moto::moto;

mod brought;
mod cli_binary;
mod container_task;
mod image;
mod objectives;
mod release;

const FUNCTIONS: [&str; 6] = [
    "backup",
    "stream",
    "verify",
    "monitor",
    "retention",
    "notify-slack",
];

/// The backup function's reserved concurrency the module sets by default (asserted against
/// the applied function, and used by the twelve-database test of the handler).
pub const MODULE_BACKUP_CONCURRENCY: usize = 4;

/// The Lambda zips `make build` leaves (`make infra-check` builds them first).
fn lambda_zips() -> Option<PathBuf> {
    let dir = backstop_tests::workspace_root().join("target/lambda");
    let missing: Vec<&str> = FUNCTIONS
        .iter()
        .copied()
        .filter(|f| !dir.join(f).join("bootstrap.zip").exists())
        .collect();
    if missing.is_empty() {
        return Some(dir);
    }
    let message = format!(
        "the Lambda zips of {} are missing from {}; run `make build`",
        missing.join(", "),
        dir.display()
    );
    panic!("{message}");
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name();
        if name == ".terraform" || name.to_string_lossy().starts_with("terraform.tfstate") {
            continue;
        }
        let target = to.join(&name);
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

fn terraform(dir: &Path, args: &[&str], zips: &Path) -> String {
    let root = backstop_tests::workspace_root();
    let mut command = Command::new("terraform");
    command
        .current_dir(dir)
        .args(args)
        .env("TF_CLI_CONFIG_FILE", root.join("infra/terraformrc"))
        .env("CHECKPOINT_DISABLE", "1")
        .env("TF_IN_AUTOMATION", "1")
        .env("TF_VAR_aws_endpoint", &moto().endpoint)
        .env("TF_VAR_region", "us-east-1")
        .env(
            "TF_VAR_lambda_artifacts",
            format!("{{ dir = \"{}\" }}", zips.display()),
        )
        .env("TF_VAR_slack", "true")
        .env("TF_VAR_alert_emails", r#"["oncall@example.com"]"#)
        .env("TF_VAR_task_subnet_ids", r#"["subnet-0123456789abcdef0"]"#)
        .env("TF_VAR_image_tag", "0.1.0")
        .env(
            "TF_VAR_backup_recipients",
            format!("[\"{}\"]", example_recipient()),
        );
    for (name, value) in moto().env() {
        command.env(name, value);
    }
    let output = command
        .output()
        .expect("terraform is on PATH (machine image)");
    assert!(
        output.status.success(),
        "terraform {} failed:\n{}\n{}",
        args.join(" "),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// One of the example's schedules, read back.
async fn example_schedule(
    scheduler: &aws_sdk_scheduler::Client,
    name: &str,
) -> aws_sdk_scheduler::operation::get_schedule::GetScheduleOutput {
    scheduler
        .get_schedule()
        .group_name("backstop-example")
        .name(name)
        .send()
        .await
        .unwrap()
}

/// The recipient the example's backups are encrypted to (one made for this test process).
fn example_recipient() -> &'static str {
    static RECIPIENT: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    RECIPIENT.get_or_init(|| backstop::engine::encryption::generate().1)
}

/// The IAM policy document of `function`'s role, from the applied state.
fn role_policy(state: &serde_json::Value, function: &str) -> serde_json::Value {
    let resources = state["values"]["root_module"]["child_modules"][0]["resources"]
        .as_array()
        .unwrap();
    let policy = resources
        .iter()
        .find(|r| {
            r["type"] == "aws_iam_role_policy" && r["name"] == "this" && r["index"] == function
        })
        .unwrap_or_else(|| panic!("no role policy for {function}"));
    serde_json::from_str(policy["values"]["policy"].as_str().unwrap()).unwrap()
}

/// A policy element that is one string or a list of them, as a list.
fn list(v: &serde_json::Value) -> Vec<String> {
    match v {
        serde_json::Value::String(s) => vec![s.clone()],
        serde_json::Value::Array(a) => a
            .iter()
            .filter_map(|x| x.as_str().map(str::to_string))
            .collect(),
        _ => Vec::new(),
    }
}

/// (actions, resources) of every Allow statement touching S3.
fn s3_grants(policy: &serde_json::Value) -> Vec<(Vec<String>, Vec<String>)> {
    policy["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["Effect"] == "Allow")
        .map(|s| (list(&s["Action"]), list(&s["Resource"])))
        .filter(|(actions, _)| actions.iter().any(|a| a.starts_with("s3:")))
        .collect()
}

/// Whether `policy` denies changing the tags (any version's) of every object of `bucket` that
/// already carries a tier tag.
fn denies_retagging(policy: &serde_json::Value, bucket: &str) -> bool {
    let existing_tier = format!("s3:ExistingObjectTag/{}", backstop::tier::TIER_TAG);
    policy["Statement"].as_array().unwrap().iter().any(|s| {
        let actions = list(&s["Action"]);
        s["Effect"] == "Deny"
            && [
                "s3:PutObjectTagging",
                "s3:DeleteObjectTagging",
                "s3:PutObjectVersionTagging",
                "s3:DeleteObjectVersionTagging",
            ]
            .iter()
            .all(|a| actions.iter().any(|x| x == a))
            && list(&s["Resource"]).contains(&format!("arn:aws:s3:::{bucket}/*"))
            && s["Condition"]["Null"][existing_tier.as_str()] == "false"
    })
}

#[tokio::test]
#[ignore = "needs the Lambda zips and terraform: run by make infra-check"]
async fn the_complete_example_applies_against_moto_and_reads_back() {
    let Some(zips) = lambda_zips() else { return };
    let work = tempfile::tempdir().unwrap();
    copy_dir(
        &backstop_tests::workspace_root().join("infra"),
        &work.path().join("infra"),
    );
    let example = work.path().join("infra/examples/complete");
    terraform(&example, &["init", "-input=false", "-no-color"], &zips);
    terraform(
        &example,
        &["apply", "-auto-approve", "-input=false", "-no-color"],
        &zips,
    );
    let outputs: serde_json::Value =
        serde_json::from_str(&terraform(&example, &["output", "-json"], &zips)).unwrap();
    let bucket = outputs["bucket"]["value"].as_str().unwrap().to_string();
    // What a restorer needs, and nothing that writes or deletes.
    let restorer: serde_json::Value =
        serde_json::from_str(outputs["restorer_policy_json"]["value"].as_str().unwrap()).unwrap();
    let actions: Vec<String> = restorer["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| match &s["Action"] {
            serde_json::Value::String(one) => vec![one.clone()],
            many => many
                .as_array()
                .unwrap()
                .iter()
                .map(|a| a.as_str().unwrap().to_string())
                .collect(),
        })
        .collect();
    for needed in [
        "s3:ListBucket",
        "s3:GetObject",
        "s3:RestoreObject",
        "kms:Decrypt",
    ] {
        assert!(
            actions.iter().any(|a| a == needed),
            "{needed} not in {actions:?}"
        );
    }
    assert!(
        !actions
            .iter()
            .any(|a| a.contains("Put") || a.contains("Delete") || a.contains('*')),
        "{actions:?}"
    );
    assert!(
        restorer
            .to_string()
            .contains(&format!("arn:aws:s3:::{bucket}/backups/*")),
        "{restorer}"
    );
    let roles = outputs["role_arns"]["value"].as_object().unwrap();
    assert!(
        roles
            .values()
            .all(|arn| arn.as_str().unwrap().contains(":role/backstop/")),
        "every role under iam_path: {roles:?}"
    );
    let dashboard = outputs["dashboard_url"]["value"].as_str().unwrap();
    assert!(
        dashboard.starts_with("https://") && dashboard.contains("#dashboards:name="),
        "{dashboard}"
    );
    let log_groups = outputs["log_group_names"]["value"].as_object().unwrap();
    for function in FUNCTIONS {
        assert!(
            log_groups.contains_key(function),
            "{function} has no log group in {log_groups:?}"
        );
    }

    let aws = moto().sdk_config().await;
    let s3 = backstop::aws::s3_client(&aws);
    let versioning = s3
        .get_bucket_versioning()
        .bucket(&bucket)
        .send()
        .await
        .unwrap();
    assert_eq!(versioning.status().map(|s| s.as_str()), Some("Enabled"));
    let encryption = s3
        .get_bucket_encryption()
        .bucket(&bucket)
        .send()
        .await
        .unwrap();
    let rule = &encryption
        .server_side_encryption_configuration()
        .unwrap()
        .rules()[0];
    assert_eq!(
        rule.apply_server_side_encryption_by_default()
            .unwrap()
            .sse_algorithm()
            .as_str(),
        "aws:kms"
    );
    let lifecycle = s3
        .get_bucket_lifecycle_configuration()
        .bucket(&bucket)
        .send()
        .await
        .unwrap();
    let mut rules: Vec<String> = lifecycle
        .rules()
        .iter()
        .filter_map(|r| r.id().map(str::to_string))
        .collect();
    rules.sort();
    assert_eq!(
        rules,
        [
            "abort-incomplete-uploads",
            "tier-daily",
            "tier-monthly",
            "tier-shared",
            "tier-weekly"
        ]
    );
    let daily = lifecycle
        .rules()
        .iter()
        .find(|r| r.id() == Some("tier-daily"))
        .unwrap();
    // Retention alone deletes backups: no tier expires by lifecycle.
    assert!(
        lifecycle.rules().iter().all(|r| r.expiration().is_none()),
        "{lifecycle:?}"
    );
    assert_eq!(daily.transitions()[0].days(), Some(30));
    // Shared chunks (any set may name one, the newest included) go only where they are read at
    // once: Glacier Instant Retrieval, never Flexible Retrieval.
    let shared = lifecycle
        .rules()
        .iter()
        .find(|r| r.id() == Some("tier-shared"))
        .unwrap();
    let tag = shared
        .filter()
        .and_then(|f| f.tag())
        .expect("the shared rule filters on the tier tag");
    assert_eq!(
        (tag.key(), tag.value()),
        (backstop::tier::TIER_TAG, "shared")
    );
    assert_eq!(
        shared
            .transitions()
            .iter()
            .map(|t| (t.days(), t.storage_class().map(|c| c.as_str())))
            .collect::<Vec<_>>(),
        [(Some(30), Some("GLACIER_IR"))],
        "{shared:?}"
    );
    let block = s3
        .get_public_access_block()
        .bucket(&bucket)
        .send()
        .await
        .unwrap();
    let block = block.public_access_block_configuration().unwrap();
    assert!(
        block.block_public_acls() == Some(true)
            && block.block_public_policy() == Some(true)
            && block.ignore_public_acls() == Some(true)
            && block.restrict_public_buckets() == Some(true)
    );

    let scheduler = aws_sdk_scheduler::Client::new(&aws);
    let schedules = scheduler
        .list_schedules()
        .group_name("backstop-example")
        .send()
        .await
        .unwrap();
    let mut names: Vec<&str> = schedules
        .schedules()
        .iter()
        .filter_map(|s| s.name())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "backstop-example-backup-main",
            "backstop-example-backup-warehouse",
            "backstop-example-monitor-main",
            "backstop-example-monitor-warehouse",
            "backstop-example-retention-main",
            "backstop-example-retention-warehouse",
            "backstop-example-stream-main",
            "backstop-example-stream-warehouse",
            "backstop-example-verify-deep-main",
            "backstop-example-verify-deep-warehouse",
            "backstop-example-verify-restore-main",
            "backstop-example-verify-restore-warehouse",
        ]
    );
    let backup = example_schedule(&scheduler, "backstop-example-backup-main").await;
    assert_eq!(backup.schedule_expression(), Some("rate(6 hours)"));
    let target = backup.target().unwrap();
    let input: serde_json::Value = serde_json::from_str(target.input().unwrap()).unwrap();
    assert_eq!(input["database"], "main");
    assert!(target.dead_letter_config().is_some() && target.retry_policy().is_some());
    // The change stream's drain keeps its 5-minute pace: no flexible window.
    let drain = example_schedule(&scheduler, "backstop-example-stream-main").await;
    assert_eq!(drain.schedule_expression(), Some("rate(5 minutes)"));
    assert_eq!(
        drain.flexible_time_window().map(|w| w.mode().as_str()),
        Some("OFF")
    );

    let cloudwatch = aws_sdk_cloudwatch::Client::new(&aws);
    let alarms = cloudwatch
        .describe_alarms()
        .alarm_name_prefix("backstop-example")
        .send()
        .await
        .unwrap();
    let age = alarms
        .metric_alarms()
        .iter()
        .find(|a| a.alarm_name() == Some("backstop-example-main-backup-age"))
        .expect("the backup age alarm");
    assert_eq!(age.treat_missing_data(), Some("breaching"));
    assert_eq!(age.threshold(), Some(24.0 * 3600.0));
    let recovery_point = alarms
        .metric_alarms()
        .iter()
        .find(|a| a.alarm_name() == Some("backstop-example-main-recovery-point-age"))
        .expect("the recovery point age alarm");
    assert_eq!(recovery_point.treat_missing_data(), Some("breaching"));
    assert_eq!(recovery_point.threshold(), Some(30.0 * 60.0));
    // The RPO against its objective, as the monitor judges it (RpoMet).
    let rpo = alarms
        .metric_alarms()
        .iter()
        .find(|a| a.alarm_name() == Some("backstop-example-main-rpo"))
        .expect("the RPO alarm");
    assert_eq!(rpo.metric_name(), Some("RpoMet"));
    assert_eq!(rpo.threshold(), Some(1.0));
    assert_eq!(
        rpo.comparison_operator().map(|c| c.as_str()),
        Some("LessThanThreshold")
    );
    assert!(
        rpo.alarm_description().is_some_and(|d| d.contains("(15m)")),
        "{rpo:?}"
    );
    assert_eq!(
        alarms.metric_alarms().len(),
        6 + 2 * 3 + 2 + 2 * 2,
        "errors per function; per database (main, warehouse) age, RPO and verification; two \
         dead-letter queues; per database recovery point and retained WAL"
    );

    // Least privilege, from the policy documents applied.
    let state: serde_json::Value =
        serde_json::from_str(&terraform(&example, &["show", "-json"], &zips)).unwrap();
    for writer in ["backup", "stream"] {
        let grants = s3_grants(&role_policy(&state, writer));
        assert!(
            grants.iter().all(|(actions, _)| !actions
                .iter()
                .any(|a| a == "s3:DeleteObject" || a == "s3:*" || a == "s3:DeleteObjectVersion")),
            "the {writer} role may delete: {grants:?}"
        );
    }
    // Tier tags drive the lifecycle: a writer tags what it uploads and never retags an object
    // that has a tier tag; retention is not held back. (Each task role carries its function's
    // policy: container_task.)
    for writer in ["backup", "stream", "verify"] {
        assert!(
            denies_retagging(&role_policy(&state, writer), &bucket),
            "the {writer} role may retag existing objects: {}",
            role_policy(&state, writer)
        );
    }
    assert!(
        !denies_retagging(&role_policy(&state, "retention"), &bucket),
        "the retention role may not retag: {}",
        role_policy(&state, "retention")
    );

    // No function's failed events go into the topic that feeds it (a Slack outage would
    // loop through notify-slack): the subscriptions, read back from moto, against the
    // dead-letter and on-failure destinations the functions were applied with.
    let topic = outputs["alert_topic_arn"]["value"]
        .as_str()
        .unwrap()
        .to_string();
    let sns = aws_sdk_sns::Client::new(&aws);
    let subscribers: Vec<String> = sns
        .list_subscriptions_by_topic()
        .topic_arn(&topic)
        .send()
        .await
        .unwrap()
        .subscriptions()
        .iter()
        .filter(|s| s.protocol() == Some("lambda"))
        .filter_map(|s| s.endpoint().map(str::to_string))
        .collect();
    assert_eq!(
        subscribers.len(),
        1,
        "notify-slack is subscribed: {subscribers:?}"
    );
    let resource = |kind: &str, index: &str| -> serde_json::Value {
        state["values"]["root_module"]["child_modules"][0]["resources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["type"] == kind && r["name"] == "this" && r["index"] == index)
            .unwrap_or_else(|| panic!("no {kind}.this[{index}] in the state"))["values"]
            .clone()
    };
    // Encryption: the backup function gets the recipient (a public key) and cannot read the
    // identity that decrypts; the verify function may read it.
    let identity_secret = state["values"]["root_module"]["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["type"] == "aws_secretsmanager_secret" && r["name"] == "verify_identity")
        .expect("the example's identity secret")["values"]["arn"]
        .as_str()
        .unwrap()
        .to_string();
    let grants_secret = |function: &str| {
        role_policy(&state, function)["Statement"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s.to_string().contains(&identity_secret))
    };
    assert!(
        grants_secret("verify"),
        "the verify role reads the identity"
    );
    for function in ["backup", "stream", "monitor", "retention", "notify-slack"] {
        assert!(
            !grants_secret(function),
            "the {function} role may read the identity"
        );
    }
    let backup_env = &resource("aws_lambda_function", "backup")["environment"][0]["variables"];
    assert_eq!(backup_env["BACKSTOP_RECIPIENTS"], example_recipient());
    assert_eq!(backup_env["BACKSTOP_REQUIRE_ENCRYPTION"], "true");
    let stream_env = &resource("aws_lambda_function", "stream")["environment"][0]["variables"];
    assert_eq!(stream_env["BACKSTOP_RECIPIENTS"], example_recipient());
    assert_eq!(stream_env["BACKSTOP_STREAM_MAX_SLOT_WAL_MIB"], "10240");
    // Incremental backups: the backup and stream functions (and the backup task:
    // container_task) store shared chunks, named with the key in the example's secret, which
    // only their roles may read; the key itself is in no function's environment.
    let chunk_key_secret = state["values"]["root_module"]["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["type"] == "aws_secretsmanager_secret" && r["name"] == "chunk_key")
        .expect("the example's chunk key secret")["values"]["arn"]
        .as_str()
        .unwrap()
        .to_string();
    for (function, env) in [("backup", backup_env), ("stream", stream_env)] {
        assert_eq!(env["BACKSTOP_INCREMENTAL"], "true", "{function}: {env}");
        assert_eq!(
            env["BACKSTOP_CHUNK_KEY_SECRET"],
            chunk_key_secret.as_str(),
            "{function}: {env}"
        );
        let policy = role_policy(&state, function);
        let grant = policy["Statement"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["Sid"] == "ChunkKey")
            .unwrap_or_else(|| panic!("the {function} role may not read the chunk key: {policy}"));
        assert_eq!(grant["Action"], "secretsmanager:GetSecretValue");
        assert_eq!(grant["Resource"], chunk_key_secret.as_str());
    }
    for function in FUNCTIONS {
        let env = &resource("aws_lambda_function", function)["environment"][0]["variables"];
        assert!(
            env.get("BACKSTOP_CHUNK_KEY").is_none(),
            "{function} has the chunk key itself in its environment: {env}"
        );
        if !["backup", "stream"].contains(&function) {
            assert!(
                !role_policy(&state, function)
                    .to_string()
                    .contains(&chunk_key_secret),
                "the {function} role may read the chunk key"
            );
        }
    }
    // main's pooler: in the monitor's view of the databases, its secret readable by the monitor.
    let monitor_env = &resource("aws_lambda_function", "monitor")["environment"][0]["variables"];
    let databases: serde_json::Value =
        serde_json::from_str(monitor_env["BACKSTOP_DATABASES"].as_str().unwrap()).unwrap();
    let pooler_secret = databases["main"]["pooler"]["secret"]
        .as_str()
        .expect("main's pooler source")
        .to_string();
    assert!(pooler_secret.contains("backstop/example/main-pgbouncer"));
    assert!(
        role_policy(&state, "monitor")
            .to_string()
            .contains(&pooler_secret),
        "the monitor may read the pooler's secret"
    );
    let verify_env = &resource("aws_lambda_function", "verify")["environment"][0]["variables"];
    assert_eq!(
        verify_env["BACKSTOP_VERIFY_IDENTITY_SECRET"],
        identity_secret.as_str()
    );
    // moto keeps no dead-letter config, so that one comes from the module's output; the
    // on-failure destination is read back from moto.
    for function in FUNCTIONS {
        let applied = resource("aws_lambda_function", function);
        let dead_letters = outputs["failure_destinations"]["value"][function]
            .as_str()
            .unwrap()
            .to_string();
        let invoke = resource("aws_lambda_function_event_invoke_config", function);
        let on_failure = invoke["destination_config"][0]["on_failure"][0]["destination"]
            .as_str()
            .unwrap_or_else(|| panic!("{function}: no on-failure destination in {invoke}"))
            .to_string();
        if subscribers
            .iter()
            .any(|s| s == applied["arn"].as_str().unwrap())
        {
            assert!(
                dead_letters != topic && on_failure != topic,
                "{function} is fed by the topic and its failures go back into it"
            );
            assert!(dead_letters.contains(":sqs:") && on_failure == dead_letters);
        } else {
            assert_eq!(on_failure, topic, "{function}'s failures are alerts");
        }
    }
    let backup = resource("aws_lambda_function", "backup");
    assert_eq!(
        backup["reserved_concurrent_executions"].as_u64(),
        Some(MODULE_BACKUP_CONCURRENCY as u64)
    );
    assert_eq!(
        resource("aws_lambda_function_event_invoke_config", "backup")["maximum_event_age_in_seconds"]
            .as_u64(),
        Some(21600)
    );
    assert_eq!(
        resource("aws_lambda_function", "monitor")["memory_size"].as_u64(),
        Some(512)
    );
    assert_eq!(
        resource("aws_lambda_function", "verify")["memory_size"].as_u64(),
        Some(2048)
    );

    // The backup role may create objects, never replace backup data: the bucket policy, read
    // back from moto (which does not evaluate bucket policies against principals).
    let policy: serde_json::Value = serde_json::from_str(
        s3.get_bucket_policy()
            .bucket(&bucket)
            .send()
            .await
            .unwrap()
            .policy()
            .unwrap(),
    )
    .unwrap();
    let backup_role = resource("aws_iam_role", "backup")["arn"]
        .as_str()
        .unwrap()
        .to_string();
    let never_replace = policy["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["Sid"] == "BackupRoleNeverReplacesBackupData")
        .expect("the create-only statement");
    assert_eq!(never_replace["Effect"], "Deny");
    let stream_role = resource("aws_iam_role", "stream")["arn"]
        .as_str()
        .unwrap()
        .to_string();
    let mut writers: Vec<String> = never_replace["Principal"]["AWS"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r.as_str().map(str::to_string))
        .collect();
    writers.sort();
    let backup_task_role = outputs["container_task"]["value"]["task_role"]
        .as_str()
        .unwrap()
        .to_string();
    let mut expected = vec![backup_role, stream_role, backup_task_role];
    expected.sort();
    assert_eq!(
        writers, expected,
        "backups and change segments are written once, by the functions and the backup task"
    );
    assert_eq!(never_replace["Action"], "s3:PutObject");
    let own_state = never_replace["NotResource"].as_str().unwrap();
    assert!(
        own_state.ends_with("/backups/_backstop/*"),
        "{never_replace}"
    );
    // Shared chunks sit beside the sets, outside _backstop/: written create-only too.
    assert!(
        !format!("arn:aws:s3:::{bucket}/backups/main/chunks/ab/ab12.zst.age")
            .starts_with(own_state.trim_end_matches('*')),
        "{never_replace}"
    );
    assert_eq!(
        never_replace["Condition"]["Null"]["s3:if-none-match"],
        "true"
    );
    assert_eq!(
        never_replace["Condition"]["Bool"]["s3:ObjectCreationOperation"],
        "true"
    );
    objectives::reads_back(&state, &outputs, &policy, &bucket);
    // Secrets under the example's own key: the roles that read them may decrypt it.
    let backup_policy = role_policy(&state, "backup");
    let secret_keys = backup_policy["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["Sid"] == "SecretKeys")
        .expect("kms:Decrypt on the secrets' key");
    assert_eq!(secret_keys["Action"], "kms:Decrypt");

    // Retention puts its own state, and the backup lease it holds while it deletes the shared
    // chunks no kept set names (a backup would otherwise name one meanwhile); never backup data.
    let retention_grants = s3_grants(&role_policy(&state, "retention"));
    let retention_puts: Vec<&String> = retention_grants
        .iter()
        .filter(|(actions, _)| actions.iter().any(|a| a == "s3:PutObject" || a == "s3:*"))
        .flat_map(|(_, resources)| resources)
        .collect();
    assert!(
        retention_puts
            .iter()
            .all(|r| r.ends_with("/_backstop/retention/*")
                || r.ends_with("/_backstop/locks/*/backup")),
        "the retention role may put backup data: {retention_puts:?}"
    );
    assert!(
        retention_puts
            .iter()
            .any(|r| r.ends_with("/backups/_backstop/locks/*/backup")),
        "the retention role may not take the backup lease: {retention_puts:?}"
    );
    // It deletes under every database, its shared chunks (<database>/chunks/) included.
    assert!(
        retention_grants
            .iter()
            .any(|(a, r)| a.iter().any(|a| a == "s3:DeleteObject")
                && r.contains(&format!("arn:aws:s3:::{bucket}/backups/*"))),
        "{retention_grants:?}"
    );
    // The backup role HEADs (s3:GetObject) the chunks it reuses and reads one it finds stored.
    assert!(
        s3_grants(&role_policy(&state, "backup"))
            .iter()
            .any(|(a, r)| a.iter().any(|a| a == "s3:GetObject")
                && r.contains(&format!("arn:aws:s3:::{bucket}/backups/*"))),
        "the backup role may not read chunks"
    );

    container_task::reads_back(&state, &outputs, &scheduler).await;

    terraform(
        &example,
        &["destroy", "-auto-approve", "-input=false", "-no-color"],
        &zips,
    );
    assert!(
        s3.head_bucket().bucket(&bucket).send().await.is_err(),
        "the bucket was destroyed"
    );
}

/// Writes a root module calling infra/modules/backstop with `inputs` (HCL), and the zips in
/// ../zips unless `inputs` says where they are.
fn write_root(work: &Path, inputs: &str) -> PathBuf {
    write_root_calling(&work.join("root"), &module_call("backstop", inputs))
}

/// Writes a root module in `root` calling infra/modules/backstop once for each of `inputs`, as
/// `case_0`, `case_1`, ...: one `terraform validate` or plan judges them all, and each error
/// names the call it is about (`in module "case_3"`).
fn write_cases_root(root: &Path, inputs: &[&str]) -> PathBuf {
    let calls: String = inputs
        .iter()
        .enumerate()
        .map(|(i, inputs)| module_call(&format!("case_{i}"), inputs))
        .collect();
    write_root_calling(root, &calls)
}

/// A call of infra/modules/backstop named `name` with `inputs`, the zips in ../zips unless
/// `inputs` says where they are.
fn module_call(name: &str, inputs: &str) -> String {
    let artifacts = if inputs.contains("lambda_artifacts") {
        ""
    } else {
        "lambda_artifacts = { dir = \"../zips\" }"
    };
    format!(
        "module \"{name}\" {{\n  source = \"../infra/modules/backstop\"\n  \
         {artifacts}\n  {inputs}\n}}\n"
    )
}

/// Writes `root/main.tf`: the AWS provider and `calls`.
fn write_root_calling(root: &Path, calls: &str) -> PathBuf {
    std::fs::create_dir_all(root).unwrap();
    std::fs::write(
        root.join("main.tf"),
        format!("provider \"aws\" {{\n  region = \"us-east-1\"\n}}\n{calls}"),
    )
    .unwrap();
    root.to_path_buf()
}

/// The diagnostics in what terraform printed, each from its `Error:` or `Warning:` line to the
/// next one.
fn diagnostics(text: &str) -> Vec<String> {
    let mut all: Vec<String> = Vec::new();
    for line in text.lines() {
        if all.is_empty() || line.starts_with("Error: ") || line.starts_with("Warning: ") {
            all.push(String::new());
        }
        let last = all.last_mut().unwrap();
        last.push_str(line);
        last.push('\n');
    }
    all
}

/// Runs terraform offline (the provider mirror) in `root`: success and what it printed.
fn terraform_offline(root: &Path, args: &[&str]) -> (bool, String) {
    let output = Command::new("terraform")
        .current_dir(root)
        .args(args)
        .env(
            "TF_CLI_CONFIG_FILE",
            backstop_tests::workspace_root().join("infra/terraformrc"),
        )
        .env("CHECKPOINT_DISABLE", "1")
        .output()
        .expect("terraform is on PATH (machine image)");
    (
        output.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ),
    )
}

/// A folder with infra/ and stand-in zips in zips/ for [`write_root`]'s root modules.
fn module_workspace() -> tempfile::TempDir {
    let work = tempfile::tempdir().unwrap();
    copy_dir(
        &backstop_tests::workspace_root().join("infra"),
        &work.path().join("infra"),
    );
    for function in FUNCTIONS {
        let dir = work.path().join("zips").join(function);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("bootstrap.zip"), b"zip").unwrap();
    }
    work
}

/// The root module with `inputs`, validated.
fn validate(work: &Path, inputs: &str) -> (bool, String) {
    let root = write_root(work, inputs);
    terraform_offline(&root, &["validate", "-no-color"])
}

/// The root module with `inputs`, its provider pointed at moto.
fn write_moto_root(work: &Path, inputs: &str) -> PathBuf {
    let root = write_root(work, inputs);
    point_at_moto(&root);
    root
}

/// Points the provider of the root module in `root` at moto.
fn point_at_moto(root: &Path) {
    let endpoint = &moto().endpoint;
    let services = [
        "cloudwatch",
        "cloudwatchlogs",
        "iam",
        "kms",
        "lambda",
        "s3",
        "scheduler",
        "sns",
        "sqs",
        "sts",
    ];
    let endpoints: String = services
        .iter()
        .map(|s| format!("    {s} = \"{endpoint}\"\n"))
        .collect();
    let main = std::fs::read_to_string(root.join("main.tf")).unwrap();
    std::fs::write(
        root.join("main.tf"),
        main.replace(
            "provider \"aws\" {\n  region = \"us-east-1\"\n}\n",
            &format!(
                "provider \"aws\" {{\n  region = \"us-east-1\"\n  access_key = \"test\"\n  secret_key = \"test\"\n  \
                 skip_credentials_validation = true\n  skip_metadata_api_check = true\n  s3_use_path_style = true\n  \
                 endpoints {{\n{endpoints}  }}\n}}\n"
            ),
        ),
    )
    .unwrap();
}

/// The root module with `inputs`, planned against moto (for rules across two inputs, which
/// `terraform validate` cannot judge: it leaves the other input unknown).
fn plan(work: &Path, inputs: &str) -> (bool, String) {
    let root = write_moto_root(work, inputs);
    terraform_offline(
        &root,
        &["plan", "-input=false", "-no-color", "-refresh=false"],
    )
}

/// Each invalid input, and each "enabled ⇒ ARN given" pair left half-set, is refused by
/// `terraform validate` with its own message; a one-field override of one function is not.
/// (A rule across two variables, such as runner = "fargate" without fargate.enabled or
/// fargate.enabled without any subnets, is checked at plan: validate leaves the other
/// variable unknown.)
#[test]
#[ignore = "needs terraform and the provider mirror: run by make infra-check"]
fn terraform_validate_refuses_each_invalid_input_with_its_message() {
    let work = module_workspace();
    let database = r#"databases = { main = { secret_arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:db" } }"#;
    let root = write_root(work.path(), database);
    let (ok, text) = terraform_offline(
        &root,
        &["init", "-backend=false", "-input=false", "-no-color"],
    );
    assert!(ok, "{text}");

    let (ok, text) = validate(
        work.path(),
        &format!(
            "{database}\n  functions = {{ backup = {{ memory = 4096 }} }}\n  \
             objectives = {{ restore_test_every = \"36600d\" }}"
        ),
    );
    assert!(
        ok,
        "a one-field override, and an objective of a hundred years exactly, are valid: {text}"
    );

    let cases = [
        (
            r#"databases = { main = { secret_arn = "arn:aws:secretsmanager:us-east-1:1:secret:db", sslmode = "verify_full" } }"#.to_string(),
            "sslmode must be one of disable, prefer, require, verify-ca, verify-full",
        ),
        (
            format!("{database}\n  object_lock = {{ mode = \"governance\", days = 7 }}"),
            "object_lock.mode must be GOVERNANCE or COMPLIANCE",
        ),
        (
            format!("{database}\n  tiers = {{ daily = {{ glacier_after_days = 30, expire_after_days = 90 }} }}"),
            "expire_after_days is no longer accepted",
        ),
        (
            format!("{database}\n  slack = {{ enabled = true }}"),
            "slack.enabled needs slack.webhook_secret_arn",
        ),
        (
            format!("{database}\n  restore_verification = {{ enabled = true }}"),
            "restore_verification.enabled needs restore_verification.scratch_secret_arn",
        ),
        (
            format!("{database}\n  functions = {{ verify = {{ timeout = 1200 }} }}"),
            "its timeout 1 to 900 s",
        ),
        (
            format!("{database}\n  recipients = [\"age1notakey\"]"),
            "recipients takes age X25519 recipients",
        ),
        (
            format!("{database}\n  verify_identity_secret_arn = \"backstop/identity\""),
            "verify_identity_secret_arn takes a Secrets Manager secret ARN",
        ),
        (
            format!("{database}\n  secret_kms_key_arns = [\"alias/backstop\"]"),
            "secret_kms_key_arns takes key ARNs",
        ),
        (
            format!("{database}\n  chunk_key_secret_arn = \"backstop/chunk-key\""),
            "chunk_key_secret_arn takes a Secrets Manager secret ARN",
        ),
        (
            format!("{database}\n  shared_chunks_instant_retrieval_after_days = 0"),
            "shared_chunks_instant_retrieval_after_days must be a whole number of days, at least 1",
        ),
        (
            r#"databases = { main = { secret_arn = "arn:aws:secretsmanager:us-east-1:1:secret:db", runner = "ecs" } }"#.to_string(),
            "runner must be lambda or fargate",
        ),
        (
            format!("{database}\n  fargate = {{ enabled = true, subnet_ids = [\"subnet-1\"] }}"),
            "fargate.enabled needs fargate.image_tag",
        ),
        (
            format!("{database}\n  fargate = {{ enabled = true, image_tag = \"0.1.0\", subnet_ids = [\"subnet-1\"], cpu = 3000 }}"),
            "fargate.cpu must be a Fargate size",
        ),
        (
            format!("{database}\n  freshness_hours = {{ warning = 30, critical = 24 }}"),
            "freshness_hours.critical above it",
        ),
        (
            format!("{database}\n  log_retention_days = 100"),
            "log_retention_days must be one of the values CloudWatch Logs takes",
        ),
        (
            format!("{database}\n  schedules = {{ backup = \"every 6 hours\" }}"),
            "Each schedule must be an EventBridge Scheduler expression",
        ),
        (
            format!("{database}\n  schedules = {{ monitor = \"rate(1 hours)\" }}"),
            "Each schedule must be an EventBridge Scheduler expression",
        ),
        (
            format!("{database}\n  point_in_time_recovery = {{ enabled = true, schedule = \"rate(0 minutes)\" }}"),
            "point_in_time_recovery.schedule must be an EventBridge Scheduler expression",
        ),
        (
            format!("{database}\n  retention_policy = {{ keep_daily = -1 }}"),
            "retention_policy's keep counts must be whole numbers, 0 or more",
        ),
        (
            format!("{database}\n  name = \"Backstop_Prod\""),
            "name must be 1 to 35 lower-case letters, digits and hyphens",
        ),
        (
            format!("{database}\n  tiers = {{ hourly = {{ glacier_after_days = 1 }} }}"),
            "tiers takes daily, weekly and monthly",
        ),
        (
            format!("{database}\n  noncurrent_version_expiration_days = 0"),
            "noncurrent_version_expiration_days must be a whole number of days, at least 1",
        ),
        (
            format!("{database}\n  alert_emails = [\"oncall\"]"),
            "alert_emails takes e-mail addresses",
        ),
        (
            format!("{database}\n  iam_path = \"backstop\""),
            "iam_path must start and end with /",
        ),
        (
            format!("{database}\n  permissions_boundary_arn = \"boundary\""),
            "permissions_boundary_arn takes an IAM policy ARN",
        ),
        (
            format!("{database}\n  lambda_artifacts = {{ dir = \"../zips\", s3_bucket = \"releases\", s3_prefix = \"backstop-0.1.0\" }}"),
            "lambda_artifacts takes either dir",
        ),
        (
            format!("{database}\n  lambda_artifacts = {{ s3_bucket = \"s3://releases\", s3_prefix = \"backstop-0.1.0\" }}"),
            "lambda_artifacts.s3_bucket must be an S3 bucket name",
        ),
        (
            format!("{database}\n  lambda_artifacts = {{ s3_bucket = \"releases\", s3_prefix = \"releases/backstop-0.1.0/\" }}"),
            "without a leading or trailing slash",
        ),
        (
            format!("{database}\n  kms_key_arn = \"alias/backstop\""),
            "kms_key_arn takes a key ARN",
        ),
        (
            format!("{database}\n  bucket_name = \"s3://acme-backups\""),
            "bucket_name must be an S3 bucket name",
        ),
        (
            format!("{database}\n  alert_topic_arn = \"backstop-alerts\""),
            "alert_topic_arn takes an SNS topic ARN",
        ),
        (
            r#"databases = { main = { secret_arn = "arn:aws:secretsmanager:us-east-1:1:secret:db", objectives = { rpo = "1 hour" } } }"#.to_string(),
            "Each database's objectives (rpo, rto, restore_test_every) must be durations such as 30m",
        ),
        (
            r#"databases = { main = { secret_arn = "arn:aws:secretsmanager:us-east-1:1:secret:db", objectives = { rto = "0m" } } }"#.to_string(),
            "Each database's objectives (rpo, rto, restore_test_every) must be durations such as 30m",
        ),
        (
            format!("{database}\n  objectives = {{ restore_test_every = \"1M\" }}"),
            "objectives (rpo, rto, restore_test_every) must be durations such as 30m, 90m, 4h",
        ),
        // More than a hundred years (100 × 366 days), which the monitor refuses.
        (
            r#"databases = { main = { secret_arn = "arn:aws:secretsmanager:us-east-1:1:secret:db", objectives = { rpo = "36600d 1s" } } }"#.to_string(),
            "Each database's objectives (rpo, rto, restore_test_every) must be at most a hundred years (36600d)",
        ),
        (
            format!("{database}\n  objectives = {{ rto = \"5229w\" }}"),
            "objectives (rpo, rto, restore_test_every) must be at most a hundred years (36600d), the longest the monitor reads. Not one: objectives.rto = \"5229w\"",
        ),
    ];
    // Rules across two inputs, refused at plan.
    let plan_cases = [
        (
            format!(
                "{database}\n  bucket_name = \"acme-backups\"\n  object_lock = {{ mode = \"GOVERNANCE\", days = 7 }}"
            ),
            "object_lock applies to a bucket the module makes",
        ),
        (
            format!(
                "{database}\n  restore_verification = {{ enabled = true, scratch_secret_arn = \"arn:aws:secretsmanager:us-east-1:123456789012:secret:db\" }}"
            ),
            "scratch_secret_arn is one of the databases' own secrets",
        ),
        (
            format!(
                "{database}\n  lambda_artifacts = {{ s3_bucket = \"releases\", s3_objects = {{ backup = {{ key = \"backup.zip\" }} }} }}"
            ),
            "lambda_artifacts.s3_objects needs an object for each function",
        ),
    ];
    // The table of what is refused and what it says, for the module's docs.
    let mut table = String::from("| Input | Refused at | Message |\n|---|---|---|\n");
    // Each invalid input in a module call of its own, all in one root module: one validate
    // (each run loads the provider's schema, seconds) refuses every call, each for its own
    // reason; the same for the rules across two inputs, in one plan against moto.
    for (stage, cases) in [("validate", &cases[..]), ("plan", &plan_cases[..])] {
        let inputs: Vec<&str> = cases.iter().map(|(inputs, _)| inputs.as_str()).collect();
        let root = write_cases_root(&work.path().join(stage), &inputs);
        if stage == "plan" {
            point_at_moto(&root);
        }
        let (ok, text) = terraform_offline(
            &root,
            &["init", "-backend=false", "-input=false", "-no-color"],
        );
        assert!(ok, "{text}");
        let (ok, text) = if stage == "validate" {
            terraform_offline(&root, &["validate", "-no-color"])
        } else {
            terraform_offline(
                &root,
                &["plan", "-input=false", "-no-color", "-refresh=false"],
            )
        };
        assert!(!ok, "{stage} accepted: {inputs:#?}");
        let found = diagnostics(&text);
        for (i, (inputs, message)) in cases.iter().enumerate() {
            let call = format!("in module \"case_{i}\":");
            let said = found
                .iter()
                .filter(|d| d.contains(&call))
                .flat_map(|d| d.split("\n\n"))
                .map(|paragraph| paragraph.replace('\n', " "))
                .find(|paragraph| paragraph.contains(message));
            let Some(said) = said else {
                panic!("{inputs}: accepted, or refused without {message:?}, at {stage}:\n{text}");
            };
            let input = inputs.strip_prefix(database).unwrap_or(inputs).trim();
            table.push_str(&format!(
                "| `{}` | {stage} | {} |\n",
                input.replace('|', "\\|"),
                said.trim().replace('|', "\\|")
            ));
        }
    }
    let path = backstop_tests::workspace_root().join("target/infra-bad-inputs.md");
    std::fs::write(&path, table).unwrap();
}

/// Encrypted incremental backups without a chunk key are planned with a warning, not refused
/// (they are taken, storing whole parts), that says how to make the key; with a chunk key, or
/// with incremental backups off, there is nothing to warn of.
#[test]
#[ignore = "needs terraform and the provider mirror: run by make infra-check"]
fn plan_warns_of_encrypted_incremental_backups_without_a_chunk_key() {
    let work = module_workspace();
    let inputs = |more: &str| {
        format!(
            "databases = {{ main = {{ secret_arn = \"arn:aws:secretsmanager:us-east-1:123456789012:secret:db\" }} }}\n  \
             recipients = [\"{}\"]\n  {more}",
            example_recipient()
        )
    };
    let root = write_moto_root(work.path(), &inputs(""));
    let (ok, text) = terraform_offline(&root, &["init", "-input=false", "-no-color"]);
    assert!(ok, "{text}");
    // Terraform wraps a diagnostic's lines: compare words.
    let words = |text: &str| text.split_whitespace().collect::<Vec<_>>().join(" ");
    let warning = "encrypted backups then store whole parts";

    let (ok, text) = plan(work.path(), &inputs(""));
    assert!(ok, "a warning, not an error: {text}");
    let said = words(&text);
    assert!(
        said.contains("Check block assertion failed")
            && said.contains(warning)
            && said.contains("openssl rand -hex 32")
            && said.contains("chunk_key_secret_arn"),
        "{text}"
    );
    for more in [
        "chunk_key_secret_arn = \"arn:aws:secretsmanager:us-east-1:123456789012:secret:chunk-key\"",
        "incremental_backups = false",
    ] {
        let (ok, text) = plan(work.path(), &inputs(more));
        assert!(ok, "{more}: {text}");
        assert!(!words(&text).contains(warning), "{more}: {text}");
    }
}

/// The `cargo lambda` that `make infra-deps` installs.
fn cargo_lambda() -> Option<PathBuf> {
    let path = backstop_tests::workspace_root().join(".venv-tools/bin/cargo-lambda");
    assert!(
        path.exists(),
        "{} is missing; run `make infra-deps`",
        path.display()
    );
    Some(path)
}

/// A process group that is ended (SIGTERM, then SIGKILL) when dropped.
struct ProcessGroup(backstop_tests::service::Service);

impl Drop for ProcessGroup {
    fn drop(&mut self) {
        self.0.stop_group(std::time::Duration::from_secs(10));
    }
}

/// The backup function binary the workspace build left, polling the Lambda Runtime API that
/// `cargo lambda watch --only-lambda-apis` emulates, answers `cargo lambda invoke` with a
/// committed backup of a harness database into a moto bucket, and the backup is there. (The
/// emulator does not build the function: a build of its own would compile the dependencies
/// again with the function's feature set alone.)
#[tokio::test]
#[ignore = "needs cargo-lambda: run by make infra-check"]
async fn the_backup_function_answers_under_cargo_lambda_watch() {
    use std::os::unix::process::CommandExt;

    let Some(cargo_lambda) = cargo_lambda() else {
        return;
    };
    let root = backstop_tests::workspace_root();
    let function = crate::support::backstop_bin().with_file_name("backup");
    assert!(
        function.exists(),
        "{} is missing; run `cargo build --workspace --bins`",
        function.display()
    );
    let db = backstop_tests::postgres::fresh_database("watch");
    db.psql(
        "CREATE TABLE orders (id bigint PRIMARY KEY, note text);
         INSERT INTO orders SELECT g, 'order ' || g FROM generate_series(1, 1234) g;",
    );
    let bucket = moto().new_bucket("watch").await;

    let work = tempfile::tempdir().unwrap();
    let port = backstop_tests::free_port().to_string();
    let log = std::fs::File::create(work.path().join("watch.log")).unwrap();
    let mut watch = Command::new(&cargo_lambda);
    watch
        .current_dir(&root)
        .args([
            "lambda",
            "watch",
            "--only-lambda-apis",
            "-A",
            "127.0.0.1",
            "-P",
        ])
        .arg(&port)
        .args(["--timeout", "600"])
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .process_group(0);
    let watch = ProcessGroup(backstop_tests::service::spawn(watch, libc::SIGTERM).unwrap());
    let watch_log = || std::fs::read_to_string(work.path().join("watch.log")).unwrap_or_default();
    // The function polls the emulator from its first moment and ends if nobody listens: it
    // starts once the emulator does.
    let listening = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while std::net::TcpStream::connect(("127.0.0.1", port.parse::<u16>().unwrap())).is_err() {
        assert!(
            std::time::Instant::now() < listening && !watch.0.has_exited(),
            "`cargo lambda watch` did not listen on {port}:\n{}",
            watch_log()
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }

    // The function, with the environment the emulator asks for and the module would set.
    let function_log = std::fs::File::create(work.path().join("function.log")).unwrap();
    let mut run = Command::new(&function);
    run.env(
        "AWS_LAMBDA_RUNTIME_API",
        format!("http://127.0.0.1:{port}/.rt"),
    )
    .env("AWS_LAMBDA_FUNCTION_NAME", "_")
    .env("AWS_LAMBDA_FUNCTION_VERSION", "1")
    .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "1024")
    .env("BACKSTOP_STORE", format!("s3://{bucket}/backups"))
    .env(
        "BACKSTOP_DATABASES",
        r#"{"main":{"url_env":"MAIN_DATABASE_URL"}}"#,
    )
    .env("MAIN_DATABASE_URL", db.url())
    .envs(moto().env())
    .stdout(function_log.try_clone().unwrap())
    .stderr(function_log)
    .process_group(0);
    let function = ProcessGroup(backstop_tests::service::spawn(run, libc::SIGTERM).unwrap());
    let function_log =
        || std::fs::read_to_string(work.path().join("function.log")).unwrap_or_default();

    let invoke = |payload: &str| {
        let file = work.path().join("payload.json");
        std::fs::write(&file, payload).unwrap();
        // Bounded: an invocation waits for the function to answer, and a function that
        // died never will.
        let mut child = Command::new(&cargo_lambda)
            .current_dir(&root)
            .args(["lambda", "invoke", "-A", "127.0.0.1", "-P"])
            .arg(&port)
            .arg("--data-file")
            .arg(&file)
            .args(["--output-format", "json"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let answer_by = std::time::Instant::now() + std::time::Duration::from_secs(120);
        while child.try_wait().unwrap().is_none() {
            if std::time::Instant::now() > answer_by {
                let _ = child.kill();
                panic!(
                    "`cargo lambda invoke` had no answer in 120 s:\n{}\n{}",
                    watch_log(),
                    function_log()
                );
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        let output = child.wait_with_output().unwrap();
        (
            output.status.success(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    };

    // The emulator may not listen yet while it starts; retry only that.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    let answer = loop {
        let (answered, answer, stderr) =
            invoke(r#"{"database": "main", "tier": "weekly", "reason": "cargo lambda watch"}"#);
        if answered {
            break answer;
        }
        assert!(
            stderr.contains("error sending request to the runtime emulator"),
            "the backup invocation failed:\n{stderr}\n{}\n{}",
            watch_log(),
            function_log()
        );
        for (what, process) in [
            ("`cargo lambda watch`", &watch),
            ("the function", &function),
        ] {
            assert!(
                !process.0.has_exited(),
                "{what} ended:\n{}\n{}",
                watch_log(),
                function_log()
            );
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no answer from the function under `cargo lambda watch`:\n{stderr}\n{}\n{}",
            watch_log(),
            function_log()
        );
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    };

    let answer: serde_json::Value = serde_json::from_str(&answer)
        .unwrap_or_else(|e| panic!("the answer is not JSON ({e}): {answer}"));
    let done = &answer["backups"][0];
    assert_eq!(done["database"], "main", "{answer}");
    assert_eq!(done["tier"], "weekly", "{answer}");
    assert_eq!(done["rows"], 1234, "{answer}");
    assert_manifest_stored(&bucket, done).await;
}

/// The manifest of the backup a job answered with (`done`, one of its `backups`) is in
/// `bucket` under the `backups` prefix.
async fn assert_manifest_stored(bucket: &str, done: &serde_json::Value) {
    let manifest = format!(
        "backups/{}/{}/manifest.json",
        done["database"].as_str().unwrap(),
        done["backup_id"].as_str().unwrap()
    );
    let head = backstop::aws::s3_client(&moto().sdk_config().await)
        .head_object()
        .bucket(bucket)
        .key(&manifest)
        .send()
        .await;
    assert!(head.is_ok(), "{manifest} is not in the bucket: {head:?}");
}
