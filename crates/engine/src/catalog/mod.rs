//! Reading the catalogs into dump items, one module per object family (as pg_dump pairs
//! `getX()` with `dumpX()`): each runs one query for every object of its kind.
//!
//! Runs on the leader connection, inside its snapshot, with an empty `search_path` so that
//! `pg_get_*def` and `format_type` print every name schema-qualified. Each reader claims the
//! catalog rows it reproduces (`Item::owns`); whatever the inventory finds unclaimed is, by
//! definition, something this engine would lose, and the backup refuses to run.
//!
//! The server version is read once ([`Db::version`]); a query that differs between majors is
//! gated on it. Rows are read through [`Fields`], so a column whose type a server changed is a
//! [`CatalogError`] naming the column and the version, never a panic.
//!
//! Cost per object matters at thousands of tables: comments are read by a subquery on
//! `pg_description` (`obj_description` is a SQL function, several times dearer per row), a
//! default ACL only where the ACL is set, and a relation's size once.

mod access_methods;
mod base_types;
mod casts;
mod collations;
mod columns;
mod constraints;
mod conversions;
mod event_triggers;
mod extension_data;
mod foreign_data;
mod functions;
mod indexes;
mod initial_privileges;
mod languages;
mod large_objects;
pub mod model;
mod operator_classes;
mod operators;
mod planner_statistics;
mod policies;
mod privileges;
mod publications;
mod ranges;
mod roles;
mod rules;
mod schemas;
mod security_labels;
mod sequences;
mod statistics;
mod subscriptions;
mod tables;
mod text_search;
mod text_search_parsers;
mod transforms;
mod triggers;
mod types;
mod views;

use std::collections::HashMap;

use tokio_postgres::types::FromSqlOwned;
use tokio_postgres::{Client, Row};

use super::acl::{Grant, acl_statements};
use super::item::{Item, ItemKind, ObjectRef, class};
use super::order::DependEdge;
use backstop_pg::version::ServerVersion;

pub use large_objects::BATCH as LARGE_OBJECT_BATCH;
pub use roles::globals;
pub use sequences::sequence_values;

/// Objects of a system schema, a temp schema or an extension are never dumped.
pub(crate) const USER_SCHEMA: &str = "n.nspname NOT IN ('pg_catalog', 'information_schema') \
    AND n.nspname !~ '^pg_(toast|temp_|toast_temp_)'";

pub(crate) fn not_in_extension(catalog: &str, oid: &str) -> String {
    format!(
        "NOT EXISTS (SELECT 1 FROM pg_depend e WHERE e.classid = '{catalog}'::regclass \
         AND e.objid = {oid} AND e.deptype = 'e')"
    )
}

/// A JSON array of the ACL's entries, or NULL when the ACL itself is NULL (the default). An
/// empty ACL (every privilege revoked, the owner's too) is an empty array: aclexplode refuses it.
fn acl_json(acl: &str) -> String {
    acl_json_granted_by(acl, None)
}

/// [`acl_json`] of an ACL whose object `owner` (an expression) is known: each grant made by
/// another role (a grantee holding the grant option) names its grantor.
fn acl_json_by(acl: &str, owner: &str) -> String {
    acl_json_granted_by(acl, Some(owner))
}

/// The `acl` and `acl_default` columns of an object whose ACL is `acl`, owned by `owner`, of
/// `acldefault` kind `kind`. The default is read only when the ACL is not (a NULL ACL is the
/// default and renders nothing): it costs a few microseconds per object, which thousands of
/// tables notice.
fn acl_columns(acl: &str, owner: &str, kind: char) -> String {
    format!(
        "{} AS acl, CASE WHEN {acl} IS NULL THEN NULL ELSE {} END AS acl_default",
        acl_json_by(acl, owner),
        acl_json(&format!("acldefault('{kind}', {owner})"))
    )
}

