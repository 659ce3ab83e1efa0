//! Retention: pruning a database's backups by a grandfather-father-son policy, and sweeping
//! what failed runs left behind. Boringly safe:
//!
//! - the selection is the pure [`policy::select`], which always keeps the newest backup and the
//!   newest backup whose restore verification passed;
//! - nothing is deleted when the listing fails, when a manifest cannot be read, or when the
//!   newest backup the previous run saw is missing (the listing looks incomplete);
//! - at most `max_deletions` sets go per run, oldest first; the rest wait for the next run;
//! - a set whose manifest is under S3 Object Lock or legal hold is reported as retained;
//! - a set is deleted manifest first (it stops being a backup at once), then its parts;
//! - parts of sets that never got a manifest, and unfinished uploads, are removed once they are
//!   24 hours old, never while a backup of the database holds its lease;
//! - change segments go once no kept backup needs them ([`segments::deletable`]): point-in-time
//!   recovery reaches back to the oldest kept backup of the stream window; changes a crashed
//!   drain stored without a seal go once 24 hours old;
//! - shared chunks go once no committed set names them ([`chunks`]), decided under the
//!   database's backup lease so no backup names one meanwhile.

pub mod chunks;
pub mod policy;
pub mod segments;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::engine::manifest::Manifest;
use crate::engine::stream::segment::Lsn;
use crate::engine::verify::{Level, Verdict, Verification, result_key};
use crate::layout::{
    BackupId, DatabaseId, MANIFEST_NAME, STATE_PREFIX, database_prefix, run_claims_prefix, set_key,
};
use crate::lease::{LeaseRecord, lease_key};
use crate::store::{ObjectMeta, PutOptions, Store, StoreError};
use crate::units::human_bytes;
pub use policy::{Candidate, Policy, Reason, Selection, select};

/// Leftovers younger than this may belong to a run still in progress.
pub const SWEEP_AFTER: time::Duration = time::Duration::hours(24);
/// Claims of handled events are kept this long (the backup function cannot delete them).
const CLAIM_RETENTION: time::Duration = time::Duration::days(7);
/// The monitor's samples of the objectives are kept this long: a year's report, and a month
/// more (the report says what it could not observe).
pub const SAMPLE_RETENTION: time::Duration = time::Duration::days(400);

/// How to prune.
#[derive(Debug, Clone)]
pub struct PruneOptions {
    pub policy: Policy,
    /// Decide and report, delete nothing.
    pub dry_run: bool,
    /// Sets deleted per run at most; the oldest go first.
    pub max_deletions: usize,
    pub now: OffsetDateTime,
    /// How far back point-in-time recovery reaches: segments go once older than the oldest
    /// kept backup taken in this window.
    pub stream_window: time::Duration,
}

/// The default reach of point-in-time recovery.
pub const DEFAULT_STREAM_WINDOW: time::Duration = time::Duration::days(7);

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Kept {
    pub backup_id: String,
    pub reasons: Vec<Reason>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Removed {
    /// A backup id (of a set, or the folder of one that never got a manifest); empty for the
    /// change segments' tally.
    #[serde(rename = "backup_id", skip_serializing_if = "String::is_empty")]
    pub name: String,
    pub objects: usize,
    pub bytes: u64,
}

/// What a run kept, deleted (or, in a dry run, would delete) and swept.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PruneReport {
    #[serde(rename = "database_id")]
    pub database: String,
    pub dry_run: bool,
    pub policy: Policy,
    pub kept: Vec<Kept>,
    pub deleted: Vec<Removed>,
    /// Selected for deletion beyond this run's maximum; the next run takes them.
    pub deferred: Vec<String>,
    /// Selected for deletion but under Object Lock or legal hold.
    pub retained_by_lock: Vec<String>,
    pub orphans_removed: Vec<Removed>,
    pub uploads_aborted: Vec<String>,
    /// Change segments no kept backup needs (seals and changes), and their bytes.
    pub segments_removed: Removed,
    /// Shared chunks: how many the kept sets name, and those no set names any more.
    pub chunks: chunks::ChunkSweep,
    pub bytes_freed: u64,
}

