//! Range types (`CREATE TYPE ... AS RANGE`) and, from 14, their multirange types, before the
//! tables that use them. A range with a canonical function needs a shell type first: it is
//! left to the inventory, which names it.

use super::*;

pub(super) async fn ranges(db: &Db<'_>, catalog: &mut Catalog) -> Result<(), CatalogError> {
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
    for row in db.query("range types", &sql).await? {
        if row.get::<bool>("canonical")? {
            continue; // needs a shell type and its function first: named by the inventory
        }
        let SchemaObject {
            oid,
            schema,
            name,
            q,
        } = row.schema_object()?;
        let owner: String = row.get("owner")?;
        let mut owns = vec![oid_ref(class::PG_TYPE, oid)];
        let array: u32 = row.get("typarray")?;
        if array != 0 {
            owns.push(oid_ref(class::PG_TYPE, array));
        }
        let multirange_types: Option<Vec<u32>> = row.get("multirange_types")?;
        owns.extend(
            multirange_types
                .unwrap_or_default()
                .into_iter()
                .filter(|t| *t != 0)
                .map(|t| oid_ref(class::PG_TYPE, t)),
        );
        let mut options = vec![format!("subtype = {}", row.get::<String>("subtype")?)];
        for (label, column) in [
            ("multirange_type_name", "multirange"),
            ("subtype_opclass", "opclass"),
            ("collation", "collation"),
            ("subtype_diff", "subtype_diff"),
        ] {
            if let Some(value) = row.get::<Option<String>>(column)? {
                options.push(format!("{label} = {value}"));
            }
        }
        let mut sql = format!(
            "CREATE TYPE {q} AS RANGE (\n    {}\n);\nALTER TYPE {q} OWNER TO {owner};\n",
            options.join(",\n    ")
        );
        sql.push_str(&comment_sql(&format!("TYPE {q}"), row.get("comment")?));
        let object = oid_ref(class::PG_TYPE, oid);
        catalog
            .items
            .push(Item::new(ItemKind::Type, &schema, &name, sql).owning(owns));
        catalog.items.extend(acl_item(
            &schema,
            &name,
            &format!("TYPE {q}"),
            object,
            &row,
            None,
        )?);
    }
    Ok(())
}
