//! Which streamed transactions someone looking for the bad one should see first: a pure
//! ranking over the seals' transactions and the backups' row counts (`backstop incidents`).
//!
//! A transaction is listed when it deleted or updated a large share of a table, or truncated
//! one. Transactions that each deleted or updated rows of one table in quick succession, and
//! together a large share of it, are listed once, as a burst. A table that first appears in
//! the stream (absent from the backup before it, its first rows inserted) within minutes of a
//! mass delete of another table is listed beside it: rows copied aside, then deleted, or the
//! other way round.
//!
//! The share is of the rows the table held just before: the newest backup whose snapshot does
//! not hold the transaction gives the table's rows, and the streamed transactions after that
//! snapshot and before this one add their inserts and take away their deletes (a TRUNCATE
//! empties the table). Where no backup knows the table the share is unknown, and only a large
//! count is listed. Ordinary activity (small inserts, updates and deletes) is never listed.

use std::collections::BTreeMap;

use time::OffsetDateTime;

use super::decoding::TableName;
use super::segment::{Lsn, Snapshot, TableTouch, Transaction};
use crate::script::inert;

mod command;
mod patterns;
mod preview;
mod schema;
pub use command::{restore_command, restore_command_as_of, shell_quote};
pub use patterns::{
    BURST_MIN_AVERAGE, BURST_MIN_ROWS, BURST_TRANSACTIONS, BURST_WINDOW, NEW_TABLE_WINDOW,
};
pub use preview::{Action, ChangedRow, Preview, TablePreview, describe_columns, effects_of};
pub use schema::schema_incidents;

/// A transaction is a mass delete or update when it changed at least this share of a table...
pub const MASS_SHARE: f64 = 0.5;
/// ...and at least this many rows.
pub const MIN_MASS_ROWS: u64 = 10;
/// Rows a transaction must delete or update to be listed when the table's size is unknown.
pub const MIN_ROWS_SHARE_UNKNOWN: u64 = 1_000;
/// An update loses less than a delete: the row is still there.
const UPDATE_WEIGHT: f64 = 0.8;

/// A streamed transaction as the ranking reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Streamed {
    /// Full xid.
    pub xid: u64,
    pub commit_lsn: Lsn,
    pub committed_at: OffsetDateTime,
    /// The tables it touched; `None` when its seal predates per-table records (format 3), so
    /// nothing is known of what it did.
    pub tables: Option<Vec<TableTouch>>,
}

impl Streamed {
    /// A seal's transaction; `records_tables` is the seal's `Segment::records_tables`.
    pub fn of(transaction: &Transaction, records_tables: bool) -> Self {
        Self {
            xid: transaction.xid,
            commit_lsn: transaction.commit_lsn,
            committed_at: transaction.commit_time,
            tables: records_tables.then(|| transaction.tables.clone()),
        }
    }

    fn touch(&self, table: &str) -> Option<&TableTouch> {
        self.tables.as_ref()?.iter().find(|t| t.table == table)
    }
}

/// A backup as the ranking reads it: when, what its snapshot holds, and its tables' rows.
#[derive(Debug, Clone, PartialEq)]
pub struct BaseRows {
    pub backup_id: String,
    pub started_at: OffsetDateTime,
    pub snapshot: Snapshot,
    /// Rows per table, named as a seal names them (`TableName`'s Display); `None` when the
    /// backup's tables cannot be read (encrypted, and no identity given).
    pub rows: Option<BTreeMap<String, u64>>,
}

/// Why an incident is listed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pattern {
    MassDelete,
    MassUpdate,
    Truncate,
    Burst,
    NewTable,
    /// A table gone between two drains (`stream::relations`).
    DroppedTable,
    /// A table whose definition, name, privileges or storage changed.
    AlteredTable,
}

impl Pattern {
    /// The word `--json` writes.
    pub fn as_str(self) -> &'static str {
        match self {
            Pattern::MassDelete => "mass-delete",
            Pattern::MassUpdate => "mass-update",
            Pattern::Truncate => "truncate",
            Pattern::Burst => "burst",
            Pattern::NewTable => "new-table",
            Pattern::DroppedTable => "dropped-table",
            Pattern::AlteredTable => "altered-table",
        }
    }
}

