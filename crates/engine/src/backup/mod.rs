//! Taking a backup: a consistent, parallel, streamed logical dump into a store.
//!
//! The leader opens a `REPEATABLE READ, READ ONLY` transaction, locks every dumped table
//! `ACCESS SHARE`, exports its snapshot and reads the catalogs. Workers join the snapshot
//! (`SET TRANSACTION SNAPSHOT`), lock each table `NOWAIT` and stream `COPY ... TO STDOUT`
//! through a row digest and zstd straight into the store, largest tables first, big tables
//! split by ctid range. Sessions run with `row_security = off`, as pg_dump does: a role that
//! row-level security would filter fails loudly instead of backing up only the rows it sees.
//! Sequence values are read last; `manifest.json` is written last of all.
//! On failure, or when the deadline passes, the run stops, everything uploaded so far is
//! deleted and unfinished uploads under the set are aborted: a set without a manifest is never
//! a backup, and none is left holding storage.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use time::OffsetDateTime;
use tokio_postgres::Client;

use super::catalog::{self, Catalog, CatalogError};

mod changes;
mod chunked;
mod copy;
mod unchanged;
use super::encryption::{self, EncryptionError, Recipients};
use super::globals::{GLOBALS_NAME, Globals};
use super::inventory;
use super::item::{ItemKind, ObjectRef, Section, class};
use super::manifest::{FORMAT_VERSION, Manifest, Part, PartKind, StoredFile};
use super::order;
use super::script;
use super::stream::{self, plan::StreamPosition};
use backstop_pg::version::{ServerVersion, VersionError};
use backstop_pg::{ConnectError, PgTarget, column, connect, describe, value};
use backstop_store::layout::{
    BackupId, DatabaseId, MANIFEST_NAME, committed_backups, database_prefix, set_key,
};
use backstop_store::lease::{self, DEFAULT_LEASE, LeaseError, lease_key};
use backstop_store::store::{PutOptions, PutReceipt, Store, StoreError};
use backstop_store::tier::{TIER_TAG, Tier, tier_for};
pub use chunked::SHARED_TIER;
use copy::{copy_units, plan_units};

/// How to take a backup.
#[derive(Debug, Clone)]
pub struct BackupOptions {
    pub database_id: DatabaseId,
    /// Parallel COPY connections.
    pub jobs: usize,
    /// `None`: derive the tier from the store's history.
    pub tier: Option<Tier>,
    /// Objects the operator accepts losing, as `kind identity` or `identity`.
    pub exclude: Vec<String>,
    /// Tables with more pages than this are split into chunks of this many pages.
    pub split_pages: u64,
    pub compression_level: i32,
    /// How long the leader waits for its table locks.
    pub lock_timeout: Duration,
    /// When the run must have stopped (committed, or cleaned up and failed).
    pub deadline: Option<tokio::time::Instant>,
    /// Why the backup is taken, recorded in the manifest.
    pub reason: Option<String>,
    /// Put the roles' password hashes into `globals.json` (needs a superuser).
    pub include_role_passwords: bool,
    /// Encrypt every object of the set to these age recipients (`None`: plaintext).
    pub recipients: Option<Recipients>,
    /// Lifetime of the backup lease (`backup_exclusively`): how long a run that died
    /// without a word blocks the next one.
    pub lease: Duration,
    /// Cancelled when the run must stop (SIGINT, SIGTERM): it removes its set, releases its
    /// lease and fails with `Interrupted`.
    pub interrupt: tokio_util::sync::CancellationToken,
    /// How long the server may leave a probe unanswered before the run stops
    /// (`ServerSilent`): a frozen server never holds the lease forever.
    pub silence_limit: Duration,
    /// Store table data as shared chunks (`engine::chunks`): what an earlier set of the
    /// database already stored is named, not stored again. Only under the backup lease
    /// ([`backup_exclusively`]), which retention's chunk sweep respects.
    pub incremental: bool,
    /// The chunk key: required for an encrypted incremental backup (the writer cannot read a
    /// key kept in the store encrypted); a plaintext database's is kept in the store when
    /// none is given.
    pub chunk_key: Option<crate::chunks::ChunkKey>,
}

impl BackupOptions {
    pub fn new(database_id: DatabaseId) -> Self {
        Self {
            database_id,
            jobs: 2,
            tier: None,
            exclude: Vec::new(),
            split_pages: 32_768, // 256 MiB of 8 KiB pages
            compression_level: 1,
            lock_timeout: Duration::from_secs(60),
            deadline: None,
            reason: None,
            include_role_passwords: false,
            recipients: None,
            lease: DEFAULT_LEASE,
            interrupt: tokio_util::sync::CancellationToken::new(),
            silence_limit: backstop_pg::liveness::DEFAULT_SILENCE_LIMIT,
            incremental: false,
            chunk_key: None,
        }
    }
}

/// Progress, for whoever displays it.
#[derive(Debug, Clone)]
pub enum BackupEvent {
    Started {
        backup_id: String,
        tables: usize,
        table_bytes: u64,
        /// Seconds from the start to the catalog read, checked against the inventory and
        /// ordered: what the backup costs before its first row.
        catalog_seconds: f64,
    },
    PartStored {
        table: String,
        rows: u64,
        stored_bytes: u64,
        /// The part's share of the table's size in the database (what `table_bytes` sums).
        table_bytes: u64,
    },
    Finished {
        backup_id: String,
        stored_bytes: u64,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error(transparent)]
    Connect(#[from] ConnectError),
    #[error("{step} failed: {reason}")]
    Database { step: &'static str, reason: String },
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    #[error(transparent)]
    Encryption(#[from] EncryptionError),
    #[error(transparent)]
    Version(#[from] VersionError),
    #[error(
        "backup refused: {} object(s) cannot be reproduced by this engine: {}; exclude them \
         explicitly to back up the rest: {}",
        objects.len(),
        first_of(objects),
        first_of(arguments)
    )]
    Unsupported {
        /// Every refused object, as `kind identity`.
        objects: Vec<String>,
        /// The `--exclude` argument for each.
        arguments: Vec<String>,
    },
    #[error(transparent)]
    Exclusion(#[from] inventory::ExclusionError),
    #[error("copying {table} failed: {reason}")]
    Copy { table: String, reason: String },
    #[error(
        "table {table} is locked by another session ({reason}); retry when the DDL or maintenance is over"
    )]
    Locked { table: String, reason: String },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(
        "the backup was stopped after {seconds:.0} s because the time limit was reached; nothing was committed"
    )]
    DeadlineReached { seconds: f64 },
    #[error(transparent)]
    Lease(#[from] LeaseError),
    #[error(
        "this host's clock is {skew} of the database server's; backup ids, ages and retention \
         are read from it, so nothing was backed up: set the host's time (NTP) and run again"
    )]
    ClockSkew { skew: backstop_store::clock::Skew },
    #[error(
        "{source}; the database holds text that is not UTF-8 (a SQL_ASCII database with names, \
         comments or definitions in another encoding), and Backstop reads the catalog as UTF-8: \
         nothing was backed up; convert that text to UTF-8 (or rename the objects holding it)"
    )]
    NotUtf8 { source: Box<BackupError> },
    #[error(
        "the backup was stopped because its lease {key} could not be renewed before it expired \
         (another run may start); nothing was committed: check the store (space, access) and run again"
    )]
    LeaseLost { key: String },
    #[error(
        "the server stopped answering ({reason}); the backup stopped, nothing was committed and what it had stored was removed: check that the server is up and not frozen or overloaded, then back up again"
    )]
    ServerSilent { reason: String },
    #[error("the backup was interrupted; nothing was committed and what it had stored was removed")]
    Interrupted,
    #[error(
        "the server's lock table cannot hold a lock on each of the {tables} tables for the \
         backup's snapshot (max_locks_per_transaction = {locks}, max_connections = {connections}); \
         set max_locks_per_transaction to {needed} or more and restart the server (pg_dump needs the same)"
    )]
    TooManyTables {
        tables: usize,
        locks: i32,
        connections: i32,
        needed: usize,
    },
}

