//! Reading the catalogs into dump items.
//!
//! Runs on the leader connection, inside its snapshot, with an empty `search_path` so that
//! `pg_get_*def` and `format_type` print every name schema-qualified. Each reader claims the
//! catalog rows it reproduces (`Item::owns`); whatever the inventory finds unclaimed is, by
//! definition, something this engine would lose, and the backup refuses to run.

use std::collections::HashMap;

use tokio_postgres::{Client, Row};

use super::acl::{Grant, acl_statements};
use super::item::{Item, ItemKind, ObjectRef, class};
use super::order::DependEdge;

/// Objects of a system schema, a temp schema or an extension are never dumped.
const USER_SCHEMA: &str = "n.nspname NOT IN ('pg_catalog', 'information_schema') \
    AND n.nspname !~ '^pg_(toast|temp_|toast_temp_)'";

fn not_in_extension(catalog: &str, oid: &str) -> String {
    format!(
        "NOT EXISTS (SELECT 1 FROM pg_depend e WHERE e.classid = '{catalog}'::regclass \
         AND e.objid = {oid} AND e.deptype = 'e')"
    )
}

/// A JSON array of the ACL's entries, or NULL when the ACL itself is NULL (the default).
fn acl_json(acl: &str) -> String {
    format!(
        "CASE WHEN {acl} IS NULL THEN NULL ELSE coalesce((SELECT json_agg(json_build_object(\
         'grantee', CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(a.grantee)) END, \
         'privilege', a.privilege_type, 'grantable', a.is_grantable) ORDER BY a.ord) \
         FROM aclexplode({acl}) WITH ORDINALITY AS a(grantor, grantee, privilege_type, is_grantable, ord)), '[]') END::text"
    )
}

/// A table whose rows go into data parts.
#[derive(Debug, Clone)]
pub struct DataTable {
    pub oid: u32,
    pub schema: String,
    pub name: String,
    pub qualified_name: String,
    /// Quoted names of the columns COPY carries (generated columns are recomputed on load).
    pub columns: Vec<String>,
    pub bytes: u64,
    pub pages: u64,
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
}

/// Everything the catalog reader found.
#[derive(Debug, Default)]
pub struct Catalog {
    pub items: Vec<Item>,
    pub tables: Vec<DataTable>,
    pub sequences: Vec<SequenceRef>,
    pub edges: Vec<DependEdge>,
    /// Objects deliberately left out, with why (invalid indexes, as pg_dump does).
    pub skipped: Vec<(ObjectRef, String)>,
    /// Dumped relations (tables, views, materialized views) by OID.
    pub relations: HashMap<u32, Relation>,
}

#[derive(Debug, thiserror::Error)]
#[error("reading the catalog ({what}) failed: {reason}")]
pub struct CatalogError {
    pub what: &'static str,
    pub reason: String,
}

fn failed(what: &'static str) -> impl Fn(tokio_postgres::Error) -> CatalogError {
    move |e| CatalogError {
        what,
        reason: crate::pg::describe(&e),
    }
}

/// A SQL string literal.
pub fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

fn comment_sql(target: &str, comment: Option<String>) -> String {
    comment
        .map(|c| format!("COMMENT ON {target} IS {};\n", literal(&c)))
        .unwrap_or_default()
}

fn grants(row: &Row, column: &str) -> Option<Vec<Grant>> {
    let text: Option<String> = row.get(column);
    text.and_then(|t| serde_json::from_str(&t).ok())
}

fn oid_ref(class: u32, oid: u32) -> ObjectRef {
    ObjectRef { class, oid }
}

/// An ACL item for `target` owned by nothing and needing `object`, or None when default.
fn acl_item(
    schema: &str,
    name: &str,
    target: &str,
    object: ObjectRef,
    row: &Row,
    table: Option<&str>,
) -> Option<Item> {
    let sql = acl_statements(
        target,
        None,
        grants(row, "acl").as_deref(),
        &grants(row, "acl_default").unwrap_or_default(),
    );
    if sql.is_empty() {
        return None;
    }
    let item = Item::new(ItemKind::Acl, schema, name, sql).needing([object]);
    Some(match table {
        Some(t) => item.of_table(t),
        None => item,
    })
}

async fn query(client: &Client, what: &'static str, sql: &str) -> Result<Vec<Row>, CatalogError> {
    client.query(sql, &[]).await.map_err(failed(what))
}

/// Reads every supported object of the current database.
pub async fn read(client: &Client) -> Result<Catalog, CatalogError> {
    let mut catalog = Catalog::default();
    schemas(client, &mut catalog).await?;
    public_schema(client, &mut catalog).await?;
    extensions(client, &mut catalog).await?;
    types(client, &mut catalog).await?;
    functions(client, &mut catalog).await?;
    aggregates(client, &mut catalog).await?;
    let identity = sequences(client, &mut catalog).await?;
    tables(client, &mut catalog, &identity).await?;
    views(client, &mut catalog).await?;
    let relations = catalog.relations.clone();
    constraints(client, &mut catalog, &relations).await?;
    indexes(client, &mut catalog, &relations).await?;
    triggers(client, &mut catalog, &relations).await?;
    policies(client, &mut catalog, &relations).await?;
    column_acls(client, &mut catalog, &relations).await?;
    default_acls(client, &mut catalog).await?;
    catalog.edges = dependencies(client).await?;
    Ok(catalog)
}

async fn schemas(client: &Client, catalog: &mut Catalog) -> Result<(), CatalogError> {
    let sql = format!(
        "SELECT n.oid, n.nspname::text AS name, quote_ident(n.nspname) AS q, \
         quote_ident(pg_get_userbyid(n.nspowner)) AS owner, obj_description(n.oid, 'pg_namespace') AS comment, \
         {} AS acl, {} AS acl_default \
         FROM pg_namespace n WHERE n.oid >= 16384 AND {USER_SCHEMA} AND {}",
        acl_json("n.nspacl"),
        acl_json("acldefault('n', n.nspowner)"),
        not_in_extension("pg_namespace", "n.oid")
    );
    for row in query(client, "schemas", &sql).await? {
        let (oid, name, q, owner): (u32, String, String, String) = (
            row.get("oid"),
            row.get("name"),
            row.get("q"),
            row.get("owner"),
        );
        let mut sql = format!("CREATE SCHEMA {q};\nALTER SCHEMA {q} OWNER TO {owner};\n");
        sql.push_str(&comment_sql(&format!("SCHEMA {q}"), row.get("comment")));
        let object = oid_ref(class::PG_NAMESPACE, oid);
        catalog
            .items
            .push(Item::new(ItemKind::Schema, "", &name, sql).owning([object]));
        catalog.items.extend(acl_item(
            "",
            &name,
            &format!("SCHEMA {q}"),
            object,
            &row,
            None,
        ));
    }
    Ok(())
}

/// The `public` schema exists in every new database: only changes to its owner, comment and
/// privileges (against `pg_init_privs`) are dumped, as pg_dump does.
async fn public_schema(client: &Client, catalog: &mut Catalog) -> Result<(), CatalogError> {
    let sql = format!(
        "SELECT quote_ident(pg_get_userbyid(n.nspowner)) AS owner, \
         n.nspowner = 'pg_database_owner'::regrole AS default_owner, \
         obj_description(n.oid, 'pg_namespace') AS comment, {} AS acl, {} AS acl_default \
         FROM pg_namespace n WHERE n.nspname = 'public' AND n.oid < 16384",
        acl_json("n.nspacl"),
        acl_json(
            "(SELECT p.initprivs FROM pg_init_privs p WHERE p.objoid = n.oid \
             AND p.classoid = 'pg_namespace'::regclass AND p.objsubid = 0)"
        )
    );
    for row in query(client, "the public schema", &sql).await? {
        let mut sql = String::new();
        if !row.get::<_, bool>("default_owner") {
            sql.push_str(&format!(
                "ALTER SCHEMA public OWNER TO {};\n",
                row.get::<_, String>("owner")
            ));
        }
        match row.get::<_, Option<String>>("comment") {
            Some(c) if c == "standard public schema" => {}
            Some(c) => sql.push_str(&format!("COMMENT ON SCHEMA public IS {};\n", literal(&c))),
            None => sql.push_str("COMMENT ON SCHEMA public IS NULL;\n"),
        }
        if !sql.is_empty() {
            catalog
                .items
                .push(Item::new(ItemKind::Schema, "", "public", sql));
        }
        let acl = acl_statements(
            "SCHEMA public",
            None,
            grants(&row, "acl").as_deref(),
            &grants(&row, "acl_default").unwrap_or_default(),
        );
        if !acl.is_empty() {
            catalog
                .items
                .push(Item::new(ItemKind::Acl, "", "public", acl));
        }
    }
    Ok(())
}

