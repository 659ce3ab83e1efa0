//! Stores: where backup sets live. One trait, two implementations chosen by URL.
//!
//! Keys are `/`-separated and relative to the store's root (a directory or a bucket prefix).
//! A `put` either stores the whole stream under its key or leaves nothing visible: the file
//! store writes a hidden temporary file and renames it; the S3 store aborts its multipart
//! upload on every failure path, including cancellation.

mod counting;
mod error;
mod file;
mod probe;
mod s3;
mod url;

use std::fmt::Debug;
use std::sync::Arc;

use async_trait::async_trait;
use aws_config::SdkConfig;
use time::OffsetDateTime;
use tokio::io::AsyncRead;

pub use counting::{CountingStore, Requests};
pub use error::StoreError;
pub use file::FileStore;
pub use probe::{ProbeError, ProbeReport, probe};
pub use s3::{MAX_PARTS, MIN_PART_SIZE, S3Store, part_size_for};
pub use url::StoreUrl;

/// A readable stream of an object's bytes.
pub type ObjectReader = Box<dyn AsyncRead + Send + Unpin>;

/// Object tags as (key, value) pairs, in the order given.
pub type Tags = Vec<(String, String)>;

/// What a store knows of one object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectMeta {
    pub key: String,
    pub size: u64,
    pub last_modified: Option<OffsetDateTime>,
    /// S3 storage class (`GLACIER`, `DEEP_ARCHIVE`...); `None` means immediately readable.
    pub storage_class: Option<String>,
    /// S3 Object Lock: the object cannot be deleted before this (from `head` only).
    pub retained_until: Option<OffsetDateTime>,
    /// S3 Object Lock legal hold is on (from `head` only).
    pub legal_hold: bool,
}

impl ObjectMeta {
    /// An object with just a key, size and time (what a listing knows).
    pub fn listed(key: String, size: u64, last_modified: Option<OffsetDateTime>) -> Self {
        Self {
            key,
            size,
            last_modified,
            storage_class: None,
            retained_until: None,
            legal_hold: false,
        }
    }

    /// Whether Object Lock forbids deleting it at `now`.
    pub fn is_locked(&self, now: OffsetDateTime) -> bool {
        self.legal_hold || self.retained_until.is_some_and(|until| until > now)
    }

    /// Whether reading the object needs a restore from an archive tier first.
    pub fn is_archived(&self) -> bool {
        matches!(
            self.storage_class.as_deref(),
            Some("GLACIER" | "DEEP_ARCHIVE" | "GLACIER_IR_PENDING")
        )
    }
}

/// Options for a `put`.
#[derive(Debug, Clone, Default)]
pub struct PutOptions {
    /// Tags stored with the object (S3 object tags; lifecycle rules match on them).
    pub tags: Tags,
    /// Store only if no object exists at the key (S3 `If-None-Match: *` on PutObject and
    /// CompleteMultipartUpload): backup data is written once and never replaced, and the
    /// bucket policy refuses the backup role any other write there.
    pub create_only: bool,
}

/// Proof of a completed `put`: what was stored and its SHA-256.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PutReceipt {
    pub key: String,
    pub bytes: u64,
    /// Lower-case hex SHA-256 of the stored bytes.
    pub sha256: String,
    /// Requests the store made for it (a multipart upload: create, each part, complete).
    pub requests: u64,
}

/// An upload that was started and neither completed nor aborted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingUpload {
    pub key: String,
    pub upload_id: String,
    pub initiated: Option<OffsetDateTime>,
}

/// A small object read whole, with the version a conditional write or delete can name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Versioned {
    pub body: Vec<u8>,
    /// The S3 ETag, or a content hash in the file store.
    pub version: String,
}

/// When a conditional write may happen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteCondition<'a> {
    /// Only if nothing is stored under the key (S3 `If-None-Match: *`).
    Absent,
    /// Only if the stored object is still this version (S3 `If-Match`).
    Version(&'a str),
}

/// A place that holds backup sets.
#[async_trait]
pub trait Store: Send + Sync + Debug {
    /// The URL this store was opened from, for messages.
    fn url(&self) -> &StoreUrl;

