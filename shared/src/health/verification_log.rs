//! The verification log's check: its chain read and checked, and its newest entry held to what
//! the last check saw of it, which is remembered under
//! `_backstop/health/verification-log/<database-id>.json` (outside the log's folder). An edit
//! or deletion of any entry, the newest included once it was seen, is a critical finding
//! naming the entry.

use time::OffsetDateTime;

use super::Finding;
use crate::alert::Severity;
use crate::engine::verify::log::{self, Chain, Seen};
use crate::layout::{DatabaseId, STATE_PREFIX};
use crate::store::{Store, StoreError, WriteCondition};

/// The findings' check name.
pub const CHECK: &str = "verification_log";
/// Findings named one by one before the rest are counted.
pub const NAMED_AT_MOST: usize = 20;

/// Where the newest entry a check saw is remembered.
pub fn seen_key(database: &DatabaseId) -> String {
    format!("{STATE_PREFIX}/health/verification-log/{database}.json")
}

/// What is remembered, as read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Remembered {
    pub seen: Option<Seen>,
    /// The stored object's version, for a conditional write; `None` when there is none.
    pub version: Option<String>,
    /// Why the stored object is not what a check writes, when it is not.
    pub unreadable: Option<String>,
}

/// Reads what the last check saw of `database`'s log.
pub async fn remembered(
    store: &dyn Store,
    database: &DatabaseId,
) -> Result<Remembered, StoreError> {
    let Some(found) = store.read_versioned(&seen_key(database)).await? else {
        return Ok(Remembered::default());
    };
    Ok(match serde_json::from_slice::<Seen>(&found.body) {
        Ok(seen) => Remembered {
            seen: Some(seen),
            version: Some(found.version),
            unreadable: None,
        },
        Err(e) => Remembered {
            seen: None,
            version: Some(found.version),
            unreadable: Some(e.to_string()),
        },
    })
}

/// The check's result: the chain as read, and what it calls for.
#[derive(Debug, Clone, PartialEq)]
pub struct LogCheck {
    pub chain: Chain,
    pub findings: Vec<Finding>,
}

/// Reads and checks `database`'s log against what the last check saw, then remembers its
/// newest entry when the chain is intact and has grown (or changed) since. What is remembered
/// is kept while something is wrong: the finding stays until someone deals with it. A
/// failure to remember is a warning (the newest entry would go unwatched), not the check's
/// failure; a log that cannot be listed or read is an error.
pub async fn check(
    store: &dyn Store,
    database: &DatabaseId,
    now: OffsetDateTime,
) -> Result<LogCheck, StoreError> {
    let memory = remembered(store, database).await?;
    let chain = log::read_chain_against(store, database, memory.seen.as_ref()).await?;
    let mut findings = assess(database, &chain);
    if let Some(reason) = &memory.unreadable {
        findings.push(Finding::new(
            CHECK,
            Severity::Warning,
            format!(
                "what the monitor remembers of the verification log ({}) does not read ({reason}); it is written anew",
                seen_key(database)
            ),
        ));
    }
    if let Some(next) = to_remember(&chain, memory.seen.as_ref(), now) {
        let body = serde_json::to_vec_pretty(&next).unwrap_or_default();
        let condition = match &memory.version {
            Some(version) => WriteCondition::Version(version),
            None => WriteCondition::Absent,
        };
        // Another check that wrote meanwhile saw at least as much: nothing to add.
        if let Err(e) = store.write_if(&seen_key(database), &body, condition).await {
            findings.push(Finding::new(
                CHECK,
                Severity::Warning,
                format!(
                    "the newest entry of the verification log (entry {}) could not be remembered, so an edit or deletion of it would go unnoticed: {e}",
                    next.seq
                ),
            ));
        }
    }
    Ok(LogCheck { chain, findings })
}

/// What to remember now: the newest entry of an intact chain when it is not what was
/// remembered (`None`: keep what is). Pure.
pub fn to_remember(chain: &Chain, seen: Option<&Seen>, now: OffsetDateTime) -> Option<Seen> {
    let next = chain.seen(now)?;
    match seen {
        Some(before) if before.seq == next.seq && before.head == next.head => None,
        _ => Some(next),
    }
}

/// One critical finding per problem (a run of missing or unvouched entries is one: the chain
/// names runs), each naming the entry by its key, at most [`NAMED_AT_MOST`] of them. Pure.
pub fn assess(database: &DatabaseId, chain: &Chain) -> Vec<Finding> {
    let mut lines: Vec<String> = chain
        .problems
        .iter()
        .map(|p| p.describe(database))
        .collect();
    if lines.len() > NAMED_AT_MOST {
        let rest = lines.len() - (NAMED_AT_MOST - 1);
        lines.truncate(NAMED_AT_MOST - 1);
        lines.push(format!(
            "and {rest} more problems; `backstop verify` lists every one"
        ));
    }
    let fix = fix(database);
    lines
        .into_iter()
        .map(|line| {
            Finding::new(
                CHECK,
                Severity::Critical,
                format!("verification log: {line}"),
            )
            .with_fix(fix.clone())
        })
        .collect()
}

