//! What the change stream says changed since the previous set, for an incremental backup on
//! a server whose stream runs (DESIGN.md, "Incremental backups").
//!
//! After its snapshot, the backup drains the stream itself (under the stream's lease), so the
//! segments reach past every transaction the snapshot sees. The segments that carry the
//! previous set forward (`stream::plan::usable_run`: its slot's chain from the position it
//! recorded, without a gap, on its schema) then name every table a transaction the previous
//! set does not see touched: each other table is proven unchanged and named without being
//! read. Of the touched ones, a table whose previous part can carry row deltas gets the keys
//! of its changed rows, read from the segments' changes; the copy then stores only those rows
//! (`engine::delta`). Later transactions, past this snapshot, only add tables and keys: more
//! is read, never less.
//!
//! Any doubt means read: no stream, an encrypted one (its seals' transactions are not for the
//! backup's eyes), a lease held too long by a drain, a chain that ends before the snapshot, a
//! seal older than the per-table records, a segment that does not read back as sealed.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use async_compression::tokio::bufread::ZstdDecoder;
use tokio::io::{AsyncBufReadExt as _, BufReader};
use tokio_postgres::Client;

use super::{BackupError, BackupOptions};
use crate::delta::Key;
use crate::manifest::{Manifest, Part};
use crate::stream::decoding::{self, Change, Decoded, TableName, Value};
use crate::stream::plan::{StreamPosition, usable_run};
use crate::stream::segment::{Lsn, STREAM_FOLDER, Segment, Snapshot, seal_keys};
use crate::stream::{self, StreamError, StreamOptions};
use backstop_pg::{PgTarget, value};
use backstop_store::store::Store;

/// How long a backup waits for a drain already running to end before it drains itself.
const DRAIN_WAIT: Duration = Duration::from_secs(90);
/// No table gets deltas for more changed keys than this in one backup: it is read whole.
const MAX_CHANGED_KEYS: usize = 2_000_000;
/// A table is read whole again once its deltas would hold more than this share of its base
/// rows' bytes (1/4), or more than this many bytes, or this many deltas.
const REBASE_SHARE: u64 = 4;
const REBASE_BYTES: u64 = 128 << 20;
/// A part's deltas never hold more than this (a restore holds them in memory, and refuses
/// more than `delta::MAX_DELTA_BYTES`): a delta that would take them past it is not stored,
/// and the table is stored whole instead.
pub(super) const MAX_DELTAS_BYTES: u64 = 256 << 20;
const MAX_DELTAS: usize = 24;

/// What the stream says about the tables since the previous set.
#[derive(Debug)]
pub(super) struct StreamChanges {
    pub since: String,
    pub from_lsn: Lsn,
    pub to_lsn: Lsn,
    /// Tables (as `TableName` displays them) touched by a transaction the previous set does
    /// not see, with whether one of them truncated it.
    pub touched: HashMap<String, bool>,
    previous_snapshot: Snapshot,
    run: Vec<Segment>,
}

impl StreamChanges {
    /// Whether the table `schema`.`name` may have changed.
    pub fn touches(&self, schema: &str, name: &str) -> bool {
        self.touched.contains_key(&display(schema, name))
    }

    /// Whether a TRUNCATE named the table (or it is not known to be untouched).
    pub fn truncated(&self, schema: &str, name: &str) -> bool {
        self.touched
            .get(&display(schema, name))
            .copied()
            .unwrap_or(true)
    }
}

/// A table's name as the decoded stream (and so a seal) writes it.
pub(super) fn display(schema: &str, name: &str) -> String {
    TableName {
        schema: schema.to_string(),
        name: name.to_string(),
    }
    .to_string()
}

