//! Reading `test_decoding`'s output: one row of `pg_logical_slot_peek_changes` into a typed
//! change.
//!
//! The plugin prints `BEGIN <xid>`, `COMMIT <xid> (at <time>)` and, per change,
//! `table <schema>.<name>: INSERT: <col>[<type>]:<value> ...` (UPDATE with an optional
//! `old-key: ... new-tuple: ...`, DELETE with the replica identity or `(no-tuple-data)`,
//! TRUNCATE with its flags). Names are quoted as `quote_identifier` does; values are the type's
//! output text, quoted with `'` doubled except for numbers, booleans and bit strings. Logical
//! messages are recognised and carry nothing to replay.

use time::OffsetDateTime;

/// One decoded row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decoded {
    Begin {
        xid: u32,
    },
    Commit {
        xid: u32,
        at: Option<OffsetDateTime>,
    },
    Change(Change),
    /// `pg_logical_emit_message` output, or anything else that changes no table.
    Message,
}

/// A change to one table (or, for TRUNCATE, several).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Insert {
        table: TableName,
        new: Vec<Column>,
    },
    Update {
        table: TableName,
        /// The old replica identity (or, with `REPLICA IDENTITY FULL`, the old row without
        /// its NULL columns), when the plugin printed one.
        old: Option<Vec<Column>>,
        new: Vec<Column>,
    },
    Delete {
        table: TableName,
        /// `None`: the table has no replica identity, so nothing says which row went.
        old: Option<Vec<Column>>,
    },
    Truncate {
        tables: Vec<TableName>,
        restart_identity: bool,
        cascade: bool,
    },
}

impl Change {
    /// The tables the change touches.
    pub fn tables(&self) -> Vec<&TableName> {
        match self {
            Change::Insert { table, .. }
            | Change::Update { table, .. }
            | Change::Delete { table, .. } => vec![table],
            Change::Truncate { tables, .. } => tables.iter().collect(),
        }
    }
}

/// A table's schema and name, unquoted.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TableName {
    pub schema: String,
    pub name: String,
}

impl std::fmt::Display for TableName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}.{}",
            relation_ident(&self.schema),
            relation_ident(&self.name)
        )
    }
}

/// A schema or table name as SQL (`public` needs no quotes there, unlike as a role).
pub fn relation_ident(name: &str) -> String {
    match name {
        "public" => name.to_string(),
        _ => crate::catalog::ident(name),
    }
}

/// A column of a printed tuple.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    /// Unquoted.
    pub name: String,
    pub value: Value,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Null,
    /// A TOASTed value the UPDATE did not change (and so did not log).
    UnchangedToast,
    /// The type's output text.
    Text(String),
}

/// Why a row could not be read. It names the row by its kind and table, never its values
/// (they are the application's data, and the error may reach an alert).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot read the decoded change `{excerpt}`: {reason}")]
pub struct DecodeError {
    /// The row up to its action (`table public.t: UPDATE:`), or its first word.
    pub excerpt: String,
    pub reason: &'static str,
}

