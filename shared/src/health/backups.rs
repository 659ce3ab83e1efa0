//! Backup health, from what the store holds: freshness, count and bytes, the newest
//! verification, the measured restore time, and whether the newest backup shrank
//! suspiciously.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::{Finding, FreshnessThresholds, HealthStatus, classify_backup_age};
use crate::alert::Severity;
use crate::engine::verify::{Level, Verdict, Verification};
use crate::layout::{BackupId, DatabaseId, MANIFEST_NAME, database_prefix};
use crate::lease::LeaseRecord;
use crate::metrics::Metric;
use crate::runner::{DispatchState, Dispatched, dispatch_state};
use crate::store::{Store, StoreError};

/// Backups compared for the size anomaly: the newest against the median of this many before.
pub const SIZE_WINDOW: usize = 7;

/// The newest verification result found in the store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LastVerification {
    pub backup_id: String,
    pub level: Level,
    pub verdict: Verdict,
    pub age_seconds: u64,
    /// The first finding of a failed verification.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

/// What the store says about one database's backups.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BackupHealth {
    /// The newest committed backup, if any.
    #[serde(rename = "last_backup_id", alias = "last_backup")]
    pub last_backup: Option<String>,
    pub age_seconds: Option<u64>,
    pub backup_count: usize,
    /// Stored bytes of every committed backup.
    pub total_bytes: u64,
    pub newest_bytes: Option<u64>,
    /// Median size of the backups before the newest (up to seven).
    pub median_previous_bytes: Option<u64>,
    pub last_verification: Option<LastVerification>,
    /// With a change stream: how old the newest point-in-time recovery point is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recovery_point_age_seconds: Option<u64>,
    /// A backup dispatched to the container task that has not landed yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_progress: Option<String>,
    /// The measured recovery time: the newest passed restore-level verification's seconds
    /// until the restored database was ready (statistics in place).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rto_seconds: Option<f64>,
    /// The same verification's seconds until the database was loaded (rows, indexes,
    /// constraints), before its statistics; `None` for a result from before it was measured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rto_loaded_seconds: Option<f64>,
    /// How old the oldest committed backup is: how long the database has been backed up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oldest_backup_age_seconds: Option<u64>,
    /// The newest passed restore-level verification (the test restore the RTO comes from).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_restore_test: Option<RestoreTested>,
}

/// The newest passed test restore: which backup, and how long ago.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RestoreTested {
    pub backup_id: String,
    pub age_seconds: u64,
}

impl BackupHealth {
    pub fn metrics(&self) -> Vec<Metric> {
        let mut metrics = vec![
            Metric::count("BackupCount", self.backup_count as f64),
            Metric::bytes("StoredBytes", self.total_bytes as f64),
        ];
        if let Some(age) = self.age_seconds {
            metrics.push(Metric::seconds("BackupAgeSeconds", age as f64));
        }
        if let Some(age) = self.recovery_point_age_seconds {
            metrics.push(Metric::seconds("RecoveryPointAgeSeconds", age as f64));
        }
        if let Some(v) = &self.last_verification {
            metrics.push(Metric::seconds(
                "LastVerificationAgeSeconds",
                v.age_seconds as f64,
            ));
        }
        metrics
    }
}

/// The facts gathered from the store, before judgement.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BackupFacts {
    /// Committed backups, oldest first, with their stored bytes.
    pub backups: Vec<(BackupId, u64)>,
    /// The newest verification result, with when it was checked.
    pub last_verification: Option<Verification>,
    /// The newest passed restore-level verification that measured the restore.
    pub measured_restore: Option<Verification>,
    /// The newest change segment's recovery point, when the database has a change stream.
    pub recovery_point: Option<OffsetDateTime>,
    /// The last backup handed to the container task, and the backup lease as it stands.
    pub dispatched: Option<Dispatched>,
    pub backup_lease: Option<LeaseRecord>,
    /// When the newest backup started, from its manifest: read only when a dispatch is
    /// recorded, to tell whether it landed (backup ids hold whole seconds only).
    pub newest_started: Option<OffsetDateTime>,
    /// The newest set, when its manifest is there but cannot be read (it is then not among
    /// `backups`: it cannot be restored), and why.
    pub unreadable: Option<(BackupId, String)>,
    /// What keeps the change stream from carrying a restore to its newest point: a newest
    /// seal that cannot be read, changes in no segment.
    pub stream_problems: Vec<String>,
}

