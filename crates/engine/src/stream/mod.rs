//! Point-in-time recovery on servers without WAL archiving: a logical-decoding slot drained
//! through plain SQL into change segments between base backups.
//!
//! A drain ([`drain`]) makes sure the slot `backstop_<database-id>` exists (`test_decoding`,
//! never a publication: a `FOR ALL TABLES` publication would make UPDATE and DELETE fail on
//! the application's tables without a replica identity), marks the WAL position it will drain
//! to (a committed, flushed transaction of its own), reads the sequences and the schema
//! fingerprint, then pages through `pg_logical_slot_peek_changes` up to the mark. Each page is
//! one segment (`segment`): the changes are streamed through zstd (and age) into the store,
//! the seal is written after them, and only then is the slot advanced past the page
//! (`pg_replication_slot_advance`). A drain that dies between the seal and the advance leaves
//! the slot behind a committed segment: the next drain advances it first, so no change is
//! stored twice. A restore replays segments onto a base (`replay`), applying exactly the
//! transactions the base's snapshot does not hold (`plan`).
//!
//! What decoding cannot carry is said: tables without a replica identity are named at every
//! drain (their UPDATE and DELETE cannot be replayed), a schema change ends what the older
//! bases can reach (a new base is needed), and a slot that was invalidated or held back more
//! WAL than the cap allows is dropped and a new chain started. Large objects, unlogged tables
//! and materialized views' contents are as the base holds them; sequences are read at every
//! drain.

pub mod decoding;
pub mod history;
pub mod incidents;
pub mod plan;
pub mod relations;
pub mod replay;
pub mod segment;
mod source;

use std::collections::BTreeSet;
use std::sync::Arc;

use async_compression::Level;
use async_compression::tokio::bufread::ZstdEncoder;
use bytes::Bytes;
use futures::StreamExt as _;
use time::OffsetDateTime;
use tokio_postgres::Client;
use tokio_util::io::StreamReader;

use super::encryption::{EncryptionError, Recipients};
use super::stored::StoredFile;
use backstop_pg::version::{ServerVersion, VersionError};
use backstop_pg::{ConnectError, PgTarget, connect, value};
use backstop_store::layout::{BackupId, DatabaseId};
use backstop_store::lease::{self, LeaseError, lease_key};
use backstop_store::store::{PutOptions, PutReceipt, Store, StoreError};
use decoding::{DecodeError, Decoded};
use segment::{
    ChangeKind, Lsn, SEGMENT_FORMAT, STREAM_FOLDER, Segment, SegmentError, TableTally, Transaction,
    seal_keys,
};
use source::{database, shape};

pub use source::fingerprint;

/// The slot a database's change stream reads: `backstop_<id>` when the id is already a plain
/// lower-case name that fits, else the id made one (`[a-z0-9_]`, shortened) with a hash of the
/// whole id, so two ids never share a slot.
pub fn slot_name(database: &DatabaseId) -> String {
    use sha2::Digest as _;
    let id = database.as_str();
    let plain: String = id
        .chars()
        .map(|c| match c {
            'a'..='z' | '0'..='9' | '_' => c,
            _ => '_',
        })
        .collect();
    if plain == id && id.len() <= 54 {
        return format!("backstop_{id}");
    }
    let hash = hex::encode(sha2::Sha256::digest(id.as_bytes()));
    let mut short = plain;
    short.truncate(44);
    format!("backstop_{short}_{}", &hash[..8])
}

/// How to drain.
#[derive(Debug, Clone)]
pub struct StreamOptions {
    pub database_id: DatabaseId,
    /// Rows of decoded output per segment (a transaction is never split).
    pub page_changes: u32,
    /// Drop the slot once it holds back more WAL than this (`None`: never).
    pub max_retained_bytes: Option<u64>,
    pub compression_level: i32,
    pub recipients: Option<Recipients>,
    /// Start no new page after this.
    pub deadline: Option<tokio::time::Instant>,
    /// Stop after storing the first segment, before advancing the slot: what a crash there
    /// leaves behind (for drills and tests of the recovery from it).
    pub halt_before_advance: bool,
    /// Cancelled when the drain must stop (SIGINT, SIGTERM): it ends where it is (the slot
    /// advances only past what is sealed), releases its lease and fails with `Interrupted`.
    pub interrupt: tokio_util::sync::CancellationToken,
    /// How long the server may leave a probe unanswered before the drain stops.
    pub silence_limit: std::time::Duration,
}

