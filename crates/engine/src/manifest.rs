//! `manifest.json`: the record that commits a backup set (DESIGN.md, "Backup set format").
//!
//! Written last. Lists every part in restore order with its size and the SHA-256 of its
//! stored bytes; data parts also carry their table, columns, row count and row digest.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::chunks::{self, ChunkRef};
use crate::encryption::{self, EncryptionError, Identities, Recipients};
pub use crate::stored::{ManifestEncryption, StoredFile};
use crate::stream::plan::StreamPosition;
use backstop_store::tier::Tier;

/// The manifest format this engine writes; it reads this one and every older one.
/// 2: data parts may be bundles of several small tables (`Part::bundle`).
/// 3: the set holds `globals.json` (`Manifest::globals`): roles and database properties; an
/// encrypted set's manifest keeps its content in `encryption.private`.
/// 4: each part records its size before compression (`Part::plain_bytes`), which readers hold
/// decompression to.
/// 5: each item's marker records its marks (`engine::sql`): where it names roles, changes an
/// owner, acts as a grantor or adds a plain key, and what a foreign key references.
/// 6: a `statistics` part after post-data holds the planner's statistics (items
/// `statistics-data` and `analyze`), which a restore gives last.
/// 7: a data part may be stored as shared chunks (`Part::chunks`, `engine::chunks`), and the
/// manifest says how many bytes the set added to the store (`Manifest::new_bytes`).
/// 8: a chunked table part may be carried forward by row deltas (`Part::deltas`,
/// `engine::delta`), and a block may be proven unchanged by the change stream
/// (`Proof::Stream`).
pub const FORMAT_VERSION: u32 = 8;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub format_version: u32,
    pub engine_version: String,
    pub database_id: String,
    pub database_name: String,
    pub backup_id: String,
    pub server_version: String,
    pub server_version_num: u32,
    #[serde(with = "time::serde::rfc3339")]
    pub started_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub finished_at: OffsetDateTime,
    pub tier: Tier,
    /// `pg_database_size` as the backup was taken: what the next run's duration is estimated
    /// from (`runner::estimate`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database_bytes: Option<u64>,
    /// The backup's snapshot as `pg_current_snapshot()` prints it (`xmin:xmax:xip,...`): which
    /// transactions its rows hold, so that a change stream replays exactly the others.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<String>,
    /// The WAL position when the snapshot was taken (on a standby, the position replayed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wal_lsn: Option<String>,
    /// Where the backup stands in the database's change stream, when a stream's slot existed
    /// as it was taken: what a point-in-time restore carries it forward with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<StreamPosition>,
    /// Marker that starts each item in the SQL parts (`-- <marker> {json}`).
    pub item_marker: String,
    pub parts: Vec<Part>,
    /// Objects per kind in the source database, as `pg_identify_object` names kinds.
    pub inventory: BTreeMap<String, u64>,
    /// The roles and database properties the set carries (`engine::globals`), when it has them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub globals: Option<StoredFile>,
    /// Objects the operator excluded, as `kind identity`.
    #[serde(default)]
    pub excluded: Vec<String>,
    /// Why the backup was taken, when someone said (e.g. `before migration 00021`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// How the set is encrypted; absent for a plaintext set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encryption: Option<ManifestEncryption>,
    /// Where this set stands in the server's WAL, for a later backup's proof that tables did
    /// not change (`backup::unchanged`); recorded by incremental backups on a primary.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wal_origin: Option<WalOrigin>,
    /// Bytes this set added to the store: its own objects and the shared chunks it was the
    /// first to store (absent before format 7, where every byte of a set is its own).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new_bytes: Option<u64>,
    /// SHA-256 of this manifest's compact JSON with `seal` left out, so an edit made after the
    /// backup was written is noticed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seal: Option<String>,
    /// The identities this manifest was opened with ([`Manifest::open`]): what its parts are
    /// decrypted with. Never stored.
    #[serde(skip)]
    pub keys: Keys,
}

/// Identities held in memory beside an opened manifest (equal whatever they hold: they are not
/// part of its content).
#[derive(Clone, Default)]
pub struct Keys(pub Option<Arc<Identities>>);

impl PartialEq for Keys {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}
impl Eq for Keys {}
impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "Keys(held)"
        } else {
            "Keys(none)"
        })
    }
}

