//! What a drain reads from the source besides its changes: the slot, the schema fingerprint,
//! the tables decoding cannot carry exactly, and the sequences.

use std::collections::HashSet;

use tokio_postgres::Client;

use super::StreamError;
use super::decoding::TableName;
use super::segment::{Lsn, SequenceReading};
use crate::catalog::{USER_SCHEMA, ident, not_in_extension};
use backstop_pg::{describe, value};

pub(super) fn database(step: &'static str) -> impl Fn(tokio_postgres::Error) -> StreamError {
    move |e| StreamError::Database {
        step,
        reason: describe(&e),
    }
}

/// A row of a shape the code does not know (`pg::value`'s error).
pub(super) fn shape(step: &'static str) -> impl Fn(String) -> StreamError {
    move |reason| StreamError::Database { step, reason }
}

/// The slot as `pg_replication_slots` shows it.
#[derive(Debug, Clone)]
pub struct SlotState {
    pub plugin: Option<String>,
    pub database: Option<String>,
    pub confirmed_flush: Option<Lsn>,
    /// `reserved`, `extended`, `unreserved` or `lost`.
    pub wal_status: Option<String>,
    /// WAL the slot holds back: from its restart position to the current one.
    pub retained_bytes: Option<i64>,
    /// From its confirmed position to the current one.
    pub lag_bytes: Option<i64>,
}

pub async fn slot(client: &Client, name: &str) -> Result<Option<SlotState>, StreamError> {
    let step = "reading the replication slot";
    let row = client
        .query_opt(
            "SELECT plugin::text, database::text, confirmed_flush_lsn::text, wal_status, \
             (pg_catalog.pg_current_wal_lsn() - restart_lsn)::int8, \
             (pg_catalog.pg_current_wal_lsn() - confirmed_flush_lsn)::int8 \
             FROM pg_catalog.pg_replication_slots WHERE slot_name = $1",
            &[&name],
        )
        .await
        .map_err(database(step))?;
    let Some(row) = row else { return Ok(None) };
    let read = shape(step);
    let flush: Option<String> = value(&row, 2).map_err(&read)?;
    Ok(Some(SlotState {
        plugin: value(&row, 0).map_err(&read)?,
        database: value(&row, 1).map_err(&read)?,
        confirmed_flush: flush.and_then(|f| f.parse().ok()),
        wal_status: value(&row, 3).map_err(&read)?,
        retained_bytes: value(&row, 4).map_err(&read)?,
        lag_bytes: value(&row, 5).map_err(&read)?,
    }))
}