fn median(values: &mut [u64]) -> Option<u64> {
    if values.is_empty() {
        return None;
    }
    values.sort_unstable();
    let mid = values.len() / 2;
    Some(if values.len() % 2 == 1 {
        values[mid]
    } else {
        (values[mid - 1] + values[mid]) / 2
    })
}

/// Judges the backups of one database at `now`.
pub fn assess(
    facts: &BackupFacts,
    now: OffsetDateTime,
    thresholds: &FreshnessThresholds,
) -> (BackupHealth, Vec<Finding>) {
    // A set from the future (its writer's clock was ahead) is never the newest: it would
    // read as 0 s old for as long as the skew lasts.
    let (future, present): (Vec<_>, Vec<_>) = facts.backups.iter().partition(|(id, _)| {
        id.started_at()
            .is_some_and(|started| crate::clock::in_the_future(started, now))
    });
    let newest = present.last().copied();
    let backup_age = newest
        .and_then(|(id, _)| id.started_at())
        .map(|started| Duration::try_from(now - started).unwrap_or(Duration::ZERO));
    // A stream with a hole, or whose newest seal cannot be read, does not reach its newest
    // point: freshness falls back to the backups.
    // A point dated in the future (the server's clock ahead of this one) is no evidence of how
    // fresh the stream is: it would read 0 s old for as long as the skew lasts.
    let future_point = facts
        .recovery_point
        .filter(|point| crate::clock::in_the_future(*point, now));
    let point_age = facts
        .recovery_point
        .filter(|_| facts.stream_problems.is_empty() && future_point.is_none())
        .map(|point| Duration::try_from(now - point).unwrap_or(Duration::ZERO));
    // With a change stream, freshness is the newest point a restore can reach (the base
    // backups behind it are checked by verification and the size check).
    let age = match (backup_age, point_age) {
        (Some(backup), Some(point)) => Some(backup.min(point)),
        (backup, _) => backup,
    };
    let mut findings = Vec::new();
    let dispatch = facts.dispatched.as_ref().map(|d| {
        let started = facts
            .newest_started
            .or_else(|| newest.and_then(|(id, _)| id.started_at()));
        (
            d,
            dispatch_state(d, started, facts.backup_lease.as_ref(), now),
        )
    });
    let task = |d: &Dispatched| {
        if d.task.is_empty() {
            "(not started)".to_string()
        } else {
            d.task.clone()
        }
    };
    let in_progress = match dispatch {
        Some((d, DispatchState::InProgress)) => Some(format!(
            "dispatched to container task {} at {} ({})",
            task(d),
            d.at,
            d.reason
        )),
        _ => None,
    };
    if let Some((d, DispatchState::Lost)) = dispatch {
        findings.push(Finding::new(
            "dispatched_backup",
            Severity::Critical,
            format!(
                "the backup dispatched to container task {} at {} ended without committing \
                 (no backup since, and no lease held): read the task's stopped reason and log, \
                 then run the backup again",
                task(d),
                d.at
            ),
        ));
    }
    if let Some((id, _)) = future.last() {
        let ahead = id
            .started_at()
            .and_then(|started| Duration::try_from(started - now).ok())
            .unwrap_or_default();
        findings.push(Finding::new(
            "clock_skew",
            Severity::Critical,
            format!(
                "backup {id} starts {} in the future by this host's clock: the clock of the host \
                 that took it was ahead, or this one's is behind; it is not counted as the \
                 newest backup. Check both clocks (NTP){}",
                crate::clock::span(ahead),
                if future.len() > 1 {
                    format!(" ({} such backups)", future.len())
                } else {
                    String::new()
                }
            ),
        ));
    }
    if let Some(point) = future_point {
        findings.push(Finding::new(
            "clock_skew",
            Severity::Critical,
            format!(
                "the change stream's newest recovery point is dated {} in the future by this \
                 host's clock: the database server's clock is ahead, or this one's is behind; it \
                 is not counted as a recovery point. Check both clocks (NTP)",
                crate::clock::span(Duration::try_from(point - now).unwrap_or_default())
            ),
        ));
    }
    let hours = |d: Duration| d.as_secs_f64() / 3600.0;
    match (classify_backup_age(age, thresholds), newest, age) {
        (HealthStatus::Healthy, _, _) => {}
        // Late, but the backup that ends it is running: said, not alerted.
        (_, _, _) if in_progress.is_some() => findings.push(Finding::new(
            "backup_age",
            Severity::Info,
            format!(
                "a backup is in progress: {}",
                in_progress.as_deref().unwrap_or_default()
            ),
        )),
        (status, Some((id, _)), Some(age)) => findings.push(Finding::new(
            "backup_age",
            if status == HealthStatus::Critical {
                Severity::Critical
            } else {
                Severity::Warning
            },
            format!(
                "no {} for {:.1} hours (newest backup: {id}; {} above {:.0} h)",
                if point_age.is_some() {
                    "backup or recovery point"
                } else {
                    "backup"
                },
                hours(age),
                status.as_str(),
                hours(if status == HealthStatus::Critical {
                    thresholds.critical_after
                } else {
                    thresholds.warning_after
                })
            ),
        )),
        // Only sets from the future: the clock_skew finding says it.
        _ if !future.is_empty() => {}
        _ => findings.push(Finding::new(
            "backup_age",
            Severity::Critical,
            "there is no committed backup of this database",
        )),
    }

    let newest_bytes = newest.map(|(_, bytes)| *bytes);
    let mut previous: Vec<u64> = present
        .iter()
        .rev()
        .skip(1)
        .take(SIZE_WINDOW)
        .map(|(_, bytes)| *bytes)
        .collect();
    let median_previous = median(&mut previous);
    if let (Some(newest), Some(median)) = (newest_bytes, median_previous)
        && previous.len() == SIZE_WINDOW
        && newest.saturating_mul(2) < median
    {
        findings.push(Finding::new(
            "backup_size",
            Severity::Warning,
            format!(
                "the newest backup is {newest} bytes, less than half the median ({median} bytes) of the {SIZE_WINDOW} before it: a truncated dump or lost data?"
            ),
        ));
    }

    for problem in &facts.stream_problems {
        findings.push(Finding::new(
            "stream",
            Severity::Critical,
            format!(
                "the change stream cannot carry a restore to its newest point: {problem}; \
                 take a backup now (a new base), and find out what removed or damaged it"
            ),
        ));
    }
    if let Some((id, reason)) = &facts.unreadable {
        findings.push(Finding::new(
            "manifest",
            Severity::Critical,
            format!(
                "the manifest of the newest backup, {id}, cannot be read ({reason}): that backup \
                 cannot be restored and does not count as the newest; run `backstop verify` on \
                 it, and take a new backup"
            ),
        ));
    }
    let last_verification = facts.last_verification.as_ref().map(|v| LastVerification {
        backup_id: v.backup_id.clone(),
        level: v.level,
        verdict: v.verdict,
        age_seconds: Duration::try_from(now - v.checked_at)
            .unwrap_or(Duration::ZERO)
            .as_secs(),
        problem: v.findings.first().map(ToString::to_string),
    });
    if let Some(v) = &last_verification
        && v.verdict == Verdict::Failed
    {
        findings.push(Finding::new(
            "verification",
            Severity::Critical,
            format!(
                "the newest verification ({} level, backup {}) failed: {}",
                v.level.as_str(),
                v.backup_id,
                v.problem.as_deref().unwrap_or("see its result")
            ),
        ));
    }

    let health = BackupHealth {
        last_backup: newest.map(|(id, _)| id.to_string()),
        age_seconds: backup_age.map(|a| a.as_secs()),
        recovery_point_age_seconds: point_age.map(|a| a.as_secs()),
        in_progress,
        backup_count: facts.backups.len(),
        total_bytes: facts.backups.iter().map(|(_, b)| b).sum(),
        newest_bytes,
        median_previous_bytes: median_previous,
        last_verification,
        rto_seconds: facts
            .measured_restore
            .as_ref()
            .and_then(|v| v.restore_seconds),
        rto_loaded_seconds: facts
            .measured_restore
            .as_ref()
            .and_then(|v| v.loaded_seconds),
        oldest_backup_age_seconds: present.first().and_then(|(id, _)| id.started_at()).map(
            |started| {
                Duration::try_from(now - started)
                    .unwrap_or(Duration::ZERO)
                    .as_secs()
            },
        ),
        last_restore_test: facts.measured_restore.as_ref().map(|v| RestoreTested {
            backup_id: v.backup_id.clone(),
            age_seconds: Duration::try_from(now - v.checked_at)
                .unwrap_or(Duration::ZERO)
                .as_secs(),
        }),
    };
    (health, findings)
}

