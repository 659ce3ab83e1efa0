//! Incidents from the schema changes the drains recorded: dropped tables first, altered ones
//! last, each restored as of the drain before it.

use time::OffsetDateTime;

use super::super::relations::SchemaChangeKind;
use super::super::segment::Segment;
use super::{Incident, Pattern, TableEffect};
use crate::script::inert;

/// How suspicious a dropped table is: above any mass delete short of a million rows.
const DROPPED_SCORE: f64 = 7.0;
/// How suspicious an altered table is: below every mass delete (a migration is routine).
const ALTERED_SCORE: f64 = 1.0;

/// The schema changes `segments` (in chain and LSN order) recorded since `since`: dropped and
/// altered tables. No replay crosses a schema change, so each is restored as of the drain
/// before it, the last moment the older schema is known. An alteration that is a TRUNCATE's
/// rewrite (the same transaction truncated the table) is the TRUNCATE's, listed on its own.
pub fn schema_incidents(segments: &[Segment], since: OffsetDateTime) -> Vec<Incident> {
    let mut found = Vec::new();
    // Every (xid, table) a TRUNCATE named, in whichever seal of the drain it is.
    let truncations: std::collections::HashSet<(u64, &str)> = segments
        .iter()
        .flat_map(|s| &s.transactions)
        .flat_map(|t| {
            t.tables
                .iter()
                .filter(|touch| touch.truncates > 0)
                .map(move |touch| (t.xid, touch.table.as_str()))
        })
        .collect();
    let mut previous_through: Option<OffsetDateTime> = None;
    for segment in segments {
        let before = previous_through;
        previous_through = Some(segment.through);
        if segment.through < since {
            continue;
        }
        for change in &segment.schema_changes {
            let truncated = |xid: u64, table: &str| truncations.contains(&(xid, table));
            let name = change.table.clone();
            let shown = name.as_deref().map_or_else(
                || "a table (its name is not kept for an encrypted stream)".to_string(),
                inert,
            );
            let between = match before {
                Some(before) => format!(
                    "between {} and {}",
                    rfc3339(before),
                    rfc3339(segment.through)
                ),
                None => format!("before {}", rfc3339(segment.through)),
            };
            let (pattern, score, message) = match change.change {
                SchemaChangeKind::Dropped => (
                    Pattern::DroppedTable,
                    DROPPED_SCORE,
                    format!("{shown} was dropped {between} (the drain after it found it gone)"),
                ),
                SchemaChangeKind::Altered
                    if change
                        .xid
                        .zip(name.as_deref())
                        .is_some_and(|(x, t)| truncated(x, t)) =>
                {
                    continue;
                }
                SchemaChangeKind::Altered => (
                    Pattern::AlteredTable,
                    ALTERED_SCORE,
                    format!(
                        "{shown} was altered {between}{} (its definition, name, privileges or \
                         storage changed)",
                        change
                            .xid
                            .map(|x| format!(" by transaction {x}"))
                            .unwrap_or_default()
                    ),
                ),
                SchemaChangeKind::Created => continue,
            };
            found.push(Incident {
                pattern,
                score,
                xid: change.xid.unwrap_or(0),
                commit_lsn: segment.start_lsn,
                committed_at: segment.through,
                xids: change.xid.into_iter().collect(),
                last_committed_at: None,
                tables: name
                    .iter()
                    .map(|table| TableEffect {
                        table: table.clone(),
                        inserts: 0,
                        updates: 0,
                        deletes: 0,
                        truncates: 0,
                        rows_before: None,
                        estimated_from_backup_id: None,
                    })
                    .collect(),
                related_xid: None,
                message: format!(
                    "{message}; no replay crosses a schema change, so the restore is of the \
                     drain before it{}",
                    match before {
                        Some(_) => "",
                        None => " (none is stored: restore a backup taken before it)",
                    }
                ),
                restore_tables: name.into_iter().collect(),
                before_xid: 0,
                restore_at: before,
            });
        }
    }
    found
}

fn rfc3339(time: OffsetDateTime) -> String {
    time.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}
