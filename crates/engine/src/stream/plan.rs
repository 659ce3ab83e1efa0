//! Which base backup and which change segments reach a recovery target: a pure decision over
//! the manifests' stream positions and the segments' seals.
//!
//! A base can be carried forward only by the chain of the slot that existed when it was
//! taken: the segments after the slot position it recorded, without a gap, and only while
//! their schema fingerprint is the base's (decoding carries no DDL, so a segment written after
//! a schema change cannot be replayed onto the older schema).

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::segment::{Lsn, Segment};

/// Where a base backup stands in its database's change stream (recorded in its manifest).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamPosition {
    pub slot: String,
    /// The slot's `confirmed_flush_lsn`, read before the snapshot: the changes after it are in
    /// segments not yet written or written after it.
    pub confirmed_flush_lsn: Lsn,
    /// The WAL position at the snapshot.
    pub wal_lsn: Lsn,
    /// A time at or after the snapshot: the earliest point the base can restore to.
    #[serde(with = "time::serde::rfc3339")]
    pub snapshot_at: OffsetDateTime,
    pub fingerprint: String,
}

/// What to recover to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecoveryTarget {
    /// The newest change streamed after the newest backup.
    Latest,
    /// Every transaction committed at or before this time.
    Time(OffsetDateTime),
    /// Every transaction whose commit record ends at or before this position.
    Lsn(Lsn),
}

impl RecoveryTarget {
    /// Whether a transaction committed at `time`/`lsn` belongs to the recovered state.
    pub fn includes(&self, time: OffsetDateTime, lsn: Lsn) -> bool {
        match self {
            RecoveryTarget::Latest => true,
            RecoveryTarget::Time(target) => time <= *target,
            RecoveryTarget::Lsn(target) => lsn <= *target,
        }
    }
}

/// A base that may start a recovery: its id and its stream position, if it has one.
#[derive(Debug, Clone)]
pub struct Base {
    pub backup_id: String,
    pub position: Option<StreamPosition>,
}

/// The chosen base and segments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecoveryPlan {
    pub backup_id: String,
    /// Indices into the segments given, in replay order.
    pub segments: Vec<usize>,
    /// The segment whose sequence readings end the replay.
    pub sequences_from: Option<usize>,
    /// The time the database is recovered to (for `Latest`: the newest recovery point).
    pub recovered_to: Option<OffsetDateTime>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error("no backup to recover from: take a backup first")]
    NoBackups,
    #[error(
        "no backup taken while the change stream ran is at or before {target}; the earliest \
         point to recover to is {earliest}"
    )]
    TooEarly { target: String, earliest: String },
    #[error(
        "{target} is past what the change stream holds from backup {backup_id}: it reaches \
         {reach}{why}; choose an earlier point, or run `backstop stream` to drain newer changes"
    )]
    BeyondReach {
        target: String,
        backup_id: String,
        reach: String,
        why: String,
    },
}

