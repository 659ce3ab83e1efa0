//! Roles on the target: which of the backup's roles are there, which a restore creates,
//! which it maps to another name, and the statements that do it.
//!
//! The plan is a pure function of the backup's `globals.json`, the target's roles and the
//! operator's options. Reserved roles (predefined, a platform's, the bootstrap superuser) are
//! never created: one the target lacks goes to the restoring role, and so does a role that is
//! a superuser here when the restoring role is not (it could not give it objects). Each such
//! mapping is reported. A role that exists is never altered; a created one gets the
//! attributes the restoring role may give (the rest are reported), its settings, comment and
//! memberships, and no password unless the backup holds its hash.

use std::collections::{BTreeMap, BTreeSet};

use sha2::{Digest, Sha256};
use tokio::io::AsyncReadExt;
use tokio_postgres::Client;

use super::RestoreError;
use crate::catalog::ident;
use crate::globals::{Attribute, Globals, Membership, Role, set_sql};
use crate::manifest::Manifest;
use backstop_pg::describe;
use backstop_pg::version::ServerVersion;
use backstop_store::layout::{BackupId, DatabaseId, set_key};
use backstop_store::store::{Store, StoreError};

/// What a restore does about the roles the backup needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RolesMode {
    /// Restore when every role is there; otherwise name the missing ones and change nothing.
    #[default]
    Check,
    /// Say what `create` would do and change nothing.
    Plan,
    /// Create the missing roles.
    Create,
    /// Do not look: restore as if every role were there.
    Skip,
}

