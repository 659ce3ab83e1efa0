//! Where a backup runs: in the invocation that was asked, or as a container task when it will
//! not fit in the time that invocation has left.
//!
//! [`estimate`] and [`place`] decide, as pure functions over the last runs; [`dispatch_state`]
//! says what became of a dispatched run. What the next invocation and the monitor need to know
//! (a run that stopped at its deadline, a task on its way) is kept in one small object per
//! database, `_backstop/runner/<database-id>/backup.json` ([`RunnerRecord`]).

use std::time::Duration;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::engine::manifest::Manifest;
use crate::layout::{
    DatabaseId, MANIFEST_NAME, STATE_PREFIX, committed_backups, database_prefix, set_key,
};
use crate::lease::LeaseRecord;
use crate::store::{Store, StoreError, WriteCondition};

/// Committed backups an estimate looks back on (the slowest of them counts).
pub const HISTORY: usize = 3;
/// What an estimate adds for safety: this fraction of the scaled duration...
pub const MARGIN: f64 = 0.25;
/// ...and this many seconds for connecting, reading the catalogs and writing the manifest.
pub const FIXED_SECONDS: f64 = 30.0;

/// One committed backup, as an estimate sees it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PastRun {
    pub seconds: f64,
    /// `pg_database_size` when it ran (manifests from before it was recorded have none).
    pub database_bytes: Option<u64>,
}

/// A run that stopped at its deadline without committing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutOfTime {
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// How long it ran before it stopped.
    pub seconds: f64,
}

/// A backup handed to a container task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Dispatched {
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// The task's ARN (empty while the task is being started).
    pub task: String,
    /// The invocation that dispatched it.
    pub request: String,
    /// Why it was dispatched.
    pub reason: String,
    /// Until when the run counts as in progress without a lease of its own (the task's start).
    #[serde(with = "time::serde::rfc3339")]
    pub until: OffsetDateTime,
}

/// What `_backstop/runner/<database-id>/backup.json` holds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RunnerRecord {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub out_of_time: Option<OutOfTime>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dispatched: Option<Dispatched>,
}

/// How long a backup is expected to take, and from what.
#[derive(Debug, Clone, PartialEq)]
pub struct Estimate {
    pub seconds: f64,
    pub basis: String,
}

/// Where a backup should run.
#[derive(Debug, Clone, PartialEq)]
pub enum Placement {
    Here,
    Dispatch { reason: String },
}

/// What became of a dispatched run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DispatchState {
    /// A backup started after the dispatch has committed.
    Landed,
    /// The task is starting, or holds the backup lease.
    InProgress,
    /// Neither: the task ended (or never started) without committing.
    Lost,
}

fn gib(bytes: u64) -> f64 {
    bytes as f64 / (1u64 << 30) as f64
}

/// The expected duration of a backup now, from the last committed runs (newest first) scaled
/// by how the database grew since each, plus [`MARGIN`] and [`FIXED_SECONDS`]. `None` without
/// history.
pub fn estimate(history: &[PastRun], database_bytes_now: Option<u64>) -> Option<Estimate> {
    let scaled = |run: &PastRun| match (run.database_bytes, database_bytes_now) {
        (Some(then), Some(now)) if then > 0 => run.seconds * now as f64 / then as f64,
        _ => run.seconds,
    };
    let slowest = history
        .iter()
        .take(HISTORY)
        .max_by(|a, b| scaled(a).total_cmp(&scaled(b)))?;
    let seconds = scaled(slowest) * (1.0 + MARGIN) + FIXED_SECONDS;
    let size = |bytes: Option<u64>| {
        bytes
            .map(|b| format!("{:.2} GiB", gib(b)))
            .unwrap_or_else(|| "an unrecorded size".into())
    };
    let basis = format!(
        "the slowest of the last {} backup(s) took {:.0} s at {}; the database is {} now",
        history.len().min(HISTORY),
        slowest.seconds,
        size(slowest.database_bytes),
        size(database_bytes_now),
    );
    Some(Estimate { seconds, basis })
}

