//! The incidents no single transaction makes: bursts (small deletes or updates of one table in
//! quick succession that together take a large share of it) and new tables (one that first
//! appears within minutes of a mass delete of another, a lead to where the rows went).

use time::{Duration, OffsetDateTime};

use super::super::segment::TableTouch;
use super::{
    Incident, Ledger, MASS_SHARE, MIN_ROWS_SHARE_UNKNOWN, Pattern, TableEffect, UPDATE_WEIGHT,
    magnitude, percent,
};
use crate::script::inert;

/// A burst: at least this many transactions changing rows of one table...
pub const BURST_TRANSACTIONS: usize = 5;
/// ...within this window, each within it of the one before...
pub const BURST_WINDOW: Duration = Duration::seconds(60);
/// ...that together deleted (net of the rows inserted meanwhile) or updated at least this many
/// rows...
pub const BURST_MIN_ROWS: u64 = 100;
/// ...at least this many a transaction on average (a queue's consumers delete one row at a
/// time, all day long).
pub const BURST_MIN_AVERAGE: u64 = 10;
/// A new table is listed beside a mass delete when its first rows came this close to it.
pub const NEW_TABLE_WINDOW: Duration = Duration::minutes(10);
/// A new table is a lead to the rows, not the harm itself.
const NEW_TABLE_WEIGHT: f64 = 0.5;

