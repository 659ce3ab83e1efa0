//! Procedural languages created with `CREATE LANGUAGE` rather than as an extension, as
//! pg_dump's `dumpProcLang`: the handler, inline and validator functions, and trust.

use super::*;

pub(super) async fn languages(db: &Db<'_>, catalog: &mut Catalog) -> Result<(), CatalogError> {
    let sql = format!(
        "SELECT l.oid, l.lanname::text AS name, quote_ident(l.lanname) AS q, l.lanpltrusted, \
         l.lanplcallfoid::regproc::text AS handler, NULLIF(l.laninline, 0)::regproc::text AS inline, \
         NULLIF(l.lanvalidator, 0)::regproc::text AS validator, \
         quote_ident(pg_get_userbyid(l.lanowner)) AS owner, (SELECT description FROM pg_description WHERE objoid = l.oid AND classoid = 'pg_language'::regclass AND objsubid = 0) AS comment, \
         {} \
         FROM pg_language l WHERE l.oid >= 16384 AND l.lanispl AND {} ORDER BY l.oid",
        acl_columns("l.lanacl", "l.lanowner", 'l'),
        not_in_extension("pg_language", "l.oid")
    );
    for row in db.query("languages", &sql).await? {
        let (oid, name, q, handler, owner): (u32, String, String, String, String) = (
            row.get("oid")?,
            row.get("name")?,
            row.get("q")?,
            row.get("handler")?,
            row.get("owner")?,
        );
        let trusted = if row.get::<bool>("lanpltrusted")? {
            "TRUSTED "
        } else {
            ""
        };
        let mut sql = format!("CREATE {trusted}PROCEDURAL LANGUAGE {q} HANDLER {handler}");
        if let Some(inline) = row.get::<Option<String>>("inline")? {
            sql.push_str(&format!(" INLINE {inline}"));
        }
        if let Some(validator) = row.get::<Option<String>>("validator")? {
            sql.push_str(&format!(" VALIDATOR {validator}"));
        }
        sql.push_str(&format!(";\nALTER LANGUAGE {q} OWNER TO {owner};\n"));
        sql.push_str(&comment_sql(&format!("LANGUAGE {q}"), row.get("comment")?));
        let object = oid_ref(class::PG_LANGUAGE, oid);
        catalog
            .items
            .push(Item::new(ItemKind::Language, "", &name, sql).owning([object]));
        catalog.items.extend(acl_item(
            "",
            &name,
            &format!("LANGUAGE {q}"),
            object,
            &row,
            None,
        )?);
    }
    Ok(())
}
