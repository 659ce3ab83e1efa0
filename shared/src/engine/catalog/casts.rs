//! Casts (`CREATE CAST`), as pg_dump's `dumpCast`: by a function, by I/O conversion
//! (`WITH INOUT`) or binary-coercible (`WITHOUT FUNCTION`), in the context they apply in.
//! The casts a range type makes to its multirange are part of the range (`CREATE TYPE`).

use super::*;

pub(super) async fn casts(db: &Db<'_>, catalog: &mut Catalog) -> Result<(), CatalogError> {
    let sql = format!(
        "SELECT c.oid, '(' || format_type(c.castsource, NULL) || ' AS ' || format_type(c.casttarget, NULL) || ')' AS q, \
         c.castmethod::text AS method, c.castcontext::text AS context, \
         NULLIF(c.castfunc, 0)::regprocedure::text AS function, (SELECT description FROM pg_description WHERE objoid = c.oid AND classoid = 'pg_cast'::regclass AND objsubid = 0) AS comment \
         FROM pg_cast c WHERE c.oid >= 16384 AND {} \
         AND NOT EXISTS (SELECT 1 FROM pg_depend i WHERE i.classid = 'pg_cast'::regclass \
             AND i.objid = c.oid AND i.deptype = 'i') ORDER BY c.oid",
        not_in_extension("pg_cast", "c.oid")
    );
    for row in db.query("casts", &sql).await? {
        let (oid, q): (u32, String) = (row.get("oid")?, row.get("q")?);
        let how = match (
            row.get::<String>("method")?.as_str(),
            row.get::<Option<String>>("function")?,
        ) {
            ("f", Some(function)) => format!("WITH FUNCTION {function}"),
            ("i", _) => "WITH INOUT".to_string(),
            ("b", _) => "WITHOUT FUNCTION".to_string(),
            _ => continue, // a method this engine does not know: left for the inventory to name
        };
        let context = match row.get::<String>("context")?.as_str() {
            "a" => " AS ASSIGNMENT",
            "i" => " AS IMPLICIT",
            _ => "",
        };
        let mut sql = format!("CREATE CAST {q} {how}{context};\n");
        sql.push_str(&comment_sql(&format!("CAST {q}"), row.get("comment")?));
        catalog
            .items
            .push(Item::new(ItemKind::Cast, "", &q, sql).owning([oid_ref(class::PG_CAST, oid)]));
    }
    Ok(())
}
