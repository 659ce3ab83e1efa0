//! The key layout of a store (DESIGN.md, "Backup set format").
//!
//! ```text
//! <database-id>/<backup-id>/manifest.json   written last: its presence commits the set
//! <database-id>/<backup-id>/...             the set's parts and verification results
//! _backstop/locks/<database-id>/backup      the lease of the running backup
//! _backstop/runs/<database-id>/<hash>       claims of handled scheduled events
//! _backstop/stream/<database-id>/tables.json the tables the last drain saw (schema changes)
//! _backstop/objectives/<database-id>/<time>.json the monitor's judgement of the objectives
//! _backstop/verifications/<database-id>/<seq>.json the verification log: one entry per
//!                                           verification, create-only, each with the
//!                                           SHA-256 of the entry before it
//! _backstop/health/verification-log/<database-id>.json the log's newest entry a check saw
//! _backstop/...                             Backstop's own state (health status...)
//! ```

use std::fmt;

use time::OffsetDateTime;
use time::macros::format_description;

/// The folder of Backstop's own state; never a database id.
pub const STATE_PREFIX: &str = "_backstop";
/// The object whose presence commits a backup set.
pub const MANIFEST_NAME: &str = "manifest.json";

/// Why a name cannot be used as an id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{value}` is not a valid {what}: {reason}")]
pub struct InvalidId {
    pub what: &'static str,
    pub value: String,
    pub reason: &'static str,
}

/// The name of a backed-up database inside a store (defaults to the database's own name).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DatabaseId(String);

impl DatabaseId {
    pub fn new(value: &str) -> Result<Self, InvalidId> {
        let invalid = |reason| InvalidId {
            what: "database id",
            value: value.to_string(),
            reason,
        };
        if value.is_empty() || value.len() > 128 {
            return Err(invalid("it must be 1 to 128 characters long"));
        }
        if value == STATE_PREFIX || value.starts_with('.') || value.starts_with('_') {
            return Err(invalid("it cannot start with '.' or '_'"));
        }
        if !value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        {
            return Err(invalid("use only letters, digits, '-', '_' and '.'"));
        }
        Ok(Self(value.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for DatabaseId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A backup's id: `YYYYMMDDTHHMMSSZ-<8 hex>`, so ids sort by start time.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BackupId(String);

const ID_TIME: &[time::format_description::FormatItem<'static>] =
    format_description!("[year][month][day]T[hour][minute][second]Z");

impl BackupId {
    /// A fresh id for a backup starting at `started`. The suffix starts with the
    /// milliseconds, so two backups taken within one second still sort in the order they
    /// started; the rest is random.
    pub fn generate(started: OffsetDateTime) -> Self {
        let started = started.to_offset(time::UtcOffset::UTC);
        let stamp = started
            .format(ID_TIME)
            .unwrap_or_else(|_| "00000000T000000Z".to_string());
        Self(format!(
            "{stamp}-{:03}{:05x}",
            started.millisecond(),
            rand::random::<u32>() & 0xf_ffff
        ))
    }

    pub fn parse(value: &str) -> Result<Self, InvalidId> {
        let invalid = |reason| InvalidId {
            what: "backup id",
            value: value.to_string(),
            reason,
        };
        let (stamp, suffix) = value
            .split_once('-')
            .ok_or_else(|| invalid("expected YYYYMMDDTHHMMSSZ-xxxxxxxx"))?;
        time::PrimitiveDateTime::parse(stamp, ID_TIME)
            .map_err(|_| invalid("the time part is not YYYYMMDDTHHMMSSZ"))?;
        if suffix.is_empty() || !suffix.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(invalid("the suffix must be letters and digits"));
        }
        Ok(Self(value.to_string()))
    }

    /// When the backup started, from the id itself.
    pub fn started_at(&self) -> Option<OffsetDateTime> {
        let stamp = self.0.split_once('-')?.0;
        time::PrimitiveDateTime::parse(stamp, ID_TIME)
            .ok()
            .map(|t| t.assume_utc())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for BackupId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// `<database-id>/`: the prefix holding every set of a database.
pub fn database_prefix(database: &DatabaseId) -> String {
    format!("{database}/")
}

/// `<database-id>/<backup-id>/<name>`.
pub fn set_key(database: &DatabaseId, backup: &BackupId, name: &str) -> String {
    format!("{database}/{backup}/{name}")
}

/// Where claims of handled events for `database` live (one object per event).
pub fn run_claims_prefix(database: &DatabaseId) -> String {
    format!("{STATE_PREFIX}/runs/{database}/")
}

/// The claim object of one event (a scheduled event's id), named by a hash of the id so any
/// id makes a valid key.
pub fn run_claim_key(database: &DatabaseId, event_id: &str) -> String {
    use sha2::Digest as _;
    let digest = hex::encode(sha2::Sha256::digest(event_id.as_bytes()));
    format!("{}{}", run_claims_prefix(database), &digest[..32])
}

/// The ids of the committed sets (those with a manifest) among `keys` of one database,
/// oldest first.
pub fn committed_backups<'a>(
    database: &DatabaseId,
    keys: impl IntoIterator<Item = &'a str>,
) -> Vec<BackupId> {
    let prefix = database_prefix(database);
    let mut ids: Vec<BackupId> = keys
        .into_iter()
        .filter_map(|key| {
            key.strip_prefix(&prefix)?
                .strip_suffix(MANIFEST_NAME)?
                .strip_suffix('/')
        })
        .filter_map(|id| BackupId::parse(id).ok())
        .collect();
    ids.sort();
    ids.dedup();
    ids
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn backup_ids_sort_by_time_and_round_trip() {
        let early = BackupId::generate(datetime!(2026-01-02 03:04:05 UTC));
        let late = BackupId::generate(datetime!(2026-11-02 00:00:00 UTC));
        assert!(early < late);
        assert!(early.as_str().starts_with("20260102T030405Z-"));
        assert_eq!(BackupId::parse(early.as_str()).unwrap(), early);
        assert_eq!(early.started_at(), Some(datetime!(2026-01-02 03:04:05 UTC)));
        assert!(BackupId::parse("yesterday").is_err());
        assert!(BackupId::parse("20261301T000000Z-abc").is_err());
        // Within one second, the millisecond orders them whatever the random part is.
        for _ in 0..50 {
            let first = BackupId::generate(datetime!(2026-01-02 03:04:05.009 UTC));
            let second = BackupId::generate(datetime!(2026-01-02 03:04:05.010 UTC));
            assert!(first < second, "{first} {second}");
        }
    }

    #[test]
    fn database_ids_cannot_collide_with_state_or_escape() {
        assert!(DatabaseId::new("main").is_ok());
        assert!(DatabaseId::new("app.prod-1").is_ok());
        for bad in ["", "_backstop", "../x", "a/b", ".hidden", "white space"] {
            assert!(DatabaseId::new(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn only_sets_with_a_manifest_are_committed() {
        let db = DatabaseId::new("main").unwrap();
        let keys = [
            "main/20260101T000000Z-aaaa/manifest.json",
            "main/20260101T000000Z-aaaa/pre-data.sql.zst",
            "main/20260102T000000Z-bbbb/pre-data.sql.zst",
            "main/20251231T000000Z-cccc/manifest.json",
            "other/20260103T000000Z-dddd/manifest.json",
        ];
        let ids: Vec<String> = committed_backups(&db, keys)
            .iter()
            .map(|b| b.to_string())
            .collect();
        assert_eq!(ids, ["20251231T000000Z-cccc", "20260101T000000Z-aaaa"]);
    }
}