/// Whether a backup runs in this invocation (`time_left` is `None` for a job that has no
/// deadline, which always runs) or is dispatched: when the last run stopped at its deadline
/// (`out_of_time`, only when nothing committed since), or when the estimate exceeds the time
/// left.
pub fn place(
    estimate: Option<&Estimate>,
    out_of_time: Option<&OutOfTime>,
    time_left: Option<Duration>,
) -> Placement {
    let Some(left) = time_left else {
        return Placement::Here;
    };
    if let Some(stopped) = out_of_time {
        return Placement::Dispatch {
            reason: format!(
                "the last run stopped at its deadline after {:.0} s without committing (at {})",
                stopped.seconds, stopped.at
            ),
        };
    }
    match estimate {
        Some(e) if e.seconds > left.as_secs_f64() => Placement::Dispatch {
            reason: format!(
                "estimated {:.0} s ({}), more than the {:.0} s this invocation has left",
                e.seconds,
                e.basis,
                left.as_secs_f64()
            ),
        },
        _ => Placement::Here,
    }
}

/// What became of `dispatched` at `now`, given when the newest committed backup started and
/// the backup lease as it stands.
pub fn dispatch_state(
    dispatched: &Dispatched,
    newest_backup_started: Option<OffsetDateTime>,
    lease: Option<&LeaseRecord>,
    now: OffsetDateTime,
) -> DispatchState {
    if newest_backup_started.is_some_and(|started| started >= dispatched.at) {
        return DispatchState::Landed;
    }
    let leased = lease.is_some_and(|l| {
        !l.token.is_empty() && !l.is_expired(now) && l.acquired_at >= dispatched.at
    });
    if now < dispatched.until || leased {
        DispatchState::InProgress
    } else {
        DispatchState::Lost
    }
}

/// `_backstop/runner/<database-id>/backup.json`.
pub fn record_key(database: &DatabaseId) -> String {
    format!("{STATE_PREFIX}/runner/{database}/backup.json")
}

/// The record as stored, with its version for a conditional write (an unreadable record
/// counts as empty).
pub async fn read(
    store: &dyn Store,
    database: &DatabaseId,
) -> Result<(RunnerRecord, Option<String>), StoreError> {
    Ok(match store.read_versioned(&record_key(database)).await? {
        Some(found) => (
            serde_json::from_slice(&found.body).unwrap_or_default(),
            Some(found.version),
        ),
        None => (RunnerRecord::default(), None),
    })
}

/// Writes `record` if the stored one is still at `version` (`None`: absent): the new version,
/// or `None` when another run changed it first.
pub async fn write_if(
    store: &dyn Store,
    database: &DatabaseId,
    record: &RunnerRecord,
    version: Option<&str>,
) -> Result<Option<String>, StoreError> {
    let body = serde_json::to_vec_pretty(record).unwrap_or_default();
    let condition = match version {
        Some(v) => WriteCondition::Version(v),
        None => WriteCondition::Absent,
    };
    store
        .write_if(&record_key(database), &body, condition)
        .await
}

/// The newest committed backups (up to [`HISTORY`], newest first) and when the newest started
/// and finished.
pub struct History {
    pub runs: Vec<PastRun>,
    pub newest_started: Option<OffsetDateTime>,
    pub newest_finished: Option<OffsetDateTime>,
}

