//! Rules on tables and views (`CREATE RULE`, not a view's own `_RETURN`), with their enable
//! state, after the data as pg_dump does.

use std::collections::HashMap;

use super::*;

pub(super) async fn rules(
    db: &Db<'_>,
    catalog: &mut Catalog,
    relations: &HashMap<u32, Relation>,
) -> Result<(), CatalogError> {
    let sql = format!(
        "SELECT r.oid, r.ev_class, r.rulename::text AS name, quote_ident(r.rulename) AS q, \
         pg_get_ruledef(r.oid) AS def, r.ev_enabled::text AS enabled, \
         (SELECT description FROM pg_description WHERE objoid = r.oid AND classoid = 'pg_rewrite'::regclass AND objsubid = 0) AS comment \
         FROM pg_rewrite r WHERE r.oid >= 16384 AND r.rulename <> '_RETURN' AND {} \
         ORDER BY r.ev_class, r.rulename",
        not_in_extension("pg_rewrite", "r.oid")
    );
    for row in db.query("rules", &sql).await? {
        let table_oid: u32 = row.get("ev_class")?;
        let Some(table) = relations.get(&table_oid) else {
            continue;
        };
        let (oid, name, q, def): (u32, String, String, String) = (
            row.get("oid")?,
            row.get("name")?,
            row.get("q")?,
            row.get("def")?,
        );
        let t = &table.qualified_name;
        let mut sql = format!("{}\n", def.trim_end());
        match row.get::<String>("enabled")?.as_str() {
            "D" => sql.push_str(&format!("ALTER TABLE {t} DISABLE RULE {q};\n")),
            "R" => sql.push_str(&format!("ALTER TABLE {t} ENABLE REPLICA RULE {q};\n")),
            "A" => sql.push_str(&format!("ALTER TABLE {t} ENABLE ALWAYS RULE {q};\n")),
            _ => {}
        }
        sql.push_str(&comment_sql(
            &format!("RULE {q} ON {t}"),
            row.get("comment")?,
        ));
        catalog.items.push(
            Item::new(ItemKind::Rule, &table.schema, &name, sql)
                .owning([oid_ref(class::PG_REWRITE, oid)])
                .needing([oid_ref(class::PG_CLASS, table_oid)])
                .of_table(t),
        );
    }
    Ok(())
}
