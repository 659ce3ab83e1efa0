//! docs/runbook.md, followed literally: every `bash` block of sections 0 to 9 not marked "not
//! run" is executed as written, in order, on the demo database, with the runbook's variables
//! pointing at the harness PostgreSQL and a local store. As in the runbook, the servers are
//! reached through `PGHOST`, `PGPORT`, `PGUSER` and a password file only: no password in any URL
//! or variable.

use std::process::Command;

use backstop_tests::postgres::{cluster, fresh_database};

use crate::support::{backstop, backstop_ok};

/// The runbook's bash blocks up to section 10, in order, without those marked
/// `<!-- not run ... -->`.
fn runnable_blocks(markdown: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut skip_next = false;
    let mut current: Option<String> = None;
    for line in markdown.lines() {
        // Sections 10 and after run in tests of their own.
        if current.is_none() && line.starts_with("## 10.") {
            break;
        }
        match &mut current {
            Some(block) if line.trim_start().starts_with("```") => {
                if !skip_next {
                    blocks.push(std::mem::take(block));
                }
                skip_next = false;
                current = None;
            }
            Some(block) => {
                block.push_str(line);
                block.push('\n');
            }
            None if line.starts_with("<!-- not run") => skip_next = true,
            None if line.trim() == "```bash" => current = Some(String::new()),
            None => {}
        }
    }
    blocks
}

