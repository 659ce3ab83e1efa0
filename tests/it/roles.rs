//! Restore onto a new server: a Supabase-shaped database backed up on one cluster comes back
//! on a freshly `initdb`-ed one with its roles, memberships, settings and the database's own
//! properties (`--create --roles create`), as a superuser and as an RDS-like CREATEDB
//! CREATEROLE user; `--roles plan` changes nothing; `--role-map` moves ownership; no password
//! hash reaches the store unless asked, nor any output.

use std::path::Path;
use std::sync::OnceLock;

use backstop::engine::restore::{RestoreOptions, RolesMode, restore};
use backstop_tests::postgres::{PgCluster, cluster_of, fresh_cluster, fresh_database_on};

use crate::engine::{ROLE_CREATION, assert_same_dump, file_store, first_table_part, options, take};
use crate::support::{backstop, backstop_ok, single_error_line};

const PASSWORD: &str = "authenticator-secret-4d1f";
const ROLES: &str = "'anon','authenticated','service_role','authenticator','app_owner'";

/// The source: a cluster of its own holding database `app`, Supabase-shaped.
fn source() -> &'static PgCluster {
    static SOURCE: OnceLock<PgCluster> = OnceLock::new();
    SOURCE.get_or_init(|| {
        let pg = fresh_cluster();
        pg.psql(
            "postgres",
            &format!(
                "CREATE ROLE anon NOLOGIN NOINHERIT;
                 CREATE ROLE authenticated NOLOGIN NOINHERIT;
                 CREATE ROLE service_role NOLOGIN NOINHERIT BYPASSRLS;
                 CREATE ROLE authenticator LOGIN NOINHERIT CONNECTION LIMIT 50 PASSWORD '{PASSWORD}';
                 GRANT anon TO authenticator;
                 GRANT authenticated TO authenticator;
                 GRANT service_role TO authenticator WITH ADMIN OPTION;
                 CREATE ROLE app_owner NOLOGIN CREATEDB;
                 COMMENT ON ROLE app_owner IS 'owns the application''s objects';
                 ALTER ROLE authenticator SET statement_timeout = '8s';
                 ALTER ROLE authenticator SET search_path = \"$user\", public, extensions;"
            ),
        );
        pg.psql("postgres", "CREATE DATABASE app OWNER app_owner");
        pg.run_psql(
            "app",
            &[
                "-c",
                "ALTER DATABASE app SET app.settings.jwt_exp = '3600'",
                "-c",
                "ALTER ROLE anon IN DATABASE app SET statement_timeout = '3s'",
                "-c",
                "COMMENT ON DATABASE app IS 'the application''s database'",
                "-c",
                "REVOKE CONNECT, TEMPORARY ON DATABASE app FROM PUBLIC;
                 GRANT CONNECT ON DATABASE app TO authenticator;
                 GRANT TEMPORARY ON DATABASE app TO service_role",
                "-c",
                "CREATE EXTENSION pgcrypto;
                 GRANT EXECUTE ON FUNCTION public.crypt(text, text) TO anon;
                 CREATE SCHEMA api AUTHORIZATION app_owner;
                 SET ROLE app_owner;
                 CREATE TABLE api.todos (id bigserial PRIMARY KEY, owner uuid NOT NULL DEFAULT gen_random_uuid(),
                     task text NOT NULL, done boolean NOT NULL DEFAULT false);
                 INSERT INTO api.todos (task) SELECT 'task ' || g FROM generate_series(1, 300) g;
                 ALTER TABLE api.todos ENABLE ROW LEVEL SECURITY;
                 CREATE POLICY todos_read ON api.todos FOR SELECT TO anon, authenticated USING (true);
                 CREATE POLICY todos_write ON api.todos FOR ALL TO authenticated
                     USING (owner = current_setting('request.jwt.claim.sub', true)::uuid);
                 GRANT USAGE ON SCHEMA api TO anon, authenticated, service_role;
                 GRANT SELECT ON api.todos TO anon;
                 GRANT ALL ON api.todos TO authenticated, service_role;
                 GRANT USAGE ON SEQUENCE api.todos_id_seq TO authenticated;
                 ALTER DEFAULT PRIVILEGES IN SCHEMA api GRANT SELECT ON TABLES TO anon;
                 ALTER DEFAULT PRIVILEGES IN SCHEMA api GRANT ALL ON SEQUENCES TO authenticated;
                 GRANT SELECT ON api.todos TO service_role WITH GRANT OPTION;
                 RESET ROLE;
                 SET ROLE service_role;
                 GRANT SELECT ON api.todos TO authenticator;
                 RESET ROLE",
            ],
        );
        pg
    })
}

