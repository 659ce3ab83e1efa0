//! Verifying a backup (DESIGN.md, "Verification levels"), cheapest check first.
//!
//! - `manifest`: the manifest's seal holds and every part exists with its recorded size
//!   (HEAD only).
//! - `deep`: every part is downloaded; the stored bytes' SHA-256, the COPY framing and header,
//!   the row count and the row digest are checked against the manifest.
//! - `restore`: the backup is restored into a scratch database created for the purpose (every
//!   part checked while it streams), each table's rows and digest are recomputed from
//!   `COPY ... TO STDOUT` of the restored table, and the object inventory is compared; the
//!   restore's times are the measured RTO: until the database was loaded (rows, indexes,
//!   constraints) and until it was ready (statistics in place too), a change stream's replay
//!   added to both. The scratch database is dropped on every path.
//!
//! Each level runs the cheaper checks first and stops at the first level that finds something,
//! so a problem is reported by the cheapest level that can see it. Parts already moved to an
//! archive storage class make the deeper levels "not verifiable now", not failures.
//!
//! Each result is written beside its backup ([`record`]) and appended to the database's
//! verification log ([`log`]), a hash chain whose entries cannot be edited quietly.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::Arc;
use std::time::Instant;

use futures::StreamExt;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::digest::RowDigest;
use super::manifest::{Manifest, Part, PartKind};
use super::restore::{
    self, Discard, RestoreError, RestoreOptions, RolesMode, StatisticsOutcome, scan_data_part,
    scan_large_object_part,
};
use super::{catalog, inventory, large_objects};
use backstop_pg::{ConnectError, PgTarget, connect, describe};
use backstop_store::layout::{
    BackupId, DatabaseId, MANIFEST_NAME, committed_backups, database_prefix, set_key,
};
use backstop_store::store::{PutOptions, Store, StoreError};
use backstop_store::tier::TIER_TAG;

pub mod log;
mod restore_level;
use restore_level::check_restore;
pub use restore_level::{compare_restored, inventory_differences};

/// How far a verification goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Manifest,
    Deep,
    Restore,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Manifest => "manifest",
            Level::Deep => "deep",
            Level::Restore => "restore",
        }
    }
}

impl std::str::FromStr for Level {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "manifest" => Ok(Level::Manifest),
            "deep" => Ok(Level::Deep),
            "restore" => Ok(Level::Restore),
            other => Err(format!(
                "`{other}` is not a verification level; use manifest, deep or restore"
            )),
        }
    }
}

/// The outcome of a verification.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    Passed,
    Failed,
    /// Some parts are in an archive storage class and must be restored from it first.
    NotVerifiableNow,
}

/// One thing found wrong (or in the way), naming the part when there is one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub part: Option<String>,
    pub problem: String,
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.part {
            Some(part) => write!(f, "{part}: {}", self.problem),
            None => f.write_str(&self.problem),
        }
    }
}

/// A verification result, stored as `<backup-id>/verification/<level>.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verification {
    pub database_id: String,
    pub backup_id: String,
    pub level: Level,
    pub verdict: Verdict,
    pub findings: Vec<Finding>,
    #[serde(with = "time::serde::rfc3339")]
    pub checked_at: OffsetDateTime,
    pub duration_seconds: f64,
    /// At the restore level, the measured recovery time: seconds until the restored database
    /// was ready (loaded, and the planner's statistics in place), plus the change stream's
    /// replay. Results written before restores had a statistics phase hold their whole
    /// restore's time: the same meaning.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restore_seconds: Option<f64>,
    /// At the restore level, seconds until the restored database was loaded (rows, indexes,
    /// constraints and the rest of post-data made: it answers, though not yet at its usual
    /// speed), plus the change stream's replay: a restore to the newest point has its rows
    /// only once the stream is replayed, so the replay adds to both numbers. Never more than
    /// `restore_seconds`. Absent in results written before it was measured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loaded_seconds: Option<f64>,
    /// At the restore level, how the restored database's planner got its statistics:
    /// `applied` (carried from the backup), `analyzed` (ANALYZE run) or `skipped`. A word
    /// rather than a closed enum, so results written by later versions still read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub statistics: Option<String>,
    /// At the restore level, with a change stream: the newest point the scratch copy was
    /// carried to by replaying it (its time is in `restore_seconds` and `loaded_seconds`).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "time::serde::rfc3339::option"
    )]
    pub replayed_through: Option<OffsetDateTime>,
    pub engine_version: String,
}

