//! Carrying a restored base forward: the chosen segments' transactions applied in commit
//! order, then the sequences as the drain read them.
//!
//! Only transactions the base's snapshot does not hold are applied, each once (by xid and
//! commit LSN), and only those the recovery target includes. The replay runs in one
//! transaction with `session_replication_role = replica`, as logical replication applies
//! changes: the application's triggers and foreign-key actions already ran at the source and
//! their effects are in the stream, so they must not run twice. Every UPDATE and DELETE must
//! match exactly one row; anything else is an error that rolls the whole replay back, never a
//! silently different database. Each segment's stored bytes are checked against its seal
//! before the transaction commits.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use async_compression::tokio::bufread::ZstdDecoder;
use time::OffsetDateTime;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio_postgres::{Client, SimpleQueryMessage};

use super::StreamError;
use super::decoding::{self, Change, Decoded, TableName};
use super::plan::{self, Base, RecoveryPlan, RecoveryTarget};
use super::segment::{Lsn, Segment, Snapshot, Transaction, seal_keys};
use super::source::{database, shape};
use super::unescape_line;
use crate::catalog::literal;
use crate::encryption::{self, Identities};
use crate::manifest::Manifest;
use crate::restore::{BackupSelector, HashingReader, read_manifest};
use backstop_pg::{PgTarget, connect, describe, value};
use backstop_store::layout::{DatabaseId, committed_backups, database_prefix};
use backstop_store::store::Store;

mod statements;
use statements::{ColumnShape, TableShape, insert, row_filter, update};

/// Whether `store` holds change segments of `database`.
pub async fn has_stream(store: &dyn Store, database: &DatabaseId) -> Result<bool, StreamError> {
    let listing = store
        .list(&format!("{database}/{}/", super::segment::STREAM_FOLDER))
        .await?;
    Ok(!seal_keys(database, listing.iter().map(|o| o.key.as_str())).is_empty())
}

/// A base and the segments that carry it to the target.
#[derive(Debug)]
pub struct Recovery {
    pub manifest: Manifest,
    pub target: RecoveryTarget,
    pub segments: Vec<Segment>,
    /// Whose sequence readings end the replay.
    pub sequences_from: Option<usize>,
    pub recovered_to: Option<OffsetDateTime>,
}

/// Chooses the base and the segments for `target` among what `store` holds of `database`.
/// The base's manifest is returned as stored (open it before restoring it).
pub async fn plan_recovery(
    store: &dyn Store,
    database: &DatabaseId,
    target: RecoveryTarget,
    identities: Option<&Identities>,
) -> Result<Recovery, StreamError> {
    let listing = store.list(&database_prefix(database)).await?;
    let keys: Vec<&str> = listing.iter().map(|o| o.key.as_str()).collect();
    let mut manifests = Vec::new();
    for id in committed_backups(database, keys.iter().copied()) {
        let manifest = read_manifest(store, database, &BackupSelector::Id(id))
            .await
            .map_err(|e| StreamError::Replay {
                what: "reading the backups".into(),
                reason: e.to_string(),
            })?;
        manifests.push(manifest);
    }
    let bases: Vec<Base> = manifests
        .iter()
        .map(|m| Base {
            backup_id: m.backup_id.clone(),
            position: m.stream.clone(),
        })
        .collect();
    let segments = read_seals(store, database, keys.iter().copied()).await?;
    let RecoveryPlan {
        backup_id,
        segments: chosen,
        sequences_from,
        recovered_to,
    } = plan::plan(&bases, &segments, target)?;
    let manifest = manifests
        .into_iter()
        .find(|m| m.backup_id == backup_id)
        .ok_or_else(|| StreamError::Replay {
            what: "choosing the base".into(),
            reason: format!("backup {backup_id} vanished"),
        })?;
    let opened = open_chosen(store, database, &segments, &chosen, identities).await?;
    let sequences_at = chosen.iter().position(|&i| Some(i) == sequences_from);
    Ok(Recovery {
        manifest,
        target,
        segments: opened,
        sequences_from: sequences_at,
        recovered_to,
    })
}