impl StreamOptions {
    pub fn new(database_id: DatabaseId) -> Self {
        Self {
            database_id,
            page_changes: 50_000,
            max_retained_bytes: None,
            compression_level: 3,
            recipients: None,
            deadline: None,
            halt_before_advance: false,
            interrupt: tokio_util::sync::CancellationToken::new(),
            silence_limit: backstop_pg::liveness::DEFAULT_SILENCE_LIMIT,
        }
    }
}

/// What one drain did and saw.
#[derive(Debug, Clone, Default)]
pub struct DrainReport {
    pub slot: String,
    pub chain: String,
    /// Seal keys of the segments stored.
    pub segments: Vec<String>,
    pub transactions: u64,
    pub changes: u64,
    pub stored_bytes: u64,
    /// The database can now be recovered to any time up to this.
    pub through: Option<OffsetDateTime>,
    /// WAL between the slot's confirmed position and the current one, before the drain.
    pub lag_bytes: u64,
    /// WAL the slot held back before the drain.
    pub retained_bytes: u64,
    pub wal_status: Option<String>,
    /// Why this drain started a new chain (the older backups cannot be carried past it).
    pub new_chain: Option<String>,
    /// The schema changed since the previous drain: changes from here on need a newer base.
    pub schema_changed: bool,
    /// Tables without a replica identity (their UPDATE and DELETE cannot be replayed).
    pub unidentified: Vec<String>,
    /// Unlogged tables (never in the change stream).
    pub unlogged: Vec<String>,
    /// Tables with UPDATE or DELETE changes stored in this drain that cannot be replayed.
    pub unreplayable: Vec<String>,
    /// The drain stopped at its deadline with changes left for the next one.
    pub incomplete: bool,
    /// `max_slot_wal_keep_size` is -1: nothing stops the slot from filling the disk.
    pub unlimited_wal_keep: bool,
}

impl DrainReport {
    /// Why a base backup must be taken now, if one must.
    pub fn needs_base(&self) -> Option<String> {
        if let Some(why) = &self.new_chain {
            return Some(why.clone());
        }
        self.schema_changed.then(|| {
            "the schema changed since the previous drain; changes from here on replay only onto a newer backup".to_string()
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    #[error(transparent)]
    Connect(#[from] ConnectError),
    #[error(transparent)]
    Version(#[from] VersionError),
    #[error("{step} failed: {reason}")]
    Database { step: &'static str, reason: String },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Lease(#[from] LeaseError),
    #[error(transparent)]
    Encryption(#[from] EncryptionError),
    #[error(transparent)]
    Segment(#[from] SegmentError),
    #[error(transparent)]
    Decode(#[from] DecodeError),
    #[error(transparent)]
    Plan(#[from] plan::PlanError),
    #[error(
        "wal_level is {level}: logical decoding needs wal_level = logical (RDS and Aurora: \
         rds.logical_replication = 1 in the parameter group), then a restart"
    )]
    WalLevel { level: String },
    #[error("the server is a standby; drain the change stream from the primary")]
    Standby,
    #[error(
        "replication slot {slot} exists with plugin {plugin} on database {database}; it is not \
         this stream's: drop it or give this database another id"
    )]
    SlotInUse {
        slot: String,
        plugin: String,
        database: String,
    },
    #[error("cannot read {what}: permission denied; {fix}")]
    Privilege { what: String, fix: String },
    #[error(
        "{what} failed: {reason}; the role needs REPLICATION (RDS: GRANT rds_replication; \
         Supabase: the postgres role has it)"
    )]
    Replication { what: &'static str, reason: String },
    #[error(
        "the drain was interrupted; the slot was advanced only past what is sealed, so the next drain starts there"
    )]
    Interrupted,
    #[error(
        "the stream lease {key} could not be renewed (the store refused or another run took it over); the drain stopped where it was, the slot advanced only past what is sealed"
    )]
    LeaseLost { key: String },
    #[error(
        "the server stopped answering ({reason}); the drain stopped where it was, the slot advanced only past what is sealed: check the server, then drain again"
    )]
    ServerSilent { reason: String },
    #[error("stopped before advancing the slot past {segment}, as asked")]
    Halted { segment: String },
    #[error("replaying {what} failed: {reason}")]
    Replay { what: String, reason: String },
}

