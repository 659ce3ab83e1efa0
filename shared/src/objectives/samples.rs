//! The monitor's record of each objective, one sample per run and database, under
//! `_backstop/objectives/<database-id>/<YYYYMMDDTHHMMSSZ>.json` (written create-only): what
//! `backstop report` reads to tell how long each objective was met over a period.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::{ObjectiveFigures, Objectives};
use crate::layout::{DatabaseId, STATE_PREFIX};
use crate::store::{PutOptions, Store, StoreError};

/// One database's objectives as one monitor run judged them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    pub database_id: String,
    #[serde(with = "time::serde::rfc3339")]
    pub checked_at: OffsetDateTime,
    /// The objectives in force then.
    pub objectives: Objectives,
    pub figures: ObjectiveFigures,
}

/// Where `database`'s samples live.
pub fn samples_prefix(database: &DatabaseId) -> String {
    format!("{STATE_PREFIX}/objectives/{database}/")
}

/// The key of the sample taken at `at`.
pub fn sample_key(database: &DatabaseId, at: OffsetDateTime) -> String {
    let at = at.to_offset(time::UtcOffset::UTC);
    format!(
        "{}{:04}{:02}{:02}T{:02}{:02}{:02}Z.json",
        samples_prefix(database),
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second()
    )
}

/// Keeps `sample`. A sample of the same second already there is left as it is (two runs in one
/// second judged the same evidence).
pub async fn record(store: &dyn Store, sample: &Sample) -> Result<(), StoreError> {
    let database = DatabaseId::new(&sample.database_id).map_err(|_| StoreError::InvalidKey {
        key: sample.database_id.clone(),
        reason: "not a database id",
    })?;
    let json = serde_json::to_vec_pretty(sample).unwrap_or_default();
    let options = PutOptions {
        create_only: true,
        ..PutOptions::default()
    };
    match store
        .put(
            &sample_key(&database, sample.checked_at),
            &mut json.as_slice(),
            &options,
        )
        .await
    {
        Ok(_) => Ok(()),
        Err(StoreError::AlreadyExists { .. }) => Ok(()),
        Err(e) => Err(e),
    }
}

/// `database`'s samples taken at or after `since`, oldest first; samples that do not read are
/// counted in the second value, never taken for figures.
pub async fn read(
    store: &dyn Store,
    database: &DatabaseId,
    since: Option<OffsetDateTime>,
) -> Result<(Vec<Sample>, usize), StoreError> {
    let prefix = samples_prefix(database);
    let mut keys: Vec<String> = store
        .list(&prefix)
        .await?
        .into_iter()
        .map(|o| o.key)
        .filter(|key| key.ends_with(".json"))
        .collect();
    keys.sort();
    let since_key = since.map(|at| sample_key(database, at));
    let mut samples = Vec::new();
    let mut unreadable = 0;
    for key in keys.iter().filter(|key| {
        since_key
            .as_deref()
            .is_none_or(|since| key.as_str() >= since)
    }) {
        // A sample removed since the listing is simply not there.
        if let Some(found) = store.read_versioned(key).await? {
            match serde_json::from_slice::<Sample>(&found.body) {
                Ok(sample) if sample.database_id == database.as_str() => samples.push(sample),
                _ => unreadable += 1,
            }
        }
    }
    samples.sort_by_key(|s| s.checked_at);
    Ok((samples, unreadable))
}

/// `database`'s newest sample, when one reads (the monitor's last judgement).
pub async fn newest(
    store: &dyn Store,
    database: &DatabaseId,
) -> Result<Option<Sample>, StoreError> {
    let newest = store
        .list(&samples_prefix(database))
        .await?
        .into_iter()
        .map(|o| o.key)
        .filter(|key| key.ends_with(".json"))
        .max();
    let Some(key) = newest else {
        return Ok(None);
    };
    Ok(store
        .read_versioned(&key)
        .await?
        .and_then(|found| serde_json::from_slice::<Sample>(&found.body).ok())
        .filter(|sample| sample.database_id == database.as_str()))
}

/// When the monitor's oldest kept sample of `database` was taken (read from its key, no object
/// read): how long the objectives have been watched.
pub async fn oldest_at(
    store: &dyn Store,
    database: &DatabaseId,
) -> Result<Option<OffsetDateTime>, StoreError> {
    let prefix = samples_prefix(database);
    let oldest = store
        .list(&prefix)
        .await?
        .into_iter()
        .filter_map(|o| {
            o.key
                .strip_prefix(&prefix)
                .and_then(|name| name.strip_suffix(".json"))
                .and_then(moment_of)
        })
        .min();
    Ok(oldest)
}

/// The moment a sample's name (`YYYYMMDDTHHMMSSZ`) stands for.
fn moment_of(name: &str) -> Option<OffsetDateTime> {
    let format = time::macros::format_description!("[year][month][day]T[hour][minute][second]Z");
    time::PrimitiveDateTime::parse(name, &format)
        .ok()
        .map(|at| at.assume_utc())
}