/// The segments that carry `manifest`'s backup (already opened) to the newest change, when
/// a change stream holds any: what restore-level verification replays after the base.
pub async fn plan_from(
    store: &dyn Store,
    manifest: &Manifest,
    identities: Option<&Identities>,
) -> Result<Option<Recovery>, StreamError> {
    let Some(position) = manifest.stream.clone() else {
        return Ok(None);
    };
    let database = DatabaseId::new(&manifest.database_id).map_err(|e| StreamError::Replay {
        what: "the base".into(),
        reason: e.to_string(),
    })?;
    let listing = store
        .list(&format!("{database}/{}/", super::segment::STREAM_FOLDER))
        .await?;
    let segments = read_seals(store, &database, listing.iter().map(|o| o.key.as_str())).await?;
    let base = Base {
        backup_id: manifest.backup_id.clone(),
        position: Some(position),
    };
    let chosen = plan::plan(&[base], &segments, RecoveryTarget::Latest)?;
    if chosen.segments.is_empty() {
        return Ok(None);
    }
    let opened = open_chosen(store, &database, &segments, &chosen.segments, identities).await?;
    Ok(Some(Recovery {
        manifest: manifest.clone(),
        target: RecoveryTarget::Latest,
        sequences_from: Some(opened.len() - 1),
        segments: opened,
        recovered_to: chosen.recovered_to,
    }))
}

/// The streamed transaction with full xid `xid`, from whichever seal holds it (opened with
/// `identities` when encrypted); `None` when no seal does.
pub async fn find_transaction(
    store: &dyn Store,
    database: &DatabaseId,
    xid: u64,
    identities: Option<&Identities>,
) -> Result<Option<Transaction>, StreamError> {
    let listing = store
        .list(&format!("{database}/{}/", super::segment::STREAM_FOLDER))
        .await?;
    let seals = read_seals(store, database, listing.iter().map(|o| o.key.as_str())).await?;
    let mut low_bits = Vec::new();
    for (index, seal) in seals.iter().enumerate() {
        let opened;
        let segment = match seal.encryption {
            None => seal,
            Some(_) => {
                opened = open_chosen(store, database, &seals, &[index], identities).await?;
                &opened[0]
            }
        };
        if let Some(found) = segment.transactions.iter().find(|t| t.xid == xid) {
            return Ok(Some(found.clone()));
        }
        if xid <= u64::from(u32::MAX) {
            // A 32-bit xid (as `txid_current() % 2^32` or a log line gives it): the one
            // transaction with those low bits, if just one.
            let mut same = segment
                .transactions
                .iter()
                .filter(|t| t.xid & 0xffff_ffff == xid);
            if let (Some(found), None) = (same.next(), same.next()) {
                low_bits.push(found.clone());
            }
        }
    }
    Ok(match low_bits.as_slice() {
        [only] => Some(only.clone()),
        _ => None,
    })
}

/// Every seal among `keys` (clear parts), in chain and LSN order.
async fn read_seals<'a>(
    store: &dyn Store,
    database: &DatabaseId,
    keys: impl IntoIterator<Item = &'a str>,
) -> Result<Vec<Segment>, StreamError> {
    let mut segments = Vec::new();
    for key in seal_keys(database, keys) {
        segments.push(super::read_seal(store, &key).await?);
    }
    Ok(segments)
}

/// The chosen seals read again and opened with `identities` (their transactions and
/// sequences, encrypted or not).
async fn open_chosen(
    store: &dyn Store,
    database: &DatabaseId,
    segments: &[Segment],
    chosen: &[usize],
    identities: Option<&Identities>,
) -> Result<Vec<Segment>, StreamError> {
    let mut opened = Vec::with_capacity(chosen.len());
    for &index in chosen {
        let segment = &segments[index];
        let key = Segment::seal_key(database, &segment.chain, segment.start_lsn, segment.end_lsn);
        let body = store
            .read_versioned(&key)
            .await?
            .map(|v| v.body)
            .unwrap_or_default();
        opened.push(Segment::open(&key, &body, identities)?);
    }
    Ok(opened)
}

