//! Extended statistics (`CREATE STATISTICS`), with their statistics targets, built after the
//! data as pg_dump does.

use std::collections::HashMap;

use super::model::Header;
use super::*;
use crate::sql::Sql;

/// Extended statistics on a table, as the catalog describes them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statistics {
    pub header: Header,
    pub table_oid: u32,
    /// `CREATE STATISTICS …` as `pg_get_statisticsobjdef` writes it.
    pub definition: String,
    /// The statistics target; `None` for the default (-1 before 17, NULL from 17).
    pub target: Option<i32>,
}

pub(super) async fn statistics(
    db: &Db<'_>,
    catalog: &mut Catalog,
    relations: &HashMap<u32, Relation>,
) -> Result<(), CatalogError> {
    for statistics in get(db).await? {
        if let Some(table) = relations.get(&statistics.table_oid) {
            catalog.items.push(dump(&statistics, table));
        }
    }
    Ok(())
}

/// Every user statistics object (not an extension's).
pub(super) async fn get(db: &Db<'_>) -> Result<Vec<Statistics>, CatalogError> {
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
    let mut all = Vec::new();
    for row in db.query("extended statistics", &sql).await? {
        let target: i32 = row.get("target")?;
        all.push(Statistics {
            header: Header::of(row.schema_object()?, row.get("owner")?, row.get("comment")?),
            table_oid: row.get("stxrelid")?,
            definition: row.get("def")?,
            target: (target >= 0).then_some(target),
        });
    }
    Ok(all)
}

/// The item that creates `statistics` on `table`, needing it.
pub(super) fn dump(statistics: &Statistics, table: &Relation) -> Item {
    let header = &statistics.header;
    let mut sql = Sql::from(format!("{};\n", statistics.definition));
    if let Some(target) = statistics.target {
        sql.push_str(&format!(
            "ALTER STATISTICS {} SET STATISTICS {target};\n",
            header.q
        ));
    }
    sql.append(header.tail("STATISTICS"));
    Item::new(ItemKind::Statistics, &header.schema, &header.name, sql)
        .owning([oid_ref(class::PG_STATISTIC_EXT, header.oid)])
        .needing([oid_ref(class::PG_CLASS, statistics.table_oid)])
        .of_table(&table.qualified_name)
}

#[cfg(test)]
mod tests {
    use super::super::model::tests::{header, relation};
    use super::*;

    #[test]
    fn a_target_when_it_is_not_the_default() {
        let table = relation("orders");
        let mut statistics = Statistics {
            header: header("app.orders_deps", Some("app")),
            table_oid: 16_390,
            definition: "CREATE STATISTICS app.orders_deps (dependencies) ON a, b FROM app.orders"
                .into(),
            target: Some(500),
        };
        let item = dump(&statistics, &table);
        assert_eq!(
            item.sql,
            "CREATE STATISTICS app.orders_deps (dependencies) ON a, b FROM app.orders;\n\
             ALTER STATISTICS app.orders_deps SET STATISTICS 500;\n\
             ALTER STATISTICS app.orders_deps OWNER TO app;\n"
        );
        assert_eq!(item.table.as_deref(), Some("app.orders"));
        assert_eq!(item.needs, [oid_ref(class::PG_CLASS, 16_390)]);
        statistics.target = None;
        assert!(!dump(&statistics, &table).sql.contains("SET STATISTICS"));
    }
}
