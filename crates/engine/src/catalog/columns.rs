//! The columns of tables: read for every table in one query, each decoded into a [`Column`],
//! and written as a line of its table's `CREATE TABLE` plus what is set after it.

use std::collections::HashMap;

use super::foreign_data::{options_sql, options_text};
use super::model::Persistence;
use super::sequences::IdentitySequences;
use super::*;
use backstop_pg::version::ServerVersion;

/// A column default as `pg_get_expr` writes it. A default that names no column (a `nextval`,
/// a constant, `now()`: nearly all of them) is written without its table, which spares the
/// server opening every table to read its defaults (4,000 serial columns on a fresh session:
/// 90 ms against 17 ms); one that names a column (a generated column's expression) is written
/// against its table.
const DEFAULT_EXPR: &str = "CASE WHEN d.adbin::text LIKE '%{VAR %' THEN pg_get_expr(d.adbin, d.adrelid) \
     ELSE pg_get_expr(d.adbin, 0) END";

/// A column of a table as the catalog describes it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Column {
    pub attnum: i16,
    /// The quoted name.
    pub q: String,
    /// The type as `format_type` writes it, with its modifier.
    pub type_name: String,
    /// Declared by the table itself (`attislocal`), not only inherited.
    pub local: bool,
    pub identity: Identity,
    pub generated: Generated,
    pub default: Option<ColumnDefault>,
    /// A generated column an inheritance child redeclares with its parent's expression.
    pub generated_as_parent: bool,
    pub not_null: NotNull,
    /// Whether a NOT NULL without a constraint of its own is a parent's: before 18, where a
    /// NOT NULL is no object, when a parent's column has one; from 18 always (a child's own
    /// NOT NULL is a constraint).
    pub parent_not_null: bool,
    /// A collation other than the type's, quoted and qualified.
    pub collation: Option<String>,
    /// A storage other than the type's (`PLAIN`, `EXTERNAL`, `MAIN`, `EXTENDED`).
    pub storage: Option<String>,
    /// A statistics target set on the column.
    pub statistics_target: Option<i32>,
    /// A compression method set on the column (14+).
    pub compression: Option<String>,
    /// `attoptions` as `name=value, ...`.
    pub options: Option<String>,
    /// A foreign table column's options as `name 'value', ...`.
    pub fdw_options: Option<String>,
    pub comment: Option<String>,
}

/// How an identity column takes its values (`attidentity`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Identity {
    #[default]
    None,
    Always,
    ByDefault,
}

/// How a generated column is computed (`attgenerated`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Generated {
    /// Not generated: a plain column, whose rows COPY carries.
    #[default]
    None,
    Stored,
    /// Computed when read (18+).
    Virtual,
}

/// A column's default or generation expression (`pg_attrdef`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnDefault {
    pub oid: u32,
    pub expr: String,
}

/// A column's NOT NULL.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum NotNull {
    #[default]
    None,
    /// `attnotnull` with no constraint object (before 18).
    Plain,
    /// A named constraint in `pg_constraint` (18+), maybe NO INHERIT or NOT VALID.
    Constraint(NotNullConstraint),
}

/// A NOT NULL constraint of 18+.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotNullConstraint {
    pub oid: u32,
    /// The quoted name.
    pub name: String,
    pub no_inherit: bool,
    pub valid: bool,
    /// The column's own (`conislocal`), not only inherited.
    pub local: bool,
}

/// Every column of every table, by table OID, in order.
pub(super) async fn get(db: &Db<'_>) -> Result<HashMap<u32, Vec<Column>>, CatalogError> {
    let mut columns: HashMap<u32, Vec<Column>> = HashMap::new();
    for row in db.query("columns", &columns_sql(db.version)).await? {
        columns
            .entry(row.get("attrelid")?)
            .or_default()
            .push(decode(&row, db.version)?);
    }
    Ok(columns)
}