/// A backup of the source's `app` (with the password hashes when asked), in its own store.
fn backup(dir: &Path, with_passwords: bool) -> (String, String) {
    let store = format!("file://{}/store", dir.display());
    let db = source().url("app");
    let mut args = vec!["backup", "--db", &db, "--to", &store];
    if with_passwords {
        args.push("--include-role-passwords");
    }
    let output = backstop_ok(&args, &[("RUST_LOG", "backstop=debug".into())]);
    (store, outputs(&output))
}

fn outputs(output: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn restore_args<'a>(store: &'a str, url: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "restore",
        "--from",
        store,
        "--database-id",
        "app",
        "--db",
        url,
    ];
    args.extend_from_slice(extra);
    args
}

/// The roles' attributes, comments and settings, as one comparable text.
fn roles_of(pg: &PgCluster) -> String {
    pg.psql(
        "postgres",
        &format!(
            "SELECT r.rolname, r.rolsuper, r.rolinherit, r.rolcreaterole, r.rolcreatedb, r.rolcanlogin, \
             r.rolreplication, r.rolbypassrls, r.rolconnlimit, shobj_description(r.oid, 'pg_authid'), \
             (SELECT string_agg(c, ' | ' ORDER BY c) FROM pg_db_role_setting s, unnest(s.setconfig) c \
              WHERE s.setrole = r.oid AND s.setdatabase = 0) \
             FROM pg_roles r WHERE r.rolname IN ({ROLES}) ORDER BY 1"
        ),
    )
}

fn memberships_of(pg: &PgCluster) -> String {
    pg.psql(
        "postgres",
        &format!(
            "SELECT g.rolname, m.rolname, a.admin_option FROM pg_auth_members a \
             JOIN pg_roles g ON g.oid = a.roleid JOIN pg_roles m ON m.oid = a.member \
             WHERE m.rolname IN ({ROLES}) ORDER BY 1, 2"
        ),
    )
}

/// The database's encoding, locale, owner, comment, grants and settings (its own and its
/// roles' in it).
fn database_of(pg: &PgCluster) -> String {
    pg.psql(
        "postgres",
        "SELECT pg_encoding_to_char(d.encoding), d.datcollate, d.datctype, pg_get_userbyid(d.datdba), \
         shobj_description(d.oid, 'pg_database'), d.datacl::text, \
         (SELECT string_agg(coalesce(r.rolname, '*') || ': ' || array_to_string(s.setconfig, ', '), ' | ' ORDER BY r.rolname NULLS FIRST) \
          FROM pg_db_role_setting s LEFT JOIN pg_roles r ON r.oid = s.setrole WHERE s.setdatabase = d.oid) \
         FROM pg_database d WHERE d.datname = 'app'",
    )
}

fn database_exists(pg: &PgCluster) -> bool {
    pg.psql(
        "postgres",
        "SELECT count(*) FROM pg_database WHERE datname = 'app'",
    )
    .trim()
        == "1"
}

fn roles_present(pg: &PgCluster) -> String {
    pg.psql(
        "postgres",
        &format!("SELECT string_agg(rolname, ',' ORDER BY rolname) FROM pg_roles WHERE rolname IN ({ROLES})"),
    )
    .trim()
    .to_string()
}