/// What a replay applied.
#[derive(Debug, Clone, Default)]
pub struct ReplayReport {
    pub segments: usize,
    pub transactions: u64,
    pub changes: u64,
    /// Transactions the base already held (or that a segment repeated).
    pub skipped: u64,
    pub sequences: usize,
    pub recovered_to: Option<OffsetDateTime>,
}

/// Some tables of a base, restored under a schema apart (`restore --into-schema`): only their
/// changes are replayed, onto the tables there.
#[derive(Debug, Clone)]
pub struct TableScope {
    /// The tables, by schema and name as they are (unquoted).
    pub tables: HashSet<TableName>,
    /// The schema they were restored into (unquoted).
    pub schema: String,
}

impl TableScope {
    fn holds(&self, table: &TableName) -> bool {
        self.tables.contains(table)
    }

    /// Where the changes to `table` go.
    fn moved(&self, table: &TableName) -> TableName {
        TableName {
            schema: self.schema.clone(),
            name: table.name.clone(),
        }
    }

    /// Whether `transaction` may have touched a table in scope (a seal that does not record
    /// the tables could have). A seal names tables as `TableName` prints them.
    fn may_touch(&self, segment: &Segment, transaction: &Transaction) -> bool {
        !segment.records_tables()
            || transaction
                .tables
                .iter()
                .any(|t| self.tables.iter().any(|s| s.to_string() == t.table))
    }
}

/// Applies `recovery`'s segments to the restored base at `target_db`.
pub async fn replay(
    store: Arc<dyn Store>,
    recovery: &Recovery,
    target_db: &PgTarget,
    identities: Option<&Identities>,
) -> Result<ReplayReport, StreamError> {
    replay_scoped(store, recovery, target_db, identities, None).await
}

/// Applies the changes `recovery`'s segments hold for `scope`'s tables to where they were
/// restored, and nothing else: no other table, no sequence.
pub async fn replay_tables(
    store: Arc<dyn Store>,
    recovery: &Recovery,
    target_db: &PgTarget,
    identities: Option<&Identities>,
    scope: &TableScope,
) -> Result<ReplayReport, StreamError> {
    replay_scoped(store, recovery, target_db, identities, Some(scope)).await
}

