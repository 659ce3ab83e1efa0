//! Table constraints: keys, checks, exclusions and foreign keys, with partition clones claimed by their parent.

use std::collections::HashMap;

use super::indexes::slow_method;
use super::*;
use crate::sql::{Marked, Sql};

/// Every table constraint, read apart from the rest of the catalog (it needs nothing else read).
/// A plain key's columns are read with it: a primary key or unique constraint that its index
/// says all of (btree on plain columns, nothing deferrable, included, stored with options or
/// in another tablespace, no NULLS NOT DISTINCT or WITHOUT OVERLAPS), which restore may build
/// as an index first and attach after.
pub(super) fn sql(version: ServerVersion) -> String {
    let nulls = if version.at_least(15) {
        " AND NOT i.indnullsnotdistinct"
    } else {
        ""
    };
    let period = if version.at_least(18) {
        " AND NOT con.conperiod"
    } else {
        ""
    };
    format!(
        "SELECT con.oid, con.conrelid, con.contype::text AS kind, con.conname::text AS name, quote_ident(con.conname) AS q, \
         pg_get_constraintdef(con.oid) AS def, con.convalidated, con.conindid, con.conparentid, con.conislocal, \
         (con.contype = 'c' AND NOT con.connoinherit AND EXISTS (SELECT 1 FROM pg_inherits h JOIN pg_class hc \
             ON hc.oid = h.inhrelid WHERE h.inhparent = con.conrelid AND NOT hc.relispartition)) AS inherited_by_children, \
         (SELECT description FROM pg_description WHERE objoid = con.oid AND classoid = 'pg_constraint'::regclass AND objsubid = 0) AS comment, \
         CASE WHEN con.conindid <> 0 AND con.contype IN ('p', 'u', 'x') THEN (SELECT description FROM pg_description WHERE objoid = con.conindid AND classoid = 'pg_class'::regclass AND objsubid = 0) END AS index_comment, \
         (SELECT i.indisclustered FROM pg_index i WHERE i.indexrelid = con.conindid) AS clustered, \
         (SELECT i.indisreplident FROM pg_index i WHERE i.indexrelid = con.conindid) AS replident, \
         (SELECT quote_ident(c.relname) FROM pg_class c WHERE c.oid = con.conindid) AS index_name, \
         (SELECT am.amname::text FROM pg_class c JOIN pg_am am ON am.oid = c.relam WHERE c.oid = con.conindid) AS method, \
         (SELECT quote_ident(pn.nspname) || '.' || quote_ident(pc.relname) FROM pg_inherits h \
             JOIN pg_class pc ON pc.oid = h.inhparent JOIN pg_namespace pn ON pn.oid = pc.relnamespace \
             WHERE h.inhrelid = con.conindid) AS parent_index, \
         (SELECT h.inhparent FROM pg_inherits h WHERE h.inhrelid = con.conindid) AS parent_index_oid, \
         CASE WHEN con.contype = 'f' THEN (SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname) FROM pg_class c \
             JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = con.confrelid) END AS referenced, \
         CASE WHEN con.contype IN ('p', 'u') AND NOT con.condeferrable{period} THEN (SELECT array_agg(quote_ident(a.attname) ORDER BY k.n)::text[] \
             FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid JOIN pg_am am ON am.oid = ic.relam \
             CROSS JOIN unnest(i.indkey::int2[]) WITH ORDINALITY k(attnum, n) \
             JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.attnum \
             WHERE i.indexrelid = con.conindid AND i.indnkeyatts = i.indnatts AND i.indexprs IS NULL \
             AND ic.reloptions IS NULL AND ic.reltablespace = 0 AND am.amname = 'btree'{nulls}) END AS plain_key \
         FROM pg_constraint con WHERE con.conrelid <> 0 AND con.oid >= 16384 ORDER BY con.conrelid, con.conname",
    )
}

