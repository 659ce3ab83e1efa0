//! Store errors: one readable line each, naming the object and what to do.

use std::path::PathBuf;

/// What went wrong talking to a store. Messages never contain credentials.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(
        "store URL `{url}` is not valid: {reason}; use file:///absolute/path or s3://bucket/prefix"
    )]
    InvalidUrl { url: String, reason: String },

    #[error(
        "store URL scheme `{scheme}:` is not supported; use file:///absolute/path or s3://bucket/prefix"
    )]
    UnsupportedScheme { scheme: String },

    #[error("object key `{key}` is not valid: {reason}")]
    InvalidKey { key: String, reason: &'static str },

    #[error(
        "bucket `{bucket}` does not exist or is not visible to these credentials; create it or fix the store URL"
    )]
    BucketNotFound { bucket: String },

    #[error("`{key}` not found in {store}")]
    NotFound { store: String, key: String },

    #[error(
        "access denied: {operation} `{key}` in {store}; check the credentials and their IAM policy"
    )]
    AccessDenied {
        store: String,
        operation: &'static str,
        key: String,
    },

    #[error("cannot write to `{}`: {source}{}", path.display(), match hint(source) {
        "" => "; make sure the directory exists and is writable by this user",
        full => full,
    })]
    NotWritable {
        path: PathBuf,
        source: std::io::Error,
    },

    #[error("{operation} `{}` failed: {source}{}", path.display(), hint(source))]
    Io {
        operation: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },

    #[error("S3 {operation} on s3://{bucket}/{key} failed: {message}")]
    S3 {
        operation: &'static str,
        bucket: String,
        key: String,
        message: String,
        retryable: bool,
    },

    #[error(
        "`{key}` already exists in {store} and backup data is never replaced; nothing was stored"
    )]
    AlreadyExists { store: String, key: String },

    #[error("reading the data for `{key}` failed: {source}; nothing was stored")]
    Source { key: String, source: std::io::Error },
}

/// What to do about an I/O error people can fix, after its message.
fn hint(error: &std::io::Error) -> &'static str {
    match error.kind() {
        std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded => {
            "; the store's disk is full: free space (or use another store) and run again; nothing was committed"
        }
        _ => "",
    }
}

impl StoreError {
    /// Whether trying the same call again may succeed (throttling, timeouts, 5xx).
    pub fn is_retryable(&self) -> bool {
        match self {
            StoreError::S3 { retryable, .. } => *retryable,
            StoreError::Io { source, .. } => matches!(
                source.kind(),
                std::io::ErrorKind::Interrupted | std::io::ErrorKind::TimedOut
            ),
            _ => false,
        }
    }

    /// Whether the error means the object is simply absent.
    pub fn is_not_found(&self) -> bool {
        matches!(self, StoreError::NotFound { .. })
    }
}
