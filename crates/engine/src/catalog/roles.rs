//! The roles and database properties a restore onto another cluster needs (`globals.json`,
//! see `engine::globals`), read as pg_dumpall reads them but through `pg_roles`, which a
//! managed server's non-superuser may read (`pg_authid` is only read for password hashes,
//! when asked).
//!
//! Which roles: those `pg_shdepend` records for the database (owners, grantees, policy and
//! default-privilege roles) or for the database itself, the owner, the roles with settings
//! in it, then every role that is a member of one of those (the login roles an application
//! connects as) and every group those are members of. Reserved roles end the walk.

use std::collections::{BTreeMap, BTreeSet};

use super::*;
use crate::globals::{
    DatabaseGrant, DatabaseProperties, Globals, Membership, Reserved, Role, SecurityLabel,
};

/// The cluster's roles and this database's properties, as the catalog describes them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cluster {
    /// Every role by OID, as `pg_roles` describes it: its settings, password and what the
    /// database makes of it (`owns_objects`, `referenced`) are left to [`dump`].
    pub roles: BTreeMap<u32, Role>,
    /// The roles the database refers to; a role may be referred to more than once.
    pub references: Vec<RoleReference>,
    pub memberships: Vec<RoleMembership>,
    pub settings: Vec<RoleSettings>,
    /// The password hashes of the roles a restore needs, by OID; `None` when they were not
    /// asked for.
    pub passwords: Option<BTreeMap<u32, String>>,
    /// The database, its `ALTER DATABASE … SET` settings included.
    pub database: DatabaseProperties,
}

/// A role the database refers to (`pg_shdepend`, its owner, a role with settings in it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RoleReference {
    pub oid: u32,
    /// It owns something in the database, or the database itself.
    pub owns: bool,
}

/// A role's membership in a group role (`pg_auth_members`), by OIDs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RoleMembership {
    pub group: u32,
    pub member: u32,
    pub admin: bool,
    /// The membership's own INHERIT and SET options: from PostgreSQL 16, `None` before.
    pub inherit: Option<bool>,
    pub set: Option<bool>,
}

/// A role's settings (`pg_db_role_setting`), as `name=value`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleSettings {
    pub role: u32,
    /// Set for this database only (`ALTER ROLE … IN DATABASE`), not for every one.
    pub in_database: bool,
    pub config: Vec<String>,
}

pub async fn globals(db: &Db<'_>, include_passwords: bool) -> Result<Globals, CatalogError> {
    Ok(dump(get(db, include_passwords).await?))
}

/// The roles, what the database refers to, memberships, settings, the password hashes of
/// the roles a restore needs (only when `include_passwords`) and the database.
pub(super) async fn get(db: &Db<'_>, include_passwords: bool) -> Result<Cluster, CatalogError> {
    let roles = get_roles(db).await?;
    let references = get_references(db).await?;
    let memberships = get_memberships(db).await?;
    let (settings, database_settings) = get_settings(db).await?;
    let passwords = match include_passwords {
        true => Some(get_passwords(db, &wanted(&roles, &references, &memberships)).await?),
        false => None,
    };
    Ok(Cluster {
        roles,
        references,
        memberships,
        settings,
        passwords,
        database: get_database(db, database_settings).await?,
    })
}

/// Every role, by OID.
async fn get_roles(db: &Db<'_>) -> Result<BTreeMap<u32, Role>, CatalogError> {
    let roles_sql = "SELECT r.oid, r.rolname::text AS name, r.rolsuper, r.rolinherit, r.rolcreaterole, \
         r.rolcreatedb, r.rolcanlogin, r.rolreplication, r.rolbypassrls, r.rolconnlimit, \
         r.rolvaliduntil::text AS valid_until, pg_catalog.shobj_description(r.oid, 'pg_authid') AS comment, \
         (SELECT json_agg(json_build_object('provider', l.provider, 'label', l.label) ORDER BY l.provider) \
             FROM pg_catalog.pg_shseclabel l WHERE l.objoid = r.oid AND l.classoid = 'pg_catalog.pg_authid'::regclass)::text AS labels \
         FROM pg_catalog.pg_roles r ORDER BY r.rolname";
    let mut all: BTreeMap<u32, Role> = BTreeMap::new();
    for row in db.query("roles", roles_sql).await? {
        let oid: u32 = row.get("oid")?;
        let name: String = row.get("name")?;
        all.insert(
            oid,
            Role {
                reserved: Reserved::of(&name, oid),
                name,
                superuser: row.get("rolsuper")?,
                inherit: row.get("rolinherit")?,
                create_role: row.get("rolcreaterole")?,
                create_db: row.get("rolcreatedb")?,
                login: row.get("rolcanlogin")?,
                replication: row.get("rolreplication")?,
                bypass_rls: row.get("rolbypassrls")?,
                connection_limit: row.get("rolconnlimit")?,
                valid_until: row.get("valid_until")?,
                comment: row.get("comment")?,
                security_labels: security_labels(&row)?,
                settings: Vec::new(),
                database_settings: Vec::new(),
                owns_objects: false,
                referenced: false,
                password: None,
            },
        );
    }
    Ok(all)
}

