//! Reading the parts of a backup set back, checked: every part's stored size and SHA-256,
//! and a data part's COPY framing, row count and row digest, as it streams. A part carried
//! forward by row deltas (`engine::delta`) reads as its base rows with the deltas applied.

use std::ops::Range;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use async_compression::tokio::bufread::ZstdDecoder;
use bytes::Bytes;
use sha2::{Digest, Sha256};
use tokio::io::{
    AsyncBufRead, AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncSeekExt, AsyncWrite,
    AsyncWriteExt, BufReader, ReadBuf,
};

use super::{RestoreError, SEND_BATCH};
use crate::delta::{DeltaError, MAX_DELTA_BYTES, Merge, Passed};
use crate::digest::RowDigest;
use crate::encryption::{self, EncryptionError};
use crate::large_objects;
use crate::manifest::{Deltas, Manifest, OpenError, Part, PartKind, TablePart};
use crate::script;
use backstop_pg::describe;
use backstop_store::layout::{BackupId, DatabaseId, set_key};
use backstop_store::store::{Store, StoreError};

/// Counts stored bytes and their SHA-256 as they are read (before any decryption).
pub(crate) struct HashingReader<R> {
    inner: R,
    stored: Stored,
}

/// The size and SHA-256 of a part's stored bytes, filled in as it is read.
#[derive(Clone, Default)]
pub(crate) struct Stored(Arc<Mutex<(Sha256, u64)>>);

impl<R: AsyncRead + Unpin> AsyncRead for HashingReader<R> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let poll = Pin::new(&mut self.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = &poll
            && let Ok(mut stored) = self.stored.0.lock()
        {
            let new = &buf.filled()[before..];
            stored.1 += new.len() as u64;
            stored.0.update(new);
        }
        poll
    }
}

impl<R> HashingReader<R> {
    /// `inner`, hashed as it is read.
    pub(crate) fn new(inner: R) -> (Self, Stored) {
        let stored = Stored::default();
        (
            Self {
                inner,
                stored: stored.clone(),
            },
            stored,
        )
    }
}

impl Stored {
    /// Counts `bytes` read of a chunked part (whose chunks are each hashed on their own).
    pub(crate) fn add(&self, bytes: u64) {
        if let Ok(mut state) = self.0.lock() {
            state.1 += bytes;
        }
    }

    /// The lower-case hex SHA-256 and size of what was read so far.
    pub(crate) fn digest(&self) -> Option<(String, u64)> {
        self.0
            .lock()
            .ok()
            .map(|state| (hex::encode(state.0.clone().finalize()), state.1))
    }
}

pub(crate) type PartReader<'a> = BufReader<Box<dyn AsyncRead + Send + Unpin + 'a>>;

/// A decompressed part held to the size its manifest records: one byte more is an error, so
/// a small part that expands without end (a zstd bomb) stops there, never filling memory.
pub(crate) struct Capped<R> {
    inner: R,
    /// Bytes still allowed; `None` for parts of sets older than format 4.
    left: Option<u64>,
}

impl<R> Capped<R> {
    /// `inner`, allowed `limit` bytes (`None`: unbounded, for formats that record no size).
    pub(crate) fn new(inner: R, limit: Option<u64>) -> Self {
        Self { inner, left: limit }
    }
}

impl<R: AsyncRead + Unpin> AsyncRead for Capped<R> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let poll = Pin::new(&mut self.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = &poll
            && let Some(left) = self.left
        {
            let read = (buf.filled().len() - before) as u64;
            if read > left {
                return Poll::Ready(Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    "it decompresses to more than the size its manifest records",
                )));
            }
            self.left = Some(left - read);
        }
        poll
    }
}

/// A part opened for reading.
pub(crate) struct OpenedPart<'a> {
    /// What the part holds; for a part carried forward by row deltas, its base rows.
    reader: PartReader<'a>,
    /// The size and SHA-256 of its stored bytes, as they are read.
    stored: Stored,
    /// For a part carried forward by row deltas, those deltas, read and gathered: every base
    /// row passes through them on its way to a reader.
    merge: Option<Merge>,
}