/// The first 20 of `list`, and how many more there are.
fn first_of(list: &[String]) -> String {
    let shown = list.iter().take(20).cloned().collect::<Vec<_>>().join(", ");
    match list.len() {
        n if n > 20 => format!("{shown} and {} more", n - 20),
        _ => shown,
    }
}

fn shape(step: &'static str) -> impl Fn(String) -> BackupError {
    move |reason| BackupError::Database { step, reason }
}

fn database(step: &'static str) -> impl Fn(tokio_postgres::Error) -> BackupError {
    move |e| BackupError::Database {
        step,
        reason: describe(&e),
    }
}

/// Takes a backup of the database at `pg` into `store`, without the lease: whole parts only
/// (shared chunks are named only under the lease that retention's chunk sweep respects).
pub async fn backup(
    pg: &PgTarget,
    store: Arc<dyn Store>,
    options: &BackupOptions,
    on_event: &(dyn Fn(BackupEvent) + Sync),
) -> Result<Manifest, BackupError> {
    let options = BackupOptions {
        incremental: false,
        ..options.clone()
    };
    backup_until(pg, store, &options, on_event, std::future::pending()).await
}

/// [`backup`], stopped (and its set removed) when `stop` completes first.
async fn backup_until(
    pg: &PgTarget,
    store: Arc<dyn Store>,
    options: &BackupOptions,
    on_event: &(dyn Fn(BackupEvent) + Sync),
    stop: impl std::future::Future<Output = BackupError>,
) -> Result<Manifest, BackupError> {
    let started_at = OffsetDateTime::now_utc();
    let backup_id = BackupId::generate(started_at);
    let tier = match options.tier {
        Some(tier) => tier,
        None => automatic_tier(store.as_ref(), &options.database_id, started_at).await?,
    };
    let uploaded = Uploaded::default();
    let committing = std::sync::atomic::AtomicBool::new(false);
    let clock = Instant::now();
    let mut work = Box::pin(run(
        pg,
        store.clone(),
        options,
        &backup_id,
        started_at,
        tier,
        &uploaded,
        &committing,
        on_event,
    ));
    let deadline = async {
        match options.deadline {
            Some(deadline) => tokio::time::sleep_until(deadline).await,
            None => std::future::pending().await,
        }
        BackupError::DeadlineReached {
            seconds: clock.elapsed().as_secs_f64(),
        }
    };
    let interrupted = async {
        options.interrupt.cancelled().await;
        BackupError::Interrupted
    };
    let silent = async {
        BackupError::ServerSilent {
            reason: backstop_pg::liveness::silence(pg, options.silence_limit).await,
        }
    };
    let stops = async {
        tokio::select! {
            reached = deadline => reached,
            stopped = stop => stopped,
            interrupted = interrupted => interrupted,
            silent = silent => silent,
        }
    };
    let stopped = tokio::select! {
        biased;
        result = &mut work => Ok(result),
        stopped = stops => Err(stopped),
    };
    let result = match stopped {
        Ok(result) => result,
        // The manifest is being written: let that one write end, whichever way.
        Err(_) if committing.load(std::sync::atomic::Ordering::SeqCst) => work.await,
        Err(stopped) => {
            // Dropped before the cleanup: a stopped run left alive holds what it held (a
            // store write's hold on listings, its sessions), and the cleanup would wait for it.
            drop(work);
            Err(stopped)
        }
    };
    // The server refuses to send a catalog text it cannot convert: said plainly.
    let result = result.map_err(|e| {
        if e.to_string()
            .contains("invalid byte sequence for encoding \"UTF8\"")
        {
            BackupError::NotUtf8 {
                source: Box::new(e),
            }
        } else {
            e
        }
    });
    if result.is_err() {
        remove_failed_set(
            store.as_ref(),
            &set_key(&options.database_id, &backup_id, ""),
            &uploaded,
        )
        .await;
    }
    result
}

/// As pg_dump does since the fix for CVE-2024-7348: where the server has the setting, a
/// session of the backup reads no relation that could run code or reach another server on
/// access (a table swapped for a view while the dump runs, a foreign table). One statement,
/// a no-op on servers without it.
pub(super) const HARDEN_SESSION: &str = "SELECT pg_catalog.set_config('restrict_nonsystem_relation_kind', 'view, foreign-table', false) \
     FROM pg_catalog.pg_settings WHERE name = 'restrict_nonsystem_relation_kind';\n";

async fn harden(leader: &Client) -> Result<(), BackupError> {
    let rows = leader
        .simple_query(HARDEN_SESSION)
        .await
        .map_err(database("hardening the session"))?;
    let hardened = rows
        .iter()
        .any(|m| matches!(m, tokio_postgres::SimpleQueryMessage::Row(_)));
    if !hardened {
        tracing::warn!(
            "the server predates the fix for CVE-2024-7348 (18, 17.0, 16.4, 15.8, 14.13, 13.16): a table \
             swapped for a view while the backup runs could run code as the backup's role; \
             upgrade the server's minor version"
        );
    }
    Ok(())
}