async fn replay_scoped(
    store: Arc<dyn Store>,
    recovery: &Recovery,
    target_db: &PgTarget,
    identities: Option<&Identities>,
    scope: Option<&TableScope>,
) -> Result<ReplayReport, StreamError> {
    let database_id =
        DatabaseId::new(&recovery.manifest.database_id).map_err(|e| StreamError::Replay {
            what: "the base".into(),
            reason: e.to_string(),
        })?;
    let snapshot = recovery
        .manifest
        .snapshot
        .as_deref()
        .and_then(Snapshot::parse)
        .ok_or_else(|| StreamError::Replay {
            what: format!("onto backup {}", recovery.manifest.backup_id),
            reason: "its manifest records no snapshot".into(),
        })?;
    let client = connect(target_db).await?;
    client
        .batch_execute(&backstop_pg::session::Purpose::Replay.setup())
        .await
        .map_err(database("preparing the replay session"))?;
    // Tables restored apart have no triggers or rules: there a role that may not set it
    // replays without (a cascading foreign key among them then fails loudly, never silently).
    if let Err(e) = client
        .batch_execute("SET session_replication_role = replica")
        .await
        && scope.is_none()
    {
        return Err(StreamError::Replay {
            what: "the change stream".into(),
            reason: format!(
                "setting session_replication_role = replica was refused ({}): replaying needs a \
                 superuser, rds_superuser, or (15+) GRANT SET ON PARAMETER session_replication_role, \
                 so that triggers and foreign-key actions do not run a second time",
                describe(&e)
            ),
        });
    }
    client
        .batch_execute("BEGIN")
        .await
        .map_err(database("starting the replay"))?;
    let mut replayer = Replayer {
        client: &client,
        scope,
        shapes: HashMap::new(),
        batch: String::new(),
        expected: Vec::new(),
    };
    let mut report = ReplayReport {
        recovered_to: recovery.recovered_to,
        ..Default::default()
    };
    let mut applied: HashSet<(u64, Lsn)> = HashSet::new();
    for segment in &recovery.segments {
        let wanted: HashMap<u64, &Transaction> = segment
            .transactions
            .iter()
            .filter(|t| {
                !snapshot.sees(t.xid)
                    && recovery.target.includes(t.commit_time, t.commit_lsn)
                    && !applied.contains(&(t.xid, t.commit_lsn))
                    && scope.is_none_or(|s| s.may_touch(segment, t))
            })
            .map(|t| (t.xid, t))
            .collect();
        report.skipped += segment.transactions.len() as u64 - wanted.len() as u64;
        if !wanted.is_empty() {
            replayer
                .segment(
                    store.as_ref(),
                    &database_id,
                    segment,
                    &wanted,
                    identities,
                    &mut report,
                )
                .await?;
        }
        applied.extend(wanted.values().map(|t| (t.xid, t.commit_lsn)));
        report.segments += 1;
    }
    replayer.flush().await?;
    // The sequences read at the drain are the live database's: a scoped replay sets none.
    if let Some(index) = recovery.sequences_from.filter(|_| scope.is_none()) {
        let mut sql = String::new();
        for reading in &recovery.segments[index].sequences {
            sql.push_str(&format!(
                "SELECT pg_catalog.setval({}, {}, {});\n",
                literal(&reading.sequence),
                reading.last_value,
                reading.is_called
            ));
        }
        if !sql.is_empty() {
            client
                .batch_execute(&sql)
                .await
                .map_err(|e| StreamError::Replay {
                    what: "the sequences".into(),
                    reason: describe(&e),
                })?;
        }
        report.sequences = recovery.segments[index].sequences.len();
    }
    client
        .batch_execute("COMMIT")
        .await
        .map_err(database("committing the replay"))?;
    Ok(report)
}

struct Replayer<'a> {
    client: &'a Client,
    scope: Option<&'a TableScope>,
    shapes: HashMap<TableName, TableShape>,
    batch: String,
    /// Per statement of the batch: the rows it must touch, and what it is, for messages.
    expected: Vec<(Option<u64>, String)>,
}

const BATCH_STATEMENTS: usize = 500;