/// Gathers the facts about `database`'s backups. Fails (rather than reporting "no backups")
/// when the store cannot be listed.
pub async fn gather(store: &dyn Store, database: &DatabaseId) -> Result<BackupFacts, StoreError> {
    let prefix = database_prefix(database);
    let objects = store.list(&prefix).await?;
    let mut sets: BTreeMap<BackupId, (bool, u64, Vec<String>)> = BTreeMap::new();
    for object in &objects {
        let Some((id, name)) = object
            .key
            .strip_prefix(&prefix)
            .and_then(|rest| rest.split_once('/'))
        else {
            continue;
        };
        let Ok(id) = BackupId::parse(id) else {
            continue;
        };
        let entry = sets.entry(id).or_default();
        if name == MANIFEST_NAME {
            entry.0 = true;
        }
        if let Some(result) = name.strip_prefix("verification/") {
            entry.2.push(result.to_string());
        } else {
            entry.1 += object.size;
        }
    }
    let mut backups: Vec<(BackupId, u64)> = sets
        .iter()
        .filter(|(_, (committed, _, _))| *committed)
        .map(|(id, (_, bytes, _))| (id.clone(), *bytes))
        .collect();
    // The newest set counts only if it can be restored: its manifest must read.
    let mut unreadable = None;
    if let Some((id, _)) = backups.last() {
        match crate::engine::restore::read_manifest_of(store, database, id).await {
            Err(crate::engine::restore::RestoreError::Manifest { reason, .. }) => {
                unreadable = Some((id.clone(), reason));
                backups.pop();
            }
            Err(crate::engine::restore::RestoreError::Store(e)) => return Err(e),
            _ => {}
        }
    }
    let mut last_verification: Option<Verification> = None;
    if let Some((id, (_, _, results))) = sets
        .iter()
        .rev()
        .find(|(_, (committed, _, results))| *committed && !results.is_empty())
    {
        for name in results {
            let key = format!("{prefix}{id}/verification/{name}");
            let Some(found) = store.read_versioned(&key).await? else {
                continue;
            };
            if let Ok(result) = serde_json::from_slice::<Verification>(&found.body)
                && last_verification
                    .as_ref()
                    .is_none_or(|v| v.checked_at < result.checked_at)
            {
                last_verification = Some(result);
            }
        }
    }
    let mut measured_restore = None;
    let restore_result = format!("{}.json", Level::Restore.as_str());
    for (id, _) in sets
        .iter()
        .rev()
        .filter(|(_, (committed, _, results))| *committed && results.contains(&restore_result))
    {
        let key = format!("{prefix}{id}/verification/{restore_result}");
        let Some(found) = store.read_versioned(&key).await? else {
            continue;
        };
        // A result dated in the future (its writer's clock ahead) would keep the cadence met
        // for as long as the skew lasts; its identity is where it was found, not what it says.
        if let Ok(mut result) = serde_json::from_slice::<Verification>(&found.body)
            && result.verdict == Verdict::Passed
            && result.restore_seconds.is_some()
            && !crate::clock::in_the_future(result.checked_at, OffsetDateTime::now_utc())
        {
            result.backup_id = id.to_string();
            measured_restore = Some(result);
            break;
        }
    }
    let seals =
        crate::engine::stream::segment::seal_keys(database, objects.iter().map(|o| o.key.as_str()));
    let mut stream_problems = crate::engine::stream::segment::gaps(&seals);
    let recovery_point = match seals.last() {
        Some(key) => match crate::engine::stream::read_seal(store, key).await {
            Ok(seal) => Some(seal.through),
            Err(crate::engine::stream::StreamError::Store(e)) => return Err(e),
            Err(e) => {
                stream_problems.push(format!("the newest seal cannot be read ({e})"));
                None
            }
        },
        None => None,
    };
    let (runner, _) = crate::runner::read(store, database).await?;
    let backup_lease =
        crate::lease::read(store, &crate::lease::lease_key(database, "backup")).await?;
    let newest_started = match &runner.dispatched {
        Some(_) if !backups.is_empty() => {
            crate::runner::history(store, database)
                .await?
                .newest_started
        }
        _ => None,
    };
    Ok(BackupFacts {
        backups,
        last_verification,
        measured_restore,
        recovery_point,
        dispatched: runner.dispatched,
        backup_lease,
        newest_started,
        unreadable,
        stream_problems,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn backup(at: OffsetDateTime, bytes: u64) -> (BackupId, u64) {
        (BackupId::generate(at), bytes)
    }

    #[test]
    fn a_backup_under_half_the_median_of_the_previous_seven_warns() {
        let now = datetime!(2026-11-22 12:00 UTC);
        let mut backups: Vec<_> = (0..7)
            .map(|i| backup(now - time::Duration::hours(48 - i), 1000 + i as u64))
            .collect();
        backups.push(backup(now - time::Duration::hours(1), 400));
        let facts = BackupFacts {
            backups,
            last_verification: None,
            recovery_point: None,
            ..Default::default()
        };
        let (health, findings) = assess(&facts, now, &FreshnessThresholds::default());
        assert_eq!(health.median_previous_bytes, Some(1003));
        assert_eq!(findings.len(), 1);
        assert_eq!(findings[0].check, "backup_size");
        // With fewer than seven before it, nothing is compared.
        let facts = BackupFacts {
            backups: facts.backups[3..].to_vec(),
            last_verification: None,
            recovery_point: None,
            ..Default::default()
        };
        assert!(
            assess(&facts, now, &FreshnessThresholds::default())
                .1
                .is_empty()
        );
    }

    #[test]
    fn a_recent_recovery_point_keeps_an_old_base_fresh() {
        let now = datetime!(2026-11-22 12:00 UTC);
        let facts = BackupFacts {
            backups: vec![backup(now - time::Duration::hours(30), 1000)],
            last_verification: None,
            recovery_point: Some(now - time::Duration::minutes(4)),
            ..Default::default()
        };
        let (health, findings) = assess(&facts, now, &FreshnessThresholds::default());
        assert!(findings.is_empty(), "{findings:?}");
        assert_eq!(health.recovery_point_age_seconds, Some(240));
        assert_eq!(health.age_seconds, Some(30 * 3600));
        let stale = BackupFacts {
            recovery_point: Some(now - time::Duration::hours(26)),
            ..facts
        };
        let (_, findings) = assess(&stale, now, &FreshnessThresholds::default());
        assert!(
            findings[0].message.contains("backup or recovery point"),
            "{findings:?}"
        );
    }

    #[test]
    fn a_dispatched_backup_holds_the_age_alert_until_it_lands_or_is_lost() {
        let now = datetime!(2026-11-22 12:00 UTC);
        let at = now - time::Duration::minutes(30);
        let dispatched = Dispatched {
            at,
            task: "arn:aws:ecs:us-east-1:1:task/backstop/9".into(),
            request: "r".into(),
            reason: "estimated 2000 s".into(),
            until: at + time::Duration::minutes(10),
        };
        let running = LeaseRecord {
            holder: "backup job 1".into(),
            token: "t".into(),
            acquired_at: at + time::Duration::minutes(2),
            expires_at: now + time::Duration::minutes(1),
        };
        let facts = BackupFacts {
            backups: vec![backup(now - time::Duration::hours(30), 1000)],
            dispatched: Some(dispatched),
            backup_lease: Some(running.clone()),
            ..Default::default()
        };
        let thresholds = FreshnessThresholds::default();
        let (health, findings) = assess(&facts, now, &thresholds);
        assert_eq!(super::super::status_of(&findings), HealthStatus::Healthy);
        assert!(health.in_progress.unwrap().contains("task/backstop/9"));
        assert!(findings[0].message.contains("in progress"), "{findings:?}");
        // The task died: its lease lapsed and nothing landed.
        let lost = BackupFacts {
            backup_lease: Some(LeaseRecord {
                expires_at: now - time::Duration::minutes(5),
                ..running
            }),
            ..facts.clone()
        };
        let (health, findings) = assess(&lost, now, &thresholds);
        assert_eq!(health.in_progress, None);
        let checks: Vec<&str> = findings.iter().map(|f| f.check.as_str()).collect();
        assert_eq!(checks, ["dispatched_backup", "backup_age"]);
        assert_eq!(super::super::status_of(&findings), HealthStatus::Critical);
        // It landed: a backup started after the dispatch.
        let landed = BackupFacts {
            backups: vec![backup(at + time::Duration::minutes(3), 1000)],
            ..lost
        };
        assert!(assess(&landed, now, &thresholds).1.is_empty());
        // Its id holds only the dispatch's second; the manifest's start time tells.
        let same_second = BackupFacts {
            backups: vec![backup(at, 1000)],
            newest_started: Some(at + time::Duration::milliseconds(300)),
            dispatched: Some(Dispatched {
                at: at + time::Duration::milliseconds(100),
                ..landed.dispatched.clone().unwrap()
            }),
            ..landed.clone()
        };
        assert!(assess(&same_second, now, &thresholds).1.is_empty());
        let without_manifest_time = BackupFacts {
            newest_started: None,
            ..same_second
        };
        assert_eq!(
            assess(&without_manifest_time, now, &thresholds).1[0].check,
            "dispatched_backup"
        );
    }

    #[test]
    fn a_backup_from_the_future_is_a_critical_skew_and_not_the_newest() {
        let now = datetime!(2026-11-22 12:00 UTC);
        let facts = BackupFacts {
            backups: vec![
                backup(now - time::Duration::hours(30), 1000),
                backup(now + time::Duration::days(2), 1000),
            ],
            ..Default::default()
        };
        let (health, findings) = assess(&facts, now, &FreshnessThresholds::default());
        // The age is the true newest's, 30 h: late, not 0 s.
        assert_eq!(health.age_seconds, Some(30 * 3600));
        let checks: Vec<_> = findings.iter().map(|f| f.check.as_str()).collect();
        assert_eq!(checks, ["clock_skew", "backup_age"], "{findings:?}");
        assert_eq!(findings[0].severity, Severity::Critical);
        assert!(
            findings[0].message.contains("2 d 0 h in the future"),
            "{findings:?}"
        );

        // Only a set from the future: critical, and said as a skew.
        let facts = BackupFacts {
            backups: vec![backup(now + time::Duration::hours(3), 1000)],
            ..Default::default()
        };
        let (health, findings) = assess(&facts, now, &FreshnessThresholds::default());
        assert_eq!(health.last_backup, None);
        assert_eq!(findings.len(), 1, "{findings:?}");
        assert_eq!(findings[0].check, "clock_skew");
    }

    #[test]
    fn a_recovery_point_from_the_future_is_a_skew_and_not_counted() {
        let now = datetime!(2026-11-22 12:00 UTC);
        let facts = BackupFacts {
            backups: vec![backup(now - time::Duration::hours(30), 1000)],
            recovery_point: Some(now + time::Duration::hours(1)),
            ..Default::default()
        };
        let (health, findings) = assess(&facts, now, &FreshnessThresholds::default());
        assert_eq!(health.recovery_point_age_seconds, None);
        let checks: Vec<_> = findings.iter().map(|f| f.check.as_str()).collect();
        assert_eq!(checks, ["clock_skew", "backup_age"], "{findings:?}");
    }

    #[test]
    fn no_backup_at_all_is_critical() {
        let (health, findings) = assess(
            &BackupFacts::default(),
            datetime!(2026-11-22 12:00 UTC),
            &FreshnessThresholds::default(),
        );
        assert_eq!(health.backup_count, 0);
        assert_eq!(findings[0].severity, Severity::Critical);
    }
}
