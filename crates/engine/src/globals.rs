//! `globals.json`: what a database needs from its cluster to be restored onto another one.
//!
//! The roles the database refers to (owners, grantees, policy and default-privilege roles,
//! roles with settings in it), the roles that are members of those and the groups they are
//! members of, their attributes, settings and memberships; and the database's own properties:
//! owner, encoding, locale, comment, grants and `ALTER DATABASE ... SET` settings. Read
//! through `pg_roles` and `pg_shdepend`, so a managed server's non-superuser can take it.
//! Password hashes only when the operator asked for them.
//!
//! The statements that recreate them are rendered here, from plain data, with role names
//! already mapped by the caller.

use serde::{Deserialize, Serialize};

use super::catalog::{ident, literal};

/// Key of the globals file, relative to the set folder.
pub const GLOBALS_NAME: &str = "globals.json";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Globals {
    pub roles: Vec<Role>,
    /// Memberships among the recorded roles, and of recorded roles in reserved ones.
    pub memberships: Vec<Membership>,
    pub database: DatabaseProperties,
    /// Whether `Role::password` was read (`--include-role-passwords`).
    #[serde(default)]
    pub passwords_included: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Role {
    pub name: String,
    /// Why a restore never creates this role (it counts as present), when it is reserved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reserved: Option<Reserved>,
    pub superuser: bool,
    pub inherit: bool,
    pub create_role: bool,
    pub create_db: bool,
    pub login: bool,
    pub replication: bool,
    pub bypass_rls: bool,
    pub connection_limit: i32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_until: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub security_labels: Vec<SecurityLabel>,
    /// `ALTER ROLE ... SET` settings, as `name=value`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub settings: Vec<String>,
    /// `ALTER ROLE ... IN DATABASE <this one> SET` settings, as `name=value`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub database_settings: Vec<String>,
    /// Owns something in the database (or the database itself).
    #[serde(default)]
    pub owns_objects: bool,
    /// The database names it (owner, grantee, policy role, a setting): a restore needs it.
    /// The others are members of those roles, or groups of them, that come along.
    #[serde(default)]
    pub referenced: bool,
    /// The stored password hash; only with `--include-role-passwords`. Never logged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
}

/// Roles a restore counts as present and never creates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Reserved {
    /// The role initdb made (OID 10).
    Bootstrap,
    /// `pg_*`: the server's predefined roles.
    Predefined,
    /// A managed platform's own roles (RDS, Cloud SQL, Azure, Supabase's administrators).
    Platform,
}

impl Reserved {
    /// Why `name` (with `oid`) is reserved, if it is.
    pub fn of(name: &str, oid: u32) -> Option<Reserved> {
        const PLATFORM_PREFIXES: &[&str] = &["rds", "cloudsql", "azure_", "alloydb"];
        const PLATFORM_ROLES: &[&str] = &[
            "azuresu",
            "supabase_admin",
            "supabase_auth_admin",
            "supabase_storage_admin",
            "supabase_functions_admin",
            "supabase_realtime_admin",
            "supabase_replication_admin",
            "supabase_read_only_user",
            "supabase_etl_admin",
            "supabase_privileged_role",
        ];
        if oid == 10 {
            Some(Reserved::Bootstrap)
        } else if name.starts_with("pg_") {
            Some(Reserved::Predefined)
        } else if PLATFORM_PREFIXES.iter().any(|p| name.starts_with(p))
            || PLATFORM_ROLES.contains(&name)
        {
            Some(Reserved::Platform)
        } else {
            None
        }
    }

    pub fn describe(self) -> &'static str {
        match self {
            Reserved::Bootstrap => "the source's bootstrap superuser",
            Reserved::Predefined => "a predefined role",
            Reserved::Platform => "a managed platform's role",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Membership {
    /// The group role.
    pub role: String,
    pub member: String,
    pub admin: bool,
    /// From PostgreSQL 16 a membership has its own INHERIT and SET options.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inherit: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub set: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DatabaseProperties {
    pub name: String,
    pub owner: String,
    pub encoding: String,
    pub collate: String,
    pub ctype: String,
    /// `libc`, `icu` or `builtin`.
    pub locale_provider: String,
    /// The ICU or builtin locale, for those providers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locale: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub icu_rules: Option<String>,
    pub connection_limit: i32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub security_labels: Vec<SecurityLabel>,
    /// The database's privileges, and those it would have by default (`acldefault`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grants: Option<Vec<DatabaseGrant>>,
    #[serde(default)]
    pub default_grants: Vec<DatabaseGrant>,
    /// `ALTER DATABASE ... SET` settings, as `name=value`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub settings: Vec<String>,
    /// The tablespace, when not `pg_default`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tablespace: Option<String>,
}

/// A security label on a role or on the database (`pg_shseclabel`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecurityLabel {
    pub provider: String,
    pub label: String,
}

impl SecurityLabel {
    /// `SECURITY LABEL FOR provider ON target IS 'label'`.
    pub fn sql(&self, target: &str) -> String {
        format!(
            "SECURITY LABEL FOR {} ON {target} IS {};\n",
            ident(&self.provider),
            literal(&self.label)
        )
    }
}

/// One privilege on the database; `grantee` is `None` for PUBLIC.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DatabaseGrant {
    pub grantee: Option<String>,
    /// `CREATE`, `CONNECT` or `TEMPORARY`: read from a set, anything else is refused, since
    /// it is written into a `GRANT` as it is.
    #[serde(deserialize_with = "database_privilege")]
    pub privilege: String,
    pub grantable: bool,
}

