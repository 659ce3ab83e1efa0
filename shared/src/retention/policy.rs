//! Which backups a grandfather-father-son policy keeps: a pure function over backup times.
//!
//! restic's `forget` semantics: `last` keeps the N newest backups; `daily`, `weekly`,
//! `monthly` and `yearly` each keep the newest backup of each of the N most recent periods
//! (UTC days, ISO weeks, calendar months, years) that have a backup. A backup kept by any rule
//! stays. Two rails override everything: the newest backup and the newest backup whose
//! restore verification passed are always kept. A backup that starts in the future
//! ([`crate::clock::in_the_future`]: its writer's clock was ahead) is kept and counted by no
//! rule, so it can neither take a rail nor push the true newest out of `last`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// How many of each to keep; 0 turns a rule off.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policy {
    pub last: usize,
    pub daily: usize,
    pub weekly: usize,
    pub monthly: usize,
    pub yearly: usize,
}

impl Policy {
    /// Whether at least one rule keeps something (a policy of zeros would keep only the rails).
    pub fn keeps_anything(&self) -> bool {
        [
            self.last,
            self.daily,
            self.weekly,
            self.monthly,
            self.yearly,
        ]
        .iter()
        .any(|&n| n > 0)
    }
}

/// One committed backup, as the policy sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub id: String,
    pub taken_at: OffsetDateTime,
    /// Whether a restore-level verification of it passed.
    pub restore_verified: bool,
}

/// Why a backup is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Reason {
    Last,
    Daily,
    Weekly,
    Monthly,
    Yearly,
    /// The newest backup: never deleted.
    NewestBackup,
    /// The newest backup that passed a restore verification: never deleted.
    NewestVerified,
    /// It starts in the future: kept, and left to a person (`health` says so).
    FromTheFuture,
}

/// What the policy decided, newest first in both lists.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selection {
    pub keep: Vec<(String, Vec<Reason>)>,
    pub delete: Vec<String>,
}

fn period(reason: Reason, t: OffsetDateTime) -> (i32, u32) {
    match reason {
        Reason::Daily => (t.year(), u32::from(t.ordinal())),
        Reason::Weekly => {
            let (year, week, _) = t.to_iso_week_date();
            (year, u32::from(week))
        }
        Reason::Monthly => (t.year(), u32::from(u8::from(t.month()))),
        Reason::Yearly => (t.year(), 0),
        _ => (0, 0),
    }
}

