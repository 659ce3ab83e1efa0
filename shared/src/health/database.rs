//! Database health from read-only queries, sent with the simple query protocol (no named
//! prepared statements) so they work through PgBouncer in transaction pooling mode. A role
//! with `pg_monitor` sees every session; without it, other roles' sessions are hidden.

use serde::{Deserialize, Serialize};
use tokio_postgres::Client;

use super::Finding;
use crate::alert::Severity;
use crate::metrics::Metric;
use crate::version::ServerVersion;

use super::query::{USER_SCHEMAS, number, rows};

/// Where figures turn into warnings and critical findings.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct DatabaseThresholds {
    /// Share of `max_connections` in use.
    pub connections_warning: f64,
    pub connections_critical: f64,
    /// Buffer cache hit ratio below this warns (once there has been real traffic).
    pub cache_hit_warning: f64,
    pub oldest_transaction_warning_seconds: f64,
    pub oldest_transaction_critical_seconds: f64,
    pub idle_in_transaction_warning_seconds: f64,
    pub idle_in_transaction_critical_seconds: f64,
    /// `age(datfrozenxid)`; wraparound stops writes at about 2.1 billion.
    pub xid_age_warning: f64,
    pub xid_age_critical: f64,
    /// WAL a replication slot holds back.
    pub slot_retained_warning_bytes: f64,
    pub slot_retained_critical_bytes: f64,
}

impl Default for DatabaseThresholds {
    fn default() -> Self {
        Self {
            connections_warning: 0.80,
            connections_critical: 0.95,
            cache_hit_warning: 0.90,
            oldest_transaction_warning_seconds: 3600.0,
            oldest_transaction_critical_seconds: 6.0 * 3600.0,
            idle_in_transaction_warning_seconds: 300.0,
            idle_in_transaction_critical_seconds: 3600.0,
            xid_age_warning: 1.0e9,
            xid_age_critical: 1.5e9,
            slot_retained_warning_bytes: 1024.0 * 1024.0 * 1024.0,
            slot_retained_critical_bytes: 16.0 * 1024.0 * 1024.0 * 1024.0,
        }
    }
}

/// A replication slot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Slot {
    pub name: String,
    pub active: bool,
    pub retained_bytes: u64,
    /// `reserved`, `extended`, `unreserved` or `lost` (the WAL it needed is gone).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wal_status: Option<String>,
}

impl Slot {
    /// A Backstop change stream's slot: read between long pauses, so inactive by nature.
    pub fn is_change_stream(&self) -> bool {
        self.name.starts_with("backstop_")
    }
}

/// An object the advice is about, with the statement that fixes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Advice {
    pub object: String,
    #[serde(rename = "message", alias = "detail")]
    pub detail: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

/// What the queries found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DatabaseFigures {
    pub database_bytes: u64,
    pub tables: u64,
    pub indexes: u64,
    pub connections: u64,
    pub max_connections: u64,
    /// `None` before there has been any block traffic.
    pub cache_hit_ratio: Option<f64>,
    pub index_hit_ratio: Option<f64>,
    /// Blocks read plus hit, to tell a cold database from a badly cached one.
    pub block_traffic: u64,
    pub oldest_transaction_seconds: f64,
    pub oldest_idle_in_transaction_seconds: f64,
    pub xid_age: u64,
    /// Checkpoints since statistics were reset: on schedule (`checkpoint_timeout`) and
    /// requested (WAL reached `max_wal_size`, or a CHECKPOINT command).
    #[serde(default)]
    pub checkpoints_timed: u64,
    #[serde(default)]
    pub checkpoints_requested: u64,
    /// `max_wal_size` as the server shows it (e.g. `1GB`).
    #[serde(default)]
    pub max_wal_size: String,
    pub slots: Vec<Slot>,
    pub invalid_indexes: Vec<Advice>,
    pub tables_without_primary_key: Vec<Advice>,
    pub unused_indexes: Vec<Advice>,
    pub foreign_keys_without_index: Vec<Advice>,
    /// Query performance: the top statements (with `pg_stat_statements`) and scan counts.
    #[serde(default)]
    pub queries: super::statements::QueryFigures,
}