/// What could not even be checked (the verification did not run).
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(
        "the restore level needs a scratch server; pass --scratch-db postgresql://user@host/postgres (a role that may create databases)"
    )]
    NoScratch,
    #[error("cannot use the scratch server: {0}")]
    Scratch(String),
    #[error(transparent)]
    Connect(#[from] ConnectError),
    #[error("the manifest names an invalid database or backup id: {0}")]
    InvalidManifest(String),
    #[error(transparent)]
    Locked(Box<RestoreError>),
    #[error("the verification was interrupted; its scratch database was dropped")]
    Interrupted,
    /// The set's manifest went while it was read: retention deleted it (manifest first).
    /// Not a damaged backup, and nothing to verify any more.
    #[error(
        "backup {backup} was deleted (its manifest is gone) while it was verified, by retention or by hand; nothing to verify"
    )]
    Removed { backup: String },
}

/// How to verify.
#[derive(Debug, Clone)]
pub struct VerifyOptions {
    pub level: Level,
    /// A server on which the restore level creates (and drops) its scratch database: the URL of
    /// any database there, for a role allowed to `CREATE DATABASE`.
    pub scratch: Option<PgTarget>,
    pub jobs: usize,
    /// Cancelled when the verification must stop (SIGINT, SIGTERM): the scratch database is
    /// dropped and it fails with `Interrupted`.
    pub interrupt: tokio_util::sync::CancellationToken,
}

/// Where a verification result of `level` lives.
pub fn result_key(database: &DatabaseId, backup: &BackupId, level: Level) -> String {
    set_key(
        database,
        backup,
        &format!("verification/{}.json", level.as_str()),
    )
}

/// Verifies the backup `manifest` describes.
pub async fn verify(
    store: Arc<dyn Store>,
    manifest: &Manifest,
    options: &VerifyOptions,
) -> Result<Verification, VerifyError> {
    verify_counted(store, manifest, options)
        .await
        .map(|counted| counted.verification)
}

/// A verification and how many parts' SHA-256 it recomputed, for the verification log.
#[derive(Debug, Clone, PartialEq)]
pub struct Counted {
    pub verification: Verification,
    /// The manifest's parts when the deep or restore check ran (each part's stored bytes are
    /// read and hashed); 0 at the manifest level, and when the manifest level stopped it.
    pub checksums_checked: u64,
}