async fn extensions(client: &Client, catalog: &mut Catalog) -> Result<(), CatalogError> {
    let sql = "SELECT x.oid, x.extname::text AS name, quote_ident(x.extname) AS q, quote_ident(n.nspname) AS schema, \
               x.extnamespace FROM pg_extension x JOIN pg_namespace n ON n.oid = x.extnamespace WHERE x.oid >= 16384";
    for row in query(client, "extensions", sql).await? {
        let (oid, name, q, schema, namespace): (u32, String, String, String, u32) = (
            row.get("oid"),
            row.get("name"),
            row.get("q"),
            row.get("schema"),
            row.get("extnamespace"),
        );
        let sql = format!("CREATE EXTENSION IF NOT EXISTS {q} WITH SCHEMA {schema};\n");
        catalog.items.push(
            Item::new(ItemKind::Extension, "", &name, sql)
                .owning([oid_ref(class::PG_EXTENSION, oid)])
                .needing([oid_ref(class::PG_NAMESPACE, namespace)]),
        );
    }
    Ok(())
}

async fn types(client: &Client, catalog: &mut Catalog) -> Result<(), CatalogError> {
    let sql = format!(
        "SELECT t.oid, t.typtype::text AS kind, n.nspname::text AS schema, t.typname::text AS name, \
         quote_ident(n.nspname) || '.' || quote_ident(t.typname) AS q, t.typarray, t.typrelid, \
         quote_ident(pg_get_userbyid(t.typowner)) AS owner, obj_description(t.oid, 'pg_type') AS comment, \
         {} AS acl, {} AS acl_default, \
         (SELECT string_agg(quote_literal(e.enumlabel), ', ' ORDER BY e.enumsortorder) FROM pg_enum e WHERE e.enumtypid = t.oid) AS labels, \
         (SELECT string_agg(quote_ident(a.attname) || ' ' || format_type(a.atttypid, a.atttypmod) || \
             CASE WHEN a.attcollation <> 0 AND a.attcollation <> at.typcollation \
             THEN ' COLLATE ' || quote_ident(cn.nspname) || '.' || quote_ident(co.collname) ELSE '' END, ', ' ORDER BY a.attnum) \
          FROM pg_attribute a JOIN pg_type at ON at.oid = a.atttypid \
          LEFT JOIN pg_collation co ON co.oid = a.attcollation LEFT JOIN pg_namespace cn ON cn.oid = co.collnamespace \
          WHERE a.attrelid = t.typrelid AND a.attnum > 0 AND NOT a.attisdropped) AS attributes, \
         (SELECT string_agg(format('COMMENT ON COLUMN %s.%I IS %L;', quote_ident(n.nspname) || '.' || quote_ident(t.typname), \
             a.attname, d.description), E'\\n' ORDER BY a.attnum) \
          FROM pg_attribute a JOIN pg_description d ON d.objoid = t.typrelid AND d.classoid = 'pg_class'::regclass \
             AND d.objsubid = a.attnum WHERE a.attrelid = t.typrelid) AS attribute_comments, \
         format_type(t.typbasetype, t.typtypmod) AS base_type, t.typnotnull, t.typdefault, \
         CASE WHEN t.typtype = 'd' AND t.typcollation <> 0 AND t.typcollation <> bt.typcollation \
             THEN quote_ident(dcn.nspname) || '.' || quote_ident(dco.collname) END AS collation \
         FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace \
         LEFT JOIN pg_type bt ON bt.oid = t.typbasetype \
         LEFT JOIN pg_collation dco ON dco.oid = t.typcollation LEFT JOIN pg_namespace dcn ON dcn.oid = dco.collnamespace \
         WHERE t.oid >= 16384 AND {USER_SCHEMA} AND {} AND t.typtype IN ('e', 'c', 'd') \
         AND (t.typtype <> 'c' OR (SELECT c.relkind FROM pg_class c WHERE c.oid = t.typrelid) = 'c')",
        acl_json("t.typacl"),
        acl_json("acldefault('T', t.typowner)"),
        not_in_extension("pg_type", "t.oid")
    );
    let constraint_sql = "SELECT c.oid, c.contypid, quote_ident(c.conname) AS q, pg_get_constraintdef(c.oid) AS def, \
         c.convalidated, obj_description(c.oid, 'pg_constraint') AS comment \
         FROM pg_constraint c WHERE c.contypid <> 0 ORDER BY c.contypid, c.conname";
    let mut domain_constraints: HashMap<u32, Vec<Row>> = HashMap::new();
    for row in query(client, "domain constraints", constraint_sql).await? {
        domain_constraints
            .entry(row.get("contypid"))
            .or_default()
            .push(row);
    }
    for row in query(client, "types", &sql).await? {
        let (oid, kind, schema, name, q, owner): (u32, String, String, String, String, String) = (
            row.get("oid"),
            row.get("kind"),
            row.get("schema"),
            row.get("name"),
            row.get("q"),
            row.get("owner"),
        );
        let (array, relid): (u32, u32) = (row.get("typarray"), row.get("typrelid"));
        let mut owns = vec![oid_ref(class::PG_TYPE, oid)];
        if array != 0 {
            owns.push(oid_ref(class::PG_TYPE, array));
        }
        let mut sql = match kind.as_str() {
            "e" => format!(
                "CREATE TYPE {q} AS ENUM ({});\n",
                row.get::<_, Option<String>>("labels").unwrap_or_default()
            ),
            "c" => {
                owns.push(oid_ref(class::PG_CLASS, relid));
                format!(
                    "CREATE TYPE {q} AS ({});\n",
                    row.get::<_, Option<String>>("attributes")
                        .unwrap_or_default()
                )
            }
            _ => {
                let mut sql = format!("CREATE DOMAIN {q} AS {}", row.get::<_, String>("base_type"));
                if let Some(collation) = row.get::<_, Option<String>>("collation") {
                    sql.push_str(&format!(" COLLATE {collation}"));
                }
                if let Some(default) = row.get::<_, Option<String>>("typdefault") {
                    sql.push_str(&format!(" DEFAULT {default}"));
                }
                if row.get::<_, bool>("typnotnull") {
                    sql.push_str(" NOT NULL");
                }
                let mut later = String::new();
                let mut comments = String::new();
                for c in domain_constraints.remove(&oid).unwrap_or_default() {
                    owns.push(oid_ref(class::PG_CONSTRAINT, c.get("oid")));
                    let (cq, def): (String, String) = (c.get("q"), c.get("def"));
                    if c.get::<_, bool>("convalidated") {
                        sql.push_str(&format!(" CONSTRAINT {cq} {def}"));
                    } else {
                        later.push_str(&format!("ALTER DOMAIN {q} ADD CONSTRAINT {cq} {def};\n"));
                    }
                    comments.push_str(&comment_sql(
                        &format!("CONSTRAINT {cq} ON DOMAIN {q}"),
                        c.get("comment"),
                    ));
                }
                if !later.is_empty() {
                    catalog.items.push(
                        Item::new(ItemKind::Check, &schema, &name, later)
                            .needing([oid_ref(class::PG_TYPE, oid)]),
                    );
                }
                sql.push_str(";\n");
                sql.push_str(&comments);
                sql
            }
        };
        let word = if kind == "d" { "DOMAIN" } else { "TYPE" };
        sql.push_str(&format!("ALTER {word} {q} OWNER TO {owner};\n"));
        sql.push_str(&comment_sql(&format!("{word} {q}"), row.get("comment")));
        if let Some(comments) = row.get::<_, Option<String>>("attribute_comments") {
            sql.push_str(&comments);
            sql.push('\n');
        }
        let object = oid_ref(class::PG_TYPE, oid);
        catalog
            .items
            .push(Item::new(ItemKind::Type, &schema, &name, sql).owning(owns));
        catalog.items.extend(acl_item(
            &schema,
            &name,
            &format!("TYPE {q}"),
            object,
            &row,
            None,
        ));
    }
    Ok(())
}

