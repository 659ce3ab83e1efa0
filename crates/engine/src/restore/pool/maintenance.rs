//! The target's parallel maintenance workers for an index build: how many a build uses, and
//! the session settings that give them (the memory each participant needs).
//!
//! PostgreSQL builds btree indexes with parallel workers since 11, BRIN since 17 and GIN since
//! 18 (GiST, SP-GiST and hash never). It plans a build's workers as `plan_create_index_workers`
//! does: none below `min_parallel_table_scan_size` of heap, one at that size and one more for
//! each tripling, at most `max_parallel_maintenance_workers`, and only as many as leave every
//! participant (the leader too) 32 MB of `maintenance_work_mem`; the workers come from the
//! server's pool (`max_parallel_workers`, `max_worker_processes`). `--jobs` counts the
//! restore's connections, as pg_restore's does; the workers are the server's, and the restore
//! never asks for more of them at once than its pool holds. A restore session runs with no
//! workers; a build is given them, with the `maintenance_work_mem` they need.

use tokio_postgres::Client;

use super::super::RestoreError;
use crate::item::ItemKind;
use crate::script::ItemHeader;
use crate::sql::Marked;
use backstop_pg::describe;
use backstop_pg::version::ServerVersion;

/// What each participant of a parallel build needs of `maintenance_work_mem`.
pub(super) const WORK_MEM_PER_PARTICIPANT: u64 = 32 * 1024 * 1024;

/// Every restore session starts with this: no build takes workers unless given them.
pub(super) const NO_WORKERS: &str = "SET max_parallel_maintenance_workers = 0;\n";

/// After a build that had workers: none again, and the session's own memory.
pub(super) const WORKERS_RETURNED: &str =
    "SET max_parallel_maintenance_workers = 0;\nRESET maintenance_work_mem;\n";

/// What the target allows parallel index builds, read once per restore from a restore session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Limits {
    pub version: ServerVersion,
    /// `max_parallel_maintenance_workers` as the target sets it: the most one build uses
    /// (0: the target builds nothing in parallel).
    pub maintenance_workers: usize,
    /// `max_parallel_workers`: the server's pool of parallel workers.
    pub parallel_workers: usize,
    /// `max_worker_processes`: every background worker, parallel ones among them.
    pub worker_processes: usize,
    /// `maintenance_work_mem` of a restore session, in bytes.
    pub work_mem: u64,
    /// `min_parallel_table_scan_size`, in bytes.
    pub min_table_scan: u64,
}

impl Limits {
    pub async fn read(client: &Client) -> Result<Self, RestoreError> {
        let failed = |reason: String| RestoreError::Database {
            step: "reading the target's parallel maintenance settings",
            reason,
        };
        let row = client
            .query_one(
                "SELECT pg_catalog.current_setting('server_version_num')::int4 AS version, \
                 pg_catalog.current_setting('max_parallel_maintenance_workers')::int4 AS maintenance_workers, \
                 pg_catalog.current_setting('max_parallel_workers')::int4 AS parallel_workers, \
                 pg_catalog.current_setting('max_worker_processes')::int4 AS worker_processes, \
                 pg_catalog.pg_size_bytes(pg_catalog.current_setting('maintenance_work_mem')) AS work_mem, \
                 pg_catalog.pg_size_bytes(pg_catalog.current_setting('min_parallel_table_scan_size')) AS min_table_scan",
                &[],
            )
            .await
            .map_err(|e| failed(describe(&e)))?;
        let count = |name: &str| {
            row.try_get::<_, i32>(name)
                .map(|n| usize::try_from(n).unwrap_or(0))
                .map_err(|e| failed(format!("{name}: {e}")))
        };
        let bytes = |name: &str| {
            row.try_get::<_, i64>(name)
                .map(|n| u64::try_from(n).unwrap_or(0))
                .map_err(|e| failed(format!("{name}: {e}")))
        };
        Ok(Self {
            version: ServerVersion(
                u32::try_from(
                    row.try_get::<_, i32>("version")
                        .map_err(|e| failed(format!("version: {e}")))?,
                )
                .unwrap_or(0),
            ),
            maintenance_workers: count("maintenance_workers")?,
            parallel_workers: count("parallel_workers")?,
            worker_processes: count("worker_processes")?,
            work_mem: bytes("work_mem")?,
            min_table_scan: bytes("min_table_scan")?,
        })
    }

    /// Whether this server builds an index of `method` with parallel workers.
    pub fn builds_in_parallel(&self, method: Method) -> bool {
        match method {
            Method::Ordinary => self.version.at_least(11),
            Method::Slow => self.version.at_least(18),
            Method::NotAnIndex => false,
        }
    }
}