/// Applies `policy` to `backups` (any order; ids unique) at `now`.
pub fn select(backups: &[Candidate], policy: &Policy, now: OffsetDateTime) -> Selection {
    let (future, mut sorted): (Vec<&Candidate>, Vec<&Candidate>) = backups
        .iter()
        .partition(|b| crate::clock::in_the_future(b.taken_at, now));
    sorted.sort_by(|a, b| b.taken_at.cmp(&a.taken_at).then(b.id.cmp(&a.id)));
    let mut reasons: BTreeMap<&str, Vec<Reason>> = BTreeMap::new();
    for backup in &future {
        reasons
            .entry(&backup.id)
            .or_default()
            .push(Reason::FromTheFuture);
    }
    for backup in sorted.iter().take(policy.last) {
        reasons.entry(&backup.id).or_default().push(Reason::Last);
    }
    for (reason, count) in [
        (Reason::Daily, policy.daily),
        (Reason::Weekly, policy.weekly),
        (Reason::Monthly, policy.monthly),
        (Reason::Yearly, policy.yearly),
    ] {
        let mut seen = Vec::new();
        for backup in &sorted {
            if seen.len() == count {
                break;
            }
            let p = period(reason, backup.taken_at.to_offset(time::UtcOffset::UTC));
            if !seen.contains(&p) {
                seen.push(p);
                reasons.entry(&backup.id).or_default().push(reason);
            }
        }
    }
    if let Some(newest) = sorted.first() {
        reasons
            .entry(&newest.id)
            .or_default()
            .push(Reason::NewestBackup);
    }
    if let Some(verified) = sorted.iter().find(|b| b.restore_verified) {
        reasons
            .entry(&verified.id)
            .or_default()
            .push(Reason::NewestVerified);
    }
    let mut selection = Selection::default();
    let mut everything = future;
    everything.sort_by(|a, b| b.taken_at.cmp(&a.taken_at).then(b.id.cmp(&a.id)));
    everything.extend(sorted);
    for backup in everything {
        match reasons.remove(backup.id.as_str()) {
            Some(mut why) => {
                why.sort();
                why.dedup();
                selection.keep.push((backup.id.clone(), why));
            }
            None => selection.delete.push(backup.id.clone()),
        }
    }
    selection
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use time::macros::datetime;

    /// After every history below: nothing in them is in the future.
    const NOW: OffsetDateTime = datetime!(2030-01-01 00:00 UTC);

    fn at(t: OffsetDateTime, id: &str) -> Candidate {
        Candidate {
            id: id.into(),
            taken_at: t,
            restore_verified: false,
        }
    }

    #[test]
    fn each_rule_keeps_the_newest_of_its_most_recent_periods() {
        let backups = [
            at(datetime!(2026-11-22 12:00 UTC), "sun-noon"),
            at(datetime!(2026-11-22 06:00 UTC), "sun-morning"),
            at(datetime!(2026-11-21 06:00 UTC), "sat"),
            at(datetime!(2026-11-15 06:00 UTC), "prev-week"),
            at(datetime!(2026-10-31 06:00 UTC), "october"),
            at(datetime!(2025-12-31 06:00 UTC), "last-year"),
        ];
        let policy = Policy {
            daily: 2,
            weekly: 2,
            monthly: 2,
            yearly: 2,
            last: 0,
        };
        let selection = select(&backups, &policy, NOW);
        let kept: Vec<(&str, &[Reason])> = selection
            .keep
            .iter()
            .map(|(id, r)| (id.as_str(), r.as_slice()))
            .collect();
        assert_eq!(
            kept,
            [
                (
                    "sun-noon",
                    &[
                        Reason::Daily,
                        Reason::Weekly,
                        Reason::Monthly,
                        Reason::Yearly,
                        Reason::NewestBackup
                    ][..]
                ),
                ("sat", &[Reason::Daily][..]),
                ("prev-week", &[Reason::Weekly][..]),
                ("october", &[Reason::Monthly][..]),
                ("last-year", &[Reason::Yearly][..]),
            ]
        );
        assert_eq!(selection.delete, ["sun-morning"]);
    }

    #[test]
    fn the_newest_and_the_newest_verified_survive_any_policy() {
        let mut backups = vec![
            at(datetime!(2026-11-22 00:00 UTC), "new"),
            at(datetime!(2026-11-01 00:00 UTC), "mid"),
            at(datetime!(2026-10-01 00:00 UTC), "old"),
        ];
        backups[1].restore_verified = true;
        let selection = select(&backups, &Policy::default(), NOW);
        assert_eq!(selection.delete, ["old"]);
        assert_eq!(
            selection.keep,
            [
                ("new".to_string(), vec![Reason::NewestBackup]),
                ("mid".to_string(), vec![Reason::NewestVerified])
            ]
        );
        assert!(select(&[], &Policy::default(), NOW).keep.is_empty());
    }

    #[test]
    fn a_backup_from_the_future_takes_no_rail_and_pushes_nothing_out() {
        let now = datetime!(2026-11-22 12:00 UTC);
        let backups = [
            at(datetime!(2026-11-25 00:00 UTC), "skewed"),
            at(datetime!(2026-11-22 11:00 UTC), "true-newest"),
            at(datetime!(2026-11-21 11:00 UTC), "older"),
        ];
        let policy = Policy {
            last: 1,
            ..Policy::default()
        };
        let selection = select(&backups, &policy, now);
        assert_eq!(
            selection.keep,
            [
                ("skewed".to_string(), vec![Reason::FromTheFuture]),
                (
                    "true-newest".to_string(),
                    vec![Reason::Last, Reason::NewestBackup]
                ),
            ]
        );
        assert_eq!(selection.delete, ["older"]);
    }

    fn histories() -> impl Strategy<Value = Vec<Candidate>> {
        // Up to 60 backups within ~3 years, some verified.
        prop::collection::vec((0i64..(3 * 365 * 24), any::<bool>()), 0..60).prop_map(|raw| {
            let base = datetime!(2024-01-01 00:00 UTC);
            let mut seen = std::collections::BTreeSet::new();
            raw.into_iter()
                .filter(|(h, _)| seen.insert(*h))
                .map(|(hours, verified)| Candidate {
                    id: format!("b{hours:06}"),
                    taken_at: base + time::Duration::hours(hours),
                    restore_verified: verified && hours % 3 == 0,
                })
                .collect()
        })
    }

    fn policies() -> impl Strategy<Value = Policy> {
        (0usize..5, 0usize..8, 0usize..5, 0usize..13, 0usize..3).prop_map(
            |(last, daily, weekly, monthly, yearly)| Policy {
                last,
                daily,
                weekly,
                monthly,
                yearly,
            },
        )
    }

    proptest! {
        #[test]
        fn the_newest_and_newest_verified_always_survive(backups in histories(), policy in policies()) {
            let selection = select(&backups, &policy, NOW);
            let kept: Vec<&str> = selection.keep.iter().map(|(id, _)| id.as_str()).collect();
            if let Some(newest) = backups.iter().max_by_key(|b| (b.taken_at, b.id.clone())) {
                prop_assert!(kept.contains(&newest.id.as_str()));
            }
            if let Some(verified) = backups.iter().filter(|b| b.restore_verified).max_by_key(|b| (b.taken_at, b.id.clone())) {
                prop_assert!(kept.contains(&verified.id.as_str()));
            }
            prop_assert_eq!(selection.keep.len() + selection.delete.len(), backups.len());
        }

        #[test]
        fn applying_the_policy_twice_deletes_nothing_more(backups in histories(), policy in policies()) {
            let first = select(&backups, &policy, NOW);
            let survivors: Vec<Candidate> = backups
                .iter()
                .filter(|b| !first.delete.contains(&b.id))
                .cloned()
                .collect();
            let second = select(&survivors, &policy, NOW);
            prop_assert!(second.delete.is_empty(), "second pass deleted {:?}", second.delete);
            prop_assert_eq!(first.keep, second.keep);
        }

        #[test]
        fn every_kept_backup_is_explained_by_a_rule(backups in histories(), policy in policies()) {
            let selection = select(&backups, &policy, NOW);
            for (id, reasons) in &selection.keep {
                prop_assert!(!reasons.is_empty(), "{} kept without a reason", id);
                let backup = backups.iter().find(|b| &b.id == id).unwrap();
                for reason in reasons {
                    // The reason holds: it is the newest of its period, or within the last N.
                    let newer: Vec<&Candidate> = backups.iter().filter(|b| (b.taken_at, &b.id) > (backup.taken_at, &backup.id)).collect();
                    match reason {
                        Reason::Last => prop_assert!(newer.len() < policy.last),
                        Reason::NewestBackup => prop_assert!(newer.is_empty()),
                        Reason::NewestVerified => prop_assert!(backup.restore_verified && newer.iter().all(|b| !b.restore_verified)),
                        Reason::FromTheFuture => prop_assert!(false, "nothing is in the future here"),
                        periodic => {
                            let mine = period(*periodic, backup.taken_at);
                            prop_assert!(newer.iter().all(|b| period(*periodic, b.taken_at) != mine));
                        }
                    }
                }
            }
            for id in &selection.delete {
                prop_assert!(!selection.keep.iter().any(|(k, _)| k == id));
            }
        }
    }
}
