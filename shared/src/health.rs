//! Backup freshness: a pure classification of the newest backup's age.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// How worried to be. Ordered from best to worst.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HealthStatus {
    Healthy,
    Warning,
    Critical,
}

impl HealthStatus {
    /// The value published as the `HealthStatus` metric: 0 healthy, 1 warning, 2 critical.
    pub fn metric_value(self) -> f64 {
        match self {
            HealthStatus::Healthy => 0.0,
            HealthStatus::Warning => 1.0,
            HealthStatus::Critical => 2.0,
        }
    }
}

/// Backup-age thresholds: at or above `warning_after` warns, at or above `critical_after`
/// is critical.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FreshnessThresholds {
    pub warning_after: Duration,
    pub critical_after: Duration,
}

impl Default for FreshnessThresholds {
    fn default() -> Self {
        Self {
            warning_after: Duration::from_secs(6 * 3600),
            critical_after: Duration::from_secs(24 * 3600),
        }
    }
}

/// Classifies the age of the newest successful backup; no backup at all is critical.
pub fn classify_backup_age(
    age: Option<Duration>,
    thresholds: &FreshnessThresholds,
) -> HealthStatus {
    match age {
        None => HealthStatus::Critical,
        Some(age) if age >= thresholds.critical_after => HealthStatus::Critical,
        Some(age) if age >= thresholds.warning_after => HealthStatus::Warning,
        Some(_) => HealthStatus::Healthy,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: u64 = 3600;

    #[test]
    fn age_maps_to_status_at_the_documented_thresholds() {
        let t = FreshnessThresholds::default();
        let at = |hours: u64| classify_backup_age(Some(Duration::from_secs(hours * HOUR)), &t);
        assert_eq!(at(0), HealthStatus::Healthy);
        assert_eq!(at(5), HealthStatus::Healthy);
        assert_eq!(at(6), HealthStatus::Warning);
        assert_eq!(at(23), HealthStatus::Warning);
        assert_eq!(at(25), HealthStatus::Critical);
        assert_eq!(classify_backup_age(None, &t), HealthStatus::Critical);
    }

    #[test]
    fn thresholds_are_configurable() {
        let t = FreshnessThresholds {
            warning_after: Duration::from_secs(HOUR),
            critical_after: Duration::from_secs(2 * HOUR),
        };
        assert_eq!(
            classify_backup_age(Some(Duration::from_secs(90 * 60)), &t),
            HealthStatus::Warning
        );
    }
}

/// What the store says about one database's backups at a given moment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Freshness {
    pub database: String,
    pub status: HealthStatus,
    /// The newest committed backup, if any.
    pub last_backup: Option<String>,
    pub age_seconds: Option<u64>,
    pub backup_count: usize,
}

/// Reads the committed backups of `database` from `store` and classifies the newest one's age
/// at `now`. Fails (rather than reporting "no backups") when the store cannot be listed.
pub async fn backup_freshness(
    store: &dyn crate::store::Store,
    database: &crate::layout::DatabaseId,
    now: time::OffsetDateTime,
    thresholds: &FreshnessThresholds,
) -> Result<Freshness, crate::store::StoreError> {
    let objects = store
        .list(&crate::layout::database_prefix(database))
        .await?;
    let backups =
        crate::layout::committed_backups(database, objects.iter().map(|o| o.key.as_str()));
    let newest = backups.last();
    let age = newest
        .and_then(|id| id.started_at())
        .map(|started| Duration::try_from(now - started).unwrap_or(Duration::ZERO));
    Ok(Freshness {
        database: database.to_string(),
        status: classify_backup_age(age, thresholds),
        last_backup: newest.map(ToString::to_string),
        age_seconds: age.map(|a| a.as_secs()),
        backup_count: backups.len(),
    })
}
