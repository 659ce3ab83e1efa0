//! What a set's manifest and a change segment's seal both record of a stored object: its key,
//! size and checksum, and who an encrypted one is for. Kept apart from both so that neither
//! format imports the other.

use serde::{Deserialize, Serialize};

/// A stored object as it is recorded: key, size and SHA-256 (a set's `globals.json`, a
/// segment's changes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredFile {
    pub key: String,
    pub bytes: u64,
    pub sha256: String,
}

/// An encrypted set: who it is for, and (in the stored manifest) everything the monitor and
/// retention do not need, encrypted to them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestEncryption {
    /// The `age1…` recipients every object of the set is encrypted to.
    pub recipients: Vec<String>,
    /// The whole manifest, as JSON, age-encrypted and base64; absent once opened.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub private: Option<String>,
}
