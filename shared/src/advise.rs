//! Index advice as a migration a DBA reviews and applies (`backstop advise`): one
//! `CREATE INDEX CONCURRENTLY IF NOT EXISTS` per foreign key that no index leads with, each on
//! its own so psql runs it outside a transaction; duplicate and unused indexes as commented-out
//! `DROP INDEX CONCURRENTLY` suggestions (never active); then `ANALYZE` of every touched table.
//!
//! [`read`] gathers the facts (read-only, simple queries, so it also runs through a
//! transaction-mode pooler), [`migration`] renders them (pure), [`Baseline`] is what `advise`
//! leaves in the store, and [`judge`] says, after the migration ran, whether every proposed
//! index exists and is valid and how much each was used since.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use tokio_postgres::Client;

use crate::engine::catalog::ident as quote;
use crate::engine::script::inert;
use crate::health::database::NO_LEADING_INDEX;
use crate::health::query::{USER_SCHEMAS, number, rows};
use crate::layout::{DatabaseId, STATE_PREFIX};
use crate::units::human_bytes as size;

/// PostgreSQL's identifier limit, in bytes.
const NAME_LIMIT: usize = 63;

/// A foreign key whose columns no index leads with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MissingIndex {
    /// `schema.table`, quoted as needed.
    pub table: String,
    /// The constraint, unquoted.
    pub constraint: String,
    /// The referencing columns, unquoted, in key order.
    pub columns: Vec<String>,
    /// The proposed index's name (unquoted; see [`index_name`]).
    pub index: String,
    /// The referencing table's size on disk (all its partitions).
    pub table_bytes: u64,
    /// Rows times the columns' average width plus per-entry overhead, at 90% fill.
    pub estimated_index_bytes: u64,
    /// A partitioned table: `CONCURRENTLY` is not available, the build locks writes.
    pub partitioned: bool,
}

/// An index that could go, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DroppableIndex {
    /// `schema.index`, quoted as needed.
    pub index: String,
    pub table: String,
    pub bytes: u64,
    pub scans: u64,
    pub why: String,
}

/// What `advise` found in one database.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Advice {
    pub missing: Vec<MissingIndex>,
    pub droppable: Vec<DroppableIndex>,
}

#[derive(Debug, thiserror::Error)]
#[error("reading the index advice failed: {0}")]
pub struct AdviseError(String);

/// The predictable name of the index for `table`'s foreign-key `columns`:
/// `<table>_<col>[_<col>…]_fk_idx`, cut to PostgreSQL's 63 bytes with a hash of the whole
/// name when it is longer (so two long names never collide).
pub fn index_name(table: &str, columns: &[String]) -> String {
    use sha2::Digest as _;
    let full = format!("{table}_{}_fk_idx", columns.join("_"));
    if full.len() <= NAME_LIMIT {
        return full;
    }
    let hash = hex::encode(sha2::Sha256::digest(full.as_bytes()));
    let suffix = format!("_{}_fk_idx", &hash[..8]);
    let mut head = String::new();
    for c in full.chars() {
        if head.len() + c.len_utf8() + suffix.len() > NAME_LIMIT {
            break;
        }
        head.push(c);
    }
    head + &suffix
}