/// Opens a part for reading: its stored bytes counted and hashed, decrypted when the set is
/// encrypted (with the identities the manifest was opened with), then decompressed. A part
/// with row deltas has them read first, whole, and its base rows streamed.
pub(crate) async fn open_part<'a>(
    store: &'a dyn Store,
    manifest: &Manifest,
    part: &Part,
) -> Result<OpenedPart<'a>, RestoreError> {
    if part.is_chunked() {
        let stored = Stored::default();
        let (base, limit, merge) = match &part.deltas {
            None => (0..part.chunks.len(), part.plain_bytes, None),
            Some(deltas) => {
                let merge = read_deltas(store, manifest, part, deltas, &stored).await?;
                let end = deltas
                    .starts
                    .first()
                    .map_or(part.chunks.len(), |&start| start as usize);
                (0..end, Some(plain_size(part, 0..end)), Some(merge))
            }
        };
        let chunks = super::chunked::reader(store, manifest, part, base, stored.clone())?;
        let capped: Box<dyn AsyncRead + Send + Unpin + 'a> = Box::new(Capped::new(chunks, limit));
        return Ok(OpenedPart {
            reader: BufReader::with_capacity(SEND_BATCH, capped),
            stored,
            merge,
        });
    }
    let reader = match store.get(&part_key(manifest, part)?).await {
        Ok(reader) => reader,
        Err(StoreError::NotFound { .. }) => {
            return Err(RestoreError::Corrupt {
                backup: manifest.backup_id.clone(),
                part: part.key.clone(),
                reason: "it is missing from the store".into(),
            });
        }
        Err(e) => return Err(e.into()),
    };
    let stored = Stored::default();
    let hashing = BufReader::new(HashingReader {
        inner: reader,
        stored: stored.clone(),
    });
    Ok(OpenedPart {
        reader: decode(manifest, part, hashing).await?,
        stored,
        merge: None,
    })
}

/// The plain size of the chunks `range` of `part`, as its manifest records them.
fn plain_size(part: &Part, range: Range<usize>) -> u64 {
    part.chunks
        .get(range)
        .unwrap_or_default()
        .iter()
        .map(|chunk| chunk.plain_bytes)
        .sum()
}

/// The row deltas of `part`, each read whole (every chunk checked as it is read) and applied
/// in order. Refused before anything is fetched when together they are larger than
/// [`MAX_DELTA_BYTES`], the most a restore holds in memory.
async fn read_deltas(
    store: &dyn Store,
    manifest: &Manifest,
    part: &Part,
    deltas: &Deltas,
    stored: &Stored,
) -> Result<Merge, RestoreError> {
    let corrupt = |reason: String| RestoreError::Corrupt {
        backup: manifest.backup_id.clone(),
        part: part.key.clone(),
        reason,
    };
    let starts: Vec<usize> = deltas.starts.iter().map(|&start| start as usize).collect();
    let ends = starts.iter().skip(1).copied().chain([part.chunks.len()]);
    let ranges: Vec<Range<usize>> = starts.iter().zip(ends).map(|(&s, e)| s..e).collect();
    let first = starts.first().copied().unwrap_or(part.chunks.len());
    let bytes = plain_size(part, first..part.chunks.len());
    if bytes > MAX_DELTA_BYTES {
        return Err(RestoreError::DeltasTooLarge {
            backup: manifest.backup_id.clone(),
            part: part.key.clone(),
            bytes,
            limit: MAX_DELTA_BYTES,
        });
    }
    let read = |e: std::io::Error| corrupt(super::chunked::read_error_text(&e));
    let mut merge = Merge::new(deltas.key.clone());
    for range in ranges {
        // Each chunk is held to its recorded size as it is read: so is the delta.
        let size = plain_size(part, range.clone());
        let reader = super::chunked::reader(store, manifest, part, range, stored.clone())?;
        let mut delta = Vec::with_capacity(size as usize);
        reader
            .take(size)
            .read_to_end(&mut delta)
            .await
            .map_err(read)?;
        merge
            .apply(&delta)
            .map_err(|e| corrupt(format!("its row deltas do not apply: {e}")))?;
    }
    Ok(merge)
}

/// A part's stored bytes made readable: decrypted when the set is encrypted (with the
/// identities the manifest was opened with), then decompressed.
async fn decode(
    manifest: &Manifest,
    part: &Part,
    stored: impl AsyncBufRead + Send + Unpin + 'static,
) -> Result<PartReader<'static>, RestoreError> {
    let plain: Box<dyn AsyncRead + Send + Unpin> = match &manifest.encryption {
        None => Box::new(stored),
        Some(encrypted) => {
            let keys = manifest
                .keys
                .0
                .as_ref()
                .ok_or_else(|| no_identity(manifest))?;
            encryption::decrypting(keys, stored, &encrypted.recipients)
                .await
                .map_err(|e| decrypt_error(manifest, &part.key, e))?
        }
    };
    let decoded: Box<dyn AsyncRead + Send + Unpin> = Box::new(Capped::new(
        ZstdDecoder::new(BufReader::new(plain)),
        part.plain_bytes,
    ));
    Ok(BufReader::with_capacity(SEND_BATCH, decoded))
}