/// Takes a backup while holding the database's backup lease (`_backstop/locks/<id>/backup`),
/// so two runs — scheduled, on demand or from the CLI — never back up one database at once.
/// Another run in progress is `BackupError::Lease(LeaseError::Held { .. })`.
pub async fn backup_exclusively(
    pg: &PgTarget,
    store: Arc<dyn Store>,
    options: &BackupOptions,
    holder: &str,
    on_event: &(dyn Fn(BackupEvent) + Sync),
) -> Result<Manifest, BackupError> {
    let key = lease_key(&options.database_id, "backup");
    let lease = lease::acquire(store.clone(), &key, holder, options.lease).await?;
    let lost = async {
        lease.lost().await;
        BackupError::LeaseLost { key: key.clone() }
    };
    let result = backup_until(pg, store, options, on_event, lost).await;
    if let Err(e) = lease.release().await {
        tracing::warn!(error = %e, "could not release the backup lease; it expires on its own");
    }
    result
}

/// A small table the change stream says changes gets a part of its own from this size (in
/// the database) up: below it, storing it whole again costs little.
const OWN_PART_BYTES: u64 = 256 << 10;

/// Keys of a set stored so far, shared with the workers so a stopped run still knows them.
type Uploaded = Arc<Mutex<Vec<String>>>;

fn record_upload(uploaded: &Uploaded, key: String) {
    if let Ok(mut keys) = uploaded.lock() {
        keys.push(key);
    }
}

/// Deletes what a failed run stored and aborts uploads it left unfinished under the set.
async fn remove_failed_set(store: &dyn Store, set_prefix: &str, uploaded: &Uploaded) {
    let mut keys = uploaded.lock().map(|k| k.clone()).unwrap_or_default();
    // The set's prefix is this run's alone: whatever is under it goes too, including an object
    // whose write was stopped after it landed but before it was recorded.
    match store.list(set_prefix).await {
        Ok(listed) => keys.extend(listed.into_iter().map(|object| object.key)),
        Err(e) => {
            tracing::warn!(error = %e, "could not list the failed backup's objects; removing the recorded ones")
        }
    }
    keys.sort();
    keys.dedup();
    // The manifest first, so that nothing left behind can pass for a committed set.
    keys.sort_by_key(|key| !key.ends_with(MANIFEST_NAME));
    for key in &keys {
        if let Err(e) = store.delete(key).await {
            tracing::warn!(key, error = %e, "could not remove a part of the failed backup; retention's sweep will");
        }
    }
    match store.pending_uploads(set_prefix).await {
        Ok(pending) => {
            for upload in pending {
                if let Err(e) = store.abort_upload(&upload).await {
                    tracing::warn!(key = %upload.key, error = %e, "could not abort an unfinished upload; retention's sweep will");
                }
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, "could not list unfinished uploads of the failed backup")
        }
    }
}

/// The tier of a backup starting now, from the committed backups already in the store.
pub async fn automatic_tier(
    store: &dyn Store,
    database: &DatabaseId,
    started_at: OffsetDateTime,
) -> Result<Tier, StoreError> {
    let objects = store.list(&database_prefix(database)).await?;
    let earlier: Vec<OffsetDateTime> =
        committed_backups(database, objects.iter().map(|o| o.key.as_str()))
            .iter()
            .filter_map(BackupId::started_at)
            .collect();
    Ok(tier_for(started_at, &earlier))
}

/// Refuses to go on when this host's clock is off the server's by more than
/// [`backstop_store::clock::MAX_SKEW`]: a set named from a wrong clock would pass for the newest, or
/// look stale, for as long as the error lasts.
async fn check_clock(leader: &Client) -> Result<(), BackupError> {
    let server: f64 = value(
        &leader
            .query_one(
                "SELECT extract(epoch FROM pg_catalog.clock_timestamp())::float8",
                &[],
            )
            .await
            .map_err(database("reading the server's clock"))?,
        0,
    )
    .map_err(shape("reading the server's clock"))?;
    let local = OffsetDateTime::now_utc();
    let server = OffsetDateTime::from_unix_timestamp_nanos((server * 1e9) as i128)
        .map_err(|e| shape("reading the server's clock")(e.to_string()))?;
    match backstop_store::clock::skew(local, server) {
        Some(skew) => Err(BackupError::ClockSkew { skew }),
        None => Ok(()),
    }
}

/// What the inventory holds, read in the backup's snapshot: every object, the privileges on
/// each, and the objects that carry security labels.
async fn take_inventory(
    client: &Client,
    version: ServerVersion,
) -> Result<
    (
        Vec<inventory::InventoryObject>,
        Vec<(ObjectRef, u64)>,
        Vec<ObjectRef>,
    ),
    BackupError,
> {
    let failed = |step: &'static str| {
        move |e: inventory::InventoryError| BackupError::Database {
            step,
            reason: e.to_string(),
        }
    };
    let objects = inventory::read(client, version)
        .await
        .map_err(failed("taking the object inventory"))?;
    let privileges = inventory::privileges(client)
        .await
        .map_err(failed("counting privileges"))?;
    let labels = inventory::security_labels(client)
        .await
        .map_err(failed("counting security labels"))?;
    Ok((objects, privileges, labels))
}

/// The current value of each of `sequences`, read on `session` (hardened, out of any snapshot).
async fn read_sequence_values(
    session: &Client,
    version: ServerVersion,
    sequences: &[catalog::SequenceRef],
) -> Result<Vec<crate::item::Item>, BackupError> {
    Ok(catalog::sequence_values(&catalog::Db::new(session, version), sequences).await?)
}

/// The leader's session in its exported snapshot, every table locked, and where the snapshot
/// stands.
struct Snapshot {
    leader: Client,
    version: ServerVersion,
    /// What the other sessions pass to `SET TRANSACTION SNAPSHOT`.
    exported: String,
    /// `pg_current_snapshot()`: which transactions the backup holds.
    transactions: String,
    wal_lsn: Option<String>,
    /// Where the change stream's slot stood, when there is one.
    stream: Option<StreamPosition>,
    server_version: String,
    server_version_num: i32,
    database_name: String,
    /// Where the server's WAL stood around the snapshot (incremental backups on a primary).
    origin: Option<crate::manifest::WalOrigin>,
    /// Where WAL was inserted just after the snapshot: every commit it sees is before it.
    inserted: Option<stream::segment::Lsn>,
}

