//! Slack notifier Lambda: posts each SNS alert to a Slack incoming webhook.
//!
//! Subscribed to the alert topic. Each record's subject and text become one Slack message.
//! The webhook URL is a secret: it never appears in a log line or an error.

use aws_lambda_events::event::sns::SnsEvent;
use lambda_runtime::{Diagnostic, LambdaEvent};
use serde::Serialize;

/// The environment variable holding the webhook URL.
pub const WEBHOOK_VAR: &str = "SLACK_WEBHOOK_URL";

/// Everything the handler needs, built once at cold start.
pub struct Deps {
    pub http: reqwest::Client,
    pub webhook: reqwest::Url,
}

impl Deps {
    /// Reads the webhook from `lookup`; errors name the variable, never its value.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, NotifyError> {
        let raw = lookup(WEBHOOK_VAR).ok_or(NotifyError::Config {
            reason: format!("{WEBHOOK_VAR} is not set; set it to the Slack incoming-webhook URL"),
        })?;
        let webhook = reqwest::Url::parse(raw.trim()).map_err(|e| NotifyError::Config {
            reason: format!("{WEBHOOK_VAR} is not a valid URL ({e})"),
        })?;
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(10))
            .build()
            .map_err(|e| NotifyError::Config {
                reason: format!("HTTP client: {}", e.without_url()),
            })?;
        Ok(Self { http, webhook })
    }
}

#[derive(Debug, Serialize)]
pub struct NotifyResponse {
    pub delivered: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error("configuration: {reason}")]
    Config { reason: String },
    #[error("Slack webhook rejected message {message_id} with HTTP {status}: {body}")]
    Rejected {
        message_id: String,
        status: u16,
        body: String,
    },
    #[error("Slack webhook unreachable for message {message_id}: {reason}")]
    Unreachable { message_id: String, reason: String },
}

impl From<NotifyError> for Diagnostic {
    fn from(error: NotifyError) -> Self {
        let error_type = match &error {
            NotifyError::Unreachable { .. } => "Retryable",
            NotifyError::Rejected { status, .. } if *status == 429 || *status >= 500 => "Retryable",
            _ => "NonRetryable",
        };
        Diagnostic {
            error_type: error_type.into(),
            error_message: error.to_string(),
        }
    }
}

#[derive(Debug, Serialize)]
struct SlackMessage {
    text: String,
}

pub async fn handler(
    event: LambdaEvent<SnsEvent>,
    deps: &Deps,
) -> Result<NotifyResponse, NotifyError> {
    let mut delivered = 0;
    for record in &event.payload.records {
        let sns = &record.sns;
        let text = match &sns.subject {
            Some(subject) => format!("*{subject}*\n{}", sns.message),
            None => sns.message.clone(),
        };
        let response = deps
            .http
            .post(deps.webhook.clone())
            .json(&SlackMessage { text })
            .send()
            .await
            .map_err(|e| NotifyError::Unreachable {
                message_id: sns.message_id.clone(),
                reason: e.without_url().to_string(),
            })?;
        let status = response.status();
        if !status.is_success() {
            let body = response.text().await.unwrap_or_default();
            return Err(NotifyError::Rejected {
                message_id: sns.message_id.clone(),
                status: status.as_u16(),
                body: body.chars().take(200).collect(),
            });
        }
        tracing::info!(message_id = %sns.message_id, "alert posted to Slack");
        delivered += 1;
    }
    Ok(NotifyResponse { delivered })
}
