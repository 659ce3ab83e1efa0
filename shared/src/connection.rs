//! Where a database's connection comes from, and turning that into a [`PgTarget`].
//!
//! Each configured database names exactly one source: an environment variable holding a URL,
//! an AWS Secrets Manager secret (the RDS/Supabase JSON shape with host, port, username,
//! password and dbname, or a plain URL string), or an SSM SecureString parameter holding a
//! URL; plus optional TLS settings that override the source's. Secrets are fetched on every
//! run, so a rotated password is picked up without a redeploy. No error here ever contains a
//! secret's value: only its name and what is wrong with its shape.

use std::path::PathBuf;

use aws_config::SdkConfig;
use serde::Deserialize;
use serde_json::Value;

use crate::pg::{ConnectError, PgTarget, TlsMode, parse_url, tls_mode};

/// How one database is reached, as configured.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseSource {
    /// The name of an environment variable holding a `postgresql://` URL.
    pub url_env: Option<String>,
    /// A Secrets Manager secret id or ARN.
    pub secret: Option<String>,
    /// An SSM parameter name (SecureString) holding a URL.
    pub ssm_parameter: Option<String>,
    /// libpq `sslmode`, overriding the source's.
    pub sslmode: Option<String>,
    /// A CA bundle file (PEM) for `verify-ca` / `verify-full`.
    pub sslrootcert: Option<PathBuf>,
    /// The connection pooler's admin console in front of this database (PgBouncer's
    /// `pgbouncer` database), a source of the same shape: the monitor reports its pools.
    #[serde(default)]
    pub pooler: Option<Box<DatabaseSource>>,
}

/// The one place a source points at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin<'a> {
    Env(&'a str),
    Secret(&'a str),
    Ssm(&'a str),
}

impl DatabaseSource {
    /// Checks the source names exactly one origin and a valid `sslmode`; the error says what
    /// to change.
    pub fn validate(&self) -> Result<(), String> {
        let named = [&self.url_env, &self.secret, &self.ssm_parameter]
            .iter()
            .filter(|o| o.is_some())
            .count();
        if named != 1 {
            return Err(
                "set exactly one of `url_env`, `secret` or `ssm_parameter` (optionally with `sslmode` and `sslrootcert`)".into(),
            );
        }
        if let Some(mode) = &self.sslmode {
            tls_mode(mode).map_err(|e| e.to_string())?;
        }
        if let Some(pooler) = &self.pooler {
            pooler.validate().map_err(|e| format!("pooler: {e}"))?;
        }
        Ok(())
    }

    pub fn origin(&self) -> Option<Origin<'_>> {
        match (&self.url_env, &self.secret, &self.ssm_parameter) {
            (Some(var), _, _) => Some(Origin::Env(var)),
            (_, Some(id), _) => Some(Origin::Secret(id)),
            (_, _, Some(name)) => Some(Origin::Ssm(name)),
            _ => None,
        }
    }
}

/// Why a database's connection settings could not be had.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    #[error("environment variable {var} (the URL of database `{database}`) is not set")]
    EnvMissing { database: String, var: String },
    #[error("cannot read {what} `{name}` for database `{database}`: {reason}")]
    Unreadable {
        database: String,
        what: &'static str,
        name: String,
        reason: String,
    },
    #[error(
        "{what} `{name}` for database `{database}` is not usable: {reason}; store a postgresql:// URL or JSON with host, port, username, password and dbname"
    )]
    Shape {
        database: String,
        what: &'static str,
        name: String,
        reason: String,
    },
    #[error("database `{database}`: {source}")]
    Invalid {
        database: String,
        source: ConnectError,
    },
}

impl ResolveError {
    /// Whether trying again later may work (throttling, timeouts).
    pub fn is_retryable(&self) -> bool {
        matches!(self, ResolveError::Unreadable { reason, .. } if reason.contains("Throttl") || reason.contains("timeout"))
    }
}

