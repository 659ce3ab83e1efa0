//! The server's version, read once per connection, as pg_dump's `remoteVersion`: every catalog
//! query that differs between majors is gated on it (`if v.at_least(17)`).

use std::fmt;

use tokio_postgres::Client;

/// The oldest and newest majors Backstop reads (and CI proves).
pub const OLDEST_MAJOR: u32 = 13;
pub const NEWEST_MAJOR: u32 = 18;

/// `server_version_num`, e.g. 170002 for 17.2.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub struct ServerVersion(pub u32);

#[derive(Debug, thiserror::Error)]
pub enum VersionError {
    #[error("reading the server version failed: {0}")]
    Read(String),
    #[error(
        "PostgreSQL {version} is not supported: Backstop reads PostgreSQL {OLDEST_MAJOR} to {NEWEST_MAJOR}; \
         upgrade the server, or use pg_dump of the server's own version"
    )]
    TooOld { version: ServerVersion },
    #[error(
        "PostgreSQL {version} is newer than this Backstop knows (PostgreSQL {OLDEST_MAJOR} to {NEWEST_MAJOR}): \
         its catalogs may hold objects this version would miss, so nothing was read; upgrade Backstop"
    )]
    TooNew { version: ServerVersion },
}

impl ServerVersion {
    /// Reads `server_version_num` on `client`.
    pub async fn read(client: &Client) -> Result<Self, VersionError> {
        let row = client
            .query_one("SELECT current_setting('server_version_num')::int4", &[])
            .await
            .map_err(|e| VersionError::Read(crate::describe(&e)))?;
        let number: i32 = row
            .try_get(0)
            .map_err(|e| VersionError::Read(e.to_string()))?;
        u32::try_from(number)
            .map(Self)
            .map_err(|_| VersionError::Read(format!("server_version_num is {number}")))
    }

    /// Reads the version and refuses a major outside the supported range.
    pub async fn read_supported(client: &Client) -> Result<Self, VersionError> {
        Self::read(client).await?.supported()
    }

    /// This version, or why Backstop does not read it.
    pub fn supported(self) -> Result<Self, VersionError> {
        match self.major() {
            m if m < OLDEST_MAJOR => Err(VersionError::TooOld { version: self }),
            m if m > NEWEST_MAJOR => Err(VersionError::TooNew { version: self }),
            _ => Ok(self),
        }
    }

    pub fn major(self) -> u32 {
        self.0 / 10_000
    }

    /// Whether this server is `major` or newer.
    pub fn at_least(self, major: u32) -> bool {
        self.major() >= major
    }
}

impl fmt::Display for ServerVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major(), self.0 % 10_000)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn majors_and_display() {
        let v = ServerVersion(170_002);
        assert_eq!(v.major(), 17);
        assert_eq!(v.to_string(), "17.2");
        assert!(v.at_least(17) && v.at_least(13) && !v.at_least(18));
    }

    #[test]
    fn only_thirteen_to_eighteen_are_read() {
        assert!(ServerVersion(130_023).supported().is_ok());
        assert!(ServerVersion(180_004).supported().is_ok());
        let old = ServerVersion(120_022).supported().unwrap_err().to_string();
        assert!(old.contains("PostgreSQL 12.22 is not supported"), "{old}");
        let new = ServerVersion(190_000).supported().unwrap_err().to_string();
        assert!(new.contains("newer than this Backstop knows"), "{new}");
    }
}
