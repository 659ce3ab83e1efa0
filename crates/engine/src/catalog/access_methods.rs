//! Access methods (`CREATE ACCESS METHOD ... TYPE TABLE | INDEX HANDLER`), as pg_dump's
//! `dumpAccessMethod`: a table or index that uses one depends on it, so it is created first.

use super::model::Header;
use super::*;
use crate::sql::Sql;

/// An access method as the catalog describes it (no schema, no owner).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessMethod {
    pub header: Header,
    pub kind: AccessMethodKind,
    /// The handler function, as `regproc` prints it.
    pub handler: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccessMethodKind {
    Table,
    Index,
}

pub(super) async fn access_methods(db: &Db<'_>, catalog: &mut Catalog) -> Result<(), CatalogError> {
    for method in get(db).await? {
        catalog.items.push(dump(&method));
    }
    Ok(())
}

/// Every user access method (not an extension's). A kind this engine does not know is left
/// out here, for the inventory to name.
pub(super) async fn get(db: &Db<'_>) -> Result<Vec<AccessMethod>, CatalogError> {
    let sql = format!(
        "SELECT a.oid, a.amname::text AS name, quote_ident(a.amname) AS q, a.amtype::text AS kind, \
         a.amhandler::regproc::text AS handler, (SELECT description FROM pg_description WHERE objoid = a.oid AND classoid = 'pg_am'::regclass AND objsubid = 0) AS comment \
         FROM pg_am a WHERE a.oid >= 16384 AND {} ORDER BY a.amname",
        not_in_extension("pg_am", "a.oid")
    );
    let mut methods = Vec::new();
    for row in db.query("access methods", &sql).await? {
        let kind = match row.get::<String>("kind")?.as_str() {
            "t" => AccessMethodKind::Table,
            "i" => AccessMethodKind::Index,
            _ => continue,
        };
        methods.push(AccessMethod {
            header: Header::bare(&row)?,
            kind,
            handler: row.get("handler")?,
        });
    }
    Ok(methods)
}

/// The item that creates `method`.
pub(super) fn dump(method: &AccessMethod) -> Item {
    let header = &method.header;
    let kind = match method.kind {
        AccessMethodKind::Table => "TABLE",
        AccessMethodKind::Index => "INDEX",
    };
    let mut sql = Sql::from(format!(
        "CREATE ACCESS METHOD {} TYPE {kind} HANDLER {};\n",
        header.q, method.handler
    ));
    sql.append(header.tail("ACCESS METHOD"));
    Item::new(ItemKind::AccessMethod, "", &header.name, sql)
        .owning([oid_ref(class::PG_AM, header.oid)])
}

#[cfg(test)]
mod tests {
    use super::super::model::tests::header;
    use super::*;

    #[test]
    fn a_table_and_an_index_access_method() {
        let mut method = AccessMethod {
            header: header("heap2", None),
            kind: AccessMethodKind::Table,
            handler: "heap_tableam_handler".into(),
        };
        assert_eq!(
            dump(&method).sql,
            "CREATE ACCESS METHOD heap2 TYPE TABLE HANDLER heap_tableam_handler;\n"
        );
        method.kind = AccessMethodKind::Index;
        method.handler = "bthandler".into();
        method.header.comment = Some("a btree".into());
        assert_eq!(
            dump(&method).sql,
            "CREATE ACCESS METHOD heap2 TYPE INDEX HANDLER bthandler;\n\
             COMMENT ON ACCESS METHOD heap2 IS 'a btree';\n"
        );
    }
}
