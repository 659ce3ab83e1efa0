//! Foreign-data wrappers, foreign servers and user mappings, as pg_dump's
//! `dumpForeignDataWrapper`, `dumpForeignServer` and `dumpUserMappings`. (Foreign tables are
//! tables: `tables` writes them.)
//!
//! User mappings are read from `pg_user_mappings`, which shows a mapping's options to its
//! user, the server's owner and superusers only. Where pg_dump would write a mapping without
//! the options it cannot see, a mapping hidden from the backup role is refused by name (the
//! operator excludes it, or backs up with a role that sees it). Options (a remote password,
//! say) are in the backup as the database holds them, never in a log line or an error.

use super::model::Header;
use super::*;
use crate::sql::Sql;

/// A foreign-data wrapper as the catalog describes it (`header.q` is its quoted name).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wrapper {
    pub header: Header,
    /// The handler and validator functions, as `regproc` prints them.
    pub handler: Option<String>,
    pub validator: Option<String>,
    /// Its options, as [`options_sql`] lists them.
    pub options: Option<String>,
}

/// A foreign server as the catalog describes it (`header.q` is its quoted name).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Server {
    pub header: Header,
    pub wrapper_oid: u32,
    /// Its foreign-data wrapper, quoted.
    pub wrapper: String,
    pub server_type: Option<String>,
    pub version: Option<String>,
    /// Its options, as [`options_sql`] lists them.
    pub options: Option<String>,
}

/// A user mapping whose options the backup role can read. It has no name, owner or comment
/// of its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserMapping {
    pub oid: u32,
    pub server_oid: u32,
    /// Its server, quoted.
    pub server: String,
    /// The role it maps, quoted, or `PUBLIC`.
    pub role: String,
    /// Its options, as [`options_sql`] lists them.
    pub options: Option<String>,
}

/// The wrappers, servers and user mappings of the database.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ForeignData {
    pub wrappers: Vec<Wrapper>,
    pub servers: Vec<Server>,
    pub user_mappings: Vec<UserMapping>,
}

/// ` OPTIONS (\n    name 'value', ...\n)` for `options` as [`options_sql`] lists them, or
/// nothing when there are none.
pub(super) fn options_text(options: Option<&str>) -> String {
    options
        .filter(|o| !o.is_empty())
        .map(|o| format!(" OPTIONS (\n    {o}\n)"))
        .unwrap_or_default()
}

/// A query expression listing `options` (a `text[]` of `name=value`) as `name 'value', ...`.
pub(super) fn options_sql(options: &str) -> String {
    format!(
        "(SELECT string_agg(quote_ident(o.option_name) || ' ' || quote_literal(o.option_value), ', ') \
         FROM pg_options_to_table({options}) AS o)"
    )
}

pub(super) async fn foreign_data(db: &Db<'_>, catalog: &mut Catalog) -> Result<(), CatalogError> {
    let foreign = get(db).await?;
    catalog
        .items
        .extend(foreign.wrappers.iter().flat_map(dump_wrapper));
    catalog
        .items
        .extend(foreign.servers.iter().flat_map(dump_server));
    catalog
        .items
        .extend(foreign.user_mappings.iter().map(dump_user_mapping));
    Ok(())
}

/// Every user wrapper, server and readable user mapping (not an extension's).
pub(super) async fn get(db: &Db<'_>) -> Result<ForeignData, CatalogError> {
    Ok(ForeignData {
        wrappers: get_wrappers(db).await?,
        servers: get_servers(db).await?,
        user_mappings: get_user_mappings(db).await?,
    })
}

/// The header of a wrapper or server: the row's `oid`, `name`, `q`, `owner`, `comment` and ACL.
fn unqualified_header(row: &Fields) -> Result<Header, CatalogError> {
    Header {
        oid: row.get("oid")?,
        name: row.get("name")?,
        q: row.get("q")?,
        owner: row.get("owner")?,
        comment: row.get("comment")?,
        ..Header::default()
    }
    .with_acl(row)
}

async fn get_wrappers(db: &Db<'_>) -> Result<Vec<Wrapper>, CatalogError> {
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
    let mut wrappers = Vec::new();
    for row in db.query("foreign-data wrappers", &sql).await? {
        wrappers.push(Wrapper {
            header: unqualified_header(&row)?,
            handler: row.get("handler")?,
            validator: row.get("validator")?,
            options: row.get("options")?,
        });
    }
    Ok(wrappers)
}