/// A part's stored bytes fetched into a private temporary file (unnamed, owner-only, gone
/// when closed) and checked against the manifest, size and SHA-256, before anything reads
/// them: nothing of a part that does not match ever leaves the tool. A part growing past
/// its recorded size is refused as it streams in.
async fn fetch_checked(
    store: &dyn Store,
    manifest: &Manifest,
    part: &Part,
) -> Result<tokio::fs::File, RestoreError> {
    let corrupt = |reason: String| RestoreError::Corrupt {
        backup: manifest.backup_id.clone(),
        part: part.key.clone(),
        reason,
    };
    let local = |e: std::io::Error| RestoreError::Output { source: e };
    let mut reader = match store.get(&part_key(manifest, part)?).await {
        Ok(reader) => reader,
        Err(StoreError::NotFound { .. }) => {
            return Err(corrupt("it is missing from the store".into()));
        }
        Err(e) => return Err(e.into()),
    };
    let mut file = tokio::fs::File::from_std(tempfile::tempfile().map_err(local)?);
    let mut hasher = Sha256::new();
    let mut bytes = 0u64;
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        let n = reader
            .read(&mut buffer)
            .await
            .map_err(|e| corrupt(format!("it could not be read: {e}")))?;
        if n == 0 {
            break;
        }
        bytes += n as u64;
        if bytes > part.bytes {
            return Err(corrupt(format!(
                "it holds more than the {} bytes the manifest records",
                part.bytes
            )));
        }
        hasher.update(&buffer[..n]);
        file.write_all(&buffer[..n]).await.map_err(local)?;
    }
    matches_manifest(manifest, part, &hex::encode(hasher.finalize()), bytes)?;
    file.flush().await.map_err(local)?;
    file.seek(std::io::SeekFrom::Start(0))
        .await
        .map_err(local)?;
    Ok(file)
}

/// An encrypted set read without an identity: one line naming its recipients.
pub(crate) fn no_identity(manifest: &Manifest) -> RestoreError {
    RestoreError::Open(OpenError::NoIdentity {
        backup: manifest.backup_id.clone(),
        recipients: manifest.recipients(),
    })
}

/// A part that does not decrypt: the wrong identity, or damage the AEAD caught.
pub(crate) fn decrypt_error(
    manifest: &Manifest,
    part: &str,
    error: EncryptionError,
) -> RestoreError {
    match error {
        EncryptionError::WrongIdentity { .. } => RestoreError::Open(OpenError::Decrypt {
            backup: manifest.backup_id.clone(),
            source: error,
        }),
        other => RestoreError::Corrupt {
            backup: manifest.backup_id.clone(),
            part: part.to_string(),
            reason: other.to_string(),
        },
    }
}

/// Checks the stored bytes' size and SHA-256 once a part has been read to its end.
pub(crate) fn check_stored(
    manifest: &Manifest,
    part: &Part,
    stored: &Stored,
) -> Result<(), RestoreError> {
    let corrupt = |reason: String| RestoreError::Corrupt {
        backup: manifest.backup_id.clone(),
        part: part.key.clone(),
        reason,
    };
    let (sha, bytes) = match stored.0.lock() {
        Ok(state) => (hex::encode(state.0.clone().finalize()), state.1),
        Err(_) => return Err(corrupt("its checksum could not be read".into())),
    };
    if part.is_chunked() {
        // Each chunk was held to its own size and SHA-256 as it was read; the list to its
        // digest by the manifest's shape check.
        return match bytes == part.bytes {
            true => Ok(()),
            false => Err(corrupt(format!(
                "{bytes} bytes of chunks read, the manifest says {}",
                part.bytes
            ))),
        };
    }
    matches_manifest(manifest, part, &sha, bytes)
}

/// Whether a part's stored bytes, `bytes` long with SHA-256 `sha`, are those its manifest
/// records.
fn matches_manifest(
    manifest: &Manifest,
    part: &Part,
    sha: &str,
    bytes: u64,
) -> Result<(), RestoreError> {
    let corrupt = |reason: String| RestoreError::Corrupt {
        backup: manifest.backup_id.clone(),
        part: part.key.clone(),
        reason,
    };
    if bytes != part.bytes {
        return Err(corrupt(format!(
            "{bytes} bytes stored, the manifest says {}",
            part.bytes
        )));
    }
    if sha != part.sha256 {
        return Err(corrupt(format!(
            "SHA-256 {sha} does not match the manifest's {}",
            part.sha256
        )));
    }
    Ok(())
}

/// The store key of `part` of `manifest`'s set.
fn part_key(manifest: &Manifest, part: &Part) -> Result<String, RestoreError> {
    let database = DatabaseId::new(&manifest.database_id).map_err(|e| RestoreError::Manifest {
        key: part.key.clone(),
        reason: e.to_string(),
    })?;
    let backup = BackupId::parse(&manifest.backup_id).map_err(|e| RestoreError::Manifest {
        key: part.key.clone(),
        reason: e.to_string(),
    })?;
    Ok(set_key(&database, &backup, &part.key))
}

