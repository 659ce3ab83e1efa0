//! Text search parsers and templates, as pg_dump's `dumpTSParser` and `dumpTSTemplate`: each
//! is a set of functions (usually in C) that dictionaries and configurations build on.

use super::model::Header;
use super::*;
use crate::sql::Sql;

/// A text search parser: its functions, as `regproc` prints them (no owner).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parser {
    pub header: Header,
    pub start: String,
    pub gettoken: String,
    pub end: String,
    pub lextypes: String,
    pub headline: Option<String>,
}

/// A text search template: its functions, as `regproc` prints them (no owner).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    pub header: Header,
    pub init: Option<String>,
    pub lexize: String,
}

pub(super) async fn text_search_parsers(
    db: &Db<'_>,
    catalog: &mut Catalog,
) -> Result<(), CatalogError> {
    let (parsers, templates) = get(db).await?;
    catalog.items.extend(parsers.iter().map(dump_parser));
    catalog.items.extend(templates.iter().map(dump_template));
    Ok(())
}

/// Every user parser and template (not an extension's).
pub(super) async fn get(db: &Db<'_>) -> Result<(Vec<Parser>, Vec<Template>), CatalogError> {
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
    let mut parsers = Vec::new();
    for row in db.query("text search parsers", &sql).await? {
        parsers.push(Parser {
            header: Header::of(row.schema_object()?, None, row.get("comment")?),
            start: row.get("start")?,
            gettoken: row.get("gettoken")?,
            end: row.get("end")?,
            lextypes: row.get("lextypes")?,
            headline: row.get("headline")?,
        });
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
    let mut templates = Vec::new();
    for row in db.query("text search templates", &sql).await? {
        templates.push(Template {
            header: Header::of(row.schema_object()?, None, row.get("comment")?),
            init: row.get("init")?,
            lexize: row.get("lexize")?,
        });
    }
    Ok((parsers, templates))
}

/// The item that creates `parser`.
pub(super) fn dump_parser(parser: &Parser) -> Item {
    let header = &parser.header;
    let mut options = vec![
        format!("START = {}", parser.start),
        format!("GETTOKEN = {}", parser.gettoken),
        format!("END = {}", parser.end),
        format!("LEXTYPES = {}", parser.lextypes),
    ];
    if let Some(headline) = &parser.headline {
        options.push(format!("HEADLINE = {headline}"));
    }
    let mut sql = Sql::from(format!(
        "CREATE TEXT SEARCH PARSER {} (\n    {} );\n",
        header.q,
        options.join(",\n    ")
    ));
    sql.append(header.tail("TEXT SEARCH PARSER"));
    Item::new(ItemKind::TextSearch, &header.schema, &header.name, sql)
        .owning([oid_ref(class::PG_TS_PARSER, header.oid)])
}

/// The item that creates `template`.
pub(super) fn dump_template(template: &Template) -> Item {
    let header = &template.header;
    let mut options = Vec::new();
    if let Some(init) = &template.init {
        options.push(format!("INIT = {init}"));
    }
    options.push(format!("LEXIZE = {}", template.lexize));
    let mut sql = Sql::from(format!(
        "CREATE TEXT SEARCH TEMPLATE {} (\n    {} );\n",
        header.q,
        options.join(",\n    ")
    ));
    sql.append(header.tail("TEXT SEARCH TEMPLATE"));
    Item::new(ItemKind::TextSearch, &header.schema, &header.name, sql)
        .owning([oid_ref(class::PG_TS_TEMPLATE, header.oid)])
}

#[cfg(test)]
mod tests {
    use super::super::model::tests::header;
    use super::*;

    #[test]
    fn a_parser_and_a_template_name_their_functions() {
        let parser = Parser {
            header: header("app.words", None),
            start: "prsd_start".into(),
            gettoken: "prsd_nexttoken".into(),
            end: "prsd_end".into(),
            lextypes: "prsd_lextype".into(),
            headline: Some("prsd_headline".into()),
        };
        assert_eq!(
            dump_parser(&parser).sql,
            "CREATE TEXT SEARCH PARSER app.words (\n    START = prsd_start,\n    GETTOKEN = prsd_nexttoken,\n    \
             END = prsd_end,\n    LEXTYPES = prsd_lextype,\n    HEADLINE = prsd_headline );\n"
        );
        let mut template = Template {
            header: header("app.simple2", None),
            init: None,
            lexize: "dsimple_lexize".into(),
        };
        template.header.comment = Some("plain".into());
        let item = dump_template(&template);
        assert_eq!(
            item.sql,
            "CREATE TEXT SEARCH TEMPLATE app.simple2 (\n    LEXIZE = dsimple_lexize );\n\
             COMMENT ON TEXT SEARCH TEMPLATE app.simple2 IS 'plain';\n"
        );
        assert_eq!(item.owns, [oid_ref(class::PG_TS_TEMPLATE, 16_400)]);
    }
}
