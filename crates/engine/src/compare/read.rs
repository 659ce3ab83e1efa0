//! The database side of a comparison: finding the two tables, their columns and the live
//! table's key in the catalog, then counting the differences in one read-only snapshot.

use std::time::Duration;

use backstop_pg::session::Purpose;
use backstop_pg::version::ServerVersion;
use backstop_pg::{PgTarget, describe, value};
use tokio_postgres::{Client, Row};

use super::plan::{Column, GivenName, Identity, KeyIndex, MatchedOn, Table, parse_name, plan};
use super::{CompareError, Comparison, EXAMPLE_CHARS, Found, LOCK_WAIT};
use crate::script::inert;

/// An example value as shown: cut to [`EXAMPLE_CHARS`] characters, control characters escaped.
fn shown_value(text: &str) -> String {
    let mut chars = text.chars();
    let head: String = chars.by_ref().take(EXAMPLE_CHARS).collect();
    let cut = if chars.next().is_some() { "…" } else { "" };
    format!("{}{cut}", inert(&head))
}

/// Compares `table` with `with`, its copy restored beside it, in the database at `target`,
/// stopping if the server stops answering for `silence_limit`. Nothing is changed.
pub async fn compare(
    target: &PgTarget,
    table: &str,
    with: &str,
    silence_limit: Duration,
) -> Result<Comparison, CompareError> {
    let bad = |given: &str| {
        let given = given.to_string();
        move |reason| CompareError::BadName {
            given: inert(&given),
            reason,
        }
    };
    let live_name = parse_name(table).map_err(bad(table))?;
    let recovered_name = parse_name(with).map_err(bad(with))?;
    let database = inert(&backstop_pg::database_name(target).unwrap_or_default());
    tokio::select! {
        biased;
        compared = compare_unwatched(target, &database, (table, &live_name), (with, &recovered_name)) => compared,
        reason = backstop_pg::liveness::silence(target, silence_limit) => {
            Err(CompareError::ServerSilent { database, reason })
        }
    }
}

async fn compare_unwatched(
    target: &PgTarget,
    database: &str,
    (table, live_name): (&str, &GivenName),
    (with, recovered_name): (&str, &GivenName),
) -> Result<Comparison, CompareError> {
    let client = backstop_pg::connect(target).await?;
    ServerVersion::read_supported(&client).await?;
    client
        .batch_execute(
            &Purpose::Compare {
                lock_timeout: LOCK_WAIT,
            }
            .setup(),
        )
        .await
        .map_err(failed("starting a read-only transaction"))?;
    let live = resolve(&client, database, table, live_name).await?;
    let recovered = resolve(&client, database, with, recovered_name).await?;
    if live.oid == recovered.oid {
        return Err(CompareError::SameTable {
            table: live.shown(),
        });
    }
    let keys = key_indexes(&client, live.oid).await?;
    let plan = plan(live, recovered, &keys)?;
    let locked = |e: tokio_postgres::Error| match e.code() {
        Some(code) if *code == tokio_postgres::error::SqlState::LOCK_NOT_AVAILABLE => {
            CompareError::Locked {
                tables: format!("{} or {}", plan.live.shown(), plan.recovered.shown()),
                waited: LOCK_WAIT.as_secs(),
                reason: describe(&e),
            }
        }
        _ => failed("reading the rows")(e),
    };
    if let Some(sql) = plan.duplicates_query() {
        let rows = client.query(&sql, &[]).await.map_err(&locked)?;
        let duplicates = found(&rows, "looking for repeated keys")?;
        if duplicates.rows > 0 {
            return Err(CompareError::DuplicateKeys {
                table: plan.live.shown(),
                recovered: plan.recovered.shown(),
                count: duplicates.rows,
                example: duplicates
                    .example_keys
                    .first()
                    .map(|key| key_text(&plan.key_columns, key))
                    .unwrap_or_default(),
            });
        }
    }
    let missing = found(
        &client
            .query(&plan.missing_query(), &[])
            .await
            .map_err(&locked)?,
        "counting missing rows",
    )?;
    let extra = found(
        &client
            .query(&plan.extra_query(), &[])
            .await
            .map_err(&locked)?,
        "counting extra rows",
    )?;
    let changed = match (plan.matched_on, plan.changed_query()) {
        (MatchedOn::WholeRow, _) => None,
        (_, None) => Some(Found::default()),
        (_, Some(sql)) => Some(found(
            &client.query(&sql, &[]).await.map_err(&locked)?,
            "counting changed rows",
        )?),
    };
    let step = "reading the snapshot's time";
    let row = client
        .query_one(
            "SELECT pg_catalog.to_char(pg_catalog.now() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')",
            &[],
        )
        .await
        .map_err(failed(step))?;
    let checked_at: String = value(&row, 0).map_err(shape(step))?;
    client
        .batch_execute("ROLLBACK")
        .await
        .map_err(failed("ending the read-only transaction"))?;
    Ok(Comparison {
        plan,
        checked_at,
        missing,
        extra,
        changed,
    })
}

fn failed(step: &'static str) -> impl Fn(tokio_postgres::Error) -> CompareError {
    move |e| CompareError::Database {
        step,
        reason: describe(&e),
    }
}

fn shape(step: &'static str) -> impl Fn(String) -> CompareError {
    move |reason| CompareError::Database { step, reason }
}

/// A count and example keys from rows of `(count, key values...)`.
fn found(rows: &[Row], step: &'static str) -> Result<Found, CompareError> {
    let mut found = Found::default();
    for row in rows {
        let count: i64 = value(row, 0).map_err(shape(step))?;
        found.rows = u64::try_from(count).unwrap_or_default();
        let mut key = Vec::new();
        for i in 1..row.len() {
            let text: Option<String> = value(row, i).map_err(shape(step))?;
            key.push(text.as_deref().map(shown_value));
        }
        found.example_keys.push(key);
    }
    Ok(found)
}