fn missing_query() -> String {
    format!(
        "SELECT quote_ident(n.nspname) || '.' || quote_ident(t.relname), t.relname, c.conname,
                string_agg(a.attname, chr(31) ORDER BY k.ord), (t.relkind = 'p')::text,
                -- A partitioned table's size is its partitions'; pg_partition_tree lists no
                -- rows for an ordinary table, whose own size it is.
                CASE WHEN t.relkind = 'p'
                     THEN (SELECT coalesce(sum(pg_relation_size(p.relid)), 0) FROM pg_partition_tree(t.oid) p)
                     ELSE pg_relation_size(t.oid) END::bigint,
                CASE WHEN t.relkind = 'p'
                     THEN (SELECT coalesce(sum(greatest(pc.reltuples, 0)), 0)
                             FROM pg_partition_tree(t.oid) p JOIN pg_class pc ON pc.oid = p.relid)
                     ELSE greatest(t.reltuples, 0) END::bigint,
                coalesce(sum(coalesce(s.avg_width, 8)), 8)::bigint
           FROM pg_constraint c
           JOIN pg_class t ON t.oid = c.conrelid
           JOIN pg_namespace n ON n.oid = t.relnamespace
           CROSS JOIN LATERAL unnest(c.conkey) WITH ORDINALITY AS k(attnum, ord)
           JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.attnum
           LEFT JOIN pg_stats s ON s.schemaname = n.nspname AND s.tablename = t.relname AND s.attname = a.attname
          WHERE c.contype = 'f' AND c.conparentid = 0 AND {USER_SCHEMAS}
            AND {NO_LEADING_INDEX}
          GROUP BY n.nspname, t.relname, t.oid, c.conname, t.relkind
          ORDER BY 1, 3"
    )
}

/// Indexes with the same table, columns, operator classes, expressions and predicate as an
/// earlier one; the one backing a constraint is kept.
fn duplicates_query() -> String {
    format!(
        "SELECT quote_ident(n.nspname) || '.' || quote_ident(ic.relname),
                quote_ident(n.nspname) || '.' || quote_ident(t.relname),
                pg_relation_size(i.indexrelid), coalesce(s.idx_scan, 0),
                quote_ident(n.nspname) || '.' || quote_ident(kc.relname)
           FROM pg_index i
           JOIN pg_class ic ON ic.oid = i.indexrelid
           JOIN pg_class t ON t.oid = i.indrelid
           JOIN pg_namespace n ON n.oid = t.relnamespace
           LEFT JOIN pg_stat_user_indexes s ON s.indexrelid = i.indexrelid
           JOIN LATERAL (
               SELECT k.indexrelid FROM pg_index k
                WHERE k.indrelid = i.indrelid AND k.indexrelid <> i.indexrelid
                  AND k.indkey::text = i.indkey::text AND k.indclass::text = i.indclass::text
                  AND coalesce(pg_get_expr(k.indexprs, k.indrelid), '') = coalesce(pg_get_expr(i.indexprs, i.indrelid), '')
                  AND coalesce(pg_get_expr(k.indpred, k.indrelid), '') = coalesce(pg_get_expr(i.indpred, i.indrelid), '')
                  AND (k.indisunique OR NOT i.indisunique)
                  AND (EXISTS (SELECT 1 FROM pg_constraint x WHERE x.conindid = k.indexrelid)
                       OR (NOT EXISTS (SELECT 1 FROM pg_constraint x WHERE x.conindid = i.indexrelid)
                           AND k.indexrelid < i.indexrelid))
                ORDER BY k.indexrelid LIMIT 1) keep ON true
           JOIN pg_class kc ON kc.oid = keep.indexrelid
          WHERE {USER_SCHEMAS} AND NOT EXISTS (SELECT 1 FROM pg_constraint x WHERE x.conindid = i.indexrelid)
          ORDER BY 1"
    )
}

/// Indexes never scanned since statistics were reset, that back no constraint.
fn unused_query() -> String {
    format!(
        "SELECT quote_ident(n.nspname) || '.' || quote_ident(ic.relname),
                quote_ident(n.nspname) || '.' || quote_ident(t.relname),
                pg_relation_size(i.indexrelid), s.idx_scan
           FROM pg_stat_user_indexes s
           JOIN pg_index i ON i.indexrelid = s.indexrelid
           JOIN pg_class ic ON ic.oid = i.indexrelid
           JOIN pg_class t ON t.oid = i.indrelid
           JOIN pg_namespace n ON n.oid = t.relnamespace
          WHERE s.idx_scan = 0 AND NOT i.indisunique AND NOT i.indisprimary AND {USER_SCHEMAS}
            AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = s.indexrelid)
          ORDER BY 3 DESC, 1"
    )
}