/// Drains the stream and reads what it says changed since `previous`, or why it cannot say.
pub(super) async fn stream_changes(
    pg: &PgTarget,
    leader: &Client,
    store: &Arc<dyn Store>,
    options: &BackupOptions,
    previous: &Manifest,
    now: Option<&StreamPosition>,
    ceiling: Option<Lsn>,
) -> Result<StreamChanges, String> {
    let (Some(position), Some(now)) = (&previous.stream, now) else {
        return Err("no change stream ran at both sets".into());
    };
    if position.slot != now.slot {
        return Err("the change stream's slot is not the previous set's".into());
    }
    if options.recipients.is_some() {
        return Err(
            "the change stream is encrypted: its transactions are not read by a backup".into(),
        );
    }
    let previous_snapshot = previous
        .snapshot
        .as_deref()
        .and_then(Snapshot::parse)
        .ok_or("the previous set records no snapshot")?;
    let ceiling = ceiling.ok_or("the WAL position after the snapshot is unknown")?;
    let running = previous
        .wal_origin
        .as_ref()
        .and_then(|origin| origin.running_xids.as_deref())
        .ok_or("the previous set did not record the transactions running at its snapshot")?;
    let database = &options.database_id;
    let list = || async {
        let listing = store
            .list(&format!("{database}/{STREAM_FOLDER}/"))
            .await
            .map_err(|e| format!("listing the change stream: {e}"))?;
        Ok::<_, String>(seal_keys(database, listing.iter().map(|o| o.key.as_str())))
    };
    // An encrypted stream is drained by its own runs only: a backup's drain would add
    // segments in clear to it.
    if let Some(newest) = list().await?.last() {
        let seal = stream::read_seal(store.as_ref(), newest)
            .await
            .map_err(|e| e.to_string())?;
        if seal.encryption.is_some() {
            return Err(
                "the change stream is encrypted: its transactions are not read by a backup".into(),
            );
        }
    }
    drain(pg, store, options).await?;
    let keys = list().await?;
    let mut segments = Vec::new();
    for key in keys
        .iter()
        .filter(|k| ends_at_or_after(k, position.confirmed_flush_lsn))
    {
        segments.push(
            stream::read_seal(store.as_ref(), key)
                .await
                .map_err(|e| e.to_string())?,
        );
    }
    let run = usable_run(&segments, position);
    let reached = run
        .segments
        .iter()
        .map(|&i| segments[i].end_lsn)
        .max()
        .unwrap_or_default();
    if reached < ceiling {
        return Err(match run.ended_because {
            Some(why) => format!("the change stream does not reach this snapshot: {why}"),
            None => format!("the change stream reaches {reached}, not this snapshot ({ceiling})"),
        });
    }
    let mut kept = Vec::with_capacity(run.segments.len());
    let mut touched: HashMap<String, bool> = HashMap::new();
    for &index in &run.segments {
        let segment = &segments[index];
        if !segment.records_tables() {
            return Err(format!(
                "segment {} was sealed before seals named the tables of each transaction",
                segment.changes.key
            ));
        }
        if segment.encryption.is_some()
            || segment.transactions.len() as u64 != segment.transaction_count
        {
            return Err(format!(
                "segment {} does not say its transactions in clear",
                segment.changes.key
            ));
        }
        for transaction in segment
            .transactions
            .iter()
            .filter(|t| !previous_snapshot.sees(t.xid))
        {
            for touch in &transaction.tables {
                *touched.entry(touch.table.clone()).or_default() |= touch.truncates > 0;
            }
        }
        kept.push(segment.clone());
    }
    // A transaction running at the previous snapshot may have its commit written (and
    // drained) before the slot position that set read, yet be unseen by it: waiting for a
    // synchronous standby, a commit is in the WAL before it is visible. Each one that has
    // committed since must be among the transactions read here.
    let examined: HashSet<u64> = kept
        .iter()
        .flat_map(|s| s.transactions.iter().map(|t| t.xid))
        .collect();
    let unseen = super::unchanged::unseen(running, &previous_snapshot);
    if !unseen.is_empty() {
        let xids: Vec<String> = unseen.iter().map(u64::to_string).collect();
        let committed = leader
            .query(
                "SELECT x::int8 FROM pg_catalog.unnest($1::text[]) x \
                 WHERE pg_catalog.pg_xact_status(x::pg_catalog.xid8) = 'committed'",
                &[&xids],
            )
            .await
            .map_err(|e| backstop_pg::describe(&e))?;
        for row in &committed {
            let xid: i64 = value(row, 0)?;
            if !examined.contains(&(xid as u64)) {
                return Err(format!(
                    "transaction {xid}, running at the previous set's snapshot, committed where the \
                     stream segments read do not reach"
                ));
            }
        }
    }
    Ok(StreamChanges {
        since: previous.backup_id.clone(),
        from_lsn: position.confirmed_flush_lsn,
        to_lsn: reached,
        touched,
        previous_snapshot,
        run: kept,
    })
}

