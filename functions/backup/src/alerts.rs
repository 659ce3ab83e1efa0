//! The backup function's alerts: the info alert for a committed backup (when asked for) and
//! the critical one for a failure, with the command that runs it again.

use backstop::alert::exposure::{self, Exposure};
use backstop::alert::{Alert, Severity, console_link, kind};
use backstop::layout::DatabaseId;
use backstop::store::StoreUrl;
use common::rerun_command;
use time::OffsetDateTime;

use crate::{BackupDone, FailureKind, TierChoice};

/// The info alert for a committed backup (sent only when asked for).
pub fn success_alert(done: &BackupDone, store: &StoreUrl, at: OffsetDateTime) -> Alert {
    Alert {
        severity: Severity::Info,
        kind: kind::BACKUP_SUCCEEDED.into(),
        database_id: done.database.clone(),
        backup_id: Some(done.backup_id.clone()),
        links: console_link(store, &format!("{}/{}", done.database, done.backup_id))
            .into_iter()
            .collect(),
        summary: format!("backup {} committed ({} tier)", done.backup_id, done.tier),
        details: format!(
            "{} tables, {} rows, {} bytes stored in {:.1} s.",
            done.tables, done.rows, done.bytes, done.duration_seconds
        ),
        action: "Nothing to do.".into(),
        source: "backup".into(),
        occurred_at: at,
    }
}

/// What a failure alert is built from.
pub struct FailureFacts<'a> {
    pub database: &'a DatabaseId,
    pub tier: TierChoice,
    pub reason: &'a str,
    pub kind: FailureKind,
    pub store: &'a str,
    pub function_name: &'a str,
    pub request_id: &'a str,
    pub run_id: Option<&'a str>,
    pub seconds: f64,
    /// Whether the engine started (and so cleaned up after itself).
    pub cleaned_up: bool,
    /// Whether a container task is configured to dispatch to.
    pub task_configured: bool,
    /// What a restore would give back now (`Err`: the store could not be read), so the alert
    /// says how exposed the database is.
    pub exposure: Result<Exposure, String>,
    pub at: OffsetDateTime,
}

