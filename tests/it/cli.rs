//! The `backstop` binary: checks that pass, and bad input that gets one readable line.

use backstop_tests::moto::moto;
use backstop_tests::postgres::{cluster, fresh_database};

use crate::support::{backstop, backstop_ok, single_error_line};

#[test]
fn doctor_checks_a_file_store_and_a_database() {
    let db = fresh_database("cli doctor");
    let dir = tempfile::tempdir().unwrap();
    let store = format!("file://{}/backups", dir.path().display());
    let output = backstop(&["doctor", "--store", &store, "--db", &db.url()], &[]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "stdout: {stdout}\nstderr: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("ok    file://")
            && stdout.contains(": wrote, tagged, listed, read back and deleted"),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("database  ok    {}: PostgreSQL 1", db.name)),
        "{stdout}"
    );
    assert!(!stdout.contains(&cluster().password));
    let leftovers = std::fs::read_dir(dir.path().join("backups/_backstop/probe"))
        .map(|d| d.count())
        .unwrap_or(0);
    assert_eq!(leftovers, 0, "the probe object was not removed");

    // Encryption settings are checked as the backup function reads them.
    let recipient = backstop::engine::encryption::generate().1;
    let output = backstop(
        &["doctor", "--store", &store],
        &[("BACKSTOP_RECIPIENTS", recipient.clone())],
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    assert!(
        stdout.contains(&format!(
            "encryption ok    backups are encrypted to {recipient}"
        )),
        "{stdout}"
    );
    let output = backstop(
        &["doctor", "--store", &store],
        &[("BACKSTOP_RECIPIENTS", "age1typo".into())],
    );
    let line = single_error_line(&output);
    assert!(
        line.contains("encryption") && line.contains("age1typo"),
        "{line}"
    );
}

#[tokio::test]
async fn doctor_checks_an_s3_store_through_aws_endpoint_url() {
    let bucket = moto().new_bucket("cli-doctor").await;
    backstop_ok(
        &["doctor", "--store", &format!("s3://{bucket}/prod")],
        &moto().env(),
    );
    let listed = moto()
        .s3()
        .await
        .list_objects_v2()
        .bucket(&bucket)
        .send()
        .await
        .unwrap();
    assert_eq!(
        listed.key_count(),
        Some(0),
        "the probe object was not removed"
    );
}

#[test]
fn an_unknown_store_scheme_gets_one_line() {
    let line = single_error_line(&backstop(&["doctor", "--store", "gs://bucket/x"], &[]));
    assert!(
        line.starts_with("error: ") && line.contains("`gs:` is not supported"),
        "{line}"
    );
    assert!(
        line.contains("s3://bucket/prefix"),
        "the line should say what to use: {line}"
    );
}

#[tokio::test]
async fn a_missing_bucket_gets_one_line() {
    let output = backstop(
        &["doctor", "--store", "s3://backstop-missing-bucket/prod"],
        &moto().env(),
    );
    let line = single_error_line(&output);
    assert!(
        line.contains("bucket `backstop-missing-bucket` does not exist"),
        "{line}"
    );
}

#[test]
fn an_unwritable_file_store_gets_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("file");
    std::fs::write(&file, b"x").unwrap();
    let output = backstop(
        &[
            "doctor",
            "--store",
            &format!("file://{}/store", file.display()),
        ],
        &[],
    );
    let line = single_error_line(&output);
    assert!(
        line.contains("cannot write to") && line.contains(&file.display().to_string()),
        "{line}"
    );
}

#[test]
fn an_unreachable_database_gets_one_line_without_the_password() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("postgresql://app:hunter2-secret@127.0.0.1:{port}/app?sslmode=disable");
    let line = single_error_line(&backstop(&["doctor", "--db", &url], &[]));
    assert!(
        line.contains("cannot connect to database `app` on 127.0.0.1"),
        "{line}"
    );
    assert!(!line.contains("hunter2-secret"), "{line}");
}