fn decode(row: &Fields, version: ServerVersion) -> Result<Column, CatalogError> {
    let not_null = match row.get::<Option<u32>>("not_null_oid")? {
        Some(oid) => NotNull::Constraint(NotNullConstraint {
            oid,
            name: row.get("not_null_name")?,
            no_inherit: row.get("not_null_no_inherit")?,
            valid: row.get("not_null_valid")?,
            local: row.get("not_null_local")?,
        }),
        None if row.get::<bool>("attnotnull")? => NotNull::Plain,
        None => NotNull::None,
    };
    let default = match row.get::<Option<u32>>("attrdef")? {
        Some(oid) => Some(ColumnDefault {
            oid,
            expr: row
                .get::<Option<String>>("default_expr")?
                .unwrap_or_default(),
        }),
        None => None,
    };
    let non_empty = |column: &str| -> Result<Option<String>, CatalogError> {
        Ok(row.get::<Option<String>>(column)?.filter(|o| !o.is_empty()))
    };
    Ok(Column {
        attnum: row.get("attnum")?,
        q: row.get("q")?,
        type_name: row.get("type")?,
        local: row.get("attislocal")?,
        identity: match row.get::<String>("identity")?.as_str() {
            "a" => Identity::Always,
            "d" => Identity::ByDefault,
            _ => Identity::None,
        },
        generated: match row.get::<String>("generated")?.as_str() {
            "s" => Generated::Stored,
            "v" => Generated::Virtual,
            _ => Generated::None,
        },
        default,
        generated_as_parent: row.get("generated_as_parent")?,
        not_null,
        parent_not_null: version.at_least(18) || row.get::<bool>("parent_not_null")?,
        collation: row.get("collation")?,
        storage: row.get("storage")?,
        statistics_target: row.get::<Option<i32>>("attstattarget")?.filter(|t| *t >= 0),
        compression: row.get("compression")?,
        options: non_empty("options")?,
        fdw_options: non_empty("fdw_options")?,
        comment: row.get("comment")?,
    })
}

/// Every column of every table, in order.
fn columns_sql(version: ServerVersion) -> String {
    // attstattarget is int4 (-1 = default) before 16, int2 in 16, nullable (NULL = default)
    // from 17: the cast reads all three.
    let compression = if version.at_least(14) {
        "CASE a.attcompression WHEN 'p' THEN 'pglz' WHEN 'l' THEN 'lz4' END"
    } else {
        "NULL::text"
    };
    // From 18 every NOT NULL is a named constraint in pg_constraint (maybe NO INHERIT or
    // NOT VALID).
    let (not_null_columns, not_null_join) = if version.at_least(18) {
        (
            "nn.oid AS not_null_oid, quote_ident(nn.conname) AS not_null_name, \
             nn.connoinherit AS not_null_no_inherit, nn.convalidated AS not_null_valid, \
             nn.conislocal AS not_null_local",
            "LEFT JOIN pg_constraint nn ON nn.conrelid = a.attrelid AND nn.contype = 'n' AND nn.conkey[1] = a.attnum",
        )
    } else {
        (
            "NULL::oid AS not_null_oid, NULL::text AS not_null_name, \
             NULL::bool AS not_null_no_inherit, NULL::bool AS not_null_valid, \
             NULL::bool AS not_null_local",
            "",
        )
    };
    format!(
        "SELECT a.attrelid, a.attnum, quote_ident(a.attname) AS q, format_type(a.atttypid, a.atttypmod) AS type, \
         a.attnotnull, a.attislocal, a.attidentity::text AS identity, a.attgenerated::text AS generated, \
         EXISTS (SELECT 1 FROM pg_inherits h JOIN pg_attribute pa ON pa.attrelid = h.inhparent \
             AND pa.attname = a.attname WHERE h.inhrelid = a.attrelid AND pa.attnotnull) AS parent_not_null, \
         {default_expr} AS default_expr, d.oid AS attrdef, \
         EXISTS (SELECT 1 FROM pg_inherits h JOIN pg_class hc ON hc.oid = h.inhrelid AND NOT hc.relispartition \
             JOIN pg_attribute pa ON pa.attrelid = h.inhparent AND pa.attname = a.attname AND pa.attgenerated <> '' \
             JOIN pg_attrdef pd ON pd.adrelid = pa.attrelid AND pd.adnum = pa.attnum \
             WHERE h.inhrelid = a.attrelid AND a.attgenerated <> '' \
               AND pg_get_expr(pd.adbin, pd.adrelid) = pg_get_expr(d.adbin, d.adrelid)) AS generated_as_parent, \
         CASE WHEN a.attcollation <> 0 AND a.attcollation <> t.typcollation \
             THEN quote_ident(cn.nspname) || '.' || quote_ident(co.collname) END AS collation, \
         CASE WHEN a.attstorage <> t.typstorage THEN CASE a.attstorage WHEN 'p' THEN 'PLAIN' WHEN 'e' THEN 'EXTERNAL' \
             WHEN 'm' THEN 'MAIN' WHEN 'x' THEN 'EXTENDED' END END AS storage, \
         coalesce(a.attstattarget::int4, -1) AS attstattarget, {compression} AS compression, \
         array_to_string(a.attoptions, ', ') AS options, (SELECT description FROM pg_description WHERE objoid = a.attrelid AND classoid = 'pg_class'::regclass AND objsubid = a.attnum) AS comment, \
         {fdw_options} AS fdw_options, {not_null_columns} \
         FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_type t ON t.oid = a.atttypid \
         LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum \
         LEFT JOIN pg_collation co ON co.oid = a.attcollation LEFT JOIN pg_namespace cn ON cn.oid = co.collnamespace \
         {not_null_join} \
         WHERE c.relkind IN ('r', 'p', 'f') AND c.oid >= 16384 AND a.attnum > 0 AND NOT a.attisdropped \
         ORDER BY a.attrelid, a.attnum",
        fdw_options = options_sql("a.attfdwoptions"),
        default_expr = DEFAULT_EXPR,
    )
}

