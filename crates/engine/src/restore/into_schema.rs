//! `--into-schema`: some tables made again under a new schema of a database in use, beside
//! the live tables they were backed up from.
//!
//! The selected tables' own items (columns and defaults, keys, checks, indexes, comments,
//! owners, grants, policies, the sequences they own) move with them: every schema-qualified
//! name of a moved relation that the lexer finds outside quotes, comments and function bodies,
//! and every string literal that is exactly one (`nextval('public.orders_id_seq'::regclass)`,
//! `setval`), is written with the new schema. Everything else they name (types, functions,
//! other tables) is left as it is, so the recovered tables use the live database's. Data,
//! index builds and the replay address the moved names ([`SchemaMove::name_of`]); nothing
//! writes to a name outside the new schema.

use std::collections::{BTreeMap, HashSet};

use tokio_postgres::Client;

use super::{RestoreError, RestoreOptions, StatisticsOutcome};
use crate::catalog::{ident, literal};
use crate::item::ItemKind;
use crate::lexer::{quoted_end, statements};
use crate::script::ScriptItem;
use crate::sql::{BadMark, replace_spans};
use backstop_pg::{PgTarget, describe};

/// The relations an `--into-schema` restore moves, by their quoted qualified names.
#[derive(Debug, Clone)]
pub struct SchemaMove {
    /// The new schema, unquoted.
    pub schema: String,
    /// Each spelling of a moved relation's qualified name → the same in the new schema.
    renamed: BTreeMap<String, String>,
    /// Each moved table as items name it → its name in the new schema.
    tables: BTreeMap<String, String>,
}

impl SchemaMove {
    /// Moves `tables` (each as items name it, quoted, with its schema and name as they are)
    /// and the relations their items name: the sequences they own or whose values they set,
    /// their indexes (a key's too) and extended statistics.
    pub fn new<'a>(
        schema: &str,
        tables: &[(String, String, String)],
        items: impl IntoIterator<Item = &'a ScriptItem>,
        owned_sequences: &HashSet<String>,
    ) -> Self {
        let quoted: HashSet<&str> = tables.iter().map(|(q, _, _)| q.as_str()).collect();
        // (schema, name) as they are; items name other relations `schema.name` unquoted.
        let mut relations: Vec<(String, String)> = tables
            .iter()
            .map(|(_, s, n)| (s.clone(), n.clone()))
            .collect();
        let mut named: HashSet<String> = owned_sequences.clone();
        for item in items {
            let of_selected = item
                .header
                .table
                .as_ref()
                .is_some_and(|t| quoted.contains(t.as_str()));
            if of_selected
                && matches!(
                    item.header.kind,
                    ItemKind::Index
                        | ItemKind::Constraint
                        | ItemKind::Statistics
                        | ItemKind::SequenceValue
                        | ItemKind::Sequence
                        | ItemKind::SequenceOwnedBy
                )
            {
                named.insert(item.header.name.clone());
            }
        }
        relations.extend(named.iter().filter_map(|n| {
            let (s, n) = n.split_once('.')?;
            Some((s.to_string(), n.to_string()))
        }));
        let new_schema = ident(schema);
        let mut renamed = BTreeMap::new();
        for (old_schema, name) in &relations {
            // Every way SQL may spell the name: as `quote_ident` would, always quoted, bare.
            for s in spellings(old_schema) {
                for n in spellings(name) {
                    renamed.insert(format!("{s}.{n}"), format!("{new_schema}.{n}"));
                }
            }
        }
        let tables = tables
            .iter()
            .map(|(q, _, n)| (q.clone(), format!("{new_schema}.{}", ident(n))))
            .collect();
        Self {
            schema: schema.to_string(),
            renamed,
            tables,
        }
    }

    /// Where a moved table lands (quoted, qualified); `None` for one that is not moved.
    pub fn name_of(&self, qualified: &str) -> Option<&str> {
        self.tables.get(qualified).map(String::as_str)
    }

    /// `item` with every moved relation's name written with the new schema, its marks moved
    /// along.
    pub fn item(&self, item: ScriptItem) -> Result<ScriptItem, BadMark> {
        let changes = self.changes(&item.sql);
        if changes.is_empty() {
            return Ok(item);
        }
        let moved = replace_spans(&item.sql, &item.header.marks, &changes)?;
        let mut header = item.header;
        header.marks = moved.marks;
        Ok(ScriptItem {
            header,
            sql: moved.text,
        })
    }

    /// `(at, length, new text)` for every moved name in `sql`, in order.
    fn changes(&self, sql: &str) -> Vec<(usize, usize, String)> {
        let masked: String = statements(sql).into_iter().map(|s| s.masked).collect();
        let bytes = sql.as_bytes();
        let mut changes = Vec::new();
        for (old, new) in &self.renamed {
            // As SQL: the name's text, unquoted where the lexer sees code, between word edges.
            let old_masked: String = statements(old).into_iter().map(|s| s.masked).collect();
            for (at, _) in sql.match_indices(old.as_str()) {
                let end = at + old.len();
                if masked.get(at..end) == Some(old_masked.as_str())
                    && !continues_name(sql[..at].chars().next_back(), true)
                    && !continues_name(sql[end..].chars().next(), false)
                {
                    changes.push((at, old.len(), new.clone()));
                }
            }
            // As a string literal that is exactly the name, where it stands for the relation:
            // cast to regclass (`nextval`'s argument) or the sequence `setval` sets.
            let (quoted, new_quoted) = (literal(old), literal(new));
            let escapes = quoted.starts_with('E');
            for (at, _) in sql.match_indices(quoted.as_str()) {
                let open = if escapes { at + 1 } else { at };
                let end = at + quoted.len();
                if masked.as_bytes().get(open) == Some(&b'\'')
                    && !continues_name(sql[..at].chars().next_back(), true)
                    && quoted_end(bytes, open, b'\'', escapes) == end
                    && (sql[end..].starts_with("::regclass") || sql[..at].ends_with("setval("))
                {
                    changes.push((at, quoted.len(), new_quoted.clone()));
                }
            }
        }
        changes.sort_by_key(|(at, _, _)| *at);
        // Two names can only overlap when one is a prefix of the other in the same place,
        // which the edge checks exclude; keep the first should it happen.
        let mut kept: Vec<(usize, usize, String)> = Vec::with_capacity(changes.len());
        for change in changes {
            if kept.last().is_none_or(|(at, len, _)| at + len <= change.0) {
                kept.push(change);
            }
        }
        kept
    }
}