/// A key as people read it: `id=3`, or `(a=1, b=x)` for several columns.
pub fn key_text(columns: &[String], key: &[Option<String>]) -> String {
    let parts: Vec<String> = columns
        .iter()
        .zip(key)
        .map(|(c, v)| format!("{}={}", inert(c), v.as_deref().unwrap_or("NULL")))
        .collect();
    match parts.as_slice() {
        [one] => one.clone(),
        _ => format!("({})", parts.join(", ")),
    }
}

/// The one table `given` names: a plain or partitioned table, outside the system schemas
/// unless a schema is named.
async fn resolve(
    client: &Client,
    database: &str,
    given: &str,
    name: &GivenName,
) -> Result<Table, CompareError> {
    let step = "looking up the tables";
    let rows = client
        .query(
            "SELECT c.oid, n.nspname::text, c.relname::text, c.relkind = 'p' \
             FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
             WHERE c.relkind IN ('r', 'p') \
               AND CASE WHEN $4 THEN c.relname::text = $3::text \
                        ELSE pg_catalog.lower(c.relname::text) = pg_catalog.lower($3::text) END \
               AND CASE WHEN $1::text IS NULL \
                          THEN n.nspname::text NOT IN ('pg_catalog', 'information_schema') \
                               AND n.nspname::text !~ '^pg_(toast|temp_)' \
                        WHEN $2 THEN n.nspname::text = $1::text \
                        ELSE pg_catalog.lower(n.nspname::text) = pg_catalog.lower($1::text) END \
             ORDER BY 2, 3",
            &[
                &name.schema.as_ref().map(|s| s.text.as_str()),
                &name.schema.as_ref().is_some_and(|s| s.exact),
                &name.table.text,
                &name.table.exact,
            ],
        )
        .await
        .map_err(failed(step))?;
    let mut tables = Vec::new();
    for row in &rows {
        tables.push(Table {
            oid: value(row, 0).map_err(shape(step))?,
            schema: value(row, 1).map_err(shape(step))?,
            name: value(row, 2).map_err(shape(step))?,
            partitioned: value(row, 3).map_err(shape(step))?,
            columns: Vec::new(),
        });
    }
    let mut table = match tables.len() {
        1 => tables.remove(0),
        0 => {
            return Err(CompareError::NoSuchTable {
                given: inert(given),
                database: database.to_string(),
            });
        }
        count => {
            return Err(CompareError::Ambiguous {
                given: inert(given),
                database: database.to_string(),
                count,
                tables: tables
                    .iter()
                    .map(Table::shown)
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        }
    };
    table.columns = columns(client, table.oid).await?;
    Ok(table)
}

async fn columns(client: &Client, oid: u32) -> Result<Vec<Column>, CompareError> {
    let step = "reading the tables' columns";
    let rows = client
        .query(
            "SELECT a.attname::text, a.atttypid, pg_catalog.format_type(a.atttypid, a.atttypmod), \
                    a.attgenerated <> '', a.attidentity::text \
             FROM pg_catalog.pg_attribute a \
             WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
            &[&oid],
        )
        .await
        .map_err(failed(step))?;
    let mut columns = Vec::new();
    for row in &rows {
        let identity: String = value(row, 4).map_err(shape(step))?;
        columns.push(Column {
            name: value(row, 0).map_err(shape(step))?,
            type_oid: value(row, 1).map_err(shape(step))?,
            type_name: value(row, 2).map_err(shape(step))?,
            generated: value(row, 3).map_err(shape(step))?,
            identity: Identity::from_code(&identity),
        });
    }
    Ok(columns)
}

/// The live table's primary key and replica identity index (`relreplident = 'i'`), if any.
async fn key_indexes(client: &Client, oid: u32) -> Result<Vec<KeyIndex>, CompareError> {
    let step = "reading the table's key";
    let rows = client
        .query(
            "SELECT ic.relname::text, i.indisprimary, \
                    pg_catalog.array_agg(a.attname::text ORDER BY k.ord) \
             FROM pg_catalog.pg_index i \
             JOIN pg_catalog.pg_class c ON c.oid = i.indrelid \
             JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid \
             CROSS JOIN LATERAL pg_catalog.unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord) \
             JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum \
             WHERE i.indrelid = $1 AND (i.indisprimary OR (c.relreplident = 'i' AND i.indisreplident)) \
               AND k.ord <= i.indnkeyatts \
             GROUP BY ic.relname, i.indisprimary \
             ORDER BY i.indisprimary DESC, 1",
            &[&oid],
        )
        .await
        .map_err(failed(step))?;
    let mut keys = Vec::new();
    for row in &rows {
        keys.push(KeyIndex {
            name: value(row, 0).map_err(shape(step))?,
            primary: value(row, 1).map_err(shape(step))?,
            columns: value(row, 2).map_err(shape(step))?,
        });
    }
    Ok(keys)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn examples_are_cut_short_and_escaped() {
        assert_eq!(shown_value("a\u{1b}[31mb"), "a\\u{1b}[31mb");
        let long = "x".repeat(EXAMPLE_CHARS + 5);
        assert_eq!(
            shown_value(&long),
            format!("{}…", "x".repeat(EXAMPLE_CHARS))
        );
        let columns = ["id".to_string()];
        assert_eq!(key_text(&columns, &[Some("3".into())]), "id=3");
        let columns = ["a".to_string(), "b".to_string()];
        assert_eq!(
            key_text(&columns, &[Some("1".into()), None]),
            "(a=1, b=NULL)"
        );
    }
}