/// The roles the database refers to: in `pg_shdepend` (for its objects or itself), its
/// owner, the roles with settings in it, and the bootstrap superuser.
async fn get_references(db: &Db<'_>) -> Result<Vec<RoleReference>, CatalogError> {
    let referenced_sql = "WITH d AS (SELECT oid, datdba FROM pg_catalog.pg_database WHERE datname = current_database()) \
         SELECT s.refobjid AS oid, bool_or(s.deptype = 'o') AS owns FROM pg_catalog.pg_shdepend s, d \
         WHERE s.refclassid = 'pg_catalog.pg_authid'::regclass \
           AND (s.dbid = d.oid OR (s.classid = 'pg_catalog.pg_database'::regclass AND s.objid = d.oid)) \
         GROUP BY s.refobjid \
         UNION ALL SELECT d.datdba, true FROM d \
         UNION ALL SELECT s.setrole, false FROM pg_catalog.pg_db_role_setting s, d \
           WHERE s.setdatabase = d.oid AND s.setrole <> 0 \
         UNION ALL SELECT 10, true";
    let mut references = Vec::new();
    for row in db
        .query("roles the database refers to", referenced_sql)
        .await?
    {
        references.push(RoleReference {
            oid: row.get("oid")?,
            owns: row.get("owns")?,
        });
    }
    Ok(references)
}

/// Every membership, with its INHERIT and SET options from 16.
async fn get_memberships(db: &Db<'_>) -> Result<Vec<RoleMembership>, CatalogError> {
    let (inherit, set) = if db.version.at_least(16) {
        ("m.inherit_option", "m.set_option")
    } else {
        ("NULL::bool", "NULL::bool")
    };
    let members_sql = format!(
        "SELECT m.roleid, m.member, m.admin_option, {inherit} AS inherit_option, {set} AS set_option \
         FROM pg_catalog.pg_auth_members m ORDER BY m.roleid, m.member"
    );
    let mut memberships = Vec::new();
    for row in db.query("role memberships", &members_sql).await? {
        memberships.push(RoleMembership {
            group: row.get("roleid")?,
            member: row.get("member")?,
            admin: row.get("admin_option")?,
            inherit: row.get("inherit_option")?,
            set: row.get("set_option")?,
        });
    }
    Ok(memberships)
}

/// The roles' settings, everywhere or in this database, and this database's own.
async fn get_settings(db: &Db<'_>) -> Result<(Vec<RoleSettings>, Vec<String>), CatalogError> {
    let settings_sql = "SELECT s.setrole, s.setdatabase <> 0 AS in_database, s.setconfig \
         FROM pg_catalog.pg_db_role_setting s \
         WHERE s.setdatabase IN (0, (SELECT oid FROM pg_catalog.pg_database WHERE datname = current_database())) \
         ORDER BY s.setrole, s.setdatabase";
    let (mut settings, mut database_settings) = (Vec::new(), Vec::new());
    for row in db.query("role and database settings", settings_sql).await? {
        let (role, in_database): (u32, bool) = (row.get("setrole")?, row.get("in_database")?);
        let config: Vec<String> = row
            .get::<Option<Vec<String>>>("setconfig")?
            .unwrap_or_default();
        match (role, in_database) {
            (0, true) => database_settings = config,
            (0, false) => {}
            (role, in_database) => settings.push(RoleSettings {
                role,
                in_database,
                config,
            }),
        }
    }
    Ok((settings, database_settings))
}