/// Verifies the backup `manifest` describes, counting the checksums it recomputed.
pub async fn verify_counted(
    store: Arc<dyn Store>,
    manifest: &Manifest,
    options: &VerifyOptions,
) -> Result<Counted, VerifyError> {
    let clock = Instant::now();
    let mut checksums_checked = 0;
    let ids = Ids::of(manifest).map_err(VerifyError::InvalidManifest)?;
    // The manifest level needs no key; the others read the parts' content.
    if options.level != Level::Manifest {
        restore::readable(manifest).map_err(|e| VerifyError::Locked(Box::new(e)))?;
    }
    let mut measured = None;
    let mut replayed_through = None;
    let checked = async {
        Ok::<_, VerifyError>(
            match check_manifest(store.as_ref(), manifest, &ids).await? {
                Checked::Findings(findings) => (Verdict::Failed, findings),
                Checked::Archived(_) if options.level == Level::Manifest => {
                    (Verdict::Passed, Vec::new())
                }
                Checked::Archived(findings) => (Verdict::NotVerifiableNow, findings),
                Checked::Fine => match options.level {
                    Level::Manifest => (Verdict::Passed, Vec::new()),
                    Level::Deep => {
                        checksums_checked = manifest.parts.len() as u64;
                        let mut findings = check_deep(store.as_ref(), manifest).await?;
                        findings.extend(check_stream(store.as_ref(), manifest).await?);
                        verdict_of(findings)
                    }
                    Level::Restore => {
                        let scratch = options.scratch.as_ref().ok_or(VerifyError::NoScratch)?;
                        checksums_checked = manifest.parts.len() as u64;
                        let outcome =
                            check_restore(store.clone(), manifest, scratch, options).await?;
                        measured = outcome.measured;
                        replayed_through = outcome.replayed_through;
                        verdict_of(outcome.findings)
                    }
                },
            },
        )
    }
    .await;
    // Parts missing or unreadable may mean the set is being deleted (retention deletes the
    // manifest first): a set that is gone is not a damaged one.
    if matches!(
        checked,
        Ok((Verdict::Failed, _)) | Err(VerifyError::Store(_))
    ) && store
        .head(&set_key(&ids.database, &ids.backup, MANIFEST_NAME))
        .await?
        .is_none()
    {
        return Err(VerifyError::Removed {
            backup: manifest.backup_id.clone(),
        });
    }
    let (verdict, findings) = checked?;
    let verification = Verification {
        database_id: manifest.database_id.clone(),
        backup_id: manifest.backup_id.clone(),
        level: options.level,
        verdict,
        findings,
        checked_at: OffsetDateTime::now_utc(),
        duration_seconds: clock.elapsed().as_secs_f64(),
        restore_seconds: measured.as_ref().map(|m| m.ready_seconds),
        loaded_seconds: measured.as_ref().map(|m| m.loaded_seconds),
        statistics: measured.map(|m| statistics_word(&m.statistics).to_string()),
        replayed_through,
        engine_version: env!("CARGO_PKG_VERSION").to_string(),
    };
    Ok(Counted {
        verification,
        checksums_checked,
    })
}

/// The word a verification result records for how the planner got its statistics.
pub fn statistics_word(outcome: &StatisticsOutcome) -> &'static str {
    match outcome {
        StatisticsOutcome::Applied { .. } => "applied",
        StatisticsOutcome::Analyzed { .. } => "analyzed",
        StatisticsOutcome::Skipped => "skipped",
    }
}

fn verdict_of(findings: Vec<Finding>) -> (Verdict, Vec<Finding>) {
    if findings.is_empty() {
        (Verdict::Passed, findings)
    } else {
        (Verdict::Failed, findings)
    }
}

/// Writes `verification` next to its backup, tagged with the backup's tier so lifecycle rules
/// move it with the set.
pub async fn record(
    store: &dyn Store,
    manifest: &Manifest,
    verification: &Verification,
) -> Result<(), StoreError> {
    let ids = Ids::of(manifest).map_err(|_| StoreError::InvalidKey {
        key: format!("{}/{}", manifest.database_id, manifest.backup_id),
        reason: "the manifest names an invalid database or backup id",
    })?;
    let tags = vec![(TIER_TAG.to_string(), manifest.tier.as_str().to_string())];
    put_result(store, &ids.database, &ids.backup, verification, tags).await
}

/// The verification of a backup whose manifest exists but cannot be read (not JSON, not a
/// manifest): failed, at `level`, with the manifest as the finding.
pub fn unreadable_manifest(
    database: &DatabaseId,
    backup: &BackupId,
    level: Level,
    reason: &str,
) -> Verification {
    Verification {
        database_id: database.to_string(),
        backup_id: backup.to_string(),
        level,
        verdict: Verdict::Failed,
        findings: vec![finding(
            Some(MANIFEST_NAME),
            format!("the manifest cannot be read: {reason}"),
        )],
        checked_at: OffsetDateTime::now_utc(),
        duration_seconds: 0.0,
        restore_seconds: None,
        loaded_seconds: None,
        statistics: None,
        replayed_through: None,
        engine_version: env!("CARGO_PKG_VERSION").to_string(),
    }
}