fn acl_json_granted_by(acl: &str, owner: Option<&str>) -> String {
    let grantor = match owner {
        Some(owner) => format!(
            "CASE WHEN e.grantor <> {owner} THEN quote_ident(pg_get_userbyid(e.grantor)) END"
        ),
        None => "NULL::text".to_string(),
    };
    format!(
        "CASE WHEN {acl} IS NULL THEN NULL WHEN cardinality({acl}) = 0 THEN '[]' ELSE coalesce((SELECT json_agg(json_build_object(\
         'grantee', CASE WHEN e.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(e.grantee)) END, \
         'privilege', e.privilege_type, 'grantable', e.is_grantable, 'grantor', {grantor}) ORDER BY e.ord) \
         FROM aclexplode({acl}) WITH ORDINALITY AS e(grantor, grantee, privilege_type, is_grantable, ord)), '[]') END::text"
    )
}

/// A table up to this size shares a data part with others. Below it by the planner's
/// statistics (`relpages`, analyzed), a table's size is taken from them, as pg_dump does; at
/// or above it, or never analyzed, it is measured (`pg_relation_size` opens the table: 4,000
/// of them on a fresh session cost 75 ms). A small table that grew since it was analyzed is at
/// worst copied whole, in a shared part.
pub const SMALL_TABLE_BYTES: u64 = 4 << 20;

/// A table whose rows go into data parts.
#[derive(Debug, Clone)]
pub struct DataTable {
    pub oid: u32,
    pub schema: String,
    pub name: String,
    pub qualified_name: String,
    /// Quoted names of the columns COPY carries (generated columns are recomputed on load).
    pub columns: Vec<String>,
    /// Its size on disk: measured, or estimated from the statistics below
    /// [`SMALL_TABLE_BYTES`].
    pub bytes: u64,
    pub pages: u64,
    /// For an extension's configuration table: the condition that selects the database's own
    /// rows (`pg_extension.extcondition`, e.g. `WHERE NOT builtin`; empty for every row). The
    /// extension creates the table and its other rows, so a restore adds these to them.
    pub extension_rows: Option<ExtensionRows>,
}

/// The rows of an extension's configuration table that are the database's own.
#[derive(Debug, Clone)]
pub struct ExtensionRows {
    /// The extension (`pg_extension` OID): excluding it leaves its rows out too.
    pub extension: u32,
    /// `WHERE ...`, or empty for every row.
    pub condition: String,
}

/// A sequence whose value is read after the data.
#[derive(Debug, Clone)]
pub struct SequenceRef {
    pub oid: u32,
    pub schema: String,
    pub name: String,
    pub qualified_name: String,
    /// The table an identity sequence belongs to (it exists only with that table).
    pub identity_of: Option<String>,
    /// The extension whose configuration sequence this is (`pg_extension` OID).
    pub of_extension: Option<u32>,
}

/// Everything the catalog reader found.
#[derive(Debug, Default)]
pub struct Catalog {
    pub items: Vec<Item>,
    pub tables: Vec<DataTable>,
    pub sequences: Vec<SequenceRef>,
    pub edges: Vec<DependEdge>,
    /// The normal dependencies among them (what DROP without CASCADE refuses to break).
    pub normal_edges: Vec<DependEdge>,
    /// Objects deliberately left out, with why (invalid indexes, as pg_dump does).
    pub skipped: Vec<(ObjectRef, String)>,
    /// Objects their parent recreates (a child table's inherited checks): claimed, not dumped.
    pub recreated: Vec<ObjectRef>,
    /// Large objects by OID, in batches of [`LARGE_OBJECT_BATCH`]: one data part each.
    pub large_objects: Vec<Vec<u32>>,
    /// Dumped relations (tables, views, materialized views) by OID.
    pub relations: HashMap<u32, Relation>,
}

/// Why the catalog could not be read; the backup did not happen.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("reading the catalog ({what}) on PostgreSQL {server} failed: {reason}")]
    Query {
        what: &'static str,
        server: ServerVersion,
        reason: String,
    },
    #[error(
        "reading the catalog ({what}) on PostgreSQL {server}: column `{column}` is not what this \
         engine expects ({reason}); no backup was taken, report it with the server version"
    )]
    Shape {
        what: &'static str,
        column: String,
        server: ServerVersion,
        reason: String,
    },
}

/// The leader's connection and the server version its queries are gated on.
#[derive(Clone, Copy)]
pub struct Db<'a> {
    pub client: &'a Client,
    pub version: ServerVersion,
}