/// Frees `name` of a backend still holding it: an earlier drain's, which went on reading after
/// its client stopped (a server notices a vanished client only when it next writes to it).
/// Called with the stream's lease held, so no other drain is running; the leftover is
/// terminated and waited for, a few seconds at most.
pub async fn free_slot(client: &Client, name: &str) -> Result<(), StreamError> {
    let step = "freeing the replication slot of an earlier drain";
    let active = "SELECT active_pid FROM pg_catalog.pg_replication_slots \
                  WHERE slot_name = $1 AND active_pid IS NOT NULL AND active_pid <> pg_catalog.pg_backend_pid()";
    let Some(row) = client
        .query_opt(active, &[&name])
        .await
        .map_err(database(step))?
    else {
        return Ok(());
    };
    let pid: i32 = value(&row, 0).map_err(shape(step))?;
    tracing::warn!(
        slot = name,
        pid,
        "an earlier drain's backend still holds the slot; stopping it"
    );
    client
        .query("SELECT pg_catalog.pg_terminate_backend($1)", &[&pid])
        .await
        .map_err(database(step))?;
    for _ in 0..100 {
        if client
            .query_opt(active, &[&name])
            .await
            .map_err(database(step))?
            .is_none()
        {
            return Ok(());
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    Err(StreamError::Database {
        step,
        reason: format!("backend {pid} still holds slot {name} after it was asked to stop"),
    })
}

/// The schema as far as a replay depends on it and as far as a restore reproduces it: a hash
/// over schemas, relations and columns (types, defaults, identity, generation, replica
/// identity, privileges), constraints, indexes, triggers, functions, views, types and enum
/// labels, policies, sequence definitions, rules, extensions and default privileges. Any DDL
/// moves it; data changes, VACUUM, ANALYZE, TRUNCATE and REFRESH do not.
pub async fn fingerprint(client: &Client) -> Result<String, StreamError> {
    let user = USER_SCHEMA;
    let sql = format!(
        "SELECT pg_catalog.md5(COALESCE(pg_catalog.string_agg(x, E'\\n' ORDER BY x), '')) FROM (\n\
         SELECT concat_ws(' ', 'n', n.nspname, n.nspowner::pg_catalog.regrole, n.nspacl) \
           FROM pg_catalog.pg_namespace n WHERE {user}\n\
         UNION ALL SELECT concat_ws(' ', 'c', n.nspname, c.relname, c.relkind, c.relpersistence, c.relreplident, \
           c.relowner::pg_catalog.regrole, c.relacl, c.relrowsecurity, c.relforcerowsecurity, c.reloptions, c.relispartition) \
           FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
           WHERE {user} AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f', 'c')\n\
         UNION ALL SELECT concat_ws(' ', 'a', c.oid, a.attnum, a.attname, pg_catalog.format_type(a.atttypid, a.atttypmod), \
           a.attnotnull, a.attisdropped, a.attidentity, a.attgenerated, a.attcollation, \
           pg_catalog.pg_get_expr(d.adbin, d.adrelid), a.attacl) \
           FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_class c ON c.oid = a.attrelid \
           JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
           LEFT JOIN pg_catalog.pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum \
           WHERE {user} AND a.attnum > 0 AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'c')\n\
         UNION ALL SELECT concat_ws(' ', 'k', co.conrelid, co.contypid, co.conname, pg_catalog.pg_get_constraintdef(co.oid)) \
           FROM pg_catalog.pg_constraint co JOIN pg_catalog.pg_namespace n ON n.oid = co.connamespace WHERE {user}\n\
         UNION ALL SELECT concat_ws(' ', 'i', pg_catalog.pg_get_indexdef(i.indexrelid), i.indisreplident) \
           FROM pg_catalog.pg_index i JOIN pg_catalog.pg_class c ON c.oid = i.indexrelid \
           JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE {user}\n\
         UNION ALL SELECT concat_ws(' ', 't', t.tgrelid, t.tgname, t.tgenabled, pg_catalog.pg_get_triggerdef(t.oid)) \
           FROM pg_catalog.pg_trigger t JOIN pg_catalog.pg_class c ON c.oid = t.tgrelid \
           JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE {user} AND NOT t.tgisinternal\n\
         UNION ALL SELECT concat_ws(' ', 'f', p.oid::pg_catalog.regprocedure, \
           pg_catalog.md5(concat_ws(' ', p.prosrc, p.probin)), p.proowner::pg_catalog.regrole, p.proacl, \
           p.provolatile, p.prosecdef, p.proconfig) \
           FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace WHERE {user}\n\
         UNION ALL SELECT concat_ws(' ', 'v', c.oid, pg_catalog.md5(pg_catalog.pg_get_viewdef(c.oid))) \
           FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
           WHERE {user} AND c.relkind IN ('v', 'm')\n\
         UNION ALL SELECT concat_ws(' ', 'y', t.oid::pg_catalog.regtype, t.typowner::pg_catalog.regrole, t.typacl) \
           FROM pg_catalog.pg_type t JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace \
           WHERE {user} AND t.typtype IN ('b', 'd', 'e', 'm', 'r')\n\
         UNION ALL SELECT concat_ws(' ', 'e', e.enumtypid, e.enumsortorder, e.enumlabel) FROM pg_catalog.pg_enum e\n\
         UNION ALL SELECT concat_ws(' ', 'p', po.polrelid, po.polname, po.polcmd, po.polpermissive, \
           pg_catalog.pg_get_expr(po.polqual, po.polrelid), pg_catalog.pg_get_expr(po.polwithcheck, po.polrelid), po.polroles) \
           FROM pg_catalog.pg_policy po\n\
         UNION ALL SELECT concat_ws(' ', 's', s.seqrelid, s.seqtypid, s.seqstart, s.seqincrement, s.seqmax, s.seqmin, \
           s.seqcache, s.seqcycle) FROM pg_catalog.pg_sequence s\n\
         UNION ALL SELECT concat_ws(' ', 'r', r.ev_class, r.rulename, r.ev_enabled, pg_catalog.md5(pg_catalog.pg_get_ruledef(r.oid))) \
           FROM pg_catalog.pg_rewrite r WHERE r.rulename <> '_RETURN'\n\
         UNION ALL SELECT concat_ws(' ', 'x', x.extname, x.extversion) FROM pg_catalog.pg_extension x\n\
         UNION ALL SELECT concat_ws(' ', 'd', d.defaclrole, d.defaclnamespace, d.defaclobjtype, d.defaclacl) \
           FROM pg_catalog.pg_default_acl d\n\
         ) fingerprint(x)"
    );
    let row = client
        .query_one(&sql, &[])
        .await
        .map_err(database("reading the schema fingerprint"))?;
    value(&row, 0).map_err(shape("reading the schema fingerprint"))
}

