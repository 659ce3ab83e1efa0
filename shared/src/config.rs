//! Configuration the functions read from their environment, parsed in one place.
//!
//! Parsing takes a lookup function instead of reading the process environment directly,
//! so callers (and tests) pass whatever source they have. Every error names the variable.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use crate::connection::DatabaseSource;
use crate::health::FreshnessThresholds;
use crate::layout::DatabaseId;
use crate::store::StoreUrl;

/// The store URL, e.g. `s3://my-backups/prod`.
pub const STORE_VAR: &str = "BACKSTOP_STORE";
/// The databases a deployment covers, as JSON: database id → where its connection comes from,
/// e.g. `{"main": {"secret": "arn:...", "sslmode": "verify-full"}}` (see [`DatabaseSource`]).
pub const DATABASES_VAR: &str = "BACKSTOP_DATABASES";
/// The SNS topic alerts go to.
pub const ALERT_TOPIC_VAR: &str = "BACKSTOP_ALERT_TOPIC_ARN";
/// Backup age (hours) from which freshness is a warning.
pub const WARNING_HOURS_VAR: &str = "BACKSTOP_WARNING_AFTER_HOURS";
/// Backup age (hours) from which freshness is critical.
pub const CRITICAL_HOURS_VAR: &str = "BACKSTOP_CRITICAL_AFTER_HOURS";

/// The age recipients every backup is encrypted to (comma-separated `age1…`).
pub const RECIPIENTS_VAR: &str = "BACKSTOP_RECIPIENTS";
/// `true`: a backup without recipients is refused.
pub const REQUIRE_ENCRYPTION_VAR: &str = "BACKSTOP_REQUIRE_ENCRYPTION";

/// `true`: backups store table data as shared chunks, so each stores only what changed.
pub const INCREMENTAL_VAR: &str = "BACKSTOP_INCREMENTAL";
/// The key of an encrypted database's shared chunks: 64 hexadecimal digits, kept as a secret.
pub const CHUNK_KEY_VAR: &str = "BACKSTOP_CHUNK_KEY";

/// The Secrets Manager secret holding the chunk key (64 hexadecimal digits), for functions.
pub const CHUNK_KEY_SECRET_VAR: &str = "BACKSTOP_CHUNK_KEY_SECRET";

/// Where a function finds the chunk key: `BACKSTOP_CHUNK_KEY` itself, or the secret
/// `BACKSTOP_CHUNK_KEY_SECRET` names (read at each backup, so a new value takes effect).
#[derive(Debug, Clone, Default)]
pub enum ChunkKeySource {
    #[default]
    None,
    Given(crate::engine::chunks::ChunkKey),
    Secret(String),
}

impl ChunkKeySource {
    pub fn from_env(lookup: &dyn Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        if let Some(key) = chunk_key(lookup)? {
            return Ok(Self::Given(key));
        }
        Ok(
            match lookup(CHUNK_KEY_SECRET_VAR).filter(|v| !v.trim().is_empty()) {
                Some(secret) => Self::Secret(secret.trim().to_string()),
                None => Self::None,
            },
        )
    }

    /// The key, reading the secret when it is one. An error names the secret, never its value.
    pub async fn resolve(
        &self,
        aws: &aws_config::SdkConfig,
    ) -> Result<Option<crate::engine::chunks::ChunkKey>, String> {
        match self {
            Self::None => Ok(None),
            Self::Given(key) => Ok(Some(key.clone())),
            Self::Secret(secret) => {
                let value = crate::aws::secret_string(aws, secret).await?;
                crate::engine::chunks::ChunkKey::from_hex(&value)
                    .map(Some)
                    .map_err(|e| format!("secret {secret}: {e}"))
            }
        }
    }
}

