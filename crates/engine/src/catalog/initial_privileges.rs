//! Privileges changed on objects the backup does not create: members of extensions (CREATE
//! EXTENSION makes them again) and the system catalog's own objects (initdb makes them). As
//! pg_dump does, their ACLs are compared with what they started with (`pg_init_privs`, or the
//! owner's default when nothing was recorded), and only the difference is dumped: a GRANT
//! EXECUTE on pgcrypto's functions, a REVOKE on a pg_catalog function, a column grant on a
//! catalog view.

use super::*;

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

/// The keyword a GRANT names an object of `kind` (as `pg_identify_object` spells kinds) by.
fn grant_target(kind: &str) -> Option<&'static str> {
    Some(match kind {
        "function" | "aggregate" => "FUNCTION",
        "procedure" => "PROCEDURE",
        "table" | "view" | "materialized view" | "foreign table" => "TABLE",
        "sequence" => "SEQUENCE",
        "type" | "domain" => "TYPE",
        "schema" => "SCHEMA",
        "foreign-data wrapper" => "FOREIGN DATA WRAPPER",
        "server" => "FOREIGN SERVER",
        "language" => "LANGUAGE",
        _ => return None,
    })
}

pub(super) async fn initial_privileges(
    db: &Db<'_>,
    catalog: &mut Catalog,
) -> Result<(), CatalogError> {
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
    for row in db
        .query("privileges of extension and system objects", &sql)
        .await?
    {
        let (kind, identity): (String, String) = (row.get("kind")?, row.get("identity")?);
        let column: Option<String> = row.get("column_name")?;
        let (target, schema, name) = match &column {
            Some(column) => {
                let relation: String = row.get("relation")?;
                let relation_kind: String = row.get("relation_kind")?;
                let Some(word) = grant_target(&relation_kind) else {
                    continue;
                };
                let name = format!("{relation}.{column}");
                (
                    format!("{word} {relation}"),
                    quote_schema(&relation).to_string(),
                    name,
                )
            }
            None => {
                let Some(word) = grant_target(&kind) else {
                    continue;
                };
                (
                    format!("{word} {identity}"),
                    quote_schema(&identity).to_string(),
                    identity.clone(),
                )
            }
        };
        let sql = acl_statements(
            &target,
            column.as_deref(),
            grants(&row, "acl")?.as_deref(),
            &grants(&row, "acl_default")?.unwrap_or_default(),
        );
        if sql.is_empty() {
            continue;
        }
        let mut item = Item::new(ItemKind::Acl, &schema, &name, sql);
        if let Some(extension) = row.get::<Option<u32>>("extension")? {
            item = item.needing([oid_ref(class::PG_EXTENSION, extension)]);
        }
        catalog.items.push(item);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_with_an_acl_has_its_grant_keyword() {
        assert_eq!(grant_target("aggregate"), Some("FUNCTION"));
        assert_eq!(grant_target("materialized view"), Some("TABLE"));
        assert_eq!(grant_target("domain"), Some("TYPE"));
        assert_eq!(
            grant_target("foreign-data wrapper"),
            Some("FOREIGN DATA WRAPPER")
        );
        assert_eq!(grant_target("index"), None);
    }
}