/// Connects the leader, checks the server and the clocks, starts the snapshot every session
/// of the backup shares and locks every table in it.
async fn open_snapshot(pg: &PgTarget, options: &BackupOptions) -> Result<Snapshot, BackupError> {
    let leader = connect(pg).await?;
    let version = ServerVersion::read_supported(&leader).await?;
    check_clock(&leader).await?;
    harden(&leader).await?;
    // The change stream's slot, read before the snapshot: segments after its position carry
    // this backup forward (`stream::plan`).
    let slot = stream::slot_name(&options.database_id);
    let slot_flush: Option<String> = leader
        .query_opt(
            "SELECT confirmed_flush_lsn::text FROM pg_catalog.pg_replication_slots \
             WHERE slot_name = $1 AND plugin = 'test_decoding' AND database = pg_catalog.current_database()",
            &[&slot],
        )
        .await
        .map_err(database("reading the change stream's slot"))?
        .map(|row| value(&row, 0))
        .transpose()
        .map_err(shape("reading the change stream's slot"))?
        .flatten();
    // Read before the snapshot: every change the snapshot does not hold is written after it.
    let mut origin = match options.incremental {
        true => unchanged::origin_before_snapshot(&leader, version).await,
        false => None,
    };
    leader
        .batch_execute(
            &backstop_pg::session::Purpose::BackupLeader {
                lock_timeout: options.lock_timeout,
            }
            .setup(),
        )
        .await
        .map_err(database("starting the snapshot transaction"))?;
    let exported: String = value(
        &leader
            .query_one("SELECT pg_catalog.pg_export_snapshot()", &[])
            .await
            .map_err(database("exporting the snapshot"))?,
        0,
    )
    .map_err(shape("exporting the snapshot"))?;
    lock_tables(&leader).await?;
    // Where the snapshot stands among transactions and in the WAL: what a point-in-time
    // restore applies on top of this backup is exactly what it does not hold.
    let position = leader
        .query_one(
            "SELECT pg_catalog.pg_current_snapshot()::text, (CASE WHEN pg_catalog.pg_is_in_recovery() \
             THEN pg_catalog.pg_last_wal_replay_lsn() ELSE pg_catalog.pg_current_wal_lsn() END)::text, \
             (extract(epoch FROM pg_catalog.clock_timestamp()) * 1000000)::int8, \
             current_setting('server_version'), current_setting('server_version_num')::int4, \
             current_database()::text, (CASE WHEN pg_catalog.pg_is_in_recovery() THEN NULL \
             ELSE pg_catalog.pg_current_wal_insert_lsn() END)::text",
            &[],
        )
        .await
        .map_err(database("reading the snapshot's position"))?;
    let read = shape("reading the snapshot's position");
    let wal_lsn: Option<String> = value(&position, 1).map_err(&read)?;
    // Where WAL is inserted, not written: a commit the snapshot sees may not be written yet.
    let inserted: Option<String> = value(&position, 6).map_err(&read)?;
    let inserted: Option<stream::segment::Lsn> = inserted.as_deref().and_then(|i| i.parse().ok());
    match (&mut origin, inserted) {
        (Some(origin), Some(ceiling)) => origin.ceiling_lsn = ceiling,
        _ => origin = None,
    }
    let snapshot_at = backstop_pg::time_from_micros(value(&position, 2).map_err(&read)?);
    let stream = match (slot_flush, &wal_lsn) {
        (Some(flush), Some(wal)) => Some(StreamPosition {
            slot,
            confirmed_flush_lsn: flush.parse().map_err(|reason| BackupError::Database {
                step: "reading the change stream's slot",
                reason,
            })?,
            wal_lsn: wal.parse().map_err(|reason| BackupError::Database {
                step: "reading the snapshot's position",
                reason,
            })?,
            snapshot_at,
            fingerprint: stream::fingerprint(&leader)
                .await
                .map_err(|e| BackupError::Database {
                    step: "reading the schema fingerprint",
                    reason: e.to_string(),
                })?,
        }),
        _ => None,
    };
    Ok(Snapshot {
        transactions: value(&position, 0).map_err(&read)?,
        wal_lsn,
        server_version: value(&position, 3).map_err(&read)?,
        server_version_num: value(&position, 4).map_err(&read)?,
        database_name: value(&position, 5).map_err(&read)?,
        stream,
        leader,
        version,
        exported,
        origin,
        inserted,
    })
}

/// Every object the inventory saw, the privileges on each, and the objects with labels.
type Inventory = (
    Vec<inventory::InventoryObject>,
    Vec<(ObjectRef, u64)>,
    Vec<ObjectRef>,
);

/// The catalog and the roles on the leader while a second session in the same snapshot reads
/// the constraints and indexes and takes the inventory that checks it all: on thousands of
/// small tables, each is a good part of the time before the data. The second session is
/// returned with its snapshot transaction ended, to read the sequence values.
async fn read_catalog(
    pg: &PgTarget,
    snapshot: &Snapshot,
    options: &BackupOptions,
) -> Result<(Catalog, Globals, Inventory, i64, Client), BackupError> {
    let version = snapshot.version;
    let helper = copy::join_snapshot(pg, &snapshot.exported).await?;
    let (apart_sender, apart) = tokio::sync::oneshot::channel();
    let (read, taken) = tokio::join!(
        async {
            let db = catalog::Db::new(&snapshot.leader, version);
            let apart = async {
                apart.await.unwrap_or_else(|_| {
                    Err(CatalogError::Query {
                        what: "constraints and indexes",
                        server: version,
                        reason: "the second session stopped".into(),
                    })
                })
            };
            let catalog = catalog::read(&db, apart).await?;
            let globals = catalog::globals(&db, options.include_role_passwords).await?;
            Ok::<_, BackupError>((catalog, globals))
        },
        // One query at a time on the second session, so that a failure is its own: the
        // database's size first (a walk of its files: 40 ms at 4,000 tables, here beside the
        // leader's reading rather than before it), then its own part of the catalog.
        async {
            // A failure here drops the sender: the leader's read stops, and this is the cause.
            let size = database_bytes(&helper).await?;
            let apart = catalog::read_apart(&catalog::Db::new(&helper, version)).await;
            let read = apart.is_ok();
            let _ = apart_sender.send(apart);
            match read {
                true => Ok(Some((take_inventory(&helper, version).await?, size))),
                false => Ok::<_, BackupError>(None), // the catalog's read reports it
            }
        },
    );
    let taken = taken?;
    let (catalog, globals) = read?;
    let (inventory, database_bytes) = taken.ok_or_else(|| BackupError::Database {
        step: "taking the object inventory",
        reason: "the catalog was not read".into(),
    })?;
    // Out of the snapshot, a sequence locked by someone else is waited for as the leader
    // waits for its tables.
    helper
        .batch_execute(&format!(
            "COMMIT;\nSET lock_timeout = '{}ms';\n",
            options.lock_timeout.as_millis()
        ))
        .await
        .map_err(database("ending the second session's snapshot transaction"))?;
    Ok((catalog, globals, inventory, database_bytes, helper))
}

