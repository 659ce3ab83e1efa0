//! Access methods (`CREATE ACCESS METHOD ... TYPE TABLE | INDEX HANDLER`), as pg_dump's
//! `dumpAccessMethod`: a table or index that uses one depends on it, so it is created first.

use super::*;

pub(super) async fn access_methods(db: &Db<'_>, catalog: &mut Catalog) -> Result<(), CatalogError> {
    let sql = format!(
        "SELECT a.oid, a.amname::text AS name, quote_ident(a.amname) AS q, a.amtype::text AS kind, \
         a.amhandler::regproc::text AS handler, (SELECT description FROM pg_description WHERE objoid = a.oid AND classoid = 'pg_am'::regclass AND objsubid = 0) AS comment \
         FROM pg_am a WHERE a.oid >= 16384 AND {} ORDER BY a.amname",
        not_in_extension("pg_am", "a.oid")
    );
    for row in db.query("access methods", &sql).await? {
        let (oid, name, q, kind, handler): (u32, String, String, String, String) = (
            row.get("oid")?,
            row.get("name")?,
            row.get("q")?,
            row.get("kind")?,
            row.get("handler")?,
        );
        let kind = match kind.as_str() {
            "t" => "TABLE",
            "i" => "INDEX",
            _ => continue, // a kind this engine does not know: left for the inventory to name
        };
        let mut sql = format!("CREATE ACCESS METHOD {q} TYPE {kind} HANDLER {handler};\n");
        sql.push_str(&comment_sql(
            &format!("ACCESS METHOD {q}"),
            row.get("comment")?,
        ));
        catalog.items.push(
            Item::new(ItemKind::AccessMethod, "", &name, sql).owning([oid_ref(class::PG_AM, oid)]),
        );
    }
    Ok(())
}
