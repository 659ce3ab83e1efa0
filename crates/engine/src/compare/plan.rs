//! What a comparison is matched on and which columns it reads and writes, decided from the two
//! tables' shapes alone: the names as given, the tables as the catalog has them, the key
//! (primary key, else replica identity index, else whole rows) and the [`Plan`].

use super::CompareError;
use crate::catalog::ident;
use crate::script::inert;

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
    pub(super) fn from_code(code: &str) -> Self {
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
    pub(super) fn rows(&self) -> String {
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
    pub(super) key_as_text: Vec<bool>,
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
pub(super) fn shown_name(name: &str) -> String {
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

/// Names as they are shown in comments and messages.
pub(super) fn shown_list(columns: &[String]) -> String {
    columns
        .iter()
        .map(|c| shown_name(c))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::{column, orders, table};
    use super::*;

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
}