    /// Streams `body` into `key`, replacing any object there, and returns its size and SHA-256.
    /// On any failure nothing is left under `key` and no partial upload remains.
    async fn put(
        &self,
        key: &str,
        body: &mut (dyn AsyncRead + Send + Unpin),
        options: &PutOptions,
    ) -> Result<PutReceipt, StoreError>;

    /// Opens `key` for streaming reads.
    async fn get(&self, key: &str) -> Result<ObjectReader, StoreError>;

    /// The object's metadata, or `None` when there is no such object.
    async fn head(&self, key: &str) -> Result<Option<ObjectMeta>, StoreError>;

    /// Every object whose key starts with `prefix`, sorted by key. Fails rather than
    /// returning a partial listing.
    async fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>, StoreError>;

    /// Deletes `key`; deleting an absent object succeeds.
    async fn delete(&self, key: &str) -> Result<(), StoreError>;

    /// The tags of `key`.
    async fn get_tags(&self, key: &str) -> Result<Tags, StoreError>;

    /// Replaces the tags of `key`.
    async fn put_tags(&self, key: &str, tags: &Tags) -> Result<(), StoreError>;

    /// Uploads under `prefix` that were started and never completed nor aborted.
    async fn pending_uploads(&self, prefix: &str) -> Result<Vec<PendingUpload>, StoreError>;

    /// Abandons a pending upload so it stops holding storage.
    async fn abort_upload(&self, upload: &PendingUpload) -> Result<(), StoreError>;

    /// Reads a small object whole with its version, or `None` when there is no such object.
    async fn read_versioned(&self, key: &str) -> Result<Option<Versioned>, StoreError>;

    /// Writes a small object only if `condition` holds, atomically with the check. Returns the
    /// new version, or `None` when the condition did not hold (another writer got there first).
    async fn write_if(
        &self,
        key: &str,
        body: &[u8],
        condition: WriteCondition<'_>,
    ) -> Result<Option<String>, StoreError>;

    /// Deletes `key` only if it is still `version`; `false` when it changed or is gone.
    async fn delete_if(&self, key: &str, version: &str) -> Result<bool, StoreError>;
}

/// Opens the store at `url`. `aws` is used only by S3 stores.
pub fn open(url: &StoreUrl, aws: &SdkConfig) -> Arc<dyn Store> {
    match url {
        StoreUrl::File { root } => Arc::new(FileStore::new(root.clone())),
        StoreUrl::S3 { bucket, prefix } => Arc::new(S3Store::new(
            crate::aws::s3_client(aws),
            bucket.clone(),
            prefix.clone(),
        )),
    }
}

/// Opens the store at `url`, loading AWS configuration from the environment only when the
/// store is on S3. For one-shot processes such as the CLI.
pub async fn open_from_env(url: &StoreUrl) -> Arc<dyn Store> {
    match url {
        StoreUrl::File { root } => Arc::new(FileStore::new(root.clone())),
        StoreUrl::S3 { .. } => open(url, &crate::aws::load_sdk_config().await),
    }
}

/// Checks that `key` is a relative, normalised `/`-separated path.
pub(crate) fn validate_key(key: &str) -> Result<(), StoreError> {
    let invalid = |reason| {
        Err(StoreError::InvalidKey {
            key: key.to_string(),
            reason,
        })
    };
    if key.is_empty() {
        return invalid("it is empty");
    }
    if key.starts_with('/') || key.ends_with('/') {
        return invalid("it starts or ends with '/'");
    }
    if key
        .split('/')
        .any(|s| s.is_empty() || s == "." || s == "..")
    {
        return invalid("it has an empty, '.' or '..' segment");
    }
    if key.split('/').any(|s| s.starts_with('.')) {
        return invalid("a segment starts with '.', which the file store reserves");
    }
    if key.contains(['\0', '\\']) {
        return invalid("it contains a NUL byte or a backslash");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::validate_key;

    #[test]
    fn keys_must_be_relative_and_normalised() {
        assert!(validate_key("main/20260101T000000Z-abcd/manifest.json").is_ok());
        for bad in [
            "",
            "/abs",
            "trailing/",
            "a//b",
            "a/../b",
            "./a",
            "a/.hidden",
            "a\\b",
        ] {
            assert!(validate_key(bad).is_err(), "{bad:?} should be rejected");
        }
    }
}
