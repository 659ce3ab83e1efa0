//! Verify Lambda: proves backups restore, at the `manifest`, `deep` or `restore` level.
//!
//! Accepted events: an EventBridge scheduled event (the latest backup of every configured
//! database, at the default level `deep`), a schedule's input `{"level": "restore"}`, and an
//! on-demand invocation `{"database": "main", "backup": "<id>|latest", "level": "restore"}`.
//!
//! Each result is written next to its backup (`verification/<level>.json`), added to the
//! database's verification log (`_backstop/verifications/<database-id>/`), and recorded in
//! CloudWatch (`VerifySucceeded`, and at the restore level the measured RTO: `RestoreSeconds`
//! until the restored database was ready, statistics in place, and `RestoreLoadedSeconds` until
//! it was loaded). A backup that fails verification raises one critical alert naming what is
//! wrong and the newest backup that did verify; the invocation itself succeeds, so retries do
//! not repeat the alert. A verification that could not run (store or scratch server unreachable) alerts
//! and fails the invocation, so Lambda retries it. A verification that could not be added to
//! the log (after a few tries) raises one critical alert naming it and is reported in the
//! response (`not_logged`), but does not fail the invocation: a retry would verify every
//! database again and repeat its alerts. The log is checked after each addition: an entry
//! edited or deleted since it was written raises one critical alert naming it.

use backstop::alert::exposure::{self, Exposure};
use backstop::alert::{Alert, Severity, console_link, kind};
use backstop::config::{ConfigError, FunctionConfig, source};
use backstop::connection::{DatabaseSource, resolve};
use backstop::engine::restore::{BackupSelector, RestoreError, read_manifest_of, resolve_backup};
use backstop::engine::verify::log::{Chain, append, read_chain_against};
use backstop::engine::verify::{
    Level, Verdict, Verification, VerifyOptions, newest_verified, record, record_unreadable,
    unreadable_manifest, verify_counted,
};
use backstop::layout::{BackupId, DatabaseId, InvalidId};
use backstop::metrics::Metric;
use backstop::store::StoreUrl;
use common::{Base, Delivery};
use lambda_runtime::{Diagnostic, LambdaEvent};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;

/// Where the restore level creates its scratch databases: a connection source in the shape of
/// one `BACKSTOP_DATABASES` entry, for a role allowed to `CREATE DATABASE`.
pub const SCRATCH_VAR: &str = "BACKSTOP_SCRATCH";
/// Parallel connections of a test restore (default 2).
pub const JOBS_VAR: &str = "BACKSTOP_VERIFY_JOBS";
/// The Secrets Manager secret (ARN or name) holding the age identity that reads encrypted
/// backups: only this function's role may read it, the backup function's may not.
pub const IDENTITY_SECRET_VAR: &str = "BACKSTOP_VERIFY_IDENTITY_SECRET";

/// Everything the handler needs, built once at cold start.
pub struct Deps {
    /// Settings, store, AWS configuration, sinks and the function's name.
    pub base: Base,
    pub scratch: Option<DatabaseSource>,
    pub jobs: usize,
    /// Where the identity for encrypted backups is (`IDENTITY_SECRET_VAR`), read when one is
    /// verified past the manifest level.
    pub identity_secret: Option<String>,
}

impl Deps {
    /// Builds the dependencies on `base`; errors name the variable.
    pub fn new(base: Base) -> Result<Self, ConfigError> {
        let env = base.env.clone();
        Ok(Self {
            scratch: source(env.as_ref(), SCRATCH_VAR)?,
            jobs: backstop::config::jobs(env.as_ref(), JOBS_VAR)?,
            identity_secret: env(IDENTITY_SECRET_VAR).filter(|v| !v.trim().is_empty()),
            base,
        })
    }
}

/// The name the function goes by when the runtime does not say.
pub const DEFAULT_NAME: &str = "backstop-verify";