/// Writes a part's content into `out`, only once it is known to be the part the manifest
/// records: its stored bytes are fetched and checked first (`fetch_checked`); a data or
/// large-object part is also read through its scanner first (framing, rows, digest, the exact
/// shape of each line), since psql will read it; a SQL part must hold no psql meta-command.
async fn export_part(
    store: &dyn Store,
    manifest: &Manifest,
    part: &Part,
    out: &mut (dyn AsyncWrite + Send + Unpin),
) -> Result<(), RestoreError> {
    if part.kind != PartKind::Data {
        let script = read_script(store, manifest, part).await?;
        return out
            .write_all(script.as_bytes())
            .await
            .map_err(|source| RestoreError::Output { source });
    }
    if part.is_chunked() {
        // Its blocks, as they matched the manifest, into a private file first: nothing of a
        // chunk that does not match ever leaves the tool.
        let local = |e: std::io::Error| RestoreError::Output { source: e };
        let mut spool = Spool(tokio::fs::File::from_std(
            tempfile::tempfile().map_err(local)?,
        ));
        scan_data_part(store, manifest, part, &mut spool).await?;
        let mut file = spool.0;
        file.flush().await.map_err(local)?;
        file.seek(std::io::SeekFrom::Start(0))
            .await
            .map_err(local)?;
        tokio::io::copy(&mut file, out).await.map_err(local)?;
        return Ok(());
    }
    match part.large_objects {
        Some(_) => scan_large_object_part(store, manifest, part, None).await?,
        None => scan_data_part(store, manifest, part, &mut Discard).await?,
    };
    // The bytes written below have the SHA-256 of the bytes just scanned.
    let file = fetch_checked(store, manifest, part).await?;
    copy_decoded(manifest, part, BufReader::new(file), out).await
}

/// Reads a whole SQL part, verified.
pub async fn read_script(
    store: &dyn Store,
    manifest: &Manifest,
    part: &Part,
) -> Result<String, RestoreError> {
    let corrupt = |reason: String| RestoreError::Corrupt {
        backup: manifest.backup_id.clone(),
        part: part.key.clone(),
        reason,
    };
    let file = fetch_checked(store, manifest, part).await?;
    let mut bytes = Vec::new();
    copy_decoded(manifest, part, BufReader::new(file), &mut bytes).await?;
    let text = String::from_utf8(bytes).map_err(|_| corrupt("it is not UTF-8 text".into()))?;
    // Backstop writes no psql meta-command: one outside quotes would run in `export | psql`.
    if let Some(line) = script::meta_command(&text) {
        return Err(corrupt(format!(
            "it holds a psql meta-command outside any quoted text (line {line}), which Backstop never writes"
        )));
    }
    Ok(text)
}

/// Decodes checked stored bytes into `out`.
async fn copy_decoded(
    manifest: &Manifest,
    part: &Part,
    stored: impl AsyncBufRead + Send + Unpin + 'static,
    out: &mut (dyn AsyncWrite + Send + Unpin),
) -> Result<(), RestoreError> {
    let mut reader = decode(manifest, part, stored).await?;
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        let n = reader
            .read(&mut buffer)
            .await
            .map_err(|e| RestoreError::Corrupt {
                backup: manifest.backup_id.clone(),
                part: part.key.clone(),
                reason: format!("it does not decompress or decrypt: {e}"),
            })?;
        if n == 0 {
            return Ok(());
        }
        out.write_all(&buffer[..n])
            .await
            .map_err(|source| RestoreError::Output { source })?;
    }
}

/// What `export` leaves out of the script.
#[derive(Debug, Clone, Copy, Default)]
pub struct ExportOptions {
    /// `ALTER ... OWNER TO`: objects belong to whoever runs the script.
    pub no_owner: bool,
    /// GRANT, REVOKE and default privileges.
    pub no_acl: bool,
    /// Leave out the `\restrict KEY` / `\unrestrict KEY` pair around the script, for psql
    /// older than 18, 17.6, 16.10, 15.14, 14.19 and 13.22 (which do not know it).
    pub no_restrict: bool,
    /// Write the planner's statistics (`pg_restore_relation_stats` and
    /// `pg_restore_attribute_stats` calls, which only PostgreSQL 18 and later know; an ANALYZE
    /// for a table the backup could not read them of), as `pg_dump --statistics` does.
    pub statistics: bool,
}