/// What an incident did to one table.
#[derive(Debug, Clone, PartialEq)]
pub struct TableEffect {
    /// As a seal names it (quoted, schema-qualified).
    pub table: String,
    pub inserts: u64,
    pub updates: u64,
    pub deletes: u64,
    pub truncates: u64,
    /// The rows it held just before (estimated); `None`: unknown.
    pub rows_before: Option<u64>,
    /// The backup the estimate starts from.
    pub estimated_from_backup_id: Option<String>,
}

impl TableEffect {
    fn of(touch: &TableTouch, estimate: Option<Estimate>) -> Self {
        let (rows_before, estimated_from_backup_id) = match estimate {
            // The rows it deleted were there: an estimate below that is short of something.
            Some(estimate) => (
                Some(estimate.rows.max(touch.deletes)),
                Some(estimate.backup_id),
            ),
            None => (None, None),
        };
        Self {
            table: touch.table.clone(),
            inserts: touch.inserts,
            updates: touch.updates,
            deletes: touch.deletes,
            truncates: touch.truncates,
            rows_before,
            estimated_from_backup_id,
        }
    }

    /// The larger of the shares deleted and updated ([`Self::share_of`]): how much of the
    /// table one kind of change reached at least. `None` when the rows before are unknown.
    pub fn share(&self) -> Option<f64> {
        Some(
            self.share_of(self.deletes)?
                .max(self.share_of(self.updates)?),
        )
    }

    /// `count` rows over the rows the table held before, at most 1 (a row updated twice
    /// counts twice); `None` when the rows before are unknown.
    pub fn share_of(&self, count: u64) -> Option<f64> {
        let before = self.rows_before?;
        Some(match before {
            0 => f64::from(u8::from(count > 0)),
            before => (count as f64 / before as f64).min(1.0),
        })
    }

    /// `public.orders: 1200 deleted (100% of ~1200 rows)`, the name safe for a terminal.
    pub fn describe(&self) -> String {
        let mut done = Vec::new();
        if self.truncates > 0 {
            done.push("truncated".to_string());
        }
        let changed = self.deletes + self.updates > 0;
        // Each kind's own share, when both deleted and updated: they may be the same rows.
        let both = self.deletes > 0 && self.updates > 0;
        for (count, what) in [
            (self.deletes, "deleted"),
            (self.updates, "updated"),
            (self.inserts, "inserted"),
        ] {
            match self.share_of(count) {
                Some(share) if count > 0 && both && what != "inserted" => {
                    done.push(format!("{count} {what} ({})", percent(share)))
                }
                _ if count > 0 => done.push(format!("{count} {what}")),
                _ => {}
            }
        }
        let size = match (self.share(), self.rows_before) {
            (Some(_), Some(rows)) if both => format!(" of ~{rows} rows"),
            (Some(share), Some(rows)) if changed => {
                format!(" ({} of ~{rows} rows)", percent(share))
            }
            (_, Some(rows)) if self.truncates > 0 => format!(" (~{rows} rows)"),
            (None, _) if changed || self.truncates > 0 => " (share unknown)".to_string(),
            _ => String::new(),
        };
        format!("{}: {}{size}", inert(&self.table), done.join(", "))
    }
}

/// `57%`, rounded down (so only a whole table is `100%`).
pub fn percent(share: f64) -> String {
    format!("{}%", (share * 100.0).floor() as u64)
}

/// One finding, with what to restore.
#[derive(Debug, Clone, PartialEq)]
pub struct Incident {
    pub pattern: Pattern,
    /// How suspicious: higher first.
    pub score: f64,
    /// The transaction (a burst's first).
    pub xid: u64,
    pub commit_lsn: Lsn,
    pub committed_at: OffsetDateTime,
    /// A burst's transactions, in commit order (for the others, `xid` alone).
    pub xids: Vec<u64>,
    /// When a burst's last transaction committed.
    pub last_committed_at: Option<OffsetDateTime>,
    pub tables: Vec<TableEffect>,
    /// A new table's: the mass delete or TRUNCATE it appeared beside.
    pub related_xid: Option<u64>,
    /// Why it is listed, for people (names safe for a terminal).
    pub message: String,
    /// What brings back what it took: these tables as they were just before `before_xid`,
    /// or (a schema change, which no replay crosses) as of `restore_at`.
    pub restore_tables: Vec<String>,
    pub before_xid: u64,
    pub restore_at: Option<OffsetDateTime>,
}