/// The table a column definition is written for.
pub(super) struct TableContext<'a> {
    pub oid: u32,
    pub schema: &'a str,
    pub q: &'a str,
    /// A typed table (`OF type`) takes its columns from the type: only what a column adds
    /// (NOT NULL, a default) is written, as `name WITH OPTIONS ...`.
    pub typed: bool,
    pub inherits: bool,
    pub unlogged: bool,
    pub version: ServerVersion,
}

/// What writing a table's columns adds besides their lines: the catalog rows they make
/// (default, identity sequence, NOT NULL constraint), the statements that follow the
/// `CREATE`, and the items of their own (a NOT VALID NOT NULL, checked after the data).
#[derive(Debug, Default)]
pub(super) struct Written {
    pub owns: Vec<ObjectRef>,
    pub after: String,
    pub items: Vec<Item>,
}

/// A column's line in its table's `CREATE TABLE`: type, collation, default or generation,
/// identity, NOT NULL.
pub(super) fn column_definition(
    column: &Column,
    table: &TableContext<'_>,
    identity: &IdentitySequences,
    written: &mut Written,
) -> String {
    let cq = &column.q;
    let mut line = if table.typed {
        format!("    {cq} WITH OPTIONS")
    } else {
        format!("    {cq} {}", column.type_name)
    };
    if let Some(collation) = column.collation.as_ref().filter(|_| !table.typed) {
        line.push_str(&format!(" COLLATE {collation}"));
    }
    if let Some(default) = &column.default {
        written.owns.push(oid_ref(class::PG_ATTRDEF, default.oid));
        let expr = &default.expr;
        match column.generated {
            // An inheritance child (not a partition) that redeclares a parent's generated
            // column inherits its expression; repeating it is an error.
            Generated::Stored | Generated::Virtual if column.generated_as_parent => {}
            Generated::Stored => line.push_str(&format!(" GENERATED ALWAYS AS ({expr}) STORED")),
            Generated::Virtual => line.push_str(&format!(" GENERATED ALWAYS AS ({expr}) VIRTUAL")),
            Generated::None => line.push_str(&format!(" DEFAULT {expr}")),
        }
    }
    if column.identity != Identity::None
        && let Some(sequence) = identity.get(&(table.oid, column.attnum))
    {
        let (seq_name, options) = (&sequence.name, &sequence.options);
        written.owns.push(oid_ref(class::PG_CLASS, sequence.oid));
        // From 15 a sequence may be logged or not on its own; it starts as its
        // table is.
        let unlogged = sequence.persistence == Persistence::Unlogged;
        if table.version.at_least(15) && unlogged != table.unlogged {
            written.after.push_str(&format!(
                "ALTER SEQUENCE {seq_name} SET {};\n",
                if table.unlogged { "LOGGED" } else { "UNLOGGED" }
            ));
        }
        written.after.push_str(&comment_sql(
            &format!("SEQUENCE {seq_name}"),
            sequence.comment.clone(),
        ));
        let when = match column.identity {
            Identity::Always => "ALWAYS",
            _ => "BY DEFAULT",
        };
        line.push_str(&format!(
            " GENERATED {when} AS IDENTITY (SEQUENCE NAME {seq_name} {options})"
        ));
    }
    match &column.not_null {
        // A redeclared column's NOT NULL that only the parent has comes with INHERITS.
        NotNull::Constraint(constraint) if table.inherits && !constraint.local => {
            written
                .owns
                .push(oid_ref(class::PG_CONSTRAINT, constraint.oid));
        }
        NotNull::Constraint(constraint) => {
            written
                .owns
                .push(oid_ref(class::PG_CONSTRAINT, constraint.oid));
            let name = &constraint.name;
            let no_inherit = if constraint.no_inherit {
                " NO INHERIT"
            } else {
                ""
            };
            if constraint.valid {
                line.push_str(&format!(" CONSTRAINT {name} NOT NULL{no_inherit}"));
            } else {
                // Checked after the data, with the other NOT VALID constraints.
                written.items.push(
                    Item::new(
                        ItemKind::ForeignKey,
                        table.schema,
                        name,
                        format!(
                            "ALTER TABLE ONLY {} ADD CONSTRAINT {name} NOT NULL {cq}{no_inherit} NOT VALID;\n",
                            table.q
                        ),
                    )
                    .needing([oid_ref(class::PG_CLASS, table.oid)])
                    .of_table(table.q),
                );
            }
        }
        NotNull::Plain => line.push_str(" NOT NULL"),
        NotNull::None => {}
    }
    line
}