/// Reads the last [`HISTORY`] manifests of `database` (their public part is enough).
pub async fn history(store: &dyn Store, database: &DatabaseId) -> Result<History, StoreError> {
    let objects = store.list(&database_prefix(database)).await?;
    let backups = committed_backups(database, objects.iter().map(|o| o.key.as_str()));
    let mut history = History {
        runs: Vec::new(),
        newest_started: None,
        newest_finished: None,
    };
    for backup in backups.iter().rev().take(HISTORY) {
        let Some(found) = store
            .read_versioned(&set_key(database, backup, MANIFEST_NAME))
            .await?
        else {
            continue;
        };
        let Ok(manifest) = serde_json::from_slice::<Manifest>(&found.body) else {
            continue;
        };
        if history.newest_started.is_none() {
            history.newest_started = Some(manifest.started_at);
            history.newest_finished = Some(manifest.finished_at);
        }
        history.runs.push(PastRun {
            seconds: (manifest.finished_at - manifest.started_at)
                .as_seconds_f64()
                .max(0.0),
            database_bytes: manifest.database_bytes,
        });
    }
    Ok(history)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const GIB: u64 = 1 << 30;

    fn run(seconds: f64, gib: u64) -> PastRun {
        PastRun {
            seconds,
            database_bytes: Some(gib * GIB),
        }
    }

    #[test]
    fn the_estimate_scales_the_slowest_recent_run_by_the_growth_since() {
        let history = [
            run(300.0, 10),
            run(400.0, 10),
            run(200.0, 5),
            run(9000.0, 1),
        ];
        let e = estimate(&history, Some(20 * GIB)).unwrap();
        // 400 s at 10 GiB and 200 s at 5 GiB both scale to 800 s at 20 GiB; the fourth run is
        // too old to count.
        assert_eq!(e.seconds, 800.0 * 1.25 + FIXED_SECONDS);
        assert!(e.basis.contains("20.00 GiB now"), "{}", e.basis);
        assert_eq!(estimate(&[], Some(GIB)), None);
        let without_size = PastRun {
            seconds: 100.0,
            database_bytes: None,
        };
        assert_eq!(
            estimate(&[without_size], Some(GIB)).unwrap().seconds,
            100.0 * 1.25 + FIXED_SECONDS
        );
    }

    #[test]
    fn a_backup_is_dispatched_when_it_will_not_fit_or_the_last_run_ran_out_of_time() {
        let long = Estimate {
            seconds: 1000.0,
            basis: "b".into(),
        };
        let short = Estimate {
            seconds: 100.0,
            basis: "b".into(),
        };
        let left = Some(Duration::from_secs(870));
        assert_eq!(place(Some(&short), None, left), Placement::Here);
        assert_eq!(place(None, None, left), Placement::Here);
        let Placement::Dispatch { reason } = place(Some(&long), None, left) else {
            panic!("a 1000 s backup does not fit in 870 s");
        };
        assert!(reason.contains("estimated 1000 s"), "{reason}");
        assert!(reason.contains("870 s"), "{reason}");
        let stopped = OutOfTime {
            at: datetime!(2026-12-01 06:14 UTC),
            seconds: 869.0,
        };
        assert!(matches!(
            place(Some(&short), Some(&stopped), left),
            Placement::Dispatch { reason } if reason.contains("deadline after 869 s")
        ));
        // A job without a deadline runs whatever the estimate says.
        assert_eq!(place(Some(&long), Some(&stopped), None), Placement::Here);
    }

    #[test]
    fn a_dispatched_run_is_in_progress_until_it_lands_or_its_lease_lapses() {
        let at = datetime!(2026-12-01 06:00 UTC);
        let dispatched = Dispatched {
            at,
            task: "arn:aws:ecs:us-east-1:1:task/c/1".into(),
            request: "r".into(),
            reason: "big".into(),
            until: at + time::Duration::minutes(10),
        };
        let minutes = |m| at + time::Duration::minutes(m);
        let lease = |acquired: i64, expires: i64| LeaseRecord {
            holder: "backup job".into(),
            token: "t".into(),
            acquired_at: minutes(acquired),
            expires_at: minutes(expires),
        };
        let state = |started, lease: Option<&LeaseRecord>, now| {
            dispatch_state(&dispatched, started, lease, now)
        };
        assert_eq!(state(None, None, minutes(5)), DispatchState::InProgress);
        assert_eq!(state(None, None, minutes(11)), DispatchState::Lost);
        let held = lease(2, 62);
        assert_eq!(
            state(None, Some(&held), minutes(40)),
            DispatchState::InProgress
        );
        assert_eq!(state(None, Some(&held), minutes(63)), DispatchState::Lost);
        // A lease from before the dispatch is another run's.
        let older = lease(-30, 62);
        assert_eq!(state(None, Some(&older), minutes(40)), DispatchState::Lost);
        assert_eq!(
            state(Some(minutes(-60)), None, minutes(5)),
            DispatchState::InProgress
        );
        assert_eq!(
            state(Some(minutes(2)), None, minutes(90)),
            DispatchState::Landed
        );
    }
}
