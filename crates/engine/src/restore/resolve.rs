//! Which backup a restore reads: `latest` or an id, resolved against the store, and its
//! manifest read and checked.

use tokio::io::AsyncReadExt;

use super::{BackupSelector, RestoreError, parts};
use crate::manifest::{FORMAT_VERSION, Manifest};
use backstop_store::layout::{
    BackupId, DatabaseId, MANIFEST_NAME, committed_backups, database_prefix, set_key,
};
use backstop_store::store::{Store, StoreError};

/// Whether `manifest` can be read from: a plaintext one, or an encrypted one opened with an
/// identity ([`Manifest::open`]).
pub fn readable(manifest: &Manifest) -> Result<(), RestoreError> {
    match &manifest.encryption {
        Some(e) if e.private.is_some() || manifest.keys.0.is_none() => {
            Err(parts::no_identity(manifest))
        }
        _ => Ok(()),
    }
}

/// The largest manifest read: far more than a set of 100,000 tables needs.
const MAX_MANIFEST_BYTES: u64 = 256 << 20;

/// Resolves `selector` to a committed backup of `database` and reads its manifest.
pub async fn read_manifest(
    store: &dyn Store,
    database: &DatabaseId,
    selector: &BackupSelector,
) -> Result<Manifest, RestoreError> {
    let backup = resolve_backup(store, database, selector).await?;
    read_manifest_of(store, database, &backup).await
}

/// The committed backup of `database` that `selector` names: an id as given, or the newest
/// (refused when it is dated in the future).
pub async fn resolve_backup(
    store: &dyn Store,
    database: &DatabaseId,
    selector: &BackupSelector,
) -> Result<BackupId, RestoreError> {
    Ok(match selector {
        BackupSelector::Id(id) => id.clone(),
        BackupSelector::Latest => {
            let objects = store.list(&database_prefix(database)).await?;
            let committed = committed_backups(database, objects.iter().map(|o| o.key.as_str()));
            let now = time::OffsetDateTime::now_utc();
            // A newest set dated in the future makes "latest" ambiguous: which clock is wrong
            // is for a person to say, not for this one to guess.
            if let Some(newest) = committed.last()
                && let Some(started) = newest.started_at()
                && backstop_store::clock::in_the_future(started, now)
            {
                return Err(RestoreError::LatestInTheFuture {
                    database: database.to_string(),
                    newest: newest.to_string(),
                    ahead: backstop_store::clock::span(
                        std::time::Duration::try_from(started - now).unwrap_or_default(),
                    ),
                    before_now: backstop_store::clock::newest_not_in_the_future(&committed, now)
                        .filter(|id| id != newest)
                        .map(|id| format!(", or --backup {id} (the newest before now)"))
                        .unwrap_or_default(),
                });
            }
            committed
                .last()
                .cloned()
                .ok_or_else(|| RestoreError::NoBackups {
                    database: database.to_string(),
                    store: store.url().to_string(),
                })?
        }
    })
}

/// Reads the manifest of `backup`: [`RestoreError::Manifest`] when it is there but is not a
/// manifest (a damaged backup), [`RestoreError::ManifestNewer`] when a newer Backstop wrote it.
pub async fn read_manifest_of(
    store: &dyn Store,
    database: &DatabaseId,
    backup: &BackupId,
) -> Result<Manifest, RestoreError> {
    let key = set_key(database, backup, MANIFEST_NAME);
    let mut bytes = Vec::new();
    match store.get(&key).await {
        Ok(reader) => {
            reader
                .take(MAX_MANIFEST_BYTES + 1)
                .read_to_end(&mut bytes)
                .await
                .map_err(|e| RestoreError::Manifest {
                    key: key.clone(),
                    reason: e.to_string(),
                })?;
            if bytes.len() as u64 > MAX_MANIFEST_BYTES {
                return Err(RestoreError::Manifest {
                    key,
                    reason: format!(
                        "it is larger than {} MiB, more than any backup writes",
                        MAX_MANIFEST_BYTES >> 20
                    ),
                });
            }
        }
        Err(StoreError::NotFound { .. }) => {
            return Err(RestoreError::BackupNotFound {
                backup: backup.to_string(),
                database: database.to_string(),
                store: store.url().to_string(),
            });
        }
        Err(e) => return Err(e.into()),
    }
    let manifest: Manifest =
        serde_json::from_slice(&bytes).map_err(|e| RestoreError::Manifest {
            key: key.clone(),
            reason: e.to_string(),
        })?;
    // A set is what its place says it is: a copy under another id, or a manifest moved
    // between sets, is refused rather than read.
    if manifest.database_id != database.as_str() || manifest.backup_id != backup.to_string() {
        return Err(RestoreError::Manifest {
            key,
            reason: format!(
                "it says it is backup {} of `{}`, but it is stored as {backup} of `{database}`; a set is read only where it was written",
                manifest.backup_id.escape_default(),
                manifest.database_id.escape_default()
            ),
        });
    }
    // Every manifest of format 3 and later is sealed when written.
    if manifest.format_version >= 3 && manifest.seal.is_none() {
        return Err(RestoreError::Manifest {
            key,
            reason: "it carries no seal, which every manifest of its format has: it was rewritten"
                .into(),
        });
    }
    if let Err(reason) = manifest.check_shape() {
        return Err(RestoreError::Manifest { key, reason });
    }
    if manifest.format_version > FORMAT_VERSION {
        return Err(RestoreError::ManifestNewer {
            key,
            found: manifest.format_version,
            supported: FORMAT_VERSION,
        });
    }
    Ok(manifest)
}
