//! The restore's last phase: the planner's statistics. Onto PostgreSQL 18 and later, the
//! backup's own (`pg_restore_relation_stats` and `pg_restore_attribute_stats`, as pg_dump 18
//! writes them), so the restored database plans like the source before any ANALYZE; before
//! 18, or for a backup without them, ANALYZE of every restored table on `jobs` connections,
//! largest first. What the target could not take, and what no target can (extended
//! statistics), is said.
//!
//! The planner scales a table's `reltuples` by its size on disk now against `relpages`, and
//! COPY extends a table many pages at a time, leaving empty ones at its end: before the
//! statistics go in, each loaded table is VACUUMed (cheap after `COPY FREEZE`, whose pages are
//! all-visible), which gives those pages back, so the sizes are the source's.

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};

use tokio_postgres::Client;

use super::{ScriptItem, StatisticsOutcome, run_batch};
use crate::item::ItemKind;
use backstop_pg::version::ServerVersion;
use backstop_pg::{Notices, PgTarget, connect, describe};

/// The first PostgreSQL that imports statistics.
const IMPORTS_STATISTICS: u32 = 18;

/// What the phase does.
#[derive(Debug, PartialEq)]
pub(super) struct StatisticsPlan<'a> {
    /// Statistics items to run, in order.
    pub apply: Vec<&'a ScriptItem>,
    /// Tables to ANALYZE (quoted names), largest first.
    pub analyze: Vec<String>,
    /// Loaded tables to VACUUM before the statistics are applied, largest first.
    pub vacuum: Vec<String>,
    /// Whether the statistics are the backup's (else ANALYZE gives them all).
    pub carried: bool,
    /// What is not carried, said to the operator.
    pub dropped: Vec<String>,
}

