//! An item's SQL with its structure marked: where it names a role, which statements change an
//! owner, which make a grant as its grantor, which add a key. The catalog readers mark these as
//! they write them; restore options (`--no-owner`, `--role-map`, a restoring role that cannot act
//! as a grantor, key splitting) edit the text at the marks, never by reading SQL back. The one
//! exception is `--into-schema`, which rewrites the moved tables' names where the lexer finds
//! them and moves the marks along ([`replace_spans`]).

use serde::{Deserialize, Serialize};

use super::catalog::ident;

/// A marked span of an item's SQL: `len` bytes from byte `at`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mark {
    pub at: usize,
    pub len: usize,
    #[serde(flatten)]
    pub is: Marked,
}

/// What a [`Mark`] spans.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "is", rename_all = "kebab-case")]
pub enum Marked {
    /// A role's name, quoted as an identifier (never `PUBLIC`, which is no role).
    Role { name: String },
    /// A whole `ALTER … OWNER TO role;`: what `--no-owner` leaves out.
    OwnerChange,
    /// `SET SESSION AUTHORIZATION role;` or `RESET SESSION AUTHORIZATION;` around a grant made
    /// by its grantor: what a role that may not act as the grantor leaves out.
    ActingAs,
    /// A plain `ALTER TABLE ONLY t ADD CONSTRAINT c PRIMARY KEY|UNIQUE (columns);`: restore
    /// may build its index beside the table's other builds and attach it after.
    AddKey {
        /// The constraint's name, quoted.
        name: String,
        primary: bool,
        /// Its key columns, each quoted.
        columns: Vec<String>,
    },
}

/// SQL text and its marks, built a piece at a time.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sql {
    pub text: String,
    pub marks: Vec<Mark>,
}

impl From<String> for Sql {
    fn from(text: String) -> Self {
        Self {
            text,
            marks: Vec::new(),
        }
    }
}

impl Sql {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn is_empty(&self) -> bool {
        self.text.is_empty()
    }

    /// Appends text that names no role.
    pub fn push_str(&mut self, text: &str) -> &mut Self {
        self.text.push_str(text);
        self
    }

    fn marked(&mut self, text: &str, is: Marked) -> &mut Self {
        self.marks.push(Mark {
            at: self.text.len(),
            len: text.len(),
            is,
        });
        self.text.push_str(text);
        self
    }

    /// Appends a role quoted as the server quotes it (`quote_ident`), or `PUBLIC`.
    pub fn role(&mut self, quoted: &str) -> &mut Self {
        if quoted == "PUBLIC" {
            return self.push_str(quoted);
        }
        let name = unquoted(quoted);
        self.marked(quoted, Marked::Role { name })
    }

    /// Appends quoted roles joined by `separator`.
    pub fn roles(&mut self, quoted: &[String], separator: &str) -> &mut Self {
        for (n, role) in quoted.iter().enumerate() {
            if n > 0 {
                self.push_str(separator);
            }
            self.role(role);
        }
        self
    }

    /// Appends `ALTER {object} OWNER TO {owner};` and a newline (`owner` quoted).
    pub fn owner(&mut self, object: &str, owner: &str) -> &mut Self {
        let mut statement = Sql::new();
        statement
            .push_str(&format!("ALTER {object} OWNER TO "))
            .role(owner)
            .push_str(";");
        self.append_marked(statement, Marked::OwnerChange);
        self.push_str("\n")
    }

    /// Appends `statements` made as `grantor` (quoted): between `SET SESSION AUTHORIZATION`
    /// and `RESET SESSION AUTHORIZATION`.
    pub fn acting_as(&mut self, grantor: &str, statements: Sql) -> &mut Self {
        let mut set = Sql::new();
        set.push_str("SET SESSION AUTHORIZATION ")
            .role(grantor)
            .push_str(";");
        self.append_marked(set, Marked::ActingAs);
        self.push_str("\n").append(statements);
        self.marked("RESET SESSION AUTHORIZATION;", Marked::ActingAs);
        self.push_str("\n")
    }

