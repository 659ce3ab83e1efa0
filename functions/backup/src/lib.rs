//! Backup Lambda: takes a backup of each requested database on schedule or on demand.
//!
//! Accepted events: an EventBridge scheduled event (every configured database), an EventBridge
//! Scheduler input `{"database": "main", "tier": "auto"}`, and an on-demand invocation
//! `{"database": "main", "tier": "monthly", "reason": "before migration 00021"}`.
//!
//! This build parses and validates requests and store configuration; it has no backup engine
//! yet, so every valid request fails loudly with `EngineMissing` rather than succeeding silently.

use aws_lambda_events::event::cloudwatch_events::CloudWatchEvent;
use backstop::config::{ConfigError, FunctionConfig};
use backstop::layout::DatabaseId;
use lambda_runtime::{Diagnostic, LambdaEvent};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Everything the handler needs, built once at cold start.
pub struct Deps {
    pub config: FunctionConfig,
}

/// Which tier a new backup gets; `auto` derives it from the store's history.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TierChoice {
    #[default]
    Auto,
    Daily,
    Weekly,
    Monthly,
}

/// A Scheduler input or an on-demand request.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackupRequest {
    pub database: Option<String>,
    #[serde(default)]
    pub tier: TierChoice,
    pub reason: Option<String>,
}

/// A validated request: which databases, at which tier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupPlan {
    pub databases: Vec<DatabaseId>,
    pub tier: TierChoice,
    pub reason: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct BackupResponse {
    pub backup_id: String,
}

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error(
        "unrecognised event: {0}; send a scheduled event or {{\"database\": \"<id>\", \"tier\": \"auto\"}}"
    )]
    BadEvent(String),
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(
        "no backup of {databases} was taken: this build has no backup engine; deploy a release that includes it"
    )]
    EngineMissing { databases: String },
}

impl From<BackupError> for Diagnostic {
    fn from(error: BackupError) -> Self {
        Diagnostic {
            error_type: "NonRetryable".into(),
            error_message: error.to_string(),
        }
    }
}

/// Turns any accepted event shape into a plan over configured databases.
pub fn plan(payload: Value, config: &FunctionConfig) -> Result<BackupPlan, BackupError> {
    let bad = |e: serde_json::Error| BackupError::BadEvent(e.to_string());
    let request = if payload.get("detail-type").is_some() {
        let _: CloudWatchEvent = serde_json::from_value(payload).map_err(bad)?;
        BackupRequest::default()
    } else {
        serde_json::from_value(payload).map_err(bad)?
    };
    Ok(BackupPlan {
        databases: config.databases_for(request.database.as_deref())?,
        tier: request.tier,
        reason: request.reason,
    })
}

pub async fn handler(
    event: LambdaEvent<Value>,
    deps: &Deps,
) -> Result<BackupResponse, BackupError> {
    let plan = plan(event.payload, &deps.config)?;
    let databases = plan
        .databases
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    tracing::error!(%databases, tier = ?plan.tier, "backup requested but this build has no backup engine");
    Err(BackupError::EngineMissing { databases })
}
