//! Privileges changed on objects the backup does not create: members of extensions (CREATE
//! EXTENSION makes them again) and the system catalog's own objects (initdb makes them). As
//! pg_dump does, their ACLs are compared with what they started with (`pg_init_privs`, or the
//! owner's default when nothing was recorded), and only the difference is dumped: a GRANT
//! EXECUTE on pgcrypto's functions, a REVOKE on a pg_catalog function, a column grant on a
//! catalog view.

use super::*;

/// The privileges of an extension's member or a system object (or of one of its columns)
/// that differ from what it started with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangedAcl {
    /// The extension it belongs to; `None` for a system object.
    pub extension: Option<u32>,
    pub target: GrantTarget,
    /// The object as `pg_identify_object` names it (a column's relation).
    pub identity: String,
    /// The column, quoted, when the privileges are a column's.
    pub column: Option<String>,
    /// Its privileges now: `None` when a column's are NULL.
    pub acl: Option<Vec<Grant>>,
    /// What it started with: its `pg_init_privs` entry, or else the owner's default.
    pub initial: Vec<Grant>,
}

/// The keyword a GRANT names an object by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrantTarget {
    /// Functions and aggregates.
    Function,
    Procedure,
    /// Tables, views, materialized views and foreign tables.
    Table,
    Sequence,
    /// Types and domains.
    Type,
    Schema,
    ForeignDataWrapper,
    ForeignServer,
    Language,
}

impl GrantTarget {
    /// The target of an object of `kind` (as `pg_identify_object` names kinds); `None` for a
    /// kind without privileges.
    pub fn of_kind(kind: &str) -> Option<Self> {
        Some(match kind {
            "function" | "aggregate" => GrantTarget::Function,
            "procedure" => GrantTarget::Procedure,
            "table" | "view" | "materialized view" | "foreign table" => GrantTarget::Table,
            "sequence" => GrantTarget::Sequence,
            "type" | "domain" => GrantTarget::Type,
            "schema" => GrantTarget::Schema,
            "foreign-data wrapper" => GrantTarget::ForeignDataWrapper,
            "server" => GrantTarget::ForeignServer,
            "language" => GrantTarget::Language,
            _ => return None,
        })
    }

    pub fn keyword(self) -> &'static str {
        match self {
            GrantTarget::Function => "FUNCTION",
            GrantTarget::Procedure => "PROCEDURE",
            GrantTarget::Table => "TABLE",
            GrantTarget::Sequence => "SEQUENCE",
            GrantTarget::Type => "TYPE",
            GrantTarget::Schema => "SCHEMA",
            GrantTarget::ForeignDataWrapper => "FOREIGN DATA WRAPPER",
            GrantTarget::ForeignServer => "FOREIGN SERVER",
            GrantTarget::Language => "LANGUAGE",
        }
    }
}

/// Objects of the kinds that carry an ACL, with their default and initial privileges: only
/// those in pg_catalog or belonging to an extension (filtered per branch, so a database of
/// thousands of tables does not have every column of every table looked at).
fn objects() -> String {
    let eligible = |class: &str, oid: &str, namespace: &str| {
        format!(
            "({namespace} = 'pg_catalog'::regnamespace OR EXISTS (SELECT 1 FROM pg_depend x \
             WHERE x.classid = '{class}'::regclass AND x.objid = {oid} AND x.objsubid = 0 AND x.deptype = 'e'))"
        )
    };
    format!(
        "SELECT 'pg_proc'::regclass::oid AS classid, p.oid AS objid, 0 AS subid, p.proacl AS acl, \
                acldefault('f', p.proowner) AS dflt, p.pronamespace AS namespace FROM pg_proc p WHERE {} \
         UNION ALL SELECT 'pg_class'::regclass::oid, c.oid, 0, c.relacl, \
                acldefault((CASE c.relkind WHEN 'S' THEN 's' ELSE 'r' END)::\"char\", c.relowner), c.relnamespace \
           FROM pg_class c WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f') AND {} \
         UNION ALL SELECT 'pg_class'::regclass::oid, a.attrelid, a.attnum, a.attacl, NULL::aclitem[], c.relnamespace \
           FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid \
          WHERE a.attnum > 0 AND NOT a.attisdropped AND c.relkind IN ('r', 'p', 'v', 'm', 'f') AND {} \
            AND (a.attacl IS NOT NULL OR EXISTS (SELECT 1 FROM pg_init_privs ip WHERE ip.classoid = 'pg_class'::regclass \
                 AND ip.objoid = a.attrelid AND ip.objsubid = a.attnum)) \
         UNION ALL SELECT 'pg_type'::regclass::oid, t.oid, 0, t.typacl, acldefault('T', t.typowner), t.typnamespace \
           FROM pg_type t WHERE {} \
         UNION ALL SELECT 'pg_namespace'::regclass::oid, n.oid, 0, n.nspacl, acldefault('n', n.nspowner), n.oid \
           FROM pg_namespace n WHERE n.nspname <> 'public' AND {} \
         UNION ALL SELECT 'pg_foreign_data_wrapper'::regclass::oid, w.oid, 0, w.fdwacl, acldefault('F', w.fdwowner), 0 \
           FROM pg_foreign_data_wrapper w \
         UNION ALL SELECT 'pg_foreign_server'::regclass::oid, s.oid, 0, s.srvacl, acldefault('S', s.srvowner), 0 \
           FROM pg_foreign_server s \
         UNION ALL SELECT 'pg_language'::regclass::oid, l.oid, 0, l.lanacl, acldefault('l', l.lanowner), 0 \
           FROM pg_language l",
        eligible("pg_proc", "p.oid", "p.pronamespace"),
        eligible("pg_class", "c.oid", "c.relnamespace"),
        eligible("pg_class", "c.oid", "c.relnamespace"),
        eligible("pg_type", "t.oid", "t.typnamespace"),
        eligible("pg_namespace", "n.oid", "n.oid"),
    )
}

