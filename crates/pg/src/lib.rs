//! Connecting to PostgreSQL: one place that turns a URL into a client.
//!
//! `sslmode` follows libpq: `disable`; `prefer` (the default) and `require` encrypt without
//! checking the certificate (`require` with `sslrootcert` checks it as `verify-ca` does);
//! `verify-ca` checks the chain against `sslrootcert` (or the system roots); `verify-full` also
//! checks the host name. tokio-postgres knows only the first three modes and no `sslrootcert`,
//! so both are taken out of the URL here and the TLS connector is built to match (`tls`).
//! [`version`] is the server's version, read once per connection, and the supported range.

pub mod budget;
pub mod conninfo;
pub mod liveness;
pub mod session;
mod tls;
pub mod version;

use std::path::PathBuf;
use std::time::Duration;

use tokio_postgres::config::SslMode;
use tokio_postgres::{Client, Config, NoTls};

/// How much TLS to insist on, as libpq's `sslmode` says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsMode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

/// A parsed connection target: tokio-postgres settings plus Backstop's TLS settings.
#[derive(Debug, Clone)]
pub struct PgTarget {
    pub config: Config,
    pub tls: TlsMode,
    pub root_cert: Option<PathBuf>,
    /// Where a password was looked for and not found (empty when one was given), for the
    /// error when the server asks for one.
    pub password_sources: Vec<String>,
}

/// A connection failure, phrased without the password.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("database URL is not valid: {0}; expected postgresql://user:password@host:port/dbname")]
    InvalidUrl(String),
    #[error("cannot connect to database `{database}` on {host}: {reason}")]
    Unreachable {
        database: String,
        host: String,
        reason: String,
    },
    #[error("TLS setup failed: {0}")]
    Tls(String),
}

/// Parses a libpq `sslmode` value.
pub fn tls_mode(value: &str) -> Result<TlsMode, ConnectError> {
    match value {
        "disable" => Ok(TlsMode::Disable),
        "allow" | "prefer" => Ok(TlsMode::Prefer),
        "require" => Ok(TlsMode::Require),
        "verify-ca" => Ok(TlsMode::VerifyCa),
        "verify-full" => Ok(TlsMode::VerifyFull),
        other => Err(ConnectError::InvalidUrl(format!(
            "sslmode `{other}` is not one of disable, prefer, require, verify-ca, verify-full"
        ))),
    }
}

/// Parses a connection URL (`postgresql://...` or `key=value ...`).
pub fn parse_url(raw: &str) -> Result<PgTarget, ConnectError> {
    let mut tls = TlsMode::Prefer;
    let mut root_cert = None;
    let rest = if raw.starts_with("postgres://") || raw.starts_with("postgresql://") {
        let mut url = url::Url::parse(raw).map_err(|e| ConnectError::InvalidUrl(e.to_string()))?;
        let mut kept = Vec::new();
        for (key, value) in url.query_pairs() {
            match key.as_ref() {
                "sslmode" => tls = tls_mode(&value)?,
                "sslrootcert" => root_cert = Some(PathBuf::from(value.as_ref())),
                _ => kept.push((key.into_owned(), value.into_owned())),
            }
        }
        if kept.is_empty() {
            url.set_query(None);
        } else {
            url.query_pairs_mut().clear().extend_pairs(kept);
        }
        url.to_string()
    } else {
        let mut kept = Vec::new();
        for token in raw.split_whitespace() {
            match token.split_once('=') {
                Some(("sslmode", value)) => tls = tls_mode(value.trim_matches('\''))?,
                Some(("sslrootcert", value)) => {
                    root_cert = Some(PathBuf::from(value.trim_matches('\'')))
                }
                _ => kept.push(token),
            }
        }
        kept.join(" ")
    };
    let config = rest
        .parse::<Config>()
        .map_err(|e| ConnectError::InvalidUrl(e.to_string()))?;
    Ok(PgTarget {
        config,
        tls,
        root_cert: None,
        password_sources: Vec::new(),
    }
    .with_tls(tls, root_cert))
}

impl PgTarget {
    /// A target from separate settings, as a secret in the RDS shape holds them.
    pub fn from_parts(host: &str, port: u16, user: &str, password: &str, dbname: &str) -> Self {
        let mut config = Config::new();
        config
            .host(host)
            .port(port)
            .user(user)
            .password(password)
            .dbname(dbname);
        Self {
            config,
            tls: TlsMode::Prefer,
            root_cert: None,
            password_sources: Vec::new(),
        }
        .with_tls(TlsMode::Prefer, None)
    }

