//! Range types (`CREATE TYPE ... AS RANGE`) and, from 14, their multirange types, before the
//! tables that use them. A range with a canonical function needs a shell type first: it is
//! left to the inventory, which names it.

use super::model::Header;
use super::*;
use crate::sql::Sql;

/// A range type as the catalog describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Range {
    pub header: Header,
    /// The types it makes besides itself: its array, and from 14 its multirange and that
    /// one's array.
    pub made_types: Vec<u32>,
    pub subtype: String,
    /// The multirange's name (14+), an operator class other than the default, a collation
    /// other than the subtype's, the difference function: each quoted, where there is one.
    pub multirange: Option<String>,
    pub opclass: Option<String>,
    pub collation: Option<String>,
    pub subtype_diff: Option<String>,
}

pub(super) async fn ranges(db: &Db<'_>, catalog: &mut Catalog) -> Result<(), CatalogError> {
    for range in get(db).await? {
        catalog.items.extend(dump(&range));
    }
    Ok(())
}

/// Every user range type (not an extension's) but those with a canonical function.
pub(super) async fn get(db: &Db<'_>) -> Result<Vec<Range>, CatalogError> {
    let (multirange, multirange_array) = if db.version.at_least(14) {
        (
            "(SELECT quote_ident(mn.nspname) || '.' || quote_ident(m.typname) FROM pg_type m \
              JOIN pg_namespace mn ON mn.oid = m.typnamespace WHERE m.oid = r.rngmultitypid)",
            "(SELECT ARRAY[m.oid, m.typarray]::oid[] FROM pg_type m WHERE m.oid = r.rngmultitypid)",
        )
    } else {
        ("NULL::text", "NULL::oid[]")
    };
    let sql = format!(
        "SELECT t.oid, n.nspname::text AS schema, t.typname::text AS name, \
         quote_ident(n.nspname) || '.' || quote_ident(t.typname) AS q, t.typarray, \
         format_type(r.rngsubtype, NULL) AS subtype, \
         CASE WHEN NOT o.opcdefault THEN quote_ident(opn.nspname) || '.' || quote_ident(o.opcname) END AS opclass, \
         CASE WHEN r.rngcollation <> 0 AND r.rngcollation <> st.typcollation \
             THEN quote_ident(cn.nspname) || '.' || quote_ident(co.collname) END AS collation, \
         r.rngcanonical <> 0 AS canonical, NULLIF(r.rngsubdiff, 0)::regproc::text AS subtype_diff, \
         {multirange} AS multirange, {multirange_array} AS multirange_types, \
         quote_ident(pg_get_userbyid(t.typowner)) AS owner, (SELECT description FROM pg_description WHERE objoid = t.oid AND classoid = 'pg_type'::regclass AND objsubid = 0) AS comment, \
         {} \
         FROM pg_type t JOIN pg_range r ON r.rngtypid = t.oid JOIN pg_namespace n ON n.oid = t.typnamespace \
         JOIN pg_type st ON st.oid = r.rngsubtype \
         JOIN pg_opclass o ON o.oid = r.rngsubopc JOIN pg_namespace opn ON opn.oid = o.opcnamespace \
         LEFT JOIN pg_collation co ON co.oid = r.rngcollation LEFT JOIN pg_namespace cn ON cn.oid = co.collnamespace \
         WHERE t.typtype = 'r' AND t.oid >= 16384 AND {USER_SCHEMA} AND {} ORDER BY t.oid",
        acl_columns("t.typacl", "t.typowner", 'T'),
        not_in_extension("pg_type", "t.oid")
    );
    let mut ranges = Vec::new();
    for row in db.query("range types", &sql).await? {
        if row.get::<bool>("canonical")? {
            continue; // needs a shell type and its function first: named by the inventory
        }
        let mut made_types = vec![row.get::<u32>("typarray")?];
        made_types.extend(
            row.get::<Option<Vec<u32>>>("multirange_types")?
                .unwrap_or_default(),
        );
        made_types.retain(|t| *t != 0);
        let header = Header::of(row.schema_object()?, row.get("owner")?, row.get("comment")?);
        ranges.push(Range {
            header: header.with_acl(&row)?,
            made_types,
            subtype: row.get("subtype")?,
            multirange: row.get("multirange")?,
            opclass: row.get("opclass")?,
            collation: row.get("collation")?,
            subtype_diff: row.get("subtype_diff")?,
        });
    }
    Ok(ranges)
}

/// The items that create `range` (with the types it makes) and grant on it.
pub(super) fn dump(range: &Range) -> Vec<Item> {
    let header = &range.header;
    let mut options = vec![format!("subtype = {}", range.subtype)];
    for (label, value) in [
        ("multirange_type_name", &range.multirange),
        ("subtype_opclass", &range.opclass),
        ("collation", &range.collation),
        ("subtype_diff", &range.subtype_diff),
    ] {
        if let Some(value) = value {
            options.push(format!("{label} = {value}"));
        }
    }
    let mut sql = Sql::from(format!(
        "CREATE TYPE {} AS RANGE (\n    {}\n);\n",
        header.q,
        options.join(",\n    ")
    ));
    sql.append(header.tail("TYPE"));
    let object = oid_ref(class::PG_TYPE, header.oid);
    let owns =
        std::iter::once(object).chain(range.made_types.iter().map(|t| oid_ref(class::PG_TYPE, *t)));
    let mut items = vec![Item::new(ItemKind::Type, &header.schema, &header.name, sql).owning(owns)];
    items.extend(header.acl_item("TYPE", object));
    items
}

#[cfg(test)]
mod tests {
    use super::super::model::tests::header;
    use super::*;

    #[test]
    fn a_range_with_its_multirange_and_options() {
        let range = Range {
            header: header("app.floatrange", Some("app")),
            made_types: vec![16_401, 16_402, 16_403],
            subtype: "double precision".into(),
            multirange: Some("app.floatmultirange".into()),
            opclass: None,
            collation: None,
            subtype_diff: Some("float8mi".into()),
        };
        let items = dump(&range);
        assert_eq!(
            items[0].sql,
            "CREATE TYPE app.floatrange AS RANGE (\n    subtype = double precision,\n    \
             multirange_type_name = app.floatmultirange,\n    subtype_diff = float8mi\n);\n\
             ALTER TYPE app.floatrange OWNER TO app;\n"
        );
        assert_eq!(
            items[0].owns.len(),
            4,
            "the range, its array, its multirange and that one's array"
        );
        assert_eq!(items.len(), 1);
    }
}
