//! Transforms (`CREATE TRANSFORM FOR type LANGUAGE lang`), as pg_dump's `dumpTransform`:
//! the functions that carry a type into and out of a procedural language.

use super::model::Header;
use super::*;
use crate::sql::Sql;

/// A transform as the catalog describes it: `q` is `FOR type LANGUAGE lang`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transform {
    pub header: Header,
    /// The functions, as `regprocedure` prints them; either may be missing.
    pub from_sql: Option<String>,
    pub to_sql: Option<String>,
}

pub(super) async fn transforms(db: &Db<'_>, catalog: &mut Catalog) -> Result<(), CatalogError> {
    for transform in get(db).await? {
        catalog.items.push(dump(&transform));
    }
    Ok(())
}

/// Every user transform (not an extension's).
pub(super) async fn get(db: &Db<'_>) -> Result<Vec<Transform>, CatalogError> {
    let sql = format!(
        "SELECT t.oid, 'FOR ' || format_type(t.trftype, NULL) || ' LANGUAGE ' || quote_ident(l.lanname) AS q, \
         NULLIF(t.trffromsql, 0)::regprocedure::text AS from_sql, NULLIF(t.trftosql, 0)::regprocedure::text AS to_sql, \
         (SELECT description FROM pg_description WHERE objoid = t.oid AND classoid = 'pg_transform'::regclass AND objsubid = 0) AS comment \
         FROM pg_transform t JOIN pg_language l ON l.oid = t.trflang \
         WHERE t.oid >= 16384 AND {} ORDER BY t.oid",
        not_in_extension("pg_transform", "t.oid")
    );
    let mut transforms = Vec::new();
    for row in db.query("transforms", &sql).await? {
        let q: String = row.get("q")?;
        transforms.push(Transform {
            header: Header {
                oid: row.get("oid")?,
                schema: String::new(),
                name: q.clone(),
                q,
                owner: None,
                comment: row.get("comment")?,
                ..Header::default()
            },
            from_sql: row.get("from_sql")?,
            to_sql: row.get("to_sql")?,
        });
    }
    Ok(transforms)
}

/// The item that creates `transform`.
pub(super) fn dump(transform: &Transform) -> Item {
    let header = &transform.header;
    let ways: Vec<String> = [
        transform
            .from_sql
            .as_ref()
            .map(|f| format!("FROM SQL WITH FUNCTION {f}")),
        transform
            .to_sql
            .as_ref()
            .map(|f| format!("TO SQL WITH FUNCTION {f}")),
    ]
    .into_iter()
    .flatten()
    .collect();
    let mut sql = Sql::from(format!(
        "CREATE TRANSFORM {} ({});\n",
        header.q,
        ways.join(", ")
    ));
    sql.append(header.tail("TRANSFORM"));
    Item::new(ItemKind::Transform, "", &header.name, sql)
        .owning([oid_ref(class::PG_TRANSFORM, header.oid)])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_ways_or_one() {
        let mut transform = Transform {
            header: Header {
                oid: 16_500,
                schema: String::new(),
                name: "FOR hstore LANGUAGE plpython3u".into(),
                q: "FOR hstore LANGUAGE plpython3u".into(),
                owner: None,
                comment: None,
                ..Header::default()
            },
            from_sql: Some("hstore_to_plpython(internal)".into()),
            to_sql: Some("plpython_to_hstore(internal)".into()),
        };
        assert_eq!(
            dump(&transform).sql,
            "CREATE TRANSFORM FOR hstore LANGUAGE plpython3u (FROM SQL WITH FUNCTION hstore_to_plpython(internal), \
             TO SQL WITH FUNCTION plpython_to_hstore(internal));\n"
        );
        transform.from_sql = None;
        assert_eq!(
            dump(&transform).sql,
            "CREATE TRANSFORM FOR hstore LANGUAGE plpython3u (TO SQL WITH FUNCTION plpython_to_hstore(internal));\n"
        );
    }
}
