//! Text search dictionaries (a template and its options) and configurations (a parser and
//! the dictionaries mapped to each token type), as pg_dump writes them. Parsers and
//! templates are `text_search_parsers`.

use std::collections::BTreeMap;

use super::*;

pub(super) async fn text_search(db: &Db<'_>, catalog: &mut Catalog) -> Result<(), CatalogError> {
    let sql = format!(
        "SELECT d.oid, n.nspname::text AS schema, d.dictname::text AS name, \
         quote_ident(n.nspname) || '.' || quote_ident(d.dictname) AS q, (SELECT quote_ident(tn.nspname) || '.' || quote_ident(t.tmplname) FROM pg_ts_template t \
             JOIN pg_namespace tn ON tn.oid = t.tmplnamespace WHERE t.oid = d.dicttemplate) AS template, \
         d.dictinitoption AS options, quote_ident(pg_get_userbyid(d.dictowner)) AS owner, \
         (SELECT description FROM pg_description WHERE objoid = d.oid AND classoid = 'pg_ts_dict'::regclass AND objsubid = 0) AS comment \
         FROM pg_ts_dict d JOIN pg_namespace n ON n.oid = d.dictnamespace \
         WHERE d.oid >= 16384 AND {USER_SCHEMA} AND {} ORDER BY d.oid",
        not_in_extension("pg_ts_dict", "d.oid")
    );
    for row in db.query("text search dictionaries", &sql).await? {
        let SchemaObject {
            oid,
            schema,
            name,
            q,
        } = row.schema_object()?;
        let template: String = row.get("template")?;
        let owner: String = row.get("owner")?;
        let options = row
            .get::<Option<String>>("options")?
            .map(|o| format!(", {o}"))
            .unwrap_or_default();
        let mut sql =
            format!("CREATE TEXT SEARCH DICTIONARY {q} (\n    TEMPLATE = {template}{options} );\n");
        sql.push_str(&format!(
            "ALTER TEXT SEARCH DICTIONARY {q} OWNER TO {owner};\n"
        ));
        sql.push_str(&comment_sql(
            &format!("TEXT SEARCH DICTIONARY {q}"),
            row.get("comment")?,
        ));
        catalog.items.push(
            Item::new(ItemKind::TextSearch, &schema, &name, sql)
                .owning([oid_ref(class::PG_TS_DICT, oid)]),
        );
    }

    let sql = format!(
        "SELECT c.oid, n.nspname::text AS schema, c.cfgname::text AS name, \
         quote_ident(n.nspname) || '.' || quote_ident(c.cfgname) AS q, c.cfgparser AS parser_oid, \
         (SELECT quote_ident(pn.nspname) || '.' || quote_ident(p.prsname) FROM pg_ts_parser p \
             JOIN pg_namespace pn ON pn.oid = p.prsnamespace WHERE p.oid = c.cfgparser) AS parser, \
         quote_ident(pg_get_userbyid(c.cfgowner)) AS owner, (SELECT description FROM pg_description WHERE objoid = c.oid AND classoid = 'pg_ts_config'::regclass AND objsubid = 0) AS comment \
         FROM pg_ts_config c JOIN pg_namespace n ON n.oid = c.cfgnamespace \
         WHERE c.oid >= 16384 AND {USER_SCHEMA} AND {} ORDER BY c.oid",
        not_in_extension("pg_ts_config", "c.oid")
    );
    let mapping_sql = "SELECT m.mapcfg, \
         (SELECT quote_ident(t.alias) FROM ts_token_type(c.cfgparser) AS t WHERE t.tokid = m.maptokentype) AS token, \
         m.mapdict::regdictionary::text AS dictionary \
         FROM pg_ts_config_map m JOIN pg_ts_config c ON c.oid = m.mapcfg WHERE m.mapcfg >= 16384 \
         ORDER BY m.mapcfg, m.maptokentype, m.mapseqno";
    let mut mappings: BTreeMap<u32, Vec<(String, String)>> = BTreeMap::new();
    for row in db.query("text search mappings", mapping_sql).await? {
        mappings
            .entry(row.get("mapcfg")?)
            .or_default()
            .push((row.get("token")?, row.get("dictionary")?));
    }
    for row in db.query("text search configurations", &sql).await? {
        let SchemaObject {
            oid,
            schema,
            name,
            q,
        } = row.schema_object()?;
        let parser: String = row.get("parser")?;
        let owner: String = row.get("owner")?;
        let mut sql = format!("CREATE TEXT SEARCH CONFIGURATION {q} (\n    PARSER = {parser} );\n");
        // One ADD MAPPING per token type, its dictionaries in order.
        let mut by_token: Vec<(String, Vec<String>)> = Vec::new();
        for (token, dictionary) in mappings.remove(&oid).unwrap_or_default() {
            match by_token.last_mut() {
                Some((last, dictionaries)) if *last == token => dictionaries.push(dictionary),
                _ => by_token.push((token, vec![dictionary])),
            }
        }
        for (token, dictionaries) in by_token {
            sql.push_str(&format!(
                "\nALTER TEXT SEARCH CONFIGURATION {q}\n    ADD MAPPING FOR {token} WITH {};\n",
                dictionaries.join(", ")
            ));
        }
        sql.push_str(&format!(
            "\nALTER TEXT SEARCH CONFIGURATION {q} OWNER TO {owner};\n"
        ));
        sql.push_str(&comment_sql(
            &format!("TEXT SEARCH CONFIGURATION {q}"),
            row.get("comment")?,
        ));
        catalog.items.push(
            Item::new(ItemKind::TextSearch, &schema, &name, sql)
                .owning([oid_ref(class::PG_TS_CONFIG, oid)])
                .needing([oid_ref(class::PG_TS_PARSER, row.get("parser_oid")?)]),
        );
    }
    Ok(())
}
