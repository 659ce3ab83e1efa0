//! What the health readers share: a simple query's rows as text cells, a cell as a number
//! (never a silent zero), and the filter that keeps system schemas out.

use tokio_postgres::{Client, SimpleQueryMessage};

use crate::pg::describe;

/// A `WHERE` condition on `n` (a `pg_namespace` row) that keeps the system's schemas out.
pub(crate) const USER_SCHEMAS: &str = "n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp\\_%'";

/// Rows of a simple query as text cells.
pub(crate) async fn rows(client: &Client, sql: &str) -> Result<Vec<Vec<Option<String>>>, String> {
    let messages = client.simple_query(sql).await.map_err(|e| describe(&e))?;
    Ok(messages
        .into_iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(row) => Some(
                (0..row.len())
                    .map(|i| row.get(i).map(str::to_string))
                    .collect(),
            ),
            _ => None,
        })
        .collect())
}

/// The figure `name` as a number: a NULL or a value that does not parse is an error naming
/// the figure (its health is unknown), never a zero that would read as healthy.
pub(crate) fn number<T: std::str::FromStr>(
    cell: Option<&Option<String>>,
    name: &str,
) -> Result<T, String> {
    match cell.and_then(|c| c.as_deref()) {
        Some(text) => text
            .trim()
            .parse()
            .map_err(|_| format!("the server returned `{text}` for {name}, which is not a number")),
        None => Err(format!("the server returned no value for {name}")),
    }
}
