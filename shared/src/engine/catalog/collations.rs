//! Collations (`CREATE COLLATION`): libc, ICU (with rules from 16) and builtin (17+), before
//! the types and tables that use them. Where the locale is kept moved between versions
//! (`collcollate` before 15, `colliculocale` in 15 and 16, `colllocale` from 17).

use super::*;

pub(super) async fn collations(db: &Db<'_>, catalog: &mut Catalog) -> Result<(), CatalogError> {
    let locale = if db.version.at_least(17) {
        "c.colllocale"
    } else if db.version.at_least(15) {
        "c.colliculocale"
    } else {
        "CASE WHEN c.collprovider = 'i' THEN c.collcollate END"
    };
    let rules = if db.version.at_least(16) {
        "c.collicurules"
    } else {
        "NULL::text"
    };
    let sql = format!(
        "SELECT c.oid, n.nspname::text AS schema, c.collname::text AS name, \
         quote_ident(n.nspname) || '.' || quote_ident(c.collname) AS q, c.collprovider::text AS provider, \
         c.collisdeterministic, c.collcollate, c.collctype, {locale} AS locale, {rules} AS rules, \
         quote_ident(pg_get_userbyid(c.collowner)) AS owner, (SELECT description FROM pg_description WHERE objoid = c.oid AND classoid = 'pg_collation'::regclass AND objsubid = 0) AS comment \
         FROM pg_collation c JOIN pg_namespace n ON n.oid = c.collnamespace \
         WHERE c.oid >= 16384 AND {USER_SCHEMA} AND {} ORDER BY c.oid",
        not_in_extension("pg_collation", "c.oid")
    );
    for row in db.query("collations", &sql).await? {
        let SchemaObject {
            oid,
            schema,
            name,
            q,
        } = row.schema_object()?;
        let provider: String = row.get("provider")?;
        let owner: String = row.get("owner")?;
        let mut options = vec![format!(
            "provider = {}",
            match provider.as_str() {
                "i" => "icu",
                "b" => "builtin",
                _ => "libc",
            }
        )];
        if !row.get::<bool>("collisdeterministic")? {
            options.push("deterministic = false".into());
        }
        match provider.as_str() {
            "i" | "b" => {
                let locale: Option<String> = row.get("locale")?;
                options.push(format!("locale = {}", literal(&locale.unwrap_or_default())));
                if let Some(rules) = row.get::<Option<String>>("rules")? {
                    options.push(format!("rules = {}", literal(&rules)));
                }
            }
            _ => {
                let collate: Option<String> = row.get("collcollate")?;
                let ctype: Option<String> = row.get("collctype")?;
                let (collate, ctype) = (collate.unwrap_or_default(), ctype.unwrap_or_default());
                if collate == ctype {
                    options.push(format!("locale = {}", literal(&collate)));
                } else {
                    options.push(format!("lc_collate = {}", literal(&collate)));
                    options.push(format!("lc_ctype = {}", literal(&ctype)));
                }
            }
        }
        let mut sql = format!("CREATE COLLATION {q} ({});\n", options.join(", "));
        sql.push_str(&format!("ALTER COLLATION {q} OWNER TO {owner};\n"));
        sql.push_str(&comment_sql(&format!("COLLATION {q}"), row.get("comment")?));
        catalog.items.push(
            Item::new(ItemKind::Collation, &schema, &name, sql)
                .owning([oid_ref(class::PG_COLLATION, oid)]),
        );
    }
    Ok(())
}
