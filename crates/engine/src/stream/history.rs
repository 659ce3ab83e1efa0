//! What a store holds of a database's recent history, for `backstop incidents`: the change
//! segments' transactions (every chain, an encrypted stream's opened with the identities), the
//! backups' snapshots and row counts, and one transaction's changes read back from its segment
//! (checked against its seal before anything of them is shown).
//!
//! A seal that cannot be read is named, not skipped in silence: an incident may be in it.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use async_compression::tokio::bufread::ZstdDecoder;
use futures::StreamExt as _;
use time::OffsetDateTime;
use tokio::io::{AsyncBufReadExt as _, AsyncRead, BufReader};

use super::decoding::{self, DecodeError, Decoded, TableName};
use super::incidents::{BaseRows, Preview, Streamed, rows_by_table};
use super::segment::{Segment, SegmentError, Snapshot, seal_keys};
use super::unescape_line;
use crate::encryption::{self, Identities};
use crate::restore::{HashingReader, read_manifest_of};
use backstop_store::layout::{DatabaseId, committed_backups, database_prefix};
use backstop_store::store::{Store, StoreError};

/// Seals read at once.
const READ_AHEAD: usize = 16;

/// Why a database's history could not be read.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    #[error(
        "{store} holds no change stream of {database}: incidents are found in it; start one with \
         `backstop stream --db <database> --to {store}` (the server needs wal_level = logical), \
         and run it every few minutes"
    )]
    NoStream { database: String, store: String },
    #[error(
        "the change stream of {database} is encrypted to {recipients}: its transactions are in \
         the seals' private parts; pass --identity with the key of one of them"
    )]
    Encrypted {
        database: String,
        recipients: String,
    },
    #[error("{key}: {reason}; check that --identity holds the key the stream is encrypted to")]
    Decrypt { key: String, reason: String },
    #[error(
        "transaction {xid} is in no segment of {database} read (from {from}); pass an earlier \
         --since, or check the xid against `backstop incidents`"
    )]
    NotStreamed {
        xid: u64,
        database: String,
        from: String,
    },
    #[error("segment {key}: {reason}")]
    Corrupt { key: String, reason: String },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Decode(#[from] DecodeError),
}

/// Something of the store that could not be read, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unreadable {
    /// The seal's key, or the backup's id.
    pub key: String,
    pub problem: String,
}

/// A database's history from a moment on.
#[derive(Debug, Default)]
pub struct History {
    /// The seals read (with their transactions), in chain and LSN order.
    pub segments: Vec<Segment>,
    /// Every transaction of them once, in commit order.
    pub transactions: Vec<Streamed>,
    /// Per transaction, the index of its segment.
    pub located: Vec<usize>,
    /// The backups from the newest one before the moment on, with a snapshot.
    pub bases: Vec<BaseRows>,
    /// Per table (as a seal names it), its columns as the newest backup holding it lists them.
    pub columns: BTreeMap<String, Vec<String>>,
    /// Backups whose tables are encrypted (no identity given): their rows are not counted.
    pub hidden_bases: usize,
    /// Seals that could not be read.
    pub unreadable_segments: Vec<Unreadable>,
    /// Backups whose manifests could not be read.
    pub unreadable_backups: Vec<Unreadable>,
    /// Transactions of seals from before per-table records (format 3): not judged.
    pub unrecorded: u64,
    /// Seals that end before this were not read: every transaction from here on is here.
    pub read_from: Option<OffsetDateTime>,
}

impl History {
    /// Transaction `xid` and the segment that holds it.
    pub fn find(
        &self,
        xid: u64,
        database: &DatabaseId,
    ) -> Result<(&Streamed, &Segment), HistoryError> {
        self.transactions
            .iter()
            .zip(&self.located)
            .find(|(t, _)| t.xid == xid)
            .map(|(t, &at)| (t, &self.segments[at]))
            .ok_or_else(|| HistoryError::NotStreamed {
                xid,
                database: database.to_string(),
                from: self
                    .read_from
                    .and_then(|t| {
                        t.format(&time::format_description::well_known::Rfc3339)
                            .ok()
                    })
                    .unwrap_or_default(),
            })
    }
}

