//! Backup Lambda: takes a backup of each requested database on schedule or on demand.
//!
//! Accepted events: an EventBridge scheduled event (every configured database), an EventBridge
//! Scheduler input `{"database": "main", "tier": "auto"}`, and an on-demand invocation
//! `{"database": "main", "tier": "monthly", "reason": "before migration 00021"}`.
//!
//! Per database: the event is claimed (a second delivery of the same event is answered as a
//! duplicate), the connection is fetched from its source, and the engine runs under the
//! database's backup lease (a run already in progress makes this one a no-op), with the invocation's
//! deadline minus a reserve for cleaning up. Success records metrics; failure records metrics,
//! publishes one critical alert and fails the invocation so Lambda's retries and failure
//! destination see it. A failed run leaves no manifest, no part and no unfinished upload.
//!
//! Under Lambda, a backup that will not fit in the invocation's time left (by the estimate
//! from the last runs, or because the last run stopped at its deadline) is handed to the
//! container task ([`dispatch`]) and answered as dispatched; as that task (no deadline), it
//! always runs.

pub mod alerts;
pub mod claim;
pub mod dispatch;

pub use alerts::{FailureFacts, failure_alert, success_alert};

use std::sync::Arc;
use std::time::{Duration, Instant};

use backstop::alert::exposure::Exposure;
use backstop::config::{ConfigError, FunctionConfig, flag, positive_number, recipients};
use backstop::connection::resolve;
use backstop::engine::backup::{self as engine, BackupOptions, backup_exclusively};
use backstop::engine::encryption::Recipients;
use backstop::engine::manifest::Manifest;
use backstop::layout::DatabaseId;
use backstop::lease::LeaseError;
use backstop::metrics::Metric;
use backstop::runner;
use backstop::store::{CountingStore, Requests};
use backstop::tier::Tier;
use common::invocation::time_left;
use common::{Base, Delivery};
use dispatch::{Decision, DispatchDone, TaskSettings};
use lambda_runtime::{Diagnostic, LambdaEvent};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;

/// Parallel COPY connections (`BACKSTOP_BACKUP_JOBS`, default 2).
pub const JOBS_VAR: &str = "BACKSTOP_BACKUP_JOBS";
/// Seconds kept back before the invocation deadline to stop cleanly and alert.
pub const RESERVE_VAR: &str = "BACKSTOP_DEADLINE_RESERVE_SECONDS";
/// `true`: an info alert for every committed backup as well.
pub const ALERT_ON_SUCCESS_VAR: &str = "BACKSTOP_ALERT_ON_SUCCESS";
/// Seconds a backup lease lasts unrenewed (default 120): how long a run that died without a
/// word keeps the next one (and its event's redelivery) waiting.
pub const LEASE_VAR: &str = "BACKSTOP_LEASE_SECONDS";

/// Everything the handler needs, built once at cold start.
pub struct Deps {
    /// Settings, store, AWS configuration, sinks and the function's name (in re-run commands).
    pub base: Base,
    pub jobs: usize,
    /// Time kept back before the deadline for cleanup, metrics and the alert.
    pub reserve: Duration,
    /// Send an info alert for each committed backup.
    pub alert_on_success: bool,
    /// Lifetime of the backup lease.
    pub lease: Duration,
    /// What every backup is encrypted to (`BACKSTOP_RECIPIENTS`); `None`: plaintext.
    pub recipients: Option<Recipients>,
    /// Store table data as shared chunks (`BACKSTOP_INCREMENTAL`).
    pub incremental: bool,
    /// Where the chunk key an encrypted incremental backup needs is (`BACKSTOP_CHUNK_KEY`,
    /// or the secret `BACKSTOP_CHUNK_KEY_SECRET` names).
    pub chunk_key: backstop::config::ChunkKeySource,
    /// The container task a backup too big for the invocation is dispatched to.
    pub task: Option<TaskSettings>,
    pub ecs: aws_sdk_ecs::Client,
}

