//! Every database in a store on one screen: are my backups OK? For each database its health
//! (the same findings `health` gives), the newest backup with its age, tier, size and the size's
//! trend, the newest verification and the measured restore time (until loaded, and until
//! ready: statistics in place), how far point-in-time
//! recovery reaches, whether the backups are encrypted, and a timeline of recent backups and
//! their verifications, the objectives as the monitor last judged them, and any entry of the
//! verification record changed since it was written. `gather` reads the store; [`page`] draws
//! the result as one HTML page.

pub mod page;

use std::collections::BTreeSet;

use serde::Serialize;
use time::OffsetDateTime;

use crate::engine::restore::{BackupSelector, read_manifest};
use crate::engine::verify::{Level, Verdict, stored_result};
use crate::health::backups::{self, BackupHealth};
use crate::health::{Finding, HealthStatus, Thresholds, status_of};
use crate::layout::{BackupId, DatabaseId, STATE_PREFIX, committed_backups, database_prefix};
use crate::store::{Store, StoreError};

/// Backups shown on a database's timeline, newest first.
pub const TIMELINE_LENGTH: usize = 60;

/// The whole store at one moment.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoreStatus {
    pub store: String,
    #[serde(with = "time::serde::rfc3339")]
    pub generated_at: OffsetDateTime,
    /// The worst database's status.
    pub status: HealthStatus,
    pub databases: Vec<DatabaseStatus>,
}

/// One database's backups at a glance.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DatabaseStatus {
    pub database_id: String,
    pub status: HealthStatus,
    /// What `health` says of the backups (age, count, bytes, newest verification).
    pub backups: BackupHealth,
    /// The newest backup's tier.
    pub tier: Option<String>,
    /// The newest backup's stored size against the median of those before it (1.0: the same).
    pub size_ratio: Option<f64>,
    /// Whether the newest backup is encrypted.
    pub encrypted: Option<bool>,
    /// The newest measured recovery time (a passed restore-level verification), in seconds:
    /// until the restored database was ready, statistics in place.
    pub rto_seconds: Option<f64>,
    /// The same restore's seconds until the database was loaded (rows, indexes, constraints);
    /// `None` for a result from before it was measured.
    pub rto_loaded_seconds: Option<f64>,
    /// How far a point-in-time restore reaches (the newest drain of the change stream).
    #[serde(with = "time::serde::rfc3339::option")]
    pub recovery_point: Option<OffsetDateTime>,
    /// The objectives as the monitor last judged them (its newest sample), when it judges any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub objectives: Option<crate::objectives::samples::Sample>,
    pub findings: Vec<Finding>,
    /// Recent backups, newest first.
    pub timeline: Vec<BackupPoint>,
}

/// One backup on a timeline.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BackupPoint {
    pub backup_id: String,
    #[serde(with = "time::serde::rfc3339::option")]
    pub started_at: Option<OffsetDateTime>,
    pub tier: Option<String>,
    pub bytes: Option<u64>,
    pub encrypted: Option<bool>,
    /// Why its manifest could not be read, when it could not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
    pub verifications: Vec<VerificationPoint>,
}

/// One verification of a backup.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VerificationPoint {
    pub level: Level,
    pub verdict: Verdict,
    #[serde(with = "time::serde::rfc3339")]
    pub checked_at: OffsetDateTime,
    /// At the restore level: seconds until the restored database was ready.
    pub restore_seconds: Option<f64>,
    /// At the restore level: seconds until it was loaded, before its statistics.
    pub loaded_seconds: Option<f64>,
}

/// Reads every database's status from `store` at `now`.
pub async fn gather(
    store: &dyn Store,
    now: OffsetDateTime,
    thresholds: &Thresholds,
) -> Result<StoreStatus, StoreError> {
    let objects = store.list("").await?;
    let ids: BTreeSet<&str> = objects
        .iter()
        .filter_map(|o| o.key.split('/').next())
        .filter(|d| *d != STATE_PREFIX)
        .collect();
    let mut databases = Vec::new();
    for id in ids {
        let Ok(database) = DatabaseId::new(id) else {
            continue;
        };
        databases.push(database_status(store, &database, now, thresholds).await?);
    }
    Ok(StoreStatus {
        store: store.url().to_string(),
        generated_at: now,
        status: databases
            .iter()
            .map(|d| d.status)
            .max()
            .unwrap_or(HealthStatus::Unknown),
        databases,
    })
}