/// The target's roles and what the restoring role may do.
#[derive(Debug, Clone)]
pub struct TargetRoles {
    pub version: ServerVersion,
    pub restorer: String,
    pub superuser: bool,
    pub create_role: bool,
    pub create_db: bool,
    pub replication: bool,
    pub bypass_rls: bool,
    /// Every role on the target, and whether it is a superuser.
    pub existing: BTreeMap<String, bool>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleToCreate {
    pub role: Role,
    /// Privileged attributes it gets, and those the restoring role may not give.
    pub granted: Vec<Attribute>,
    pub withheld: Vec<Attribute>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RolePlan {
    /// Source role name → the name on the target, for every role that is renamed.
    pub map: BTreeMap<String, String>,
    /// Why each automatic rename was made, one line each.
    pub mapped: Vec<String>,
    /// Roles the backup needs that are on the target (after mapping).
    pub present: Vec<String>,
    /// Roles the database names that are not on the target: a restore needs them.
    pub missing: Vec<String>,
    /// Roles that are not on the target but that the database does not name (members and
    /// groups of its roles): `create` makes them too, a restore works without them.
    pub missing_members: Vec<String>,
    pub create: Vec<RoleToCreate>,
    /// Memberships to grant (names as on the target): those of roles being created.
    pub memberships: Vec<Membership>,
    /// What the options name wrongly, one line each (refused before anything changes).
    pub problems: Vec<String>,
}

impl RolePlan {
    /// The target's name for a source role.
    pub fn name<'a>(&'a self, role: &'a str) -> &'a str {
        self.map.get(role).map(String::as_str).unwrap_or(role)
    }
}

/// What a restore did about roles, for the operator.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RolesReport {
    pub created: Vec<String>,
    pub mapped: Vec<String>,
    /// One line per thing not done: an attribute withheld, a membership or setting refused.
    pub not_granted: Vec<String>,
    /// `ALTER ROLE ... PASSWORD` statements the operator must run (created login roles).
    pub passwords_to_set: Vec<String>,
    /// Roles the restoring role was made a member of, to give them objects.
    pub joined: Vec<String>,
}

/// Decides what to do about each role of `globals` on `target`.
pub fn plan(
    globals: &Globals,
    target: &TargetRoles,
    explicit: &[(String, String)],
    mode: RolesMode,
) -> RolePlan {
    let mut plan = RolePlan::default();
    let known: BTreeSet<&str> = globals.roles.iter().map(|r| r.name.as_str()).collect();
    for (old, new) in explicit {
        if !known.contains(old.as_str()) {
            plan.problems.push(format!(
                "--role-map {old}={new}: the backup refers to no role `{old}`"
            ));
        } else if !target.existing.contains_key(new) && !known.contains(new.as_str()) {
            plan.problems.push(format!(
                "--role-map {old}={new}: there is no role `{new}` on the target; create it first"
            ));
        } else {
            plan.map.insert(old.clone(), new.clone());
        }
    }
    let mut to_create = Vec::new();
    for role in &globals.roles {
        if plan.map.contains_key(&role.name) {
            continue;
        }
        match (target.existing.get(&role.name), role.reserved) {
            (Some(&superuser), _) => {
                if superuser && !target.superuser && role.owns_objects {
                    plan.map.insert(role.name.clone(), target.restorer.clone());
                    plan.mapped.push(format!(
                        "{} is a superuser here, which {} cannot give objects to: its objects go to {} (or pass --role-map {}=ROLE)",
                        role.name, target.restorer, target.restorer, role.name
                    ));
                } else {
                    plan.present.push(role.name.clone());
                }
            }
            (None, Some(reserved)) => {
                plan.map.insert(role.name.clone(), target.restorer.clone());
                plan.mapped.push(format!(
                    "{} ({}) is not on the target: its objects and grants go to {} (or pass --role-map {}=ROLE)",
                    role.name,
                    reserved.describe(),
                    target.restorer,
                    role.name
                ));
            }
            (None, None) => {
                match role.referenced {
                    true => plan.missing.push(role.name.clone()),
                    false => plan.missing_members.push(role.name.clone()),
                }
                to_create.push(role);
            }
        }
    }
    if mode == RolesMode::Create || mode == RolesMode::Plan {
        for role in to_create {
            let (granted, withheld) = role
                .attributes()
                .into_iter()
                .partition(|a| may_give(target, *a));
            plan.create.push(RoleToCreate {
                role: role.clone(),
                granted,
                withheld,
            });
        }
    }
    let created: BTreeSet<&str> = plan.create.iter().map(|c| c.role.name.as_str()).collect();
    for m in &globals.memberships {
        if created.contains(m.role.as_str()) || created.contains(m.member.as_str()) {
            let mut m = m.clone();
            m.role = plan.name(&m.role).to_string();
            m.member = plan.name(&m.member).to_string();
            if m.role != m.member {
                plan.memberships.push(m);
            }
        }
    }
    plan
}

/// Whether the restoring role may create a role with `attribute` (superusers may give
/// everything; from 16 a CREATEROLE role gives only the attributes it has itself, and
/// before 16 never REPLICATION or BYPASSRLS).
fn may_give(target: &TargetRoles, attribute: Attribute) -> bool {
    if target.superuser {
        return true;
    }
    let v16 = target.version.at_least(16);
    match attribute {
        Attribute::Superuser => false,
        Attribute::CreateRole => target.create_role,
        Attribute::CreateDb => !v16 || target.create_db,
        Attribute::Replication => v16 && target.replication,
        Attribute::BypassRls => v16 && target.bypass_rls,
    }
}

/// The plan as lines for the operator.
pub fn describe_plan(plan: &RolePlan) -> Vec<String> {
    let mut lines = Vec::new();
    lines.extend(plan.problems.iter().cloned());
    lines.extend(plan.mapped.iter().cloned());
    if !plan.present.is_empty() {
        lines.push(format!("present: {}", plan.present.join(", ")));
    }
    if !plan.missing.is_empty() {
        lines.push(format!("missing: {}", plan.missing.join(", ")));
    }
    if !plan.missing_members.is_empty() {
        lines.push(format!(
            "missing, not needed by the restore (members and groups of the roles above): {}",
            plan.missing_members.join(", ")
        ));
    }
    for c in &plan.create {
        let mut line = format!("would create {}", c.role.name);
        if !c.granted.is_empty() {
            let words: Vec<_> = c.granted.iter().map(|a| a.keyword()).collect();
            line.push_str(&format!(" ({})", words.join(" ")));
        }
        if !c.withheld.is_empty() {
            let words: Vec<_> = c.withheld.iter().map(|a| a.keyword()).collect();
            line.push_str(&format!(
                " without {}, which the restoring role may not give",
                words.join(" ")
            ));
        }
        lines.push(line);
    }
    for m in &plan.memberships {
        lines.push(format!("would grant {} to {}", m.role, m.member));
    }
    lines
}

/// Reads the target's roles and the restoring role's powers.
pub async fn read_target(client: &Client) -> Result<TargetRoles, RestoreError> {
    let step = "reading the target's roles";
    let version = ServerVersion::read(client)
        .await
        .map_err(|e| RestoreError::Database {
            step,
            reason: e.to_string(),
        })?;
    let rows = client
        .query(
            "SELECT rolname::text, rolsuper, rolname = current_user, rolcreaterole, rolcreatedb, \
             rolreplication, rolbypassrls FROM pg_catalog.pg_roles",
            &[],
        )
        .await
        .map_err(|e| RestoreError::Database {
            step,
            reason: describe(&e),
        })?;
    let shape = |e: tokio_postgres::Error| RestoreError::Database {
        step,
        reason: e.to_string(),
    };
    let mut target = TargetRoles {
        version,
        restorer: String::new(),
        superuser: false,
        create_role: false,
        create_db: false,
        replication: false,
        bypass_rls: false,
        existing: BTreeMap::new(),
    };
    for row in rows {
        let name: String = row.try_get(0).map_err(shape)?;
        let superuser: bool = row.try_get(1).map_err(shape)?;
        if row.try_get::<_, bool>(2).map_err(shape)? {
            target.restorer = name.clone();
            target.superuser = superuser;
            target.create_role = row.try_get(3).map_err(shape)?;
            target.create_db = row.try_get(4).map_err(shape)?;
            target.replication = row.try_get(5).map_err(shape)?;
            target.bypass_rls = row.try_get(6).map_err(shape)?;
        }
        target.existing.insert(name, superuser);
    }
    Ok(target)
}

/// Reads and checks the set's `globals.json`; `None` for a set taken before it existed.
pub async fn read_globals(
    store: &dyn Store,
    manifest: &Manifest,
) -> Result<Option<Globals>, RestoreError> {
    let Some(file) = &manifest.globals else {
        return Ok(None);
    };
    let corrupt = |reason: String| RestoreError::Corrupt {
        backup: manifest.backup_id.clone(),
        part: file.key.clone(),
        reason,
    };
    let manifest_error = |reason: String| RestoreError::Manifest {
        key: file.key.clone(),
        reason,
    };
    let database =
        DatabaseId::new(&manifest.database_id).map_err(|e| manifest_error(e.to_string()))?;
    let backup = BackupId::parse(&manifest.backup_id).map_err(|e| manifest_error(e.to_string()))?;
    let mut bytes = Vec::new();
    match store.get(&set_key(&database, &backup, &file.key)).await {
        Ok(mut reader) => {
            reader
                .read_to_end(&mut bytes)
                .await
                .map_err(|e| corrupt(format!("reading it failed: {e}")))?;
        }
        Err(StoreError::NotFound { .. }) => {
            return Err(corrupt("it is missing from the store".into()));
        }
        Err(e) => return Err(e.into()),
    }
    let sha = hex::encode(Sha256::digest(&bytes));
    if bytes.len() as u64 != file.bytes || sha != file.sha256 {
        return Err(corrupt(format!(
            "{} bytes with SHA-256 {sha}, the manifest says {} bytes with {}",
            bytes.len(),
            file.bytes,
            file.sha256
        )));
    }
    if let Some(encrypted) = &manifest.encryption {
        let keys = manifest
            .keys
            .0
            .as_ref()
            .ok_or_else(|| super::parts::no_identity(manifest))?;
        bytes = crate::encryption::decrypt_bytes(keys, &bytes, &encrypted.recipients)
            .map_err(|e| super::parts::decrypt_error(manifest, &file.key, e))?;
    }
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| corrupt(format!("it is not a roles file this Backstop reads: {e}")))
}

