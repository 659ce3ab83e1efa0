//! libpq's connection conventions through the CLI: a scram-sha-256 role reaches its database
//! through each source psql reads (the `PG*` variables, a password file, the service file,
//! `key=value` pairs), and a missing password names the sources that were tried.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

use backstop_tests::postgres::{PgCluster, TestDb, cluster, fresh_database};

use crate::support::backstop_bin;

/// The role, its password and its database.
struct Login {
    role: String,
    password: String,
    database: TestDb,
}

fn scram_login(label: &str) -> Login {
    let database = fresh_database(label);
    let role = format!("{}_login", database.name);
    let password = "pa:ss w'rd\\1".to_string();
    {
        let _roles = crate::engine::ROLE_CREATION.blocking_lock();
        cluster().psql(
            "postgres",
            &format!(
                "SET password_encryption = 'scram-sha-256'; CREATE ROLE \"{role}\" LOGIN PASSWORD '{}'",
                password.replace('\'', "''")
            ),
        );
    }
    database.psql(&format!("CREATE TABLE kept (id int); INSERT INTO kept VALUES (7); GRANT SELECT ON kept TO \"{role}\""));
    Login {
        role,
        password,
        database,
    }
}

impl Drop for Login {
    fn drop(&mut self) {
        let _roles = crate::engine::ROLE_CREATION.blocking_lock();
        let database = &self.database.name;
        cluster().run_psql(
            "postgres",
            &[
                "-c",
                &format!("DROP DATABASE IF EXISTS \"{database}\" WITH (FORCE)"),
                "-c",
                &format!("DROP ROLE IF EXISTS \"{}\"", self.role),
            ],
        );
    }
}

/// `backstop` with only the given variables of libpq's (none inherited), HOME at `home`.
fn run(args: &[&str], home: &Path, vars: &[(&str, String)]) -> Output {
    let mut command = Command::new(backstop_bin());
    command
        .args(args)
        .env("HOME", home)
        .env_remove("BACKSTOP_DATABASE_URL");
    for (name, _) in std::env::vars() {
        if name.starts_with("PG") {
            command.env_remove(name);
        }
    }
    for (name, value) in vars {
        command.env(name, value);
    }
    command.output().unwrap()
}

/// Backs up through `args`/`vars` and says which database the store now holds.
fn backed_up(
    c: &PgCluster,
    home: &Path,
    db_args: &[&str],
    vars: &[(&str, String)],
) -> Result<String, String> {
    let store = tempfile::tempdir().unwrap();
    let to = format!("file://{}", store.path().display());
    let mut args = vec!["backup", "--to", &to];
    args.extend_from_slice(db_args);
    let output = run(&args, home, vars);
    if !output.status.success() {
        return Err(String::from_utf8_lossy(&output.stderr).trim().to_string());
    }
    let _ = c;
    let listed = std::fs::read_dir(store.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| !name.starts_with('_'))
        .collect::<Vec<_>>();
    Ok(listed.join(","))
}

fn private_file(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

/// A password file field, escaped as libpq reads it.
fn field(value: &str) -> String {
    value.replace('\\', "\\\\").replace(':', "\\:")
}

#[test]
fn a_scram_role_connects_through_every_source_psql_reads() {
    let login = scram_login("conninfo sources");
    let c = cluster();
    let home = tempfile::tempdir().unwrap();
    let db = login.database.name.clone();
    let server = [
        ("PGHOST", c.host.clone()),
        ("PGPORT", c.port.to_string()),
        ("PGUSER", login.role.clone()),
    ];

    // PGPASSWORD and PGDATABASE, no --db at all.
    let mut vars = server.to_vec();
    vars.extend([
        ("PGPASSWORD", login.password.clone()),
        ("PGDATABASE", db.clone()),
    ]);
    assert_eq!(backed_up(c, home.path(), &[], &vars), Ok(db.clone()));

    // --db as a bare database name, the password from ~/.pgpass.
    let line = format!(
        "{}:{}:{}:{}:{}\n",
        c.host,
        c.port,
        field(&db),
        field(&login.role),
        field(&login.password)
    );
    private_file(
        &home.path().join(".pgpass"),
        &format!("# ours\nother:1:*:*:wrong\n{line}"),
    );
    assert_eq!(
        backed_up(c, home.path(), &["--db", &db], &server),
        Ok(db.clone())
    );

    // The same file readable by others is ignored, and the error says so and where it looked.
    std::fs::set_permissions(
        home.path().join(".pgpass"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    let refused = backed_up(c, home.path(), &["--db", &db], &server).unwrap_err();
    assert!(
        refused.lines().last().unwrap_or("").contains("password")
            && refused.contains(".pgpass (ignored: readable by others)")
            && refused.contains("PGPASSWORD"),
        "{refused}"
    );
    std::fs::remove_file(home.path().join(".pgpass")).unwrap();

    // PGPASSFILE elsewhere, with a URL that has no password.
    let passfile = home.path().join("elsewhere.pgpass");
    private_file(&passfile, &line);
    let url = format!("postgresql://{}@{}:{}/{db}", login.role, c.host, c.port);
    assert_eq!(
        backed_up(
            c,
            home.path(),
            &["--db", &url],
            &[("PGPASSFILE", passfile.display().to_string())]
        ),
        Ok(db.clone())
    );

    // A service: PGSERVICE and PGSERVICEFILE, the password in the service file.
    let services = home.path().join("services.conf");
    std::fs::write(
        &services,
        format!(
            "[other]\nhost=nowhere.invalid\n\n[prod]\nhost={}\nport={}\nuser={}\ndbname={db}\npassword={}\n",
            c.host, c.port, login.role, login.password
        ),
    )
    .unwrap();
    let service_vars = [
        ("PGSERVICE", "prod".to_string()),
        ("PGSERVICEFILE", services.display().to_string()),
    ];
    assert_eq!(
        backed_up(c, home.path(), &[], &service_vars),
        Ok(db.clone())
    );
    // ... and `service=` in key=value pairs, the database given there winning over the service's.
    assert_eq!(
        backed_up(
            c,
            home.path(),
            &["--db", &format!("service=prod dbname='{db}'")],
            &[("PGSERVICEFILE", services.display().to_string())]
        ),
        Ok(db.clone())
    );

    // key=value pairs with the password in them, quoted as libpq quotes.
    let pairs = format!(
        "host={} port={} user={} dbname={db} password='{}'",
        c.host,
        c.port,
        login.role,
        login.password.replace('\\', "\\\\").replace('\'', "\\'")
    );
    assert_eq!(
        backed_up(c, home.path(), &["--db", &pairs], &[]),
        Ok(db.clone())
    );

    // Nothing anywhere: one line naming what was tried, the password nowhere.
    let missing = backed_up(c, home.path(), &["--db", &db], &server).unwrap_err();
    assert_eq!(missing.lines().count(), 1, "{missing}");
    assert!(
        missing.contains("asks for a password")
            && missing.contains("PGPASSWORD")
            && missing.contains(&format!("{}/.pgpass", home.path().display()))
            && !missing.contains(&login.password),
        "{missing}"
    );
    // A wrong password is the server's refusal, not a missing one.
    let mut wrong = server.to_vec();
    wrong.push(("PGPASSWORD", "not it".into()));
    let refused = backed_up(c, home.path(), &["--db", &db], &wrong).unwrap_err();
    assert!(
        refused.contains("password authentication failed"),
        "{refused}"
    );
    assert_eq!(login.database.psql("SELECT id FROM kept").trim(), "7");
}
