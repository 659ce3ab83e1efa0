//! Encoding conversions (`CREATE [DEFAULT] CONVERSION`), as pg_dump's `dumpConversion`.

use super::model::Header;
use super::*;
use crate::sql::Sql;

/// A conversion as the catalog describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conversion {
    pub header: Header,
    pub default: bool,
    /// Encoding names (`LATIN1`), as `pg_encoding_to_char` gives them.
    pub from_encoding: String,
    pub to_encoding: String,
    /// The function, as `regproc` prints it (qualified where the search path needs it).
    pub function: String,
}

pub(super) async fn conversions(db: &Db<'_>, catalog: &mut Catalog) -> Result<(), CatalogError> {
    for conversion in get(db).await? {
        catalog.items.push(dump(&conversion));
    }
    Ok(())
}

/// Every user conversion (not an extension's).
pub(super) async fn get(db: &Db<'_>) -> Result<Vec<Conversion>, CatalogError> {
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
    let mut conversions = Vec::new();
    for row in db.query("conversions", &sql).await? {
        conversions.push(Conversion {
            header: Header::of(row.schema_object()?, row.get("owner")?, row.get("comment")?),
            default: row.get("condefault")?,
            from_encoding: row.get("from_encoding")?,
            to_encoding: row.get("to_encoding")?,
            function: row.get("function")?,
        });
    }
    Ok(conversions)
}

/// The item that creates `conversion`.
pub(super) fn dump(conversion: &Conversion) -> Item {
    let Conversion {
        header,
        default,
        from_encoding,
        to_encoding,
        function,
    } = conversion;
    let default = if *default { "DEFAULT " } else { "" };
    let mut sql = Sql::from(format!(
        "CREATE {default}CONVERSION {} FOR {} TO {} FROM {function};\n",
        header.q,
        literal(from_encoding),
        literal(to_encoding),
    ));
    sql.append(header.tail("CONVERSION"));
    Item::new(ItemKind::Conversion, &header.schema, &header.name, sql)
        .owning([oid_ref(class::PG_CONVERSION, header.oid)])
}

#[cfg(test)]
mod tests {
    use super::super::model::tests::header;
    use super::*;

    #[test]
    fn a_default_conversion_with_its_comment() {
        let mut conversion = Conversion {
            header: header("app.latin_to_utf", Some("\"App Owner\"")),
            default: true,
            from_encoding: "LATIN1".into(),
            to_encoding: "UTF8".into(),
            function: "iso8859_1_to_utf8".into(),
        };
        conversion.header.comment = Some("for the import".into());
        assert_eq!(
            dump(&conversion).sql,
            "CREATE DEFAULT CONVERSION app.latin_to_utf FOR 'LATIN1' TO 'UTF8' FROM iso8859_1_to_utf8;\n\
             ALTER CONVERSION app.latin_to_utf OWNER TO \"App Owner\";\n\
             COMMENT ON CONVERSION app.latin_to_utf IS 'for the import';\n"
        );
        conversion.default = false;
        assert!(dump(&conversion).sql.starts_with("CREATE CONVERSION "));
    }
}