/// Picks the base and segments that reach `target`. `bases` are oldest first.
pub fn plan(
    bases: &[Base],
    segments: &[Segment],
    target: RecoveryTarget,
) -> Result<RecoveryPlan, PlanError> {
    let newest = bases.last().ok_or(PlanError::NoBackups)?;
    if target == RecoveryTarget::Latest {
        let Some(position) = &newest.position else {
            return Ok(RecoveryPlan {
                backup_id: newest.backup_id.clone(),
                segments: Vec::new(),
                sequences_from: None,
                recovered_to: None,
            });
        };
        let run = usable_run(segments, position);
        return Ok(RecoveryPlan {
            backup_id: newest.backup_id.clone(),
            sequences_from: run.segments.last().copied(),
            recovered_to: Some(
                run.segments
                    .last()
                    .map_or(position.snapshot_at, |&i| segments[i].through),
            ),
            segments: run.segments,
        });
    }
    let starts_before = |p: &StreamPosition| match target {
        RecoveryTarget::Time(t) => p.snapshot_at <= t,
        RecoveryTarget::Lsn(l) => p.wal_lsn <= l,
        RecoveryTarget::Latest => true,
    };
    let Some((base, position)) = bases
        .iter()
        .rev()
        .filter_map(|b| b.position.as_ref().map(|p| (b, p)))
        .find(|(_, p)| starts_before(p))
    else {
        let earliest = bases
            .iter()
            .filter_map(|b| b.position.as_ref())
            .map(|p| match target {
                RecoveryTarget::Lsn(_) => p.wal_lsn.to_string(),
                _ => rfc3339(p.snapshot_at),
            })
            .next()
            .unwrap_or_else(|| "none: no backup was taken while a change stream ran".into());
        return Err(PlanError::TooEarly {
            target: describe(target),
            earliest,
        });
    };
    let run = usable_run(segments, position);
    let reaches = |s: &Segment| match target {
        RecoveryTarget::Time(t) => s.through >= t,
        RecoveryTarget::Lsn(l) => s.end_lsn >= l,
        RecoveryTarget::Latest => false,
    };
    let Some(at) = run.segments.iter().position(|&i| reaches(&segments[i])) else {
        let reach = run.segments.last().map_or_else(
            || rfc3339(position.snapshot_at),
            |&i| match target {
                RecoveryTarget::Lsn(_) => segments[i].end_lsn.to_string(),
                _ => rfc3339(segments[i].through),
            },
        );
        return Err(PlanError::BeyondReach {
            target: describe(target),
            backup_id: base.backup_id.clone(),
            reach,
            why: run
                .ended_because
                .map(|w| format!(" ({w})"))
                .unwrap_or_default(),
        });
    };
    // The next segment may still hold a transaction that committed by the target but was
    // written to the WAL just after the drain's mark.
    let used = (at + 2).min(run.segments.len());
    Ok(RecoveryPlan {
        backup_id: base.backup_id.clone(),
        segments: run.segments[..used].to_vec(),
        sequences_from: Some(run.segments[at]),
        recovered_to: match target {
            RecoveryTarget::Time(t) => Some(t),
            _ => Some(segments[run.segments[at]].through),
        },
    })
}

/// The segments that carry a base forward, and why they stop where they do.
pub struct Run {
    /// Indices into the segments given, in replay order.
    pub segments: Vec<usize>,
    /// Why no later segment carries it, when one would be expected to.
    pub ended_because: Option<String>,
}

/// The segments that carry a base at `position` forward, in order.
pub fn usable_run(segments: &[Segment], position: &StreamPosition) -> Run {
    let flush = position.confirmed_flush_lsn;
    let same_slot = |s: &&Segment| s.slot == position.slot;
    let Some(chain) = segments
        .iter()
        .filter(same_slot)
        .find(|s| s.start_lsn <= flush && flush <= s.end_lsn)
        .map(|s| s.chain.clone())
    else {
        return Run {
            segments: Vec::new(),
            ended_because: Some("no segment of its slot covers its position yet".into()),
        };
    };
    let mut chain: Vec<usize> = (0..segments.len())
        .filter(|&i| segments[i].chain == chain && segments[i].end_lsn >= flush)
        .collect();
    chain.sort_by_key(|&i| (segments[i].start_lsn, segments[i].end_lsn));
    let mut run = Vec::new();
    let mut ended_because = None;
    let mut reached = flush;
    for i in chain {
        let segment = &segments[i];
        // Written before the base: its transactions are in the base but for a race with the
        // snapshot, so it is used only when its schema is the base's.
        let before_base = segment.end_lsn == flush;
        if segment.fingerprint != position.fingerprint {
            if before_base {
                continue;
            }
            ended_because = Some(format!(
                "the schema changed by {}: take a newer backup as the base",
                rfc3339(segment.through)
            ));
            break;
        }
        if !before_base && segment.start_lsn > reached {
            ended_because = Some(format!(
                "changes from {reached} to {} are missing",
                segment.start_lsn
            ));
            break;
        }
        reached = reached.max(segment.end_lsn);
        run.push(i);
    }
    Run {
        segments: run,
        ended_because,
    }
}

fn rfc3339(time: OffsetDateTime) -> String {
    time.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| time.to_string())
}