impl Ledger<'_> {
    /// Runs of transactions that each deleted or updated rows of one table, close together,
    /// and together a large share of it; `listed` are the (position, table) pairs already
    /// listed on their own.
    pub(super) fn bursts(&self, since: OffsetDateTime, listed: &[(usize, &str)]) -> Vec<Incident> {
        let mut bursts = Vec::new();
        for (&table, positions) in &self.touches {
            let members: Vec<usize> = positions
                .iter()
                .copied()
                .filter(|&at| {
                    let transaction = &self.transactions[at];
                    transaction.committed_at >= since
                        && !listed.contains(&(at, table))
                        && transaction
                            .touch(table)
                            .is_some_and(|t| t.deletes + t.updates > 0)
                })
                .collect();
            let time = |at: usize| self.transactions[at].committed_at;
            let mut runs: Vec<Vec<usize>> = Vec::new();
            for at in members {
                match runs.last_mut() {
                    Some(run)
                        if run
                            .last()
                            .is_some_and(|&l| time(at) - time(l) <= BURST_WINDOW) =>
                    {
                        run.push(at)
                    }
                    _ => runs.push(vec![at]),
                }
            }
            for run in runs {
                if let Some(burst) = self.burst(table, &run) {
                    bursts.push(burst);
                }
            }
        }
        bursts
    }

    fn burst(&self, table: &str, run: &[usize]) -> Option<Incident> {
        let time = |at: usize| self.transactions[at].committed_at;
        let dense = run.iter().enumerate().any(|(i, &first)| {
            run[i..]
                .iter()
                .take_while(|&&at| time(at) - time(first) <= BURST_WINDOW)
                .count()
                >= BURST_TRANSACTIONS
        });
        let (&first, &last) = (run.first()?, run.last()?);
        if !dense {
            return None;
        }
        let (mut deletes, mut updates, mut truncates) = (0, 0, 0);
        for &at in run {
            let touch = self.transactions[at].touch(table)?;
            deletes += touch.deletes;
            updates += touch.updates;
            truncates += touch.truncates;
        }
        // Rows inserted meanwhile, by any transaction: a queue that is filled as fast as it
        // is emptied loses nothing.
        let inserts: u64 = self.touches[table]
            .iter()
            .filter(|&&at| at >= first && at <= last)
            .filter_map(|&at| self.transactions[at].touch(table))
            .map(|t| t.inserts)
            .sum();
        let changed = deletes.saturating_sub(inserts) + updates;
        if changed < BURST_MIN_ROWS || (deletes + updates) / (run.len() as u64) < BURST_MIN_AVERAGE
        {
            return None;
        }
        let summed = TableTouch {
            table: table.to_string(),
            inserts,
            updates,
            deletes: deletes.saturating_sub(inserts),
            truncates,
        };
        let mut effect = TableEffect::of(&summed, self.rows_before(first, table));
        effect.deletes = deletes;
        let before = effect.rows_before;
        let share = before.map(|rows| match rows {
            0 => 1.0,
            rows => (changed as f64 / rows as f64).min(1.0),
        });
        let weight = (deletes as f64 + UPDATE_WEIGHT * updates as f64) / (deletes + updates) as f64;
        let score = match share {
            Some(share) if share >= MASS_SHARE => weight * share * magnitude(changed),
            None if changed >= MIN_ROWS_SHARE_UNKNOWN => weight * MASS_SHARE * magnitude(changed),
            _ => return None,
        };
        let (first_tx, last_tx) = (&self.transactions[first], &self.transactions[last]);
        let seconds = (last_tx.committed_at - first_tx.committed_at).whole_seconds();
        let what = match (deletes > 0, updates > 0) {
            (true, true) => "deleted or updated",
            (true, false) => "deleted",
            _ => "updated",
        };
        let of = match share {
            Some(share) => format!("{} of ~{} rows", percent(share), before.unwrap_or(0)),
            None => "share unknown".to_string(),
        };
        Some(Incident {
            pattern: Pattern::Burst,
            score,
            xid: first_tx.xid,
            commit_lsn: first_tx.commit_lsn,
            committed_at: first_tx.committed_at,
            xids: run.iter().map(|&at| self.transactions[at].xid).collect(),
            last_committed_at: Some(last_tx.committed_at),
            tables: vec![effect],
            related_xid: None,
            message: format!(
                "a burst: {} transactions in {seconds} s {what} {changed} rows of {} ({of})",
                run.len(),
                inert(table)
            ),
            restore_tables: vec![table.to_string()],
            before_xid: first_tx.xid,
            restore_at: None,
        })
    }

    /// Tables that first appear (no backup before holds them, their first rows inserted)
    /// close to a mass delete or TRUNCATE of another table among `incidents`.
    pub(super) fn new_tables(
        &self,
        since: OffsetDateTime,
        incidents: &[Incident],
    ) -> Vec<Incident> {
        let deletions: Vec<&Incident> = incidents
            .iter()
            .filter(|i| {
                matches!(i.pattern, Pattern::MassDelete | Pattern::Truncate)
                    || (i.pattern == Pattern::Burst && i.tables.iter().any(|t| t.deletes > 0))
            })
            .collect();
        if deletions.is_empty() {
            return Vec::new();
        }
        let mut found = Vec::new();
        for (&table, positions) in &self.touches {
            let Some(&first) = positions.first() else {
                continue;
            };
            let transaction = &self.transactions[first];
            let Some(touch) = transaction.touch(table) else {
                continue;
            };
            if transaction.committed_at < since || touch.inserts == 0 {
                continue;
            }
            let known = self
                .base_before(first)
                .and_then(|base| base.rows.as_ref())
                .is_some_and(|rows| !rows.contains_key(table));
            if !known {
                continue;
            }
            let near = deletions
                .iter()
                .filter(|d| d.tables.iter().all(|t| t.table != table))
                .filter(|d| (d.committed_at - transaction.committed_at).abs() <= NEW_TABLE_WINDOW)
                .min_by_key(|d| (d.committed_at - transaction.committed_at).abs());
            let Some(deletion) = near else {
                continue;
            };
            let gap = deletion.committed_at - transaction.committed_at;
            let deleted = deletion
                .tables
                .first()
                .map(|t| inert(&t.table))
                .unwrap_or_default();
            let deletion_is = match deletion.pattern {
                Pattern::Truncate => "the TRUNCATE",
                Pattern::Burst => "the burst of deletes",
                _ => "the mass delete",
            };
            let when = match gap.whole_seconds() {
                0 if deletion.xid == transaction.xid => "in the same transaction as".to_string(),
                s if s >= 0 => format!("{} before", span(gap)),
                _ => format!("{} after", span(-gap)),
            };
            let reading = match gap.is_negative() {
                false => "the rows may have been copied aside before they were deleted",
                true => "the deleted rows may have been put back in a new table",
            };
            found.push(Incident {
                pattern: Pattern::NewTable,
                score: NEW_TABLE_WEIGHT * deletion.score,
                xid: transaction.xid,
                commit_lsn: transaction.commit_lsn,
                committed_at: transaction.committed_at,
                xids: vec![transaction.xid],
                last_committed_at: None,
                tables: vec![TableEffect::of(touch, None)],
                related_xid: Some(deletion.xid),
                message: format!(
                    "{} first appeared (its first {} rows inserted) {when} {deletion_is} of \
                     {deleted} (xid {}): {reading}",
                    inert(table),
                    touch.inserts,
                    deletion.xid
                ),
                restore_tables: deletion.restore_tables.clone(),
                before_xid: deletion.before_xid,
                restore_at: deletion.restore_at,
            });
        }
        found
    }
}