/// The index a build makes, as far as its item's header tells.
///
/// The header says whether the access method builds slowly (GIN, GiST, SP-GiST), not which it
/// is: an ordinary build is taken for a btree (the default method, and nearly every index),
/// a slow one for a GIN index (the slow method a target builds in parallel). A hash index, a
/// BRIN index before 17, or a GiST or SP-GiST index on 18 is planned workers the server does
/// not start; the connections that lent them stay idle for that build.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Method {
    /// btree (or hash, BRIN).
    Ordinary,
    /// GIN (or GiST, SP-GiST).
    Slow,
    /// A constraint that builds no index the restore can tell (an exclusion constraint, a
    /// check), or anything else.
    NotAnIndex,
}

impl Method {
    pub fn of(header: &ItemHeader) -> Self {
        match header.kind {
            ItemKind::Index if header.slow_build => Method::Slow,
            ItemKind::Index => Method::Ordinary,
            // A plain primary key or unique constraint builds its btree index.
            ItemKind::Constraint
                if header
                    .marks
                    .iter()
                    .any(|m| matches!(m.is, Marked::AddKey { .. })) =>
            {
                Method::Ordinary
            }
            _ => Method::NotAnIndex,
        }
    }
}

/// How one build runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct BuildPlan {
    /// Parallel maintenance workers beside the build's own session.
    pub workers: usize,
    /// `maintenance_work_mem` for the build, in bytes: the session's own, or enough for every
    /// participant's share when the workers need more.
    pub work_mem: u64,
}

impl BuildPlan {
    /// The settings the build's session runs with, before the build.
    pub fn settings(&self, limits: &Limits) -> String {
        let mut sql = format!("SET max_parallel_maintenance_workers = {};\n", self.workers);
        if self.work_mem > limits.work_mem {
            sql.push_str(&format!(
                "SET maintenance_work_mem = '{}kB';\n",
                self.work_mem.div_ceil(1024)
            ));
        }
        sql
    }
}

/// How many workers a build of `method` on a table of `heap_bytes` gets, while `lent` workers
/// serve the restore's other builds.
///
/// As many as the server would plan for the table's size, at most its
/// `max_parallel_maintenance_workers`, and no more than its pool (`max_parallel_workers`,
/// `max_worker_processes`) holds beside the ones lent. Each participant needs 32 MB of
/// `maintenance_work_mem`: the build's session is given that much when its own is less;
/// below 32 MB a session is taken to be held small on purpose, and builds alone.
pub(super) fn plan(limits: &Limits, method: Method, heap_bytes: u64, lent: usize) -> BuildPlan {
    let none = BuildPlan {
        workers: 0,
        work_mem: limits.work_mem,
    };
    if !limits.builds_in_parallel(method) || limits.work_mem < WORK_MEM_PER_PARTICIPANT {
        return none;
    }
    let workers = workers_for_size(heap_bytes, limits.min_table_scan)
        .min(limits.maintenance_workers)
        .min(limits.parallel_workers.saturating_sub(lent))
        .min(limits.worker_processes.saturating_sub(lent));
    if workers == 0 {
        return none;
    }
    let participants = workers as u64 + 1;
    BuildPlan {
        workers,
        work_mem: limits.work_mem.max(WORK_MEM_PER_PARTICIPANT * participants),
    }
}

