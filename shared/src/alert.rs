//! Alerts: what went wrong, for whom, and what to do, published to one SNS topic.
//!
//! An alert is published with `MessageStructure=json`: `default` and `email` carry the
//! readable text, `lambda` and `sqs` the alert itself as JSON (the Slack notifier renders it).
//! Alert text is built from Backstop's own one-line errors, which never contain a secret;
//! [`scrub`] is applied on top with the secrets the caller knows of. Every alert a function
//! publishes links to the logs of its run ([`run_logs_link`]); [`exposure`] says how bad a
//! failure is (the newest good backup, the RPO right now).

pub mod exposure;

use aws_config::SdkConfig;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// How urgent an alert is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Warning,
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }
}

/// The kinds of alert, as stable identifiers subscribers can filter on.
pub mod kind {
    pub const BACKUP_FAILED: &str = "backup_failed";
    pub const BACKUP_DEADLINE_EXCEEDED: &str = "backup_deadline_exceeded";
    pub const BACKUP_SUCCEEDED: &str = "backup_succeeded";
    pub const VERIFY_FAILED: &str = "verify_failed";
    pub const VERIFY_NOT_RUN: &str = "verify_not_run";
    pub const VERIFY_NOT_POSSIBLE: &str = "verify_not_possible";
    /// An entry of the verification record was edited or deleted after it was written.
    pub const VERIFICATION_LOG_CHANGED: &str = "verification_log_changed";
    /// A verification ran but its entry could not be added to the verification record.
    pub const VERIFICATION_NOT_LOGGED: &str = "verification_not_logged";
    pub const HEALTH_WARNING: &str = "health_warning";
    pub const HEALTH_CRITICAL: &str = "health_critical";
    pub const HEALTH_RECOVERED: &str = "health_recovered";
    pub const RETENTION_REPORT: &str = "retention_report";
    pub const RETENTION_FAILED: &str = "retention_failed";
    pub const STREAM_FAILED: &str = "stream_failed";
    pub const STREAM_RESTARTED: &str = "stream_restarted";
    pub const STREAM_SCHEMA_CHANGED: &str = "stream_schema_changed";
    pub const STREAM_UNREPLAYABLE: &str = "stream_unreplayable";
    pub const STREAM_SLOT_LAG: &str = "stream_slot_lag";
}

/// A link for people to follow (a console page, a runbook section).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Link {
    pub label: String,
    pub url: String,
}

/// The AWS console page of a folder of the store (`<database-id>/<backup-id>/`), for S3 stores.
pub fn console_link(store: &crate::store::StoreUrl, folder: &str) -> Option<Link> {
    match store {
        crate::store::StoreUrl::S3 { bucket, prefix } => {
            let path = if prefix.is_empty() {
                format!("{folder}/")
            } else {
                format!("{prefix}/{folder}/")
            };
            Some(Link {
                label: "Backup set in the S3 console".into(),
                url: format!(
                    "https://s3.console.aws.amazon.com/s3/buckets/{bucket}?prefix={}",
                    url::form_urlencoded::byte_serialize(path.as_bytes()).collect::<String>()
                ),
            })
        }
        crate::store::StoreUrl::File { .. } => None,
    }
}

/// `text` as the CloudWatch console writes a name into its page addresses: percent-encoded
/// (every byte but the unreserved `A-Z a-z 0-9 - _ . ~`), then each `%` written as `$25`.
fn console_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 3);
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-_.~".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("$25{byte:02X}"));
        }
    }
    out
}

/// The CloudWatch console page of one log stream's events.
pub fn logs_link(region: &str, group: &str, stream: &str) -> Link {
    Link {
        label: "Logs of this run".into(),
        url: format!(
            "https://{region}.console.aws.amazon.com/cloudwatch/home?region={region}#logsV2:log-groups/log-group/{}/log-events/{}",
            console_escape(group),
            console_escape(stream)
        ),
    }
}

/// The log group, stream and region variables the Lambda runtime sets.
pub const LOG_GROUP_VAR: &str = "AWS_LAMBDA_LOG_GROUP_NAME";
pub const LOG_STREAM_VAR: &str = "AWS_LAMBDA_LOG_STREAM_NAME";
pub const REGION_VAR: &str = "AWS_REGION";

/// The link to this run's logs, from the variables the Lambda runtime sets; `None` elsewhere
/// (a container task is not told its log stream, the CLI logs to the terminal).
pub fn run_logs_link(env: &dyn Fn(&str) -> Option<String>) -> Option<Link> {
    let set = |name| env(name).filter(|v: &String| !v.trim().is_empty());
    Some(logs_link(
        &set(REGION_VAR)?,
        &set(LOG_GROUP_VAR)?,
        &set(LOG_STREAM_VAR)?,
    ))
}

