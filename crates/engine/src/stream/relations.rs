//! The schema changes a drain saw: tables created, altered or dropped since the drain before.
//!
//! Logical decoding carries no DDL. At its mark a drain lists the database's tables with the
//! xids that last wrote their catalog rows (`pg_class`, and the newest of their columns'
//! `pg_attribute` rows): a table that is new, whose rows were written again (ALTER TABLE,
//! a rename, GRANT, or a rewrite such as TRUNCATE, VACUUM FULL or CLUSTER) or that is gone is a
//! schema change, recorded in the drain's first seal with the xid that made it where the
//! catalog still holds it (a dropped table's row is gone: its drop happened between the two
//! drains). The listing is kept in the store between drains (`_backstop/stream/<database-id>/
//! tables.json`), by oid; table names are kept in it only when the stream is not encrypted, so an
//! encrypted stream's dropped tables are counted but not named.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use tokio_postgres::Client;

use super::StreamError;
use super::segment::{STREAM_FOLDER, widen_xid};
use super::source::{database, shape};
use crate::catalog::{USER_SCHEMA, not_in_extension};
use backstop_pg::value;
use backstop_store::layout::{DatabaseId, STATE_PREFIX};

/// What a schema change did to a table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SchemaChangeKind {
    Created,
    /// Its definition, name, privileges or storage changed.
    Altered,
    Dropped,
}

/// One table's schema change, as a seal records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SchemaChange {
    /// Quoted, schema-qualified; `None` for a dropped table of an encrypted stream (its name
    /// was never kept in the clear).
    pub table: Option<String>,
    pub change: SchemaChangeKind,
    /// The transaction that made it (full xid), when the catalog still says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub xid: Option<u64>,
}

/// One table as a drain saw it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeenTable {
    /// Kept only for a stream that is not encrypted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The 32-bit xid of its `pg_class` row.
    pub class_xmin: u32,
    /// A digest of its column rows' xids (any column changed, across xid wraparound too)...
    pub columns: String,
    /// ...and the newest of them (by age).
    pub columns_xmin: u32,
}

/// The tables the last drain saw, by oid.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Listing {
    pub tables: BTreeMap<u32, SeenTable>,
}

/// Where the listing is kept between drains: with Backstop's own state, the one place the
/// drain's role may overwrite.
pub fn state_key(database: &DatabaseId) -> String {
    format!("{STATE_PREFIX}/{STREAM_FOLDER}/{database}/tables.json")
}

/// The database's tables now, with their names (the caller leaves them out of what it keeps
/// for an encrypted stream), and a full xid assigned after every change they show (the
/// snapshot's xmax, read after them) to widen their xids against.
pub async fn list(client: &Client) -> Result<(Listing, u64), StreamError> {
    let step = "listing the tables for schema changes";
    let rows = client
        .query(
            &format!(
                "SELECT c.oid::int8, pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(c.relname), \
                 c.xmin::text::int8, \
                 COALESCE((SELECT a.xmin::text::int8 FROM pg_catalog.pg_attribute a \
                   WHERE a.attrelid = c.oid AND a.attnum > 0 ORDER BY pg_catalog.age(a.xmin) LIMIT 1), 0), \
                 (SELECT pg_catalog.md5(COALESCE(pg_catalog.string_agg(a.attnum || ':' || a.xmin::text, ',' \
                   ORDER BY a.attnum), '')) FROM pg_catalog.pg_attribute a \
                   WHERE a.attrelid = c.oid AND a.attnum > 0) \
                 FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
                 WHERE {USER_SCHEMA} AND c.relkind IN ('r', 'p') AND c.relpersistence <> 't' AND {}",
                not_in_extension("pg_class", "c.oid")
            ),
            &[],
        )
        .await
        .map_err(database(step))?;
    let mut listing = Listing::default();
    for row in rows {
        let read = shape(step);
        let oid: i64 = value(&row, 0).map_err(&read)?;
        let class_xmin: i64 = value(&row, 2).map_err(&read)?;
        let columns_xmin: i64 = value(&row, 3).map_err(&read)?;
        let (Ok(oid), Ok(class_xmin), Ok(columns_xmin)) = (
            u32::try_from(oid),
            u32::try_from(class_xmin),
            u32::try_from(columns_xmin),
        ) else {
            return Err(StreamError::Database {
                step,
                reason: "the server gave an oid or xid out of range".into(),
            });
        };
        listing.tables.insert(
            oid,
            SeenTable {
                name: Some(value(&row, 1).map_err(&read)?),
                class_xmin,
                columns: value(&row, 4).map_err(&read)?,
                columns_xmin,
            },
        );
    }
    let row = client
        .query_one(
            "SELECT pg_catalog.txid_snapshot_xmax(pg_catalog.txid_current_snapshot())",
            &[],
        )
        .await
        .map_err(database(step))?;
    let reference: i64 = value(&row, 0).map_err(shape(step))?;
    Ok((listing, reference.max(0) as u64))
}