fn text(row: &[Option<String>], index: usize, name: &str) -> Result<String, String> {
    row.get(index)
        .cloned()
        .flatten()
        .ok_or_else(|| format!("the server returned no value for {name}"))
}

/// Reads the advice for the database `client` is connected to.
pub async fn read(client: &Client) -> Result<Advice, AdviseError> {
    let fail = AdviseError;
    let mut missing = Vec::new();
    for row in rows(client, &missing_query()).await.map_err(fail)? {
        let table_name = text(&row, 1, "the table")?;
        let columns: Vec<String> = text(&row, 3, "the key columns")?
            .split('\u{1f}')
            .map(str::to_string)
            .collect();
        let rows_estimate: u64 = number(row.get(6), "the row estimate").map_err(AdviseError)?;
        let width: u64 = number(row.get(7), "the key width").map_err(AdviseError)?;
        missing.push(MissingIndex {
            table: text(&row, 0, "the table")?,
            constraint: text(&row, 2, "the constraint")?,
            index: index_name(&table_name, &columns),
            columns,
            partitioned: text(&row, 4, "the table kind")? == "true",
            table_bytes: number(row.get(5), "the table size").map_err(AdviseError)?,
            estimated_index_bytes: ((rows_estimate * (width + 16)) as f64 / 0.9) as u64 + 8192,
        });
    }
    let mut droppable = Vec::new();
    let mut seen = BTreeSet::new();
    for row in rows(client, &duplicates_query()).await.map_err(fail)? {
        let index = text(&row, 0, "the index")?;
        seen.insert(index.clone());
        droppable.push(DroppableIndex {
            why: format!("duplicates {}", text(&row, 4, "the kept index")?),
            index,
            table: text(&row, 1, "the table")?,
            bytes: number(row.get(2), "the index size").map_err(AdviseError)?,
            scans: number(row.get(3), "the index scans").map_err(AdviseError)?,
        });
    }
    for row in rows(client, &unused_query()).await.map_err(fail)? {
        let index = text(&row, 0, "the index")?;
        if seen.contains(&index) {
            continue;
        }
        droppable.push(DroppableIndex {
            why: "never scanned since statistics were last reset".into(),
            index,
            table: text(&row, 1, "the table")?,
            bytes: number(row.get(2), "the index size").map_err(AdviseError)?,
            scans: number(row.get(3), "the index scans").map_err(AdviseError)?,
        });
    }
    Ok(Advice { missing, droppable })
}

impl From<String> for AdviseError {
    fn from(reason: String) -> Self {
        AdviseError(reason)
    }
}

