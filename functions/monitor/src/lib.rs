//! Monitor Lambda: backup freshness and database health, before anyone has to ask.
//!
//! Invoked hourly by an EventBridge schedule (every configured database) or on demand with
//! `{"database": "main"}`. For each database it checks the backups in the store and, through
//! the database's connection source, the database itself (read-only queries); records every
//! figure in CloudWatch; and alerts only when the status changes, when a critical status lasts
//! (at most every `BACKSTOP_REALERT_HOURS`, default 6), and when it recovers. A store that
//! cannot be listed fails the invocation rather than reporting "no backups". A scheduled run
//! also writes the store's status page (`backstop status --html`) to
//! `_backstop/health/status.html`, for people who would rather open a page than a console.
//!
//! With `BACKSTOP_OBJECTIVES` set, each database's recovery objectives are judged too (RPO,
//! RTO, restore-test cadence; a database it leaves out gets the defaults): their findings join
//! the status, so an objective at risk or missed alerts like any other finding and its recovery
//! is said; and each run keeps a sample of them for `backstop report`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use backstop::alert::exposure::{Exposure, Good};
use backstop::alert::{Alert, Severity, kind};
use backstop::config::{ConfigError, positive_number};
use backstop::connection::resolve;
use backstop::health::alerting::{self, Notice};
use backstop::health::{Finding, HealthReport, HealthStatus, Thresholds, check};
use backstop::layout::DatabaseId;
use backstop::objectives::samples::{self, Sample};
use backstop::objectives::{Declared, DeclaredText, OBJECTIVES_VAR, parse_declared};
use backstop::store::StoreError;
use common::{Base, Delivery};
use lambda_runtime::{Diagnostic, LambdaEvent};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;

/// Hours between repeats of a lasting critical alert.
pub const REALERT_VAR: &str = "BACKSTOP_REALERT_HOURS";

/// Everything the handler needs, built once at cold start.
pub struct Deps {
    /// Settings, store, AWS configuration, sinks and the function's name.
    pub base: Base,
    pub thresholds: Thresholds,
    pub realert_after: Duration,
    /// The declared recovery objectives per database; `None`: none declared, none judged.
    pub objectives: Option<BTreeMap<DatabaseId, Declared>>,
    /// The clock; tests pass their own.
    pub now: Arc<dyn Fn() -> OffsetDateTime + Send + Sync>,
}

impl Deps {
    /// Builds the dependencies on `base`; errors name the variable.
    pub fn new(base: Base) -> Result<Self, ConfigError> {
        let realert_hours = positive_number(base.env.as_ref(), REALERT_VAR, 6)?;
        let objectives = objectives(base.env.as_ref(), &base.config.databases)?;
        Ok(Self {
            objectives,
            thresholds: Thresholds {
                freshness: base.config.freshness,
                ..Thresholds::default()
            },
            realert_after: Duration::from_secs(realert_hours * 3600),
            now: Arc::new(OffsetDateTime::now_utc),
            base,
        })
    }
}

/// The objectives `BACKSTOP_OBJECTIVES` declares for `databases`, the defaults for those it
/// leaves out; a database it names that is not configured is refused (a typo would otherwise
/// judge nothing).
pub fn objectives(
    lookup: &dyn Fn(&str) -> Option<String>,
    databases: &[DatabaseId],
) -> Result<Option<BTreeMap<DatabaseId, Declared>>, ConfigError> {
    let Some(raw) = lookup(OBJECTIVES_VAR).filter(|raw| !raw.trim().is_empty()) else {
        return Ok(None);
    };
    let invalid = |reason: String| ConfigError::Invalid {
        var: OBJECTIVES_VAR,
        reason,
    };
    let mut declared = parse_declared(&raw).map_err(invalid)?;
    if let Some(stray) = declared.keys().find(|id| !databases.contains(id)) {
        return Err(invalid(format!(
            "database `{stray}` is not among the configured databases"
        )));
    }
    for database in databases {
        if !declared.contains_key(database) {
            let defaults = DeclaredText::default().resolve().map_err(invalid)?;
            declared.insert(database.clone(), defaults);
        }
    }
    Ok(Some(declared))
}

