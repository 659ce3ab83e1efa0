//! Encrypted backups: nothing of the database readable in the store, restore only with an
//! identity, one line without it, and damage caught by deep verification.

use std::path::{Path, PathBuf};

use backstop_tests::postgres::fresh_database;

use crate::engine::assert_same_dump;
use crate::support::{backstop, backstop_ok, single_error_line};

const MARKER: &str = "MARKER-c0ffee-4e21";

/// Every stored file under `dir`, raw and (when it is zstd) decompressed.
fn stored_bytes(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(folder) = pending.pop() {
        for entry in std::fs::read_dir(&folder).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                pending.push(path);
            } else {
                let raw = std::fs::read(&path).unwrap();
                if let Ok(plain) = zstd::decode_all(raw.as_slice()) {
                    files.push((path.clone(), plain));
                }
                files.push((path, raw));
            }
        }
    }
    files
}

fn keygen(dir: &Path, name: &str) -> (PathBuf, String) {
    let key = dir.join(name);
    let output = backstop_ok(&["keygen", "-o", key.to_str().unwrap()], &[]);
    let recipient = String::from_utf8_lossy(&output.stdout).trim().to_string();
    assert!(recipient.starts_with("age1"), "{recipient}");
    (key, recipient)
}

#[test]
fn an_encrypted_backup_keeps_nothing_readable_and_restores_only_with_its_identity() {
    let source = fresh_database("encrypted");
    source.psql(&format!(
        "CREATE TABLE public.ledger_secretive (id int PRIMARY KEY, note text, amount_hidden numeric);
         INSERT INTO public.ledger_secretive SELECT g, '{MARKER}-' || g, g * 1.25 FROM generate_series(1, 2000) g;
         CREATE FUNCTION public.whisper_fn() RETURNS text LANGUAGE sql AS $$ SELECT 'whispered-body-9d1' $$;
         SELECT lo_from_bytea(0, convert_to('{MARKER} in a large object', 'UTF8'));"
    ));
    let dir = tempfile::tempdir().unwrap();
    let (key, recipient) = keygen(dir.path(), "restore.key");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "the identity is readable by its owner only");
    }
    let (other_key, _) = keygen(dir.path(), "other.key");
    let store_dir = dir.path().join("store");
    let store = format!("file://{}", store_dir.display());
    backstop_ok(
        &[
            "backup",
            "--db",
            &source.url(),
            "--to",
            &store,
            "--recipient",
            &recipient,
        ],
        &[],
    );

    let stored = stored_bytes(&store_dir);
    assert!(stored.len() >= 5, "{} objects", stored.len());
    for (path, bytes) in &stored {
        let text = String::from_utf8_lossy(bytes);
        for secret in [
            MARKER,
            "ledger_secretive",
            "amount_hidden",
            "whisper_fn",
            "whispered-body-9d1",
        ] {
            assert!(
                !text.contains(secret),
                "{secret} is readable in {}",
                path.display()
            );
        }
        // The file store's own sidecars (`.<name>.tags.json`) hold the tier tag only.
        let name = path.file_name().unwrap().to_string_lossy();
        let in_set = path.starts_with(store_dir.join(&source.name));
        assert!(
            !in_set
                || name == "manifest.json"
                || name.ends_with(".age")
                || name.ends_with(".tags.json"),
            "{} is not encrypted",
            path.display()
        );
    }

    let restore = |extra: &[&str]| {
        let target = fresh_database("encrypted restored");
        let mut args = vec![
            "restore",
            "--from",
            &store,
            "--database-id",
            &source.name,
            "--db",
        ];
        let url = target.url();
        args.push(&url);
        args.extend_from_slice(extra);
        (backstop(&args, &[]), target)
    };
    let (without, _) = restore(&[]);
    let line = single_error_line(&without);
    assert!(
        line.contains(&recipient) && line.contains("--identity"),
        "{line}"
    );
    let (wrong, _) = restore(&["--identity", other_key.to_str().unwrap()]);
    let line = single_error_line(&wrong);
    assert!(line.contains(&recipient), "{line}");
    let (restored, target) = restore(&["--identity", key.to_str().unwrap()]);
    assert!(
        restored.status.success(),
        "{}",
        String::from_utf8_lossy(&restored.stderr)
    );
    assert_same_dump(&source.pg_dump(), &target.pg_dump(), "encrypted");

    // Deep verification reads every part through its identity, and names a damaged one.
    let verify = |extra: &[&str]| {
        let mut args = vec![
            "verify",
            "--from",
            &store,
            "--database-id",
            &source.name,
            "--level",
            "deep",
        ];
        args.extend_from_slice(extra);
        backstop(&args, &[])
    };
    let key_arg = key.to_str().unwrap();
    assert!(verify(&["--identity", key_arg]).status.success());
    assert_eq!(
        verify(&[]).status.code(),
        Some(2),
        "no key: could not verify"
    );
    let part = stored
        .iter()
        .map(|(path, _)| path)
        .find(|p| {
            p.to_string_lossy().contains("/data/") && p.to_string_lossy().ends_with(".copy.zst.age")
        })
        .unwrap()
        .clone();
    let mut bytes = std::fs::read(&part).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    std::fs::write(&part, &bytes).unwrap();
    let damaged = verify(&["--identity", key_arg, "--json"]);
    assert_eq!(
        damaged.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&damaged.stderr)
    );
    let report = String::from_utf8_lossy(&damaged.stdout);
    let name = part.file_name().unwrap().to_string_lossy().to_string();
    assert!(
        report.contains(&name),
        "the damaged part is named: {report}"
    );
}