/// The kind of the alert for a verification log found changed after it was written.
pub const LOG_CHANGED_KIND: &str = backstop::alert::kind::VERIFICATION_LOG_CHANGED;
/// The kind of the alert for a verification that ran but could not be added to the log.
pub const NOT_LOGGED_KIND: &str = backstop::alert::kind::VERIFICATION_NOT_LOGGED;
/// Tries of an append to the verification log before its verification is reported not logged.
const LOG_TRIES: u32 = 3;
/// The wait before the second try; doubled before each later one.
const LOG_BACKOFF: std::time::Duration = std::time::Duration::from_millis(250);

fn default_level() -> Level {
    Level::Deep
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VerifyRequest {
    pub database: Option<String>,
    /// A backup id, or `latest` (the default).
    pub backup: Option<String>,
    #[serde(default = "default_level")]
    pub level: Level,
}

impl Default for VerifyRequest {
    fn default() -> Self {
        Self {
            database: None,
            backup: None,
            level: default_level(),
        }
    }
}

/// Which backup of which databases to check, and how deeply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyPlan {
    pub databases: Vec<DatabaseId>,
    /// `None` means the latest committed backup of each database.
    pub backup: Option<BackupId>,
    pub level: Level,
}

/// The outcome for one database.
#[derive(Debug, Clone, Serialize)]
pub struct Checked {
    pub database: String,
    pub backup_id: String,
    pub level: Level,
    pub verdict: Verdict,
    pub findings: Vec<String>,
    pub duration_seconds: f64,
    /// The measured recovery time: until the restored database was ready.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restore_seconds: Option<f64>,
    /// Until it was loaded (rows, indexes, constraints), before its statistics.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub loaded_seconds: Option<f64>,
    /// Its entry in the database's verification log.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_seq: Option<u64>,
    /// Why it is not in the verification log, when it ran but could not be added.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_logged: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct VerifyResponse {
    pub results: Vec<Checked>,
    /// The verifications that ran but are not in the verification log, as
    /// `<database>/<backup-id> (<level>)`; each also raised a critical alert.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub not_logged: Vec<String>,
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
    #[error("{failed} verification(s) could not run: {summary}")]
    CouldNotRun { failed: usize, summary: String },
}

impl From<VerifyError> for Diagnostic {
    fn from(error: VerifyError) -> Self {
        let error_type = match &error {
            VerifyError::CouldNotRun { .. } => "VerificationNotRun",
            _ => "NonRetryable",
        };
        Diagnostic {
            error_type: error_type.into(),
            error_message: error.to_string(),
        }
    }
}