/// Whether a seal key's segment (`<chain>/<start>-<end>.json`) ends at or after `lsn`;
/// a key in another shape is kept (read, then judged by its seal).
fn ends_at_or_after(key: &str, lsn: Lsn) -> bool {
    let end = key
        .rsplit_once('/')
        .and_then(|(_, name)| name.strip_suffix(".json"))
        .and_then(|name| name.split_once('-'))
        .and_then(|(_, end)| u64::from_str_radix(end, 16).ok());
    end.is_none_or(|end| end >= lsn.0)
}

/// Drains the stream under its lease, waiting a while for a drain already running.
async fn drain(
    pg: &PgTarget,
    store: &Arc<dyn Store>,
    options: &BackupOptions,
) -> Result<(), String> {
    let mut drain_options = StreamOptions::new(options.database_id.clone());
    drain_options.interrupt = options.interrupt.clone();
    drain_options.silence_limit = options.silence_limit;
    drain_options.deadline = options.deadline;
    let waited = tokio::time::Instant::now();
    loop {
        match stream::drain_exclusively(pg, store.clone(), &drain_options, "backup").await {
            Ok(_) => return Ok(()),
            Err(StreamError::Lease(backstop_store::lease::LeaseError::Held { .. }))
                if waited.elapsed() < DRAIN_WAIT =>
            {
                tokio::time::sleep(Duration::from_secs(5)).await;
            }
            Err(e) => return Err(format!("draining the change stream: {e}")),
        }
    }
}

/// A table's replica identity key: its columns' names, unquoted and quoted, when every one
/// is of a type whose text the decoded stream and COPY write alike.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct IdentityKey {
    pub columns: Vec<String>,
    pub quoted: Vec<String>,
}

/// The replica identity keys of `oids` that deltas can use (the primary key under the default
/// identity, or the index the table names); tables without one are left out.
pub(super) async fn identity_keys(
    leader: &Client,
    oids: &[u32],
) -> Result<HashMap<u32, IdentityKey>, BackupError> {
    let step = "reading the tables' replica identities";
    let rows = leader
        .query(
            "SELECT c.oid, pg_catalog.array_agg(a.attname::text ORDER BY k.ord), \
               pg_catalog.array_agg(pg_catalog.quote_ident(a.attname) ORDER BY k.ord), \
               pg_catalog.bool_and(a.atttypid IN ('int2'::pg_catalog.regtype, 'int4'::pg_catalog.regtype, \
                 'int8'::pg_catalog.regtype, 'oid'::pg_catalog.regtype, 'numeric'::pg_catalog.regtype, \
                 'text'::pg_catalog.regtype, 'varchar'::pg_catalog.regtype, 'bpchar'::pg_catalog.regtype, \
                 'uuid'::pg_catalog.regtype, 'name'::pg_catalog.regtype)) \
             FROM pg_catalog.pg_class c \
             JOIN pg_catalog.pg_index i ON i.indrelid = c.oid \
               AND ((c.relreplident = 'd' AND i.indisprimary) OR (c.relreplident = 'i' AND i.indisreplident)) \
               AND i.indimmediate AND i.indisvalid AND i.indislive \
             CROSS JOIN LATERAL pg_catalog.unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord) \
             JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum \
             WHERE c.oid = ANY($1) AND k.ord <= i.indnkeyatts \
             GROUP BY c.oid",
            &[&oids],
        )
        .await
        .map_err(super::database(step))?;
    let read = super::shape(step);
    let mut keys = HashMap::new();
    for row in &rows {
        let oid: u32 = value(row, 0).map_err(&read)?;
        let columns: Vec<String> = value(row, 1).map_err(&read)?;
        let quoted: Vec<String> = value(row, 2).map_err(&read)?;
        let plain_types: bool = value(row, 3).map_err(&read)?;
        if plain_types && !columns.is_empty() {
            keys.insert(oid, IdentityKey { columns, quoted });
        }
    }
    Ok(keys)
}

/// How a touched table is carried into this set by its changed rows.
#[derive(Debug, Clone)]
pub(super) struct DeltaPlan {
    /// The previous set's part of the table (base rows and earlier deltas).
    pub previous: Part,
    /// The plain bytes of its deltas.
    pub previous_delta_bytes: u64,
    /// Key columns: indices into the part's block's columns.
    pub key: Vec<u32>,
    /// The replica identity columns, unquoted, in key order.
    pub key_columns: Vec<String>,
}

