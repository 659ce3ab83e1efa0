//! One run at a time: a lease object in the store, taken with a conditional write.
//!
//! `acquire` creates `_backstop/locks/<database-id>/<purpose>` only if it is absent (S3
//! `If-None-Match: *`). A lease expires: its holder renews it every third of its lifetime, so
//! a crashed holder blocks others for one lifetime at most, and an expired lease is taken over
//! with a write conditioned on the version that was read (`If-Match`), so two contenders can
//! never both win. Release overwrites the lease, if it is still the holder's version, with one
//! that has already expired: releasing needs no delete permission, so the backup function's
//! role can be denied every delete.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::layout::{DatabaseId, STATE_PREFIX};
use crate::store::{Store, StoreError, WriteCondition};

/// How long a lease lasts without renewal.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(120);

/// Where the lease for `purpose` (e.g. `backup`) on `database` lives.
pub fn lease_key(database: &DatabaseId, purpose: &str) -> String {
    format!("{STATE_PREFIX}/locks/{database}/{purpose}")
}

/// What a lease object says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseRecord {
    /// Who holds it, for people: e.g. `lambda request 8f1c...` or `cli on db-bastion pid 4242`.
    pub holder: String,
    /// Random, so a holder recognises its own lease.
    pub token: String,
    #[serde(with = "time::serde::rfc3339")]
    pub acquired_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
}

