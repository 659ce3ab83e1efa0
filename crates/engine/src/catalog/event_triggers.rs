//! Event triggers (`CREATE EVENT TRIGGER`), with their tags and enable state, created last as
//! pg_dump does, so that none fires during the restore itself.

use super::model::{Enabled, Header};
use super::*;
use crate::sql::Sql;

/// An event trigger as the catalog describes it (no schema).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventTrigger {
    pub header: Header,
    /// `ddl_command_start`, `sql_drop`, …: the server's own word.
    pub event: String,
    /// The function's OID and its name as `regproc` prints it.
    pub function_oid: u32,
    pub function: String,
    /// The command tags it is limited to, each already a quoted literal.
    pub tags: Vec<String>,
    pub enabled: Enabled,
}

pub(super) async fn event_triggers(db: &Db<'_>, catalog: &mut Catalog) -> Result<(), CatalogError> {
    for trigger in get(db).await? {
        catalog.items.push(dump(&trigger));
    }
    Ok(())
}

/// Every user event trigger (not an extension's).
pub(super) async fn get(db: &Db<'_>) -> Result<Vec<EventTrigger>, CatalogError> {
    let sql = format!(
        "SELECT t.oid, t.evtname::text AS name, quote_ident(t.evtname) AS q, t.evtevent::text AS event, \
         t.evtenabled::text AS enabled, t.evtfoid, t.evtfoid::regproc::text AS function, \
         ARRAY(SELECT quote_literal(g) FROM unnest(t.evttags) AS g) AS tags, \
         quote_ident(pg_get_userbyid(t.evtowner)) AS owner, (SELECT description FROM pg_description WHERE objoid = t.oid AND classoid = 'pg_event_trigger'::regclass AND objsubid = 0) AS comment \
         FROM pg_event_trigger t WHERE t.oid >= 16384 AND {} ORDER BY t.evtname",
        not_in_extension("pg_event_trigger", "t.oid")
    );
    let mut triggers = Vec::new();
    for row in db.query("event triggers", &sql).await? {
        triggers.push(EventTrigger {
            header: Header {
                owner: row.get("owner")?,
                ..Header::bare(&row)?
            },
            event: row.get("event")?,
            function_oid: row.get("evtfoid")?,
            function: row.get("function")?,
            tags: row.get("tags")?,
            enabled: Enabled::from_code(&row.get::<String>("enabled")?),
        });
    }
    Ok(triggers)
}

/// The item that creates `trigger`, needing its function.
pub(super) fn dump(trigger: &EventTrigger) -> Item {
    let header = &trigger.header;
    let q = &header.q;
    let mut sql = Sql::from(format!("CREATE EVENT TRIGGER {q} ON {}", trigger.event));
    if !trigger.tags.is_empty() {
        sql.push_str(&format!(
            "\n         WHEN TAG IN ({})",
            trigger.tags.join(", ")
        ));
    }
    sql.push_str(&format!("\n   EXECUTE FUNCTION {}();\n", trigger.function));
    match trigger.enabled {
        Enabled::Disabled => sql.push_str(&format!("ALTER EVENT TRIGGER {q} DISABLE;\n")),
        Enabled::Replica => sql.push_str(&format!("ALTER EVENT TRIGGER {q} ENABLE REPLICA;\n")),
        Enabled::Always => sql.push_str(&format!("ALTER EVENT TRIGGER {q} ENABLE ALWAYS;\n")),
        Enabled::Origin => &mut sql,
    };
    sql.append(header.tail("EVENT TRIGGER"));
    Item::new(ItemKind::EventTrigger, "", &header.name, sql)
        .owning([oid_ref(class::PG_EVENT_TRIGGER, header.oid)])
        .needing([oid_ref(class::PG_PROC, trigger.function_oid)])
}

#[cfg(test)]
mod tests {
    use super::super::model::tests::header;
    use super::*;

    #[test]
    fn tags_enable_state_owner_and_comment() {
        let mut trigger = EventTrigger {
            header: header("audit_ddl", Some("admin")),
            event: "ddl_command_end".into(),
            function_oid: 16_401,
            function: "app.audit".into(),
            tags: vec!["'CREATE TABLE'".into(), "'ALTER TABLE'".into()],
            enabled: Enabled::Replica,
        };
        trigger.header.comment = Some("who changed what".into());
        let item = dump(&trigger);
        assert_eq!(
            item.sql,
            "CREATE EVENT TRIGGER audit_ddl ON ddl_command_end\n         \
             WHEN TAG IN ('CREATE TABLE', 'ALTER TABLE')\n   EXECUTE FUNCTION app.audit();\n\
             ALTER EVENT TRIGGER audit_ddl ENABLE REPLICA;\n\
             ALTER EVENT TRIGGER audit_ddl OWNER TO admin;\n\
             COMMENT ON EVENT TRIGGER audit_ddl IS 'who changed what';\n"
        );
        assert_eq!(item.needs, [oid_ref(class::PG_PROC, 16_401)]);
        trigger.tags.clear();
        trigger.enabled = Enabled::Origin;
        trigger.header.comment = None;
        assert_eq!(
            dump(&trigger).sql,
            "CREATE EVENT TRIGGER audit_ddl ON ddl_command_end\n   EXECUTE FUNCTION app.audit();\n\
             ALTER EVENT TRIGGER audit_ddl OWNER TO admin;\n"
        );
    }
}
