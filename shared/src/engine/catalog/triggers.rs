//! Triggers (clones on partitions are recreated by their parent).

use std::collections::HashMap;

use super::*;

pub(super) async fn triggers(
    db: &Db<'_>,
    catalog: &mut Catalog,
    relations: &HashMap<u32, Relation>,
) -> Result<(), CatalogError> {
    let sql = "SELECT t.oid, t.tgrelid, t.tgname::text AS name, quote_ident(t.tgname) AS q, pg_get_triggerdef(t.oid) AS def, \
         t.tgenabled::text AS enabled, t.tgconstraint, t.tgparentid, obj_description(t.oid, 'pg_trigger') AS comment \
         FROM pg_trigger t WHERE NOT t.tgisinternal AND t.oid >= 16384 ORDER BY t.tgrelid, t.tgname";
    let rows = db.query("triggers", sql).await?;
    // Triggers cloned onto partitions come back with their parent's: claim them there.
    let mut parent_of: HashMap<u32, u32> = HashMap::new();
    for r in &rows {
        let parent: u32 = r.get("tgparentid")?;
        if parent != 0 {
            parent_of.insert(r.get("oid")?, parent);
        }
    }
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
            row.get("oid")?,
            row.get("tgrelid")?,
            row.get("name")?,
            row.get("q")?,
            row.get("def")?,
        );
        let Some(table) = relations.get(&table_oid) else {
            continue;
        };
        if row.get::<u32>("tgparentid")? != 0 {
            continue;
        }
        let t = &table.qualified_name;
        let mut owns = vec![oid_ref(class::PG_TRIGGER, oid)];
        owns.extend(clones.remove(&oid).unwrap_or_default());
        let constraint: u32 = row.get("tgconstraint")?;
        if constraint != 0 {
            owns.push(oid_ref(class::PG_CONSTRAINT, constraint));
        }
        let mut sql = format!("{def};\n");
        match row.get::<String>("enabled")?.as_str() {
            "D" => sql.push_str(&format!("ALTER TABLE {t} DISABLE TRIGGER {q};\n")),
            "R" => sql.push_str(&format!("ALTER TABLE {t} ENABLE REPLICA TRIGGER {q};\n")),
            "A" => sql.push_str(&format!("ALTER TABLE {t} ENABLE ALWAYS TRIGGER {q};\n")),
            _ => {}
        }
        sql.push_str(&comment_sql(
            &format!("TRIGGER {q} ON {t}"),
            row.get("comment")?,
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
