//! Retention Lambda: grandfather-father-son pruning of backup sets.
//!
//! Accepted events: an EventBridge scheduled event (every configured database) and an
//! on-demand invocation `{"database": "main", "dry_run": true}`.
//!
//! The policy comes from `BACKSTOP_KEEP_{LAST,DAILY,WEEKLY,MONTHLY,YEARLY}` (default: 7 daily,
//! 4 weekly, 12 monthly) and `BACKSTOP_MAX_DELETIONS` caps the sets deleted per run. Each run
//! answers with its report (kept by which rule, deleted, bytes freed, swept) and sends an info
//! alert when it removed anything. A run that refuses to delete because the listing looks
//! incomplete sends a critical alert; one that cannot reach the store fails the invocation.

use std::sync::Arc;

use backstop::alert::{Alert, Severity, kind};
use backstop::config::{ConfigError, FunctionConfig, positive_number};
use backstop::layout::DatabaseId;
use backstop::retention::{Policy, PruneError, PruneOptions, PruneReport, prune};
use common::{Base, Delivery};
use lambda_runtime::{Diagnostic, LambdaEvent};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;

pub const KEEP_LAST_VAR: &str = "BACKSTOP_KEEP_LAST";
pub const KEEP_DAILY_VAR: &str = "BACKSTOP_KEEP_DAILY";
pub const KEEP_WEEKLY_VAR: &str = "BACKSTOP_KEEP_WEEKLY";
pub const KEEP_MONTHLY_VAR: &str = "BACKSTOP_KEEP_MONTHLY";
pub const KEEP_YEARLY_VAR: &str = "BACKSTOP_KEEP_YEARLY";
pub const MAX_DELETIONS_VAR: &str = "BACKSTOP_MAX_DELETIONS";
/// Days point-in-time recovery reaches back (default 7): older change segments go.
pub const KEEP_STREAM_DAYS_VAR: &str = "BACKSTOP_KEEP_STREAM_DAYS";

/// The policy and deletion cap from the environment; errors name the variable.
pub fn policy_from(
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<(Policy, usize), ConfigError> {
    let count = |var: &'static str| -> Result<Option<usize>, ConfigError> {
        match lookup(var) {
            None => Ok(None),
            Some(raw) => raw
                .trim()
                .parse::<usize>()
                .map(Some)
                .map_err(|_| ConfigError::Invalid {
                    var,
                    reason: format!("`{raw}` is not a whole number"),
                }),
        }
    };
    let given = [
        count(KEEP_LAST_VAR)?,
        count(KEEP_DAILY_VAR)?,
        count(KEEP_WEEKLY_VAR)?,
        count(KEEP_MONTHLY_VAR)?,
        count(KEEP_YEARLY_VAR)?,
    ];
    let policy = if given.iter().all(Option::is_none) {
        Policy {
            daily: 7,
            weekly: 4,
            monthly: 12,
            ..Policy::default()
        }
    } else {
        let [last, daily, weekly, monthly, yearly] = given.map(Option::unwrap_or_default);
        Policy {
            last,
            daily,
            weekly,
            monthly,
            yearly,
        }
    };
    if !policy.keeps_anything() {
        return Err(ConfigError::Invalid {
            var: KEEP_DAILY_VAR,
            reason: "every BACKSTOP_KEEP_* is 0; keep at least one backup per some rule".into(),
        });
    }
    let max = positive_number(lookup, MAX_DELETIONS_VAR, 50)? as usize;
    Ok((policy, max))
}

/// Everything the handler needs, built once at cold start.
pub struct Deps {
    /// Settings, store, AWS configuration, sinks and the function's name.
    pub base: Base,
    pub policy: Policy,
    pub max_deletions: usize,
    /// How far back point-in-time recovery reaches.
    pub stream_window: time::Duration,
    /// The clock; tests pass a later one to age leftovers.
    pub now: Arc<dyn Fn() -> OffsetDateTime + Send + Sync>,
}

impl Deps {
    /// Builds the dependencies on `base`; errors name the variable.
    pub fn new(base: Base) -> Result<Self, ConfigError> {
        let (policy, max_deletions) = policy_from(base.env.as_ref())?;
        let stream_days = positive_number(base.env.as_ref(), KEEP_STREAM_DAYS_VAR, 7)?;
        Ok(Self {
            base,
            policy,
            max_deletions,
            stream_window: time::Duration::days(stream_days as i64),
            now: Arc::new(OffsetDateTime::now_utc),
        })
    }
}

/// The name the function goes by when the runtime does not say.
pub const DEFAULT_NAME: &str = "backstop-retention";

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionRequest {
    pub database: Option<String>,
    #[serde(default)]
    pub dry_run: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetentionPlan {
    pub databases: Vec<DatabaseId>,
    pub dry_run: bool,
}

#[derive(Debug, Serialize)]
pub struct RetentionResponse {
    pub reports: Vec<PruneReport>,
}

#[derive(Debug, thiserror::Error)]
pub enum RetentionError {
    #[error(
        "unrecognised event: {0}; send a scheduled event or {{\"database\": \"<id>\", \"dry_run\": true}}"
    )]
    BadEvent(String),
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("retention did not run for {failed} database(s): {summary}")]
    Failed { failed: usize, summary: String },
}

impl From<RetentionError> for Diagnostic {
    fn from(error: RetentionError) -> Self {
        let error_type = match &error {
            RetentionError::Failed { .. } => "RetentionFailed",
            _ => "NonRetryable",
        };
        Diagnostic {
            error_type: error_type.into(),
            error_message: error.to_string(),
        }
    }
}