async fn functions(client: &Client, catalog: &mut Catalog) -> Result<(), CatalogError> {
    let sql = format!(
        "SELECT p.oid, n.nspname::text AS schema, p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ')' AS name, \
         quote_ident(n.nspname) || '.' || quote_ident(p.proname) || '(' || pg_get_function_identity_arguments(p.oid) || ')' AS signature, \
         p.prokind::text AS kind, pg_get_functiondef(p.oid) AS def, \
         quote_ident(pg_get_userbyid(p.proowner)) AS owner, obj_description(p.oid, 'pg_proc') AS comment, \
         {} AS acl, {} AS acl_default \
         FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace \
         WHERE p.oid >= 16384 AND {USER_SCHEMA} AND {} AND p.prokind IN ('f', 'p', 'w')",
        acl_json("p.proacl"),
        acl_json("acldefault('f', p.proowner)"),
        not_in_extension("pg_proc", "p.oid")
    );
    for row in query(client, "functions", &sql).await? {
        let (oid, schema, name, signature, kind, def, owner): (
            u32,
            String,
            String,
            String,
            String,
            String,
            String,
        ) = (
            row.get("oid"),
            row.get("schema"),
            row.get("name"),
            row.get("signature"),
            row.get("kind"),
            row.get("def"),
            row.get("owner"),
        );
        let word = if kind == "p" { "PROCEDURE" } else { "FUNCTION" };
        let mut sql = format!(
            "{};\nALTER {word} {signature} OWNER TO {owner};\n",
            def.trim_end()
        );
        sql.push_str(&comment_sql(
            &format!("{word} {signature}"),
            row.get("comment"),
        ));
        let object = oid_ref(class::PG_PROC, oid);
        catalog
            .items
            .push(Item::new(ItemKind::Function, &schema, &name, sql).owning([object]));
        catalog.items.extend(acl_item(
            &schema,
            &name,
            &format!("{word} {signature}"),
            object,
            &row,
            None,
        ));
    }
    Ok(())
}

async fn aggregates(client: &Client, catalog: &mut Catalog) -> Result<(), CatalogError> {
    let sql = format!(
        "SELECT p.oid, n.nspname::text AS schema, p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ')' AS name, \
         quote_ident(n.nspname) || '.' || quote_ident(p.proname) || '(' || pg_get_function_identity_arguments(p.oid) || ')' AS signature, \
         a.aggtransfn::regproc::text AS sfunc, format_type(a.aggtranstype, NULL) AS stype, a.aggtransspace, \
         NULLIF(a.aggfinalfn, 0)::regproc::text AS finalfunc, a.aggfinalextra, a.aggfinalmodify::text AS finalmodify, \
         NULLIF(a.aggcombinefn, 0)::regproc::text AS combinefunc, NULLIF(a.aggserialfn, 0)::regproc::text AS serialfunc, \
         NULLIF(a.aggdeserialfn, 0)::regproc::text AS deserialfunc, a.agginitval, \
         NULLIF(a.aggmtransfn, 0)::regproc::text AS msfunc, NULLIF(a.aggminvtransfn, 0)::regproc::text AS minvfunc, \
         CASE WHEN a.aggmtranstype <> 0 THEN format_type(a.aggmtranstype, NULL) END AS mstype, a.aggmtransspace, \
         NULLIF(a.aggmfinalfn, 0)::regproc::text AS mfinalfunc, a.aggmfinalextra, a.aggminitval, \
         NULLIF(a.aggsortop, 0)::regoperator::text AS sortop, p.proparallel::text AS parallel, \
         quote_ident(pg_get_userbyid(p.proowner)) AS owner, obj_description(p.oid, 'pg_proc') AS comment, \
         {} AS acl, {} AS acl_default \
         FROM pg_proc p JOIN pg_aggregate a ON a.aggfnoid = p.oid JOIN pg_namespace n ON n.oid = p.pronamespace \
         WHERE p.oid >= 16384 AND {USER_SCHEMA} AND {} AND a.aggkind = 'n'",
        acl_json("p.proacl"),
        acl_json("acldefault('f', p.proowner)"),
        not_in_extension("pg_proc", "p.oid")
    );
    for row in query(client, "aggregates", &sql).await? {
        let (oid, schema, name, signature, owner): (u32, String, String, String, String) = (
            row.get("oid"),
            row.get("schema"),
            row.get("name"),
            row.get("signature"),
            row.get("owner"),
        );
        let mut options = vec![
            format!("SFUNC = {}", row.get::<_, String>("sfunc")),
            format!("STYPE = {}", row.get::<_, String>("stype")),
        ];
        let mut add = |label: &str, column: &str| {
            if let Some(value) = row.get::<_, Option<String>>(column) {
                options.push(format!("{label} = {value}"));
            }
        };
        add("FINALFUNC", "finalfunc");
        add("COMBINEFUNC", "combinefunc");
        add("SERIALFUNC", "serialfunc");
        add("DESERIALFUNC", "deserialfunc");
        add("MSFUNC", "msfunc");
        add("MINVFUNC", "minvfunc");
        add("MSTYPE", "mstype");
        add("MFINALFUNC", "mfinalfunc");
        add("SORTOP", "sortop");
        if let Some(init) = row.get::<_, Option<String>>("agginitval") {
            options.push(format!("INITCOND = {}", literal(&init)));
        }
        if let Some(init) = row.get::<_, Option<String>>("aggminitval") {
            options.push(format!("MINITCOND = {}", literal(&init)));
        }
        if row.get::<_, i32>("aggtransspace") != 0 {
            options.push(format!("SSPACE = {}", row.get::<_, i32>("aggtransspace")));
        }
        if row.get::<_, i32>("aggmtransspace") != 0 {
            options.push(format!("MSSPACE = {}", row.get::<_, i32>("aggmtransspace")));
        }
        if row.get::<_, bool>("aggfinalextra") {
            options.push("FINALFUNC_EXTRA".into());
        }
        if row.get::<_, bool>("aggmfinalextra") {
            options.push("MFINALFUNC_EXTRA".into());
        }
        match row.get::<_, String>("finalmodify").as_str() {
            "s" => options.push("FINALFUNC_MODIFY = SHAREABLE".into()),
            "w" => options.push("FINALFUNC_MODIFY = READ_WRITE".into()),
            _ => {}
        }
        match row.get::<_, String>("parallel").as_str() {
            "s" => options.push("PARALLEL = SAFE".into()),
            "r" => options.push("PARALLEL = RESTRICTED".into()),
            _ => {}
        }
        let mut sql = format!(
            "CREATE AGGREGATE {signature} (\n    {}\n);\nALTER AGGREGATE {signature} OWNER TO {owner};\n",
            options.join(",\n    ")
        );
        sql.push_str(&comment_sql(
            &format!("AGGREGATE {signature}"),
            row.get("comment"),
        ));
        let object = oid_ref(class::PG_PROC, oid);
        catalog
            .items
            .push(Item::new(ItemKind::Aggregate, &schema, &name, sql).owning([object]));
        catalog.items.extend(acl_item(
            &schema,
            &name,
            &format!("FUNCTION {signature}"),
            object,
            &row,
            None,
        ));
    }
    Ok(())
}

/// Options of a sequence as an identity clause spells them (its type is the column's).
fn sequence_options(row: &Row) -> String {
    format!(
        "START WITH {} INCREMENT BY {} MINVALUE {} MAXVALUE {} CACHE {}{}",
        row.get::<_, i64>("seqstart"),
        row.get::<_, i64>("seqincrement"),
        row.get::<_, i64>("seqmin"),
        row.get::<_, i64>("seqmax"),
        row.get::<_, i64>("seqcache"),
        if row.get::<_, bool>("seqcycle") {
            " CYCLE"
        } else {
            " NO CYCLE"
        }
    )
}

const SEQUENCE_COLUMNS: &str = "format_type(s.seqtypid, NULL) AS seqtype, s.seqstart, s.seqincrement, s.seqmin, \
     s.seqmax, s.seqcache, s.seqcycle";

