//! The data of a backup: each table's rows (big tables split by ctid range) streamed by
//! workers that joined the leader's snapshot, through a row digest and zstd into data parts.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use async_compression::Level;
use async_compression::tokio::bufread::ZstdEncoder;
use bytes::Bytes;
use futures::StreamExt;
use tokio::task::JoinSet;
use tokio_postgres::Client;
use tokio_util::io::StreamReader;

use super::{
    BackupError, BackupEvent, BackupOptions, Uploaded, database, lock_error, record_upload,
};
use crate::engine::catalog::DataTable;
use crate::engine::digest::RowDigest;
use crate::engine::large_objects;
use crate::engine::manifest::{LargeObjectsPart, Part, PartKind, TablePart};
use crate::pg::{PgTarget, connect, describe};
use crate::store::{PutOptions, Store, StoreError};

/// One COPY into one data part.
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
    /// The contents of these large objects (their sizes are only known once they are open).
    LargeObjects(Vec<u32>),
}

/// Splits tables into units, numbered by table name then chunk, and returns them largest
/// first; then one unit per batch of large objects.
pub(super) fn plan_units(
    tables: &[DataTable],
    large_objects: &[Vec<u32>],
    split_pages: u64,
) -> Vec<Unit> {
    let mut sorted: Vec<&DataTable> = tables.iter().collect();
    sorted.sort_by(|a, b| a.qualified_name.cmp(&b.qualified_name));
    let mut units = Vec::new();
    for table in sorted {
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
            events: events_tx.clone(),
        };
        workers.spawn(worker.run());
    }
    drop(events_tx);
    let joined =
        crate::engine::join_workers(workers, events_rx, on_event, |reason| BackupError::Copy {
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
    events: tokio::sync::mpsc::UnboundedSender<BackupEvent>,
}

impl Worker {
    async fn run(self) -> Result<Vec<Part>, BackupError> {
        let client = connect(&self.pg).await?;
        client
            .batch_execute(&format!(
                "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY;\n\
                 SET TRANSACTION SNAPSHOT '{}';\n\
                 SELECT pg_catalog.set_config('search_path', '', false);\n\
                 SET row_security = off;\n\
                 SET statement_timeout = 0;\n\
                 SET synchronize_seqscans = off;",
                self.snapshot
            ))
            .await
            .map_err(database("joining the backup snapshot"))?;
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

    async fn copy(&self, client: &Client, unit: &Unit) -> Result<Part, BackupError> {
        match &unit.source {
            Source::Table { table, blocks } => self.copy_table(client, unit, table, *blocks).await,
            Source::LargeObjects(oids) => self.copy_large_objects(client, unit, oids).await,
        }
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
        let _ = self.events.send(BackupEvent::PartStored {
            table: table.qualified_name.clone(),
            rows: digest.rows(),
            stored_bytes: receipt.bytes,
            table_bytes: unit.estimated_bytes,
        });
        Ok(Part {
            key: unit.key.clone(),
            order: unit.order,
            kind: PartKind::Data,
            bytes: receipt.bytes,
            sha256: receipt.sha256,
            table: Some(TablePart {
                qualified_name: table.qualified_name.clone(),
                schema: table.schema.clone(),
                name: table.name.clone(),
                columns: table.columns.clone(),
                rows: digest.rows(),
                row_digest: digest.hex(),
                blocks: blocks.map(|(from, to)| (from, to.unwrap_or(u64::MAX))),
                extension_rows: table.extension_rows.as_ref().map(|x| x.condition.clone()),
            }),
            large_objects: None,
        })
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
        let _ = self.events.send(BackupEvent::PartStored {
            table: what,
            rows: digest.rows(),
            stored_bytes: receipt.bytes,
            table_bytes: 0,
        });
        Ok(Part {
            key: unit.key.clone(),
            order: unit.order,
            kind: PartKind::Data,
            bytes: receipt.bytes,
            sha256: receipt.sha256,
            table: None,
            large_objects: Some(LargeObjectsPart {
                objects: oids.len() as u64,
                bytes: sizes.iter().map(|(_, size)| (*size).max(0) as u64).sum(),
                lines: digest.rows(),
                digest: digest.hex(),
            }),
        })
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
    ) -> Result<(crate::store::PutReceipt, RowDigest), BackupError> {
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
        let mut encoder = ZstdEncoder::with_quality(
            StreamReader::new(Box::pin(body)),
            Level::Precise(self.level),
        );
        let key = format!("{}{}", self.set_prefix, unit.key);
        let receipt = match self.store.put(&key, &mut encoder, &self.put_options).await {
            Ok(receipt) => receipt,
            Err(StoreError::Source { source, .. }) => {
                return Err(BackupError::Copy {
                    table: what.to_string(),
                    reason: source.to_string(),
                });
            }
            Err(e) => return Err(e.into()),
        };
        record_upload(&self.uploaded, key);
        let digest = digest.lock().map(|d| d.clone()).unwrap_or_default();
        Ok((receipt, digest))
    }
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
            &[table("small", 10), table("big", 250)],
            &[vec![16400, 16401], vec![16402]],
            100,
        );
        type Planned<'a> = (&'a str, Option<(u64, Option<u64>)>, Vec<u32>);
        let keys: Vec<Planned> = units
            .iter()
            .map(|u| match &u.source {
                Source::Table { blocks, .. } => (u.key.as_str(), *blocks, vec![]),
                Source::LargeObjects(oids) => (u.key.as_str(), None, oids.clone()),
            })
            .collect();
        // Numbered by table name (big before small), run largest first; the last range is
        // open. Large objects follow, a part per batch.
        assert_eq!(
            keys,
            [
                ("data/0001.copy.zst", Some((0, Some(100))), vec![]),
                ("data/0002.copy.zst", Some((100, Some(200))), vec![]),
                ("data/0003.copy.zst", Some((200, None)), vec![]),
                ("data/0004.copy.zst", None, vec![]),
                ("data/0005.lo.sql.zst", None, vec![16400, 16401]),
                ("data/0006.lo.sql.zst", None, vec![16402]),
            ]
        );
    }
}
