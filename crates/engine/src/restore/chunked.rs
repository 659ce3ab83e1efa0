//! Reading a part stored as shared chunks (`engine::chunks`): each chunk fetched whole, a few
//! ahead of the reader, checked against its recorded size and SHA-256 before a byte of it is
//! used, decrypted, and decompressed to exactly its recorded size; the part is their contents
//! in order.

use std::ops::Range;
use std::sync::Arc;

use bytes::Bytes;
use futures::StreamExt;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio_util::io::StreamReader;

use super::RestoreError;
use super::parts::{Stored, no_identity};
use crate::chunks::{self, ChunkRef};
use crate::encryption::{self, Identities};
use crate::manifest::{Manifest, Part};
use backstop_store::layout::DatabaseId;
use backstop_store::store::{Store, StoreError};

/// Chunks fetched ahead of the one being read, per part.
const AHEAD: usize = 4;

/// What is wrong with one chunk, said whole (the reader's error carries it).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct ChunkProblem(pub String);

/// The text of a read error: a chunk's problem as it is, anything else as a part that does not
/// decode.
pub(crate) fn read_error_text(error: &std::io::Error) -> String {
    match error
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<ChunkProblem>())
    {
        Some(problem) => problem.0.clone(),
        None => format!("it does not decompress or decrypt: {error}"),
    }
}

/// The contents of the chunks `range` of chunked `part` (all of them, or its base rows or one
/// of its deltas), read as they are checked; `stored` counts the chunks' stored bytes.
pub(super) fn reader<'a>(
    store: &'a dyn Store,
    manifest: &Manifest,
    part: &Part,
    range: Range<usize>,
    stored: Stored,
) -> Result<Box<dyn AsyncRead + Send + Unpin + 'a>, RestoreError> {
    let database = DatabaseId::new(&manifest.database_id).map_err(|e| RestoreError::Manifest {
        key: part.key.clone(),
        reason: e.to_string(),
    })?;
    let first = range.start;
    let Some(chunks) = part.chunks.get(range) else {
        return Err(RestoreError::Corrupt {
            backup: manifest.backup_id.clone(),
            part: part.key.clone(),
            reason: "its manifest entry reads past its last chunk".into(),
        });
    };
    let recipients = manifest.encryption.as_ref().map(|e| e.recipients.clone());
    let keys = match (&recipients, &manifest.keys.0) {
        (Some(_), None) => return Err(no_identity(manifest)),
        (_, keys) => keys.clone(),
    };
    let total = part.chunks.len();
    // Owned: the reader outlives the borrow of `part`.
    let chunks: Vec<ChunkRef> = chunks.to_vec();
    let fetches = futures::stream::iter(chunks.into_iter().zip(first..))
        .map(move |(chunk, index)| {
            let key = chunks::chunk_key(&database, &chunk.id, recipients.is_some());
            let opened = Opened {
                keys: keys.clone(),
                recipients: recipients.clone(),
                stored: stored.clone(),
            };
            async move {
                fetch(store, &key, &chunk, &opened).await.map_err(|what| {
                    std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        ChunkProblem(format!(
                            "its chunk {} ({} of {total}) {what}",
                            &chunk.id[..12.min(chunk.id.len())],
                            index + 1
                        )),
                    )
                })
            }
        })
        .buffered(AHEAD);
    Ok(Box::new(StreamReader::new(Box::pin(fetches))))
}

/// What a chunk is opened with.
struct Opened {
    keys: Option<Arc<Identities>>,
    recipients: Option<Vec<String>>,
    stored: Stored,
}

/// One chunk's content, or what is wrong with it.
async fn fetch(
    store: &dyn Store,
    key: &str,
    chunk: &ChunkRef,
    opened: &Opened,
) -> Result<Bytes, String> {
    let mut reader = match store.get(key).await {
        Ok(reader) => reader,
        Err(StoreError::NotFound { .. }) => return Err("is missing from the store".into()),
        Err(e) => return Err(format!("could not be read: {e}")),
    };
    if !chunks::sizes_fit(chunk) {
        return Err("records sizes no chunk has".into());
    }
    let mut data = Vec::with_capacity(chunk.bytes as usize);
    (&mut reader)
        .take(chunk.bytes.saturating_add(1))
        .read_to_end(&mut data)
        .await
        .map_err(|e| format!("could not be read: {e}"))?;
    opened.stored.add(data.len() as u64);
    if data.len() as u64 != chunk.bytes {
        return Err(format!(
            "holds {} bytes, the manifest says {}",
            data.len(),
            chunk.bytes
        ));
    }
    let sha = hex::encode(Sha256::digest(&data));
    if sha != chunk.sha256 {
        return Err(format!(
            "has SHA-256 {sha}, the manifest says {}",
            chunk.sha256
        ));
    }
    let compressed = match (&opened.recipients, &opened.keys) {
        (Some(recipients), Some(keys)) => encryption::decrypt_bytes(keys, &data, recipients)
            .map_err(|e| format!("does not decrypt: {e}"))?,
        _ => data,
    };
    let plain = zstd::bulk::decompress(&compressed, chunk.plain_bytes as usize)
        .map_err(|e| format!("does not decompress to its recorded size: {e}"))?;
    if plain.len() as u64 != chunk.plain_bytes {
        return Err(format!(
            "decompresses to {} bytes, the manifest says {}",
            plain.len(),
            chunk.plain_bytes
        ));
    }
    Ok(Bytes::from(plain))
}