#[test]
fn list_shows_committed_backups_only() {
    let dir = tempfile::tempdir().unwrap();
    for key in [
        "main/20261101T000000Z-aaaa0001/manifest.json",
        "main/20261102T000000Z-bbbb0002/pre-data.sql.zst",
        "_backstop/locks/main",
    ] {
        let path = dir.path().join(key);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, b"{}").unwrap();
    }
    let store = format!("file://{}", dir.path().display());
    let output = backstop_ok(&["list", "--from", &store, "--json"], &[]);
    let listed: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");
    assert_eq!(listed[0]["backup_id"], "20261101T000000Z-aaaa0001");
    assert_eq!(listed[0]["started_at"], "2026-11-01T00:00:00Z");
    assert!(
        listed[0]["problem"]
            .as_str()
            .unwrap()
            .contains("unreadable"),
        "{listed}"
    );
}

#[test]
fn bad_arguments_exit_2_with_usage() {
    let output = backstop(&["list"], &[]);
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("--from <STORE>"));
}

#[test]
fn backup_list_export_and_restore_through_the_cli() {
    let source = fresh_database("cli cycle");
    source.psql(
        "CREATE TABLE public.orders (id serial PRIMARY KEY, total numeric(10,2), note text);
         INSERT INTO public.orders (total, note) SELECT g * 1.5, 'order ' || g FROM generate_series(1, 2000) g;
         CREATE INDEX orders_total ON public.orders (total);",
    );
    let dir = tempfile::tempdir().unwrap();
    let store = format!("file://{}/store", dir.path().display());

    let output = backstop_ok(
        &[
            "backup",
            "--db",
            &source.url(),
            "--to",
            &store,
            "--jobs",
            "2",
            "--json",
        ],
        &[],
    );
    let summary: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(summary["rows"], 2000);
    assert_eq!(summary["database_id"], source.name.as_str());
    assert!(!String::from_utf8_lossy(&output.stderr).contains(&cluster().password));
    // The set's objects (manifest, globals.json, pre-data, one part for its small tables,
    // post-data, the planner's statistics), and what storing them took: one write each, the
    // lease's, and the tier's listing.
    assert_eq!(summary["objects"], 6, "{summary}");
    assert_eq!(summary["requests"]["objects_written"], 6, "{summary}");
    // The database's objects (table, sequence, key, index, default) and how long the backup
    // took to read, check and order them before its first row.
    assert_eq!(summary["database_objects"], 5, "{summary}");
    let catalog = summary["catalog_seconds"].as_f64().unwrap();
    assert!(
        catalog > 0.0 && catalog <= summary["duration_seconds"].as_f64().unwrap(),
        "{summary}"
    );
    assert!(
        summary["requests"]["writes"].as_u64().unwrap() >= 4,
        "{summary}"
    );
    assert!(
        summary["requests"]["lists"].as_u64().unwrap() >= 1,
        "{summary}"
    );

    let output = backstop(&["list", "--from", &store], &[]);
    let table = String::from_utf8_lossy(&output.stdout);
    assert!(
        table.contains(summary["backup_id"].as_str().unwrap()) && table.contains("monthly"),
        "{table}"
    );

    let script = dir.path().join("export.sql");
    backstop_ok(
        &[
            "export",
            "--from",
            &store,
            "-o",
            &script.display().to_string(),
        ],
        &[],
    );
    let from_script = fresh_database("cli cycle psql");
    from_script.psql_file(&script);
    assert_eq!(
        source.pg_dump(),
        from_script.pg_dump(),
        "the exported script does not rebuild the database"
    );

    let restored = fresh_database("cli cycle restored");
    backstop_ok(
        &[
            "restore",
            "--from",
            &store,
            "--database-id",
            &source.name,
            "--db",
            &restored.url(),
            "--backup",
            "latest",
            "--jobs",
            "2",
        ],
        &[],
    );
    assert_eq!(source.pg_dump(), restored.pg_dump());

    let line = single_error_line(&backstop(
        &[
            "restore",
            "--from",
            &store,
            "--database-id",
            &source.name,
            "--db",
            &restored.url(),
        ],
        &[],
    ));
    assert!(
        line.contains("is not empty") && line.contains("--clean"),
        "{line}"
    );
    let line = single_error_line(&backstop(
        &[
            "restore",
            "--from",
            &store,
            "--database-id",
            "nothing-here",
            "--db",
            &restored.url(),
        ],
        &[],
    ));
    assert!(line.contains("no backups of `nothing-here`"), "{line}");
    let line = single_error_line(&backstop(
        &[
            "restore",
            "--from",
            &store,
            "--database-id",
            &source.name,
            "--backup",
            "20200101T000000Z-00000000",
            "--db",
            &restored.url(),
        ],
        &[],
    ));
    assert!(
        line.contains("not found") && line.contains("backstop list"),
        "{line}"
    );
}