pub(super) async fn initial_privileges(
    db: &Db<'_>,
    catalog: &mut Catalog,
) -> Result<(), CatalogError> {
    catalog.items.extend(get(db).await?.iter().filter_map(dump));
    Ok(())
}

/// Every ACL of an extension member or system object (of a kind with privileges) that is
/// not what it started with.
pub(super) async fn get(db: &Db<'_>) -> Result<Vec<ChangedAcl>, CatalogError> {
    let sql = format!(
        "WITH objects AS ({}), \
         owned AS ( \
           SELECT o.*, x.refobjid AS extension, coalesce(ip.initprivs, o.dflt) AS initial \
             FROM objects o \
             LEFT JOIN pg_init_privs ip ON ip.classoid = o.classid AND ip.objoid = o.objid AND ip.objsubid = o.subid \
             LEFT JOIN pg_depend x ON x.classid = o.classid AND x.objid = o.objid AND x.objsubid = 0 \
                  AND x.deptype = 'e' \
            WHERE x.refobjid IS NOT NULL OR o.namespace = 'pg_catalog'::regnamespace), \
         changed AS MATERIALIZED (SELECT * FROM owned WHERE coalesce(acl, dflt) IS DISTINCT FROM initial) \
         SELECT w.classid, w.objid, w.subid, w.extension, i.type AS kind, i.identity, \
                CASE WHEN w.subid <> 0 THEN (SELECT quote_ident(a.attname) FROM pg_attribute a \
                     WHERE a.attrelid = w.objid AND a.attnum = w.subid) END AS column_name, \
                CASE WHEN w.subid <> 0 THEN (SELECT r.type FROM pg_identify_object(w.classid, w.objid, 0) r) END AS relation_kind, \
                CASE WHEN w.subid <> 0 THEN (SELECT r.identity FROM pg_identify_object(w.classid, w.objid, 0) r) END AS relation, \
                {} AS acl, {} AS acl_default \
           FROM changed w, LATERAL pg_identify_object(w.classid, w.objid, w.subid) AS i \
          ORDER BY i.type, i.identity",
        objects(),
        acl_json("coalesce(w.acl, w.dflt)"),
        acl_json("w.initial"),
    );
    let mut acls = Vec::new();
    for row in db
        .query("privileges of extension and system objects", &sql)
        .await?
    {
        let column: Option<String> = row.get("column_name")?;
        let (kind, identity): (String, String) = match column {
            Some(_) => (row.get("relation_kind")?, row.get("relation")?),
            None => (row.get("kind")?, row.get("identity")?),
        };
        let Some(target) = GrantTarget::of_kind(&kind) else {
            continue;
        };
        acls.push(ChangedAcl {
            extension: row.get("extension")?,
            target,
            identity,
            column,
            acl: grants(&row, "acl")?,
            initial: grants(&row, "acl_default")?.unwrap_or_default(),
        });
    }
    Ok(acls)
}

