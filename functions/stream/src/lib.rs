//! Stream Lambda: drains each database's change stream (point-in-time recovery), on a
//! schedule every few minutes or on demand.
//!
//! Accepted events: an EventBridge scheduled event (every configured database) and a
//! Scheduler input or on-demand request `{"database": "main"}`.
//!
//! Per database: the connection is fetched, one drain runs under the database's stream lease
//! (a drain already running makes this one a no-op), and when the stream starts, restarts or
//! sees a schema change, the base backup it needs is taken in the same invocation. Metrics:
//! `StreamLagBytes`, `StreamRetainedBytes`, `ChangesBytes`, `StreamChanges`,
//! `RecoveryPointAgeSeconds`. Alerts: a restarted stream (the slot was lost, dropped past the
//! cap, or consumed by someone else), a schema change, changes a restore cannot replay, a slot
//! holding back more WAL than the warning level, and any failure.

use std::time::{Duration, Instant};

use backstop::alert::exposure::{self, Exposure};
use backstop::alert::{Alert, Severity, kind};
use backstop::config::{ConfigError, FunctionConfig, positive_number, recipients};
use backstop::connection::resolve;
use backstop::engine::backup::{BackupOptions, backup_exclusively};
use backstop::engine::encryption::Recipients;
use backstop::engine::stream::{DrainReport, StreamError, StreamOptions, drain_exclusively};
use backstop::layout::DatabaseId;
use backstop::lease::LeaseError;
use backstop::metrics::Metric;
use common::invocation::time_left;
use common::{Base, Delivery, rerun_command};
use lambda_runtime::{Diagnostic, LambdaEvent};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;

/// The name the function goes by when the runtime does not say.
pub const DEFAULT_NAME: &str = "backstop-stream";
/// Drop the slot (and start a new stream with a new base) past this much retained WAL, MiB
/// (`BACKSTOP_STREAM_MAX_SLOT_WAL_MIB`, default 10240).
pub const MAX_SLOT_WAL_VAR: &str = "BACKSTOP_STREAM_MAX_SLOT_WAL_MIB";
/// Warn once the slot holds back this much WAL, MiB (default: half the cap).
pub const WARN_SLOT_WAL_VAR: &str = "BACKSTOP_STREAM_WARN_SLOT_WAL_MIB";
/// Seconds kept back before the invocation deadline.
pub const RESERVE_VAR: &str = "BACKSTOP_DEADLINE_RESERVE_SECONDS";

/// Everything the handler needs, built once at cold start.
pub struct Deps {
    pub base: Base,
    pub max_retained_bytes: u64,
    pub warn_retained_bytes: u64,
    pub reserve: Duration,
    /// What segments and base backups are encrypted to (`BACKSTOP_RECIPIENTS`).
    pub recipients: Option<Recipients>,
    /// Base backups store table data as shared chunks (`BACKSTOP_INCREMENTAL`), with this key.
    pub incremental: bool,
    pub chunk_key: backstop::config::ChunkKeySource,
}

impl Deps {
    pub fn new(base: Base) -> Result<Self, ConfigError> {
        let env = base.env.clone();
        let cap = positive_number(env.as_ref(), MAX_SLOT_WAL_VAR, 10_240)?;
        let warn = positive_number(env.as_ref(), WARN_SLOT_WAL_VAR, (cap / 2).max(1))?;
        Ok(Self {
            max_retained_bytes: cap * 1024 * 1024,
            warn_retained_bytes: warn * 1024 * 1024,
            reserve: Duration::from_secs(positive_number(env.as_ref(), RESERVE_VAR, 30)?),
            recipients: recipients(env.as_ref())?,
            incremental: backstop::config::flag(
                env.as_ref(),
                backstop::config::INCREMENTAL_VAR,
                false,
            )?,
            chunk_key: backstop::config::ChunkKeySource::from_env(env.as_ref())?,
            base,
        })
    }
}

