//! Shared chunks (DESIGN.md, "Shared chunks"): a data part's COPY stream cut at
//! content-defined boundaries (FastCDC, its gear table seeded from the database's chunk key),
//! each chunk stored once per database under an id that is the HMAC-SHA-256 of its content
//! under that key, zstd-compressed and, with recipients, age-encrypted. A set's manifest lists
//! each part's chunks in order with their stored size and SHA-256, so a chunk that an earlier
//! set of the database already stored costs the new set one line of its manifest.
//!
//! ```text
//! <database-id>/chunks/<id[..2]>/<id>.zst[.age]   one chunk, written create-only
//! _backstop/chunks/<database-id>.key              the key of a plaintext database's chunks
//! ```
//! The id reveals nothing of a chunk's content to a reader of the bucket who lacks the key. A
//! plaintext database's key is kept in the store (whoever reads the bucket reads the chunks
//! too); an encrypted database's key is given to the writer (`BACKSTOP_CHUNK_KEY`, from the
//! environment or a secret) and never stored, so its ids cannot be tested against guessed
//! contents by anyone holding the bucket alone.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use backstop_store::layout::{DatabaseId, STATE_PREFIX, database_prefix};
use backstop_store::store::{Store, StoreError, WriteCondition};

/// The folder of a database's chunks, beside its sets.
pub const CHUNKS_FOLDER: &str = "chunks";
/// No chunk is cut shorter than this (but a part's last)...
pub const MIN_CHUNK: u32 = 256 * 1024;
/// ...they average about this...
pub const AVERAGE_CHUNK: u32 = 1024 * 1024;
/// ...and none is longer than this.
pub const MAX_CHUNK: u32 = 4 * 1024 * 1024;

/// A database's chunk key: 32 random bytes. Never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct ChunkKey([u8; 32]);

impl std::fmt::Debug for ChunkKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ChunkKey(held)")
    }
}

/// A chunk key that is not 64 hexadecimal digits.
#[derive(Debug, thiserror::Error)]
#[error(
    "the chunk key is not 64 hexadecimal digits (32 bytes); make one with `openssl rand -hex 32`"
)]
pub struct InvalidChunkKey;

impl ChunkKey {
    /// A fresh random key.
    pub fn generate() -> Self {
        Self(rand::random())
    }

    /// The key written as 64 hexadecimal digits (surrounding white space ignored).
    pub fn from_hex(text: &str) -> Result<Self, InvalidChunkKey> {
        let bytes = hex::decode(text.trim()).map_err(|_| InvalidChunkKey)?;
        Ok(Self(bytes.try_into().map_err(|_| InvalidChunkKey)?))
    }

    fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    fn mac(&self, context: &[u8], content: &[u8]) -> [u8; 32] {
        // HMAC takes a key of any length: the `else` cannot be reached.
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&self.0) else {
            return [0; 32];
        };
        mac.update(context);
        mac.update(content);
        mac.finalize().into_bytes().into()
    }

    /// The id of a chunk holding `content` for readers `scope` (the sorted recipients of an
    /// encrypted set, empty for a plaintext one): lower-case hex HMAC-SHA-256 under this key.
    /// A chunk encrypted to other recipients has another id, so it is never taken for one.
    pub fn id(&self, scope: &[u8], content: &[u8]) -> String {
        let mut context = b"backstop chunk id\0".to_vec();
        context.extend_from_slice(scope);
        context.push(0);
        hex::encode(self.mac(&context, content))
    }

    /// The seed of the chunker's gear table, so that where chunks are cut tells nothing of
    /// their content either.
    fn gear_seed(&self) -> u64 {
        let mac = self.mac(b"backstop chunk boundaries\0", b"");
        u64::from_le_bytes(mac[..8].try_into().unwrap_or_default())
    }
}

/// One chunk of a data part, as its manifest records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkRef {
    /// HMAC-SHA-256 of the content under the database's chunk key, 64 lower-case hex digits.
    pub id: String,
    /// Size of the stored (compressed, maybe encrypted) object.
    pub bytes: u64,
    /// SHA-256 of the stored object, lower-case hex.
    pub sha256: String,
    /// Size of the content.
    pub plain_bytes: u64,
}

/// Whether `id` has the shape of a chunk id (so a manifest's ids make keys inside the store).
pub fn is_chunk_id(id: &str) -> bool {
    id.len() == 64
        && id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// The store key of chunk `id` of `database` (`encrypted`: age-encrypted, `.age` after it).
pub fn chunk_key(database: &DatabaseId, id: &str, encrypted: bool) -> String {
    format!(
        "{}{CHUNKS_FOLDER}/{}/{id}.zst{}",
        database_prefix(database),
        &id[..2.min(id.len())],
        if encrypted { ".age" } else { "" }
    )
}

/// The chunk id in a key of `database`'s chunk folder, when it is one.
pub fn id_of_key<'a>(database: &DatabaseId, key: &'a str) -> Option<&'a str> {
    let rest = key
        .strip_prefix(&database_prefix(database))?
        .strip_prefix(CHUNKS_FOLDER)?
        .strip_prefix('/')?;
    let (_, name) = rest.split_once('/')?;
    let id = name
        .strip_suffix(".zst.age")
        .or_else(|| name.strip_suffix(".zst"))?;
    is_chunk_id(id).then_some(id)
}

