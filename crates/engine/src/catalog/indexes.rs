//! Indexes that no constraint owns, with their partition attachments.

use std::collections::HashMap;

use super::*;

/// Every index no key constraint owns, read apart from the rest of the catalog. TOAST tables'
/// indexes are left out here, not later: pg_get_indexdef is the query's cost.
pub(super) fn sql() -> String {
    format!(
        "SELECT i.indexrelid, i.indrelid, c.relname::text AS name, quote_ident(c.relname) AS q, \
         pg_get_indexdef(i.indexrelid) AS def, (SELECT amname::text FROM pg_am WHERE oid = c.relam) AS method, i.indisvalid, i.indisclustered, i.indisreplident, c.relkind::text AS kind, \
         (SELECT quote_ident(pn.nspname) || '.' || quote_ident(pc.relname) FROM pg_inherits h \
             JOIN pg_class pc ON pc.oid = h.inhparent JOIN pg_namespace pn ON pn.oid = pc.relnamespace \
             WHERE h.inhrelid = i.indexrelid) AS parent_index, \
         (SELECT h.inhparent FROM pg_inherits h WHERE h.inhrelid = i.indexrelid) AS parent_index_oid, \
         (SELECT description FROM pg_description WHERE objoid = i.indexrelid AND classoid = 'pg_class'::regclass AND objsubid = 0) AS comment, \
         (SELECT string_agg(format('ALTER INDEX %s ALTER COLUMN %s SET STATISTICS %s;', \
             quote_ident(n.nspname) || '.' || quote_ident(c.relname), a.attnum, a.attstattarget), E'\\n') \
          FROM pg_attribute a WHERE a.attrelid = i.indexrelid AND a.attstattarget >= 0) AS statistics \
         FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE i.indexrelid >= 16384 AND {USER_SCHEMA} AND NOT EXISTS (SELECT 1 FROM pg_constraint con WHERE con.conindid = i.indexrelid \
             AND con.conrelid = i.indrelid AND con.contype IN ('p', 'u', 'x')) \
         ORDER BY i.indrelid, c.relname"
    )
}

/// The items of the indexes `rows` ([`sql`]) on the dumped `relations`.
pub(super) fn indexes(
    rows: Vec<Fields>,
    catalog: &mut Catalog,
    relations: &HashMap<u32, Relation>,
) -> Result<(), CatalogError> {
    for row in rows {
        let (oid, table_oid, name, q, def): (u32, u32, String, String, String) = (
            row.get("indexrelid")?,
            row.get("indrelid")?,
            row.get("name")?,
            row.get("q")?,
            row.get("def")?,
        );
        let Some(table) = relations.get(&table_oid) else {
            continue;
        };
        let object = oid_ref(class::PG_CLASS, oid);
        // A partitioned index is invalid until every partition has one attached (an index
        // created ON ONLY): that is its normal state, and pg_dump keeps it too.
        if !row.get::<bool>("indisvalid")? && row.get::<String>("kind")? != "I" {
            catalog.skipped.push((
                object,
                format!(
                    "index {}.{q} is invalid (a failed CREATE INDEX CONCURRENTLY); rebuild it",
                    table.schema
                ),
            ));
            continue;
        }
        let t = &table.qualified_name;
        let qualified = format!("{}.{q}", quote_schema(t));
        if let (Some(parent), Some(parent_oid)) = (
            row.get::<Option<String>>("parent_index")?,
            row.get::<Option<u32>>("parent_index_oid")?,
        ) {
            catalog.items.push(
                Item::new(
                    ItemKind::IndexAttach,
                    &table.schema,
                    &name,
                    format!("ALTER INDEX {parent} ATTACH PARTITION {qualified};\n"),
                )
                .needing([object, oid_ref(class::PG_CLASS, parent_oid)])
                .of_table(t),
            );
        }
        let mut sql = format!("{def};\n");
        if row.get::<bool>("indisclustered")? {
            sql.push_str(&format!("ALTER TABLE {t} CLUSTER ON {q};\n"));
        }
        if row.get::<bool>("indisreplident")? {
            sql.push_str(&format!(
                "ALTER TABLE ONLY {t} REPLICA IDENTITY USING INDEX {q};\n"
            ));
        }
        if let Some(statistics) = row.get::<Option<String>>("statistics")? {
            sql.push_str(&statistics);
            sql.push('\n');
        }
        sql.push_str(&comment_sql(
            &format!("INDEX {qualified}"),
            row.get("comment")?,
        ));
        let mut item = Item::new(ItemKind::Index, &table.schema, &name, sql)
            .owning([object])
            .needing([oid_ref(class::PG_CLASS, table_oid)])
            .of_table(t);
        item.slow_build = slow_method(row.get("method")?);
        catalog.items.push(item);
    }
    Ok(())
}

/// Whether an index of access method `method` builds slowly (GIN, GiST, SP-GiST): restore
/// starts such builds first among a table's.
pub(super) fn slow_method(method: Option<String>) -> bool {
    matches!(method.as_deref(), Some("gin" | "gist" | "spgist"))
}