/// The privileges a database has (`aclexplode` names them so).
const DATABASE_PRIVILEGES: [&str; 3] = ["CREATE", "CONNECT", "TEMPORARY"];

fn database_privilege<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let privilege = String::deserialize(d)?;
    if DATABASE_PRIVILEGES.contains(&privilege.as_str()) {
        Ok(privilege)
    } else {
        Err(serde::de::Error::custom(format!(
            "`{}` is not a database privilege",
            privilege.escape_default()
        )))
    }
}

impl Globals {
    pub fn role(&self, name: &str) -> Option<&Role> {
        self.roles.iter().find(|r| r.name == name)
    }
}

/// Attributes a role is created with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Attribute {
    Superuser,
    CreateDb,
    CreateRole,
    Replication,
    BypassRls,
}

impl Attribute {
    pub fn keyword(self) -> &'static str {
        match self {
            Attribute::Superuser => "SUPERUSER",
            Attribute::CreateDb => "CREATEDB",
            Attribute::CreateRole => "CREATEROLE",
            Attribute::Replication => "REPLICATION",
            Attribute::BypassRls => "BYPASSRLS",
        }
    }
}

impl Role {
    /// The privileged attributes this role has.
    pub fn attributes(&self) -> Vec<Attribute> {
        [
            (self.superuser, Attribute::Superuser),
            (self.create_db, Attribute::CreateDb),
            (self.create_role, Attribute::CreateRole),
            (self.replication, Attribute::Replication),
            (self.bypass_rls, Attribute::BypassRls),
        ]
        .into_iter()
        .filter_map(|(has, a)| has.then_some(a))
        .collect()
    }

    /// `CREATE ROLE` with the attributes in `granted` (the others are left at NO...), its
    /// password hash when the backup holds one, and its comment.
    pub fn create_sql(&self, granted: &[Attribute]) -> String {
        let flag = |a: Attribute| {
            if granted.contains(&a) {
                a.keyword().to_string()
            } else {
                format!("NO{}", a.keyword())
            }
        };
        let mut words = vec![
            flag(Attribute::Superuser),
            if self.inherit { "INHERIT" } else { "NOINHERIT" }.to_string(),
            flag(Attribute::CreateRole),
            flag(Attribute::CreateDb),
            if self.login { "LOGIN" } else { "NOLOGIN" }.to_string(),
            flag(Attribute::Replication),
            flag(Attribute::BypassRls),
        ];
        if self.connection_limit != -1 {
            words.push(format!("CONNECTION LIMIT {}", self.connection_limit));
        }
        if let Some(hash) = &self.password {
            words.push(format!("PASSWORD {}", literal(hash)));
        }
        if let Some(until) = &self.valid_until {
            words.push(format!("VALID UNTIL {}", literal(until)));
        }
        let name = ident(&self.name);
        let mut sql = format!("CREATE ROLE {name} WITH {};\n", words.join(" "));
        if let Some(comment) = &self.comment {
            sql.push_str(&format!(
                "COMMENT ON ROLE {name} IS {};\n",
                literal(comment)
            ));
        }
        for label in &self.security_labels {
            sql.push_str(&label.sql(&format!("ROLE {name}")));
        }
        sql
    }
}

