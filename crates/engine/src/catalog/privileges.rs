//! Column privileges (`GRANT … (column) ON TABLE`) and default privileges (`ALTER DEFAULT
//! PRIVILEGES`).

use std::collections::HashMap;

use super::*;
use crate::acl::statements_after;
use crate::sql::Sql;

/// The privileges granted on one column of a table, as the catalog describes them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnAcl {
    pub table_oid: u32,
    /// The column, quoted.
    pub column: String,
    /// Its ACL (never the default, which is empty); each grant made by another grantor than
    /// the table's owner names it.
    pub acl: Vec<Grant>,
}

/// The privileges a role's new objects of one type get, in one schema or in all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DefaultAcl {
    pub oid: u32,
    /// The role whose new objects get them, quoted.
    pub role: String,
    /// The schema they apply in; `None` for every schema.
    pub schema: Option<AclSchema>,
    pub objects: DefaultAclObjects,
    pub acl: Vec<Grant>,
    /// What the ACL is told against: the built-in default of the object type for every
    /// schema, nothing in one schema (where privileges are only ever added).
    pub acl_default: Vec<Grant>,
}

/// The schema a default ACL applies in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AclSchema {
    pub oid: u32,
    /// Its name, quoted.
    pub q: String,
}

/// The type of object a default ACL applies to (`defaclobjtype`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DefaultAclObjects {
    Tables,
    Sequences,
    Functions,
    Types,
    Schemas,
    /// From 18.
    LargeObjects,
}

impl DefaultAclObjects {
    /// From the catalog's one-letter code; `None` for a type this engine does not dump.
    pub fn from_code(code: &str) -> Option<Self> {
        Some(match code {
            "r" => DefaultAclObjects::Tables,
            "S" => DefaultAclObjects::Sequences,
            "f" => DefaultAclObjects::Functions,
            "T" => DefaultAclObjects::Types,
            "n" => DefaultAclObjects::Schemas,
            "L" => DefaultAclObjects::LargeObjects,
            _ => return None,
        })
    }

    /// The objects as `ALTER DEFAULT PRIVILEGES … ON` names them.
    pub fn keyword(self) -> &'static str {
        match self {
            DefaultAclObjects::Tables => "TABLES",
            DefaultAclObjects::Sequences => "SEQUENCES",
            DefaultAclObjects::Functions => "FUNCTIONS",
            DefaultAclObjects::Types => "TYPES",
            DefaultAclObjects::Schemas => "SCHEMAS",
            DefaultAclObjects::LargeObjects => "LARGE OBJECTS",
        }
    }
}

pub(super) async fn column_acls(
    db: &Db<'_>,
    catalog: &mut Catalog,
    relations: &HashMap<u32, Relation>,
) -> Result<(), CatalogError> {
    for acl in get_column_acls(db).await? {
        if let Some(table) = relations.get(&acl.table_oid) {
            catalog.items.extend(dump_column_acl(&acl, table));
        }
    }
    Ok(())
}

/// Every column with privileges of its own, of every user table.
pub(super) async fn get_column_acls(db: &Db<'_>) -> Result<Vec<ColumnAcl>, CatalogError> {
    let sql = format!(
        "SELECT a.attrelid, quote_ident(a.attname) AS q, {} AS acl FROM pg_attribute a \
         WHERE a.attacl IS NOT NULL AND a.attrelid >= 16384 AND NOT a.attisdropped ORDER BY a.attrelid, a.attnum",
        acl_json_by(
            "a.attacl",
            "(SELECT c.relowner FROM pg_class c WHERE c.oid = a.attrelid)"
        )
    );
    let mut acls = Vec::new();
    for row in db.query("column privileges", &sql).await? {
        acls.push(ColumnAcl {
            table_oid: row.get("attrelid")?,
            column: row.get("q")?,
            acl: grants(&row, "acl")?.unwrap_or_default(),
        });
    }
    Ok(acls)
}

/// The item that grants `acl` on its column of `table`, needing the table; `None` when it
/// grants nothing.
pub(super) fn dump_column_acl(acl: &ColumnAcl, table: &Relation) -> Option<Item> {
    let t = &table.qualified_name;
    let sql = acl_statements(
        &format!("TABLE {t}"),
        Some(&acl.column),
        Some(&acl.acl),
        &[],
    );
    (!sql.is_empty()).then(|| {
        Item::new(
            ItemKind::Acl,
            &table.schema,
            &format!("{}.{}", table.name, acl.column),
            sql,
        )
        .needing([oid_ref(class::PG_CLASS, acl.table_oid)])
        .of_table(t)
    })
}

pub(super) async fn default_acls(db: &Db<'_>, catalog: &mut Catalog) -> Result<(), CatalogError> {
    for acl in get_default_acls(db).await? {
        catalog.items.push(dump_default_acl(&acl));
    }
    Ok(())
}

