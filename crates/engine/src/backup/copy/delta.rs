//! A table carried forward by its changed rows: read whole through the row digest, only the
//! rows whose keys changed (and the keys no row has any more) stored, as one more delta on the
//! previous set's part (`engine::delta`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures::StreamExt;
use tokio_postgres::Client;

use super::{
    BackupError, BackupEvent, DeltaUnit, Source, Unit, Worker, chunked_part_key, column_list,
    lock_error, put_error, table_part,
};
use crate::chunks;
use crate::delta::Key;
use crate::digest::RowDigest;
use crate::manifest::Part;
use backstop_pg::describe;

impl Worker {
    /// Reads the table whole, through the row digest, and stores only the rows whose keys
    /// changed (and the keys no row has any more) as one more delta on the previous part.
    pub(super) async fn copy_delta(
        &self,
        client: &Client,
        unit: &Unit,
        delta: &Arc<DeltaUnit>,
    ) -> Result<Part, BackupError> {
        let table = &delta.table;
        let what = table.qualified_name.clone();
        let Some(writer) = &self.chunks else {
            return Err(BackupError::Copy {
                table: what,
                reason: "a delta needs shared chunks".into(),
            });
        };
        client
            .batch_execute(&format!(
                "LOCK TABLE {} IN ACCESS SHARE MODE NOWAIT",
                table.qualified_name
            ))
            .await
            .map_err(|e| lock_error(&table.qualified_name, &e))?;
        let copy = format!(
            "COPY {}{} TO STDOUT",
            table.qualified_name,
            column_list(table)
        );
        let stream = client
            .copy_out(&copy)
            .await
            .map_err(|e| BackupError::Copy {
                table: what.clone(),
                reason: describe(&e),
            })?;
        let state = Arc::new(Mutex::new(DeltaState::default()));
        let rows = state.clone();
        let unit_delta = delta.clone();
        let rest = state.clone();
        let rest_delta = delta.clone();
        let body = stream
            .map(move |chunk| {
                let chunk = chunk.map_err(|e| std::io::Error::other(describe(&e)))?;
                let mut out = Vec::new();
                if let Ok(mut state) = rows.lock() {
                    state.take(&chunk, &unit_delta, &mut out);
                }
                Ok::<_, std::io::Error>(Bytes::from(out))
            })
            .chain(futures::stream::once(async move {
                let mut out = Vec::new();
                if let Ok(state) = rest.lock() {
                    for key in rest_delta.keys.iter().filter(|k| !state.seen.contains(*k)) {
                        crate::delta::write_delete(key, &mut out);
                    }
                }
                Ok(Bytes::from(out))
            }));
        let plain = Arc::new(AtomicU64::new(0));
        let counted = plain.clone();
        let body = body.inspect(move |chunk| {
            if let Ok(chunk) = chunk {
                counted.fetch_add(chunk.len() as u64, Ordering::Relaxed);
            }
        });
        let added = writer
            .write(&what, body)
            .await
            .map_err(|e| put_error(&what, e))?;
        let (digest, partial) = match state.lock() {
            Ok(state) => (state.digest.clone(), state.partial.len()),
            Err(_) => (RowDigest::new(), 1),
        };
        if partial > 0 || digest.has_partial_row() {
            return Err(BackupError::Copy {
                table: what,
                reason: "its COPY ended inside a row".into(),
            });
        }
        let delta_bytes = plain.load(Ordering::Relaxed);
        if delta.plan.previous_delta_bytes + delta_bytes > crate::backup::changes::MAX_DELTAS_BYTES
        {
            // Too many rows changed for a delta: the table is stored whole (its delta's
            // chunks, named by no set, go with the next sweep).
            tracing::info!(table = %table.qualified_name, delta_bytes, "too many rows changed for a delta: the table is stored whole");
            let whole = Unit {
                order: unit.order,
                key: unit.key.clone(),
                source: Source::Table {
                    table: table.clone(),
                    blocks: None,
                },
                estimated_bytes: unit.estimated_bytes,
            };
            return self.copy_table(client, &whole, table, None).await;
        }
        let previous = &delta.plan.previous;
        writer.name_without_storing(previous.chunks.iter());
        let mut part = previous.clone();
        let mut starts = previous
            .deltas
            .as_ref()
            .map(|d| d.starts.clone())
            .unwrap_or_default();
        if !added.is_empty() {
            starts.push(previous.chunks.len() as u32);
        }
        let stored_bytes: u64 = added.iter().map(|c| c.bytes).sum();
        part.chunks.extend(added);
        part.deltas = (!starts.is_empty()).then(|| crate::manifest::Deltas {
            starts,
            key: delta.plan.key.clone(),
        });
        part.key = chunked_part_key(&unit.key);
        part.order = unit.order;
        part.bytes = part.chunks.iter().map(|c| c.bytes).sum();
        part.plain_bytes = Some(part.chunks.iter().map(|c| c.plain_bytes).sum());
        part.sha256 = chunks::list_digest(&part.chunks);
        part.table = Some(table_part(table, &digest, None));
        let _ = self.events.send(BackupEvent::PartStored {
            table: what,
            rows: digest.rows(),
            stored_bytes,
            table_bytes: unit.estimated_bytes,
        });
        tracing::debug!(
            table = %table.qualified_name,
            delta_bytes,
            "stored the changed rows as a delta"
        );
        Ok(part)
    }
}

/// A delta copy's progress: the digest of every row read, the changed keys found so far, and
/// a row the last piece of COPY output ended inside.
#[derive(Default)]
struct DeltaState {
    digest: RowDigest,
    seen: std::collections::HashSet<Key>,
    partial: Vec<u8>,
}

impl DeltaState {
    /// Takes a piece of COPY output: every row goes through the digest, those with a changed
    /// key into `out` as upserts.
    fn take(&mut self, mut piece: &[u8], delta: &DeltaUnit, out: &mut Vec<u8>) {
        self.digest.update(piece);
        while let Some(newline) = memchr::memchr(b'\n', piece) {
            let (line, rest) = piece.split_at(newline + 1);
            piece = rest;
            let whole;
            let row: &[u8] = if self.partial.is_empty() {
                line
            } else {
                self.partial.extend_from_slice(line);
                whole = std::mem::take(&mut self.partial);
                &whole
            };
            if let Some(key) = crate::delta::copy_key(row, &delta.plan.key)
                && delta.keys.contains(&key)
            {
                crate::delta::write_upsert(row, out);
                self.seen.insert(key);
            }
        }
        self.partial.extend_from_slice(piece);
    }
}
