//! Tables proven unchanged since the previous set, so that an incremental backup names their
//! data instead of reading it. The proof is PostgreSQL's WAL summaries (17 and later, with
//! `summarize_wal` on): they say which blocks of which relation files WAL records wrote
//! between two positions. A table is proven unchanged when
//! - the previous set was taken on the same server and database, on the same timeline, and
//!   recorded the table's files (heap and TOAST) and its WAL positions;
//! - the table has the same files now (a rewrite, TRUNCATE, VACUUM FULL or CLUSTER gives new
//!   ones), the same columns, is logged (an unlogged table writes no WAL) and is not an
//!   extension's configuration table;
//! - the summaries cover, without a gap and on one timeline, everything from the WAL position
//!   read before the previous set's snapshot to the one read after this set's, after a
//!   checkpoint the summarizer has reached, and name no block of the table's files nor a
//!   database-wide change;
//! - every transaction that held an xid when the previous set read its WAL position, and that
//!   its snapshot does not see, has since aborted (one that committed may have made rows
//!   visible that the previous set does not hold, without writing a block after it). A
//!   snapshot's list of transactions in progress is not enough: it leaves out those at or
//!   past its `xmax`, so the running ones are read from `pg_stat_activity` and
//!   `pg_prepared_xacts`, by a role that sees every session's (`pg_read_all_stats`).
//!
//! Any doubt means read: each condition that does not hold is one reason said in the log,
//! and every table is then read as in a full backup.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use tokio_postgres::Client;

use super::BackupError;
use crate::catalog::DataTable;
use crate::manifest::{Manifest, Part, Proof, TableStorage, WalOrigin};
use crate::stream::segment::{Lsn, Snapshot, widen_xid};
use backstop_pg::version::ServerVersion;
use backstop_pg::{PgTarget, connect, describe, value};

/// How long a backup waits for the WAL summarizer to reach its snapshot.
const SUMMARIZER_WAIT: Duration = Duration::from_secs(30);
/// How long each statement of the proof may run (a checkpoint, reading the summaries).
const PROOF_STATEMENT_LIMIT: Duration = Duration::from_secs(120);

/// Where the server stands, read before the snapshot is taken (the ceiling is set after it).
pub(super) async fn origin_before_snapshot(
    leader: &Client,
    version: ServerVersion,
) -> Option<WalOrigin> {
    // Where the server summarizes its WAL, a checkpoint now ends a summary here: the next
    // backup's proof then starts at this backup, not at whatever checkpoint came before.
    if version.at_least(17) {
        let summarizing = leader
            .query_one("SELECT current_setting('summarize_wal', true) = 'on'", &[])
            .await
            .ok()
            .and_then(|row| value::<Option<bool>>(&row, 0).ok().flatten())
            .unwrap_or(false);
        if summarizing && let Err(e) = leader.batch_execute("CHECKPOINT").await {
            tracing::info!(reason = %describe(&e), "no checkpoint before the snapshot: a later backup reads every table");
            return None;
        }
    }
    // The position first, then the transactions running: one that wrote before the position
    // held its xid then, so it is still running (listed) or has ended, visibly to the
    // snapshot taken after.
    let row = leader
        .query_one(
            "SELECT pg_catalog.pg_current_wal_insert_lsn()::text, \
             (SELECT system_identifier::text FROM pg_catalog.pg_control_system()), \
             (SELECT oid FROM pg_catalog.pg_database WHERE datname = pg_catalog.current_database())::int8, \
             (SELECT timeline_id FROM pg_catalog.pg_control_checkpoint())::int8, \
             pg_catalog.pg_snapshot_xmax(pg_catalog.pg_current_snapshot())::text::int8 \
             WHERE NOT pg_catalog.pg_is_in_recovery() \
             AND ((SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user) \
               OR pg_catalog.pg_has_role('pg_read_all_stats', 'MEMBER'))",
            &[],
        )
        .await;
    let row = match row {
        Ok(row) => row,
        Err(e) => {
            tracing::info!(reason = %describe(&e), "the WAL position is not recorded: a later backup reads every table");
            return None;
        }
    };
    let running = leader
        .query_one(
            "SELECT coalesce(pg_catalog.array_agg(x::text), '{}') FROM ( \
               SELECT backend_xid AS x FROM pg_catalog.pg_stat_activity WHERE backend_xid IS NOT NULL \
               UNION SELECT transaction FROM pg_catalog.pg_prepared_xacts) r",
            &[],
        )
        .await
        .ok()?;
    let running: Vec<String> = value(&running, 0).ok()?;
    let floor: String = value(&row, 0).ok()?;
    let floor: Lsn = floor.parse().ok()?;
    // 32-bit xids of transactions running now lie within 2^31 of the snapshot's xmax.
    let xmax = u64::try_from(value::<i64>(&row, 4).ok()?).ok()?;
    let reference = xmax + (1 << 31) - 1;
    let running_xids = running
        .iter()
        .map(|x| x.parse::<u32>().ok().map(|x| widen_xid(x, reference)))
        .collect::<Option<Vec<u64>>>()?;
    Some(WalOrigin {
        system_identifier: value(&row, 1).ok()?,
        database_oid: u32::try_from(value::<i64>(&row, 2).ok()?).ok()?,
        timeline: u32::try_from(value::<i64>(&row, 3).ok()?).ok()?,
        floor_lsn: floor,
        ceiling_lsn: floor,
        running_xids: Some(running_xids),
    })
}