/// The password hashes of `roles` that have one.
async fn get_passwords(
    db: &Db<'_>,
    roles: &BTreeSet<u32>,
) -> Result<BTreeMap<u32, String>, CatalogError> {
    let mut passwords = BTreeMap::new();
    if roles.is_empty() {
        return Ok(passwords);
    }
    let list: Vec<String> = roles.iter().map(u32::to_string).collect();
    let sql = format!(
        "SELECT oid, rolpassword FROM pg_catalog.pg_authid WHERE oid IN ({}) AND rolpassword IS NOT NULL",
        list.join(", ")
    );
    for row in db
        .query(
            "role passwords (--include-role-passwords needs a superuser)",
            &sql,
        )
        .await?
    {
        let oid: u32 = row.get("oid")?;
        if let Some(password) = row.get::<Option<String>>("rolpassword")? {
            passwords.insert(oid, password);
        }
    }
    Ok(passwords)
}

/// The roles a restore needs: the [`role_closure`] of those the database refers to, walking
/// through neither reserved roles nor roles `pg_roles` does not show.
fn wanted(
    roles: &BTreeMap<u32, Role>,
    references: &[RoleReference],
    memberships: &[RoleMembership],
) -> BTreeSet<u32> {
    let referenced: BTreeSet<u32> = references.iter().map(|r| r.oid).collect();
    let pairs: Vec<(u32, u32)> = memberships.iter().map(|m| (m.group, m.member)).collect();
    let is_reserved = |oid: u32| roles.get(&oid).is_none_or(|r| r.reserved.is_some());
    role_closure(&referenced, &pairs, &is_reserved)
}

/// The globals of `cluster`: the roles a restore needs (each with its settings, password
/// and what the database makes of it), their memberships among themselves and in reserved
/// roles, and the database.
pub(super) fn dump(cluster: Cluster) -> Globals {
    let Cluster {
        mut roles,
        references,
        memberships,
        settings,
        passwords,
        database,
    } = cluster;
    let wanted = wanted(&roles, &references, &memberships);
    for RoleSettings {
        role,
        in_database,
        config,
    } in settings
    {
        if let Some(r) = roles.get_mut(&role).filter(|_| wanted.contains(&role)) {
            match in_database {
                true => r.database_settings = config,
                false => r.settings = config,
            }
        }
    }
    for (oid, password) in passwords.iter().flatten() {
        if let Some(r) = roles.get_mut(oid) {
            r.password = Some(password.clone());
        }
    }
    let is_reserved = |oid: u32| roles.get(&oid).is_some_and(|r| r.reserved.is_some());
    let memberships = memberships
        .iter()
        .filter(|m| {
            wanted.contains(&m.member) && (wanted.contains(&m.group) || is_reserved(m.group))
        })
        .filter_map(|m| {
            Some(Membership {
                role: roles.get(&m.group)?.name.clone(),
                member: roles.get(&m.member)?.name.clone(),
                admin: m.admin,
                inherit: m.inherit,
                set: m.set,
            })
        })
        .collect();
    let referenced: BTreeSet<u32> = references.iter().map(|r| r.oid).collect();
    let owners: BTreeSet<u32> = references
        .iter()
        .filter(|r| r.owns)
        .map(|r| r.oid)
        .collect();
    let roles = wanted
        .iter()
        .filter_map(|oid| {
            roles.remove(oid).map(|mut r| {
                r.owns_objects = owners.contains(oid);
                r.referenced = referenced.contains(oid);
                r
            })
        })
        .collect();
    Globals {
        roles,
        memberships,
        database,
        passwords_included: passwords.is_some(),
    }
}

/// The referenced roles, their members (recursively) and the groups all of those are members
/// of (recursively), never walking through a reserved role (though it is kept when referenced).
fn role_closure(
    referenced: &BTreeSet<u32>,
    memberships: &[(u32, u32)],
    is_reserved: &dyn Fn(u32) -> bool,
) -> BTreeSet<u32> {
    let walk = |start: BTreeSet<u32>, step: &dyn Fn(u32) -> Vec<u32>| {
        let mut seen = start.clone();
        let mut queue: Vec<u32> = start.into_iter().filter(|r| !is_reserved(*r)).collect();
        while let Some(role) = queue.pop() {
            for next in step(role) {
                if !is_reserved(next) && seen.insert(next) {
                    queue.push(next);
                }
            }
        }
        seen
    };
    let members_of = |group: u32| {
        memberships
            .iter()
            .filter(|(g, _)| *g == group)
            .map(|(_, m)| *m)
            .collect()
    };
    let groups_of = |member: u32| {
        memberships
            .iter()
            .filter(|(_, m)| *m == member)
            .map(|(g, _)| *g)
            .collect()
    };
    let down = walk(referenced.clone(), &members_of);
    walk(down, &groups_of)
}