pub fn plan(payload: Value, config: &FunctionConfig) -> Result<VerifyPlan, VerifyError> {
    let request = match Delivery::of(payload).map_err(|e| VerifyError::BadEvent(e.to_string()))? {
        Delivery::Scheduled { .. } => VerifyRequest::default(),
        Delivery::Request(request) => request,
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
    let by = runner(&deps.base.function_name, &event.context);
    let plan = plan(event.payload, &deps.base.config)?;
    let mut results = Vec::new();
    let mut not_run = Vec::new();
    for database in &plan.databases {
        match verify_one(database, &plan, deps, &by).await {
            Ok(checked) => results.push(checked),
            Err(reason) => {
                publish(
                    deps,
                    could_not_run_alert(database, plan.level, &reason, &deps.base.function_name),
                )
                .await;
                not_run.push(format!("{database}: {reason}"));
            }
        }
    }
    if not_run.is_empty() {
        let not_logged = results
            .iter()
            .filter(|c| c.not_logged.is_some())
            .map(|c| format!("{}/{} ({})", c.database, c.backup_id, c.level.as_str()))
            .collect();
        Ok(VerifyResponse {
            results,
            not_logged,
        })
    } else {
        Err(VerifyError::CouldNotRun {
            failed: not_run.len(),
            summary: not_run.join("; "),
        })
    }
}

/// Who runs the verifications of this invocation, as the log's entries say.
fn runner(function_name: &str, context: &lambda_runtime::Context) -> String {
    // A container job has no deadline.
    let how = if context.deadline == 0 {
        "job"
    } else {
        "function"
    };
    format!("{function_name} {how} (request {})", context.request_id)
}

/// Verifies one database's backup; `Err` when the verification could not run, or its result
/// could not be added to the verification log.
async fn verify_one(
    database: &DatabaseId,
    plan: &VerifyPlan,
    deps: &Deps,
    by: &str,
) -> Result<Checked, String> {
    let selector = match &plan.backup {
        Some(id) => BackupSelector::Id(id.clone()),
        None => BackupSelector::Latest,
    };
    let store = deps.base.store.as_ref();
    let backup = resolve_backup(store, database, &selector)
        .await
        .map_err(|e| e.to_string())?;
    let manifest = match read_manifest_of(store, database, &backup).await {
        Ok(manifest) => manifest,
        // A manifest that is there but is not one: the backup is damaged, a failed
        // verification like any other (not "could not run", which would leave an older pass
        // as the newest result).
        Err(RestoreError::Manifest { reason, .. }) => {
            let result = unreadable_manifest(database, &backup, plan.level, &reason);
            if let Err(e) = record_unreadable(store, database, &backup, &result).await {
                tracing::warn!(error = %e, "the verification result could not be recorded");
            }
            return report_and_log(database, result, 0, by, deps).await;
        }
        Err(e) => return Err(e.to_string()),
    };
    let manifest = if manifest.is_encrypted() && plan.level != Level::Manifest {
        let secret = deps.identity_secret.as_deref().ok_or_else(|| {
            format!(
                "backup {} is encrypted (to {}); set {IDENTITY_SECRET_VAR} to the secret holding its identity",
                manifest.backup_id,
                manifest.recipients()
            )
        })?;
        let value = backstop::aws::secret_string(&deps.base.aws, secret).await?;
        let identities = backstop::engine::encryption::Identities::parse(&value)
            .map_err(|e| format!("secret {secret}: {e}"))?;
        manifest
            .open(Some(std::sync::Arc::new(identities)))
            .map_err(|e| e.to_string())?
    } else {
        manifest
    };
    let scratch = match (plan.level, &deps.scratch) {
        (Level::Restore, None) => {
            return Err(format!(
                "the restore level needs a scratch server; set {SCRATCH_VAR}"
            ));
        }
        (Level::Restore, Some(source)) => Some(
            resolve("scratch", source, &deps.base.aws, deps.base.env.as_ref())
                .await
                .map_err(|e| e.to_string())?,
        ),
        _ => None,
    };
    let options = VerifyOptions {
        level: plan.level,
        scratch,
        jobs: deps.jobs,
        // As a container job, SIGTERM stops the test restore and drops its scratch database.
        interrupt: common::stopping(),
    };
    let counted = match verify_counted(deps.base.store.clone(), &manifest, &options).await {
        Ok(counted) => counted,
        // Deleted while it was read: nothing is wrong, and nothing is left to verify.
        Err(e @ backstop::engine::verify::VerifyError::Removed { .. }) => {
            tracing::info!(%database, error = %e, "verification skipped");
            return Ok(Checked {
                database: database.to_string(),
                backup_id: manifest.backup_id.clone(),
                level: plan.level,
                verdict: Verdict::NotVerifiableNow,
                findings: vec![e.to_string()],
                duration_seconds: 0.0,
                restore_seconds: None,
                loaded_seconds: None,
                log_seq: None,
                not_logged: None,
            });
        }
        Err(e) => return Err(e.to_string()),
    };
    let result = counted.verification;
    if let Err(e) = record(store, &manifest, &result).await {
        tracing::warn!(error = %e, "the verification result could not be recorded");
    }
    report_and_log(database, result, counted.checksums_checked, by, deps).await
}

/// Reports `result` (metrics, alerts), then adds it to the verification log and checks the
/// log. The report goes first, so a damaged backup is alerted even when the store refuses
/// the entry. An append is tried [`LOG_TRIES`] times; a verification the log still misses
/// raises one critical alert and is said in the result, not retried by Lambda (a retry would
/// verify every database again, repeat their alerts and add entries twice).
async fn report_and_log(
    database: &DatabaseId,
    result: Verification,
    checksums_checked: u64,
    by: &str,
    deps: &Deps,
) -> Result<Checked, String> {
    let store = deps.base.store.as_ref();
    let mut checked = report(database, result.clone(), deps).await;
    let verdict = verdict_word(result.verdict);
    let entry = match append_tried(store, &result, checksums_checked, by).await {
        Ok(entry) => entry,
        Err(e) => {
            let error = e.to_string();
            tracing::error!(
                %database,
                backup_id = %result.backup_id,
                error = %error,
                "the verification was not added to the verification log"
            );
            publish(
                deps,
                not_logged_alert(
                    &result,
                    &error,
                    &deps.base.config.store,
                    &deps.base.function_name,
                ),
            )
            .await;
            checked.not_logged = Some(format!(
                "backup {} was verified ({verdict}), but the verification was not added to the verification log: {error}",
                result.backup_id
            ));
            return Ok(checked);
        }
    };
    checked.log_seq = Some(entry.seq);
    // The entry is written; a log that cannot be read back now is checked again by the monitor
    // within the hour. Failing here would have Lambda verify every database again.
    let chain = match async {
        let memory = backstop::health::verification_log::remembered(store, database).await?;
        read_chain_against(store, database, memory.seen.as_ref()).await
    }
    .await
    {
        Ok(chain) => chain,
        Err(e) => {
            tracing::warn!(
                %database,
                backup_id = %result.backup_id,
                seq = entry.seq,
                error = %e,
                "the verification log could not be read back to check it; the monitor checks it at its next run"
            );
            return Ok(checked);
        }
    };
    if !chain.problems.is_empty() {
        tracing::error!(
            %database,
            problems = chain.problems.len(),
            "the verification log was changed after it was written"
        );
        publish(
            deps,
            log_changed_alert(
                database,
                entry.seq,
                &chain,
                &deps.base.config.store,
                result.checked_at,
            ),
        )
        .await;
    }
    Ok(checked)
}

/// [`append`], tried [`LOG_TRIES`] times with a growing wait, except for errors another try
/// cannot mend (a refused name, denied access, no bucket).
async fn append_tried(
    store: &dyn backstop::store::Store,
    result: &Verification,
    checksums_checked: u64,
    by: &str,
) -> Result<backstop::engine::verify::log::Entry, backstop::store::StoreError> {
    use backstop::store::StoreError;
    let mut wait = LOG_BACKOFF;
    let mut tried = 0;
    loop {
        tried += 1;
        match append(store, result, checksums_checked, by).await {
            Ok(entry) => return Ok(entry),
            Err(
                e @ (StoreError::InvalidKey { .. }
                | StoreError::AccessDenied { .. }
                | StoreError::BucketNotFound { .. }),
            ) => return Err(e),
            Err(e) if tried >= LOG_TRIES => return Err(e),
            Err(e) => {
                tracing::warn!(error = %e, tried, "the verification log append failed; trying again");
                tokio::time::sleep(wait).await;
                wait *= 2;
            }
        }
    }
}

/// The critical alert for a verification that ran but is not in the verification log.
pub fn not_logged_alert(
    result: &Verification,
    error: &str,
    store_url: &StoreUrl,
    function_name: &str,
) -> Alert {
    let database = &result.database_id;
    let level = result.level.as_str();
    Alert {
        severity: Severity::Critical,
        kind: NOT_LOGGED_KIND.into(),
        database_id: database.clone(),
        backup_id: Some(result.backup_id.clone()),
        links: console_link(store_url, &format!("_backstop/verifications/{database}"))
            .into_iter()
            .collect(),
        summary: format!(
            "the {level} verification of backup {} ({}) is not in the verification log",
            result.backup_id,
            verdict_word(result.verdict)
        ),
        details: format!(
            "Backup {} of {database} was verified at the {level} level ({}), but the verification \
             could not be added to the verification log (_backstop/verifications/{database}/), tried \
             up to {LOG_TRIES} times: {error}\nIts result is also written beside the backup \
             ({database}/{}/verification/{level}.json) where the store took it; the record an \
             auditor reads misses it.",
            result.backup_id,
            verdict_word(result.verdict),
            result.backup_id,
        ),
        action: format!(
            "Fix the store error above (the function's role must be able to list, read and \
             create objects under _backstop/verifications/{database}/; an entry the log refuses \
             to follow is named by `backstop health --from {store_url} --database-id {database}`), \
             then verify the backup again so the log holds it:\n  {}",
            common::rerun_command(
                function_name,
                &serde_json::json!({"database": database, "backup": result.backup_id, "level": level})
            )
        ),
        source: "verify".into(),
        occurred_at: result.checked_at,
    }
}

fn verdict_word(verdict: Verdict) -> &'static str {
    match verdict {
        Verdict::Passed => "passed",
        Verdict::Failed => "failed",
        Verdict::NotVerifiableNow => "not verifiable now",
    }
}