/// The incidents among `transactions` committed at or after `since`, most suspicious first.
/// `transactions` may reach further back (they feed the estimates); `bases` are the backups
/// with a snapshot.
pub fn rank(transactions: &[Streamed], bases: &[BaseRows], since: OffsetDateTime) -> Vec<Incident> {
    let ledger = Ledger::new(transactions, bases);
    let mut incidents = Vec::new();
    let mut listed: Vec<(usize, &str)> = Vec::new();
    for (position, transaction) in transactions.iter().enumerate() {
        if transaction.committed_at < since {
            continue;
        }
        if let Some(incident) = ledger.judge(position) {
            listed.extend(
                incident
                    .tables
                    .iter()
                    .filter_map(|e| ledger.table_name(&e.table))
                    .map(|t| (position, t)),
            );
            incidents.push(incident);
        }
    }
    incidents.extend(ledger.bursts(since, &listed));
    let beside = ledger.new_tables(since, &incidents);
    incidents.extend(beside);
    incidents.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then(b.committed_at.cmp(&a.committed_at))
            .then(a.xid.cmp(&b.xid))
    });
    incidents
}

/// A table's rows just before a transaction, and the backup the count starts from.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Estimate {
    rows: u64,
    backup_id: String,
}

/// The transactions in commit order, indexed by the tables they touched.
struct Ledger<'a> {
    transactions: &'a [Streamed],
    bases: &'a [BaseRows],
    /// Per table, the positions of the transactions that touched it, ascending.
    touches: BTreeMap<&'a str, Vec<usize>>,
    /// Positions of the transactions whose tables are not recorded.
    unrecorded: Vec<usize>,
}

/// `1 + log10(1 + n)`: a thousand rows weigh four, one weighs one.
fn magnitude(rows: u64) -> f64 {
    1.0 + (1.0 + rows as f64).log10()
}

impl<'a> Ledger<'a> {
    fn new(transactions: &'a [Streamed], bases: &'a [BaseRows]) -> Self {
        let mut touches: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
        let mut unrecorded = Vec::new();
        for (position, transaction) in transactions.iter().enumerate() {
            match &transaction.tables {
                Some(tables) => {
                    for touch in tables {
                        touches
                            .entry(touch.table.as_str())
                            .or_default()
                            .push(position);
                    }
                }
                None => unrecorded.push(position),
            }
        }
        Self {
            transactions,
            bases,
            touches,
            unrecorded,
        }
    }

