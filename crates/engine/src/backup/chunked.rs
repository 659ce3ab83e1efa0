//! A data part written as shared chunks (`engine::chunks`): the part's bytes cut at
//! content-defined boundaries, each chunk stored once for the database, create-only, and the
//! ones an earlier set or this run already stored only named.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use futures::{Stream, StreamExt};
use sha2::{Digest, Sha256};
use tokio::io::AsyncReadExt;

use super::BackupError;
use crate::chunks::{self, ChunkKey, ChunkRef, Chunker, Known};
use crate::encryption::{self, Recipients};
use crate::manifest::Manifest;
use backstop_store::layout::{
    DatabaseId, MANIFEST_NAME, committed_backups, database_prefix, set_key,
};
use backstop_store::store::{PutOptions, Store, StoreError};
use backstop_store::tier::TIER_TAG;

/// The tag value of shared chunks: they belong to no one tier, and the bucket's lifecycle
/// moves them only to a class that is read at once (DESIGN.md, "Shared chunks").
pub const SHARED_TIER: &str = "shared";

/// Chunks stored at once for one part, at most: their uploads overlap while the COPY goes on.
const IN_FLIGHT: usize = 4;

/// What a run needs to store chunks.
pub(super) struct ChunkWriter {
    pub store: Arc<dyn Store>,
    pub database: DatabaseId,
    pub key: ChunkKey,
    pub known: Known,
    pub level: i32,
    pub recipients: Option<Recipients>,
    /// Bytes of the chunks this run was the first to store.
    pub added: Arc<AtomicU64>,
    /// Chunks named without being stored by this run, to be checked before the set commits.
    pub reused: Arc<std::sync::Mutex<HashMap<String, ChunkRef>>>,
    /// Ids being stored now: a second part cutting the same chunk waits for the first.
    pub in_flight: Arc<std::sync::Mutex<std::collections::HashSet<String>>>,
    /// The scope of the ids: the sorted recipients (`chunks::scope`).
    pub scope: Vec<u8>,
}

impl ChunkWriter {
    /// Stores `body` as chunks, returning them in order. A failure of the stream itself is
    /// `StoreError::Source` naming `what`.
    pub async fn write(
        self: &Arc<Self>,
        what: &str,
        body: impl Stream<Item = std::io::Result<Bytes>>,
    ) -> Result<Vec<ChunkRef>, StoreError> {
        let mut body = std::pin::pin!(body);
        let mut chunker = Chunker::new(&self.key);
        let mut refs = Vec::new();
        let mut pending = futures::stream::FuturesOrdered::new();
        loop {
            let piece = body.next().await;
            let ready = match &piece {
                Some(Ok(bytes)) => chunker.push(bytes),
                Some(Err(e)) => {
                    return Err(StoreError::Source {
                        key: what.to_string(),
                        source: std::io::Error::new(e.kind(), e.to_string()),
                    });
                }
                None => std::mem::replace(&mut chunker, Chunker::new(&self.key)).finish(),
            };
            for chunk in ready {
                // A task of its own, so that its upload goes on while the COPY is read; ended
                // with the part when the run stops.
                let writer = self.clone();
                pending.push_back(tokio_util::task::AbortOnDropHandle::new(tokio::spawn(
                    async move { writer.store_chunk(chunk).await },
                )));
                while pending.len() >= IN_FLIGHT {
                    if let Some(stored) = pending.next().await {
                        refs.push(joined(stored)??);
                    }
                }
            }
            if piece.is_none() {
                break;
            }
        }
        while let Some(stored) = pending.next().await {
            refs.push(joined(stored)??);
        }
        Ok(refs)
    }

