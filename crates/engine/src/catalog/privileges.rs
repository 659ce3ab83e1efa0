//! Column privileges and default privileges.

use std::collections::HashMap;

use super::*;
use crate::acl::statements_after;
use crate::sql::Sql;

pub(super) async fn column_acls(
    db: &Db<'_>,
    catalog: &mut Catalog,
    relations: &HashMap<u32, Relation>,
) -> Result<(), CatalogError> {
    let sql = format!(
        "SELECT a.attrelid, quote_ident(a.attname) AS q, {} AS acl FROM pg_attribute a \
         WHERE a.attacl IS NOT NULL AND a.attrelid >= 16384 AND NOT a.attisdropped ORDER BY a.attrelid, a.attnum",
        acl_json_by(
            "a.attacl",
            "(SELECT c.relowner FROM pg_class c WHERE c.oid = a.attrelid)"
        )
    );
    for row in db.query("column privileges", &sql).await? {
        let table_oid: u32 = row.get("attrelid")?;
        let Some(table) = relations.get(&table_oid) else {
            continue;
        };
        let column: String = row.get("q")?;
        let t = &table.qualified_name;
        let sql = acl_statements(
            &format!("TABLE {t}"),
            Some(&column),
            grants(&row, "acl")?.as_deref(),
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

pub(super) async fn default_acls(db: &Db<'_>, catalog: &mut Catalog) -> Result<(), CatalogError> {
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
    for row in db.query("default privileges", &sql).await? {
        let (oid, role, namespace, kind): (u32, String, u32, String) = (
            row.get("oid")?,
            row.get("role")?,
            row.get("defaclnamespace")?,
            row.get("kind")?,
        );
        let objects = match kind.as_str() {
            "r" => "TABLES",
            "S" => "SEQUENCES",
            "f" => "FUNCTIONS",
            "T" => "TYPES",
            "n" => "SCHEMAS",
            _ => continue,
        };
        let schema: Option<String> = row.get("schema")?;
        let mut prefix = Sql::new();
        prefix
            .push_str("ALTER DEFAULT PRIVILEGES FOR ROLE ")
            .role(&role)
            .push_str(&match &schema {
                Some(s) => format!(" IN SCHEMA {s} "),
                None => " ".to_string(),
            });
        let sql = statements_after(
            &prefix,
            objects,
            None,
            Some(grants(&row, "acl")?.unwrap_or_default().as_slice()),
            &grants(&row, "acl_default")?.unwrap_or_default(),
        );
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