/// A Scheduler input or an on-demand request.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamRequest {
    pub database: Option<String>,
}

/// One database's drain.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Drained {
    pub database: String,
    pub transactions: u64,
    pub changes: u64,
    pub bytes: u64,
    pub segments: usize,
    /// The newest recovery point.
    #[serde(with = "time::serde::rfc3339::option")]
    pub recoverable_through: Option<OffsetDateTime>,
    /// The base backup this drain took, when the stream needed one.
    pub base_backup: Option<String>,
    /// Why it needed one.
    pub needs_base: Option<String>,
    pub unidentified_tables: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Skipped {
    pub database: String,
    pub reason: String,
}

#[derive(Debug, Serialize)]
pub struct StreamResponse {
    pub drained: Vec<Drained>,
    pub skipped: Vec<Skipped>,
}

#[derive(Debug, thiserror::Error)]
pub enum StreamFunctionError {
    #[error("unrecognised event: {0}; send a scheduled event or {{\"database\": \"<id>\"}}")]
    BadEvent(String),
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("{failed} of {attempted} drain(s) failed: {summary}")]
    Failed {
        failed: usize,
        attempted: usize,
        summary: String,
    },
}

impl From<StreamFunctionError> for Diagnostic {
    fn from(error: StreamFunctionError) -> Self {
        let error_type = match &error {
            StreamFunctionError::Failed { .. } => "StreamFailed",
            _ => "NonRetryable",
        };
        Diagnostic {
            error_type: error_type.into(),
            error_message: error.to_string(),
        }
    }
}

/// The databases an event asks for.
pub fn plan(
    payload: Value,
    config: &FunctionConfig,
) -> Result<Vec<DatabaseId>, StreamFunctionError> {
    let request = match Delivery::<StreamRequest>::of(payload)
        .map_err(|e| StreamFunctionError::BadEvent(e.to_string()))?
    {
        Delivery::Scheduled { .. } => StreamRequest::default(),
        Delivery::Request(request) => request,
    };
    Ok(config.databases_for(request.database.as_deref())?)
}

pub async fn handler(
    event: LambdaEvent<Value>,
    deps: &Deps,
) -> Result<StreamResponse, StreamFunctionError> {
    let databases = plan(event.payload, &deps.base.config)?;
    let deadline = time_left(event.context.deadline)
        .map(|left| Instant::now() + left.saturating_sub(deps.reserve));
    let holder = format!(
        "stream Lambda {} request {}",
        deps.base.function_name, event.context.request_id
    );
    let mut response = StreamResponse {
        drained: Vec::new(),
        skipped: Vec::new(),
    };
    let mut failures = Vec::new();
    for database in &databases {
        match run_one(database, deadline, &holder, deps).await {
            Ok(Some(drained)) => response.drained.push(drained),
            Ok(None) => response.skipped.push(Skipped {
                database: database.to_string(),
                reason: "a drain of this database is already running".into(),
            }),
            Err(reason) => {
                let now = OffsetDateTime::now_utc();
                let exposure = Exposure::read(deps.base.store.as_ref(), database, now)
                    .await
                    .map_err(|e| e.to_string());
                let alert = failure_alert(
                    &Failure {
                        database,
                        reason: &reason,
                        function_name: &deps.base.function_name,
                        store: &deps.base.config.store.to_string(),
                        exposure: &exposure,
                    },
                    now,
                );
                if let Err(e) = deps.base.alerts.publish(&alert).await {
                    tracing::error!(error = %e, "the failure alert could not be published");
                }
                failures.push(format!("{database}: {reason}"));
            }
        }
    }
    if failures.is_empty() {
        Ok(response)
    } else {
        Err(StreamFunctionError::Failed {
            failed: failures.len(),
            attempted: databases.len(),
            summary: failures.join("; "),
        })
    }
}