/// `pg_database_size` of the database `client` is connected to: what the next run's duration
/// is estimated from.
async fn database_bytes(client: &Client) -> Result<i64, BackupError> {
    let row = client
        .query_one(
            "SELECT pg_catalog.pg_database_size(pg_catalog.current_database())",
            &[],
        )
        .await
        .map_err(database("reading the database's size"))?;
    value(&row, 0).map_err(shape("reading the database's size"))
}

/// Checks the catalog against the inventory: what the operator excluded goes (with the items
/// that create or need it); an object neither reproduced, excluded nor refused by name fails
/// the backup naming it. Returns the manifest's counts per kind and what was left out, why.
fn check_complete(
    catalog: &mut Catalog,
    (objects, privileges, labels): Inventory,
    exclude: &[String],
) -> Result<(BTreeMap<String, u64>, Vec<String>), BackupError> {
    let plan = {
        let refs: Vec<inventory::ItemRefs<'_>> = catalog
            .items
            .iter()
            .map(|i| inventory::ItemRefs {
                owns: &i.owns,
                needs: &i.needs,
            })
            .collect();
        let edges: Vec<_> = catalog
            .normal_edges
            .iter()
            .map(|e| (e.from, e.to))
            .collect();
        inventory::plan_exclusions(&objects, exclude, &refs, &edges)?
    };
    // What the operator excluded goes, with the items that create or need it.
    let mut index = 0;
    catalog.items.retain(|_| {
        index += 1;
        !plan.dropped_items.contains(&(index - 1))
    });
    let left_out = |class: u32, oid: u32| plan.left_out.contains(&ObjectRef { class, oid });
    let extension_left_out =
        |extension: Option<u32>| extension.is_some_and(|e| left_out(class::PG_EXTENSION, e));
    catalog.tables.retain(|t| {
        !left_out(class::PG_CLASS, t.oid)
            && !extension_left_out(t.extension_rows.as_ref().map(|x| x.extension))
    });
    catalog
        .sequences
        .retain(|s| !left_out(class::PG_CLASS, s.oid) && !extension_left_out(s.of_extension));

    let mut claimed: HashSet<_> = catalog
        .items
        .iter()
        .flat_map(|i| i.owns.iter().copied())
        .collect();
    claimed.extend(catalog.skipped.iter().map(|(object, _)| *object));
    claimed.extend(catalog.recreated.iter().copied());
    let missing = inventory::unclaimed(&objects, &claimed, &plan.left_out);
    if !missing.is_empty() {
        return Err(BackupError::Unsupported {
            objects: missing.iter().map(|o| o.label()).collect(),
            arguments: missing
                .iter()
                .map(|o| inventory::exclude_argument(o))
                .collect(),
        });
    }
    let mut excluded = plan.named.clone();
    excluded.extend(catalog.skipped.iter().map(|(_, why)| why.clone()));
    // Column statistics the backup role may not read (pg_stats hides them): a restore
    // ANALYZEs those tables instead.
    excluded.extend(
        catalog
            .items
            .iter()
            .filter(|i| i.kind == ItemKind::Analyze)
            .map(|i| {
                format!(
                    "column statistics of {} (the backup role may not read the table; a restore ANALYZEs it: grant it pg_read_all_data to carry them)",
                    i.table.as_deref().unwrap_or(&i.name)
                )
            }),
    );
    for (_, why) in &catalog.skipped {
        tracing::warn!(%why, "left out of the backup");
    }

    // What the manifest counts: the objects this backup reproduces, their privileges and their
    // security labels.
    let reproduced: HashSet<_> = claimed
        .iter()
        .filter(|object| !catalog.skipped.iter().any(|(s, _)| s == *object))
        .copied()
        .collect();
    let mut inventory =
        inventory::counts(objects.iter().filter(|o| reproduced.contains(&o.object)));
    inventory.insert(
        inventory::PRIVILEGE_KIND.to_string(),
        privileges
            .iter()
            .filter(|(object, _)| !plan.left_out.contains(object))
            .map(|(_, count)| count)
            .sum(),
    );
    let labels = labels
        .iter()
        .filter(|object| !plan.left_out.contains(object))
        .count() as u64;
    if labels > 0 {
        inventory.insert(inventory::SECURITY_LABEL_KIND.to_string(), labels);
    }
    inventory.insert(
        inventory::STATISTICS_KIND.to_string(),
        catalog
            .items
            .iter()
            .filter(|i| i.kind == ItemKind::StatisticsData)
            .count() as u64,
    );
    Ok((inventory, excluded))
}

/// Stores the manifest (encrypted to the recipients when there are any), which commits the
/// set. From its first byte a stop waits for the write instead of dropping it half-way (a
/// write that lands after the parts were removed would commit an empty set).
async fn commit(
    store: &dyn Store,
    manifest: &Manifest,
    options: &BackupOptions,
    (put_options, manifest_key): (&PutOptions, &str),
    uploaded: &Uploaded,
    committing: &std::sync::atomic::AtomicBool,
) -> Result<(), BackupError> {
    let stored = match &options.recipients {
        Some(recipients) => manifest.stored_encrypted(recipients)?,
        None => manifest.clone(),
    };
    let json = serde_json::to_vec_pretty(&stored).map_err(|e| BackupError::Database {
        step: "writing the manifest",
        reason: e.to_string(),
    })?;
    committing.store(true, std::sync::atomic::Ordering::SeqCst);
    record_upload(uploaded, manifest_key.to_string());
    store
        .put(manifest_key, &mut json.as_slice(), put_options)
        .await?;
    Ok(())
}