/// Drains `pg`'s change stream into `store`, one run at a time per database (a lease).
pub async fn drain_exclusively(
    pg: &PgTarget,
    store: Arc<dyn Store>,
    options: &StreamOptions,
    holder: &str,
) -> Result<DrainReport, StreamError> {
    let key = lease_key(&options.database_id, "stream");
    let lease = lease::acquire(store.clone(), &key, holder, lease::DEFAULT_LEASE).await?;
    // Stopping drops the drain where it is: the slot only ever advances past a proven seal,
    // and changes stored without one are swept by retention.
    let result = tokio::select! {
        biased;
        drained = drain(pg, store, options) => drained,
        _ = lease.lost() => Err(StreamError::LeaseLost { key: key.clone() }),
        _ = options.interrupt.cancelled() => Err(StreamError::Interrupted),
        reason = backstop_pg::liveness::silence(pg, options.silence_limit) => {
            Err(StreamError::ServerSilent { reason })
        }
    };
    if let Err(e) = lease.release().await {
        tracing::warn!(error = %e, "could not release the stream lease; it expires on its own");
    }
    result
}

/// One drain (see the module docs).
pub async fn drain(
    pg: &PgTarget,
    store: Arc<dyn Store>,
    options: &StreamOptions,
) -> Result<DrainReport, StreamError> {
    let database_id = &options.database_id;
    let client = connect(pg).await?;
    let version = ServerVersion::read_supported(&client).await?;
    // A drain stopped mid-read must not leave its backend holding the slot: from 14 the
    // server checks for a vanished client while a query runs.
    if version.at_least(14) {
        client
            .batch_execute("SET client_connection_check_interval = '1s'")
            .await
            .map_err(database("preparing the drain session"))?;
    }
    client
        .batch_execute(&backstop_pg::session::Purpose::Drain.setup())
        .await
        .map_err(database("preparing the drain session"))?;
    let settings = client
        .query_one(
            "SELECT pg_catalog.current_setting('wal_level'), pg_catalog.pg_is_in_recovery(), \
             pg_catalog.current_database()::text, pg_catalog.current_setting('max_slot_wal_keep_size')",
            &[],
        )
        .await
        .map_err(database("reading the server settings"))?;
    let read = shape("reading the server settings");
    let wal_level: String = value(&settings, 0).map_err(&read)?;
    let in_recovery: bool = value(&settings, 1).map_err(&read)?;
    let current_database: String = value(&settings, 2).map_err(&read)?;
    let keep: String = value(&settings, 3).map_err(&read)?;
    if in_recovery {
        return Err(StreamError::Standby);
    }
    if wal_level != "logical" {
        return Err(StreamError::WalLevel { level: wal_level });
    }
    let slot = slot_name(database_id);
    let mut report = DrainReport {
        slot: slot.clone(),
        unlimited_wal_keep: keep == "-1",
        ..Default::default()
    };

    let listing = store
        .list(&format!("{database_id}/{STREAM_FOLDER}/"))
        .await?;
    let newest = match seal_keys(database_id, listing.iter().map(|o| o.key.as_str())).last() {
        Some(key) => Some(read_seal(store.as_ref(), key).await?),
        None => None,
    };

    source::free_slot(&client, &slot).await?;
    let mut state = source::slot(&client, &slot).await?;
    if let Some(existing) = &state {
        let plugin = existing.plugin.clone().unwrap_or_default();
        let on = existing.database.clone().unwrap_or_default();
        if plugin != "test_decoding" || on != current_database {
            return Err(StreamError::SlotInUse {
                slot,
                plugin,
                database: on,
            });
        }
        report.lag_bytes = existing.lag_bytes.unwrap_or(0).max(0) as u64;
        report.retained_bytes = existing.retained_bytes.unwrap_or(0).max(0) as u64;
        report.wal_status = existing.wal_status.clone();
        let lost =
            existing.wal_status.as_deref() == Some("lost") || existing.confirmed_flush.is_none();
        let over_cap = options
            .max_retained_bytes
            .is_some_and(|cap| report.retained_bytes > cap);
        if lost || over_cap {
            let why = if lost {
                "the server invalidated the slot (wal_status = lost: the WAL it needed was removed)"
                    .to_string()
            } else {
                format!(
                    "the slot held back {} bytes of WAL, past the cap of {}",
                    report.retained_bytes,
                    options.max_retained_bytes.unwrap_or(0)
                )
            };
            client
                .query("SELECT pg_catalog.pg_drop_replication_slot($1)", &[&slot])
                .await
                .map_err(|e| StreamError::Replication {
                    what: "dropping the replication slot",
                    reason: backstop_pg::describe(&e),
                })?;
            tracing::warn!(%slot, %why, "replication slot dropped; a new change stream starts");
            report.new_chain = Some(format!(
                "{why}; it was dropped and a new change stream started"
            ));
            state = None;
        }
    }

    let (chain, start, previous_fingerprint) = match state {
        None => {
            let row = client
                .query_one(
                    "SELECT lsn::text FROM pg_catalog.pg_create_logical_replication_slot($1, 'test_decoding')",
                    &[&slot],
                )
                .await
                .map_err(|e| StreamError::Replication {
                    what: "creating the replication slot",
                    reason: backstop_pg::describe(&e),
                })?;
            let lsn: String = value(&row, 0).map_err(shape("creating the replication slot"))?;
            let start = parse_lsn(&lsn, "creating the replication slot")?;
            if report.new_chain.is_none() {
                report.new_chain = Some(match newest {
                    Some(_) => "the replication slot was gone; a new change stream started".into(),
                    None => "the change stream starts".into(),
                });
            }
            (
                BackupId::generate(OffsetDateTime::now_utc()).to_string(),
                start,
                None,
            )
        }
        Some(existing) => {
            let flush = existing.confirmed_flush.unwrap_or_default();
            match newest.filter(|s| s.slot == slot) {
                Some(segment) if segment.end_lsn > flush => {
                    // A drain stored this segment and stopped before advancing the slot.
                    advance(&client, &slot, segment.end_lsn).await?;
                    (segment.chain, segment.end_lsn, Some(segment.fingerprint))
                }
                Some(segment) if segment.end_lsn == flush => {
                    (segment.chain, flush, Some(segment.fingerprint))
                }
                other => {
                    report.new_chain = Some(match other {
                        Some(segment) => format!(
                            "the slot is at {flush}, past the newest segment ({}): another reader consumed changes",
                            segment.end_lsn
                        ),
                        None => {
                            "no segment of this slot is stored; a new change stream started".into()
                        }
                    });
                    (
                        BackupId::generate(OffsetDateTime::now_utc()).to_string(),
                        flush,
                        None,
                    )
                }
            }
        }
    };
    report.chain = chain.clone();

    // The mark: a logical message in a transaction of our own, after every commit this drain
    // stores. Having written WAL, the transaction's commit flushes it (with
    // synchronous_commit on), so decoding can read up to the mark even when the application
    // commits asynchronously. Its xid is the reference the decoded 32-bit xids are widened
    // against.
    client
        .batch_execute("BEGIN; SET LOCAL synchronous_commit = on;")
        .await
        .map_err(database("marking the WAL position"))?;
    let mark = client
        .query_one(
            "SELECT pg_catalog.pg_logical_emit_message(true, 'backstop', 'drain')::text, \
             (extract(epoch FROM pg_catalog.clock_timestamp()) * 1000000)::int8, \
             pg_catalog.txid_current()",
            &[],
        )
        .await
        .map_err(database("marking the WAL position"))?;
    client
        .batch_execute("COMMIT")
        .await
        .map_err(database("marking the WAL position"))?;
    let read = shape("marking the WAL position");
    let target = parse_lsn(
        &value::<String>(&mark, 0).map_err(&read)?,
        "marking the WAL position",
    )?;
    let marked_at = backstop_pg::time_from_micros(value(&mark, 1).map_err(&read)?);
    let reference: i64 = value(&mark, 2).map_err(&read)?;

    let sequences = source::sequences(&client).await?;
    let fingerprint = source::fingerprint(&client).await?;
    let coverage = source::coverage(&client).await?;
    report.unidentified = names(&coverage.unidentified);
    report.unlogged = names(&coverage.unlogged);
    report.schema_changed = previous_fingerprint.is_some_and(|f| f != fingerprint);
    let seen = see_schema_changes(&client, store.as_ref(), options).await;

    let page = Page {
        client: &client,
        store: store.as_ref(),
        options,
        slot: &slot,
        chain: &chain,
        target,
        marked_at,
        reference: reference.max(0) as u64,
        fingerprint: &fingerprint,
        sequences: &sequences,
        unidentified: &coverage.unidentified,
        schema_changes: std::sync::Mutex::new(
            seen.as_ref()
                .map(|(changes, _)| changes.clone())
                .unwrap_or_default(),
        ),
    };
    let mut from = start;
    let mut unreplayable = BTreeSet::new();
    loop {
        if options
            .deadline
            .is_some_and(|d| tokio::time::Instant::now() >= d)
            && !report.segments.is_empty()
        {
            report.incomplete = true;
            break;
        }
        let (segment, key) = page.store(from).await?;
        report.transactions += segment.transaction_count;
        report.changes += segment.change_count;
        report.stored_bytes += segment.changes.bytes;
        unreplayable.extend(segment.unreplayable.iter().cloned());
        report.segments.push(key.clone());
        if options.halt_before_advance {
            return Err(StreamError::Halted { segment: key });
        }
        advance(&client, &slot, segment.end_lsn).await?;
        report.through = Some(segment.through);
        from = segment.end_lsn;
        if segment.end_lsn >= target {
            break;
        }
    }
    // Kept once the changes it found are sealed: a drain that stops before finds them again.
    if let Some((_, Some(listing))) = seen {
        keep_listing(store.as_ref(), database_id, &listing).await;
    }
    report.unreplayable = unreplayable.into_iter().collect();
    for table in &report.unreplayable {
        tracing::warn!(%table, "UPDATE or DELETE on a table without a replica identity: a restore cannot replay it");
    }
    tracing::info!(
        slot = %report.slot,
        transactions = report.transactions,
        changes = report.changes,
        bytes = report.stored_bytes,
        "change stream drained"
    );
    Ok(report)
}

