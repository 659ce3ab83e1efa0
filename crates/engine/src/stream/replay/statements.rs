//! The SQL each streamed change becomes on the restored table: an INSERT that leaves generated
//! columns out, an UPDATE that sets only what changed, and the condition that finds the one row
//! an UPDATE or DELETE touched (its replica identity's key, or the whole old row).

use super::super::StreamError;
use super::super::decoding::{Column, TableName, Value};
use crate::catalog::{ident, literal};

/// How a restored table's rows are found and written.
#[derive(Debug, Clone)]
pub(super) struct TableShape {
    pub(super) columns: Vec<ColumnShape>,
    /// The replica identity's columns (the primary key unless another index was named).
    pub(super) key: Vec<String>,
    /// `REPLICA IDENTITY FULL`: without a key, the whole old row finds it.
    pub(super) full: bool,
}

#[derive(Debug, Clone)]
pub(super) struct ColumnShape {
    pub(super) name: String,
    pub(super) generated: bool,
    pub(super) always_identity: bool,
}

fn sql_value(value: &Value) -> Option<String> {
    match value {
        Value::Null => Some("NULL".into()),
        Value::Text(text) => Some(literal(text)),
        Value::UnchangedToast => None,
    }
}

fn column_shape<'a>(shape: &'a TableShape, name: &str) -> Option<&'a ColumnShape> {
    shape.columns.iter().find(|c| c.name == name)
}

pub(super) fn insert(
    table: &TableName,
    shape: &TableShape,
    new: &[Column],
    at: &str,
) -> Result<String, StreamError> {
    let mut names = Vec::new();
    let mut values = Vec::new();
    for column in new {
        let known =
            column_shape(shape, &column.name).ok_or_else(|| unknown_column(table, column, at))?;
        if known.generated {
            continue;
        }
        names.push(ident(&column.name));
        values.push(sql_value(&column.value).ok_or_else(|| StreamError::Replay {
            what: format!("INSERT into {table} ({at})"),
            reason: "the stream holds no value for a TOASTed column".into(),
        })?);
    }
    let overriding = match shape.columns.iter().any(|c| c.always_identity) {
        true => " OVERRIDING SYSTEM VALUE",
        false => "",
    };
    Ok(match names.is_empty() {
        true => format!("INSERT INTO {table} DEFAULT VALUES"),
        false => format!(
            "INSERT INTO {table} ({}){overriding} VALUES ({})",
            names.join(", "),
            values.join(", ")
        ),
    })
}

/// `None`: nothing to set (only unchanged TOASTed values).
pub(super) fn update(
    table: &TableName,
    shape: &TableShape,
    old: Option<&[Column]>,
    new: &[Column],
    at: &str,
) -> Result<Option<String>, StreamError> {
    let filter = row_filter(table, shape, old, Some(new), at)?;
    let mut sets = Vec::new();
    for column in new {
        let known =
            column_shape(shape, &column.name).ok_or_else(|| unknown_column(table, column, at))?;
        if known.generated {
            continue;
        }
        let Some(value) = sql_value(&column.value) else {
            continue;
        };
        // A key the change did not move (no old key printed, or the same value) is not set.
        let before = old
            .and_then(|o| o.iter().find(|c| c.name == column.name))
            .map(|c| &c.value);
        let unmoved = match before {
            Some(before) => *before == column.value,
            None => old.is_none() && shape.key.contains(&column.name),
        };
        if unmoved {
            continue;
        }
        if known.always_identity {
            return Err(StreamError::Replay {
                what: format!("UPDATE of {table} ({at})"),
                reason: format!(
                    "it changes {}, a GENERATED ALWAYS identity column, which an UPDATE cannot set",
                    ident(&column.name)
                ),
            });
        }
        sets.push(format!("{} = {value}", ident(&column.name)));
    }
    if sets.is_empty() {
        return Ok(None);
    }
    Ok(Some(format!(
        "UPDATE ONLY {table} SET {} WHERE {filter}",
        sets.join(", ")
    )))
}