impl PruneReport {
    /// One line for an alert or a log.
    pub fn summary(&self) -> String {
        let verb = if self.dry_run {
            "would delete"
        } else {
            "deleted"
        };
        let mut line = format!(
            "kept {} backup(s), {verb} {} ({} freed)",
            self.kept.len(),
            self.deleted.len(),
            human_bytes(self.bytes_freed)
        );
        if !self.deferred.is_empty() {
            line.push_str(&format!(
                ", {} deferred to the next run",
                self.deferred.len()
            ));
        }
        if !self.retained_by_lock.is_empty() {
            line.push_str(&format!(
                ", {} retained by Object Lock",
                self.retained_by_lock.len()
            ));
        }
        if self.segments_removed.objects > 0 {
            line.push_str(&format!(
                ", {} {} change-segment object(s) ({})",
                if self.dry_run {
                    "would remove"
                } else {
                    "removed"
                },
                self.segments_removed.objects,
                human_bytes(self.segments_removed.bytes)
            ));
        }
        if self.chunks.removed > 0 {
            line.push_str(&format!(
                ", {} {} shared chunk(s) no kept backup names ({})",
                if self.dry_run {
                    "would remove"
                } else {
                    "removed"
                },
                self.chunks.removed,
                human_bytes(self.chunks.removed_bytes)
            ));
        }
        if let Some(why) = &self.chunks.postponed {
            line.push_str(&format!(", {why}"));
        }
        if !self.orphans_removed.is_empty() || !self.uploads_aborted.is_empty() {
            line.push_str(&format!(
                ", swept {} incomplete set(s) and {} unfinished upload(s)",
                self.orphans_removed.len(),
                self.uploads_aborted.len()
            ));
        }
        line
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PruneError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("nothing was deleted: {0}")]
    Incomplete(String),
    #[error(
        "no keep rule given; a policy needs at least one of keep-last, keep-daily, keep-weekly, keep-monthly, keep-yearly"
    )]
    NoPolicy,
}

/// What retention remembers between runs, under `_backstop/retention/<database-id>.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct RetentionState {
    newest_seen: String,
}

fn state_key(database: &DatabaseId) -> String {
    format!("{STATE_PREFIX}/retention/{database}.json")
}

/// The objects of one backup folder.
#[derive(Debug, Default)]
struct SetObjects {
    objects: Vec<ObjectMeta>,
    committed: bool,
}

impl SetObjects {
    fn bytes(&self) -> u64 {
        self.objects.iter().map(|o| o.size).sum()
    }
}

