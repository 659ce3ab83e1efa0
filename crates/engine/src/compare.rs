//! `backstop compare`: what differs between a table and a copy of it restored beside it in the
//! same database (as it was before an accident, e.g. `recovered.orders` beside `app.orders`),
//! and the SQL that puts the missing and changed rows back, for a person to review and run.
//!
//! It changes nothing itself: every read runs in one READ ONLY, repeatable-read transaction, so
//! the counts and examples come from one snapshot. Rows are matched on the live table's primary
//! key, else its replica identity index, else on every column both tables have (then a changed
//! row is one missing and one extra). Values are compared as text (`l.c::text IS DISTINCT FROM
//! r.c::text`), which every type has, json included. The SQL reads the recovered table when it
//! runs, so no row value is written into it. Which columns take part and every statement are
//! pure functions of the two tables' shapes ([`plan`], [`Comparison::putback_sql`]).

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use backstop_pg::session::Purpose;
use backstop_pg::version::{ServerVersion, VersionError};
use backstop_pg::{ConnectError, PgTarget, describe, value};
use tokio_postgres::{Client, Row};

use crate::catalog::ident;
use crate::script::{inert, meta_command};

/// How many example keys of each difference are shown.
pub const EXAMPLES: usize = 5;

/// How many characters of an example value are shown (the rest is cut, with `…`).
const EXAMPLE_CHARS: usize = 60;

/// How long a read waits for a table another session holds exclusively (ALTER TABLE, a
/// TRUNCATE, a VACUUM FULL) before the comparison gives up.
pub const LOCK_WAIT: Duration = Duration::from_secs(30);

/// How long the put-back SQL waits for a lock on the live table before it fails (it can be run
/// again: it does only what is still needed when it runs).
const PUTBACK_LOCK_WAIT: &str = "30s";

/// What went wrong, each with what to do about it. Nothing was changed in any case.
#[derive(Debug, thiserror::Error)]
pub enum CompareError {
    #[error(transparent)]
    Connect(#[from] ConnectError),
    #[error(transparent)]
    Version(#[from] VersionError),
    #[error(
        "`{given}` is not a table name: {reason}; write schema.table or table, with a part in double quotes to take it as written"
    )]
    BadName { given: String, reason: String },
    #[error(
        "no table {given} in database `{database}`; check the name (schema.table; a part in double quotes keeps its case) and that the copy was restored into this database"
    )]
    NoSuchTable { given: String, database: String },
    #[error(
        "{given} names {count} tables in database `{database}` ({tables}); name one as schema.table, with double quotes around a part whose case matters"
    )]
    Ambiguous {
        given: String,
        database: String,
        count: usize,
        tables: String,
    },
    #[error(
        "--table and --with both name {table}; --with is the copy restored beside it (e.g. recovered.orders)"
    )]
    SameTable { table: String },
    #[error(
        "{table} and {recovered} have no column in common; check that --with names a copy of {table}"
    )]
    NoCommonColumns { table: String, recovered: String },
    #[error(
        "{recovered} lacks {columns} of the key {index} of {table}; rows cannot be matched without them: restore the copy with every column of {table}"
    )]
    KeyColumnsMissing {
        table: String,
        recovered: String,
        index: String,
        columns: String,
    },
    #[error(
        "every column {table} shares with {recovered} is generated in {table}; there is nothing to put back"
    )]
    NothingInsertable { table: String, recovered: String },
    #[error(
        "{recovered} holds {count} key(s) of {table} more than once (e.g. {example}); a put-back needs one row per key: remove the duplicates from {recovered} and compare again"
    )]
    DuplicateKeys {
        table: String,
        recovered: String,
        count: u64,
        example: String,
    },
    #[error(
        "another session held a lock on {tables} for more than {waited} s ({reason}); nothing was changed: compare again once it is released"
    )]
    Locked {
        tables: String,
        waited: u64,
        reason: String,
    },
    #[error("comparing failed while {step}: {reason}")]
    Database { step: &'static str, reason: String },
    #[error(
        "the server of database `{database}` stopped answering ({reason}); nothing was changed: compare again once it answers"
    )]
    ServerSilent { database: String, reason: String },
    #[error(
        "{path} already exists; move it away or name another file with --output (nothing was written)"
    )]
    OutputExists { path: String },
    #[error("cannot write {path}: {reason}; check the folder exists and is writable")]
    Output { path: String, reason: String },
    #[error(
        "the put-back SQL for {table} would hold a psql meta-command at line {line}; nothing was written"
    )]
    Unsafe { table: String, line: usize },
}

/// One part of a table name as given: `exact` when it was in double quotes (taken as written),
/// else matched ignoring case (as `restore --tables` takes names).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamePart {
    pub text: String,
    pub exact: bool,
}

/// A table name as given: `schema.table`, or `table` in whichever schema has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GivenName {
    pub schema: Option<NamePart>,
    pub table: NamePart,
}