impl Replayer<'_> {
    async fn segment(
        &mut self,
        store: &dyn Store,
        database: &DatabaseId,
        segment: &Segment,
        wanted: &HashMap<u64, &Transaction>,
        identities: Option<&Identities>,
        report: &mut ReplayReport,
    ) -> Result<(), StreamError> {
        let key = segment.changes_key(database);
        let corrupt = |reason: String| StreamError::Replay {
            what: format!("segment {key}"),
            reason,
        };
        let reader = store.get(&key).await?;
        let (hashing, stored) = HashingReader::new(reader);
        let plain: Box<dyn AsyncRead + Send + Unpin> = match &segment.encryption {
            None => Box::new(BufReader::new(hashing)),
            Some(encrypted) => {
                let keys = identities.ok_or_else(|| {
                    corrupt(format!(
                        "it is encrypted to {}; pass --identity",
                        encrypted.recipients.join(", ")
                    ))
                })?;
                encryption::decrypting(keys, BufReader::new(hashing), &encrypted.recipients)
                    .await
                    .map_err(|e| corrupt(e.to_string()))?
            }
        };
        let decoded = crate::restore::Capped::new(
            ZstdDecoder::new(BufReader::new(plain)),
            segment.plain_bytes,
        );
        let mut lines = BufReader::new(decoded).lines();
        let mut current: Option<&Transaction> = None;
        while let Some(line) = lines
            .next_line()
            .await
            .map_err(|e| corrupt(format!("it does not decompress or decrypt: {e}")))?
        {
            if let Some(xid) = line.strip_prefix("BEGIN ") {
                let xid: u64 = xid
                    .parse()
                    .map_err(|_| corrupt("a bad BEGIN line".into()))?;
                current = wanted.get(&xid).copied();
            } else if let Some(rest) = line.strip_prefix("COMMIT ") {
                if let Some(transaction) = current.take() {
                    let lsn = rest.split(' ').nth(1).unwrap_or_default();
                    if lsn != transaction.commit_lsn.to_string() {
                        return Err(corrupt("its changes disagree with its seal".into()));
                    }
                    report.transactions += 1;
                    if self.expected.len() >= BATCH_STATEMENTS {
                        self.flush().await?;
                    }
                }
            } else if let Some(transaction) = current {
                let data = unescape_line(&line);
                let Decoded::Change(change) = decoding::parse(&data)? else {
                    continue;
                };
                if self.push(&change, transaction).await? {
                    report.changes += 1;
                }
            }
        }
        let (sha256, bytes) = stored.digest().unwrap_or_default();
        if bytes != segment.changes.bytes || sha256 != segment.changes.sha256 {
            return Err(corrupt(format!(
                "{bytes} bytes with SHA-256 {sha256} stored, its seal says {} bytes with {}",
                segment.changes.bytes, segment.changes.sha256
            )));
        }
        Ok(())
    }

    async fn shape(&mut self, table: &TableName) -> Result<&TableShape, StreamError> {
        if !self.shapes.contains_key(table) {
            let step = "reading a restored table's columns";
            let rows = self
                .client
                .query(
                    "SELECT a.attname::text, a.attgenerated <> '', a.attidentity = 'a', \
                     a.attnum = ANY (COALESCE((SELECT i.indkey::int2[] FROM pg_catalog.pg_index i \
                       WHERE i.indrelid = c.oid AND CASE c.relreplident WHEN 'i' THEN i.indisreplident \
                       WHEN 'n' THEN false ELSE i.indisprimary END LIMIT 1), '{}'::int2[])), \
                     c.relreplident = 'f' \
                     FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
                     JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid \
                     WHERE n.nspname = $1 AND c.relname = $2 AND a.attnum > 0 AND NOT a.attisdropped \
                     ORDER BY a.attnum",
                    &[&table.schema, &table.name],
                )
                .await
                .map_err(database(step))?;
            if rows.is_empty() {
                return Err(StreamError::Replay {
                    what: format!("changes to {table}"),
                    reason:
                        "the restored database has no such table (was it excluded from the backup?)"
                            .into(),
                });
            }
            let mut table_shape = TableShape {
                columns: Vec::new(),
                key: Vec::new(),
                full: false,
            };
            for row in rows {
                let read = shape(step);
                let name: String = value(&row, 0).map_err(&read)?;
                if value::<bool>(&row, 3).map_err(&read)? {
                    table_shape.key.push(name.clone());
                }
                table_shape.full = value(&row, 4).map_err(&read)?;
                table_shape.columns.push(ColumnShape {
                    name,
                    generated: value(&row, 1).map_err(&read)?,
                    always_identity: value(&row, 2).map_err(&read)?,
                });
            }
            self.shapes.insert(table.clone(), table_shape);
        }
        Ok(&self.shapes[table])
    }

    /// Queues `change`, or (outside a scope) nothing. Returns whether it was queued.
    async fn push(
        &mut self,
        change: &Change,
        transaction: &Transaction,
    ) -> Result<bool, StreamError> {
        let Some(change) = self.in_scope(change) else {
            return Ok(false);
        };
        let change = &change;
        let at = describe_transaction(transaction);
        let (sql, expected, what) = match change {
            Change::Insert { table, new } => {
                let shape = self.shape(table).await?;
                (
                    insert(table, shape, new, &at)?,
                    Some(1),
                    format!("INSERT into {table} ({at})"),
                )
            }
            Change::Update { table, old, new } => {
                let shape = self.shape(table).await?;
                let Some(sql) = update(table, shape, old.as_deref(), new, &at)? else {
                    return Ok(true);
                };
                (sql, Some(1), format!("UPDATE of {table} ({at})"))
            }
            Change::Delete { table, old } => {
                let shape = self.shape(table).await?;
                let filter = row_filter(table, shape, old.as_deref(), None, &at)?;
                (
                    format!("DELETE FROM ONLY {table} WHERE {filter}"),
                    Some(1),
                    format!("DELETE from {table} ({at})"),
                )
            }
            Change::Truncate {
                tables,
                restart_identity,
                cascade,
            } => {
                let names: Vec<String> = tables.iter().map(|t| t.to_string()).collect();
                (
                    format!(
                        "TRUNCATE ONLY {}{}{}",
                        names.join(", "),
                        if *restart_identity {
                            " RESTART IDENTITY"
                        } else {
                            ""
                        },
                        if *cascade { " CASCADE" } else { "" }
                    ),
                    None,
                    format!("TRUNCATE of {} ({at})", names.join(", ")),
                )
            }
        };
        self.batch.push_str(&sql);
        self.batch.push_str(";\n");
        self.expected.push((expected, what));
        Ok(true)
    }

    /// `change` as it applies where the scope's tables were restored (every change without a
    /// scope); `None` when it touches no table in scope.
    fn in_scope(&self, change: &Change) -> Option<Change> {
        let Some(scope) = self.scope else {
            return Some(change.clone());
        };
        let moved = |table: &TableName| scope.holds(table).then(|| scope.moved(table));
        Some(match change {
            Change::Insert { table, new } => Change::Insert {
                table: moved(table)?,
                new: new.clone(),
            },
            Change::Update { table, old, new } => Change::Update {
                table: moved(table)?,
                old: old.clone(),
                new: new.clone(),
            },
            Change::Delete { table, old } => Change::Delete {
                table: moved(table)?,
                old: old.clone(),
            },
            Change::Truncate {
                tables,
                restart_identity,
                cascade,
            } => {
                let tables: Vec<TableName> = tables.iter().filter_map(moved).collect();
                if tables.is_empty() {
                    return None;
                }
                Change::Truncate {
                    tables,
                    restart_identity: *restart_identity,
                    cascade: *cascade,
                }
            }
        })
    }

    async fn flush(&mut self) -> Result<(), StreamError> {
        if self.expected.is_empty() {
            return Ok(());
        }
        let batch = std::mem::take(&mut self.batch);
        let expected = std::mem::take(&mut self.expected);
        let messages = self
            .client
            .simple_query(&batch)
            .await
            .map_err(|e| StreamError::Replay {
                what: format!(
                    "the change stream (batch from {})",
                    expected.first().map(|(_, w)| w.as_str()).unwrap_or("-")
                ),
                reason: describe(&e),
            })?;
        let counts: Vec<u64> = messages
            .iter()
            .filter_map(|m| match m {
                SimpleQueryMessage::CommandComplete(rows) => Some(*rows),
                _ => None,
            })
            .collect();
        // One result per statement, or the counts below would check the wrong statements.
        if counts.len() != expected.len() {
            return Err(StreamError::Replay {
                what: "the change stream".into(),
                reason: format!(
                    "the server answered {} of the {} statements of a batch; nothing of the replay was kept",
                    counts.len(),
                    expected.len()
                ),
            });
        }
        for ((want, what), got) in expected.iter().zip(counts) {
            if let Some(want) = want
                && *want != got
            {
                return Err(StreamError::Replay {
                    what: what.clone(),
                    reason: format!(
                        "it touched {got} rows, not {want}: the restored rows differ from the \
                         source's at that point; nothing of the replay was kept"
                    ),
                });
            }
        }
        Ok(())
    }
}

fn describe_transaction(transaction: &Transaction) -> String {
    format!(
        "transaction {} committed at {} (LSN {})",
        transaction.xid,
        transaction
            .commit_time
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default(),
        transaction.commit_lsn
    )
}
