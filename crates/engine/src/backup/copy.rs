//! The data of a backup: each table's rows (big tables split by ctid range) streamed by
//! workers that joined the leader's snapshot, through a row digest and zstd into data parts.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use async_compression::Level;
use async_compression::tokio::bufread::ZstdEncoder;
use bytes::Bytes;
use futures::StreamExt;
use tokio::task::JoinSet;
use tokio_postgres::Client;
use tokio_util::io::StreamReader;

mod delta;

use super::chunked::ChunkWriter;
use super::{
    BackupError, BackupEvent, BackupOptions, Uploaded, database, lock_error, record_upload,
};
use crate::catalog::DataTable;
use crate::chunks::{self, ChunkRef};
use crate::delta::Key;
use crate::digest::RowDigest;
use crate::encryption::{self, Recipients};
use crate::large_objects;
use crate::manifest::{LargeObjectsPart, Part, PartKind, TablePart};
use backstop_pg::{PgTarget, connect, describe};
use backstop_store::store::{PutOptions, PutReceipt, Store, StoreError};

/// One COPY into one data part.
impl Unit {
    /// The unit with `suffix` after its key (`.age` when the set is encrypted).
    pub(super) fn stored_as(mut self, suffix: &str) -> Self {
        self.key.push_str(suffix);
        self
    }
}

#[derive(Debug, Clone)]
pub(super) struct Unit {
    order: u32,
    key: String,
    source: Source,
    estimated_bytes: u64,
}

/// What a unit copies.
#[derive(Debug, Clone)]
enum Source {
    Table {
        table: DataTable,
        /// Block range `[from, to)`; `to == None` means to the end of the table.
        blocks: Option<(u64, Option<u64>)>,
    },
    /// Small tables, copied one after another into one part.
    Bundle(Vec<DataTable>),
    /// The contents of these large objects (their sizes are only known once they are open).
    LargeObjects(Vec<u32>),
    /// A table read whole, of which only the rows whose keys changed are stored: a delta on
    /// the previous set's part (`engine::delta`).
    Delta(Arc<DeltaUnit>),
}

/// A table carried forward by its changed rows.
#[derive(Debug)]
pub(super) struct DeltaUnit {
    pub table: DataTable,
    pub plan: super::changes::DeltaPlan,
    /// The keys of the rows that may have changed since the previous set.
    pub keys: std::collections::HashSet<Key>,
}

impl Unit {
    /// The unit that stores `delta` as part `order`.
    pub(super) fn delta(order: u32, delta: DeltaUnit) -> Self {
        Unit {
            order,
            key: format!("data/{order:04}.copy.zst"),
            estimated_bytes: delta.table.bytes,
            source: Source::Delta(Arc::new(delta)),
        }
    }
}

/// Tables up to this size (in the database) share parts.
const SMALL_TABLE_BYTES: u64 = crate::catalog::SMALL_TABLE_BYTES;
/// A bundle holds at most this many tables...
const BUNDLE_TABLES: usize = 200;
/// ...and about this many bytes of them (in the database).
const BUNDLE_BYTES: u64 = 32 << 20;

/// The `group` of a small table that gets a part of its own, as a large one does: one the
/// change stream says changes, so that the next backup can store it as a delta.
pub(super) const OWN_PART: u8 = 3;