/// Whether `previous` (the previous set's parts of the table) can carry the table forward by
/// a delta: one part of its own holding the whole table as chunks, the same columns, a key
/// among them, and deltas still small beside the base (else it is read whole again).
pub(super) fn delta_plan(
    previous: &[&Part],
    columns: &[String],
    key: Option<&IdentityKey>,
    truncated: bool,
) -> Option<DeltaPlan> {
    let key = key?;
    let [part] = previous else { return None };
    let block = part.table.as_ref()?;
    if truncated
        || !part.is_chunked()
        || !part.bundle.is_empty()
        || part.large_objects.is_some()
        || block.blocks.is_some()
        || block.extension_rows.is_some()
        || block.columns != columns
    {
        return None;
    }
    let indices: Vec<u32> = key
        .quoted
        .iter()
        .map(|name| {
            block
                .columns
                .iter()
                .position(|c| c == name)
                .map(|i| i as u32)
        })
        .collect::<Option<_>>()?;
    if let Some(deltas) = &part.deltas
        && deltas.key != indices
    {
        return None;
    }
    let starts = part
        .deltas
        .as_ref()
        .map(|d| d.starts.as_slice())
        .unwrap_or(&[]);
    if starts.len() >= MAX_DELTAS {
        return None;
    }
    let base_chunks = starts.first().map_or(part.chunks.len(), |&s| s as usize);
    let base: u64 = part.chunks[..base_chunks]
        .iter()
        .map(|c| c.plain_bytes)
        .sum();
    let deltas: u64 = part.chunks[base_chunks..]
        .iter()
        .map(|c| c.plain_bytes)
        .sum();
    if deltas > base / REBASE_SHARE || deltas > REBASE_BYTES {
        return None;
    }
    Some(DeltaPlan {
        previous: (*part).clone(),
        previous_delta_bytes: deltas,
        key: indices,
        key_columns: key.columns.clone(),
    })
}

/// The tables the change stream says changed that can be carried by a delta on the previous
/// set's part, each with the keys of its changed rows. Any doubt leaves a table to be read
/// and stored whole.
#[allow(clippy::too_many_arguments)]
pub(super) async fn delta_units(
    leader: &Client,
    store: &Arc<dyn Store>,
    options: &BackupOptions,
    changes: &StreamChanges,
    previous: &Manifest,
    tables: &[crate::catalog::DataTable],
    files: &HashMap<u32, (crate::manifest::TableStorage, bool)>,
    named: &HashSet<&str>,
) -> Result<Vec<super::copy::DeltaUnit>, BackupError> {
    let candidates: Vec<&crate::catalog::DataTable> = tables
        .iter()
        .filter(|t| !named.contains(t.qualified_name.as_str()))
        .filter(|t| changes.touches(&t.schema, &t.name) && t.extension_rows.is_none())
        .collect();
    if candidates.is_empty() {
        return Ok(Vec::new());
    }
    let oids: Vec<u32> = candidates.iter().map(|t| t.oid).collect();
    let keys = identity_keys(leader, &oids).await?;
    let mut plans = BTreeMap::new();
    for table in candidates {
        let Some((storage, true)) = files.get(&table.oid) else {
            continue;
        };
        let parts: Vec<&Part> = previous
            .parts
            .iter()
            .filter(|p| p.blocks().any(|b| b.qualified_name == table.qualified_name))
            .collect();
        // The base rows must be these files' and read as they did (the same catalog rows say
        // how, and the same replica identity names them).
        if !parts
            .iter()
            .flat_map(|p| p.blocks())
            .all(|b| b.storage.as_ref() == Some(storage))
        {
            continue;
        }
        if let Some(plan) = delta_plan(
            &parts,
            &table.columns,
            keys.get(&table.oid),
            changes.truncated(&table.schema, &table.name),
        ) {
            plans.insert(display(&table.schema, &table.name), (table, plan));
        }
    }
    if plans.is_empty() {
        return Ok(Vec::new());
    }
    let wanted = plans
        .iter()
        .map(|(name, (_, plan))| (name.clone(), plan.key_columns.clone()))
        .collect();
    let mut found = match changed_keys(store.as_ref(), &options.database_id, changes, &wanted).await
    {
        Ok(found) => found,
        Err(reason) => {
            tracing::info!(%reason, "the changed rows could not be read from the change stream: changed tables are stored whole");
            return Ok(Vec::new());
        }
    };
    Ok(plans
        .into_iter()
        .filter_map(|(name, (table, plan))| {
            let keys = found.remove(&name)?;
            Some(super::copy::DeltaUnit {
                table: table.clone(),
                plan,
                keys,
            })
        })
        .collect())
}

