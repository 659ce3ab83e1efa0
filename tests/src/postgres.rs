//! Throwaway PostgreSQL clusters, one per major version per test process, and a fresh
//! database per test.
//!
//! A cluster is `initdb`-ed into a temp dir (as the `postgres` user when running as root,
//! since the server refuses root), listens on a free loopback port only, requires a password
//! over TCP (scram-sha-256) and runs with durability off for speed.
//!
//! [`cluster`] is the default one (Debian's PostgreSQL, or `BACKSTOP_PG_BIN`). [`cluster_of`]
//! starts the version matrix from `.local/pg/<major>` (`scripts/install-pg-versions.sh`);
//! `BACKSTOP_PG_VERSIONS` (e.g. `13,18`) picks the majors the matrix runs, all of them by
//! default. Client tools (psql, pg_dump) are PostgreSQL 18's from `.local/pg/client` when
//! installed, so one pg_dump is the fidelity oracle on every version.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use crate::service::{self, Service};

const SUPERUSER: &str = "postgres";
const START_ATTEMPTS: usize = 5;

/// The process's PostgreSQL cluster.
#[derive(Debug)]
pub struct PgCluster {
    pub host: String,
    pub port: u16,
    pub user: String,
    pub password: String,
    /// The server's major version.
    pub major: u32,
    /// Client tools: psql, pg_dump, pg_isready, pgbench.
    pub bin_dir: PathBuf,
    pub data_dir: PathBuf,
    /// The CA that signed the server's certificate (issued for `localhost` only).
    pub ca_cert: PathBuf,
    /// A CA that signed nothing this server presents.
    pub other_ca_cert: PathBuf,
    /// The security label provider the server has loaded ([`LABEL_PROVIDER`]), where one
    /// could be built for it.
    pub label_provider: Option<&'static str>,
}

/// The provider name of `tests/fixtures/label_provider`, a security label provider that
/// accepts any label.
pub const LABEL_PROVIDER: &str = "backstop_test";

static CLUSTER: OnceLock<PgCluster> = OnceLock::new();

/// The supported majors, oldest first: the test matrix.
pub const MAJORS: [u32; 6] = [13, 14, 15, 16, 17, 18];
static MATRIX: [OnceLock<PgCluster>; 6] = [const { OnceLock::new() }; 6];

/// The default cluster of this process, started on first use.
pub fn cluster() -> &'static PgCluster {
    CLUSTER.get_or_init(|| {
        let server_bin = find_bin_dir().unwrap_or_else(|e| panic!("{e}"));
        PgCluster::start(&server_bin).unwrap_or_else(|e| panic!("{e}"))
    })
}

/// A cluster of its own (the default cluster's version), for a test about a new server: it
/// has none of the roles other tests create. Stopped when the process exits.
pub fn fresh_cluster() -> PgCluster {
    let server_bin = find_bin_dir().unwrap_or_else(|e| panic!("{e}"));
    PgCluster::start(&server_bin).unwrap_or_else(|e| panic!("{e}"))
}

/// The majors `BACKSTOP_PG_VERSIONS` selects (a comma-separated list), all by default.
pub fn selected_majors() -> Vec<u32> {
    match std::env::var("BACKSTOP_PG_VERSIONS") {
        Ok(list) if !list.trim().is_empty() => list
            .split(',')
            .map(|v| {
                v.trim()
                    .parse::<u32>()
                    .ok()
                    .filter(|m| MAJORS.contains(m))
                    .unwrap_or_else(|| {
                        panic!("BACKSTOP_PG_VERSIONS={list}: {v:?} is not one of {MAJORS:?}")
                    })
            })
            .collect(),
        _ => MAJORS.to_vec(),
    }
}