/// Every file under `dir`, as text (lossy), for looking for what must not be there.
fn everything_stored(dir: &Path) -> String {
    let mut text = String::new();
    for entry in walk(dir) {
        text.push_str(&String::from_utf8_lossy(&std::fs::read(&entry).unwrap()));
        // Parts are zstd: look inside them too.
        if let Ok(plain) = zstd::decode_all(std::fs::read(&entry).unwrap().as_slice()) {
            text.push_str(&String::from_utf8_lossy(&plain));
        }
    }
    text
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files
}

fn assert_no_secret(text: &str, what: &str) {
    assert!(!text.contains(PASSWORD), "{what} holds the password");
    assert!(
        !text.contains("SCRAM-SHA-256$"),
        "{what} holds a password hash"
    );
}

#[test]
fn a_supabase_database_restores_onto_a_new_server_with_its_roles_and_settings() {
    let dir = tempfile::tempdir().unwrap();
    let (store, backup_log) = backup(dir.path(), false);
    assert_no_secret(&backup_log, "the backup's output");
    assert_no_secret(&everything_stored(dir.path()), "the store");

    let target = fresh_cluster();
    let url = target.url("app");
    // Without --roles: the missing roles are named, nothing changes.
    let refused = backstop(&restore_args(&store, &url, &["--create"]), &[]);
    let line = single_error_line(&refused);
    for role in ["anon", "authenticated", "service_role", "app_owner"] {
        assert!(line.contains(role), "{role} not named: {line}");
    }
    assert!(line.contains("--roles create"), "{line}");
    assert!(!database_exists(&target) && roles_present(&target).is_empty());

    // --roles plan: every missing role named (the login role too), nothing changes.
    let plan = backstop_ok(
        &restore_args(&store, &url, &["--create", "--roles", "plan"]),
        &[],
    );
    let printed = outputs(&plan);
    for role in [
        "anon",
        "authenticated",
        "service_role",
        "app_owner",
        "authenticator",
    ] {
        assert!(printed.contains(role), "{role} not in the plan:\n{printed}");
    }
    assert!(!database_exists(&target) && roles_present(&target).is_empty());

    let restored = backstop_ok(
        &restore_args(&store, &url, &["--create", "--roles", "create"]),
        &[("RUST_LOG", "backstop=debug".into())],
    );
    let printed = outputs(&restored);
    assert_no_secret(&printed, "the restore's output");
    assert!(
        printed.contains("ALTER ROLE authenticator PASSWORD"),
        "the login role's password is left to the operator:\n{printed}"
    );
    assert_same_dump(
        &source().pg_dump("app"),
        &target.pg_dump("app"),
        "new server",
    );
    assert_eq!(roles_of(&target), roles_of(source()));
    assert_eq!(memberships_of(&target), memberships_of(source()));
    assert_eq!(database_of(&target), database_of(source()));
}