/// Fetches the connection settings of `database` from its source.
pub async fn resolve(
    database: &str,
    source: &DatabaseSource,
    aws: &SdkConfig,
    env: &(dyn Fn(&str) -> Option<String> + Sync),
) -> Result<PgTarget, ResolveError> {
    let invalid = |source| ResolveError::Invalid {
        database: database.to_string(),
        source,
    };
    let target = match source.origin() {
        Some(Origin::Env(var)) => {
            let url = env(var).ok_or_else(|| ResolveError::EnvMissing {
                database: database.to_string(),
                var: var.to_string(),
            })?;
            parse_url(url.trim()).map_err(invalid)?
        }
        Some(Origin::Secret(id)) => {
            let value = read_secret(database, id, aws).await?;
            parse_secret(&value).map_err(|reason| ResolveError::Shape {
                database: database.to_string(),
                what: "secret",
                name: id.to_string(),
                reason,
            })?
        }
        Some(Origin::Ssm(name)) => {
            let value = read_parameter(database, name, aws).await?;
            parse_url(value.trim()).map_err(|e| ResolveError::Shape {
                database: database.to_string(),
                what: "SSM parameter",
                name: name.to_string(),
                reason: e.to_string(),
            })?
        }
        None => {
            return Err(ResolveError::Shape {
                database: database.to_string(),
                what: "source",
                name: String::new(),
                reason: "no source configured".into(),
            });
        }
    };
    Ok(match &source.sslmode {
        Some(mode) => {
            let mode = tls_mode(mode).map_err(invalid)?;
            let root = source.sslrootcert.clone().or(target.root_cert.clone());
            target.with_tls(mode, root)
        }
        None if source.sslrootcert.is_some() => {
            let mode = target.tls;
            target.with_tls(mode, source.sslrootcert.clone())
        }
        None => target,
    })
}

async fn read_secret(database: &str, id: &str, aws: &SdkConfig) -> Result<String, ResolveError> {
    let client = aws_sdk_secretsmanager::Client::new(aws);
    let unreadable = |reason: String| ResolveError::Unreadable {
        database: database.to_string(),
        what: "secret",
        name: id.to_string(),
        reason,
    };
    let output = client
        .get_secret_value()
        .secret_id(id)
        .send()
        .await
        .map_err(|e| unreadable(crate::aws::describe_error(&e)))?;
    output
        .secret_string()
        .map(str::to_string)
        .ok_or_else(|| unreadable("it holds binary data, not a string".into()))
}

async fn read_parameter(
    database: &str,
    name: &str,
    aws: &SdkConfig,
) -> Result<String, ResolveError> {
    let client = aws_sdk_ssm::Client::new(aws);
    let unreadable = |reason: String| ResolveError::Unreadable {
        database: database.to_string(),
        what: "SSM parameter",
        name: name.to_string(),
        reason,
    };
    let output = client
        .get_parameter()
        .name(name)
        .with_decryption(true)
        .send()
        .await
        .map_err(|e| unreadable(crate::aws::describe_error(&e)))?;
    output
        .parameter()
        .and_then(|p| p.value())
        .map(str::to_string)
        .ok_or_else(|| unreadable("it has no value".into()))
}

