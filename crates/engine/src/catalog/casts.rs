//! Casts (`CREATE CAST`), as pg_dump's `dumpCast`: by a function, by I/O conversion
//! (`WITH INOUT`) or binary-coercible (`WITHOUT FUNCTION`), in the context they apply in.
//! The casts a range type makes to its multirange are part of the range (`CREATE TYPE`).

use super::model::Header;
use super::*;
use crate::sql::Sql;

/// A cast as the catalog describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cast {
    /// `q` is `(source AS target)`; a cast has no schema and no owner.
    pub header: Header,
    pub method: CastMethod,
    pub context: CastContext,
}

/// How a cast converts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CastMethod {
    /// By a function, as `regprocedure` prints it.
    Function(String),
    Inout,
    Binary,
}

/// Where a cast applies without being asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CastContext {
    Explicit,
    Assignment,
    Implicit,
}

pub(super) async fn casts(db: &Db<'_>, catalog: &mut Catalog) -> Result<(), CatalogError> {
    for cast in get(db).await? {
        catalog.items.push(dump(&cast));
    }
    Ok(())
}

/// Every user cast (not an extension's, nor one a type made for itself). A method this engine
/// does not know is left out here, for the inventory to name.
pub(super) async fn get(db: &Db<'_>) -> Result<Vec<Cast>, CatalogError> {
    let sql = format!(
        "SELECT c.oid, '(' || format_type(c.castsource, NULL) || ' AS ' || format_type(c.casttarget, NULL) || ')' AS q, \
         c.castmethod::text AS method, c.castcontext::text AS context, \
         NULLIF(c.castfunc, 0)::regprocedure::text AS function, (SELECT description FROM pg_description WHERE objoid = c.oid AND classoid = 'pg_cast'::regclass AND objsubid = 0) AS comment \
         FROM pg_cast c WHERE c.oid >= 16384 AND {} \
         AND NOT EXISTS (SELECT 1 FROM pg_depend i WHERE i.classid = 'pg_cast'::regclass \
             AND i.objid = c.oid AND i.deptype = 'i') ORDER BY c.oid",
        not_in_extension("pg_cast", "c.oid")
    );
    let mut casts = Vec::new();
    for row in db.query("casts", &sql).await? {
        let q: String = row.get("q")?;
        let method = match (
            row.get::<String>("method")?.as_str(),
            row.get::<Option<String>>("function")?,
        ) {
            ("f", Some(function)) => CastMethod::Function(function),
            ("i", _) => CastMethod::Inout,
            ("b", _) => CastMethod::Binary,
            _ => continue,
        };
        let context = match row.get::<String>("context")?.as_str() {
            "a" => CastContext::Assignment,
            "i" => CastContext::Implicit,
            _ => CastContext::Explicit,
        };
        casts.push(Cast {
            header: Header {
                oid: row.get("oid")?,
                schema: String::new(),
                name: q.clone(),
                q,
                owner: None,
                comment: row.get("comment")?,
                ..Header::default()
            },
            method,
            context,
        });
    }
    Ok(casts)
}

/// The item that creates `cast`.
pub(super) fn dump(cast: &Cast) -> Item {
    let how = match &cast.method {
        CastMethod::Function(function) => format!("WITH FUNCTION {function}"),
        CastMethod::Inout => "WITH INOUT".to_string(),
        CastMethod::Binary => "WITHOUT FUNCTION".to_string(),
    };
    let context = match cast.context {
        CastContext::Assignment => " AS ASSIGNMENT",
        CastContext::Implicit => " AS IMPLICIT",
        CastContext::Explicit => "",
    };
    let header = &cast.header;
    let mut sql = Sql::from(format!("CREATE CAST {} {how}{context};\n", header.q));
    sql.append(header.tail("CAST"));
    Item::new(ItemKind::Cast, "", &header.name, sql).owning([oid_ref(class::PG_CAST, header.oid)])
}

#[cfg(test)]
mod tests {
    use super::super::model::tests::header;
    use super::*;

    #[test]
    fn each_method_and_context() {
        let cast = |method, context| Cast {
            header: header("(app.money AS numeric)", None),
            method,
            context,
        };
        assert_eq!(
            dump(&cast(
                CastMethod::Function("app.to_numeric(app.money)".into()),
                CastContext::Implicit
            ))
            .sql,
            "CREATE CAST (app.money AS numeric) WITH FUNCTION app.to_numeric(app.money) AS IMPLICIT;\n"
        );
        assert_eq!(
            dump(&cast(CastMethod::Inout, CastContext::Assignment)).sql,
            "CREATE CAST (app.money AS numeric) WITH INOUT AS ASSIGNMENT;\n"
        );
        let mut binary = cast(CastMethod::Binary, CastContext::Explicit);
        binary.header.comment = Some("same bits".into());
        let item = dump(&binary);
        assert_eq!(
            item.sql,
            "CREATE CAST (app.money AS numeric) WITHOUT FUNCTION;\n\
             COMMENT ON CAST (app.money AS numeric) IS 'same bits';\n"
        );
        assert_eq!(item.schema, "");
    }
}