impl Membership {
    /// `GRANT role TO member` with its options; `with_options` when the target has them (16+).
    pub fn grant_sql(&self, with_options: bool) -> String {
        let mut options = Vec::new();
        if self.admin {
            options.push(if with_options {
                "ADMIN TRUE"
            } else {
                "ADMIN OPTION"
            });
        }
        if with_options {
            if let Some(inherit) = self.inherit {
                options.push(if inherit {
                    "INHERIT TRUE"
                } else {
                    "INHERIT FALSE"
                });
            }
            if let Some(set) = self.set {
                options.push(if set { "SET TRUE" } else { "SET FALSE" });
            }
        }
        let with = if options.is_empty() {
            String::new()
        } else {
            format!(" WITH {}", options.join(", "))
        };
        format!(
            "GRANT {} TO {}{with};\n",
            ident(&self.role),
            ident(&self.member)
        )
    }
}

/// `ALTER <target> SET name TO value` for a stored `name=value` setting, quoting list
/// settings element by element as pg_dumpall does (`search_path=a, "b c"`).
pub fn set_sql(target: &str, setting: &str) -> Option<String> {
    let (name, value) = setting.split_once('=')?;
    const LIST_SETTINGS: &[&str] = &[
        "local_preload_libraries",
        "search_path",
        "session_preload_libraries",
        "shared_preload_libraries",
        "temp_tablespaces",
        "unix_socket_directories",
    ];
    let value = if LIST_SETTINGS.contains(&name.to_ascii_lowercase().as_str()) {
        split_list(value)
            .iter()
            .map(|v| literal(v))
            .collect::<Vec<_>>()
            .join(", ")
    } else {
        literal(value)
    };
    let plain = name.split('.').all(|part| {
        !part.is_empty()
            && part
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    });
    let name = if plain {
        name.to_string()
    } else {
        format!("\"{}\"", name.replace('"', "\"\""))
    };
    Some(format!("ALTER {target} SET {name} TO {value};\n"))
}

/// A list setting's elements: comma-separated, each optionally double-quoted (`""` is a quote).
fn split_list(value: &str) -> Vec<String> {
    let mut elements = Vec::new();
    let mut chars = value.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let mut element = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                if c == '"' {
                    if chars.peek() == Some(&'"') {
                        chars.next();
                        element.push('"');
                    } else {
                        break;
                    }
                } else {
                    element.push(c);
                }
            }
            while chars.peek().is_some_and(|c| *c != ',') {
                chars.next();
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c == ',' {
                    break;
                }
                element.push(c);
                chars.next();
            }
            element = element.trim_end().to_string();
        }
        elements.push(element);
        if chars.next().is_none() {
            break;
        }
    }
    elements
}

impl DatabaseProperties {
    /// `CREATE DATABASE name` with the source's owner, encoding and locale (from template0).
    pub fn create_sql(&self, name: &str, owner: &str) -> String {
        let mut sql = format!(
            "CREATE DATABASE {} WITH TEMPLATE = template0 OWNER = {} ENCODING = {}",
            ident(name),
            ident(owner),
            literal(&self.encoding)
        );
        match self.locale_provider.as_str() {
            "icu" | "builtin" => {
                sql.push_str(&format!(" LOCALE_PROVIDER = {}", self.locale_provider));
                if let Some(locale) = &self.locale {
                    let word = if self.locale_provider == "icu" {
                        "ICU_LOCALE"
                    } else {
                        "BUILTIN_LOCALE"
                    };
                    sql.push_str(&format!(" {word} = {}", literal(locale)));
                }
                if let Some(rules) = &self.icu_rules {
                    sql.push_str(&format!(" ICU_RULES = {}", literal(rules)));
                }
            }
            _ => {}
        }
        sql.push_str(&format!(
            " LC_COLLATE = {} LC_CTYPE = {}",
            literal(&self.collate),
            literal(&self.ctype)
        ));
        if self.connection_limit != -1 {
            sql.push_str(&format!(" CONNECTION LIMIT = {}", self.connection_limit));
        }
        sql.push_str(";\n");
        sql
    }