/// Refuses what `--into-schema` cannot mean: without `--tables`, with `--clean`, `--create`
/// or without the pre-data section (the tables must be made), or a schema name PostgreSQL
/// would refuse or reserves.
pub(super) fn check_options(schema: &str, options: &RestoreOptions) -> Result<(), RestoreError> {
    let refuse = |reason: &str| {
        Err(RestoreError::IntoSchema {
            reason: reason.to_string(),
        })
    };
    if options.tables.is_none() {
        return refuse("restores chosen tables: name them with --tables (or --schema)");
    }
    if options.clean {
        return refuse("never replaces anything: leave out --clean");
    }
    if options.create_database {
        return refuse("restores into a database in use: leave out --create");
    }
    if !options.sections.pre_data {
        return refuse("makes the tables: leave out --data-only and --section without pre-data");
    }
    if schema.is_empty() || schema.len() > 63 || schema.contains('\0') {
        return refuse("takes a schema name of 1 to 63 bytes");
    }
    if schema.starts_with("pg_") {
        return refuse("cannot make a schema named pg_*: PostgreSQL reserves those names");
    }
    Ok(())
}

/// Refuses two tables of one name (from different schemas): one schema cannot hold both.
pub(super) fn check_distinct(
    schema: &str,
    tables: &[(String, String, String)],
) -> Result<(), RestoreError> {
    let mut seen: BTreeMap<&str, &str> = BTreeMap::new();
    for (quoted, _, name) in tables {
        if let Some(other) = seen.insert(name, quoted) {
            return Err(RestoreError::IntoSchema {
                reason: format!(
                    "would make {other} and {quoted} both {}.{}; restore them into two schemas",
                    ident(schema),
                    ident(name)
                ),
            });
        }
    }
    Ok(())
}

/// Refuses a schema that exists: a restore into a schema apart never writes into one.
pub(super) async fn check_absent(
    client: &Client,
    target: &PgTarget,
    schema: &str,
) -> Result<(), RestoreError> {
    let present = client
        .query_opt(
            "SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = $1",
            &[&schema],
        )
        .await
        .map_err(|e| RestoreError::Database {
            step: "looking for the new schema",
            reason: describe(&e),
        })?;
    match present {
        Some(_) => Err(RestoreError::SchemaExists {
            database: backstop_pg::database_name(target).unwrap_or_default(),
            schema: schema.to_string(),
            quoted: ident(schema),
        }),
        None => Ok(()),
    }
}

