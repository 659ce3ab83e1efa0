//! Slack notifier Lambda: posts each SNS alert to a Slack incoming webhook as Block Kit.
//!
//! Subscribed to the alert topic. A Backstop alert (the `lambda` JSON form) is rendered by
//! kind (see [`render`]); anything else is posted as plain text. 429 and 5xx answers (and
//! timeouts) are retried, honouring `Retry-After`, for as long as the invocation's deadline
//! allows; any other 4xx fails that record at once with Slack's reason. Records are delivered
//! independently, each once. The webhook URL (from `SLACK_WEBHOOK_URL` or a Secrets Manager
//! secret named by `SLACK_WEBHOOK_SECRET`) is a secret: it never appears in a log line or error.

pub mod render;

use std::time::{Duration, Instant};

use aws_lambda_events::event::sns::SnsEvent;
use backstop::alert::Alert;
use common::invocation::time_left;
use lambda_runtime::{Diagnostic, LambdaEvent};
use serde::Serialize;

/// The environment variable holding the webhook URL.
pub const WEBHOOK_VAR: &str = "SLACK_WEBHOOK_URL";
/// Or: the Secrets Manager secret (id or ARN) holding it.
pub const WEBHOOK_SECRET_VAR: &str = "SLACK_WEBHOOK_SECRET";
/// Time kept back before the deadline so the invocation ends on its own terms.
const DEADLINE_MARGIN: Duration = Duration::from_millis(500);
/// Longest wait for one answer from Slack.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Without a deadline (local runs), how long one record may be retried.
const DEFAULT_BUDGET: Duration = Duration::from_secs(30);

/// Everything the handler needs, built once at cold start.
pub struct Deps {
    pub http: reqwest::Client,
    pub webhook: reqwest::Url,
}

impl Deps {
    /// Reads the webhook from `lookup`; errors name the variable, never its value.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, NotifyError> {
        let raw = lookup(WEBHOOK_VAR).ok_or(NotifyError::Config {
            reason: format!(
                "{WEBHOOK_VAR} is not set; set it to the Slack incoming-webhook URL, or set {WEBHOOK_SECRET_VAR}"
            ),
        })?;
        Self::with_url(&raw, WEBHOOK_VAR)
    }

    /// Reads the webhook from `SLACK_WEBHOOK_URL`, or from the secret `SLACK_WEBHOOK_SECRET`
    /// names.
    pub async fn from_env(
        lookup: impl Fn(&str) -> Option<String>,
        aws: &aws_config::SdkConfig,
    ) -> Result<Self, NotifyError> {
        match (lookup(WEBHOOK_VAR), lookup(WEBHOOK_SECRET_VAR)) {
            (Some(raw), _) => Self::with_url(&raw, WEBHOOK_VAR),
            (None, Some(secret)) => {
                let value = aws_sdk_secretsmanager::Client::new(aws)
                    .get_secret_value()
                    .secret_id(&secret)
                    .send()
                    .await
                    .map_err(|e| NotifyError::Config {
                        reason: format!(
                            "cannot read secret `{secret}` ({WEBHOOK_SECRET_VAR}): {}",
                            backstop::aws::describe_error(&e)
                        ),
                    })?;
                let raw = value.secret_string().unwrap_or_default().to_string();
                Self::with_url(&raw, WEBHOOK_SECRET_VAR)
            }
            (None, None) => Self::from_lookup(lookup),
        }
    }

    fn with_url(raw: &str, source: &str) -> Result<Self, NotifyError> {
        let webhook = reqwest::Url::parse(raw.trim()).map_err(|e| NotifyError::Config {
            reason: format!("{source} does not hold a valid URL ({e})"),
        })?;
        let http = reqwest::Client::builder()
            .build()
            .map_err(|e| NotifyError::Config {
                reason: format!("HTTP client: {}", e.without_url()),
            })?;
        Ok(Self { http, webhook })
    }
}

/// A record Slack refused for good.
#[derive(Debug, Clone, Serialize)]
pub struct Refused {
    pub message_id: String,
    pub reason: String,
}

#[derive(Debug, Serialize)]
pub struct NotifyResponse {
    pub delivered: usize,
    /// Records Slack refused (4xx other than 429): retrying would not help.
    pub refused: Vec<Refused>,
}

#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error("configuration: {reason}")]
    Config { reason: String },
    #[error("Slack webhook did not take message {message_id} before the deadline: {reason}")]
    Undelivered { message_id: String, reason: String },
}

impl From<NotifyError> for Diagnostic {
    fn from(error: NotifyError) -> Self {
        let error_type = match &error {
            NotifyError::Undelivered { .. } => "Retryable",
            NotifyError::Config { .. } => "NonRetryable",
        };
        Diagnostic {
            error_type: error_type.into(),
            error_message: error.to_string(),
        }
    }
}

/// The Slack message for one SNS message.
pub fn message_for(subject: Option<&str>, message: &str) -> serde_json::Value {
    match serde_json::from_str::<Alert>(message) {
        Ok(alert) => render::render(&alert),
        Err(_) => render::render_plain(subject, message),
    }
}