/// Writes the result of [`unreadable_manifest`] next to its backup (untagged: the tier is in
/// the manifest that cannot be read).
pub async fn record_unreadable(
    store: &dyn Store,
    database: &DatabaseId,
    backup: &BackupId,
    verification: &Verification,
) -> Result<(), StoreError> {
    put_result(store, database, backup, verification, Vec::new()).await
}

async fn put_result(
    store: &dyn Store,
    database: &DatabaseId,
    backup: &BackupId,
    verification: &Verification,
    tags: Vec<(String, String)>,
) -> Result<(), StoreError> {
    let json = serde_json::to_vec_pretty(verification).unwrap_or_default();
    // A later verification of the same level replaces the result: not create-only.
    let options = PutOptions {
        tags,
        create_only: false,
    };
    store
        .put(
            &result_key(database, backup, verification.level),
            &mut json.as_slice(),
            &options,
        )
        .await?;
    Ok(())
}

/// The newest committed backup of `database` with a passed verification (and the deepest
/// level it passed), for an alert to point at.
pub async fn newest_verified(
    store: &dyn Store,
    database: &DatabaseId,
) -> Result<Option<(String, Level)>, StoreError> {
    let objects = store.list(&database_prefix(database)).await?;
    let keys: BTreeSet<&str> = objects.iter().map(|o| o.key.as_str()).collect();
    for backup in committed_backups(database, keys.iter().copied())
        .iter()
        .rev()
    {
        for level in [Level::Restore, Level::Deep, Level::Manifest] {
            if let Some(result) = stored_result(store, &keys, database, backup, level).await?
                && result.verdict == Verdict::Passed
            {
                return Ok(Some((backup.to_string(), level)));
            }
        }
    }
    Ok(None)
}

/// The stored verification result of `backup` at `level`, when `listed` (the database's keys)
/// holds one that reads; `None` otherwise.
pub async fn stored_result(
    store: &dyn Store,
    listed: &BTreeSet<&str>,
    database: &DatabaseId,
    backup: &BackupId,
    level: Level,
) -> Result<Option<Verification>, StoreError> {
    let key = result_key(database, backup, level);
    if !listed.contains(key.as_str()) {
        return Ok(None);
    }
    let Some(found) = store.read_versioned(&key).await? else {
        return Ok(None);
    };
    Ok(serde_json::from_slice::<Verification>(&found.body).ok())
}

struct Ids {
    database: DatabaseId,
    backup: BackupId,
}

impl Ids {
    fn of(manifest: &Manifest) -> Result<Self, String> {
        Ok(Self {
            database: DatabaseId::new(&manifest.database_id).map_err(|e| e.to_string())?,
            backup: BackupId::parse(&manifest.backup_id).map_err(|e| e.to_string())?,
        })
    }
}

enum Checked {
    Fine,
    Findings(Vec<Finding>),
    /// Every part is there, but these are archived.
    Archived(Vec<Finding>),
}

fn finding(part: Option<&str>, problem: impl Into<String>) -> Finding {
    Finding {
        part: part.map(str::to_string),
        problem: problem.into(),
    }
}

