//! Schemas, the `public` schema and extensions.

use super::*;

pub(super) async fn schemas(db: &Db<'_>, catalog: &mut Catalog) -> Result<(), CatalogError> {
    let sql = format!(
        "SELECT n.oid, n.nspname::text AS name, quote_ident(n.nspname) AS q, \
         quote_ident(pg_get_userbyid(n.nspowner)) AS owner, (SELECT description FROM pg_description WHERE objoid = n.oid AND classoid = 'pg_namespace'::regclass AND objsubid = 0) AS comment, \
         {} \
         FROM pg_namespace n WHERE n.oid >= 16384 AND n.nspname <> 'public' AND {USER_SCHEMA} AND {}",
        acl_columns("n.nspacl", "n.nspowner", 'n'),
        not_in_extension("pg_namespace", "n.oid")
    );
    for row in db.query("schemas", &sql).await? {
        let (oid, name, q, owner): (u32, String, String, String) = (
            row.get("oid")?,
            row.get("name")?,
            row.get("q")?,
            row.get("owner")?,
        );
        let mut sql = format!("CREATE SCHEMA {q};\nALTER SCHEMA {q} OWNER TO {owner};\n");
        sql.push_str(&comment_sql(&format!("SCHEMA {q}"), row.get("comment")?));
        let object = oid_ref(class::PG_NAMESPACE, oid);
        catalog
            .items
            .push(Item::new(ItemKind::Schema, "", &name, sql).owning([object]));
        catalog.items.extend(acl_item(
            "",
            &name,
            &format!("SCHEMA {q}"),
            object,
            &row,
            None,
        )?);
    }
    Ok(())
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
        let mut sql = String::new();
        if !row.get::<bool>("default_owner")? {
            sql.push_str(&format!(
                "ALTER SCHEMA public OWNER TO {};\n",
                row.get::<String>("owner")?
            ));
        }
        match row.get::<Option<String>>("comment")? {
            Some(c) if c == "standard public schema" => {}
            Some(c) => sql.push_str(&format!("COMMENT ON SCHEMA public IS {};\n", literal(&c))),
            None => sql.push_str("COMMENT ON SCHEMA public IS NULL;\n"),
        }
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
    let sql = "SELECT x.oid, x.extname::text AS name, quote_ident(x.extname) AS q, quote_ident(n.nspname) AS schema, \
               x.extnamespace, (SELECT description FROM pg_description WHERE objoid = x.oid AND classoid = 'pg_extension'::regclass AND objsubid = 0) AS comment \
               FROM pg_extension x JOIN pg_namespace n ON n.oid = x.extnamespace WHERE x.oid >= 16384";
    for row in db.query("extensions", sql).await? {
        let (oid, name, q, schema, namespace): (u32, String, String, String, u32) = (
            row.get("oid")?,
            row.get("name")?,
            row.get("q")?,
            row.get("schema")?,
            row.get("extnamespace")?,
        );
        let mut sql = format!("CREATE EXTENSION IF NOT EXISTS {q} WITH SCHEMA {schema};\n");
        // Its comment as it is now, which may not be the one its control file gives.
        sql.push_str(&comment_sql(&format!("EXTENSION {q}"), row.get("comment")?));
        catalog.items.push(
            Item::new(ItemKind::Extension, "", &name, sql)
                .owning([oid_ref(class::PG_EXTENSION, oid)])
                .needing([oid_ref(class::PG_NAMESPACE, namespace)]),
        );
    }
    Ok(())
}