/// Splits tables into units, numbered by table name then chunk, and returns them largest
/// first; then one unit per batch of large objects. Small tables are bundled only with tables
/// of their `group` (0: not written since the previous set; then those written since, and
/// those never proven unchanged; `OWN_PART`: none), so that a bundle of tables that do not
/// change can be named whole by the next incremental backup.
pub(super) fn plan_units(
    tables: &[DataTable],
    large_objects: &[Vec<u32>],
    split_pages: u64,
    group: &dyn Fn(&DataTable) -> u8,
) -> Vec<Unit> {
    let mut sorted: Vec<&DataTable> = tables.iter().collect();
    sorted.sort_by(|a, b| (group(a), &a.qualified_name).cmp(&(group(b), &b.qualified_name)));
    // An extension's rows are added to what CREATE EXTENSION made, not loaded in bulk.
    let (small, large): (Vec<&DataTable>, Vec<&DataTable>) = sorted.into_iter().partition(|t| {
        t.bytes <= SMALL_TABLE_BYTES
            && (split_pages == 0 || t.pages <= split_pages)
            && t.extension_rows.is_none()
            && group(t) != OWN_PART
    });
    let mut units = Vec::new();
    let mut bundle: Vec<DataTable> = Vec::new();
    let mut bundle_bytes = 0;
    let mut bundle_group = 0;
    for table in small {
        if !bundle.is_empty()
            && (bundle.len() >= BUNDLE_TABLES
                || bundle_bytes + table.bytes > BUNDLE_BYTES
                || group(table) != bundle_group)
        {
            push_bundle(&mut units, std::mem::take(&mut bundle), bundle_bytes);
            bundle_bytes = 0;
        }
        bundle_group = group(table);
        bundle_bytes += table.bytes;
        bundle.push(table.clone());
    }
    if !bundle.is_empty() {
        push_bundle(&mut units, bundle, bundle_bytes);
    }
    for table in large {
        // An extension's rows are selected by a condition, not by block ranges.
        let splits = split_pages > 0 && table.extension_rows.is_none();
        let chunks = if splits && table.pages > split_pages {
            table.pages.div_ceil(split_pages)
        } else {
            1
        };
        for chunk in 0..chunks {
            let order = units.len() as u32 + 1;
            let blocks = (chunks > 1).then(|| {
                let from = chunk * split_pages;
                (from, (chunk + 1 < chunks).then_some(from + split_pages))
            });
            units.push(Unit {
                order,
                key: format!("data/{order:04}.copy.zst"),
                source: Source::Table {
                    table: table.clone(),
                    blocks,
                },
                estimated_bytes: table.bytes / chunks,
            });
        }
    }
    units.sort_by(|a, b| {
        b.estimated_bytes
            .cmp(&a.estimated_bytes)
            .then(a.order.cmp(&b.order))
    });
    let first = units.len() as u32 + 1;
    units.extend(large_objects.iter().enumerate().map(|(i, oids)| {
        let order = first + i as u32;
        Unit {
            order,
            key: format!("data/{order:04}.lo.sql.zst"),
            source: Source::LargeObjects(oids.clone()),
            estimated_bytes: 0,
        }
    }));
    units
}

fn push_bundle(units: &mut Vec<Unit>, tables: Vec<DataTable>, bytes: u64) {
    let order = units.len() as u32 + 1;
    units.push(Unit {
        order,
        key: format!("data/{order:04}.copy.zst"),
        source: Source::Bundle(tables),
        estimated_bytes: bytes,
    });
}

#[allow(clippy::too_many_arguments)]
pub(super) async fn copy_units(
    pg: &PgTarget,
    snapshot: &str,
    store: Arc<dyn Store>,
    units: Vec<Unit>,
    options: &BackupOptions,
    set_prefix: &str,
    put_options: &PutOptions,
    uploaded: &Uploaded,
    chunks: Option<Arc<ChunkWriter>>,
    on_event: &(dyn Fn(BackupEvent) + Sync),
) -> Result<Vec<Part>, BackupError> {
    let queue = Arc::new(Mutex::new(VecDeque::from(units)));
    let (events_tx, events_rx) = tokio::sync::mpsc::unbounded_channel();
    let mut workers = JoinSet::new();
    for _ in 0..options.jobs.max(1) {
        let worker = Worker {
            pg: pg.clone(),
            snapshot: snapshot.to_string(),
            store: store.clone(),
            queue: queue.clone(),
            uploaded: uploaded.clone(),
            set_prefix: set_prefix.to_string(),
            put_options: put_options.clone(),
            level: options.compression_level,
            recipients: options.recipients.clone(),
            chunks: chunks.clone(),
            events: events_tx.clone(),
        };
        workers.spawn(worker.run());
    }
    drop(events_tx);
    let joined = crate::join_workers(workers, events_rx, on_event, |reason| BackupError::Copy {
        table: "-".into(),
        reason,
    })
    .await;
    Ok(joined?.into_iter().flatten().collect())
}