/// Creates the planned roles with their settings, comments and memberships, and makes the
/// restoring role a member of every non-superuser role that will own objects, so it can
/// give them those objects. A role that cannot be created stops the restore; a setting or
/// membership the target refuses is reported.
pub async fn apply(
    client: &Client,
    plan: &RolePlan,
    globals: &Globals,
    target: &TargetRoles,
) -> Result<RolesReport, RestoreError> {
    let mut report = RolesReport {
        mapped: plan.mapped.clone(),
        ..Default::default()
    };
    for c in &plan.create {
        client
            .batch_execute(&c.role.create_sql(&c.granted))
            .await
            .map_err(|e| RestoreError::Roles {
                reason: format!("creating role {} failed: {}", c.role.name, describe(&e)),
            })?;
        report.created.push(c.role.name.clone());
        for a in &c.withheld {
            report.not_granted.push(format!(
                "{} was created without {}, which {} may not give",
                c.role.name,
                a.keyword(),
                target.restorer
            ));
        }
        for setting in &c.role.settings {
            if let Some(sql) = set_sql(&format!("ROLE {}", ident(&c.role.name)), setting)
                && let Err(e) = client.batch_execute(&sql).await
            {
                report.not_granted.push(format!(
                    "setting {setting} of {}: {}",
                    c.role.name,
                    describe(&e)
                ));
            }
        }
        if c.role.login && c.role.password.is_none() {
            report.passwords_to_set.push(format!(
                "ALTER ROLE {} PASSWORD '...';",
                ident(&c.role.name)
            ));
        }
    }
    let with_options = target.version.at_least(16);
    for m in &plan.memberships {
        if let Err(e) = client.batch_execute(&m.grant_sql(with_options)).await {
            report.not_granted.push(format!(
                "membership of {} in {}: {}",
                m.member,
                m.role,
                describe(&e)
            ));
        }
    }
    if !target.superuser {
        let created: BTreeSet<&str> = plan.create.iter().map(|c| c.role.name.as_str()).collect();
        let owners: BTreeSet<&str> = globals
            .roles
            .iter()
            .filter(|r| r.owns_objects)
            .map(|r| plan.name(&r.name))
            .filter(|r| *r != target.restorer)
            .filter(|r| created.contains(r) || target.existing.get(*r) == Some(&false))
            .collect();
        for owner in owners {
            join(client, target, owner, &mut report).await?;
        }
    }
    Ok(report)
}