/// The cluster of PostgreSQL `major` for this process, or `None` (with a visible SKIPPED
/// line) when `BACKSTOP_PG_VERSIONS` leaves it out. The default cluster serves its own major.
pub fn cluster_of(major: u32) -> Option<&'static PgCluster> {
    if !selected_majors().contains(&major) {
        eprintln!("SKIPPED: PostgreSQL {major} is not in BACKSTOP_PG_VERSIONS");
        return None;
    }
    static DEFAULT_MAJOR: OnceLock<Option<u32>> = OnceLock::new();
    let default_major =
        DEFAULT_MAJOR.get_or_init(|| find_bin_dir().ok().as_deref().and_then(server_major));
    if *default_major == Some(major) {
        return Some(cluster());
    }
    let index = MAJORS.iter().position(|m| *m == major)?;
    Some(MATRIX[index].get_or_init(|| {
        let server_bin = pg_root().join(major.to_string()).join("bin");
        if !server_bin.join("postgres").exists() {
            panic!(
                "PostgreSQL {major} is not installed in {}; run scripts/install-pg-versions.sh (make deps)",
                server_bin.display()
            );
        }
        PgCluster::start(&server_bin).unwrap_or_else(|e| panic!("PostgreSQL {major}: {e}"))
    }))
}

/// Where scripts/install-pg-versions.sh puts the version matrix and the client tools.
fn pg_root() -> PathBuf {
    crate::workspace_root().join(".local/pg")
}

/// The major version of the server binaries in `bin` (`postgres --version`).
fn server_major(bin: &Path) -> Option<u32> {
    let output = Command::new(bin.join("postgres"))
        .arg("--version")
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&output.stdout);
    let version = text.rsplit(' ').next()?.trim();
    version.split('.').next()?.parse().ok()
}

/// PostgreSQL 18's client tools when installed (they read every older server), else `server_bin`.
fn client_bin(server_bin: &Path) -> PathBuf {
    let client = pg_root().join("client/bin");
    if client.join("pg_dump").exists() {
        client
    } else {
        server_bin.to_path_buf()
    }
}

/// A database made for one test; dropped (with its connections) when this value drops.
#[derive(Debug)]
pub struct TestDb {
    pub name: String,
    cluster: &'static PgCluster,
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A new, empty database on the process's default cluster.
pub fn fresh_database(label: &str) -> TestDb {
    fresh_database_on(cluster(), label)
}

/// A new, empty database on `cluster`.
pub fn fresh_database_on(cluster: &'static PgCluster, label: &str) -> TestDb {
    let label: String = label
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .take(30)
        .collect();
    let name = format!(
        "t_{label}_{}_{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::SeqCst)
    );
    cluster.psql("postgres", &format!("CREATE DATABASE \"{name}\""));
    TestDb { name, cluster }
}

impl TestDb {
    /// A `postgresql://` URL with the superuser's password.
    pub fn url(&self) -> String {
        self.cluster.url(&self.name)
    }

    /// The cluster this database lives on.
    pub fn cluster(&self) -> &'static PgCluster {
        self.cluster
    }

    /// Runs SQL through psql (stops at the first error) and returns its unaligned output.
    pub fn psql(&self, sql: &str) -> String {
        self.cluster.psql(&self.name, sql)
    }

    /// `pg_dump` of this database (see [`PgCluster::pg_dump`]).
    pub fn pg_dump(&self) -> String {
        self.cluster.pg_dump(&self.name)
    }

    /// Runs a SQL file through psql.
    pub fn psql_file(&self, path: &Path) -> String {
        self.psql_file_with(path, &[])
    }

    /// Runs a SQL file with psql variables set (`-v name=value`).
    pub fn psql_file_with(&self, path: &Path, variables: &[(&str, &str)]) -> String {
        let mut args: Vec<String> = variables
            .iter()
            .flat_map(|(name, value)| ["-v".to_string(), format!("{name}={value}")])
            .collect();
        args.extend(["-f".to_string(), path.to_string_lossy().into_owned()]);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        self.cluster.run_psql(&self.name, &args)
    }