#[allow(clippy::too_many_arguments)]
async fn run(
    pg: &PgTarget,
    store: Arc<dyn Store>,
    options: &BackupOptions,
    backup_id: &BackupId,
    started_at: OffsetDateTime,
    tier: Tier,
    uploaded: &Uploaded,
    committing: &std::sync::atomic::AtomicBool,
    on_event: &(dyn Fn(BackupEvent) + Sync),
) -> Result<Manifest, BackupError> {
    let clock = Instant::now();
    let snapshot = open_snapshot(pg, options).await?;
    tracing::debug!(
        seconds = clock.elapsed().as_secs_f64(),
        "snapshot taken and tables locked"
    );
    let (mut catalog, globals, taken, database_bytes, helper) =
        read_catalog(pg, &snapshot, options).await?;
    // The second session stays open for the sequence values only when the server has room
    // for it (counted now, as it is open) beside the jobs asked and the watch.
    let asked = options.jobs.max(1);
    let values_session = (backstop_pg::budget::cap_jobs(&snapshot.leader, asked, 1).await == asked)
        .then_some(helper);
    tracing::debug!(seconds = clock.elapsed().as_secs_f64(), "catalog read");
    let (inventory, excluded) = check_complete(&mut catalog, taken, &options.exclude)?;
    tracing::debug!(
        seconds = clock.elapsed().as_secs_f64(),
        "checked against the inventory"
    );
    let Snapshot {
        leader,
        version,
        exported: snapshot_name,
        transactions: snapshot_text,
        wal_lsn,
        stream: stream_position,
        server_version,
        server_version_num,
        database_name,
        origin,
        inserted,
    } = snapshot;
    let ordered = order::order(catalog.items, &catalog.edges);
    for label in &ordered.cycles_broken {
        tracing::warn!(item = %label, "dependency cycle broken at this item");
    }
    let marker = format!("backstop:{:016x}", rand::random::<u64>());
    let tags = vec![(TIER_TAG.to_string(), tier.as_str().to_string())];
    // Every object of a set is new: written create-only, never replacing anything.
    let put_options = PutOptions {
        tags,
        create_only: true,
    };
    let prefix = |name: &str| set_key(&options.database_id, backup_id, name);

    on_event(BackupEvent::Started {
        backup_id: backup_id.to_string(),
        tables: catalog.tables.len(),
        table_bytes: catalog.tables.iter().map(|t| t.bytes).sum(),
        catalog_seconds: clock.elapsed().as_secs_f64(),
    });

    let pre: Vec<_> = ordered
        .items
        .iter()
        .filter(|i| i.section == Section::PreData)
        .collect();
    let title = format!("Backstop backup {backup_id} of {database_name}: pre-data");
    tracing::debug!(seconds = clock.elapsed().as_secs_f64(), "items ordered");
    let writer = ObjectWriter {
        store: store.as_ref(),
        set_prefix: prefix(""),
        options: &put_options,
        level: options.compression_level,
        recipients: options.recipients.as_ref(),
        uploaded,
    };
    let pre_part = writer
        .script(
            "pre-data.sql.zst",
            PartKind::PreData,
            0,
            &script::render(&title, &marker, &pre),
        )
        .await?;
    let mut parts = vec![pre_part];
    let globals_file = writer.globals(&globals).await?;

    let data_prefix = prefix("");
    let (chunk_writer, previous) = chunk_writer(&store, options).await?;
    // An incremental backup records each table's files, and names the previous set's parts
    // of the tables the WAL summaries prove unchanged instead of reading them.
    let files = match &chunk_writer {
        Some(_) => unchanged::storage(&leader, &catalog.tables).await?,
        None => Default::default(),
    };
    // With a change stream, it says which tables changed since the previous set, and which
    // rows of them; else the WAL summaries say which tables were not written.
    let stream_changes = match (&chunk_writer, &previous) {
        (Some(_), Some(previous)) if previous.stream.is_some() => {
            match changes::stream_changes(
                pg,
                &leader,
                &store,
                options,
                previous,
                stream_position.as_ref(),
                inserted,
            )
            .await
            {
                Ok(changes) => Some(changes),
                Err(reason) => {
                    tracing::info!(%reason, "the change stream proves no table unchanged this time");
                    None
                }
            }
        }
        _ => None,
    };
    let summaries = match (&chunk_writer, &previous, &origin, &stream_changes) {
        (Some(_), Some(previous), Some(origin), None) => {
            match unchanged::summaries(pg, &leader, version, previous, origin).await {
                Ok(summaries) => Some(summaries),
                Err(reason) => {
                    tracing::info!(%reason, "no table is proven unchanged: every table is read");
                    None
                }
            }
        }
        _ => None,
    };
    let mut reused = match (&previous, &stream_changes, &summaries) {
        (Some(previous), Some(changes), _) => unchanged::unchanged_parts(
            previous,
            &catalog.tables,
            &files,
            &|block, _| changes.touches(&block.schema, &block.name),
            crate::manifest::Proof::Stream {
                since: changes.since.clone(),
                from_lsn: changes.from_lsn,
                to_lsn: changes.to_lsn,
            },
        ),
        (Some(previous), None, Some(summaries)) => {
            unchanged::reusable(previous, &catalog.tables, &files, summaries)
        }
        _ => Vec::new(),
    };
    // Tables that were written since, and those never proven unchanged, go in bundles of
    // their own: the others' bundles can be named whole next time. A table the change stream
    // says changes, unless tiny, gets a part of its own: the next backup may store a delta.
    let group = |table: &catalog::DataTable| match files.get(&table.oid) {
        None => 0,
        Some((_, false)) => 2,
        Some((_, true))
            if table.bytes >= OWN_PART_BYTES
                && stream_changes
                    .as_ref()
                    .is_some_and(|c| c.touches(&table.schema, &table.name)) =>
        {
            copy::OWN_PART
        }
        Some((storage, true)) => u8::from(
            stream_changes
                .as_ref()
                .is_some_and(|c| c.touches(&table.schema, &table.name))
                || summaries.as_ref().is_some_and(|s| {
                    s.written.contains(&storage.relfilenode)
                        || storage
                            .toast_relfilenode
                            .is_some_and(|t| s.written.contains(&t))
                }),
        ),
    };
    let named: HashSet<&str> = reused
        .iter()
        .flat_map(|p| p.blocks())
        .map(|b| b.qualified_name.as_str())
        .collect();
    let deltas = match (&stream_changes, &previous) {
        (Some(changes), Some(previous)) => {
            changes::delta_units(
                &leader,
                &store,
                options,
                changes,
                previous,
                &catalog.tables,
                &files,
                &named,
            )
            .await?
        }
        _ => Vec::new(),
    };
    let to_read: Vec<catalog::DataTable> = catalog
        .tables
        .iter()
        .filter(|t| !named.contains(t.qualified_name.as_str()))
        .filter(|t| !deltas.iter().any(|d| d.table.oid == t.oid))
        .cloned()
        .collect();
    let mut units: Vec<_> = plan_units(
        &to_read,
        &catalog.large_objects,
        options.split_pages,
        &group,
    )
    .into_iter()
    .map(|unit| unit.stored_as(&writer.name("")))
    .collect();
    let first_delta = units.len() as u32 + 1;
    units.extend(
        deltas
            .into_iter()
            .enumerate()
            .map(|(i, delta)| copy::Unit::delta(first_delta + i as u32, delta)),
    );
    tracing::debug!(seconds = clock.elapsed().as_secs_f64(), "pre-data stored");
    // One connection per job, and the server watched on one more: no more than it allows.
    let jobs = backstop_pg::budget::cap_jobs(&leader, options.jobs.max(1), 1).await;
    let copy_options = BackupOptions {
        jobs,
        ..options.clone()
    };
    // The sequence values are read while the data is copied, on the second session now out of
    // the snapshot, when the server had room for it beside the jobs; else after the copy, on a
    // session of its own. A sequence's value is never read in a snapshot: read after it, it is
    // at least what the backed-up rows used. Each statement of `sequence_values` is a
    // transaction of its own, so its locks add at most one chunk to the leader's and the
    // workers' (a transaction holding them all filled the lock table at 20,000 tables).
    let copied = copy_units(
        pg,
        &snapshot_name,
        store.clone(),
        units,
        &copy_options,
        &data_prefix,
        &put_options,
        uploaded,
        chunk_writer.clone(),
        on_event,
    );
    let values = async {
        match &values_session {
            Some(session) => read_sequence_values(session, version, &catalog.sequences)
                .await
                .map(Some),
            None => Ok(None),
        }
    };
    let (data_parts, values) = tokio::join!(copied, values);
    let mut data_parts = data_parts?;
    // What was read says so, with the files it was read from; what was named follows it.
    let oids: HashMap<&str, u32> = catalog
        .tables
        .iter()
        .map(|t| (t.qualified_name.as_str(), t.oid))
        .collect();
    for part in data_parts.iter_mut().filter(|p| p.is_chunked()) {
        for block in part.table.iter_mut().chain(part.bundle.iter_mut()) {
            block.proof = Some(crate::manifest::Proof::Read);
            block.storage = oids
                .get(block.qualified_name.as_str())
                .and_then(|oid| files.get(oid))
                .map(|(storage, _)| storage.clone());
        }
    }
    let mut order = data_parts.iter().map(|p| p.order).max().unwrap_or(0);
    for part in &mut reused {
        order += 1;
        part.order = order;
        part.key = format!("data/{order:04}.copy.chunks");
        on_event(BackupEvent::PartStored {
            table: part
                .blocks()
                .map(|b| b.qualified_name.clone())
                .collect::<Vec<_>>()
                .join(", "),
            rows: part.blocks().map(|b| b.rows).sum(),
            stored_bytes: 0,
            table_bytes: 0,
        });
    }
    if let Some(writer) = &chunk_writer {
        writer.name_without_storing(reused.iter().flat_map(|p| p.chunks.iter()));
    }
    data_parts.extend(reused);
    let data_count = data_parts.len() as u32;
    parts.extend(data_parts);
    drop(values_session);
    let mut post_items = match values? {
        Some(values) => values,
        None => {
            let session = connect(pg).await?;
            // Hardened as every backup session is: a sequence swapped for a view runs
            // nothing here.
            session
                .batch_execute(&format!(
                    "SELECT pg_catalog.set_config('search_path', '', false);\n{HARDEN_SESSION}"
                ))
                .await
                .map_err(database("preparing the session that reads sequence values"))?;
            read_sequence_values(&session, version, &catalog.sequences).await?
        }
    };
    tracing::debug!(
        seconds = clock.elapsed().as_secs_f64(),
        "data stored, sequence values read"
    );
    // The planner's statistics go in a part of their own: only 18 and later run them.
    let (statistics_items, later): (Vec<crate::item::Item>, Vec<crate::item::Item>) = ordered
        .items
        .into_iter()
        .filter(|i| i.section == Section::PostData)
        .partition(|i| i.kind.is_planner_statistics());
    post_items.extend(later);
    let post: Vec<_> = post_items.iter().collect();
    let title = format!("Backstop backup {backup_id} of {database_name}: post-data");
    let post_part = writer
        .script(
            "post-data.sql.zst",
            PartKind::PostData,
            data_count + 1,
            &script::render(&title, &marker, &post),
        )
        .await?;
    parts.push(post_part);
    let title = format!("Backstop backup {backup_id} of {database_name}: planner statistics");
    let statistics: Vec<_> = statistics_items.iter().collect();
    parts.push(
        writer
            .script(
                "statistics.sql.zst",
                PartKind::Statistics,
                data_count + 2,
                &script::render(&title, &marker, &statistics),
            )
            .await?,
    );
    leader
        .batch_execute("COMMIT")
        .await
        .map_err(database("closing the snapshot transaction"))?;

    parts.sort_by_key(|p| p.order);
    // Bytes this set added: its own objects, and the chunks it was the first to store.
    let new_bytes = parts
        .iter()
        .filter(|p| !p.is_chunked())
        .map(|p| p.bytes)
        .sum::<u64>()
        + globals_file.bytes
        + chunk_writer
            .as_ref()
            .map_or(0, |w| w.added.load(std::sync::atomic::Ordering::Relaxed));
    if let Some(writer) = &chunk_writer {
        writer.check_reused().await?;
    }
    let manifest = Manifest {
        format_version: FORMAT_VERSION,
        engine_version: env!("CARGO_PKG_VERSION").to_string(),
        database_id: options.database_id.to_string(),
        database_name,
        backup_id: backup_id.to_string(),
        server_version,
        server_version_num: server_version_num.max(0) as u32,
        started_at,
        finished_at: OffsetDateTime::now_utc(),
        tier,
        database_bytes: u64::try_from(database_bytes).ok(),
        snapshot: Some(snapshot_text),
        wal_lsn,
        stream: stream_position,
        item_marker: marker,
        parts,
        globals: Some(globals_file),
        inventory,
        excluded,
        reason: options.reason.clone(),
        encryption: None,
        wal_origin: origin,
        new_bytes: Some(new_bytes),
        seal: None,
        keys: Default::default(),
    }
    .sealed();
    commit(
        store.as_ref(),
        &manifest,
        options,
        (&put_options, &prefix(MANIFEST_NAME)),
        uploaded,
        committing,
    )
    .await?;
    tracing::info!(backup_id = %backup_id, seconds = clock.elapsed().as_secs_f64(), bytes = manifest.total_bytes(), "backup committed");
    on_event(BackupEvent::Finished {
        backup_id: backup_id.to_string(),
        stored_bytes: manifest.total_bytes(),
    });
    Ok(manifest)
}