/// The schema changes since the listing the drain before kept, and the listing to keep now
/// (`None` when it is the one kept);
/// `None` when either cannot be had (said in a warning: the drain itself goes on, and the
/// next one compares with what was kept last).
async fn see_schema_changes(
    client: &Client,
    store: &dyn Store,
    options: &StreamOptions,
) -> Option<(Vec<relations::SchemaChange>, Option<relations::Listing>)> {
    let key = relations::state_key(&options.database_id);
    let (current, reference) = match relations::list(client).await {
        Ok(listed) => listed,
        Err(e) => {
            tracing::warn!(error = %e, "cannot list the tables: this drain records no schema change");
            return None;
        }
    };
    let previous = match store.read_versioned(&key).await {
        Ok(Some(kept)) => match serde_json::from_slice::<relations::Listing>(&kept.body) {
            Ok(listing) => Some(listing),
            Err(e) => {
                tracing::warn!(%key, error = %e, "the kept table listing is unreadable: it is replaced, and this drain records no schema change");
                None
            }
        },
        Ok(None) => None,
        Err(e) => {
            tracing::warn!(%key, error = %e, "cannot read the kept table listing: this drain records no schema change");
            return None;
        }
    };
    // The seal names what changed (privately, when encrypted); what is kept names nothing of
    // an encrypted stream.
    let changes = previous
        .as_ref()
        .map(|previous| relations::changes(previous, &current, reference))
        .unwrap_or_default();
    let kept = match options.recipients {
        Some(_) => relations::nameless(current),
        None => current,
    };
    // Written again only when it differs from what is kept.
    let unchanged = previous.as_ref() == Some(&kept);
    Some((changes, (!unchanged).then_some(kept)))
}