/// The files of `tables` (by OID) as the snapshot sees them, with the digest of the catalog
/// rows that say how their bytes read as rows (and which key the change stream names their
/// rows by: the replica identity and the primary key), and whether each can be proven unchanged at
/// all: logged, and no column of a type whose text depends on other catalog rows than those
/// (a composite, whose attributes may change; a `reg*` type, which prints names).
pub(super) async fn storage(
    leader: &Client,
    tables: &[DataTable],
) -> Result<HashMap<u32, (TableStorage, bool)>, BackupError> {
    let oids: Vec<u32> = tables.iter().map(|t| t.oid).collect();
    let rows = leader
        .query(
            "SELECT c.oid, c.relfilenode, t.relfilenode, \
               c.relpersistence = 'p' AND NOT EXISTS ( \
                 SELECT FROM pg_catalog.pg_attribute a, pg_catalog.pg_type ty \
                 WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped \
                 AND ty.oid IN (a.atttypid, \
                   (SELECT typelem FROM pg_catalog.pg_type WHERE oid = a.atttypid), \
                   (SELECT typbasetype FROM pg_catalog.pg_type WHERE oid = a.atttypid)) \
                 AND (ty.typtype = 'c' OR (ty.typnamespace = 'pg_catalog'::pg_catalog.regnamespace \
                   AND ty.typname LIKE 'reg%'))), \
               pg_catalog.md5(c.xmin::text || '|' || coalesce(( \
                 SELECT pg_catalog.string_agg(a.attnum || ':' || a.xmin::text || ':' || a.atttypid || ':' || \
                   coalesce((SELECT pg_catalog.string_agg(e.xmin::text || '=' || e.enumlabel, ',' ORDER BY e.oid) \
                     FROM pg_catalog.pg_enum e WHERE e.enumtypid IN (a.atttypid, \
                       (SELECT typelem FROM pg_catalog.pg_type WHERE oid = a.atttypid), \
                       (SELECT typbasetype FROM pg_catalog.pg_type WHERE oid = a.atttypid))), ''), \
                   ';' ORDER BY a.attnum) \
                 FROM pg_catalog.pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0), '') \
               || '|' || c.relreplident::text || coalesce(( \
                 SELECT pg_catalog.string_agg(i.indexrelid || ':' || i.xmin::text, ',' ORDER BY i.indexrelid) \
                 FROM pg_catalog.pg_index i WHERE i.indrelid = c.oid AND (i.indisprimary OR i.indisreplident)), '')) \
             FROM pg_catalog.pg_class c LEFT JOIN pg_catalog.pg_class t ON t.oid = c.reltoastrelid \
             WHERE c.oid = ANY($1)",
            &[&oids],
        )
        .await
        .map_err(super::database("reading the tables' files"))?;
    let read = super::shape("reading the tables' files");
    let mut files = HashMap::new();
    for row in &rows {
        let oid: u32 = value(row, 0).map_err(&read)?;
        let relfilenode: u32 = value(row, 1).map_err(&read)?;
        let toast: Option<u32> = value(row, 2).map_err(&read)?;
        let provable: bool = value(row, 3).map_err(&read)?;
        let shape: String = value(row, 4).map_err(&read)?;
        files.insert(
            oid,
            (
                TableStorage {
                    relfilenode,
                    toast_relfilenode: toast,
                    shape: Some(shape),
                },
                provable,
            ),
        );
    }
    Ok(files)
}

