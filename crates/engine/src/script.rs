//! The SQL parts: items rendered with a marker line each, and split back for restore.
//!
//! A part is a plain psql script (the marker is an SQL comment); restore splits it at the
//! markers to run items on their own and to schedule post-data work per table.

use serde::{Deserialize, Serialize};

use super::item::{Item, ItemKind};
use super::legacy::{self, MARKED_FORMAT};
use super::lexer::statements;
use super::sql::{self, Edits, Mark, Marked};

/// Settings every part starts with, as pg_dump's scripts do (`pg::session::Purpose::Restore`).
pub fn preamble() -> String {
    backstop_pg::session::Purpose::Restore.setup()
}

/// What the marker line says about the item that follows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ItemHeader {
    pub kind: ItemKind,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub table: Option<String>,
    /// Where the item's SQL names roles, changes an owner, acts as a grantor or adds a key.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub marks: Vec<Mark>,
    /// For a foreign key: the table it references.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub references: Option<String>,
    /// Its index builds slowly (GIN, GiST, SP-GiST).
    #[serde(skip_serializing_if = "std::ops::Not::not", default)]
    pub slow_build: bool,
}

/// An item read back from a part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptItem {
    pub header: ItemHeader,
    pub sql: String,
}

/// Renders items as a script: the preamble, then each item after its marker line.
pub fn render(title: &str, marker: &str, items: &[&Item]) -> String {
    let mut script = format!("-- {}\n\n{}\n", inert(title), preamble());
    for item in items {
        let header = ItemHeader {
            kind: item.kind,
            name: if item.schema.is_empty() {
                item.name.clone()
            } else {
                format!("{}.{}", item.schema, item.name)
            },
            table: item.table.clone(),
            marks: item.marks.clone(),
            references: item.references.clone(),
            slow_build: item.slow_build,
        };
        push_item(&mut script, marker, &header, &item.sql);
    }
    script
}

fn push_item(script: &mut String, marker: &str, header: &ItemHeader, sql: &str) {
    let json = serde_json::to_string(header).unwrap_or_default();
    script.push_str(&format!("-- {marker} {json}\n{}\n", sql.trim_end()));
    script.push('\n');
}