#[test]
fn the_restore_runbook_works_as_written_on_the_demo_data() {
    let root = backstop_tests::workspace_root();
    let runbook = std::fs::read_to_string(root.join("docs/runbook.md")).unwrap();
    let blocks = runnable_blocks(&runbook);
    assert!(blocks.len() >= 8, "{} runnable blocks", blocks.len());

    let prod = fresh_database("runbook prod");
    // A tenth of the demo's sample (~20 MB): the runbook's steps do not depend on its size.
    prod.psql_file_with(
        &root.join("tests/fixtures/demo/ticketing.sql"),
        &[("scale", "0.1")],
    );
    prod.psql("INSERT INTO ticketing.brands VALUES (41, 'Pop-up A', '{}'), (42, 'Pop-up B', '{}')");
    // The table copied back in step 4 has a GENERATED ALWAYS identity, as many do.
    prod.psql("ALTER TABLE ticketing.brands ALTER id ADD GENERATED ALWAYS AS IDENTITY (START 100)");
    // A role production grants to, that a new server (step 7) does not have.
    let reader = format!("{}_reader", prod.name);
    {
        let _roles = crate::engine::ROLE_CREATION.blocking_lock();
        cluster().psql("postgres", &format!("CREATE ROLE \"{reader}\" LOGIN"));
    }
    prod.psql(&format!("GRANT SELECT ON ticketing.brands TO \"{reader}\""));
    // What belongs to the database itself, which a swap must keep: owner, settings, CONNECT.
    let owner = format!("{}_owner", prod.name);
    {
        let _roles = crate::engine::ROLE_CREATION.blocking_lock();
        cluster().psql("postgres", &format!("CREATE ROLE \"{owner}\" NOLOGIN"));
    }
    cluster().psql(
        "postgres",
        &format!(
            "ALTER DATABASE \"{db}\" OWNER TO \"{owner}\"; \
             ALTER DATABASE \"{db}\" SET work_mem = '12MB'; \
             ALTER ROLE \"{reader}\" IN DATABASE \"{db}\" SET statement_timeout = '5s'; \
             REVOKE CONNECT, TEMPORARY ON DATABASE \"{db}\" FROM PUBLIC; \
             GRANT CONNECT ON DATABASE \"{db}\" TO \"{reader}\"; \
             COMMENT ON DATABASE \"{db}\" IS 'production'",
            db = prod.name
        ),
    );
    let properties = |c: &backstop_tests::postgres::PgCluster, name: &str| {
        c.psql(
            "postgres",
            &format!(
                "SELECT pg_get_userbyid(d.datdba), d.datacl, shobj_description(d.oid, 'pg_database'), \
                 (SELECT array_agg(coalesce(r.rolname, '*') || ':' || array_to_string(s.setconfig, ',') ORDER BY r.rolname) \
                  FROM pg_db_role_setting s LEFT JOIN pg_roles r ON r.oid = s.setrole WHERE s.setdatabase = d.oid) \
                 FROM pg_database d WHERE d.datname = '{name}'"
            ),
        )
    };
    let before_swap = properties(cluster(), &prod.name);
    let new_server = backstop_tests::postgres::fresh_cluster();
    let dir = tempfile::tempdir().unwrap();
    let store = format!("file://{}/store", dir.path().display());
    // Step 8's encrypted backups, in a store of their own, and the key they need.
    let key = dir.path().join("restore.key");
    let recipient = backstop_ok(&["keygen", "-o", key.to_str().unwrap()], &[]);
    let recipient = String::from_utf8_lossy(&recipient.stdout)
        .trim()
        .to_string();
    let sealed_dir = dir.path().join("sealed");
    let sealed_store = format!("file://{}", sealed_dir.display());
    backstop_ok(
        &[
            "backup",
            "--db",
            &prod.url(),
            "--to",
            &sealed_store,
            "--recipient",
            &recipient,
        ],
        &[],
    );
    // Two backups, a brand added in between: step 3 must take the second, the last before the
    // damage, not the oldest.
    backstop_ok(&["backup", "--db", &prod.url(), "--to", &store], &[]);
    prod.psql("INSERT INTO ticketing.brands (name) VALUES ('Added between the backups')");
    backstop_ok(&["backup", "--db", &prod.url(), "--to", &store], &[]);
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let bad_time = time::OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .unwrap()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    // The damage: two brands deleted by mistake.
    prod.psql("DELETE FROM ticketing.brands WHERE id IN (41, 42)");

    let c = cluster();
    let suffix = backstop_tests::unique_suffix();
    let (sealed_db, by_hand_db) = (
        format!("runbook_sealed_{suffix}"),
        format!("runbook_by_hand_{suffix}"),
    );
    let restored_db = format!("runbook_restored_{suffix}");
    let table_db = format!("runbook_table_{suffix}");
    // The passwords, for both servers, in the password file the runbook tells you to write.
    let home = dir.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let pgpass = home.join(".pgpass");
    std::fs::write(
        &pgpass,
        format!(
            "{}:{}:*:{}:{}\n{}:{}:*:{}:{}\n",
            c.host,
            c.port,
            c.user,
            c.password,
            new_server.host,
            new_server.port,
            new_server.user,
            new_server.password
        ),
    )
    .unwrap();
    std::fs::set_permissions(&pgpass, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let path = format!(
        "{}:{}:{}",
        crate::support::backstop_bin().parent().unwrap().display(),
        c.bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let vars = [
        ("STORE", store.clone()),
        ("DB_ID", prod.name.clone()),
        ("PROD_DB", prod.name.clone()),
        ("PGHOST", c.host.clone()),
        ("PGPORT", c.port.to_string()),
        ("PGUSER", c.user.clone()),
        ("HOME", home.display().to_string()),
        ("BAD_TIME", bad_time),
        ("RESTORED_DB", restored_db.clone()),
        ("TABLE_DB", table_db.clone()),
        (
            "NEW_URL",
            format!(
                "postgresql://{}@{}:{}/{}",
                new_server.user, new_server.host, new_server.port, prod.name
            ),
        ),
        ("SEALED_STORE", sealed_store.clone()),
        ("KEY", key.display().to_string()),
        ("SEALED_DIR", sealed_dir.display().to_string()),
        ("SEALED_DB", sealed_db.clone()),
        ("BY_HAND_DB", by_hand_db.clone()),
        ("PATH", path),
    ];
    for (i, block) in blocks.iter().enumerate() {
        let mut command = Command::new("bash");
        command
            .args(["-euo", "pipefail", "-c", block])
            .current_dir(dir.path())
            .env_remove("AWS_ENDPOINT_URL")
            .env_remove("BACKSTOP_DATABASE_URL");
        for (name, _) in std::env::vars() {
            if name.starts_with("PG") {
                command.env_remove(name);
            }
        }
        for (name, value) in &vars {
            command.env(name, value);
        }
        let output = command.output().unwrap();
        assert!(
            output.status.success(),
            "runbook block {} failed:\n{block}\nstdout: {}\nstderr: {}",
            i + 1,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }

    // After the swap, production is the restored copy (with the two brands) with the
    // database's owner, settings, grants and comment, the damaged one is kept aside, and a
    // fresh backup was taken.
    assert_eq!(properties(c, &prod.name), before_swap);
    assert!(before_swap.contains("work_mem=12MB"), "{before_swap}");
    assert_eq!(
        prod.psql("SELECT count(*) FROM ticketing.brands WHERE id IN (41, 42)")
            .trim(),
        "2"
    );
    assert_eq!(
        prod.psql("SELECT count(*) FROM ticketing.brands WHERE name = 'Added between the backups'")
            .trim(),
        "1",
        "step 3 restored a backup older than the last one before the damage"
    );
    let broken = format!("{}_broken", prod.name);
    assert_eq!(
        c.psql(
            "postgres",
            &format!("SELECT count(*) FROM pg_database WHERE datname = '{broken}'")
        )
        .trim(),
        "1"
    );
    assert_eq!(
        c.psql(
            &broken,
            "SELECT count(*) FROM ticketing.brands WHERE id IN (41, 42)"
        )
        .trim(),
        "2",
        "step 4 brought the deleted rows back into the damaged database too"
    );
    let output = backstop(
        &[
            "list",
            "--from",
            &store,
            "--database-id",
            &prod.name,
            "--json",
        ],
        &[],
    );
    let listed: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 3);
    // Step 7 made the database and its role on the new server.
    assert_eq!(
        new_server
            .psql(
                &prod.name,
                &format!("SELECT has_table_privilege('{reader}', 'ticketing.brands', 'SELECT')")
            )
            .trim(),
        "t"
    );
    // Step 8 read the encrypted backup twice: through Backstop, and with age, zstd and psql.
    for database in [&sealed_db, &by_hand_db] {
        assert_eq!(
            c.psql(
                database,
                "SELECT count(*) FROM ticketing.brands WHERE id IN (41, 42)"
            )
            .trim(),
            "2"
        );
    }
    for database in [broken, table_db, sealed_db, by_hand_db] {
        c.psql(
            "postgres",
            &format!("DROP DATABASE IF EXISTS \"{database}\" WITH (FORCE)"),
        );
    }
    c.run_psql(
        "postgres",
        &[
            "-c",
            &format!("DROP DATABASE \"{}\" WITH (FORCE)", prod.name),
            "-c",
            &format!("DROP ROLE \"{reader}\"; DROP ROLE \"{owner}\""),
        ],
    );
}
