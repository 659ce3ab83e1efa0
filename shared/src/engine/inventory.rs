//! The object inventory: every user object in the database, from every catalog.
//!
//! The backup compares it with what the catalog reader claimed. An object nobody claimed would
//! be missing from the restore, so the backup refuses to run and names it, unless the operator
//! excluded it explicitly. The counts per kind go into the manifest for the verifier.

use std::collections::{BTreeMap, HashSet};

use tokio_postgres::Client;

use super::item::ObjectRef;
use crate::pg::value;
use crate::version::ServerVersion;

/// One object, as `pg_identify_object` describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InventoryObject {
    pub object: ObjectRef,
    /// e.g. `table`, `index`, `function`, `rule`.
    pub kind: String,
    /// e.g. `app.users`, `app.post_count(bigint)`.
    pub identity: String,
}

impl InventoryObject {
    pub fn label(&self) -> String {
        format!("{} {}", self.kind, self.identity)
    }
}

/// Every catalog that holds database-local objects.
const CATALOGS: [&str; 28] = [
    "pg_namespace",
    "pg_class",
    "pg_type",
    "pg_proc",
    "pg_constraint",
    "pg_trigger",
    "pg_rewrite",
    "pg_policy",
    "pg_attrdef",
    "pg_operator",
    "pg_opclass",
    "pg_opfamily",
    "pg_collation",
    "pg_conversion",
    "pg_cast",
    "pg_language",
    "pg_extension",
    "pg_ts_config",
    "pg_ts_dict",
    "pg_ts_parser",
    "pg_ts_template",
    "pg_foreign_data_wrapper",
    "pg_foreign_server",
    "pg_event_trigger",
    "pg_publication",
    "pg_statistic_ext",
    "pg_transform",
    "pg_default_acl",
];

/// Objects created by users (OIDs from 16384 up), minus members of extensions, the parts of
/// extension members (an extension table's constraints, an extension domain's checks, an
/// extension view's rules), the schemas of temporary tables, and objects that exist only as
/// part of another (array types, toast tables, constraint indexes, view rules...).
pub async fn read(
    client: &Client,
    version: ServerVersion,
) -> Result<Vec<InventoryObject>, InventoryError> {
    // Tables and schemas in publications are objects of their own (schemas from 15).
    let members: &[&str] = if version.at_least(15) {
        &["pg_publication_rel", "pg_publication_namespace"]
    } else {
        &["pg_publication_rel"]
    };
    let union: Vec<String> = CATALOGS
        .iter()
        .chain(members)
        .map(|c| format!("SELECT '{c}'::regclass::oid AS classid, oid AS objid FROM {c}"))
        .chain([
            "SELECT 'pg_am'::regclass::oid, oid FROM pg_am".to_string(),
            // pg_user_mapping itself is readable by superusers only; the view is public.
            "SELECT 'pg_user_mapping'::regclass::oid, umid FROM pg_user_mappings".to_string(),
            // Large objects are identified through pg_largeobject's class, as pg_depend does.
            "SELECT 'pg_largeobject'::regclass::oid, oid FROM pg_largeobject_metadata".to_string(),
        ])
        .collect();
    let sql = format!(
        "WITH objects AS ({}) \
         SELECT o.classid, o.objid, i.type, i.identity FROM objects o, \
             LATERAL pg_identify_object(o.classid, o.objid, 0) AS i \
         WHERE o.objid >= 16384 \
           AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = o.classid AND d.objid = o.objid \
                           AND d.objsubid = 0 AND d.deptype IN ('e', 'i')) \
           AND NOT EXISTS (SELECT 1 FROM pg_depend d JOIN pg_depend x ON x.classid = d.refclassid \
                               AND x.objid = d.refobjid AND x.deptype = 'e' \
                           WHERE d.classid = o.classid AND d.objid = o.objid AND d.deptype IN ('a', 'i')) \
           AND coalesce(i.schema, '') NOT IN ('pg_catalog', 'information_schema') \
           AND coalesce(i.schema, '') !~ '^pg_(toast|temp_|toast_temp_)' \
           AND NOT (o.classid = 'pg_namespace'::regclass AND i.identity ~ '^pg_(temp|toast_temp)_[0-9]+$') \
         ORDER BY i.type, i.identity",
        union.join(" UNION ALL ")
    );
    let rows = client
        .query(&sql, &[])
        .await
        .map_err(InventoryError::Query)?;
    rows.iter()
        .map(|row| {
            Ok(InventoryObject {
                object: ObjectRef {
                    class: value(row, 0)?,
                    oid: value(row, 1)?,
                },
                kind: value::<Option<String>>(row, 2)?.unwrap_or_default(),
                identity: value::<Option<String>>(row, 3)?.unwrap_or_default(),
            })
        })
        .collect::<Result<_, String>>()
        .map_err(InventoryError::Shape)
}

/// Why the inventory could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum InventoryError {
    #[error("{}", crate::pg::describe(.0))]
    Query(tokio_postgres::Error),
    #[error("{0}")]
    Shape(String),
}

/// Objects per kind.
pub fn counts<'a>(objects: impl IntoIterator<Item = &'a InventoryObject>) -> BTreeMap<String, u64> {
    let mut counts = BTreeMap::new();
    for object in objects {
        *counts.entry(object.kind.clone()).or_insert(0) += 1;
    }
    counts
}

/// Whether `object` matches an operator's exclusion: its `kind identity` label, or its identity
/// alone (`app.legacy_rule`), compared exactly.
pub fn is_excluded(object: &InventoryObject, exclusions: &[String]) -> bool {
    exclusions
        .iter()
        .any(|e| *e == object.identity || *e == object.label())
}

/// The objects nobody reproduces: neither claimed by an item, nor deliberately skipped, nor
/// excluded by the operator.
pub fn unclaimed<'a>(
    objects: &'a [InventoryObject],
    claimed: &HashSet<ObjectRef>,
    exclusions: &[String],
) -> Vec<&'a InventoryObject> {
    objects
        .iter()
        .filter(|o| !claimed.contains(&o.object) && !is_excluded(o, exclusions))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object(oid: u32, kind: &str, identity: &str) -> InventoryObject {
        InventoryObject {
            object: ObjectRef { class: 1259, oid },
            kind: kind.into(),
            identity: identity.into(),
        }
    }

    #[test]
    fn unclaimed_objects_are_reported_unless_excluded() {
        let objects = [
            object(1, "table", "app.t"),
            object(2, "rule", "r on app.t"),
            object(3, "rule", "s on app.t"),
        ];
        let claimed: HashSet<ObjectRef> = [objects[0].object].into();
        let missing: Vec<String> = unclaimed(&objects, &claimed, &["rule s on app.t".into()])
            .iter()
            .map(|o| o.label())
            .collect();
        assert_eq!(missing, ["rule r on app.t"]);
        assert_eq!(counts(&objects)["rule"], 2);
    }
}