struct Worker {
    pg: PgTarget,
    snapshot: String,
    store: Arc<dyn Store>,
    queue: Arc<Mutex<VecDeque<Unit>>>,
    uploaded: Uploaded,
    set_prefix: String,
    put_options: PutOptions,
    level: i32,
    recipients: Option<Recipients>,
    /// Set when the run stores table data as shared chunks.
    chunks: Option<Arc<ChunkWriter>>,
    events: tokio::sync::mpsc::UnboundedSender<BackupEvent>,
}

/// How a data part was stored.
enum Stored {
    /// One object under the part's key.
    Whole(PutReceipt),
    /// Shared chunks, in order.
    Chunked(Vec<ChunkRef>),
}

/// A new session in the backup's snapshot (`pg::session::Purpose::BackupWorker`), hardened
/// as the leader's is.
pub(super) async fn join_snapshot(pg: &PgTarget, snapshot: &str) -> Result<Client, BackupError> {
    let client = connect(pg).await?;
    let setup = backstop_pg::session::Purpose::BackupWorker { snapshot }.setup();
    client
        .batch_execute(&format!("{setup}{}", super::HARDEN_SESSION))
        .await
        .map_err(database("joining the backup snapshot"))?;
    Ok(client)
}

impl Worker {
    async fn run(self) -> Result<Vec<Part>, BackupError> {
        let client = join_snapshot(&self.pg, &self.snapshot).await?;
        let mut parts = Vec::new();
        loop {
            let unit = match self.queue.lock() {
                Ok(mut queue) => queue.pop_front(),
                Err(_) => None,
            };
            let Some(unit) = unit else { break };
            parts.push(self.copy(&client, &unit).await?);
        }
        client
            .batch_execute("COMMIT")
            .await
            .map_err(database("closing a worker transaction"))?;
        Ok(parts)
    }

    /// Stores `body` under `key`: as it is, or encrypted to the recipients as it streams.
    async fn put(
        &self,
        key: &str,
        body: &mut (dyn tokio::io::AsyncRead + Send + Unpin),
    ) -> Result<PutReceipt, StoreError> {
        encryption::put(
            self.store.as_ref(),
            key,
            body,
            &self.put_options,
            self.recipients.as_ref(),
        )
        .await
    }

    async fn copy(&self, client: &Client, unit: &Unit) -> Result<Part, BackupError> {
        match &unit.source {
            Source::Table { table, blocks } => self.copy_table(client, unit, table, *blocks).await,
            Source::Bundle(tables) => self.copy_bundle(client, unit, tables).await,
            Source::LargeObjects(oids) => self.copy_large_objects(client, unit, oids).await,
            Source::Delta(delta) => self.copy_delta(client, unit, delta).await,
        }
    }