/// Keeps `listing` for the next drain to compare with; a failure is a warning (the next drain
/// then reports these changes again).
async fn keep_listing(store: &dyn Store, database: &DatabaseId, listing: &relations::Listing) {
    let key = relations::state_key(database);
    let Ok(body) = serde_json::to_vec(listing) else {
        return;
    };
    if let Err(e) = store
        .put(&key, &mut body.as_slice(), &PutOptions::default())
        .await
    {
        tracing::warn!(%key, error = %e, "cannot keep the table listing: the next drain reports these schema changes again");
    }
}

fn names(tables: &std::collections::HashSet<decoding::TableName>) -> Vec<String> {
    let mut names: Vec<String> = tables.iter().map(|t| t.to_string()).collect();
    names.sort();
    names
}

fn parse_lsn(text: &str, step: &'static str) -> Result<Lsn, StreamError> {
    text.parse()
        .map_err(|reason| StreamError::Database { step, reason })
}

async fn advance(client: &Client, slot: &str, to: Lsn) -> Result<(), StreamError> {
    client
        .query(
            "SELECT pg_catalog.pg_replication_slot_advance($1, $2::text::pg_lsn)",
            &[&slot, &to.to_string()],
        )
        .await
        .map_err(|e| StreamError::Replication {
            what: "advancing the replication slot",
            reason: backstop_pg::describe(&e),
        })?;
    Ok(())
}

