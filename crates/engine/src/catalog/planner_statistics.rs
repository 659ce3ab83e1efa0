//! The planner's statistics of every dumped table, partition, materialized view, foreign table
//! and index: the relation's (`pg_class.relpages`, `reltuples`, `relallvisible`, and
//! `relallfrozen` from 18) and its columns' as `pg_stats` shows them, read in the backup's
//! snapshot. Each relation's become one item of `pg_restore_relation_stats` and
//! `pg_restore_attribute_stats` calls, as pg_dump 18 writes them with `--statistics`, which a
//! restore onto PostgreSQL 18 or later applies last, so the restored database plans like the
//! source before any ANALYZE.
//!
//! `pg_stats` shows a table's columns only to a role that may read the table: for a table the
//! backup role may not read, the item is an ANALYZE of it instead, run by the restore.

use std::collections::{HashMap, HashSet};

use super::*;

/// A relation's own statistics, as text the server printed (so a `real` keeps its digits).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelationStatistics {
    pub oid: u32,
    pub schema: String,
    pub name: String,
    /// The table it belongs to: itself, or an index's table.
    pub table_oid: u32,
    pub relpages: String,
    pub reltuples: String,
    pub relallvisible: String,
    /// From PostgreSQL 18.
    pub relallfrozen: Option<String>,
    /// Whether the backup role may read the table, and so its columns' statistics.
    pub readable: bool,
}

/// One column's statistics (one `pg_stats` row).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnStatistics {
    pub relation_oid: u32,
    /// The column's name, for a table; an index's expression columns go by number.
    pub column: Column,
    /// Statistics over an inheritance tree (a parent's), not the table alone.
    pub inherited: bool,
    /// The non-null values, in `pg_restore_attribute_stats`'s argument order: (argument,
    /// value as text, SQL type).
    pub values: Vec<(&'static str, String, &'static str)>,
}

/// How a column is named to `pg_restore_attribute_stats`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Column {
    Name(String),
    Number(i16),
}

/// The `pg_stats` columns carried, in pg_dump's order, with their types; the last three from
/// PostgreSQL 17 (before, a range column's histograms are not shown there).
const ATTRIBUTE_VALUES: [(&str, &str); 13] = [
    ("null_frac", "real"),
    ("avg_width", "integer"),
    ("n_distinct", "real"),
    ("most_common_vals", "text"),
    ("most_common_freqs", "real[]"),
    ("histogram_bounds", "text"),
    ("correlation", "real"),
    ("most_common_elems", "text"),
    ("most_common_elem_freqs", "real[]"),
    ("elem_count_histogram", "real[]"),
    ("range_length_histogram", "text"),
    ("range_empty_frac", "real"),
    ("range_bounds_histogram", "text"),
];

/// Adds the statistics items of every relation a catalog item creates.
pub(super) async fn planner_statistics(
    db: &Db<'_>,
    catalog: &mut Catalog,
    relations: &HashMap<u32, Relation>,
) -> Result<(), CatalogError> {
    let dumped: HashSet<u32> = catalog
        .items
        .iter()
        .flat_map(|i| i.owns.iter())
        .filter(|o| o.class == class::PG_CLASS)
        .map(|o| o.oid)
        .collect();
    let relation_rows: Vec<RelationStatistics> = get_relations(db)
        .await?
        .into_iter()
        .filter(|r| dumped.contains(&r.oid) && relations.contains_key(&r.table_oid))
        .collect();
    let mut columns: HashMap<u32, Vec<ColumnStatistics>> = HashMap::new();
    for column in get_columns(db).await? {
        columns.entry(column.relation_oid).or_default().push(column);
    }
    let version = db.version.0;
    for relation in &relation_rows {
        let table = &relations[&relation.table_oid];
        let own = columns.remove(&relation.oid).unwrap_or_default();
        if let Some(item) = dump(relation, &own, table, version) {
            catalog.items.push(item);
        }
    }
    Ok(())
}

