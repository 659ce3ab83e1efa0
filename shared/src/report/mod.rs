//! `backstop report`: per database, over a period, the page a team hands to an auditor: the
//! objectives declared (and their changes), how long each was met, at risk, missed or not
//! observed, each miss, every test restore with its RTO against the objective in force then,
//! and whether the verification record is whole.
//!
//! The figures come from the monitor's samples ([`crate::objectives::samples`]) and the
//! verification record ([`crate::engine::verify::log`]); sets' stored restore results the
//! record does not hold are listed too, marked so. [`summary`] holds the pure judgement,
//! [`page`] draws a report as one printable HTML page.

pub mod page;
pub mod summary;

use std::collections::BTreeSet;

use serde::Serialize;
use time::OffsetDateTime;

use crate::engine::verify::log::{self, Chain};
use crate::engine::verify::{Level, stored_result};
use crate::health::verification_log;
use crate::layout::{DatabaseId, STATE_PREFIX, committed_backups, database_prefix};
use crate::objectives::samples::{self, Sample, sample_key, samples_prefix};
use crate::store::{Store, StoreError};
pub use summary::{
    InForce, Miss, Objective, ObjectiveChange, ObjectiveSummary, RestoreTest, Summary, TestRecord,
};

/// The report of a store's databases over one period.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    pub store: String,
    #[serde(with = "time::serde::rfc3339")]
    pub generated_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub period_start_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub period_end_at: OffsetDateTime,
    /// Whether every database's verification record is whole.
    pub record_intact: bool,
    pub databases: Vec<DatabaseReport>,
}

/// One database's report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DatabaseReport {
    pub database_id: String,
    #[serde(flatten)]
    pub summary: Summary,
    /// Samples that would not read: never taken for figures.
    pub unreadable_samples: usize,
    /// The test restores of the period, oldest first.
    pub restore_tests: Vec<RestoreTest>,
    pub verification_record: Record,
}

/// The verification record of a database: whole, or each problem naming its entry.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Record {
    pub intact: bool,
    /// The entries that read.
    pub entries: usize,
    /// The newest entry's hash.
    pub head: Option<String>,
    pub problems: Vec<RecordProblem>,
}

/// One problem of a verification record.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RecordProblem {
    /// The entry it is about; `None` for a name in the log that is not an entry.
    pub seq: Option<u64>,
    /// One line naming the entry by its key.
    pub problem: String,
}

impl Record {
    /// `chain` of `database`'s log, each problem naming its entry by key; `memory_unreadable`:
    /// why what the monitor remembers of the newest entry does not read, when it does not (the
    /// newest entry then goes unchecked: a problem too).
    pub fn of(database: &DatabaseId, chain: &Chain, memory_unreadable: Option<&str>) -> Self {
        let mut problems: Vec<RecordProblem> = chain
            .problems
            .iter()
            .map(|p| RecordProblem {
                seq: p.seq(),
                problem: p.describe(database),
            })
            .collect();
        if let Some(reason) = memory_unreadable {
            problems.push(RecordProblem {
                seq: None,
                problem: format!(
                    "what the monitor remembers of the newest entry ({}) does not read ({reason}), so an edit or deletion of the newest entry cannot be told",
                    verification_log::seen_key(database)
                ),
            });
        }
        Self {
            intact: problems.is_empty(),
            entries: chain.entries.len(),
            head: chain.head.clone(),
            problems,
        }
    }
}

/// What stops a report.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the period starts at {start}, after its end at {end}; give an earlier --since")]
    Period { start: String, end: String },
    #[error(
        "{store} holds no backups, objective samples or verification record of database `{database}`{known}; check --database-id"
    )]
    UnknownDatabase {
        store: String,
        database: String,
        known: String,
    },
}

/// Reads the report of `only` (else of every database the store holds backups, objective
/// samples or a verification record of) over `since`..`now`.
pub async fn gather(
    store: &dyn Store,
    only: Option<&DatabaseId>,
    since: OffsetDateTime,
    now: OffsetDateTime,
) -> Result<Report, ReportError> {
    if since > now {
        return Err(ReportError::Period {
            start: crate::status::page::time_text(since),
            end: crate::status::page::time_text(now),
        });
    }
    let known = databases_in(store).await?;
    let databases: Vec<DatabaseId> = match only {
        Some(database) if known.contains(database) => vec![database.clone()],
        Some(database) => {
            return Err(ReportError::UnknownDatabase {
                store: store.url().to_string(),
                database: database.to_string(),
                known: if known.is_empty() {
                    String::new()
                } else {
                    let names: Vec<String> = known.iter().map(ToString::to_string).collect();
                    format!(" (it holds {})", names.join(", "))
                },
            });
        }
        None => known.into_iter().collect(),
    };
    let mut reports = Vec::with_capacity(databases.len());
    for database in &databases {
        reports.push(database_report(store, database, since, now).await?);
    }
    Ok(Report {
        store: store.url().to_string(),
        generated_at: now,
        period_start_at: since,
        period_end_at: now,
        record_intact: reports.iter().all(|r| r.verification_record.intact),
        databases: reports,
    })
}

