//! Large objects (`pg_largeobject_metadata`), as pg_dump's `getLOs`/`dumpLO`: created with
//! their OID, owner and comment in pre-data, in batches of [`BATCH`] (pg_dump 17 groups them
//! the same way, so a database of a million large objects is not a million items); grants in
//! one ACL item per batch. Their contents are data parts of their own (`engine::large_objects`).

use super::model::Header;
use super::*;
use crate::sql::Sql;

/// Large objects per metadata item, and per data part.
pub const BATCH: usize = 1000;

/// A large object as the catalog describes it: only its header (`q` and `name` are its OID,
/// no schema).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LargeObject {
    pub header: Header,
}

pub(super) async fn large_objects(db: &Db<'_>, catalog: &mut Catalog) -> Result<(), CatalogError> {
    for batch in get(db).await?.chunks(BATCH) {
        catalog.items.extend(dump(batch));
        catalog
            .large_objects
            .push(batch.iter().map(|o| o.header.oid).collect());
    }
    Ok(())
}

/// Every large object, in OID order.
pub(super) async fn get(db: &Db<'_>) -> Result<Vec<LargeObject>, CatalogError> {
    let sql = format!(
        "SELECT m.oid, quote_ident(pg_get_userbyid(m.lomowner)) AS owner, \
         (SELECT description FROM pg_description WHERE objoid = m.oid AND classoid = 'pg_largeobject'::regclass AND objsubid = 0) AS comment, {} \
         FROM pg_largeobject_metadata m ORDER BY m.oid",
        acl_columns("m.lomacl", "m.lomowner", 'L'),
    );
    let mut objects = Vec::new();
    for row in db.query("large objects", &sql).await? {
        let oid: u32 = row.get("oid")?;
        let header = Header {
            oid,
            schema: String::new(),
            name: oid.to_string(),
            q: oid.to_string(),
            owner: Some(row.get("owner")?),
            comment: row.get("comment")?,
            ..Header::default()
        };
        objects.push(LargeObject {
            header: header.with_acl(&row)?,
        });
    }
    Ok(objects)
}

/// The items of one batch of large objects, named by its first and last OID: one that
/// creates them all, and one that grants on them when any has privileges of its own.
pub(super) fn dump(batch: &[LargeObject]) -> Vec<Item> {
    let (Some(first), Some(last)) = (batch.first(), batch.last()) else {
        return Vec::new();
    };
    let mut sql = Sql::new();
    let mut grants = Sql::new();
    for LargeObject { header } in batch {
        sql.push_str(&format!("SELECT pg_catalog.lo_create('{}');\n", header.oid));
        sql.append(header.tail("LARGE OBJECT"));
        grants.append(acl_statements(
            &format!("LARGE OBJECT {}", header.q),
            None,
            header.acl.as_deref(),
            &header.acl_default,
        ));
    }
    let name = format!("{}..{}", first.header.oid, last.header.oid);
    let objects: Vec<ObjectRef> = batch
        .iter()
        .map(|o| oid_ref(class::PG_LARGEOBJECT, o.header.oid))
        .collect();
    let mut items =
        vec![Item::new(ItemKind::LargeObject, "", &name, sql).owning(objects.iter().copied())];
    if !grants.is_empty() {
        items.push(Item::new(ItemKind::LargeObjectAcl, "", &name, grants).needing(objects));
    }
    items
}

#[cfg(test)]
mod tests {
    use super::super::model::tests::header;
    use super::*;
    use crate::acl::Grant;

    fn large_object(oid: u32, owner: &str) -> LargeObject {
        LargeObject {
            header: Header {
                oid,
                ..header(&oid.to_string(), Some(owner))
            },
        }
    }

    fn grant(grantee: &str, privilege: &str) -> Grant {
        Grant {
            grantee: grantee.into(),
            privilege: privilege.into(),
            grantable: false,
            grantor: None,
        }
    }

    #[test]
    fn a_batch_is_created_with_owners_and_comments_and_named_by_its_first_and_last() {
        let mut commented = large_object(16_401, "\"Media\"");
        commented.header.comment = Some("logo".into());
        let items = dump(&[large_object(16_400, "app"), commented]);
        assert_eq!(items.len(), 1, "no privileges of their own: no ACL item");
        assert_eq!(
            items[0].sql,
            "SELECT pg_catalog.lo_create('16400');\n\
             ALTER LARGE OBJECT 16400 OWNER TO app;\n\
             SELECT pg_catalog.lo_create('16401');\n\
             ALTER LARGE OBJECT 16401 OWNER TO \"Media\";\n\
             COMMENT ON LARGE OBJECT 16401 IS 'logo';\n"
        );
        assert_eq!(
            (
                items[0].kind,
                items[0].schema.as_str(),
                items[0].name.as_str()
            ),
            (ItemKind::LargeObject, "", "16400..16401")
        );
        assert_eq!(
            items[0].owns,
            [
                oid_ref(class::PG_LARGEOBJECT, 16_400),
                oid_ref(class::PG_LARGEOBJECT, 16_401)
            ]
        );
        let owner_changes: Vec<&str> = items[0]
            .marks
            .iter()
            .filter(|m| m.is == crate::sql::Marked::OwnerChange)
            .map(|m| &items[0].sql[m.at..m.at + m.len])
            .collect();
        assert_eq!(
            owner_changes,
            [
                "ALTER LARGE OBJECT 16400 OWNER TO app;",
                "ALTER LARGE OBJECT 16401 OWNER TO \"Media\";"
            ]
        );
    }

    #[test]
    fn the_batchs_grants_are_one_item_needing_every_object() {
        let mut shared = large_object(16_400, "app");
        shared.header.acl_default = vec![grant("app", "SELECT"), grant("app", "UPDATE")];
        shared.header.acl = Some(vec![
            grant("app", "SELECT"),
            grant("app", "UPDATE"),
            Grant {
                grantable: true,
                ..grant("lead", "SELECT")
            },
            Grant {
                grantor: Some("lead".into()),
                ..grant("reader", "SELECT")
            },
        ]);
        let mut private = large_object(16_410, "app");
        private.header.acl_default = vec![grant("app", "SELECT"), grant("app", "UPDATE")];
        private.header.acl = Some(vec![grant("app", "SELECT")]);
        let items = dump(&[shared, large_object(16_405, "app"), private]);
        assert_eq!(items.len(), 2);
        assert_eq!(
            items[1].sql,
            "GRANT SELECT ON LARGE OBJECT 16400 TO lead WITH GRANT OPTION;\n\
             SET SESSION AUTHORIZATION lead;\n\
             GRANT SELECT ON LARGE OBJECT 16400 TO reader;\n\
             RESET SESSION AUTHORIZATION;\n\
             REVOKE UPDATE ON LARGE OBJECT 16410 FROM app;\n"
        );
        assert_eq!(
            (items[1].kind, items[1].name.as_str()),
            (ItemKind::LargeObjectAcl, "16400..16410")
        );
        assert_eq!(items[1].needs, items[0].owns);
        assert!(items[1].owns.is_empty());
    }

    #[test]
    fn an_empty_batch_is_no_item() {
        assert!(dump(&[]).is_empty());
    }
}
