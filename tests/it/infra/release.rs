//! A deploy without a Rust toolchain: `scripts/release.sh` (what `make release` runs after
//! building) packs the zips, the image and the CLI with a SHA256SUMS that checks, and uploads
//! them to moto's S3; then infra/ alone, copied where no build ever ran, plans and applies
//! examples/minimal from that release, and every function runs exactly the released zip.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use backstop_tests::moto::moto;
use base64::Engine;

use super::{FUNCTIONS, copy_dir};

/// SHA256SUMS: path => hex digest.
fn sums(dist: &Path) -> BTreeMap<String, String> {
    std::fs::read_to_string(dist.join("SHA256SUMS"))
        .unwrap()
        .lines()
        .map(|line| {
            let (digest, path) = line.split_once("  ").expect("sha256sum's format");
            (path.to_string(), digest.to_string())
        })
        .collect()
}

fn hex_to_base64(hex: &str) -> String {
    let bytes: Vec<u8> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect();
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Runs `program args` in `dir` against moto; its standard output, or a failure with both outputs.
fn run(dir: &Path, program: &str, args: &[&str], extra: &[(&str, String)]) -> String {
    let mut command = Command::new(program);
    command
        .current_dir(dir)
        .args(args)
        .env("CHECKPOINT_DISABLE", "1")
        .env("TF_IN_AUTOMATION", "1")
        .env("AWS_DEFAULT_REGION", "us-east-1");
    for (name, value) in moto().env().into_iter().chain(extra.iter().cloned()) {
        command.env(name, value);
    }
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e}"));
    assert!(
        output.status.success(),
        "{program} {} failed:\n{}\n{}",
        args.join(" "),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Every aws_lambda_function in a `terraform show -json` document's root module tree.
fn functions(document: &serde_json::Value, values: &str) -> Vec<serde_json::Value> {
    fn walk(module: &serde_json::Value, out: &mut Vec<serde_json::Value>) {
        for resource in module["resources"].as_array().into_iter().flatten() {
            if resource["type"] == "aws_lambda_function" {
                out.push(resource["values"].clone());
            }
        }
        for child in module["child_modules"].as_array().into_iter().flatten() {
            walk(child, out);
        }
    }
    let mut out = Vec::new();
    walk(&document[values]["root_module"], &mut out);
    out
}

#[tokio::test]
#[ignore = "needs terraform, the provider mirror and the built artifacts: run by make infra-check"]
async fn the_minimal_example_deploys_from_a_release_in_s3_without_a_build() {
    let root = backstop_tests::workspace_root();
    let aws = moto().sdk_config().await;
    let s3 = aws_sdk_s3::Client::new(&aws);
    let bucket = format!("releases-{}", std::process::id());
    s3.create_bucket().bucket(&bucket).send().await.unwrap();

    // The release, packed and uploaded.
    let dist = tempfile::tempdir().unwrap();
    let released = run(
        &root,
        "scripts/release.sh",
        &[],
        &[
            ("RELEASE_DIR", dist.path().display().to_string()),
            ("RELEASE_S3_URI", format!("s3://{bucket}/releases/")),
            // What CI builds: the image the module deploys, the CLI for both architectures.
            ("IMAGE_ARCHES", "arm64".to_string()),
            ("CLI_ARCHES", "amd64 arm64".to_string()),
        ],
    );
    let version = std::fs::read_to_string(root.join("Cargo.toml"))
        .unwrap()
        .lines()
        .find_map(|l| {
            l.strip_prefix("version = \"")?
                .strip_suffix('"')
                .map(str::to_string)
        })
        .unwrap();
    let release = dist.path().join(format!("backstop-{version}"));
    run(
        &release,
        "sha256sum",
        &["--check", "--quiet", "SHA256SUMS"],
        &[],
    );
    let sums = sums(&release);
    assert!(
        released.contains(&format!("{} uploaded", sums.len() + 1)),
        "{released}"
    );
    for expected in [
        "VERSION",
        "image/backstop-arm64.oci.tar",
        "cli/backstop-linux-amd64",
        "cli/backstop-linux-arm64",
    ] {
        assert!(sums.contains_key(expected), "{expected} not in {sums:?}");
    }
    let prefix = format!("releases/backstop-{version}");
    let listed = s3
        .list_objects_v2()
        .bucket(&bucket)
        .prefix(format!("{prefix}/"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        listed.contents().len(),
        sums.len() + 1,
        "every file and SHA256SUMS uploaded"
    );

    // A checkout of infra/ alone: no target/, no zip, no Cargo.
    let checkout = tempfile::tempdir().unwrap();
    copy_dir(&root.join("infra"), &checkout.path().join("infra"));
    let example = checkout.path().join("infra/examples/minimal");
    let secret = aws_sdk_secretsmanager::Client::new(&aws)
        .create_secret()
        .name(format!("release-test/{}", std::process::id()))
        .secret_string("postgresql://backstop:secret@db.internal:5432/app")
        .send()
        .await
        .unwrap();
    let vars = [
        (
            "TF_CLI_CONFIG_FILE",
            root.join("infra/terraformrc").display().to_string(),
        ),
        ("TF_VAR_aws_endpoint", moto().endpoint.clone()),
        ("TF_VAR_region", "us-east-1".to_string()),
        (
            "TF_VAR_database_secret_arn",
            secret.arn().unwrap().to_string(),
        ),
        (
            "TF_VAR_alert_emails",
            r#"["oncall@example.com"]"#.to_string(),
        ),
        ("TF_VAR_release_bucket", bucket.clone()),
        ("TF_VAR_release_prefix", prefix.clone()),
    ];
    run(
        &example,
        "terraform",
        &["init", "-input=false", "-no-color"],
        &vars,
    );
    run(
        &example,
        "terraform",
        &["plan", "-input=false", "-no-color", "-out=plan.bin"],
        &vars,
    );
    let plan: serde_json::Value = serde_json::from_str(&run(
        &example,
        "terraform",
        &["show", "-json", "plan.bin"],
        &vars,
    ))
    .unwrap();
    let planned = functions(&plan, "planned_values");
    let released_functions: Vec<&str> = FUNCTIONS
        .iter()
        .copied()
        .filter(|f| *f != "stream") // point-in-time recovery is off in the minimal example
        .collect();
    assert_eq!(planned.len(), released_functions.len(), "{planned:#?}");
    let hash_of = |function: &str| hex_to_base64(&sums[&format!("lambda/arm64/{function}.zip")]);
    for function in &released_functions {
        let values = planned
            .iter()
            .find(|f| f["function_name"] == format!("backstop-{function}"))
            .unwrap_or_else(|| panic!("backstop-{function} is not planned"));
        assert_eq!(values["s3_bucket"], bucket.as_str());
        assert_eq!(
            values["s3_key"],
            format!("{prefix}/lambda/arm64/{function}.zip")
        );
        assert_eq!(values["source_code_hash"], hash_of(function), "{function}");
        assert!(
            values["filename"].is_null(),
            "{function} from S3, not a file"
        );
    }

    // Applied: each function holds the released zip, byte for byte.
    run(
        &example,
        "terraform",
        &["apply", "-input=false", "-no-color", "plan.bin"],
        &vars,
    );
    let state: serde_json::Value =
        serde_json::from_str(&run(&example, "terraform", &["show", "-json"], &vars)).unwrap();
    let deployed = functions(&state, "values");
    for function in &released_functions {
        let values = deployed
            .iter()
            .find(|f| f["function_name"] == format!("backstop-{function}"))
            .unwrap();
        assert_eq!(values["code_sha256"], hash_of(function), "{function}");
    }
}