/// Makes the restoring role a member of `role` (with SET and INHERIT), unless it is one.
async fn join(
    client: &Client,
    target: &TargetRoles,
    role: &str,
    report: &mut RolesReport,
) -> Result<(), RestoreError> {
    let privilege = if target.version.at_least(16) {
        "SET"
    } else {
        "MEMBER"
    };
    let member = client
        .query_one(
            "SELECT pg_catalog.pg_has_role(current_user, $1::text::name, $2)",
            &[&role, &privilege],
        )
        .await
        .and_then(|row| row.try_get::<_, bool>(0))
        .map_err(|e| RestoreError::Database {
            step: "checking the restoring role's memberships",
            reason: describe(&e),
        })?;
    if member {
        return Ok(());
    }
    let options = if target.version.at_least(16) {
        " WITH INHERIT TRUE, SET TRUE"
    } else {
        ""
    };
    client
        .batch_execute(&format!(
            "GRANT {} TO {}{options};",
            ident(role),
            ident(&target.restorer)
        ))
        .await
        .map_err(|e| RestoreError::Roles {
            reason: format!(
                "{} owns objects in the backup, and {} is not a member of it and cannot become one ({}): \
                 GRANT {} TO {} as a role that may, or pass --role-map {}={} or --no-owner",
                role,
                target.restorer,
                describe(&e),
                ident(role),
                ident(&target.restorer),
                role,
                target.restorer
            ),
        })?;
    report.joined.push(role.to_string());
    Ok(())
}