async fn get_servers(db: &Db<'_>) -> Result<Vec<Server>, CatalogError> {
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
    let mut servers = Vec::new();
    for row in db.query("foreign servers", &sql).await? {
        servers.push(Server {
            header: unqualified_header(&row)?,
            wrapper_oid: row.get("srvfdw")?,
            wrapper: row.get("wrapper")?,
            server_type: row.get("server_type")?,
            version: row.get("server_version")?,
            options: row.get("options")?,
        });
    }
    Ok(servers)
}

async fn get_user_mappings(db: &Db<'_>) -> Result<Vec<UserMapping>, CatalogError> {
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
    let mut mappings = Vec::new();
    for row in db.query("user mappings", &sql).await? {
        // Options hidden from the backup role (a password, say) would be lost: the mapping is
        // left unclaimed, and the inventory refuses it by name.
        if !row.get::<bool>("readable")? {
            continue;
        }
        mappings.push(UserMapping {
            oid: row.get("umid")?,
            server_oid: row.get("srvid")?,
            server: row.get("server")?,
            role: row.get("role")?,
            options: row.get("options")?,
        });
    }
    Ok(mappings)
}

/// The items that create `wrapper` and grant on it.
pub(super) fn dump_wrapper(wrapper: &Wrapper) -> Vec<Item> {
    let header = &wrapper.header;
    let mut create = format!("CREATE FOREIGN DATA WRAPPER {}", header.q);
    if let Some(handler) = &wrapper.handler {
        create.push_str(&format!(" HANDLER {handler}"));
    }
    if let Some(validator) = &wrapper.validator {
        create.push_str(&format!(" VALIDATOR {validator}"));
    }
    create.push_str(&options_text(wrapper.options.as_deref()));
    create.push_str(";\n");
    let mut sql = Sql::from(create);
    sql.append(header.tail("FOREIGN DATA WRAPPER"));
    let object = oid_ref(class::PG_FOREIGN_DATA_WRAPPER, header.oid);
    let mut items =
        vec![Item::new(ItemKind::ForeignDataWrapper, "", &header.name, sql).owning([object])];
    items.extend(header.acl_item("FOREIGN DATA WRAPPER", object));
    items
}

/// The items that create `server`, needing its wrapper, and grant on it.
pub(super) fn dump_server(server: &Server) -> Vec<Item> {
    let header = &server.header;
    let mut create = format!("CREATE SERVER {}", header.q);
    if let Some(server_type) = &server.server_type {
        create.push_str(&format!(" TYPE {}", literal(server_type)));
    }
    if let Some(version) = &server.version {
        create.push_str(&format!(" VERSION {}", literal(version)));
    }
    create.push_str(&format!(" FOREIGN DATA WRAPPER {}", server.wrapper));
    create.push_str(&options_text(server.options.as_deref()));
    create.push_str(";\n");
    let mut sql = Sql::from(create);
    sql.append(header.tail("SERVER"));
    let object = oid_ref(class::PG_FOREIGN_SERVER, header.oid);
    let mut items = vec![
        Item::new(ItemKind::ForeignServer, "", &header.name, sql)
            .owning([object])
            .needing([oid_ref(class::PG_FOREIGN_DATA_WRAPPER, server.wrapper_oid)]),
    ];
    items.extend(header.acl_item("FOREIGN SERVER", object));
    items
}

/// The item that creates `mapping`, needing its server.
pub(super) fn dump_user_mapping(mapping: &UserMapping) -> Item {
    let mut sql = Sql::new();
    sql.push_str("CREATE USER MAPPING FOR ")
        .role(&mapping.role)
        .push_str(&format!(" SERVER {}", mapping.server))
        .push_str(&options_text(mapping.options.as_deref()))
        .push_str(";\n");
    Item::new(
        ItemKind::UserMapping,
        "",
        &format!("{} on {}", mapping.role, mapping.server),
        sql,
    )
    .owning([oid_ref(class::PG_USER_MAPPING, mapping.oid)])
    .needing([oid_ref(class::PG_FOREIGN_SERVER, mapping.server_oid)])
}

#[cfg(test)]
mod tests {
    use super::super::model::tests::header;
    use super::*;
    use crate::acl::Grant;
    use crate::sql::{Mark, Marked};

    fn usage_for(grantee: &str) -> Option<Vec<Grant>> {
        Some(vec![Grant {
            grantee: grantee.into(),
            privilege: "USAGE".into(),
            grantable: false,
            grantor: None,
        }])
    }