/// Writes the whole backup as one psql script, every part verified on the way.
pub async fn export(
    store: &dyn Store,
    manifest: &Manifest,
    options: &ExportOptions,
    out: &mut (dyn AsyncWrite + Send + Unpin),
) -> Result<(), RestoreError> {
    let write_error = |source| RestoreError::Output { source };
    super::readable(manifest)?;
    // As pg_dump does from 17.6: psql refuses every meta-command between the two, so nothing a
    // database or a store put into the script can run one.
    let key: String = {
        use rand::Rng as _;
        rand::rng()
            .sample_iter(rand::distr::Alphanumeric)
            .take(32)
            .map(char::from)
            .collect()
    };
    if !options.no_restrict {
        out.write_all(format!("\\restrict {key}\n").as_bytes())
            .await
            .map_err(write_error)?;
    }
    for part in &manifest.parts {
        if part.kind == PartKind::Statistics && !options.statistics {
            continue;
        }
        if part.kind != PartKind::Data && (options.no_owner || options.no_acl) {
            let script = read_script(store, manifest, part).await?;
            let adjusted = script::without(
                &script,
                &manifest.item_marker,
                manifest.format_version,
                options.no_owner,
                options.no_acl,
            )
            .map_err(|reason| RestoreError::Manifest {
                key: part.key.clone(),
                reason,
            })?;
            out.write_all(adjusted.as_bytes())
                .await
                .map_err(write_error)?;
        } else {
            export_part(store, manifest, part, out).await?;
        }
    }
    if !options.no_restrict {
        out.write_all(format!("\\unrestrict {key}\n").as_bytes())
            .await
            .map_err(write_error)?;
    }
    out.flush().await.map_err(write_error)
}

/// The `COPY ... FROM STDIN` that loads a data part of `table` into the table named `into`
/// (its own name, or where `--into-schema` moved it), followed by `with` (e.g. ` WITH (FREEZE)`).
pub(super) fn copy_statement(table: &TablePart, into: &str, with: &str) -> String {
    if table.columns.is_empty() {
        format!("COPY {into} FROM STDIN{with}")
    } else {
        format!(
            "COPY {into} ({}) FROM STDIN{with}",
            table.columns.join(", ")
        )
    }
}

/// The COPY header a data part of `table` starts with.
pub(super) fn copy_header(table: &TablePart) -> String {
    if table.columns.is_empty() {
        format!("COPY {} FROM stdin;\n", table.qualified_name)
    } else {
        format!(
            "COPY {} ({}) FROM stdin;\n",
            table.qualified_name,
            table.columns.join(", ")
        )
    }
}

/// Where the COPY blocks of a scanned data part go, block by block. `finish` is called only
/// once the block has matched the manifest (header, end marker, row count and digest).
pub(crate) trait BlockSink {
    /// A block of `table` starts.
    async fn start(&mut self, table: &TablePart) -> Result<(), RestoreError>;
    /// Rows of the current block, in batches of whole lines.
    async fn rows(&mut self, table: &TablePart, batch: Bytes) -> Result<(), RestoreError>;
    /// The current block ended and matched the manifest.
    async fn finish(&mut self, table: &TablePart) -> Result<(), RestoreError>;
}

/// A private file that takes each block as a data part holds it.
struct Spool(tokio::fs::File);

impl BlockSink for Spool {
    async fn start(&mut self, table: &TablePart) -> Result<(), RestoreError> {
        self.0
            .write_all(copy_header(table).as_bytes())
            .await
            .map_err(|source| RestoreError::Output { source })
    }
    async fn rows(&mut self, _: &TablePart, batch: Bytes) -> Result<(), RestoreError> {
        self.0
            .write_all(&batch)
            .await
            .map_err(|source| RestoreError::Output { source })
    }
    async fn finish(&mut self, _: &TablePart) -> Result<(), RestoreError> {
        self.0
            .write_all(b"\\.\n\n")
            .await
            .map_err(|source| RestoreError::Output { source })
    }
}

/// Nowhere: the part is only checked.
pub(crate) struct Discard;

impl BlockSink for Discard {
    async fn start(&mut self, _: &TablePart) -> Result<(), RestoreError> {
        Ok(())
    }
    async fn rows(&mut self, _: &TablePart, _: Bytes) -> Result<(), RestoreError> {
        Ok(())
    }
    async fn finish(&mut self, _: &TablePart) -> Result<(), RestoreError> {
        Ok(())
    }
}

/// Reads every part of `parts` through, `jobs` at a time, checking each against the manifest
/// as a load would (SHA-256, framing, rows, digest), and loading nothing: the first problem
/// found is the error.
pub(super) async fn check_all(
    store: &dyn Store,
    manifest: &Manifest,
    parts: Vec<Part>,
    jobs: usize,
) -> Result<(), RestoreError> {
    use futures::StreamExt;
    let mut checks = futures::stream::iter(parts)
        .map(|part| async move {
            match part.large_objects {
                Some(_) => scan_large_object_part(store, manifest, &part, None).await,
                None => scan_data_part(store, manifest, &part, &mut Discard).await,
            }
        })
        .buffer_unordered(jobs.max(1));
    while let Some(checked) = checks.next().await {
        checked?;
    }
    Ok(())
}