/// A column's storage, statistics target, compression, options and comment, set after the
/// `CREATE TABLE` of `q`.
pub(super) fn column_settings(column: &Column, q: &str, after: &mut String) {
    let cq = &column.q;
    if let Some(storage) = &column.storage {
        after.push_str(&format!(
            "ALTER TABLE ONLY {q} ALTER COLUMN {cq} SET STORAGE {storage};\n"
        ));
    }
    if let Some(target) = column.statistics_target {
        after.push_str(&format!(
            "ALTER TABLE ONLY {q} ALTER COLUMN {cq} SET STATISTICS {target};\n"
        ));
    }
    if let Some(compression) = &column.compression {
        after.push_str(&format!(
            "ALTER TABLE ONLY {q} ALTER COLUMN {cq} SET COMPRESSION {compression};\n"
        ));
    }
    if let Some(options) = &column.options {
        after.push_str(&format!(
            "ALTER TABLE ONLY {q} ALTER COLUMN {cq} SET ({options});\n"
        ));
    }
    if let Some(options) = &column.fdw_options {
        after.push_str(&format!(
            "ALTER FOREIGN TABLE ONLY {q} ALTER COLUMN {cq}{};\n",
            options_text(Some(options))
        ));
    }
    after.push_str(&comment_sql(
        &format!("COLUMN {q}.{cq}"),
        column.comment.clone(),
    ));
}

/// What a child table changed on a column it inherits: its own default, a NOT NULL of its own.
/// The column's default and NOT NULL constraint are claimed here (the inheritance makes them).
pub(super) fn inherited_column(column: &Column, q: &str, written: &mut Written) {
    let cq = &column.q;
    if let Some(default) = &column.default {
        written.owns.push(oid_ref(class::PG_ATTRDEF, default.oid));
        if column.generated == Generated::None {
            written.after.push_str(&format!(
                "ALTER TABLE ONLY {q} ALTER COLUMN {cq} SET DEFAULT {};\n",
                default.expr
            ));
        }
    }
    let own_not_null = match &column.not_null {
        NotNull::Constraint(constraint) => {
            written
                .owns
                .push(oid_ref(class::PG_CONSTRAINT, constraint.oid));
            constraint.local
        }
        NotNull::Plain => !column.parent_not_null,
        NotNull::None => false,
    };
    if own_not_null {
        written.after.push_str(&format!(
            "ALTER TABLE ONLY {q} ALTER COLUMN {cq} SET NOT NULL;\n"
        ));
    }
}
