//! How bad a failure is: what a restore would give back right now. The newest good backup and
//! its age and, for a database with a change stream (point-in-time recovery), how old the
//! newest recovery point is: the data lost if the database were lost now (the RPO right now).

use std::time::Duration;

use time::OffsetDateTime;

use crate::clock::{newest_not_in_the_future, span};
use crate::engine::stream::{read_seal, segment::seal_keys};
use crate::layout::{DatabaseId, committed_backups, database_prefix};
use crate::store::{Store, StoreError};

/// Which backups count as good in an alert's account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Good {
    /// Committed (its manifest is there).
    Committed,
    /// Passed a verification.
    Verified,
}

/// What a restore would give back at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exposure {
    /// The newest good backup and its age.
    pub newest_backup: Option<(String, Duration)>,
    /// With a change stream: how old its newest recovery point is.
    pub recovery_point_age: Option<Duration>,
    pub good: Good,
}

fn age(at: OffsetDateTime, now: OffsetDateTime) -> Duration {
    Duration::try_from(now - at).unwrap_or_default()
}

impl Exposure {
    /// Reads it from `store`: one listing of the database's folder, and the newest seal of its
    /// change stream when it has one. A set from the future (its writer's clock was ahead) is
    /// not taken for the newest; a seal that cannot be read leaves the recovery point unknown.
    pub async fn read(
        store: &dyn Store,
        database: &DatabaseId,
        now: OffsetDateTime,
    ) -> Result<Self, StoreError> {
        let listing = store.list(&database_prefix(database)).await?;
        let keys = || listing.iter().map(|o| o.key.as_str());
        let committed = committed_backups(database, keys());
        let newest_backup = newest_not_in_the_future(&committed, now).and_then(|id| {
            id.started_at()
                .map(|started| (id.to_string(), age(started, now)))
        });
        let recovery_point_age = match seal_keys(database, keys()).last() {
            Some(key) => match read_seal(store, key).await {
                Ok(seal) => Some(age(seal.through, now)),
                Err(crate::engine::stream::StreamError::Store(e)) => return Err(e),
                Err(e) => {
                    tracing::warn!(%key, error = %e, "the newest seal cannot be read");
                    None
                }
            },
            None => None,
        };
        Ok(Self {
            newest_backup,
            recovery_point_age,
            good: Good::Committed,
        })
    }

    /// The same, counting only `newest` (a backup that passed verification, with when it
    /// started) as good.
    pub fn verified(self, newest: Option<(String, OffsetDateTime)>, now: OffsetDateTime) -> Self {
        Self {
            newest_backup: newest.map(|(id, started)| (id, age(started, now))),
            good: Good::Verified,
            ..self
        }
    }

    /// For people: the newest good backup and its age, and the recovery point's age (the RPO
    /// right now) when there is a change stream.
    pub fn describe(&self) -> String {
        let backup = match (&self.newest_backup, self.good) {
            (Some((id, age)), Good::Committed) => {
                format!("The newest good backup is {id}, taken {} ago", span(*age))
            }
            (Some((id, age)), Good::Verified) => format!(
                "The newest backup that passed verification is {id}, taken {} ago",
                span(*age)
            ),
            (None, Good::Committed) => {
                "There is no committed backup of this database at all".to_string()
            }
            (None, Good::Verified) => "No backup of this database has passed verification".into(),
        };
        match (&self.newest_backup, self.recovery_point_age) {
            (Some(_), Some(rpo)) => format!(
                "{backup}; point-in-time recovery reaches {} ago: a restore now loses the last {} \
                 (the RPO right now).",
                span(rpo),
                span(rpo)
            ),
            (Some(_), None) => format!("{backup}: a restore now loses everything since."),
            (None, Some(rpo)) => format!(
                "{backup}; the change stream reaches {} ago, but it replays only onto a backup.",
                span(rpo)
            ),
            (None, None) => format!("{backup}."),
        }
    }
}

/// [`Exposure::describe`], or why it is unknown.
pub fn describe(found: &Result<Exposure, String>) -> String {
    match found {
        Ok(exposure) => exposure.describe(),
        Err(e) => {
            format!("The newest good backup is unknown: the store could not be listed ({e}).")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exposure(backup: Option<u64>, rpo: Option<u64>, good: Good) -> Exposure {
        Exposure {
            newest_backup: backup.map(|h| {
                (
                    "20261121T060000Z-1a2b3c4d".to_string(),
                    Duration::from_secs(h * 3600),
                )
            }),
            recovery_point_age: rpo.map(Duration::from_secs),
            good,
        }
    }

    #[test]
    fn an_exposure_says_the_newest_good_backup_and_the_rpo_right_now() {
        assert_eq!(
            exposure(Some(30), None, Good::Committed).describe(),
            "The newest good backup is 20261121T060000Z-1a2b3c4d, taken 1 d 6 h ago: a restore \
             now loses everything since."
        );
        assert_eq!(
            exposure(Some(30), Some(420), Good::Committed).describe(),
            "The newest good backup is 20261121T060000Z-1a2b3c4d, taken 1 d 6 h ago; \
             point-in-time recovery reaches 7 min 0 s ago: a restore now loses the last \
             7 min 0 s (the RPO right now)."
        );
        assert_eq!(
            exposure(None, None, Good::Committed).describe(),
            "There is no committed backup of this database at all."
        );
        assert!(
            exposure(Some(2), None, Good::Verified)
                .describe()
                .starts_with("The newest backup that passed verification is 2026")
        );
        assert_eq!(
            exposure(None, None, Good::Verified).describe(),
            "No backup of this database has passed verification."
        );
        assert!(describe(&Err("AccessDenied".into())).contains("unknown"));
    }
}