/// Reads a data part's COPY blocks (one, or a bundle's in order) and checks each against the
/// manifest: the header names its table and columns, the rows end with the end-of-data
/// marker, the row count and digest match; then the stored bytes' size and SHA-256. Rows go
/// to `sink` in batches as they are read; returns the row count.
pub(crate) async fn scan_data_part(
    store: &dyn Store,
    manifest: &Manifest,
    part: &Part,
    sink: &mut impl BlockSink,
) -> Result<u64, RestoreError> {
    let corrupt = |reason: String| RestoreError::Corrupt {
        backup: manifest.backup_id.clone(),
        part: part.key.clone(),
        reason,
    };
    if part.blocks().next().is_none() {
        return Err(corrupt(
            "the manifest names no table for this data part".into(),
        ));
    }
    let OpenedPart {
        mut reader,
        stored,
        mut merge,
    } = open_part(store, manifest, part).await?;
    let read = |e: std::io::Error| corrupt(super::chunked::read_error_text(&e));
    let merge_error = |e: DeltaError| corrupt(format!("its row deltas do not apply: {e}"));
    let mut line = Vec::new();
    let mut total = 0;
    for expected in part.blocks() {
        // Blocks of a bundle are separated by an empty line.
        loop {
            line.clear();
            if reader.read_until(b'\n', &mut line).await.map_err(read)? == 0 {
                return Err(corrupt(format!(
                    "it ends before the rows of {} (truncated)",
                    expected.qualified_name
                )));
            }
            if line != b"\n" {
                break;
            }
        }
        if !line.starts_with(b"COPY ") {
            return Err(corrupt("it does not start with a COPY header".into()));
        }
        // A quoted name may hold a newline: the header then spans lines.
        let header = copy_header(expected);
        while line.len() < header.len() && header.as_bytes().starts_with(&line) {
            if reader.read_until(b'\n', &mut line).await.map_err(read)? == 0 {
                break;
            }
        }
        if line != header.as_bytes() {
            let found: String = String::from_utf8_lossy(&line)
                .trim_end()
                .chars()
                .take(200)
                .collect();
            return Err(corrupt(format!(
                "it holds `{found}`, not the data of {} the manifest names",
                expected.qualified_name
            )));
        }
        sink.start(expected).await?;
        let mut rows = Rows::new(expected);
        loop {
            line.clear();
            if reader.read_until(b'\n', &mut line).await.map_err(read)? == 0 {
                return Err(corrupt(
                    "it ends before its end-of-data marker (truncated)".into(),
                ));
            }
            if line == b"\\.\n" {
                break;
            }
            match merge.as_mut() {
                None => rows.push(sink, &line).await?,
                Some(merge) => match merge.pass(&line).map_err(merge_error)? {
                    Passed::Unchanged => rows.push(sink, &line).await?,
                    Passed::Replaced(row) => rows.push(sink, row).await?,
                    Passed::Dropped => {}
                },
            }
        }
        // The rows the deltas inserted, once every base row has passed.
        for row in merge.take().into_iter().flat_map(Merge::into_remaining) {
            rows.push(sink, &row).await?;
        }
        let digest = rows.finish(sink).await?;
        if digest.rows() != expected.rows || digest.hex() != expected.row_digest {
            return Err(corrupt(format!(
                "{} holds {} rows with digest {}, the manifest says {} rows with digest {}",
                expected.qualified_name,
                digest.rows(),
                digest.hex(),
                expected.rows,
                expected.row_digest
            )));
        }
        sink.finish(expected).await?;
        total += digest.rows();
    }
    // After its last block a part holds nothing but blank lines: anything else would reach
    // psql after the end-of-data marker, as commands.
    let mut rest = Vec::new();
    (&mut reader)
        .take(1 << 20)
        .read_to_end(&mut rest)
        .await
        .map_err(read)?;
    if rest.iter().any(|&b| b != b'\n') {
        return Err(corrupt("it holds more after its last block of rows".into()));
    }
    tokio::io::copy(&mut reader, &mut tokio::io::sink())
        .await
        .map_err(read)?;
    check_stored(manifest, part, &stored)?;
    Ok(total)
}

/// The rows of one block on their way to a sink: digested, and sent in batches of whole lines.
struct Rows<'t> {
    table: &'t TablePart,
    digest: RowDigest,
    batch: Vec<u8>,
}

impl<'t> Rows<'t> {
    fn new(table: &'t TablePart) -> Self {
        Self {
            table,
            digest: RowDigest::new(),
            batch: Vec::with_capacity(SEND_BATCH + 1024),
        }
    }