/// Reads one row's `data` column.
pub fn parse(data: &str) -> Result<Decoded, DecodeError> {
    let fail = |reason| DecodeError {
        excerpt: excerpt(data),
        reason,
    };
    if let Some(rest) = data.strip_prefix("BEGIN ") {
        let xid = rest
            .trim()
            .parse()
            .map_err(|_| fail("BEGIN without an xid"))?;
        return Ok(Decoded::Begin { xid });
    }
    if let Some(rest) = data.strip_prefix("COMMIT ") {
        let (xid, at) = match rest.split_once(" (at ") {
            Some((xid, at)) => (xid, Some(at.trim_end_matches(')'))),
            None => (rest, None),
        };
        let xid = xid
            .trim()
            .parse()
            .map_err(|_| fail("COMMIT without an xid"))?;
        let at = match at {
            Some(text) => Some(parse_time(text).ok_or_else(|| fail("unreadable commit time"))?),
            None => None,
        };
        return Ok(Decoded::Commit { xid, at });
    }
    if data.starts_with("message: ") {
        return Ok(Decoded::Message);
    }
    let rest = data
        .strip_prefix("table ")
        .ok_or_else(|| fail("not a row test_decoding writes"))?;
    let mut cursor = Cursor { text: rest, at: 0 };
    let mut tables = vec![cursor.table_name().ok_or_else(|| fail("bad table name"))?];
    while cursor.eat(", ") {
        tables.push(cursor.table_name().ok_or_else(|| fail("bad table name"))?);
    }
    if !cursor.eat(": ") {
        return Err(fail("no action after the table name"));
    }
    let action = cursor.until(':').ok_or_else(|| fail("no action"))?;
    cursor.eat(":");
    let single = |tables: Vec<TableName>| {
        let mut tables = tables.into_iter();
        match (tables.next(), tables.next()) {
            (Some(table), None) => Ok(table),
            _ => Err(fail("a row change names one table")),
        }
    };
    let change = match action {
        "INSERT" => Change::Insert {
            table: single(tables)?,
            new: cursor
                .tuple()
                .ok_or_else(|| fail("bad tuple"))?
                .unwrap_or_default(),
        },
        "UPDATE" => {
            let old = if cursor.eat(" old-key:") {
                let old = cursor
                    .tuple_until_new()
                    .ok_or_else(|| fail("bad old key"))?;
                Some(old)
            } else {
                None
            };
            Change::Update {
                table: single(tables)?,
                old,
                new: cursor
                    .tuple()
                    .ok_or_else(|| fail("bad tuple"))?
                    .ok_or_else(|| fail("an UPDATE without its new row"))?,
            }
        }
        "DELETE" => Change::Delete {
            table: single(tables)?,
            old: cursor.tuple().ok_or_else(|| fail("bad tuple"))?,
        },
        "TRUNCATE" => {
            let flags = cursor.rest();
            Change::Truncate {
                tables,
                restart_identity: flags.split_whitespace().any(|f| f == "restart_seqs"),
                cascade: flags.split_whitespace().any(|f| f == "cascade"),
            }
        }
        _ => return Err(fail("an action test_decoding does not write")),
    };
    Ok(Decoded::Change(change))
}

/// A row as errors may name it: a change up to its action, anything else by its first word.
fn excerpt(data: &str) -> String {
    let head = match data.strip_prefix("table ") {
        Some(_) => data
            .match_indices(':')
            .nth(1)
            .map_or(data, |(at, _)| &data[..=at]),
        None => data.split(' ').next().unwrap_or_default(),
    };
    head.chars().take(200).collect()
}

/// What a change line says without reading its values: its action and first table.
pub fn peek_action(data: &str) -> Option<(&str, TableName)> {
    let rest = data.strip_prefix("table ")?;
    let mut cursor = Cursor { text: rest, at: 0 };
    let table = cursor.table_name()?;
    while cursor.eat(", ") {
        cursor.table_name()?;
    }
    cursor.eat(": ").then_some(())?;
    let action = cursor.until(':')?;
    Some((action, table))
}

/// `timestamptz_to_str` output with `DateStyle = ISO` and `TimeZone = UTC`:
/// `2026-12-01 19:40:00.123456+00`.
pub fn parse_time(text: &str) -> Option<OffsetDateTime> {
    use time::format_description::well_known::Rfc3339;
    let text = text.trim();
    let (stamp, offset) = match text.rfind(['+', '-']) {
        Some(at) if at > 10 => text.split_at(at),
        _ => return None,
    };
    let offset = match offset.len() {
        3 => format!("{offset}:00"),
        _ => offset.to_string(),
    };
    OffsetDateTime::parse(
        &format!("{}{offset}", stamp.replacen(' ', "T", 1)),
        &Rfc3339,
    )
    .ok()
}

/// A time as people write it for `--to-time`: RFC 3339, with `T` or a space, with its offset.
pub fn parse_rfc3339(text: &str) -> Option<OffsetDateTime> {
    use time::format_description::well_known::Rfc3339;
    let text = text.trim();
    OffsetDateTime::parse(&text.replacen(' ', "T", 1), &Rfc3339)
        .ok()
        .or_else(|| parse_time(text))
}

struct Cursor<'a> {
    text: &'a str,
    at: usize,
}