/// Every user table, partitioned table, materialized view, foreign table and valid index.
pub(super) async fn get_relations(db: &Db<'_>) -> Result<Vec<RelationStatistics>, CatalogError> {
    let relallfrozen = if db.version.major() >= 18 {
        "c.relallfrozen::text"
    } else {
        "NULL::text"
    };
    let sql = format!(
        "SELECT c.oid, n.nspname::text AS schema, c.relname::text AS name, \
         coalesce(i.indrelid, c.oid) AS table_oid, c.relpages::text AS relpages, \
         c.reltuples::text AS reltuples, c.relallvisible::text AS relallvisible, \
         {relallfrozen} AS relallfrozen, \
         has_table_privilege(coalesce(i.indrelid, c.oid), 'SELECT') AS readable \
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
         LEFT JOIN pg_index i ON i.indexrelid = c.oid \
         WHERE c.relkind IN ('r', 'p', 'm', 'f', 'i', 'I') AND c.oid >= 16384 AND {USER_SCHEMA} \
         AND coalesce(i.indisvalid, true) ORDER BY c.oid"
    );
    let mut all = Vec::new();
    for row in db.query("relation statistics", &sql).await? {
        all.push(RelationStatistics {
            oid: row.get("oid")?,
            schema: row.get("schema")?,
            name: row.get("name")?,
            table_oid: row.get("table_oid")?,
            relpages: row.get("relpages")?,
            reltuples: row.get("reltuples")?,
            relallvisible: row.get("relallvisible")?,
            relallfrozen: row.get("relallfrozen")?,
            readable: row.get("readable")?,
        });
    }
    Ok(all)
}

/// Every `pg_stats` row of a user relation the backup role may read.
pub(super) async fn get_columns(db: &Db<'_>) -> Result<Vec<ColumnStatistics>, CatalogError> {
    let carried: Vec<&(&str, &str)> = ATTRIBUTE_VALUES
        .iter()
        .filter(|(name, _)| db.version.major() >= 17 || !name.starts_with("range_"))
        .collect();
    let values: String = carried
        .iter()
        .map(|(name, _)| format!(", s.{name}::text AS {name}"))
        .collect();
    let sql = format!(
        "SELECT c.oid AS relation, s.attname::text AS attname, \
         CASE WHEN c.relkind IN ('i', 'I') THEN a.attnum END AS attnum, s.inherited{values} \
         FROM pg_stats s JOIN pg_namespace n ON n.nspname = s.schemaname \
         JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = s.tablename \
         JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = s.attname \
         WHERE c.oid >= 16384 AND {USER_SCHEMA} ORDER BY c.oid, s.attname, s.inherited"
    );
    let mut all = Vec::new();
    for row in db.query("column statistics", &sql).await? {
        let attnum: Option<i16> = row.get("attnum")?;
        let mut values = Vec::new();
        for (name, sql_type) in &carried {
            if let Some(value) = row.get::<Option<String>>(name)? {
                values.push((*name, value, *sql_type));
            }
        }
        all.push(ColumnStatistics {
            relation_oid: row.get("relation")?,
            column: match attnum {
                Some(number) => Column::Number(number),
                None => Column::Name(row.get("attname")?),
            },
            inherited: row.get("inherited")?,
            values,
        });
    }
    Ok(all)
}

/// The item that gives the restored `relation` the source's statistics, or, when the backup
/// role could not read its table, that ANALYZEs the table (an index's needs nothing then: its
/// table's ANALYZE covers it). `version` is the source's `server_version_num`.
pub(super) fn dump(
    relation: &RelationStatistics,
    columns: &[ColumnStatistics],
    table: &Relation,
    version: u32,
) -> Option<Item> {
    let needs = [oid_ref(class::PG_CLASS, relation.oid)];
    if !relation.readable {
        if relation.oid != relation.table_oid {
            return None;
        }
        let sql = format!("ANALYZE {};\n", table.qualified_name);
        return Some(
            Item::new(ItemKind::Analyze, &relation.schema, &relation.name, sql)
                .needing(needs)
                .of_table(&table.qualified_name),
        );
    }
    let head = |function: &str| {
        format!(
            "SELECT * FROM pg_catalog.{function}(\n\t'version', '{version}'::integer,\n\t\
             'schemaname', {},\n\t'relname', {},\n",
            literal(&relation.schema),
            literal(&relation.name)
        )
    };
    let argument = |name: &str, value: &str, sql_type: &str| {
        format!("\t'{name}', {}::{sql_type}", literal(value))
    };
    let mut sql = head("pg_restore_relation_stats");
    let mut arguments = vec![
        argument("relpages", &relation.relpages, "integer"),
        argument("reltuples", &relation.reltuples, "real"),
        argument("relallvisible", &relation.relallvisible, "integer"),
    ];
    if let Some(relallfrozen) = &relation.relallfrozen {
        arguments.push(argument("relallfrozen", relallfrozen, "integer"));
    }
    sql.push_str(&arguments.join(",\n"));
    sql.push_str("\n);\n");
    for column in columns {
        sql.push_str(&head("pg_restore_attribute_stats"));
        let mut arguments = vec![
            match &column.column {
                Column::Name(name) => format!("\t'attname', {}", literal(name)),
                Column::Number(number) => format!("\t'attnum', '{number}'::smallint"),
            },
            format!(
                "\t'inherited', '{}'::boolean",
                if column.inherited { 't' } else { 'f' }
            ),
        ];
        arguments.extend(
            column
                .values
                .iter()
                .map(|(name, value, sql_type)| argument(name, value, sql_type)),
        );
        sql.push_str(&arguments.join(",\n"));
        sql.push_str("\n);\n");
    }
    Some(
        Item::new(
            ItemKind::StatisticsData,
            &relation.schema,
            &relation.name,
            sql,
        )
        .needing(needs)
        .of_table(&table.qualified_name),
    )
}