    /// Takes one row (a COPY line with its newline).
    async fn push(&mut self, sink: &mut impl BlockSink, line: &[u8]) -> Result<(), RestoreError> {
        self.digest.update(line);
        self.batch.extend_from_slice(line);
        if self.batch.len() >= SEND_BATCH {
            sink.rows(self.table, Bytes::from(std::mem::take(&mut self.batch)))
                .await?;
        }
        Ok(())
    }

    /// Sends what is left; the digest of every row taken.
    async fn finish(self, sink: &mut impl BlockSink) -> Result<RowDigest, RestoreError> {
        if !self.batch.is_empty() {
            sink.rows(self.table, Bytes::from(self.batch)).await?;
        }
        Ok(self.digest)
    }
}

/// Reads a large-object part and checks it against the manifest: every line is an `lo_put`
/// of the exact shape the backup writes, and the line count, digest, stored size and SHA-256
/// match. With `run`, the statements (rebuilt from what was parsed) run on that connection in
/// batches as they are read. Returns the number of large objects.
pub(crate) async fn scan_large_object_part(
    store: &dyn Store,
    manifest: &Manifest,
    part: &Part,
    run: Option<&tokio_postgres::Client>,
) -> Result<u64, RestoreError> {
    let corrupt = |reason: String| RestoreError::Corrupt {
        backup: manifest.backup_id.clone(),
        part: part.key.clone(),
        reason,
    };
    let Some(expected) = &part.large_objects else {
        return Err(corrupt(
            "the manifest says nothing of this part's large objects".into(),
        ));
    };
    let load_error = |e: tokio_postgres::Error| RestoreError::Load {
        table: format!("the large objects of {}", part.key),
        reason: describe(&e),
    };
    if part.deltas.is_some() {
        return Err(corrupt(
            "it carries row deltas, which only a table's rows can have".into(),
        ));
    }
    let OpenedPart {
        mut reader, stored, ..
    } = open_part(store, manifest, part).await?;
    let read = |e: std::io::Error| corrupt(super::chunked::read_error_text(&e));
    let mut digest = RowDigest::new();
    let mut batch = String::with_capacity(SEND_BATCH + 1024);
    let mut line = Vec::new();
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line).await.map_err(read)? == 0 {
            break;
        }
        let Some(text) = line.strip_suffix(b"\n") else {
            return Err(corrupt("its last line is cut short (truncated)".into()));
        };
        let text = std::str::from_utf8(text).map_err(|_| corrupt("it is not UTF-8 text".into()))?;
        let put = large_objects::parse_line(text).map_err(&corrupt)?;
        digest.update(&line);
        if let Some(client) = run {
            batch.push_str(&put.statement());
            if batch.len() >= SEND_BATCH {
                client.batch_execute(&batch).await.map_err(load_error)?;
                batch.clear();
            }
        }
    }
    if let (Some(client), false) = (run, batch.is_empty()) {
        client.batch_execute(&batch).await.map_err(load_error)?;
    }
    check_stored(manifest, part, &stored)?;
    if digest.rows() != expected.lines || digest.hex() != expected.digest {
        return Err(corrupt(format!(
            "it holds {} lines with digest {}, the manifest says {} lines with digest {}",
            digest.rows(),
            digest.hex(),
            expected.lines,
            expected.digest
        )));
    }
    Ok(expected.objects)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chunks::{ChunkKey, ChunkRef, chunk_key};
    use crate::manifest::tests::empty;
    use backstop_store::store::{FileStore, WriteCondition};

    /// Where a scanned block's rows go in a test: kept, one per line.
    #[derive(Default)]
    struct Collect(Vec<u8>);

    impl BlockSink for Collect {
        async fn start(&mut self, _: &TablePart) -> Result<(), RestoreError> {
            Ok(())
        }
        async fn rows(&mut self, _: &TablePart, batch: Bytes) -> Result<(), RestoreError> {
            self.0.extend_from_slice(&batch);
            Ok(())
        }
        async fn finish(&mut self, _: &TablePart) -> Result<(), RestoreError> {
            Ok(())
        }
    }

    /// Stores `content` as one chunk of database `main`, as a backup would.
    async fn put_chunk(store: &dyn Store, content: &[u8]) -> ChunkRef {
        let key = ChunkKey::from_hex(&"ab".repeat(32)).unwrap();
        let id = key.id(b"", content);
        let stored = zstd::bulk::compress(content, 3).unwrap();
        let database = DatabaseId::new("main").unwrap();
        store
            .write_if(
                &chunk_key(&database, &id, false),
                &stored,
                WriteCondition::Absent,
            )
            .await
            .unwrap();
        ChunkRef {
            id,
            bytes: stored.len() as u64,
            sha256: hex::encode(Sha256::digest(&stored)),
            plain_bytes: content.len() as u64,
        }
    }

    /// The sorted lines of `text`.
    fn sorted_lines(text: &[u8]) -> Vec<&[u8]> {
        let mut lines: Vec<&[u8]> = text.split_inclusive(|&b| b == b'\n').collect();
        lines.sort();
        lines
    }

    /// A manifest of one part of `public.t (id, name)`: base rows cut into two chunks inside a
    /// row, then two deltas keyed by `id` (the first cut inside a line too). Its block records
    /// the merged rows: `1 ally`, `2 bobby`, `5 eve`.
    async fn carried_forward(store: &dyn Store) -> (Manifest, Vec<&'static [u8]>) {
        let base: &[u8] =
            b"COPY public.t (id, name) FROM stdin;\n1\talice\n2\tbob\n3\tcarol\n\\.\n\n";
        let first: &[u8] = b"+\t2\tbobby\n-\t3\n+\t4\tdave\n";
        let second: &[u8] = b"-\t4\n+\t5\teve\n+\t1\tally\n";
        let pieces = [&base[..50], &base[50..], &first[..12], &first[12..], second];
        let mut chunks = Vec::new();
        for piece in pieces {
            chunks.push(put_chunk(store, piece).await);
        }
        let merged: Vec<&'static [u8]> = vec![b"1\tally\n", b"2\tbobby\n", b"5\teve\n"];
        let mut digest = RowDigest::new();
        for row in &merged {
            digest.update(row);
        }
        let mut manifest = empty();
        manifest.parts.push(Part {
            key: "data/0001.copy.chunks".into(),
            order: 1,
            kind: PartKind::Data,
            bytes: chunks.iter().map(|c| c.bytes).sum(),
            sha256: crate::chunks::list_digest(&chunks),
            table: Some(TablePart {
                qualified_name: "public.t".into(),
                schema: "public".into(),
                name: "t".into(),
                columns: vec!["id".into(), "name".into()],
                rows: digest.rows(),
                row_digest: digest.hex(),
                blocks: None,
                storage: None,
                proof: None,
                extension_rows: None,
            }),
            bundle: Vec::new(),
            large_objects: None,
            plain_bytes: Some(chunks.iter().map(|c| c.plain_bytes).sum()),
            chunks,
            deltas: Some(Deltas {
                starts: vec![2, 4],
                key: vec![0],
            }),
        });
        manifest.check_shape().unwrap();
        (manifest, merged)
    }

    #[tokio::test]
    async fn a_part_carried_forward_by_deltas_reads_as_its_merged_rows() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileStore::new(dir.path().to_path_buf());
        let (manifest, merged) = carried_forward(&store).await;
        let part = &manifest.parts[0];
        let mut rows = Collect::default();
        assert_eq!(
            scan_data_part(&store, &manifest, part, &mut rows)
                .await
                .unwrap(),
            3
        );
        assert_eq!(sorted_lines(&rows.0), merged);

        let mut script = Vec::new();
        let options = ExportOptions {
            no_restrict: true,
            ..ExportOptions::default()
        };
        export(&store, &manifest, &options, &mut script)
            .await
            .unwrap();
        let body = script
            .strip_prefix(b"COPY public.t (id, name) FROM stdin;\n".as_slice())
            .and_then(|rest| rest.strip_suffix(b"\\.\n\n".as_slice()))
            .expect("one COPY block");
        assert_eq!(sorted_lines(body), merged);
    }

    #[tokio::test]
    async fn deltas_that_do_not_apply_or_hold_too_much_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileStore::new(dir.path().to_path_buf());
        let (mut manifest, _) = carried_forward(&store).await;
        let reason = |error: RestoreError| match error {
            RestoreError::Corrupt { reason, .. } => reason,
            other => panic!("{other}"),
        };

        // A delta keyed by a column its rows do not have.
        let mut short = manifest.clone();
        short.parts[0].deltas.as_mut().unwrap().key = vec![5];
        let error = scan_data_part(&store, &short, &short.parts[0], &mut Discard)
            .await
            .unwrap_err();
        assert_eq!(
            reason(error),
            "its row deltas do not apply: line 1 of delta 1 is a row of 2 columns, but its key needs 6"
        );

        // More than a restore holds: refused before a chunk is fetched.
        let part = &mut manifest.parts[0];
        part.chunks[4].plain_bytes = MAX_DELTA_BYTES;
        match scan_data_part(&store, &manifest, &manifest.parts[0], &mut Discard).await {
            Err(RestoreError::DeltasTooLarge { bytes, limit, .. }) => {
                assert!(bytes > limit && limit == MAX_DELTA_BYTES);
            }
            other => panic!("{:?}", other.map(|_| ())),
        }
    }
}