/// The migration: a header, one statement per missing index, the drop suggestions commented
/// out, and `ANALYZE` of every table an index was proposed on. `database` and `at` go into the
/// header.
pub fn migration(advice: &Advice, database: &str, at: OffsetDateTime) -> String {
    // Names in `--` comments are made inert: a newline in one must not end the comment.
    let database = inert(database);
    let at = at
        .replace_nanosecond(0)
        .unwrap_or(at)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    let mut out = format!(
        "-- Index advice for database {database}, written by backstop advise at {at}.\n\
         -- Review it, then apply it with psql (each statement runs on its own, outside a\n\
         -- transaction, as CREATE INDEX CONCURRENTLY needs):\n\
         --   psql -v ON_ERROR_STOP=1 -f <this file>\n\
         -- Afterwards `backstop advise --check` confirms every index is there and valid.\n\n"
    );
    if advice.missing.is_empty() {
        out.push_str("-- Every foreign key has an index that leads with its columns.\n\n");
    }
    let mut touched = BTreeSet::new();
    for m in &advice.missing {
        touched.insert(m.table.clone());
        let columns: Vec<String> = m.columns.iter().map(|c| quote(c)).collect();
        out.push_str(&format!(
            "-- {table}: foreign key {constraint} ({cols}) has no index leading with its columns,\n\
             -- so a DELETE or key UPDATE on the referenced table scans all of {table} ({size}).\n\
             -- Estimated index size: {estimate}.\n",
            table = inert(&m.table),
            constraint = inert(&quote(&m.constraint)),
            cols = inert(&columns.join(", ")),
            size = size(m.table_bytes),
            estimate = size(m.estimated_index_bytes),
        ));
        if m.partitioned {
            out.push_str(
                "-- A partitioned table cannot be indexed CONCURRENTLY: this build blocks writes\n\
                 -- to it while it runs; schedule it for a quiet moment.\n",
            );
            out.push_str(&format!(
                "CREATE INDEX IF NOT EXISTS {} ON {} ({});\n\n",
                quote(&m.index),
                m.table,
                columns.join(", ")
            ));
        } else {
            out.push_str(&format!(
                "CREATE INDEX CONCURRENTLY IF NOT EXISTS {} ON {} ({});\n\n",
                quote(&m.index),
                m.table,
                columns.join(", ")
            ));
        }
    }
    if !advice.droppable.is_empty() {
        out.push_str(
            "-- Indexes that may be dropped (left commented out: check them against your\n\
             -- workload and every replica's statistics before dropping anything):\n",
        );
        for d in &advice.droppable {
            out.push_str(&format!(
                "-- {index} on {table}: {why}; {size}, {scans} scans.\n\
                 -- DROP INDEX CONCURRENTLY IF EXISTS {index};\n",
                index = inert(&d.index),
                table = inert(&d.table),
                why = inert(&d.why),
                size = size(d.bytes),
                scans = d.scans,
            ));
        }
        out.push('\n');
    }
    for table in &touched {
        out.push_str(&format!("ANALYZE {table};\n"));
    }
    out
}

/// The next migration's file name in a folder of numbered migrations (`00019_orders.sql` ⇒
/// `00020_add_missing_indexes.sql`), keeping their width; `00001_…` in an empty folder.
pub fn next_migration_name<'a>(existing: impl IntoIterator<Item = &'a str>) -> String {
    let numbered: Vec<(u64, usize)> = existing
        .into_iter()
        .filter_map(|name| {
            let digits: String = name.chars().take_while(char::is_ascii_digit).collect();
            let rest = &name[digits.len()..];
            (!digits.is_empty() && rest.starts_with('_'))
                .then(|| digits.parse().ok().map(|n| (n, digits.len())))
                .flatten()
        })
        .collect();
    let (last, width) = numbered
        .iter()
        .max_by_key(|(n, _)| *n)
        .copied()
        .unwrap_or((0, 5));
    format!("{:0width$}_add_missing_indexes.sql", last + 1)
}

/// What `advise` leaves in the store: the indexes it proposed, and every index's scan count
/// then, so `--check` can tell what was used since.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Baseline {
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// `schema.index` of each proposed index (quoted as needed).
    pub proposed: Vec<String>,
    /// `schema.index` → `idx_scan` when the advice was given.
    pub scans: BTreeMap<String, u64>,
}

/// `_backstop/advise/<database-id>/baseline.json`.
pub fn baseline_key(database: &DatabaseId) -> String {
    format!("{STATE_PREFIX}/advise/{database}/baseline.json")
}

/// The qualified name of a proposed index (it lives in its table's schema).
pub fn qualified_index(missing: &MissingIndex) -> String {
    let schema = missing
        .table
        .rsplit_once('.')
        .map(|(schema, _)| schema)
        .unwrap_or("public");
    format!("{schema}.{}", quote(&missing.index))
}

/// An index as it stands now.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IndexState {
    pub valid: bool,
    pub scans: u64,
}