impl<'a> Cursor<'a> {
    fn rest(&self) -> &'a str {
        &self.text[self.at..]
    }

    fn eat(&mut self, token: &str) -> bool {
        if self.rest().starts_with(token) {
            self.at += token.len();
            true
        } else {
            false
        }
    }

    fn until(&mut self, stop: char) -> Option<&'a str> {
        let rest = self.rest();
        let end = rest.find(stop)?;
        self.at += end;
        Some(&rest[..end])
    }

    /// An identifier as `quote_identifier` prints it, unquoted.
    fn identifier(&mut self) -> Option<String> {
        let rest = self.rest();
        if let Some(quoted) = rest.strip_prefix('"') {
            let mut name = String::new();
            let mut chars = quoted.char_indices();
            while let Some((i, c)) = chars.next() {
                if c == '"' {
                    if quoted[i + 1..].starts_with('"') {
                        name.push('"');
                        chars.next();
                    } else {
                        self.at += i + 2;
                        return Some(name);
                    }
                } else {
                    name.push(c);
                }
            }
            None
        } else {
            let end = rest
                .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == '$'))
                .unwrap_or(rest.len());
            (end > 0).then(|| {
                self.at += end;
                rest[..end].to_string()
            })
        }
    }

    fn table_name(&mut self) -> Option<TableName> {
        let schema = self.identifier()?;
        self.eat(".").then_some(())?;
        let name = self.identifier()?;
        Some(TableName { schema, name })
    }

    /// ` (no-tuple-data)` is `Some(None)`; a tuple is `Some(Some(columns))`; `None` is an
    /// unreadable tuple.
    fn tuple(&mut self) -> Option<Option<Vec<Column>>> {
        if self.eat(" (no-tuple-data)") {
            return Some(None);
        }
        let mut columns = Vec::new();
        while self.rest().starts_with(' ') && !self.rest().starts_with(" new-tuple:") {
            self.at += 1;
            columns.push(self.column()?);
        }
        self.rest().is_empty().then_some(())?;
        Some(Some(columns))
    }

    fn tuple_until_new(&mut self) -> Option<Vec<Column>> {
        let mut columns = Vec::new();
        loop {
            if self.eat(" new-tuple:") {
                return Some(columns);
            }
            self.eat(" ").then_some(())?;
            columns.push(self.column()?);
        }
    }

    /// `name[type]:value`.
    fn column(&mut self) -> Option<Column> {
        let name = self.identifier()?;
        self.eat("[").then_some(())?;
        // The type, as format_type prints it: it may hold brackets (`integer[]`) and quoted
        // names, and ends at the first `]:` outside quotes.
        let rest = self.rest();
        let mut quoted = false;
        let mut end = None;
        let bytes = rest.as_bytes();
        for i in 0..bytes.len() {
            match bytes[i] {
                b'"' => quoted = !quoted,
                b']' if !quoted && bytes.get(i + 1) == Some(&b':') => {
                    end = Some(i);
                    break;
                }
                _ => {}
            }
        }
        self.at += end? + 2;
        let value = self.value()?;
        Some(Column { name, value })
    }

    fn value(&mut self) -> Option<Value> {
        let rest = self.rest();
        if let Some(quoted) = rest.strip_prefix('\'') {
            let mut text = String::new();
            let mut chars = quoted.char_indices();
            while let Some((i, c)) = chars.next() {
                if c == '\'' {
                    if quoted[i + 1..].starts_with('\'') {
                        text.push('\'');
                        chars.next();
                    } else {
                        self.at += i + 2;
                        return Some(Value::Text(text));
                    }
                } else {
                    text.push(c);
                }
            }
            return None;
        }
        if let Some(bits) = rest.strip_prefix("B'") {
            let end = bits.find('\'')?;
            self.at += end + 3;
            return Some(Value::Text(bits[..end].to_string()));
        }
        let end = rest.find(' ').unwrap_or(rest.len());
        let token = &rest[..end];
        (end > 0).then_some(())?;
        self.at += end;
        Some(match token {
            "null" => Value::Null,
            "unchanged-toast-datum" => Value::UnchangedToast,
            other => Value::Text(other.to_string()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(schema: &str, name: &str) -> TableName {
        TableName {
            schema: schema.into(),
            name: name.into(),
        }
    }

    fn text(name: &str, value: &str) -> Column {
        Column {
            name: name.into(),
            value: Value::Text(value.into()),
        }
    }

    #[test]
    fn begin_and_commit_carry_the_xid_and_the_time() {
        assert_eq!(parse("BEGIN 771").unwrap(), Decoded::Begin { xid: 771 });
        let Decoded::Commit { xid, at } =
            parse("COMMIT 771 (at 2026-12-01 19:40:00.123456+00)").unwrap()
        else {
            panic!("not a commit")
        };
        assert_eq!(xid, 771);
        assert_eq!(
            at,
            Some(time::macros::datetime!(2026-12-01 19:40:00.123456 UTC))
        );
        assert_eq!(
            parse_time("2026-12-01 19:40:00+00"),
            Some(time::macros::datetime!(2026-12-01 19:40:00 UTC))
        );
        assert_eq!(
            parse("message: transactional: 1 prefix: x, sz: 1 content:y").unwrap(),
            Decoded::Message
        );
    }

    #[test]
    fn an_insert_reads_quoted_names_odd_types_and_every_literal_form() {
        let row = r#"table "My Schema"."order": INSERT: id[integer]:7 "Note"[text]:'it''s: [x]:' tags[character varying[]]:'{a,b}' flags[bit varying]:B'101' ok[boolean]:true gone[text]:null odd["weird]type"]:'v' n[numeric]:-1.5e+10"#;
        let Decoded::Change(Change::Insert { table: t, new }) = parse(row).unwrap() else {
            panic!("not an insert")
        };
        assert_eq!(t, table("My Schema", "order"));
        assert_eq!(
            new,
            vec![
                text("id", "7"),
                text("Note", "it's: [x]:"),
                text("tags", "{a,b}"),
                text("flags", "101"),
                text("ok", "true"),
                Column {
                    name: "gone".into(),
                    value: Value::Null
                },
                text("odd", "v"),
                text("n", "-1.5e+10"),
            ]
        );
    }

    #[test]
    fn updates_deletes_and_truncates_keep_what_identifies_the_row() {
        let Decoded::Change(Change::Update { old, new, .. }) = parse(
            "table public.t: UPDATE: old-key: id[integer]:1 new-tuple: id[integer]:2 body[text]:unchanged-toast-datum",
        )
        .unwrap() else {
            panic!("not an update")
        };
        assert_eq!(old, Some(vec![text("id", "1")]));
        assert_eq!(new[1].value, Value::UnchangedToast);
        let Decoded::Change(Change::Update { old: None, .. }) =
            parse("table public.t: UPDATE: id[integer]:2 v[text]:'x'").unwrap()
        else {
            panic!("an update without an old key")
        };
        assert_eq!(
            parse("table public.t: DELETE: (no-tuple-data)").unwrap(),
            Decoded::Change(Change::Delete {
                table: table("public", "t"),
                old: None
            })
        );
        assert_eq!(
            parse("table public.a, s.\"B\": TRUNCATE: restart_seqs cascade").unwrap(),
            Decoded::Change(Change::Truncate {
                tables: vec![table("public", "a"), table("s", "B")],
                restart_identity: true,
                cascade: true
            })
        );
        assert_eq!(
            peek_action("table public.t: DELETE: (no-tuple-data)"),
            Some(("DELETE", table("public", "t")))
        );
    }

    #[test]
    fn errors_name_the_row_without_its_values() {
        let error = parse("table public.users: INSERT: token[text]:'s3cret").unwrap_err();
        assert_eq!(error.excerpt, "table public.users: INSERT:");
        assert!(!error.to_string().contains("s3cret"));
        assert_eq!(parse("weird s3cret row").unwrap_err().excerpt, "weird");
    }

    #[test]
    fn rows_it_cannot_read_are_errors_not_guesses() {
        for bad in [
            "table public.t INSERT:",
            "table public.t: INSERT: id[integer]:'unterminated",
            "table public.t: MERGE: id[integer]:1",
            "BEGIN x",
            "something else",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
