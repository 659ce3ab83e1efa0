//! Query performance: the statements that took the most time (from `pg_stat_statements`, when
//! the extension is installed in the database), and how tables are read (sequential against
//! index scans), as figures, advice-level findings and metrics.

use serde::{Deserialize, Serialize};
use tokio_postgres::Client;

use super::Finding;
use super::query::{USER_SCHEMAS, number, rows};
use crate::alert::Severity;
use crate::metrics::Metric;

/// Statements reported, slowest first by total time.
pub const TOP: usize = 5;
/// Characters of a statement's normalized text kept.
const TEXT_LIMIT: usize = 200;

/// One normalized statement.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Statement {
    /// Normalized text (`$1` for constants), whitespace folded, cut to 200 characters.
    pub query: String,
    pub calls: u64,
    pub total_ms: f64,
    pub mean_ms: f64,
}

/// How the database is queried.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct QueryFigures {
    /// Whether `pg_stat_statements` is installed here (without it, `top` is empty).
    pub statements_available: bool,
    pub top: Vec<Statement>,
    /// Scans of user tables since statistics were reset.
    pub sequential_scans: u64,
    pub index_scans: u64,
}

impl QueryFigures {
    pub fn metrics(&self) -> Vec<Metric> {
        let mut metrics = vec![
            Metric::count("SequentialScans", self.sequential_scans as f64),
            Metric::count("IndexScans", self.index_scans as f64),
        ];
        if let Some(top) = self.top.first() {
            metrics.push(Metric::seconds(
                "TopStatementTotalSeconds",
                top.total_ms / 1000.0,
            ));
            metrics.push(Metric::seconds(
                "TopStatementMeanSeconds",
                top.mean_ms / 1000.0,
            ));
        }
        metrics
    }
}

/// The top statements as advice: where the database's time goes.
pub fn findings(figures: &QueryFigures) -> Vec<Finding> {
    figures
        .top
        .iter()
        .enumerate()
        .map(|(rank, s)| {
            Finding::new(
                "slow_statement",
                Severity::Info,
                format!(
                    "statement #{} by total time: {:.0} ms in {} call(s), {:.1} ms each: {}",
                    rank + 1,
                    s.total_ms,
                    s.calls,
                    s.mean_ms,
                    s.query
                ),
            )
        })
        .collect()
}

/// Folds whitespace and cuts the text to [`TEXT_LIMIT`] characters.
fn normalize(query: &str) -> String {
    let folded = query.split_whitespace().collect::<Vec<_>>().join(" ");
    if folded.chars().count() > TEXT_LIMIT {
        folded.chars().take(TEXT_LIMIT - 1).collect::<String>() + "…"
    } else {
        folded
    }
}

/// Reads the figures (simple queries, so they work through a transaction pooler).
pub async fn gather(client: &Client) -> Result<QueryFigures, String> {
    let scans = rows(
        client,
        &format!(
            "SELECT coalesce(sum(s.seq_scan), 0)::bigint, coalesce(sum(s.idx_scan), 0)::bigint
               FROM pg_stat_user_tables s JOIN pg_namespace n ON n.nspname = s.schemaname
              WHERE {USER_SCHEMAS}"
        ),
    )
    .await?;
    let row = scans.first().cloned().unwrap_or_default();
    let mut figures = QueryFigures {
        statements_available: false,
        top: Vec::new(),
        sequential_scans: number(row.first(), "the sequential scans")?,
        index_scans: number(row.get(1), "the index scans")?,
    };
    // The view lives in the extension's schema; find it rather than assume `public`.
    let schema = rows(
        client,
        "SELECT quote_ident(n.nspname) FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
          WHERE e.extname = 'pg_stat_statements'",
    )
    .await?;
    let Some(schema) = schema.first().and_then(|r| r.first().cloned().flatten()) else {
        return Ok(figures);
    };
    let top = rows(
        client,
        &format!(
            "SELECT query, calls, total_exec_time, mean_exec_time
               FROM {schema}.pg_stat_statements
              WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
                AND query NOT LIKE '%pg_stat_statements%'
              ORDER BY total_exec_time DESC LIMIT {TOP}"
        ),
    )
    .await;
    // Installed but not preloaded, the view refuses to be read: say nothing rather than fail.
    let Ok(top) = top else {
        return Ok(figures);
    };
    figures.statements_available = true;
    for r in top {
        figures.top.push(Statement {
            query: normalize(r.first().cloned().flatten().as_deref().unwrap_or("")),
            calls: number(r.get(1), "a statement's calls")?,
            total_ms: number(r.get(2), "a statement's total time")?,
            mean_ms: number(r.get(3), "a statement's mean time")?,
        });
    }
    Ok(figures)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_slowest_statements_become_advice_and_metrics() {
        let figures = QueryFigures {
            statements_available: true,
            top: vec![Statement {
                query: normalize("SELECT   count(*)\n FROM orders WHERE customer_id = $1"),
                calls: 40,
                total_ms: 1200.0,
                mean_ms: 30.0,
            }],
            sequential_scans: 7,
            index_scans: 90,
        };
        let found = findings(&figures);
        assert_eq!(found[0].severity, Severity::Info);
        assert!(
            found[0]
                .message
                .ends_with("SELECT count(*) FROM orders WHERE customer_id = $1")
        );
        let metrics = figures.metrics();
        let total = metrics
            .iter()
            .find(|m| m.name == "TopStatementTotalSeconds")
            .unwrap();
        assert_eq!(total.value, 1.2);
        assert_eq!(normalize(&"x".repeat(500)).chars().count(), TEXT_LIMIT);
    }
}