/// Prunes `database`'s backups in `store` by `options.policy`.
pub async fn prune(
    store: &dyn Store,
    database: &DatabaseId,
    options: &PruneOptions,
) -> Result<PruneReport, PruneError> {
    if !options.policy.keeps_anything() {
        return Err(PruneError::NoPolicy);
    }
    let listing = store.list(&database_prefix(database)).await?;
    let mut sets: BTreeMap<BackupId, SetObjects> = BTreeMap::new();
    let prefix = database_prefix(database);
    for object in listing {
        let Some(rest) = object.key.strip_prefix(&prefix) else {
            continue;
        };
        let Some((id, name)) = rest.split_once('/') else {
            continue;
        };
        let Ok(id) = BackupId::parse(id) else {
            continue;
        };
        let set = sets.entry(id).or_default();
        set.committed |= name == MANIFEST_NAME;
        set.objects.push(object);
    }

    let mut candidates = Vec::new();
    let mut positions = BTreeMap::new();
    for (id, set) in sets.iter().filter(|(_, s)| s.committed) {
        let manifest = read_json::<Manifest>(store, &set_key(database, id, MANIFEST_NAME))
            .await?
            .filter(|m| m.backup_id == id.as_str())
            .ok_or_else(|| {
                PruneError::Incomplete(format!(
                    "the manifest of backup {id} cannot be read or names another backup; fix or remove it first"
                ))
            })?;
        let verified_key = result_key(database, id, Level::Restore);
        let restore_verified = set.objects.iter().any(|o| o.key == verified_key)
            && read_json::<Verification>(store, &verified_key)
                .await?
                .is_some_and(|v| v.verdict == Verdict::Passed);
        if let Some(position) = manifest.stream.clone() {
            positions.insert(id.to_string(), position);
        }
        candidates.push(Candidate {
            id: id.to_string(),
            taken_at: manifest.started_at,
            restore_verified,
        });
    }

    let newest = sets
        .iter()
        .rev()
        .find(|(_, s)| s.committed)
        .map(|(id, _)| id.clone());
    if let Some(state) = read_json::<RetentionState>(store, &state_key(database)).await?
        && newest
            .as_ref()
            .is_none_or(|n| n.as_str() < state.newest_seen.as_str())
    {
        return Err(PruneError::Incomplete(format!(
            "the listing of {database} lacks backup {} that the previous run saw, so it looks incomplete; \
             if backups were removed on purpose, delete {} and run again",
            state.newest_seen,
            state_key(database)
        )));
    }

    let selection = select(&candidates, &options.policy, options.now);
    let mut report = PruneReport {
        database: database.to_string(),
        dry_run: options.dry_run,
        policy: options.policy,
        kept: selection
            .keep
            .iter()
            .map(|(id, reasons)| Kept {
                backup_id: id.clone(),
                reasons: reasons.clone(),
            })
            .collect(),
        deleted: Vec::new(),
        deferred: Vec::new(),
        retained_by_lock: Vec::new(),
        orphans_removed: Vec::new(),
        uploads_aborted: Vec::new(),
        segments_removed: Removed {
            name: crate::engine::stream::segment::STREAM_FOLDER.to_string(),
            objects: 0,
            bytes: 0,
        },
        chunks: Default::default(),
        bytes_freed: 0,
    };

    // Oldest first, at most max_deletions.
    let mut victims: Vec<&String> = selection.delete.iter().rev().collect();
    if victims.len() > options.max_deletions {
        report.deferred = victims
            .split_off(options.max_deletions)
            .into_iter()
            .cloned()
            .collect();
    }
    for id in victims {
        let Ok(backup) = BackupId::parse(id) else {
            continue;
        };
        let Some(set) = sets.get(&backup) else {
            continue;
        };
        let manifest_key = set_key(database, &backup, MANIFEST_NAME);
        if store
            .head(&manifest_key)
            .await?
            .is_some_and(|m| m.is_locked(options.now))
        {
            report.retained_by_lock.push(id.clone());
            continue;
        }
        if !options.dry_run {
            store.delete(&manifest_key).await?;
            for object in set.objects.iter().filter(|o| o.key != manifest_key) {
                store.delete(&object.key).await?;
            }
            tracing::info!(%database, backup_id = %id, "backup deleted by retention");
        }
        report.bytes_freed += set.bytes();
        report.deleted.push(Removed {
            name: id.clone(),
            objects: set.objects.len(),
            bytes: set.bytes(),
        });
    }

    sweep(store, database, &sets, options, &mut report).await?;
    chunks::sweep_chunks(store, database, options, &mut report).await?;
    let kept: Vec<_> = report
        .kept
        .iter()
        .filter_map(|k| positions.get(&k.backup_id).cloned())
        .collect();
    prune_segments(store, database, &kept, options, &mut report).await?;

    if !options.dry_run
        && let Some(newest) = newest
    {
        let state = serde_json::to_vec(&RetentionState {
            newest_seen: newest.to_string(),
        })
        .unwrap_or_default();
        store
            .put(
                &state_key(database),
                &mut state.as_slice(),
                &PutOptions::default(),
            )
            .await?;
    }
    Ok(report)
}