#[test]
fn a_required_encryption_refuses_a_backup_without_recipients_and_a_bad_recipient_is_refused() {
    let source = fresh_database("encryption required");
    source.psql("CREATE TABLE public.t (id int)");
    let dir = tempfile::tempdir().unwrap();
    let store = format!("file://{}/store", dir.path().display());
    let refused = backstop(
        &["backup", "--db", &source.url(), "--to", &store],
        &[("BACKSTOP_REQUIRE_ENCRYPTION", "true".into())],
    );
    let line = single_error_line(&refused);
    assert!(line.contains("BACKSTOP_REQUIRE_ENCRYPTION"), "{line}");
    let bad = backstop(
        &[
            "backup",
            "--db",
            &source.url(),
            "--to",
            &store,
            "--recipient",
            "age1notakey",
        ],
        &[],
    );
    let line = single_error_line(&bad);
    assert!(line.contains("age1notakey"), "{line}");
    assert!(!dir.path().join("store").exists(), "nothing was stored");
}

/// The functions as deployed: the backup function holds only the recipient and writes an
/// encrypted set to S3 (moto); the verify function reads its identity from Secrets Manager and
/// verifies that set at the restore level.
#[tokio::test]
async fn the_backup_function_encrypts_and_the_verify_function_restores_with_its_secret_identity() {
    use backstop::engine::verify::Verdict;
    use backstop_tests::moto::moto;
    use std::sync::Arc;
    use std::time::Duration;

    let db = fresh_database("encrypted functions");
    db.psql(&format!(
        "CREATE TABLE public.vault_rows (id int PRIMARY KEY, note text);
         INSERT INTO public.vault_rows SELECT g, '{MARKER}' FROM generate_series(1, 300) g;"
    ));
    let (identity, recipient) = backstop::engine::encryption::generate();
    let moto = moto();
    let bucket = moto.new_bucket("encrypted-functions").await;
    let inbox = moto.alert_inbox("encrypted-functions").await;
    let aws = moto.sdk_config().await;
    let secret = format!(
        "backstop/verify-identity-{}",
        backstop_tests::unique_suffix()
    );
    aws_sdk_secretsmanager::Client::new(&aws)
        .create_secret()
        .name(&secret)
        .secret_string(&identity)
        .send()
        .await
        .unwrap();
    let vars: Vec<(String, String)> = [
        ("BACKSTOP_STORE", format!("s3://{bucket}/prod")),
        (
            "BACKSTOP_DATABASES",
            serde_json::json!({ db.name.as_str(): {"url_env": "DB_URL"} }).to_string(),
        ),
        ("BACKSTOP_ALERT_TOPIC_ARN", inbox.topic_arn.clone()),
        ("DB_URL", db.url()),
        ("BACKSTOP_RECIPIENTS", recipient.clone()),
        ("BACKSTOP_REQUIRE_ENCRYPTION", "true".into()),
        ("BACKSTOP_SCRATCH", r#"{"url_env": "SCRATCH_URL"}"#.into()),
        (
            "SCRATCH_URL",
            backstop_tests::postgres::cluster().url("postgres"),
        ),
        ("BACKSTOP_VERIFY_IDENTITY_SECRET", secret),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let lookup = Arc::new(move |k: &str| vars.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()));
    let config = backstop::config::FunctionConfig::from_lookup(lookup.as_ref()).unwrap();
    let store = backstop::store::open(&config.store, &aws);
    let base = |name: &str| {
        common::Base::new(
            config.clone(),
            store.clone(),
            aws.clone(),
            lookup.clone(),
            name,
        )
    };

    let backup_deps = backup::Deps::new(base(backup::DEFAULT_NAME)).unwrap();
    let answer = backup::handler(
        crate::backup_lambda::invocation(
            serde_json::json!({ "database": db.name }),
            Duration::from_secs(900),
        ),
        &backup_deps,
    )
    .await
    .unwrap();
    let answer = serde_json::to_value(&answer).unwrap();
    let backup_id = answer["backups"][0]["backup_id"]
        .as_str()
        .unwrap()
        .to_string();
    let objects = store
        .list(&format!("{}/{backup_id}/", db.name))
        .await
        .unwrap();
    assert!(objects.len() >= 4);
    for object in &objects {
        assert!(
            object.key.ends_with("manifest.json") || object.key.ends_with(".age"),
            "{} is not encrypted",
            object.key
        );
        let bytes = crate::store_contract::read_all(store.as_ref(), &object.key).await;
        assert!(
            !String::from_utf8_lossy(&bytes).contains("vault_rows"),
            "{} names the table",
            object.key
        );
    }

    let verify_deps = verify::Deps::new(base(verify::DEFAULT_NAME)).unwrap();
    let response = verify::handler(
        crate::backup_lambda::invocation(
            serde_json::json!({ "database": db.name, "level": "restore" }),
            Duration::from_secs(900),
        ),
        &verify_deps,
    )
    .await
    .unwrap();
    assert_eq!(response.results.len(), 1);
    assert_eq!(
        response.results[0].verdict,
        Verdict::Passed,
        "{:?}",
        response.results[0].findings
    );
    assert!(response.results[0].restore_seconds.is_some());
}