impl LeaseRecord {
    /// Whether the lease no longer protects anything at `now`.
    pub fn is_expired(&self, now: OffsetDateTime) -> bool {
        now >= self.expires_at
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LeaseError {
    #[error(
        "another run holds {key} ({holder}, since {since}); it expires at {expires} if that run died"
    )]
    Held {
        key: String,
        holder: String,
        since: String,
        expires: String,
    },
    #[error("the lease {key} kept changing under us; try again")]
    Contended { key: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A held lease. Renewed in the background until released or dropped; dropping it without
/// `release` leaves it to expire (what a crash does).
#[derive(Debug)]
pub struct Lease {
    store: Arc<dyn Store>,
    key: String,
    holder: String,
    version: Arc<Mutex<String>>,
    renewal: JoinHandle<()>,
    lost: CancellationToken,
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

fn record(holder: &str, token: &str, now: OffsetDateTime, lifetime: Duration) -> LeaseRecord {
    LeaseRecord {
        holder: holder.to_string(),
        token: token.to_string(),
        acquired_at: now,
        expires_at: now + lifetime,
    }
}

fn encode(record: &LeaseRecord) -> Vec<u8> {
    serde_json::to_vec_pretty(record).unwrap_or_default()
}

/// The lease at `key` as it stands (None when there is none or it is unreadable).
pub async fn read(store: &dyn Store, key: &str) -> Result<Option<LeaseRecord>, StoreError> {
    Ok(store
        .read_versioned(key)
        .await?
        .and_then(|current| serde_json::from_slice(&current.body).ok()))
}

/// Takes the lease at `key` for `holder`, or says who holds it.
pub async fn acquire(
    store: Arc<dyn Store>,
    key: &str,
    holder: &str,
    lifetime: Duration,
) -> Result<Lease, LeaseError> {
    let (mine, version) = take(store.as_ref(), key, holder, lifetime).await?;
    Ok(Lease::start(store, key, mine, version, lifetime))
}

/// A lease held without renewal, for work that ends well within its lifetime (retention's
/// sweep of shared chunks): it protects until `until` on this process's clock.
#[derive(Debug)]
pub struct Brief {
    key: String,
    holder: String,
    version: String,
    pub until: tokio::time::Instant,
}

/// Takes the lease at `key` for `holder` for `lifetime`, not renewed, or says who holds it.
pub async fn hold_briefly(
    store: &dyn Store,
    key: &str,
    holder: &str,
    lifetime: Duration,
) -> Result<Brief, LeaseError> {
    let started = tokio::time::Instant::now();
    let (_, version) = take(store, key, holder, lifetime).await?;
    Ok(Brief {
        key: key.to_string(),
        holder: holder.to_string(),
        version,
        until: started + lifetime,
    })
}

impl Brief {
    /// Gives the lease up (marked expired), unless it was taken over meanwhile.
    pub async fn release(self, store: &dyn Store) -> Result<(), StoreError> {
        release_version(store, &self.key, &self.holder, &self.version).await
    }
}

/// Marks the lease at `key` released if it is still `version`.
async fn release_version(
    store: &dyn Store,
    key: &str,
    holder: &str,
    version: &str,
) -> Result<(), StoreError> {
    let now = OffsetDateTime::now_utc();
    let released = LeaseRecord {
        holder: format!("{holder} (released)"),
        token: String::new(),
        acquired_at: now,
        expires_at: now,
    };
    if store
        .write_if(key, &encode(&released), WriteCondition::Version(version))
        .await?
        .is_none()
    {
        tracing::warn!(key, "the lease had already been taken over when released");
    }
    Ok(())
}

/// Writes a lease record for `holder` at `key` where none is held: the record and its version.
async fn take(
    store: &dyn Store,
    key: &str,
    holder: &str,
    lifetime: Duration,
) -> Result<(LeaseRecord, String), LeaseError> {
    let token = format!("{:016x}", rand::random::<u64>());
    for _ in 0..5 {
        let now = OffsetDateTime::now_utc();
        let mine = record(holder, &token, now, lifetime);
        if let Some(version) = store
            .write_if(key, &encode(&mine), WriteCondition::Absent)
            .await?
        {
            return Ok((mine, version));
        }
        let Some(current) = store.read_versioned(key).await? else {
            continue; // released between our write and our read
        };
        match serde_json::from_slice::<LeaseRecord>(&current.body) {
            // A released lease is free whatever its times say: they come from the releasing
            // host's clock, which may be ahead of ours.
            Ok(theirs) if !theirs.token.is_empty() && !theirs.is_expired(now) => {
                return Err(LeaseError::Held {
                    key: key.to_string(),
                    holder: theirs.holder,
                    since: rfc3339(theirs.acquired_at),
                    expires: rfc3339(theirs.expires_at),
                });
            }
            // A released lease has no token: nothing to warn about.
            Ok(theirs) if theirs.token.is_empty() => {}
            Ok(theirs) => {
                tracing::warn!(key, holder = %theirs.holder, expired_at = %rfc3339(theirs.expires_at), "taking over an expired lease");
            }
            Err(_) => tracing::warn!(key, "replacing an unreadable lease object"),
        }
        if let Some(version) = store
            .write_if(
                key,
                &encode(&mine),
                WriteCondition::Version(&current.version),
            )
            .await?
        {
            return Ok((mine, version));
        }
    }
    Err(LeaseError::Contended {
        key: key.to_string(),
    })
}

impl Lease {
    fn start(
        store: Arc<dyn Store>,
        key: &str,
        mine: LeaseRecord,
        version: String,
        lifetime: Duration,
    ) -> Self {
        let version = Arc::new(Mutex::new(version));
        let holder = mine.holder.clone();
        let lost = CancellationToken::new();
        let renewal = tokio::spawn(renew(
            store.clone(),
            key.to_string(),
            mine,
            version.clone(),
            lifetime,
            lost.clone(),
        ));
        Self {
            store,
            key: key.to_string(),
            holder,
            version,
            renewal,
            lost,
        }
    }

    pub fn key(&self) -> &str {
        &self.key
    }

    /// Completes when the lease stops protecting its holder: another run took it over, or it
    /// could not be renewed before it expired (a full disk, a store that stopped answering).
    /// The work it guards must then stop: another run may start at any moment.
    pub async fn lost(&self) {
        self.lost.cancelled().await
    }

    /// Gives the lease up by marking it expired. A lease taken over meanwhile (it expired) is
    /// left to its new holder.
    pub async fn release(self) -> Result<(), StoreError> {
        self.renewal.abort();
        let version = self.version.lock().map(|v| v.clone()).unwrap_or_default();
        release_version(self.store.as_ref(), &self.key, &self.holder, &version).await
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.renewal.abort();
    }
}

async fn renew(
    store: Arc<dyn Store>,
    key: String,
    mut mine: LeaseRecord,
    version: Arc<Mutex<String>>,
    lifetime: Duration,
    lost: CancellationToken,
) {
    let every = lifetime / 3;
    // Measured on this process's monotonic clock: the lease protects until then, whatever
    // the wall clock does.
    let mut protected_until = tokio::time::Instant::now() + lifetime;
    loop {
        tokio::time::sleep(every).await;
        mine.expires_at = OffsetDateTime::now_utc() + lifetime;
        let current = version.lock().map(|v| v.clone()).unwrap_or_default();
        let attempt = tokio::time::Instant::now();
        // A renewal that does not answer before the lease expires is as good as failed.
        let renewed = tokio::time::timeout_at(
            protected_until,
            store.write_if(&key, &encode(&mine), WriteCondition::Version(&current)),
        )
        .await;
        match renewed {
            Ok(Ok(Some(next))) => {
                if let Ok(mut v) = version.lock() {
                    *v = next;
                }
                protected_until = attempt + lifetime;
            }
            Ok(Ok(None)) => {
                tracing::error!(
                    key,
                    "lost the lease: another run took it over after it expired"
                );
                lost.cancel();
                return;
            }
            Ok(Err(e)) if tokio::time::Instant::now() + every < protected_until => {
                tracing::warn!(key, error = %e, "could not renew the lease; retrying");
            }
            Ok(Err(e)) => {
                tracing::error!(key, error = %e, "could not renew the lease before it expires; stopping");
                lost.cancel();
                return;
            }
            Err(_) => {
                tracing::error!(
                    key,
                    "renewing the lease did not answer before it expired; stopping"
                );
                lost.cancel();
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::FileStore;
    use time::macros::datetime;

    #[test]
    fn expiry_is_inclusive_of_the_deadline() {
        let r = record(
            "t",
            "x",
            datetime!(2026-11-22 06:00 UTC),
            Duration::from_secs(60),
        );
        assert!(!r.is_expired(datetime!(2026-11-22 06:00:59 UTC)));
        assert!(r.is_expired(datetime!(2026-11-22 06:01 UTC)));
    }

    #[tokio::test]
    async fn one_holder_at_a_time_and_expired_leases_are_taken_over() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> = Arc::new(FileStore::new(dir.path().to_path_buf()));
        let key = lease_key(&DatabaseId::new("main").unwrap(), "backup");

        let first = acquire(store.clone(), &key, "run one", DEFAULT_LEASE)
            .await
            .unwrap();
        let err = acquire(store.clone(), &key, "run two", DEFAULT_LEASE)
            .await
            .unwrap_err();
        assert!(err.to_string().contains("run one"), "{err}");
        first.release().await.unwrap();
        let released: LeaseRecord =
            serde_json::from_slice(&store.read_versioned(&key).await.unwrap().unwrap().body)
                .unwrap();
        assert!(released.is_expired(OffsetDateTime::now_utc()));
        // Released means free at once.
        acquire(store.clone(), &key, "run two", DEFAULT_LEASE)
            .await
            .unwrap()
            .release()
            .await
            .unwrap();

        // A crashed holder: its lease stays until it expires, then another run takes over.
        let crashed = acquire(store.clone(), &key, "crashed", Duration::from_millis(300))
            .await
            .unwrap();
        drop(crashed); // stops renewing, leaves the lease behind
        tokio::time::sleep(Duration::from_millis(400)).await;
        let taker = acquire(store.clone(), &key, "taker", DEFAULT_LEASE)
            .await
            .unwrap();
        let held: LeaseRecord =
            serde_json::from_slice(&store.read_versioned(&key).await.unwrap().unwrap().body)
                .unwrap();
        assert_eq!(held.holder, "taker");
        taker.release().await.unwrap();
    }

    #[tokio::test]
    async fn a_lease_released_by_a_host_whose_clock_is_ahead_is_free_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> = Arc::new(FileStore::new(dir.path().to_path_buf()));
        let key = "_backstop/locks/main/backup";
        // What release writes on a host a day ahead: expired by its clock, not by ours.
        let ahead = OffsetDateTime::now_utc() + time::Duration::days(1);
        let released = LeaseRecord {
            holder: "skewed host (released)".into(),
            token: String::new(),
            acquired_at: ahead,
            expires_at: ahead,
        };
        store
            .write_if(key, &encode(&released), WriteCondition::Absent)
            .await
            .unwrap();
        acquire(store.clone(), key, "next run", DEFAULT_LEASE)
            .await
            .unwrap()
            .release()
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn a_live_holder_renews_its_lease() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> = Arc::new(FileStore::new(dir.path().to_path_buf()));
        let key = "_backstop/locks/main/backup";
        let lease = acquire(store.clone(), key, "long run", Duration::from_millis(300))
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(700)).await;
        let err = acquire(store.clone(), key, "other", DEFAULT_LEASE)
            .await
            .unwrap_err();
        assert!(matches!(err, LeaseError::Held { .. }), "{err}");
        lease.release().await.unwrap();
    }
}
