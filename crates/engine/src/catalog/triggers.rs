//! Triggers (clones on partitions are recreated by their parent).

use std::collections::HashMap;

use super::model::{Enabled, Header};
use super::*;
use crate::sql::Sql;

/// A trigger as the catalog describes it (`header.q` is its bare name).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trigger {
    pub header: Header,
    pub table_oid: u32,
    /// `CREATE TRIGGER …` as `pg_get_triggerdef` writes it.
    pub definition: String,
    pub enabled: Enabled,
    /// The constraint of a constraint trigger.
    pub constraint: Option<u32>,
    /// The trigger this one was cloned from onto a partition.
    pub parent: Option<u32>,
}

pub(super) async fn triggers(
    db: &Db<'_>,
    catalog: &mut Catalog,
    relations: &HashMap<u32, Relation>,
) -> Result<(), CatalogError> {
    catalog.items.extend(dump(&get(db).await?, relations));
    Ok(())
}

/// Every user trigger, clones on partitions included.
pub(super) async fn get(db: &Db<'_>) -> Result<Vec<Trigger>, CatalogError> {
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
    let nonzero = |oid: u32| (oid != 0).then_some(oid);
    let mut triggers = Vec::new();
    for row in db.query("triggers", &sql).await? {
        triggers.push(Trigger {
            header: Header::bare(&row)?,
            table_oid: row.get("tgrelid")?,
            definition: row.get("def")?,
            enabled: Enabled::from_code(&row.get::<String>("enabled")?),
            constraint: nonzero(row.get("tgconstraint")?),
            parent: nonzero(row.get("tgparentid")?),
        });
    }
    Ok(triggers)
}

/// The items of `triggers` on the dumped `relations`. A clone on a partition is claimed by
/// the trigger it came from (the parent's `CREATE TRIGGER` makes it again); only an enable
/// state of its own is the partition's to set, after the parent's.
pub(super) fn dump(triggers: &[Trigger], relations: &HashMap<u32, Relation>) -> Vec<Item> {
    let by_oid: HashMap<u32, &Trigger> = triggers.iter().map(|t| (t.header.oid, t)).collect();
    let mut clones: HashMap<u32, Vec<ObjectRef>> = HashMap::new();
    for trigger in triggers.iter().filter(|t| t.parent.is_some()) {
        let mut root = trigger;
        while let Some(parent) = root.parent.and_then(|p| by_oid.get(&p)) {
            root = parent;
        }
        clones
            .entry(root.header.oid)
            .or_default()
            .push(oid_ref(class::PG_TRIGGER, trigger.header.oid));
    }
    let mut items = Vec::new();
    for trigger in triggers {
        let Some(table) = relations.get(&trigger.table_oid) else {
            continue;
        };
        let (t, q, oid) = (&table.qualified_name, &trigger.header.q, trigger.header.oid);
        if let Some(parent) = trigger.parent {
            if by_oid.get(&parent).map(|p| p.enabled) != Some(trigger.enabled) {
                items.push(
                    Item::new(
                        ItemKind::Trigger,
                        &table.schema,
                        &format!("{} enable state", trigger.header.name),
                        format!(
                            "ALTER TABLE ONLY {t} {} TRIGGER {q};\n",
                            enable_clause(trigger.enabled)
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
        owns.extend(trigger.constraint.map(|c| oid_ref(class::PG_CONSTRAINT, c)));
        let mut sql = Sql::from(format!("{};\n", trigger.definition));
        if trigger.enabled != Enabled::Origin {
            sql.push_str(&format!(
                "ALTER TABLE {t} {} TRIGGER {q};\n",
                enable_clause(trigger.enabled)
            ));
        }
        sql.append(trigger.header.tail_as("TRIGGER", &format!("{q} ON {t}")));
        items.push(
            Item::new(ItemKind::Trigger, &table.schema, &trigger.header.name, sql)
                .owning(owns)
                .needing([oid_ref(class::PG_CLASS, trigger.table_oid)])
                .of_table(t),
        );
    }
    items
}

/// An enable state as `ALTER TABLE … TRIGGER` spells it.
fn enable_clause(enabled: Enabled) -> &'static str {
    match enabled {
        Enabled::Disabled => "DISABLE",
        Enabled::Replica => "ENABLE REPLICA",
        Enabled::Always => "ENABLE ALWAYS",
        Enabled::Origin => "ENABLE",
    }
}

#[cfg(test)]
mod tests {
    use super::super::model::tests::relation;
    use super::*;

    fn trigger(oid: u32, table_oid: u32, enabled: Enabled, parent: Option<u32>) -> Trigger {
        Trigger {
            header: Header {
                oid,
                name: "audit".into(),
                q: "audit".into(),
                ..Header::default()
            },
            table_oid,
            definition: format!(
                "CREATE TRIGGER audit AFTER INSERT ON app.t{table_oid} FOR EACH ROW EXECUTE FUNCTION app.log()"
            ),
            enabled,
            constraint: None,
            parent,
        }
    }

    #[test]
    fn a_partitions_clone_is_claimed_by_its_parent_and_keeps_its_own_enable_state() {
        let relations = HashMap::from([(1, relation("events")), (2, relation("events_2026"))]);
        let triggers = [
            trigger(100, 1, Enabled::Replica, None),
            trigger(101, 2, Enabled::Disabled, Some(100)),
        ];
        let items = dump(&triggers, &relations);
        assert_eq!(items.len(), 2);
        assert_eq!(
            items[0].sql,
            "CREATE TRIGGER audit AFTER INSERT ON app.t1 FOR EACH ROW EXECUTE FUNCTION app.log();\n\
             ALTER TABLE app.events ENABLE REPLICA TRIGGER audit;\n"
        );
        assert_eq!(
            items[0].owns,
            [
                oid_ref(class::PG_TRIGGER, 100),
                oid_ref(class::PG_TRIGGER, 101)
            ]
        );
        assert_eq!(
            items[1].sql,
            "ALTER TABLE ONLY app.events_2026 DISABLE TRIGGER audit;\n"
        );
        assert_eq!(items[1].needs, [oid_ref(class::PG_TRIGGER, 101)]);

        // A clone as enabled as its parent needs nothing of its own.
        let same = [
            trigger(100, 1, Enabled::Origin, None),
            trigger(101, 2, Enabled::Origin, Some(100)),
        ];
        assert_eq!(dump(&same, &relations).len(), 1);
    }
}