/// The checksum a chunked part's manifest entry carries in place of its stored bytes' SHA-256:
/// the SHA-256 of its chunk list (`<id> <sha256> <bytes> <plain bytes>` lines).
pub fn list_digest(chunks: &[ChunkRef]) -> String {
    let mut hash = Sha256::new();
    for chunk in chunks {
        hash.update(
            format!(
                "{} {} {} {}\n",
                chunk.id, chunk.sha256, chunk.bytes, chunk.plain_bytes
            )
            .as_bytes(),
        );
    }
    hex::encode(hash.finalize())
}

/// The most a stored chunk may take: the longest chunk, zstd's worst case for it, and age's
/// framing. A manifest naming more is refused before anything is allocated for it.
pub const MAX_STORED_CHUNK: u64 = 2 * MAX_CHUNK as u64 + 65_536;

/// Whether a manifest's chunk entry has sizes a chunk can have.
pub fn sizes_fit(chunk: &ChunkRef) -> bool {
    chunk.plain_bytes <= u64::from(MAX_CHUNK) && chunk.bytes <= MAX_STORED_CHUNK
}

/// The scope of a set's chunk ids: its sorted recipients (none for a plaintext set).
pub fn scope(recipients: Option<&[String]>) -> Vec<u8> {
    let mut names: Vec<&str> = recipients
        .unwrap_or_default()
        .iter()
        .map(String::as_str)
        .collect();
    names.sort_unstable();
    names.join(",").into_bytes()
}

/// Cuts a stream of bytes into chunks at content-defined boundaries, holding at most one
/// longest chunk in memory.
pub struct Chunker {
    buffer: Vec<u8>,
    seed: u64,
}

impl Chunker {
    pub fn new(key: &ChunkKey) -> Self {
        Self {
            buffer: Vec::with_capacity(MAX_CHUNK as usize),
            seed: key.gear_seed(),
        }
    }

    /// Takes `bytes`, returning the chunks they complete.
    pub fn push(&mut self, mut bytes: &[u8]) -> Vec<Vec<u8>> {
        let mut chunks = Vec::new();
        while !bytes.is_empty() {
            let room = MAX_CHUNK as usize - self.buffer.len();
            let take = room.min(bytes.len());
            self.buffer.extend_from_slice(&bytes[..take]);
            bytes = &bytes[take..];
            if self.buffer.len() == MAX_CHUNK as usize {
                chunks.push(self.cut());
            }
        }
        chunks
    }

    /// The chunks left once the stream has ended.
    pub fn finish(mut self) -> Vec<Vec<u8>> {
        let mut chunks = Vec::new();
        while !self.buffer.is_empty() {
            chunks.push(self.cut());
        }
        chunks
    }

    /// The first chunk of the buffer, taken out of it.
    fn cut(&mut self) -> Vec<u8> {
        let end = if self.buffer.len() <= MIN_CHUNK as usize {
            self.buffer.len()
        } else {
            let cdc = fastcdc::v2020::FastCDC::with_level_and_seed(
                &self.buffer,
                MIN_CHUNK,
                AVERAGE_CHUNK,
                MAX_CHUNK,
                fastcdc::v2020::Normalization::Level1,
                self.seed,
            );
            cdc.cut(0, self.buffer.len()).1
        };
        let rest = self.buffer.split_off(end);
        std::mem::replace(&mut self.buffer, rest)
    }
}

/// Where a plaintext database's chunk key is kept.
pub fn store_key_key(database: &DatabaseId) -> String {
    format!("{STATE_PREFIX}/{CHUNKS_FOLDER}/{database}.key")
}

/// The chunk key of a plaintext `database`, kept in the store: the one there, or a new one
/// written create-only (two first runs agree on whichever landed).
pub async fn store_key(store: &dyn Store, database: &DatabaseId) -> Result<ChunkKey, StoreError> {
    let key = store_key_key(database);
    for _ in 0..2 {
        if let Some(found) = store.read_versioned(&key).await? {
            let text = String::from_utf8_lossy(&found.body).to_string();
            return ChunkKey::from_hex(&text).map_err(|e| StoreError::Source {
                key: key.clone(),
                source: std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string()),
            });
        }
        let fresh = ChunkKey::generate();
        if store
            .write_if(&key, fresh.to_hex().as_bytes(), WriteCondition::Absent)
            .await?
            .is_some()
        {
            return Ok(fresh);
        }
    }
    Err(StoreError::AlreadyExists {
        store: store.url().to_string(),
        key,
    })
}

/// The chunks a backup may refer to without storing them: those the database's newest set
/// lists (written with the same key, encryption and recipients), and those this run stored.
#[derive(Clone, Default)]
pub struct Known(Arc<Mutex<HashMap<String, ChunkRef>>>);