#[tokio::test]
async fn a_backup_already_running_makes_a_second_one_refuse_in_one_line() {
    let source = fresh_database("cli busy");
    source.psql("CREATE TABLE public.t (id int); INSERT INTO public.t VALUES (1);");
    let dir = tempfile::tempdir().unwrap();
    let store: std::sync::Arc<dyn backstop::store::Store> =
        std::sync::Arc::new(backstop::store::FileStore::new(dir.path().join("store")));
    let url = format!("file://{}/store", dir.path().display());
    let id = backstop::layout::DatabaseId::new(&source.name).unwrap();
    let running = backstop::lease::acquire(
        store.clone(),
        &backstop::lease::lease_key(&id, "backup"),
        "backup Lambda backstop-backup request r-1",
        backstop::lease::DEFAULT_LEASE,
    )
    .await
    .unwrap();
    let args = [
        "backup",
        "--db",
        &source.url(),
        "--to",
        &url,
        "--reason",
        "before migration 00021",
    ];
    let line = single_error_line(&backstop(&args, &[]));
    assert!(
        line.contains("another run holds") && line.contains("request r-1"),
        "{line}"
    );
    running.release().await.unwrap();
    backstop_ok(&args, &[]);
    let sets = store.list(&format!("{}/", source.name)).await.unwrap();
    let manifest = sets
        .iter()
        .find(|o| o.key.ends_with("manifest.json"))
        .unwrap();
    let manifest = crate::store_contract::read_all(store.as_ref(), &manifest.key).await;
    let manifest: serde_json::Value = serde_json::from_slice(&manifest).unwrap();
    assert_eq!(manifest["reason"], "before migration 00021");
}

#[test]
fn doctor_says_which_privileges_a_role_lacks_and_how_to_grant_them() {
    let db = fresh_database("cli doctor role");
    let role = format!("weak_{}", backstop_tests::unique_suffix());
    db.psql(&format!(
        "CREATE TABLE public.visible (id int); CREATE TABLE public.hidden (id int);
         CREATE TABLE public.guarded (id int, owner text);
         ALTER TABLE public.guarded ENABLE ROW LEVEL SECURITY;
         CREATE ROLE {role} LOGIN PASSWORD 'weak-pw';
         GRANT SELECT ON public.visible, public.guarded TO {role};"
    ));
    let c = cluster();
    let url = format!(
        "postgresql://{role}:weak-pw@{}:{}/{}?sslmode=disable",
        c.host, c.port, db.name
    );
    let output = backstop(&["doctor", "--db", &url, "--json"], &[]);
    assert_eq!(output.status.code(), Some(1));
    let checks: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let find = |name: &str| {
        checks
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["check"] == name)
            .cloned()
            .unwrap()
    };
    assert_eq!(find("backup")["outcome"], "failed");
    assert!(
        find("backup")["message"]
            .as_str()
            .unwrap()
            .contains("public.hidden")
    );
    assert_eq!(
        find("backup")["fix"],
        format!("GRANT pg_read_all_data TO {role};")
    );
    assert_eq!(find("rls")["fix"], format!("ALTER ROLE {role} BYPASSRLS;"));
    assert_eq!(find("health")["outcome"], "warning");
    let line = single_error_line(&output);
    assert!(line.contains("GRANT pg_read_all_data"), "{line}");
    assert!(!line.contains("weak-pw"));
}

#[test]
fn the_demo_runs_the_whole_cycle_and_the_copy_matches() {
    let demo = crate::support::backstop_bin()
        .parent()
        .unwrap()
        .join("demo");
    // A tenth of the sample (~20 MB): every step runs as it does at full size.
    let output = std::process::Command::new(demo)
        .env_remove("DEMO_STORE")
        .env("DEMO_SCALE", "0.1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    for step in [
        "doctor", "backup", "list", "verify", "health", "prune", "restore",
    ] {
        assert!(
            stdout.contains(&format!("\n  {step} ")),
            "no {step} step:\n{stdout}"
        );
    }
    assert!(stdout.contains("passed at restore level"), "{stdout}");
    assert!(stdout.contains("CREATE INDEX CONCURRENTLY ON ticketing.notifications (user_id);"));
    assert!(stdout.contains("pg_dump of the restored copy is identical to the source"));
}