/// `ALTER ROLE ... IN DATABASE ... SET` for every recorded role (under its target name) that
/// is on the target now: what the database itself holds for them.
pub fn database_role_settings(plan: &RolePlan, globals: &Globals, database: &str) -> Vec<String> {
    globals
        .roles
        .iter()
        .flat_map(|r| {
            let target = format!(
                "ROLE {} IN DATABASE {}",
                ident(plan.name(&r.name)),
                ident(database)
            );
            r.database_settings
                .iter()
                .filter_map(move |s| set_sql(&target, s))
                .collect::<Vec<_>>()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::globals::{DatabaseProperties, Reserved};

    fn role(name: &str) -> Role {
        Role {
            name: name.into(),
            reserved: Reserved::of(name, if name == "postgres" { 10 } else { 20000 }),
            superuser: name == "postgres",
            inherit: true,
            create_role: false,
            create_db: false,
            login: name == "authenticator",
            replication: false,
            bypass_rls: name == "service_role",
            connection_limit: -1,
            valid_until: None,
            comment: None,
            security_labels: Vec::new(),
            settings: vec![],
            database_settings: vec![],
            owns_objects: name == "postgres" || name == "app_owner",
            referenced: name != "authenticator",
            password: None,
        }
    }

    fn globals() -> Globals {
        Globals {
            roles: [
                "postgres",
                "anon",
                "authenticator",
                "service_role",
                "app_owner",
            ]
            .iter()
            .map(|n| role(n))
            .collect(),
            memberships: vec![Membership {
                role: "anon".into(),
                member: "authenticator".into(),
                admin: false,
                inherit: None,
                set: None,
            }],
            database: DatabaseProperties {
                name: "app".into(),
                owner: "app_owner".into(),
                encoding: "UTF8".into(),
                collate: "C".into(),
                ctype: "C".into(),
                locale_provider: "libc".into(),
                locale: None,
                icu_rules: None,
                connection_limit: -1,
                comment: None,
                security_labels: Vec::new(),
                grants: None,
                default_grants: vec![],
                settings: vec![],
                tablespace: None,
            },
            passwords_included: false,
        }
    }

    fn target(restorer: &str, superuser: bool, existing: &[(&str, bool)]) -> TargetRoles {
        TargetRoles {
            version: ServerVersion(170000),
            restorer: restorer.into(),
            superuser,
            create_role: true,
            create_db: true,
            replication: false,
            bypass_rls: false,
            existing: existing.iter().map(|(n, s)| (n.to_string(), *s)).collect(),
        }
    }

    #[test]
    fn check_names_every_missing_role_and_creates_none() {
        let plan = plan(
            &globals(),
            &target("postgres", true, &[("postgres", true), ("anon", false)]),
            &[],
            RolesMode::Check,
        );
        assert_eq!(plan.missing, ["service_role", "app_owner"]);
        assert_eq!(plan.missing_members, ["authenticator"]);
        assert!(plan.create.is_empty() && plan.memberships.is_empty());
        assert_eq!(plan.present, ["postgres", "anon"]);
    }

    #[test]
    fn create_makes_the_missing_roles_with_their_memberships() {
        let plan = plan(
            &globals(),
            &target("postgres", true, &[("postgres", true), ("anon", false)]),
            &[],
            RolesMode::Create,
        );
        let created: Vec<_> = plan.create.iter().map(|c| c.role.name.as_str()).collect();
        assert_eq!(created, ["authenticator", "service_role", "app_owner"]);
        assert_eq!(
            plan.memberships.len(),
            1,
            "anon exists, authenticator is new"
        );
        assert!(plan.create.iter().all(|c| c.withheld.is_empty()));
    }

    #[test]
    fn a_non_superuser_target_withholds_what_it_may_not_give_and_takes_the_superusers_objects() {
        let plan = plan(
            &globals(),
            &target("admin", false, &[("postgres", true), ("admin", false)]),
            &[],
            RolesMode::Create,
        );
        let service = plan
            .create
            .iter()
            .find(|c| c.role.name == "service_role")
            .unwrap();
        assert_eq!(service.withheld, [Attribute::BypassRls]);
        assert_eq!(plan.name("postgres"), "admin");
        assert_eq!(plan.mapped.len(), 1);
    }

    #[test]
    fn a_missing_reserved_role_goes_to_the_restoring_role() {
        let plan = plan(
            &globals(),
            &target("alice", true, &[("alice", true)]),
            &[],
            RolesMode::Check,
        );
        assert_eq!(plan.name("postgres"), "alice");
        assert!(!plan.missing.contains(&"postgres".to_string()));
    }

    #[test]
    fn the_role_map_renames_and_refuses_what_it_cannot_find() {
        let explicit = vec![
            ("app_owner".to_string(), "admin".to_string()),
            ("nobody".to_string(), "admin".to_string()),
            ("anon".to_string(), "ghost".to_string()),
        ];
        let plan = plan(
            &globals(),
            &target("postgres", true, &[("postgres", true), ("admin", false)]),
            &explicit,
            RolesMode::Create,
        );
        assert_eq!(plan.name("app_owner"), "admin");
        assert_eq!(plan.problems.len(), 2, "{:?}", plan.problems);
        assert!(!plan.create.iter().any(|c| c.role.name == "app_owner"));
    }
}
