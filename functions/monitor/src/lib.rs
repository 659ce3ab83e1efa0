//! Monitor Lambda: reports how fresh each database's newest backup is.
//!
//! Invoked hourly by an EventBridge schedule (every configured database) or on demand with
//! `{"database": "main"}`. Answers with one freshness entry per database; a store that cannot
//! be listed fails the invocation rather than reporting "no backups".

use std::sync::Arc;

use aws_lambda_events::event::cloudwatch_events::CloudWatchEvent;
use backstop::config::{ConfigError, FunctionConfig};
use backstop::health::{Freshness, backup_freshness};
use backstop::store::{Store, StoreError};
use lambda_runtime::{Diagnostic, LambdaEvent};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;

/// Everything the handler needs, built once at cold start.
pub struct Deps {
    pub config: FunctionConfig,
    pub store: Arc<dyn Store>,
    /// The clock; tests pass a fixed one.
    pub now: Arc<dyn Fn() -> OffsetDateTime + Send + Sync>,
}

/// An on-demand request.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MonitorRequest {
    pub database: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct MonitorResponse {
    pub checked_at: String,
    pub databases: Vec<Freshness>,
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
    if payload.get("detail-type").is_some() {
        let _: CloudWatchEvent =
            serde_json::from_value(payload).map_err(|e| MonitorError::BadEvent(e.to_string()))?;
        return Ok(None);
    }
    let request: MonitorRequest =
        serde_json::from_value(payload).map_err(|e| MonitorError::BadEvent(e.to_string()))?;
    Ok(request.database)
}

pub async fn handler(
    event: LambdaEvent<Value>,
    deps: &Deps,
) -> Result<MonitorResponse, MonitorError> {
    let requested = requested_database(event.payload)?;
    let databases = deps.config.databases_for(requested.as_deref())?;
    let now = (deps.now)();
    let mut reports = Vec::with_capacity(databases.len());
    for database in &databases {
        let report =
            backup_freshness(deps.store.as_ref(), database, now, &deps.config.freshness).await?;
        tracing::info!(
            database = %report.database,
            status = ?report.status,
            age_seconds = report.age_seconds,
            "backup freshness"
        );
        reports.push(report);
    }
    let checked_at = now
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    Ok(MonitorResponse {
        checked_at,
        databases: reports,
    })
}