/// The manifest level: seal, shape, and every part present with its size (HEAD only).
async fn check_manifest(
    store: &dyn Store,
    manifest: &Manifest,
    ids: &Ids,
) -> Result<Checked, VerifyError> {
    let mut findings = Vec::new();
    if manifest.seal_holds() == Some(false) {
        findings.push(finding(
            Some(MANIFEST_NAME),
            "it was changed after the backup wrote it (its seal does not match)",
        ));
    }
    for (kind, what) in [
        (PartKind::PreData, "pre-data"),
        (PartKind::PostData, "post-data"),
    ] {
        let count = manifest.parts.iter().filter(|p| p.kind == kind).count();
        if count != 1 {
            findings.push(finding(
                Some(MANIFEST_NAME),
                format!("it lists {count} {what} parts instead of one"),
            ));
        }
    }
    let mut archived = Vec::new();
    // A chunked part is its chunks: each shared chunk is looked at once, under its own key.
    let encrypted = manifest.is_encrypted();
    let files = manifest
        .parts
        .iter()
        .filter(|p| !p.is_chunked())
        .map(|p| {
            (
                p.key.clone(),
                p.bytes,
                set_key(&ids.database, &ids.backup, &p.key),
            )
        })
        .chain(manifest.globals.iter().map(|g| {
            let key = set_key(&ids.database, &ids.backup, &g.key);
            (g.key.clone(), g.bytes, key)
        }))
        .chain(manifest.chunk_refs().map(|c| {
            let key = crate::chunks::chunk_key(&ids.database, &c.id, encrypted);
            (format!("chunk {}", c.id), c.bytes, key)
        }))
        .collect::<Vec<_>>();
    let mut heads = futures::stream::iter(files)
        .map(|(name, bytes, key)| async move { (name, bytes, store.head(&key).await) })
        .buffered(16);
    while let Some((name, bytes, head)) = futures::StreamExt::next(&mut heads).await {
        let part_key = &name;
        match head? {
            None => findings.push(finding(Some(part_key), "it is missing from the store")),
            Some(meta) if meta.size != bytes => findings.push(finding(
                Some(part_key),
                format!(
                    "{} bytes stored, the manifest says {bytes} (truncated or replaced)",
                    meta.size
                ),
            )),
            Some(meta) if meta.is_archived() => archived.push(finding(
                Some(part_key),
                format!(
                    "not verifiable now: it is in storage class {}; restore it from the archive first",
                    meta.storage_class.unwrap_or_default()
                ),
            )),
            Some(_) => {}
        }
    }
    Ok(if !findings.is_empty() {
        Checked::Findings(findings)
    } else if !archived.is_empty() {
        Checked::Archived(archived)
    } else {
        Checked::Fine
    })
}

/// Turns a problem with one part into a finding; anything else means the check could not run.
fn part_problem(error: RestoreError) -> Result<Finding, VerifyError> {
    match error {
        RestoreError::Corrupt { part, reason, .. } => Ok(finding(Some(&part), reason)),
        RestoreError::Manifest { key, reason } => Ok(finding(Some(&key), reason)),
        RestoreError::Store(e) => Err(VerifyError::Store(e)),
        // Without the right key nothing was checked: not a finding about the backup.
        RestoreError::Open(e) => Err(VerifyError::Locked(Box::new(RestoreError::Open(e)))),
        // The scratch database is dropped anyway: what went wrong is the finding.
        RestoreError::Incomplete { source, .. } => part_problem(source.cause()),
        other => Ok(finding(None, other.to_string())),
    }
}

/// The deep level: every part downloaded and checked against the manifest.
async fn check_deep(store: &dyn Store, manifest: &Manifest) -> Result<Vec<Finding>, VerifyError> {
    let mut findings = Vec::new();
    for part in &manifest.parts {
        let checked = match part.kind {
            PartKind::Data if part.large_objects.is_some() => {
                scan_large_object_part(store, manifest, part, None)
                    .await
                    .map(|_| ())
            }
            PartKind::Data => scan_data_part(store, manifest, part, &mut Discard)
                .await
                .map(|_| ()),
            PartKind::PreData | PartKind::PostData | PartKind::Statistics => {
                check_script(store, manifest, part).await
            }
        };
        if let Err(e) = checked {
            findings.push(part_problem(e)?);
        }
    }
    if let Err(e) = restore::roles::read_globals(store, manifest).await {
        findings.push(part_problem(e)?);
    }
    Ok(findings)
}