    fn table_name(&self, table: &str) -> Option<&'a str> {
        self.touches.get_key_value(table).map(|(name, _)| *name)
    }

    /// The newest backup whose rows are known and whose snapshot does not hold the transaction
    /// at `position`.
    fn base_before(&self, position: usize) -> Option<&'a BaseRows> {
        let transaction = &self.transactions[position];
        self.bases
            .iter()
            .filter(|base| {
                base.rows.is_some()
                    && !base.snapshot.sees(transaction.xid)
                    && base.started_at <= transaction.committed_at
            })
            .max_by_key(|base| base.started_at)
    }

    /// The rows `table` held just before the transaction at `position`.
    fn rows_before(&self, position: usize, table: &str) -> Option<Estimate> {
        let base = self.base_before(position)?;
        let mut rows = i128::from(*base.rows.as_ref()?.get(table)?);
        let unseen = |at: usize| !base.snapshot.sees(self.transactions[at].xid);
        // A transaction in between that recorded no tables may have changed this one.
        if self
            .unrecorded
            .iter()
            .any(|&at| at < position && unseen(at))
        {
            return None;
        }
        for &at in self.touches.get(table).into_iter().flatten() {
            if at >= position {
                break;
            }
            if !unseen(at) {
                continue;
            }
            let touch = self.transactions[at].touch(table)?;
            if touch.truncates > 0 {
                rows = 0;
            }
            rows = (rows + i128::from(touch.inserts) - i128::from(touch.deletes)).max(0);
        }
        Some(Estimate {
            rows: u64::try_from(rows).unwrap_or(u64::MAX),
            backup_id: base.backup_id.clone(),
        })
    }

    /// The transaction at `position` as an incident, if it is one.
    fn judge(&self, position: usize) -> Option<Incident> {
        let transaction = &self.transactions[position];
        let mut found: Vec<(f64, Pattern, TableEffect)> = Vec::new();
        for touch in transaction.tables.as_ref()? {
            let changed = touch.deletes + touch.updates;
            if touch.truncates == 0 && changed < MIN_MASS_ROWS {
                continue;
            }
            let effect = TableEffect::of(touch, self.rows_before(position, &touch.table));
            let weight = (touch.deletes as f64 + UPDATE_WEIGHT * touch.updates as f64)
                / changed.max(1) as f64;
            let judged = if touch.truncates > 0 {
                Some((
                    magnitude(effect.rows_before.unwrap_or(0).max(touch.deletes)),
                    Pattern::Truncate,
                ))
            } else {
                let pattern = match touch.deletes >= touch.updates {
                    true => Pattern::MassDelete,
                    false => Pattern::MassUpdate,
                };
                match effect.share() {
                    Some(share) if share >= MASS_SHARE => {
                        Some((weight * share * magnitude(changed), pattern))
                    }
                    None if changed >= MIN_ROWS_SHARE_UNKNOWN => {
                        Some((weight * MASS_SHARE * magnitude(changed), pattern))
                    }
                    _ => None,
                }
            };
            if let Some((score, pattern)) = judged {
                found.push((score, pattern, effect));
            }
        }
        found.sort_by(|a, b| b.0.total_cmp(&a.0));
        let (score, pattern, top) = found.first()?.clone();
        let others = match found.len() - 1 {
            0 => String::new(),
            1 => " and 1 other table".to_string(),
            n => format!(" and {n} other tables"),
        };
        let table = inert(&top.table);
        let (verb, count) = match pattern {
            Pattern::MassUpdate => ("updated", top.updates),
            _ => ("deleted", top.deletes),
        };
        let what = match (pattern, top.share_of(count)) {
            (Pattern::Truncate, _) => format!("TRUNCATE of {table}{others}"),
            (_, share) => match share {
                Some(share) => format!(
                    "one transaction {verb} {} of {table}{others}",
                    percent(share)
                ),
                None => format!(
                    "one transaction {verb} {count} rows of {table}{others} (share unknown: no \
                         backup before it holds the table's rows)"
                ),
            },
        };
        let tables: Vec<TableEffect> = found.into_iter().map(|(_, _, e)| e).collect();
        Some(Incident {
            pattern,
            score,
            xid: transaction.xid,
            commit_lsn: transaction.commit_lsn,
            committed_at: transaction.committed_at,
            xids: vec![transaction.xid],
            last_committed_at: None,
            restore_tables: tables.iter().map(|e| e.table.clone()).collect(),
            tables,
            related_xid: None,
            message: what,
            before_xid: transaction.xid,
            restore_at: None,
        })
    }
}