/// The critical alert for a verification log whose entries were edited or deleted after they
/// were written: each problem named, with what to do.
pub fn log_changed_alert(
    database: &DatabaseId,
    seq: u64,
    chain: &Chain,
    store_url: &StoreUrl,
    occurred_at: OffsetDateTime,
) -> Alert {
    // Runs merged and at most NAMED_AT_MOST named: an SNS message holds 256 KB.
    let problems: Vec<String> = backstop::health::verification_log::assess(database, chain)
        .into_iter()
        .map(|f| match f.message.strip_prefix("verification log: ") {
            Some(line) => line.to_string(),
            None => f.message,
        })
        .collect();
    let first = problems.first().cloned().unwrap_or_default();
    let prefix = backstop::engine::verify::log::log_prefix(database);
    Alert {
        severity: Severity::Critical,
        kind: LOG_CHANGED_KIND.into(),
        database_id: database.to_string(),
        backup_id: None,
        links: console_link(store_url, prefix.trim_end_matches('/'))
            .into_iter()
            .collect(),
        summary: format!(
            "the verification log of {database} was changed: {}",
            first.chars().take(120).collect::<String>()
        ),
        details: format!(
            "The log keeps every verification of {database}, each entry written once with the \
             SHA-256 of the entry before it. This run added entry {seq}; reading the log back \
             found {} problem(s):\n{}",
            chain.problems.len(),
            problems
                .iter()
                .map(|p| format!("- {p}"))
                .collect::<Vec<_>>()
                .join("\n")
        ),
        action: format!(
            "{}\nSee the log's problems:\n  backstop health --from {store_url} --database-id {database}",
            backstop::health::verification_log::fix(database)
        ),
        source: "verify".into(),
        occurred_at,
    }
}