impl DatabaseFigures {
    pub fn metrics(&self) -> Vec<Metric> {
        let mut metrics = vec![
            Metric::bytes("DatabaseBytes", self.database_bytes as f64),
            Metric::count("TableCount", self.tables as f64),
            Metric::count("IndexCount", self.indexes as f64),
            Metric::count("Connections", self.connections as f64),
            Metric::count("MaxConnections", self.max_connections as f64),
            Metric::seconds("OldestTransactionSeconds", self.oldest_transaction_seconds),
            Metric::seconds(
                "OldestIdleInTransactionSeconds",
                self.oldest_idle_in_transaction_seconds,
            ),
            Metric::count("TransactionIdAge", self.xid_age as f64),
            Metric::count("CheckpointsTimed", self.checkpoints_timed as f64),
            Metric::count("CheckpointsRequested", self.checkpoints_requested as f64),
            Metric::count(
                "InactiveReplicationSlots",
                self.slots.iter().filter(|s| !s.active).count() as f64,
            ),
            Metric::bytes(
                "ReplicationSlotRetainedBytes",
                self.slots
                    .iter()
                    .map(|s| s.retained_bytes)
                    .max()
                    .unwrap_or(0) as f64,
            ),
            Metric::count("InvalidIndexes", self.invalid_indexes.len() as f64),
            Metric::count(
                "TablesWithoutPrimaryKey",
                self.tables_without_primary_key.len() as f64,
            ),
            Metric::count("UnusedIndexes", self.unused_indexes.len() as f64),
            Metric::count(
                "ForeignKeysWithoutIndex",
                self.foreign_keys_without_index.len() as f64,
            ),
        ];
        metrics.extend(self.queries.metrics());
        if self.max_connections > 0 {
            metrics.push(Metric::count(
                "ConnectionUsage",
                self.connections as f64 / self.max_connections as f64,
            ));
        }
        if let Some(ratio) = self.cache_hit_ratio {
            metrics.push(Metric::count("CacheHitRatio", ratio));
        }
        if let Some(ratio) = self.index_hit_ratio {
            metrics.push(Metric::count("IndexHitRatio", ratio));
        }
        metrics
    }
}

fn level(value: f64, warning: f64, critical: f64) -> Option<Severity> {
    if value >= critical {
        Some(Severity::Critical)
    } else if value >= warning {
        Some(Severity::Warning)
    } else {
        None
    }
}

