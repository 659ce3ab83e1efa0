//! Large objects (`pg_largeobject_metadata`), as pg_dump's `getLOs`/`dumpLO`: created with
//! their OID, owner and comment in pre-data, in batches of [`BATCH`] (pg_dump 17 groups them
//! the same way, so a database of a million large objects is not a million items); grants in
//! one ACL item per batch. Their contents are data parts of their own (`engine::large_objects`).

use super::*;
use crate::sql::Sql;

/// Large objects per metadata item, and per data part.
pub const BATCH: usize = 1000;

pub(super) async fn large_objects(db: &Db<'_>, catalog: &mut Catalog) -> Result<(), CatalogError> {
    let sql = format!(
        "SELECT m.oid, quote_ident(pg_get_userbyid(m.lomowner)) AS owner, \
         (SELECT description FROM pg_description WHERE objoid = m.oid AND classoid = 'pg_largeobject'::regclass AND objsubid = 0) AS comment, {} \
         FROM pg_largeobject_metadata m ORDER BY m.oid",
        acl_columns("m.lomacl", "m.lomowner", 'L'),
    );
    let rows = db.query("large objects", &sql).await?;
    for batch in rows.chunks(BATCH) {
        let mut oids = Vec::with_capacity(batch.len());
        let mut sql = Sql::new();
        let mut grants = Sql::new();
        for row in batch {
            let oid: u32 = row.get("oid")?;
            let owner: String = row.get("owner")?;
            sql.push_str(&format!("SELECT pg_catalog.lo_create('{oid}');\n"))
                .owner(&format!("LARGE OBJECT {oid}"), &owner);
            sql.push_str(&comment_sql(
                &format!("LARGE OBJECT {oid}"),
                row.get("comment")?,
            ));
            grants.append(acl_statements(
                &format!("LARGE OBJECT {oid}"),
                None,
                super::grants(row, "acl")?.as_deref(),
                &super::grants(row, "acl_default")?.unwrap_or_default(),
            ));
            oids.push(oid);
        }
        let (first, last) = (oids[0], oids[oids.len() - 1]);
        let name = format!("{first}..{last}");
        let refs: Vec<ObjectRef> = oids
            .iter()
            .map(|oid| oid_ref(class::PG_LARGEOBJECT, *oid))
            .collect();
        catalog
            .items
            .push(Item::new(ItemKind::LargeObject, "", &name, sql).owning(refs.iter().copied()));
        if !grants.is_empty() {
            catalog
                .items
                .push(Item::new(ItemKind::LargeObjectAcl, "", &name, grants).needing(refs));
        }
        catalog.large_objects.push(oids);
    }
    Ok(())
}
