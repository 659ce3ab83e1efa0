//! The connection pooler's health: PgBouncer's admin console (`SHOW POOLS`, `SHOW STATS`, read
//! by column name so every version's columns are taken as they come) turned into figures per
//! pool and findings: clients waiting for a server connection, and how long the longest has
//! waited.

use serde::{Deserialize, Serialize};

use super::Finding;
use crate::alert::Severity;
use crate::metrics::Metric;
use crate::pg::PgTarget;

/// One pool (a database and user pair) as the pooler reports it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pool {
    pub database: String,
    pub user: String,
    pub clients_active: u64,
    pub clients_waiting: u64,
    pub servers_active: u64,
    pub servers_idle: u64,
    /// How long the oldest waiting client has waited.
    pub max_wait_seconds: f64,
    pub mode: Option<String>,
}

/// What the pooler says of the pools of one database (or all, when no database is named).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PoolerFigures {
    pub pools: Vec<Pool>,
    /// Average time a client waited for a server connection, per database, over the last
    /// statistics period (`SHOW STATS` `avg_wait_time`), when the version reports it.
    pub avg_wait_seconds: Option<f64>,
    /// Transactions and queries per second over that period, when reported.
    pub transactions_per_second: Option<f64>,
}

/// When the pooler's figures worry.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PoolerThresholds {
    /// The longest wait from which clients waiting is critical rather than a warning.
    pub critical_wait_seconds: f64,
}

impl Default for PoolerThresholds {
    fn default() -> Self {
        Self {
            critical_wait_seconds: 10.0,
        }
    }
}

impl PoolerFigures {
    pub fn metrics(&self) -> Vec<Metric> {
        let sum = |f: fn(&Pool) -> u64| self.pools.iter().map(f).sum::<u64>() as f64;
        let mut metrics = vec![
            Metric::count("PoolerClientsActive", sum(|p| p.clients_active)),
            Metric::count("PoolerClientsWaiting", sum(|p| p.clients_waiting)),
            Metric::count("PoolerServersActive", sum(|p| p.servers_active)),
            Metric::count("PoolerServersIdle", sum(|p| p.servers_idle)),
            Metric::seconds(
                "PoolerMaxWaitSeconds",
                self.pools
                    .iter()
                    .map(|p| p.max_wait_seconds)
                    .fold(0.0, f64::max),
            ),
        ];
        if let Some(wait) = self.avg_wait_seconds {
            metrics.push(Metric::seconds("PoolerAvgWaitSeconds", wait));
        }
        metrics
    }
}

/// Findings from the pooler's figures: clients waiting warn; waiting past the threshold is
/// critical (the application is queueing for connections).
pub fn assess(figures: &PoolerFigures, thresholds: &PoolerThresholds) -> Vec<Finding> {
    figures
        .pools
        .iter()
        .filter(|p| p.clients_waiting > 0)
        .map(|p| {
            let severity = if p.max_wait_seconds >= thresholds.critical_wait_seconds {
                Severity::Critical
            } else {
                Severity::Warning
            };
            let mut finding = Finding::new(
                "pooler_clients_waiting",
                severity,
                format!(
                    "clients waiting: {} client(s) of pool {}/{} wait for a server connection \
                     (the longest {:.1} s; {} server connection(s) active, {} idle)",
                    p.clients_waiting,
                    p.database,
                    p.user,
                    p.max_wait_seconds,
                    p.servers_active,
                    p.servers_idle
                ),
            );
            finding.fix = Some(
                "raise the pool's default_pool_size (or pool_size) if the server has room, or find \
                 what holds server connections (long transactions, idle in transaction)"
                    .into(),
            );
            finding
        })
        .collect()
}

/// A row of an admin-console answer, by column name.
struct Named {
    columns: Vec<String>,
    values: Vec<Option<String>>,
}

impl Named {
    fn text(&self, name: &str) -> Option<&str> {
        let i = self.columns.iter().position(|c| c == name)?;
        self.values.get(i)?.as_deref()
    }

    fn number(&self, name: &str) -> u64 {
        self.text(name)
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    }
}