/// Logs, measures and (when it failed) alerts one verification result.
async fn report(database: &DatabaseId, result: Verification, deps: &Deps) -> Checked {
    tracing::info!(
        %database,
        backup_id = %result.backup_id,
        level = result.level.as_str(),
        verdict = ?result.verdict,
        findings = result.findings.len(),
        seconds = result.duration_seconds,
        "backup verified"
    );
    let mut metrics = Vec::new();
    match result.verdict {
        Verdict::Passed => metrics.push(Metric::count("VerifySucceeded", 1.0)),
        Verdict::Failed => metrics.push(Metric::count("VerifySucceeded", 0.0)),
        Verdict::NotVerifiableNow => {}
    }
    if let Some(seconds) = result.restore_seconds {
        metrics.push(Metric::seconds("RestoreSeconds", seconds));
    }
    if let Some(seconds) = result.loaded_seconds {
        metrics.push(Metric::seconds("RestoreLoadedSeconds", seconds));
    }
    if !metrics.is_empty()
        && let Err(e) = deps
            .base
            .metrics
            .put(database, result.checked_at, &metrics)
            .await
    {
        tracing::warn!(error = %e, "verification metrics were not recorded");
    }
    match result.verdict {
        Verdict::Passed => {}
        Verdict::Failed => {
            let store = deps.base.store.as_ref();
            let fallback = newest_verified(store, database)
                .await
                .ok()
                .flatten()
                .filter(|(id, _)| *id != result.backup_id);
            let started = fallback.as_ref().and_then(|(id, _)| {
                let started = BackupId::parse(id).ok()?.started_at()?;
                Some((id.clone(), started))
            });
            let exposure = Exposure::read(store, database, result.checked_at)
                .await
                .map(|found| found.verified(started, result.checked_at))
                .map_err(|e| e.to_string());
            publish(
                deps,
                failure_alert(
                    &result,
                    fallback.as_ref(),
                    &deps.base.config.store,
                    &exposure,
                ),
            )
            .await;
        }
        Verdict::NotVerifiableNow => {
            publish(deps, archived_alert(&result)).await;
        }
    }
    Checked {
        database: database.to_string(),
        backup_id: result.backup_id,
        level: result.level,
        verdict: result.verdict,
        findings: result.findings.iter().map(ToString::to_string).collect(),
        duration_seconds: result.duration_seconds,
        restore_seconds: result.restore_seconds,
        loaded_seconds: result.loaded_seconds,
        log_seq: None,
        not_logged: None,
    }
}