/// Reads `schema.table` or `table`; a part in double quotes is taken as written (`""` is one
/// quote, a dot inside is part of the name).
pub fn parse_name(given: &str) -> Result<GivenName, String> {
    let mut parts = Vec::new();
    let mut chars = given.chars().peekable();
    loop {
        let part = if chars.peek() == Some(&'"') {
            chars.next();
            let mut text = String::new();
            loop {
                match chars.next() {
                    None => return Err("a double quote is not closed".into()),
                    Some('"') if chars.peek() == Some(&'"') => {
                        chars.next();
                        text.push('"');
                    }
                    Some('"') => break,
                    Some(c) => text.push(c),
                }
            }
            NamePart { text, exact: true }
        } else {
            let mut text = String::new();
            while let Some(&c) = chars.peek() {
                match c {
                    '.' => break,
                    '"' => return Err("double quotes must enclose a whole part".into()),
                    c => text.push(c),
                }
                chars.next();
            }
            NamePart { text, exact: false }
        };
        if part.text.is_empty() {
            return Err("a part of it is empty".into());
        }
        parts.push(part);
        match chars.next() {
            None => break,
            Some('.') => {}
            Some(_) => return Err("double quotes must enclose a whole part".into()),
        }
    }
    let mut parts = parts.into_iter();
    match (parts.next(), parts.next(), parts.next()) {
        (Some(table), None, None) => Ok(GivenName {
            schema: None,
            table,
        }),
        (Some(schema), Some(table), None) => Ok(GivenName {
            schema: Some(schema),
            table,
        }),
        _ => Err("it has more than two parts (the database is the one --db names)".into()),
    }
}

/// How an identity column takes its values (`attidentity`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Identity {
    None,
    /// `GENERATED ALWAYS AS IDENTITY`: an INSERT giving a value needs `OVERRIDING SYSTEM
    /// VALUE`, an UPDATE may not set it.
    Always,
    ByDefault,
}

impl Identity {
    fn from_code(code: &str) -> Self {
        match code {
            "a" => Self::Always,
            "d" => Self::ByDefault,
            _ => Self::None,
        }
    }
}

/// A column of a compared table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    pub name: String,
    /// The type's oid: key columns of different types are matched as text.
    pub type_oid: u32,
    /// The type as SQL (`numeric(10,2)`), for what the SQL's comments say.
    pub type_name: String,
    /// A generated column (`attgenerated`): never inserted or updated.
    pub generated: bool,
    pub identity: Identity,
}

/// A table as the catalog has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    pub oid: u32,
    pub schema: String,
    pub name: String,
    /// A partitioned table is read whole; a plain one `ONLY` (without inheritance children).
    pub partitioned: bool,
    pub columns: Vec<Column>,
}

impl Table {
    /// The name as SQL, each part quoted where it must be.
    pub fn sql(&self) -> String {
        format!("{}.{}", ident(&self.schema), ident(&self.name))
    }

    /// The name to show or put in a comment: as SQL, with no control character.
    pub fn shown(&self) -> String {
        format!("{}.{}", shown_name(&self.schema), shown_name(&self.name))
    }

    /// The table in a FROM clause or an UPDATE: its own rows.
    fn rows(&self) -> String {
        if self.partitioned {
            self.sql()
        } else {
            format!("ONLY {}", self.sql())
        }
    }

    fn column(&self, name: &str) -> Option<&Column> {
        self.columns.iter().find(|c| c.name == name)
    }
}

/// An index that identifies the live table's rows: its primary key or replica identity index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyIndex {
    pub name: String,
    pub primary: bool,
    pub columns: Vec<String>,
}

/// What rows are matched on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum MatchedOn {
    PrimaryKey,
    ReplicaIdentity,
    /// Neither: every compared column (a changed row is one missing and one extra).
    WholeRow,
}

/// How the two tables are compared and how rows are put back: decided from their shapes alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub live: Table,
    pub recovered: Table,
    pub matched_on: MatchedOn,
    /// The key index's name (none for whole rows).
    pub index: Option<String>,
    /// The columns rows are matched on: the key's, or every compared column.
    pub key_columns: Vec<String>,
    /// Whether each key column is matched as text (its types differ between the tables).
    key_as_text: Vec<bool>,
    /// The columns both tables have, in the live table's order.
    pub compared_columns: Vec<String>,
    /// The columns a put-back INSERT gives (compared, less those generated in the live table).
    pub inserted: Vec<String>,
    /// Whether the INSERT needs `OVERRIDING SYSTEM VALUE` (a GENERATED ALWAYS identity among
    /// its columns).
    pub overriding: bool,
    /// The columns a put-back UPDATE sets: compared, less the key and what cannot be set.
    pub updated: Vec<String>,
    /// Compared columns the UPDATE leaves alone, with why.
    pub not_updated: Vec<(String, &'static str)>,
    pub live_only: Vec<String>,
    pub recovered_only: Vec<String>,
    /// Compared columns whose types differ: `(name, live type, recovered type)`.
    pub retyped: Vec<(String, String, String)>,
}

