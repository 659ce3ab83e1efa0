//! Row-level security policies.

use std::collections::HashMap;

use super::*;

pub(super) async fn policies(
    db: &Db<'_>,
    catalog: &mut Catalog,
    relations: &HashMap<u32, Relation>,
) -> Result<(), CatalogError> {
    let sql = "SELECT p.oid, p.polrelid, p.polname::text AS name, quote_ident(p.polname) AS q, p.polpermissive, \
         p.polcmd::text AS cmd, pg_get_expr(p.polqual, p.polrelid) AS using_expr, \
         pg_get_expr(p.polwithcheck, p.polrelid) AS check_expr, \
         CASE WHEN p.polroles = '{0}' THEN 'PUBLIC' ELSE (SELECT string_agg(quote_ident(pg_get_userbyid(r.role)), ', ' ORDER BY r.ord) \
             FROM unnest(p.polroles) WITH ORDINALITY AS r(role, ord)) END AS roles, \
         (SELECT description FROM pg_description WHERE objoid = p.oid AND classoid = 'pg_policy'::regclass AND objsubid = 0) AS comment \
         FROM pg_policy p WHERE p.oid >= 16384 ORDER BY p.polrelid, p.polname";
    for row in db.query("policies", sql).await? {
        let (oid, table_oid, name, q): (u32, u32, String, String) = (
            row.get("oid")?,
            row.get("polrelid")?,
            row.get("name")?,
            row.get("q")?,
        );
        let Some(table) = relations.get(&table_oid) else {
            continue;
        };
        let t = &table.qualified_name;
        let kind = if row.get::<bool>("polpermissive")? {
            "PERMISSIVE"
        } else {
            "RESTRICTIVE"
        };
        let command = match row.get::<String>("cmd")?.as_str() {
            "r" => "SELECT",
            "a" => "INSERT",
            "w" => "UPDATE",
            "d" => "DELETE",
            _ => "ALL",
        };
        let mut sql = format!(
            "CREATE POLICY {q} ON {t} AS {kind} FOR {command} TO {}",
            row.get::<String>("roles")?
        );
        if let Some(using) = row.get::<Option<String>>("using_expr")? {
            sql.push_str(&format!(" USING ({using})"));
        }
        if let Some(check) = row.get::<Option<String>>("check_expr")? {
            sql.push_str(&format!(" WITH CHECK ({check})"));
        }
        sql.push_str(";\n");
        sql.push_str(&comment_sql(
            &format!("POLICY {q} ON {t}"),
            row.get("comment")?,
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