/// The writer of shared chunks when the backup is incremental and has a chunk key: given, or
/// (for a plaintext database) the one kept in the store. An encrypted backup without a given
/// key stores whole parts, and says so.
async fn chunk_writer(
    store: &Arc<dyn Store>,
    options: &BackupOptions,
) -> Result<(Option<Arc<chunked::ChunkWriter>>, Option<Manifest>), BackupError> {
    if !options.incremental {
        return Ok((None, None));
    }
    let key = match (&options.chunk_key, &options.recipients) {
        (Some(key), _) => key.clone(),
        (None, None) => crate::chunks::store_key(store.as_ref(), &options.database_id).await?,
        (None, Some(_)) => {
            tracing::warn!(
                "an encrypted backup stores shared chunks only with a chunk key given to it \
                 (BACKSTOP_CHUNK_KEY, 64 hex digits kept as a secret); this one stores whole parts"
            );
            return Ok((None, None));
        }
    };
    let (known, previous) = chunked::known_chunks(
        store.as_ref(),
        &options.database_id,
        options.recipients.as_ref(),
    )
    .await?;
    let writer = Arc::new(chunked::ChunkWriter {
        store: store.clone(),
        database: options.database_id.clone(),
        key,
        known,
        level: options.compression_level,
        recipients: options.recipients.clone(),
        added: Default::default(),
        reused: Default::default(),
        in_flight: Default::default(),
        scope: crate::chunks::scope(
            options
                .recipients
                .as_ref()
                .map(|r| r.names().to_vec())
                .as_deref(),
        ),
    });
    Ok((Some(writer), previous))
}