/// Decides what is compared and put back: the key (primary key, else replica identity index,
/// else whole rows), the columns both tables have, and which of them an INSERT and an UPDATE
/// may write.
pub fn plan(live: Table, recovered: Table, keys: &[KeyIndex]) -> Result<Plan, CompareError> {
    let compared: Vec<&Column> = live
        .columns
        .iter()
        .filter(|c| recovered.column(&c.name).is_some())
        .collect();
    if compared.is_empty() {
        return Err(CompareError::NoCommonColumns {
            table: live.shown(),
            recovered: recovered.shown(),
        });
    }
    let compared_columns: Vec<String> = compared.iter().map(|c| c.name.clone()).collect();
    let key = keys
        .iter()
        .find(|k| k.primary)
        .or_else(|| keys.iter().find(|k| !k.primary));
    let (matched_on, index, key_columns) = match key {
        Some(k) if k.primary => (
            MatchedOn::PrimaryKey,
            Some(k.name.clone()),
            k.columns.clone(),
        ),
        Some(k) => (
            MatchedOn::ReplicaIdentity,
            Some(k.name.clone()),
            k.columns.clone(),
        ),
        None => (MatchedOn::WholeRow, None, compared_columns.clone()),
    };
    let lacking: Vec<String> = key_columns
        .iter()
        .filter(|k| recovered.column(k).is_none() || live.column(k).is_none())
        .map(|k| shown_name(k))
        .collect();
    if !lacking.is_empty() {
        return Err(CompareError::KeyColumnsMissing {
            table: live.shown(),
            recovered: recovered.shown(),
            index: shown_name(index.as_deref().unwrap_or_default()),
            columns: lacking.join(", "),
        });
    }
    let differs = |name: &str| match (live.column(name), recovered.column(name)) {
        (Some(l), Some(r)) => l.type_oid != r.type_oid,
        _ => true,
    };
    let key_as_text = key_columns.iter().map(|k| differs(k)).collect();
    let inserted: Vec<String> = compared
        .iter()
        .filter(|c| !c.generated)
        .map(|c| c.name.clone())
        .collect();
    if inserted.is_empty() {
        return Err(CompareError::NothingInsertable {
            table: live.shown(),
            recovered: recovered.shown(),
        });
    }
    let overriding = compared
        .iter()
        .any(|c| !c.generated && c.identity == Identity::Always);
    let mut updated = Vec::new();
    let mut not_updated = Vec::new();
    if matched_on != MatchedOn::WholeRow {
        for column in compared.iter().filter(|c| !key_columns.contains(&c.name)) {
            if column.generated {
                not_updated.push((column.name.clone(), "generated"));
            } else if column.identity == Identity::Always {
                not_updated.push((column.name.clone(), "identity GENERATED ALWAYS"));
            } else {
                updated.push(column.name.clone());
            }
        }
    }
    let retyped = compared
        .iter()
        .filter_map(|l| {
            let r = recovered.column(&l.name)?;
            (l.type_oid != r.type_oid)
                .then(|| (l.name.clone(), l.type_name.clone(), r.type_name.clone()))
        })
        .collect();
    let live_only = live
        .columns
        .iter()
        .filter(|c| recovered.column(&c.name).is_none())
        .map(|c| c.name.clone())
        .collect();
    let recovered_only = recovered
        .columns
        .iter()
        .filter(|c| live.column(&c.name).is_none())
        .map(|c| c.name.clone())
        .collect();
    Ok(Plan {
        live,
        recovered,
        matched_on,
        index,
        key_columns,
        key_as_text,
        compared_columns,
        inserted,
        overriding,
        updated,
        not_updated,
        live_only,
        recovered_only,
        retyped,
    })
}

/// A name as people read it: bare when it is plain lower-case (keywords too, `public`), else
/// double-quoted as SQL; with no control character.
fn shown_name(name: &str) -> String {
    let plain = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if plain {
        name.to_string()
    } else {
        inert(&ident(name))
    }
}

/// `alias.column::text`.
fn as_text(alias: &str, column: &str) -> String {
    format!("{alias}.{}::text", ident(column))
}