#[test]
fn a_createdb_createrole_user_restores_onto_a_new_server_and_says_what_it_could_not_grant() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = backup(dir.path(), false);
    let target = fresh_cluster();
    // As RDS's master user is: no superuser, CREATEDB and CREATEROLE.
    target.psql(
        "postgres",
        "CREATE ROLE admin LOGIN CREATEDB CREATEROLE PASSWORD 'admin-pw'",
    );
    let url = target.url_as("admin", "admin-pw", "app");
    let restored = backstop_ok(
        &restore_args(&store, &url, &["--create", "--roles", "create"]),
        &[],
    );
    let printed = outputs(&restored);
    assert!(
        printed.contains("service_role was created without BYPASSRLS"),
        "{printed}"
    );
    // pgcrypto is trusted: admin creates it, but its functions belong to the bootstrap
    // superuser, so admin cannot grant on them. Said, never silently lost.
    assert!(
        printed.contains("not granted: no privileges were granted for \"crypt\""),
        "{printed}"
    );
    let crypt_grant = "--\n-- Name: FUNCTION crypt(text, text); Type: ACL; Schema: public; Owner: postgres\n--\n\n\
                       GRANT ALL ON FUNCTION public.crypt(text, text) TO anon;\n\n\n";
    // A grant service_role made with its grant option is made by admin, who cannot act as
    // service_role: said, and the grant is there.
    assert!(
        printed.contains("not granted: grants on api.todos made by service_role in the source are made by the restoring role"),
        "{printed}"
    );
    let granted_by = "SET SESSION AUTHORIZATION service_role;\nGRANT SELECT ON TABLE api.todos TO authenticator;\nRESET SESSION AUTHORIZATION;\n";
    let expected = source().pg_dump("app");
    assert!(expected.contains(crypt_grant), "{expected}");
    assert!(expected.contains(granted_by), "{expected}");
    assert_same_dump(
        &expected.replace(crypt_grant, "").replace(
            granted_by,
            "GRANT SELECT ON TABLE api.todos TO authenticator;\n",
        ),
        &target.pg_dump("app"),
        "as admin",
    );
    assert_eq!(
        memberships_of(&target)
            .lines()
            .filter(|l| l.contains("authenticator"))
            .count(),
        3
    );
    assert_eq!(
        target.psql("app", "SELECT count(*) FROM api.todos").trim(),
        "300"
    );
}