    /// Copies small tables one after another into one part: each its own COPY block, each
    /// with its own rows and digest in the manifest.
    async fn copy_bundle(
        &self,
        client: &Client,
        unit: &Unit,
        tables: &[DataTable],
    ) -> Result<Part, BackupError> {
        let (sender, mut receiver) = tokio::sync::mpsc::channel::<std::io::Result<Bytes>>(16);
        let produce = async move {
            let mut blocks = Vec::with_capacity(tables.len());
            // The COPY statements of a run of tables are prepared together, pipelined in one
            // round trip, and the COPYs are sent ahead of the one being read: no round trip
            // of its own for each small table. A prepare that fails aborts the transaction,
            // so the first failure in the run is the one reported.
            for run in tables.chunks(PIPELINED_COPIES) {
                let texts: Vec<String> = run.iter().map(copy_out_sql).collect();
                let prepared =
                    futures::future::join_all(texts.iter().map(|sql| client.prepare(sql))).await;
                let statements = match run
                    .iter()
                    .zip(prepared)
                    .map(|(table, statement)| statement.map_err(|e| copy_failed(table, &e)))
                    .collect::<Result<Vec<_>, _>>()
                {
                    Ok(statements) => statements,
                    Err(e) => {
                        let _ = sender.send(Err(std::io::Error::other(e.to_string()))).await;
                        return Err(e);
                    }
                };
                let mut copies = futures::stream::iter(statements)
                    .map(|statement| async move { client.copy_out(&statement).await })
                    .buffered(COPIES_AHEAD);
                for table in run {
                    // One COPY per table: the stream is never shorter than the run.
                    let outcome = match copies.next().await {
                        Some(started) => copy_block(table, started, &sender).await,
                        None => Err(BackupError::Copy {
                            table: table.qualified_name.clone(),
                            reason: "its COPY was never sent".into(),
                        }),
                    };
                    match outcome {
                        Ok(block) => blocks.push(block),
                        Err(e) => {
                            // The part must not be stored as if it were whole.
                            let _ = sender.send(Err(std::io::Error::other(e.to_string()))).await;
                            return Err(e);
                        }
                    }
                }
            }
            Ok(blocks)
        };
        // The receiver outlives the store's future: a store that fails drops only its borrow,
        // so the producer's pending send does not fail first and hide the store's error.
        let body = futures::stream::poll_fn(|cx| receiver.poll_recv(cx));
        let what = format!("{} small tables", tables.len());
        let store = self.store_part(unit, &what, body, true);
        let (blocks, receipt) = crate::produce_and_store(produce, store).await?;
        let rows = blocks.iter().map(|b| b.rows).sum();
        Ok(self.stored(unit, receipt, (what, rows), Contents::Bundle(blocks)))
    }

    /// Stores a data part's content: as shared chunks when the run writes them and
    /// `chunkable`, else as one zstd object (encrypted to the recipients), under the unit's
    /// key. Returns how it was stored and the content's size.
    async fn store_part(
        &self,
        unit: &Unit,
        what: &str,
        body: impl futures::Stream<Item = std::io::Result<Bytes>> + Send,
        chunkable: bool,
    ) -> Result<(Stored, u64), BackupError> {
        let plain = Arc::new(AtomicU64::new(0));
        let counted = plain.clone();
        let body = body.inspect(move |chunk| {
            if let Ok(chunk) = chunk {
                counted.fetch_add(chunk.len() as u64, Ordering::Relaxed);
            }
        });
        let stored = match (&self.chunks, chunkable) {
            (Some(chunks), true) => Stored::Chunked(
                chunks
                    .write(what, body)
                    .await
                    .map_err(|e| put_error(what, e))?,
            ),
            _ => {
                let mut encoder = ZstdEncoder::with_quality(
                    StreamReader::new(Box::pin(body)),
                    Level::Precise(self.level),
                );
                let key = format!("{}{}", self.set_prefix, unit.key);
                let receipt = self
                    .put(&key, &mut encoder)
                    .await
                    .map_err(|e| put_error(what, e))?;
                record_upload(&self.uploaded, key);
                Stored::Whole(receipt)
            }
        };
        Ok((stored, plain.load(Ordering::Relaxed)))
    }

    /// Announces a stored data part and describes it for the manifest.
    fn stored(
        &self,
        unit: &Unit,
        (stored, plain_bytes): (Stored, u64),
        (what, rows): (String, u64),
        contents: Contents,
    ) -> Part {
        let (key, bytes, sha256, chunks) = match stored {
            Stored::Whole(receipt) => (unit.key.clone(), receipt.bytes, receipt.sha256, Vec::new()),
            Stored::Chunked(chunks) => (
                chunked_part_key(&unit.key),
                chunks.iter().map(|c| c.bytes).sum(),
                chunks::list_digest(&chunks),
                chunks,
            ),
        };
        let _ = self.events.send(BackupEvent::PartStored {
            table: what,
            rows,
            stored_bytes: bytes,
            table_bytes: unit.estimated_bytes,
        });
        let mut part = Part {
            key,
            order: unit.order,
            kind: PartKind::Data,
            bytes,
            sha256,
            table: None,
            bundle: Vec::new(),
            large_objects: None,
            plain_bytes: Some(plain_bytes),
            chunks,
            deltas: None,
        };
        match contents {
            Contents::Table(table) => part.table = Some(*table),
            Contents::Bundle(tables) => part.bundle = tables,
            Contents::LargeObjects(objects) => part.large_objects = Some(objects),
        }
        part
    }

