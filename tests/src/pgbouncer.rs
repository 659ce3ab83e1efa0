//! PgBouncer in front of the process's PostgreSQL cluster, once per process and pool mode:
//! transaction pooling, for code that must work through a pooler (no named prepared
//! statements), and session pooling, as a managed pooler's session port offers.

use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::postgres::{as_owner, cluster, postgres_ids};
use crate::service;

/// The process's PgBouncer.
#[derive(Debug)]
pub struct PgBouncer {
    pub port: u16,
}

static PGBOUNCER: OnceLock<PgBouncer> = OnceLock::new();
static SESSION_PGBOUNCER: OnceLock<PgBouncer> = OnceLock::new();

/// The transaction-pooling PgBouncer of this process, started on first use.
pub fn pgbouncer() -> &'static PgBouncer {
    PGBOUNCER.get_or_init(|| PgBouncer::start("transaction").unwrap_or_else(|e| panic!("{e}")))
}

/// The session-pooling PgBouncer of this process, started on first use.
pub fn session_pgbouncer() -> &'static PgBouncer {
    SESSION_PGBOUNCER.get_or_init(|| PgBouncer::start("session").unwrap_or_else(|e| panic!("{e}")))
}

impl PgBouncer {
    /// A URL for `database` through the pooler (as the cluster's superuser).
    pub fn url(&self, database: &str) -> String {
        let c = cluster();
        format!(
            "postgresql://{}:{}@127.0.0.1:{}/{database}?sslmode=disable",
            c.user, c.password, self.port
        )
    }

    /// The admin console (database `pgbouncer`), as the cluster's superuser (an admin user).
    pub fn admin_url(&self) -> String {
        self.url("pgbouncer")
    }

    /// How many server connections each database/user pool may open.
    pub const POOL_SIZE: usize = 10;

    fn start(pool_mode: &str) -> Result<Self, String> {
        let binary = ["/usr/sbin/pgbouncer", "/usr/bin/pgbouncer"]
            .into_iter()
            .map(PathBuf::from)
            .find(|p| p.exists())
            .ok_or("pgbouncer is not installed; run `make deps`")?;
        let c = cluster();
        let base = service::fresh_dir(&format!("backstop-pgbouncer-{pool_mode}"));
        let owner = if service::is_root() {
            Some(postgres_ids()?)
        } else {
            None
        };
        for _ in 0..5 {
            let port = service::free_port();
            let ini = base.join("pgbouncer.ini");
            let users = base.join("userlist.txt");
            std::fs::write(&users, format!("\"{}\" \"{}\"\n", c.user, c.password))
                .map_err(|e| format!("write {}: {e}", users.display()))?;
            std::fs::write(
                &ini,
                format!(
                    "[databases]\n* = host={host} port={pg_port}\n\n[pgbouncer]\n\
                     listen_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\n\
                     auth_type = scram-sha-256\nauth_file = {users}\npool_mode = {pool_mode}\n\
                     max_client_conn = 200\ndefault_pool_size = {pool_size}\n\
                     admin_users = {user}\nstats_users = {user}\n\
                     ignore_startup_parameters = extra_float_digits,options\n\
                     logfile = {log}\n",
                    host = c.host,
                    pg_port = c.port,
                    user = c.user,
                    pool_size = Self::POOL_SIZE,
                    users = users.display(),
                    log = base.join("pgbouncer.log").display(),
                ),
            )
            .map_err(|e| format!("write {}: {e}", ini.display()))?;
            if let Some((uid, gid)) = owner {
                for path in [&base, &ini, &users] {
                    std::os::unix::fs::chown(path, Some(uid), Some(gid))
                        .map_err(|e| format!("chown {}: {e}", path.display()))?;
                }
            }
            let mut command = Command::new(&binary);
            command
                .arg(&ini)
                .current_dir(&base)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            as_owner(&mut command, owner);
            let server = service::spawn(command, libc::SIGTERM)
                .map_err(|e| format!("cannot start pgbouncer: {e}"))?;
            let deadline = Instant::now() + Duration::from_secs(20);
            while Instant::now() < deadline && !server.has_exited() {
                if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    let running = server.clone();
                    let cleanup = base.clone();
                    service::at_exit(move || {
                        running.stop(libc::SIGTERM, Duration::from_secs(5));
                        let _ = std::fs::remove_dir_all(cleanup);
                    });
                    return Ok(Self { port });
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            server.stop(libc::SIGKILL, Duration::from_secs(5));
        }
        let log = std::fs::read_to_string(base.join("pgbouncer.log")).unwrap_or_default();
        Err(format!("pgbouncer did not start: {log}"))
    }
}