/// Tables whose changes decoding cannot carry exactly.
#[derive(Debug, Clone, Default)]
pub struct Coverage {
    /// Without a replica identity: an UPDATE or DELETE does not say which row it changed.
    pub unidentified: HashSet<TableName>,
    /// Unlogged: their changes never reach the WAL (restores hold them as the base had them).
    pub unlogged: HashSet<TableName>,
}

pub async fn coverage(client: &Client) -> Result<Coverage, StreamError> {
    let step = "checking the tables' replica identity";
    let rows = client
        .query(
            &format!(
                "SELECT n.nspname::text, c.relname::text, c.relpersistence = 'u', \
                 CASE c.relreplident WHEN 'n' THEN false WHEN 'f' THEN true \
                   WHEN 'i' THEN EXISTS (SELECT 1 FROM pg_catalog.pg_index i WHERE i.indrelid = c.oid AND i.indisreplident) \
                   ELSE EXISTS (SELECT 1 FROM pg_catalog.pg_index i WHERE i.indrelid = c.oid AND i.indisprimary) END \
                 FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
                 WHERE {USER_SCHEMA} AND c.relkind = 'r' AND c.relpersistence <> 't' AND {}",
                not_in_extension("pg_class", "c.oid")
            ),
            &[],
        )
        .await
        .map_err(database(step))?;
    let mut coverage = Coverage::default();
    for row in rows {
        let read = shape(step);
        let table = TableName {
            schema: value(&row, 0).map_err(&read)?,
            name: value(&row, 1).map_err(&read)?,
        };
        let unlogged: bool = value(&row, 2).map_err(&read)?;
        let identified: bool = value(&row, 3).map_err(&read)?;
        if unlogged {
            coverage.unlogged.insert(table);
        } else if !identified {
            coverage.unidentified.insert(table);
        }
    }
    Ok(coverage)
}

/// Every user sequence's value now (after the drain's mark, so at least as far as any
/// transaction the drain stores).
pub async fn sequences(client: &Client) -> Result<Vec<SequenceReading>, StreamError> {
    let step = "reading the sequences";
    let rows = client
        .query(
            &format!(
                "SELECT n.nspname::text, c.relname::text, s.seqstart, \
                 pg_catalog.has_sequence_privilege(c.oid, 'SELECT,USAGE'), \
                 CASE WHEN pg_catalog.has_sequence_privilege(c.oid, 'SELECT,USAGE') \
                   THEN pg_catalog.pg_sequence_last_value(c.oid) END \
                 FROM pg_catalog.pg_sequence s JOIN pg_catalog.pg_class c ON c.oid = s.seqrelid \
                 JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
                 WHERE {USER_SCHEMA} AND c.relpersistence <> 't' AND {} ORDER BY 1, 2",
                not_in_extension("pg_class", "c.oid")
            ),
            &[],
        )
        .await
        .map_err(database(step))?;
    let mut readings = Vec::with_capacity(rows.len());
    for row in rows {
        let read = shape(step);
        let schema: String = value(&row, 0).map_err(&read)?;
        let name: String = value(&row, 1).map_err(&read)?;
        let start: i64 = value(&row, 2).map_err(&read)?;
        let allowed: bool = value(&row, 3).map_err(&read)?;
        let last: Option<i64> = value(&row, 4).map_err(&read)?;
        let sequence = format!("{}.{}", ident(&schema), ident(&name));
        if !allowed {
            return Err(StreamError::Privilege {
                what: format!("sequence {sequence}"),
                fix: format!("GRANT SELECT ON SEQUENCE {sequence} TO the role that drains"),
            });
        }
        readings.push(SequenceReading {
            sequence,
            last_value: last.unwrap_or(start),
            is_called: last.is_some(),
        });
    }
    Ok(readings)
}