#[cfg(test)]
mod tests {
    use super::super::model::tests::relation as table;
    use super::*;

    fn relation(readable: bool) -> RelationStatistics {
        RelationStatistics {
            oid: 16_390,
            schema: "app".into(),
            name: "orders".into(),
            table_oid: 16_390,
            relpages: "304".into(),
            reltuples: "20000".into(),
            relallvisible: "304".into(),
            relallfrozen: None,
            readable,
        }
    }

    #[test]
    fn relation_and_column_statistics_are_written_as_pg_dump_writes_them() {
        let columns = [ColumnStatistics {
            relation_oid: 16_390,
            column: Column::Name("note".into()),
            inherited: false,
            values: vec![
                ("null_frac", "0".into(), "real"),
                ("most_common_vals", "{it's,\"a\\\\b\"}".into(), "text"),
                ("most_common_freqs", "{0.5,0.25}".into(), "real[]"),
            ],
        }];
        let item = dump(&relation(true), &columns, &table("orders"), 150_004).unwrap();
        assert_eq!(item.kind, ItemKind::StatisticsData);
        assert_eq!(
            item.sql,
            "SELECT * FROM pg_catalog.pg_restore_relation_stats(\n\
             \t'version', '150004'::integer,\n\
             \t'schemaname', 'app',\n\
             \t'relname', 'orders',\n\
             \t'relpages', '304'::integer,\n\
             \t'reltuples', '20000'::real,\n\
             \t'relallvisible', '304'::integer\n);\n\
             SELECT * FROM pg_catalog.pg_restore_attribute_stats(\n\
             \t'version', '150004'::integer,\n\
             \t'schemaname', 'app',\n\
             \t'relname', 'orders',\n\
             \t'attname', 'note',\n\
             \t'inherited', 'f'::boolean,\n\
             \t'null_frac', '0'::real,\n\
             \t'most_common_vals', E'{it''s,\"a\\\\\\\\b\"}'::text,\n\
             \t'most_common_freqs', '{0.5,0.25}'::real[]\n);\n"
        );
        assert_eq!(item.needs, [oid_ref(class::PG_CLASS, 16_390)]);
        assert_eq!(item.table.as_deref(), Some("app.orders"));
    }

    #[test]
    fn an_index_column_goes_by_number_and_relallfrozen_from_18() {
        let mut index = relation(true);
        index.oid = 16_400;
        index.name = "orders_lower".into();
        index.relallfrozen = Some("0".into());
        let columns = [ColumnStatistics {
            relation_oid: 16_400,
            column: Column::Number(1),
            inherited: false,
            values: vec![("n_distinct", "50".into(), "real")],
        }];
        let item = dump(&index, &columns, &table("orders"), 180_004).unwrap();
        assert!(item.sql.contains("\t'relallfrozen', '0'::integer\n);"));
        assert!(item.sql.contains("\t'attnum', '1'::smallint,\n"));
        assert!(item.sql.contains("'relname', 'orders_lower'"));
    }

    #[test]
    fn a_table_the_backup_role_cannot_read_is_analyzed_instead() {
        let item = dump(&relation(false), &[], &table("orders"), 170_000).unwrap();
        assert_eq!(item.kind, ItemKind::Analyze);
        assert_eq!(item.sql, "ANALYZE app.orders;\n");
        let mut index = relation(false);
        index.oid = 16_400;
        assert!(dump(&index, &[], &table("orders"), 170_000).is_none());
    }
}