/// Reads a seal's clear part (no key needed): what a drain continues from.
pub async fn read_seal(store: &dyn Store, key: &str) -> Result<Segment, StreamError> {
    let body = store
        .read_versioned(key)
        .await?
        .ok_or_else(|| SegmentError::Unreadable {
            key: key.to_string(),
            reason: "it is gone".into(),
        })?
        .body;
    Ok(Segment::read_sealed(key, &body)?)
}

/// What every page of one drain shares.
struct Page<'a> {
    client: &'a Client,
    store: &'a dyn Store,
    options: &'a StreamOptions,
    slot: &'a str,
    chain: &'a str,
    target: Lsn,
    marked_at: OffsetDateTime,
    reference: u64,
    fingerprint: &'a str,
    sequences: &'a [segment::SequenceReading],
    unidentified: &'a std::collections::HashSet<decoding::TableName>,
    /// The schema changes since the drain before, for the first seal to record.
    schema_changes: std::sync::Mutex<Vec<relations::SchemaChange>>,
}

/// What a page's reader found, besides the lines it sent.
#[derive(Default)]
struct PageContents {
    rows: u64,
    changes: u64,
    transactions: Vec<Transaction>,
    unreplayable: BTreeSet<String>,
}

/// The transaction a page is in the middle of.
struct OpenTransaction {
    /// Full xid.
    xid: u64,
    changes: u64,
    /// Its BEGIN line is written (at its first change).
    begun: bool,
    tables: TableTally,
}