/// Every database the store holds backups, objective samples or a verification record of.
async fn databases_in(store: &dyn Store) -> Result<BTreeSet<DatabaseId>, StoreError> {
    let objects = store.list("").await?;
    let objectives = format!("{STATE_PREFIX}/objectives/");
    let verifications = format!("{STATE_PREFIX}/verifications/");
    Ok(objects
        .iter()
        .filter_map(|o| {
            let key = o.key.as_str();
            let rest = key
                .strip_prefix(&objectives)
                .or_else(|| key.strip_prefix(&verifications));
            match rest {
                Some(rest) => rest.split_once('/').map(|(id, _)| id),
                None if key.starts_with(&format!("{STATE_PREFIX}/")) => None,
                None => key.split_once('/').map(|(id, _)| id),
            }
        })
        .filter_map(|id| DatabaseId::new(id).ok())
        .collect())
}

async fn database_report(
    store: &dyn Store,
    database: &DatabaseId,
    since: OffsetDateTime,
    now: OffsetDateTime,
) -> Result<DatabaseReport, StoreError> {
    let (samples, unreadable_samples) = read_samples(store, database, since).await?;
    // Read-only: what the monitor remembers of the newest entry catches its edit or deletion,
    // which no entry after it would tell.
    let memory = verification_log::remembered(store, database).await?;
    let chain = log::read_chain_against(store, database, memory.seen.as_ref()).await?;
    let logged = logged_tests(database, &chain);
    let stored = stored_restore_results(store, database, since).await?;
    Ok(DatabaseReport {
        database_id: database.to_string(),
        summary: summary::summarize(&samples, since, now),
        unreadable_samples,
        restore_tests: summary::restore_tests(&logged, &stored, &samples, since, now),
        verification_record: Record::of(database, &chain, memory.unreadable.as_deref()),
    })
}

/// The test restores `chain` holds, each flagged (`problem`) when a problem of the record
/// names its entry: edited, or vouched for by nothing, it is not proven to be what ran. Pure.
pub fn logged_tests(database: &DatabaseId, chain: &Chain) -> Vec<TestRecord> {
    chain
        .entries
        .iter()
        .filter(|e| e.level == Level::Restore && e.database_id == database.as_str())
        .map(|e| {
            let doubt = chain
                .problems
                .iter()
                .find(|p| p.names(e.seq))
                .map(|p| format!("{NOT_VOUCHED_FOR}: {p}"));
            TestRecord {
                seq: Some(e.seq),
                backup_id: e.backup_id.clone(),
                verdict: e.verdict,
                checked_at: e.checked_at,
                restore_seconds: e.restore_seconds,
                loaded_seconds: e.loaded_seconds,
                problem: match (doubt, &e.problem) {
                    (Some(doubt), Some(problem)) => Some(format!("{problem}; {doubt}")),
                    (doubt, problem) => doubt.or_else(|| problem.clone()),
                },
                by: Some(e.by.clone()),
            }
        })
        .collect()
}

/// The note on a test restore whose entry a problem of the record names.
pub const NOT_VOUCHED_FOR: &str = "not vouched for by the record";

/// `database`'s samples from the newest one before `since` on (what holds into the period).
async fn read_samples(
    store: &dyn Store,
    database: &DatabaseId,
    since: OffsetDateTime,
) -> Result<(Vec<Sample>, usize), StoreError> {
    let prefix = samples_prefix(database);
    let since_key = sample_key(database, since);
    let before = store
        .list(&prefix)
        .await?
        .into_iter()
        .map(|o| o.key)
        .filter(|key| key.ends_with(".json") && key.as_str() < since_key.as_str())
        .max();
    let from = before
        .as_deref()
        .and_then(|key| sample_time(key.strip_prefix(&prefix)?))
        .map_or(since, |at| at.min(since));
    samples::read(store, database, Some(from)).await
}

/// The time in a sample's key name (`YYYYMMDDTHHMMSSZ.json`).
fn sample_time(name: &str) -> Option<OffsetDateTime> {
    let format =
        time::macros::format_description!("[year][month][day]T[hour][minute][second]Z.json");
    time::PrimitiveDateTime::parse(name, &format)
        .ok()
        .map(time::PrimitiveDateTime::assume_utc)
}

