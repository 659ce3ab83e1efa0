//! Health of a database and of its backups, for the monitor function and `backstop health`.
//!
//! - [`backups`]: read from the store: the newest backup's age, count and bytes, the newest
//!   verification verdict, and a size anomaly (the newest backup under half the median of the
//!   seven before it).
//! - [`database`]: read-only queries (simple protocol, so they work through PgBouncer in
//!   transaction mode): size, connections, hit ratios, old transactions, wraparound headroom,
//!   replication slots, invalid indexes, and advice (tables without a primary key, unused
//!   indexes, foreign keys without an index, each with the statement that fixes it).
//! - [`pooler`]: PgBouncer's admin console: clients active and waiting, server connections,
//!   the longest and the average wait.
//! - [`statements`]: where the time goes: the top statements of `pg_stat_statements` (when
//!   installed) and sequential against index scans.
//! - [`alerting`]: the pure decision of when a status deserves an alert.
//!
//! Every judgement is a pure function of gathered figures and thresholds.

pub mod alerting;
pub mod backups;
pub mod database;
pub mod pooler;
pub(crate) mod query;
pub mod statements;
pub mod verification_log;

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::alert::Severity;
use crate::metrics::Metric;

/// How worried to be. Ordered from best to worst: a part that could not be judged (unknown)
/// outweighs a warning, and a critical finding outweighs not knowing the rest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HealthStatus {
    Healthy,
    Warning,
    Unknown,
    Critical,
}

impl HealthStatus {
    /// The value published as the `HealthStatus` metric: 0 healthy, 1 warning, 2 critical,
    /// 3 unknown (the Nagios numbers `backstop health` exits with).
    pub fn metric_value(self) -> f64 {
        match self {
            HealthStatus::Healthy => 0.0,
            HealthStatus::Warning => 1.0,
            HealthStatus::Critical => 2.0,
            HealthStatus::Unknown => 3.0,
        }
    }
}

impl HealthStatus {
    /// The status a finding of `severity` calls for (advice leaves it healthy).
    pub fn of(severity: Severity) -> Self {
        match severity {
            Severity::Info => HealthStatus::Healthy,
            Severity::Warning => HealthStatus::Warning,
            Severity::Critical => HealthStatus::Critical,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            HealthStatus::Healthy => "healthy",
            HealthStatus::Warning => "warning",
            HealthStatus::Critical => "critical",
            HealthStatus::Unknown => "unknown",
        }
    }
}

/// One thing the checks noticed. `Info` is advice: it never changes the status.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    /// Which check: `backup_age`, `wraparound`, `fk_without_index`...
    pub check: String,
    pub severity: Severity,
    pub message: String,
    /// A statement or command that fixes it, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
    /// The check could not be judged (a figure could not be read): the status is unknown.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub unknown: bool,
}

impl Finding {
    pub fn new(check: &str, severity: Severity, message: impl Into<String>) -> Self {
        Self {
            check: check.into(),
            severity,
            message: message.into(),
            fix: None,
            unknown: false,
        }
    }

    /// A check that could not be judged; alerts carry it as a warning.
    pub fn unknown(check: &str, message: impl Into<String>) -> Self {
        Self {
            unknown: true,
            ..Self::new(check, Severity::Warning, message)
        }
    }

    pub fn with_fix(mut self, fix: impl Into<String>) -> Self {
        self.fix = Some(fix.into());
        self
    }
}

/// The worst status among `findings` (healthy when there are none).
pub fn status_of(findings: &[Finding]) -> HealthStatus {
    findings
        .iter()
        .map(|f| {
            if f.unknown {
                HealthStatus::Unknown
            } else {
                HealthStatus::of(f.severity)
            }
        })
        .max()
        .unwrap_or(HealthStatus::Healthy)
}

/// One database's health at one moment: its backups, the database itself, and what to do.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HealthReport {
    #[serde(rename = "database_id")]
    pub database: String,
    #[serde(with = "time::serde::rfc3339")]
    pub checked_at: time::OffsetDateTime,
    pub status: HealthStatus,
    pub backups: backups::BackupHealth,
    /// `None` when no connection was given or it could not be made (a finding says which).
    pub database_health: Option<database::DatabaseFigures>,
    /// The pooler's figures, when its admin console was given and answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pooler: Option<pooler::PoolerFigures>,
    /// The declared recovery objectives, judged; absent when none are declared.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub objectives: Option<crate::objectives::ObjectiveFigures>,
    pub findings: Vec<Finding>,
}

impl HealthReport {
    /// Puts the pieces together; the status is the worst finding's.
    pub fn new(
        database: &str,
        checked_at: time::OffsetDateTime,
        backups: backups::BackupHealth,
        database_health: Option<database::DatabaseFigures>,
        mut findings: Vec<Finding>,
    ) -> Self {
        findings.sort_by_key(|f| std::cmp::Reverse(f.severity));
        Self {
            database: database.to_string(),
            checked_at,
            status: status_of(&findings),
            backups,
            database_health,
            pooler: None,
            objectives: None,
            findings,
        }
    }

