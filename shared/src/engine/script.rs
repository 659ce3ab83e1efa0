//! The SQL parts: items rendered with a marker line each, and split back for restore.
//!
//! A part is a plain psql script (the marker is an SQL comment); restore splits it at the
//! markers to run items on their own and to schedule post-data work per table.

use serde::{Deserialize, Serialize};

use super::item::{Item, ItemKind};

/// Settings every part starts with, as pg_dump's scripts do (`pg::session::Purpose::Restore`).
pub fn preamble() -> String {
    crate::pg::session::Purpose::Restore.setup()
}

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
        };
        let json = serde_json::to_string(&header).unwrap_or_default();
        script.push_str(&format!("-- {marker} {json}\n{}\n", item.sql.trim_end()));
        script.push('\n');
    }
    script
}

/// The table a foreign key constraint's SQL references (`REFERENCES schema.table(...)`, the
/// name quoted as items name tables), or `None` for another constraint (a NOT VALID check).
pub fn foreign_key_target(sql: &str) -> Option<String> {
    let start = sql.find(" FOREIGN KEY ")?;
    let rest = &sql[start..];
    let rest = &rest[rest.find(" REFERENCES ")? + " REFERENCES ".len()..];
    let mut name = String::new();
    let mut quoted = false;
    let mut chars = rest.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                chars.next();
                name.push_str("\"\"");
            }
            '"' => {
                quoted = !quoted;
                name.push('"');
            }
            '(' | ' ' | ';' | '\n' if !quoted => break,
            c => name.push(c),
        }
    }
    (!name.is_empty()).then_some(name)
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

/// `script` without the owner changes (`no_owner`) and the privilege items (`no_acl`),
/// everything else as it was: what `export --no-owner --no-acl` writes.
pub fn without(script: &str, marker: &str, no_owner: bool, no_acl: bool) -> String {
    let prefix = format!("-- {marker} ");
    let mut out = String::with_capacity(script.len());
    let mut item: Option<(&str, String)> = None;
    let flush = |out: &mut String, item: Option<(&str, String)>| {
        let Some((marker_line, sql)) = item else {
            return;
        };
        let kind = marker_line
            .strip_prefix(&prefix)
            .and_then(|json| serde_json::from_str::<ItemHeader>(json.trim_end()).ok())
            .map(|h| h.kind);
        if no_acl && kind.is_some_and(ItemKind::is_privilege) {
            return;
        }
        out.push_str(marker_line);
        match no_owner {
            true => out.push_str(&without_owner_changes(&sql)),
            false => out.push_str(&sql),
        }
    };
    for line in script.split_inclusive('\n') {
        if line.starts_with(&prefix) {
            flush(&mut out, item.take());
            item = Some((line, String::new()));
        } else if let Some((_, sql)) = item.as_mut() {
            sql.push_str(line);
        } else {
            out.push_str(line);
        }
    }
    flush(&mut out, item);
    out
}

/// One statement of a script: its text (with the `;`) and the same text with every quoted
/// string, quoted identifier, dollar-quoted body and comment blanked out, so that keywords
/// are only ever found where they are SQL.
pub(crate) struct Statement<'a> {
    pub text: &'a str,
    /// Byte for byte as long as `text` (anything not ASCII outside quotes is `_`).
    pub masked: String,
}

/// Splits `sql` into statements at the semicolons that are SQL, not text.
pub(crate) fn statements(sql: &str) -> Vec<Statement<'_>> {
    let bytes = sql.as_bytes();
    let mut out = Vec::new();
    let mut masked = String::new();
    let (mut start, mut i) = (0, 0);
    while i < bytes.len() {
        let c = bytes[i];
        let next = bytes.get(i + 1).copied();
        let word_before = i > 0 && (bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_');
        let (end, comment) = match c {
            b'\'' => {
                let escapes = i > 0 && matches!(bytes[i - 1], b'E' | b'e');
                (quoted_end(bytes, i, b'\'', escapes), false)
            }
            b'"' => (quoted_end(bytes, i, b'"', false), false),
            b'-' if next == Some(b'-') => {
                (sql[i..].find('\n').map_or(bytes.len(), |n| i + n), true)
            }
            b'/' if next == Some(b'*') => (block_comment_end(bytes, i), true),
            b'$' if !word_before => (dollar_quote_end(sql, i).unwrap_or(i + 1), false),
            _ => (i + 1, false),
        };
        if comment {
            masked.extend(std::iter::repeat_n(' ', end - i));
        } else if end == i + 1 {
            masked.push(if c.is_ascii() { c as char } else { '_' });
        } else {
            masked.push(c as char);
            masked.extend(std::iter::repeat_n('_', end - i - 1));
        }
        i = end;
        if c == b';' {
            out.push(Statement {
                text: &sql[start..i],
                masked: std::mem::take(&mut masked),
            });
            start = i;
        }
    }
    if start < sql.len() {
        out.push(Statement {
            text: &sql[start..],
            masked,
        });
    }
    out
}