    /// Stores one chunk unless it is known; one found stored by a run that never committed is
    /// taken as it is (checked against `plain` where the set is not encrypted).
    async fn store_chunk(&self, plain: Vec<u8>) -> Result<ChunkRef, StoreError> {
        let id = self.key.id(&self.scope, &plain);
        // One upload per id at a time: S3 refuses two conditional writes of one key at once.
        loop {
            if let Some(known) = self.known.get(&id) {
                if let Ok(mut reused) = self.reused.lock() {
                    reused.entry(id).or_insert_with(|| known.clone());
                }
                return Ok(known);
            }
            let claimed = self
                .in_flight
                .lock()
                .map(|mut ids| ids.insert(id.clone()))
                .unwrap_or(true);
            if claimed {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        let stored = self.store_new(id.clone(), plain).await;
        if let Ok(mut ids) = self.in_flight.lock() {
            ids.remove(&id);
        }
        stored
    }

    /// Stores a chunk no set this run knows names (or takes the one already stored).
    async fn store_new(&self, id: String, plain: Vec<u8>) -> Result<ChunkRef, StoreError> {
        let key = chunks::chunk_key(&self.database, &id, self.recipients.is_some());
        let source = |e: std::io::Error| StoreError::Source {
            key: key.clone(),
            source: e,
        };
        let compressed = zstd::bulk::compress(&plain, self.level).map_err(source)?;
        let stored = match &self.recipients {
            Some(recipients) => encryption::encrypt_bytes(recipients, &compressed)
                .map_err(|e| source(std::io::Error::other(e.to_string())))?,
            None => compressed,
        };
        let options = PutOptions {
            tags: vec![(TIER_TAG.to_string(), SHARED_TIER.to_string())],
            create_only: true,
        };
        let chunk = match self.store.put(&key, &mut stored.as_slice(), &options).await {
            Ok(receipt) => {
                // Not recorded for the failed run's cleanup: once stored, a chunk may be taken
                // by the next run (this one's lease lost); only retention's sweep, under the
                // lease, removes a chunk no set names.
                self.added.fetch_add(receipt.bytes, Ordering::Relaxed);
                ChunkRef {
                    id,
                    bytes: receipt.bytes,
                    sha256: receipt.sha256,
                    plain_bytes: plain.len() as u64,
                }
            }
            Err(StoreError::AlreadyExists { .. }) => {
                let adopted = self.adopt(&key, id, &plain).await?;
                // Checked with the other chunks named without being stored, before commit.
                if let Ok(mut reused) = self.reused.lock() {
                    reused.insert(adopted.id.clone(), adopted.clone());
                }
                adopted
            }
            Err(e) => return Err(e),
        };
        self.known.insert(chunk.clone());
        Ok(chunk)
    }

    /// A chunk already stored under its id (by a run that never committed, or by another part
    /// of this one): named with the size and SHA-256 of what is there. Its content is checked
    /// where the writer can read it (a plaintext set); an encrypted one is sealed by the AEAD.
    async fn adopt(&self, key: &str, id: String, plain: &[u8]) -> Result<ChunkRef, StoreError> {
        let mut reader = self.store.get(key).await?;
        let mut stored = Vec::new();
        (&mut reader)
            .take(chunks::MAX_STORED_CHUNK + 1)
            .read_to_end(&mut stored)
            .await
            .map_err(|source| StoreError::Source {
                key: key.to_string(),
                source,
            })?;
        let differs = || StoreError::Source {
            key: key.to_string(),
            source: std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "a chunk stored under this id holds other content; it is never replaced: \
                 remove the object and run again",
            ),
        };
        if self.recipients.is_none()
            && zstd::bulk::decompress(&stored, plain.len()).ok().as_deref() != Some(plain)
        {
            return Err(differs());
        }
        Ok(ChunkRef {
            id,
            bytes: stored.len() as u64,
            sha256: hex::encode(Sha256::digest(&stored)),
            plain_bytes: plain.len() as u64,
        })
    }

    /// Records chunks the set names from an earlier set without reading their data, to be
    /// checked with the others before it commits.
    pub fn name_without_storing<'a>(&self, chunks: impl Iterator<Item = &'a ChunkRef>) {
        if let Ok(mut reused) = self.reused.lock() {
            for chunk in chunks {
                reused
                    .entry(chunk.id.clone())
                    .or_insert_with(|| chunk.clone());
            }
        }
    }

    /// Checks that every chunk the set names without having stored it is still in the store
    /// with its recorded size, before the set commits: exit 0 means restorable.
    pub async fn check_reused(&self) -> Result<(), BackupError> {
        let reused: Vec<ChunkRef> = self
            .reused
            .lock()
            .map(|r| r.values().cloned().collect())
            .unwrap_or_default();
        let encrypted = self.recipients.is_some();
        let mut heads = futures::stream::iter(reused)
            .map(|chunk| async move {
                let key = chunks::chunk_key(&self.database, &chunk.id, encrypted);
                match self.store.head(&key).await? {
                    Some(meta) if meta.size == chunk.bytes && !meta.is_archived() => Ok(()),
                    Some(meta) if meta.is_archived() => Err(BackupError::Copy {
                        table: key,
                        reason: format!(
                            "the shared chunk is in {} and cannot be read at once; restore it to S3 Standard or move it back, then back up again",
                            meta.storage_class.unwrap_or_default()
                        ),
                    }),
                    _ => Err(BackupError::Copy {
                        table: key,
                        reason: "a shared chunk the previous backup names is missing or changed; \
                                 verify the previous backup, then back up again"
                            .into(),
                    }),
                }
            })
            .buffer_unordered(16);
        while let Some(checked) = heads.next().await {
            checked?;
        }
        Ok(())
    }
}

/// A chunk's task, ended: a task that panicked is an error, not a crash of the run.
fn joined<T>(result: Result<T, tokio::task::JoinError>) -> Result<T, StoreError> {
    result.map_err(|e| StoreError::Source {
        key: "a shared chunk".into(),
        source: std::io::Error::other(e.to_string()),
    })
}

/// The chunks a backup may name without storing them: those of the database's newest set
/// written as this one will be (the same recipients, or none), read from its manifest's clear
/// part. An unreadable or older manifest gives none: every chunk is then stored (or found).
pub(super) async fn known_chunks(
    store: &dyn Store,
    database: &DatabaseId,
    recipients: Option<&Recipients>,
) -> Result<(Known, Option<Manifest>), StoreError> {
    let listing = store.list(&database_prefix(database)).await?;
    let Some(newest) = committed_backups(database, listing.iter().map(|o| o.key.as_str()))
        .into_iter()
        .next_back()
    else {
        return Ok((Known::default(), None));
    };
    let Some(found) = store
        .read_versioned(&set_key(database, &newest, MANIFEST_NAME))
        .await?
    else {
        return Ok((Known::default(), None));
    };
    let Ok(manifest) = serde_json::from_slice::<Manifest>(&found.body) else {
        return Ok((Known::default(), None));
    };
    let theirs = manifest.encryption.as_ref().map(|e| e.recipients.clone());
    let ours = recipients.map(|r| r.names().to_vec());
    if theirs != ours
        || manifest.backup_id != newest.as_str()
        || manifest.seal_holds() == Some(false)
        || manifest.check_shape().is_err()
    {
        return Ok((Known::default(), None));
    }
    let known = Known::new(manifest.chunk_refs().cloned());
    // An encrypted set keeps its tables to itself: only a plaintext one's parts can be named.
    let previous = (!manifest.is_encrypted()).then_some(manifest);
    Ok((known, previous))
}
