//! Indexes that no constraint owns, with their partition attachments. They are read apart from
//! the rest of the catalog (`read_apart`), on a second session.

use std::collections::HashMap;

use super::model::{Header, ParentIndex};
use super::*;
use crate::sql::Sql;

/// An index as the catalog describes it (`header.q` is its bare name, in its table's schema).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Index {
    pub header: Header,
    pub table_oid: u32,
    /// `CREATE INDEX …` as `pg_get_indexdef` writes it.
    pub definition: String,
    /// Its access method.
    pub method: Option<String>,
    /// `false` for an index a failed `CREATE INDEX CONCURRENTLY` left, and for a partitioned
    /// index not attached on every partition yet.
    pub valid: bool,
    /// A partitioned table's index (`relkind` `I`).
    pub partitioned: bool,
    pub clustered: bool,
    pub replica_identity: bool,
    /// The partitioned table's index this one is attached to.
    pub parent: Option<ParentIndex>,
    /// `ALTER INDEX … ALTER COLUMN … SET STATISTICS …;` for each column with a target of its
    /// own, one a line, as the query writes them.
    pub statistics: Option<String>,
}

/// Every index no key constraint owns, read apart from the rest of the catalog. TOAST tables'
/// indexes are left out here, not later: pg_get_indexdef is the query's cost.
fn sql() -> String {
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

/// Every user index no key constraint owns.
pub(super) async fn get(db: &Db<'_>) -> Result<Vec<Index>, CatalogError> {
    let mut indexes = Vec::new();
    for row in db.query("indexes", &sql()).await? {
        indexes.push(Index {
            header: Header {
                oid: row.get("indexrelid")?,
                name: row.get("name")?,
                q: row.get("q")?,
                comment: row.get("comment")?,
                ..Header::default()
            },
            table_oid: row.get("indrelid")?,
            definition: row.get("def")?,
            method: row.get("method")?,
            valid: row.get("indisvalid")?,
            partitioned: row.get::<String>("kind")? == "I",
            clustered: row.get("indisclustered")?,
            replica_identity: row.get("indisreplident")?,
            parent: ParentIndex::of(&row)?,
            statistics: row.get("statistics")?,
        });
    }
    Ok(indexes)
}

pub(super) fn indexes(
    indexes: &[Index],
    catalog: &mut Catalog,
    relations: &HashMap<u32, Relation>,
) {
    for index in indexes {
        let Some(table) = relations.get(&index.table_oid) else {
            continue;
        };
        match left_out(index, table) {
            Some(skipped) => catalog.skipped.push(skipped),
            None => catalog.items.extend(dump(index, table)),
        }
    }
}

/// Why `index` on `table` is left out, with the object it is; `None` when it is dumped. A
/// partitioned index is invalid until every partition has one attached (an index created ON
/// ONLY): that is its normal state, and pg_dump keeps it too.
pub(super) fn left_out(index: &Index, table: &Relation) -> Option<(ObjectRef, String)> {
    (!index.valid && !index.partitioned).then(|| {
        (
            oid_ref(class::PG_CLASS, index.header.oid),
            format!(
                "index {}.{} is invalid (a failed CREATE INDEX CONCURRENTLY); rebuild it",
                table.schema, index.header.q
            ),
        )
    })
}

/// The items that create `index` on `table`, needing it, and attach it to its parent's index.
pub(super) fn dump(index: &Index, table: &Relation) -> Vec<Item> {
    let (header, t) = (&index.header, &table.qualified_name);
    let q = &header.q;
    let qualified = format!("{}.{q}", quote_schema(t));
    let mut items: Vec<Item> = index
        .parent
        .iter()
        .map(|parent| parent.attach(header.oid, &qualified, table, &header.name))
        .collect();
    let mut sql = Sql::from(format!("{};\n", index.definition));
    if index.clustered {
        sql.push_str(&format!("ALTER TABLE {t} CLUSTER ON {q};\n"));
    }
    if index.replica_identity {
        sql.push_str(&format!(
            "ALTER TABLE ONLY {t} REPLICA IDENTITY USING INDEX {q};\n"
        ));
    }
    if let Some(statistics) = &index.statistics {
        sql.push_str(statistics).push_str("\n");
    }
    sql.append(header.tail_as("INDEX", &qualified));
    let mut item = Item::new(ItemKind::Index, &table.schema, &header.name, sql)
        .owning([oid_ref(class::PG_CLASS, header.oid)])
        .needing([oid_ref(class::PG_CLASS, index.table_oid)])
        .of_table(t);
    item.slow_build = slow_method(index.method.as_deref());
    items.push(item);
    items
}

/// Whether an index of access method `method` builds slowly (GIN, GiST, SP-GiST): restore
/// starts such builds first among a table's.
pub(super) fn slow_method(method: Option<&str>) -> bool {
    matches!(method, Some("gin" | "gist" | "spgist"))
}

#[cfg(test)]
mod tests {
    use super::super::model::tests::{header, relation};
    use super::*;

    fn index(name: &str, definition: &str) -> Index {
        Index {
            header: header(name, None),
            table_oid: 16_390,
            definition: definition.into(),
            method: Some("btree".into()),
            valid: true,
            partitioned: false,
            clustered: false,
            replica_identity: false,
            parent: None,
            statistics: None,
        }
    }

    #[test]
    fn an_index_with_what_the_table_says_of_it() {
        let mut gin = index(
            "docs_body_idx",
            "CREATE INDEX docs_body_idx ON app.docs USING gin (body)",
        );
        gin.method = Some("gin".into());
        gin.clustered = true;
        gin.replica_identity = true;
        gin.statistics =
            Some("ALTER INDEX app.docs_body_idx ALTER COLUMN 1 SET STATISTICS 500;".into());
        gin.header.comment = Some("full text".into());
        let items = dump(&gin, &relation("docs"));
        assert_eq!(items.len(), 1);
        let item = &items[0];
        assert_eq!(
            item.sql,
            "CREATE INDEX docs_body_idx ON app.docs USING gin (body);\n\
             ALTER TABLE app.docs CLUSTER ON docs_body_idx;\n\
             ALTER TABLE ONLY app.docs REPLICA IDENTITY USING INDEX docs_body_idx;\n\
             ALTER INDEX app.docs_body_idx ALTER COLUMN 1 SET STATISTICS 500;\n\
             COMMENT ON INDEX app.docs_body_idx IS 'full text';\n"
        );
        assert_eq!(
            (item.kind, item.schema.as_str(), item.name.as_str()),
            (ItemKind::Index, "app", "docs_body_idx")
        );
        assert_eq!(item.owns, [oid_ref(class::PG_CLASS, 16_400)]);
        assert_eq!(item.needs, [oid_ref(class::PG_CLASS, 16_390)]);
        assert_eq!(item.table.as_deref(), Some("app.docs"));
        assert!(item.slow_build && item.marks.is_empty());

        let btree = index(
            "docs_id_idx",
            "CREATE INDEX docs_id_idx ON app.docs USING btree (id)",
        );
        let item = &dump(&btree, &relation("docs"))[0];
        assert_eq!(
            item.sql,
            "CREATE INDEX docs_id_idx ON app.docs USING btree (id);\n"
        );
        assert!(!item.slow_build);
    }

    #[test]
    fn a_partitions_index_is_attached_to_its_parents() {
        let mut child = index(
            "events_2026_at_idx",
            "CREATE INDEX events_2026_at_idx ON app.events_2026 USING btree (at)",
        );
        child.parent = Some(ParentIndex {
            oid: 16_300,
            q: "app.events_at_idx".into(),
        });
        let items = dump(&child, &relation("events_2026"));
        assert_eq!(items.len(), 2);
        assert_eq!(
            items[0].sql,
            "ALTER INDEX app.events_at_idx ATTACH PARTITION app.events_2026_at_idx;\n"
        );
        assert_eq!(
            (items[0].kind, items[0].name.as_str()),
            (ItemKind::IndexAttach, "events_2026_at_idx")
        );
        assert_eq!(
            items[0].needs,
            [
                oid_ref(class::PG_CLASS, 16_400),
                oid_ref(class::PG_CLASS, 16_300)
            ]
        );
        assert_eq!(items[0].table.as_deref(), Some("app.events_2026"));
        assert_eq!(items[1].kind, ItemKind::Index);
    }

    #[test]
    fn an_invalid_index_is_left_out_but_not_a_partitioned_one() {
        let mut failed = index("t_a_idx", "CREATE INDEX t_a_idx ON app.t USING btree (a)");
        failed.valid = false;
        assert_eq!(
            left_out(&failed, &relation("t")),
            Some((
                oid_ref(class::PG_CLASS, 16_400),
                "index app.t_a_idx is invalid (a failed CREATE INDEX CONCURRENTLY); rebuild it"
                    .to_string()
            ))
        );
        failed.partitioned = true;
        assert_eq!(left_out(&failed, &relation("t")), None);
        failed.valid = true;
        failed.partitioned = false;
        assert_eq!(left_out(&failed, &relation("t")), None);
    }
}