#[test]
fn every_subcommand_help_has_an_example_that_works() {
    let source = fresh_database("help examples");
    source.psql(
        "CREATE TABLE public.orders (id serial PRIMARY KEY, total numeric);
         INSERT INTO public.orders (total) SELECT g FROM generate_series(1, 100) g;",
    );
    let dir = tempfile::tempdir().unwrap();
    let store = format!("file://{}/store", dir.path().display());
    let output = backstop_ok(
        &["backup", "--db", &source.url(), "--to", &store, "--json"],
        &[],
    );
    let taken: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let backup_id = taken["backup_id"].as_str().unwrap().to_string();
    let restored = fresh_database("help examples restored");
    let exported = fresh_database("help examples exported");
    let copied = fresh_database("help examples copied");
    let c = cluster();
    // The --create example makes this one.
    let created = format!("t_help_created_{}", backstop_tests::unique_suffix());
    let q = |s: &str| format!("'{s}'");
    let replacements = [
        ("s3://my-backups/prod", q(&store)),
        ("file:///var/backups/backstop", q(&store)),
        ("file:///var/backups", q(&store)),
        (
            "--database-id app",
            format!("--database-id {}", q(&source.name)),
        ),
        (
            "postgresql://postgres@localhost/app_restored",
            q(&restored.url()),
        ),
        ("postgresql://dev@localhost/app_copy", q(&copied.url())),
        ("postgresql://admin@new-server/app", q(&c.url(&created))),
        (
            "postgresql://verifier@scratch:5432/postgres",
            q(&c.url("postgres")),
        ),
        ("postgresql://backup@db.internal:5432/app", q(&source.url())),
        ("postgresql://monitor@db:5432/app", q(&source.url())),
        ("postgresql://postgres@localhost/app", q(&source.url())),
        ("postgresql://localhost/app", q(&source.url())),
        ("20261122T060000Z-1a2b3c4d", backup_id),
        (
            "psql -d new_app",
            format!("psql -q -d {}", q(&exported.url())),
        ),
    ];
    let path = format!(
        "{}:{}:{}",
        crate::support::backstop_bin().parent().unwrap().display(),
        c.bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut ran = 0;
    for command in [
        "backup", "restore", "export", "list", "verify", "prune", "health", "doctor", "stream",
    ] {
        let help = backstop(&[command, "--help"], &[]);
        let text = String::from_utf8_lossy(&help.stdout).into_owned();
        let examples: Vec<String> = text
            .lines()
            .skip_while(|l| !l.starts_with("Example"))
            .filter(|l| l.starts_with("  backstop "))
            .map(str::trim)
            .map(str::to_string)
            .collect();
        assert!(
            !examples.is_empty(),
            "`backstop {command} --help` has no example:\n{text}"
        );
        for example in examples {
            let mut line = example.clone();
            for (from, to) in &replacements {
                line = line.replace(from, to);
            }
            let output = std::process::Command::new("bash")
                .args(["-euo", "pipefail", "-c", &line])
                .current_dir(dir.path())
                .env("PATH", &path)
                .output()
                .unwrap();
            assert!(
                output.status.success(),
                "the example `{example}` failed:\n{}",
                String::from_utf8_lossy(&output.stderr)
            );
            ran += 1;
        }
    }
    assert!(ran >= 10);
    assert_eq!(
        exported.psql("SELECT count(*) FROM public.orders").trim(),
        "100"
    );
    assert_eq!(
        c.psql(&created, "SELECT count(*) FROM public.orders")
            .trim(),
        "100"
    );
    c.psql(
        "postgres",
        &format!("DROP DATABASE \"{created}\" WITH (FORCE)"),
    );
}

#[test]
fn mistakes_a_new_user_makes_get_one_line_saying_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let empty = format!("file://{}/empty", dir.path().display());
    let db = fresh_database("cli mistakes");
    let port = backstop_tests::free_port();
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            vec![
                "backup".into(),
                "--db".into(),
                "postgres//oops".into(),
                "--to".into(),
                empty.clone(),
            ],
            "expected postgresql://user:password@host:port/dbname",
        ),
        (
            vec![
                "backup".into(),
                "--db".into(),
                format!("postgresql://app:pw@127.0.0.1:{port}/app?sslmode=disable"),
                "--to".into(),
                empty.clone(),
            ],
            "cannot connect to database `app`",
        ),
        (
            vec![
                "restore".into(),
                "--from".into(),
                empty.clone(),
                "--db".into(),
                db.url(),
            ],
            "take one with `backstop backup`",
        ),
        (
            vec!["list".into(), "--from".into(), "gs://bucket".into()],
            "use file:///absolute/path or s3://bucket/prefix",
        ),
        (
            vec![
                "restore".into(),
                "--from".into(),
                empty.clone(),
                "--db".into(),
                db.url(),
                "--backup".into(),
                "yesterday".into(),
            ],
            "not a valid backup id",
        ),
    ];
    for (args, hint) in cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let line = single_error_line(&backstop(&args, &[]));
        assert!(line.contains(hint), "`backstop {}`: {line}", args.join(" "));
    }

    // An unknown backup id in a store that has backups points at `backstop list`.
    let store = format!("file://{}/store", dir.path().display());
    let output = backstop(&["backup", "--db", &db.url(), "--to", &store], &[]);
    assert!(output.status.success());
    let line = single_error_line(&backstop(
        &[
            "restore",
            "--from",
            &store,
            "--db",
            &db.url(),
            "--backup",
            "20200101T000000Z-00000000",
        ],
        &[],
    ));
    assert!(
        line.contains("not found") && line.contains("backstop list --from"),
        "{line}"
    );
    // An empty store lists nothing and says so.
    let output = backstop(&["list", "--from", &empty], &[]);
    assert!(String::from_utf8_lossy(&output.stderr).contains("no backups"));
}

