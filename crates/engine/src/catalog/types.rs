//! Enum, composite and domain types, with domain constraints.

use std::collections::HashMap;

use super::*;
use crate::sql::Sql;

pub(super) async fn types(db: &Db<'_>, catalog: &mut Catalog) -> Result<(), CatalogError> {
    let sql = format!(
        "SELECT t.oid, t.typtype::text AS kind, n.nspname::text AS schema, t.typname::text AS name, \
         quote_ident(n.nspname) || '.' || quote_ident(t.typname) AS q, t.typarray, t.typrelid, \
         quote_ident(pg_get_userbyid(t.typowner)) AS owner, (SELECT description FROM pg_description WHERE objoid = t.oid AND classoid = 'pg_type'::regclass AND objsubid = 0) AS comment, \
         {}, \
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
        acl_columns("t.typacl", "t.typowner", 'T'),
        not_in_extension("pg_type", "t.oid")
    );
    let constraint_sql = "SELECT c.oid, c.contypid, quote_ident(c.conname) AS q, pg_get_constraintdef(c.oid) AS def, \
         c.convalidated, (SELECT description FROM pg_description WHERE objoid = c.oid AND classoid = 'pg_constraint'::regclass AND objsubid = 0) AS comment \
         FROM pg_constraint c WHERE c.contypid <> 0 ORDER BY c.contypid, c.conname";
    let mut domain_constraints: HashMap<u32, Vec<Fields>> = HashMap::new();
    for row in db.query("domain constraints", constraint_sql).await? {
        domain_constraints
            .entry(row.get("contypid")?)
            .or_default()
            .push(row);
    }
    for row in db.query("types", &sql).await? {
        let (oid, kind, schema, name, q, owner): (u32, String, String, String, String, String) = (
            row.get("oid")?,
            row.get("kind")?,
            row.get("schema")?,
            row.get("name")?,
            row.get("q")?,
            row.get("owner")?,
        );
        let (array, relid): (u32, u32) = (row.get("typarray")?, row.get("typrelid")?);
        let mut owns = vec![oid_ref(class::PG_TYPE, oid)];
        if array != 0 {
            owns.push(oid_ref(class::PG_TYPE, array));
        }
        let sql = match kind.as_str() {
            "e" => format!(
                "CREATE TYPE {q} AS ENUM ({});\n",
                row.get::<Option<String>>("labels")?.unwrap_or_default()
            ),
            "c" => {
                owns.push(oid_ref(class::PG_CLASS, relid));
                format!(
                    "CREATE TYPE {q} AS ({});\n",
                    row.get::<Option<String>>("attributes")?.unwrap_or_default()
                )
            }
            _ => {
                let mut sql = format!("CREATE DOMAIN {q} AS {}", row.get::<String>("base_type")?);
                if let Some(collation) = row.get::<Option<String>>("collation")? {
                    sql.push_str(&format!(" COLLATE {collation}"));
                }
                if let Some(default) = row.get::<Option<String>>("typdefault")? {
                    sql.push_str(&format!(" DEFAULT {default}"));
                }
                // From 17 a domain's NOT NULL is a named constraint, read with the others.
                if row.get::<bool>("typnotnull")? && !db.version.at_least(17) {
                    sql.push_str(" NOT NULL");
                }
                let mut later = String::new();
                let mut comments = String::new();
                for c in domain_constraints.remove(&oid).unwrap_or_default() {
                    owns.push(oid_ref(class::PG_CONSTRAINT, c.get("oid")?));
                    let (cq, def): (String, String) = (c.get("q")?, c.get("def")?);
                    let comment =
                        comment_sql(&format!("CONSTRAINT {cq} ON DOMAIN {q}"), c.get("comment")?);
                    if c.get::<bool>("convalidated")? {
                        sql.push_str(&format!(" CONSTRAINT {cq} {def}"));
                        comments.push_str(&comment);
                    } else {
                        // Added after the domain (NOT VALID), and only then commented on.
                        later.push_str(&format!("ALTER DOMAIN {q} ADD CONSTRAINT {cq} {def};\n"));
                        later.push_str(&comment);
                    }
                }
                if !later.is_empty() {
                    catalog.items.push(
                        // NOT VALID: after the data, which it may not hold for (with the
                        // tables' NOT VALID checks).
                        Item::new(ItemKind::ForeignKey, &schema, &name, later)
                            .needing([oid_ref(class::PG_TYPE, oid)]),
                    );
                }
                sql.push_str(";\n");
                sql.push_str(&comments);
                sql
            }
        };
        let word = if kind == "d" { "DOMAIN" } else { "TYPE" };
        let mut sql = Sql::from(sql);
        sql.owner(&format!("{word} {q}"), &owner);
        sql.push_str(&comment_sql(&format!("{word} {q}"), row.get("comment")?));
        if let Some(comments) = row.get::<Option<String>>("attribute_comments")? {
            sql.push_str(&comments);
            sql.push_str("\n");
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
        )?);
    }
    Ok(())
}