impl Known {
    pub fn new(chunks: impl IntoIterator<Item = ChunkRef>) -> Self {
        Self(Arc::new(Mutex::new(
            chunks.into_iter().map(|c| (c.id.clone(), c)).collect(),
        )))
    }

    pub fn get(&self, id: &str) -> Option<ChunkRef> {
        self.0.lock().ok().and_then(|known| known.get(id).cloned())
    }

    pub fn insert(&self, chunk: ChunkRef) {
        if let Ok(mut known) = self.0.lock() {
            known.insert(chunk.id.clone(), chunk);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> ChunkKey {
        ChunkKey::from_hex(&"ab".repeat(32)).unwrap()
    }

    #[test]
    fn ids_are_keyed_and_never_printed() {
        let other = ChunkKey::from_hex(&"cd".repeat(32)).unwrap();
        assert_eq!(key().id(b"", b"rows"), key().id(b"", b"rows"));
        assert_ne!(key().id(b"", b"rows"), other.id(b"", b"rows"));
        assert_ne!(key().id(b"", b"rows"), hex::encode(Sha256::digest(b"rows")));
        assert!(is_chunk_id(&key().id(b"", b"rows")));
        // Encrypted to other recipients, the same content is another chunk.
        let one = scope(Some(&["age1b".to_string(), "age1a".to_string()]));
        let same = scope(Some(&["age1a".to_string(), "age1b".to_string()]));
        let other_readers = scope(Some(&["age1a".to_string()]));
        assert_eq!(one, same, "the order of the recipients does not matter");
        assert_ne!(key().id(&one, b"rows"), key().id(&other_readers, b"rows"));
        assert_eq!(format!("{:?}", key()), "ChunkKey(held)");
        assert!(ChunkKey::from_hex("abcd").is_err());
        assert!(ChunkKey::from_hex(&"zz".repeat(32)).is_err());
    }

    #[test]
    fn keys_of_chunks_name_their_id_and_nothing_else() {
        let db = DatabaseId::new("main").unwrap();
        let id = key().id(b"", b"x");
        let stored = chunk_key(&db, &id, true);
        assert_eq!(stored, format!("main/chunks/{}/{id}.zst.age", &id[..2]));
        assert_eq!(id_of_key(&db, &stored), Some(id.as_str()));
        assert_eq!(
            id_of_key(&db, &chunk_key(&db, &id, false)),
            Some(id.as_str())
        );
        for other in [
            "main/20260101T000000Z-aaaa/manifest.json",
            "main/chunks/ab/nothex.zst",
            "other/chunks/ab/x.zst",
        ] {
            assert_eq!(id_of_key(&db, other), None, "{other}");
        }
    }

    /// A deterministic stream of rows, as a table's COPY would send them.
    fn rows(from: u64, to: u64) -> Vec<u8> {
        (from..to)
            .flat_map(|i| format!("{i}\tcustomer-{}\t{}\n", i % 977, i * 31 % 10007).into_bytes())
            .collect()
    }

    fn cut(data: &[u8], piece: usize) -> Vec<Vec<u8>> {
        let mut chunker = Chunker::new(&key());
        let mut chunks = Vec::new();
        for bytes in data.chunks(piece) {
            chunks.extend(chunker.push(bytes));
        }
        chunks.extend(chunker.finish());
        chunks
    }

    #[test]
    fn chunks_rebuild_the_stream_whatever_its_pieces() {
        let data = rows(0, 400_000);
        let whole = cut(&data, data.len());
        assert_eq!(whole.concat(), data);
        assert_eq!(cut(&data, 8191), whole, "boundaries depend on content only");
        assert!(whole.len() > 3, "{} chunks", whole.len());
        assert!(
            whole.iter().all(|c| c.len() <= MAX_CHUNK as usize),
            "no chunk is longer than the longest"
        );
    }

    #[test]
    fn rows_appended_leave_the_earlier_chunks_as_they_were() {
        let before = cut(&rows(0, 400_000), 65536);
        let after = cut(&rows(0, 404_000), 65536);
        let ids = |chunks: &[Vec<u8>]| chunks.iter().map(|c| key().id(b"", c)).collect::<Vec<_>>();
        let (before, after) = (ids(&before), ids(&after));
        let kept = after.iter().filter(|id| before.contains(id)).count();
        assert!(kept >= before.len() - 1, "{kept} of {} kept", before.len());
    }

    #[test]
    fn a_list_digest_changes_with_any_chunk() {
        let chunk = ChunkRef {
            id: key().id(b"", b"a"),
            bytes: 10,
            sha256: "00".repeat(32),
            plain_bytes: 1,
        };
        let moved = ChunkRef {
            bytes: 11,
            ..chunk.clone()
        };
        let once = list_digest(std::slice::from_ref(&chunk));
        assert_ne!(once, list_digest(&[moved]));
        assert_eq!(once, list_digest(&[chunk]));
    }
}
