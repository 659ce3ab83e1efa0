//! A key, a bucket and a topic brought to the module (kms_key_arn, bucket_name,
//! alert_topic_arn): planned against moto, the module makes none of its own, leaves the bucket's
//! settings alone, and points every function, log group, alarm and subscription at what it was
//! given; a bucket name that does not exist fails at plan.

use super::{module_workspace, terraform_offline, write_moto_root};
use backstop_tests::moto::moto;

/// Every resource in a plan's root module tree: (type, values).
fn planned(plan: &serde_json::Value) -> Vec<(String, serde_json::Value)> {
    fn walk(module: &serde_json::Value, out: &mut Vec<(String, serde_json::Value)>) {
        for resource in module["resources"].as_array().into_iter().flatten() {
            if resource["mode"] == "managed" {
                out.push((
                    resource["type"].as_str().unwrap().to_string(),
                    resource["values"].clone(),
                ));
            }
        }
        for child in module["child_modules"].as_array().into_iter().flatten() {
            walk(child, out);
        }
    }
    let mut out = Vec::new();
    walk(&plan["planned_values"]["root_module"], &mut out);
    out
}

#[tokio::test]
#[ignore = "needs terraform and the provider mirror: run by make infra-check"]
async fn a_key_a_bucket_and_a_topic_can_be_brought() {
    let aws = moto().sdk_config().await;
    let bucket = format!("brought-backups-{}", std::process::id());
    aws_sdk_s3::Client::new(&aws)
        .create_bucket()
        .bucket(&bucket)
        .send()
        .await
        .unwrap();
    let topic = aws_sdk_sns::Client::new(&aws)
        .create_topic()
        .name(format!("brought-alerts-{}", std::process::id()))
        .send()
        .await
        .unwrap()
        .topic_arn()
        .unwrap()
        .to_string();
    let key = "arn:aws:kms:us-east-1:123456789012:key/0b4c7a57-5a0e-4e5f-9a51-1c2d3e4f5a6b";

    let work = module_workspace();
    let inputs = format!(
        "databases = {{ main = {{ secret_arn = \"arn:aws:secretsmanager:us-east-1:123456789012:secret:db\" }} }}\n  \
         alert_emails = [\"oncall@example.com\"]\n  \
         kms_key_arn = \"{key}\"\n  bucket_name = \"{bucket}\"\n  alert_topic_arn = \"{topic}\""
    );
    let root = write_moto_root(work.path(), &inputs);
    let (ok, text) = terraform_offline(&root, &["init", "-input=false", "-no-color"]);
    assert!(ok, "{text}");
    let (ok, text) = terraform_offline(
        &root,
        &["plan", "-input=false", "-no-color", "-out=plan.bin"],
    );
    assert!(ok, "{text}");
    let (ok, json) = terraform_offline(&root, &["show", "-json", "plan.bin"]);
    assert!(ok, "{json}");
    let plan: serde_json::Value = serde_json::from_str(&json).unwrap();
    let resources = planned(&plan);

    let made: Vec<&str> = resources
        .iter()
        .map(|(kind, _)| kind.as_str())
        .filter(|kind| {
            kind.starts_with("aws_s3_bucket")
                || kind.starts_with("aws_kms_")
                || *kind == "aws_sns_topic"
        })
        .collect();
    assert!(
        made.is_empty(),
        "nothing of its own, no bucket settings: {made:?}"
    );
    let of = |kind: &'static str| {
        resources
            .iter()
            .filter(move |(k, _)| k == kind)
            .map(|(_, v)| v)
    };
    for function in of("aws_lambda_function") {
        assert_eq!(
            function["kms_key_arn"], key,
            "{}",
            function["function_name"]
        );
        if function["function_name"] != "backstop-notify-slack" {
            let store = &function["environment"][0]["variables"]["BACKSTOP_STORE"];
            assert_eq!(store, &format!("s3://{bucket}/backups"));
        }
    }
    for group in of("aws_cloudwatch_log_group") {
        assert_eq!(group["kms_key_id"], key, "{}", group["name"]);
    }
    let subscriptions: Vec<_> = of("aws_sns_topic_subscription").collect();
    assert!(!subscriptions.is_empty());
    for subscription in subscriptions {
        assert_eq!(subscription["topic_arn"], topic.as_str());
    }
    for alarm in of("aws_cloudwatch_metric_alarm") {
        assert_eq!(
            alarm["alarm_actions"],
            serde_json::json!([topic]),
            "{}",
            alarm["alarm_name"]
        );
    }
    // A bucket that is not there fails at plan, before anything changes.
    let root = write_moto_root(
        work.path(),
        &inputs.replace(&bucket, "no-such-backup-bucket"),
    );
    let (ok, text) = terraform_offline(&root, &["plan", "-input=false", "-no-color"]);
    assert!(!ok && text.contains("no-such-backup-bucket"), "{text}");
}