/// Tables' rows per name as a seal writes names, from a manifest's blocks (schema, name and
/// rows of each; a table split into blocks sums them).
pub fn rows_by_table<'a>(
    blocks: impl IntoIterator<Item = (&'a str, &'a str, u64)>,
) -> BTreeMap<String, u64> {
    let mut rows = BTreeMap::new();
    for (schema, name, count) in blocks {
        let table = TableName {
            schema: schema.to_string(),
            name: name.to_string(),
        };
        *rows.entry(table.to_string()).or_insert(0) += count;
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::Duration;
    use time::macros::datetime;

    pub(super) const T0: OffsetDateTime = datetime!(2026-12-01 10:00 UTC);

    pub(super) fn touch(
        table: &str,
        [inserts, updates, deletes, truncates]: [u64; 4],
    ) -> TableTouch {
        TableTouch {
            table: table.to_string(),
            inserts,
            updates,
            deletes,
            truncates,
        }
    }

    /// Transaction `xid`, committed `seconds` after T0.
    pub(super) fn tx(xid: u64, seconds: i64, tables: Vec<TableTouch>) -> Streamed {
        Streamed {
            xid,
            commit_lsn: Lsn(xid * 100),
            committed_at: T0 + Duration::seconds(seconds),
            tables: Some(tables),
        }
    }

    /// A backup taken `seconds` after T0 holding every xid below `xmax`.
    fn base(id: &str, seconds: i64, xmax: u64, rows: &[(&str, u64)]) -> BaseRows {
        BaseRows {
            backup_id: id.to_string(),
            started_at: T0 + Duration::seconds(seconds),
            snapshot: Snapshot {
                xmin: xmax,
                xmax,
                in_progress: Vec::new(),
            },
            rows: Some(rows.iter().map(|(t, n)| (t.to_string(), *n)).collect()),
        }
    }

    /// An application's day: orders placed and paid, accounts touched, a few rows cleaned up,
    /// a queue filled and drained one row at a time, a busy jobs table updated row by row.
    pub(super) fn ordinary_day() -> Vec<Streamed> {
        let mut day = Vec::new();
        for i in 0..2_000u64 {
            let xid = 1_000 + i;
            let seconds = i as i64 * 3;
            let tables = match i % 6 {
                0 => vec![touch("public.orders", [1 + i % 3, 0, 0, 0])],
                1 => vec![
                    touch("public.orders", [0, 1, 0, 0]),
                    touch("public.accounts", [0, 1, 0, 0]),
                ],
                2 => vec![touch("public.queue", [2, 0, 0, 0])],
                3 => vec![touch("public.queue", [0, 0, 1, 0])],
                4 => vec![touch("public.jobs", [0, 1, 0, 0])],
                _ => vec![
                    touch("public.sessions", [1, 0, 1 + i % 4, 0]),
                    touch("public.queue", [0, 0, 1, 0]),
                ],
            };
            day.push(tx(xid, seconds, tables));
        }
        day
    }

    pub(super) fn ordinary_bases() -> Vec<BaseRows> {
        vec![base(
            "b1",
            -60,
            1_000,
            &[
                ("public.orders", 1_200),
                ("public.accounts", 200),
                ("public.queue", 40),
                ("public.jobs", 30),
                ("public.sessions", 50),
                ("public.audit", 10_000),
            ],
        )]
    }

    #[test]
    fn an_ordinary_workload_lists_nothing() {
        let day = ordinary_day();
        assert_eq!(rank(&day, &ordinary_bases(), T0), Vec::new());
        // Nor without any backup to size the tables by.
        assert_eq!(rank(&day, &[], T0), Vec::new());
    }

    #[test]
    fn a_mass_delete_comes_first_with_its_share_and_restore() {
        let mut day = ordinary_day();
        // Mid-day: every order deleted; later, a third of the accounts updated.
        day.insert(
            1_000,
            tx(
                5_000,
                3_000,
                vec![
                    touch("public.audit", [1, 0, 0, 0]),
                    touch("public.orders", [0, 0, 1_300, 0]),
                ],
            ),
        );
        day.push(tx(
            5_001,
            7_000,
            vec![touch("public.accounts", [0, 150, 0, 0])],
        ));
        let found = rank(&day, &ordinary_bases(), T0);
        assert_eq!(found.len(), 2, "{found:#?}");
        let first = &found[0];
        assert_eq!(
            (first.pattern, first.xid, first.before_xid),
            (Pattern::MassDelete, 5_000, 5_000)
        );
        assert_eq!(first.restore_tables, vec!["public.orders".to_string()]);
        let [orders] = first.tables.as_slice() else {
            panic!("only the table it emptied: {first:?}")
        };
        // 1200 in the backup, plus the orders placed since (1 to 3 every sixth transaction).
        let placed: u64 = (0..1_000u64)
            .filter(|i| i % 6 == 0)
            .map(|i| 1 + i % 3)
            .sum();
        assert_eq!(orders.rows_before, Some(1_200 + placed));
        assert_eq!(
            orders.describe(),
            format!(
                "public.orders: 1300 deleted (95% of ~{} rows)",
                1_200 + placed
            )
        );
        assert_eq!(orders.estimated_from_backup_id.as_deref(), Some("b1"));
        assert!(first.message.contains("deleted"), "{}", first.message);
        assert_eq!(found[1].pattern, Pattern::MassUpdate);
        assert_eq!(
            found[1].tables[0].describe(),
            "public.accounts: 150 updated (75% of ~200 rows)"
        );
    }

    #[test]
    fn the_share_counts_the_base_and_the_streamed_changes_it_does_not_hold() {
        // The base holds xids below 10 but 8 (in progress at its snapshot).
        let mut b = base("b1", 0, 10, &[("public.t", 100)]);
        b.snapshot.xmin = 8;
        b.snapshot.in_progress = vec![8];
        let older = base("b0", -100, 5, &[("public.t", 1)]);
        let transactions = vec![
            tx(7, 1, vec![touch("public.t", [50, 0, 0, 0])]), // held by the base
            tx(8, 2, vec![touch("public.t", [30, 0, 5, 0])]), // not held: +25
            tx(11, 3, vec![touch("public.t", [10, 0, 0, 0])]), // +10
            tx(12, 4, vec![touch("public.t", [0, 0, 100, 0])]),
        ];
        let found = rank(&transactions, &[older.clone(), b.clone()], T0);
        let effect = &found[0].tables[0];
        assert_eq!(effect.rows_before, Some(135));
        assert_eq!(
            effect.describe(),
            "public.t: 100 deleted (74% of ~135 rows)"
        );
        assert_eq!(effect.estimated_from_backup_id.as_deref(), Some("b1"));

        // A TRUNCATE in between empties the count; what follows adds to it again.
        let mut truncated = transactions.clone();
        truncated.insert(3, tx(13, 3, vec![touch("public.t", [20, 0, 0, 1])]));
        let found = rank(&truncated, &[b.clone()], T0);
        let delete = found.iter().find(|i| i.xid == 12).unwrap();
        assert_eq!(delete.tables[0].rows_before, Some(100));

        // A backup that does not know the table: the share is unknown, and a hundred rows
        // are not many enough to list.
        let unknown = base("b1", 0, 10, &[("public.other", 5)]);
        assert!(rank(&transactions, std::slice::from_ref(&unknown), T0).is_empty());
        let mut many = transactions.clone();
        many[3] = tx(12, 4, vec![touch("public.t", [0, 0, 5_000, 0])]);
        let found = rank(&many, &[unknown], T0);
        assert_eq!(found[0].tables[0].rows_before, None);
        assert_eq!(
            found[0].tables[0].describe(),
            "public.t: 5000 deleted (share unknown)"
        );
        assert!(found[0].message.contains("share unknown"), "{found:?}");

        // A transaction in between whose seal records no tables leaves the count unknown.
        let mut blind = transactions;
        blind[2].tables = None;
        let found = rank(&blind, &[b], T0);
        assert!(found.is_empty(), "{found:?}");
    }

    #[test]
    fn a_truncate_is_listed_with_the_rows_it_took() {
        let mut day = ordinary_day();
        day.push(tx(
            6_000,
            8_000,
            vec![
                touch("public.accounts", [0, 0, 0, 1]),
                touch("public.sessions", [0, 0, 0, 1]),
            ],
        ));
        let found = rank(&day, &ordinary_bases(), T0);
        let [truncate] = found.as_slice() else {
            panic!("one incident: {found:#?}")
        };
        assert_eq!(truncate.pattern, Pattern::Truncate);
        assert_eq!(truncate.tables.len(), 2);
        assert_eq!(
            truncate.tables[0].describe(),
            "public.accounts: truncated (~200 rows)"
        );
        assert!(
            truncate
                .message
                .starts_with("TRUNCATE of public.accounts and 1 other table"),
            "{}",
            truncate.message
        );
        assert_eq!(
            truncate.restore_tables,
            vec!["public.accounts".to_string(), "public.sessions".to_string()]
        );
        // Before the window asked for, it is not listed.
        assert!(rank(&day, &ordinary_bases(), T0 + Duration::hours(3)).is_empty());
    }

    #[test]
    fn a_hostile_table_name_is_escaped_for_the_terminal() {
        let effect = TableEffect {
            table: "public.\"x\u{1b}[31m\"".into(),
            inserts: 0,
            updates: 0,
            deletes: 12,
            truncates: 0,
            rows_before: Some(12),
            estimated_from_backup_id: None,
        };
        assert_eq!(
            effect.describe(),
            "public.\"x\\u{1b}[31m\": 12 deleted (100% of ~12 rows)"
        );
    }

    #[test]
    fn rows_by_table_sums_the_blocks_of_each_table() {
        assert_eq!(
            rows_by_table([("public", "t", 3), ("app", "Users", 1), ("public", "t", 4)]),
            BTreeMap::from([
                ("app.\"Users\"".to_string(), 1),
                ("public.t".to_string(), 7)
            ])
        );
    }
}