async fn database_status(
    store: &dyn Store,
    database: &DatabaseId,
    now: OffsetDateTime,
    thresholds: &Thresholds,
) -> Result<DatabaseStatus, StoreError> {
    let facts = backups::gather(store, database).await?;
    let (health, mut findings) = backups::assess(&facts, now, &thresholds.freshness);
    // The verification record, held to what the monitor remembers of its newest entry (read
    // only: status never moves it), so a newest entry edited or deleted since it was seen shows.
    let memory = crate::health::verification_log::remembered(store, database).await?;
    let chain =
        crate::engine::verify::log::read_chain_against(store, database, memory.seen.as_ref())
            .await?;
    findings.extend(crate::health::verification_log::assess(database, &chain));
    if let Some(reason) = &memory.unreadable {
        findings.push(crate::health::Finding::new(
            crate::health::verification_log::CHECK,
            crate::alert::Severity::Warning,
            format!(
                "what the monitor remembers of the verification log ({}) does not read ({reason}), so an edit or deletion of its newest entry cannot be told",
                crate::health::verification_log::seen_key(database)
            ),
        ));
    }
    let objectives = crate::objectives::samples::newest(store, database).await?;
    findings.sort_by_key(|f| std::cmp::Reverse(f.severity));
    let objects = store.list(&database_prefix(database)).await?;
    let keys: BTreeSet<&str> = objects.iter().map(|o| o.key.as_str()).collect();
    let mut timeline = Vec::new();
    for id in committed_backups(database, keys.iter().copied())
        .into_iter()
        .rev()
        .take(TIMELINE_LENGTH)
    {
        timeline.push(backup_point(store, database, &id, &keys).await?);
    }
    let readable = || timeline.iter().filter(|p| p.problem.is_none());
    let newest = readable().next();
    Ok(DatabaseStatus {
        database_id: database.to_string(),
        status: status_of(&findings),
        tier: newest.and_then(|p| p.tier.clone()),
        size_ratio: size_ratio(&health),
        encrypted: newest.and_then(|p| p.encrypted),
        rto_seconds: health.rto_seconds,
        rto_loaded_seconds: health.rto_loaded_seconds,
        recovery_point: facts.recovery_point,
        backups: health,
        objectives,
        findings,
        timeline,
    })
}

/// The newest backup's size against the median before it.
pub fn size_ratio(health: &BackupHealth) -> Option<f64> {
    match (health.newest_bytes, health.median_previous_bytes) {
        (Some(newest), Some(median)) if median > 0 => Some(newest as f64 / median as f64),
        _ => None,
    }
}

async fn backup_point(
    store: &dyn Store,
    database: &DatabaseId,
    id: &BackupId,
    keys: &BTreeSet<&str>,
) -> Result<BackupPoint, StoreError> {
    let mut point = BackupPoint {
        backup_id: id.to_string(),
        started_at: id.started_at(),
        tier: None,
        bytes: None,
        encrypted: None,
        problem: None,
        verifications: Vec::new(),
    };
    match read_manifest(store, database, &BackupSelector::Id(id.clone())).await {
        Ok(manifest) => {
            point.started_at = Some(manifest.started_at);
            point.tier = Some(manifest.tier.as_str().to_string());
            point.bytes = Some(manifest.total_bytes());
            point.encrypted = Some(manifest.is_encrypted());
        }
        Err(e) => point.problem = Some(e.to_string()),
    }
    for level in [Level::Manifest, Level::Deep, Level::Restore] {
        if let Some(result) = stored_result(store, keys, database, id, level).await? {
            point.verifications.push(VerificationPoint {
                level: result.level,
                verdict: result.verdict,
                checked_at: result.checked_at,
                restore_seconds: result.restore_seconds,
                loaded_seconds: result.loaded_seconds,
            });
        }
    }
    Ok(point)
}

/// A restore-level verification's measured restore.
#[derive(Debug, Clone, PartialEq)]
pub struct MeasuredRestore {
    pub backup_id: String,
    /// Until the restored database was ready (statistics in place): the recovery time.
    pub restore_seconds: f64,
    /// Until it was loaded (rows, indexes, constraints); `None` for a result from before it
    /// was measured.
    pub loaded_seconds: Option<f64>,
    pub checked_at: OffsetDateTime,
}

/// The measured restore of the newest backup of `database` that passed a restore-level
/// verification: what a restore about to start can expect to take.
pub async fn newest_measured_restore(
    store: &dyn Store,
    database: &DatabaseId,
) -> Result<Option<MeasuredRestore>, StoreError> {
    let objects = store.list(&database_prefix(database)).await?;
    let keys: BTreeSet<&str> = objects.iter().map(|o| o.key.as_str()).collect();
    for id in committed_backups(database, keys.iter().copied())
        .iter()
        .rev()
    {
        if let Some(result) = stored_result(store, &keys, database, id, Level::Restore).await?
            && result.verdict == Verdict::Passed
            && let Some(restore_seconds) = result.restore_seconds
        {
            return Ok(Some(MeasuredRestore {
                backup_id: result.backup_id,
                restore_seconds,
                loaded_seconds: result.loaded_seconds,
                checked_at: result.checked_at,
            }));
        }
    }
    Ok(None)
}