/// The restore-level results stored beside `database`'s sets, checked at or after `since`.
async fn stored_restore_results(
    store: &dyn Store,
    database: &DatabaseId,
    since: OffsetDateTime,
) -> Result<Vec<TestRecord>, StoreError> {
    let objects = store.list(&database_prefix(database)).await?;
    let keys: BTreeSet<&str> = objects.iter().map(|o| o.key.as_str()).collect();
    let mut results = Vec::new();
    for backup in committed_backups(database, keys.iter().copied()) {
        if let Some(result) = stored_result(store, &keys, database, &backup, Level::Restore).await?
            && result.checked_at >= since
        {
            results.push(TestRecord {
                seq: None,
                // Where it was found, not what it says.
                backup_id: backup.to_string(),
                verdict: result.verdict,
                checked_at: result.checked_at,
                restore_seconds: result.restore_seconds,
                loaded_seconds: result.loaded_seconds,
                problem: result.findings.first().map(ToString::to_string),
                by: None,
            });
        }
    }
    Ok(results)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sample_key_names_its_time() {
        let at = time::macros::datetime!(2026-12-06 03:15:53 UTC);
        let database = DatabaseId::new("app").unwrap_or_else(|e| panic!("{e}"));
        let key = sample_key(&database, at);
        let name = key.strip_prefix(&samples_prefix(&database));
        assert_eq!(name.and_then(sample_time), Some(at));
        assert_eq!(sample_time("not-a-time.json"), None);
    }

    #[test]
    fn a_record_names_each_problem_by_entry_and_an_unreadable_memory_too() {
        use crate::engine::verify::log::ChainProblem;
        let database = DatabaseId::new("app").unwrap_or_else(|e| panic!("{e}"));
        let chain = Chain {
            entries: Vec::new(),
            problems: vec![ChainProblem::Missing { seq: 2 }],
            head: None,
        };
        let record = Record::of(&database, &chain, None);
        assert!(!record.intact);
        assert_eq!(record.problems[0].seq, Some(2));
        assert!(
            record.problems[0]
                .problem
                .starts_with("entry 2 (_backstop/verifications/app/000000000002.json) is missing"),
            "{:?}",
            record.problems
        );
        let whole = Chain {
            problems: Vec::new(),
            ..chain
        };
        assert!(Record::of(&database, &whole, None).intact);
        let record = Record::of(&database, &whole, Some("expected value"));
        assert!(!record.intact);
        assert_eq!(record.problems[0].seq, None);
        assert!(
            record.problems[0]
                .problem
                .contains("_backstop/health/verification-log/app.json")
        );
    }

    #[test]
    fn a_test_restore_whose_entry_the_record_cannot_vouch_for_is_flagged() {
        use crate::engine::verify::Verdict;
        use crate::engine::verify::log::{ChainProblem, Entry, Successor};
        let database = DatabaseId::new("app").unwrap_or_else(|e| panic!("{e}"));
        let entry = |seq: u64, level: Level| Entry {
            seq,
            previous: None,
            database_id: "app".into(),
            backup_id: format!("20261122T06000{seq}Z-0000000b"),
            level,
            verdict: Verdict::Passed,
            checked_at: time::macros::datetime!(2026-11-22 07:00 UTC),
            duration_seconds: 1.0,
            restore_seconds: Some(30.0),
            loaded_seconds: Some(20.0),
            checksums_checked: 0,
            findings: 0,
            problem: None,
            by: "test".into(),
        };
        let chain = Chain {
            entries: vec![
                entry(1, Level::Restore),
                entry(2, Level::Restore),
                entry(3, Level::Deep),
                entry(5, Level::Restore),
            ],
            problems: vec![
                ChainProblem::Missing { seq: 4 },
                ChainProblem::Unvouched {
                    from: 2,
                    to: 3,
                    successor: Successor::Missing,
                },
            ],
            head: None,
        };
        let tests = logged_tests(&database, &chain);
        let notes: Vec<(Option<u64>, Option<&str>)> = tests
            .iter()
            .map(|t| (t.seq, t.problem.as_deref()))
            .collect();
        assert_eq!(notes.len(), 3);
        assert_eq!(notes[0], (Some(1), None));
        assert_eq!(notes[2], (Some(5), None));
        assert_eq!(notes[1].0, Some(2));
        assert!(
            notes[1]
                .1
                .is_some_and(|n| n.starts_with("not vouched for by the record: entries 2 to 3")),
            "{notes:?}"
        );
    }
}