/// Why an encrypted manifest could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error(
        "backup {backup} is encrypted to {recipients}; pass --identity with the key of one of them"
    )]
    NoIdentity { backup: String, recipients: String },
    #[error("backup {backup}: {source}")]
    Decrypt {
        backup: String,
        source: EncryptionError,
    },
    #[error("backup {backup}: its manifest {reason}; restore an earlier backup")]
    Tampered { backup: String, reason: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PartKind {
    PreData,
    Data,
    PostData,
    /// The planner's statistics (`statistics.sql.zst`, after post-data): calls only
    /// PostgreSQL 18 and later know, so a script of the other parts runs on any version.
    Statistics,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Part {
    /// Key relative to the set folder, e.g. `data/0001.copy.zst`.
    pub key: String,
    pub order: u32,
    pub kind: PartKind,
    /// Size of the stored (compressed) bytes.
    pub bytes: u64,
    /// SHA-256 of the stored bytes, lower-case hex.
    pub sha256: String,
    /// For a data part of one table, or of one block range of a big table.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub table: Option<TablePart>,
    /// For a bundle: the small tables whose COPY blocks the part holds, in order.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub bundle: Vec<TablePart>,
    /// For a part of large-object contents (`lo_put` lines, see `engine::large_objects`).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub large_objects: Option<LargeObjectsPart>,
    /// Size of the content before compression (and encryption): no reader decompresses more
    /// of the part than this (a zstd bomb stops there). Absent before format 4.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub plain_bytes: Option<u64>,
    /// For a part stored as shared chunks (format 7): its chunks in order, whose contents
    /// joined are the part's. No object is stored under `key` then; `bytes` is the sum of the
    /// chunks' and `sha256` the digest of this list (`chunks::list_digest`).
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub chunks: Vec<ChunkRef>,
    /// For a chunked part of one table carried forward by its changed rows (format 8): the
    /// chunks before `starts[0]` hold the rows as an earlier set read them, each delta after
    /// (`engine::delta`) the rows that changed by the next set.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub deltas: Option<Deltas>,
}

/// Where a part's row deltas begin, and the key their rows replace and delete by.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deltas {
    /// Indices into `Part::chunks` where each delta begins, ascending, the first past 0.
    pub starts: Vec<u32>,
    /// The key columns: indices into the block's `columns` (its replica identity).
    pub key: Vec<u32>,
}

impl Part {
    /// Whether the part is stored as shared chunks rather than as one object of its own.
    pub fn is_chunked(&self) -> bool {
        !self.chunks.is_empty()
    }

    /// The COPY blocks this part holds, in order: its table's, or its bundle's.
    pub fn blocks(&self) -> impl Iterator<Item = &TablePart> {
        self.table.iter().chain(self.bundle.iter())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LargeObjectsPart {
    /// Large objects whose contents the part holds.
    pub objects: u64,
    /// Their total size in bytes.
    pub bytes: u64,
    /// `lo_put` lines, and the order-independent digest of them (as a table part's rows).
    pub lines: u64,
    pub digest: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TablePart {
    /// Quoted, schema-qualified name, e.g. `app."Users"`.
    pub qualified_name: String,
    pub schema: String,
    pub name: String,
    /// Quoted column names in COPY order (generated columns left out).
    pub columns: Vec<String>,
    pub rows: u64,
    /// Wrapping sum of the xxh3-128 hashes of each COPY line, 32 hex digits.
    pub row_digest: String,
    /// For a table split by ctid: this chunk's block range `[from, to)`.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub blocks: Option<(u64, u64)>,
    /// The table's files when it was read (incremental sets): a later backup proves it
    /// unchanged only if they are the same files and none of their blocks was written since.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub storage: Option<TableStorage>,
    /// How this block's rows came to the set (incremental sets): read, or proven the same as
    /// an earlier set's and named without being read.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub proof: Option<Proof>,
    /// For an extension's configuration table: the condition that selected the rows
    /// (`WHERE ...`, or empty for all). CREATE EXTENSION makes the table and its other rows;
    /// a restore adds these to them, and verification reads back only what it selects.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub extension_rows: Option<String>,
}

/// Where a set stands in its server's WAL history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WalOrigin {
    /// `pg_control_system()`: which server (and its physical copies) the positions are of.
    pub system_identifier: String,
    /// The database's OID on that server.
    pub database_oid: u32,
    /// The timeline the server was on.
    pub timeline: u32,
    /// The WAL position read before the snapshot was taken: every change the snapshot does not
    /// hold was written after it.
    pub floor_lsn: crate::stream::segment::Lsn,
    /// The WAL position read after the snapshot: every change it holds was written before it.
    pub ceiling_lsn: crate::stream::segment::Lsn,
    /// The transactions that held an xid just after `floor_lsn` was read (64-bit): the only
    /// ones that may have written before it rows the snapshot does not hold. Absent: unknown,
    /// and nothing is proven from this set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub running_xids: Option<Vec<u64>>,
}

/// A table's files: its heap's and its TOAST table's `relfilenode`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableStorage {
    pub relfilenode: u32,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub toast_relfilenode: Option<u32>,
    /// A digest of the catalog rows that say how the table's bytes read as rows: its
    /// `pg_class` and `pg_attribute` rows' versions (dropped columns too), its columns' types
    /// and the labels of their enums. A column dropped and added again, or an enum label
    /// renamed, changes it without writing the table.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub shape: Option<String>,
}

/// How a block's rows came to an incremental set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "how", rename_all = "kebab-case")]
pub enum Proof {
    /// Read from the table in this set's snapshot.
    Read,
    /// Named from set `since`: PostgreSQL's WAL summaries show no block of the table's files
    /// written between that set's snapshot and this one's (`from_lsn` to `to_lsn`), and no
    /// transaction in progress at that snapshot committed since.
    WalSummary {
        since: String,
        from_lsn: crate::stream::segment::Lsn,
        to_lsn: crate::stream::segment::Lsn,
    },
    /// Named from set `since`: the change stream's segments from that set's slot position to
    /// `to_lsn` (past this set's snapshot) hold no change to the table by a transaction that
    /// set does not see.
    Stream {
        since: String,
        from_lsn: crate::stream::segment::Lsn,
        to_lsn: crate::stream::segment::Lsn,
    },
}

/// Whether `text` is `parts` identifiers joined by dots, each as `quote_ident` writes one: a
/// plain lower-case name, or a double-quoted one (`""` inside). Names from a manifest reach
/// SQL only in this shape.
pub fn is_identifier_path(text: &str, parts: usize) -> bool {
    let mut rest = text;
    for index in 0..parts {
        if index > 0 {
            match rest.strip_prefix('.') {
                Some(after) => rest = after,
                None => return false,
            }
        }
        let taken = if let Some(quoted) = rest.strip_prefix('"') {
            let mut end = None;
            let bytes = quoted.as_bytes();
            let mut i = 0;
            while i < bytes.len() {
                match bytes[i] {
                    0 => return false,
                    b'"' if bytes.get(i + 1) == Some(&b'"') => i += 2,
                    b'"' => {
                        end = Some(i);
                        break;
                    }
                    _ => i += 1,
                }
            }
            match end {
                Some(0) | None => return false,
                Some(end) => end + 2,
            }
        } else {
            let plain = rest
                .char_indices()
                .take_while(|(i, c)| {
                    c.is_ascii_lowercase()
                        || *c == '_'
                        || (*i > 0 && (c.is_ascii_digit() || *c == '$'))
                })
                .count();
            if plain == 0 {
                return false;
            }
            plain
        };
        rest = &rest[taken..];
    }
    rest.is_empty()
}

/// What is wrong with where `part`'s row deltas begin and what they are keyed by, if anything:
/// they carry forward the chunks of exactly one whole table's rows, and each begins at one of
/// its chunks after the first. `tables_hidden`: the part's table is not known yet (an
/// encrypted manifest as stored), so only what does not depend on it is checked.
fn check_deltas(part: &Part, deltas: &Deltas, tables_hidden: bool) -> Result<(), String> {
    if !part.is_chunked() {
        return Err("it is not stored as chunks".into());
    }
    if !part.bundle.is_empty() || part.large_objects.is_some() {
        return Err("it holds more than one table's rows".into());
    }
    if !tables_hidden {
        let Some(table) = &part.table else {
            return Err("it names no table".into());
        };
        if table.blocks.is_some() {
            return Err(format!(
                "it holds only a block range of {}",
                table.qualified_name
            ));
        }
        if let Some(&index) = deltas
            .key
            .iter()
            .find(|&&index| index as usize >= table.columns.len())
        {
            return Err(format!(
                "their key names column {} of {}, which has {}",
                u64::from(index) + 1,
                table.qualified_name,
                table.columns.len()
            ));
        }
    }
    if deltas.key.is_empty() {
        return Err("they name no key column".into());
    }
    match deltas.starts.first() {
        None => return Err("it says where none of them begins".into()),
        Some(0) => return Err("the first begins at its first chunk, before any base rows".into()),
        Some(_) => {}
    }
    if deltas.starts.windows(2).any(|pair| pair[0] >= pair[1]) {
        return Err("they do not begin in ascending order".into());
    }
    if let Some(&start) = deltas
        .starts
        .iter()
        .find(|&&start| start as usize >= part.chunks.len())
    {
        return Err(format!(
            "one begins at chunk {}, and it has {}",
            u64::from(start) + 1,
            part.chunks.len()
        ));
    }
    Ok(())
}

/// Whether `key` is a plain relative path inside a set: no absolute path, no `.` or `..`
/// segment, nothing but letters, digits, `.`, `_`, `-` and `/`.
fn is_set_path(key: &str) -> bool {
    !key.is_empty()
        && key.split('/').all(|segment| {
            !segment.is_empty()
                && segment != "."
                && segment != ".."
                && segment
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        })
}

impl Manifest {
    /// What a manifest read from a store must be before anything of it is used: part keys
    /// that stay inside the set, and table and column names that are quoted identifiers.
    pub fn check_shape(&self) -> Result<(), String> {
        for part in &self.parts {
            if !is_set_path(&part.key) {
                return Err(format!(
                    "part key `{}` is not a path inside the set",
                    part.key.escape_default()
                ));
            }
            if let Some(chunk) = part.chunks.iter().find(|c| !chunks::is_chunk_id(&c.id)) {
                return Err(format!(
                    "chunk `{}` of part {} is not a chunk id",
                    chunk.id.escape_default(),
                    part.key
                ));
            }
            if let Some(chunk) = part.chunks.iter().find(|c| !chunks::sizes_fit(c)) {
                return Err(format!(
                    "chunk {} of part {} records sizes no chunk has",
                    chunk.id, part.key
                ));
            }
            if part.is_chunked()
                && (part.bytes != part.chunks.iter().map(|c| c.bytes).sum::<u64>()
                    || part.plain_bytes
                        != Some(part.chunks.iter().map(|c| c.plain_bytes).sum::<u64>())
                    || !part.key.ends_with(".chunks"))
            {
                return Err(format!(
                    "part {} records sizes its chunks do not add up to",
                    part.key
                ));
            }
            if part.is_chunked() && part.sha256 != chunks::list_digest(&part.chunks) {
                return Err(format!(
                    "part {} lists other chunks than its checksum says",
                    part.key
                ));
            }
            if let Some(deltas) = &part.deltas {
                check_deltas(part, deltas, self.hides_tables()).map_err(|reason| {
                    format!("part {} carries row deltas, but {reason}", part.key)
                })?;
            }
            for table in part.blocks() {
                if !is_identifier_path(&table.qualified_name, 2) {
                    return Err(format!(
                        "table name `{}` of part {} is not a quoted schema-qualified name",
                        table.qualified_name.escape_default(),
                        part.key
                    ));
                }
                if let Some(column) = table.columns.iter().find(|c| !is_identifier_path(c, 1)) {
                    return Err(format!(
                        "column `{}` of {} is not a quoted name",
                        column.escape_default(),
                        table.qualified_name
                    ));
                }
            }
        }
        if let Some(globals) = &self.globals
            && !is_set_path(&globals.key)
        {
            return Err(format!(
                "`{}` is not a path inside the set",
                globals.key.escape_default()
            ));
        }
        Ok(())
    }

    /// Whether this is an encrypted manifest as stored, its parts' tables kept in its private
    /// part.
    fn hides_tables(&self) -> bool {
        self.encryption
            .as_ref()
            .is_some_and(|encryption| encryption.private.is_some())
    }

    /// The seal this manifest's content calls for.
    pub fn compute_seal(&self) -> String {
        use sha2::Digest as _;
        let unsealed = Manifest {
            seal: None,
            ..self.clone()
        };
        let json = serde_json::to_vec(&unsealed).unwrap_or_default();
        hex::encode(sha2::Sha256::digest(json))
    }

    /// The manifest with its seal set.
    pub fn sealed(self) -> Self {
        let seal = self.compute_seal();
        Manifest {
            seal: Some(seal),
            ..self
        }
    }

    /// `Some(false)` when the manifest was changed after it was sealed; `None` when it carries
    /// no seal.
    pub fn seal_holds(&self) -> Option<bool> {
        self.seal.as_ref().map(|seal| *seal == self.compute_seal())
    }

    /// Whether the set's objects are encrypted.
    pub fn is_encrypted(&self) -> bool {
        self.encryption.is_some()
    }

    /// The recipients, for messages.
    pub fn recipients(&self) -> String {
        self.encryption
            .as_ref()
            .map(|e| e.recipients.join(", "))
            .unwrap_or_default()
    }

    /// What is stored for an encrypted set: ids, times, tier, sizes, stored-byte checksums and
    /// recipients in the clear (sealed as ever), everything else (tables, columns, the item
    /// marker, the inventory, exclusions, the reason) encrypted in `encryption.private`.
    pub fn stored_encrypted(&self, recipients: &Recipients) -> Result<Manifest, EncryptionError> {
        use base64::Engine as _;
        let full = Manifest {
            encryption: Some(ManifestEncryption {
                recipients: recipients.names().to_vec(),
                private: None,
            }),
            seal: None,
            ..self.clone()
        };
        let json =
            serde_json::to_vec(&full).map_err(|e| EncryptionError::Encrypt(e.to_string()))?;
        let private = encryption::encrypt_bytes(recipients, &json)?;
        let parts = full
            .parts
            .iter()
            .map(|p| Part {
                table: None,
                bundle: Vec::new(),
                large_objects: None,
                ..p.clone()
            })
            .collect();
        Ok(Manifest {
            item_marker: String::new(),
            parts,
            inventory: BTreeMap::new(),
            excluded: Vec::new(),
            reason: None,
            encryption: Some(ManifestEncryption {
                recipients: recipients.names().to_vec(),
                private: Some(base64::engine::general_purpose::STANDARD.encode(private)),
            }),
            ..full
        }
        .sealed())
    }

    /// The manifest to restore from: a plaintext one as it is; an encrypted one's private part
    /// decrypted with `identities` (kept beside it for its parts) and checked against the
    /// sealed part.
    pub fn open(self, identities: Option<Arc<Identities>>) -> Result<Manifest, OpenError> {
        use base64::Engine as _;
        let Some(private) = self.encryption.as_ref().and_then(|e| e.private.clone()) else {
            return Ok(Manifest {
                keys: Keys(identities),
                ..self
            });
        };
        let backup = self.backup_id.clone();
        let tampered = |reason: &str| OpenError::Tampered {
            backup: backup.clone(),
            reason: reason.to_string(),
        };
        if self.seal_holds() == Some(false) {
            return Err(tampered(
                "was changed after the backup wrote it (its seal does not match)",
            ));
        }
        let Some(keys) = identities else {
            return Err(OpenError::NoIdentity {
                backup,
                recipients: self.recipients(),
            });
        };
        let ciphertext = base64::engine::general_purpose::STANDARD
            .decode(private)
            .map_err(|_| tampered("holds an unreadable private part"))?;
        let recipients = self
            .encryption
            .as_ref()
            .map(|e| e.recipients.clone())
            .unwrap_or_default();
        let json =
            encryption::decrypt_bytes(&keys, &ciphertext, &recipients).map_err(|source| {
                OpenError::Decrypt {
                    backup: backup.clone(),
                    source,
                }
            })?;
        let full: Manifest = serde_json::from_slice(&json)
            .map_err(|_| tampered("holds a private part that is not a manifest"))?;
        type Listed = (String, u64, String, Vec<ChunkRef>, Option<Deltas>);
        let same = |a: &Manifest| -> Vec<Listed> {
            a.parts
                .iter()
                .map(|p| {
                    (
                        p.key.clone(),
                        p.bytes,
                        p.sha256.clone(),
                        p.chunks.clone(),
                        p.deltas.clone(),
                    )
                })
                .collect()
        };
        if full.backup_id != self.backup_id
            || same(&full) != same(&self)
            || full.globals != self.globals
        {
            return Err(tampered("lists other parts than its private part"));
        }
        // The names the private part brings (tables, columns) pass the same check as a
        // plaintext manifest's: whoever can write the store holds the recipients too.
        full.check_shape().map_err(|reason| tampered(&reason))?;
        Ok(Manifest {
            keys: Keys(Some(keys)),
            ..full
        })
    }

    /// Each table's COPY blocks with the part holding each, in part order.
    pub fn tables(&self) -> BTreeMap<&str, Vec<(&Part, &TablePart)>> {
        let mut tables: BTreeMap<&str, Vec<(&Part, &TablePart)>> = BTreeMap::new();
        for part in &self.parts {
            for table in part.blocks() {
                tables
                    .entry(table.qualified_name.as_str())
                    .or_default()
                    .push((part, table));
            }
        }
        tables
    }

    /// Total rows over all data parts.
    pub fn total_rows(&self) -> u64 {
        self.parts
            .iter()
            .flat_map(Part::blocks)
            .map(|t| t.rows)
            .sum()
    }

    /// Objects the set holds: its parts (a chunked part's chunks), `globals.json` and the
    /// manifest itself.
    pub fn object_count(&self) -> u64 {
        self.parts
            .iter()
            .map(|p| p.chunks.len().max(1) as u64)
            .sum::<u64>()
            + u64::from(self.globals.is_some())
            + 1
    }

    /// The shared chunks the set refers to, each once.
    pub fn chunk_refs(&self) -> impl Iterator<Item = &ChunkRef> {
        let mut seen = std::collections::HashSet::new();
        self.parts
            .iter()
            .flat_map(|p| p.chunks.iter())
            .filter(move |c| seen.insert(c.id.as_str()))
    }

    /// Bytes the set added to the store (all of them, for a set without shared chunks).
    pub fn added_bytes(&self) -> u64 {
        self.new_bytes.unwrap_or_else(|| self.total_bytes())
    }

    /// Total stored bytes over all parts.
    pub fn total_bytes(&self) -> u64 {
        self.parts.iter().map(|p| p.bytes).sum::<u64>()
            + self.globals.as_ref().map_or(0, |g| g.bytes)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A manifest with nothing in it, for tests to fill.
    pub(crate) fn empty() -> Manifest {
        Manifest {
            format_version: FORMAT_VERSION,
            engine_version: "test".into(),
            database_id: "main".into(),
            database_name: "main".into(),
            backup_id: "20261206T000000Z-aaaa".into(),
            server_version: "17".into(),
            server_version_num: 170000,
            started_at: time::OffsetDateTime::UNIX_EPOCH,
            finished_at: time::OffsetDateTime::UNIX_EPOCH,
            tier: Tier::Daily,
            database_bytes: None,
            snapshot: None,
            wal_lsn: None,
            stream: None,
            item_marker: String::new(),
            parts: Vec::new(),
            inventory: BTreeMap::new(),
            globals: None,
            excluded: Vec::new(),
            reason: None,
            encryption: None,
            wal_origin: None,
            new_bytes: None,
            seal: None,
            keys: Keys::default(),
        }
    }

    /// A manifest of one chunked part of `public.t (id, name)`, four chunks, carried forward
    /// by deltas beginning at chunks 2 and 3 (from 0), keyed by `id`.
    fn with_deltas() -> Manifest {
        let chunks: Vec<ChunkRef> = (0..4u8)
            .map(|i| ChunkRef {
                id: format!("{i:02x}").repeat(32),
                bytes: 10,
                sha256: "00".repeat(32),
                plain_bytes: 20,
            })
            .collect();
        let mut manifest = empty();
        manifest.parts.push(Part {
            key: "data/0001.copy.chunks".into(),
            order: 1,
            kind: PartKind::Data,
            bytes: 40,
            sha256: chunks::list_digest(&chunks),
            table: Some(TablePart {
                qualified_name: "public.t".into(),
                schema: "public".into(),
                name: "t".into(),
                columns: vec!["id".into(), "name".into()],
                rows: 3,
                row_digest: "00".repeat(16),
                blocks: None,
                storage: None,
                proof: None,
                extension_rows: None,
            }),
            bundle: Vec::new(),
            large_objects: None,
            plain_bytes: Some(80),
            chunks,
            deltas: Some(Deltas {
                starts: vec![2, 3],
                key: vec![0],
            }),
        });
        manifest
    }

    /// The reason `check_shape` gives for `manifest`, whose one part is changed by `change`.
    fn refused(change: impl FnOnce(&mut Part)) -> String {
        let mut manifest = with_deltas();
        change(&mut manifest.parts[0]);
        manifest.check_shape().unwrap_err()
    }

    fn deltas(part: &mut Part) -> &mut Deltas {
        part.deltas.as_mut().unwrap()
    }

    #[test]
    fn deltas_carry_forward_one_whole_chunked_table() {
        with_deltas().check_shape().unwrap();
        let table = with_deltas().parts[0].table.clone().unwrap();
        let not_chunked = refused(|p| {
            p.chunks.clear();
            p.plain_bytes = None;
            p.bytes = 0;
        });
        assert!(
            not_chunked.contains("not stored as chunks"),
            "{not_chunked}"
        );
        let bundle = refused(|p| p.bundle.push(table.clone()));
        assert!(bundle.contains("more than one table"), "{bundle}");
        let objects = refused(|p| {
            p.large_objects = Some(LargeObjectsPart {
                objects: 1,
                bytes: 1,
                lines: 1,
                digest: String::new(),
            })
        });
        assert!(objects.contains("more than one table"), "{objects}");
        let range = refused(|p| p.table.as_mut().unwrap().blocks = Some((0, 100)));
        assert!(range.contains("block range of public.t"), "{range}");
        let no_table = refused(|p| p.table = None);
        assert!(no_table.contains("names no table"), "{no_table}");
    }

    #[test]
    fn deltas_begin_in_order_after_the_base_and_within_the_part() {
        let none = refused(|p| deltas(p).starts.clear());
        assert!(none.contains("where none of them begins"), "{none}");
        let at_zero = refused(|p| deltas(p).starts = vec![0, 2]);
        assert!(at_zero.contains("before any base rows"), "{at_zero}");
        let same = refused(|p| deltas(p).starts = vec![2, 2]);
        assert!(same.contains("ascending"), "{same}");
        let backwards = refused(|p| deltas(p).starts = vec![3, 2]);
        assert!(backwards.contains("ascending"), "{backwards}");
        let past = refused(|p| deltas(p).starts = vec![2, 4]);
        assert!(past.contains("begins at chunk 5, and it has 4"), "{past}");
        assert!(past.starts_with("part data/0001.copy.chunks carries row deltas"));
    }

    #[test]
    fn deltas_are_keyed_by_columns_their_table_has() {
        let no_key = refused(|p| deltas(p).key.clear());
        assert!(no_key.contains("no key column"), "{no_key}");
        let outside = refused(|p| deltas(p).key = vec![0, 2]);
        assert!(
            outside.contains("column 3 of public.t, which has 2"),
            "{outside}"
        );
        // An encrypted manifest as stored keeps its tables private: what does not depend on
        // them is checked there, the rest once it is opened.
        let mut stored = with_deltas();
        stored.encryption = Some(ManifestEncryption {
            recipients: vec!["age1x".into()],
            private: Some("opaque".into()),
        });
        stored.parts[0].table = None;
        stored.check_shape().unwrap();
        stored.parts[0].deltas.as_mut().unwrap().starts = vec![0];
        assert!(stored.check_shape().is_err());
    }

    #[test]
    fn names_from_a_manifest_must_be_quoted_identifiers() {
        assert!(is_identifier_path("public.t", 2));
        assert!(is_identifier_path("app.\"Users\"", 2));
        assert!(is_identifier_path("\"we\"\"ird\".\"a.b\"", 2));
        assert!(is_identifier_path("t_1$x", 1));
        for bad in [
            "public.t; DROP TABLE x",
            "public.\"t",
            "Public.t",
            "public.",
            "public.t.u",
            "\"\".t",
            "1t.a",
        ] {
            assert!(!is_identifier_path(bad, 2), "{bad}");
        }
        assert!(is_set_path("data/0001.copy.zst"));
        for bad in [
            "../other/data/0001.copy.zst",
            "/etc/passwd",
            "data//x",
            "data/./x",
            "data/x y",
            "",
        ] {
            assert!(!is_set_path(bad), "{bad}");
        }
    }
}
