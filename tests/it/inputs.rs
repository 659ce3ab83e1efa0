//! Absurd numbers anywhere a number goes: every numeric flag of the CLI and every numeric
//! setting of the functions ends in one line saying what is wrong (or is taken as the bound it
//! means), never in a panic.

use backstop_tests::postgres::fresh_database;

use crate::support::{backstop, backstop_ok};

/// Values no one means: zero, negative, past every integer width, not a number.
const ABSURD: [&str; 8] = [
    "0",
    "-1",
    "4294967296",
    "18446744073709551615",
    "18446744073709551616",
    "99999999999999999999999999",
    "1e9",
    "NaN",
];

/// Every numeric flag of every command, with the other arguments it needs, on a store holding
/// one backup (so prune and verify reach their arithmetic) and a database that is there.
#[test]
fn every_numeric_flag_refuses_absurd_values_in_one_line_and_never_panics() {
    let db = fresh_database("absurd numbers");
    db.psql("CREATE TABLE public.t (id int PRIMARY KEY); INSERT INTO public.t VALUES (1);");
    let dir = tempfile::tempdir().unwrap();
    let store = format!("file://{}", dir.path().join("backups").display());
    let url = db.url();
    let id = db.name.clone();
    backstop_ok(
        &["backup", "--db", &url, "--to", &store, "--database-id", &id],
        &[],
    );
    let target = fresh_database("absurd numbers target");
    let into = target.url();
    let prune = |flag: &'static str| -> Vec<String> {
        let mut args = vec!["prune", "--from", &store, "--database-id", &id, "--dry-run"];
        if flag != "--keep-last" {
            args.extend(["--keep-last", "1"]);
        }
        args.push(flag);
        args.iter().map(|s| s.to_string()).collect()
    };
    let mut cases: Vec<Vec<String>> = Vec::new();
    for flag in [
        "--keep-last",
        "--keep-daily",
        "--keep-weekly",
        "--keep-monthly",
        "--keep-yearly",
        "--keep-stream-days",
        "--max-deletions",
    ] {
        cases.push(prune(flag));
    }
    let with = |args: &[&str]| args.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    cases.push(with(&[
        "backup",
        "--db",
        &url,
        "--to",
        &store,
        "--database-id",
        &id,
        "--jobs",
    ]));
    cases.push(with(&[
        "backup",
        "--db",
        &url,
        "--to",
        &store,
        "--database-id",
        &id,
        "--compression-level",
    ]));
    cases.push(with(&[
        "restore",
        "--from",
        &store,
        "--database-id",
        &id,
        "--db",
        &into,
        "--jobs",
    ]));
    cases.push(with(&[
        "verify",
        "--from",
        &store,
        "--database-id",
        &id,
        "--jobs",
    ]));
    cases.push(with(&[
        "stream",
        "--db",
        &url,
        "--to",
        &store,
        "--database-id",
        &id,
        "--page-changes",
    ]));
    cases.push(with(&[
        "stream",
        "--db",
        &url,
        "--to",
        &store,
        "--database-id",
        &id,
        "--max-slot-wal-mib",
    ]));
    for case in &cases {
        for value in ABSURD {
            let mut args: Vec<&str> = case.iter().map(String::as_str).collect();
            args.push(value);
            let output = backstop(&args, &[]);
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert!(
                output.status.code() != Some(101) && !stderr.contains("panicked"),
                "`backstop {}` panicked: {stderr}",
                args.join(" ")
            );
            if !output.status.success() {
                let lines = stderr.lines().filter(|l| l.starts_with("error")).count();
                assert!(lines >= 1, "`backstop {}`: {stderr}", args.join(" "));
            }
        }
    }
}

/// The functions' numeric settings: an absurd value is a configuration error naming the
/// variable, never a panic or an overflow later.
#[test]
fn numeric_settings_past_the_largest_meaningful_value_are_refused_by_name() {
    use backstop::config::{MAX_SETTING, positive_number};
    let past = (MAX_SETTING + 1).to_string();
    for value in ABSURD.iter().copied().chain([past.as_str()]) {
        let value = value.to_string();
        let lookup = move |_: &str| Some(value.clone());
        let error = positive_number(&lookup, "BACKSTOP_LEASE_SECONDS", 120).unwrap_err();
        assert!(
            error.to_string().contains("BACKSTOP_LEASE_SECONDS"),
            "{error}"
        );
    }
    let lookup = |_: &str| Some(MAX_SETTING.to_string());
    assert_eq!(positive_number(&lookup, "X", 1).unwrap(), MAX_SETTING);
}