impl<'a> Db<'a> {
    pub fn new(client: &'a Client, version: ServerVersion) -> Self {
        Self { client, version }
    }

    /// Runs one catalog query; `what` names it in errors.
    async fn query(&self, what: &'static str, sql: &str) -> Result<Vec<Fields>, CatalogError> {
        let started = std::time::Instant::now();
        let rows = self
            .client
            .query(sql, &[])
            .await
            .map_err(|e| CatalogError::Query {
                what,
                server: self.version,
                reason: backstop_pg::describe(&e),
            })?;
        tracing::trace!(
            what,
            rows = rows.len(),
            seconds = started.elapsed().as_secs_f64(),
            "catalog query"
        );
        Ok(rows
            .into_iter()
            .map(|row| Fields {
                row,
                what,
                server: self.version,
            })
            .collect())
    }
}

/// One catalog row, read by column name into typed values.
pub(crate) struct Fields {
    row: Row,
    what: &'static str,
    server: ServerVersion,
}

/// What a query of schema objects selects for each: `oid`, `schema`, `name` and `q` (the
/// quoted, schema-qualified name).
pub(crate) struct SchemaObject {
    pub oid: u32,
    pub schema: String,
    pub name: String,
    pub q: String,
}

impl Fields {
    /// The [`SchemaObject`] columns of this row.
    fn schema_object(&self) -> Result<SchemaObject, CatalogError> {
        Ok(SchemaObject {
            oid: self.get("oid")?,
            schema: self.get("schema")?,
            name: self.get("name")?,
            q: self.get("q")?,
        })
    }

    /// The value of `column`, or a [`CatalogError::Shape`] naming it.
    fn get<T: FromSqlOwned>(&self, column: &str) -> Result<T, CatalogError> {
        self.row.try_get::<_, T>(column).map_err(|e| {
            let sent = self
                .row
                .columns()
                .iter()
                .find(|c| c.name() == column)
                .map(|c| format!("the server sent {}", c.type_()))
                .unwrap_or_else(|| "the server sent no such column".into());
            CatalogError::Shape {
                what: self.what,
                column: column.to_string(),
                server: self.server,
                reason: format!("{sent}: {e}"),
            }
        })
    }
}

/// A string literal that reads the same whatever the session's `standard_conforming_strings`
/// (as pg_dump writes one when it cannot rely on it): a value holding a backslash is written
/// `E'…'` with the backslash doubled, so it cannot escape the closing quote where the setting
/// is off.
pub fn literal(text: &str) -> String {
    let quoted = text.replace('\'', "''");
    if text.contains('\\') {
        format!("E'{}'", quoted.replace('\\', "\\\\"))
    } else {
        format!("'{quoted}'")
    }
}

/// An identifier as SQL: bare when it is plain lower-case and no keyword, else double-quoted.
/// (Quoting more than the server's `quote_ident` would is harmless; this is only used for
/// names Backstop writes itself, such as roles.)
pub fn ident(name: &str) -> String {
    const KEYWORDS: &[&str] = &[
        "all",
        "analyse",
        "analyze",
        "and",
        "any",
        "array",
        "as",
        "asc",
        "asymmetric",
        "authorization",
        "between",
        "bigint",
        "binary",
        "bit",
        "boolean",
        "both",
        "case",
        "cast",
        "char",
        "character",
        "check",
        "coalesce",
        "collate",
        "collation",
        "column",
        "concurrently",
        "constraint",
        "create",
        "cross",
        "current_catalog",
        "current_date",
        "current_role",
        "current_schema",
        "current_time",
        "current_timestamp",
        "current_user",
        "dec",
        "decimal",
        "default",
        "deferrable",
        "desc",
        "distinct",
        "do",
        "else",
        "end",
        "except",
        "exists",
        "extract",
        "false",
        "fetch",
        "float",
        "for",
        "foreign",
        "freeze",
        "from",
        "full",
        "grant",
        "greatest",
        "group",
        "grouping",
        "having",
        "ilike",
        "in",
        "initially",
        "inner",
        "inout",
        "int",
        "integer",
        "intersect",
        "interval",
        "into",
        "is",
        "isnull",
        "join",
        "json",
        "lateral",
        "leading",
        "least",
        "left",
        "like",
        "limit",
        "localtime",
        "localtimestamp",
        "national",
        "natural",
        "nchar",
        "none",
        "normalize",
        "not",
        "notnull",
        "null",
        "nullif",
        "numeric",
        "offset",
        "on",
        "only",
        "or",
        "order",
        "out",
        "outer",
        "overlaps",
        "overlay",
        "placing",
        "position",
        "precision",
        "primary",
        "public",
        "real",
        "references",
        "returning",
        "right",
        "row",
        "select",
        "session_user",
        "setof",
        "similar",
        "smallint",
        "some",
        "substring",
        "symmetric",
        "system_user",
        "table",
        "tablesample",
        "then",
        "time",
        "timestamp",
        "to",
        "trailing",
        "treat",
        "trim",
        "true",
        "union",
        "unique",
        "user",
        "using",
        "values",
        "varchar",
        "variadic",
        "verbose",
        "when",
        "where",
        "window",
        "with",
    ];
    let plain = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if plain && !KEYWORDS.contains(&name) && !name.starts_with("xml") && !name.starts_with("json_")
    {
        name.to_string()
    } else {
        format!("\"{}\"", name.replace('"', "\"\""))
    }
}

