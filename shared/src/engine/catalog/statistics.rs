//! Extended statistics (`CREATE STATISTICS`), with their statistics targets, built after the
//! data as pg_dump does.

use std::collections::HashMap;

use super::*;

pub(super) async fn statistics(
    db: &Db<'_>,
    catalog: &mut Catalog,
    relations: &HashMap<u32, Relation>,
) -> Result<(), CatalogError> {
    // stxstattarget: int4 (-1 = default) before 17, nullable int2 (NULL = default) from 17.
    let sql = format!(
        "SELECT s.oid, s.stxrelid, n.nspname::text AS schema, s.stxname::text AS name, \
         quote_ident(n.nspname) || '.' || quote_ident(s.stxname) AS q, pg_get_statisticsobjdef(s.oid) AS def, \
         coalesce(s.stxstattarget::int4, -1) AS target, quote_ident(pg_get_userbyid(s.stxowner)) AS owner, \
         (SELECT description FROM pg_description WHERE objoid = s.oid AND classoid = 'pg_statistic_ext'::regclass AND objsubid = 0) AS comment \
         FROM pg_statistic_ext s JOIN pg_namespace n ON n.oid = s.stxnamespace \
         WHERE s.oid >= 16384 AND {USER_SCHEMA} AND {} ORDER BY s.oid",
        not_in_extension("pg_statistic_ext", "s.oid")
    );
    for row in db.query("extended statistics", &sql).await? {
        let table_oid: u32 = row.get("stxrelid")?;
        let Some(table) = relations.get(&table_oid) else {
            continue;
        };
        let SchemaObject {
            oid,
            schema,
            name,
            q,
        } = row.schema_object()?;
        let def: String = row.get("def")?;
        let owner: String = row.get("owner")?;
        let mut sql = format!("{def};\n");
        let target: i32 = row.get("target")?;
        if target >= 0 {
            sql.push_str(&format!("ALTER STATISTICS {q} SET STATISTICS {target};\n"));
        }
        sql.push_str(&format!("ALTER STATISTICS {q} OWNER TO {owner};\n"));
        sql.push_str(&comment_sql(
            &format!("STATISTICS {q}"),
            row.get("comment")?,
        ));
        catalog.items.push(
            Item::new(ItemKind::Statistics, &schema, &name, sql)
                .owning([oid_ref(class::PG_STATISTIC_EXT, oid)])
                .needing([oid_ref(class::PG_CLASS, table_oid)])
                .of_table(&table.qualified_name),
        );
    }
    Ok(())
}