/// An age identity (the secret half of a key) given where a recipient goes is refused in one
/// line that says what it is, and the secret is never repeated.
#[test]
fn a_secret_key_given_as_a_recipient_is_refused_without_being_repeated() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("key");
    backstop_ok(&["keygen", "-o", key.to_str().unwrap()], &[]);
    let secret = std::fs::read_to_string(&key)
        .unwrap()
        .lines()
        .find(|l| l.starts_with("AGE-SECRET-KEY-"))
        .unwrap()
        .to_string();
    let store = format!("file://{}", dir.path().join("backups").display());
    let output = backstop(
        &[
            "backup",
            "--db",
            "postgresql://nobody@127.0.0.1:1/x",
            "--to",
            &store,
            "--recipient",
            &secret,
        ],
        &[],
    );
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(!output.status.success());
    assert!(
        all.contains("identity") && !all.contains(&secret[15..]),
        "{all}"
    );
}

/// Every numeric setting of every function, set to each absurd value: the function's
/// dependencies are built or refused naming the variable, never a panic; the retention
/// function then prunes with what it was given.
#[tokio::test]
async fn every_numeric_setting_of_every_function_is_built_or_refused_never_a_panic() {
    use backstop_tests::moto::moto;
    use std::sync::Arc;

    let aws = moto().sdk_config().await;
    let dir = tempfile::tempdir().unwrap();
    let store_url = format!("file://{}", dir.path().display());
    let base = |var: &'static str, value: &'static str| {
        let vars = [
            ("BACKSTOP_STORE", store_url.clone()),
            (
                "BACKSTOP_DATABASES",
                serde_json::json!({"main": {"url_env": "UNUSED_URL"}}).to_string(),
            ),
            (var, value.to_string()),
        ];
        let lookup = move |k: &str| vars.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone());
        let config = backstop::config::FunctionConfig::from_lookup(&lookup).unwrap();
        let store = backstop::store::open(&config.store, &aws);
        common::Base::new(config, store, aws.clone(), Arc::new(lookup), "absurd")
    };
    let settings: [(&str, &str); 14] = [
        ("backup", backup::JOBS_VAR),
        ("backup", backup::RESERVE_VAR),
        ("backup", backup::LEASE_VAR),
        ("backup", backup::dispatch::TASK_START_VAR),
        ("stream", stream::MAX_SLOT_WAL_VAR),
        ("stream", stream::WARN_SLOT_WAL_VAR),
        ("monitor", monitor::REALERT_VAR),
        ("verify", verify::JOBS_VAR),
        ("retention", retention::KEEP_LAST_VAR),
        ("retention", retention::KEEP_DAILY_VAR),
        ("retention", retention::KEEP_WEEKLY_VAR),
        ("retention", retention::KEEP_YEARLY_VAR),
        ("retention", retention::MAX_DELETIONS_VAR),
        ("retention", retention::KEEP_STREAM_DAYS_VAR),
    ];
    for (function, var) in settings {
        for value in ABSURD {
            let refused = match function {
                "backup" => backup::Deps::new(base(var, value)).err(),
                "stream" => stream::Deps::new(base(var, value)).err(),
                "monitor" => monitor::Deps::new(base(var, value)).err(),
                "verify" => verify::Deps::new(base(var, value)).err(),
                _ => match retention::Deps::new(base(var, value)) {
                    Err(e) => Some(e),
                    Ok(deps) => {
                        let database = backstop::layout::DatabaseId::new("main").unwrap();
                        let options = backstop::retention::PruneOptions {
                            policy: deps.policy,
                            dry_run: true,
                            max_deletions: deps.max_deletions,
                            now: time::OffsetDateTime::now_utc(),
                            stream_window: deps.stream_window,
                        };
                        let _ = backstop::retention::prune(
                            deps.base.store.as_ref(),
                            &database,
                            &options,
                        )
                        .await;
                        None
                    }
                },
            };
            if let Some(error) = refused {
                // A policy of zeros is refused naming the whole family of variables.
                let said = error.to_string();
                assert!(
                    said.contains(var) || said.contains("BACKSTOP_KEEP_*"),
                    "{function} {var}={value}: {error}"
                );
            }
        }
    }
}