/// Reads what `store` holds of `database` from `since` on: every seal that reaches past the
/// newest backup before `since` (so the estimates start from a backup), and those backups.
pub async fn read_history(
    store: &dyn Store,
    database: &DatabaseId,
    since: OffsetDateTime,
    identities: Option<&Arc<Identities>>,
) -> Result<History, HistoryError> {
    let listing = store.list(&database_prefix(database)).await?;
    let keys: Vec<&str> = listing.iter().map(|o| o.key.as_str()).collect();
    let seals = seal_keys(database, keys.iter().copied());
    if seals.is_empty() {
        return Err(HistoryError::NoStream {
            database: database.to_string(),
            store: store.url().to_string(),
        });
    }
    let mut history = History::default();

    let ids = committed_backups(database, keys.iter().copied());
    let anchor = ids
        .iter()
        .rposition(|id| id.started_at().is_some_and(|t| t <= since))
        .unwrap_or(0);
    let mut manifests = Vec::new();
    for id in &ids[anchor..] {
        match read_manifest_of(store, database, id).await {
            Ok(manifest) => manifests.push(manifest),
            Err(e) => history.unreadable_backups.push(Unreadable {
                key: id.to_string(),
                problem: e.to_string(),
            }),
        }
    }
    let mut read_from = since;
    for manifest in &manifests {
        read_from = read_from.min(manifest.started_at);
        let Some(snapshot) = manifest.snapshot.as_deref().and_then(Snapshot::parse) else {
            continue;
        };
        let backup_id = manifest.backup_id.clone();
        let opened = match (manifest.is_encrypted(), identities) {
            (false, _) => Some(manifest.clone()),
            (true, Some(keys)) => match manifest.clone().open(Some(keys.clone())) {
                Ok(opened) => Some(opened),
                Err(e) => {
                    history.unreadable_backups.push(Unreadable {
                        key: backup_id.clone(),
                        problem: e.to_string(),
                    });
                    None
                }
            },
            (true, None) => {
                history.hidden_bases += 1;
                None
            }
        };
        let rows = opened.as_ref().map(|m| {
            for part in &m.parts {
                for block in part.blocks() {
                    let name = TableName {
                        schema: block.schema.clone(),
                        name: block.name.clone(),
                    };
                    history
                        .columns
                        .insert(name.to_string(), block.columns.clone());
                }
            }
            rows_by_table(
                m.parts
                    .iter()
                    .flat_map(|p| p.blocks())
                    .map(|b| (b.schema.as_str(), b.name.as_str(), b.rows)),
            )
        });
        history.bases.push(BaseRows {
            backup_id,
            started_at: manifest.started_at,
            snapshot,
            rows,
        });
    }

    let reads = futures::stream::iter(seals)
        .map(|key| async move {
            let body = store.read_versioned(&key).await.map(|v| v.map(|v| v.body));
            (key, body)
        })
        .buffered(READ_AHEAD);
    let mut reads = std::pin::pin!(reads);
    let mut hidden_to: Option<String> = None;
    while let Some((key, body)) = reads.next().await {
        let unreadable = |problem: String| Unreadable {
            key: key.clone(),
            problem,
        };
        let Some(body) = body? else {
            history
                .unreadable_segments
                .push(unreadable("it was listed, then gone".into()));
            continue;
        };
        let clear = match Segment::read_sealed(&key, &body) {
            Ok(clear) => clear,
            Err(e) => {
                history.unreadable_segments.push(unreadable(reason(e)));
                continue;
            }
        };
        if clear.through < read_from {
            continue;
        }
        match Segment::open(&key, &body, identities.map(|k| k.as_ref())) {
            Ok(segment) => history.segments.push(segment),
            Err(SegmentError::NoIdentity { recipients, .. }) => {
                hidden_to = Some(recipients);
            }
            Err(SegmentError::Decrypt { source, .. }) => {
                return Err(HistoryError::Decrypt {
                    key,
                    reason: source.to_string(),
                });
            }
            Err(e) => history.unreadable_segments.push(unreadable(reason(e))),
        }
    }
    if let Some(recipients) = hidden_to {
        return Err(HistoryError::Encrypted {
            database: database.to_string(),
            recipients,
        });
    }

    history.read_from = Some(read_from);
    let mut seen = HashSet::new();
    let mut located: Vec<(Streamed, usize)> = Vec::new();
    for (index, segment) in history.segments.iter().enumerate() {
        for transaction in &segment.transactions {
            if !seen.insert((transaction.xid, transaction.commit_lsn)) {
                continue;
            }
            if !segment.records_tables() {
                history.unrecorded += 1;
            }
            located.push((Streamed::of(transaction, segment.records_tables()), index));
        }
    }
    located.sort_by_key(|(t, _)| (t.committed_at, t.commit_lsn));
    (history.transactions, history.located) = located.into_iter().unzip();
    Ok(history)
}

/// A seal's problem without its key (the report names it).
fn reason(error: SegmentError) -> String {
    match error {
        SegmentError::Unreadable { reason, .. } => reason,
        other => other.to_string(),
    }
}

/// The changes transaction `xid` made, from its segment (read whole, and checked against the
/// seal before any of it is returned), up to `limit` rows per table.
pub async fn read_transaction(
    store: &dyn Store,
    database: &DatabaseId,
    segment: &Segment,
    xid: u64,
    identities: Option<&Arc<Identities>>,
    limit: usize,
) -> Result<Preview, HistoryError> {
    let key = segment.changes_key(database);
    let corrupt = |reason: String| HistoryError::Corrupt {
        key: key.clone(),
        reason,
    };
    let reader = store.get(&key).await?;
    let (hashing, stored) = HashingReader::new(reader);
    let plain: Box<dyn AsyncRead + Send + Unpin> = match &segment.encryption {
        None => Box::new(BufReader::new(hashing)),
        Some(encrypted) => {
            let keys = identities.ok_or_else(|| HistoryError::Encrypted {
                database: database.to_string(),
                recipients: encrypted.recipients.join(", "),
            })?;
            encryption::decrypting(keys, BufReader::new(hashing), &encrypted.recipients)
                .await
                .map_err(|e| corrupt(e.to_string()))?
        }
    };
    let decoded =
        crate::restore::Capped::new(ZstdDecoder::new(BufReader::new(plain)), segment.plain_bytes);
    let mut lines = BufReader::new(decoded).lines();
    let mut preview = Preview::new(limit);
    let mut inside = false;
    while let Some(line) = lines
        .next_line()
        .await
        .map_err(|e| corrupt(format!("it does not decompress or decrypt: {e}")))?
    {
        if let Some(begun) = line.strip_prefix("BEGIN ") {
            inside = begun.parse::<u64>().ok() == Some(xid);
        } else if line.starts_with("COMMIT ") {
            inside = false;
        } else if inside && let Decoded::Change(change) = decoding::parse(&unescape_line(&line))? {
            preview.add(change);
        }
    }
    let (sha256, bytes) = stored.digest().unwrap_or_default();
    if bytes != segment.changes.bytes || sha256 != segment.changes.sha256 {
        return Err(corrupt(format!(
            "{bytes} bytes with SHA-256 {sha256} stored, its seal says {} bytes with {}; \
             nothing of it is shown",
            segment.changes.bytes, segment.changes.sha256
        )));
    }
    Ok(preview)
}
