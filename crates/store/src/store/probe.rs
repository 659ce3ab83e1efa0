//! A round trip through a store that proves it can hold backups: write, tag, list, read back
//! and compare, delete. Used by `backstop doctor` before anyone relies on the store.

use sha2::{Digest, Sha256};
use tokio::io::AsyncReadExt;

use super::{PutOptions, Store, StoreError};
use crate::layout::STATE_PREFIX;

const PROBE_BYTES: usize = 256 * 1024;

/// What the probe did; each step succeeded if this is returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeReport {
    pub key: String,
    pub bytes: u64,
}

/// Why the probe failed, or the store error that stopped it.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(
        "{store} returned different bytes than were written to `{key}`; the store is not safe for backups"
    )]
    Mismatch { store: String, key: String },
    #[error("{store} did not list `{key}` right after writing it; listings may be incomplete")]
    NotListed { store: String, key: String },
}

/// Writes, tags, lists, reads back and deletes a probe object under `_backstop/probe/`.
pub async fn probe(store: &dyn Store) -> Result<ProbeReport, ProbeError> {
    let key = format!("{STATE_PREFIX}/probe/{:016x}", rand::random::<u64>());
    let data: Vec<u8> = (0..PROBE_BYTES).map(|i| (i * 31 % 251) as u8).collect();
    let options = PutOptions {
        tags: vec![("backstop-probe".into(), "true".into())],
        create_only: true,
    };
    let receipt = store.put(&key, &mut data.as_slice(), &options).await?;
    let result = check(store, &key, &data, &receipt.sha256).await;
    store.delete(&key).await?;
    result?;
    Ok(ProbeReport {
        key,
        bytes: receipt.bytes,
    })
}

async fn check(store: &dyn Store, key: &str, data: &[u8], sha256: &str) -> Result<(), ProbeError> {
    let mismatch = || ProbeError::Mismatch {
        store: store.url().to_string(),
        key: key.to_string(),
    };
    store.get_tags(key).await?;
    let listed = store.list(&format!("{STATE_PREFIX}/probe/")).await?;
    if !listed.iter().any(|o| o.key == key) {
        return Err(ProbeError::NotListed {
            store: store.url().to_string(),
            key: key.to_string(),
        });
    }
    let mut read_back = Vec::with_capacity(data.len());
    store
        .get(key)
        .await?
        .read_to_end(&mut read_back)
        .await
        .map_err(|source| StoreError::Source {
            key: key.to_string(),
            source,
        })?;
    if read_back != data || hex::encode(Sha256::digest(&read_back)) != sha256 {
        return Err(mismatch());
    }
    Ok(())
}