impl Deps {
    /// Builds the dependencies on `base`; errors name the variable.
    pub fn new(base: Base) -> Result<Self, ConfigError> {
        let env = base.env.clone();
        Ok(Self {
            jobs: backstop::config::jobs(env.as_ref(), JOBS_VAR)?,
            reserve: Duration::from_secs(positive_number(env.as_ref(), RESERVE_VAR, 30)?),
            lease: Duration::from_secs(positive_number(
                env.as_ref(),
                LEASE_VAR,
                backstop::lease::DEFAULT_LEASE.as_secs(),
            )?),
            alert_on_success: flag(env.as_ref(), ALERT_ON_SUCCESS_VAR, false)?,
            recipients: recipients(env.as_ref())?,
            incremental: flag(env.as_ref(), backstop::config::INCREMENTAL_VAR, false)?,
            chunk_key: backstop::config::ChunkKeySource::from_env(env.as_ref())?,
            task: TaskSettings::from_env(env.as_ref())?,
            ecs: aws_sdk_ecs::Client::new(&base.aws),
            base,
        })
    }
}

/// The name the function goes by when the runtime does not say.
pub const DEFAULT_NAME: &str = "backstop-backup";

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

impl TierChoice {
    fn tier(self) -> Option<Tier> {
        match self {
            TierChoice::Auto => None,
            TierChoice::Daily => Some(Tier::Daily),
            TierChoice::Weekly => Some(Tier::Weekly),
            TierChoice::Monthly => Some(Tier::Monthly),
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            TierChoice::Auto => "auto",
            TierChoice::Daily => "daily",
            TierChoice::Weekly => "weekly",
            TierChoice::Monthly => "monthly",
        }
    }
}

/// A Scheduler input or an on-demand request.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackupRequest {
    pub database: Option<String>,
    #[serde(default)]
    pub tier: TierChoice,
    pub reason: Option<String>,
    /// An id shared by every delivery of one scheduled run (EventBridge Scheduler can pass
    /// `<aws.scheduler.execution-id>`); a second delivery is answered as a duplicate.
    pub run_id: Option<String>,
}

/// A validated request: which databases, at which tier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupPlan {
    pub databases: Vec<DatabaseId>,
    pub tier: TierChoice,
    pub reason: Option<String>,
    /// The id that identifies duplicate deliveries, when the event has one.
    pub run_id: Option<String>,
}

/// One committed backup.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BackupDone {
    pub database: String,
    pub backup_id: String,
    pub tier: String,
    pub bytes: u64,
    pub tables: usize,
    pub rows: u64,
    pub duration_seconds: f64,
    /// Objects the backup set holds (its parts and its manifest).
    pub objects: u64,
    /// Requests made to the store for this backup (lease and tier lookups included).
    pub requests: Requests,
}

/// A database this invocation did not back up, and why that is fine.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Skipped {
    pub database: String,
    pub reason: String,
}

#[derive(Debug, Serialize)]
pub struct BackupResponse {
    pub backups: Vec<BackupDone>,
    /// Backups handed to the container task (too big for this invocation).
    pub dispatched: Vec<DispatchDone>,
    pub skipped: Vec<Skipped>,
}

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error(
        "unrecognised event: {0}; send a scheduled event or {{\"database\": \"<id>\", \"tier\": \"auto\"}}"
    )]
    BadEvent(String),
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("{failed} of {attempted} backup(s) failed: {summary}")]
    Failed {
        failed: usize,
        attempted: usize,
        summary: String,
    },
}

impl From<BackupError> for Diagnostic {
    fn from(error: BackupError) -> Self {
        let error_type = match &error {
            BackupError::Failed { .. } => "BackupFailed",
            _ => "NonRetryable",
        };
        Diagnostic {
            error_type: error_type.into(),
            error_message: error.to_string(),
        }
    }
}

/// Turns any accepted event shape into a plan over configured databases.
pub fn plan(payload: Value, config: &FunctionConfig) -> Result<BackupPlan, BackupError> {
    let (request, event_id) =
        match Delivery::of(payload).map_err(|e| BackupError::BadEvent(e.to_string()))? {
            Delivery::Scheduled { event_id } => (BackupRequest::default(), event_id),
            Delivery::Request(request) => (request, None),
        };
    Ok(BackupPlan {
        databases: config.databases_for(request.database.as_deref())?,
        tier: request.tier,
        reason: request.reason,
        run_id: request.run_id.or(event_id),
    })
}