/// One database: `Ok(None)` when another drain holds the lease.
async fn run_one(
    database: &DatabaseId,
    deadline: Option<Instant>,
    holder: &str,
    deps: &Deps,
) -> Result<Option<Drained>, String> {
    let source = deps
        .base
        .config
        .sources
        .get(database)
        .ok_or_else(|| format!("database `{database}` has no connection source configured"))?;
    let target = resolve(
        database.as_str(),
        source,
        &deps.base.aws,
        deps.base.env.as_ref(),
    )
    .await
    .map_err(|e| e.to_string())?;
    let password = target
        .config
        .get_password()
        .map(|p| String::from_utf8_lossy(p).into_owned())
        .unwrap_or_default();
    let scrub = |text: String| backstop::alert::scrub(&text, &[password.as_str()]);

    let mut options = StreamOptions::new(database.clone());
    options.interrupt = common::stopping();
    options.max_retained_bytes = Some(deps.max_retained_bytes);
    options.recipients = deps.recipients.clone();
    options.deadline = deadline.map(tokio::time::Instant::from_std);
    let report = match drain_exclusively(&target, deps.base.store.clone(), &options, holder).await {
        Ok(report) => report,
        Err(StreamError::Lease(LeaseError::Held { .. })) => return Ok(None),
        Err(e) => return Err(scrub(e.to_string())),
    };
    let now = OffsetDateTime::now_utc();
    let mut metrics = vec![
        Metric::bytes("StreamLagBytes", report.lag_bytes as f64),
        Metric::bytes("StreamRetainedBytes", report.retained_bytes as f64),
        Metric::bytes("ChangesBytes", report.stored_bytes as f64),
        Metric::count("StreamChanges", report.changes as f64),
    ];
    if let Some(through) = report.through {
        metrics.push(Metric::seconds(
            "RecoveryPointAgeSeconds",
            (now - through).as_seconds_f64().max(0.0),
        ));
    }
    if let Err(e) = deps.base.metrics.put(database, now, &metrics).await {
        tracing::warn!(error = %e, "drained, but the stream metrics were not recorded");
    }
    for alert in drain_alerts(
        database,
        &report,
        deps.warn_retained_bytes,
        &deps.base.function_name,
        now,
    ) {
        if let Err(e) = deps.base.alerts.publish(&alert).await {
            tracing::warn!(error = %e, "a stream alert could not be published");
        }
    }
    let needs_base = report.needs_base();
    let mut base_backup = None;
    if needs_base.is_some() {
        let mut backup = BackupOptions::new(database.clone());
        backup.recipients = deps.recipients.clone();
        backup.reason = Some("base of the change stream".into());
        if deps.incremental {
            backup.incremental = true;
            backup.chunk_key = deps
                .chunk_key
                .resolve(&deps.base.aws)
                .await
                .map_err(&scrub)?;
        }
        backup.deadline = options.deadline;
        match backup_exclusively(&target, deps.base.store.clone(), &backup, holder, &|_| {}).await {
            Ok(manifest) => base_backup = Some(manifest.backup_id),
            // A backup running now reads the slot's position as it starts: it is the base.
            Err(backstop::engine::backup::BackupError::Lease(LeaseError::Held { .. })) => {}
            Err(e) => {
                return Err(scrub(format!(
                    "drained, but the base backup the stream needs failed: {e}"
                )));
            }
        }
    }
    Ok(Some(Drained {
        database: database.to_string(),
        transactions: report.transactions,
        changes: report.changes,
        bytes: report.stored_bytes,
        segments: report.segments.len(),
        recoverable_through: report.through,
        base_backup,
        needs_base,
        unidentified_tables: report.unidentified.clone(),
    }))
}

