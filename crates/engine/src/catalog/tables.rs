//! Tables and their columns, partitions, row security and replica identity; typed tables
//! (`OF type`) and foreign tables (`SERVER`, with their own and their columns' options).

use std::collections::HashMap;

use super::foreign_data::{options_clause, options_sql};
use super::sequences::IdentitySequences;
use super::*;
use crate::sql::Sql;
use backstop_pg::version::ServerVersion;

/// A column default as `pg_get_expr` writes it. A default that names no column (a `nextval`,
/// a constant, `now()`: nearly all of them) is written without its table, which spares the
/// server opening every table to read its defaults (4,000 serial columns on a fresh session:
/// 90 ms against 17 ms); one that names a column (a generated column's expression) is written
/// against its table.
const DEFAULT_EXPR: &str = "CASE WHEN d.adbin::text LIKE '%{VAR %' THEN pg_get_expr(d.adbin, d.adrelid) \
     ELSE pg_get_expr(d.adbin, 0) END";

pub(super) async fn tables(
    db: &Db<'_>,
    catalog: &mut Catalog,
    identity: &IdentitySequences,
) -> Result<(), CatalogError> {
    let sql = format!(
        "SELECT c.oid, n.nspname::text AS schema, c.relname::text AS name, quote_ident(n.nspname) || '.' || quote_ident(c.relname) AS q, \
         c.relkind::text AS kind, c.relpersistence::text AS persistence, c.relrowsecurity, c.relforcerowsecurity, \
         c.relispartition, CASE WHEN c.reloftype <> 0 THEN format_type(c.reloftype, NULL) END AS of_type, c.reltype, c.reltype AS rowtype, \
         (SELECT t.typarray FROM pg_type t WHERE t.oid = c.reltype) AS rowtype_array, \
         array_to_string(c.reloptions || ARRAY(SELECT 'toast.' || o FROM pg_class t, unnest(t.reloptions) AS o \
             WHERE t.oid = c.reltoastrelid), ', ') AS options, c.relreplident::text AS replident, \
         CASE WHEN am.amname <> 'heap' THEN quote_ident(am.amname) END AS am, \
         (SELECT string_agg(quote_ident(pn.nspname) || '.' || quote_ident(pc.relname), ', ' ORDER BY i.inhseqno) \
             FROM pg_inherits i JOIN pg_class pc ON pc.oid = i.inhparent JOIN pg_namespace pn ON pn.oid = pc.relnamespace \
             WHERE i.inhrelid = c.oid AND NOT c.relispartition) AS inherits_from, \
         (SELECT array_agg(i.inhparent ORDER BY i.inhseqno) FROM pg_inherits i \
             WHERE i.inhrelid = c.oid AND NOT c.relispartition) AS parents, \
         CASE WHEN c.relkind = 'p' THEN pg_get_partkeydef(c.oid) END AS partition_key, \
         CASE WHEN c.relispartition THEN pg_get_expr(c.relpartbound, c.oid) END AS partition_bound, \
         (SELECT i.inhparent FROM pg_inherits i WHERE i.inhrelid = c.oid AND c.relispartition) AS partition_parent, \
         (SELECT quote_ident(pn.nspname) || '.' || quote_ident(pc.relname) FROM pg_inherits i JOIN pg_class pc ON pc.oid = i.inhparent \
             JOIN pg_namespace pn ON pn.oid = pc.relnamespace WHERE i.inhrelid = c.oid AND c.relispartition) AS partition_parent_name, \
         quote_ident(pg_get_userbyid(c.relowner)) AS owner, (SELECT description FROM pg_description WHERE objoid = c.oid AND classoid = 'pg_class'::regclass AND objsubid = 0) AS comment, \
         {}, size.bytes, size.bytes / current_setting('block_size')::int8 AS pages, \
         (SELECT quote_ident(fs.srvname) FROM pg_foreign_server fs WHERE fs.oid = ft.ftserver) AS foreign_server, \
         {} AS foreign_options \
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace LEFT JOIN pg_am am ON am.oid = c.relam \
         LEFT JOIN pg_foreign_table ft ON ft.ftrelid = c.oid \
         CROSS JOIN LATERAL (SELECT pg_relation_size(c.oid) AS bytes) size \
         WHERE c.relkind IN ('r', 'p', 'f') AND c.oid >= 16384 AND {USER_SCHEMA} AND {} \
         ORDER BY c.oid",
        acl_columns("c.relacl", "c.relowner", 'r'),
        options_sql("ft.ftoptions"),
        not_in_extension("pg_class", "c.oid")
    );
    let column_sql = columns_sql(db.version);
    let mut columns: HashMap<u32, Vec<Fields>> = HashMap::new();
    for row in db.query("columns", &column_sql).await? {
        columns.entry(row.get("attrelid")?).or_default().push(row);
    }

    for row in db.query("tables", &sql).await? {
        let SchemaObject {
            oid,
            schema,
            name,
            q,
        } = row.schema_object()?;
        let kind: String = row.get("kind")?;
        let owner: String = row.get("owner")?;
        // A typed table (`OF type`) takes its columns from the type: only what a column adds
        // (NOT NULL, a default) is written, as `name WITH OPTIONS ...`.
        let of_type: Option<String> = row.get("of_type")?;
        let object = oid_ref(class::PG_CLASS, oid);
        let mut owns = vec![object, oid_ref(class::PG_TYPE, row.get("rowtype")?)];
        if let Some(array) = row.get::<Option<u32>>("rowtype_array")?.filter(|a| *a != 0) {
            owns.push(oid_ref(class::PG_TYPE, array));
        }
        let mut lines = Vec::new();
        let mut after = String::new();
        let mut copy_columns = Vec::new();
        let inherits_from: Option<String> = row.get("inherits_from")?;
        let table = TableContext {
            oid,
            schema: &schema,
            q: &q,
            of_type: of_type.as_deref(),
            inherits: inherits_from.is_some(),
            unlogged: row.get::<String>("persistence")? == "u",
            version: db.version,
        };
        for column in columns.remove(&oid).unwrap_or_default() {
            let cq: String = column.get("q")?;
            if table.inherits && !column.get::<bool>("attislocal")? {
                // Inherited: the parent's CREATE brings it; only what the child changed on it
                // is set here (its default, a NOT NULL of its own).
                inherited_column(&column, &q, &cq, db.version, &mut owns, &mut after)?;
            } else {
                let line = column_definition(
                    &column,
                    &table,
                    identity,
                    &mut owns,
                    &mut after,
                    &mut catalog.items,
                )?;
                if of_type.is_none() || !line.ends_with(" WITH OPTIONS") {
                    lines.push(line);
                }
            }
            if column.get::<String>("generated")?.is_empty() {
                copy_columns.push(cq.clone());
            }
            column_settings(&column, &q, &cq, &mut after)?;
        }
        let unlogged = if row.get::<String>("persistence")? == "u" {
            "UNLOGGED "
        } else {
            ""
        };
        let mut sql = match (&of_type, lines.is_empty()) {
            (Some(of_type), true) => format!("CREATE {unlogged}TABLE {q} OF {of_type}"),
            (Some(of_type), false) => format!(
                "CREATE {unlogged}TABLE {q} OF {of_type} (\n{}\n)",
                lines.join(",\n")
            ),
            (None, _) if kind == "f" => {
                format!("CREATE FOREIGN TABLE {q} (\n{}\n)", lines.join(",\n"))
            }
            (None, _) => format!("CREATE {unlogged}TABLE {q} (\n{}\n)", lines.join(",\n")),
        };
        if let Some(parents) = &inherits_from {
            sql.push_str(&format!("\nINHERITS ({parents})"));
        }
        if let Some(key) = row.get::<Option<String>>("partition_key")? {
            sql.push_str(&format!("\nPARTITION BY {key}"));
        }
        if let Some(server) = row.get::<Option<String>>("foreign_server")? {
            sql.push_str(&format!("\nSERVER {server}"));
            sql.push_str(&options_clause(&row, "foreign_options")?);
        }
        if let Some(am) = row.get::<Option<String>>("am")? {
            sql.push_str(&format!(" USING {am}"));
        }
        if let Some(options) = row
            .get::<Option<String>>("options")?
            .filter(|o| !o.is_empty())
        {
            sql.push_str(&format!(" WITH ({options})"));
        }
        sql.push_str(";\n");
        sql.push_str(&after);
        let mut sql = Sql::from(sql);
        sql.owner(&format!("TABLE {q}"), &owner);
        let word = if kind == "f" {
            "FOREIGN TABLE"
        } else {
            "TABLE"
        };
        sql.push_str(&comment_sql(&format!("{word} {q}"), row.get("comment")?));
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
        )?);

        let properties = table_properties(&row, &q, &kind)?;
        if !properties.is_empty() {
            catalog.items.push(
                Item::new(ItemKind::TableProperties, &schema, &name, properties)
                    .needing([object])
                    .of_table(&q),
            );
        }
        if let (Some(parent), Some(parent_name), Some(bound)) = (
            row.get::<Option<u32>>("partition_parent")?,
            row.get::<Option<String>>("partition_parent_name")?,
            row.get::<Option<String>>("partition_bound")?,
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
        // A partitioned table holds no rows of its own; a foreign table's live elsewhere.
        if kind != "p" && kind != "f" {
            catalog.tables.push(DataTable {
                oid,
                schema: schema.clone(),
                name: name.clone(),
                qualified_name: q.clone(),
                columns: copy_columns,
                bytes: row.get::<i64>("bytes")?.max(0) as u64,
                pages: row.get::<i64>("pages")?.max(0) as u64,
                extension_rows: None,
            });
        }
        catalog.relations.insert(
            oid,
            Relation {
                schema,
                name,
                qualified_name: q,
                kind,
                inherits: inherits_from.is_some(),
            },
        );
    }
    Ok(())
}

