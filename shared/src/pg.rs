//! Connecting to PostgreSQL: one place that turns a URL into a client.
//!
//! TLS is negotiated with the platform's TLS library when the URL's `sslmode` asks for it
//! (`prefer` or `require`); `disable` (or no `sslmode`, on a loopback host) connects in clear.

use postgres_native_tls::MakeTlsConnector;
use tokio_postgres::config::SslMode;
use tokio_postgres::{Client, Config, NoTls};

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

/// Parses a connection URL (`postgresql://...` or `key=value` form).
pub fn parse_url(url: &str) -> Result<Config, ConnectError> {
    url.parse::<Config>()
        .map_err(|e| ConnectError::InvalidUrl(e.to_string()))
}

/// The database name a URL points at (the user name when none is given, as libpq does).
pub fn database_name(config: &Config) -> Option<String> {
    config
        .get_dbname()
        .or(config.get_user())
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

/// Connects and spawns the connection task on the current runtime.
pub async fn connect(config: &Config) -> Result<Client, ConnectError> {
    let unreachable = |e: tokio_postgres::Error| ConnectError::Unreachable {
        database: database_name(config).unwrap_or_default(),
        host: describe_host(config),
        reason: describe(&e),
    };
    if config.get_ssl_mode() == SslMode::Disable {
        let (client, connection) = config.connect(NoTls).await.map_err(unreachable)?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::warn!(error = %e, "database connection closed with an error");
            }
        });
        return Ok(client);
    }
    let tls = native_tls::TlsConnector::builder()
        .build()
        .map_err(|e| ConnectError::Tls(e.to_string()))?;
    let (client, connection) = config
        .connect(MakeTlsConnector::new(tls))
        .await
        .map_err(unreachable)?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::warn!(error = %e, "database connection closed with an error");
        }
    });
    Ok(client)
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