/// The keys of the rows each of `tables` had changed by transactions the previous set does
/// not see, read from the run's segments. A table whose changes cannot say their keys (a
/// DELETE without its identity, an unchanged TOAST key, too many keys) is left out: read whole.
pub(super) async fn changed_keys(
    store: &dyn Store,
    database: &backstop_store::layout::DatabaseId,
    changes: &StreamChanges,
    tables: &BTreeMap<String, Vec<String>>,
) -> Result<HashMap<String, HashSet<Key>>, String> {
    let mut keys: HashMap<String, HashSet<Key>> =
        tables.keys().map(|t| (t.clone(), HashSet::new())).collect();
    let mut refused: HashSet<String> = HashSet::new();
    for segment in &changes.run {
        let wanted: HashSet<u64> = segment
            .transactions
            .iter()
            .filter(|t| !changes.previous_snapshot.sees(t.xid))
            .filter(|t| {
                t.tables
                    .iter()
                    .any(|touch| tables.contains_key(&touch.table))
            })
            .map(|t| t.xid)
            .collect();
        if wanted.is_empty() {
            continue;
        }
        read_segment(store, database, segment, &wanted, |change| {
            let Some(table) = change.tables().first().map(|t| t.to_string()) else {
                return;
            };
            let Some(key_columns) = tables.get(&table) else {
                return;
            };
            if refused.contains(&table) {
                return;
            }
            let set = keys.entry(table.clone()).or_default();
            let ok = match &change {
                Change::Insert { new, .. } => key_of(new, key_columns).map(|k| {
                    set.insert(k);
                }),
                // The old key is printed when the key changed; an old tuple without it means
                // the identity is not the key the delta goes by.
                Change::Update { old, new, .. } => {
                    let old = match old {
                        None => Some(None),
                        Some(old) => key_of(old, key_columns).map(Some),
                    };
                    match (key_of(new, key_columns), old) {
                        (Some(new), Some(old)) => {
                            set.insert(new);
                            set.extend(old);
                            Some(())
                        }
                        _ => None,
                    }
                }
                Change::Delete { old: Some(old), .. } => key_of(old, key_columns).map(|k| {
                    set.insert(k);
                }),
                Change::Delete { old: None, .. } | Change::Truncate { .. } => None,
            };
            if ok.is_none() || set.len() > MAX_CHANGED_KEYS {
                refused.insert(table.clone());
                keys.remove(&table);
            }
        })
        .await?;
    }
    for table in refused {
        keys.remove(&table);
    }
    Ok(keys)
}

/// The key of a printed tuple, or `None` when a key column is missing or unchanged TOAST.
fn key_of(columns: &[decoding::Column], key_columns: &[String]) -> Option<Key> {
    key_columns
        .iter()
        .map(|name| {
            let column = columns.iter().find(|c| &c.name == name)?;
            match &column.value {
                Value::Null => Some(None),
                Value::Text(text) => Some(Some(text.as_bytes().to_vec())),
                Value::UnchangedToast => None,
            }
        })
        .collect()
}