/// The index after the quote that closes the one at `open` (a doubled quote is text).
pub(crate) fn quoted_end(bytes: &[u8], open: usize, quote: u8, escapes: bool) -> usize {
    let mut i = open + 1;
    while i < bytes.len() {
        if escapes && bytes[i] == b'\\' {
            i += 2;
        } else if bytes[i] == quote {
            if bytes.get(i + 1) == Some(&quote) {
                i += 2;
            } else {
                return i + 1;
            }
        } else {
            i += 1;
        }
    }
    bytes.len()
}

/// The index after the `*/` that closes the (nestable) comment opened at `open`.
fn block_comment_end(bytes: &[u8], open: usize) -> usize {
    let (mut depth, mut i) = (0usize, open);
    while i + 1 < bytes.len() {
        match (bytes[i], bytes[i + 1]) {
            (b'/', b'*') => {
                depth += 1;
                i += 2;
            }
            (b'*', b'/') => {
                depth -= 1;
                i += 2;
                if depth == 0 {
                    return i;
                }
            }
            _ => i += 1,
        }
    }
    bytes.len()
}

/// For `$tag$` at `open`, the index after the matching closing tag; `None` when `$` does
/// not open a dollar quote (a parameter such as `$1`).
fn dollar_quote_end(sql: &str, open: usize) -> Option<usize> {
    let rest = &sql[open + 1..];
    let tag_len = rest.find('$')?;
    let tag = &rest[..tag_len];
    let is_tag = tag
        .chars()
        .enumerate()
        .all(|(n, ch)| ch == '_' || ch.is_alphabetic() || (n > 0 && ch.is_ascii_digit()));
    if !is_tag {
        return None;
    }
    let delimiter = &sql[open..open + tag_len + 2];
    let body = open + delimiter.len();
    Some(
        sql[body..]
            .find(delimiter)
            .map_or(sql.len(), |n| body + n + delimiter.len()),
    )
}

/// Whether a statement is `ALTER <object> OWNER TO <role>`.
fn is_owner_change(statement: &Statement<'_>) -> bool {
    let masked = statement.masked.trim().trim_end_matches(';').trim_end();
    let Some(at) = masked.rfind(" OWNER TO ") else {
        return false;
    };
    let role = &masked[at + " OWNER TO ".len()..];
    masked.starts_with("ALTER ") && !role.is_empty() && !role.contains(char::is_whitespace)
}

/// `sql` without its `ALTER ... OWNER TO` statements: what a restore with `--no-owner` runs,
/// so that the objects belong to the role that restores them.
pub fn without_owner_changes(sql: &str) -> String {
    statements(sql)
        .into_iter()
        .filter(|s| !is_owner_change(s))
        .map(|s| s.text)
        .collect()
}