/// Judges the figures.
pub fn assess(figures: &DatabaseFigures, t: &DatabaseThresholds) -> Vec<Finding> {
    let mut findings = Vec::new();
    if figures.max_connections > 0 {
        let usage = figures.connections as f64 / figures.max_connections as f64;
        if let Some(severity) = level(usage, t.connections_warning, t.connections_critical) {
            findings.push(Finding::new(
                "connections",
                severity,
                format!(
                    "{} of {} connections in use ({:.0}%)",
                    figures.connections,
                    figures.max_connections,
                    usage * 100.0
                ),
            ).with_fix("put a pooler (PgBouncer) in front, or find idle sessions: SELECT usename, application_name, state, count(*) FROM pg_stat_activity GROUP BY 1, 2, 3 ORDER BY 4 DESC;"));
        }
    }
    if let Some(ratio) = figures.cache_hit_ratio
        && figures.block_traffic > 100_000
        && ratio < t.cache_hit_warning
    {
        findings.push(Finding::new(
            "cache_hit_ratio",
            Severity::Warning,
            format!(
                "buffer cache hit ratio is {:.1}% (below {:.0}%)",
                ratio * 100.0,
                t.cache_hit_warning * 100.0
            ),
        ));
    }
    if let Some(severity) = level(
        figures.oldest_transaction_seconds,
        t.oldest_transaction_warning_seconds,
        t.oldest_transaction_critical_seconds,
    ) {
        findings.push(Finding::new(
            "oldest_transaction",
            severity,
            format!(
                "a transaction has been open for {:.1} hours; it holds back vacuum",
                figures.oldest_transaction_seconds / 3600.0
            ),
        ).with_fix("SELECT pid, usename, application_name, xact_start, left(query, 80) FROM pg_stat_activity WHERE xact_start IS NOT NULL ORDER BY xact_start LIMIT 5;"));
    }
    if let Some(severity) = level(
        figures.oldest_idle_in_transaction_seconds,
        t.idle_in_transaction_warning_seconds,
        t.idle_in_transaction_critical_seconds,
    ) {
        findings.push(Finding::new(
            "idle_in_transaction",
            severity,
            format!(
                "a session has been idle in a transaction for {:.0} minutes",
                figures.oldest_idle_in_transaction_seconds / 60.0
            ),
        ).with_fix("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE state LIKE 'idle in transaction%' AND now() - state_change > interval '1 hour'; -- and set idle_in_transaction_session_timeout"));
    }
    if let Some(severity) = level(
        figures.xid_age as f64,
        t.xid_age_warning,
        t.xid_age_critical,
    ) {
        findings.push(Finding::new(
            "wraparound",
            severity,
            format!(
                "transaction ID age is {:.2} billion of the ~2.1 billion at which PostgreSQL stops accepting writes",
                figures.xid_age as f64 / 1e9
            ),
        ).with_fix("VACUUM (FREEZE, VERBOSE) on the tables with the oldest relfrozenxid: SELECT oid::regclass, age(relfrozenxid) FROM pg_class WHERE relkind IN ('r','m','t') ORDER BY 2 DESC LIMIT 10;"));
    }
    for slot in &figures.slots {
        let retained = level(
            slot.retained_bytes as f64,
            t.slot_retained_warning_bytes,
            t.slot_retained_critical_bytes,
        );
        if slot.wal_status.as_deref() == Some("lost") {
            let detail = match slot.is_change_stream() {
                true => format!(
                    "the change stream's slot {} was invalidated (wal_status = lost): point-in-time \
                     recovery stops at its last drain until the next drain starts a new stream and base",
                    slot.name
                ),
                false => format!(
                    "replication slot {} was invalidated (wal_status = lost): its consumer cannot continue",
                    slot.name
                ),
            };
            findings.push(
                Finding::new("replication_slot", Severity::Critical, detail).with_fix(format!(
                    "SELECT pg_drop_replication_slot('{}'); then re-create the consumer (the next `backstop stream` does it for its own)",
                    slot.name.replace('\'', "''")
                )),
            );
            continue;
        }
        let idle = !slot.active && !slot.is_change_stream();
        if idle || retained.is_some() {
            findings.push(
                Finding::new(
                    "replication_slot",
                    retained.unwrap_or(Severity::Warning),
                    format!(
                        "replication slot {} is {} and holds back {:.1} MiB of WAL",
                        slot.name,
                        if slot.active { "active" } else { "inactive" },
                        slot.retained_bytes as f64 / (1024.0 * 1024.0)
                    ),
                )
                .with_fix(format!(
                    "if its consumer is gone for good: SELECT pg_drop_replication_slot('{}');",
                    slot.name.replace('\'', "''")
                )),
            );
        }
    }
    let checkpoints = figures.checkpoints_timed + figures.checkpoints_requested;
    if checkpoints >= 10 && figures.checkpoints_requested * 2 > checkpoints {
        findings.push(
            Finding::new(
                "requested_checkpoints",
                Severity::Info,
                format!(
                    "{} of {checkpoints} checkpoints were forced by WAL volume rather than checkpoint_timeout: \
                     writes cost more I/O than they need to",
                    figures.checkpoints_requested
                ),
            )
            .with_fix(format!(
                "raise max_wal_size (now {}), e.g. ALTER SYSTEM SET max_wal_size = '4GB'; SELECT pg_reload_conf();",
                figures.max_wal_size
            )),
        );
    }
    let advice = |check: &str, severity: Severity, items: &[Advice]| {
        items
            .iter()
            .map(|a| {
                let finding = Finding::new(check, severity, format!("{}: {}", a.object, a.detail));
                match &a.fix {
                    Some(fix) => finding.with_fix(fix.clone()),
                    None => finding,
                }
            })
            .collect::<Vec<_>>()
    };
    findings.extend(advice(
        "invalid_index",
        Severity::Warning,
        &figures.invalid_indexes,
    ));
    findings.extend(advice(
        "fk_without_index",
        Severity::Info,
        &figures.foreign_keys_without_index,
    ));
    findings.extend(advice(
        "no_primary_key",
        Severity::Info,
        &figures.tables_without_primary_key,
    ));
    findings.extend(advice(
        "unused_index",
        Severity::Info,
        &figures.unused_indexes,
    ));
    findings.extend(super::statements::findings(&figures.queries));
    findings
}

