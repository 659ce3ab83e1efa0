//! Retention Lambda: grandfather-father-son pruning of backup sets.
//!
//! Accepted events: an EventBridge scheduled event (every configured database) and an
//! on-demand invocation `{"database": "main", "dry_run": true}`.
//!
//! This build validates requests; it has no retention policy yet, so every valid request
//! fails with `PolicyMissing` and deletes nothing.

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
    pub deleted: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum RetentionError {
    #[error(
        "unrecognised event: {0}; send a scheduled event or {{\"database\": \"<id>\", \"dry_run\": true}}"
    )]
    BadEvent(String),
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(
        "nothing pruned for {databases}: this build has no retention policy; deploy a release that includes it"
    )]
    PolicyMissing { databases: String },
}

impl From<RetentionError> for Diagnostic {
    fn from(error: RetentionError) -> Self {
        Diagnostic {
            error_type: "NonRetryable".into(),
            error_message: error.to_string(),
        }
    }
}

pub fn plan(payload: Value, config: &FunctionConfig) -> Result<RetentionPlan, RetentionError> {
    let bad = |e: serde_json::Error| RetentionError::BadEvent(e.to_string());
    let request = if payload.get("detail-type").is_some() {
        let _: CloudWatchEvent = serde_json::from_value(payload).map_err(bad)?;
        RetentionRequest::default()
    } else {
        serde_json::from_value(payload).map_err(bad)?
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
    let plan = plan(event.payload, &deps.config)?;
    let databases = plan
        .databases
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    tracing::error!(%databases, dry_run = plan.dry_run, "pruning requested but this build has no retention policy");
    Err(RetentionError::PolicyMissing { databases })
}