/// Decides the phase from the kept statistics `items`, the tables whose rows were loaded, their
/// sizes, the target's version and the tables with extended statistics.
pub(super) fn plan<'a>(
    items: &[&'a ScriptItem],
    loaded: &HashSet<String>,
    bytes: &HashMap<String, u64>,
    target: ServerVersion,
    extended: &[String],
) -> StatisticsPlan<'a> {
    let carried = target.major() >= IMPORTS_STATISTICS
        && items
            .iter()
            .any(|i| i.header.kind == ItemKind::StatisticsData);
    let mut tables: BTreeSet<String> = BTreeSet::new();
    let mut apply = Vec::new();
    for item in items {
        match item.header.kind {
            ItemKind::StatisticsData if carried => apply.push(*item),
            ItemKind::Analyze if carried => {
                tables.extend(item.header.table.clone());
            }
            _ => {}
        }
    }
    if !carried {
        // Every restored relation with statistics: the loaded tables, and those the items name
        // (materialized views, partitioned tables, tables restored without rows).
        tables.extend(loaded.iter().cloned());
        tables.extend(items.iter().filter_map(|i| i.header.table.clone()));
    }
    let largest_first = |tables: &mut Vec<String>| {
        tables.sort_by_key(|t| std::cmp::Reverse(bytes.get(t).copied().unwrap_or(0)))
    };
    // Names reach ANALYZE's text: only in the shape quote_ident writes (as the manifest's own
    // table names are held to), else said and left.
    let mut dropped = Vec::new();
    let (mut analyze, odd): (Vec<String>, Vec<String>) = tables
        .into_iter()
        .partition(|t| crate::manifest::is_identifier_path(t, 2));
    for name in odd {
        dropped.push(format!(
            "`{}` is not a quoted schema-qualified name: not ANALYZEd",
            name.escape_default()
        ));
    }
    largest_first(&mut analyze);
    let mut vacuum: Vec<String> = if carried {
        loaded.iter().cloned().collect()
    } else {
        Vec::new()
    };
    vacuum.sort();
    largest_first(&mut vacuum);
    let extended: BTreeSet<&String> = extended.iter().collect();
    if carried && !extended.is_empty() {
        dropped.push(format!(
            "extended statistics (CREATE STATISTICS) are built by ANALYZE alone: ANALYZE {} to give the planner them",
            extended
                .iter()
                .map(|t| t.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    StatisticsPlan {
        apply,
        analyze,
        vacuum,
        carried,
        dropped,
    }
}

/// Runs `plan` on `main` (the statistics) and on `jobs` connections to `target` (VACUUM and
/// ANALYZE, each session set up with `session_path`), in batches the lock table holds. The
/// database is restored by then: nothing here fails the restore. A statistic the target
/// refuses (a warning of the server's), a batch or a table that fails, is said in the outcome.
pub(super) async fn give(
    main: &Client,
    notices: &Notices,
    target: &PgTarget,
    session_path: &str,
    jobs: usize,
    plan: &StatisticsPlan<'_>,
    max_locks: usize,
) -> StatisticsOutcome {
    let mut dropped = plan.dropped.clone();
    // Each VACUUM leaves the database-wide figures to one pass at the end (which it would
    // otherwise redo per table, scanning pg_class each time).
    if !plan.vacuum.is_empty() {
        let (_, failed) = per_table(
            target,
            session_path,
            jobs,
            &plan.vacuum,
            "VACUUM (SKIP_DATABASE_STATS)",
        )
        .await;
        dropped.extend(failed);
        if let Err(e) = main.batch_execute("VACUUM (ONLY_DATABASE_STATS)").await {
            dropped.push(format!(
                "the database's vacuum figures were not updated: {}",
                describe(&e)
            ));
        }
    }
    let mut applied = 0;
    for chunk in plan.apply.chunks(max_locks.max(16)) {
        match run_batch(main, chunk).await {
            Ok(()) => applied += chunk.len(),
            // One by one, each on its own, so one relation's failure costs only its own.
            Err(_) => {
                for item in chunk {
                    match main.batch_execute(&item.sql).await {
                        Ok(()) => applied += 1,
                        Err(e) => dropped.push(format!(
                            "statistics of {} not applied: {}",
                            item.header.name,
                            describe(&e)
                        )),
                    }
                }
            }
        }
    }
    dropped.extend(
        notices
            .take()
            .into_iter()
            .filter(|n| *n.code() == tokio_postgres::error::SqlState::WARNING)
            .map(|n| format!("statistics not applied: {}", n.message())),
    );
    let (analyzed, failed) = per_table(target, session_path, jobs, &plan.analyze, "ANALYZE").await;
    dropped.extend(failed);
    if plan.carried {
        StatisticsOutcome::Applied {
            relations: applied,
            analyzed,
            dropped,
        }
    } else {
        StatisticsOutcome::Analyzed {
            tables: analyzed,
            dropped,
        }
    }
}

/// Runs `command` (ANALYZE, VACUUM) on each of `tables` on up to `jobs` connections, each
/// taking the next table as it finishes one. Returns on how many tables it ran, and a line
/// for each table it could not run on.
async fn per_table(
    target: &PgTarget,
    session_path: &str,
    jobs: usize,
    tables: &[String],
    command: &str,
) -> (usize, Vec<String>) {
    if tables.is_empty() {
        return (0, Vec::new());
    }
    let verb = command.split_whitespace().next().unwrap_or(command);
    let queue = Arc::new(Mutex::new(tables.iter().cloned().collect::<VecDeque<_>>()));
    let failures = Arc::new(Mutex::new(Vec::new()));
    let done = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let worker = || {
        let (queue, failures, done) = (queue.clone(), failures.clone(), done.clone());
        async move {
            let fail = |line: String| {
                if let Ok(mut f) = failures.lock() {
                    f.push(line);
                }
            };
            let client = match connect(target).await {
                Ok(client) => client,
                Err(e) => return fail(format!("a {verb} session could not connect: {e}")),
            };
            let setup = format!("{}{session_path}", super::preamble());
            if let Err(e) = client.batch_execute(&setup).await {
                return fail(format!(
                    "a {verb} session could not be set up: {}",
                    describe(&e)
                ));
            }
            loop {
                let next = queue.lock().ok().and_then(|mut q| q.pop_front());
                let Some(table) = next else { break };
                match client.batch_execute(&format!("{command} {table}")).await {
                    Ok(()) => {
                        done.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                    Err(e) => fail(format!(
                        "{verb} {table} failed: {}; run it by hand",
                        describe(&e)
                    )),
                }
            }
        }
    };
    futures::future::join_all((0..jobs.clamp(1, tables.len())).map(|_| worker())).await;
    let mut failures = failures.lock().map(|f| f.clone()).unwrap_or_default();
    // What no session was left to run (every one failed to connect).
    let left: Vec<String> = queue
        .lock()
        .map(|mut q| q.drain(..).collect())
        .unwrap_or_default();
    if !left.is_empty() {
        failures.push(format!("{verb} not run on {}", left.join(", ")));
    }
    (done.load(std::sync::atomic::Ordering::Relaxed), failures)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::script::ItemHeader;

    fn item(kind: ItemKind, table: &str) -> ScriptItem {
        ScriptItem {
            header: ItemHeader {
                kind,
                name: table.to_string(),
                table: Some(table.to_string()),
                marks: Vec::new(),
                references: None,
                slow_build: false,
            },
            sql: String::new(),
        }
    }

    #[test]
    fn onto_18_the_backup_statistics_are_applied_and_unreadable_tables_analyzed() {
        let stats = item(ItemKind::StatisticsData, "app.orders");
        let unreadable = item(ItemKind::Analyze, "app.secrets");
        let loaded = HashSet::from(["app.orders".to_string(), "app.secrets".to_string()]);
        let plan = plan(
            &[&stats, &unreadable],
            &loaded,
            &HashMap::new(),
            ServerVersion(180_001),
            &["app.orders".to_string()],
        );
        assert!(plan.carried);
        assert_eq!(plan.apply, [&stats]);
        assert_eq!(plan.analyze, ["app.secrets"]);
        assert_eq!(plan.vacuum, ["app.orders", "app.secrets"]);
        assert_eq!(plan.dropped.len(), 1);
        assert!(plan.dropped[0].contains("ANALYZE app.orders"));
    }

    #[test]
    fn before_18_every_restored_table_is_analyzed_largest_first() {
        let stats = item(ItemKind::StatisticsData, "app.mv");
        let loaded = HashSet::from(["app.small".to_string(), "app.big".to_string()]);
        let bytes = HashMap::from([("app.small".to_string(), 10), ("app.big".to_string(), 1000)]);
        let plan = plan(&[&stats], &loaded, &bytes, ServerVersion(170_004), &[]);
        assert!(!plan.carried && plan.apply.is_empty() && plan.dropped.is_empty());
        assert!(plan.vacuum.is_empty(), "ANALYZE sizes the tables itself");
        assert_eq!(plan.analyze, ["app.big", "app.small", "app.mv"]);
    }

    #[test]
    fn a_table_name_not_in_quote_ident_s_shape_is_said_and_never_run() {
        let hostile = item(ItemKind::Analyze, "app.t; DROP TABLE app.orders");
        let plan = plan(
            &[&hostile],
            &HashSet::new(),
            &HashMap::new(),
            ServerVersion(180_000),
            &[],
        );
        assert!(plan.analyze.is_empty());
        assert_eq!(plan.dropped.len(), 1);
        assert!(plan.dropped[0].contains("not a quoted schema-qualified name"));
    }

    #[test]
    fn a_backup_without_statistics_is_analyzed_even_onto_18() {
        let loaded = HashSet::from(["app.orders".to_string()]);
        let plan = plan(&[], &loaded, &HashMap::new(), ServerVersion(180_000), &[]);
        assert!(!plan.carried);
        assert_eq!(plan.analyze, ["app.orders"]);
    }
}