async fn publish(deps: &Deps, alert: Alert) {
    if let Err(e) = deps.base.alerts.publish(&alert).await {
        tracing::error!(error = %e, "the alert could not be published");
    }
}

/// The critical alert for a backup that failed verification: what is wrong, how exposed the
/// database is (`exposure`: counting verified backups only), and which backup to use instead.
pub fn failure_alert(
    result: &Verification,
    fallback: Option<&(String, Level)>,
    store_url: &StoreUrl,
    exposure: &Result<Exposure, String>,
) -> Alert {
    let store = store_url.to_string();
    let database = &result.database_id;
    let first = result
        .findings
        .first()
        .map(ToString::to_string)
        .unwrap_or_default();
    let action = match fallback {
        Some((id, level)) => format!(
            "Do not rely on backup {}. The newest backup that passed verification is {id} \
             ({} level); restore from it if you need to:\n  backstop restore --from {store} \
             --database-id {database} --backup {id} --db \"$TARGET_URL\"\n\
             Then find out what damaged the failed set before it expires.",
            result.backup_id,
            level.as_str()
        ),
        None => format!(
            "Do not rely on backup {}. No backup of {database} has passed verification: take a \
             new backup now and verify it:\n  backstop backup --db \"$DATABASE_URL\" --to {store} \
             --database-id {database}\n  backstop verify --from {store} --database-id {database} \
             --level restore --scratch-db \"$SCRATCH_URL\"",
            result.backup_id
        ),
    };
    let details = result
        .findings
        .iter()
        .map(|f| format!("- {f}"))
        .collect::<Vec<_>>()
        .join("\n");
    Alert {
        severity: Severity::Critical,
        kind: kind::VERIFY_FAILED.into(),
        database_id: database.clone(),
        backup_id: Some(result.backup_id.clone()),
        links: console_link(store_url, &format!("{database}/{}", result.backup_id))
            .into_iter()
            .collect(),
        summary: format!(
            "backup {} failed {} verification: {}",
            result.backup_id,
            result.level.as_str(),
            first.chars().take(120).collect::<String>()
        ),
        details: format!(
            "Backup {} failed verification at the {} level with {} finding(s):\n{details}\n\n{}",
            result.backup_id,
            result.level.as_str(),
            result.findings.len(),
            exposure::describe(exposure)
        ),
        action,
        source: "verify".into(),
        occurred_at: result.checked_at,
    }
}