pub async fn handler(
    event: LambdaEvent<Value>,
    deps: &Deps,
) -> Result<BackupResponse, BackupError> {
    let plan = plan(event.payload, &deps.base.config)?;
    let deadline = invocation_deadline(event.context.deadline, deps.reserve);
    let context = RunContext {
        request_id: event.context.request_id,
        deadline,
    };
    let mut response = BackupResponse {
        backups: Vec::new(),
        dispatched: Vec::new(),
        skipped: Vec::new(),
    };
    let mut failures = Vec::new();
    for database in &plan.databases {
        match run_one(database, &plan, &context, deps).await {
            Outcome::Done(done) => response.backups.push(done),
            Outcome::Dispatched(dispatched) => response.dispatched.push(dispatched),
            Outcome::Skipped(reason) => {
                tracing::warn!(%database, %reason, "backup skipped");
                response.skipped.push(Skipped {
                    database: database.to_string(),
                    reason,
                });
            }
            Outcome::Failed(reason) => failures.push(format!("{database}: {reason}")),
        }
    }
    if failures.is_empty() {
        Ok(response)
    } else {
        Err(BackupError::Failed {
            failed: failures.len(),
            attempted: plan.databases.len(),
            summary: failures.join("; "),
        })
    }
}

/// When the engine must stop: the invocation deadline (ms since the epoch) minus `reserve`.
/// `None` when the context carries no wall-clock deadline (a local run).
fn invocation_deadline(deadline_ms: u64, reserve: Duration) -> Option<Instant> {
    time_left(deadline_ms).map(|left| Instant::now() + left.saturating_sub(reserve))
}

struct RunContext {
    request_id: String,
    deadline: Option<Instant>,
}

enum Outcome {
    Done(BackupDone),
    Dispatched(DispatchDone),
    Skipped(String),
    Failed(String),
}

/// Why a run failed, for the alert's advice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// The invocation's time ran out: the backup is too big for Lambda.
    OutOfTime,
    Other,
}