#[test]
fn a_role_map_moves_ownership_and_password_hashes_come_only_when_asked() {
    let dir = tempfile::tempdir().unwrap();
    let (store, backup_log) = backup(dir.path(), true);
    assert_no_secret(&backup_log, "the backup's output");
    assert!(
        everything_stored(dir.path()).contains("SCRAM-SHA-256$"),
        "--include-role-passwords keeps the hashes"
    );
    let target = fresh_cluster();
    target.psql("postgres", "CREATE ROLE app_admin NOLOGIN");
    let url = target.url("app");
    let restored = backstop_ok(
        &restore_args(
            &store,
            &url,
            &[
                "--create",
                "--roles",
                "create",
                "--role-map",
                "app_owner=app_admin",
            ],
        ),
        &[("RUST_LOG", "backstop=debug".into())],
    );
    assert_no_secret(&outputs(&restored), "the restore's output");
    assert_eq!(
        target
            .psql(
                "app",
                "SELECT string_agg(DISTINCT pg_get_userbyid(relowner), ',') FROM pg_class \
                 WHERE relnamespace = 'api'::regnamespace"
            )
            .trim(),
        "app_admin"
    );
    assert_eq!(
        target
            .psql(
                "postgres",
                "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = 'app'"
            )
            .trim(),
        "app_admin"
    );
    assert!(!roles_present(&target).contains("app_owner"));
    // The hash came back: the login role logs in with its password.
    let as_authenticator = target.url_as("authenticator", PASSWORD, "app");
    let output = std::process::Command::new(target.bin_dir.join("psql"))
        .args([
            "-X",
            "-A",
            "-t",
            "-d",
            &as_authenticator,
            "-c",
            "SELECT current_user",
        ])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        "authenticator",
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// On every major: roles with attributes, settings (global and in the database), memberships
/// (with 16's INHERIT and SET options), and the database's settings, comment and grants,
/// all dropped from the server, come back through `--create --roles create`.
async fn roles_come_back_on(major: u32) {
    let Some(pg) = cluster_of(major) else {
        return;
    };
    let source = fresh_database_on(pg, "roles");
    let db = source.name.clone();
    let [owner, group, reader, login] =
        ["owner", "group", "reader", "login"].map(|r| format!("{db}_{r}"));
    let names = [&owner, &group, &reader, &login]
        .map(|n| format!("'{n}'"))
        .join(",");
    let options_16 = if major >= 16 {
        " WITH INHERIT FALSE, SET TRUE"
    } else {
        ""
    };
    {
        let _roles = ROLE_CREATION.lock().await;
        pg.psql(
            "postgres",
            &format!(
                "CREATE ROLE \"{owner}\" NOLOGIN CREATEDB;
                 COMMENT ON ROLE \"{owner}\" IS 'owns it';
                 CREATE ROLE \"{group}\" NOLOGIN NOINHERIT;
                 CREATE ROLE \"{reader}\" NOLOGIN;
                 CREATE ROLE \"{login}\" LOGIN CONNECTION LIMIT 7 VALID UNTIL '2030-01-01 00:00:00+00';
                 GRANT \"{group}\" TO \"{login}\" WITH ADMIN OPTION;
                 GRANT \"{reader}\" TO \"{login}\"{options_16};
                 ALTER ROLE \"{login}\" SET work_mem = '8MB';
                 ALTER DATABASE \"{db}\" OWNER TO \"{owner}\";"
            ),
        );
    }
    pg.run_psql(
        &db,
        &[
            "-c",
            &format!("ALTER ROLE \"{login}\" IN DATABASE \"{db}\" SET search_path = app, public"),
            "-c",
            &format!("ALTER DATABASE \"{db}\" SET app.tenant = 'acme'"),
            "-c",
            &format!(
                "COMMENT ON DATABASE \"{db}\" IS 'per version';
                 GRANT CONNECT ON DATABASE \"{db}\" TO \"{login}\";
                 CREATE SCHEMA app AUTHORIZATION \"{owner}\";
                 CREATE TABLE app.t (id int PRIMARY KEY, note text);
                 ALTER TABLE app.t OWNER TO \"{owner}\";
                 INSERT INTO app.t SELECT g, 'n' || g FROM generate_series(1, 50) g;
                 ALTER TABLE app.t ENABLE ROW LEVEL SECURITY;
                 CREATE POLICY mine ON app.t FOR SELECT TO \"{reader}\", \"{group}\" USING (id > 0);
                 GRANT SELECT ON app.t TO \"{group}\";
                 ALTER DEFAULT PRIVILEGES FOR ROLE \"{owner}\" IN SCHEMA app GRANT SELECT ON TABLES TO \"{reader}\";"
            ),
        ],
    );
    let roles = |pg: &PgCluster| {
        pg.psql(
            "postgres",
            &format!(
                "SELECT r.rolname, r.rolsuper, r.rolinherit, r.rolcreatedb, r.rolcanlogin, r.rolconnlimit, \
                 r.rolvaliduntil, shobj_description(r.oid, 'pg_authid'), r.rolconfig \
                 FROM pg_roles r WHERE r.rolname IN ({names}) ORDER BY 1"
            ),
        ) + &pg.psql(
            "postgres",
            &format!(
                "SELECT g.rolname, m.rolname, a.admin_option{} FROM pg_auth_members a \
                 JOIN pg_roles g ON g.oid = a.roleid JOIN pg_roles m ON m.oid = a.member \
                 WHERE m.rolname IN ({names}) ORDER BY 1, 2",
                if major >= 16 { ", a.inherit_option, a.set_option" } else { "" }
            ),
        ) + &pg.psql(
            "postgres",
            &format!(
                "SELECT pg_get_userbyid(d.datdba), shobj_description(d.oid, 'pg_database'), d.datacl, \
                 (SELECT string_agg(coalesce(r.rolname, '*') || ': ' || array_to_string(s.setconfig, ', '), ' | ' ORDER BY r.rolname NULLS FIRST) \
                  FROM pg_db_role_setting s LEFT JOIN pg_roles r ON r.oid = s.setrole WHERE s.setdatabase = d.oid) \
                 FROM pg_database d WHERE d.datname = '{db}'"
            ),
        )
    };
    let (dump, before) = (source.pg_dump(), roles(pg));
    let (_dir, store) = file_store();
    let manifest = take(&source, &store, &options(&source))
        .await
        .unwrap_or_else(|e| panic!("backup on {major}: {e}"));

    // The database and its roles go, as on a server that never had them.
    let drop_all = || {
        pg.psql(
            "postgres",
            &format!("DROP DATABASE IF EXISTS \"{db}\" WITH (FORCE)"),
        );
        pg.psql(
            "postgres",
            &format!("DROP ROLE IF EXISTS \"{login}\", \"{reader}\", \"{group}\", \"{owner}\""),
        );
    };
    drop_all();
    let target = backstop::pg::parse_url(&pg.url(&db)).unwrap();
    let options = RestoreOptions {
        roles: RolesMode::Create,
        create_database: true,
        ..RestoreOptions::new(2)
    };
    let report = restore(store.clone(), &manifest, &target, &options, &|_| {})
        .await
        .unwrap_or_else(|e| panic!("restore on {major}: {e}"));
    let roles_report = report.roles.unwrap_or_default();
    assert!(
        roles_report.not_granted.is_empty(),
        "{:?}",
        roles_report.not_granted
    );
    assert_same_dump(&dump, &pg.pg_dump(&db), &format!("roles on {major}"));
    assert_eq!(roles(pg), before, "roles on {major}");
    drop_all();
}

macro_rules! roles_come_back {
    ($($test:ident: $major:literal;)*) => {$(
        #[tokio::test]
        async fn $test() {
            roles_come_back_on($major).await;
        }
    )*};
}

roles_come_back! {
    roles_and_database_properties_come_back_on_13: 13;
    roles_and_database_properties_come_back_on_14: 14;
    roles_and_database_properties_come_back_on_15: 15;
    roles_and_database_properties_come_back_on_16: 16;
    roles_and_database_properties_come_back_on_17: 17;
    roles_and_database_properties_come_back_on_18: 18;
}

/// Restore-level verification on a scratch server that has none of the source's roles: the
/// run creates them for its scratch restore, passes, and leaves the server as it found it.
#[test]
fn restore_level_verification_works_on_a_scratch_server_without_the_roles() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = backup(dir.path(), false);
    let scratch = fresh_cluster();
    let output = backstop(
        &[
            "verify",
            "--from",
            &store,
            "--database-id",
            "app",
            "--level",
            "restore",
            "--scratch-db",
            &scratch.url("postgres"),
            "--json",
        ],
        &[],
    );
    assert!(output.status.success(), "{}", outputs(&output));
    let result: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(
        result["findings"].as_array().map(Vec::len),
        Some(0),
        "{result}"
    );
    assert_eq!(
        roles_present(&scratch),
        "",
        "the roles it created are dropped again"
    );
}