    /// The same target with these TLS settings.
    pub fn with_tls(mut self, mut tls: TlsMode, root_cert: Option<PathBuf>) -> Self {
        if tls == TlsMode::Require && root_cert.is_some() {
            tls = TlsMode::VerifyCa; // libpq: require with a root certificate verifies the chain
        }
        self.config.ssl_mode(match tls {
            TlsMode::Disable => SslMode::Disable,
            TlsMode::Prefer => SslMode::Prefer,
            _ => SslMode::Require,
        });
        self.tls = tls;
        self.root_cert = root_cert;
        self
    }
}

/// The database name a target points at (the user name when none is given, as libpq does).
pub fn database_name(target: &PgTarget) -> Option<String> {
    target
        .config
        .get_dbname()
        .or(target.config.get_user())
        .map(str::to_string)
}

fn describe_host(config: &Config) -> String {
    let host = config
        .get_hosts()
        .first()
        .map(|h| match h {
            tokio_postgres::config::Host::Tcp(name) => name.clone(),
            tokio_postgres::config::Host::Unix(path) => path.display().to_string(),
        })
        .unwrap_or_else(|| "localhost".into());
    let port = config.get_ports().first().copied().unwrap_or(5432);
    format!("{host}:{port}")
}

/// How long connecting may take, TCP, TLS, startup and authentication together, when the
/// URL sets no `connect_timeout`: libpq would wait forever on a server that accepts the
/// connection and never answers, and so would every command.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// Idle time before TCP keepalives probe the server (tokio-postgres's default is 2 hours):
/// a server that vanished is noticed within a couple of minutes, not hours.
const KEEPALIVES_IDLE: Duration = Duration::from_secs(60);

/// The bound on connecting to `config`: its `connect_timeout`, else the default.
pub fn connect_bound(config: &Config) -> Duration {
    config
        .get_connect_timeout()
        .copied()
        .unwrap_or(DEFAULT_CONNECT_TIMEOUT)
}

/// Connects and spawns the connection task on the current runtime.
pub async fn connect(target: &PgTarget) -> Result<Client, ConnectError> {
    open(target, None).await
}

/// The notices and warnings a connection's server sent (e.g. `no privileges were granted`),
/// kept until the caller takes them.
#[derive(Debug, Clone, Default)]
pub struct Notices(std::sync::Arc<std::sync::Mutex<Vec<tokio_postgres::error::DbError>>>);

impl Notices {
    pub fn take(&self) -> Vec<tokio_postgres::error::DbError> {
        self.0
            .lock()
            .map(|mut notices| std::mem::take(&mut *notices))
            .unwrap_or_default()
    }

    /// Puts `earlier` back ahead of what arrived since it was taken (for a caller that took
    /// them only to tell the later ones apart).
    pub fn keep(&self, earlier: Vec<tokio_postgres::error::DbError>) {
        if let Ok(mut notices) = self.0.lock() {
            let later = std::mem::take(&mut *notices);
            *notices = earlier;
            notices.extend(later);
        }
    }
}

/// [`connect`], keeping what the server says besides results.
pub async fn connect_keeping_notices(target: &PgTarget) -> Result<(Client, Notices), ConnectError> {
    let notices = Notices::default();
    let client = open(target, Some(notices.clone())).await?;
    Ok((client, notices))
}

async fn open(target: &PgTarget, notices: Option<Notices>) -> Result<Client, ConnectError> {
    let bound = connect_bound(&target.config);
    // Boxed: connecting (TLS included) is a large future, and every caller awaits one.
    tokio::time::timeout(bound, Box::pin(open_unbounded(target, notices)))
        .await
        .unwrap_or_else(|_| {
            Err(ConnectError::Unreachable {
                database: database_name(target).unwrap_or_default(),
                host: describe_host(&target.config),
                reason: format!(
                    "no answer within {} s; check that this is a PostgreSQL server and that it is \
                     not stuck (connect_timeout=N in the URL sets this bound)",
                    bound.as_secs()
                ),
            })
        })
}

async fn open_unbounded(
    target: &PgTarget,
    notices: Option<Notices>,
) -> Result<Client, ConnectError> {
    let mut config = target.config.clone();
    if config.get_keepalives_idle() > KEEPALIVES_IDLE {
        config.keepalives_idle(KEEPALIVES_IDLE);
    }
    let config = &config;
    let unreachable = |e: tokio_postgres::Error| ConnectError::Unreachable {
        database: database_name(target).unwrap_or_default(),
        host: describe_host(config),
        reason: match describe(&e) {
            reason
                if reason.contains("password missing") && !target.password_sources.is_empty() =>
            {
                format!(
                    "the server asks for a password and none was found in {}; add a line to \
                     ~/.pgpass (mode 0600) or set PGPASSWORD",
                    target.password_sources.join(", ")
                )
            }
            reason => reason,
        },
    };
    let client = if target.tls == TlsMode::Disable {
        let (client, connection) = config.connect(NoTls).await.map_err(unreachable)?;
        tokio::spawn(drive(connection, notices));
        client
    } else {
        let (client, connection) = config
            .connect(tls::connector(target)?)
            .await
            .map_err(unreachable)?;
        tokio::spawn(drive(connection, notices));
        client
    };
    Ok(client)
}