/// The condition that finds the changed row: its key, or (`REPLICA IDENTITY FULL` without a
/// key) the whole old row, one row of any duplicates.
pub(super) fn row_filter(
    table: &TableName,
    shape: &TableShape,
    old: Option<&[Column]>,
    new: Option<&[Column]>,
    at: &str,
) -> Result<String, StreamError> {
    let unreplayable = || StreamError::Replay {
        what: format!("an UPDATE or DELETE on {table} ({at})"),
        reason: format!(
            "the table has no replica identity, so the change does not say which row it touched; \
             fix the source with ALTER TABLE {table} REPLICA IDENTITY FULL (or give it a primary \
             key), and restore to a time before this one"
        ),
    };
    if !shape.key.is_empty() {
        let source = old.or(new).ok_or_else(unreplayable)?;
        let mut terms = Vec::new();
        for key in &shape.key {
            let value = source
                .iter()
                .chain(new.into_iter().flatten())
                .find(|c| &c.name == key)
                .and_then(|c| match &c.value {
                    Value::Text(text) => Some(literal(text)),
                    _ => None,
                })
                .ok_or_else(unreplayable)?;
            terms.push(format!("{} = {value}", ident(key)));
        }
        return Ok(terms.join(" AND "));
    }
    match (shape.full, old) {
        (true, Some(old)) => {
            let mut terms = Vec::new();
            for column in &shape.columns {
                match old.iter().find(|c| c.name == column.name).map(|c| &c.value) {
                    Some(Value::Text(text)) => {
                        terms.push(format!("{}::text = {}", ident(&column.name), literal(text)))
                    }
                    Some(Value::UnchangedToast) => {}
                    Some(Value::Null) | None => {
                        terms.push(format!("{} IS NULL", ident(&column.name)))
                    }
                }
            }
            Ok(format!(
                "ctid = (SELECT ctid FROM ONLY {table} WHERE {} LIMIT 1)",
                if terms.is_empty() {
                    "true".to_string()
                } else {
                    terms.join(" AND ")
                }
            ))
        }
        _ => Err(unreplayable()),
    }
}

fn unknown_column(table: &TableName, column: &Column, at: &str) -> StreamError {
    StreamError::Replay {
        what: format!("changes to {table} ({at})"),
        reason: format!(
            "the restored table has no column {}: the schema changed after the base",
            ident(&column.name)
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(key: &[&str], full: bool) -> TableShape {
        TableShape {
            columns: ["id", "body", "total"]
                .iter()
                .map(|name| ColumnShape {
                    name: name.to_string(),
                    generated: *name == "total",
                    always_identity: false,
                })
                .collect(),
            key: key.iter().map(|k| k.to_string()).collect(),
            full,
        }
    }

    fn table() -> TableName {
        TableName {
            schema: "app".into(),
            name: "Notes".into(),
        }
    }

    fn col(name: &str, value: Value) -> Column {
        Column {
            name: name.into(),
            value,
        }
    }

    #[test]
    fn statements_quote_everything_and_leave_generated_and_unchanged_values_out() {
        let new = vec![
            col("id", Value::Text("1".into())),
            col("body", Value::Text("it's".into())),
            col("total", Value::Text("9".into())),
        ];
        assert_eq!(
            insert(&table(), &shape(&["id"], false), &new, "t").unwrap(),
            "INSERT INTO app.\"Notes\" (id, body) VALUES ('1', 'it''s')"
        );
        let toast = vec![
            col("id", Value::Text("1".into())),
            col("body", Value::UnchangedToast),
        ];
        assert_eq!(
            update(&table(), &shape(&["id"], false), None, &toast, "t").unwrap(),
            None
        );
        let old = vec![col("id", Value::Text("0".into()))];
        assert_eq!(
            update(&table(), &shape(&["id"], false), Some(&old), &new, "t")
                .unwrap()
                .unwrap(),
            "UPDATE ONLY app.\"Notes\" SET id = '1', body = 'it''s' WHERE id = '0'"
        );
    }

    #[test]
    fn rows_are_found_by_key_by_the_whole_old_row_or_not_at_all() {
        let old = vec![col("id", Value::Text("5".into()))];
        assert_eq!(
            row_filter(&table(), &shape(&[], true), Some(&old), None, "t").unwrap(),
            "ctid = (SELECT ctid FROM ONLY app.\"Notes\" WHERE id::text = '5' AND body IS NULL AND total IS NULL LIMIT 1)"
        );
        let Err(StreamError::Replay { reason, .. }) =
            row_filter(&table(), &shape(&[], false), None, None, "t")
        else {
            panic!("no identity cannot be replayed")
        };
        assert!(reason.contains("REPLICA IDENTITY FULL"), "{reason}");
    }
}