    /// Runs a SQL file on past its failing statements (a dump of a newer major on an older
    /// one, say); returns the errors, one line each.
    pub fn psql_file_as_far_as_it_loads(&self, path: &Path) -> Vec<String> {
        let output = self
            .cluster
            .psql_command(
                &self.name,
                &["-v", "ON_ERROR_STOP=0", "-f", &path.to_string_lossy()],
            )
            .output()
            .unwrap_or_else(|e| panic!("cannot run psql: {e}"));
        String::from_utf8_lossy(&output.stderr)
            .lines()
            .filter(|line| line.contains("ERROR:"))
            .map(str::to_string)
            .collect()
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        // A change stream's slot keeps its database from being dropped.
        let slots = format!(
            "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = '{}'",
            self.name
        );
        let sql = format!("DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)", self.name);
        for statement in [slots, sql] {
            let _ = self
                .cluster
                .psql_command("postgres", &["-c", &statement])
                .output();
        }
    }
}

impl PgCluster {
    /// Puts the extension files of `tests/fixtures/extensions` (control and scripts) into this
    /// server's extension directory, so `CREATE EXTENSION` finds them. Idempotent.
    pub fn install_fixture_extensions(&self) {
        let share = self.psql(
            "postgres",
            "SELECT setting FROM pg_config WHERE name = 'SHAREDIR'",
        );
        let target = PathBuf::from(share.trim()).join("extension");
        let source = crate::workspace_root().join("tests/fixtures/extensions");
        for entry in std::fs::read_dir(&source).unwrap_or_else(|e| panic!("{source:?}: {e}")) {
            let path = entry.unwrap_or_else(|e| panic!("{source:?}: {e}")).path();
            let Some(name) = path.file_name() else {
                continue;
            };
            std::fs::copy(&path, target.join(name))
                .unwrap_or_else(|e| panic!("cannot install {path:?} into {target:?}: {e}"));
        }
    }

    /// The URL of `database` on this cluster.
    pub fn url(&self, database: &str) -> String {
        self.url_as(&self.user, &self.password, database)
    }

    /// The URL of `database` on this cluster for another role.
    pub fn url_as(&self, user: &str, password: &str, database: &str) -> String {
        format!(
            "postgresql://{user}:{password}@{}:{}/{database}?sslmode=disable",
            self.host, self.port
        )
    }

    /// `pg_dump` (schema and data) of `database`, without the `\restrict`/`\unrestrict` lines
    /// whose key changes on every run.
    pub fn pg_dump(&self, database: &str) -> String {
        self.pg_dump_with(database, &[])
    }