/// A `--create` restore that fails part-way says what it left: the database it made, to drop
/// before trying again (not `--clean`, which would meet "already exists").
#[tokio::test]
async fn a_failed_create_restore_says_to_drop_the_database_it_made() {
    let source = backstop_tests::postgres::fresh_database("create fails");
    source.psql("CREATE TABLE public.t (id int PRIMARY KEY); INSERT INTO public.t VALUES (1);");
    let (dir, store) = file_store();
    let manifest = take(&source, &store, &options(&source)).await.unwrap();
    let (part, path) = first_table_part(dir.path(), &manifest);
    std::fs::remove_file(&path).unwrap();
    let name = format!("{}_created", source.name);
    let target = backstop::pg::parse_url(&source.cluster().url(&name)).unwrap();
    let options = RestoreOptions {
        create_database: true,
        ..RestoreOptions::new(1)
    };
    let error = restore(store.clone(), &manifest, &target, &options, &|_| {})
        .await
        .unwrap_err()
        .to_string();
    assert!(
        error.contains(&part.key) && error.contains(&format!("DROP DATABASE {name}")),
        "{error}"
    );
    source.cluster().psql(
        "postgres",
        &format!("DROP DATABASE \"{name}\" WITH (FORCE)"),
    );
}

/// `store`'s one set of `app` rewritten as a set of manifest format 4 was: no marks and no
/// referenced tables in its items' markers, its parts and manifest sealed to match.
fn as_written_before_marks(store_dir: &Path) {
    use backstop::engine::manifest::{Manifest, PartKind};
    let sets: Vec<_> = std::fs::read_dir(store_dir.join("app"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.join("manifest.json").exists())
        .collect();
    let [set] = sets.as_slice() else {
        panic!("one set expected, found {sets:?}");
    };
    let mut manifest: Manifest =
        serde_json::from_slice(&std::fs::read(set.join("manifest.json")).unwrap()).unwrap();
    let marker = format!("-- {} ", manifest.item_marker);
    let mut stripped = 0;
    for part in manifest
        .parts
        .iter_mut()
        .filter(|p| p.kind != PartKind::Data)
    {
        let path = set.join(&part.key);
        let plain = zstd::decode_all(std::fs::File::open(&path).unwrap()).unwrap();
        let text = String::from_utf8(plain).unwrap();
        let mut old = String::new();
        for line in text.split_inclusive('\n') {
            match line.strip_prefix(&marker) {
                Some(json) => {
                    let mut header: serde_json::Value = serde_json::from_str(json).unwrap();
                    let fields = header.as_object_mut().unwrap();
                    stripped += fields.remove("marks").is_some() as usize;
                    fields.remove("references");
                    old.push_str(&format!("{marker}{header}\n"));
                }
                None => old.push_str(line),
            }
        }
        let stored = zstd::encode_all(old.as_bytes(), 3).unwrap();
        std::fs::write(&path, &stored).unwrap();
        part.bytes = stored.len() as u64;
        part.plain_bytes = Some(old.len() as u64);
        part.sha256 = {
            use sha2::Digest as _;
            hex::encode(sha2::Sha256::digest(&stored))
        };
    }
    assert!(stripped > 10, "only {stripped} items had marks");
    manifest.format_version = 4;
    manifest.seal = None;
    std::fs::write(
        set.join("manifest.json"),
        serde_json::to_vec(&manifest.sealed()).unwrap(),
    )
    .unwrap();
}

/// A set written before items carried their marks (format 4) restores with `--role-map` and
/// `--no-owner` exactly as the same set written today: its marks are read from its SQL, and
/// the two restored databases dump alike. (Owners, grantees, grantors, policy roles and
/// default privileges all name mapped roles in the source.)
#[test]
fn a_set_written_before_items_carried_marks_restores_as_a_current_one() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = backup(dir.path(), false);
    let old_dir = dir.path().join("old");
    let copied = std::process::Command::new("cp")
        .args(["-a"])
        .arg(dir.path().join("store"))
        .arg(&old_dir)
        .status()
        .unwrap();
    assert!(copied.success());
    as_written_before_marks(&old_dir);
    let old_store = format!("file://{}", old_dir.display());

    let target = fresh_cluster();
    target.psql(
        "postgres",
        "CREATE ROLE app_admin NOLOGIN; CREATE ROLE visitor NOLOGIN",
    );
    for extra in [
        &[
            "--role-map",
            "app_owner=app_admin",
            "--role-map",
            "anon=visitor",
        ][..],
        &["--no-owner", "--role-map", "anon=visitor"][..],
    ] {
        let mut dumps = Vec::new();
        for (n, from) in [&store, &old_store].into_iter().enumerate() {
            let database = format!("copy_{n}_{}", backstop_tests::unique_suffix());
            target.psql("postgres", &format!("CREATE DATABASE {database}"));
            let url = target.url(&database);
            let mut args = restore_args(from, &url, &["--roles", "create"]);
            args.extend_from_slice(extra);
            backstop_ok(&args, &[]);
            dumps.push(target.pg_dump(&database).replace(&database, "copy"));
        }
        assert!(
            dumps[0].contains("visitor"),
            "{extra:?}: the map was not applied"
        );
        assert_same_dump(
            &dumps[0],
            &dumps[1],
            &format!("{extra:?}: old against current"),
        );
    }
}
