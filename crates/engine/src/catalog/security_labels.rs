//! Security labels (`SECURITY LABEL FOR provider ON ... IS 'label'`) on the database's own
//! objects, as pg_dump writes them beside each object. A restore needs the same label
//! providers loaded on the target (`shared_preload_libraries`); without one the server refuses
//! the label, naming the provider.

use super::*;

/// The `SECURITY LABEL` object keyword for a `pg_identify_object` type, or None for a type
/// that takes no label.
fn label_target(kind: &str) -> Option<&'static str> {
    Some(match kind {
        "table" => "TABLE",
        "table column" | "view column" | "foreign table column" | "materialized view column" => {
            "COLUMN"
        }
        "view" => "VIEW",
        "materialized view" => "MATERIALIZED VIEW",
        "foreign table" => "FOREIGN TABLE",
        "sequence" => "SEQUENCE",
        "function" => "FUNCTION",
        "procedure" => "PROCEDURE",
        "aggregate" => "AGGREGATE",
        "type" => "TYPE",
        "domain" => "DOMAIN",
        "schema" => "SCHEMA",
        "language" => "LANGUAGE",
        "event trigger" => "EVENT TRIGGER",
        "publication" => "PUBLICATION",
        "subscription" => "SUBSCRIPTION",
        "large object" => "LARGE OBJECT",
        _ => return None,
    })
}

pub(super) async fn security_labels(
    db: &Db<'_>,
    catalog: &mut Catalog,
) -> Result<(), CatalogError> {
    let sql = "SELECT l.classoid::oid AS classoid, l.objoid, l.provider, l.label, i.type AS kind, i.identity \
         FROM pg_seclabel l, LATERAL pg_identify_object(l.classoid, l.objoid, l.objsubid) AS i \
         WHERE l.objoid >= 16384 ORDER BY l.classoid, l.objoid, l.objsubid, l.provider";
    for row in db.query("security labels", sql).await? {
        let (class, oid, provider, label, kind, identity): (
            u32,
            u32,
            String,
            String,
            String,
            String,
        ) = (
            row.get("classoid")?,
            row.get("objoid")?,
            row.get("provider")?,
            row.get("label")?,
            row.get("kind")?,
            row.get("identity")?,
        );
        let Some(target) = label_target(&kind) else {
            continue;
        };
        let sql = format!(
            "SECURITY LABEL FOR {} ON {target} {identity} IS {};\n",
            ident(&provider),
            literal(&label)
        );
        catalog.items.push(
            Item::new(
                ItemKind::SecurityLabel,
                "",
                &format!("{provider} on {kind} {identity}"),
                sql,
            )
            .needing([oid_ref(class, oid)]),
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_of_every_relation_are_labelled_as_columns() {
        assert_eq!(label_target("table column"), Some("COLUMN"));
        assert_eq!(label_target("view column"), Some("COLUMN"));
        assert_eq!(label_target("large object"), Some("LARGE OBJECT"));
        assert_eq!(label_target("operator"), None);
    }
}