/// A backup made where its roles exist restores with `--no-owner --no-acl` on a server
/// without them: every row, objects owned by the restoring role, no privileges. Without the
/// flags the restore names the missing roles and changes nothing.
#[test]
fn no_owner_and_no_acl_restore_where_the_source_roles_do_not_exist() {
    let source = fresh_database("cli no owner");
    let (owner, reader) = (
        format!("{}_owner", source.name),
        format!("{}_reader", source.name),
    );
    cluster().psql(
        "postgres",
        &format!("CREATE ROLE \"{owner}\"; CREATE ROLE \"{reader}\";"),
    );
    source.psql(&format!(
        "CREATE SCHEMA app AUTHORIZATION \"{owner}\";
         CREATE TABLE app.orders (id bigserial PRIMARY KEY, total numeric(10,2));
         INSERT INTO app.orders (total) SELECT g * 1.5 FROM generate_series(1, 500) g;
         CREATE FUNCTION app.revenue() RETURNS numeric LANGUAGE sql AS $$ SELECT sum(total) FROM app.orders $$;
         ALTER TABLE app.orders OWNER TO \"{owner}\";
         ALTER FUNCTION app.revenue() OWNER TO \"{owner}\";
         GRANT SELECT ON app.orders TO \"{reader}\";
         GRANT SELECT (total) ON app.orders TO PUBLIC;
         ALTER DEFAULT PRIVILEGES FOR ROLE \"{owner}\" IN SCHEMA app GRANT SELECT ON TABLES TO \"{reader}\";"
    ));
    let dir = tempfile::tempdir().unwrap();
    let store = format!("file://{}/store", dir.path().display());
    backstop_ok(&["backup", "--db", &source.url(), "--to", &store], &[]);
    // The roles go, as on a developer's server that never had them.
    source.psql(&format!(
        "DROP OWNED BY \"{owner}\"; DROP OWNED BY \"{reader}\";"
    ));
    cluster().psql("postgres", &format!("DROP ROLE \"{owner}\", \"{reader}\";"));

    let target = fresh_database("cli no owner copy");
    let restore = |extra: &[&str]| {
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
        backstop(&args, &[])
    };
    let refused = restore(&[]);
    assert!(!refused.status.success());
    let line = single_error_line(&refused);
    assert!(
        line.contains(&owner) && line.contains(&reader) && line.contains("--roles create"),
        "{line}"
    );
    assert_eq!(
        target
            .psql("SELECT count(*) FROM pg_namespace WHERE nspname = 'app'")
            .trim(),
        "0",
        "the failed restore left objects behind"
    );

    let restored = restore(&["--no-owner", "--no-acl"]);
    assert!(
        restored.status.success(),
        "{}",
        String::from_utf8_lossy(&restored.stderr)
    );
    assert_eq!(target.psql("SELECT app.revenue()").trim(), "187875.00");
    assert_eq!(
        target
            .psql(
                "SELECT DISTINCT pg_get_userbyid(relowner) || ' ' || coalesce(relacl::text, 'no acl') \
                 FROM pg_class WHERE relnamespace = 'app'::regnamespace"
            )
            .trim(),
        format!("{} no acl", cluster().user)
    );
    assert_eq!(
        target
            .psql(
                "SELECT count(*) FROM pg_default_acl UNION ALL \
                 SELECT count(*) FROM pg_attribute WHERE attacl IS NOT NULL AND attrelid = 'app.orders'::regclass"
            )
            .split_whitespace()
            .collect::<Vec<_>>(),
        ["0", "0"]
    );

    // The same as one psql script: `export --no-owner --no-acl` loads where the roles are not.
    let script = dir.path().join("no-roles.sql");
    backstop_ok(
        &[
            "export",
            "--from",
            &store,
            "--database-id",
            &source.name,
            "--no-owner",
            "--no-acl",
            "-o",
            script.to_str().unwrap(),
        ],
        &[],
    );
    let text = std::fs::read_to_string(&script).unwrap();
    assert!(
        !text.contains("OWNER TO") && !text.contains("GRANT "),
        "{text}"
    );
    let loaded = fresh_database("cli no owner export");
    loaded.psql_file(&script);
    assert_eq!(loaded.psql("SELECT app.revenue()").trim(), "187875.00");
}