/// The workers PostgreSQL plans for a heap of `heap_bytes` (`compute_parallel_worker`): none
/// below `min_table_scan`, one from it, one more for each tripling.
fn workers_for_size(heap_bytes: u64, min_table_scan: u64) -> usize {
    let mut threshold = min_table_scan.max(8192);
    if heap_bytes < threshold {
        return 0;
    }
    let mut workers = 1;
    while heap_bytes >= threshold.saturating_mul(3) && threshold < u64::MAX / 3 {
        workers += 1;
        threshold *= 3;
    }
    workers
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sql::Mark;

    const MB: u64 = 1024 * 1024;

    /// A server with its default settings.
    fn server(major: u32) -> Limits {
        Limits {
            version: ServerVersion(major * 10_000 + 1),
            maintenance_workers: 2,
            parallel_workers: 8,
            worker_processes: 8,
            work_mem: 64 * MB,
            min_table_scan: 8 * MB,
        }
    }

    fn workers(limits: &Limits, method: Method, lent: usize) -> usize {
        plan(limits, method, 500 * MB, lent).workers
    }

    #[test]
    fn btree_builds_get_workers_on_every_version_gin_from_18() {
        // A big table: the target's max_parallel_maintenance_workers (2 by default).
        for major in 13..=18 {
            assert_eq!(workers(&server(major), Method::Ordinary, 0), 2);
            let gin = workers(&server(major), Method::Slow, 0);
            assert_eq!(gin, if major >= 18 { 2 } else { 0 }, "GIN on {major}");
            assert_eq!(workers(&server(major), Method::NotAnIndex, 0), 0);
        }
    }

    #[test]
    fn workers_lent_to_other_builds_are_not_given_twice() {
        let small_pool = Limits {
            parallel_workers: 2,
            ..server(18)
        };
        assert_eq!(workers(&small_pool, Method::Slow, 1), 1);
        assert_eq!(workers(&small_pool, Method::Slow, 2), 0);
        let few_processes = Limits {
            worker_processes: 3,
            ..server(18)
        };
        assert_eq!(workers(&few_processes, Method::Ordinary, 2), 1);
    }

    #[test]
    fn the_table_size_and_the_servers_settings_cap_the_workers() {
        let pg18 = server(18);
        let by_size = |bytes| plan(&pg18, Method::Ordinary, bytes, 0).workers;
        let uncapped = Limits {
            maintenance_workers: 8,
            work_mem: 1024 * MB,
            ..pg18
        };
        let sized = |bytes| plan(&uncapped, Method::Ordinary, bytes, 0).workers;
        // Below min_parallel_table_scan_size, none; one from it; one more each tripling.
        assert_eq!(by_size(8 * MB - 1), 0);
        assert_eq!(sized(8 * MB), 1);
        assert_eq!(sized(24 * MB - 1), 1);
        assert_eq!(sized(24 * MB), 2);
        assert_eq!(sized(72 * MB), 3);
        assert_eq!(sized(216 * MB), 4);
        // The target's max_parallel_maintenance_workers (2 by default) is the most one build uses.
        assert_eq!(by_size(10_000 * MB), 2);
        // The target turned parallel maintenance off, or its pool is empty.
        let off = Limits {
            maintenance_workers: 0,
            ..pg18
        };
        assert_eq!(workers(&off, Method::Ordinary, 0), 0);
        let no_pool = Limits {
            parallel_workers: 0,
            ..pg18
        };
        assert_eq!(workers(&no_pool, Method::Ordinary, 0), 0);
        let few_processes = Limits {
            worker_processes: 1,
            ..pg18
        };
        assert_eq!(workers(&few_processes, Method::Ordinary, 0), 1);
    }

    #[test]
    fn each_participant_gets_32_mb_of_maintenance_work_mem() {
        let pg18 = server(18);
        // The default 64 MB is one worker's and the leader's share.
        let one = plan(
            &Limits {
                maintenance_workers: 1,
                ..pg18
            },
            Method::Slow,
            500 * MB,
            0,
        );
        assert_eq!(
            one,
            BuildPlan {
                workers: 1,
                work_mem: 64 * MB
            }
        );
        assert_eq!(
            one.settings(&pg18),
            "SET max_parallel_maintenance_workers = 1;\n"
        );
        // Two workers need 96 MB: the session is given it for the build.
        let two = plan(&pg18, Method::Slow, 500 * MB, 0);
        assert_eq!(
            two,
            BuildPlan {
                workers: 2,
                work_mem: 96 * MB
            }
        );
        assert_eq!(
            two.settings(&pg18),
            "SET max_parallel_maintenance_workers = 2;\nSET maintenance_work_mem = '98304kB';\n"
        );
        // A session with more keeps it.
        let roomy = Limits {
            work_mem: 1024 * MB,
            ..pg18
        };
        assert_eq!(plan(&roomy, Method::Slow, 500 * MB, 0).work_mem, 1024 * MB);
        // Below 32 MB a session has no share to give: no workers.
        let tight = Limits {
            work_mem: 16 * MB,
            ..pg18
        };
        assert_eq!(workers(&tight, Method::Ordinary, 0), 0);
    }

    #[test]
    fn the_header_tells_an_index_build_from_other_constraints() {
        let header = |kind, slow_build, marks| ItemHeader {
            kind,
            name: "x".into(),
            table: Some("public.t".into()),
            marks,
            references: None,
            slow_build,
        };
        assert_eq!(
            Method::of(&header(ItemKind::Index, false, vec![])),
            Method::Ordinary
        );
        assert_eq!(
            Method::of(&header(ItemKind::Index, true, vec![])),
            Method::Slow
        );
        let key = Mark {
            at: 0,
            len: 1,
            is: Marked::AddKey {
                name: "t_pkey".into(),
                primary: true,
                columns: vec!["id".into()],
            },
        };
        assert_eq!(
            Method::of(&header(ItemKind::Constraint, false, vec![key])),
            Method::Ordinary
        );
        // An exclusion constraint (GiST) or a check builds nothing a worker helps.
        assert_eq!(
            Method::of(&header(ItemKind::Constraint, true, vec![])),
            Method::NotAnIndex
        );
        assert_eq!(
            Method::of(&header(ItemKind::Trigger, false, vec![])),
            Method::NotAnIndex
        );
    }
}