    /// Judges the backups against `declared` objectives (the commands the findings print name
    /// `store`); `watched_since`: the monitor's oldest sample of this database, if any.
    pub fn with_objectives(
        mut self,
        declared: &crate::objectives::Declared,
        store: &str,
        watched_since: Option<time::OffsetDateTime>,
    ) -> Self {
        let watched_for =
            watched_since.and_then(|since| Duration::try_from(self.checked_at - since).ok());
        let measured = crate::objectives::Measured::from_backups(&self.backups, watched_for);
        let (figures, findings) =
            crate::objectives::assess(declared, &measured, store, &self.database);
        self.findings.extend(findings);
        self.findings.sort_by_key(|f| std::cmp::Reverse(f.severity));
        self.status = status_of(&self.findings);
        self.objectives = Some(figures);
        self
    }

    /// Adds what the pooler's admin console said (or why it could not be read: its health is
    /// then unknown) and judges it.
    pub fn with_pooler(
        mut self,
        gathered: Result<pooler::PoolerFigures, String>,
        thresholds: &pooler::PoolerThresholds,
    ) -> Self {
        match gathered {
            Ok(figures) => {
                self.findings.extend(pooler::assess(&figures, thresholds));
                self.pooler = Some(figures);
            }
            Err(reason) => self.findings.push(Finding::unknown(
                "pooler",
                format!("pooler health unknown: {reason}"),
            )),
        }
        self.findings.sort_by_key(|f| std::cmp::Reverse(f.severity));
        self.status = status_of(&self.findings);
        self
    }

    /// Every figure as a CloudWatch metric.
    pub fn metrics(&self) -> Vec<Metric> {
        let mut metrics = vec![Metric::count("HealthStatus", self.status.metric_value())];
        metrics.extend(self.backups.metrics());
        if let Some(figures) = &self.database_health {
            metrics.extend(figures.metrics());
        }
        if let Some(pooler) = &self.pooler {
            metrics.extend(pooler.metrics());
        }
        if let Some(objectives) = &self.objectives {
            metrics.extend(objectives.metrics());
        }
        metrics
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
    fn not_knowing_outweighs_a_warning_and_a_critical_finding_outweighs_not_knowing() {
        let warning = Finding::new("backup_age", Severity::Warning, "old");
        let unknown = Finding::unknown("database", "figure unreadable");
        let critical = Finding::new("wraparound", Severity::Critical, "close");
        assert_eq!(
            status_of(std::slice::from_ref(&warning)),
            HealthStatus::Warning
        );
        assert_eq!(
            status_of(&[warning.clone(), unknown.clone()]),
            HealthStatus::Unknown
        );
        assert_eq!(status_of(&[unknown, critical]), HealthStatus::Critical);
        assert_eq!(HealthStatus::Unknown.metric_value(), 3.0);
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

/// Every threshold the checks use.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Thresholds {
    pub freshness: FreshnessThresholds,
    pub database: database::DatabaseThresholds,
    pub pooler: pooler::PoolerThresholds,
}

/// Checks `database`'s backups in `store` and, given a connection, the database itself.
/// A database that cannot be reached, or a figure it returns that cannot be read, makes its
/// health unknown (a finding says which); a store that cannot be read is an error, never
/// "no backups".
pub async fn check(
    store: &dyn crate::store::Store,
    database: &crate::layout::DatabaseId,
    target: Option<&crate::pg::PgTarget>,
    now: time::OffsetDateTime,
    thresholds: &Thresholds,
) -> Result<HealthReport, crate::store::StoreError> {
    let facts = backups::gather(store, database).await?;
    let (backup_health, mut findings) = backups::assess(&facts, now, &thresholds.freshness);
    // Every verification's entry in the log, none edited or deleted since it was written.
    let logged = verification_log::check(store, database, now).await?;
    findings.extend(logged.findings);
    let figures = match target {
        None => None,
        Some(target) => {
            // A server that answers the connection and then stops answering queries makes the
            // database's health unknown within the bound, never a hung check.
            let bound = crate::pg::liveness::DEFAULT_SILENCE_LIMIT;
            let gathered = match crate::pg::connect(target).await {
                Ok(client) => tokio::time::timeout(bound, database::gather(&client))
                    .await
                    .unwrap_or_else(|_| {
                        Err(format!(
                            "the server answered no health query within {} s",
                            bound.as_secs()
                        ))
                    }),
                Err(e) => Err(e.to_string()),
            };
            match gathered {
                Ok(figures) => {
                    findings.extend(database::assess(&figures, &thresholds.database));
                    Some(figures)
                }
                Err(reason) => {
                    findings.push(Finding::unknown(
                        "database",
                        format!("database health unknown: {reason}"),
                    ));
                    None
                }
            }
        }
    };
    Ok(HealthReport::new(
        database.as_str(),
        now,
        backup_health,
        figures,
        findings,
    ))
}