fn comment_sql(target: &str, comment: Option<String>) -> String {
    comment
        .map(|c| format!("COMMENT ON {target} IS {};\n", literal(&c)))
        .unwrap_or_default()
}

fn grants(row: &Fields, column: &str) -> Result<Option<Vec<Grant>>, CatalogError> {
    let text: Option<String> = row.get(column)?;
    text.map(|t| {
        serde_json::from_str(&t).map_err(|e| CatalogError::Shape {
            what: row.what,
            column: column.to_string(),
            server: row.server,
            reason: e.to_string(),
        })
    })
    .transpose()
}

fn oid_ref(class: u32, oid: u32) -> ObjectRef {
    ObjectRef { class, oid }
}

/// What other readers need to know of each dumped relation (tables, views, matviews).
#[derive(Debug, Clone)]
pub struct Relation {
    pub schema: String,
    pub name: String,
    pub qualified_name: String,
    pub kind: String,
    /// A child of table inheritance (not a partition): its inherited checks come with it.
    pub inherits: bool,
}

/// The catalog up to the relations (tables, views) that the remaining readers attach to.
async fn read_to_relations(
    db: &Db<'_>,
) -> Result<(Catalog, base_types::IoFunctions), CatalogError> {
    let mut catalog = Catalog::default();
    schemas::schemas(db, &mut catalog).await?;
    schemas::public_schema(db, &mut catalog).await?;
    schemas::extensions(db, &mut catalog).await?;
    languages::languages(db, &mut catalog).await?;
    access_methods::access_methods(db, &mut catalog).await?;
    collations::collations(db, &mut catalog).await?;
    text_search_parsers::text_search_parsers(db, &mut catalog).await?;
    text_search::text_search(db, &mut catalog).await?;
    let io_functions = base_types::base_types(db, &mut catalog).await?;
    types::types(db, &mut catalog).await?;
    ranges::ranges(db, &mut catalog).await?;
    functions::functions(db, &mut catalog).await?;
    functions::aggregates(db, &mut catalog).await?;
    casts::casts(db, &mut catalog).await?;
    transforms::transforms(db, &mut catalog).await?;
    operators::operators(db, &mut catalog).await?;
    operator_classes::operator_classes(db, &mut catalog).await?;
    conversions::conversions(db, &mut catalog).await?;
    foreign_data::foreign_data(db, &mut catalog).await?;
    let identity = sequences::sequences(db, &mut catalog).await?;
    tables::tables(db, &mut catalog, &identity).await?;
    views::views(db, &mut catalog).await?;
    Ok((catalog, io_functions))
}

/// What is read apart from the rest of the catalog: the constraints and the indexes (the
/// costliest per table, and needing nothing else read), so that a second session in the same
/// snapshot can read them while the first reads what the relations need.
pub struct Apart {
    constraints: Vec<constraints::Constraint>,
    indexes: Vec<indexes::Index>,
}

/// Reads the [`Apart`] constraints and indexes.
pub async fn read_apart(db: &Db<'_>) -> Result<Apart, CatalogError> {
    Ok(Apart {
        constraints: constraints::get(db).await?,
        indexes: indexes::get(db).await?,
    })
}