/// Names as SQL, comma-separated, each behind `alias.` when one is given.
fn column_list(alias: Option<&str>, columns: &[String]) -> String {
    columns
        .iter()
        .map(|c| match alias {
            Some(alias) => format!("{alias}.{}", ident(c)),
            None => ident(c),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Names as they are shown in comments and messages.
fn shown_list(columns: &[String]) -> String {
    columns
        .iter()
        .map(|c| shown_name(c))
        .collect::<Vec<_>>()
        .join(", ")
}

impl Plan {
    /// Key column `i` of `alias`'s row, as matched: itself, or as text where the two tables'
    /// types differ.
    fn key_expression(&self, alias: &str, i: usize) -> String {
        let column = &self.key_columns[i];
        if self.key_as_text.get(i).copied().unwrap_or(true) {
            as_text(alias, column)
        } else {
            format!("{alias}.{}", ident(column))
        }
    }

    /// The condition that a live row `l` and a recovered row `r` are the same row. Whole rows
    /// are matched NULL-safely, each column as text: `ARRAY[l.a::text, …] = ARRAY[r.a::text, …]`
    /// holds exactly when every `l.a::text IS NOT DISTINCT FROM r.a::text` does (array equality
    /// takes two NULL elements as equal), and unlike IS NOT DISTINCT FROM it can be hashed, so
    /// the anti-join is one hash join rather than a nested loop over both tables.
    pub fn key_match(&self) -> String {
        match self.matched_on {
            MatchedOn::WholeRow => {
                let side = |alias: &str| {
                    self.key_columns
                        .iter()
                        .map(|c| as_text(alias, c))
                        .collect::<Vec<_>>()
                        .join(", ")
                };
                format!("ARRAY[{}] = ARRAY[{}]", side("l"), side("r"))
            }
            _ => (0..self.key_columns.len())
                .map(|i| {
                    format!(
                        "{} = {}",
                        self.key_expression("l", i),
                        self.key_expression("r", i)
                    )
                })
                .collect::<Vec<_>>()
                .join(" AND "),
        }
    }

    /// The condition that `l` and `r` differ in a column the UPDATE sets.
    fn differ(&self) -> String {
        let each: Vec<String> = self
            .updated
            .iter()
            .map(|c| format!("{} IS DISTINCT FROM {}", as_text("l", c), as_text("r", c)))
            .collect();
        format!("({})", each.join(" OR "))
    }

    /// The example columns of `alias`'s row (cut short: only the start is shown) and their order.
    fn examples(&self, alias: &str) -> (String, String) {
        let shown = self
            .key_columns
            .iter()
            .map(|c| {
                format!(
                    "pg_catalog.left({}, {})",
                    as_text(alias, c),
                    EXAMPLE_CHARS + 1
                )
            })
            .collect::<Vec<_>>()
            .join(", ");
        let order = match self.matched_on {
            MatchedOn::WholeRow => (2..self.key_columns.len() + 2)
                .map(|i| i.to_string())
                .collect::<Vec<_>>()
                .join(", "),
            _ => (0..self.key_columns.len())
                .map(|i| self.key_expression(alias, i))
                .collect::<Vec<_>>()
                .join(", "),
        };
        (shown, order)
    }

    /// Rows of the recovered table the live one lacks: their count (on each row) and the first
    /// few keys.
    pub fn missing_query(&self) -> String {
        let (shown, order) = self.examples("r");
        format!(
            "SELECT pg_catalog.count(*) OVER (), {shown} FROM {} AS r \
             WHERE NOT EXISTS (SELECT 1 FROM {} AS l WHERE {}) ORDER BY {order} LIMIT {EXAMPLES}",
            self.recovered.rows(),
            self.live.rows(),
            self.key_match()
        )
    }

    /// Rows of the live table the recovered one lacks.
    pub fn extra_query(&self) -> String {
        let (shown, order) = self.examples("l");
        format!(
            "SELECT pg_catalog.count(*) OVER (), {shown} FROM {} AS l \
             WHERE NOT EXISTS (SELECT 1 FROM {} AS r WHERE {}) ORDER BY {order} LIMIT {EXAMPLES}",
            self.live.rows(),
            self.recovered.rows(),
            self.key_match()
        )
    }

    /// Rows both tables have under one key whose updatable columns differ; `None` when rows
    /// are matched whole (a changed row is then one missing and one extra) or nothing can differ.
    pub fn changed_query(&self) -> Option<String> {
        if self.matched_on == MatchedOn::WholeRow || self.updated.is_empty() {
            return None;
        }
        let (shown, order) = self.examples("r");
        Some(format!(
            "SELECT pg_catalog.count(*) OVER (), {shown} FROM {} AS r JOIN {} AS l ON {} \
             WHERE {} ORDER BY {order} LIMIT {EXAMPLES}",
            self.recovered.rows(),
            self.live.rows(),
            self.key_match(),
            self.differ()
        ))
    }

    /// Keys the recovered table holds more than once (a copy has no unique index): their count
    /// and one of them. `None` for whole rows.
    pub fn duplicates_query(&self) -> Option<String> {
        if self.matched_on == MatchedOn::WholeRow {
            return None;
        }
        let (shown, _) = self.examples("r");
        let group = (0..self.key_columns.len())
            .map(|i| self.key_expression("r", i))
            .collect::<Vec<_>>()
            .join(", ");
        Some(format!(
            "SELECT pg_catalog.count(*) OVER (), {shown} FROM {} AS r GROUP BY {group} \
             HAVING pg_catalog.count(*) > 1 LIMIT 1",
            self.recovered.rows()
        ))
    }

    /// How rows are matched, for people.
    pub fn matched_on_text(&self) -> String {
        let columns = shown_list(&self.key_columns);
        let index = shown_name(self.index.as_deref().unwrap_or_default());
        match self.matched_on {
            MatchedOn::PrimaryKey => format!("the primary key {index} ({columns})"),
            MatchedOn::ReplicaIdentity => format!("the replica identity index {index} ({columns})"),
            MatchedOn::WholeRow => format!(
                "whole rows ({columns}): {} has no primary key or replica identity index, so a \
                 changed row counts as one missing and one extra, and only those two counts mean \
                 something",
                self.live.shown()
            ),
        }
    }
}

/// Rows of one kind of difference: how many, and the first few keys (each value as text, cut
/// short and with no control character; `None` for NULL).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Found {
    pub rows: u64,
    pub example_keys: Vec<Vec<Option<String>>>,
}

/// What a comparison found, from one snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Comparison {
    pub plan: Plan,
    /// When the snapshot was taken (the server's clock), RFC 3339 in UTC.
    pub checked_at: String,
    /// Rows of the recovered table the live one lacks.
    pub missing: Found,
    /// Rows of the live table the recovered one lacks.
    pub extra: Found,
    /// Rows under one key that differ; `None` when rows are matched whole.
    pub changed: Option<Found>,
}

fn rows(n: u64) -> String {
    format!("{n} row{}", if n == 1 { "" } else { "s" })
}

impl Comparison {
    /// Whether the live table lacked a row or held one changed when compared.
    pub fn has_putback(&self) -> bool {
        self.missing.rows > 0 || self.changed.as_ref().is_some_and(|c| c.rows > 0)
    }

    /// The SQL that puts the missing rows back and the changed ones to their recovered values,
    /// in one transaction, reading the recovered table when it runs: an INSERT of the rows the
    /// live table lacks and (matched on a key) an UPDATE of those that differ. Each finds its
    /// rows when it runs, so it puts back what is missing or changed then.
    pub fn putback_sql(&self) -> String {
        let plan = &self.plan;
        let live = plan.live.shown();
        let recovered = plan.recovered.shown();
        let changed = self.changed.as_ref().map_or(0, |c| c.rows);
        let mut lines = vec![
            format!(
                "Puts rows of {live} back from {recovered}, as `backstop compare` found them at {}.",
                self.checked_at
            ),
            "Review it, then run it: psql -v ON_ERROR_STOP=1 -f FILE (one transaction: all or nothing).".into(),
            String::new(),
            "When compared:".into(),
        ];
        if !self.has_putback() {
            lines.push(format!(
                "  {live} held every row of {recovered} as it is: the statements below change nothing unless that changed since;"
            ));
        }
        if self.missing.rows > 0 {
            lines.push(format!(
                "  {} of {recovered} missing from {live}: the INSERT below adds them back;",
                rows(self.missing.rows)
            ));
        }
        if changed > 0 {
            lines.push(format!(
                "  {} changed (same key, some column differs): the UPDATE below sets them back to the values in {recovered};",
                rows(changed)
            ));
        }
        lines.push(format!(
            "  {} in {live} and not in {recovered}: left as {} (nothing is deleted).",
            rows(self.extra.rows),
            if self.extra.rows == 1 {
                "it is"
            } else {
                "they are"
            }
        ));
        lines.push(format!("Rows are matched on {}.", plan.matched_on_text()));
        if plan.matched_on == MatchedOn::WholeRow {
            lines.push(format!(
                "Rows are matched as sets: a row {recovered} holds twice and {live} once is not missing."
            ));
        }
        lines.push(format!(
            "Columns compared: {}.",
            shown_list(&plan.compared_columns)
        ));
        for (name, why) in &plan.not_updated {
            lines.push(format!(
                "Not set by the UPDATE: {} ({why}).",
                shown_name(name)
            ));
        }
        if !plan.live_only.is_empty() {
            lines.push(format!(
                "Only in {live} (inserted rows get their defaults): {}.",
                shown_list(&plan.live_only)
            ));
        }
        if !plan.recovered_only.is_empty() {
            lines.push(format!(
                "Only in {recovered} (not put back): {}.",
                shown_list(&plan.recovered_only)
            ));
        }
        for (name, live_type, recovered_type) in &plan.retyped {
            lines.push(format!(
                "{} is {} in {live} and {} in {recovered}: compared as text, assigned with the type's cast.",
                shown_name(name),
                inert(live_type),
                inert(recovered_type)
            ));
        }
        if plan.overriding {
            lines.push(
                "Inserted rows keep their identity values (OVERRIDING SYSTEM VALUE); the identity sequence is not moved."
                    .into(),
            );
        }
        lines.extend([
            format!("The triggers of {live} fire for every row inserted and updated, and its constraints are checked."),
            format!(
                "It reads {recovered} when it runs: that table must still exist then, and no row value is in this file."
            ),
            "Each statement compares again when it runs: it puts back what is missing or changed then, which may differ from the counts above."
                .into(),
        ]);
        let mut sql: String = lines
            .iter()
            .map(|line| {
                if line.is_empty() {
                    "--\n".to_string()
                } else {
                    format!("-- {line}\n")
                }
            })
            .collect();
        sql.push_str(&format!(
            "\nBEGIN;\nSET LOCAL lock_timeout = '{PUTBACK_LOCK_WAIT}';\n"
        ));
        if !plan.updated.is_empty() {
            let set = plan
                .updated
                .iter()
                .map(|c| format!("{} = r.{}", ident(c), ident(c)))
                .collect::<Vec<_>>()
                .join(", ");
            sql.push_str(&format!(
                "\nUPDATE {} AS l SET {set}\n  FROM {} AS r\n  WHERE {}\n    AND {};\n",
                plan.live.rows(),
                plan.recovered.rows(),
                plan.key_match(),
                plan.differ()
            ));
        }
        {
            let overriding = if plan.overriding {
                " OVERRIDING SYSTEM VALUE"
            } else {
                ""
            };
            sql.push_str(&format!(
                "\nINSERT INTO {} ({}){overriding}\n  SELECT {}\n  FROM {} AS r\n  WHERE NOT EXISTS (SELECT 1 FROM {} AS l WHERE {});\n",
                plan.live.sql(),
                column_list(None, &plan.inserted),
                column_list(Some("r"), &plan.inserted),
                plan.recovered.rows(),
                plan.live.rows(),
                plan.key_match()
            ));
        }
        sql.push_str("\nCOMMIT;\n");
        sql
    }
}

/// The file name a put-back is written to by default: `<table>.putback.sql`, with only
/// letters, digits, `_` and `-` kept from the table's name (others become `_`), so a name can
/// never reach another folder.
pub fn default_file_name(table: &str) -> String {
    let name: String = table
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!(
        "{}.putback.sql",
        if name.is_empty() { "table" } else { &name }
    )
}

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

/// Refuses `path` when something is there (a file, a folder, a link): a put-back never
/// replaces anything.
pub fn refuse_existing(path: &Path) -> Result<(), CompareError> {
    match path.symlink_metadata() {
        Ok(_) => Err(CompareError::OutputExists {
            path: inert(&path.display().to_string()),
        }),
        Err(_) => Ok(()),
    }
}

/// Writes `sql` to `path`: a new file, mode 0600, written under a temporary name beside it,
/// synced, then renamed to `path` only if nothing is there (an existing file is never
/// replaced).
pub fn write_putback(path: &Path, sql: &str) -> Result<(), CompareError> {
    refuse_existing(path)?;
    let shown = inert(&path.display().to_string());
    let output = |e: std::io::Error| CompareError::Output {
        path: shown.clone(),
        reason: e.to_string(),
    };
    if meta_command(sql).is_some() {
        // The names are quoted and every comment is inert, so this does not happen; a file
        // psql would run a command from is not written even so.
        return Err(CompareError::Unsafe {
            table: shown.clone(),
            line: meta_command(sql).unwrap_or_default(),
        });
    }
    let folder = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut file = tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(".tmp")
        .tempfile_in(folder)
        .map_err(output)?;
    file.write_all(sql.as_bytes()).map_err(output)?;
    file.as_file().sync_all().map_err(output)?;
    file.persist_noclobber(path).map_err(|e| {
        if e.error.kind() == std::io::ErrorKind::AlreadyExists {
            CompareError::OutputExists {
                path: shown.clone(),
            }
        } else {
            output(e.error)
        }
    })?;
    if let Ok(dir) = std::fs::File::open(folder) {
        let _ = dir.sync_all();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn column(name: &str) -> Column {
        Column {
            name: name.into(),
            type_oid: 25,
            type_name: "text".into(),
            generated: false,
            identity: Identity::None,
        }
    }

    fn table(oid: u32, schema: &str, name: &str, columns: Vec<Column>) -> Table {
        Table {
            oid,
            schema: schema.into(),
            name: name.into(),
            partitioned: false,
            columns,
        }
    }

    /// `app.orders` with an identity key, a generated column and a jsonb column, and a copy
    /// with one column more and one less.
    fn orders() -> (Table, Table, Vec<KeyIndex>) {
        let id = Column {
            type_oid: 20,
            type_name: "bigint".into(),
            identity: Identity::Always,
            ..column("id")
        };
        let doubled = Column {
            generated: true,
            ..column("doubled")
        };
        let live = table(
            1,
            "app",
            "orders",
            vec![
                id.clone(),
                column("total"),
                doubled.clone(),
                column("Data"),
                column("added_later"),
            ],
        );
        let recovered = table(
            2,
            "recovered",
            "orders",
            vec![
                Column {
                    identity: Identity::None,
                    ..id
                },
                column("total"),
                Column {
                    generated: false,
                    ..doubled
                },
                column("Data"),
                column("dropped_since"),
            ],
        );
        let keys = vec![KeyIndex {
            name: "orders_pkey".into(),
            primary: true,
            columns: vec!["id".into()],
        }];
        (live, recovered, keys)
    }

    fn compared(plan: Plan, missing: u64, changed: Option<u64>, extra: u64) -> Comparison {
        let found = |rows| Found {
            rows,
            example_keys: Vec::new(),
        };
        Comparison {
            plan,
            checked_at: "2026-01-02T03:04:05Z".into(),
            missing: found(missing),
            extra: found(extra),
            changed: changed.map(found),
        }
    }

    #[test]
    fn names_are_read_as_restore_takes_them() {
        let part = |text: &str, exact| NamePart {
            text: text.into(),
            exact,
        };
        assert_eq!(
            parse_name("app.orders"),
            Ok(GivenName {
                schema: Some(part("app", false)),
                table: part("orders", false)
            })
        );
        assert_eq!(
            parse_name("orders"),
            Ok(GivenName {
                schema: None,
                table: part("orders", false)
            })
        );
        assert_eq!(
            parse_name("\"My.App\".\"Or\"\"ders\""),
            Ok(GivenName {
                schema: Some(part("My.App", true)),
                table: part("Or\"ders", true)
            })
        );
        for bad in ["", "a.", ".b", "a.b.c", "\"a", "a\"b\"", "\"a\"b", "\"\".t"] {
            assert!(parse_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_primary_key_is_preferred_and_generated_columns_are_never_written() {
        let (live, recovered, mut keys) = orders();
        keys.insert(
            0,
            KeyIndex {
                name: "orders_ri".into(),
                primary: false,
                columns: vec!["total".into()],
            },
        );
        let plan = plan(live, recovered, &keys).unwrap();
        assert_eq!(plan.matched_on, MatchedOn::PrimaryKey);
        assert_eq!(plan.index.as_deref(), Some("orders_pkey"));
        assert_eq!(plan.key_columns, ["id"]);
        assert_eq!(plan.compared_columns, ["id", "total", "doubled", "Data"]);
        assert_eq!(plan.inserted, ["id", "total", "Data"]);
        assert!(plan.overriding);
        assert_eq!(plan.updated, ["total", "Data"]);
        assert_eq!(plan.not_updated, [("doubled".to_string(), "generated")]);
        assert_eq!(plan.live_only, ["added_later"]);
        assert_eq!(plan.recovered_only, ["dropped_since"]);
        assert_eq!(plan.key_match(), "l.id = r.id");
    }

    #[test]
    fn a_replica_identity_index_serves_without_a_primary_key() {
        let (live, recovered, _) = orders();
        let keys = [KeyIndex {
            name: "orders_total_key".into(),
            primary: false,
            columns: vec!["total".into(), "Data".into()],
        }];
        let plan = plan(live, recovered, &keys).unwrap();
        assert_eq!(plan.matched_on, MatchedOn::ReplicaIdentity);
        assert_eq!(
            plan.key_match(),
            "l.total = r.total AND l.\"Data\" = r.\"Data\""
        );
        // The identity column is no key here and cannot be set by an UPDATE.
        assert_eq!(
            plan.not_updated,
            [
                ("id".to_string(), "identity GENERATED ALWAYS"),
                ("doubled".to_string(), "generated")
            ]
        );
        assert_eq!(plan.updated, Vec::<String>::new());
        assert_eq!(plan.changed_query(), None);
    }

    #[test]
    fn key_columns_of_different_types_are_matched_as_text() {
        let (live, mut recovered, keys) = orders();
        recovered.columns[0].type_oid = 23;
        recovered.columns[0].type_name = "integer".into();
        let plan = plan(live, recovered, &keys).unwrap();
        assert_eq!(plan.key_match(), "l.id::text = r.id::text");
        assert_eq!(
            plan.retyped,
            [(
                "id".to_string(),
                "bigint".to_string(),
                "integer".to_string()
            )]
        );
    }

    #[test]
    fn a_key_the_copy_lacks_is_refused_by_name() {
        let (live, mut recovered, keys) = orders();
        recovered.columns.remove(0);
        let e = plan(live, recovered, &keys).unwrap_err().to_string();
        assert!(
            e.contains("recovered.orders lacks id of the key orders_pkey of app.orders"),
            "{e}"
        );
        let e = plan(
            table(1, "app", "a", vec![column("x")]),
            table(2, "app", "b", vec![column("y")]),
            &[],
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("no column in common"), "{e}");
    }

    #[test]
    fn the_putback_inserts_and_updates_from_the_recovered_table_and_deletes_nothing() {
        let (live, recovered, keys) = orders();
        let plan = plan(live, recovered, &keys).unwrap();
        let sql = compared(plan, 2, Some(3), 1).putback_sql();
        assert!(sql.contains("-- Puts rows of app.orders back from recovered.orders, as `backstop compare` found them at 2026-01-02T03:04:05Z."), "{sql}");
        assert!(
            sql.contains("--   2 rows of recovered.orders missing from app.orders"),
            "{sql}"
        );
        assert!(sql.contains("--   3 rows changed"), "{sql}");
        assert!(sql.contains("--   1 row in app.orders and not in recovered.orders: left as it is (nothing is deleted)."), "{sql}");
        assert!(sql.contains("-- The triggers of app.orders fire"), "{sql}");
        assert!(
            sql.contains(
                "-- It reads recovered.orders when it runs: that table must still exist then"
            ),
            "{sql}"
        );
        assert!(
            sql.contains("-- Not set by the UPDATE: doubled (generated)."),
            "{sql}"
        );
        let statements = sql
            .lines()
            .filter(|l| !l.starts_with("--") && !l.is_empty())
            .collect::<Vec<_>>()
            .join("\n");
        assert_eq!(
            statements,
            "BEGIN;\n\
             SET LOCAL lock_timeout = '30s';\n\
             UPDATE ONLY app.orders AS l SET total = r.total, \"Data\" = r.\"Data\"\n  \
               FROM ONLY recovered.orders AS r\n  \
               WHERE l.id = r.id\n    \
               AND (l.total::text IS DISTINCT FROM r.total::text OR l.\"Data\"::text IS DISTINCT FROM r.\"Data\"::text);\n\
             INSERT INTO app.orders (id, total, \"Data\") OVERRIDING SYSTEM VALUE\n  \
               SELECT r.id, r.total, r.\"Data\"\n  \
               FROM ONLY recovered.orders AS r\n  \
               WHERE NOT EXISTS (SELECT 1 FROM ONLY app.orders AS l WHERE l.id = r.id);\n\
             COMMIT;"
        );
        assert!(!sql.to_uppercase().contains("DELETE "), "{sql}");
        assert_eq!(meta_command(&sql), None);
    }

    #[test]
    fn the_comments_say_what_was_found_and_the_statements_always_compare_again() {
        let (live, recovered, keys) = orders();
        let plan = plan(live, recovered, &keys).unwrap();
        let only_missing = compared(plan.clone(), 1, Some(0), 0).putback_sql();
        assert!(only_missing.contains("--   1 row of recovered.orders missing from app.orders"));
        assert!(!only_missing.contains("changed (same key"));
        let nothing = compared(plan, 0, Some(0), 7).putback_sql();
        assert!(nothing.contains("--   app.orders held every row of recovered.orders as it is: the statements below change nothing unless that changed since;"), "{nothing}");
        assert!(
            nothing.contains("--   7 rows in app.orders and not in recovered.orders"),
            "{nothing}"
        );
        // The statements find their rows when they run: rows lost since are put back too.
        assert!(
            nothing.contains("INSERT INTO") && nothing.contains("UPDATE "),
            "{nothing}"
        );
    }

    #[test]
    fn a_table_without_a_key_is_compared_by_whole_rows_null_safely() {
        let live = table(
            1,
            "app",
            "log",
            vec![
                column("at"),
                Column {
                    generated: true,
                    ..column("day")
                },
                column("what"),
            ],
        );
        let recovered = table(
            2,
            "recovered",
            "log",
            vec![column("at"), column("day"), column("what")],
        );
        let plan = plan(live, recovered, &[]).unwrap();
        assert_eq!(plan.matched_on, MatchedOn::WholeRow);
        assert_eq!(plan.key_columns, ["at", "day", "what"]);
        assert_eq!(
            plan.key_match(),
            "ARRAY[l.at::text, l.day::text, l.what::text] = ARRAY[r.at::text, r.day::text, r.what::text]"
        );
        assert_eq!(plan.changed_query(), None);
        assert_eq!(plan.duplicates_query(), None);
        assert!(!plan.overriding && plan.updated.is_empty());
        assert!(plan.missing_query().contains("ORDER BY 2, 3, 4 LIMIT 5"));
        let sql = compared(plan, 2, None, 2).putback_sql();
        assert!(sql.contains("-- Rows are matched on whole rows (at, day, what): app.log has no primary key or replica identity index, so a changed row counts as one missing and one extra"), "{sql}");
        assert!(
            sql.contains(
                "INSERT INTO app.log (at, what)\n  SELECT r.at, r.what\n  FROM ONLY recovered.log AS r\n  \
                 WHERE NOT EXISTS (SELECT 1 FROM ONLY app.log AS l WHERE ARRAY[l.at::text, l.day::text, l.what::text] = ARRAY[r.at::text, r.day::text, r.what::text]);"
            ),
            "{sql}"
        );
        assert!(!sql.contains("UPDATE "), "{sql}");
    }

    #[test]
    fn names_from_the_database_stay_quoted_in_sql_and_inert_in_comments() {
        let evil = "x\n\\! rm -rf ~\n";
        let live = table(1, "app", evil, vec![column("id"), column(evil)]);
        let recovered = table(2, "recovered", evil, vec![column("id"), column(evil)]);
        let keys = [KeyIndex {
            name: evil.into(),
            primary: true,
            columns: vec!["id".into()],
        }];
        let partitioned = Table {
            partitioned: true,
            ..live
        };
        let plan = plan(partitioned, recovered, &keys).unwrap();
        let sql = compared(plan, 1, Some(1), 0).putback_sql();
        assert_eq!(meta_command(&sql), None, "{sql}");
        let head = sql.split("\nBEGIN;").next().unwrap();
        for line in head.lines() {
            assert!(line.is_empty() || line.starts_with("--"), "{line}");
        }
        assert!(
            sql.contains("UPDATE app.\"x\n\\! rm -rf ~\n\" AS l"),
            "{sql}"
        );
        assert!(sql.contains("-- Puts rows of app.\"x\\u{a}\\! rm"), "{sql}");
        let quoted = table(3, "public", "Order Lines", Vec::new());
        assert_eq!(quoted.shown(), "public.\"Order Lines\"");
        assert_eq!(quoted.sql(), "\"public\".\"Order Lines\"");
    }

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

    #[test]
    fn the_default_file_is_named_after_the_table_and_stays_in_the_folder() {
        assert_eq!(default_file_name("orders"), "orders.putback.sql");
        assert_eq!(default_file_name("../../etc/x"), "______etc_x.putback.sql");
        assert_eq!(default_file_name(""), "table.putback.sql");
    }

    #[test]
    fn a_putback_is_a_new_private_file_and_never_replaces_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("orders.putback.sql");
        write_putback(&path, "BEGIN;\nCOMMIT;\n").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "BEGIN;\nCOMMIT;\n");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let e = write_putback(&path, "other").unwrap_err().to_string();
        assert!(e.contains("already exists"), "{e}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "BEGIN;\nCOMMIT;\n");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
