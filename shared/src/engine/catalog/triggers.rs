//! Triggers (clones on partitions are recreated by their parent).

use std::collections::HashMap;

use super::*;

pub(super) async fn triggers(
    db: &Db<'_>,
    catalog: &mut Catalog,
    relations: &HashMap<u32, Relation>,
) -> Result<(), CatalogError> {
    // Before 15, a trigger cloned onto a partition is marked internal (a foreign key's own
    // triggers, internal too, have a constraint).
    let user_triggers = if db.version.at_least(15) {
        "NOT t.tgisinternal"
    } else {
        "(NOT t.tgisinternal OR (t.tgparentid <> 0 AND t.tgconstraint = 0))"
    };
    let sql = format!(
        "SELECT t.oid, t.tgrelid, t.tgname::text AS name, quote_ident(t.tgname) AS q, pg_get_triggerdef(t.oid) AS def, \
         t.tgenabled::text AS enabled, t.tgconstraint, t.tgparentid, (SELECT description FROM pg_description WHERE objoid = t.oid AND classoid = 'pg_trigger'::regclass AND objsubid = 0) AS comment \
         FROM pg_trigger t WHERE {user_triggers} AND t.oid >= 16384 ORDER BY t.tgrelid, t.tgname"
    );
    let rows = db.query("triggers", &sql).await?;
    // Triggers cloned onto partitions (internal before 15) come back with their parent's: claim them there.
    let mut parent_of: HashMap<u32, u32> = HashMap::new();
    for r in &rows {
        let parent: u32 = r.get("tgparentid")?;
        if parent != 0 {
            parent_of.insert(r.get("oid")?, parent);
        }
    }
    let mut enabled_of: HashMap<u32, String> = HashMap::new();
    for r in &rows {
        enabled_of.insert(r.get("oid")?, r.get("enabled")?);
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
        let t = &table.qualified_name;
        let parent: u32 = row.get("tgparentid")?;
        if parent != 0 {
            // Recreated with the parent's trigger; only an enable state of its own is this
            // partition's to set (ALTER TABLE ONLY, after the parent's).
            let enabled: String = row.get("enabled")?;
            if enabled_of.get(&parent) != Some(&enabled) {
                catalog.items.push(
                    Item::new(
                        ItemKind::Trigger,
                        &table.schema,
                        &format!("{name} enable state"),
                        format!(
                            "ALTER TABLE ONLY {t} {} TRIGGER {q};\n",
                            enable_clause(&enabled)
                        ),
                    )
                    .needing([oid_ref(class::PG_TRIGGER, oid)])
                    .of_table(t),
                );
            }
            continue;
        }
        let mut owns = vec![oid_ref(class::PG_TRIGGER, oid)];
        owns.extend(clones.remove(&oid).unwrap_or_default());
        let constraint: u32 = row.get("tgconstraint")?;
        if constraint != 0 {
            owns.push(oid_ref(class::PG_CONSTRAINT, constraint));
        }
        let mut sql = format!("{def};\n");
        let enabled: String = row.get("enabled")?;
        if enabled != "O" {
            sql.push_str(&format!(
                "ALTER TABLE {t} {} TRIGGER {q};\n",
                enable_clause(&enabled)
            ));
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

/// `tgenabled` as ALTER TABLE spells it.
fn enable_clause(enabled: &str) -> &'static str {
    match enabled {
        "D" => "DISABLE",
        "R" => "ENABLE REPLICA",
        "A" => "ENABLE ALWAYS",
        _ => "ENABLE",
    }
}