async fn lock_tables(leader: &Client) -> Result<(), BackupError> {
    let rows = leader
        .query(
            "SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname) FROM pg_class c \
             JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind IN ('r', 'p') AND c.oid >= 16384 \
             AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_(toast|temp_|toast_temp_)' \
             ORDER BY 1",
            &[],
        )
        .await
        .map_err(database("listing tables to lock"))?;
    let names: Vec<String> = column(&rows, 0).map_err(shape("listing tables to lock"))?;
    for chunk in names.chunks(500) {
        let locked = leader
            .batch_execute(&format!(
                "LOCK TABLE {} IN ACCESS SHARE MODE",
                chunk.join(", ")
            ))
            .await;
        if let Err(e) = locked {
            if e.code() == Some(&tokio_postgres::error::SqlState::OUT_OF_MEMORY) {
                return Err(too_many_locks(leader, names.len()).await);
            }
            return Err(lock_error(&chunk.join(", "), &e));
        }
    }
    Ok(())
}

/// The lock table cannot hold a lock on every table (pg_dump fails the same way): one line
/// saying which setting to raise, and to what.
async fn too_many_locks(leader: &Client, tables: usize) -> BackupError {
    // The failed LOCK aborted the transaction: read the settings on a fresh statement after
    // rolling back.
    let _ = leader.batch_execute("ROLLBACK").await;
    let setting = |name: &'static str| async move {
        leader
            .query_one(&format!("SELECT current_setting('{name}')::int4"), &[])
            .await
            .ok()
            .and_then(|row| row.try_get::<_, i32>(0).ok())
            .unwrap_or(0)
    };
    let (locks, connections) = (
        setting("max_locks_per_transaction").await,
        setting("max_connections").await,
    );
    BackupError::TooManyTables {
        tables,
        locks,
        connections,
        needed: needed_locks_per_transaction(tables, connections),
    }
}

/// A `max_locks_per_transaction` whose lock table holds a lock on each of `tables` and their
/// TOAST tables, twice over.
fn needed_locks_per_transaction(tables: usize, connections: i32) -> usize {
    let slots = tables * 4;
    slots
        .div_ceil(connections.max(1) as usize)
        .next_power_of_two()
}

/// A lock that could not be had is `Locked`; anything else is a plain database error.
fn lock_error(tables: &str, error: &tokio_postgres::Error) -> BackupError {
    let tables: String = tables.chars().take(200).collect();
    if error.code() == Some(&tokio_postgres::error::SqlState::LOCK_NOT_AVAILABLE) {
        BackupError::Locked {
            table: tables,
            reason: describe(error),
        }
    } else {
        BackupError::Database {
            step: "locking tables",
            reason: describe(error),
        }
    }
}

/// How the leader stores a set's whole objects (the SQL scripts, `globals.json`): created once,
/// tagged, encrypted when the backup has recipients, each key recorded for cleanup.
struct ObjectWriter<'a> {
    store: &'a dyn Store,
    set_prefix: String,
    options: &'a PutOptions,
    level: i32,
    recipients: Option<&'a Recipients>,
    uploaded: &'a Uploaded,
}

impl ObjectWriter<'_> {
    /// `name` as the set stores it: with `.age` when encrypted.
    fn name(&self, name: &str) -> String {
        match self.recipients {
            Some(_) => format!("{name}{}", encryption::SUFFIX),
            None => name.to_string(),
        }
    }

    async fn put(&self, name: &str, bytes: Vec<u8>) -> Result<PutReceipt, BackupError> {
        let bytes = match self.recipients {
            Some(recipients) => encryption::encrypt_bytes(recipients, &bytes)?,
            None => bytes,
        };
        let key = format!("{}{name}", self.set_prefix);
        let receipt = self
            .store
            .put(&key, &mut bytes.as_slice(), self.options)
            .await?;
        record_upload(self.uploaded, key);
        Ok(receipt)
    }

    /// Stores `globals.json` (never logged: it may hold password hashes).
    async fn globals(&self, globals: &Globals) -> Result<StoredFile, BackupError> {
        let json = serde_json::to_vec_pretty(globals).map_err(|e| BackupError::Database {
            step: "writing the roles and database properties",
            reason: e.to_string(),
        })?;
        let name = self.name(GLOBALS_NAME);
        let receipt = self.put(&name, json).await?;
        Ok(StoredFile {
            key: name,
            bytes: receipt.bytes,
            sha256: receipt.sha256,
        })
    }

    /// Stores an SQL part, zstd-compressed.
    async fn script(
        &self,
        name: &str,
        kind: PartKind,
        order: u32,
        text: &str,
    ) -> Result<Part, BackupError> {
        let name = self.name(name);
        let compressed =
            zstd::encode_all(text.as_bytes(), self.level).map_err(|source| StoreError::Source {
                key: name.clone(),
                source,
            })?;
        let receipt = self.put(&name, compressed).await?;
        Ok(Part {
            key: name,
            order,
            kind,
            bytes: receipt.bytes,
            sha256: receipt.sha256,
            table: None,
            bundle: Vec::new(),
            large_objects: None,
            plain_bytes: Some(text.len() as u64),
            chunks: Vec::new(),
            deltas: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lock_advice_covers_every_table_with_room_to_spare() {
        // 20,000 tables on a default server (64 locks x 100 connections = 6,400 slots).
        let needed = needed_locks_per_transaction(20_000, 100);
        assert_eq!(needed, 1024);
        assert!(needed * 100 >= 2 * 20_000);
    }
}