impl Page<'_> {
    /// Stores the changes from `from` (up to a page of them), then the seal.
    async fn store(&self, from: Lsn) -> Result<(Segment, String), StreamError> {
        let database_id = &self.options.database_id;
        let suffix = match self.options.recipients {
            Some(_) => ".changes.zst.age",
            None => ".changes.zst",
        };
        let relative = format!(
            "{STREAM_FOLDER}/{}/{:016X}-{:08x}{suffix}",
            self.chain,
            from.0,
            rand::random::<u32>()
        );
        let key = format!("{database_id}/{relative}");
        let (sender, mut receiver) = tokio::sync::mpsc::channel::<std::io::Result<Bytes>>(16);
        let produce = async move {
            let result = self.read(&sender).await;
            if let Err(e) = &result {
                let _ = sender.send(Err(std::io::Error::other(e.to_string()))).await;
            }
            result
        };
        let plain = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let counted = plain.clone();
        let body =
            futures::stream::poll_fn(move |cx| receiver.poll_recv(cx)).inspect(move |chunk| {
                if let Ok(chunk) = chunk {
                    counted.fetch_add(chunk.len() as u64, std::sync::atomic::Ordering::Relaxed);
                }
            });
        let mut encoder = ZstdEncoder::with_quality(
            StreamReader::new(Box::pin(body)),
            Level::Precise(self.options.compression_level),
        );
        let put_options = PutOptions {
            tags: Vec::new(),
            create_only: true,
        };
        let store = async {
            self.put(&key, &mut encoder, &put_options)
                .await
                .map_err(StreamError::from)
        };
        let (contents, receipt) = crate::produce_and_store(produce, store).await?;
        let last_page = contents.rows < u64::from(self.options.page_changes);
        let last_commit = contents.transactions.last();
        let end = match (last_page, last_commit) {
            (true, commit) => commit.map_or(self.target, |c| c.commit_lsn.max(self.target)),
            (false, Some(commit)) => commit.commit_lsn,
            (false, None) => self.target,
        };
        let through = match (last_page, last_commit) {
            (false, Some(commit)) => commit.commit_time,
            _ => self.marked_at,
        };
        let segment = Segment {
            format_version: SEGMENT_FORMAT,
            engine_version: env!("CARGO_PKG_VERSION").to_string(),
            database_id: database_id.to_string(),
            slot: self.slot.to_string(),
            chain: self.chain.to_string(),
            start_lsn: from,
            end_lsn: end,
            through,
            drained_at: OffsetDateTime::now_utc(),
            fingerprint: self.fingerprint.to_string(),
            changes: StoredFile {
                key: relative,
                bytes: receipt.bytes,
                sha256: receipt.sha256,
            },
            plain_bytes: Some(plain.load(std::sync::atomic::Ordering::Relaxed)),
            transaction_count: contents.transactions.len() as u64,
            change_count: contents.changes,
            unreplayable: contents.unreplayable.into_iter().collect(),
            transactions: contents.transactions,
            sequences: self.sequences.to_vec(),
            schema_changes: std::mem::take(
                &mut *self
                    .schema_changes
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner),
            ),
            encryption: None,
            seal: None,
        };
        let stored = segment.stored(self.options.recipients.as_ref())?;
        let json = serde_json::to_vec_pretty(&stored).map_err(|e| StreamError::Database {
            step: "writing the segment seal",
            reason: e.to_string(),
        })?;
        let seal_key = Segment::seal_key(database_id, self.chain, from, end);
        self.store
            .put(&seal_key, &mut json.as_slice(), &put_options)
            .await?;
        Ok((segment, seal_key))
    }

    async fn put(
        &self,
        key: &str,
        body: &mut (dyn tokio::io::AsyncRead + Send + Unpin),
        options: &PutOptions,
    ) -> Result<PutReceipt, StoreError> {
        super::encryption::put(
            self.store,
            key,
            body,
            options,
            self.options.recipients.as_ref(),
        )
        .await
    }

    /// Reads one page of decoded rows, sending the segment's lines as it goes.
    async fn read(
        &self,
        sender: &tokio::sync::mpsc::Sender<std::io::Result<Bytes>>,
    ) -> Result<PageContents, StreamError> {
        let step = "reading the change stream";
        let target = self.target.to_string();
        let limit = i32::try_from(self.options.page_changes).unwrap_or(i32::MAX);
        let params: [&(dyn tokio_postgres::types::ToSql + Sync); 3] = [&self.slot, &target, &limit];
        let rows = self
            .client
            .query_raw(
                "SELECT lsn::text, xid::text, data FROM pg_catalog.pg_logical_slot_peek_changes(\
                 $1, $2::text::pg_lsn, $3, 'include-xids', '1', 'include-timestamp', '1', \
                 'skip-empty-xacts', '1')",
                params,
            )
            .await
            .map_err(|e| StreamError::Replication {
                what: "reading the change stream",
                reason: backstop_pg::describe(&e),
            })?;
        let mut rows = std::pin::pin!(rows);
        let mut contents = PageContents::default();
        let mut open: Option<OpenTransaction> = None;
        let mut buffer = Vec::with_capacity(256 * 1024);
        let send = |buffer: &mut Vec<u8>| {
            let chunk = Bytes::from(std::mem::take(buffer));
            async move {
                sender
                    .send(Ok(chunk))
                    .await
                    .map_err(|_| StreamError::Database {
                        step,
                        reason: "the upload stopped".into(),
                    })
            }
        };
        while let Some(row) = rows.next().await {
            let row = row.map_err(database(step))?;
            contents.rows += 1;
            let lsn: String = value(&row, 0).map_err(shape(step))?;
            let data: String = value(&row, 2).map_err(shape(step))?;
            if data.starts_with("table ") {
                let Some(open) = open.as_mut() else {
                    return Err(StreamError::Database {
                        step,
                        reason: "a change outside a transaction".into(),
                    });
                };
                if !open.begun {
                    buffer.extend_from_slice(format!("BEGIN {}\n", open.xid).as_bytes());
                    open.begun = true;
                }
                open.changes += 1;
                contents.changes += 1;
                let peeked = decoding::peek_action(&data)
                    .and_then(|(action, table)| Some((ChangeKind::of_action(action)?, table)));
                match peeked {
                    Some((kind, table)) if kind != ChangeKind::Truncate => {
                        if kind != ChangeKind::Insert && self.unidentified.contains(&table) {
                            contents.unreplayable.insert(table.to_string());
                        }
                        open.tables.count(table, kind);
                    }
                    // A TRUNCATE may name several tables, of which the peek gives only the
                    // first; a line the peek cannot read fails here, saying why.
                    _ => match decoding::parse(&data)? {
                        Decoded::Change(change) => open.tables.count_change(change),
                        Decoded::Begin { .. } | Decoded::Commit { .. } | Decoded::Message => {
                            return Err(StreamError::Database {
                                step,
                                reason: "a table line that is no change".into(),
                            });
                        }
                    },
                }
                escape_line(&data, &mut buffer);
            } else {
                match decoding::parse(&data)? {
                    Decoded::Begin { xid } => {
                        open = Some(OpenTransaction {
                            xid: segment::widen_xid(xid, self.reference),
                            changes: 0,
                            begun: false,
                            tables: TableTally::default(),
                        })
                    }
                    Decoded::Commit { at, .. } => {
                        let Some(OpenTransaction {
                            xid,
                            changes,
                            begun,
                            tables,
                        }) = open.take()
                        else {
                            continue;
                        };
                        if begun {
                            let commit_time = at.ok_or_else(|| StreamError::Database {
                                step,
                                reason: "a commit without its time".into(),
                            })?;
                            let commit_lsn = parse_lsn(&lsn, step)?;
                            buffer.extend_from_slice(
                                format!(
                                    "COMMIT {xid} {commit_lsn} {}\n",
                                    commit_time.unix_timestamp_nanos()
                                )
                                .as_bytes(),
                            );
                            contents.transactions.push(Transaction {
                                xid,
                                commit_lsn,
                                commit_time,
                                changes,
                                tables: tables.into_touches(),
                            });
                        }
                    }
                    Decoded::Message | Decoded::Change(_) => {}
                }
            }
            if buffer.len() >= 256 * 1024 {
                send(&mut buffer).await?;
            }
        }
        if !buffer.is_empty() {
            send(&mut buffer).await?;
        }
        Ok(contents)
    }
}

