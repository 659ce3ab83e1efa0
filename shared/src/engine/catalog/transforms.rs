//! Transforms (`CREATE TRANSFORM FOR type LANGUAGE lang`), as pg_dump's `dumpTransform`:
//! the functions that carry a type into and out of a procedural language.

use super::*;

pub(super) async fn transforms(db: &Db<'_>, catalog: &mut Catalog) -> Result<(), CatalogError> {
    let sql = format!(
        "SELECT t.oid, 'FOR ' || format_type(t.trftype, NULL) || ' LANGUAGE ' || quote_ident(l.lanname) AS q, \
         NULLIF(t.trffromsql, 0)::regprocedure::text AS from_sql, NULLIF(t.trftosql, 0)::regprocedure::text AS to_sql, \
         (SELECT description FROM pg_description WHERE objoid = t.oid AND classoid = 'pg_transform'::regclass AND objsubid = 0) AS comment \
         FROM pg_transform t JOIN pg_language l ON l.oid = t.trflang \
         WHERE t.oid >= 16384 AND {} ORDER BY t.oid",
        not_in_extension("pg_transform", "t.oid")
    );
    for row in db.query("transforms", &sql).await? {
        let (oid, q): (u32, String) = (row.get("oid")?, row.get("q")?);
        let mut ways = Vec::new();
        if let Some(function) = row.get::<Option<String>>("from_sql")? {
            ways.push(format!("FROM SQL WITH FUNCTION {function}"));
        }
        if let Some(function) = row.get::<Option<String>>("to_sql")? {
            ways.push(format!("TO SQL WITH FUNCTION {function}"));
        }
        let mut sql = format!("CREATE TRANSFORM {q} ({});\n", ways.join(", "));
        sql.push_str(&comment_sql(&format!("TRANSFORM {q}"), row.get("comment")?));
        catalog.items.push(
            Item::new(ItemKind::Transform, "", &q, sql).owning([oid_ref(class::PG_TRANSFORM, oid)]),
        );
    }
    Ok(())
}
