//! Alerts as Slack Block Kit messages: a coloured bar and emoji for the severity, the database,
//! the summary, detail fields, the suggested commands in code blocks, and links.

use backstop::alert::{Alert, Severity, kind};
use serde_json::{Value, json};

/// Slack's limits: header text 150 characters, section text 3000.
const HEADER_LIMIT: usize = 150;
const SECTION_LIMIT: usize = 2900;

fn style(alert: &Alert) -> (&'static str, &'static str) {
    match alert.kind.as_str() {
        kind::BACKUP_FAILED => (":red_circle:", "Backup failed"),
        kind::BACKUP_DEADLINE_EXCEEDED => (":hourglass:", "Backup ran out of time"),
        kind::BACKUP_SUCCEEDED => (":white_check_mark:", "Backup succeeded"),
        kind::VERIFY_FAILED => (":rotating_light:", "Verification failed"),
        kind::VERIFY_NOT_RUN => (":warning:", "Verification could not run"),
        kind::VERIFY_NOT_POSSIBLE => (":snowflake:", "Backup not verifiable now"),
        kind::VERIFICATION_LOG_CHANGED => (":rotating_light:", "Verification record changed"),
        kind::VERIFICATION_NOT_LOGGED => (":warning:", "Verification not recorded"),
        kind::HEALTH_WARNING => (":warning:", "Database health warning"),
        kind::HEALTH_CRITICAL => (":red_circle:", "Database health critical"),
        kind::HEALTH_RECOVERED => (":large_green_circle:", "Database health recovered"),
        kind::RETENTION_REPORT => (":broom:", "Retention report"),
        kind::RETENTION_FAILED => (":warning:", "Retention did not run"),
        kind::STREAM_FAILED => (":red_circle:", "Change stream drain failed"),
        kind::STREAM_RESTARTED => (":arrows_counterclockwise:", "Change stream restarted"),
        kind::STREAM_SCHEMA_CHANGED => {
            (":building_construction:", "Schema changed: new base taken")
        }
        kind::STREAM_UNREPLAYABLE => (":warning:", "Changes a restore cannot replay"),
        kind::STREAM_SLOT_LAG => (":warning:", "Change stream slot falling behind"),
        _ => match alert.severity {
            Severity::Critical => (":red_circle:", "Backstop alert"),
            Severity::Warning => (":warning:", "Backstop warning"),
            Severity::Info => (":information_source:", "Backstop notice"),
        },
    }
}

fn color(severity: Severity) -> &'static str {
    match severity {
        Severity::Critical => "#D72B3F",
        Severity::Warning => "#E8A317",
        Severity::Info => "#2EB67D",
    }
}

/// Escapes text for Slack's mrkdwn (`&`, `<`, `>`).
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn truncate(text: &str, limit: usize) -> String {
    if text.chars().count() <= limit {
        text.to_string()
    } else {
        let cut: String = text.chars().take(limit - 1).collect();
        format!("{cut}…")
    }
}

/// Prose stays prose; lines indented by two spaces (commands) become code blocks.
fn action_mrkdwn(action: &str) -> String {
    let mut out = Vec::new();
    let mut code: Vec<&str> = Vec::new();
    let flush = |code: &mut Vec<&str>, out: &mut Vec<String>| {
        if !code.is_empty() {
            out.push(format!("```{}```", escape(&code.join("\n"))));
            code.clear();
        }
    };
    for line in action.lines() {
        match line.strip_prefix("  ") {
            Some(command) => code.push(command),
            None => {
                flush(&mut code, &mut out);
                out.push(escape(line));
            }
        }
    }
    flush(&mut code, &mut out);
    out.join("\n")
}

fn section(text: String) -> Value {
    json!({"type": "section", "text": {"type": "mrkdwn", "text": truncate(&text, SECTION_LIMIT)}})
}

/// The Block Kit message for `alert`.
pub fn render(alert: &Alert) -> Value {
    let (emoji, title) = style(alert);
    let header = truncate(
        &format!("{emoji} {title}: {}", alert.database_id),
        HEADER_LIMIT,
    );
    let mut fields = vec![
        json!({"type": "mrkdwn", "text": format!("*Database*\n{}", escape(&alert.database_id))}),
        json!({"type": "mrkdwn", "text": format!("*Severity*\n{}", alert.severity.as_str())}),
    ];
    if let Some(backup) = &alert.backup_id {
        fields.push(json!({"type": "mrkdwn", "text": format!("*Backup*\n`{}`", escape(backup))}));
    }
    fields.push(json!({"type": "mrkdwn", "text": format!("*Source*\n{}", escape(&alert.source))}));
    let at = alert
        .occurred_at
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    let mut blocks = vec![
        json!({"type": "header", "text": {"type": "plain_text", "text": header, "emoji": true}}),
        section(format!("*{}*", escape(&alert.summary))),
        json!({"type": "section", "fields": fields}),
    ];
    if !alert.details.trim().is_empty() {
        blocks.push(section(format!(
            "*Details*\n```{}```",
            escape(&truncate(&alert.details, SECTION_LIMIT - 20))
        )));
    }
    if !alert.action.trim().is_empty() {
        blocks.push(section(format!(
            "*What to do*\n{}",
            action_mrkdwn(&alert.action)
        )));
    }
    if !alert.links.is_empty() {
        let links: Vec<String> = alert
            .links
            .iter()
            .map(|l| format!("<{}|{}>", l.url, escape(&l.label)))
            .collect();
        blocks.push(section(links.join("  ·  ")));
    }
    blocks.push(json!({
        "type": "context",
        "elements": [{"type": "mrkdwn", "text": format!("Backstop · `{}` · {at}", escape(&alert.kind))}]
    }));
    json!({
        "text": format!("{emoji} {title}: {} — {}", alert.database_id, alert.summary),
        "attachments": [{"color": color(alert.severity), "blocks": blocks}],
    })
}

/// A message that is not a Backstop alert (someone published to the topic by hand).
pub fn render_plain(subject: Option<&str>, message: &str) -> Value {
    let text = match subject {
        Some(subject) => format!("*{}*\n{}", escape(subject), escape(message)),
        None => escape(message),
    };
    json!({"text": truncate(&text, SECTION_LIMIT)})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_become_code_blocks_and_prose_is_escaped() {
        let text = action_mrkdwn(
            "Fix <it> & run:\n  backstop backup --db \"$URL\"\n  backstop list\nor wait.",
        );
        assert_eq!(
            text,
            "Fix &lt;it&gt; &amp; run:\n```backstop backup --db \"$URL\"\nbackstop list```\nor wait."
        );
    }

    #[test]
    fn long_texts_are_cut_to_slack_limits() {
        assert_eq!(truncate("abcdef", 4), "abc…");
        assert_eq!(truncate("abc", 4), "abc");
    }
}