/// The server's `server_version_num`, through the simple protocol (a pooler passes it on).
async fn server_version(client: &Client) -> Result<ServerVersion, String> {
    let cells = rows(client, "SHOW server_version_num").await?;
    text(cells.first().and_then(|r| r.first()))
        .parse()
        .map(ServerVersion)
        .map_err(|_| "the server did not say its version (SHOW server_version_num)".to_string())
}

/// Checkpoint counts: `pg_stat_checkpointer` from 17, `pg_stat_bgwriter` before.
fn checkpoints_query(version: ServerVersion) -> &'static str {
    if version.at_least(17) {
        "SELECT num_timed, num_requested, current_setting('max_wal_size') FROM pg_stat_checkpointer"
    } else {
        "SELECT checkpoints_timed, checkpoints_req, current_setting('max_wal_size') FROM pg_stat_bgwriter"
    }
}

fn figures_query() -> String {
    format!(
        "SELECT pg_database_size(current_database()),
           (SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind IN ('r', 'p') AND {USER_SCHEMAS}),
           (SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind IN ('i', 'I') AND {USER_SCHEMAS}),
           (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'),
           current_setting('max_connections')::int,
           (SELECT sum(blks_hit)::float8 / nullif(sum(blks_hit) + sum(blks_read), 0) FROM pg_stat_database WHERE datname = current_database()),
           (SELECT sum(idx_blks_hit)::float8 / nullif(sum(idx_blks_hit) + sum(idx_blks_read), 0) FROM pg_statio_user_indexes),
           (SELECT coalesce(sum(blks_hit) + sum(blks_read), 0) FROM pg_stat_database WHERE datname = current_database()),
           (SELECT coalesce(max(extract(epoch FROM now() - xact_start)), 0) FROM pg_stat_activity WHERE xact_start IS NOT NULL AND backend_type = 'client backend' AND pid <> pg_backend_pid() AND state <> 'idle'),
           (SELECT coalesce(max(extract(epoch FROM now() - state_change)), 0) FROM pg_stat_activity WHERE state IN ('idle in transaction', 'idle in transaction (aborted)')),
           (SELECT max(age(datfrozenxid)) FROM pg_database)"
    )
}

const SLOTS_QUERY: &str = "SELECT slot_name, active::text,
       coalesce(pg_wal_lsn_diff(CASE WHEN pg_is_in_recovery() THEN pg_last_wal_receive_lsn() ELSE pg_current_wal_lsn() END, restart_lsn), 0)::bigint,
       wal_status
   FROM pg_replication_slots ORDER BY 1";

fn invalid_indexes_query() -> String {
    format!(
        "SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname)
           FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE NOT i.indisvalid AND {USER_SCHEMAS} ORDER BY 1"
    )
}

fn no_primary_key_query() -> String {
    format!(
        "SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname)
           FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition AND {USER_SCHEMAS}
            AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conrelid = c.oid AND k.contype = 'p')
            AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')
          ORDER BY 1"
    )
}

const UNUSED_INDEXES_QUERY: &str =
    "SELECT quote_ident(s.schemaname) || '.' || quote_ident(s.indexrelname),
       pg_relation_size(s.indexrelid)
   FROM pg_stat_user_indexes s JOIN pg_index i ON i.indexrelid = s.indexrelid
  WHERE s.idx_scan = 0 AND NOT i.indisunique AND NOT i.indisprimary
    AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = s.indexrelid)
  ORDER BY 2 DESC, 1";

/// A foreign key `c` that no index of its table leads with (its columns, in any order, first).
pub(crate) const NO_LEADING_INDEX: &str = "NOT EXISTS (
                SELECT 1 FROM pg_index i
                 WHERE i.indrelid = c.conrelid
                   AND (i.indkey::int2[])[0:cardinality(c.conkey) - 1] @> c.conkey
                   AND (i.indkey::int2[])[0:cardinality(c.conkey) - 1] <@ c.conkey)";