/// What a drain tells people (pure); `function_name` is the function that drains again.
pub fn drain_alerts(
    database: &DatabaseId,
    report: &DrainReport,
    warn_retained_bytes: u64,
    function_name: &str,
    at: OffsetDateTime,
) -> Vec<Alert> {
    let alert = |severity, kind: &str, summary: String, details: String, action: String| Alert {
        severity,
        kind: kind.into(),
        database_id: database.to_string(),
        backup_id: None,
        links: Vec::new(),
        summary,
        details,
        action,
        source: "stream".into(),
        occurred_at: at,
    };
    let mut alerts = Vec::new();
    if let Some(why) = &report.new_chain
        && why != "the change stream starts"
    {
        alerts.push(alert(
            Severity::Warning,
            kind::STREAM_RESTARTED,
            format!("point-in-time recovery restarted: {why}"),
            "Points between the previous drain and the new base backup cannot be recovered; \
             earlier points still restore from the older backups, later ones from the new base."
                .into(),
            "Nothing, if the new base backup was taken (the next alerts say otherwise). If the slot \
             keeps being lost, raise max_slot_wal_keep_size or drain more often."
                .into(),
        ));
    }
    if report.schema_changed {
        alerts.push(alert(
            Severity::Warning,
            kind::STREAM_SCHEMA_CHANGED,
            "the schema changed: a new base backup starts the change stream again".into(),
            "Logical decoding carries no DDL, so changes after a schema change replay only onto a \
             backup taken after it. Points from the previous drain up to the new base cannot be \
             recovered."
                .into(),
            "Nothing to do; deploys that change the schema each start a new base.".into(),
        ));
    }
    if !report.unreplayable.is_empty() {
        let tables = report.unreplayable.join(", ");
        alerts.push(alert(
            Severity::Warning,
            kind::STREAM_UNREPLAYABLE,
            format!("changes a restore cannot replay: UPDATE or DELETE on {tables}"),
            "These tables have no replica identity, so a change does not say which row it \
             touched. A point-in-time restore past these changes refuses."
                .into(),
            format!(
                "Give each a primary key, or run ALTER TABLE <table> REPLICA IDENTITY FULL on: {tables}; \
                 then take a backup."
            ),
        ));
    }
    if report.retained_bytes >= warn_retained_bytes && report.new_chain.is_none() {
        let reach = match report.through {
            Some(through) => format!(
                "This drain stored what it read: point-in-time recovery reaches {} ago (the RPO \
                 right now).",
                backstop::clock::span(
                    std::time::Duration::try_from(at - through).unwrap_or_default()
                )
            ),
            None => "The change stream has no recovery point yet.".into(),
        };
        alerts.push(alert(
            Severity::Warning,
            kind::STREAM_SLOT_LAG,
            format!(
                "the change stream's slot {} holds back {:.0} MiB of WAL",
                report.slot,
                report.retained_bytes as f64 / (1024.0 * 1024.0)
            ),
            format!(
                "A slot keeps the WAL its reader has not confirmed; past the cap ({cap}) the \
                 stream drops it and starts again with a new base, before it can fill the \
                 server's disk.\n{reach}",
                cap = MAX_SLOT_WAL_VAR
            ),
            format!(
                "Check that the drains run (their schedule and failures) and keep up with the \
                 write load. Drain now:\n  {}\nand see what the slot holds back:\n  psql \
                 \"$DATABASE_URL\" -c \"SELECT slot_name, active, wal_status, \
                 pg_size_pretty(pg_current_wal_lsn() - restart_lsn) AS retained FROM \
                 pg_replication_slots\"",
                rerun_command(
                    function_name,
                    &serde_json::json!({"database": database.as_str()})
                )
            ),
        ));
    }
    alerts
}

/// What a failed drain's alert is built from.
struct Failure<'a> {
    database: &'a DatabaseId,
    reason: &'a str,
    function_name: &'a str,
    store: &'a str,
    /// What a restore would give back now (`Err`: the store could not be read).
    exposure: &'a Result<Exposure, String>,
}