    /// Appends `key` (one statement) marked as the key it adds.
    pub fn add_key(&mut self, statement: &str, key: Marked) -> &mut Self {
        self.marked(statement, key)
    }

    /// Appends another piece, its marks moved to where it lands.
    pub fn append(&mut self, other: Sql) -> &mut Self {
        let offset = self.text.len();
        self.marks.extend(other.marks.into_iter().map(|mut m| {
            m.at += offset;
            m
        }));
        self.text.push_str(&other.text);
        self
    }

    /// Appends `other` with one mark over the whole of it.
    fn append_marked(&mut self, other: Sql, is: Marked) -> &mut Self {
        self.marks.push(Mark {
            at: self.text.len(),
            len: other.text.len(),
            is,
        });
        self.append(other)
    }
}

/// The name a `quote_ident` result stands for.
fn unquoted(quoted: &str) -> String {
    match quoted
        .strip_prefix('"')
        .and_then(|rest| rest.strip_suffix('"'))
    {
        Some(inner) => inner.replace("\"\"", "\""),
        None => quoted.to_string(),
    }
}

/// What a restore changes in an item's SQL.
pub struct Edits<'a> {
    /// Leave out owner changes (`--no-owner`).
    pub no_owner: bool,
    /// Leave out `SET`/`RESET SESSION AUTHORIZATION` (the restoring role is no superuser).
    pub no_acting_as: bool,
    /// The new name of a role (`--role-map`), `None` to keep it.
    pub role: &'a dyn Fn(&str) -> Option<String>,
}

/// Marks that do not fit their text: the set was not written by this engine, or was altered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct BadMark(String);

/// Checks that every mark spans text that says what the mark says, so that an edit at a mark
/// can only ever change what it means to.
pub fn check(text: &str, marks: &[Mark]) -> Result<(), BadMark> {
    for mark in marks {
        let spanned = mark
            .at
            .checked_add(mark.len)
            .and_then(|end| text.get(mark.at..end))
            .ok_or_else(|| BadMark(format!("a mark at byte {} is outside its item", mark.at)))?;
        let fits = match &mark.is {
            Marked::Role { name } => spanned != "PUBLIC" && unquoted(spanned) == *name,
            Marked::OwnerChange => spanned.starts_with("ALTER ") && spanned.ends_with(';'),
            Marked::ActingAs => {
                (spanned.starts_with("SET SESSION AUTHORIZATION ") && spanned.ends_with(';'))
                    || spanned == "RESET SESSION AUTHORIZATION;"
            }
            Marked::AddKey { .. } => {
                spanned.starts_with("ALTER TABLE ONLY ")
                    && key_tail(&mark.is).is_some_and(|tail| spanned.ends_with(&tail))
            }
        };
        if !fits {
            return Err(BadMark(format!(
                "a mark at byte {} does not fit the text it spans",
                mark.at
            )));
        }
    }
    check_nesting(marks)
}

/// The end of the statement an [`Marked::AddKey`] mark spans: ` ADD CONSTRAINT name PRIMARY
/// KEY (columns);`; `None` for another mark, or a key of no columns.
pub fn key_tail(key: &Marked) -> Option<String> {
    match key {
        Marked::AddKey {
            name,
            primary,
            columns,
        } if !columns.is_empty() => Some(format!(
            " ADD CONSTRAINT {name} {} ({});",
            if *primary { "PRIMARY KEY" } else { "UNIQUE" },
            columns.join(", ")
        )),
        _ => None,
    }
}