/// The items `keeps` keeps, moved; the others as they are (they do not run). A table that
/// inherits, is a partition or is partitioned is refused: in a schema apart it would join the
/// live tables' hierarchy, or hold no rows.
pub(super) fn move_items(
    moves: &SchemaMove,
    items: Vec<ScriptItem>,
    keeps: impl Fn(&ScriptItem) -> bool,
) -> Result<Vec<ScriptItem>, RestoreError> {
    items
        .into_iter()
        .map(|item| {
            if !keeps(&item) {
                return Ok(item);
            }
            if item.header.kind == ItemKind::Table {
                let masked: String = statements(&item.sql)
                    .into_iter()
                    .map(|s| s.masked)
                    .collect();
                if ["INHERITS (", "PARTITION OF ", "PARTITION BY "]
                    .iter()
                    .any(|word| masked.contains(word))
                {
                    return Err(RestoreError::IntoSchema {
                        reason: format!(
                            "restores plain tables, and {} inherits, is a partition or is \
                             partitioned; restore it with --tables into a scratch database instead",
                            item.header.name
                        ),
                    });
                }
            }
            let name = item.header.name.clone();
            moves.item(item).map_err(|e| RestoreError::Item {
                item: name,
                reason: e.to_string(),
            })
        })
        .collect()
}

/// ANALYZE of the moved tables (quoted, qualified), so their planner has statistics.
pub(super) async fn analyze(
    client: &Client,
    tables: impl Iterator<Item = &String>,
) -> Result<StatisticsOutcome, RestoreError> {
    let tables: Vec<&String> = tables.collect();
    for table in &tables {
        client
            .batch_execute(&format!("ANALYZE {table}"))
            .await
            .map_err(|e| RestoreError::Database {
                step: "analyzing the restored tables",
                reason: describe(&e),
            })?;
    }
    Ok(StatisticsOutcome::Analyzed {
        tables: tables.len(),
        dropped: Vec::new(),
    })
}

/// The ways SQL may spell one part of a name: as [`ident`] quotes it, always quoted, and bare
/// when it is a plain lower-case word.
fn spellings(part: &str) -> Vec<String> {
    let mut forms = vec![ident(part), format!("\"{}\"", part.replace('"', "\"\""))];
    let plain = part
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && part
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '$');
    if plain {
        forms.push(part.to_string());
    }
    forms.sort();
    forms.dedup();
    forms
}

