//! Schemas, the `public` schema and extensions.

use super::model::Header;
use super::*;
use crate::sql::Sql;

/// A schema as the catalog describes it: only its header (`q` is its quoted name).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schema {
    pub header: Header,
}

/// An extension as the catalog describes it: `header.q` is its quoted name, and it is in no
/// schema itself (it has no owner of its own to dump).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Extension {
    pub header: Header,
    /// The schema its objects are created in: its OID, and its name quoted.
    pub namespace: u32,
    pub in_schema: String,
}

pub(super) async fn schemas(db: &Db<'_>, catalog: &mut Catalog) -> Result<(), CatalogError> {
    for schema in get(db).await? {
        catalog.items.extend(dump(&schema));
    }
    Ok(())
}

/// Every user schema but `public` (its own reader) and an extension's.
pub(super) async fn get(db: &Db<'_>) -> Result<Vec<Schema>, CatalogError> {
    let sql = format!(
        "SELECT n.oid, ''::text AS schema, n.nspname::text AS name, quote_ident(n.nspname) AS q, \
         quote_ident(pg_get_userbyid(n.nspowner)) AS owner, (SELECT description FROM pg_description WHERE objoid = n.oid AND classoid = 'pg_namespace'::regclass AND objsubid = 0) AS comment, \
         {} \
         FROM pg_namespace n WHERE n.oid >= 16384 AND n.nspname <> 'public' AND {USER_SCHEMA} AND {}",
        acl_columns("n.nspacl", "n.nspowner", 'n'),
        not_in_extension("pg_namespace", "n.oid")
    );
    let mut schemas = Vec::new();
    for row in db.query("schemas", &sql).await? {
        let header = Header::of(row.schema_object()?, row.get("owner")?, row.get("comment")?);
        schemas.push(Schema {
            header: header.with_acl(&row)?,
        });
    }
    Ok(schemas)
}

/// The items that create `schema` and grant on it.
pub(super) fn dump(schema: &Schema) -> Vec<Item> {
    let header = &schema.header;
    let mut sql = Sql::from(format!("CREATE SCHEMA {};\n", header.q));
    sql.append(header.tail("SCHEMA"));
    let object = oid_ref(class::PG_NAMESPACE, header.oid);
    let mut items = vec![Item::new(ItemKind::Schema, "", &header.name, sql).owning([object])];
    items.extend(header.acl_item("SCHEMA", object));
    items
}

/// The `public` schema exists in every new database: only changes to its owner, comment and
/// privileges (against `pg_init_privs`) are dumped, as pg_dump does. It is known by its name,
/// as pg_dump knows it: one dropped and made again (as `restore --clean` does) is still the
/// schema every new database has, never a `CREATE SCHEMA public` that would fail there.
pub(super) async fn public_schema(db: &Db<'_>, catalog: &mut Catalog) -> Result<(), CatalogError> {
    // As pg_dump does: from 15 the baseline is what initdb set (pg_init_privs); before 15,
    // what a 15+ server starts with (owner's default plus USAGE for PUBLIC), so that a
    // restore onto a newer server keeps an old server's CREATE for PUBLIC. The owner is the
    // default only when it is pg_database_owner (14+; from 15 the initdb owner).
    let default_owner = if db.version.at_least(14) {
        "n.nspowner = 'pg_database_owner'::regrole"
    } else {
        "false"
    };
    // ALTER SCHEMA ... OWNER TO hands the initdb owner's entries to the new owner: so does
    // the baseline.
    // One made again has no pg_init_privs entry: what initdb gives it is the baseline.
    let initdb = "acldefault('n', n.nspowner) || makeaclitem(0, n.nspowner, 'USAGE', false)";
    let baseline = if db.version.at_least(15) {
        format!(
            "coalesce((SELECT array_agg(makeaclitem( \
             CASE WHEN a.grantee = 'pg_database_owner'::regrole THEN n.nspowner ELSE a.grantee END, \
             CASE WHEN a.grantor = 'pg_database_owner'::regrole THEN n.nspowner ELSE a.grantor END, \
             a.privilege_type, a.is_grantable) ORDER BY a.ord) \
         FROM pg_init_privs p, aclexplode(p.initprivs) WITH ORDINALITY AS a(grantor, grantee, privilege_type, is_grantable, ord) \
         WHERE p.objoid = n.oid AND p.classoid = 'pg_namespace'::regclass AND p.objsubid = 0), {initdb})"
        )
    } else {
        initdb.to_string()
    };
    let sql = format!(
        "SELECT n.oid, quote_ident(pg_get_userbyid(n.nspowner)) AS owner, {default_owner} AS default_owner, \
         (SELECT description FROM pg_description WHERE objoid = n.oid AND classoid = 'pg_namespace'::regclass AND objsubid = 0) AS comment, {} AS acl, {} AS acl_default \
         FROM pg_namespace n WHERE n.nspname = 'public'",
        acl_json("coalesce(n.nspacl, acldefault('n', n.nspowner))"),
        acl_json(&baseline)
    );
    for row in db.query("the public schema", &sql).await? {
        let oid: u32 = row.get("oid")?;
        if oid >= 16384 {
            catalog.recreated.push(oid_ref(class::PG_NAMESPACE, oid));
        }
        let mut sql = Sql::new();
        if !row.get::<bool>("default_owner")? {
            sql.owner("SCHEMA public", &row.get::<String>("owner")?);
        }
        match row.get::<Option<String>>("comment")? {
            Some(c) if c == "standard public schema" => &mut sql,
            Some(c) => sql.push_str(&format!("COMMENT ON SCHEMA public IS {};\n", literal(&c))),
            None => sql.push_str("COMMENT ON SCHEMA public IS NULL;\n"),
        };
        if !sql.is_empty() {
            catalog
                .items
                .push(Item::new(ItemKind::Schema, "", "public", sql));
        }
        let acl = acl_statements(
            "SCHEMA public",
            None,
            grants(&row, "acl")?.as_deref(),
            &grants(&row, "acl_default")?.unwrap_or_default(),
        );
        if !acl.is_empty() {
            catalog
                .items
                .push(Item::new(ItemKind::Acl, "", "public", acl));
        }
    }
    Ok(())
}