/// What to do about a changed log.
pub fn fix(database: &DatabaseId) -> String {
    format!(
        "Backstop writes each entry once and never edits or deletes one: find out who changed the store (S3 server access logs or CloudTrail data events name them). The log cannot be mended; to start a new one, keep a copy of {} as evidence, then delete it and {}.",
        log::log_prefix(database),
        seen_key(database)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::verify::log::ChainProblem;
    use time::macros::datetime;

    fn main() -> DatabaseId {
        DatabaseId::new("main").unwrap()
    }

    fn chain(problems: Vec<ChainProblem>) -> Chain {
        Chain {
            entries: Vec::new(),
            problems,
            head: None,
        }
    }

    #[test]
    fn each_problem_is_a_critical_finding_naming_the_entry() {
        let findings = assess(
            &main(),
            &chain(vec![
                ChainProblem::Missing { seq: 1 },
                ChainProblem::Changed { seq: 4 },
            ]),
        );
        assert_eq!(findings.len(), 2);
        assert!(findings.iter().all(|f| f.severity == Severity::Critical));
        assert!(findings.iter().all(|f| f.check == CHECK));
        assert_eq!(
            findings[1].message,
            "verification log: entry 4 (_backstop/verifications/main/000000000004.json) was \
             changed after it was written: entry 5 holds a different hash of it"
        );
        assert!(
            findings[0]
                .fix
                .as_deref()
                .unwrap()
                .contains("_backstop/health/verification-log/main.json")
        );
        assert!(assess(&main(), &chain(Vec::new())).is_empty());
    }

    #[test]
    fn a_run_of_missing_entries_is_one_finding_and_many_problems_are_counted() {
        let problems = vec![
            ChainProblem::MissingRange { from: 2, to: 40 },
            ChainProblem::Missing { seq: 42 },
        ];
        let findings = assess(&main(), &chain(problems));
        assert_eq!(findings.len(), 2);
        assert!(
            findings[0].message.starts_with(
                "verification log: entries 2 to 40 (_backstop/verifications/main/000000000002.json to \
                 _backstop/verifications/main/000000000040.json) are missing"
            ),
            "{}",
            findings[0].message
        );
        let many: Vec<ChainProblem> = (1..=30)
            .map(|seq| ChainProblem::Changed { seq: seq * 2 })
            .collect();
        let findings = assess(&main(), &chain(many));
        assert_eq!(findings.len(), NAMED_AT_MOST);
        assert!(
            findings[NAMED_AT_MOST - 1]
                .message
                .contains("and 11 more problems"),
            "{}",
            findings[NAMED_AT_MOST - 1].message
        );
    }

    #[test]
    fn the_newest_entry_is_remembered_when_the_chain_is_intact_and_it_moved() {
        let at = datetime!(2026-11-22 08:00 UTC);
        let entry = crate::engine::verify::log::Entry {
            seq: 3,
            previous: Some("ab".into()),
            database_id: "main".into(),
            backup_id: "20261122T060000Z-0000000b".into(),
            level: crate::engine::verify::Level::Deep,
            verdict: crate::engine::verify::Verdict::Passed,
            checked_at: at,
            duration_seconds: 1.0,
            restore_seconds: None,
            loaded_seconds: None,
            checksums_checked: 4,
            findings: 0,
            problem: None,
            by: "test".into(),
        };
        let intact = Chain {
            entries: vec![entry],
            problems: Vec::new(),
            head: Some("cd".into()),
        };
        let seen = to_remember(&intact, None, at).unwrap();
        assert_eq!((seen.seq, seen.head.as_str()), (3, "cd"));
        let later = at + time::Duration::hours(1);
        assert_eq!(to_remember(&intact, Some(&seen), later), None);
        let broken = Chain {
            problems: vec![ChainProblem::Changed { seq: 2 }],
            ..intact.clone()
        };
        assert_eq!(to_remember(&broken, Some(&seen), later), None);
        let moved = Chain {
            head: Some("ef".into()),
            ..intact
        };
        assert_eq!(
            to_remember(&moved, Some(&seen), later).map(|s| s.head),
            Some("ef".into())
        );
        assert_eq!(to_remember(&chain(Vec::new()), None, at), None);
    }
}