/// The change stream after the backup, at the deep level: every segment that carries it to
/// the newest change is there, sealed, in order with no changes missing between them, and
/// its stored changes match their size and SHA-256. (The restore level replays them.)
async fn check_stream(store: &dyn Store, manifest: &Manifest) -> Result<Vec<Finding>, VerifyError> {
    use crate::stream::{StreamError, replay};
    use sha2::Digest as _;
    use tokio::io::AsyncReadExt as _;
    if manifest.stream.is_none() {
        return Ok(Vec::new());
    }
    // A segment gone from the middle ends the replay early: the changes after the hole are
    // stored, but no restore reaches them.
    let database = DatabaseId::new(&manifest.database_id)
        .map_err(|e| VerifyError::InvalidManifest(e.to_string()))?;
    let listing = store
        .list(&format!(
            "{database}/{}/",
            crate::stream::segment::STREAM_FOLDER
        ))
        .await?;
    let seals =
        crate::stream::segment::seal_keys(&database, listing.iter().map(|o| o.key.as_str()));
    let mut findings: Vec<Finding> = crate::stream::segment::gaps(&seals)
        .into_iter()
        .map(|gap| finding(None, format!("the change stream has a hole: {gap}")))
        .collect();
    let identities = manifest.keys.0.as_deref();
    let recovery = match replay::plan_from(store, manifest, identities).await {
        Ok(None) => return Ok(findings),
        Ok(Some(recovery)) => recovery,
        Err(StreamError::Store(e)) => return Err(VerifyError::Store(e)),
        Err(e) => {
            findings.push(finding(
                None,
                format!("the change stream after this backup cannot be read: {e}"),
            ));
            return Ok(findings);
        }
    };
    for segment in &recovery.segments {
        let key = format!("{}/{}", manifest.database_id, segment.changes.key);
        let mut reader = match store.get(&key).await {
            Ok(reader) => reader,
            Err(StoreError::NotFound { .. }) => {
                findings.push(finding(
                    Some(&segment.changes.key),
                    "the segment's changes are missing",
                ));
                continue;
            }
            Err(e) => return Err(VerifyError::Store(e)),
        };
        let mut hasher = sha2::Sha256::new();
        let mut bytes = 0u64;
        let mut buffer = vec![0u8; 64 * 1024];
        loop {
            let read = reader.read(&mut buffer).await.map_err(|e| {
                VerifyError::Store(StoreError::Io {
                    operation: "read",
                    path: key.clone().into(),
                    source: e,
                })
            })?;
            if read == 0 {
                break;
            }
            hasher.update(&buffer[..read]);
            bytes += read as u64;
        }
        let sha256 = hex::encode(hasher.finalize());
        if bytes != segment.changes.bytes || sha256 != segment.changes.sha256 {
            findings.push(finding(
                Some(&segment.changes.key),
                format!(
                    "the segment's changes are {bytes} bytes with SHA-256 {sha256}, its seal says {} bytes with {}",
                    segment.changes.bytes, segment.changes.sha256
                ),
            ));
        }
    }
    Ok(findings)
}

async fn check_script(
    store: &dyn Store,
    manifest: &Manifest,
    part: &Part,
) -> Result<(), RestoreError> {
    let text = restore::read_script(store, manifest, part).await?;
    super::script::parse(&text, &manifest.item_marker, manifest.format_version)
        .map(|_| ())
        .map_err(|reason| RestoreError::Corrupt {
            backup: manifest.backup_id.clone(),
            part: part.key.clone(),
            reason: format!("its SQL items do not parse: {reason}"),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_parse_and_order_from_cheapest() {
        assert_eq!("deep".parse::<Level>().unwrap(), Level::Deep);
        assert!(
            "full"
                .parse::<Level>()
                .unwrap_err()
                .contains("manifest, deep or restore")
        );
        assert!(Level::Manifest < Level::Deep && Level::Deep < Level::Restore);
    }
}