    async fn copy_table(
        &self,
        client: &Client,
        unit: &Unit,
        table: &DataTable,
        blocks: Option<(u64, Option<u64>)>,
    ) -> Result<Part, BackupError> {
        client
            .batch_execute(&format!(
                "LOCK TABLE {} IN ACCESS SHARE MODE NOWAIT",
                table.qualified_name
            ))
            .await
            .map_err(|e| lock_error(&table.qualified_name, &e))?;
        let columns = table.columns.join(", ");
        let column_list = if columns.is_empty() {
            String::new()
        } else {
            format!(" ({columns})")
        };
        let source = match (blocks, &table.extension_rows) {
            (_, Some(rows)) => format!(
                "(SELECT {columns} FROM ONLY {} {})",
                table.qualified_name, rows.condition
            ),
            (None, None) => format!("{}{column_list}", table.qualified_name),
            (Some((from, to)), None) => {
                let upper = to
                    .map(|t| format!(" AND ctid < '({t},0)'::pg_catalog.tid"))
                    .unwrap_or_default();
                format!(
                    "(SELECT {columns} FROM ONLY {} WHERE ctid >= '({from},0)'::pg_catalog.tid{upper})",
                    table.qualified_name
                )
            }
        };
        let header = format!("COPY {}{column_list} FROM stdin;\n", table.qualified_name);
        let (receipt, digest) = self
            .store_copy(
                client,
                unit,
                &table.qualified_name,
                &format!("COPY {source} TO STDOUT"),
                (header, "\\.\n\n"),
            )
            .await?;
        let block = table_part(
            table,
            &digest,
            blocks.map(|(from, to)| (from, to.unwrap_or(u64::MAX))),
        );
        let what = (table.qualified_name.clone(), digest.rows());
        Ok(self.stored(unit, receipt, what, Contents::Table(Box::new(block))))
    }

    async fn copy_large_objects(
        &self,
        client: &Client,
        unit: &Unit,
        oids: &[u32],
    ) -> Result<Part, BackupError> {
        let what = large_objects::label(oids);
        let sizes =
            large_objects::sizes(client, oids)
                .await
                .map_err(|reason| BackupError::Copy {
                    table: what.clone(),
                    reason,
                })?;
        let copy = large_objects::copy_sql(&sizes);
        let (receipt, digest) = self
            .store_copy(client, unit, &what, &copy, (String::new(), ""))
            .await?;
        let objects = LargeObjectsPart {
            objects: oids.len() as u64,
            bytes: sizes.iter().map(|(_, size)| (*size).max(0) as u64).sum(),
            lines: digest.rows(),
            digest: digest.hex(),
        };
        let what = (what, digest.rows());
        Ok(self.stored(unit, receipt, what, Contents::LargeObjects(objects)))
    }