/// Every user index's validity and scan count, by `schema.index`.
pub async fn index_states(client: &Client) -> Result<BTreeMap<String, IndexState>, AdviseError> {
    let sql = format!(
        "SELECT quote_ident(n.nspname) || '.' || quote_ident(ic.relname), i.indisvalid::text,
                coalesce(s.idx_scan, 0)
           FROM pg_index i
           JOIN pg_class ic ON ic.oid = i.indexrelid
           JOIN pg_namespace n ON n.oid = ic.relnamespace
           LEFT JOIN pg_stat_user_indexes s ON s.indexrelid = i.indexrelid
          WHERE {USER_SCHEMAS}"
    );
    let mut states = BTreeMap::new();
    for row in rows(client, &sql).await.map_err(AdviseError)? {
        states.insert(
            text(&row, 0, "the index")?,
            IndexState {
                valid: text(&row, 1, "the index's validity")? == "true",
                scans: number(row.get(2), "the index scans").map_err(AdviseError)?,
            },
        );
    }
    Ok(states)
}

/// One proposed index after the migration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Checked {
    pub index: String,
    pub state: CheckState,
    /// Scans since the baseline.
    pub scans_since: u64,
    /// What to do, when something is wrong.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CheckState {
    Valid,
    /// A failed `CONCURRENTLY` build leaves the index behind, INVALID: unused, but still
    /// maintained on every write.
    Invalid,
    Missing,
}