async fn run_one(
    database: &DatabaseId,
    plan: &BackupPlan,
    context: &RunContext,
    deps: &Deps,
) -> Outcome {
    let started = Instant::now();
    // A failure before the engine ran: nothing was written.
    let refuse = async |reason: String, kind: FailureKind, secrets: &[&str]| {
        fail(
            database, plan, context, deps, started, false, reason, kind, secrets,
        )
        .await
    };
    let holder = match context.deadline {
        Some(_) => format!(
            "backup Lambda {} request {}",
            deps.base.function_name, context.request_id
        ),
        None => format!("backup job {}", context.request_id),
    };
    let claim = match &plan.run_id {
        Some(run_id) => match claim::claim(
            deps.base.store.as_ref(),
            database,
            run_id,
            &context.request_id,
            &holder,
            deps.lease,
            context.deadline,
        )
        .await
        {
            Ok(claim::Claimed::Run {
                key,
                record,
                took_over,
            }) => {
                if let Some(dead) = took_over {
                    tracing::warn!(
                        %database,
                        event = %run_id,
                        dead_request = %dead,
                        "took over a dead run's claim: request {dead} claimed this event and died \
                         without committing a backup or alerting (its lease expired); taking the backup now"
                    );
                }
                Some((key, record))
            }
            Ok(claim::Claimed::Skip(reason)) => return Outcome::Skipped(reason),
            Err(reason) => {
                return refuse(reason, FailureKind::Other, &[]).await;
            }
        },
        None => None,
    };
    let release_claim = || async {
        if let Some((key, record)) = &claim {
            claim::release(deps.base.store.as_ref(), key, record).await;
        }
    };

    if context.deadline.is_some_and(|d| d <= Instant::now()) {
        release_claim().await;
        let reason = format!(
            "the invocation has less than the {} s reserve left, so the backup was not started",
            deps.reserve.as_secs()
        );
        return refuse(reason, FailureKind::OutOfTime, &[]).await;
    }
    let Some(source) = deps.base.config.sources.get(database) else {
        release_claim().await;
        let reason = format!("database `{database}` has no connection source configured");
        return refuse(reason, FailureKind::Other, &[]).await;
    };
    let target = match resolve(
        database.as_str(),
        source,
        &deps.base.aws,
        deps.base.env.as_ref(),
    )
    .await
    {
        Ok(target) => target,
        Err(e) => {
            release_claim().await;
            return refuse(e.to_string(), FailureKind::Other, &[]).await;
        }
    };
    let password = target
        .config
        .get_password()
        .map(|p| String::from_utf8_lossy(p).into_owned())
        .unwrap_or_default();
    let secrets = [password.as_str()];

    // Under Lambda: run here only what fits; the rest goes to the container task.
    if let Some(deadline) = context.deadline {
        let ask = dispatch::Ask {
            database,
            target: &target,
            job: task_job(database, plan),
            request_id: &context.request_id,
            time_left: deadline.saturating_duration_since(Instant::now()),
        };
        match dispatch::decide(ask, deps.base.store.as_ref(), &deps.ecs, deps.task.as_ref()).await {
            Decision::RunHere => {}
            Decision::Dispatched(dispatched) => {
                if let Some((key, record)) = &claim {
                    claim::mark_dispatched(deps.base.store.as_ref(), key, record, &dispatched.task)
                        .await;
                }
                tracing::info!(
                    %database,
                    task = %dispatched.task,
                    reason = %dispatched.reason,
                    "backup dispatched to the container task"
                );
                let metric = [Metric::count("BackupDispatched", 1.0)];
                if let Err(e) = deps
                    .base
                    .metrics
                    .put(database, OffsetDateTime::now_utc(), &metric)
                    .await
                {
                    tracing::warn!(error = %e, "the dispatch metric was not recorded");
                }
                return Outcome::Dispatched(dispatched);
            }
            Decision::Busy(reason) => {
                release_claim().await;
                return Outcome::Skipped(reason);
            }
            Decision::Failed(reason) => {
                release_claim().await;
                return refuse(reason, FailureKind::Other, &secrets).await;
            }
        }
    }

    let mut options = BackupOptions::new(database.clone());
    options.jobs = deps.jobs;
    options.tier = plan.tier.tier();
    options.reason = plan.reason.clone();
    options.deadline = context.deadline.map(tokio::time::Instant::from_std);
    options.lease = deps.lease;
    options.recipients = deps.recipients.clone();
    options.incremental = deps.incremental;
    if deps.incremental {
        options.chunk_key = match deps.chunk_key.resolve(&deps.base.aws).await {
            Ok(key) => key,
            Err(reason) => return refuse(reason, FailureKind::Other, &secrets).await,
        };
    }
    options.interrupt = common::stopping();
    // This database's requests, counted apart from the others' running beside it.
    let store = Arc::new(CountingStore::new(deps.base.store.clone()));
    let result = backup_exclusively(&target, store.clone(), &options, &holder, &|_| {}).await;

    match result {
        Ok(manifest) => {
            if let Some((key, record)) = &claim {
                claim::mark_done(deps.base.store.as_ref(), key, record, &manifest.backup_id).await;
            }
            let done = summarize(&manifest, started.elapsed(), store.requests());
            tracing::info!(
                database = %done.database,
                backup_id = %done.backup_id,
                tier = %done.tier,
                bytes = done.bytes,
                tables = done.tables,
                rows = done.rows,
                seconds = done.duration_seconds,
                "backup committed"
            );
            let metrics = [
                Metric::count("BackupSucceeded", 1.0),
                Metric::seconds("BackupDurationSeconds", done.duration_seconds),
                Metric::bytes("BackupBytes", done.bytes as f64),
                Metric::count("BackupObjects", done.objects as f64),
            ];
            if let Err(e) = deps
                .base
                .metrics
                .put(database, manifest.finished_at, &metrics)
                .await
            {
                tracing::warn!(error = %e, "backup committed but its metrics were not recorded");
            }
            if deps.alert_on_success
                && let Err(e) = deps
                    .base
                    .alerts
                    .publish(&success_alert(
                        &done,
                        &deps.base.config.store,
                        manifest.finished_at,
                    ))
                    .await
            {
                tracing::warn!(error = %e, "the success alert could not be published");
            }
            Outcome::Done(done)
        }
        Err(engine::BackupError::Lease(LeaseError::Held { holder, since, .. })) => {
            release_claim().await;
            Outcome::Skipped(format!(
                "a backup of {database} is already running ({holder}, since {since})"
            ))
        }
        Err(e) => {
            release_claim().await;
            let kind = match e {
                engine::BackupError::DeadlineReached { .. } => FailureKind::OutOfTime,
                _ => FailureKind::Other,
            };
            if kind == FailureKind::OutOfTime {
                remember_out_of_time(deps.base.store.as_ref(), database, started.elapsed()).await;
            }
            fail(
                database,
                plan,
                context,
                deps,
                started,
                true,
                e.to_string(),
                kind,
                &secrets,
            )
            .await
        }
    }
}