/// The item that turns `acl`'s initial privileges into its current ones, needing its
/// extension; `None` when there is nothing to change.
pub(super) fn dump(acl: &ChangedAcl) -> Option<Item> {
    let sql = acl_statements(
        &format!("{} {}", acl.target.keyword(), acl.identity),
        acl.column.as_deref(),
        acl.acl.as_deref(),
        &acl.initial,
    );
    if sql.is_empty() {
        return None;
    }
    let name = match &acl.column {
        Some(column) => format!("{}.{column}", acl.identity),
        None => acl.identity.clone(),
    };
    let item = Item::new(ItemKind::Acl, quote_schema(&acl.identity), &name, sql);
    Some(match acl.extension {
        Some(extension) => item.needing([oid_ref(class::PG_EXTENSION, extension)]),
        None => item,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant(grantee: &str, privilege: &str) -> Grant {
        Grant {
            grantee: grantee.into(),
            privilege: privilege.into(),
            grantable: false,
            grantor: None,
        }
    }

    fn changed(target: GrantTarget, identity: &str, extension: Option<u32>) -> ChangedAcl {
        ChangedAcl {
            extension,
            target,
            identity: identity.into(),
            column: None,
            acl: Some(vec![grant("postgres", "EXECUTE")]),
            initial: vec![grant("postgres", "EXECUTE")],
        }
    }

    #[test]
    fn a_grant_added_to_an_extensions_function_needs_the_extension() {
        let mut acl = changed(
            GrantTarget::Function,
            "extensions.gen_random_uuid()",
            Some(16_450),
        );
        acl.acl = Some(vec![grant("postgres", "EXECUTE"), grant("api", "EXECUTE")]);
        let item = dump(&acl).unwrap();
        assert_eq!(
            item.sql,
            "GRANT EXECUTE ON FUNCTION extensions.gen_random_uuid() TO api;\n"
        );
        assert_eq!(
            (item.kind, item.schema.as_str(), item.name.as_str()),
            (ItemKind::Acl, "extensions", "extensions.gen_random_uuid()")
        );
        assert_eq!(item.needs, [oid_ref(class::PG_EXTENSION, 16_450)]);
        assert!(item.owns.is_empty() && item.table.is_none());
    }

    #[test]
    fn a_privilege_revoked_from_a_system_object_needs_nothing() {
        let mut acl = changed(
            GrantTarget::Function,
            "pg_catalog.pg_sleep(double precision)",
            None,
        );
        acl.initial = vec![grant("PUBLIC", "EXECUTE"), grant("postgres", "EXECUTE")];
        let item = dump(&acl).unwrap();
        assert_eq!(
            item.sql,
            "REVOKE EXECUTE ON FUNCTION pg_catalog.pg_sleep(double precision) FROM PUBLIC;\n"
        );
        assert_eq!(item.schema, "pg_catalog");
        assert!(item.needs.is_empty());

        // Every privilege revoked, the owner's too: an empty ACL.
        acl.acl = Some(Vec::new());
        assert_eq!(
            dump(&acl).unwrap().sql,
            "REVOKE EXECUTE ON FUNCTION pg_catalog.pg_sleep(double precision) FROM PUBLIC;\n\
             REVOKE EXECUTE ON FUNCTION pg_catalog.pg_sleep(double precision) FROM postgres;\n"
        );
    }

    #[test]
    fn a_column_grant_on_a_catalog_view_names_the_view_and_the_column() {
        let acl = ChangedAcl {
            extension: None,
            target: GrantTarget::Table,
            identity: "pg_catalog.pg_stat_activity".into(),
            column: Some("query".into()),
            acl: Some(vec![grant("\"Monitor\"", "SELECT")]),
            initial: Vec::new(),
        };
        let item = dump(&acl).unwrap();
        assert_eq!(
            item.sql,
            "GRANT SELECT (query) ON TABLE pg_catalog.pg_stat_activity TO \"Monitor\";\n"
        );
        assert_eq!(
            (item.schema.as_str(), item.name.as_str()),
            ("pg_catalog", "pg_catalog.pg_stat_activity.query")
        );
    }

    #[test]
    fn privileges_as_they_started_are_no_item() {
        let same = changed(GrantTarget::Schema, "extensions", Some(16_450));
        assert_eq!(dump(&same), None);
    }

    #[test]
    fn every_kind_with_an_acl_has_its_grant_keyword() {
        let keyword = |kind| GrantTarget::of_kind(kind).map(GrantTarget::keyword);
        assert_eq!(keyword("aggregate"), Some("FUNCTION"));
        assert_eq!(keyword("procedure"), Some("PROCEDURE"));
        assert_eq!(keyword("materialized view"), Some("TABLE"));
        assert_eq!(keyword("sequence"), Some("SEQUENCE"));
        assert_eq!(keyword("domain"), Some("TYPE"));
        assert_eq!(
            keyword("foreign-data wrapper"),
            Some("FOREIGN DATA WRAPPER")
        );
        assert_eq!(keyword("server"), Some("FOREIGN SERVER"));
        assert_eq!(keyword("language"), Some("LANGUAGE"));
        assert_eq!(keyword("index"), None);
    }
}