/// One alert, as every subscriber receives it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Alert {
    pub severity: Severity,
    /// What happened, one of [`kind`]'s identifiers.
    pub kind: String,
    pub database_id: String,
    /// The backup the alert is about, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup_id: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub links: Vec<Link>,
    /// One line.
    pub summary: String,
    pub details: String,
    /// What to do about it: a command to run, a backup to use instead.
    pub action: String,
    /// The function or command that raised it.
    pub source: String,
    #[serde(with = "time::serde::rfc3339")]
    pub occurred_at: OffsetDateTime,
}

/// SNS limits subjects to 100 printable ASCII characters.
const SUBJECT_LIMIT: usize = 100;

impl Alert {
    /// The SNS/email subject: `[CRITICAL] main: backup failed ...`, ASCII, at most 100 chars.
    pub fn subject(&self) -> String {
        let raw = format!(
            "[{}] {}: {}",
            self.severity.as_str().to_uppercase(),
            self.database_id,
            self.summary
        );
        let ascii: String = raw
            .chars()
            .map(|c| {
                if c.is_ascii_graphic() || c == ' ' {
                    c
                } else {
                    '?'
                }
            })
            .collect();
        if ascii.len() <= SUBJECT_LIMIT {
            ascii
        } else {
            format!("{}...", &ascii[..SUBJECT_LIMIT - 3])
        }
    }

    /// The plain-text body email subscribers read.
    pub fn text(&self) -> String {
        let at = self
            .occurred_at
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default();
        let backup = self
            .backup_id
            .as_ref()
            .map(|id| format!("Backup:   {id}\n"))
            .unwrap_or_default();
        let links: String = self
            .links
            .iter()
            .map(|l| format!("\n{}: {}", l.label, l.url))
            .collect();
        let links = if links.is_empty() {
            String::new()
        } else {
            format!("\nLinks{links}\n")
        };
        format!(
            "{summary}\n\n\
             Severity: {severity}\n\
             Database: {database}\n\
             {backup}\
             What:     {kind}\n\
             When:     {at}\n\
             Source:   {source}\n\n\
             Details\n{details}\n\n\
             What to do\n{action}\n{links}",
            summary = self.summary,
            severity = self.severity.as_str(),
            database = self.database_id,
            kind = self.kind,
            source = self.source,
            details = self.details,
            action = self.action,
        )
    }

    /// The SNS message for `MessageStructure=json`: text for email (and anything else), the
    /// alert as JSON for Lambda and SQS subscribers.
    pub fn sns_message(&self) -> String {
        let text = self.text();
        let payload = serde_json::to_string(self).unwrap_or_default();
        serde_json::json!({ "default": text, "email": text, "lambda": payload, "sqs": payload })
            .to_string()
    }

    /// Replaces every occurrence of each non-empty secret in the alert's text fields.
    pub fn scrubbed(mut self, secrets: &[&str]) -> Self {
        for field in [&mut self.summary, &mut self.details, &mut self.action] {
            *field = scrub(field, secrets);
        }
        self
    }
}

/// `text` with every occurrence of each secret (of 4 characters or more) replaced.
pub fn scrub(text: &str, secrets: &[&str]) -> String {
    let mut out = text.to_string();
    for secret in secrets.iter().filter(|s| s.len() >= 4) {
        out = out.replace(secret, "[redacted]");
    }
    out
}

/// `severity`, `kind` and `database` as SNS message attributes, so subscriptions can filter
/// (e.g. email only for `critical`).
fn message_attributes(
    alert: &Alert,
) -> std::collections::HashMap<String, aws_sdk_sns::types::MessageAttributeValue> {
    [
        ("severity", alert.severity.as_str().to_string()),
        ("kind", alert.kind.clone()),
        ("database", alert.database_id.clone()),
    ]
    .into_iter()
    .filter_map(|(name, value)| {
        aws_sdk_sns::types::MessageAttributeValue::builder()
            .data_type("String")
            .string_value(value)
            .build()
            .ok()
            .map(|v| (name.to_string(), v))
    })
    .collect()
}

#[derive(Debug, thiserror::Error)]
#[error("could not publish the alert to {topic}: {reason}")]
pub struct PublishError {
    pub topic: String,
    pub reason: String,
}

/// Where alerts go: an SNS topic, or the log alone when none is configured.
#[derive(Debug, Clone)]
pub struct AlertSink {
    sns: Option<(aws_sdk_sns::Client, String)>,
    /// Links every alert published here gets (the logs of the run).
    links: Vec<Link>,
}