/// The critical alert for a failed backup, with the command that re-runs it.
pub fn failure_alert(facts: &FailureFacts<'_>) -> Alert {
    let database = facts.database;
    let tier = facts.tier.as_str();
    let cli = format!(
        "backstop backup --db \"$DATABASE_URL\" --to {} --database-id {database} --tier {tier}",
        facts.store
    );
    let action = match facts.kind {
        FailureKind::OutOfTime if facts.task_configured => format!(
            "This backup needs more time than one Lambda invocation allows. The next run \
             dispatches it to the container task (ECS/Fargate); to take it now, invoke the \
             function again:\n  {}\nor run it from the CLI on a host near the database:\n  {cli}",
            rerun_command(
                facts.function_name,
                &serde_json::json!({"database": database.as_str(), "tier": tier})
            )
        ),
        FailureKind::OutOfTime => format!(
            "This backup needs more time than one Lambda invocation allows. Run the same backup \
             as a container task (ECS/Fargate: set the module's `fargate` settings, and backups \
             that do not fit are dispatched to it) or from the CLI on a host near the database:\n  {cli}"
        ),
        FailureKind::Other => format!(
            "Fix the cause above, then run the backup again:\n  {}\nor from the CLI:\n  {cli}",
            rerun_command(
                facts.function_name,
                &serde_json::json!({"database": database.as_str(), "tier": tier})
            )
        ),
    };
    let committed = if facts.cleaned_up {
        "Nothing was committed: no manifest was written, so whatever parts were uploaded are not \
         a backup and nothing reads them; unfinished uploads were aborted, and retention's sweep \
         removes what is left (after 24 hours; this function may not delete)."
    } else {
        "The backup did not start, so nothing was written."
    };
    let exposure = exposure::describe(&facts.exposure);
    let event = facts
        .run_id
        .map(|id| format!(", event {id}"))
        .unwrap_or_default();
    let summary_reason: String = facts.reason.chars().take(160).collect();
    Alert {
        severity: Severity::Critical,
        kind: match facts.kind {
            FailureKind::OutOfTime => kind::BACKUP_DEADLINE_EXCEEDED,
            FailureKind::Other => kind::BACKUP_FAILED,
        }
        .into(),
        database_id: database.to_string(),
        backup_id: None,
        links: Vec::new(),
        summary: format!("backup failed: {summary_reason}"),
        details: format!(
            "{reason}\n\n{exposure}\n{committed}\nTier requested: {tier}. Failed after \
             {seconds:.1} s. Request {request}{event}. Store: {store}.",
            reason = facts.reason,
            seconds = facts.seconds,
            request = facts.request_id,
            store = facts.store,
        ),
        action,
        source: format!("backup Lambda {}", facts.function_name),
        occurred_at: facts.at,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn facts(kind: FailureKind) -> FailureFacts<'static> {
        static MAIN: std::sync::LazyLock<DatabaseId> =
            std::sync::LazyLock::new(|| DatabaseId::new("main").unwrap());
        FailureFacts {
            database: &MAIN,
            tier: TierChoice::Monthly,
            reason: "cannot connect to database `app` on db:5432: connection refused",
            kind,
            store: "s3://backups/prod",
            function_name: "backstop-backup",
            request_id: "req-1",
            run_id: Some("evt-1"),
            seconds: 2.5,
            cleaned_up: true,
            task_configured: false,
            exposure: Ok(Exposure {
                newest_backup: Some((
                    "20261121T060000Z-1a2b3c4d".into(),
                    std::time::Duration::from_secs(86_400),
                )),
                recovery_point_age: None,
                good: exposure::Good::Committed,
            }),
            at: datetime!(2026-11-22 06:00 UTC),
        }
    }

    #[test]
    fn a_failure_alert_says_what_failed_and_how_to_rerun_it() {
        let alert = failure_alert(&facts(FailureKind::Other));
        assert_eq!(alert.severity, Severity::Critical);
        assert!(alert.summary.starts_with("backup failed: cannot connect"));
        assert!(alert.details.contains("Nothing was committed"));
        assert!(alert.details.contains("event evt-1"));
        assert!(
            alert
                .details
                .contains("The newest good backup is 20261121T060000Z-1a2b3c4d, taken 1 d 0 h ago"),
            "{}",
            alert.details
        );
        assert!(
            alert.action.contains("--invocation-type Event"),
            "{}",
            alert.action
        );
        let none = failure_alert(&FailureFacts {
            exposure: Ok(Exposure {
                newest_backup: None,
                recovery_point_age: None,
                good: exposure::Good::Committed,
            }),
            ..facts(FailureKind::Other)
        });
        assert!(
            none.details
                .contains("no committed backup of this database at all")
        );
        assert!(
            alert
                .action
                .contains("aws lambda invoke --function-name backstop-backup")
        );
        assert!(
            alert
                .action
                .contains(r#"{"database":"main","tier":"monthly"}"#)
        );
        assert!(
            alert
                .action
                .contains("--to s3://backups/prod --database-id main --tier monthly")
        );
    }

    #[test]
    fn running_out_of_time_points_to_a_container_task_or_the_cli() {
        let alert = failure_alert(&facts(FailureKind::OutOfTime));
        assert!(alert.action.contains("container task"), "{}", alert.action);
        assert!(alert.action.contains("backstop backup --db"));
        assert!(!alert.action.contains("aws lambda invoke"));
        // With a task to dispatch to, the next run (or an invocation now) goes there.
        let dispatching = failure_alert(&FailureFacts {
            task_configured: true,
            ..facts(FailureKind::OutOfTime)
        });
        assert!(
            dispatching
                .action
                .contains("dispatches it to the container task")
        );
        assert!(dispatching.action.contains("aws lambda invoke"));
    }
}