/// A decoded row as one line: `\`, newline and carriage return escaped.
fn escape_line(data: &str, out: &mut Vec<u8>) {
    for byte in data.bytes() {
        match byte {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            other => out.push(other),
        }
    }
    out.push(b'\n');
}

/// The inverse of [`escape_line`].
pub(crate) fn unescape_line(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some('n') => out.push('\n'),
                Some('r') => out.push('\r'),
                Some(other) => out.push(other),
                None => out.push('\\'),
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slot_names_are_valid_and_distinct_for_any_database_id() {
        let plain = DatabaseId::new("app_prod").unwrap();
        assert_eq!(slot_name(&plain), "backstop_app_prod");
        let dotted = DatabaseId::new("app.prod").unwrap();
        let name = slot_name(&dotted);
        assert!(name.starts_with("backstop_app_prod_"), "{name}");
        assert_ne!(name, slot_name(&plain));
        let long = DatabaseId::new(&"x".repeat(128)).unwrap();
        let longer = DatabaseId::new(&"x".repeat(127)).unwrap();
        assert!(slot_name(&long).len() <= 63);
        assert_ne!(slot_name(&long), slot_name(&longer));
        for id in [&plain, &dotted, &long] {
            assert!(
                slot_name(id)
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
            );
        }
    }

    #[test]
    fn lines_escape_and_unescape_to_the_same_row() {
        let row = "table public.t: INSERT: v[text]:'a\\b\nc\rd'";
        let mut out = Vec::new();
        escape_line(row, &mut out);
        let line = String::from_utf8(out).unwrap();
        assert_eq!(line.matches('\n').count(), 1);
        assert_eq!(unescape_line(line.trim_end_matches('\n')), row);
    }
}