/// What the WAL summaries say happened between two sets.
#[derive(Debug, Clone)]
pub(super) struct Summaries {
    pub since: String,
    pub from: Lsn,
    pub to: Lsn,
    /// `relfilenode`s with a main-fork block written in the range, in this database.
    pub written: HashSet<u32>,
}

/// The WAL summaries between `previous` and this set (`now`), or why there are none to go by.
pub(super) async fn summaries(
    pg: &PgTarget,
    leader: &Client,
    version: ServerVersion,
    previous: &Manifest,
    now: &WalOrigin,
) -> Result<Summaries, String> {
    let Some(then) = &previous.wal_origin else {
        return Err(format!(
            "backup {} did not record its WAL position",
            previous.backup_id
        ));
    };
    if !version.at_least(17) {
        return Err("WAL summaries need PostgreSQL 17 or later".into());
    }
    if (&then.system_identifier, then.database_oid, then.timeline)
        != (&now.system_identifier, now.database_oid, now.timeline)
    {
        return Err(format!(
            "backup {} was taken on another server, database or timeline",
            previous.backup_id
        ));
    }
    let (from, to) = (then.floor_lsn, now.ceiling_lsn);
    // A server put back to an earlier state (a volume snapshot) would read as no change.
    if from >= to {
        return Err(format!(
            "this backup's WAL position {to} is not after backup {}'s {from}",
            previous.backup_id
        ));
    }
    let on: String = leader
        .query_one("SELECT current_setting('summarize_wal')", &[])
        .await
        .map_err(|e| describe(&e))
        .and_then(|row| value(&row, 0))?;
    if on != "on" {
        return Err("summarize_wal is off".into());
    }
    // The proof's statements run on a session of their own, each bounded, outside the
    // snapshot (none of them needs it).
    let leader = &connect(pg).await.map_err(|e| e.to_string())?;
    leader
        .batch_execute(&format!(
            "SET statement_timeout = '{}s'",
            PROOF_STATEMENT_LIMIT.as_secs()
        ))
        .await
        .map_err(|e| describe(&e))?;
    committed_since(leader, previous).await?;
    // The summarizer ends a summary at a checkpoint's redo point: one after this snapshot
    // lets it reach the snapshot's position.
    leader
        .batch_execute("CHECKPOINT")
        .await
        .map_err(|e| format!("CHECKPOINT: {}", describe(&e)))?;
    let deadline = tokio::time::Instant::now() + SUMMARIZER_WAIT;
    loop {
        let row = leader
            .query_one(
                "SELECT summarized_lsn::text FROM pg_catalog.pg_get_wal_summarizer_state()",
                &[],
            )
            .await
            .map_err(|e| describe(&e))?;
        let reached: Lsn = value::<String>(&row, 0)?.parse()?;
        if reached >= to {
            break;
        }
        if tokio::time::Instant::now() > deadline {
            return Err(format!(
                "the WAL summarizer had not reached {to} after {} s",
                SUMMARIZER_WAIT.as_secs()
            ));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let range = format!(
        "w.end_lsn > '{from}'::pg_catalog.pg_lsn AND w.start_lsn < '{to}'::pg_catalog.pg_lsn"
    );
    let listed = leader
        .query(
            &format!(
                "SELECT w.tli::int8, w.start_lsn::text, w.end_lsn::text \
                 FROM pg_catalog.pg_available_wal_summaries() w WHERE {range} ORDER BY w.start_lsn"
            ),
            &[],
        )
        .await
        .map_err(|e| describe(&e))?;
    let mut spans = Vec::new();
    for row in &listed {
        let tli: i64 = value(row, 0)?;
        let start: Lsn = value::<String>(row, 1)?.parse()?;
        let end: Lsn = value::<String>(row, 2)?.parse()?;
        spans.push((tli, start, end));
    }
    if !covers(&spans, from, to, i64::from(now.timeline)) {
        return Err(format!(
            "the WAL summaries do not cover {from} to {to} without a gap (they are kept for \
             wal_summary_keep_time, 10 days by default)"
        ));
    }
    let written = leader
        .query(
            &format!(
                "SELECT DISTINCT s.relfilenode::int8 FROM pg_catalog.pg_available_wal_summaries() w, \
                 LATERAL pg_catalog.pg_wal_summary_contents(w.tli, w.start_lsn, w.end_lsn) s \
                 WHERE {range} AND s.reldatabase = {} AND s.relforknumber = 0",
                now.database_oid
            ),
            &[],
        )
        .await
        .map_err(|e| describe(&e))?;
    let mut files = HashSet::new();
    for row in &written {
        let file: i64 = value(row, 0)?;
        // Relation file 0: the database was created or dropped in the range (all files new).
        if file == 0 {
            return Err("the database's files were all replaced in the range".into());
        }
        files.insert(u32::try_from(file).map_err(|e| e.to_string())?);
    }
    Ok(Summaries {
        since: previous.backup_id.clone(),
        from,
        to,
        written: files,
    })
}

/// Fails when a transaction running as `previous` read its WAL position, and that its snapshot
/// does not see, may have committed since.
async fn committed_since(leader: &Client, previous: &Manifest) -> Result<(), String> {
    let snapshot = previous
        .snapshot
        .as_deref()
        .and_then(Snapshot::parse)
        .ok_or_else(|| format!("backup {} did not record its snapshot", previous.backup_id))?;
    let running = previous
        .wal_origin
        .as_ref()
        .and_then(|origin| origin.running_xids.as_deref())
        .ok_or_else(|| {
            format!(
                "backup {} did not record the transactions running",
                previous.backup_id
            )
        })?;
    let unseen = unseen(running, &snapshot);
    if unseen.is_empty() {
        return Ok(());
    }
    let xids: Vec<String> = unseen.iter().map(u64::to_string).collect();
    let row = leader
        .query_one(
            "SELECT count(*) FROM unnest($1::text[]) x \
             WHERE pg_catalog.pg_xact_status(x::pg_catalog.xid8) IS DISTINCT FROM 'aborted'",
            &[&xids],
        )
        .await
        .map_err(|e| describe(&e))?;
    match value::<i64>(&row, 0)? {
        0 => Ok(()),
        n => Err(format!(
            "{n} transaction(s) running as backup {} began did not abort",
            previous.backup_id
        )),
    }
}

/// The running transactions a snapshot does not see: in progress when it was taken, or not
/// yet completed (at or past its `xmax`).
pub(super) fn unseen(running: &[u64], snapshot: &Snapshot) -> Vec<u64> {
    running
        .iter()
        .copied()
        .filter(|xid| !snapshot.sees(*xid))
        .collect()
}

/// Whether `spans` (timeline, start, end; by start) cover `[from, to)` on `timeline` without a
/// gap.
fn covers(spans: &[(i64, Lsn, Lsn)], from: Lsn, to: Lsn, timeline: i64) -> bool {
    let mut reached = from;
    for (tli, start, end) in spans {
        if *tli != timeline || *start > reached {
            return false;
        }
        reached = reached.max(*end);
    }
    reached >= to
}

/// The previous set's parts this set can name as they are: every block of each is a table
/// proven unchanged (`tables` with their files now, `files`); each returned with its proof.
pub(super) fn reusable(
    previous: &Manifest,
    tables: &[DataTable],
    files: &HashMap<u32, (TableStorage, bool)>,
    summaries: &Summaries,
) -> Vec<Part> {
    let proof = Proof::WalSummary {
        since: summaries.since.clone(),
        from_lsn: summaries.from,
        to_lsn: summaries.to,
    };
    let written = |_: &crate::manifest::TablePart, storage: &TableStorage| {
        summaries.written.contains(&storage.relfilenode)
            || storage
                .toast_relfilenode
                .is_some_and(|toast| summaries.written.contains(&toast))
    };
    unchanged_parts(previous, tables, files, &written, proof)
}

/// The previous set's parts (chunked, of tables only) whose every block is of a table that
/// is still there with the same files and columns, can be proven unchanged at all, and that
/// `changed` does not say changed, each block marked with `proof`.
pub(super) fn unchanged_parts(
    previous: &Manifest,
    tables: &[DataTable],
    files: &HashMap<u32, (TableStorage, bool)>,
    changed: &dyn Fn(&crate::manifest::TablePart, &TableStorage) -> bool,
    proof: Proof,
) -> Vec<Part> {
    let now: BTreeMap<&str, &DataTable> = tables
        .iter()
        .map(|t| (t.qualified_name.as_str(), t))
        .collect();
    let unchanged = |block: &crate::manifest::TablePart| -> bool {
        let Some(table) = now.get(block.qualified_name.as_str()) else {
            return false;
        };
        let Some((storage, logged)) = files.get(&table.oid) else {
            return false;
        };
        *logged
            && table.extension_rows.is_none()
            && block.extension_rows.is_none()
            && table.columns == block.columns
            && block.storage.as_ref() == Some(storage)
            && !changed(block, storage)
    };
    // A table split into several parts goes whole or not at all.
    let mut whole: BTreeMap<&str, bool> = BTreeMap::new();
    for part in previous.parts.iter().filter(|p| p.is_chunked()) {
        for block in part.blocks() {
            let entry = whole.entry(block.qualified_name.as_str()).or_insert(true);
            *entry &= unchanged(block);
        }
    }
    previous
        .parts
        .iter()
        .filter(|p| p.is_chunked() && p.large_objects.is_none())
        .filter(|p| {
            p.blocks().next().is_some()
                && p.blocks()
                    .all(|b| whole.get(b.qualified_name.as_str()) == Some(&true))
        })
        .map(|p| {
            let mut part = p.clone();
            for block in part.table.iter_mut().chain(part.bundle.iter_mut()) {
                block.proof = Some(proof.clone());
            }
            part
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::{PartKind, TablePart};

    fn lsn(n: u64) -> Lsn {
        Lsn(n)
    }

    #[test]
    fn running_transactions_past_the_snapshots_xmax_are_unseen_too() {
        let snapshot = Snapshot::parse("740:740:").unwrap();
        assert_eq!(unseen(&[735, 740, 741], &snapshot), [740, 741]);
        let snapshot = Snapshot::parse("700:750:705,720").unwrap();
        assert_eq!(unseen(&[690, 705, 710, 760], &snapshot), [705, 760]);
    }

    #[test]
    fn summaries_must_cover_the_range_on_one_timeline() {
        let spans = [(1, lsn(10), lsn(50)), (1, lsn(50), lsn(90))];
        assert!(covers(&spans, lsn(20), lsn(80), 1));
        assert!(
            !covers(&spans, lsn(5), lsn(80), 1),
            "starts before the first"
        );
        assert!(!covers(&spans, lsn(20), lsn(95), 1), "ends after the last");
        assert!(!covers(&spans, lsn(20), lsn(80), 2), "another timeline");
        let gap = [(1, lsn(10), lsn(40)), (1, lsn(50), lsn(90))];
        assert!(!covers(&gap, lsn(20), lsn(80), 1));
        assert!(!covers(&[], lsn(20), lsn(80), 1));
    }

    fn table(oid: u32, name: &str) -> DataTable {
        DataTable {
            oid,
            schema: "public".into(),
            name: name.into(),
            qualified_name: format!("public.{name}"),
            columns: vec!["id".into()],
            bytes: 8192,
            pages: 1,
            extension_rows: None,
        }
    }

    fn block(name: &str, relfilenode: u32) -> TablePart {
        TablePart {
            qualified_name: format!("public.{name}"),
            schema: "public".into(),
            name: name.into(),
            columns: vec!["id".into()],
            rows: 1,
            row_digest: "0".repeat(32),
            blocks: None,
            storage: Some(TableStorage {
                relfilenode,
                toast_relfilenode: Some(relfilenode + 1),
                shape: Some("s".into()),
            }),
            proof: Some(Proof::Read),
            extension_rows: None,
        }
    }

    fn part(key: &str, blocks: Vec<TablePart>) -> Part {
        let chunk = crate::chunks::ChunkRef {
            id: "ab".repeat(32),
            bytes: 1,
            sha256: "00".repeat(32),
            plain_bytes: 1,
        };
        let (table, bundle) = match blocks.len() {
            1 => (blocks.into_iter().next(), Vec::new()),
            _ => (None, blocks),
        };
        Part {
            key: key.into(),
            order: 1,
            kind: PartKind::Data,
            bytes: 1,
            sha256: String::new(),
            table,
            bundle,
            large_objects: None,
            plain_bytes: Some(1),
            chunks: vec![chunk],
            deltas: None,
        }
    }

    #[test]
    fn only_parts_whose_every_table_is_proven_unchanged_are_named() {
        let previous = Manifest {
            parts: vec![
                part("data/0001.copy.chunks", vec![block("events", 100)]),
                part("data/0002.copy.chunks", vec![block("events", 100)]),
                part(
                    "data/0003.copy.chunks",
                    vec![block("small", 200), block("hot", 300)],
                ),
                part("data/0004.copy.chunks", vec![block("moved", 400)]),
                part("data/0005.copy.chunks", vec![block("wide", 500)]),
                part("data/0006.copy.chunks", vec![block("unlogged", 600)]),
                part("data/0007.copy.chunks", vec![block("reshaped", 700)]),
            ],
            ..crate::manifest::tests::empty()
        };
        let mut wide = table(5, "wide");
        wide.columns.push("added".into());
        let tables = [
            table(1, "events"),
            table(2, "small"),
            table(3, "hot"),
            table(4, "moved"),
            wide,
            table(6, "unlogged"),
            table(7, "reshaped"),
        ];
        let storage = |relfilenode: u32, logged: bool| {
            (
                TableStorage {
                    relfilenode,
                    toast_relfilenode: Some(relfilenode + 1),
                    shape: Some("s".into()),
                },
                logged,
            )
        };
        let files: HashMap<u32, (TableStorage, bool)> = [
            (1, storage(100, true)),
            (2, storage(200, true)),
            (3, storage(300, true)),
            (4, storage(444, true)),
            (5, storage(500, true)),
            (6, storage(600, false)),
            (
                7,
                (
                    TableStorage {
                        shape: Some("a column dropped and added".into()),
                        ..storage(700, true).0
                    },
                    true,
                ),
            ),
        ]
        .into();
        let summaries = Summaries {
            since: "20261206T000000Z-aaaa".into(),
            from: lsn(1),
            to: lsn(2),
            // The hot table's TOAST was written.
            written: [301, 999].into(),
        };
        let named = reusable(&previous, &tables, &files, &summaries);
        let keys: Vec<&str> = named.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(keys, ["data/0001.copy.chunks", "data/0002.copy.chunks"]);
        assert!(
            named
                .iter()
                .flat_map(|p| p.blocks())
                .all(|b| matches!(&b.proof, Some(Proof::WalSummary { since, .. }) if since == "20261206T000000Z-aaaa"))
        );
        // A table gone since is never named.
        let named = reusable(&previous, &tables[1..], &files, &summaries);
        assert!(named.iter().all(|p| p.blocks().all(|b| b.name != "events")));
    }
}
