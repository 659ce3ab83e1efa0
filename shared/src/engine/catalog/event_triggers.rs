//! Event triggers (`CREATE EVENT TRIGGER`), with their tags and enable state, created last as
//! pg_dump does, so that none fires during the restore itself.

use super::*;

pub(super) async fn event_triggers(db: &Db<'_>, catalog: &mut Catalog) -> Result<(), CatalogError> {
    let sql = format!(
        "SELECT t.oid, t.evtname::text AS name, quote_ident(t.evtname) AS q, t.evtevent::text AS event, \
         t.evtenabled::text AS enabled, t.evtfoid, t.evtfoid::regproc::text AS function, \
         (SELECT string_agg(quote_literal(g), ', ') FROM unnest(t.evttags) AS g) AS tags, \
         quote_ident(pg_get_userbyid(t.evtowner)) AS owner, (SELECT description FROM pg_description WHERE objoid = t.oid AND classoid = 'pg_event_trigger'::regclass AND objsubid = 0) AS comment \
         FROM pg_event_trigger t WHERE t.oid >= 16384 AND {} ORDER BY t.evtname",
        not_in_extension("pg_event_trigger", "t.oid")
    );
    for row in db.query("event triggers", &sql).await? {
        let (oid, name, q, event, function, owner): (u32, String, String, String, String, String) = (
            row.get("oid")?,
            row.get("name")?,
            row.get("q")?,
            row.get("event")?,
            row.get("function")?,
            row.get("owner")?,
        );
        let mut sql = format!("CREATE EVENT TRIGGER {q} ON {event}");
        if let Some(tags) = row.get::<Option<String>>("tags")? {
            sql.push_str(&format!("\n         WHEN TAG IN ({tags})"));
        }
        sql.push_str(&format!("\n   EXECUTE FUNCTION {function}();\n"));
        match row.get::<String>("enabled")?.as_str() {
            "D" => sql.push_str(&format!("ALTER EVENT TRIGGER {q} DISABLE;\n")),
            "R" => sql.push_str(&format!("ALTER EVENT TRIGGER {q} ENABLE REPLICA;\n")),
            "A" => sql.push_str(&format!("ALTER EVENT TRIGGER {q} ENABLE ALWAYS;\n")),
            _ => {}
        }
        sql.push_str(&format!("ALTER EVENT TRIGGER {q} OWNER TO {owner};\n"));
        sql.push_str(&comment_sql(
            &format!("EVENT TRIGGER {q}"),
            row.get("comment")?,
        ));
        catalog.items.push(
            Item::new(ItemKind::EventTrigger, "", &name, sql)
                .owning([oid_ref(class::PG_EVENT_TRIGGER, oid)])
                .needing([oid_ref(class::PG_PROC, row.get("evtfoid")?)]),
        );
    }
    Ok(())
}