/// Marks nest two deep at most and never overlap otherwise: statements (owner changes,
/// grantors, keys) are apart from each other, roles are apart from each other, and a role lies
/// wholly inside one statement or outside all of them. So every edit changes text no other
/// edit touches.
fn check_nesting(marks: &[Mark]) -> Result<(), BadMark> {
    let overlap = |at: usize| BadMark(format!("marks overlap at byte {at}"));
    let end = |m: &Mark| m.at + m.len; // checked by `check` before
    let mut statements: Vec<&Mark> = marks
        .iter()
        .filter(|m| !matches!(m.is, Marked::Role { .. }))
        .collect();
    let mut roles: Vec<&Mark> = marks
        .iter()
        .filter(|m| matches!(m.is, Marked::Role { .. }))
        .collect();
    statements.sort_by_key(|m| m.at);
    roles.sort_by_key(|m| m.at);
    for group in [&statements, &roles] {
        for pair in group.windows(2) {
            if end(pair[0]) > pair[1].at || pair[0].len == 0 {
                return Err(overlap(pair[1].at));
            }
        }
    }
    for role in &roles {
        // The last statement starting at or before the role, and the first after it.
        let next = statements.partition_point(|s| s.at <= role.at);
        let inside_or_apart = |s: &Mark| {
            (s.at <= role.at && end(role) <= end(s)) || end(role) <= s.at || role.at >= end(s)
        };
        let before = next.checked_sub(1).map(|n| statements[n]);
        if !before.is_none_or(inside_or_apart)
            || !statements.get(next).is_none_or(|s| inside_or_apart(s))
        {
            return Err(overlap(role.at));
        }
    }
    Ok(())
}

/// `text` with each `(at, length, new text)` of `changes` (in order, apart from each other)
/// made, and `marks` moved to where their text landed: a mark that holds a change grows or
/// shrinks with it; a change may not straddle a mark's edge.
pub fn replace_spans(
    text: &str,
    marks: &[Mark],
    changes: &[(usize, usize, String)],
) -> Result<Sql, BadMark> {
    let moved = |at: usize| -> usize {
        let mut to = at as isize;
        for (from, old, new) in changes {
            if from + old <= at {
                to += new.len() as isize - *old as isize;
            }
        }
        to as usize
    };
    let mut out = Sql::new();
    let mut cursor = 0;
    for (at, old, new) in changes {
        let before = text
            .get(cursor..*at)
            .ok_or_else(|| BadMark(format!("a change at byte {at} is out of order")))?;
        out.text.push_str(before);
        out.text.push_str(new);
        cursor = at + old;
    }
    out.text.push_str(text.get(cursor..).unwrap_or_default());
    for mark in marks {
        let end = mark.at + mark.len;
        let straddles = changes.iter().any(|(from, old, _)| {
            let (from, to) = (*from, from + old);
            (from < mark.at && mark.at < to) || (from < end && end < to)
        });
        if straddles {
            return Err(BadMark(format!(
                "a mark at byte {} straddles a change",
                mark.at
            )));
        }
        let at = moved(mark.at);
        out.marks.push(Mark {
            at,
            len: moved(end) - at,
            is: mark.is.clone(),
        });
    }
    Ok(out)
}

