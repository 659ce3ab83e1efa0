//! Verify Lambda: proves backups restore, at the `manifest`, `deep` or `restore` level.
//!
//! Accepted events: an EventBridge scheduled event carrying `{"level": "deep"}` as input (the
//! latest backup of every configured database) and an on-demand invocation
//! `{"database": "main", "backup": "<id>|latest", "level": "restore"}`.
//!
//! This build validates requests; it has no verifier yet, so every valid request fails loudly
//! with `VerifierMissing` rather than reporting an unverified backup as good.

use aws_lambda_events::event::cloudwatch_events::CloudWatchEvent;
use backstop::config::{ConfigError, FunctionConfig};
use backstop::layout::{BackupId, DatabaseId, InvalidId};
use lambda_runtime::{Diagnostic, LambdaEvent};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Everything the handler needs, built once at cold start.
pub struct Deps {
    pub config: FunctionConfig,
}

/// How much to check (DESIGN.md, "Verification levels").
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Manifest,
    #[default]
    Deep,
    Restore,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VerifyRequest {
    pub database: Option<String>,
    /// A backup id, or `latest` (the default).
    pub backup: Option<String>,
    #[serde(default)]
    pub level: Level,
}

/// Which backup of which databases to check, and how deeply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyPlan {
    pub databases: Vec<DatabaseId>,
    /// `None` means the latest committed backup of each database.
    pub backup: Option<BackupId>,
    pub level: Level,
}

#[derive(Debug, Serialize)]
pub struct VerifyResponse {
    pub verdict: String,
}

#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error(
        "unrecognised event: {0}; send {{\"database\": \"<id>\", \"backup\": \"latest\", \"level\": \"deep\"}}"
    )]
    BadEvent(String),
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    BadBackupId(#[from] InvalidId),
    #[error("a specific backup id needs a database; add \"database\" to the request")]
    BackupWithoutDatabase,
    #[error(
        "{databases} not verified: this build has no verifier; deploy a release that includes it"
    )]
    VerifierMissing { databases: String },
}

impl From<VerifyError> for Diagnostic {
    fn from(error: VerifyError) -> Self {
        Diagnostic {
            error_type: "NonRetryable".into(),
            error_message: error.to_string(),
        }
    }
}

pub fn plan(payload: Value, config: &FunctionConfig) -> Result<VerifyPlan, VerifyError> {
    let bad = |e: serde_json::Error| VerifyError::BadEvent(e.to_string());
    let request: VerifyRequest = if payload.get("detail-type").is_some() {
        let event: CloudWatchEvent = serde_json::from_value(payload).map_err(bad)?;
        serde_json::from_value(event.detail.unwrap_or(Value::Null)).unwrap_or_default()
    } else {
        serde_json::from_value(payload).map_err(bad)?
    };
    let backup = match request.backup.as_deref() {
        None | Some("latest") => None,
        Some(_) if request.database.is_none() => return Err(VerifyError::BackupWithoutDatabase),
        Some(id) => Some(BackupId::parse(id)?),
    };
    Ok(VerifyPlan {
        databases: config.databases_for(request.database.as_deref())?,
        backup,
        level: request.level,
    })
}

pub async fn handler(
    event: LambdaEvent<Value>,
    deps: &Deps,
) -> Result<VerifyResponse, VerifyError> {
    let plan = plan(event.payload, &deps.config)?;
    let databases = plan
        .databases
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    tracing::error!(%databases, level = ?plan.level, "verification requested but this build has no verifier");
    Err(VerifyError::VerifierMissing { databases })
}
