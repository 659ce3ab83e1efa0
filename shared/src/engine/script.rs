//! The SQL parts: items rendered with a marker line each, and split back for restore.
//!
//! A part is a plain psql script (the marker is an SQL comment); restore splits it at the
//! markers to run items on their own and to schedule post-data work per table.

use serde::{Deserialize, Serialize};

use super::item::{Item, ItemKind};

/// Settings every part starts with, as pg_dump's scripts do.
pub const PREAMBLE: &str = "SET statement_timeout = 0;\n\
SET lock_timeout = 0;\n\
SET idle_in_transaction_session_timeout = 0;\n\
SET client_encoding = 'UTF8';\n\
SET standard_conforming_strings = on;\n\
SELECT pg_catalog.set_config('search_path', '', false);\n\
SET check_function_bodies = false;\n\
SET xmloption = content;\n\
SET client_min_messages = warning;\n\
SET row_security = off;\n";

/// What the marker line says about the item that follows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ItemHeader {
    pub kind: ItemKind,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub table: Option<String>,
}

/// An item read back from a part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptItem {
    pub header: ItemHeader,
    pub sql: String,
}

/// Renders items as a script: the preamble, then each item after its marker line.
pub fn render(title: &str, marker: &str, items: &[&Item]) -> String {
    let mut script = format!("-- {title}\n\n{PREAMBLE}\n");
    for item in items {
        let header = ItemHeader {
            kind: item.kind,
            name: if item.schema.is_empty() {
                item.name.clone()
            } else {
                format!("{}.{}", item.schema, item.name)
            },
            table: item.table.clone(),
        };
        let json = serde_json::to_string(&header).unwrap_or_default();
        script.push_str(&format!("-- {marker} {json}\n{}\n", item.sql.trim_end()));
        script.push('\n');
    }
    script
}

/// Splits a script back into its items (the preamble is dropped: restore sets it itself).
pub fn parse(script: &str, marker: &str) -> Result<Vec<ScriptItem>, String> {
    let prefix = format!("-- {marker} ");
    let mut items: Vec<ScriptItem> = Vec::new();
    for line in script.split_inclusive('\n') {
        if let Some(json) = line.strip_prefix(&prefix) {
            let header: ItemHeader = serde_json::from_str(json.trim_end())
                .map_err(|e| format!("unreadable item marker `{}`: {e}", json.trim_end()))?;
            items.push(ScriptItem {
                header,
                sql: String::new(),
            });
        } else if let Some(item) = items.last_mut() {
            item.sql.push_str(line);
        }
    }
    Ok(items)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_then_parse_round_trips_items() {
        let a = Item::new(
            ItemKind::Table,
            "app",
            "users",
            "CREATE TABLE app.users (id int);\n".into(),
        );
        let b = Item::new(
            ItemKind::Index,
            "app",
            "users_idx",
            "CREATE INDEX users_idx ON app.users (id);\n".into(),
        )
        .of_table("app.users");
        let script = render("pre-data", "backstop:ab12", &[&a, &b]);
        assert!(script.contains(PREAMBLE));
        let parsed = parse(&script, "backstop:ab12").unwrap();
        assert_eq!(parsed.len(), 2);
        assert_eq!(parsed[0].header.name, "app.users");
        assert_eq!(parsed[0].sql.trim(), "CREATE TABLE app.users (id int);");
        assert_eq!(parsed[1].header.table.as_deref(), Some("app.users"));
        assert_eq!(parsed[1].header.kind, ItemKind::Index);
    }
}