    /// Streams `copy`'s output, between `header` and `trailer`, through a row digest and zstd
    /// into the unit's part.
    async fn store_copy(
        &self,
        client: &Client,
        unit: &Unit,
        what: &str,
        copy: &str,
        (header, trailer): (String, &'static str),
    ) -> Result<((Stored, u64), RowDigest), BackupError> {
        let copy_error = |e: tokio_postgres::Error| BackupError::Copy {
            table: what.to_string(),
            reason: describe(&e),
        };
        let stream = client.copy_out(copy).await.map_err(copy_error)?;
        let digest = Arc::new(Mutex::new(RowDigest::new()));
        let observed = digest.clone();
        let body =
            futures::stream::once(async move { Ok::<_, std::io::Error>(Bytes::from(header)) })
                .chain(stream.map(move |chunk| {
                    let chunk = chunk.map_err(|e| std::io::Error::other(describe(&e)))?;
                    if let Ok(mut digest) = observed.lock() {
                        digest.update(&chunk);
                    }
                    Ok(chunk)
                }))
                .chain(futures::stream::once(async move {
                    Ok(Bytes::from_static(trailer.as_bytes()))
                }));
        // Large objects stay whole parts: their parts are read line by line as `lo_put`s.
        let chunkable = !matches!(unit.source, Source::LargeObjects(_));
        let stored = self.store_part(unit, what, body, chunkable).await?;
        let digest = digest.lock().map(|d| d.clone()).unwrap_or_default();
        Ok((stored, digest))
    }
}

/// The manifest key of a part stored as chunks: its unit's, naming a list, not an object
/// (`data/0001.copy.zst` becomes `data/0001.copy.chunks`).
fn chunked_part_key(unit_key: &str) -> String {
    let stem = unit_key.split(".zst").next().unwrap_or(unit_key);
    format!("{stem}.chunks")
}

/// What a data part holds, for its manifest entry.
enum Contents {
    Table(Box<TablePart>),
    Bundle(Vec<TablePart>),
    LargeObjects(LargeObjectsPart),
}

/// A store failure while `what` streamed in: the stream's own error (the COPY broke) names
/// what was being copied.
fn put_error(what: &str, error: StoreError) -> BackupError {
    match error {
        StoreError::Source { source, .. } => BackupError::Copy {
            table: what.to_string(),
            reason: source.to_string(),
        },
        e => e.into(),
    }
}

/// The manifest's entry for `table`'s block (`blocks`: its ctid range, when split).
fn table_part(table: &DataTable, digest: &RowDigest, blocks: Option<(u64, u64)>) -> TablePart {
    TablePart {
        qualified_name: table.qualified_name.clone(),
        schema: table.schema.clone(),
        name: table.name.clone(),
        columns: table.columns.clone(),
        rows: digest.rows(),
        row_digest: digest.hex(),
        blocks,
        storage: None,
        proof: None,
        extension_rows: table.extension_rows.as_ref().map(|x| x.condition.clone()),
    }
}

/// How many small tables' COPY statements are prepared in one round trip.
const PIPELINED_COPIES: usize = 64;

/// How many COPYs are sent ahead of the one whose rows are being read.
const COPIES_AHEAD: usize = 16;

/// A small table's COPY that could not start. No LOCK statement goes first: preparing the
/// COPY takes the same ACCESS SHARE lock, under the session's short lock_timeout
/// (`pg::session::WORKER_LOCK_WAIT`), which ends the wait NOWAIT would have refused (an
/// exclusive request queued behind the leader's lock): that is reported as the lock's error.
fn copy_failed(table: &DataTable, e: &tokio_postgres::Error) -> BackupError {
    if e.code() == Some(&tokio_postgres::error::SqlState::LOCK_NOT_AVAILABLE) {
        lock_error(&table.qualified_name, e)
    } else {
        BackupError::Copy {
            table: table.qualified_name.clone(),
            reason: describe(e),
        }
    }
}

/// ` (a, b, …)`: the columns a table's COPY names, or nothing for a table without any.
fn column_list(table: &DataTable) -> String {
    if table.columns.is_empty() {
        String::new()
    } else {
        format!(" ({})", table.columns.join(", "))
    }
}

/// The statement that reads a whole small table's rows.
fn copy_out_sql(table: &DataTable) -> String {
    format!(
        "COPY {}{} TO STDOUT",
        table.qualified_name,
        column_list(table)
    )
}

/// One table's COPY block into `sender`, as a data part of its own would hold it.
async fn copy_block(
    table: &DataTable,
    started: Result<tokio_postgres::CopyOutStream, tokio_postgres::Error>,
    sender: &tokio::sync::mpsc::Sender<std::io::Result<Bytes>>,
) -> Result<TablePart, BackupError> {
    let column_list = column_list(table);
    let copy_error = |reason: String| BackupError::Copy {
        table: table.qualified_name.clone(),
        reason,
    };
    let stopped = || copy_error("the part it was written into was abandoned".into());
    let stream = started.map_err(|e| copy_failed(table, &e))?;
    let header = format!("COPY {}{column_list} FROM stdin;\n", table.qualified_name);
    sender
        .send(Ok(Bytes::from(header)))
        .await
        .map_err(|_| stopped())?;
    let mut digest = RowDigest::new();
    let mut stream = std::pin::pin!(stream);
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| copy_error(describe(&e)))?;
        digest.update(&chunk);
        sender.send(Ok(chunk)).await.map_err(|_| stopped())?;
    }
    sender
        .send(Ok(Bytes::from_static(b"\\.\n\n")))
        .await
        .map_err(|_| stopped())?;
    Ok(table_part(table, &digest, None))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(name: &str, pages: u64) -> DataTable {
        DataTable {
            oid: 1,
            schema: "public".into(),
            name: name.into(),
            qualified_name: format!("public.{name}"),
            columns: vec!["id".into()],
            bytes: pages * 8192,
            pages,
            extension_rows: None,
        }
    }

    #[test]
    fn big_tables_split_into_block_ranges_and_run_largest_first() {
        let units = plan_units(
            &[table("small", 10), table("big", 250), table("tiny", 1)],
            &[vec![16400, 16401], vec![16402]],
            100,
            &|_| 0,
        );
        type Planned<'a> = (&'a str, Option<(u64, Option<u64>)>, Vec<String>);
        let keys: Vec<Planned> = units
            .iter()
            .map(|u| match &u.source {
                Source::Table { blocks, table } => {
                    (u.key.as_str(), *blocks, vec![table.name.clone()])
                }
                Source::Delta(delta) => (u.key.as_str(), None, vec![delta.table.name.clone()]),
                Source::Bundle(tables) => (
                    u.key.as_str(),
                    None,
                    tables.iter().map(|t| t.name.clone()).collect(),
                ),
                Source::LargeObjects(oids) => (
                    u.key.as_str(),
                    None,
                    oids.iter().map(|o| o.to_string()).collect(),
                ),
            })
            .collect();
        // Small tables share a part; a big one is split by block ranges (the last range
        // open); largest first. Large objects follow, a part per batch.
        let names = |n: &[&str]| n.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            keys,
            [
                ("data/0002.copy.zst", Some((0, Some(100))), names(&["big"])),
                (
                    "data/0003.copy.zst",
                    Some((100, Some(200))),
                    names(&["big"])
                ),
                ("data/0004.copy.zst", Some((200, None)), names(&["big"])),
                ("data/0001.copy.zst", None, names(&["small", "tiny"])),
                ("data/0005.lo.sql.zst", None, names(&["16400", "16401"])),
                ("data/0006.lo.sql.zst", None, names(&["16402"])),
            ]
        );
    }

    #[test]
    fn tables_that_change_are_bundled_apart_from_those_that_do_not() {
        let tables: Vec<DataTable> = ["a", "b", "c", "d"].iter().map(|n| table(n, 1)).collect();
        let units = plan_units(&tables, &[], 32_768, &|t| {
            u8::from(t.name == "b" || t.name == "d")
        });
        let mut bundles: Vec<Vec<String>> = units
            .iter()
            .map(|u| match &u.source {
                Source::Bundle(tables) => tables.iter().map(|t| t.name.clone()).collect(),
                _ => Vec::new(),
            })
            .collect();
        bundles.sort();
        assert_eq!(bundles, [vec!["a", "c"], vec!["b", "d"]]);
    }

    #[test]
    fn bundles_close_at_their_table_count_and_size() {
        let many: Vec<DataTable> = (0..450).map(|i| table(&format!("t{i:03}"), 1)).collect();
        let units = plan_units(&many, &[], 32_768, &|_| 0);
        let sizes: Vec<usize> = units
            .iter()
            .map(|u| match &u.source {
                Source::Bundle(tables) => tables.len(),
                _ => 0,
            })
            .collect();
        assert_eq!(sizes, [200, 200, 50]);
        let fat: Vec<DataTable> = (0..20).map(|i| table(&format!("f{i:02}"), 448)).collect();
        let units = plan_units(&fat, &[], 32_768, &|_| 0);
        assert!(units.iter().all(|u| match &u.source {
            Source::Bundle(tables) => tables.iter().map(|t| t.bytes).sum::<u64>() <= BUNDLE_BYTES,
            _ => false,
        }));
        assert!(units.len() > 1);
    }
}