fn failure_alert(failure: &Failure<'_>, at: OffsetDateTime) -> Alert {
    let Failure {
        database,
        reason,
        function_name,
        store,
        exposure,
    } = failure;
    let summary: String = reason.chars().take(160).collect();
    Alert {
        severity: Severity::Critical,
        kind: kind::STREAM_FAILED.into(),
        database_id: database.to_string(),
        backup_id: None,
        links: Vec::new(),
        summary: format!("change stream drain failed: {summary}"),
        details: format!(
            "{reason}\n\n{}\nNothing was lost from the slot: it advances only past stored \
             segments. Until a drain succeeds, the newest recovery point does not move (the RPO \
             grows) and the slot holds back WAL.",
            exposure::describe(exposure)
        ),
        action: format!(
            "Fix the cause above, then drain again:\n  {}\nor from the CLI:\n  backstop stream --db \"$DATABASE_URL\" --to {store} --database-id {database}",
            rerun_command(
                function_name,
                &serde_json::json!({"database": database.as_str()})
            )
        ),
        source: format!("stream Lambda {function_name}"),
        occurred_at: at,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_drain_tells_people_what_it_could_not_carry() {
        let database = DatabaseId::new("main").unwrap();
        let at = OffsetDateTime::UNIX_EPOCH;
        let mut report = DrainReport {
            slot: "backstop_main".into(),
            new_chain: Some("the change stream starts".into()),
            ..Default::default()
        };
        assert!(drain_alerts(&database, &report, 100, "backstop-stream", at).is_empty());
        report.new_chain = Some("the server invalidated the slot".into());
        report.schema_changed = true;
        report.unreplayable = vec!["public.loose".into()];
        let kinds: Vec<String> = drain_alerts(&database, &report, 100, "backstop-stream", at)
            .into_iter()
            .map(|a| a.kind)
            .collect();
        assert_eq!(
            kinds,
            [
                kind::STREAM_RESTARTED,
                kind::STREAM_SCHEMA_CHANGED,
                kind::STREAM_UNREPLAYABLE
            ]
        );
        report.new_chain = None;
        report.schema_changed = false;
        report.unreplayable.clear();
        report.retained_bytes = 200;
        report.through = Some(at - time::Duration::minutes(3));
        let lag = drain_alerts(&database, &report, 100, "backstop-stream", at);
        assert_eq!(lag[0].kind, kind::STREAM_SLOT_LAG);
        assert!(
            lag[0]
                .details
                .contains("point-in-time recovery reaches 3 min 0 s ago"),
            "{}",
            lag[0].details
        );
        assert!(
            lag[0].action.contains(
                "aws lambda invoke --function-name backstop-stream --invocation-type Event"
            ),
            "{}",
            lag[0].action
        );
    }

    #[test]
    fn a_failed_drain_says_the_rpo_right_now_and_commands_that_run_as_printed() {
        let database = DatabaseId::new("main").unwrap();
        let exposure = Ok(Exposure {
            newest_backup: Some((
                "20261121T060000Z-1a2b3c4d".into(),
                Duration::from_secs(7200),
            )),
            recovery_point_age: Some(Duration::from_secs(900)),
            good: exposure::Good::Committed,
        });
        let alert = failure_alert(
            &Failure {
                database: &database,
                reason: "cannot connect to database `app` on db:5432: connection refused",
                function_name: "backstop-stream",
                store: "s3://acme-backups/prod",
                exposure: &exposure,
            },
            OffsetDateTime::UNIX_EPOCH,
        );
        assert!(
            alert
                .details
                .contains("a restore now loses the last 15 min 0 s (the RPO right now)"),
            "{}",
            alert.details
        );
        assert!(
            alert.action.contains(
                "backstop stream --db \"$DATABASE_URL\" --to s3://acme-backups/prod --database-id main"
            ),
            "{}",
            alert.action
        );
        assert!(alert.action.contains("--invocation-type Event"));
    }
}
