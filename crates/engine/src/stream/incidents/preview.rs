//! One transaction up close (`backstop incidents --show`): what it did to each table, with the
//! rows each held just before, and its first changed rows per table, as a person reads them.

use std::collections::BTreeMap;

use super::super::decoding::{Change, Column, TableName, Value};
use super::{BaseRows, Ledger, Streamed, TableEffect};
use crate::script::inert;

/// What transaction `xid` (the first of that xid among `transactions`) did to each table it
/// touched, with the rows each held just before it as far as they can be estimated.
pub fn effects_of(transactions: &[Streamed], bases: &[BaseRows], xid: u64) -> Vec<TableEffect> {
    let ledger = Ledger::new(transactions, bases);
    let Some(position) = transactions.iter().position(|t| t.xid == xid) else {
        return Vec::new();
    };
    transactions[position]
        .tables
        .iter()
        .flatten()
        .map(|touch| TableEffect::of(touch, ledger.rows_before(position, &touch.table)))
        .collect()
}

/// What one transaction did to a table's rows, as previewed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Insert,
    Update,
    Delete,
    Truncate,
}

impl Action {
    /// The word `--json` writes.
    pub fn as_str(&self) -> &'static str {
        match self {
            Action::Insert => "insert",
            Action::Update => "update",
            Action::Delete => "delete",
            Action::Truncate => "truncate",
        }
    }
}

/// One changed row: the old values the stream holds (a DELETE's and an UPDATE's replica
/// identity, or with `REPLICA IDENTITY FULL` the whole old row) and the new ones.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangedRow {
    pub action: Action,
    pub old: Option<Vec<Column>>,
    pub new: Option<Vec<Column>>,
}

/// A transaction's changes to one table: how many, and the first few.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TablePreview {
    pub table: String,
    pub changes: u64,
    pub rows: Vec<ChangedRow>,
}

impl TablePreview {
    /// Whether the old values shown are whole rows: `Some(false)` when one lacks a column of
    /// `columns` (the table's, quoted, as a backup's manifest lists them), as with
    /// `REPLICA IDENTITY DEFAULT`, where only the key is in the stream; `None` when no row
    /// shown has old values, or the columns are unknown.
    pub fn old_values_complete(&self, columns: Option<&[String]>) -> Option<bool> {
        let columns = columns?;
        let olds: Vec<&Vec<Column>> = self.rows.iter().filter_map(|r| r.old.as_ref()).collect();
        if olds.is_empty() {
            return None;
        }
        Some(olds.iter().all(|old| {
            columns
                .iter()
                .all(|column| old.iter().any(|c| c.name == unquote(column)))
        }))
    }
}

/// A quoted identifier's name (`"Key"` is `Key`).
fn unquote(name: &str) -> String {
    match name.strip_prefix('"').and_then(|n| n.strip_suffix('"')) {
        Some(inner) => inner.replace("\"\"", "\""),
        None => name.to_string(),
    }
}

/// A transaction's changes per table, up to `limit` rows each.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Preview {
    limit: usize,
    tables: BTreeMap<String, TablePreview>,
}

impl Preview {
    pub fn new(limit: usize) -> Self {
        Self {
            limit,
            tables: BTreeMap::new(),
        }
    }

    /// Counts `change`, and keeps it while its table has fewer than `limit` rows shown.
    pub fn add(&mut self, change: Change) {
        let (tables, row): (Vec<TableName>, ChangedRow) = match change {
            Change::Insert { table, new } => (
                vec![table],
                ChangedRow {
                    action: Action::Insert,
                    old: None,
                    new: Some(new),
                },
            ),
            Change::Update { table, old, new } => (
                vec![table],
                ChangedRow {
                    action: Action::Update,
                    old,
                    new: Some(new),
                },
            ),
            Change::Delete { table, old } => (
                vec![table],
                ChangedRow {
                    action: Action::Delete,
                    old,
                    new: None,
                },
            ),
            Change::Truncate { tables, .. } => (
                tables,
                ChangedRow {
                    action: Action::Truncate,
                    old: None,
                    new: None,
                },
            ),
        };
        for table in tables {
            let name = table.to_string();
            let preview = self
                .tables
                .entry(name.clone())
                .or_insert_with(|| TablePreview {
                    table: name,
                    changes: 0,
                    rows: Vec::new(),
                });
            preview.changes += 1;
            if preview.rows.len() < self.limit {
                preview.rows.push(row.clone());
            }
        }
    }

    /// The tables, by name.
    pub fn tables(self) -> Vec<TablePreview> {
        self.tables.into_values().collect()
    }
}

/// `id=1, note='a b'`: columns as a person reads them, every byte from the database safe for a
/// terminal.
pub fn describe_columns(columns: &[Column]) -> String {
    columns
        .iter()
        .map(|column| {
            let value = match &column.value {
                Value::Null => "NULL".to_string(),
                Value::UnchangedToast => "(unchanged TOASTed value)".to_string(),
                Value::Text(text) if !text.is_empty() && !text.contains([' ', ',', '\'', '=']) => {
                    inert(text)
                }
                Value::Text(text) => format!("'{}'", inert(&text.replace('\'', "''"))),
            };
            format!("{}={value}", inert(&column.name))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_column_names_and_values_are_escaped_for_the_terminal() {
        let columns = [Column {
            name: "n\u{7}".into(),
            value: Value::Text("it's\r\n".into()),
        }];
        assert_eq!(describe_columns(&columns), "n\\u{7}='it''s\\u{d}\\u{a}'");
    }

    #[test]
    fn a_preview_keeps_the_first_rows_and_says_whether_old_values_are_whole() {
        let table = TableName {
            schema: "public".into(),
            name: "orders".into(),
        };
        let key = |id: &str| {
            vec![Column {
                name: "id".into(),
                value: Value::Text(id.into()),
            }]
        };
        let mut preview = Preview::new(2);
        for id in ["1", "2", "3"] {
            preview.add(Change::Delete {
                table: table.clone(),
                old: Some(key(id)),
            });
        }
        preview.add(Change::Truncate {
            tables: vec![
                table.clone(),
                TableName {
                    schema: "app".into(),
                    name: "Log".into(),
                },
            ],
            restart_identity: false,
            cascade: false,
        });
        let tables = preview.tables();
        assert_eq!(tables.len(), 2);
        assert_eq!(tables[0].table, "app.\"Log\"");
        let orders = &tables[1];
        assert_eq!((orders.changes, orders.rows.len()), (4, 2));
        assert_eq!(orders.rows[1].old, Some(key("2")));
        let columns = vec!["id".to_string(), "\"Note\"".to_string()];
        assert_eq!(orders.old_values_complete(Some(&columns)), Some(false));
        assert_eq!(orders.old_values_complete(Some(&columns[..1])), Some(true));
        assert_eq!(orders.old_values_complete(None), None);
    }
}