    /// The comment, privileges and settings of the database `name`, given the grantee names
    /// as they are on the target (`grantee` maps a source role to one).
    pub fn properties_sql(&self, name: &str, grantee: &dyn Fn(&str) -> String) -> Vec<String> {
        let db = ident(name);
        let mut statements = Vec::new();
        if let Some(comment) = &self.comment {
            statements.push(format!(
                "COMMENT ON DATABASE {db} IS {};\n",
                literal(comment)
            ));
        }
        for label in &self.security_labels {
            statements.push(label.sql(&format!("DATABASE {db}")));
        }
        if let Some(grants) = &self.grants {
            let convert = |g: &DatabaseGrant| super::acl::Grant {
                grantee: g
                    .grantee
                    .as_deref()
                    .map(|r| ident(&grantee(r)))
                    .unwrap_or_else(|| "PUBLIC".into()),
                privilege: g.privilege.clone(),
                grantable: g.grantable,
                grantor: None,
            };
            let current: Vec<_> = grants.iter().map(convert).collect();
            let default: Vec<_> = self.default_grants.iter().map(convert).collect();
            let sql = super::acl::acl_statements(
                &format!("DATABASE {db}"),
                None,
                Some(&current),
                &default,
            );
            statements.extend(sql.text.lines().map(|l| format!("{l}\n")));
        }
        for setting in &self.settings {
            statements.extend(set_sql(&format!("DATABASE {db}"), setting));
        }
        statements
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_database_grant_names_a_database_privilege_or_is_refused() {
        let read = |privilege: &str| {
            serde_json::from_value::<DatabaseGrant>(serde_json::json!({
                "grantee": null, "privilege": privilege, "grantable": false
            }))
        };
        for privilege in DATABASE_PRIVILEGES {
            assert_eq!(read(privilege).unwrap().privilege, privilege);
        }
        let error =
            read("CONNECT ON DATABASE x TO PUBLIC; DROP TABLE t; GRANT CONNECT").unwrap_err();
        assert!(
            error.to_string().contains("is not a database privilege"),
            "{error}"
        );
    }

    fn role(name: &str) -> Role {
        Role {
            name: name.into(),
            reserved: None,
            superuser: false,
            inherit: true,
            create_role: false,
            create_db: false,
            login: true,
            replication: false,
            bypass_rls: true,
            connection_limit: 5,
            valid_until: None,
            comment: Some("it's the API".into()),
            security_labels: Vec::new(),
            settings: vec![],
            database_settings: vec![],
            owns_objects: false,
            referenced: true,
            password: None,
        }
    }

    #[test]
    fn a_roles_security_labels_follow_its_creation() {
        let mut r = role("auditor");
        r.security_labels = vec![SecurityLabel {
            provider: "selinux".into(),
            label: "user_u:it's".into(),
        }];
        assert!(
            r.create_sql(&[])
                .ends_with("SECURITY LABEL FOR selinux ON ROLE auditor IS 'user_u:it''s';\n"),
            "{}",
            r.create_sql(&[])
        );
    }

    #[test]
    fn a_role_is_created_with_the_attributes_allowed_and_no_others() {
        let r = role("Api User");
        assert_eq!(
            r.create_sql(&[]),
            "CREATE ROLE \"Api User\" WITH NOSUPERUSER INHERIT NOCREATEROLE NOCREATEDB LOGIN NOREPLICATION NOBYPASSRLS CONNECTION LIMIT 5;\n\
             COMMENT ON ROLE \"Api User\" IS 'it''s the API';\n"
        );
        assert!(r.create_sql(&r.attributes()).contains(" BYPASSRLS "));
    }

    #[test]
    fn list_settings_are_quoted_element_by_element() {
        assert_eq!(
            set_sql("ROLE app", "search_path=\"$user\", public, \"a \"\"b\"\"\"").as_deref(),
            Some("ALTER ROLE app SET search_path TO '$user', 'public', 'a \"b\"';\n")
        );
        assert_eq!(
            set_sql("DATABASE d", "app.settings.jwt_exp=3600").as_deref(),
            Some("ALTER DATABASE d SET app.settings.jwt_exp TO '3600';\n")
        );
        assert_eq!(
            set_sql("DATABASE d", "statement_timeout=5s").as_deref(),
            Some("ALTER DATABASE d SET statement_timeout TO '5s';\n")
        );
        assert_eq!(set_sql("DATABASE d", "broken"), None);
    }

    #[test]
    fn memberships_carry_their_options_where_the_target_has_them() {
        let m = Membership {
            role: "anon".into(),
            member: "authenticator".into(),
            admin: false,
            inherit: Some(false),
            set: Some(true),
        };
        assert_eq!(
            m.grant_sql(true),
            "GRANT anon TO authenticator WITH INHERIT FALSE, SET TRUE;\n"
        );
        assert_eq!(m.grant_sql(false), "GRANT anon TO authenticator;\n");
    }

    #[test]
    fn reserved_roles_are_recognised() {
        assert_eq!(Reserved::of("postgres", 10), Some(Reserved::Bootstrap));
        assert_eq!(
            Reserved::of("pg_read_all_data", 6181),
            Some(Reserved::Predefined)
        );
        assert_eq!(
            Reserved::of("rds_superuser", 16390),
            Some(Reserved::Platform)
        );
        assert_eq!(
            Reserved::of("supabase_admin", 16391),
            Some(Reserved::Platform)
        );
        assert_eq!(Reserved::of("authenticator", 16392), None);
    }
}
