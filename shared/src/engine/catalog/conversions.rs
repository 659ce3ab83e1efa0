//! Encoding conversions (`CREATE [DEFAULT] CONVERSION`), as pg_dump's `dumpConversion`.

use super::*;

pub(super) async fn conversions(db: &Db<'_>, catalog: &mut Catalog) -> Result<(), CatalogError> {
    let sql = format!(
        "SELECT c.oid, n.nspname::text AS schema, c.conname::text AS name, \
         quote_ident(n.nspname) || '.' || quote_ident(c.conname) AS q, c.condefault, \
         pg_encoding_to_char(c.conforencoding) AS from_encoding, pg_encoding_to_char(c.contoencoding) AS to_encoding, \
         c.conproc::regproc::text AS function, quote_ident(pg_get_userbyid(c.conowner)) AS owner, \
         (SELECT description FROM pg_description WHERE objoid = c.oid AND classoid = 'pg_conversion'::regclass AND objsubid = 0) AS comment \
         FROM pg_conversion c JOIN pg_namespace n ON n.oid = c.connamespace \
         WHERE c.oid >= 16384 AND {USER_SCHEMA} AND {} ORDER BY c.oid",
        not_in_extension("pg_conversion", "c.oid")
    );
    for row in db.query("conversions", &sql).await? {
        let SchemaObject {
            oid,
            schema,
            name,
            q,
        } = row.schema_object()?;
        let owner: String = row.get("owner")?;
        let default = if row.get::<bool>("condefault")? {
            "DEFAULT "
        } else {
            ""
        };
        let mut sql = format!(
            "CREATE {default}CONVERSION {q} FOR {} TO {} FROM {};\nALTER CONVERSION {q} OWNER TO {owner};\n",
            literal(&row.get::<String>("from_encoding")?),
            literal(&row.get::<String>("to_encoding")?),
            row.get::<String>("function")?,
        );
        sql.push_str(&comment_sql(
            &format!("CONVERSION {q}"),
            row.get("comment")?,
        ));
        catalog.items.push(
            Item::new(ItemKind::Conversion, &schema, &name, sql)
                .owning([oid_ref(class::PG_CONVERSION, oid)]),
        );
    }
    Ok(())
}