/// `text` with `edits` made at its `marks` (checked with [`check`] first), and the marks that
/// survive, moved to where their text landed. A span left out takes the marks inside it.
pub fn edit(text: &str, marks: &[Mark], edits: &Edits<'_>) -> Result<Sql, BadMark> {
    check(text, marks)?;
    let mut sorted: Vec<&Mark> = marks.iter().collect();
    sorted.sort_by_key(|m| (m.at, std::cmp::Reverse(m.len)));
    // (at, old length, new text) for every change, in order.
    let mut changes: Vec<(usize, usize, String)> = Vec::new();
    let mut gone_until = 0;
    for mark in &sorted {
        if mark.at < gone_until {
            continue;
        }
        let leave_out = match mark.is {
            Marked::OwnerChange => edits.no_owner,
            Marked::ActingAs => edits.no_acting_as,
            _ => false,
        };
        if leave_out {
            changes.push((mark.at, mark.len, String::new()));
            gone_until = mark.at + mark.len;
        } else if let Marked::Role { name } = &mark.is
            && let Some(new) = (edits.role)(name)
        {
            changes.push((mark.at, mark.len, ident(&new)));
        }
    }
    let moved = |at: usize| -> usize {
        let mut to = at as isize;
        for (from, old, new) in &changes {
            if from + old <= at {
                to += new.len() as isize - *old as isize;
            }
        }
        to as usize
    };
    let mut out = Sql::new();
    let mut cursor = 0;
    for (at, old, new) in &changes {
        out.text.push_str(&text[cursor..*at]);
        out.text.push_str(new);
        cursor = at + old;
    }
    out.text.push_str(&text[cursor..]);
    for mark in sorted {
        let end = mark.at + mark.len;
        let inside_a_removal = changes
            .iter()
            .any(|(from, old, new)| new.is_empty() && mark.at >= *from && end <= from + old);
        if inside_a_removal {
            continue;
        }
        let at = moved(mark.at);
        let is = match &mark.is {
            Marked::Role { name } => Marked::Role {
                name: (edits.role)(name).unwrap_or_else(|| name.clone()),
            },
            other => other.clone(),
        };
        let len = moved(end)
            .checked_sub(at)
            .ok_or_else(|| BadMark(format!("a mark at byte {} straddles an edit", mark.at)))?;
        out.marks.push(Mark { at, len, is });
    }
    Ok(out)
}