/// Identity sequences by (table oid, column number): (sequence oid, quoted name, options).
type IdentitySequences = HashMap<(u32, i16), (u32, String, String)>;

async fn sequences(
    client: &Client,
    catalog: &mut Catalog,
) -> Result<IdentitySequences, CatalogError> {
    let sql = format!(
        "SELECT c.oid, n.nspname::text AS schema, c.relname::text AS name, quote_ident(n.nspname) || '.' || quote_ident(c.relname) AS q, \
         {SEQUENCE_COLUMNS}, c.relpersistence::text AS persistence, \
         quote_ident(pg_get_userbyid(c.relowner)) AS owner, obj_description(c.oid, 'pg_class') AS comment, \
         {} AS acl, {} AS acl_default, \
         d.refobjid AS owner_table, d.refobjsubid::int2 AS owner_column, d.deptype::text AS deptype, \
         quote_ident(tn.nspname) || '.' || quote_ident(tc.relname) || '.' || quote_ident(a.attname) AS owned_by, \
         quote_ident(tn.nspname) || '.' || quote_ident(tc.relname) AS owner_table_name \
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace JOIN pg_sequence s ON s.seqrelid = c.oid \
         LEFT JOIN pg_depend d ON d.classid = 'pg_class'::regclass AND d.objid = c.oid \
             AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i') \
         LEFT JOIN pg_class tc ON tc.oid = d.refobjid LEFT JOIN pg_namespace tn ON tn.oid = tc.relnamespace \
         LEFT JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid \
         WHERE c.relkind = 'S' AND c.oid >= 16384 AND {USER_SCHEMA} AND {}",
        acl_json("c.relacl"),
        acl_json("acldefault('s', c.relowner)"),
        not_in_extension("pg_class", "c.oid")
    );
    let mut identity = IdentitySequences::new();
    for row in query(client, "sequences", &sql).await? {
        let (oid, schema, name, q, owner): (u32, String, String, String, String) = (
            row.get("oid"),
            row.get("schema"),
            row.get("name"),
            row.get("q"),
            row.get("owner"),
        );
        let object = oid_ref(class::PG_CLASS, oid);
        let identity_of = (row.get::<_, Option<String>>("deptype").as_deref() == Some("i"))
            .then(|| row.get::<_, Option<String>>("owner_table_name"))
            .flatten();
        catalog.sequences.push(SequenceRef {
            oid,
            schema: schema.clone(),
            name: name.clone(),
            qualified_name: q.clone(),
            identity_of: identity_of.clone(),
        });
        catalog.items.extend(acl_item(
            &schema,
            &name,
            &format!("SEQUENCE {q}"),
            object,
            &row,
            identity_of.as_deref(),
        ));
        if row.get::<_, Option<String>>("deptype").as_deref() == Some("i") {
            let key = (
                row.get::<_, u32>("owner_table"),
                row.get::<_, i16>("owner_column"),
            );
            identity.insert(key, (oid, q, sequence_options(&row)));
            continue;
        }
        let unlogged = if row.get::<_, String>("persistence") == "u" {
            "UNLOGGED "
        } else {
            ""
        };
        let mut sql = format!(
            "CREATE {unlogged}SEQUENCE {q} AS {} {};\nALTER SEQUENCE {q} OWNER TO {owner};\n",
            row.get::<_, String>("seqtype"),
            sequence_options(&row)
        );
        sql.push_str(&comment_sql(&format!("SEQUENCE {q}"), row.get("comment")));
        catalog
            .items
            .push(Item::new(ItemKind::Sequence, &schema, &name, sql).owning([object]));
        if let Some(owned_by) = row.get::<_, Option<String>>("owned_by") {
            let table = oid_ref(class::PG_CLASS, row.get("owner_table"));
            catalog.items.push(
                Item::new(
                    ItemKind::SequenceOwnedBy,
                    &schema,
                    &name,
                    format!("ALTER SEQUENCE {q} OWNED BY {owned_by};\n"),
                )
                .needing([object, table])
                .of_table(&row.get::<_, String>("owner_table_name")),
            );
        }
    }
    Ok(identity)
}

/// What other readers need to know of each dumped relation (tables, views, matviews).
#[derive(Debug, Clone)]
pub struct Relation {
    pub schema: String,
    pub name: String,
    pub qualified_name: String,
    pub kind: String,
}