/// The job the container task runs: this request for this one database, without the event
/// id (the dispatching invocation's claim answers redeliveries).
fn task_job(database: &DatabaseId, plan: &BackupPlan) -> Value {
    let mut job = serde_json::json!({"database": database.as_str(), "tier": plan.tier.as_str()});
    if let Some(reason) = &plan.reason {
        job["reason"] = reason.clone().into();
    }
    job
}

/// Records that a run stopped at its deadline, so the next one is dispatched.
async fn remember_out_of_time(
    store: &dyn backstop::store::Store,
    database: &DatabaseId,
    ran: Duration,
) {
    let record = async {
        for _ in 0..3 {
            let (mut record, version) = runner::read(store, database).await?;
            record.out_of_time = Some(runner::OutOfTime {
                at: OffsetDateTime::now_utc(),
                seconds: ran.as_secs_f64(),
            });
            if runner::write_if(store, database, &record, version.as_deref())
                .await?
                .is_some()
            {
                break;
            }
        }
        Ok::<_, backstop::store::StoreError>(())
    };
    if let Err(e) = record.await {
        tracing::warn!(error = %e, "could not record that the run stopped at its deadline");
    }
}

fn summarize(manifest: &Manifest, elapsed: Duration, requests: Requests) -> BackupDone {
    BackupDone {
        objects: manifest.object_count(),
        requests,
        database: manifest.database_id.clone(),
        backup_id: manifest.backup_id.clone(),
        tier: manifest.tier.as_str().to_string(),
        bytes: manifest.total_bytes(),
        tables: manifest.tables().len(),
        rows: manifest.total_rows(),
        duration_seconds: elapsed.as_secs_f64(),
    }
}

/// Records the failure (metric, alert) and returns it as an outcome.
#[allow(clippy::too_many_arguments)]
async fn fail(
    database: &DatabaseId,
    plan: &BackupPlan,
    context: &RunContext,
    deps: &Deps,
    started: Instant,
    engine_ran: bool,
    reason: String,
    kind: FailureKind,
    secrets: &[&str],
) -> Outcome {
    let reason = backstop::alert::scrub(&reason, secrets);
    tracing::error!(%database, %reason, "backup failed");
    let now = OffsetDateTime::now_utc();
    if let Err(e) = deps
        .base
        .metrics
        .put(database, now, &[Metric::count("BackupSucceeded", 0.0)])
        .await
    {
        tracing::warn!(error = %e, "could not record the failure metric");
    }
    let alert = failure_alert(&FailureFacts {
        database,
        tier: plan.tier,
        reason: &reason,
        kind,
        store: &deps.base.config.store.to_string(),
        function_name: &deps.base.function_name,
        request_id: &context.request_id,
        run_id: plan.run_id.as_deref(),
        seconds: started.elapsed().as_secs_f64(),
        cleaned_up: engine_ran,
        task_configured: deps.task.is_some(),
        exposure: Exposure::read(deps.base.store.as_ref(), database, now)
            .await
            .map_err(|e| e.to_string()),
        at: now,
    })
    .scrubbed(secrets);
    if let Err(e) = deps.base.alerts.publish(&alert).await {
        tracing::error!(error = %e, "the failure alert could not be published");
    }
    Outcome::Failed(reason)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::OffsetDateTime;

    #[test]
    fn the_deadline_keeps_the_reserve_back() {
        assert_eq!(invocation_deadline(0, Duration::from_secs(30)), None);
        let in_a_minute =
            (OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as u64 + 60_000;
        let stop = invocation_deadline(in_a_minute, Duration::from_secs(30)).unwrap();
        let left = stop.saturating_duration_since(Instant::now());
        assert!(
            left <= Duration::from_secs(30) && left > Duration::from_secs(25),
            "{left:?}"
        );
        let a_second_ago =
            (OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as u64 - 1_000;
        let past = invocation_deadline(a_second_ago, Duration::from_secs(30)).unwrap();
        assert!(past <= Instant::now());
    }
}