/// Every default ACL of an object type this engine dumps.
pub(super) async fn get_default_acls(db: &Db<'_>) -> Result<Vec<DefaultAcl>, CatalogError> {
    let sql = format!(
        "SELECT d.oid, quote_ident(pg_get_userbyid(d.defaclrole)) AS role, d.defaclnamespace, \
         CASE WHEN d.defaclnamespace <> 0 THEN quote_ident(n.nspname) END AS schema, d.defaclobjtype::text AS kind, \
         {} AS acl, CASE WHEN d.defaclnamespace = 0 THEN {} ELSE '[]' END AS acl_default \
         FROM pg_default_acl d LEFT JOIN pg_namespace n ON n.oid = d.defaclnamespace ORDER BY d.oid",
        acl_json("d.defaclacl"),
        acl_json(
            "acldefault(CASE d.defaclobjtype WHEN 'S' THEN 's' ELSE d.defaclobjtype END, d.defaclrole)"
        )
    );
    let mut acls = Vec::new();
    for row in db.query("default privileges", &sql).await? {
        let Some(objects) = DefaultAclObjects::from_code(&row.get::<String>("kind")?) else {
            continue;
        };
        let schema = match row.get::<u32>("defaclnamespace")? {
            0 => None,
            oid => Some(AclSchema {
                oid,
                q: row.get("schema")?,
            }),
        };
        acls.push(DefaultAcl {
            oid: row.get("oid")?,
            role: row.get("role")?,
            schema,
            objects,
            acl: grants(&row, "acl")?.unwrap_or_default(),
            acl_default: grants(&row, "acl_default")?.unwrap_or_default(),
        });
    }
    Ok(acls)
}

/// The item that sets `acl`, needing its schema.
pub(super) fn dump_default_acl(acl: &DefaultAcl) -> Item {
    let mut prefix = Sql::new();
    prefix
        .push_str("ALTER DEFAULT PRIVILEGES FOR ROLE ")
        .role(&acl.role)
        .push_str(&match &acl.schema {
            Some(schema) => format!(" IN SCHEMA {} ", schema.q),
            None => " ".to_string(),
        });
    let objects = acl.objects.keyword();
    let sql = statements_after(&prefix, objects, None, Some(&acl.acl), &acl.acl_default);
    let item = Item::new(
        ItemKind::DefaultAcl,
        acl.schema.as_ref().map_or("", |s| s.q.as_str()),
        &format!("{} {objects}", acl.role),
        sql,
    )
    .owning([oid_ref(class::PG_DEFAULT_ACL, acl.oid)]);
    match &acl.schema {
        Some(schema) => item.needing([oid_ref(class::PG_NAMESPACE, schema.oid)]),
        None => item,
    }
}

#[cfg(test)]
mod tests {
    use super::super::model::tests::relation;
    use super::*;
    use crate::sql::Marked;

    fn grant(grantee: &str, privilege: &str) -> Grant {
        Grant {
            grantee: grantee.into(),
            privilege: privilege.into(),
            grantable: false,
            grantor: None,
        }
    }

    /// The marked spans of `item`'s SQL, with what each marks.
    fn marked(item: &Item) -> Vec<(&str, &Marked)> {
        item.marks
            .iter()
            .map(|m| (&item.sql[m.at..m.at + m.len], &m.is))
            .collect()
    }

    #[test]
    fn a_column_grant_names_its_column_and_needs_its_table() {
        let acl = ColumnAcl {
            table_oid: 16_390,
            column: "\"E-mail\"".into(),
            acl: vec![
                grant("reader", "SELECT"),
                grant("reader", "UPDATE"),
                Grant {
                    grantable: true,
                    ..grant("lead", "SELECT")
                },
            ],
        };
        let item = dump_column_acl(&acl, &relation("users")).unwrap();
        assert_eq!(
            item.sql,
            "GRANT SELECT (\"E-mail\"),UPDATE (\"E-mail\") ON TABLE app.users TO reader;\n\
             GRANT SELECT (\"E-mail\") ON TABLE app.users TO lead WITH GRANT OPTION;\n"
        );
        assert_eq!(
            (item.kind, item.schema.as_str(), item.name.as_str()),
            (ItemKind::Acl, "app", "users.\"E-mail\"")
        );
        assert_eq!(item.table.as_deref(), Some("app.users"));
        assert_eq!(item.needs, [oid_ref(class::PG_CLASS, 16_390)]);
        assert!(item.owns.is_empty());
    }