/// The grantors an item makes grants as: the roles its `SET SESSION AUTHORIZATION` name.
pub fn grantors(marks: &[Mark]) -> Vec<String> {
    let mut names = Vec::new();
    for acting in marks.iter().filter(|m| m.is == Marked::ActingAs) {
        for mark in marks {
            if let Marked::Role { name } = &mark.is
                && mark.at >= acting.at
                && mark.at + mark.len <= acting.at + acting.len
                && !names.contains(name)
            {
                names.push(name.clone());
            }
        }
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_change(_: &str) -> Option<String> {
        None
    }

    fn rename(name: &str) -> Option<String> {
        match name {
            "old" => Some("new".into()),
            "Old Admin" => Some("admin".into()),
            "anon" => Some("web anon".into()),
            _ => None,
        }
    }

    fn granted_as_lead() -> Sql {
        let mut grant = Sql::new();
        grant
            .push_str("GRANT SELECT ON TABLE t TO ")
            .role("anon")
            .push_str(";\n");
        let mut sql = Sql::new();
        sql.push_str("GRANT SELECT ON TABLE t TO ")
            .role("lead")
            .push_str(" WITH GRANT OPTION;\n")
            .acting_as("lead", grant);
        sql
    }

    #[test]
    fn owners_grantees_grantors_and_policy_roles_are_renamed_where_marked_only() {
        let mut sql = Sql::new();
        sql.push_str("CREATE TABLE app.old (old text DEFAULT 'old');\n")
            .owner("TABLE app.old", "old")
            .push_str("CREATE POLICY p ON app.old TO ")
            .roles(
                &["anon".into(), "\"Old Admin\"".into(), "PUBLIC".into()],
                ", ",
            )
            .push_str(" USING ((old = 'old'));\n")
            .append(granted_as_lead());
        let edits = Edits {
            no_owner: false,
            no_acting_as: false,
            role: &rename,
        };
        let edited = edit(&sql.text, &sql.marks, &edits).unwrap();
        assert_eq!(
            edited.text,
            "CREATE TABLE app.old (old text DEFAULT 'old');\n\
             ALTER TABLE app.old OWNER TO new;\n\
             CREATE POLICY p ON app.old TO \"web anon\", admin, PUBLIC USING ((old = 'old'));\n\
             GRANT SELECT ON TABLE t TO lead WITH GRANT OPTION;\n\
             SET SESSION AUTHORIZATION lead;\nGRANT SELECT ON TABLE t TO \"web anon\";\nRESET SESSION AUTHORIZATION;\n"
        );
        // The moved marks still fit: a second edit works on the first one's output.
        check(&edited.text, &edited.marks).unwrap();
        assert_eq!(edited.marks.len(), sql.marks.len());
    }

    #[test]
    fn no_owner_and_no_acting_as_leave_out_their_statements_and_the_roles_in_them() {
        let mut sql = Sql::new();
        sql.push_str("CREATE SCHEMA app;\n")
            .owner("SCHEMA app", "\"Old Admin\"")
            .append(granted_as_lead());
        assert_eq!(grantors(&sql.marks), ["lead"]);
        let edits = Edits {
            no_owner: true,
            no_acting_as: true,
            role: &rename,
        };
        let edited = edit(&sql.text, &sql.marks, &edits).unwrap();
        assert_eq!(
            edited.text,
            "CREATE SCHEMA app;\n\n\
             GRANT SELECT ON TABLE t TO lead WITH GRANT OPTION;\n\
             \nGRANT SELECT ON TABLE t TO \"web anon\";\n\n"
        );
        check(&edited.text, &edited.marks).unwrap();
        assert!(grantors(&edited.marks).is_empty());
    }

    #[test]
    fn a_mark_that_does_not_fit_its_text_is_refused_not_followed() {
        let mut sql = Sql::new();
        sql.push_str("CREATE SCHEMA app;\n")
            .owner("SCHEMA app", "old");
        let edits = Edits {
            no_owner: true,
            no_acting_as: false,
            role: &no_change,
        };
        for (at, len) in [(0, 18), (3, 1000), (usize::MAX, 2)] {
            let mut marks = sql.marks.clone();
            marks[0].at = at;
            marks[0].len = len;
            assert!(edit(&sql.text, &marks, &edits).is_err(), "{at} {len}");
        }
        let mut marks = sql.marks.clone();
        marks[1].is = Marked::Role {
            name: "someone else".into(),
        };
        assert!(edit(&sql.text, &marks, &edits).is_err());
        // Not on a character boundary.
        let text = "ALTER SCHEMA é OWNER TO x;";
        let marks = [Mark {
            at: 14,
            len: 1,
            is: Marked::Role { name: "x".into() },
        }];
        assert!(check(text, &marks).is_err());
    }

    #[test]
    fn marks_that_overlap_or_claim_another_key_are_refused_never_a_panic() {
        let role = |at, len, name: &str| Mark {
            at,
            len,
            is: Marked::Role { name: name.into() },
        };
        let edits = Edits {
            no_owner: true,
            no_acting_as: true,
            role: &|_| Some("someone".into()),
        };
        // The same role marked twice.
        let text = "ALTER SCHEMA s OWNER TO postgres;";
        let twice = [role(24, 8, "postgres"), role(24, 8, "postgres")];
        assert!(edit(text, &twice, &edits).is_err());
        // A role straddling the end of a statement that is left out.
        let text = "RESET SESSION AUTHORIZATION;\n";
        let straddling = [
            Mark {
                at: 0,
                len: 28,
                is: Marked::ActingAs,
            },
            role(27, 2, ";\n"),
        ];
        assert!(edit(text, &straddling, &edits).is_err());
        // A key mark whose columns are not the statement's.
        let text = "ALTER TABLE ONLY t ADD CONSTRAINT k PRIMARY KEY (id);";
        let key = |columns: &[&str]| Mark {
            at: 0,
            len: text.len(),
            is: Marked::AddKey {
                name: "k".into(),
                primary: true,
                columns: columns.iter().map(|c| c.to_string()).collect(),
            },
        };
        assert!(check(text, &[key(&["id"])]).is_ok());
        assert!(check(text, &[key(&["other"])]).is_err());
        assert!(check(text, &[key(&[])]).is_err());
    }
}