/// Runs a connection to its end, keeping its notices when asked.
async fn drive<S, T>(mut connection: tokio_postgres::Connection<S, T>, notices: Option<Notices>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let mut messages = futures::stream::poll_fn(move |cx| connection.poll_message(cx));
    while let Some(message) = futures::StreamExt::next(&mut messages).await {
        match message {
            Ok(tokio_postgres::AsyncMessage::Notice(notice)) => {
                if let Some(kept) = &notices
                    && let Ok(mut list) = kept.0.lock()
                {
                    list.push(notice);
                }
            }
            Ok(_) => {}
            Err(e) => {
                tracing::debug!(error = %e, "database connection closed with an error");
                break;
            }
        }
    }
}

/// Column `index` of `row`, or one line naming the column that did not decode (a server
/// that changed its type): `Row::get` would panic instead, and is banned outside tests.
pub fn value<T: tokio_postgres::types::FromSqlOwned>(
    row: &tokio_postgres::Row,
    index: usize,
) -> Result<T, String> {
    row.try_get(index).map_err(|e| {
        let name = row.columns().get(index).map(|c| c.name()).unwrap_or("?");
        format!("column `{name}` is not what Backstop expects: {e}")
    })
}

/// Column `index` of every row (see [`value`]).
pub fn column<T: tokio_postgres::types::FromSqlOwned>(
    rows: &[tokio_postgres::Row],
    index: usize,
) -> Result<Vec<T>, String> {
    rows.iter().map(|row| value(row, index)).collect()
}

/// A tokio-postgres error with its causes on one line: its own Display says only "db error"
/// for a server-side error, the server's message is in the source chain.
pub fn describe(error: &tokio_postgres::Error) -> String {
    if let Some(db) = error.as_db_error() {
        return format!("{}: {}", db.severity(), db.message());
    }
    if error.is_closed() {
        return "the server closed the connection (backend terminated, server restarted or out of memory)".into();
    }
    let mut line = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        let text = cause.to_string();
        if !line.contains(&text) {
            line.push_str(": ");
            line.push_str(&text);
        }
        source = cause.source();
    }
    line.replace('\n', " ")
}

/// A time read as microseconds since the epoch (`extract(epoch ...) * 1000000`): tokio-postgres
/// here reads no `time` types.
pub fn time_from_micros(micros: i64) -> time::OffsetDateTime {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(micros) * 1000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ssl_settings_are_taken_out_of_the_url() {
        let t = parse_url("postgresql://u:p@db.internal:6432/app?sslmode=verify-full&sslrootcert=/etc/ca.pem&application_name=x").unwrap();
        assert_eq!(t.tls, TlsMode::VerifyFull);
        assert_eq!(
            t.root_cert.as_deref(),
            Some(std::path::Path::new("/etc/ca.pem"))
        );
        assert_eq!(t.config.get_application_name(), Some("x"));
        assert_eq!(database_name(&t).as_deref(), Some("app"));
        assert_eq!(
            parse_url("host=h dbname=d sslmode=disable").unwrap().tls,
            TlsMode::Disable
        );
        assert_eq!(parse_url("postgresql://h/d").unwrap().tls, TlsMode::Prefer);
        let t = parse_url("postgresql://h/d?sslmode=require&sslrootcert=/ca.pem").unwrap();
        assert_eq!(
            t.tls,
            TlsMode::VerifyCa,
            "libpq verifies when require comes with a root cert"
        );
    }

    #[test]
    fn connecting_is_bounded_by_the_url_or_by_default() {
        let default = parse_url("postgresql://h/d").unwrap();
        assert_eq!(connect_bound(&default.config), DEFAULT_CONNECT_TIMEOUT);
        let set = parse_url("postgresql://h/d?connect_timeout=4").unwrap();
        assert_eq!(connect_bound(&set.config), Duration::from_secs(4));
    }

    #[test]
    fn bad_urls_say_what_is_wrong_without_the_password() {
        let e = parse_url("postgresql://u:s3cret@h/d?sslmode=sometimes")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("sslmode `sometimes`") && !e.contains("s3cret"),
            "{e}"
        );
    }
}