/// `text` safe to put in a `--` comment of a script psql may run: every control character
/// (a newline would end the comment and start a line psql reads, `\!` included), and the
/// Unicode line and bidirectional-override characters, written as `\u{..}`.
pub fn inert(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_control() || matches!(c, '\u{2028}' | '\u{2029}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}') {
                format!("\\u{{{:x}}}", c as u32)
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// The line of the first psql meta-command in `script` (a backslash outside quoted text,
/// identifiers, dollar-quoted bodies and comments), if it holds one.
pub fn meta_command(script: &str) -> Option<usize> {
    let mut offset = 0;
    for statement in statements(script) {
        if let Some(at) = statement.masked.find('\\') {
            return Some(script[..offset + at].matches('\n').count() + 1);
        }
        offset += statement.text.len();
    }
    None
}

/// Splits a script of a set of manifest format `format` back into its items (the preamble is
/// dropped: restore sets it itself), each with marks that fit its SQL (found by reading it for
/// a set written before items carried them).
pub fn parse(script: &str, marker: &str, format: u32) -> Result<Vec<ScriptItem>, String> {
    let mut items = parse_items(script, marker)?;
    if format < MARKED_FORMAT {
        legacy::mark(&mut items);
    }
    for item in &items {
        sql::check(&item.sql, &item.header.marks)
            .map_err(|e| format!("item {}: {e}", item.header.name))?;
    }
    Ok(items)
}

fn parse_items(script: &str, marker: &str) -> Result<Vec<ScriptItem>, String> {
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

/// `script` without the owner changes (`no_owner`) and the privilege items (`no_acl`),
/// everything else as it was: what `export --no-owner --no-acl` writes.
pub fn without(
    script: &str,
    marker: &str,
    format: u32,
    no_owner: bool,
    no_acl: bool,
) -> Result<String, String> {
    let prefix = format!("-- {marker} ");
    let start = script
        .match_indices(&prefix)
        .find(|(at, _)| *at == 0 || script.as_bytes()[at - 1] == b'\n')
        .map_or(script.len(), |(at, _)| at);
    let mut out = script[..start].to_string();
    let edits = Edits {
        no_owner,
        no_acting_as: false,
        role: &|_| None,
    };
    for item in parse(script, marker, format)? {
        if no_acl && item.header.kind.is_privilege() {
            continue;
        }
        let edited = sql::edit(&item.sql, &item.header.marks, &edits).map_err(|e| e.to_string())?;
        // What psql reads is checked as written, after the edits.
        if meta_command(&edited.text).is_some() {
            return Err(format!(
                "item {} holds a psql meta-command once edited",
                item.header.name
            ));
        }
        let header = ItemHeader {
            marks: edited.marks,
            ..item.header
        };
        push_item(&mut out, marker, &header, &edited.text);
    }
    Ok(out)
}

/// A primary key or unique constraint split in two: `build` creates its index with
/// `CREATE UNIQUE INDEX` (a SHARE lock, so it runs beside the table's other index builds),
/// `attach` turns that index into the constraint (`ADD CONSTRAINT ... USING INDEX`, instant,
/// though under ACCESS EXCLUSIVE) followed by the rest of the item (CLUSTER ON, comments).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SplitConstraint {
    pub build: ScriptItem,
    pub attach: ScriptItem,
}

/// Splits `item` when it adds a plain key (its [`Marked::AddKey`] mark) to its table. The
/// caller vouches that the table is neither partitioned nor a partition.
pub fn split_key_constraint(item: &ScriptItem) -> Option<SplitConstraint> {
    if item.header.kind != ItemKind::Constraint {
        return None;
    }
    item.header.table.as_deref()?;
    let (mark, name, primary, columns) = item.header.marks.iter().find_map(|m| match &m.is {
        Marked::AddKey {
            name,
            primary,
            columns,
        } => Some((m, name, *primary, columns)),
        _ => None,
    })?;
    let kind = if primary { "PRIMARY KEY" } else { "UNIQUE" };
    let end = mark.at.checked_add(mark.len)?;
    let before = item.sql.get(..mark.at)?;
    let after = item.sql.get(end..)?;
    // The mark says what the statement it spans adds, and the split writes from the mark: only
    // when the two agree. The table is the one the statement names (where a restore into
    // another schema moved it), never one the header names.
    let statement = item.sql.get(mark.at..end)?;
    let table = statement
        .strip_prefix("ALTER TABLE ONLY ")?
        .strip_suffix(sql::key_tail(&mark.is)?.as_str())?;
    if table.is_empty() {
        return None;
    }
    let with_sql = |kind: ItemKind, sql: String| ScriptItem {
        header: ItemHeader {
            kind,
            marks: Vec::new(),
            ..item.header.clone()
        },
        sql,
    };
    Some(SplitConstraint {
        build: with_sql(
            ItemKind::Index,
            format!(
                "CREATE UNIQUE INDEX {name} ON {table} USING btree ({});\n",
                columns.join(", ")
            ),
        ),
        attach: with_sql(
            ItemKind::Constraint,
            format!(
                "{before}ALTER TABLE ONLY {table} ADD CONSTRAINT {name} {kind} USING INDEX {name};{after}"
            ),
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_backslash_outside_quotes_is_a_meta_command_and_inside_is_not() {
        let clean = "CREATE FUNCTION f() RETURNS text LANGUAGE sql AS $$ SELECT '\\! x' $$;\n\
                     COMMENT ON TABLE t IS E'a\\nb';\n-- \\! in a comment\nCREATE TABLE \"\\x\" (a int);\n";
        assert_eq!(meta_command(clean), None);
        assert_eq!(
            meta_command("SELECT 1;\n\\! touch /tmp/x\nSELECT 2;\n"),
            Some(2)
        );
        assert_eq!(meta_command("SELECT 1 \\gexec\n"), Some(1));
    }

    #[test]
    fn a_title_with_a_newline_stays_one_comment_line() {
        let script = render("db\n\\! touch /tmp/owned\r\u{202e}x", "m", &[]);
        let first = script.lines().next().unwrap();
        assert_eq!(first, "-- db\\u{a}\\! touch /tmp/owned\\u{d}\\u{202e}x");
        assert!(!script.lines().any(|l| l.starts_with('\\')));
    }

    #[test]
    fn render_then_parse_round_trips_items() {
        let a = Item::new(
            ItemKind::Table,
            "app",
            "users",
            "CREATE TABLE app.users (id int);\n".to_string(),
        );
        let b = Item::new(
            ItemKind::Index,
            "app",
            "users_idx",
            "CREATE INDEX users_idx ON app.users (id);\n".to_string(),
        )
        .of_table("app.users");
        let script = render("pre-data", "backstop:ab12", &[&a, &b]);
        assert!(script.contains(&preamble()));
        let parsed = parse(&script, "backstop:ab12", MARKED_FORMAT).unwrap();
        assert_eq!(parsed.len(), 2);
        assert_eq!(parsed[0].header.name, "app.users");
        assert_eq!(parsed[0].sql.trim(), "CREATE TABLE app.users (id int);");
        assert_eq!(parsed[1].header.table.as_deref(), Some("app.users"));
        assert_eq!(parsed[1].header.kind, ItemKind::Index);
    }
}
