//! Shared chunks by reference (DESIGN.md, "Shared chunks"): a chunk goes once no committed set
//! of the database names it. The references are read while retention holds the database's
//! backup lease, so no backup can name a chunk between the reading and the deleting; a chunk
//! younger than an hour is left (a writer that lost its lease may still be ending), and one
//! under Object Lock or legal hold is left and counted.

use std::collections::HashSet;
use std::time::Duration;

use futures::StreamExt;
use serde::Serialize;
use time::OffsetDateTime;

use super::{PruneError, PruneOptions, PruneReport, read_json};
use crate::engine::chunks::{CHUNKS_FOLDER, id_of_key};
use crate::engine::manifest::Manifest;
use crate::layout::{DatabaseId, MANIFEST_NAME, committed_backups, database_prefix, set_key};
use crate::lease::{LeaseError, hold_briefly, lease_key};
use crate::store::{ObjectMeta, Store};

/// An unreferenced chunk younger than this is left for the next run.
pub const CHUNK_SWEEP_AFTER: time::Duration = time::Duration::hours(1);
/// How long the sweep holds the backup lease at most (a backup's own lifetime: a sweep killed
/// mid-way blocks backups no longer than a killed backup would); it stops deleting well before.
const HOLD: Duration = crate::lease::DEFAULT_LEASE;
/// Deletes that may be in flight at once.
const DELETES: usize = 16;

/// What the sweep of shared chunks did.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ChunkSweep {
    /// Chunks the kept sets name.
    pub referenced: usize,
    /// Chunks no kept set names, deleted (or, in a dry run, that would be).
    pub removed: usize,
    pub removed_bytes: u64,
    /// Unreferenced chunks left under Object Lock or legal hold.
    pub retained_by_lock: usize,
    /// Unreferenced chunks left for the next run: younger than an hour, or past this run's
    /// time under the lease.
    pub deferred: usize,
    /// Why the sweep did not run, when it did not: a backup held the lease, or a manifest it
    /// must read was unreadable.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub postponed: Option<String>,
}

/// Deletes the shared chunks of `database` that no committed set names.
pub(super) async fn sweep_chunks(
    store: &dyn Store,
    database: &DatabaseId,
    options: &PruneOptions,
    report: &mut PruneReport,
) -> Result<(), PruneError> {
    let chunks_prefix = format!("{}{CHUNKS_FOLDER}/", database_prefix(database));
    if store.list(&chunks_prefix).await?.is_empty() {
        return Ok(());
    }
    // A dry run changes nothing, so it takes no lease: its count is of this moment.
    let lease = match options.dry_run {
        true => None,
        false => match hold_briefly(store, &lease_key(database, "backup"), "retention", HOLD).await
        {
            Ok(lease) => Some(lease),
            Err(LeaseError::Held { holder, .. }) => {
                report.chunks.postponed = Some(format!(
                    "a backup is running ({holder}); shared chunks are swept next time"
                ));
                return Ok(());
            }
            Err(e) => return Err(PruneError::Incomplete(e.to_string())),
        },
    };
    let swept = sweep_held(
        store,
        database,
        options,
        report,
        lease.as_ref().map(|l| l.until),
    )
    .await;
    if let Some(lease) = lease
        && let Err(e) = lease.release(store).await
    {
        tracing::warn!(%database, error = %e, "could not release the backup lease after the chunk sweep; it expires on its own");
    }
    swept
}

/// The sweep itself, under the lease (`until`: when it stops protecting).
async fn sweep_held(
    store: &dyn Store,
    database: &DatabaseId,
    options: &PruneOptions,
    report: &mut PruneReport,
    until: Option<tokio::time::Instant>,
) -> Result<(), PruneError> {
    // Listed and read after the lease was taken: every set committed before is counted.
    let listing = store.list(&database_prefix(database)).await?;
    let mut referenced: HashSet<String> = HashSet::new();
    for id in committed_backups(database, listing.iter().map(|o| o.key.as_str())) {
        let manifest = read_json::<Manifest>(store, &set_key(database, &id, MANIFEST_NAME))
            .await?
            // A newer format may name chunks where this reader does not look.
            .filter(|m| {
                m.backup_id == id.as_str()
                    && m.format_version <= crate::engine::manifest::FORMAT_VERSION
                    && m.check_shape().is_ok()
            });
        let Some(manifest) = manifest else {
            // The sets were pruned already; only the chunks wait, named in the report.
            report.chunks.postponed = Some(format!(
                "the manifest of backup {id} cannot be read or is of a newer format, so the chunks it \
                 names are unknown: no shared chunk was deleted (upgrade Backstop, or fix that backup)"
            ));
            return Ok(());
        };
        referenced.extend(manifest.chunk_refs().map(|c| c.id.clone()));
    }
    report.chunks.referenced = referenced.len();
    let old = |t: Option<OffsetDateTime>| t.is_some_and(|t| options.now - t > CHUNK_SWEEP_AFTER);
    let unreferenced: Vec<&ObjectMeta> = listing
        .iter()
        .filter(|o| id_of_key(database, &o.key).is_some_and(|id| !referenced.contains(id)))
        .collect();
    let (doomed, young): (Vec<&ObjectMeta>, Vec<&ObjectMeta>) =
        unreferenced.into_iter().partition(|o| old(o.last_modified));
    report.chunks.deferred += young.len();
    let mut pending = doomed.into_iter();
    let mut deletes = futures::stream::FuturesUnordered::new();
    loop {
        while deletes.len() < DELETES
            && let Some(object) = pending.next()
        {
            deletes.push(delete_one(store, object, options, until));
        }
        let Some(outcome) = deletes.next().await else {
            break;
        };
        match outcome? {
            Outcome::Removed(bytes) => {
                report.chunks.removed += 1;
                report.chunks.removed_bytes += bytes;
                report.bytes_freed += bytes;
            }
            Outcome::Locked => report.chunks.retained_by_lock += 1,
            Outcome::Deferred => report.chunks.deferred += 1,
        }
    }
    if report.chunks.removed > 0 && !options.dry_run {
        tracing::info!(%database, chunks = report.chunks.removed, "removed shared chunks no kept backup names");
    }
    Ok(())
}

/// Deletes one unreferenced chunk unless it is locked or the lease is about to end.
async fn delete_one(
    store: &dyn Store,
    object: &ObjectMeta,
    options: &PruneOptions,
    until: Option<tokio::time::Instant>,
) -> Result<Outcome, PruneError> {
    if until.is_some_and(|until| tokio::time::Instant::now() + HOLD / 4 > until) {
        return Ok(Outcome::Deferred);
    }
    if store
        .head(&object.key)
        .await?
        .is_some_and(|meta| meta.is_locked(options.now))
    {
        return Ok(Outcome::Locked);
    }
    if !options.dry_run {
        store.delete(&object.key).await?;
    }
    Ok(Outcome::Removed(object.size))
}

enum Outcome {
    Removed(u64),
    Locked,
    Deferred,
}