async fn tables(
    client: &Client,
    catalog: &mut Catalog,
    identity: &IdentitySequences,
) -> Result<(), CatalogError> {
    let sql = format!(
        "SELECT c.oid, n.nspname::text AS schema, c.relname::text AS name, quote_ident(n.nspname) || '.' || quote_ident(c.relname) AS q, \
         c.relkind::text AS kind, c.relpersistence::text AS persistence, c.relrowsecurity, c.relforcerowsecurity, \
         c.relispartition, c.reloftype <> 0 AS typed, c.reltype, c.reltype AS rowtype, \
         (SELECT t.typarray FROM pg_type t WHERE t.oid = c.reltype) AS rowtype_array, \
         array_to_string(c.reloptions || ARRAY(SELECT 'toast.' || o FROM pg_class t, unnest(t.reloptions) AS o \
             WHERE t.oid = c.reltoastrelid), ', ') AS options, c.relreplident::text AS replident, \
         CASE WHEN am.amname <> 'heap' THEN quote_ident(am.amname) END AS am, \
         (EXISTS (SELECT 1 FROM pg_inherits i WHERE i.inhrelid = c.oid) AND NOT c.relispartition) \
             OR (EXISTS (SELECT 1 FROM pg_inherits i WHERE i.inhparent = c.oid) AND c.relkind <> 'p') AS inherits, \
         CASE WHEN c.relkind = 'p' THEN pg_get_partkeydef(c.oid) END AS partition_key, \
         CASE WHEN c.relispartition THEN pg_get_expr(c.relpartbound, c.oid) END AS partition_bound, \
         (SELECT i.inhparent FROM pg_inherits i WHERE i.inhrelid = c.oid AND c.relispartition) AS partition_parent, \
         (SELECT quote_ident(pn.nspname) || '.' || quote_ident(pc.relname) FROM pg_inherits i JOIN pg_class pc ON pc.oid = i.inhparent \
             JOIN pg_namespace pn ON pn.oid = pc.relnamespace WHERE i.inhrelid = c.oid AND c.relispartition) AS partition_parent_name, \
         quote_ident(pg_get_userbyid(c.relowner)) AS owner, obj_description(c.oid, 'pg_class') AS comment, \
         {} AS acl, {} AS acl_default, pg_relation_size(c.oid) AS bytes, \
         (pg_relation_size(c.oid) / current_setting('block_size')::int8) AS pages \
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace LEFT JOIN pg_am am ON am.oid = c.relam \
         WHERE c.relkind IN ('r', 'p') AND c.oid >= 16384 AND {USER_SCHEMA} AND {} \
         ORDER BY c.oid",
        acl_json("c.relacl"),
        acl_json("acldefault('r', c.relowner)"),
        not_in_extension("pg_class", "c.oid")
    );
    let column_sql = "SELECT a.attrelid, a.attnum, quote_ident(a.attname) AS q, format_type(a.atttypid, a.atttypmod) AS type, \
         a.attnotnull, a.attidentity::text AS identity, a.attgenerated::text AS generated, \
         pg_get_expr(d.adbin, d.adrelid) AS default_expr, d.oid AS attrdef, \
         CASE WHEN a.attcollation <> 0 AND a.attcollation <> t.typcollation \
             THEN quote_ident(cn.nspname) || '.' || quote_ident(co.collname) END AS collation, \
         CASE WHEN a.attstorage <> t.typstorage THEN CASE a.attstorage WHEN 'p' THEN 'PLAIN' WHEN 'e' THEN 'EXTERNAL' \
             WHEN 'm' THEN 'MAIN' WHEN 'x' THEN 'EXTENDED' END END AS storage, \
         a.attstattarget, CASE a.attcompression WHEN 'p' THEN 'pglz' WHEN 'l' THEN 'lz4' END AS compression, \
         array_to_string(a.attoptions, ', ') AS options, col_description(a.attrelid, a.attnum) AS comment \
         FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_type t ON t.oid = a.atttypid \
         LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum \
         LEFT JOIN pg_collation co ON co.oid = a.attcollation LEFT JOIN pg_namespace cn ON cn.oid = co.collnamespace \
         WHERE c.relkind IN ('r', 'p') AND c.oid >= 16384 AND a.attnum > 0 AND NOT a.attisdropped \
         ORDER BY a.attrelid, a.attnum";
    let mut columns: HashMap<u32, Vec<Row>> = HashMap::new();
    for row in query(client, "columns", column_sql).await? {
        columns.entry(row.get("attrelid")).or_default().push(row);
    }

    for row in query(client, "tables", &sql).await? {
        let (oid, schema, name, q, kind, owner): (u32, String, String, String, String, String) = (
            row.get("oid"),
            row.get("schema"),
            row.get("name"),
            row.get("q"),
            row.get("kind"),
            row.get("owner"),
        );
        // Not reproduced yet: left unclaimed so the inventory check names them.
        if row.get::<_, bool>("inherits") || row.get::<_, bool>("typed") {
            continue;
        }
        let object = oid_ref(class::PG_CLASS, oid);
        let mut owns = vec![object, oid_ref(class::PG_TYPE, row.get("rowtype"))];
        if let Some(array) = row
            .get::<_, Option<u32>>("rowtype_array")
            .filter(|a| *a != 0)
        {
            owns.push(oid_ref(class::PG_TYPE, array));
        }
        let mut lines = Vec::new();
        let mut after = String::new();
        let mut copy_columns = Vec::new();
        for column in columns.remove(&oid).unwrap_or_default() {
            let (cq, ty): (String, String) = (column.get("q"), column.get("type"));
            let mut line = format!("    {cq} {ty}");
            if let Some(collation) = column.get::<_, Option<String>>("collation") {
                line.push_str(&format!(" COLLATE {collation}"));
            }
            let generated = column.get::<_, String>("generated") == "s";
            let identity_kind = column.get::<_, String>("identity");
            if let Some(attrdef) = column.get::<_, Option<u32>>("attrdef") {
                owns.push(oid_ref(class::PG_ATTRDEF, attrdef));
                let expr: String = column
                    .get::<_, Option<String>>("default_expr")
                    .unwrap_or_default();
                if generated {
                    line.push_str(&format!(" GENERATED ALWAYS AS ({expr}) STORED"));
                } else {
                    line.push_str(&format!(" DEFAULT {expr}"));
                }
            }
            if !identity_kind.is_empty() {
                let attnum: i16 = column.get("attnum");
                if let Some((seq_oid, seq_name, options)) = identity.get(&(oid, attnum)) {
                    owns.push(oid_ref(class::PG_CLASS, *seq_oid));
                    let when = if identity_kind == "a" {
                        "ALWAYS"
                    } else {
                        "BY DEFAULT"
                    };
                    line.push_str(&format!(
                        " GENERATED {when} AS IDENTITY (SEQUENCE NAME {seq_name} {options})"
                    ));
                }
            }
            if column.get::<_, bool>("attnotnull") {
                line.push_str(" NOT NULL");
            }
            lines.push(line);
            if !generated {
                copy_columns.push(cq.clone());
            }
            if let Some(storage) = column.get::<_, Option<String>>("storage") {
                after.push_str(&format!(
                    "ALTER TABLE ONLY {q} ALTER COLUMN {cq} SET STORAGE {storage};\n"
                ));
            }
            let target: i32 = column.get::<_, Option<i32>>("attstattarget").unwrap_or(-1);
            if target >= 0 {
                after.push_str(&format!(
                    "ALTER TABLE ONLY {q} ALTER COLUMN {cq} SET STATISTICS {target};\n"
                ));
            }
            if let Some(compression) = column.get::<_, Option<String>>("compression") {
                after.push_str(&format!(
                    "ALTER TABLE ONLY {q} ALTER COLUMN {cq} SET COMPRESSION {compression};\n"
                ));
            }
            if let Some(options) = column
                .get::<_, Option<String>>("options")
                .filter(|o| !o.is_empty())
            {
                after.push_str(&format!(
                    "ALTER TABLE ONLY {q} ALTER COLUMN {cq} SET ({options});\n"
                ));
            }
            after.push_str(&comment_sql(
                &format!("COLUMN {q}.{cq}"),
                column.get("comment"),
            ));
        }
        let unlogged = if row.get::<_, String>("persistence") == "u" {
            "UNLOGGED "
        } else {
            ""
        };
        let mut sql = format!("CREATE {unlogged}TABLE {q} (\n{}\n)", lines.join(",\n"));
        if let Some(key) = row.get::<_, Option<String>>("partition_key") {
            sql.push_str(&format!("\nPARTITION BY {key}"));
        }
        if let Some(am) = row.get::<_, Option<String>>("am") {
            sql.push_str(&format!(" USING {am}"));
        }
        if let Some(options) = row
            .get::<_, Option<String>>("options")
            .filter(|o| !o.is_empty())
        {
            sql.push_str(&format!(" WITH ({options})"));
        }
        sql.push_str(";\n");
        sql.push_str(&after);
        sql.push_str(&format!("ALTER TABLE {q} OWNER TO {owner};\n"));
        sql.push_str(&comment_sql(&format!("TABLE {q}"), row.get("comment")));
        catalog.items.push(
            Item::new(ItemKind::Table, &schema, &name, sql)
                .owning(owns)
                .of_table(&q),
        );
        catalog.items.extend(acl_item(
            &schema,
            &name,
            &format!("TABLE {q}"),
            object,
            &row,
            Some(&q),
        ));

        let mut properties = String::new();
        if row.get::<_, bool>("relrowsecurity") {
            properties.push_str(&format!("ALTER TABLE {q} ENABLE ROW LEVEL SECURITY;\n"));
        }
        if row.get::<_, bool>("relforcerowsecurity") {
            properties.push_str(&format!("ALTER TABLE {q} FORCE ROW LEVEL SECURITY;\n"));
        }
        match row.get::<_, String>("replident").as_str() {
            "f" => properties.push_str(&format!("ALTER TABLE ONLY {q} REPLICA IDENTITY FULL;\n")),
            "n" => {
                properties.push_str(&format!("ALTER TABLE ONLY {q} REPLICA IDENTITY NOTHING;\n"))
            }
            _ => {}
        }
        if !properties.is_empty() {
            catalog.items.push(
                Item::new(ItemKind::TableProperties, &schema, &name, properties)
                    .needing([object])
                    .of_table(&q),
            );
        }
        if let (Some(parent), Some(parent_name), Some(bound)) = (
            row.get::<_, Option<u32>>("partition_parent"),
            row.get::<_, Option<String>>("partition_parent_name"),
            row.get::<_, Option<String>>("partition_bound"),
        ) {
            catalog.items.push(
                Item::new(
                    ItemKind::PartitionAttach,
                    &schema,
                    &name,
                    format!("ALTER TABLE ONLY {parent_name} ATTACH PARTITION {q} {bound};\n"),
                )
                .needing([object, oid_ref(class::PG_CLASS, parent)])
                .of_table(&q),
            );
        }
        if kind == "p" {
            catalog.relations.insert(
                oid,
                Relation {
                    schema,
                    name,
                    qualified_name: q,
                    kind,
                },
            );
            continue; // a partitioned table holds no rows of its own
        }
        catalog.tables.push(DataTable {
            oid,
            schema: schema.clone(),
            name: name.clone(),
            qualified_name: q.clone(),
            columns: copy_columns,
            bytes: row.get::<_, i64>("bytes").max(0) as u64,
            pages: row.get::<_, i64>("pages").max(0) as u64,
        });
        catalog.relations.insert(
            oid,
            Relation {
                schema,
                name,
                qualified_name: q,
                kind,
            },
        );
    }
    Ok(())
}