async fn show(client: &tokio_postgres::Client, what: &str) -> Result<Vec<Named>, String> {
    let messages = client
        .simple_query(&format!("SHOW {what}"))
        .await
        .map_err(|e| format!("SHOW {what} on the pooler: {}", crate::pg::describe(&e)))?;
    Ok(messages
        .into_iter()
        .filter_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(row) => Some(Named {
                columns: row.columns().iter().map(|c| c.name().to_string()).collect(),
                values: (0..row.len())
                    .map(|i| row.get(i).map(str::to_string))
                    .collect(),
            }),
            _ => None,
        })
        .collect())
}

/// Reads the pools of `database` (every pool but the console's own when `None`) from the
/// admin console `console` connects to (a user in `admin_users` or `stats_users`, database
/// `pgbouncer`).
pub async fn gather(console: &PgTarget, database: Option<&str>) -> Result<PoolerFigures, String> {
    let client = crate::pg::connect(console)
        .await
        .map_err(|e| format!("cannot reach the pooler's admin console: {e}"))?;
    let wanted = |name: &str| name != "pgbouncer" && database.is_none_or(|d| d == name);
    let pools = show(&client, "POOLS")
        .await?
        .into_iter()
        .filter(|row| row.text("database").is_some_and(wanted))
        .map(|row| {
            // maxwait is whole seconds, maxwait_us the microseconds past it (1.8+).
            let max_wait = row.number("maxwait") as f64 + row.number("maxwait_us") as f64 / 1e6;
            Pool {
                database: row.text("database").unwrap_or_default().to_string(),
                user: row.text("user").unwrap_or_default().to_string(),
                clients_active: row.number("cl_active"),
                clients_waiting: row.number("cl_waiting"),
                servers_active: row.number("sv_active"),
                servers_idle: row.number("sv_idle"),
                max_wait_seconds: max_wait,
                mode: row.text("pool_mode").map(str::to_string),
            }
        })
        .collect();
    let stats: Vec<Named> = show(&client, "STATS")
        .await?
        .into_iter()
        .filter(|row| row.text("database").is_some_and(wanted))
        .collect();
    let average = |column: &str| -> Option<f64> {
        let values: Vec<u64> = stats
            .iter()
            .filter(|row| row.text(column).is_some())
            .map(|row| row.number(column))
            .collect();
        (!values.is_empty()).then(|| values.iter().sum::<u64>() as f64 / values.len() as f64)
    };
    Ok(PoolerFigures {
        pools,
        // avg_wait_time is in microseconds.
        avg_wait_seconds: average("avg_wait_time").map(|us| us / 1e6),
        transactions_per_second: average("avg_xact_count"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool(waiting: u64, wait: f64) -> Pool {
        Pool {
            database: "app".into(),
            user: "web".into(),
            clients_active: 10,
            clients_waiting: waiting,
            servers_active: 10,
            servers_idle: 0,
            max_wait_seconds: wait,
            mode: Some("transaction".into()),
        }
    }

    #[test]
    fn waiting_clients_warn_and_a_long_wait_is_critical() {
        let figures = |pools| PoolerFigures {
            pools,
            avg_wait_seconds: Some(0.2),
            transactions_per_second: None,
        };
        let t = PoolerThresholds::default();
        assert!(assess(&figures(vec![pool(0, 0.0)]), &t).is_empty());
        let waiting = assess(&figures(vec![pool(3, 1.5)]), &t);
        assert_eq!(waiting[0].severity, Severity::Warning);
        assert!(
            waiting[0]
                .message
                .starts_with("clients waiting: 3 client(s) of pool app/web")
        );
        assert_eq!(
            assess(&figures(vec![pool(3, 12.0)]), &t)[0].severity,
            Severity::Critical
        );
        let metrics = figures(vec![pool(3, 1.5), pool(1, 4.0)]).metrics();
        let waiting_metric = metrics
            .iter()
            .find(|m| m.name == "PoolerClientsWaiting")
            .unwrap();
        assert_eq!(waiting_metric.value, 4.0);
    }
}