/// Reads a secret string: a URL, or JSON in the RDS shape (`host`, `port`, `username`,
/// `password`, `dbname`; `user` and `database` are accepted too). Reasons name fields only.
pub fn parse_secret(value: &str) -> Result<PgTarget, String> {
    let trimmed = value.trim();
    if !trimmed.starts_with('{') {
        return parse_url(trimmed).map_err(|e| match e {
            ConnectError::InvalidUrl(_) => "it is neither JSON nor a valid connection URL".into(),
            other => other.to_string(),
        });
    }
    let json: Value =
        serde_json::from_str(trimmed).map_err(|_| "it starts like JSON but does not parse")?;
    let text = |names: &[&str]| -> Option<String> {
        names
            .iter()
            .find_map(|n| json.get(*n).and_then(Value::as_str))
            .map(str::to_string)
    };
    let host = text(&["host"]).ok_or("field `host` is missing or not a string")?;
    let user = text(&["username", "user"]).ok_or("field `username` is missing")?;
    let password = text(&["password"]).ok_or("field `password` is missing")?;
    let dbname = text(&["dbname", "database"]).unwrap_or_else(|| "postgres".into());
    let port = match json.get("port") {
        None | Some(Value::Null) => 5432,
        Some(Value::Number(n)) => n
            .as_u64()
            .and_then(|p| u16::try_from(p).ok())
            .ok_or("field `port` is not a port number")?,
        Some(Value::String(s)) => s.parse().map_err(|_| "field `port` is not a port number")?,
        Some(_) => return Err("field `port` is not a port number".into()),
    };
    let mut target = PgTarget::from_parts(&host, port, &user, &password, &dbname);
    if let Some(mode) = text(&["sslmode"]) {
        let mode: TlsMode = tls_mode(&mode).map_err(|e| e.to_string())?;
        target = target.with_tls(mode, None);
    }
    Ok(target)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pg::database_name;

    #[test]
    fn secrets_in_the_rds_shape_or_as_urls() {
        let t = parse_secret(
            r#"{"engine":"postgres","host":"db.example","port":6543,"username":"app","password":"p@ss w0rd","dbname":"main"}"#,
        )
        .unwrap();
        assert_eq!(t.config.get_user(), Some("app"));
        assert_eq!(t.config.get_password(), Some(&b"p@ss w0rd"[..]));
        assert_eq!(t.config.get_ports(), [6543]);
        assert_eq!(database_name(&t).as_deref(), Some("main"));
        let t = parse_secret(r#"{"host":"h","port":"5433","user":"u","password":"x","database":"d","sslmode":"require"}"#).unwrap();
        assert_eq!((t.config.get_ports()[0], t.tls), (5433, TlsMode::Require));
        let t = parse_secret("postgresql://u:x@h:5432/d?sslmode=verify-full").unwrap();
        assert_eq!(t.tls, TlsMode::VerifyFull);
    }

    #[test]
    fn bad_secrets_name_the_field_never_the_value() {
        for (secret, expected) in [
            (r#"{"host":"h","username":"u"}"#, "`password`"),
            (
                r#"{"host":"h","username":"u","password":"hunter2","port":"hunter2"}"#,
                "`port`",
            ),
            (r#"{"host": "h", "password": "hunter2""#, "does not parse"),
            ("hunter2", "neither JSON nor"),
        ] {
            let err = parse_secret(secret).err().unwrap();
            assert!(
                err.contains(expected) && !err.contains("hunter2"),
                "{secret}: {err}"
            );
        }
    }

    #[test]
    fn a_source_names_exactly_one_origin() {
        let none = DatabaseSource {
            url_env: None,
            secret: None,
            ssm_parameter: None,
            sslmode: None,
            sslrootcert: None,
            pooler: None,
        };
        assert!(none.validate().unwrap_err().contains("exactly one"));
        let bad_pooler = DatabaseSource {
            secret: Some("s".into()),
            pooler: Some(Box::new(none.clone())),
            ..none.clone()
        };
        assert!(
            bad_pooler
                .validate()
                .unwrap_err()
                .starts_with("pooler: set exactly one")
        );
        let two = DatabaseSource {
            url_env: Some("A".into()),
            secret: Some("s".into()),
            ..none.clone()
        };
        assert!(two.validate().is_err());
        let bad_tls = DatabaseSource {
            secret: Some("s".into()),
            sslmode: Some("sometimes".into()),
            ..none.clone()
        };
        assert!(bad_tls.validate().unwrap_err().contains("sometimes"));
        let ok = DatabaseSource {
            ssm_parameter: Some("/backstop/main/url".into()),
            ..none
        };
        assert_eq!(ok.origin(), Some(Origin::Ssm("/backstop/main/url")));
    }
}
