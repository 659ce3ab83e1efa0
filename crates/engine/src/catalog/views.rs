//! Views and materialized views (refreshed in post-data).

use std::collections::HashMap;

use super::*;
use crate::sql::Sql;

pub(super) async fn views(db: &Db<'_>, catalog: &mut Catalog) -> Result<(), CatalogError> {
    let sql = format!(
        "SELECT c.oid, n.nspname::text AS schema, c.relname::text AS name, quote_ident(n.nspname) || '.' || quote_ident(c.relname) AS q, \
         c.relkind::text AS kind, pg_get_viewdef(c.oid) AS def, array_to_string(c.reloptions, ', ') AS options, \
         c.relispopulated, c.reltype, (SELECT t.typarray FROM pg_type t WHERE t.oid = c.reltype) AS rowtype_array, \
         (SELECT r.oid FROM pg_rewrite r WHERE r.ev_class = c.oid AND r.rulename = '_RETURN') AS rule, \
         CASE WHEN am.amname <> 'heap' THEN quote_ident(am.amname) END AS am, \
         quote_ident(pg_get_userbyid(c.relowner)) AS owner, (SELECT description FROM pg_description WHERE objoid = c.oid AND classoid = 'pg_class'::regclass AND objsubid = 0) AS comment, \
         {}, \
         (SELECT string_agg(format('COMMENT ON COLUMN %s.%I IS %L;', quote_ident(n.nspname) || '.' || quote_ident(c.relname), a.attname, d.description), E'\\n' ORDER BY a.attnum) \
          FROM pg_attribute a JOIN pg_description d ON d.objoid = c.oid AND d.classoid = 'pg_class'::regclass AND d.objsubid = a.attnum \
          WHERE a.attrelid = c.oid) AS column_comments, \
         (SELECT string_agg(format('ALTER VIEW %s ALTER COLUMN %I SET DEFAULT %s;', quote_ident(n.nspname) || '.' || quote_ident(c.relname), \
              a.attname, pg_get_expr(d.adbin, d.adrelid)), E'\\n' ORDER BY a.attnum) \
          FROM pg_attrdef d JOIN pg_attribute a ON a.attrelid = d.adrelid AND a.attnum = d.adnum \
          WHERE d.adrelid = c.oid) AS column_defaults, \
         ARRAY(SELECT d.oid FROM pg_attrdef d WHERE d.adrelid = c.oid) AS attrdefs \
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace LEFT JOIN pg_am am ON am.oid = c.relam \
         WHERE c.relkind IN ('v', 'm') AND c.oid >= 16384 AND {USER_SCHEMA} AND {}",
        acl_columns("c.relacl", "c.relowner", 'r'),
        not_in_extension("pg_class", "c.oid")
    );
    // A materialized view's columns keep their own storage, statistics target, compression
    // and options (n_distinct...), as a table's do.
    let compression = if db.version.at_least(14) {
        "CASE a.attcompression WHEN 'p' THEN 'pglz' WHEN 'l' THEN 'lz4' END"
    } else {
        "NULL::text"
    };
    let column_sql = format!(
        "SELECT a.attrelid, quote_ident(a.attname) AS q, \
         CASE WHEN a.attstorage <> t.typstorage THEN CASE a.attstorage WHEN 'p' THEN 'PLAIN' WHEN 'e' THEN 'EXTERNAL' \
             WHEN 'm' THEN 'MAIN' WHEN 'x' THEN 'EXTENDED' END END AS storage, \
         coalesce(a.attstattarget::int4, -1) AS target, {compression} AS compression, \
         array_to_string(a.attoptions, ', ') AS options \
         FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_type t ON t.oid = a.atttypid \
         WHERE c.relkind = 'm' AND c.oid >= 16384 AND a.attnum > 0 AND NOT a.attisdropped \
         ORDER BY a.attrelid, a.attnum"
    );
    let mut column_settings: HashMap<u32, Vec<(String, String)>> = HashMap::new();
    for column in db.query("materialized view columns", &column_sql).await? {
        let relation: u32 = column.get("attrelid")?;
        let cq: String = column.get("q")?;
        let mut settings = Vec::new();
        if let Some(storage) = column.get::<Option<String>>("storage")? {
            settings.push(format!("SET STORAGE {storage}"));
        }
        let target: i32 = column.get("target")?;
        if target >= 0 {
            settings.push(format!("SET STATISTICS {target}"));
        }
        if let Some(compression) = column.get::<Option<String>>("compression")? {
            settings.push(format!("SET COMPRESSION {compression}"));
        }
        if let Some(options) = column
            .get::<Option<String>>("options")?
            .filter(|o| !o.is_empty())
        {
            settings.push(format!("SET ({options})"));
        }
        let entry = column_settings.entry(relation).or_default();
        entry.extend(settings.into_iter().map(|setting| (cq.clone(), setting)));
    }

    // The materialized views each one reads, directly or through plain views (as pg_dump's
    // buildMatViewRefreshDependencies finds them): they are refreshed first.
    let refresh_sql = "WITH RECURSIVE w AS ( \
           SELECT c1.oid AS objid, d2.refobjid, c2.relkind AS refrelkind \
             FROM pg_class c1 JOIN pg_rewrite r1 ON r1.ev_class = c1.oid \
             JOIN pg_depend d2 ON d2.classid = 'pg_rewrite'::regclass AND d2.objid = r1.oid AND d2.refobjid <> c1.oid \
             JOIN pg_class c2 ON c2.oid = d2.refobjid AND c2.relkind IN ('m', 'v') \
            WHERE c1.relkind = 'm' \
           UNION \
           SELECT w.objid, d3.refobjid, c3.relkind FROM w \
             JOIN pg_rewrite r3 ON r3.ev_class = w.refobjid \
             JOIN pg_depend d3 ON d3.classid = 'pg_rewrite'::regclass AND d3.objid = r3.oid AND d3.refobjid <> w.refobjid \
             JOIN pg_class c3 ON c3.oid = d3.refobjid AND c3.relkind IN ('m', 'v') \
            WHERE w.refrelkind = 'v') \
         SELECT DISTINCT objid, refobjid FROM w WHERE refrelkind = 'm' AND objid >= 16384";
    let mut refreshed_first: HashMap<u32, Vec<u32>> = HashMap::new();
    for row in db
        .query("materialized view refresh order", refresh_sql)
        .await?
    {
        refreshed_first
            .entry(row.get("objid")?)
            .or_default()
            .push(row.get("refobjid")?);
    }

    for row in db.query("views", &sql).await? {
        let SchemaObject {
            oid,
            schema,
            name,
            q,
        } = row.schema_object()?;
        let kind: String = row.get("kind")?;
        let def: String = row.get("def")?;
        let owner: String = row.get("owner")?;
        let object = oid_ref(class::PG_CLASS, oid);
        let mut owns = vec![object, oid_ref(class::PG_TYPE, row.get("reltype")?)];
        if let Some(array) = row.get::<Option<u32>>("rowtype_array")?.filter(|a| *a != 0) {
            owns.push(oid_ref(class::PG_TYPE, array));
        }
        if let Some(rule) = row.get::<Option<u32>>("rule")? {
            owns.push(oid_ref(class::PG_REWRITE, rule));
        }
        // A view's column defaults (what an INSERT through it fills in).
        owns.extend(
            row.get::<Vec<u32>>("attrdefs")?
                .into_iter()
                .map(|d| oid_ref(class::PG_ATTRDEF, d)),
        );
        let def = def.trim().trim_end_matches(';');
        let options = row
            .get::<Option<String>>("options")?
            .filter(|o| !o.is_empty())
            .map(|o| format!(" WITH ({o})"))
            .unwrap_or_default();
        let (item_kind, word, sql) = if kind == "m" {
            let using = row
                .get::<Option<String>>("am")?
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
        let mut sql = Sql::from(sql);
        sql.owner(&format!("{word} {q}"), &owner);
        sql.push_str(&comment_sql(&format!("{word} {q}"), row.get("comment")?));
        for (column, setting) in column_settings.remove(&oid).unwrap_or_default() {
            sql.push_str(&format!(
                "ALTER MATERIALIZED VIEW {q} ALTER COLUMN {column} {setting};\n"
            ));
        }
        if let Some(defaults) = row.get::<Option<String>>("column_defaults")? {
            sql.push_str(&defaults);
            sql.push_str("\n");
        }
        if let Some(comments) = row.get::<Option<String>>("column_comments")? {
            sql.push_str(&comments);
            sql.push_str("\n");
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
        )?);
        if kind == "m" && row.get::<bool>("relispopulated")? {
            catalog.items.push(
                Item::new(
                    ItemKind::Refresh,
                    &schema,
                    &name,
                    format!("REFRESH MATERIALIZED VIEW {q};\n"),
                )
                .owning([oid_ref(class::REFRESH, oid)])
                .needing([object])
                .needing(
                    refreshed_first
                        .remove(&oid)
                        .unwrap_or_default()
                        .into_iter()
                        .map(|m| oid_ref(class::REFRESH, m)),
                )
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
                inherits: false,
            },
        );
    }
    Ok(())
}