    #[test]
    fn a_column_grant_made_by_another_grantor_is_made_as_that_grantor() {
        let acl = ColumnAcl {
            table_oid: 16_390,
            column: "id".into(),
            acl: vec![
                Grant {
                    grantable: true,
                    ..grant("lead", "SELECT")
                },
                Grant {
                    grantor: Some("lead".into()),
                    ..grant("analyst", "SELECT")
                },
            ],
        };
        let item = dump_column_acl(&acl, &relation("users")).unwrap();
        assert_eq!(
            item.sql,
            "GRANT SELECT (id) ON TABLE app.users TO lead WITH GRANT OPTION;\n\
             SET SESSION AUTHORIZATION lead;\n\
             GRANT SELECT (id) ON TABLE app.users TO analyst;\n\
             RESET SESSION AUTHORIZATION;\n"
        );
        let role = |name: &str| Marked::Role { name: name.into() };
        assert_eq!(
            marked(&item),
            [
                ("lead", &role("lead")),
                ("SET SESSION AUTHORIZATION lead;", &Marked::ActingAs),
                ("lead", &role("lead")),
                ("analyst", &role("analyst")),
                ("RESET SESSION AUTHORIZATION;", &Marked::ActingAs),
            ]
        );
    }

    #[test]
    fn a_column_acl_that_grants_nothing_is_no_item() {
        let acl = ColumnAcl {
            table_oid: 16_390,
            column: "id".into(),
            acl: Vec::new(),
        };
        assert_eq!(dump_column_acl(&acl, &relation("users")), None);
    }

    fn default_acl(objects: DefaultAclObjects, schema: Option<&str>) -> DefaultAcl {
        DefaultAcl {
            oid: 16_500,
            role: "\"App Owner\"".into(),
            schema: schema.map(|q| AclSchema {
                oid: 16_410,
                q: q.into(),
            }),
            objects,
            acl: vec![grant("reader", "USAGE")],
            acl_default: Vec::new(),
        }
    }

    #[test]
    fn a_default_acl_in_one_schema_needs_it() {
        let item = dump_default_acl(&default_acl(DefaultAclObjects::Tables, Some("\"Sales\"")));
        assert_eq!(
            item.sql,
            "ALTER DEFAULT PRIVILEGES FOR ROLE \"App Owner\" IN SCHEMA \"Sales\" GRANT USAGE ON TABLES TO reader;\n"
        );
        assert_eq!(
            (item.kind, item.schema.as_str(), item.name.as_str()),
            (ItemKind::DefaultAcl, "\"Sales\"", "\"App Owner\" TABLES")
        );
        assert_eq!(item.owns, [oid_ref(class::PG_DEFAULT_ACL, 16_500)]);
        assert_eq!(item.needs, [oid_ref(class::PG_NAMESPACE, 16_410)]);
        assert_eq!(
            marked(&item),
            [
                (
                    "\"App Owner\"",
                    &Marked::Role {
                        name: "App Owner".into()
                    }
                ),
                (
                    "reader",
                    &Marked::Role {
                        name: "reader".into()
                    }
                ),
            ]
        );
    }

    #[test]
    fn a_default_acl_for_every_schema_is_told_against_the_built_in_default() {
        let mut acl = default_acl(DefaultAclObjects::Functions, None);
        acl.acl_default = vec![
            grant("PUBLIC", "EXECUTE"),
            grant("\"App Owner\"", "EXECUTE"),
        ];
        acl.acl = vec![grant("\"App Owner\"", "EXECUTE"), grant("api", "EXECUTE")];
        let item = dump_default_acl(&acl);
        assert_eq!(
            item.sql,
            "ALTER DEFAULT PRIVILEGES FOR ROLE \"App Owner\" REVOKE EXECUTE ON FUNCTIONS FROM PUBLIC;\n\
             ALTER DEFAULT PRIVILEGES FOR ROLE \"App Owner\" GRANT EXECUTE ON FUNCTIONS TO api;\n"
        );
        assert_eq!(
            (item.schema.as_str(), item.name.as_str()),
            ("", "\"App Owner\" FUNCTIONS")
        );
        assert!(item.needs.is_empty());
    }

    #[test]
    fn each_object_type_by_its_keyword() {
        for (code, objects, keyword) in [
            ("r", DefaultAclObjects::Tables, "TABLES"),
            ("S", DefaultAclObjects::Sequences, "SEQUENCES"),
            ("f", DefaultAclObjects::Functions, "FUNCTIONS"),
            ("T", DefaultAclObjects::Types, "TYPES"),
            ("n", DefaultAclObjects::Schemas, "SCHEMAS"),
            ("L", DefaultAclObjects::LargeObjects, "LARGE OBJECTS"),
        ] {
            assert_eq!(DefaultAclObjects::from_code(code), Some(objects));
            let item = dump_default_acl(&default_acl(objects, None));
            assert_eq!(
                item.sql,
                format!(
                    "ALTER DEFAULT PRIVILEGES FOR ROLE \"App Owner\" GRANT USAGE ON {keyword} TO reader;\n"
                )
            );
            assert_eq!(item.name, format!("\"App Owner\" {keyword}"));
        }
        assert_eq!(DefaultAclObjects::from_code("X"), None);
    }
}