impl AlertSink {
    pub fn new(aws: &SdkConfig, topic: Option<String>) -> Self {
        Self {
            sns: topic.map(|t| (aws_sdk_sns::Client::new(aws), t)),
            links: Vec::new(),
        }
    }

    /// Adds `link` (when there is one) to every alert published here.
    pub fn with_link(mut self, link: Option<Link>) -> Self {
        self.links.extend(link);
        self
    }

    /// `alert` as published here: with this sink's links after its own (each once).
    pub fn complete(&self, alert: &Alert) -> Alert {
        let mut alert = alert.clone();
        for link in &self.links {
            if !alert.links.contains(link) {
                alert.links.push(link.clone());
            }
        }
        alert
    }

    /// Publishes `alert` with this sink's links (and logs it either way).
    pub async fn publish(&self, alert: &Alert) -> Result<(), PublishError> {
        let alert = &self.complete(alert);
        tracing::warn!(
            severity = alert.severity.as_str(),
            kind = %alert.kind,
            database = %alert.database_id,
            summary = %alert.summary,
            "alert"
        );
        let Some((client, topic)) = &self.sns else {
            return Ok(());
        };
        client
            .publish()
            .topic_arn(topic)
            .subject(alert.subject())
            .message_structure("json")
            .message(alert.sns_message())
            .set_message_attributes(Some(message_attributes(alert)))
            .send()
            .await
            .map_err(|e| PublishError {
                topic: topic.clone(),
                reason: crate::aws::describe_error(&e),
            })?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn alert(summary: &str) -> Alert {
        Alert {
            severity: Severity::Critical,
            kind: kind::BACKUP_FAILED.into(),
            database_id: "main".into(),
            backup_id: None,
            links: Vec::new(),
            summary: summary.into(),
            details: "password authentication failed for user \"app\" (pw hunter22)".into(),
            action: "re-run".into(),
            source: "backup".into(),
            occurred_at: datetime!(2026-11-22 06:00 UTC),
        }
    }

    #[test]
    fn subjects_are_short_ascii_lines() {
        let a = alert("backup failed: naïve\nline");
        assert_eq!(a.subject(), "[CRITICAL] main: backup failed: na?ve?line");
        let long = alert(&"x".repeat(300));
        assert_eq!(long.subject().len(), 100);
    }

    #[test]
    fn the_sns_message_carries_text_and_the_alert_as_json() {
        let a = alert("backup failed");
        let message: serde_json::Value = serde_json::from_str(&a.sns_message()).unwrap();
        assert_eq!(message["default"], message["email"]);
        assert!(
            message["default"]
                .as_str()
                .unwrap()
                .contains("What to do\nre-run")
        );
        let back: Alert = serde_json::from_str(message["lambda"].as_str().unwrap()).unwrap();
        assert_eq!(back, a);
    }

    #[test]
    fn the_logs_link_escapes_names_as_the_cloudwatch_console_does() {
        let link = logs_link("eu-west-1", "/aws/lambda/x", "2026/11/22/[$LATEST]0f1e2d3c");
        assert_eq!(link.label, "Logs of this run");
        assert_eq!(
            link.url,
            "https://eu-west-1.console.aws.amazon.com/cloudwatch/home?region=eu-west-1\
             #logsV2:log-groups/log-group/$252Faws$252Flambda$252Fx/log-events/\
             2026$252F11$252F22$252F$255B$2524LATEST$255D0f1e2d3c"
        );
        let env = |name: &str| match name {
            REGION_VAR => Some("eu-west-1".to_string()),
            LOG_GROUP_VAR => Some("/aws/lambda/x".to_string()),
            LOG_STREAM_VAR => Some("s".to_string()),
            _ => None,
        };
        assert!(run_logs_link(&env).is_some_and(|l| l.url.ends_with("/log-events/s")));
        let no_stream = |name: &str| (name != LOG_STREAM_VAR).then(|| "x".to_string());
        assert_eq!(run_logs_link(&no_stream), None);
    }

    #[test]
    fn a_sink_adds_its_links_once() {
        let logs = logs_link("eu-west-1", "g", "s");
        let sink = AlertSink {
            sns: None,
            links: vec![logs.clone()],
        };
        let once = sink.complete(&alert("backup failed"));
        assert_eq!(once.links, std::slice::from_ref(&logs));
        assert_eq!(sink.complete(&once).links, [logs]);
    }

    #[test]
    fn known_secrets_are_scrubbed() {
        let a = alert("backup failed").scrubbed(&["hunter22", ""]);
        assert!(!a.details.contains("hunter22") && a.details.contains("[redacted]"));
    }
}
