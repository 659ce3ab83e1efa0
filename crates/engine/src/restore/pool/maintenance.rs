//! The target's parallel maintenance workers for an index build: how many a build may use so
//! that the restore's connections and their workers stay within `--jobs`, and the session
//! settings that give them.
//!
//! PostgreSQL builds btree indexes with parallel workers since 11, BRIN since 17 and GIN since
//! 18 (GiST, SP-GiST and hash never). It plans a build's workers as `plan_create_index_workers`
//! does: none below `min_parallel_table_scan_size` of heap, one at that size and one more for
//! each tripling, at most `max_parallel_maintenance_workers`, and only as many as leave every
//! participant (the leader too) 32 MB of `maintenance_work_mem`; the workers come from the
//! server's pool (`max_parallel_workers`, `max_worker_processes`). A restore session runs with
//! no workers; a build gets them only from connections that have nothing else to do.

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

/// The pool when a build is about to start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Situation {
    /// `--jobs`: connections plus the workers lent to builds never exceed it.
    pub jobs: usize,
    /// Connections running a job, the one about to build among them.
    pub running: usize,
    /// Workers already lent to other builds.
    pub lent: usize,
    /// Jobs waiting for a connection: while there are any, no connection is spare.
    pub queued: usize,
}

impl Situation {
    /// Connections with nothing to do, whose places a build may take for its workers.
    pub fn spare(&self) -> usize {
        match self.queued {
            0 => self.jobs.saturating_sub(self.running + self.lent),
            _ => 0,
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

/// How many workers a build of `method` on a table of `heap_bytes` gets.
///
/// Workers only take the places of spare connections (none while jobs are queued), never more
/// than the server would plan for the table's size, its `max_parallel_maintenance_workers`
/// and its pool allow. Each participant needs 32 MB of `maintenance_work_mem`: the build's
/// session is given that much when its own is less, which a session of at least 32 MB always
/// affords (the memory of the connections whose places the workers take); below 32 MB, none.
pub(super) fn plan(
    limits: &Limits,
    method: Method,
    heap_bytes: u64,
    situation: Situation,
) -> BuildPlan {
    let none = BuildPlan {
        workers: 0,
        work_mem: limits.work_mem,
    };
    if !limits.builds_in_parallel(method) || limits.work_mem < WORK_MEM_PER_PARTICIPANT {
        return none;
    }
    let workers = situation
        .spare()
        .min(workers_for_size(heap_bytes, limits.min_table_scan))
        .min(limits.maintenance_workers)
        .min(limits.parallel_workers)
        .min(limits.worker_processes);
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

    /// `jobs` connections, `running` of them busy (the building one among them), nothing queued.
    fn idle(jobs: usize, running: usize) -> Situation {
        Situation {
            jobs,
            running,
            lent: 0,
            queued: 0,
        }
    }

    fn workers(limits: &Limits, method: Method, situation: Situation) -> usize {
        plan(limits, method, 500 * MB, situation).workers
    }

    #[test]
    fn btree_builds_take_a_spare_connection_on_every_version_gin_from_18() {
        for major in 13..=18 {
            assert_eq!(workers(&server(major), Method::Ordinary, idle(2, 1)), 1);
            let gin = workers(&server(major), Method::Slow, idle(2, 1));
            assert_eq!(gin, usize::from(major >= 18), "GIN on {major}");
            assert_eq!(workers(&server(major), Method::NotAnIndex, idle(2, 1)), 0);
        }
    }

    #[test]
    fn busy_connections_and_queued_jobs_lend_nothing() {
        let pg18 = server(18);
        // Both connections building or loading.
        assert_eq!(workers(&pg18, Method::Slow, idle(2, 2)), 0);
        // The other connection is between jobs, but a job waits for it.
        let queued = Situation {
            queued: 1,
            ..idle(2, 1)
        };
        assert_eq!(workers(&pg18, Method::Slow, queued), 0);
        // The spare connection is already lent to another build.
        let lent = Situation {
            lent: 1,
            ..idle(2, 1)
        };
        assert_eq!(workers(&pg18, Method::Ordinary, lent), 0);
        // One --jobs: never a worker.
        assert_eq!(workers(&pg18, Method::Ordinary, idle(1, 1)), 0);
        // Four connections, one other busy, one lent: one left.
        let four = Situation {
            lent: 1,
            ..idle(4, 2)
        };
        assert_eq!(workers(&pg18, Method::Ordinary, four), 1);
    }

    #[test]
    fn the_table_size_and_the_servers_settings_cap_the_workers() {
        let pg18 = server(18);
        let all_spare = idle(8, 1);
        let by_size = |bytes| plan(&pg18, Method::Ordinary, bytes, all_spare).workers;
        let uncapped = Limits {
            maintenance_workers: 8,
            work_mem: 1024 * MB,
            ..pg18
        };
        let sized = |bytes| plan(&uncapped, Method::Ordinary, bytes, all_spare).workers;
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
        assert_eq!(workers(&off, Method::Ordinary, all_spare), 0);
        let no_pool = Limits {
            parallel_workers: 0,
            ..pg18
        };
        assert_eq!(workers(&no_pool, Method::Ordinary, all_spare), 0);
        let few_processes = Limits {
            worker_processes: 1,
            ..pg18
        };
        assert_eq!(workers(&few_processes, Method::Ordinary, all_spare), 1);
    }

    #[test]
    fn each_participant_gets_32_mb_of_maintenance_work_mem() {
        let pg18 = server(18);
        // The default 64 MB is one worker's and the leader's share.
        let one = plan(&pg18, Method::Slow, 500 * MB, idle(2, 1));
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
        let two = plan(&pg18, Method::Slow, 500 * MB, idle(3, 1));
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
        assert_eq!(
            plan(&roomy, Method::Slow, 500 * MB, idle(3, 1)).work_mem,
            1024 * MB
        );
        // Below 32 MB a session has no share to give: no workers.
        let tight = Limits {
            work_mem: 16 * MB,
            ..pg18
        };
        assert_eq!(workers(&tight, Method::Ordinary, idle(2, 1)), 0);
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