/// This database's properties, with its own `settings`: the locale provider from 15, the ICU
/// rules from 16, the locale where each version keeps it.
async fn get_database(
    db: &Db<'_>,
    settings: Vec<String>,
) -> Result<DatabaseProperties, CatalogError> {
    let v = db.version;
    let provider = if v.at_least(15) {
        "CASE d.datlocprovider WHEN 'i' THEN 'icu' WHEN 'b' THEN 'builtin' ELSE 'libc' END"
    } else {
        "'libc'"
    };
    let locale = match v {
        v if v.at_least(17) => "d.datlocale",
        v if v.at_least(15) => "d.daticulocale",
        _ => "NULL::text",
    };
    let rules = if v.at_least(16) {
        "d.daticurules"
    } else {
        "NULL::text"
    };
    let grants = |acl: &str| {
        format!(
            "(SELECT json_agg(json_build_object('grantee', CASE WHEN a.grantee = 0 THEN NULL ELSE pg_catalog.pg_get_userbyid(a.grantee)::text END, \
             'privilege', a.privilege_type, 'grantable', a.is_grantable) ORDER BY a.ord) \
             FROM pg_catalog.aclexplode({acl}) WITH ORDINALITY AS a(grantor, grantee, privilege_type, is_grantable, ord))::text"
        )
    };
    let sql = format!(
        "SELECT d.datname::text AS name, pg_catalog.pg_get_userbyid(d.datdba)::text AS owner, \
         pg_catalog.pg_encoding_to_char(d.encoding)::text AS encoding, d.datcollate::text AS collate, \
         d.datctype::text AS ctype, {provider} AS provider, {locale}::text AS locale, {rules}::text AS rules, \
         d.datconnlimit, pg_catalog.shobj_description(d.oid, 'pg_database') AS comment, \
         (SELECT json_agg(json_build_object('provider', l.provider, 'label', l.label) ORDER BY l.provider) \
             FROM pg_catalog.pg_shseclabel l WHERE l.objoid = d.oid AND l.classoid = 'pg_catalog.pg_database'::regclass)::text AS labels, \
         CASE WHEN d.datacl IS NULL THEN NULL ELSE coalesce({}, '[]') END AS acl, \
         coalesce({}, '[]') AS acl_default, \
         (SELECT t.spcname::text FROM pg_catalog.pg_tablespace t WHERE t.oid = d.dattablespace AND t.spcname <> 'pg_default') AS tablespace \
         FROM pg_catalog.pg_database d WHERE d.datname = current_database()",
        grants("d.datacl"),
        grants("pg_catalog.acldefault('d', d.datdba)")
    );
    let rows = db.query("the database's properties", &sql).await?;
    let Some(row) = rows.first() else {
        return Err(CatalogError::Query {
            what: "the database's properties",
            server: v,
            reason: "current_database() is not in pg_database".into(),
        });
    };
    let parse = |column: &str| -> Result<Option<Vec<DatabaseGrant>>, CatalogError> {
        row.get::<Option<String>>(column)?
            .map(|text| {
                serde_json::from_str(&text).map_err(|e| CatalogError::Shape {
                    what: "the database's properties",
                    column: column.to_string(),
                    server: v,
                    reason: e.to_string(),
                })
            })
            .transpose()
    };
    Ok(DatabaseProperties {
        name: row.get("name")?,
        owner: row.get("owner")?,
        encoding: row.get("encoding")?,
        collate: row.get("collate")?,
        ctype: row.get("ctype")?,
        locale_provider: row.get("provider")?,
        locale: row.get("locale")?,
        icu_rules: row.get("rules")?,
        connection_limit: row.get("datconnlimit")?,
        comment: row.get("comment")?,
        security_labels: security_labels(row)?,
        grants: parse("acl")?,
        default_grants: parse("acl_default")?.unwrap_or_default(),
        settings,
        tablespace: row.get("tablespace")?,
    })
}