async fn views(client: &Client, catalog: &mut Catalog) -> Result<(), CatalogError> {
    let sql = format!(
        "SELECT c.oid, n.nspname::text AS schema, c.relname::text AS name, quote_ident(n.nspname) || '.' || quote_ident(c.relname) AS q, \
         c.relkind::text AS kind, pg_get_viewdef(c.oid) AS def, array_to_string(c.reloptions, ', ') AS options, \
         c.relispopulated, c.reltype, (SELECT t.typarray FROM pg_type t WHERE t.oid = c.reltype) AS rowtype_array, \
         (SELECT r.oid FROM pg_rewrite r WHERE r.ev_class = c.oid AND r.rulename = '_RETURN') AS rule, \
         CASE WHEN am.amname <> 'heap' THEN quote_ident(am.amname) END AS am, \
         quote_ident(pg_get_userbyid(c.relowner)) AS owner, obj_description(c.oid, 'pg_class') AS comment, \
         {} AS acl, {} AS acl_default, \
         (SELECT string_agg(format('COMMENT ON COLUMN %s.%I IS %L;', quote_ident(n.nspname) || '.' || quote_ident(c.relname), a.attname, d.description), E'\\n' ORDER BY a.attnum) \
          FROM pg_attribute a JOIN pg_description d ON d.objoid = c.oid AND d.classoid = 'pg_class'::regclass AND d.objsubid = a.attnum \
          WHERE a.attrelid = c.oid) AS column_comments \
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace LEFT JOIN pg_am am ON am.oid = c.relam \
         WHERE c.relkind IN ('v', 'm') AND c.oid >= 16384 AND {USER_SCHEMA} AND {}",
        acl_json("c.relacl"),
        acl_json("acldefault('r', c.relowner)"),
        not_in_extension("pg_class", "c.oid")
    );
    for row in query(client, "views", &sql).await? {
        let (oid, schema, name, q, kind, def, owner): (
            u32,
            String,
            String,
            String,
            String,
            String,
            String,
        ) = (
            row.get("oid"),
            row.get("schema"),
            row.get("name"),
            row.get("q"),
            row.get("kind"),
            row.get("def"),
            row.get("owner"),
        );
        let object = oid_ref(class::PG_CLASS, oid);
        let mut owns = vec![object, oid_ref(class::PG_TYPE, row.get("reltype"))];
        if let Some(array) = row
            .get::<_, Option<u32>>("rowtype_array")
            .filter(|a| *a != 0)
        {
            owns.push(oid_ref(class::PG_TYPE, array));
        }
        if let Some(rule) = row.get::<_, Option<u32>>("rule") {
            owns.push(oid_ref(class::PG_REWRITE, rule));
        }
        let def = def.trim().trim_end_matches(';');
        let options = row
            .get::<_, Option<String>>("options")
            .filter(|o| !o.is_empty())
            .map(|o| format!(" WITH ({o})"))
            .unwrap_or_default();
        let (item_kind, word, mut sql) = if kind == "m" {
            let using = row
                .get::<_, Option<String>>("am")
                .map(|am| format!(" USING {am}"))
                .unwrap_or_default();
            (
                ItemKind::MaterializedView,
                "MATERIALIZED VIEW",
                format!(
                    "CREATE MATERIALIZED VIEW {q}{using}{options} AS\n {def}\n  WITH NO DATA;\n"
                ),
            )
        } else {
            (
                ItemKind::View,
                "VIEW",
                format!("CREATE VIEW {q}{options} AS\n {def};\n"),
            )
        };
        sql.push_str(&format!(
            "ALTER {} {q} OWNER TO {owner};\n",
            if kind == "m" {
                "MATERIALIZED VIEW"
            } else {
                "VIEW"
            }
        ));
        sql.push_str(&comment_sql(&format!("{word} {q}"), row.get("comment")));
        if let Some(comments) = row.get::<_, Option<String>>("column_comments") {
            sql.push_str(&comments);
            sql.push('\n');
        }
        catalog.items.push(
            Item::new(item_kind, &schema, &name, sql)
                .owning(owns)
                .of_table(&q),
        );
        catalog.items.extend(acl_item(
            &schema,
            &name,
            &format!("TABLE {q}"),
            object,
            &row,
            Some(&q),
        ));
        if kind == "m" && row.get::<_, bool>("relispopulated") {
            catalog.items.push(
                Item::new(
                    ItemKind::Refresh,
                    &schema,
                    &name,
                    format!("REFRESH MATERIALIZED VIEW {q};\n"),
                )
                .needing([object])
                .of_table(&q),
            );
        }
        catalog.relations.insert(
            oid,
            Relation {
                schema: schema.clone(),
                name: name.clone(),
                qualified_name: q.clone(),
                kind,
            },
        );
    }
    Ok(())
}