/// The items of the constraints `rows` ([`SQL`]) on the dumped `relations`.
pub(super) fn constraints(
    rows: Vec<Fields>,
    catalog: &mut Catalog,
    relations: &HashMap<u32, Relation>,
) -> Result<(), CatalogError> {
    // Foreign keys cloned onto partitions come back with their parent's: claim them there.
    let mut parent_of: HashMap<u32, u32> = HashMap::new();
    for r in &rows {
        let parent: u32 = r.get("conparentid")?;
        if parent != 0 {
            parent_of.insert(r.get("oid")?, parent);
        }
    }
    let root = |mut oid: u32| {
        while let Some(parent) = parent_of.get(&oid) {
            oid = *parent;
        }
        oid
    };
    let mut clones: HashMap<u32, Vec<ObjectRef>> = HashMap::new();
    for row in &rows {
        let oid: u32 = row.get("oid")?;
        if row.get::<u32>("conparentid")? != 0 && row.get::<String>("kind")? == "f" {
            clones
                .entry(root(oid))
                .or_default()
                .push(oid_ref(class::PG_CONSTRAINT, oid));
        }
    }
    let mut checks_of: HashMap<u32, Vec<ObjectRef>> = HashMap::new();
    for row in rows {
        let (oid, table_oid, kind, name, q, def): (u32, u32, String, String, String, String) = (
            row.get("oid")?,
            row.get("conrelid")?,
            row.get("kind")?,
            row.get("name")?,
            row.get("q")?,
            row.get("def")?,
        );
        let Some(table) = relations.get(&table_oid) else {
            continue;
        };
        if kind == "c" && table.inherits && !row.get::<bool>("conislocal")? {
            catalog.recreated.push(oid_ref(class::PG_CONSTRAINT, oid));
            continue; // inherited from the parent: CREATE TABLE ... INHERITS brings it
        }
        let cloned = row.get::<u32>("conparentid")? != 0;
        if cloned && kind != "p" && kind != "u" && kind != "x" {
            continue; // recreated with the parent's constraint (claimed above for foreign keys)
        }
        let t = &table.qualified_name;
        let mut owns = vec![oid_ref(class::PG_CONSTRAINT, oid)];
        owns.extend(clones.remove(&oid).unwrap_or_default());
        // A foreign key or check on a partitioned table is added to the whole tree, and so is
        // a check that inheritance children inherit (ONLY is refused for them).
        let only = if ((kind == "f" || kind == "c") && table.kind == "p")
            || row.get::<bool>("inherited_by_children")?
        {
            ""
        } else {
            "ONLY "
        };
        let statement = format!("ALTER TABLE {only}{t} ADD CONSTRAINT {q} {def};");
        let mut sql = Sql::new();
        match row.get::<Option<Vec<String>>>("plain_key")? {
            Some(columns) if only == "ONLY " => sql.add_key(
                &statement,
                Marked::AddKey {
                    name: q.clone(),
                    primary: kind == "p",
                    columns,
                },
            ),
            _ => sql.push_str(&statement),
        };
        sql.push_str("\n");
        let item_kind = match kind.as_str() {
            "p" | "u" | "x" => {
                owns.push(oid_ref(class::PG_CLASS, row.get("conindid")?));
                if row.get::<Option<bool>>("clustered")? == Some(true) {
                    sql.push_str(&format!(
                        "ALTER TABLE {t} CLUSTER ON {};\n",
                        row.get::<String>("index_name")?
                    ));
                }
                if row.get::<Option<bool>>("replident")? == Some(true) {
                    sql.push_str(&format!(
                        "ALTER TABLE ONLY {t} REPLICA IDENTITY USING INDEX {};\n",
                        row.get::<String>("index_name")?
                    ));
                }
                if let (Some(parent), Some(parent_oid)) = (
                    row.get::<Option<String>>("parent_index")?,
                    row.get::<Option<u32>>("parent_index_oid")?,
                ) {
                    let child = oid_ref(class::PG_CLASS, row.get("conindid")?);
                    catalog.items.push(
                        Item::new(
                            ItemKind::IndexAttach,
                            &table.schema,
                            &name,
                            format!(
                                "ALTER INDEX {parent} ATTACH PARTITION {}.{};\n",
                                quote_schema(t),
                                row.get::<String>("index_name")?
                            ),
                        )
                        .needing([child, oid_ref(class::PG_CLASS, parent_oid)])
                        .of_table(t),
                    );
                }
                ItemKind::Constraint
            }
            "f" => ItemKind::ForeignKey,
            "c" if row.get::<bool>("convalidated")? => ItemKind::Check,
            "c" => ItemKind::ForeignKey, // NOT VALID checks run after the data, with the FKs
            _ => continue,               // constraint triggers: not reproduced yet
        };
        sql.push_str(&comment_sql(
            &format!("CONSTRAINT {q} ON {t}"),
            row.get("comment")?,
        ));
        if let Some(index_comment) = row.get::<Option<String>>("index_comment")? {
            sql.push_str(&format!(
                "COMMENT ON INDEX {}.{} IS {};\n",
                quote_schema(t),
                row.get::<String>("index_name")?,
                literal(&index_comment)
            ));
        }
        if item_kind == ItemKind::Check {
            checks_of
                .entry(table_oid)
                .or_default()
                .push(oid_ref(class::PG_CONSTRAINT, oid));
        }
        let mut item = Item::new(item_kind, &table.schema, &name, sql)
            .owning(owns)
            .needing([oid_ref(class::PG_CLASS, table_oid)])
            .of_table(t);
        item.references = row.get("referenced")?;
        item.slow_build = slow_method(row.get("method")?);
        catalog.items.push(item);
    }
    // ATTACH PARTITION wants the partition to have its parent's checks already, and merges
    // them: both tables' checks come first.
    for attach in catalog
        .items
        .iter_mut()
        .filter(|i| i.kind == ItemKind::PartitionAttach)
    {
        let checks: Vec<ObjectRef> = attach
            .needs
            .iter()
            .filter(|r| r.class == class::PG_CLASS)
            .flat_map(|r| checks_of.get(&r.oid).cloned().unwrap_or_default())
            .collect();
        attach.needs.extend(checks);
    }
    Ok(())
}