/// The chunk key from `BACKSTOP_CHUNK_KEY`, when set. Its value is never part of an error.
pub fn chunk_key(
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<crate::engine::chunks::ChunkKey>, ConfigError> {
    match lookup(CHUNK_KEY_VAR).filter(|v| !v.trim().is_empty()) {
        None => Ok(None),
        Some(text) => crate::engine::chunks::ChunkKey::from_hex(&text)
            .map(Some)
            .map_err(|e| ConfigError::Invalid {
                var: CHUNK_KEY_VAR,
                reason: e.to_string(),
            }),
    }
}

/// An environment lookup a function keeps for later reads (sources named by `url_env`).
pub type Env = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// Parallel connections a `*_JOBS` setting asks for: a positive number, at most 1024 (no
/// server takes more from one run).
pub fn jobs(
    lookup: &dyn Fn(&str) -> Option<String>,
    var: &'static str,
) -> Result<usize, ConfigError> {
    let n = positive_number(lookup, var, 2)?;
    if n > 1024 {
        return Err(ConfigError::Invalid {
            var,
            reason: format!("{n} is more than 1024, the most parallel connections a run opens"),
        });
    }
    Ok(n as usize)
}

/// The largest number a setting takes (`positive_number`).
pub const MAX_SETTING: u64 = 1_000_000_000;

/// A positive whole number from `var`, at most [`MAX_SETTING`], or `default` when it is not set.
pub fn positive_number(
    lookup: &dyn Fn(&str) -> Option<String>,
    var: &'static str,
    default: u64,
) -> Result<u64, ConfigError> {
    match lookup(var) {
        None => Ok(default),
        Some(raw) => {
            let n =
                raw.trim()
                    .parse::<u64>()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or(ConfigError::Invalid {
                        var,
                        reason: format!("`{raw}` is not a positive whole number"),
                    })?;
            // No setting of Backstop is meaningful past this; beyond it, sizes in MiB and
            // durations in hours or days would overflow what they are turned into.
            if n > MAX_SETTING {
                return Err(ConfigError::Invalid {
                    var,
                    reason: format!("{n} is more than {MAX_SETTING}, the most any setting takes"),
                });
            }
            Ok(n)
        }
    }
}

/// `true`/`false` (or 1/0) from `var`, `default` when it is not set.
pub fn flag(
    lookup: &dyn Fn(&str) -> Option<String>,
    var: &'static str,
    default: bool,
) -> Result<bool, ConfigError> {
    match lookup(var).as_deref().map(str::trim) {
        None | Some("") => Ok(default),
        Some("true" | "1") => Ok(true),
        Some("false" | "0") => Ok(false),
        Some(other) => Err(ConfigError::Invalid {
            var,
            reason: format!("`{other}` is not true or false"),
        }),
    }
}

/// The recipients backups are encrypted to (`None`: plaintext), failing closed: a recipient
/// that does not parse, or none where `BACKSTOP_REQUIRE_ENCRYPTION` is set, is an error.
pub fn recipients(
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<crate::engine::encryption::Recipients>, ConfigError> {
    let list = lookup(RECIPIENTS_VAR).unwrap_or_default();
    let recipients = crate::engine::encryption::Recipients::parse_list(&list).map_err(|e| {
        ConfigError::Invalid {
            var: RECIPIENTS_VAR,
            reason: e.to_string(),
        }
    })?;
    if !recipients.is_empty() {
        return Ok(Some(recipients));
    }
    if flag(lookup, REQUIRE_ENCRYPTION_VAR, false)? {
        return Err(ConfigError::Invalid {
            var: REQUIRE_ENCRYPTION_VAR,
            reason: format!(
                "encryption is required and {RECIPIENTS_VAR} holds no recipient; set it to the age1… recipients backups are for"
            ),
        });
    }
    Ok(None)
}

/// A single connection source from `var` (the shape of one `BACKSTOP_DATABASES` entry), or
/// `None` when it is not set.
pub fn source(
    lookup: &dyn Fn(&str) -> Option<String>,
    var: &'static str,
) -> Result<Option<DatabaseSource>, ConfigError> {
    let Some(raw) = lookup(var).filter(|r| !r.trim().is_empty()) else {
        return Ok(None);
    };
    let invalid = |reason: String| ConfigError::Invalid { var, reason };
    let source: DatabaseSource = serde_json::from_str(&raw)
        .map_err(|e| invalid(format!("not a connection source ({e})")))?;
    source.validate().map_err(invalid)?;
    Ok(Some(source))
}

/// A configuration value that is missing or unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("environment variable {var} is not set; {hint}")]
    Missing {
        var: &'static str,
        hint: &'static str,
    },
    #[error("environment variable {var} is invalid: {reason}")]
    Invalid { var: &'static str, reason: String },
}

/// Settings every function shares.
#[derive(Debug, Clone, PartialEq)]
pub struct FunctionConfig {
    pub store: StoreUrl,
    /// Every configured database, sorted by id.
    pub databases: Vec<DatabaseId>,
    pub sources: BTreeMap<DatabaseId, DatabaseSource>,
    pub freshness: FreshnessThresholds,
    /// `None`: alerts are logged only.
    pub alert_topic: Option<String>,
}

impl FunctionConfig {
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let store = lookup(STORE_VAR)
            .filter(|v| !v.trim().is_empty())
            .ok_or(ConfigError::Missing {
                var: STORE_VAR,
                hint: "set it to s3://bucket/prefix or file:///path",
            })?
            .trim()
            .parse::<StoreUrl>()
            .map_err(|e| ConfigError::Invalid {
                var: STORE_VAR,
                reason: e.to_string(),
            })?;
        let sources = databases(lookup(DATABASES_VAR).as_deref())?;
        let databases = sources.keys().cloned().collect();
        let defaults = FreshnessThresholds::default();
        let freshness = FreshnessThresholds {
            warning_after: hours(&lookup, WARNING_HOURS_VAR)?.unwrap_or(defaults.warning_after),
            critical_after: hours(&lookup, CRITICAL_HOURS_VAR)?.unwrap_or(defaults.critical_after),
        };
        if freshness.warning_after > freshness.critical_after {
            return Err(ConfigError::Invalid {
                var: WARNING_HOURS_VAR,
                reason: format!("it must not exceed {CRITICAL_HOURS_VAR}"),
            });
        }
        let alert_topic = lookup(ALERT_TOPIC_VAR)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty());
        if let Some(topic) = &alert_topic
            && !topic.starts_with("arn:")
        {
            return Err(ConfigError::Invalid {
                var: ALERT_TOPIC_VAR,
                reason: format!("`{topic}` is not an SNS topic ARN (arn:aws:sns:...)"),
            });
        }
        Ok(Self {
            store,
            databases,
            sources,
            freshness,
            alert_topic,
        })
    }

    /// The database ids a request covers: the one it names (which must be configured when a
    /// list is configured), or every configured one.
    pub fn databases_for(&self, requested: Option<&str>) -> Result<Vec<DatabaseId>, ConfigError> {
        match requested {
            Some(name) => {
                let id = DatabaseId::new(name).map_err(|e| ConfigError::Invalid {
                    var: DATABASES_VAR,
                    reason: e.to_string(),
                })?;
                if !self.databases.contains(&id) {
                    return Err(ConfigError::Invalid {
                        var: DATABASES_VAR,
                        reason: format!("database `{id}` is not configured; add it"),
                    });
                }
                Ok(vec![id])
            }
            None => Ok(self.databases.clone()),
        }
    }
}