/// The name the function goes by when the runtime does not say.
pub const DEFAULT_NAME: &str = "backstop-monitor";

/// An on-demand request.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MonitorRequest {
    pub database: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct MonitorResponse {
    pub checked_at: String,
    pub reports: Vec<HealthReport>,
    pub alerts_sent: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum MonitorError {
    #[error("unrecognised event: {0}; send a scheduled event or {{\"database\": \"<id>\"}}")]
    BadEvent(String),
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<MonitorError> for Diagnostic {
    fn from(error: MonitorError) -> Self {
        let error_type = match &error {
            MonitorError::Store(e) if e.is_retryable() => "Retryable",
            _ => "NonRetryable",
        };
        Diagnostic {
            error_type: error_type.into(),
            error_message: error.to_string(),
        }
    }
}

/// Parses either shape of event into the database the caller asked for (`None`: all).
pub fn requested_database(payload: Value) -> Result<Option<String>, MonitorError> {
    match Delivery::<MonitorRequest>::of(payload)
        .map_err(|e| MonitorError::BadEvent(e.to_string()))?
    {
        Delivery::Scheduled { .. } => Ok(None),
        Delivery::Request(request) => Ok(request.database),
    }
}

pub async fn handler(
    event: LambdaEvent<Value>,
    deps: &Deps,
) -> Result<MonitorResponse, MonitorError> {
    let requested = requested_database(event.payload)?;
    let databases = deps.base.config.databases_for(requested.as_deref())?;
    let now = (deps.now)();
    let mut reports = Vec::with_capacity(databases.len());
    let mut alerts_sent = 0;
    let store_url = deps.base.config.store.to_string();
    for database in &databases {
        let mut report = check_one(database, now, deps).await?;
        let declared = deps.objectives.as_ref().and_then(|o| o.get(database));
        if let Some(declared) = declared {
            let watched_since = samples::oldest_at(deps.base.store.as_ref(), database).await?;
            report = report.with_objectives(declared, &store_url, watched_since);
            record_sample(deps, database, &report, declared).await;
        }
        tracing::info!(
            database = %report.database,
            status = report.status.as_str(),
            findings = report.findings.len(),
            age_seconds = report.backups.age_seconds,
            "health checked"
        );
        if let Err(e) = deps
            .base
            .metrics
            .put(database, now, &report.metrics())
            .await
        {
            tracing::warn!(error = %e, "health metrics were not recorded");
        }
        let previous = alerting::load(deps.base.store.as_ref(), database).await?;
        let (notice, state) = alerting::decide_with_checks(
            previous.as_ref(),
            report.status,
            &serious_checks(&report),
            now,
            deps.realert_after,
        );
        if let Some(notice) = notice {
            let alert = health_alert(&report, notice, &deps.base.config.store.to_string());
            match deps.base.alerts.publish(&alert).await {
                Ok(()) => alerts_sent += 1,
                Err(e) => tracing::error!(error = %e, "the health alert could not be published"),
            }
        }
        alerting::save(deps.base.store.as_ref(), database, &state).await?;
        reports.push(report);
    }
    if requested.is_none() {
        write_status_page(deps, now).await;
    }
    Ok(MonitorResponse {
        checked_at: now
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default(),
        reports,
        alerts_sent,
    })
}

/// Keeps this run's judgement of the objectives for `backstop report`; a failure is logged,
/// never the invocation's failure (the alert above is what matters now).
async fn record_sample(
    deps: &Deps,
    database: &DatabaseId,
    report: &HealthReport,
    declared: &Declared,
) {
    let Some(figures) = report.objectives.clone() else {
        return;
    };
    let sample = Sample {
        database_id: database.to_string(),
        checked_at: report.checked_at,
        objectives: declared.objectives,
        figures,
    };
    if let Err(e) = samples::record(deps.base.store.as_ref(), &sample).await {
        tracing::warn!(error = %e, "the objectives' sample was not kept");
    }
}

/// Where a scheduled run leaves the status page of the whole store.
pub const STATUS_PAGE_KEY: &str = "_backstop/health/status.html";

/// Writes the store's status page; a failure is logged, never the invocation's failure (the
/// checks and alerts above are what matter).
async fn write_status_page(deps: &Deps, now: OffsetDateTime) {
    let store = deps.base.store.as_ref();
    let page = match backstop::status::gather(store, now, &deps.thresholds).await {
        Ok(status) => backstop::status::page::render(&status),
        Err(e) => {
            tracing::warn!(error = %e, "the status page was not written");
            return;
        }
    };
    let options = backstop::store::PutOptions::default();
    if let Err(e) = store
        .put(STATUS_PAGE_KEY, &mut page.as_bytes(), &options)
        .await
    {
        tracing::warn!(error = %e, "the status page was not written");
    }
}

async fn check_one(
    database: &DatabaseId,
    now: OffsetDateTime,
    deps: &Deps,
) -> Result<HealthReport, StoreError> {
    let source = deps.base.config.sources.get(database);
    let target = match source {
        Some(source) => {
            match resolve(
                database.as_str(),
                source,
                &deps.base.aws,
                deps.base.env.as_ref(),
            )
            .await
            {
                Ok(target) => Some(target),
                Err(e) => {
                    let mut report = check(
                        deps.base.store.as_ref(),
                        database,
                        None,
                        now,
                        &deps.thresholds,
                    )
                    .await?;
                    report.findings.push(Finding::unknown(
                        "database",
                        format!("database health unknown: {e}"),
                    ));
                    return Ok(HealthReport::new(
                        &report.database,
                        now,
                        report.backups,
                        None,
                        report.findings,
                    ));
                }
            }
        }
        None => None,
    };
    let report = check(
        deps.base.store.as_ref(),
        database,
        target.as_ref(),
        now,
        &deps.thresholds,
    )
    .await?;
    // The pooler in front of it, when one is configured: its pools for this database.
    let Some(pooler) = source.and_then(|s| s.pooler.as_deref()) else {
        return Ok(report);
    };
    let gathered = match resolve(
        &format!("{database} pooler"),
        pooler,
        &deps.base.aws,
        deps.base.env.as_ref(),
    )
    .await
    {
        Ok(console) => {
            let name = target.as_ref().and_then(backstop::pg::database_name);
            backstop::health::pooler::gather(&console, name.as_deref()).await
        }
        Err(e) => Err(e.to_string()),
    };
    Ok(report.with_pooler(gathered, &deps.thresholds.pooler))
}

/// The checks of `report` that found a warning or worse.
fn serious_checks(report: &HealthReport) -> std::collections::BTreeSet<String> {
    report
        .findings
        .iter()
        .filter(|f| f.severity != Severity::Info)
        .map(|f| f.check.clone())
        .collect()
}

/// The alert for a health notice.
pub fn health_alert(report: &HealthReport, notice: Notice, store: &str) -> Alert {
    let (kind, severity) = match notice {
        Notice::Entered(HealthStatus::Critical)
        | Notice::StillCritical
        | Notice::Added {
            status: HealthStatus::Critical,
            ..
        } => (kind::HEALTH_CRITICAL, Severity::Critical),
        Notice::Entered(_) | Notice::Added { .. } => (kind::HEALTH_WARNING, Severity::Warning),
        Notice::Recovered { .. } => (kind::HEALTH_RECOVERED, Severity::Info),
    };
    let serious: Vec<&Finding> = report
        .findings
        .iter()
        .filter(|f| f.severity != Severity::Info)
        .collect();
    let advice = report.findings.len() - serious.len();
    let summary = match &notice {
        Notice::Recovered { was } => format!("healthy again (was {})", was.as_str()),
        Notice::StillCritical => format!(
            "still critical: {}",
            serious
                .first()
                .map(|f| f.message.as_str())
                .unwrap_or("see details")
        ),
        Notice::Entered(_) => serious
            .first()
            .map(|f| f.message.clone())
            .unwrap_or_else(|| "see details".into()),
        // What newly went wrong, though the status stayed.
        Notice::Added { check, .. } => serious
            .iter()
            .find(|f| &f.check == check)
            .or(serious.first())
            .map(|f| f.message.clone())
            .unwrap_or_else(|| "see details".into()),
    };
    let mut details: Vec<String> = serious
        .iter()
        .map(|f| format!("- [{}] {}", f.severity.as_str(), f.message))
        .collect();
    let exposure = Exposure {
        newest_backup: report
            .backups
            .last_backup
            .clone()
            .zip(report.backups.age_seconds.map(Duration::from_secs)),
        recovery_point_age: report
            .backups
            .recovery_point_age_seconds
            .map(Duration::from_secs),
        good: Good::Committed,
    };
    details.push(format!(
        "{} {} backup(s) stored.",
        exposure.describe(),
        report.backups.backup_count
    ));
    if advice > 0 {
        details.push(format!(
            "{advice} piece(s) of advice (missing indexes, tables without a primary key...): run `backstop health` to see them."
        ));
    }
    let mut action: Vec<String> = Vec::new();
    for finding in &serious {
        if finding.check == "backup_age" {
            action.push(format!(
                "Check the backup function's recent errors, then take a backup now:\n  backstop backup --db \"$DATABASE_URL\" --to {store} --database-id {}",
                report.database
            ));
        } else if let Some(fix) = &finding.fix {
            action.push(format!("{}:\n  {fix}", finding.check));
        }
    }
    if action.is_empty() {
        // Only a recovery has nothing left to do; anything worse names the command that shows
        // every finding and what fixes it.
        action.push(match severity {
            Severity::Info => "Nothing to do.".into(),
            Severity::Warning | Severity::Critical => format!(
                "See every finding and what fixes it:\n  backstop health --from {store} --database-id {} --db \"$DATABASE_URL\"",
                report.database
            ),
        });
    }
    Alert {
        severity,
        kind: kind.into(),
        database_id: report.database.clone(),
        backup_id: report.backups.last_backup.clone(),
        links: Vec::new(),
        summary,
        details: details.join("\n"),
        action: action.join("\n"),
        source: "monitor".into(),
        occurred_at: report.checked_at,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use backstop::health::backups::BackupHealth;
    use time::macros::datetime;

    fn report(findings: Vec<Finding>) -> HealthReport {
        let backups = BackupHealth {
            last_backup: Some("20261121T000000Z-0a0b0c0d".into()),
            age_seconds: Some(30 * 3600),
            backup_count: 4,
            total_bytes: 1,
            newest_bytes: Some(1),
            median_previous_bytes: None,
            last_verification: None,
            recovery_point_age_seconds: Some(420),
            in_progress: None,
            rto_seconds: None,
            rto_loaded_seconds: None,
            last_restore_test: None,
            oldest_backup_age_seconds: None,
        };
        HealthReport::new(
            "shop",
            datetime!(2026-11-22 06:00 UTC),
            backups,
            None,
            findings,
        )
    }

    #[test]
    fn a_critical_always_says_what_to_do_and_how_exposed_the_database_is() {
        let verification = Finding::new(
            "verification",
            Severity::Critical,
            "the newest verification failed",
        );
        let alert = health_alert(
            &report(vec![verification]),
            Notice::Entered(HealthStatus::Critical),
            "s3://acme-backups/prod",
        );
        assert_eq!(alert.severity, Severity::Critical);
        assert!(!alert.action.contains("Nothing to do"), "{}", alert.action);
        assert!(
            alert.action.contains(
                "backstop health --from s3://acme-backups/prod --database-id shop --db \"$DATABASE_URL\""
            ),
            "{}",
            alert.action
        );
        assert!(
            alert.details.contains(
                "The newest good backup is 20261121T000000Z-0a0b0c0d, taken 1 d 6 h ago; \
                 point-in-time recovery reaches 7 min 0 s ago"
            ),
            "{}",
            alert.details
        );
        let recovered = health_alert(
            &report(Vec::new()),
            Notice::Recovered {
                was: HealthStatus::Critical,
            },
            "s3://acme-backups/prod",
        );
        assert_eq!(
            (recovered.severity, recovered.action.as_str()),
            (Severity::Info, "Nothing to do.")
        );
    }
}
