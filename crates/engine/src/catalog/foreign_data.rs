//! Foreign-data wrappers, foreign servers and user mappings, as pg_dump's
//! `dumpForeignDataWrapper`, `dumpForeignServer` and `dumpUserMappings`. (Foreign tables are
//! tables: `tables` writes them.)
//!
//! User mappings are read from `pg_user_mappings`, which shows a mapping's options to its
//! user, the server's owner and superusers only. Where pg_dump would write a mapping without
//! the options it cannot see, a mapping hidden from the backup role is refused by name (the
//! operator excludes it, or backs up with a role that sees it). Options (a remote password,
//! say) are in the backup as the database holds them, never in a log line or an error.

use super::*;
use crate::sql::Sql;

/// `OPTIONS (name 'value', ...)` from an options array column, as SQL (the column is built by
/// [`options_sql`]).
pub(super) fn options_clause(row: &Fields, column: &str) -> Result<String, CatalogError> {
    Ok(row
        .get::<Option<String>>(column)?
        .filter(|o| !o.is_empty())
        .map(|o| format!(" OPTIONS (\n    {o}\n)"))
        .unwrap_or_default())
}

/// A query expression listing `options` (a `text[]` of `name=value`) as `name 'value', ...`.
pub(super) fn options_sql(options: &str) -> String {
    format!(
        "(SELECT string_agg(quote_ident(o.option_name) || ' ' || quote_literal(o.option_value), ', ') \
         FROM pg_options_to_table({options}) AS o)"
    )
}