/// Judges each proposed index of `baseline` against the indexes `now`.
pub fn judge(baseline: &Baseline, now: &BTreeMap<String, IndexState>) -> Vec<Checked> {
    baseline
        .proposed
        .iter()
        .map(|index| {
            let since = |state: &IndexState| {
                state
                    .scans
                    .saturating_sub(baseline.scans.get(index).copied().unwrap_or(0))
            };
            match now.get(index) {
                Some(state) if state.valid => Checked {
                    index: index.clone(),
                    state: CheckState::Valid,
                    scans_since: since(state),
                    fix: None,
                },
                Some(state) => Checked {
                    index: index.clone(),
                    state: CheckState::Invalid,
                    scans_since: since(state),
                    fix: Some(format!(
                        "DROP INDEX CONCURRENTLY IF EXISTS {index}; then apply the migration again \
                         (its CREATE INDEX CONCURRENTLY failed or was cancelled)"
                    )),
                },
                None => Checked {
                    index: index.clone(),
                    state: CheckState::Missing,
                    scans_since: 0,
                    fix: Some("apply the migration: psql -v ON_ERROR_STOP=1 -f <file>".into()),
                },
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn missing(table: &str, columns: &[&str], partitioned: bool) -> MissingIndex {
        let columns: Vec<String> = columns.iter().map(|c| c.to_string()).collect();
        let name = table.rsplit_once('.').unwrap().1.trim_matches('"');
        MissingIndex {
            table: table.into(),
            constraint: format!("{name}_fkey"),
            index: index_name(name, &columns),
            columns,
            table_bytes: 8 << 20,
            estimated_index_bytes: 2 << 20,
            partitioned,
        }
    }

    #[test]
    fn index_names_are_predictable_and_fit_postgres() {
        assert_eq!(
            index_name("orders", &["customer_id".into()]),
            "orders_customer_id_fk_idx"
        );
        let long = index_name(&"t".repeat(60), &["a".into(), "b".into()]);
        assert_eq!(long.len(), NAME_LIMIT);
        assert!(long.ends_with("_fk_idx"));
        assert_ne!(long, index_name(&"t".repeat(60), &["a".into(), "c".into()]));
        assert_eq!(quote("Order Lines"), "\"Order Lines\"");
        assert_eq!(quote("orders"), "orders");
        assert_eq!(quote("user"), "\"user\"", "a keyword column is quoted");
    }

    #[test]
    fn the_migration_creates_each_index_on_its_own_and_analyzes_what_it_touched() {
        let advice = Advice {
            missing: vec![
                missing("public.orders", &["customer_id"], false),
                missing("public.orders", &["shop_id", "region"], false),
                missing("sales.\"Events\"", &["Account"], true),
            ],
            droppable: vec![DroppableIndex {
                index: "public.orders_old_idx".into(),
                table: "public.orders".into(),
                bytes: 4096,
                scans: 0,
                why: "duplicates public.orders_pkey".into(),
            }],
        };
        let sql = migration(&advice, "app", datetime!(2026-12-01 12:00 UTC));
        assert!(sql.contains(
            "CREATE INDEX CONCURRENTLY IF NOT EXISTS orders_customer_id_fk_idx ON public.orders (customer_id);"
        ));
        assert!(sql.contains(
            "CREATE INDEX CONCURRENTLY IF NOT EXISTS orders_shop_id_region_fk_idx ON public.orders (shop_id, region);"
        ));
        assert!(sql.contains(
            "CREATE INDEX IF NOT EXISTS \"Events_Account_fk_idx\" ON sales.\"Events\" (\"Account\");"
        ));
        assert!(sql.contains("-- DROP INDEX CONCURRENTLY IF EXISTS public.orders_old_idx;"));
        assert!(
            !sql.lines().any(|l| l.starts_with("DROP")),
            "drops stay commented out"
        );
        let analyzed: Vec<&str> = sql.lines().filter(|l| l.starts_with("ANALYZE")).collect();
        assert_eq!(
            analyzed,
            ["ANALYZE public.orders;", "ANALYZE sales.\"Events\";"]
        );
        assert!(!sql.contains("BEGIN"), "no transaction around CONCURRENTLY");
    }

    /// A name holding a newline and a psql meta-command stays inside its comment line; in a
    /// statement it stays inside its quotes, where psql reads no meta-command.
    #[test]
    fn hostile_names_cannot_end_a_comment_of_the_migration() {
        let hostile = "\"x\n\\! touch ran\n\"";
        let advice = Advice {
            missing: vec![missing(&format!("public.{hostile}"), &["a\nb"], false)],
            droppable: vec![DroppableIndex {
                index: format!("public.{hostile}"),
                table: format!("public.{hostile}"),
                bytes: 1,
                scans: 0,
                why: "unused".into(),
            }],
        };
        let sql = migration(
            &advice,
            "db\n\\! touch ran",
            datetime!(2026-12-01 12:00 UTC),
        );
        assert_eq!(
            crate::engine::script::meta_command(&sql),
            None,
            "psql would read a meta-command in:\n{sql}"
        );
        // Without the inert comments, the comment's newline would have let one through.
        let raw = format!("-- {hostile}\n");
        assert!(crate::engine::script::meta_command(&raw).is_some());
    }

    #[test]
    fn migrations_are_numbered_after_the_last_one() {
        assert_eq!(
            next_migration_name(["00019_orders.sql", "00002_init.sql", "README.md"]),
            "00020_add_missing_indexes.sql"
        );
        assert_eq!(
            next_migration_name(["7_x.sql"]),
            "8_add_missing_indexes.sql"
        );
        assert_eq!(
            next_migration_name(Vec::<&str>::new()),
            "00001_add_missing_indexes.sql"
        );
    }

    #[test]
    fn the_check_names_an_invalid_or_missing_index_with_its_fix() {
        let baseline = Baseline {
            at: datetime!(2026-12-01 12:00 UTC),
            proposed: vec![
                "public.a_fk_idx".into(),
                "public.b_fk_idx".into(),
                "public.c_fk_idx".into(),
            ],
            scans: BTreeMap::new(),
        };
        let now = BTreeMap::from([
            (
                "public.a_fk_idx".to_string(),
                IndexState {
                    valid: true,
                    scans: 12,
                },
            ),
            (
                "public.b_fk_idx".to_string(),
                IndexState {
                    valid: false,
                    scans: 0,
                },
            ),
        ]);
        let checked = judge(&baseline, &now);
        assert_eq!(
            checked.iter().map(|c| c.state).collect::<Vec<_>>(),
            [CheckState::Valid, CheckState::Invalid, CheckState::Missing]
        );
        assert_eq!(checked[0].scans_since, 12);
        assert!(
            checked[1]
                .fix
                .as_deref()
                .unwrap()
                .starts_with("DROP INDEX CONCURRENTLY IF EXISTS public.b_fk_idx")
        );
    }
}