    /// [`PgCluster::pg_dump`] with more of pg_dump's options (e.g. `--statistics-only`).
    pub fn pg_dump_with(&self, database: &str, options: &[&str]) -> String {
        let output = Command::new(self.bin_dir.join("pg_dump"))
            .args(["--no-sync", "-d", &self.url(database)])
            .args(options)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("cannot run pg_dump: {e}"));
        if !output.status.success() {
            panic!(
                "pg_dump failed on {database}: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        String::from_utf8_lossy(&output.stdout)
            .lines()
            .filter(|l| !l.starts_with("\\restrict") && !l.starts_with("\\unrestrict"))
            .map(|l| format!("{l}\n"))
            .collect()
    }

    /// Runs SQL through psql; panics with psql's message on failure.
    pub fn psql(&self, database: &str, sql: &str) -> String {
        self.run_psql(database, &["-c", sql])
    }

    pub fn run_psql(&self, database: &str, args: &[&str]) -> String {
        let output = self
            .psql_command(database, args)
            .output()
            .unwrap_or_else(|e| panic!("cannot run psql: {e}"));
        if !output.status.success() {
            panic!(
                "psql failed on {database}: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    fn psql_command(&self, database: &str, args: &[&str]) -> Command {
        let mut command = Command::new(self.bin_dir.join("psql"));
        command
            .args([
                "-X",
                "-q",
                "-A",
                "-t",
                "-v",
                "ON_ERROR_STOP=1",
                "-d",
                &self.url(database),
            ])
            .args(args)
            .stdin(Stdio::null());
        command
    }

    fn start(server_bin: &Path) -> Result<Self, String> {
        let major = server_major(server_bin)
            .ok_or_else(|| format!("cannot run {}/postgres --version", server_bin.display()))?;
        let bin_dir = client_bin(server_bin);
        let base = service::fresh_dir("backstop-pg");
        let data_dir = base.join("data");
        let password = format!("pw-{:016x}", rand::random::<u64>());
        let pwfile = base.join("pwfile");
        std::fs::write(&pwfile, &password)
            .map_err(|e| format!("write {}: {e}", pwfile.display()))?;
        let owner = if service::is_root() {
            Some(postgres_ids()?)
        } else {
            None
        };
        if let Some((uid, gid)) = owner {
            for path in [&base, &pwfile] {
                std::os::unix::fs::chown(path, Some(uid), Some(gid))
                    .map_err(|e| format!("chown {}: {e}", path.display()))?;
            }
        }

        let mut initdb = Command::new(server_bin.join("initdb"));
        initdb
            .arg("-D")
            .arg(&data_dir)
            .args([
                "-U",
                SUPERUSER,
                "-E",
                "UTF8",
                "--locale=C.UTF-8",
                "--no-sync",
            ])
            .args(["--auth-local=trust", "--auth-host=scram-sha-256"])
            .arg(format!("--pwfile={}", pwfile.display()))
            .current_dir(&base);
        as_owner(&mut initdb, owner);
        let output = initdb
            .output()
            .map_err(|e| format!("cannot run initdb: {e}"))?;
        if !output.status.success() {
            return Err(format!(
                "initdb failed: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            ));
        }

        let (ca_cert, other_ca_cert) = make_certificates(&base, owner)?;

        let mut preload: Vec<String> = Vec::new();
        if preloadable_statements(server_bin) {
            preload.push("pg_stat_statements".into());
        }
        let label_provider = build_label_provider(major, &base);
        if let Some(library) = &label_provider {
            preload.push(library.display().to_string());
        }
        for _ in 0..START_ATTEMPTS {
            let port = service::free_port();
            let server = start_server(server_bin, &base, &data_dir, port, owner, &preload)?;
            if wait_ready(&bin_dir, port, &server) {
                let cleanup_base = base.clone();
                service::at_exit(move || {
                    server.stop(libc::SIGQUIT, Duration::from_secs(10));
                    let _ = std::fs::remove_dir_all(cleanup_base);
                });
                return Ok(Self {
                    host: "127.0.0.1".into(),
                    port,
                    user: SUPERUSER.into(),
                    password,
                    major,
                    bin_dir,
                    data_dir,
                    ca_cert,
                    other_ca_cert,
                    label_provider: label_provider.as_ref().map(|_| LABEL_PROVIDER),
                });
            }
            server.stop(libc::SIGQUIT, Duration::from_secs(10));
        }
        let log = std::fs::read_to_string(base.join("postgres.log")).unwrap_or_default();
        Err(format!(
            "PostgreSQL did not start after {START_ATTEMPTS} attempts: {log}"
        ))
    }
}

/// Compiles `tests/fixtures/label_provider` into `base` for a server of `major`, where a C
/// compiler and that major's server headers (the client tools' `pg_config`) are at hand.
fn build_label_provider(major: u32, base: &Path) -> Option<PathBuf> {
    let pg_config = pg_root().join("client/bin/pg_config");
    let ask = |flag: &str| -> Option<String> {
        let output = Command::new(&pg_config).arg(flag).output().ok()?;
        output
            .status
            .success()
            .then(|| String::from_utf8_lossy(&output.stdout).trim().to_string())
    };
    let headers_major: u32 = ask("--version")?
        .strip_prefix("PostgreSQL ")?
        .split(['.', ' '])
        .next()?
        .parse()
        .ok()?;
    if headers_major != major {
        return None;
    }
    let includes = ask("--includedir-server")?;
    let source =
        crate::workspace_root().join("tests/fixtures/label_provider/backstop_test_labels.c");
    let library = base.join("backstop_test_labels.so");
    let output = Command::new("cc")
        .args(["-O2", "-fPIC", "-shared", "-I", &includes, "-o"])
        .arg(&library)
        .arg(&source)
        .output()
        .ok()?;
    if !output.status.success() {
        eprintln!(
            "the test security label provider did not build for PostgreSQL {major}: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        );
        return None;
    }
    Some(library)
}

/// Whether this installation ships `pg_stat_statements` (Debian's `lib/`, the npm builds'
/// `lib/postgresql/`).
fn preloadable_statements(bin_dir: &Path) -> bool {
    let Some(root) = bin_dir.parent() else {
        return false;
    };
    ["lib", "lib/postgresql"]
        .iter()
        .any(|dir| root.join(dir).join("pg_stat_statements.so").exists())
}

fn start_server(
    bin_dir: &Path,
    base: &Path,
    data_dir: &Path,
    port: u16,
    owner: Option<(u32, u32)>,
    preload: &[String],
) -> Result<Service, String> {
    let log_path = base.join("postgres.log");
    let log = std::fs::File::create(&log_path)
        .map_err(|e| format!("create {}: {e}", log_path.display()))?;
    if let Some((uid, gid)) = owner {
        let _ = std::os::unix::fs::chown(&log_path, Some(uid), Some(gid));
    }
    let mut command = Command::new(bin_dir.join("postgres"));
    command
        .arg("-D")
        .arg(data_dir)
        .args(["-p", &port.to_string(), "-h", "127.0.0.1", "-k", ""])
        .args([
            "-c",
            "fsync=off",
            "-c",
            "synchronous_commit=off",
            "-c",
            "full_page_writes=off",
        ])
        .args(["-c", "max_connections=300", "-c", "shared_buffers=256MB"])
        // Point-in-time recovery tests read logical decoding slots (one per test database).
        .args(["-c", "wal_level=logical", "-c", "max_replication_slots=64"])
        // Query-performance health reads pg_stat_statements (in the databases that install
        // it); security labels need a provider.
        .args(
            (!preload.is_empty())
                .then(|| {
                    [
                        "-c".to_string(),
                        format!("shared_preload_libraries={}", preload.join(",")),
                    ]
                })
                .into_iter()
                .flatten(),
        )
        // The whole suite shares a cluster: at the default 5000 statements, entries of a test's
        // workload were evicted (and counted again from one) while other tests ran theirs.
        .args(
            preload
                .iter()
                .any(|library| library == "pg_stat_statements")
                .then_some(["-c", "pg_stat_statements.max=50000"])
                .into_iter()
                .flatten(),
        )
        .args([
            "-c",
            "log_min_messages=warning",
            "-c",
            "max_wal_size=4GB",
            "-c",
            "ssl=on",
        ])
        .arg("-c")
        .arg(format!(
            "ssl_cert_file={}",
            base.join("server.crt").display()
        ))
        .arg("-c")
        .arg(format!(
            "ssl_key_file={}",
            base.join("server.key").display()
        ))
        .current_dir(base)
        .stdin(Stdio::null())
        .stdout(log.try_clone().map_err(|e| e.to_string())?)
        .stderr(log);
    as_owner(&mut command, owner);
    service::spawn(command, libc::SIGQUIT).map_err(|e| format!("cannot start postgres: {e}"))
}

/// A CA, a server certificate it signs for `localhost`, and an unrelated CA, with openssl.
fn make_certificates(base: &Path, owner: Option<(u32, u32)>) -> Result<(PathBuf, PathBuf), String> {
    let run = |args: &[&str]| -> Result<(), String> {
        let output = Command::new("openssl")
            .args(args)
            .current_dir(base)
            .output()
            .map_err(|e| format!("cannot run openssl (run `make deps`): {e}"))?;
        if output.status.success() {
            Ok(())
        } else {
            Err(format!(
                "openssl {} failed: {}",
                args[0],
                String::from_utf8_lossy(&output.stderr).trim()
            ))
        }
    };
    let key = ["-newkey", "rsa:2048", "-nodes"];
    let self_signed = |subject: &str, key_file: &str, cert_file: &str| {
        let validity = [
            "-days", "3", "-subj", subject, "-keyout", key_file, "-out", cert_file,
        ];
        run(&[&["req", "-x509"][..], &key, &validity].concat())
    };
    self_signed("/CN=Backstop Test CA", "ca.key", "ca.crt")?;
    run(&[
        &["req"][..],
        &key,
        &[
            "-subj",
            "/CN=localhost",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
        ],
    ]
    .concat())?;
    std::fs::write(base.join("san.ext"), "subjectAltName=DNS:localhost\n")
        .map_err(|e| e.to_string())?;
    run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "3",
        "-out",
        "server.crt",
        "-extfile",
        "san.ext",
    ])?;
    self_signed("/CN=Unrelated CA", "other.key", "other-ca.crt")?;
    let server_key = base.join("server.key");
    if let Some((uid, gid)) = owner {
        for file in ["server.key", "server.crt"] {
            std::os::unix::fs::chown(base.join(file), Some(uid), Some(gid))
                .map_err(|e| e.to_string())?;
        }
    }
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&server_key, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| e.to_string())?;
    Ok((base.join("ca.crt"), base.join("other-ca.crt")))
}

fn wait_ready(bin_dir: &Path, port: u16, server: &Service) -> bool {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if server.has_exited() {
            return false;
        }
        let ready = Command::new(bin_dir.join("pg_isready"))
            .args(["-q", "-h", "127.0.0.1", "-p", &port.to_string()])
            .status()
            .is_ok_and(|s| s.success());
        if ready {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

pub(crate) fn as_owner(command: &mut Command, owner: Option<(u32, u32)>) {
    use std::os::unix::process::CommandExt;
    if let Some((uid, gid)) = owner {
        command
            .uid(uid)
            .gid(gid)
            .env("HOME", "/tmp")
            .env_remove("PGDATA");
    }
}

/// The uid and gid of the `postgres` user, from /etc/passwd.
pub(crate) fn postgres_ids() -> Result<(u32, u32), String> {
    let passwd =
        std::fs::read_to_string("/etc/passwd").map_err(|e| format!("read /etc/passwd: {e}"))?;
    passwd
        .lines()
        .map(|line| line.split(':').collect::<Vec<_>>())
        .find(|fields| fields.first() == Some(&SUPERUSER))
        .and_then(|fields| Some((fields.get(2)?.parse().ok()?, fields.get(3)?.parse().ok()?)))
        .ok_or_else(|| {
            "running as root but there is no `postgres` user; install PostgreSQL with `make deps`"
                .into()
        })
}

/// PostgreSQL's server binaries: `BACKSTOP_PG_BIN`, else the newest /usr/lib/postgresql/*/bin.
fn find_bin_dir() -> Result<PathBuf, String> {
    if let Ok(dir) = std::env::var("BACKSTOP_PG_BIN") {
        return Ok(PathBuf::from(dir));
    }
    let mut candidates: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .map_err(|_| {
            "PostgreSQL is not installed; run `make deps` (or set BACKSTOP_PG_BIN)".to_string()
        })?
        .flatten()
        .filter_map(|e| {
            let version = e.file_name().to_string_lossy().parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    candidates.sort();
    candidates
        .pop()
        .map(|(_, bin)| bin)
        .ok_or_else(|| "no PostgreSQL server binaries found; run `make deps`".into())
}