/// `2 min 5 s`, `40 s`.
fn span(duration: Duration) -> String {
    let seconds = duration.whole_seconds();
    match seconds {
        s if s < 60 => format!("{s} s"),
        s => format!("{} min {} s", s / 60, s % 60),
    }
}

#[cfg(test)]
mod tests {
    use super::super::rank;
    use super::super::tests::{T0, ordinary_bases, ordinary_day, touch, tx};
    use super::*;

    #[test]
    fn a_burst_of_small_deletes_is_one_incident_before_its_first() {
        let mut day = ordinary_day();
        // Eight transactions of 150 deletes each, 5 s apart: none a large share alone.
        for n in 0..8 {
            day.push(tx(
                7_000 + n,
                9_000 + 5 * n as i64,
                vec![touch("public.orders", [0, 0, 150, 0])],
            ));
        }
        let found = rank(&day, &ordinary_bases(), T0);
        let [burst] = found.as_slice() else {
            panic!("one burst: {found:#?}")
        };
        assert_eq!(burst.pattern, Pattern::Burst);
        assert_eq!((burst.xid, burst.before_xid), (7_000, 7_000));
        assert_eq!(burst.xids, (7_000..7_008).collect::<Vec<u64>>());
        assert_eq!(burst.tables[0].deletes, 1_200);
        assert!(
            burst
                .message
                .contains("8 transactions in 35 s deleted 1200 rows of public.orders"),
            "{}",
            burst.message
        );

        // Spread over hours, the same deletes are no burst.
        let mut slow = ordinary_day();
        for n in 0..8 {
            slow.push(tx(
                7_000 + n,
                9_000 + 600 * n as i64,
                vec![touch("public.orders", [0, 0, 150, 0])],
            ));
        }
        assert!(rank(&slow, &ordinary_bases(), T0).is_empty());
    }

    #[test]
    fn a_new_table_beside_a_mass_delete_is_listed_after_it() {
        let mut day = ordinary_day();
        day.push(tx(
            8_000,
            9_000,
            vec![touch("public.orders_copy", [1_500, 0, 0, 0])],
        ));
        day.push(tx(
            8_001,
            9_090,
            vec![touch("public.orders", [0, 0, 1_600, 0])],
        ));
        let found = rank(&day, &ordinary_bases(), T0);
        assert_eq!(found.len(), 2, "{found:#?}");
        assert_eq!(found[0].pattern, Pattern::MassDelete);
        let new = &found[1];
        assert_eq!(new.pattern, Pattern::NewTable);
        assert_eq!((new.xid, new.related_xid), (8_000, Some(8_001)));
        // What to bring back is the deleted table, as it was before the delete.
        assert_eq!(
            (new.restore_tables.clone(), new.before_xid),
            (vec!["public.orders".to_string()], 8_001)
        );
        assert!(
            new.message
                .contains("1 min 30 s before the mass delete of public.orders"),
            "{}",
            new.message
        );

        // A table the backup already held is no new table; one far from any delete is not
        // listed either.
        let mut known = ordinary_day();
        known.push(tx(
            8_000,
            9_000,
            vec![touch("public.accounts", [1_500, 0, 0, 0])],
        ));
        known.push(tx(
            8_001,
            9_090,
            vec![touch("public.orders", [0, 0, 1_600, 0])],
        ));
        assert_eq!(rank(&known, &ordinary_bases(), T0).len(), 1);
        let mut far = ordinary_day();
        far.insert(
            334,
            tx(
                8_000,
                1_000,
                vec![touch("public.orders_copy", [1_500, 0, 0, 0])],
            ),
        );
        far.push(tx(
            8_001,
            9_090,
            vec![touch("public.orders", [0, 0, 1_600, 0])],
        ));
        assert_eq!(rank(&far, &ordinary_bases(), T0).len(), 1);
    }
}
