//! Configuration the functions read from their environment, parsed in one place.
//!
//! Parsing takes a lookup function instead of reading the process environment directly,
//! so callers (and tests) pass whatever source they have. Every error names the variable.

use std::time::Duration;

use crate::health::FreshnessThresholds;
use crate::layout::DatabaseId;
use crate::store::StoreUrl;

/// The store URL, e.g. `s3://my-backups/prod`.
pub const STORE_VAR: &str = "BACKSTOP_STORE";
/// Comma-separated database ids a scheduled run covers.
pub const DATABASE_IDS_VAR: &str = "BACKSTOP_DATABASE_IDS";
/// Backup age (hours) from which freshness is a warning.
pub const WARNING_HOURS_VAR: &str = "BACKSTOP_WARNING_AFTER_HOURS";
/// Backup age (hours) from which freshness is critical.
pub const CRITICAL_HOURS_VAR: &str = "BACKSTOP_CRITICAL_AFTER_HOURS";

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
    pub databases: Vec<DatabaseId>,
    pub freshness: FreshnessThresholds,
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
        let databases = lookup(DATABASE_IDS_VAR)
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| {
                DatabaseId::new(s).map_err(|e| ConfigError::Invalid {
                    var: DATABASE_IDS_VAR,
                    reason: e.to_string(),
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
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
        Ok(Self {
            store,
            databases,
            freshness,
        })
    }

    /// The database ids a request covers: the one it names (which must be configured when a
    /// list is configured), or every configured one.
    pub fn databases_for(&self, requested: Option<&str>) -> Result<Vec<DatabaseId>, ConfigError> {
        match requested {
            Some(name) => {
                let id = DatabaseId::new(name).map_err(|e| ConfigError::Invalid {
                    var: DATABASE_IDS_VAR,
                    reason: e.to_string(),
                })?;
                if !self.databases.is_empty() && !self.databases.contains(&id) {
                    return Err(ConfigError::Invalid {
                        var: DATABASE_IDS_VAR,
                        reason: format!("database `{id}` is not in the configured list; add it"),
                    });
                }
                Ok(vec![id])
            }
            None if self.databases.is_empty() => Err(ConfigError::Missing {
                var: DATABASE_IDS_VAR,
                hint: "a scheduled run needs the comma-separated database ids it covers",
            }),
            None => Ok(self.databases.clone()),
        }
    }
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
            (DATABASE_IDS_VAR, "main, analytics"),
            (WARNING_HOURS_VAR, "2"),
        ])
        .unwrap();
        assert_eq!(c.databases.len(), 2);
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
        let err = config(&[(STORE_VAR, "file:///x"), (CRITICAL_HOURS_VAR, "soon")]).unwrap_err();
        assert!(err.to_string().contains(CRITICAL_HOURS_VAR), "{err}");
        let err = config(&[(STORE_VAR, "file:///x")])
            .unwrap()
            .databases_for(None)
            .unwrap_err();
        assert!(err.to_string().contains(DATABASE_IDS_VAR), "{err}");
    }
}