/// Removes sets that never got a manifest and unfinished uploads, once 24 hours old and
/// while no backup of the database is running.
async fn sweep(
    store: &dyn Store,
    database: &DatabaseId,
    sets: &BTreeMap<BackupId, SetObjects>,
    options: &PruneOptions,
    report: &mut PruneReport,
) -> Result<(), PruneError> {
    let lease = read_json::<LeaseRecord>(store, &lease_key(database, "backup")).await?;
    if lease.is_some_and(|l| !l.is_expired(options.now)) {
        tracing::info!(%database, "a backup is running; leftovers are swept next time");
        return Ok(());
    }
    let old = |t: Option<OffsetDateTime>| t.is_some_and(|t| options.now - t > SWEEP_AFTER);
    for (id, set) in sets.iter().filter(|(_, s)| !s.committed) {
        if !set.objects.iter().all(|o| old(o.last_modified)) {
            continue;
        }
        if !options.dry_run {
            for object in &set.objects {
                store.delete(&object.key).await?;
            }
            tracing::info!(%database, backup_id = %id, "removed the parts of a backup that never completed");
        }
        report.bytes_freed += set.bytes();
        report.orphans_removed.push(Removed {
            name: id.to_string(),
            objects: set.objects.len(),
            bytes: set.bytes(),
        });
    }
    // Claims of handled scheduled events: a duplicate delivery never comes a week late.
    if !options.dry_run {
        for claim in store.list(&run_claims_prefix(database)).await? {
            if claim
                .last_modified
                .is_some_and(|t| options.now - t > CLAIM_RETENTION)
            {
                store.delete(&claim.key).await?;
            }
        }
        for sample in store
            .list(&crate::objectives::samples::samples_prefix(database))
            .await?
        {
            if sample
                .last_modified
                .is_some_and(|t| options.now - t > SAMPLE_RETENTION)
            {
                store.delete(&sample.key).await?;
            }
        }
    }
    for upload in store.pending_uploads(&database_prefix(database)).await? {
        if !old(upload.initiated) {
            continue;
        }
        if !options.dry_run {
            store.abort_upload(&upload).await?;
        }
        report.uploads_aborted.push(upload.key);
    }
    Ok(())
}

/// Deletes the change segments no kept backup needs, and changes a crashed drain left
/// without a seal once they are 24 hours old.
async fn prune_segments(
    store: &dyn Store,
    database: &DatabaseId,
    kept: &[crate::engine::stream::plan::StreamPosition],
    options: &PruneOptions,
    report: &mut PruneReport,
) -> Result<(), PruneError> {
    let prefix = format!(
        "{}{}/",
        database_prefix(database),
        crate::engine::stream::segment::STREAM_FOLDER
    );
    let listing = store.list(&prefix).await?;
    let objects: Vec<(segments::SegmentObject, &ObjectMeta)> = listing
        .iter()
        .filter_map(|o| {
            let relative = o.key.strip_prefix(&prefix)?;
            segments::SegmentObject::parse(&o.key, relative).map(|s| (s, o))
        })
        .collect();
    let parsed: Vec<segments::SegmentObject> = objects.iter().map(|(s, _)| s.clone()).collect();
    // A window reaching past the calendar's start is the whole history.
    let since = options
        .now
        .checked_sub(options.stream_window)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH);
    let anchor = segments::anchor(kept, since);
    let mut doomed: std::collections::BTreeSet<usize> =
        segments::deletable(&parsed, anchor).into_iter().collect();
    let sealed: std::collections::HashSet<(&str, Lsn)> = parsed
        .iter()
        .filter(|o| o.end.is_some())
        .map(|o| (o.chain.as_str(), o.start))
        .collect();
    for (i, (object, meta)) in objects.iter().enumerate() {
        let unsealed =
            object.end.is_none() && !sealed.contains(&(object.chain.as_str(), object.start));
        if unsealed
            && meta
                .last_modified
                .is_some_and(|t| options.now - t > SWEEP_AFTER)
        {
            doomed.insert(i);
        }
    }
    // Seals first: a segment stops being readable before its changes go.
    let mut order: Vec<usize> = doomed.into_iter().collect();
    order.sort_by_key(|&i| objects[i].0.end.is_none());
    for i in order {
        let (object, meta) = &objects[i];
        if !options.dry_run {
            store.delete(&object.key).await?;
        }
        report.segments_removed.objects += 1;
        report.segments_removed.bytes += meta.size;
        report.bytes_freed += meta.size;
    }
    Ok(())
}

/// A small JSON object, `None` when absent or not the expected shape.
async fn read_json<T: serde::de::DeserializeOwned>(
    store: &dyn Store,
    key: &str,
) -> Result<Option<T>, StoreError> {
    Ok(store
        .read_versioned(key)
        .await?
        .and_then(|v| serde_json::from_slice(&v.body).ok()))
}