pub(super) async fn extensions(db: &Db<'_>, catalog: &mut Catalog) -> Result<(), CatalogError> {
    catalog
        .items
        .extend(get_extensions(db).await?.iter().map(dump_extension));
    Ok(())
}

/// Every extension but those initdb creates.
pub(super) async fn get_extensions(db: &Db<'_>) -> Result<Vec<Extension>, CatalogError> {
    let sql = "SELECT x.oid, x.extname::text AS name, quote_ident(x.extname) AS q, quote_ident(n.nspname) AS schema, \
               x.extnamespace, (SELECT description FROM pg_description WHERE objoid = x.oid AND classoid = 'pg_extension'::regclass AND objsubid = 0) AS comment \
               FROM pg_extension x JOIN pg_namespace n ON n.oid = x.extnamespace WHERE x.oid >= 16384";
    let mut extensions = Vec::new();
    for row in db.query("extensions", sql).await? {
        extensions.push(Extension {
            header: Header::bare(&row)?,
            namespace: row.get("extnamespace")?,
            in_schema: row.get("schema")?,
        });
    }
    Ok(extensions)
}

/// The item that creates `extension` in its schema, needing that schema.
pub(super) fn dump_extension(extension: &Extension) -> Item {
    let header = &extension.header;
    let mut sql = Sql::from(format!(
        "CREATE EXTENSION IF NOT EXISTS {} WITH SCHEMA {};\n",
        header.q, extension.in_schema
    ));
    // Its comment as it is now, which may not be the one its control file gives.
    sql.append(header.tail("EXTENSION"));
    Item::new(ItemKind::Extension, "", &header.name, sql)
        .owning([oid_ref(class::PG_EXTENSION, header.oid)])
        .needing([oid_ref(class::PG_NAMESPACE, extension.namespace)])
}

#[cfg(test)]
mod tests {
    use super::super::model::tests::header;
    use super::*;
    use crate::acl::Grant;

    #[test]
    fn a_schema_its_owner_comment_and_grants() {
        let mut schema = Schema {
            header: header("\"Sales\"", Some("app")),
        };
        schema.header.comment = Some("the shop".into());
        let items = dump(&schema);
        assert_eq!(
            items[0].sql,
            "CREATE SCHEMA \"Sales\";\nALTER SCHEMA \"Sales\" OWNER TO app;\n\
             COMMENT ON SCHEMA \"Sales\" IS 'the shop';\n"
        );
        assert_eq!(items.len(), 1, "default privileges: no ACL item");
        schema.header.acl = Some(vec![Grant {
            grantee: "PUBLIC".into(),
            privilege: "USAGE".into(),
            grantable: false,
            grantor: None,
        }]);
        let items = dump(&schema);
        assert_eq!(items[1].sql, "GRANT USAGE ON SCHEMA \"Sales\" TO PUBLIC;\n");
        assert_eq!(items[1].needs, [oid_ref(class::PG_NAMESPACE, 16_400)]);
    }

    #[test]
    fn an_extension_in_its_schema_with_its_comment_as_it_is_now() {
        let mut extension = Extension {
            header: header("\"uuid-ossp\"", None),
            namespace: 16_410,
            in_schema: "\"Extensions\"".into(),
        };
        let item = dump_extension(&extension);
        assert_eq!(
            item.sql,
            "CREATE EXTENSION IF NOT EXISTS \"uuid-ossp\" WITH SCHEMA \"Extensions\";\n"
        );
        assert_eq!(
            (item.kind, item.schema.as_str(), item.name.as_str()),
            (ItemKind::Extension, "", "uuid-ossp")
        );
        assert_eq!(item.owns, [oid_ref(class::PG_EXTENSION, 16_400)]);
        assert_eq!(item.needs, [oid_ref(class::PG_NAMESPACE, 16_410)]);
        assert!(item.marks.is_empty());

        extension.header.comment = Some("generate universally unique identifiers (UUIDs)".into());
        assert_eq!(
            dump_extension(&extension).sql,
            "CREATE EXTENSION IF NOT EXISTS \"uuid-ossp\" WITH SCHEMA \"Extensions\";\n\
             COMMENT ON EXTENSION \"uuid-ossp\" IS 'generate universally unique identifiers (UUIDs)';\n"
        );
    }
}