/// `sql` without the `SET SESSION AUTHORIZATION r` / `RESET SESSION AUTHORIZATION` around
/// grants made by another grantor, and those grantors; `None` when it has none.
pub fn without_grantors(sql: &str) -> Option<(String, Vec<String>)> {
    let mut grantors = Vec::new();
    let mut out = String::with_capacity(sql.len());
    for statement in statements(sql) {
        let head = statement.masked.trim_start();
        if head.starts_with("RESET SESSION AUTHORIZATION") {
            continue;
        }
        if head.starts_with("SET SESSION AUTHORIZATION ") {
            let name = statement.text.trim().trim_end_matches(';');
            let name = name["SET SESSION AUTHORIZATION ".len()..]
                .trim()
                .to_string();
            if !grantors.contains(&name) {
                grantors.push(name);
            }
            continue;
        }
        out.push_str(statement.text);
    }
    (!grantors.is_empty()).then_some((out, grantors))
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

/// Splits `item` when it adds a plain `PRIMARY KEY (cols)` or `UNIQUE (cols)` to `table`:
/// nothing deferrable, no INCLUDE, WITH, NULLS NOT DISTINCT or tablespace, no parentheses in
/// the column list. The caller vouches that `table` is neither partitioned nor a partition.
pub fn split_key_constraint(item: &ScriptItem) -> Option<SplitConstraint> {
    if item.header.kind != ItemKind::Constraint {
        return None;
    }
    let table = item.header.table.as_deref()?;
    let all = statements(&item.sql);
    let first = all.first()?;
    let rest: String = all[1..].iter().map(|s| s.text).collect();
    let statement = first.text.trim();
    let tail = statement.strip_prefix(&format!("ALTER TABLE ONLY {table} ADD CONSTRAINT "))?;
    let name_len = if tail.starts_with('"') {
        quoted_end(tail.as_bytes(), 0, b'"', false)
    } else {
        tail.find(' ')?
    };
    let (name, def) = tail.split_at(name_len);
    let (kind, columns) = [" PRIMARY KEY (", " UNIQUE ("].iter().find_map(|k| {
        def.strip_prefix(k)
            .map(|cols| (k.trim().trim_end_matches(" ("), cols))
    })?;
    let columns = columns.strip_suffix(");")?;
    if columns.contains(['(', ')']) || !is_plain_column_list(columns) {
        return None; // expressions, WITHOUT OVERLAPS (a GiST key, 18+), ...
    }
    let with_sql = |kind: ItemKind, sql: String| ScriptItem {
        header: ItemHeader {
            kind,
            ..item.header.clone()
        },
        sql,
    };
    Some(SplitConstraint {
        build: with_sql(
            ItemKind::Index,
            format!("CREATE UNIQUE INDEX {name} ON {table} USING btree ({columns});\n"),
        ),
        attach: with_sql(
            ItemKind::Constraint,
            format!(
                "ALTER TABLE ONLY {table} ADD CONSTRAINT {name} {kind} USING INDEX {name};{rest}"
            ),
        ),
    })
}

/// Whether `columns` is a list of plain column names, quoted or not (`a, "B c"`).
fn is_plain_column_list(columns: &str) -> bool {
    let mut rest = columns;
    loop {
        rest = rest.trim_start();
        let name_len = if rest.starts_with('"') {
            quoted_end(rest.as_bytes(), 0, b'"', false)
        } else {
            rest.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '$'))
                .unwrap_or(rest.len())
        };
        if name_len == 0 {
            return false;
        }
        rest = rest[name_len..].trim_start();
        match rest.strip_prefix(',') {
            Some(next) => rest = next,
            None => return rest.is_empty(),
        }
    }
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
    fn grantors_are_taken_out_for_a_role_that_cannot_act_as_them() {
        let sql = "GRANT SELECT ON TABLE t TO lead WITH GRANT OPTION;\n\
                   SET SESSION AUTHORIZATION lead;\nGRANT SELECT ON TABLE t TO analyst;\nRESET SESSION AUTHORIZATION;\n";
        let (kept, grantors) = without_grantors(sql).unwrap();
        assert_eq!(
            kept,
            "GRANT SELECT ON TABLE t TO lead WITH GRANT OPTION;\nGRANT SELECT ON TABLE t TO analyst;\n"
        );
        assert_eq!(grantors, ["lead"]);
        assert_eq!(without_grantors("GRANT SELECT ON TABLE t TO a;\n"), None);
    }

    #[test]
    fn a_foreign_key_names_the_table_it_references_and_a_check_none() {
        let fk = "ALTER TABLE ONLY public.orders ADD CONSTRAINT orders_customer_fkey FOREIGN KEY (customer) REFERENCES public.customers(id);";
        assert_eq!(foreign_key_target(fk).as_deref(), Some("public.customers"));
        let quoted = "ALTER TABLE ONLY \"Sales\".\"Line\" ADD CONSTRAINT x FOREIGN KEY (a) REFERENCES \"Sales\".\"Or(\"\"ders\"(id) NOT VALID;";
        assert_eq!(
            foreign_key_target(quoted).as_deref(),
            Some("\"Sales\".\"Or(\"\"ders\"")
        );
        let check =
            "ALTER TABLE public.orders ADD CONSTRAINT total_ok CHECK (total >= 0) NOT VALID;";
        assert_eq!(foreign_key_target(check), None);
    }

    fn constraint(table: &str, sql: &str) -> ScriptItem {
        ScriptItem {
            header: ItemHeader {
                kind: ItemKind::Constraint,
                name: "x".into(),
                table: Some(table.into()),
            },
            sql: sql.into(),
        }
    }

    #[test]
    fn plain_keys_split_into_an_index_build_and_an_attach() {
        let item = constraint(
            "app.\"Order Lines\"",
            "ALTER TABLE ONLY app.\"Order Lines\" ADD CONSTRAINT \"Order Lines_pkey\" PRIMARY KEY (\"orderId\", line);\n\
             ALTER TABLE app.\"Order Lines\" CLUSTER ON \"Order Lines_pkey\";\n",
        );
        let split = split_key_constraint(&item).unwrap();
        assert_eq!(split.build.header.kind, ItemKind::Index);
        assert_eq!(
            split.build.sql,
            "CREATE UNIQUE INDEX \"Order Lines_pkey\" ON app.\"Order Lines\" USING btree (\"orderId\", line);\n"
        );
        assert_eq!(
            split.attach.sql,
            "ALTER TABLE ONLY app.\"Order Lines\" ADD CONSTRAINT \"Order Lines_pkey\" PRIMARY KEY USING INDEX \"Order Lines_pkey\";\n\
             ALTER TABLE app.\"Order Lines\" CLUSTER ON \"Order Lines_pkey\";\n"
        );
        let unique = constraint(
            "app.t",
            "ALTER TABLE ONLY app.t ADD CONSTRAINT t_code_key UNIQUE (code);\n",
        );
        assert!(
            split_key_constraint(&unique)
                .unwrap()
                .attach
                .sql
                .contains("t_code_key UNIQUE USING INDEX t_code_key;")
        );
    }

    #[test]
    fn keys_an_index_cannot_express_alone_stay_whole() {
        for def in [
            "PRIMARY KEY (id) INCLUDE (note)",
            "PRIMARY KEY (id) WITH (fillfactor='70')",
            "UNIQUE (code) DEFERRABLE INITIALLY DEFERRED",
            "UNIQUE NULLS NOT DISTINCT (code)",
            "EXCLUDE USING gist (during WITH &&)",
            "CHECK ((price > (0)::numeric))",
            "UNIQUE (\"odd)name\")",
            "PRIMARY KEY (id, valid WITHOUT OVERLAPS)",
            "UNIQUE (room, during WITHOUT OVERLAPS)",
        ] {
            let item = constraint(
                "app.t",
                &format!("ALTER TABLE ONLY app.t ADD CONSTRAINT c {def};\n"),
            );
            assert_eq!(split_key_constraint(&item), None, "{def}");
        }
    }

    #[test]
    fn owner_changes_are_dropped_and_nothing_else() {
        let sql = "CREATE TABLE app.\"a;b\" (note text DEFAULT 'x; ALTER TABLE t OWNER TO y;');\n\
                   ALTER TABLE app.\"a;b\" OWNER TO \"Owner Role\";\n\
                   ALTER TABLE ONLY app.t ALTER COLUMN id SET DEFAULT 1;\n\
                   CREATE FUNCTION app.f() RETURNS void AS $body$\n\
                   BEGIN\n    EXECUTE 'ALTER TABLE t OWNER TO y';\nEND;\n$body$ LANGUAGE plpgsql;\n\
                   ALTER FUNCTION app.f() OWNER TO app_owner;\n\
                   COMMENT ON TABLE app.t IS E'it''s \\' ; OWNER TO';\n\
                   ALTER SEQUENCE app.s OWNED BY app.t.id;\n\
                   SELECT $1::text; -- a parameter, not a dollar quote; OWNER TO x\n\
                   /* ALTER TABLE t OWNER TO y; /* nested */ */ ALTER SCHEMA app OWNER TO app_owner;\n";
        let kept = without_owner_changes(sql);
        assert!(!kept.contains("OWNER TO \"Owner Role\""), "{kept}");
        assert!(!kept.contains("OWNER TO app_owner"), "{kept}");
        for survivor in [
            "CREATE TABLE app.\"a;b\" (note text DEFAULT 'x; ALTER TABLE t OWNER TO y;');",
            "EXECUTE 'ALTER TABLE t OWNER TO y';\nEND;\n$body$ LANGUAGE plpgsql;",
            "ALTER COLUMN id SET DEFAULT 1;",
            "IS E'it''s \\' ; OWNER TO';",
            "OWNED BY app.t.id;",
            "SELECT $1::text;",
        ] {
            assert!(kept.contains(survivor), "lost {survivor:?} from:\n{kept}");
        }
    }

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
        assert!(script.contains(&preamble()));
        let parsed = parse(&script, "backstop:ab12").unwrap();
        assert_eq!(parsed.len(), 2);
        assert_eq!(parsed[0].header.name, "app.users");
        assert_eq!(parsed[0].sql.trim(), "CREATE TABLE app.users (id int);");
        assert_eq!(parsed[1].header.table.as_deref(), Some("app.users"));
        assert_eq!(parsed[1].header.kind, ItemKind::Index);
    }
}