fn fk_without_index_query() -> String {
    format!(
        "SELECT quote_ident(n.nspname) || '.' || quote_ident(t.relname), quote_ident(c.conname),
                string_agg(quote_ident(a.attname), ', ' ORDER BY k.ord), (t.relkind = 'p')::text
           FROM pg_constraint c
           JOIN pg_class t ON t.oid = c.conrelid
           JOIN pg_namespace n ON n.oid = t.relnamespace
           CROSS JOIN LATERAL unnest(c.conkey) WITH ORDINALITY AS k(attnum, ord)
           JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.attnum
          WHERE c.contype = 'f' AND c.conparentid = 0 AND {USER_SCHEMAS}
            AND {NO_LEADING_INDEX}
          GROUP BY n.nspname, t.relname, c.conname, t.relkind
          ORDER BY 1, 2"
    )
}

/// A ratio that is NULL before there has been any traffic; one that does not parse is an error.
fn ratio(cell: Option<&Option<String>>, name: &str) -> Result<Option<f64>, String> {
    match cell.and_then(|c| c.as_deref()) {
        None => Ok(None),
        Some(_) => number(cell, name).map(Some),
    }
}

fn text(cell: Option<&Option<String>>) -> String {
    cell.and_then(|c| c.clone()).unwrap_or_default()
}