/// Parses the databases map; errors name the database and what to change.
fn databases(raw: Option<&str>) -> Result<BTreeMap<DatabaseId, DatabaseSource>, ConfigError> {
    let invalid = |reason: String| ConfigError::Invalid {
        var: DATABASES_VAR,
        reason,
    };
    let raw = raw
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .ok_or(ConfigError::Missing {
            var: DATABASES_VAR,
            hint: r#"set it to JSON such as {"main": {"secret": "<secret ARN>"}}"#,
        })?;
    let map: BTreeMap<String, serde_json::Value> = serde_json::from_str(raw)
        .map_err(|e| invalid(format!("not a JSON object of database ids ({e})")))?;
    if map.is_empty() {
        return Err(invalid("it names no database".into()));
    }
    let mut sources = BTreeMap::new();
    for (name, value) in map {
        let id = DatabaseId::new(&name).map_err(|e| invalid(e.to_string()))?;
        let source: DatabaseSource = serde_json::from_value(value)
            .map_err(|e| invalid(format!("database `{name}`: {e}")))?;
        source
            .validate()
            .map_err(|reason| invalid(format!("database `{name}`: {reason}")))?;
        sources.insert(id, source);
    }
    Ok(sources)
}

fn hours(
    lookup: &impl Fn(&str) -> Option<String>,
    var: &'static str,
) -> Result<Option<Duration>, ConfigError> {
    let Some(raw) = lookup(var) else {
        return Ok(None);
    };
    let value: f64 = raw.trim().parse().map_err(|_| ConfigError::Invalid {
        var,
        reason: format!("`{raw}` is not a number of hours"),
    })?;
    if !(value.is_finite() && value > 0.0) {
        return Err(ConfigError::Invalid {
            var,
            reason: "it must be a positive number of hours".into(),
        });
    }
    // Past this, the hours in seconds no longer fit a duration; no threshold means it.
    if value > MAX_SETTING as f64 {
        return Err(ConfigError::Invalid {
            var,
            reason: format!("{raw} is more than {MAX_SETTING} hours, the most it takes"),
        });
    }
    Ok(Some(Duration::from_secs_f64(value * 3600.0)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(vars: &[(&str, &str)]) -> Result<FunctionConfig, ConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        FunctionConfig::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn reads_store_databases_and_thresholds() {
        let c = config(&[
            (STORE_VAR, "s3://backups/prod"),
            (
                DATABASES_VAR,
                r#"{"main": {"secret": "arn:aws:secretsmanager:eu-west-1:1:secret:main"}, "analytics": {"url_env": "ANALYTICS_URL", "sslmode": "verify-full"}}"#,
            ),
            (WARNING_HOURS_VAR, "2"),
        ])
        .unwrap();
        assert_eq!(c.databases.len(), 2);
        assert_eq!(c.databases[0].as_str(), "analytics");
        assert_eq!(c.freshness.warning_after, Duration::from_secs(7200));
        assert_eq!(c.databases_for(None).unwrap().len(), 2);
        assert_eq!(c.databases_for(Some("main")).unwrap()[0].as_str(), "main");
        assert!(
            c.databases_for(Some("other"))
                .unwrap_err()
                .to_string()
                .contains("`other`")
        );
    }

    #[test]
    fn errors_name_the_variable() {
        let err = config(&[]).unwrap_err().to_string();
        assert!(err.contains(STORE_VAR), "{err}");
        let err = config(&[(STORE_VAR, "ftp://x")]).unwrap_err().to_string();
        assert!(err.contains(STORE_VAR) && err.contains("ftp"), "{err}");
        let err = config(&[
            (STORE_VAR, "file:///x"),
            (DATABASES_VAR, r#"{"main": {"url_env": "U"}}"#),
            (CRITICAL_HOURS_VAR, "soon"),
        ])
        .unwrap_err();
        assert!(err.to_string().contains(CRITICAL_HOURS_VAR), "{err}");
        let err = config(&[(STORE_VAR, "file:///x")]).unwrap_err();
        assert!(err.to_string().contains(DATABASES_VAR), "{err}");
        for (databases, expected) in [
            ("main", "not a JSON object"),
            ("{}", "names no database"),
            (r#"{"_x": {"url_env": "U"}}"#, "`_x`"),
            (
                r#"{"main": {"url": "postgresql://u:pw@h/d"}}"#,
                "unknown field `url`",
            ),
            (r#"{"main": {}}"#, "exactly one of"),
            (
                r#"{"main": {"secret": "s", "sslmode": "maybe"}}"#,
                "`maybe`",
            ),
        ] {
            let err = config(&[(STORE_VAR, "file:///x"), (DATABASES_VAR, databases)])
                .unwrap_err()
                .to_string();
            assert!(
                err.contains(DATABASES_VAR) && err.contains(expected),
                "{databases}: {err}"
            );
        }
        let err = config(&[
            (STORE_VAR, "file:///x"),
            (DATABASES_VAR, r#"{"main": {"url_env": "U"}}"#),
            (ALERT_TOPIC_VAR, "alerts"),
        ])
        .unwrap_err();
        assert!(err.to_string().contains(ALERT_TOPIC_VAR), "{err}");
    }

    /// Numbers as an operator might type them, from sensible to absurd.
    fn typed_numbers() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        prop_oneof![
            any::<u64>().prop_map(|n| n.to_string()),
            any::<i64>().prop_map(|n| n.to_string()),
            any::<f64>().prop_map(|n| n.to_string()),
            any::<u128>().prop_map(|n| n.to_string()),
            (1u64..=2 * MAX_SETTING).prop_map(|n| n.to_string()),
            "[0-9eE.+-]{1,40}",
            ".{0,12}",
        ]
    }

    proptest::proptest! {
        /// Every numeric setting reader either gives a value within its bound or refuses
        /// naming the variable; none panics, whatever the text.
        #[test]
        fn every_numeric_setting_is_bounded_or_refused_by_name(raw in typed_numbers()) {
            let lookup = |_: &str| Some(raw.clone());
            match positive_number(&lookup, "BACKSTOP_X", 1) {
                Ok(n) => proptest::prop_assert!((1..=MAX_SETTING).contains(&n)),
                Err(e) => proptest::prop_assert!(e.to_string().contains("BACKSTOP_X")),
            }
            match jobs(&lookup, "BACKSTOP_JOBS") {
                Ok(n) => proptest::prop_assert!((1..=1024).contains(&n)),
                Err(e) => proptest::prop_assert!(e.to_string().contains("BACKSTOP_JOBS")),
            }
            for var in [WARNING_HOURS_VAR, CRITICAL_HOURS_VAR] {
                match config(&[
                    (STORE_VAR, "file:///tmp/b"),
                    (DATABASES_VAR, r#"{"main": {"url_env": "MAIN_URL"}}"#),
                    (var, &raw),
                ]) {
                    Ok(c) => proptest::prop_assert!(
                        c.freshness.critical_after.as_secs() <= MAX_SETTING * 3600
                    ),
                    Err(e) => proptest::prop_assert!(e.to_string().contains(var), "{}", e),
                }
            }
        }
    }
}