/// Reads every supported object of the current database, the [`Apart`] rows from `apart`
/// (read on another session meanwhile, or `read_apart(db)`).
pub async fn read(
    db: &Db<'_>,
    apart: impl std::future::Future<Output = Result<Apart, CatalogError>>,
) -> Result<Catalog, CatalogError> {
    let (catalog, apart) = tokio::join!(read_to_relations(db), apart);
    let (
        (mut catalog, io_functions),
        Apart {
            constraints: table_constraints,
            indexes: table_indexes,
        },
    ) = (catalog?, apart?);
    let relations = catalog.relations.clone();
    constraints::constraints(&table_constraints, &mut catalog, &relations);
    indexes::indexes(&table_indexes, &mut catalog, &relations);
    triggers::triggers(db, &mut catalog, &relations).await?;
    policies::policies(db, &mut catalog, &relations).await?;
    rules::rules(db, &mut catalog, &relations).await?;
    statistics::statistics(db, &mut catalog, &relations).await?;
    publications::publications(db, &mut catalog, &relations).await?;
    event_triggers::event_triggers(db, &mut catalog).await?;
    subscriptions::subscriptions(db, &mut catalog).await?;
    extension_data::extension_data(db, &mut catalog).await?;
    large_objects::large_objects(db, &mut catalog).await?;
    privileges::column_acls(db, &mut catalog, &relations).await?;
    privileges::default_acls(db, &mut catalog).await?;
    initial_privileges::initial_privileges(db, &mut catalog).await?;
    security_labels::security_labels(db, &mut catalog).await?;
    // Last: the statistics of every relation the items above create.
    planner_statistics::planner_statistics(db, &mut catalog, &relations).await?;
    (catalog.edges, catalog.normal_edges) = dependencies(db).await?;
    base_types::redirect_io_functions(&mut catalog.edges, &io_functions);
    Ok(catalog)
}

/// The quoted schema part of a quoted `schema.name`.
fn quote_schema(qualified: &str) -> &str {
    // Names come from quote_ident, so a '.' outside quotes separates schema and name.
    let mut in_quotes = false;
    for (i, ch) in qualified.char_indices() {
        match ch {
            '"' => in_quotes = !in_quotes,
            '.' if !in_quotes => return &qualified[..i],
            _ => {}
        }
    }
    qualified
}

/// Every dependency between user objects, and the normal ones among them.
async fn dependencies(db: &Db<'_>) -> Result<(Vec<DependEdge>, Vec<DependEdge>), CatalogError> {
    let sql = "SELECT classid::oid AS classid, objid, refclassid::oid AS refclassid, refobjid, \
               deptype = 'n' AS normal FROM pg_depend \
               WHERE deptype IN ('n', 'a') AND objid >= 16384 AND refobjid >= 16384";
    let mut all = Vec::new();
    let mut normal = Vec::new();
    for row in db.query("dependencies", sql).await? {
        let edge = DependEdge {
            from: oid_ref(row.get("classid")?, row.get("objid")?),
            to: oid_ref(row.get("refclassid")?, row.get("refobjid")?),
        };
        if row.get::<bool>("normal")? {
            normal.push(edge);
        }
        all.push(edge);
    }
    Ok((all, normal))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_double_quotes() {
        assert_eq!(literal("it's"), "'it''s'");
        assert_eq!(literal("a\\'; DROP"), "E'a\\\\''; DROP'");
    }

    #[test]
    fn identifiers_are_quoted_unless_plain() {
        assert_eq!(ident("anon"), "anon");
        assert_eq!(ident("service_role2"), "service_role2");
        assert_eq!(ident("user"), "\"user\"");
        assert_eq!(ident("Admin"), "\"Admin\"");
        assert_eq!(ident("a\"b"), "\"a\"\"b\"");
        assert_eq!(ident("2fa"), "\"2fa\"");
    }

    #[test]
    fn schema_of_a_quoted_name() {
        assert_eq!(quote_schema("app.users"), "app");
        assert_eq!(quote_schema("\"my.schema\".\"t.x\""), "\"my.schema\"");
    }
}