async fn constraints(
    client: &Client,
    catalog: &mut Catalog,
    relations: &HashMap<u32, Relation>,
) -> Result<(), CatalogError> {
    let sql = "SELECT con.oid, con.conrelid, con.contype::text AS kind, con.conname::text AS name, quote_ident(con.conname) AS q, \
         pg_get_constraintdef(con.oid) AS def, con.convalidated, con.conindid, con.conparentid, \
         obj_description(con.oid, 'pg_constraint') AS comment, \
         (SELECT i.indisclustered FROM pg_index i WHERE i.indexrelid = con.conindid) AS clustered, \
         (SELECT i.indisreplident FROM pg_index i WHERE i.indexrelid = con.conindid) AS replident, \
         (SELECT quote_ident(c.relname) FROM pg_class c WHERE c.oid = con.conindid) AS index_name, \
         (SELECT quote_ident(pn.nspname) || '.' || quote_ident(pc.relname) FROM pg_inherits h \
             JOIN pg_class pc ON pc.oid = h.inhparent JOIN pg_namespace pn ON pn.oid = pc.relnamespace \
             WHERE h.inhrelid = con.conindid) AS parent_index, \
         (SELECT h.inhparent FROM pg_inherits h WHERE h.inhrelid = con.conindid) AS parent_index_oid \
         FROM pg_constraint con WHERE con.conrelid <> 0 AND con.oid >= 16384 ORDER BY con.conrelid, con.conname";
    let rows = query(client, "constraints", sql).await?;
    // Foreign keys cloned onto partitions come back with their parent's: claim them there.
    let parent_of: HashMap<u32, u32> = rows
        .iter()
        .filter(|r| r.get::<_, u32>("conparentid") != 0)
        .map(|r| (r.get::<_, u32>("oid"), r.get::<_, u32>("conparentid")))
        .collect();
    let root = |mut oid: u32| {
        while let Some(parent) = parent_of.get(&oid) {
            oid = *parent;
        }
        oid
    };
    let mut clones: HashMap<u32, Vec<ObjectRef>> = HashMap::new();
    for row in &rows {
        let oid: u32 = row.get("oid");
        if row.get::<_, u32>("conparentid") != 0 && row.get::<_, String>("kind") == "f" {
            clones
                .entry(root(oid))
                .or_default()
                .push(oid_ref(class::PG_CONSTRAINT, oid));
        }
    }
    for row in rows {
        let (oid, table_oid, kind, name, q, def): (u32, u32, String, String, String, String) = (
            row.get("oid"),
            row.get("conrelid"),
            row.get("kind"),
            row.get("name"),
            row.get("q"),
            row.get("def"),
        );
        let Some(table) = relations.get(&table_oid) else {
            continue;
        };
        let cloned = row.get::<_, u32>("conparentid") != 0;
        if cloned && kind != "p" && kind != "u" && kind != "x" {
            continue; // recreated with the parent's constraint (claimed above for foreign keys)
        }
        let t = &table.qualified_name;
        let mut owns = vec![oid_ref(class::PG_CONSTRAINT, oid)];
        owns.extend(clones.remove(&oid).unwrap_or_default());
        let mut sql = format!("ALTER TABLE ONLY {t} ADD CONSTRAINT {q} {def};\n");
        let item_kind = match kind.as_str() {
            "p" | "u" | "x" => {
                owns.push(oid_ref(class::PG_CLASS, row.get("conindid")));
                if row.get::<_, Option<bool>>("clustered") == Some(true) {
                    sql.push_str(&format!(
                        "ALTER TABLE {t} CLUSTER ON {};\n",
                        row.get::<_, String>("index_name")
                    ));
                }
                if row.get::<_, Option<bool>>("replident") == Some(true) {
                    sql.push_str(&format!(
                        "ALTER TABLE ONLY {t} REPLICA IDENTITY USING INDEX {};\n",
                        row.get::<_, String>("index_name")
                    ));
                }
                if let (Some(parent), Some(parent_oid)) = (
                    row.get::<_, Option<String>>("parent_index"),
                    row.get::<_, Option<u32>>("parent_index_oid"),
                ) {
                    let child = oid_ref(class::PG_CLASS, row.get("conindid"));
                    catalog.items.push(
                        Item::new(
                            ItemKind::IndexAttach,
                            &table.schema,
                            &name,
                            format!(
                                "ALTER INDEX {parent} ATTACH PARTITION {}.{};\n",
                                quote_schema(t),
                                row.get::<_, String>("index_name")
                            ),
                        )
                        .needing([child, oid_ref(class::PG_CLASS, parent_oid)])
                        .of_table(t),
                    );
                }
                ItemKind::Constraint
            }
            "f" => ItemKind::ForeignKey,
            "c" if row.get::<_, bool>("convalidated") => ItemKind::Check,
            "c" => ItemKind::ForeignKey, // NOT VALID checks run after the data, with the FKs
            _ => continue,               // constraint triggers: not reproduced yet
        };
        sql.push_str(&comment_sql(
            &format!("CONSTRAINT {q} ON {t}"),
            row.get("comment"),
        ));
        catalog.items.push(
            Item::new(item_kind, &table.schema, &name, sql)
                .owning(owns)
                .needing([oid_ref(class::PG_CLASS, table_oid)])
                .of_table(t),
        );
    }
    Ok(())
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

async fn indexes(
    client: &Client,
    catalog: &mut Catalog,
    relations: &HashMap<u32, Relation>,
) -> Result<(), CatalogError> {
    let sql = "SELECT i.indexrelid, i.indrelid, c.relname::text AS name, quote_ident(c.relname) AS q, \
         pg_get_indexdef(i.indexrelid) AS def, i.indisvalid, i.indisclustered, i.indisreplident, c.relkind::text AS kind, \
         (SELECT quote_ident(pn.nspname) || '.' || quote_ident(pc.relname) FROM pg_inherits h \
             JOIN pg_class pc ON pc.oid = h.inhparent JOIN pg_namespace pn ON pn.oid = pc.relnamespace \
             WHERE h.inhrelid = i.indexrelid) AS parent_index, \
         (SELECT h.inhparent FROM pg_inherits h WHERE h.inhrelid = i.indexrelid) AS parent_index_oid, \
         obj_description(i.indexrelid, 'pg_class') AS comment, \
         (SELECT string_agg(format('ALTER INDEX %s ALTER COLUMN %s SET STATISTICS %s;', \
             quote_ident(n.nspname) || '.' || quote_ident(c.relname), a.attnum, a.attstattarget), E'\\n') \
          FROM pg_attribute a WHERE a.attrelid = i.indexrelid AND a.attstattarget >= 0) AS statistics \
         FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE i.indexrelid >= 16384 AND NOT EXISTS (SELECT 1 FROM pg_constraint con WHERE con.conindid = i.indexrelid \
             AND con.conrelid = i.indrelid AND con.contype IN ('p', 'u', 'x')) \
         ORDER BY i.indrelid, c.relname";
    for row in query(client, "indexes", sql).await? {
        let (oid, table_oid, name, q, def): (u32, u32, String, String, String) = (
            row.get("indexrelid"),
            row.get("indrelid"),
            row.get("name"),
            row.get("q"),
            row.get("def"),
        );
        let Some(table) = relations.get(&table_oid) else {
            continue;
        };
        let object = oid_ref(class::PG_CLASS, oid);
        if !row.get::<_, bool>("indisvalid") {
            catalog.skipped.push((
                object,
                format!(
                    "index {}.{q} is invalid (a failed CREATE INDEX CONCURRENTLY); rebuild it",
                    table.schema
                ),
            ));
            continue;
        }
        let t = &table.qualified_name;
        let qualified = format!("{}.{q}", quote_schema(t));
        if let (Some(parent), Some(parent_oid)) = (
            row.get::<_, Option<String>>("parent_index"),
            row.get::<_, Option<u32>>("parent_index_oid"),
        ) {
            catalog.items.push(
                Item::new(
                    ItemKind::IndexAttach,
                    &table.schema,
                    &name,
                    format!("ALTER INDEX {parent} ATTACH PARTITION {qualified};\n"),
                )
                .needing([object, oid_ref(class::PG_CLASS, parent_oid)])
                .of_table(t),
            );
        }
        let mut sql = format!("{def};\n");
        if row.get::<_, bool>("indisclustered") {
            sql.push_str(&format!("ALTER TABLE {t} CLUSTER ON {q};\n"));
        }
        if row.get::<_, bool>("indisreplident") {
            sql.push_str(&format!(
                "ALTER TABLE ONLY {t} REPLICA IDENTITY USING INDEX {q};\n"
            ));
        }
        if let Some(statistics) = row.get::<_, Option<String>>("statistics") {
            sql.push_str(&statistics);
            sql.push('\n');
        }
        sql.push_str(&comment_sql(
            &format!("INDEX {qualified}"),
            row.get("comment"),
        ));
        catalog.items.push(
            Item::new(ItemKind::Index, &table.schema, &name, sql)
                .owning([object])
                .needing([oid_ref(class::PG_CLASS, table_oid)])
                .of_table(t),
        );
    }
    Ok(())
}

async fn triggers(
    client: &Client,
    catalog: &mut Catalog,
    relations: &HashMap<u32, Relation>,
) -> Result<(), CatalogError> {
    let sql = "SELECT t.oid, t.tgrelid, t.tgname::text AS name, quote_ident(t.tgname) AS q, pg_get_triggerdef(t.oid) AS def, \
         t.tgenabled::text AS enabled, t.tgconstraint, t.tgparentid, obj_description(t.oid, 'pg_trigger') AS comment \
         FROM pg_trigger t WHERE NOT t.tgisinternal AND t.oid >= 16384 ORDER BY t.tgrelid, t.tgname";
    let rows = query(client, "triggers", sql).await?;
    // Triggers cloned onto partitions come back with their parent's: claim them there.
    let parent_of: HashMap<u32, u32> = rows
        .iter()
        .filter(|r| r.get::<_, u32>("tgparentid") != 0)
        .map(|r| (r.get::<_, u32>("oid"), r.get::<_, u32>("tgparentid")))
        .collect();
    let mut clones: HashMap<u32, Vec<ObjectRef>> = HashMap::new();
    for &clone in parent_of.keys() {
        let mut root = clone;
        while let Some(parent) = parent_of.get(&root) {
            root = *parent;
        }
        clones
            .entry(root)
            .or_default()
            .push(oid_ref(class::PG_TRIGGER, clone));
    }
    for row in rows {
        let (oid, table_oid, name, q, def): (u32, u32, String, String, String) = (
            row.get("oid"),
            row.get("tgrelid"),
            row.get("name"),
            row.get("q"),
            row.get("def"),
        );
        let Some(table) = relations.get(&table_oid) else {
            continue;
        };
        if row.get::<_, u32>("tgparentid") != 0 {
            continue;
        }
        let t = &table.qualified_name;
        let mut owns = vec![oid_ref(class::PG_TRIGGER, oid)];
        owns.extend(clones.remove(&oid).unwrap_or_default());
        let constraint: u32 = row.get("tgconstraint");
        if constraint != 0 {
            owns.push(oid_ref(class::PG_CONSTRAINT, constraint));
        }
        let mut sql = format!("{def};\n");
        match row.get::<_, String>("enabled").as_str() {
            "D" => sql.push_str(&format!("ALTER TABLE {t} DISABLE TRIGGER {q};\n")),
            "R" => sql.push_str(&format!("ALTER TABLE {t} ENABLE REPLICA TRIGGER {q};\n")),
            "A" => sql.push_str(&format!("ALTER TABLE {t} ENABLE ALWAYS TRIGGER {q};\n")),
            _ => {}
        }
        sql.push_str(&comment_sql(
            &format!("TRIGGER {q} ON {t}"),
            row.get("comment"),
        ));
        catalog.items.push(
            Item::new(ItemKind::Trigger, &table.schema, &name, sql)
                .owning(owns)
                .needing([oid_ref(class::PG_CLASS, table_oid)])
                .of_table(t),
        );
    }
    Ok(())
}

async fn policies(
    client: &Client,
    catalog: &mut Catalog,
    relations: &HashMap<u32, Relation>,
) -> Result<(), CatalogError> {
    let sql = "SELECT p.oid, p.polrelid, p.polname::text AS name, quote_ident(p.polname) AS q, p.polpermissive, \
         p.polcmd::text AS cmd, pg_get_expr(p.polqual, p.polrelid) AS using_expr, \
         pg_get_expr(p.polwithcheck, p.polrelid) AS check_expr, \
         CASE WHEN p.polroles = '{0}' THEN 'PUBLIC' ELSE (SELECT string_agg(quote_ident(pg_get_userbyid(r.role)), ', ' ORDER BY r.ord) \
             FROM unnest(p.polroles) WITH ORDINALITY AS r(role, ord)) END AS roles, \
         obj_description(p.oid, 'pg_policy') AS comment \
         FROM pg_policy p WHERE p.oid >= 16384 ORDER BY p.polrelid, p.polname";
    for row in query(client, "policies", sql).await? {
        let (oid, table_oid, name, q): (u32, u32, String, String) = (
            row.get("oid"),
            row.get("polrelid"),
            row.get("name"),
            row.get("q"),
        );
        let Some(table) = relations.get(&table_oid) else {
            continue;
        };
        let t = &table.qualified_name;
        let kind = if row.get::<_, bool>("polpermissive") {
            "PERMISSIVE"
        } else {
            "RESTRICTIVE"
        };
        let command = match row.get::<_, String>("cmd").as_str() {
            "r" => "SELECT",
            "a" => "INSERT",
            "w" => "UPDATE",
            "d" => "DELETE",
            _ => "ALL",
        };
        let mut sql = format!(
            "CREATE POLICY {q} ON {t} AS {kind} FOR {command} TO {}",
            row.get::<_, String>("roles")
        );
        if let Some(using) = row.get::<_, Option<String>>("using_expr") {
            sql.push_str(&format!(" USING ({using})"));
        }
        if let Some(check) = row.get::<_, Option<String>>("check_expr") {
            sql.push_str(&format!(" WITH CHECK ({check})"));
        }
        sql.push_str(";\n");
        sql.push_str(&comment_sql(
            &format!("POLICY {q} ON {t}"),
            row.get("comment"),
        ));
        catalog.items.push(
            Item::new(ItemKind::Policy, &table.schema, &name, sql)
                .owning([oid_ref(class::PG_POLICY, oid)])
                .needing([oid_ref(class::PG_CLASS, table_oid)])
                .of_table(t),
        );
    }
    Ok(())
}

async fn column_acls(
    client: &Client,
    catalog: &mut Catalog,
    relations: &HashMap<u32, Relation>,
) -> Result<(), CatalogError> {
    let sql = format!(
        "SELECT a.attrelid, quote_ident(a.attname) AS q, {} AS acl FROM pg_attribute a \
         WHERE a.attacl IS NOT NULL AND a.attrelid >= 16384 AND NOT a.attisdropped ORDER BY a.attrelid, a.attnum",
        acl_json("a.attacl")
    );
    for row in query(client, "column privileges", &sql).await? {
        let table_oid: u32 = row.get("attrelid");
        let Some(table) = relations.get(&table_oid) else {
            continue;
        };
        let column: String = row.get("q");
        let t = &table.qualified_name;
        let sql = acl_statements(
            &format!("TABLE {t}"),
            Some(&column),
            grants(&row, "acl").as_deref(),
            &[],
        );
        if !sql.is_empty() {
            catalog.items.push(
                Item::new(
                    ItemKind::Acl,
                    &table.schema,
                    &format!("{}.{column}", table.name),
                    sql,
                )
                .needing([oid_ref(class::PG_CLASS, table_oid)])
                .of_table(t),
            );
        }
    }
    Ok(())
}

async fn default_acls(client: &Client, catalog: &mut Catalog) -> Result<(), CatalogError> {
    let sql = format!(
        "SELECT d.oid, quote_ident(pg_get_userbyid(d.defaclrole)) AS role, d.defaclnamespace, \
         CASE WHEN d.defaclnamespace <> 0 THEN quote_ident(n.nspname) END AS schema, d.defaclobjtype::text AS kind, \
         {} AS acl, CASE WHEN d.defaclnamespace = 0 THEN {} ELSE '[]' END AS acl_default \
         FROM pg_default_acl d LEFT JOIN pg_namespace n ON n.oid = d.defaclnamespace ORDER BY d.oid",
        acl_json("d.defaclacl"),
        acl_json(
            "acldefault(CASE d.defaclobjtype WHEN 'S' THEN 's' ELSE d.defaclobjtype END, d.defaclrole)"
        )
    );
    for row in query(client, "default privileges", &sql).await? {
        let (oid, role, namespace, kind): (u32, String, u32, String) = (
            row.get("oid"),
            row.get("role"),
            row.get("defaclnamespace"),
            row.get("kind"),
        );
        let objects = match kind.as_str() {
            "r" => "TABLES",
            "S" => "SEQUENCES",
            "f" => "FUNCTIONS",
            "T" => "TYPES",
            "n" => "SCHEMAS",
            _ => continue,
        };
        let schema: Option<String> = row.get("schema");
        let prefix = match &schema {
            Some(s) => format!("ALTER DEFAULT PRIVILEGES FOR ROLE {role} IN SCHEMA {s} "),
            None => format!("ALTER DEFAULT PRIVILEGES FOR ROLE {role} "),
        };
        let statements = acl_statements(
            objects,
            None,
            Some(grants(&row, "acl").unwrap_or_default().as_slice()),
            &grants(&row, "acl_default").unwrap_or_default(),
        );
        let sql: String = statements
            .lines()
            .map(|line| format!("{prefix}{line}\n"))
            .collect();
        let mut item = Item::new(
            ItemKind::DefaultAcl,
            schema.as_deref().unwrap_or(""),
            &format!("{role} {objects}"),
            sql,
        )
        .owning([oid_ref(class::PG_DEFAULT_ACL, oid)]);
        if namespace != 0 {
            item = item.needing([oid_ref(class::PG_NAMESPACE, namespace)]);
        }
        catalog.items.push(item);
    }
    Ok(())
}

async fn dependencies(client: &Client) -> Result<Vec<DependEdge>, CatalogError> {
    let sql = "SELECT classid::oid AS classid, objid, refclassid::oid AS refclassid, refobjid FROM pg_depend \
               WHERE deptype IN ('n', 'a') AND objid >= 16384 AND refobjid >= 16384";
    Ok(query(client, "dependencies", sql)
        .await?
        .iter()
        .map(|row| DependEdge {
            from: oid_ref(row.get("classid"), row.get("objid")),
            to: oid_ref(row.get("refclassid"), row.get("refobjid")),
        })
        .collect())
}

/// Reads the current value of each sequence (not snapshot-consistent: call after the data).
pub async fn sequence_values(
    client: &Client,
    sequences: &[SequenceRef],
) -> Result<Vec<Item>, CatalogError> {
    let mut items = Vec::with_capacity(sequences.len());
    for sequence in sequences {
        let sql = format!(
            "SELECT last_value, is_called FROM {}",
            sequence.qualified_name
        );
        let row = client
            .query_one(&sql, &[])
            .await
            .map_err(failed("sequence values"))?;
        let (value, called): (i64, bool) = (row.get(0), row.get(1));
        let sql = format!(
            "SELECT pg_catalog.setval({}, {value}, {called});\n",
            literal(&sequence.qualified_name)
        );
        let item = Item::new(
            ItemKind::SequenceValue,
            &sequence.schema,
            &sequence.name,
            sql,
        )
        .needing([oid_ref(class::PG_CLASS, sequence.oid)]);
        items.push(match &sequence.identity_of {
            Some(table) => item.of_table(table),
            None => item,
        });
    }
    Ok(items)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_double_quotes() {
        assert_eq!(literal("it's"), "'it''s'");
    }

    #[test]
    fn schema_of_a_quoted_name() {
        assert_eq!(quote_schema("app.users"), "app");
        assert_eq!(quote_schema("\"my.schema\".\"t.x\""), "\"my.schema\"");
    }
}