    #[test]
    fn a_wrapper_with_its_functions_options_and_grants() {
        let mut wrapper = Wrapper {
            header: header("remote", Some("app")),
            handler: Some("app.remote_handler".into()),
            validator: Some("app.remote_validator".into()),
            options: Some("debug 'true'".into()),
        };
        wrapper.header.comment = Some("the other shop".into());
        wrapper.header.acl = usage_for("reader");
        let items = dump_wrapper(&wrapper);
        assert_eq!(
            items[0].sql,
            "CREATE FOREIGN DATA WRAPPER remote HANDLER app.remote_handler VALIDATOR app.remote_validator \
             OPTIONS (\n    debug 'true'\n);\n\
             ALTER FOREIGN DATA WRAPPER remote OWNER TO app;\n\
             COMMENT ON FOREIGN DATA WRAPPER remote IS 'the other shop';\n"
        );
        assert_eq!(
            (
                items[0].kind,
                items[0].schema.as_str(),
                items[0].name.as_str()
            ),
            (ItemKind::ForeignDataWrapper, "", "remote")
        );
        let object = oid_ref(class::PG_FOREIGN_DATA_WRAPPER, 16_400);
        assert_eq!(items[0].owns, [object]);
        assert_eq!(
            items[1].sql,
            "GRANT USAGE ON FOREIGN DATA WRAPPER remote TO reader;\n"
        );
        assert_eq!(
            (items[1].kind, items[1].needs.as_slice()),
            (ItemKind::Acl, &[object][..])
        );

        let bare = Wrapper {
            header: header("bare", Some("app")),
            handler: None,
            validator: None,
            options: Some(String::new()),
        };
        let items = dump_wrapper(&bare);
        assert_eq!(items.len(), 1);
        assert!(
            items[0]
                .sql
                .starts_with("CREATE FOREIGN DATA WRAPPER bare;\n")
        );
    }

    #[test]
    fn a_server_with_its_type_version_options_and_grants() {
        let mut server = Server {
            header: header("\"Shop\"", Some("app")),
            wrapper_oid: 16_390,
            wrapper: "postgres_fdw".into(),
            server_type: Some("pg".into()),
            version: Some("17".into()),
            options: Some("host 'db', dbname 'shop'".into()),
        };
        server.header.acl = usage_for("PUBLIC");
        let items = dump_server(&server);
        assert_eq!(
            items[0].sql,
            "CREATE SERVER \"Shop\" TYPE 'pg' VERSION '17' FOREIGN DATA WRAPPER postgres_fdw \
             OPTIONS (\n    host 'db', dbname 'shop'\n);\n\
             ALTER SERVER \"Shop\" OWNER TO app;\n"
        );
        assert_eq!(
            (items[0].kind, items[0].name.as_str()),
            (ItemKind::ForeignServer, "Shop")
        );
        assert_eq!(items[0].owns, [oid_ref(class::PG_FOREIGN_SERVER, 16_400)]);
        assert_eq!(
            items[0].needs,
            [oid_ref(class::PG_FOREIGN_DATA_WRAPPER, 16_390)]
        );
        assert_eq!(
            items[1].sql,
            "GRANT USAGE ON FOREIGN SERVER \"Shop\" TO PUBLIC;\n"
        );

        server.server_type = None;
        server.version = None;
        server.options = None;
        server.header.acl = None;
        let items = dump_server(&server);
        assert_eq!(items.len(), 1);
        assert!(
            items[0]
                .sql
                .starts_with("CREATE SERVER \"Shop\" FOREIGN DATA WRAPPER postgres_fdw;\n")
        );
    }

    #[test]
    fn a_user_mapping_names_its_role_marked() {
        let mut mapping = UserMapping {
            oid: 16_410,
            server_oid: 16_400,
            server: "\"Shop\"".into(),
            role: "\"Clerk\"".into(),
            options: Some("user 'clerk', password 'secret'".into()),
        };
        let item = dump_user_mapping(&mapping);
        assert_eq!(
            item.sql,
            "CREATE USER MAPPING FOR \"Clerk\" SERVER \"Shop\" OPTIONS (\n    \
             user 'clerk', password 'secret'\n);\n"
        );
        assert_eq!(
            item.marks,
            [Mark {
                at: "CREATE USER MAPPING FOR ".len(),
                len: "\"Clerk\"".len(),
                is: Marked::Role {
                    name: "Clerk".into()
                },
            }]
        );
        assert_eq!(
            (item.kind, item.name.as_str()),
            (ItemKind::UserMapping, "\"Clerk\" on \"Shop\"")
        );
        assert_eq!(item.owns, [oid_ref(class::PG_USER_MAPPING, 16_410)]);
        assert_eq!(item.needs, [oid_ref(class::PG_FOREIGN_SERVER, 16_400)]);

        mapping.role = "PUBLIC".into();
        mapping.options = None;
        let item = dump_user_mapping(&mapping);
        assert_eq!(
            item.sql,
            "CREATE USER MAPPING FOR PUBLIC SERVER \"Shop\";\n"
        );
        assert!(item.marks.is_empty());
    }
}
