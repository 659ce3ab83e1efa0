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

pub async fn globals(db: &Db<'_>, include_passwords: bool) -> Result<Globals, CatalogError> {
    let v = db.version;
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

    let referenced_sql = "WITH d AS (SELECT oid, datdba FROM pg_catalog.pg_database WHERE datname = current_database()) \
         SELECT s.refobjid AS oid, bool_or(s.deptype = 'o') AS owns FROM pg_catalog.pg_shdepend s, d \
         WHERE s.refclassid = 'pg_catalog.pg_authid'::regclass \
           AND (s.dbid = d.oid OR (s.classid = 'pg_catalog.pg_database'::regclass AND s.objid = d.oid)) \
         GROUP BY s.refobjid \
         UNION ALL SELECT d.datdba, true FROM d \
         UNION ALL SELECT s.setrole, false FROM pg_catalog.pg_db_role_setting s, d \
           WHERE s.setdatabase = d.oid AND s.setrole <> 0 \
         UNION ALL SELECT 10, true";
    let mut owners = BTreeSet::new();
    let mut referenced = BTreeSet::new();
    for row in db
        .query("roles the database refers to", referenced_sql)
        .await?
    {
        let oid: u32 = row.get("oid")?;
        referenced.insert(oid);
        if row.get::<bool>("owns")? {
            owners.insert(oid);
        }
    }

    let (inherit, set) = if v.at_least(16) {
        ("m.inherit_option", "m.set_option")
    } else {
        ("NULL::bool", "NULL::bool")
    };
    let members_sql = format!(
        "SELECT m.roleid, m.member, m.admin_option, {inherit} AS inherit_option, {set} AS set_option \
         FROM pg_catalog.pg_auth_members m ORDER BY m.roleid, m.member"
    );
    let mut edges = Vec::new();
    for row in db.query("role memberships", &members_sql).await? {
        let (group, member): (u32, u32) = (row.get("roleid")?, row.get("member")?);
        let options = (
            row.get::<bool>("admin_option")?,
            row.get::<Option<bool>>("inherit_option")?,
            row.get::<Option<bool>>("set_option")?,
        );
        edges.push((group, member, options));
    }
    let pairs: Vec<(u32, u32)> = edges.iter().map(|(g, m, _)| (*g, *m)).collect();
    let reserved: BTreeSet<u32> = all
        .iter()
        .filter(|(_, r)| r.reserved.is_some())
        .map(|(oid, _)| *oid)
        .collect();
    let is_reserved = |oid: u32| reserved.contains(&oid) || !all.contains_key(&oid);
    let wanted = role_closure(&referenced, &pairs, &is_reserved);

    let settings_sql = "SELECT s.setrole, s.setdatabase <> 0 AS in_database, s.setconfig \
         FROM pg_catalog.pg_db_role_setting s \
         WHERE s.setdatabase IN (0, (SELECT oid FROM pg_catalog.pg_database WHERE datname = current_database())) \
         ORDER BY s.setrole, s.setdatabase";
    let mut database_settings = Vec::new();
    for row in db.query("role and database settings", settings_sql).await? {
        let (role, in_database): (u32, bool) = (row.get("setrole")?, row.get("in_database")?);
        let config: Vec<String> = row
            .get::<Option<Vec<String>>>("setconfig")?
            .unwrap_or_default();
        match (role, in_database) {
            (0, true) => database_settings = config,
            (0, false) => {}
            (role, in_database) => {
                if let Some(r) = all.get_mut(&role).filter(|_| wanted.contains(&role)) {
                    match in_database {
                        true => r.database_settings = config,
                        false => r.settings = config,
                    }
                }
            }
        }
    }

    if include_passwords && !wanted.is_empty() {
        let list: Vec<String> = wanted.iter().map(u32::to_string).collect();
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
            if let Some(r) = all.get_mut(&oid) {
                r.password = row.get("rolpassword")?;
            }
        }
    }

    let is_reserved = |oid: u32| reserved.contains(&oid);
    let memberships = edges
        .iter()
        .filter(|(group, member, _)| {
            wanted.contains(member) && (wanted.contains(group) || is_reserved(*group))
        })
        .filter_map(|(group, member, (admin, inherit, set))| {
            Some(Membership {
                role: all.get(group)?.name.clone(),
                member: all.get(member)?.name.clone(),
                admin: *admin,
                inherit: *inherit,
                set: *set,
            })
        })
        .collect();
    let roles = wanted
        .iter()
        .filter_map(|oid| {
            all.remove(oid).map(|mut r| {
                r.owns_objects = owners.contains(oid);
                r.referenced = referenced.contains(oid);
                r
            })
        })
        .collect();
    Ok(Globals {
        roles,
        memberships,
        database: database(db, database_settings).await?,
        passwords_included: include_passwords,
    })
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

async fn database(db: &Db<'_>, settings: Vec<String>) -> Result<DatabaseProperties, CatalogError> {
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