/// The `labels` column: a JSON array of `{provider, label}`, or NULL for none.
fn security_labels(row: &Fields) -> Result<Vec<SecurityLabel>, CatalogError> {
    row.get::<Option<String>>("labels")?
        .map(|text| {
            serde_json::from_str(&text).map_err(|e| CatalogError::Shape {
                what: row.what,
                column: "labels".into(),
                server: row.server,
                reason: e.to_string(),
            })
        })
        .transpose()
        .map(Option::unwrap_or_default)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A role as `pg_roles` shows it, with no privileged attribute.
    fn role(oid: u32, name: &str) -> Role {
        Role {
            name: name.into(),
            reserved: Reserved::of(name, oid),
            superuser: false,
            inherit: true,
            create_role: false,
            create_db: false,
            login: false,
            replication: false,
            bypass_rls: false,
            connection_limit: -1,
            valid_until: None,
            comment: None,
            security_labels: Vec::new(),
            settings: Vec::new(),
            database_settings: Vec::new(),
            owns_objects: false,
            referenced: false,
            password: None,
        }
    }

    fn database() -> DatabaseProperties {
        DatabaseProperties {
            name: "shop".into(),
            owner: "app".into(),
            encoding: "UTF8".into(),
            collate: "C.UTF-8".into(),
            ctype: "C.UTF-8".into(),
            locale_provider: "libc".into(),
            locale: None,
            icu_rules: None,
            connection_limit: -1,
            comment: None,
            security_labels: Vec::new(),
            grants: None,
            default_grants: Vec::new(),
            settings: vec!["statement_timeout=5s".into()],
            tablespace: None,
        }
    }

    /// The bootstrap superuser, `app` (owner), `"Api"` (a grantee, member of `app`) and
    /// `other` (nothing to do with the database).
    fn cluster() -> Cluster {
        Cluster {
            roles: BTreeMap::from([
                (10, role(10, "postgres")),
                (16_384, role(16_384, "app")),
                (16_385, role(16_385, "Api")),
                (16_386, role(16_386, "other")),
            ]),
            references: vec![
                RoleReference {
                    oid: 16_384,
                    owns: true,
                },
                RoleReference {
                    oid: 10,
                    owns: true,
                },
            ],
            memberships: vec![RoleMembership {
                group: 16_384,
                member: 16_385,
                admin: false,
                inherit: None,
                set: None,
            }],
            settings: Vec::new(),
            passwords: None,
            database: database(),
        }
    }

    #[test]
    fn a_role_with_every_attribute_keeps_them_all() {
        let mut cluster = cluster();
        let api = cluster.roles.get_mut(&16_385).unwrap();
        *api = Role {
            superuser: true,
            inherit: false,
            create_role: true,
            create_db: true,
            login: true,
            replication: true,
            bypass_rls: true,
            connection_limit: 20,
            valid_until: Some("2030-01-01 00:00:00+00".into()),
            comment: Some("the API".into()),
            security_labels: vec![SecurityLabel {
                provider: "selinux".into(),
                label: "user_u".into(),
            }],
            ..role(16_385, "Api")
        };
        let expected = Role {
            referenced: false,
            ..api.clone()
        };
        let globals = dump(cluster);
        assert_eq!(globals.role("Api"), Some(&expected));
        assert_eq!(
            globals
                .role("Api")
                .unwrap()
                .create_sql(&expected.attributes()),
            "CREATE ROLE \"Api\" WITH SUPERUSER NOINHERIT CREATEROLE CREATEDB LOGIN REPLICATION BYPASSRLS \
             CONNECTION LIMIT 20 VALID UNTIL '2030-01-01 00:00:00+00';\n\
             COMMENT ON ROLE \"Api\" IS 'the API';\n\
             SECURITY LABEL FOR selinux ON ROLE \"Api\" IS 'user_u';\n"
        );
    }

    #[test]
    fn the_roles_a_restore_needs_with_what_the_database_makes_of_them() {
        let globals = dump(cluster());
        let names: Vec<&str> = globals.roles.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(
            names,
            ["postgres", "app", "Api"],
            "in OID order, not `other`"
        );
        let flags = |name| {
            let r = globals.role(name).unwrap();
            (r.owns_objects, r.referenced, r.reserved)
        };
        assert_eq!(flags("postgres"), (true, true, Some(Reserved::Bootstrap)));
        assert_eq!(flags("app"), (true, true, None));
        assert_eq!(
            flags("Api"),
            (false, false, None),
            "a member that comes along"
        );
        assert_eq!(globals.database, database());
        assert!(!globals.passwords_included);
    }

    #[test]
    fn a_membership_before_16_has_no_inherit_or_set_option() {
        let mut cluster = cluster();
        cluster.memberships[0].admin = true;
        let globals = dump(cluster);
        let membership = Membership {
            role: "app".into(),
            member: "Api".into(),
            admin: true,
            inherit: None,
            set: None,
        };
        assert_eq!(globals.memberships, std::slice::from_ref(&membership));
        assert_eq!(
            membership.grant_sql(false),
            "GRANT app TO \"Api\" WITH ADMIN OPTION;\n"
        );
        assert_eq!(
            membership.grant_sql(true),
            "GRANT app TO \"Api\" WITH ADMIN TRUE;\n"
        );
    }

    #[test]
    fn a_membership_from_16_has_its_admin_inherit_and_set_options() {
        let mut cluster = cluster();
        cluster.memberships[0] = RoleMembership {
            admin: true,
            inherit: Some(false),
            set: Some(true),
            ..cluster.memberships[0]
        };
        let globals = dump(cluster);
        assert_eq!(
            (
                globals.memberships[0].admin,
                globals.memberships[0].inherit,
                globals.memberships[0].set
            ),
            (true, Some(false), Some(true))
        );
        assert_eq!(
            globals.memberships[0].grant_sql(true),
            "GRANT app TO \"Api\" WITH ADMIN TRUE, INHERIT FALSE, SET TRUE;\n"
        );
    }

    #[test]
    fn memberships_in_reserved_groups_are_kept_and_in_unneeded_ones_left_out() {
        let mut cluster = cluster();
        cluster.roles.insert(4_200, role(4_200, "pg_read_all_data"));
        let membership = |group, member| RoleMembership {
            group,
            member,
            admin: false,
            inherit: Some(true),
            set: Some(true),
        };
        cluster.memberships = vec![
            membership(4_200, 16_384),
            membership(16_386, 16_384),
            membership(16_384, 16_385),
        ];
        let globals = dump(cluster);
        let pairs: Vec<(&str, &str)> = globals
            .memberships
            .iter()
            .map(|m| (m.role.as_str(), m.member.as_str()))
            .collect();
        // `other` comes along as a group of `app`: its membership is kept too.
        assert_eq!(
            pairs,
            [
                ("pg_read_all_data", "app"),
                ("other", "app"),
                ("app", "Api")
            ]
        );
        assert!(globals.role("pg_read_all_data").is_none(), "reserved");
    }

    #[test]
    fn settings_and_passwords_go_to_the_roles_a_restore_needs() {
        let mut cluster = cluster();
        cluster.settings = vec![
            RoleSettings {
                role: 16_384,
                in_database: false,
                config: vec!["work_mem=64MB".into()],
            },
            RoleSettings {
                role: 16_385,
                in_database: true,
                config: vec!["search_path=api, public".into()],
            },
            RoleSettings {
                role: 16_386,
                in_database: false,
                config: vec!["work_mem=1GB".into()],
            },
        ];
        cluster.passwords = Some(BTreeMap::from([(16_385, "SCRAM-SHA-256$4096:x".into())]));
        let globals = dump(cluster);
        let app = globals.role("app").unwrap();
        assert_eq!(
            (app.settings.as_slice(), app.database_settings.as_slice()),
            (&["work_mem=64MB".to_string()][..], &[][..])
        );
        let api = globals.role("Api").unwrap();
        assert_eq!(api.database_settings, ["search_path=api, public"]);
        assert_eq!(api.password.as_deref(), Some("SCRAM-SHA-256$4096:x"));
        assert_eq!(app.password, None);
        assert!(globals.role("other").is_none());
        assert!(globals.passwords_included);
    }

    #[test]
    fn the_closure_takes_members_and_their_groups_but_not_through_reserved_roles() {
        // 1 anon (referenced), 2 authenticator (member of 1 and 5), 5 service_role,
        // 7 ops (group of 2), 9 a reserved group with 1 and 11 (another database's role).
        let memberships = [(1, 2), (5, 2), (7, 2), (9, 1), (9, 11)];
        let referenced = BTreeSet::from([1]);
        let wanted = role_closure(&referenced, &memberships, &|r| r == 9);
        assert_eq!(wanted, BTreeSet::from([1, 2, 5, 7]));
    }

    #[test]
    fn a_referenced_reserved_role_is_kept_but_not_walked() {
        let memberships = [(10, 3)];
        let wanted = role_closure(&BTreeSet::from([10]), &memberships, &|r| r == 10);
        assert_eq!(wanted, BTreeSet::from([10]));
    }
}