/// What one attempt's answer means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    Delivered,
    /// Retry after this long (Retry-After, or the backoff when Slack gave none).
    RetryAfter(Duration),
    Refused(String),
}

/// Classifies Slack's answer: 2xx delivered, 429 and 5xx retried (honouring `Retry-After`,
/// in seconds), any other status refused.
pub fn classify(status: u16, retry_after: Option<&str>, body: &str, backoff: Duration) -> Answer {
    match status {
        200..=299 => Answer::Delivered,
        429 | 500..=599 => Answer::RetryAfter(
            retry_after
                .and_then(|v| v.trim().parse::<f64>().ok())
                .filter(|s| s.is_finite() && *s >= 0.0)
                .map(|s| Duration::from_secs_f64(s.min(300.0)))
                .unwrap_or(backoff),
        ),
        other => Answer::Refused(format!(
            "HTTP {other}: {}",
            body.chars().take(200).collect::<String>()
        )),
    }
}

pub async fn handler(
    event: LambdaEvent<SnsEvent>,
    deps: &Deps,
) -> Result<NotifyResponse, NotifyError> {
    let deadline = deadline_of(event.context.deadline);
    let mut response = NotifyResponse {
        delivered: 0,
        refused: Vec::new(),
    };
    let mut undelivered = None;
    for record in &event.payload.records {
        let sns = &record.sns;
        let body = message_for(sns.subject.as_deref(), &sns.message);
        match deliver(deps, &body, deadline).await {
            Ok(()) => {
                tracing::info!(message_id = %sns.message_id, "alert posted to Slack");
                response.delivered += 1;
            }
            Err(Failure::Refused(reason)) => {
                tracing::error!(message_id = %sns.message_id, %reason, "Slack refused the alert; not retrying");
                response.refused.push(Refused {
                    message_id: sns.message_id.clone(),
                    reason,
                });
            }
            Err(Failure::OutOfTime(reason)) => {
                tracing::error!(message_id = %sns.message_id, %reason, "the alert was not delivered before the deadline");
                undelivered.get_or_insert(NotifyError::Undelivered {
                    message_id: sns.message_id.clone(),
                    reason,
                });
            }
        }
    }
    match undelivered {
        Some(error) => Err(error),
        None => Ok(response),
    }
}

fn deadline_of(deadline_ms: u64) -> Instant {
    Instant::now()
        + time_left(deadline_ms).map_or(DEFAULT_BUDGET, |left| left.saturating_sub(DEADLINE_MARGIN))
}

enum Failure {
    Refused(String),
    OutOfTime(String),
}

async fn deliver(deps: &Deps, body: &serde_json::Value, deadline: Instant) -> Result<(), Failure> {
    let mut backoff = Duration::from_millis(500);
    let mut last = String::from("no attempt was made");
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(Failure::OutOfTime(last));
        }
        let attempt = deps
            .http
            .post(deps.webhook.clone())
            .timeout(left.min(REQUEST_TIMEOUT))
            .json(body)
            .send()
            .await;
        let answer = match attempt {
            Ok(response) => {
                let status = response.status().as_u16();
                let retry_after = response
                    .headers()
                    .get(reqwest::header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string);
                let text = response.text().await.unwrap_or_default();
                last = format!("HTTP {status}");
                classify(status, retry_after.as_deref(), &text, backoff)
            }
            Err(e) => {
                last = e.without_url().to_string();
                Answer::RetryAfter(backoff)
            }
        };
        match answer {
            Answer::Delivered => return Ok(()),
            Answer::Refused(reason) => return Err(Failure::Refused(reason)),
            Answer::RetryAfter(wait) => {
                if Instant::now() + wait >= deadline {
                    return Err(Failure::OutOfTime(format!(
                        "{last}; the next attempt would be after the deadline"
                    )));
                }
                tokio::time::sleep(wait).await;
                backoff = (backoff * 2).min(Duration::from_secs(8));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_classified_for_retry() {
        let backoff = Duration::from_millis(500);
        assert_eq!(classify(200, None, "ok", backoff), Answer::Delivered);
        assert_eq!(
            classify(429, Some("2"), "", backoff),
            Answer::RetryAfter(Duration::from_secs(2))
        );
        assert_eq!(
            classify(503, None, "", backoff),
            Answer::RetryAfter(backoff)
        );
        assert_eq!(
            classify(429, Some("soon"), "", backoff),
            Answer::RetryAfter(backoff)
        );
        assert_eq!(
            classify(400, None, "invalid_blocks", backoff),
            Answer::Refused("HTTP 400: invalid_blocks".into())
        );
        assert!(matches!(
            classify(404, None, "no_service", backoff),
            Answer::Refused(_)
        ));
    }

    #[test]
    fn messages_that_are_not_alerts_go_out_as_text() {
        let plain = message_for(Some("hello"), "a <b> c");
        assert_eq!(plain["text"], "*hello*\na &lt;b&gt; c");
    }
}