pub fn plan(payload: Value, config: &FunctionConfig) -> Result<RetentionPlan, RetentionError> {
    let request =
        match Delivery::of(payload).map_err(|e| RetentionError::BadEvent(e.to_string()))? {
            Delivery::Scheduled { .. } => RetentionRequest::default(),
            Delivery::Request(request) => request,
        };
    Ok(RetentionPlan {
        databases: config.databases_for(request.database.as_deref())?,
        dry_run: request.dry_run,
    })
}

pub async fn handler(
    event: LambdaEvent<Value>,
    deps: &Deps,
) -> Result<RetentionResponse, RetentionError> {
    let plan = plan(event.payload, &deps.base.config)?;
    let options = PruneOptions {
        policy: deps.policy,
        dry_run: plan.dry_run,
        max_deletions: deps.max_deletions,
        now: (deps.now)(),
        stream_window: deps.stream_window,
    };
    let mut reports = Vec::new();
    let mut failures = Vec::new();
    for database in &plan.databases {
        match prune(deps.base.store.as_ref(), database, &options).await {
            Ok(report) => {
                tracing::info!(%database, dry_run = report.dry_run, summary = %report.summary(), "retention");
                let removed = !report.deleted.is_empty()
                    || report.segments_removed.objects > 0
                    || !report.orphans_removed.is_empty()
                    || !report.uploads_aborted.is_empty();
                if removed && !report.dry_run {
                    publish(deps, report_alert(&report, options.now)).await;
                }
                reports.push(report);
            }
            Err(error) => {
                let severity = match error {
                    PruneError::Incomplete(_) => Severity::Critical,
                    _ => Severity::Warning,
                };
                publish(deps, failure_alert(database, &error, severity, options.now)).await;
                failures.push(format!("{database}: {error}"));
            }
        }
    }
    if failures.is_empty() {
        Ok(RetentionResponse { reports })
    } else {
        Err(RetentionError::Failed {
            failed: failures.len(),
            summary: failures.join("; "),
        })
    }
}

async fn publish(deps: &Deps, alert: Alert) {
    if let Err(e) = deps.base.alerts.publish(&alert).await {
        tracing::error!(error = %e, "the alert could not be published");
    }
}

/// The info alert summarising what a run removed.
pub fn report_alert(report: &PruneReport, at: OffsetDateTime) -> Alert {
    let deleted = report
        .deleted
        .iter()
        .map(|d| format!("- {} ({} objects)", d.name, d.objects))
        .collect::<Vec<_>>()
        .join("\n");
    let kept = report
        .kept
        .iter()
        .map(|k| {
            let rules: Vec<String> = k
                .reasons
                .iter()
                .map(|r| {
                    serde_json::to_value(r)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_string))
                        .unwrap_or_default()
                })
                .collect();
            format!("- {} ({})", k.backup_id, rules.join(", "))
        })
        .collect::<Vec<_>>()
        .join("\n");
    Alert {
        severity: Severity::Info,
        kind: kind::RETENTION_REPORT.into(),
        database_id: report.database.clone(),
        backup_id: None,
        links: Vec::new(),
        summary: format!("retention: {}", report.summary()),
        details: format!("Deleted:\n{deleted}\n\nKept:\n{kept}"),
        action: "Nothing to do.".into(),
        source: "retention".into(),
        occurred_at: at,
    }
}

fn failure_alert(
    database: &DatabaseId,
    error: &PruneError,
    severity: Severity,
    at: OffsetDateTime,
) -> Alert {
    let action = match error {
        PruneError::Incomplete(_) => "Check the bucket: backups should only ever disappear through retention. \
             If they were removed on purpose, follow the hint above; until then retention deletes nothing."
            .to_string(),
        _ => "Check the store's reachability and the function's permissions; the next scheduled run retries.".to_string(),
    };
    Alert {
        severity,
        kind: kind::RETENTION_FAILED.into(),
        database_id: database.to_string(),
        backup_id: None,
        links: Vec::new(),
        summary: format!(
            "retention did not run: {}",
            error.to_string().chars().take(140).collect::<String>()
        ),
        details: error.to_string(),
        action,
        source: "retention".into(),
        occurred_at: at,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |k| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn the_policy_defaults_to_7_daily_4_weekly_12_monthly() {
        let (policy, max) = policy_from(&vars(&[])).unwrap();
        assert_eq!(
            (policy.daily, policy.weekly, policy.monthly, policy.last),
            (7, 4, 12, 0)
        );
        assert_eq!(max, 50);
        let (policy, max) =
            policy_from(&vars(&[(KEEP_LAST_VAR, "3"), (MAX_DELETIONS_VAR, "5")])).unwrap();
        assert_eq!((policy.last, policy.daily, max), (3, 0, 5));
    }

    #[test]
    fn bad_values_name_the_variable() {
        let err = policy_from(&vars(&[(KEEP_WEEKLY_VAR, "four")])).unwrap_err();
        assert!(err.to_string().contains(KEEP_WEEKLY_VAR), "{err}");
        let err = policy_from(&vars(&[(KEEP_DAILY_VAR, "0")])).unwrap_err();
        assert!(err.to_string().contains("BACKSTOP_KEEP_"), "{err}");
        let err = policy_from(&vars(&[(MAX_DELETIONS_VAR, "0")])).unwrap_err();
        assert!(err.to_string().contains(MAX_DELETIONS_VAR), "{err}");
    }
}