/// Runs the read-only health queries.
pub async fn gather(client: &Client) -> Result<DatabaseFigures, String> {
    let version = server_version(client).await?;
    let figures = rows(client, &figures_query()).await?;
    let row = figures
        .first()
        .cloned()
        .ok_or("the health query returned no row")?;
    let checkpoints = rows(client, checkpoints_query(version))
        .await?
        .into_iter()
        .next()
        .ok_or("the checkpoint statistics query returned no row")?;
    let slots = rows(client, SLOTS_QUERY)
        .await?
        .into_iter()
        .map(|r| {
            Ok(Slot {
                name: text(r.first()),
                active: text(r.get(1)) == "true",
                retained_bytes: number::<i64>(r.get(2), "a replication slot's retained WAL")?.max(0)
                    as u64,
                wal_status: r.get(3).cloned().flatten(),
            })
        })
        .collect::<Result<_, String>>()?;
    let invalid_indexes = rows(client, &invalid_indexes_query())
        .await?
        .into_iter()
        .map(|r| {
            let index = text(r.first());
            Advice {
                detail: "invalid index (a failed CREATE INDEX CONCURRENTLY?): it is maintained on every write but never used".into(),
                fix: Some(format!("REINDEX INDEX CONCURRENTLY {index};")),
                object: index,
            }
        })
        .collect();
    let tables_without_primary_key = rows(client, &no_primary_key_query())
        .await?
        .into_iter()
        .map(|r| Advice {
            object: text(r.first()),
            detail: "no primary key: logical replication, many tools and row identity need one"
                .into(),
            fix: None,
        })
        .collect();
    let unused_indexes = rows(client, UNUSED_INDEXES_QUERY)
        .await?
        .into_iter()
        .map(|r| {
            let index = text(r.first());
            Ok(Advice {
                detail: format!(
                    "never scanned since statistics were reset ({} bytes); check replicas before dropping",
                    number::<u64>(r.get(1), "an unused index's size")?
                ),
                fix: Some(format!("DROP INDEX CONCURRENTLY {index};")),
                object: index,
            })
        })
        .collect::<Result<_, String>>()?;
    let foreign_keys_without_index = rows(client, &fk_without_index_query())
        .await?
        .into_iter()
        .map(|r| {
            let table = text(r.first());
            let columns = text(r.get(2));
            let concurrently = if text(r.get(3)) == "true" {
                "" // partitioned tables cannot build an index concurrently
            } else {
                " CONCURRENTLY"
            };
            Advice {
                detail: format!(
                    "foreign key {} on ({columns}) has no index starting with those columns: deletes and updates on the referenced table scan it",
                    text(r.get(1))
                ),
                fix: Some(format!("CREATE INDEX{concurrently} ON {table} ({columns});")),
                object: table,
            }
        })
        .collect();
    Ok(DatabaseFigures {
        database_bytes: number(row.first(), "the database size")?,
        tables: number(row.get(1), "the table count")?,
        indexes: number(row.get(2), "the index count")?,
        connections: number(row.get(3), "the connection count")?,
        max_connections: number(row.get(4), "max_connections")?,
        cache_hit_ratio: ratio(row.get(5), "the cache hit ratio")?,
        index_hit_ratio: ratio(row.get(6), "the index hit ratio")?,
        block_traffic: number(row.get(7), "the block traffic")?,
        oldest_transaction_seconds: number(row.get(8), "the oldest transaction's age")?,
        oldest_idle_in_transaction_seconds: number(
            row.get(9),
            "the oldest idle-in-transaction session's age",
        )?,
        xid_age: number(row.get(10), "the transaction ID age")?,
        checkpoints_timed: number(checkpoints.first(), "the timed checkpoint count")?,
        checkpoints_requested: number(checkpoints.get(1), "the requested checkpoint count")?,
        max_wal_size: text(checkpoints.get(2)),
        slots,
        invalid_indexes,
        tables_without_primary_key,
        unused_indexes,
        foreign_keys_without_index,
        queries: super::statements::gather(client).await?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quiet() -> DatabaseFigures {
        DatabaseFigures {
            database_bytes: 1,
            tables: 1,
            indexes: 1,
            connections: 5,
            max_connections: 100,
            cache_hit_ratio: Some(0.99),
            index_hit_ratio: Some(0.99),
            block_traffic: 1_000_000,
            oldest_transaction_seconds: 1.0,
            oldest_idle_in_transaction_seconds: 0.0,
            xid_age: 1000,
            checkpoints_timed: 40,
            checkpoints_requested: 2,
            max_wal_size: "1GB".into(),
            slots: Vec::new(),
            invalid_indexes: Vec::new(),
            tables_without_primary_key: Vec::new(),
            unused_indexes: Vec::new(),
            foreign_keys_without_index: Vec::new(),
            queries: Default::default(),
        }
    }

    #[test]
    fn figures_turn_into_findings_at_their_thresholds() {
        let t = DatabaseThresholds::default();
        assert!(assess(&quiet(), &t).is_empty());
        let mut busy = quiet();
        busy.connections = 97;
        busy.xid_age = 1_200_000_000;
        busy.oldest_idle_in_transaction_seconds = 600.0;
        busy.slots.push(Slot {
            name: "old_replica".into(),
            active: false,
            retained_bytes: 10,
            wal_status: Some("reserved".into()),
        });
        // A change stream's slot is idle between drains: only its WAL and its loss count.
        busy.slots.push(Slot {
            name: "backstop_main".into(),
            active: false,
            retained_bytes: 10,
            wal_status: Some("reserved".into()),
        });
        let found: Vec<(String, Severity)> = assess(&busy, &t)
            .into_iter()
            .map(|f| (f.check, f.severity))
            .collect();
        assert_eq!(
            found,
            [
                ("connections".to_string(), Severity::Critical),
                ("idle_in_transaction".to_string(), Severity::Warning),
                ("wraparound".to_string(), Severity::Warning),
                ("replication_slot".to_string(), Severity::Warning),
            ]
        );
    }

    #[test]
    fn checkpoints_forced_by_wal_volume_advise_a_larger_max_wal_size() {
        let mut forced = quiet();
        forced.checkpoints_requested = 50;
        let findings = assess(&forced, &DatabaseThresholds::default());
        assert_eq!(findings.len(), 1, "{findings:?}");
        assert_eq!(findings[0].check, "requested_checkpoints");
        assert_eq!(findings[0].severity, Severity::Info);
        assert!(findings[0].fix.as_deref().unwrap().contains("now 1GB"));
        // A handful of checkpoints says nothing yet.
        forced.checkpoints_timed = 1;
        forced.checkpoints_requested = 5;
        assert!(assess(&forced, &DatabaseThresholds::default()).is_empty());
    }

    #[test]
    fn a_cold_cache_is_not_a_bad_cache() {
        let mut cold = quiet();
        cold.cache_hit_ratio = Some(0.2);
        cold.block_traffic = 500;
        assert!(assess(&cold, &DatabaseThresholds::default()).is_empty());
        cold.block_traffic = 1_000_000;
        assert_eq!(
            assess(&cold, &DatabaseThresholds::default())[0].check,
            "cache_hit_ratio"
        );
    }
}
