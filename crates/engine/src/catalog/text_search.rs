//! Text search dictionaries (a template and its options) and configurations (a parser and
//! the dictionaries mapped to each token type), as pg_dump writes them. Parsers and
//! templates are `text_search_parsers`.

use std::collections::BTreeMap;

use super::model::Header;
use super::*;
use crate::sql::Sql;

/// A text search dictionary: its template and options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dictionary {
    pub header: Header,
    /// The template, quoted and schema-qualified.
    pub template: String,
    /// The options as the server serialised them (`stopwords = 'english'`).
    pub options: Option<String>,
}

/// A text search configuration: its parser and, per token type in order, its dictionaries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Configuration {
    pub header: Header,
    pub parser_oid: u32,
    /// The parser, quoted and schema-qualified.
    pub parser: String,
    /// Each token type (quoted alias) with the dictionaries it is mapped to, in order.
    pub mappings: Vec<(String, Vec<String>)>,
}

pub(super) async fn text_search(db: &Db<'_>, catalog: &mut Catalog) -> Result<(), CatalogError> {
    let (dictionaries, configurations) = get(db).await?;
    catalog
        .items
        .extend(dictionaries.iter().map(dump_dictionary));
    catalog
        .items
        .extend(configurations.iter().map(dump_configuration));
    Ok(())
}

/// Every user dictionary and configuration (not an extension's).
pub(super) async fn get(
    db: &Db<'_>,
) -> Result<(Vec<Dictionary>, Vec<Configuration>), CatalogError> {
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
    let mut dictionaries = Vec::new();
    for row in db.query("text search dictionaries", &sql).await? {
        dictionaries.push(Dictionary {
            header: Header::of(row.schema_object()?, row.get("owner")?, row.get("comment")?),
            template: row.get("template")?,
            options: row.get("options")?,
        });
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
    let mut mappings: BTreeMap<u32, Vec<(String, Vec<String>)>> = BTreeMap::new();
    for row in db.query("text search mappings", mapping_sql).await? {
        let (token, dictionary): (String, String) = (row.get("token")?, row.get("dictionary")?);
        // One entry per token type, its dictionaries in order.
        let of_config = mappings.entry(row.get("mapcfg")?).or_default();
        match of_config.last_mut() {
            Some((last, dictionaries)) if *last == token => dictionaries.push(dictionary),
            _ => of_config.push((token, vec![dictionary])),
        }
    }
    let mut configurations = Vec::new();
    for row in db.query("text search configurations", &sql).await? {
        let object = row.schema_object()?;
        let mappings = mappings.remove(&object.oid).unwrap_or_default();
        configurations.push(Configuration {
            header: Header::of(object, row.get("owner")?, row.get("comment")?),
            parser_oid: row.get("parser_oid")?,
            parser: row.get("parser")?,
            mappings,
        });
    }
    Ok((dictionaries, configurations))
}

/// The item that creates `dictionary`.
pub(super) fn dump_dictionary(dictionary: &Dictionary) -> Item {
    let header = &dictionary.header;
    let options = dictionary
        .options
        .as_ref()
        .map(|o| format!(", {o}"))
        .unwrap_or_default();
    let mut sql = Sql::from(format!(
        "CREATE TEXT SEARCH DICTIONARY {} (\n    TEMPLATE = {}{options} );\n",
        header.q, dictionary.template
    ));
    sql.append(header.tail("TEXT SEARCH DICTIONARY"));
    Item::new(ItemKind::TextSearch, &header.schema, &header.name, sql)
        .owning([oid_ref(class::PG_TS_DICT, header.oid)])
}

/// The item that creates `configuration` with its mappings, needing its parser.
pub(super) fn dump_configuration(configuration: &Configuration) -> Item {
    let header = &configuration.header;
    let q = &header.q;
    let mut sql = Sql::from(format!(
        "CREATE TEXT SEARCH CONFIGURATION {q} (\n    PARSER = {} );\n",
        configuration.parser
    ));
    for (token, dictionaries) in &configuration.mappings {
        sql.push_str(&format!(
            "\nALTER TEXT SEARCH CONFIGURATION {q}\n    ADD MAPPING FOR {token} WITH {};\n",
            dictionaries.join(", ")
        ));
    }
    sql.append(header.tail("TEXT SEARCH CONFIGURATION"));
    Item::new(ItemKind::TextSearch, &header.schema, &header.name, sql)
        .owning([oid_ref(class::PG_TS_CONFIG, header.oid)])
        .needing([oid_ref(class::PG_TS_PARSER, configuration.parser_oid)])
}

#[cfg(test)]
mod tests {
    use super::super::model::tests::header;
    use super::*;

    #[test]
    fn a_dictionary_and_a_configuration_with_its_mappings() {
        let dictionary = Dictionary {
            header: header("app.english_stem", Some("app")),
            template: "pg_catalog.snowball".into(),
            options: Some("language = 'english'".into()),
        };
        assert_eq!(
            dump_dictionary(&dictionary).sql,
            "CREATE TEXT SEARCH DICTIONARY app.english_stem (\n    TEMPLATE = pg_catalog.snowball, language = 'english' );\n\
             ALTER TEXT SEARCH DICTIONARY app.english_stem OWNER TO app;\n"
        );
        let configuration = Configuration {
            header: header("app.docs", Some("app")),
            parser_oid: 3722,
            parser: "pg_catalog.\"default\"".into(),
            mappings: vec![
                (
                    "asciiword".into(),
                    vec!["app.english_stem".into(), "simple".into()],
                ),
                ("word".into(), vec!["simple".into()]),
            ],
        };
        let item = dump_configuration(&configuration);
        assert_eq!(
            item.sql,
            "CREATE TEXT SEARCH CONFIGURATION app.docs (\n    PARSER = pg_catalog.\"default\" );\n\
             \nALTER TEXT SEARCH CONFIGURATION app.docs\n    ADD MAPPING FOR asciiword WITH app.english_stem, simple;\n\
             \nALTER TEXT SEARCH CONFIGURATION app.docs\n    ADD MAPPING FOR word WITH simple;\n\
             ALTER TEXT SEARCH CONFIGURATION app.docs OWNER TO app;\n"
        );
        assert_eq!(item.needs, [oid_ref(class::PG_TS_PARSER, 3722)]);
    }
}