/// The schema changes from `previous` to `current`, tables in name order (dropped unnamed ones
/// last). `reference` is a full xid assigned after every change ([`list`]'s) that the
/// catalog's 32-bit xids are widened against.
pub fn changes(previous: &Listing, current: &Listing, reference: u64) -> Vec<SchemaChange> {
    let mut found = Vec::new();
    for (oid, now) in &current.tables {
        let change = match previous.tables.get(oid) {
            None => Some((SchemaChangeKind::Created, now.class_xmin)),
            Some(before) if before.class_xmin != now.class_xmin => {
                Some((SchemaChangeKind::Altered, now.class_xmin))
            }
            Some(before) if before.columns != now.columns => {
                Some((SchemaChangeKind::Altered, now.columns_xmin))
            }
            Some(_) => None,
        };
        if let Some((change, xmin)) = change {
            found.push(SchemaChange {
                table: now.name.clone(),
                change,
                // A frozen or bootstrap xid says no transaction.
                xid: (xmin >= 3).then(|| widen_xid(xmin, reference)),
            });
        }
    }
    for (oid, before) in &previous.tables {
        if !current.tables.contains_key(oid) {
            found.push(SchemaChange {
                table: before.name.clone(),
                change: SchemaChangeKind::Dropped,
                xid: None,
            });
        }
    }
    found.sort_by(|a, b| (a.table.is_none(), &a.table).cmp(&(b.table.is_none(), &b.table)));
    found
}

/// `listing` as an encrypted stream keeps it: without names.
pub fn nameless(mut listing: Listing) -> Listing {
    for table in listing.tables.values_mut() {
        table.name = None;
    }
    listing
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(name: &str, class_xmin: u32, columns_xmin: u32) -> SeenTable {
        SeenTable {
            name: Some(name.into()),
            class_xmin,
            columns: format!("digest of {columns_xmin}"),
            columns_xmin,
        }
    }

    fn listing(tables: &[(u32, SeenTable)]) -> Listing {
        Listing {
            tables: tables.iter().cloned().collect(),
        }
    }

    #[test]
    fn new_rewritten_and_missing_tables_are_the_changes_with_their_xids() {
        let reference = (2_u64 << 32) + 500;
        let before = listing(&[
            (10, table("public.orders", 100, 90)),
            (11, table("public.accounts", 100, 100)),
            (12, table("public.old", 80, 80)),
            (13, table("public.same", 70, 70)),
        ]);
        let after = listing(&[
            (10, table("public.orders", 450, 90)),
            (11, table("public.accounts", 100, 460)),
            (13, table("public.same", 70, 70)),
            (14, table("public.copy", 470, 470)),
        ]);
        let found = changes(&before, &after, reference);
        let seen: Vec<(Option<&str>, SchemaChangeKind, Option<u64>)> = found
            .iter()
            .map(|c| (c.table.as_deref(), c.change, c.xid))
            .collect();
        let full = |xid: u64| Some((2_u64 << 32) + xid);
        assert_eq!(
            seen,
            [
                (
                    Some("public.accounts"),
                    SchemaChangeKind::Altered,
                    full(460)
                ),
                (Some("public.copy"), SchemaChangeKind::Created, full(470)),
                (Some("public.old"), SchemaChangeKind::Dropped, None),
                (Some("public.orders"), SchemaChangeKind::Altered, full(450)),
            ]
        );
        assert!(changes(&after, &after, reference).is_empty());
    }

    #[test]
    fn an_encrypted_streams_listing_keeps_no_name_and_its_drops_are_unnamed() {
        let before = nameless(listing(&[(12, table("public.secret", 80, 80))]));
        assert!(
            !serde_json::to_string(&before).unwrap().contains("secret"),
            "no name is kept"
        );
        let found = changes(&before, &Listing::default(), 1000);
        assert_eq!(found[0].table, None);
        assert_eq!(found[0].change, SchemaChangeKind::Dropped);
    }
}