fn describe(target: RecoveryTarget) -> String {
    match target {
        RecoveryTarget::Latest => "the newest change".into(),
        RecoveryTarget::Time(t) => rfc3339(t),
        RecoveryTarget::Lsn(l) => format!("LSN {l}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::StoredFile;
    use crate::stream::segment::SEGMENT_FORMAT;
    use time::Duration;
    use time::macros::datetime;

    const T0: OffsetDateTime = datetime!(2026-12-01 10:00 UTC);

    fn segment(chain: &str, start: u64, end: u64, minutes: i64, fingerprint: &str) -> Segment {
        Segment {
            format_version: SEGMENT_FORMAT,
            engine_version: "test".into(),
            database_id: "main".into(),
            slot: "backstop_main".into(),
            chain: chain.into(),
            start_lsn: Lsn(start),
            end_lsn: Lsn(end),
            through: T0 + Duration::minutes(minutes),
            drained_at: T0 + Duration::minutes(minutes),
            fingerprint: fingerprint.into(),
            changes: StoredFile {
                key: String::new(),
                bytes: 0,
                sha256: String::new(),
            },
            plain_bytes: None,
            transaction_count: 0,
            change_count: 0,
            unreplayable: Vec::new(),
            transactions: Vec::new(),
            sequences: Vec::new(),
            schema_changes: Vec::new(),
            encryption: None,
            seal: None,
        }
    }

    fn base(id: &str, flush: u64, minutes: i64, fingerprint: &str) -> Base {
        Base {
            backup_id: id.into(),
            position: Some(StreamPosition {
                slot: "backstop_main".into(),
                confirmed_flush_lsn: Lsn(flush),
                wal_lsn: Lsn(flush + 1),
                snapshot_at: T0 + Duration::minutes(minutes),
                fingerprint: fingerprint.into(),
            }),
        }
    }

    fn at(minutes: i64) -> RecoveryTarget {
        RecoveryTarget::Time(T0 + Duration::minutes(minutes))
    }

    #[test]
    fn a_time_between_drains_uses_the_base_before_it_and_the_segments_up_to_it() {
        let segments = vec![
            segment("c", 0, 100, 0, "f"),
            segment("c", 100, 200, 5, "f"),
            segment("c", 200, 300, 10, "f"),
            segment("c", 300, 400, 15, "f"),
            segment("c", 400, 500, 20, "f"),
        ];
        let bases = vec![base("b1", 100, 1, "f")];
        let plan = plan(&bases, &segments, at(7)).unwrap();
        assert_eq!(plan.backup_id, "b1");
        // The segment ending at the base's position, the one reaching 7 minutes, one more.
        assert_eq!(plan.segments, vec![0, 1, 2, 3]);
        assert_eq!(plan.sequences_from, Some(2));

        let latest = super::plan(&bases, &segments, RecoveryTarget::Latest).unwrap();
        assert_eq!(latest.segments, vec![0, 1, 2, 3, 4]);
        assert_eq!(latest.recovered_to, Some(T0 + Duration::minutes(20)));
    }

    #[test]
    fn a_schema_change_ends_what_a_base_can_reach() {
        let segments = vec![
            segment("c", 0, 100, 0, "f"),
            segment("c", 100, 200, 5, "f"),
            segment("c", 200, 300, 10, "g"),
            segment("c", 300, 400, 15, "g"),
        ];
        let bases = vec![base("b1", 100, 1, "f"), base("b2", 300, 11, "g")];
        let Err(PlanError::BeyondReach { backup_id, why, .. }) = plan(&bases, &segments, at(8))
        else {
            panic!("8 minutes is past the schema change")
        };
        assert_eq!(backup_id, "b1");
        assert!(why.contains("schema changed"), "{why}");
        assert!(plan(&bases, &segments, at(4)).is_ok());
        // The newer base carries on, from the segment that ends where it started.
        let plan = plan(&bases, &segments, at(14)).unwrap();
        assert_eq!((plan.backup_id.as_str(), plan.segments), ("b2", vec![2, 3]));
    }

    #[test]
    fn gaps_other_chains_and_targets_outside_the_stream_are_refused() {
        let segments = vec![
            segment("c", 0, 100, 0, "f"),
            segment("c", 200, 300, 10, "f"),
            segment("d", 100, 150, 20, "f"),
        ];
        let bases = vec![base("b1", 100, 1, "f")];
        let Err(PlanError::BeyondReach { why, .. }) = plan(&bases, &segments, at(9)) else {
            panic!("the gap stops the chain")
        };
        assert!(why.contains("missing"), "{why}");
        assert!(matches!(
            plan(&bases, &segments, at(-5)),
            Err(PlanError::TooEarly { .. })
        ));
        assert_eq!(
            plan(&[], &segments, RecoveryTarget::Latest),
            Err(PlanError::NoBackups)
        );
        // A base without a stream position restores as it is.
        let plain = vec![Base {
            backup_id: "b0".into(),
            position: None,
        }];
        let latest = plan(&plain, &segments, RecoveryTarget::Latest).unwrap();
        assert!(latest.segments.is_empty());
    }
}