/// Every column of every table, in order ([`tables`] reads them grouped by table).
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
struct TableContext<'a> {
    oid: u32,
    schema: &'a str,
    q: &'a str,
    /// The type of a typed table (`OF type`), whose columns come from the type.
    of_type: Option<&'a str>,
    inherits: bool,
    unlogged: bool,
    version: ServerVersion,
}

/// A column's line in its table's `CREATE TABLE`: type, collation, default or generation,
/// identity, NOT NULL. The catalog rows it writes (default, identity sequence, NOT NULL
/// constraint) go into `owns`; what follows the `CREATE` into `after`; a NOT VALID NOT NULL
/// becomes an item of its own, checked after the data.
fn column_definition(
    column: &Fields,
    table: &TableContext<'_>,
    identity: &IdentitySequences,
    owns: &mut Vec<ObjectRef>,
    after: &mut String,
    items: &mut Vec<Item>,
) -> Result<String, CatalogError> {
    let (cq, ty): (String, String) = (column.get("q")?, column.get("type")?);
    let mut line = match table.of_type {
        Some(_) => format!("    {cq} WITH OPTIONS"),
        None => format!("    {cq} {ty}"),
    };
    if let Some(collation) = column
        .get::<Option<String>>("collation")?
        .filter(|_| table.of_type.is_none())
    {
        line.push_str(&format!(" COLLATE {collation}"));
    }
    let generated = column.get::<String>("generated")?;
    let identity_kind = column.get::<String>("identity")?;
    if let Some(attrdef) = column.get::<Option<u32>>("attrdef")? {
        owns.push(oid_ref(class::PG_ATTRDEF, attrdef));
        let expr: String = column
            .get::<Option<String>>("default_expr")?
            .unwrap_or_default();
        if !generated.is_empty() && column.get::<bool>("generated_as_parent")? {
            // An inheritance child (not a partition) that redeclares a parent's
            // generated column inherits its expression; repeating it is an error.
        } else if generated == "s" {
            line.push_str(&format!(" GENERATED ALWAYS AS ({expr}) STORED"));
        } else if generated == "v" {
            line.push_str(&format!(" GENERATED ALWAYS AS ({expr}) VIRTUAL"));
        } else {
            line.push_str(&format!(" DEFAULT {expr}"));
        }
    }
    if !identity_kind.is_empty() {
        let attnum: i16 = column.get("attnum")?;
        if let Some(sequence) = identity.get(&(table.oid, attnum)) {
            let (seq_name, options) = (&sequence.name, &sequence.options);
            owns.push(oid_ref(class::PG_CLASS, sequence.oid));
            // From 15 a sequence may be logged or not on its own; it starts as its
            // table is.
            let table_unlogged = table.unlogged;
            if table.version.at_least(15) && (sequence.persistence == "u") != table_unlogged {
                after.push_str(&format!(
                    "ALTER SEQUENCE {seq_name} SET {};\n",
                    if table_unlogged { "LOGGED" } else { "UNLOGGED" }
                ));
            }
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
    match column.get::<Option<u32>>("not_null_oid")? {
        // A redeclared column's NOT NULL that only the parent has comes with INHERITS.
        Some(constraint) if table.inherits && !column.get::<bool>("not_null_local")? => {
            owns.push(oid_ref(class::PG_CONSTRAINT, constraint));
        }
        Some(constraint) => {
            owns.push(oid_ref(class::PG_CONSTRAINT, constraint));
            let name: String = column.get("not_null_name")?;
            let no_inherit = if column.get::<bool>("not_null_no_inherit")? {
                " NO INHERIT"
            } else {
                ""
            };
            if column.get::<bool>("not_null_valid")? {
                line.push_str(&format!(" CONSTRAINT {name} NOT NULL{no_inherit}"));
            } else {
                // Checked after the data, with the other NOT VALID constraints.
                items.push(
                        Item::new(
                            ItemKind::ForeignKey,
                            table.schema,
                            &name,
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
        None if column.get::<bool>("attnotnull")? => line.push_str(" NOT NULL"),
        None => {}
    }
    Ok(line)
}

/// What a table sets after its creation: row level security, a replica identity other than
/// its default.
fn table_properties(row: &Fields, q: &str, kind: &str) -> Result<String, CatalogError> {
    let mut properties = String::new();
    if row.get::<bool>("relrowsecurity")? {
        properties.push_str(&format!("ALTER TABLE {q} ENABLE ROW LEVEL SECURITY;\n"));
    }
    if row.get::<bool>("relforcerowsecurity")? {
        properties.push_str(&format!("ALTER TABLE {q} FORCE ROW LEVEL SECURITY;\n"));
    }
    // A foreign table has no replica identity (it reads as NOTHING).
    match row.get::<String>("replident")?.as_str() {
        _ if kind == "f" => {}
        "f" => properties.push_str(&format!("ALTER TABLE ONLY {q} REPLICA IDENTITY FULL;\n")),
        "n" => properties.push_str(&format!("ALTER TABLE ONLY {q} REPLICA IDENTITY NOTHING;\n")),
        _ => {}
    }
    Ok(properties)
}

/// A column's storage, statistics target, compression, options and comment, set after the
/// CREATE TABLE.
fn column_settings(
    column: &Fields,
    q: &str,
    cq: &str,
    after: &mut String,
) -> Result<(), CatalogError> {
    if let Some(storage) = column.get::<Option<String>>("storage")? {
        after.push_str(&format!(
            "ALTER TABLE ONLY {q} ALTER COLUMN {cq} SET STORAGE {storage};\n"
        ));
    }
    let target: i32 = column.get::<Option<i32>>("attstattarget")?.unwrap_or(-1);
    if target >= 0 {
        after.push_str(&format!(
            "ALTER TABLE ONLY {q} ALTER COLUMN {cq} SET STATISTICS {target};\n"
        ));
    }
    if let Some(compression) = column.get::<Option<String>>("compression")? {
        after.push_str(&format!(
            "ALTER TABLE ONLY {q} ALTER COLUMN {cq} SET COMPRESSION {compression};\n"
        ));
    }
    if let Some(options) = column
        .get::<Option<String>>("options")?
        .filter(|o| !o.is_empty())
    {
        after.push_str(&format!(
            "ALTER TABLE ONLY {q} ALTER COLUMN {cq} SET ({options});\n"
        ));
    }
    let fdw_options = options_clause(column, "fdw_options")?;
    if !fdw_options.is_empty() {
        after.push_str(&format!(
            "ALTER FOREIGN TABLE ONLY {q} ALTER COLUMN {cq}{fdw_options};\n"
        ));
    }
    after.push_str(&comment_sql(
        &format!("COLUMN {q}.{cq}"),
        column.get("comment")?,
    ));
    Ok(())
}

/// What a child table changed on a column it inherits: its own default, a NOT NULL of its own.
/// The row's default and NOT NULL constraint are claimed here (the inheritance makes them).
fn inherited_column(
    column: &Fields,
    q: &str,
    cq: &str,
    version: ServerVersion,
    owns: &mut Vec<ObjectRef>,
    after: &mut String,
) -> Result<(), CatalogError> {
    if let Some(attrdef) = column.get::<Option<u32>>("attrdef")? {
        owns.push(oid_ref(class::PG_ATTRDEF, attrdef));
        if column.get::<String>("generated")?.is_empty() {
            let expr: String = column
                .get::<Option<String>>("default_expr")?
                .unwrap_or_default();
            after.push_str(&format!(
                "ALTER TABLE ONLY {q} ALTER COLUMN {cq} SET DEFAULT {expr};\n"
            ));
        }
    }
    let own_not_null = match column.get::<Option<u32>>("not_null_oid")? {
        Some(constraint) => {
            owns.push(oid_ref(class::PG_CONSTRAINT, constraint));
            column
                .get::<Option<bool>>("not_null_local")?
                .unwrap_or(false)
        }
        // Before 18 a NOT NULL is no object: the child's own is one no parent has.
        None => {
            !version.at_least(18)
                && column.get::<bool>("attnotnull")?
                && !column.get::<bool>("parent_not_null")?
        }
    };
    if own_not_null {
        after.push_str(&format!(
            "ALTER TABLE ONLY {q} ALTER COLUMN {cq} SET NOT NULL;\n"
        ));
    }
    Ok(())
}