/// Closed sets and counts are checked by the argument parser: exit 2, naming what is allowed.
#[test]
fn typed_arguments_refuse_what_they_cannot_be() {
    for (args, expected) in [
        (
            vec![
                "backup",
                "--db",
                "postgresql://x@h/db",
                "--to",
                "file:///tmp/x",
                "--tier",
                "hourly",
            ],
            "[possible values: auto, daily, weekly, monthly]",
        ),
        (
            vec![
                "backup",
                "--db",
                "postgresql://x@h/db",
                "--to",
                "file:///tmp/x",
                "--jobs",
                "0",
            ],
            "must be at least 1",
        ),
        (
            vec![
                "restore",
                "--from",
                "file:///tmp/x",
                "--db",
                "postgresql://x@h/db",
                "--jobs",
                "two",
            ],
            "`two` is not a whole number",
        ),
        (
            vec!["verify", "--from", "file:///tmp/x", "--level", "shallow"],
            "[possible values: manifest, deep, restore]",
        ),
    ] {
        let output = crate::support::backstop(&args, &[]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
    }
}

/// A refusal names every refused object: all of them, each with its `--exclude` argument, in
/// `--json`; a count, the first 20 and how many more in the one line on stderr.
#[test]
fn a_refusal_lists_every_object_with_its_exclude_argument_in_json() {
    let db = fresh_database("refusal list");
    // User mappings whose options the backup role may not read: 25 of them.
    let role = format!("backup_{}", backstop_tests::unique_suffix());
    let mappings: String = (0..25)
        .map(|i| {
            format!(
                "CREATE SERVER child_{i:02} FOREIGN DATA WRAPPER hidden; \
                 CREATE USER MAPPING FOR PUBLIC SERVER child_{i:02};"
            )
        })
        .collect();
    db.psql(&format!(
        "CREATE FOREIGN DATA WRAPPER hidden; {mappings} CREATE ROLE {role} LOGIN PASSWORD 'backup-pw';"
    ));
    let c = backstop_tests::postgres::cluster();
    let url = format!(
        "postgresql://{role}:backup-pw@{}:{}/{}?sslmode=disable",
        c.host, c.port, db.name
    );
    let dir = tempfile::tempdir().unwrap();
    let store = format!("file://{}/store", dir.path().display());
    let output = backstop(&["backup", "--db", &url, "--to", &store, "--json"], &[]);
    assert_eq!(output.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let refused = report["refused"].as_array().unwrap();
    assert_eq!(refused.len(), 25, "{report}");
    assert!(
        refused
            .iter()
            .any(|r| r["exclude"] == "--exclude 'user mapping public on server child_23'")
    );
    let line = single_error_line(&output);
    assert!(
        line.contains("25 object(s)") && line.contains("and 5 more"),
        "{line}"
    );
}