pub(super) async fn foreign_data(db: &Db<'_>, catalog: &mut Catalog) -> Result<(), CatalogError> {
    let sql = format!(
        "SELECT w.oid, w.fdwname::text AS name, quote_ident(w.fdwname) AS q, \
         NULLIF(w.fdwhandler, 0)::regproc::text AS handler, NULLIF(w.fdwvalidator, 0)::regproc::text AS validator, \
         {} AS options, quote_ident(pg_get_userbyid(w.fdwowner)) AS owner, \
         (SELECT description FROM pg_description WHERE objoid = w.oid AND classoid = 'pg_foreign_data_wrapper'::regclass AND objsubid = 0) AS comment, {} \
         FROM pg_foreign_data_wrapper w WHERE w.oid >= 16384 AND {} ORDER BY w.oid",
        options_sql("w.fdwoptions"),
        acl_columns("w.fdwacl", "w.fdwowner", 'F'),
        not_in_extension("pg_foreign_data_wrapper", "w.oid")
    );
    for row in db.query("foreign-data wrappers", &sql).await? {
        let (oid, name, q, owner): (u32, String, String, String) = (
            row.get("oid")?,
            row.get("name")?,
            row.get("q")?,
            row.get("owner")?,
        );
        let mut sql = format!("CREATE FOREIGN DATA WRAPPER {q}");
        if let Some(handler) = row.get::<Option<String>>("handler")? {
            sql.push_str(&format!(" HANDLER {handler}"));
        }
        if let Some(validator) = row.get::<Option<String>>("validator")? {
            sql.push_str(&format!(" VALIDATOR {validator}"));
        }
        sql.push_str(&options_clause(&row, "options")?);
        sql.push_str(";\n");
        let mut sql = Sql::from(sql);
        sql.owner(&format!("FOREIGN DATA WRAPPER {q}"), &owner);
        sql.push_str(&comment_sql(
            &format!("FOREIGN DATA WRAPPER {q}"),
            row.get("comment")?,
        ));
        let object = oid_ref(class::PG_FOREIGN_DATA_WRAPPER, oid);
        catalog
            .items
            .push(Item::new(ItemKind::ForeignDataWrapper, "", &name, sql).owning([object]));
        catalog.items.extend(acl_item(
            "",
            &name,
            &format!("FOREIGN DATA WRAPPER {q}"),
            object,
            &row,
            None,
        )?);
    }

    let sql = format!(
        "SELECT s.oid, s.srvname::text AS name, quote_ident(s.srvname) AS q, s.srvfdw, \
         (SELECT quote_ident(w.fdwname) FROM pg_foreign_data_wrapper w WHERE w.oid = s.srvfdw) AS wrapper, \
         s.srvtype AS server_type, s.srvversion AS server_version, {} AS options, \
         quote_ident(pg_get_userbyid(s.srvowner)) AS owner, (SELECT description FROM pg_description WHERE objoid = s.oid AND classoid = 'pg_foreign_server'::regclass AND objsubid = 0) AS comment, \
         {} \
         FROM pg_foreign_server s WHERE s.oid >= 16384 AND {} ORDER BY s.oid",
        options_sql("s.srvoptions"),
        acl_columns("s.srvacl", "s.srvowner", 'S'),
        not_in_extension("pg_foreign_server", "s.oid")
    );
    for row in db.query("foreign servers", &sql).await? {
        let (oid, name, q, wrapper, owner): (u32, String, String, String, String) = (
            row.get("oid")?,
            row.get("name")?,
            row.get("q")?,
            row.get("wrapper")?,
            row.get("owner")?,
        );
        let mut sql = format!("CREATE SERVER {q}");
        if let Some(server_type) = row.get::<Option<String>>("server_type")? {
            sql.push_str(&format!(" TYPE {}", literal(&server_type)));
        }
        if let Some(version) = row.get::<Option<String>>("server_version")? {
            sql.push_str(&format!(" VERSION {}", literal(&version)));
        }
        sql.push_str(&format!(" FOREIGN DATA WRAPPER {wrapper}"));
        sql.push_str(&options_clause(&row, "options")?);
        sql.push_str(";\n");
        let mut sql = Sql::from(sql);
        sql.owner(&format!("SERVER {q}"), &owner);
        sql.push_str(&comment_sql(&format!("SERVER {q}"), row.get("comment")?));
        let object = oid_ref(class::PG_FOREIGN_SERVER, oid);
        catalog.items.push(
            Item::new(ItemKind::ForeignServer, "", &name, sql)
                .owning([object])
                .needing([oid_ref(class::PG_FOREIGN_DATA_WRAPPER, row.get("srvfdw")?)]),
        );
        catalog.items.extend(acl_item(
            "",
            &name,
            &format!("FOREIGN SERVER {q}"),
            object,
            &row,
            None,
        )?);
    }

    // Whether pg_user_mappings shows this role the mapping's options (the view's own rule).
    let readable = "(m.umuser <> 0 AND m.usename = current_user AND (pg_has_role(s.srvowner, 'USAGE') \
         OR has_server_privilege(s.oid, 'USAGE'))) OR (m.umuser = 0 AND pg_has_role(s.srvowner, 'USAGE')) \
         OR coalesce((SELECT r.rolsuper FROM pg_roles r WHERE r.rolname = current_user), false)";
    let sql = format!(
        "SELECT m.umid, m.srvid, quote_ident(m.srvname) AS server, \
         CASE WHEN m.umuser = 0 THEN 'PUBLIC' ELSE quote_ident(m.usename) END AS role, \
         {} AS options, {readable} AS readable \
         FROM pg_user_mappings m JOIN pg_foreign_server s ON s.oid = m.srvid \
         WHERE m.umid >= 16384 AND {} ORDER BY m.srvname, m.usename",
        options_sql("m.umoptions"),
        not_in_extension("pg_user_mapping", "m.umid")
    );
    for row in db.query("user mappings", &sql).await? {
        // Options hidden from the backup role (a password, say) would be lost: the mapping is
        // left unclaimed, and the inventory refuses it by name.
        if !row.get::<bool>("readable")? {
            continue;
        }
        let (umid, server, role): (u32, String, String) =
            (row.get("umid")?, row.get("server")?, row.get("role")?);
        let mut sql = Sql::new();
        sql.push_str("CREATE USER MAPPING FOR ")
            .role(&role)
            .push_str(&format!(" SERVER {server}"));
        sql.push_str(&options_clause(&row, "options")?);
        sql.push_str(";\n");
        catalog.items.push(
            Item::new(
                ItemKind::UserMapping,
                "",
                &format!("{role} on {server}"),
                sql,
            )
            .owning([oid_ref(class::PG_USER_MAPPING, umid)])
            .needing([oid_ref(class::PG_FOREIGN_SERVER, row.get("srvid")?)]),
        );
    }
    Ok(())
}
