//! Text search parsers and templates, as pg_dump's `dumpTSParser` and `dumpTSTemplate`: each
//! is a set of functions (usually in C) that dictionaries and configurations build on.

use super::*;

pub(super) async fn text_search_parsers(
    db: &Db<'_>,
    catalog: &mut Catalog,
) -> Result<(), CatalogError> {
    let sql = format!(
        "SELECT p.oid, n.nspname::text AS schema, p.prsname::text AS name, \
         quote_ident(n.nspname) || '.' || quote_ident(p.prsname) AS q, \
         p.prsstart::regproc::text AS start, p.prstoken::regproc::text AS gettoken, \
         p.prsend::regproc::text AS end, NULLIF(p.prsheadline, 0)::regproc::text AS headline, \
         p.prslextype::regproc::text AS lextypes, (SELECT description FROM pg_description WHERE objoid = p.oid AND classoid = 'pg_ts_parser'::regclass AND objsubid = 0) AS comment \
         FROM pg_ts_parser p JOIN pg_namespace n ON n.oid = p.prsnamespace \
         WHERE p.oid >= 16384 AND {USER_SCHEMA} AND {} ORDER BY p.oid",
        not_in_extension("pg_ts_parser", "p.oid")
    );
    for row in db.query("text search parsers", &sql).await? {
        let SchemaObject {
            oid,
            schema,
            name,
            q,
        } = row.schema_object()?;
        let mut options = vec![
            format!("START = {}", row.get::<String>("start")?),
            format!("GETTOKEN = {}", row.get::<String>("gettoken")?),
            format!("END = {}", row.get::<String>("end")?),
            format!("LEXTYPES = {}", row.get::<String>("lextypes")?),
        ];
        if let Some(headline) = row.get::<Option<String>>("headline")? {
            options.push(format!("HEADLINE = {headline}"));
        }
        let mut sql = format!(
            "CREATE TEXT SEARCH PARSER {q} (\n    {} );\n",
            options.join(",\n    ")
        );
        sql.push_str(&comment_sql(
            &format!("TEXT SEARCH PARSER {q}"),
            row.get("comment")?,
        ));
        catalog.items.push(
            Item::new(ItemKind::TextSearch, &schema, &name, sql)
                .owning([oid_ref(class::PG_TS_PARSER, oid)]),
        );
    }

    let sql = format!(
        "SELECT t.oid, n.nspname::text AS schema, t.tmplname::text AS name, \
         quote_ident(n.nspname) || '.' || quote_ident(t.tmplname) AS q, \
         NULLIF(t.tmplinit, 0)::regproc::text AS init, t.tmpllexize::regproc::text AS lexize, \
         (SELECT description FROM pg_description WHERE objoid = t.oid AND classoid = 'pg_ts_template'::regclass AND objsubid = 0) AS comment \
         FROM pg_ts_template t JOIN pg_namespace n ON n.oid = t.tmplnamespace \
         WHERE t.oid >= 16384 AND {USER_SCHEMA} AND {} ORDER BY t.oid",
        not_in_extension("pg_ts_template", "t.oid")
    );
    for row in db.query("text search templates", &sql).await? {
        let SchemaObject {
            oid,
            schema,
            name,
            q,
        } = row.schema_object()?;
        let mut options = Vec::new();
        if let Some(init) = row.get::<Option<String>>("init")? {
            options.push(format!("INIT = {init}"));
        }
        options.push(format!("LEXIZE = {}", row.get::<String>("lexize")?));
        let mut sql = format!(
            "CREATE TEXT SEARCH TEMPLATE {q} (\n    {} );\n",
            options.join(",\n    ")
        );
        sql.push_str(&comment_sql(
            &format!("TEXT SEARCH TEMPLATE {q}"),
            row.get("comment")?,
        ));
        catalog.items.push(
            Item::new(ItemKind::TextSearch, &schema, &name, sql)
                .owning([oid_ref(class::PG_TS_TEMPLATE, oid)]),
        );
    }
    Ok(())
}