/// Reads a segment's changes, handing each change of a `wanted` transaction to `each`, and
/// checks the stored bytes are the sealed ones.
async fn read_segment(
    store: &dyn Store,
    database: &backstop_store::layout::DatabaseId,
    segment: &Segment,
    wanted: &HashSet<u64>,
    mut each: impl FnMut(Change),
) -> Result<(), String> {
    let key = segment.changes_key(database);
    let corrupt = |reason: String| format!("segment {key}: {reason}");
    let reader = store.get(&key).await.map_err(|e| corrupt(e.to_string()))?;
    let (hashing, stored) = crate::restore::HashingReader::new(reader);
    let decoded = crate::restore::Capped::new(
        ZstdDecoder::new(BufReader::new(hashing)),
        segment.plain_bytes,
    );
    let mut lines = BufReader::new(decoded).lines();
    let mut current = false;
    while let Some(line) = lines
        .next_line()
        .await
        .map_err(|e| corrupt(format!("it does not decompress: {e}")))?
    {
        if let Some(xid) = line.strip_prefix("BEGIN ") {
            let xid: u64 = xid
                .parse()
                .map_err(|_| corrupt("a bad BEGIN line".into()))?;
            current = wanted.contains(&xid);
        } else if line.starts_with("COMMIT ") {
            current = false;
        } else if current {
            let data = stream::unescape_line(&line);
            if let Decoded::Change(change) =
                decoding::parse(&data).map_err(|e| corrupt(e.to_string()))?
            {
                each(change);
            }
        }
    }
    let (sha256, bytes) = stored.digest().unwrap_or_default();
    if bytes != segment.changes.bytes || sha256 != segment.changes.sha256 {
        return Err(corrupt("its stored bytes are not the sealed ones".into()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chunks::ChunkRef;
    use crate::manifest::{Deltas, PartKind, TablePart};

    fn chunk(plain_bytes: u64) -> ChunkRef {
        ChunkRef {
            id: "0".repeat(64),
            bytes: plain_bytes / 2,
            plain_bytes,
            sha256: "0".repeat(64),
        }
    }

    fn part(chunks: Vec<ChunkRef>, deltas: Option<Deltas>) -> Part {
        Part {
            key: "data/0001.copy.chunks".into(),
            order: 1,
            kind: PartKind::Data,
            bytes: 0,
            sha256: String::new(),
            table: Some(TablePart {
                qualified_name: "public.hot".into(),
                schema: "public".into(),
                name: "hot".into(),
                columns: vec!["id".into(), "v".into()],
                rows: 10,
                row_digest: "0".repeat(32),
                blocks: None,
                storage: None,
                proof: None,
                extension_rows: None,
            }),
            bundle: Vec::new(),
            large_objects: None,
            plain_bytes: None,
            chunks,
            deltas,
        }
    }

    fn key() -> IdentityKey {
        IdentityKey {
            columns: vec!["id".into()],
            quoted: vec!["id".into()],
        }
    }

    #[test]
    fn a_table_of_its_own_with_a_key_gets_a_delta() {
        let base = part(vec![chunk(1000)], None);
        let columns = vec!["id".to_string(), "v".to_string()];
        let plan = delta_plan(&[&base], &columns, Some(&key()), false).unwrap();
        assert_eq!(plan.key, vec![0]);
        assert!(
            delta_plan(&[&base], &columns, None, false).is_none(),
            "no key"
        );
        assert!(
            delta_plan(&[&base], &columns, Some(&key()), true).is_none(),
            "truncated"
        );
        assert!(
            delta_plan(&[&base, &base], &columns, Some(&key()), false).is_none(),
            "split"
        );
        let other = vec!["id".to_string(), "w".to_string()];
        assert!(
            delta_plan(&[&base], &other, Some(&key()), false).is_none(),
            "columns"
        );
    }

    #[test]
    fn deltas_grown_past_a_quarter_of_the_base_mean_reading_it_whole_again() {
        let small = Deltas {
            starts: vec![1],
            key: vec![0],
        };
        let columns = vec!["id".to_string(), "v".to_string()];
        let carried = part(vec![chunk(1000), chunk(200)], Some(small.clone()));
        assert!(delta_plan(&[&carried], &columns, Some(&key()), false).is_some());
        let grown = part(vec![chunk(1000), chunk(300)], Some(small));
        assert!(delta_plan(&[&grown], &columns, Some(&key()), false).is_none());
        let many = Deltas {
            starts: (1..=MAX_DELTAS as u32).collect(),
            key: vec![0],
        };
        let chunks = std::iter::once(chunk(100_000))
            .chain((0..MAX_DELTAS).map(|_| chunk(10)))
            .collect();
        assert!(delta_plan(&[&part(chunks, Some(many))], &columns, Some(&key()), false).is_none());
    }

    #[test]
    fn a_seal_key_says_where_its_segment_ends() {
        let key = "db/stream/c1/0000000001000000-0000000002000000.json";
        assert!(ends_at_or_after(key, Lsn(0x0200_0000)));
        assert!(!ends_at_or_after(key, Lsn(0x0200_0001)));
        assert!(ends_at_or_after("db/stream/c1/odd.json", Lsn(5)));
    }

    #[test]
    fn a_key_is_read_from_the_printed_tuple_by_column_name() {
        let columns = vec![
            decoding::Column {
                name: "v".into(),
                value: Value::Text("x".into()),
            },
            decoding::Column {
                name: "id".into(),
                value: Value::Text("7".into()),
            },
        ];
        assert_eq!(
            key_of(&columns, &["id".into()]),
            Some(vec![Some(b"7".to_vec())])
        );
        assert_eq!(key_of(&columns, &["missing".into()]), None);
        let toast = vec![decoding::Column {
            name: "id".into(),
            value: Value::UnchangedToast,
        }];
        assert_eq!(key_of(&toast, &["id".into()]), None);
    }
}
