//! What the CLI says besides its results: AWS failures as one plain line with the fix, and
//! progress off a terminal as one line per phase.

use backstop_tests::postgres::{cluster, fresh_database};

use crate::support::{backstop_ok, single_error_line};

/// An S3 failure off a terminal is one line without colour codes or the SDK's debug dump,
/// naming the cause and the fix: an endpoint that refuses, and no credentials at all.
#[test]
fn aws_failures_are_one_plain_line_with_the_fix() {
    let closed = backstop_tests::service::free_port();
    let home = tempfile::tempdir().unwrap();
    let base = [
        ("AWS_REGION", "us-east-1".to_string()),
        ("AWS_EC2_METADATA_DISABLED", "true".to_string()),
        ("HOME", home.path().display().to_string()),
        ("AWS_MAX_ATTEMPTS", "1".to_string()),
    ];
    let with_keys: Vec<(&str, String)> = base
        .iter()
        .cloned()
        .chain([
            ("AWS_ENDPOINT_URL", format!("http://127.0.0.1:{closed}")),
            ("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE".to_string()),
            ("AWS_SECRET_ACCESS_KEY", "hunter2-secret-key".to_string()),
        ])
        .collect();
    let run = |env: &[(&str, String)]| {
        let mut command = std::process::Command::new(crate::support::backstop_bin());
        command.args(["list", "--from", "s3://backups/prod"]);
        for name in [
            "AWS_ENDPOINT_URL",
            "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY",
            "AWS_SESSION_TOKEN",
            "AWS_PROFILE",
            "AWS_CONFIG_FILE",
            "AWS_SHARED_CREDENTIALS_FILE",
            "RUST_LOG",
        ] {
            command.env_remove(name);
        }
        command.envs(env.iter().map(|(k, v)| (*k, v.as_str())));
        command.output().unwrap()
    };
    for (env, fix) in [
        (with_keys.as_slice(), "refused the connection"),
        (&base[..], "no AWS credentials were found"),
    ] {
        let output = run(env);
        let line = single_error_line(&output);
        assert!(line.contains(fix), "{line}");
        assert!(!line.contains('\u{1b}'), "colour codes: {line:?}");
        assert!(
            !line.contains("DispatchFailure(") && !line.contains("hunter2") && line.len() < 400,
            "{line}"
        );
    }
}

/// Off a terminal, each command says one line per phase when it ends (what it moved, in how
/// long, how fast), and a restore starts with the last measured restore of the database.
#[test]
fn progress_off_a_terminal_is_a_line_per_phase() {
    let db = fresh_database("progress lines");
    db.psql(
        "CREATE TABLE events (id int PRIMARY KEY, body text);
         INSERT INTO events SELECT g, repeat('x', 100) FROM generate_series(1, 20000) g;",
    );
    let dir = tempfile::tempdir().unwrap();
    let store = format!("file://{}/store", dir.path().display());
    let stderr =
        |output: std::process::Output| String::from_utf8_lossy(&output.stderr).into_owned();
    let backed_up = stderr(backstop_ok(
        &["backup", "--db", &db.url(), "--to", &store],
        &[],
    ));
    assert!(backed_up.contains("backup: catalog: in "), "{backed_up}");
    assert!(
        backed_up.contains("backup: data: ") && backed_up.contains("/s)"),
        "{backed_up}"
    );
    let scratch = cluster().url("postgres");
    let verified = stderr(backstop_ok(
        &[
            "verify",
            "--from",
            &store,
            "--database-id",
            &db.name,
            "--level",
            "restore",
            "--scratch-db",
            &scratch,
        ],
        &[],
    ));
    assert!(verified.contains("verify: restore: "), "{verified}");
    let target = fresh_database("progress lines target");
    let restored = stderr(backstop_ok(
        &[
            "restore",
            "--from",
            &store,
            "--database-id",
            &db.name,
            "--db",
            &target.url(),
        ],
        &[],
    ));
    let lines: Vec<&str> = restored.lines().collect();
    assert!(
        lines[0].starts_with(&format!("last measured restore of {}: ", db.name)),
        "{restored}"
    );
    for phase in [
        "restore: pre-data: in ",
        "restore: data: ",
        "restore: post-data: ",
    ] {
        assert_eq!(
            lines.iter().filter(|l| l.starts_with(phase)).count(),
            1,
            "{phase} once in:\n{restored}"
        );
    }
    assert!(
        !restored.contains('\u{1b}'),
        "no terminal codes off a terminal: {restored:?}"
    );
    let exported = stderr(backstop_ok(
        &[
            "export",
            "--from",
            &store,
            "--database-id",
            &db.name,
            "-o",
            dir.path().join("out.sql").to_str().unwrap(),
        ],
        &[],
    ));
    assert!(exported.contains("export: export: "), "{exported}");
}
