//! Procedural languages created with `CREATE LANGUAGE` rather than as an extension, as
//! pg_dump's `dumpProcLang`: the handler, inline and validator functions, and trust.

use super::model::Header;
use super::*;
use crate::sql::Sql;

/// A procedural language as the catalog describes it (no schema).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Language {
    pub header: Header,
    pub trusted: bool,
    /// The functions, as `regproc` prints them.
    pub handler: String,
    pub inline: Option<String>,
    pub validator: Option<String>,
}

pub(super) async fn languages(db: &Db<'_>, catalog: &mut Catalog) -> Result<(), CatalogError> {
    for language in get(db).await? {
        catalog.items.extend(dump(&language));
    }
    Ok(())
}

/// Every procedural language not made by an extension.
pub(super) async fn get(db: &Db<'_>) -> Result<Vec<Language>, CatalogError> {
    let sql = format!(
        "SELECT l.oid, ''::text AS schema, l.lanname::text AS name, quote_ident(l.lanname) AS q, l.lanpltrusted, \
         l.lanplcallfoid::regproc::text AS handler, NULLIF(l.laninline, 0)::regproc::text AS inline, \
         NULLIF(l.lanvalidator, 0)::regproc::text AS validator, \
         quote_ident(pg_get_userbyid(l.lanowner)) AS owner, (SELECT description FROM pg_description WHERE objoid = l.oid AND classoid = 'pg_language'::regclass AND objsubid = 0) AS comment, \
         {} \
         FROM pg_language l WHERE l.oid >= 16384 AND l.lanispl AND {} ORDER BY l.oid",
        acl_columns("l.lanacl", "l.lanowner", 'l'),
        not_in_extension("pg_language", "l.oid")
    );
    let mut languages = Vec::new();
    for row in db.query("languages", &sql).await? {
        let header = Header::of(row.schema_object()?, row.get("owner")?, row.get("comment")?);
        languages.push(Language {
            header: header.with_acl(&row)?,
            trusted: row.get("lanpltrusted")?,
            handler: row.get("handler")?,
            inline: row.get("inline")?,
            validator: row.get("validator")?,
        });
    }
    Ok(languages)
}

/// The items that create `language` and grant on it.
pub(super) fn dump(language: &Language) -> Vec<Item> {
    let header = &language.header;
    let trusted = if language.trusted { "TRUSTED " } else { "" };
    let mut sql = Sql::from(format!(
        "CREATE {trusted}PROCEDURAL LANGUAGE {} HANDLER {}",
        header.q, language.handler
    ));
    if let Some(inline) = &language.inline {
        sql.push_str(&format!(" INLINE {inline}"));
    }
    if let Some(validator) = &language.validator {
        sql.push_str(&format!(" VALIDATOR {validator}"));
    }
    sql.push_str(";\n");
    sql.append(header.tail("LANGUAGE"));
    let object = oid_ref(class::PG_LANGUAGE, header.oid);
    let mut items = vec![Item::new(ItemKind::Language, "", &header.name, sql).owning([object])];
    items.extend(header.acl_item("LANGUAGE", object));
    items
}

#[cfg(test)]
mod tests {
    use super::super::model::tests::header;
    use super::*;

    #[test]
    fn a_trusted_language_with_its_functions() {
        let mut language = Language {
            header: header("plsample", Some("admin")),
            trusted: true,
            handler: "plsample_call_handler".into(),
            inline: Some("plsample_inline".into()),
            validator: None,
        };
        assert_eq!(
            dump(&language)[0].sql,
            "CREATE TRUSTED PROCEDURAL LANGUAGE plsample HANDLER plsample_call_handler INLINE plsample_inline;\n\
             ALTER LANGUAGE plsample OWNER TO admin;\n"
        );
        language.trusted = false;
        language.inline = None;
        language.validator = Some("plsample_validator".into());
        assert!(dump(&language)[0].sql.starts_with(
            "CREATE PROCEDURAL LANGUAGE plsample HANDLER plsample_call_handler VALIDATOR plsample_validator;\n"
        ));
    }
}
