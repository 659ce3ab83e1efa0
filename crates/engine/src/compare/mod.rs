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
//! pure functions of the two tables' shapes ([`plan()`], [`Comparison::putback_sql`]).
//!
//! `plan` decides the key and the columns, `queries` holds the SQL the comparison runs,
//! `putback` writes the put-back SQL, `read` reads the database and `output` writes the file.

use std::time::Duration;

use backstop_pg::ConnectError;
use backstop_pg::version::VersionError;

mod output;
mod plan;
mod putback;
mod queries;
mod read;

pub use output::{default_file_name, refuse_existing, write_putback};
pub use plan::{
    Column, GivenName, Identity, KeyIndex, MatchedOn, NamePart, Plan, Table, parse_name, plan,
};
pub use read::{compare, key_text};

/// How many example keys of each difference are shown.
pub const EXAMPLES: usize = 5;

/// How many characters of an example value are shown (the rest is cut, with `…`).
const EXAMPLE_CHARS: usize = 60;

/// How long a read waits for a table another session holds exclusively (ALTER TABLE, a
/// TRUNCATE, a VACUUM FULL) before the comparison gives up.
pub const LOCK_WAIT: Duration = Duration::from_secs(30);

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

impl Comparison {
    /// Whether the live table lacked a row or held one changed when compared.
    pub fn has_putback(&self) -> bool {
        self.missing.rows > 0 || self.changed.as_ref().is_some_and(|c| c.rows > 0)
    }
}

/// Tables shaped as the tests of the submodules need them.
#[cfg(test)]
mod fixtures {
    use super::*;

    pub(super) fn column(name: &str) -> Column {
        Column {
            name: name.into(),
            type_oid: 25,
            type_name: "text".into(),
            generated: false,
            identity: Identity::None,
        }
    }

    pub(super) fn table(oid: u32, schema: &str, name: &str, columns: Vec<Column>) -> Table {
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
    pub(super) fn orders() -> (Table, Table, Vec<KeyIndex>) {
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

    pub(super) fn compared(
        plan: Plan,
        missing: u64,
        changed: Option<u64>,
        extra: u64,
    ) -> Comparison {
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
}
