//! Every kind of session Backstop opens, and what each sets and why, in one place.
//!
//! - Every session: an empty `search_path` (every name written or read is schema-qualified, and
//!   no object of the database can shadow a `pg_catalog` function), `statement_timeout = 0` (a
//!   big COPY or index build is not a hung query: waits are bounded by the liveness probe and
//!   lock timeouts), `jit = off` (compiling a catalog query costs more than running it: 0.7 s
//!   against 25 ms for one on 4,000 tables).
//! - Backup leader: a repeatable-read, read-only transaction whose snapshot it exports;
//!   `row_security = off` (every row is read, or the backup fails); `lock_timeout` the
//!   operator's bound on waiting for a table.
//! - Compare (`backstop compare`): the same repeatable-read, read-only transaction, so every
//!   count and example comes from one snapshot and nothing can be changed; `row_security = off`
//!   (every row is compared, or the comparison fails); `lock_timeout` its bound on waiting for
//!   a table another session holds exclusively.
//! - Backup workers (and the inventory's session): the same, joined to the leader's snapshot;
//!   `lock_timeout` of [`WORKER_LOCK_WAIT`]; `synchronize_seqscans = off` (rows in physical
//!   order).
//! - Restore, and the head of every script part (as pg_dump's scripts start): no lock or idle
//!   timeouts, UTF-8, `standard_conforming_strings = on`, function bodies unchecked (they may
//!   name objects created later), `row_security = off` (every row loads).
//! - Drain and replay: ISO dates, UTC, full float digits (and hex bytea for the drain): the
//!   text the decoder parses and the replay writes back. The drain commits synchronously (a
//!   slot's confirmed position is never ahead of the stored segment); the replay does not (it
//!   is redone from its segments if lost) and writes `standard_conforming_strings = on` literals.
//!
//! The backup's sessions are also hardened (`restrict_nonsystem_relation_kind`) by the engine,
//! which warns when the server has no such setting.

use std::time::Duration;

/// How long a backup worker waits for a table's lock. The leader holds every table's ACCESS
/// SHARE lock from the snapshot on, so nothing that conflicts holds one: a wait means an
/// exclusive request is queued behind the leader, which would wait for the leader while the
/// worker waits for it (the deadlock pg_dump's workers avoid with NOWAIT).
pub const WORKER_LOCK_WAIT: &str = "1s";

/// What a session is for.
#[derive(Debug, Clone, Copy)]
pub enum Purpose<'a> {
    /// The backup's leader: starts the snapshot every other backup session joins.
    BackupLeader { lock_timeout: Duration },
    /// A backup worker (or the inventory's session) joining the leader's exported snapshot.
    BackupWorker { snapshot: &'a str },
    /// A restore's sessions, and the head of every script part (as pg_dump's scripts start).
    Restore,
    /// The change stream's drain of its slot.
    Drain,
    /// A point-in-time replay of changes onto a restored database.
    Replay,
    /// A comparison of a table with a copy restored beside it: reads only.
    Compare { lock_timeout: Duration },
}

const EMPTY_SEARCH_PATH: &str = "SELECT pg_catalog.set_config('search_path', '', false);\n";

/// Values as text the decoder parses and the replay writes back unchanged.
const TEXT_FORMATS: &str = "SET DateStyle = ISO;\nSET TimeZone = 'UTC';\nSET IntervalStyle = postgres;\n\
SET extra_float_digits = 3;\n";

impl Purpose<'_> {
    /// The statements that set the session up, run once right after it connects.
    pub fn setup(&self) -> String {
        match self {
            Purpose::BackupLeader { lock_timeout } => format!(
                "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY;\n{EMPTY_SEARCH_PATH}\
                 SET row_security = off;\nSET statement_timeout = 0;\nSET jit = off;\n\
                 SET lock_timeout = '{}ms';\n",
                lock_timeout.as_millis()
            ),
            Purpose::BackupWorker { snapshot } => format!(
                "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY;\n\
                 SET TRANSACTION SNAPSHOT '{snapshot}';\n{EMPTY_SEARCH_PATH}\
                 SET row_security = off;\nSET statement_timeout = 0;\nSET jit = off;\n\
                 SET lock_timeout = '{WORKER_LOCK_WAIT}';\nSET synchronize_seqscans = off;\n"
            ),
            Purpose::Restore => format!(
                "SET statement_timeout = 0;\nSET lock_timeout = 0;\n\
                 SET idle_in_transaction_session_timeout = 0;\nSET client_encoding = 'UTF8';\n\
                 SET standard_conforming_strings = on;\n{EMPTY_SEARCH_PATH}\
                 SET check_function_bodies = false;\nSET xmloption = content;\n\
                 SET client_min_messages = warning;\nSET row_security = off;\nSET jit = off;\n"
            ),
            Purpose::Compare { lock_timeout } => format!(
                "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY;\n{EMPTY_SEARCH_PATH}\
                 SET row_security = off;\nSET statement_timeout = 0;\nSET jit = off;\n\
                 SET lock_timeout = '{}ms';\n",
                lock_timeout.as_millis()
            ),
            Purpose::Drain => format!(
                "{EMPTY_SEARCH_PATH}{TEXT_FORMATS}SET bytea_output = hex;\nSET statement_timeout = 0;\n\
                 SET synchronous_commit = on;\nSET jit = off;\n"
            ),
            Purpose::Replay => format!(
                "{EMPTY_SEARCH_PATH}{TEXT_FORMATS}SET standard_conforming_strings = on;\n\
                 SET statement_timeout = 0;\nSET synchronous_commit = off;\nSET jit = off;\n"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_session_empties_its_search_path_and_lifts_the_statement_timeout() {
        let purposes = [
            Purpose::BackupLeader {
                lock_timeout: Duration::from_secs(60),
            },
            Purpose::BackupWorker {
                snapshot: "00000003-0000001B-1",
            },
            Purpose::Restore,
            Purpose::Drain,
            Purpose::Replay,
            Purpose::Compare {
                lock_timeout: Duration::from_secs(30),
            },
        ];
        for purpose in purposes {
            let sql = purpose.setup();
            assert!(sql.contains(EMPTY_SEARCH_PATH), "{purpose:?}");
            assert!(sql.contains("SET statement_timeout = 0;"), "{purpose:?}");
            assert!(sql.contains("SET jit = off;"), "{purpose:?}");
        }
        let leader = purposes[0].setup();
        assert!(leader.starts_with("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY;"));
        assert!(leader.contains("SET lock_timeout = '60000ms';"));
        let worker = purposes[1].setup();
        assert!(worker.contains("SET TRANSACTION SNAPSHOT '00000003-0000001B-1';"));
        assert!(worker.contains("SET lock_timeout = '1s';"));
        let compare = purposes[5].setup();
        assert!(compare.starts_with("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY;"));
        assert!(compare.contains("SET lock_timeout = '30000ms';"));
    }
}