/// Whether `c`, beside a name, makes it part of a longer one (before: a schema or a name that
/// goes on to the left, e.g. `db.public.t` or `xpublic.t`; after: `public.orders_id`).
fn continues_name(c: Option<char>, before: bool) -> bool {
    match c {
        None => false,
        Some(c) if c.is_alphanumeric() || c == '_' || c == '$' || c == '"' => true,
        Some('.') => before,
        Some(c) => !c.is_ascii(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::script::ItemHeader;
    use crate::sql::{Mark, Marked};

    fn item(kind: ItemKind, name: &str, table: &str, sql: &str) -> ScriptItem {
        ScriptItem {
            header: ItemHeader {
                kind,
                name: name.into(),
                table: Some(table.into()),
                marks: Vec::new(),
                references: None,
                slow_build: false,
            },
            sql: sql.into(),
        }
    }

    fn moving(tables: &[(&str, &str, &str)], items: &[ScriptItem]) -> SchemaMove {
        let tables: Vec<(String, String, String)> = tables
            .iter()
            .map(|(q, s, n)| (q.to_string(), s.to_string(), n.to_string()))
            .collect();
        let owned: HashSet<String> = ["public.orders_no_seq".to_string()].into();
        SchemaMove::new("recovered", &tables, items, &owned)
    }

    #[test]
    fn the_moved_relations_names_change_and_every_other_name_stays() {
        let table = item(
            ItemKind::Table,
            "public.orders",
            "public.orders",
            "CREATE TABLE public.orders (\n    id bigint GENERATED ALWAYS AS IDENTITY (SEQUENCE NAME public.orders_id_seq START WITH 1),\n    no integer DEFAULT nextval('public.orders_no_seq'::regclass),\n    status public.status DEFAULT 'new'::public.status,\n    note text DEFAULT 'public.orders'\n);\nCOMMENT ON COLUMN public.orders.note IS 'see public.orders';\n-- public.orders\nALTER TABLE public.orders OWNER TO postgres;\n",
        );
        let value = item(
            ItemKind::SequenceValue,
            "public.orders_id_seq",
            "public.orders",
            "SELECT pg_catalog.setval('public.orders_id_seq', 2, true);",
        );
        let moves = moving(
            &[("public.orders", "public", "orders")],
            &[table.clone(), value.clone()],
        );
        assert_eq!(moves.name_of("public.orders"), Some("recovered.orders"));
        assert_eq!(moves.name_of("public.status"), None);
        let sql = moves.item(table).unwrap().sql;
        assert_eq!(
            sql,
            "CREATE TABLE recovered.orders (\n    id bigint GENERATED ALWAYS AS IDENTITY (SEQUENCE NAME recovered.orders_id_seq START WITH 1),\n    no integer DEFAULT nextval('recovered.orders_no_seq'::regclass),\n    status public.status DEFAULT 'new'::public.status,\n    note text DEFAULT 'public.orders'\n);\nCOMMENT ON COLUMN recovered.orders.note IS 'see public.orders';\n-- public.orders\nALTER TABLE recovered.orders OWNER TO postgres;\n",
            "a name moves where it is SQL or a regclass literal; a text default, a comment, \
             a literal that holds it, a type do not"
        );
        assert_eq!(
            moves.item(value).unwrap().sql,
            "SELECT pg_catalog.setval('recovered.orders_id_seq', 2, true);"
        );
    }

    #[test]
    fn names_that_only_begin_or_end_like_a_moved_one_and_function_bodies_stay() {
        let moves = moving(
            &[
                ("public.orders", "public", "orders"),
                ("app.\"Line Items\"", "app", "Line Items"),
            ],
            &[],
        );
        let sql = "ALTER TABLE ONLY public.orders ADD CONSTRAINT k FOREIGN KEY (a) REFERENCES public.orders(id);\n\
                   ALTER TABLE ONLY public.orders_archive ADD CHECK (x.public.orders IS NULL);\n\
                   CREATE POLICY p ON app.\"Line Items\" USING (f($$ public.orders $$));\n\
                   SELECT \"public.orders\", E'public.orders\\\\';";
        let moved = moves
            .item(item(ItemKind::Constraint, "public.k", "public.orders", sql))
            .unwrap();
        assert_eq!(
            moved.sql,
            "ALTER TABLE ONLY recovered.orders ADD CONSTRAINT k FOREIGN KEY (a) REFERENCES recovered.orders(id);\n\
             ALTER TABLE ONLY public.orders_archive ADD CHECK (x.public.orders IS NULL);\n\
             CREATE POLICY p ON recovered.\"Line Items\" USING (f($$ public.orders $$));\n\
             SELECT \"public.orders\", E'public.orders\\\\';"
        );
    }

    #[test]
    fn quoted_sequences_and_a_keys_index_move_however_they_are_spelled() {
        let key = item(
            ItemKind::Constraint,
            "app.Orders_pkey",
            "app.\"Orders\"",
            "ALTER TABLE ONLY app.\"Orders\" ADD CONSTRAINT \"Orders_pkey\" PRIMARY KEY (id);\nCOMMENT ON INDEX app.\"Orders_pkey\" IS 'k';\nCOMMENT ON INDEX \"app\".\"Orders_pkey\" IS 'k';",
        );
        let value = item(
            ItemKind::SequenceValue,
            "app.Order_seq",
            "app.\"Orders\"",
            "SELECT pg_catalog.setval('app.\"Order_seq\"', 2, true);",
        );
        let moves = moving(
            &[("app.\"Orders\"", "app", "Orders")],
            &[key.clone(), value.clone()],
        );
        assert_eq!(
            moves.name_of("app.\"Orders\""),
            Some("recovered.\"Orders\"")
        );
        assert_eq!(
            moves.item(key).unwrap().sql,
            "ALTER TABLE ONLY recovered.\"Orders\" ADD CONSTRAINT \"Orders_pkey\" PRIMARY KEY (id);\nCOMMENT ON INDEX recovered.\"Orders_pkey\" IS 'k';\nCOMMENT ON INDEX recovered.\"Orders_pkey\" IS 'k';"
        );
        assert_eq!(
            moves.item(value).unwrap().sql,
            "SELECT pg_catalog.setval('recovered.\"Order_seq\"', 2, true);"
        );
    }

    #[test]
    fn marks_move_with_the_text_and_still_fit() {
        let sql = "ALTER TABLE public.orders OWNER TO postgres;";
        let mut owned = item(ItemKind::Table, "public.orders", "public.orders", sql);
        owned.header.marks = vec![
            Mark {
                at: 0,
                len: sql.len(),
                is: Marked::OwnerChange,
            },
            Mark {
                at: sql.len() - 9,
                len: 8,
                is: Marked::Role {
                    name: "postgres".into(),
                },
            },
        ];
        let moved = moving(&[("public.orders", "public", "orders")], &[])
            .item(owned)
            .unwrap();
        assert_eq!(moved.sql, "ALTER TABLE recovered.orders OWNER TO postgres;");
        crate::sql::check(&moved.sql, &moved.header.marks).unwrap();
        assert_eq!(moved.header.marks[0].len, moved.sql.len());
        assert_eq!(
            &moved.sql[moved.header.marks[1].at..][..8],
            "postgres",
            "the role mark still spans the role"
        );
    }
}