fn archived_alert(result: &Verification) -> Alert {
    Alert {
        severity: Severity::Warning,
        kind: kind::VERIFY_NOT_POSSIBLE.into(),
        database_id: result.database_id.clone(),
        backup_id: Some(result.backup_id.clone()),
        links: Vec::new(),
        summary: format!(
            "backup {} is not verifiable now: parts are archived",
            result.backup_id
        ),
        details: result
            .findings
            .iter()
            .map(|f| format!("- {f}"))
            .collect::<Vec<_>>()
            .join("\n"),
        action: "Verify backups before lifecycle rules archive them (schedule verification \
                 sooner than the first transition), or restore the parts from the archive first."
            .into(),
        source: "verify".into(),
        occurred_at: result.checked_at,
    }
}

fn could_not_run_alert(
    database: &DatabaseId,
    level: Level,
    reason: &str,
    function_name: &str,
) -> Alert {
    Alert {
        severity: Severity::Critical,
        kind: kind::VERIFY_NOT_RUN.into(),
        database_id: database.to_string(),
        backup_id: None,
        links: Vec::new(),
        summary: format!(
            "{} verification could not run: {}",
            level.as_str(),
            reason.chars().take(120).collect::<String>()
        ),
        details: reason.to_string(),
        action: format!(
            "Fix the cause above, then run it again:\n  {}",
            common::rerun_command(
                function_name,
                &serde_json::json!({"database": database.as_str(), "backup": "latest", "level": level.as_str()})
            )
        ),
        source: "verify".into(),
        occurred_at: OffsetDateTime::now_utc(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use backstop::engine::verify::Finding;
    use time::macros::datetime;

    fn failed() -> Verification {
        Verification {
            database_id: "main".into(),
            backup_id: "20261122T060000Z-0000000b".into(),
            level: Level::Deep,
            verdict: Verdict::Failed,
            findings: vec![Finding {
                part: Some("data/0002.copy.zst".into()),
                problem: "SHA-256 abc does not match the manifest's def".into(),
            }],
            checked_at: datetime!(2026-11-22 07:00 UTC),
            duration_seconds: 1.0,
            restore_seconds: None,
            loaded_seconds: None,
            statistics: None,
            replayed_through: None,
            engine_version: "0.1.0".into(),
        }
    }

    #[test]
    fn a_changed_log_alert_names_each_entry_by_its_key() {
        use backstop::engine::verify::log::ChainProblem;
        let database = DatabaseId::new("main").unwrap();
        let chain = Chain {
            entries: Vec::new(),
            problems: vec![
                ChainProblem::Missing { seq: 2 },
                ChainProblem::Changed { seq: 4 },
            ],
            head: None,
        };
        let store: StoreUrl = "s3://acme-backups/prod".parse().unwrap();
        let alert = log_changed_alert(
            &database,
            6,
            &chain,
            &store,
            datetime!(2026-11-22 07:00 UTC),
        );
        assert_eq!(
            (alert.severity, alert.kind.as_str()),
            (Severity::Critical, LOG_CHANGED_KIND)
        );
        assert!(
            alert
                .summary
                .contains("entry 2 (_backstop/verifications/main/000000000002.json) is missing"),
            "{}",
            alert.summary
        );
        assert!(
            alert.details.contains("This run added entry 6")
                && alert.details.contains(
                    "- entry 4 (_backstop/verifications/main/000000000004.json) was changed"
                ),
            "{}",
            alert.details
        );
        assert!(
            alert
                .action
                .contains("backstop health --from s3://acme-backups/prod --database-id main"),
            "{}",
            alert.action
        );
        assert!(
            alert.links[0]
                .url
                .contains("prefix=prod%2F_backstop%2Fverifications%2Fmain%2F"),
            "{:?}",
            alert.links
        );
    }

    #[test]
    fn a_changed_log_alert_names_at_most_a_few_problems() {
        use backstop::engine::verify::log::ChainProblem;
        use backstop::health::verification_log::NAMED_AT_MOST;
        let database = DatabaseId::new("main").unwrap();
        let chain = Chain {
            entries: Vec::new(),
            problems: (1..=50_000)
                .map(|seq| ChainProblem::Changed { seq: seq * 2 })
                .collect(),
            head: None,
        };
        let store: StoreUrl = "s3://acme-backups/prod".parse().unwrap();
        let alert = log_changed_alert(
            &database,
            100_001,
            &chain,
            &store,
            datetime!(2026-11-22 07:00 UTC),
        );
        let listed = alert
            .details
            .lines()
            .filter(|l| l.starts_with("- "))
            .count();
        assert_eq!(listed, NAMED_AT_MOST);
        assert!(alert.details.contains("found 50000 problem(s)"));
        assert!(
            alert.details.contains("and 49981 more problems"),
            "{}",
            alert.details
        );
        assert!(alert.details.len() < 8 * 1024, "{}", alert.details.len());
    }

    #[test]
    fn a_verification_not_logged_alerts_naming_the_backup_and_the_error() {
        let store: StoreUrl = "s3://acme-backups/prod".parse().unwrap();
        let alert = not_logged_alert(
            &failed(),
            "access denied: put `_backstop/verifications/main/000000000007.json`",
            &store,
            "backstop-verify",
        );
        assert_eq!(
            (alert.severity, alert.kind.as_str()),
            (Severity::Critical, NOT_LOGGED_KIND)
        );
        assert_eq!(
            alert.backup_id.as_deref(),
            Some("20261122T060000Z-0000000b")
        );
        assert_eq!(alert.database_id, "main");
        assert!(
            alert
                .summary
                .contains("backup 20261122T060000Z-0000000b (failed)")
                && alert.summary.contains("not in the verification log"),
            "{}",
            alert.summary
        );
        assert!(
            alert.details.contains("access denied: put"),
            "{}",
            alert.details
        );
        assert!(
            alert.action.contains("--function-name backstop-verify")
                && alert
                    .action
                    .contains(r#""backup":"20261122T060000Z-0000000b""#)
                && alert
                    .action
                    .contains("backstop health --from s3://acme-backups/prod"),
            "{}",
            alert.action
        );
    }

    #[test]
    fn the_runner_says_function_or_job_and_the_request() {
        let mut context = lambda_runtime::Context::default();
        context.request_id = "abc".into();
        assert_eq!(
            runner("backstop-verify", &context),
            "backstop-verify job (request abc)"
        );
        context.deadline = 1;
        assert_eq!(
            runner("backstop-verify", &context),
            "backstop-verify function (request abc)"
        );
    }

    #[test]
    fn a_failure_alert_names_the_part_and_the_backup_to_use_instead() {
        let fallback = ("20261121T060000Z-0000000a".to_string(), Level::Restore);
        let store: StoreUrl = "s3://acme-backups/prod".parse().unwrap();
        let exposure = Ok(Exposure {
            newest_backup: Some((fallback.0.clone(), std::time::Duration::from_secs(90_000))),
            recovery_point_age: Some(std::time::Duration::from_secs(300)),
            good: exposure::Good::Verified,
        });
        let alert = failure_alert(&failed(), Some(&fallback), &store, &exposure);
        assert!(
            alert.details.contains(
                "The newest backup that passed verification is 20261121T060000Z-0000000a, \
                 taken 1 d 1 h ago; point-in-time recovery reaches 5 min 0 s ago"
            ),
            "{}",
            alert.details
        );
        assert_eq!(alert.severity, Severity::Critical);
        assert!(
            alert.summary.contains("data/0002.copy.zst"),
            "{}",
            alert.summary
        );
        assert!(
            alert.action.contains("--backup 20261121T060000Z-0000000a"),
            "{}",
            alert.action
        );
        assert_eq!(
            alert.backup_id.as_deref(),
            Some("20261122T060000Z-0000000b")
        );
        assert!(
            alert.links[0]
                .url
                .contains("buckets/acme-backups?prefix=prod%2Fmain%2F20261122T060000Z-0000000b%2F"),
            "{:?}",
            alert.links
        );
        let none = failure_alert(&failed(), None, &store, &Err("denied".into()));
        assert!(
            none.action
                .contains("No backup of main has passed verification")
        );
    }
}
