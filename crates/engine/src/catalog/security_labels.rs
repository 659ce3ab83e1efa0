//! Security labels (`SECURITY LABEL FOR provider ON ... IS 'label'`) on the database's own
//! objects, as pg_dump writes them beside each object. A restore needs the same label
//! providers loaded on the target (`shared_preload_libraries`); without one the server refuses
//! the label, naming the provider.

use super::*;

/// A security label as the catalog describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecurityLabel {
    /// The labelled object (a column's table).
    pub object: ObjectRef,
    pub provider: String,
    pub label: String,
    pub target: LabelTarget,
    /// The object's type as `pg_identify_object` names it (`view column`), for the item's name.
    pub kind: String,
    /// The object as `pg_identify_object` names it (`app.users.email`).
    pub identity: String,
}

/// The kinds of object a label is dumped on, as `SECURITY LABEL … ON` names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LabelTarget {
    Table,
    /// A column of any relation.
    Column,
    View,
    MaterializedView,
    ForeignTable,
    Sequence,
    Function,
    Procedure,
    Aggregate,
    Type,
    Domain,
    Schema,
    Language,
    EventTrigger,
    Publication,
    Subscription,
    LargeObject,
}

impl LabelTarget {
    /// The target of an object of `kind` (as `pg_identify_object` names kinds); `None` for a
    /// kind that takes no label.
    pub fn of_kind(kind: &str) -> Option<Self> {
        Some(match kind {
            "table" => LabelTarget::Table,
            "table column"
            | "view column"
            | "foreign table column"
            | "materialized view column" => LabelTarget::Column,
            "view" => LabelTarget::View,
            "materialized view" => LabelTarget::MaterializedView,
            "foreign table" => LabelTarget::ForeignTable,
            "sequence" => LabelTarget::Sequence,
            "function" => LabelTarget::Function,
            "procedure" => LabelTarget::Procedure,
            "aggregate" => LabelTarget::Aggregate,
            "type" => LabelTarget::Type,
            "domain" => LabelTarget::Domain,
            "schema" => LabelTarget::Schema,
            "language" => LabelTarget::Language,
            "event trigger" => LabelTarget::EventTrigger,
            "publication" => LabelTarget::Publication,
            "subscription" => LabelTarget::Subscription,
            "large object" => LabelTarget::LargeObject,
            _ => return None,
        })
    }

    /// The keyword `SECURITY LABEL … ON` names the object with.
    pub fn keyword(self) -> &'static str {
        match self {
            LabelTarget::Table => "TABLE",
            LabelTarget::Column => "COLUMN",
            LabelTarget::View => "VIEW",
            LabelTarget::MaterializedView => "MATERIALIZED VIEW",
            LabelTarget::ForeignTable => "FOREIGN TABLE",
            LabelTarget::Sequence => "SEQUENCE",
            LabelTarget::Function => "FUNCTION",
            LabelTarget::Procedure => "PROCEDURE",
            LabelTarget::Aggregate => "AGGREGATE",
            LabelTarget::Type => "TYPE",
            LabelTarget::Domain => "DOMAIN",
            LabelTarget::Schema => "SCHEMA",
            LabelTarget::Language => "LANGUAGE",
            LabelTarget::EventTrigger => "EVENT TRIGGER",
            LabelTarget::Publication => "PUBLICATION",
            LabelTarget::Subscription => "SUBSCRIPTION",
            LabelTarget::LargeObject => "LARGE OBJECT",
        }
    }
}

pub(super) async fn security_labels(
    db: &Db<'_>,
    catalog: &mut Catalog,
) -> Result<(), CatalogError> {
    catalog.items.extend(get(db).await?.iter().map(dump));
    Ok(())
}

/// Every security label on a user object of a kind that takes one.
pub(super) async fn get(db: &Db<'_>) -> Result<Vec<SecurityLabel>, CatalogError> {
    let sql = "SELECT l.classoid::oid AS classoid, l.objoid, l.provider, l.label, i.type AS kind, i.identity \
         FROM pg_seclabel l, LATERAL pg_identify_object(l.classoid, l.objoid, l.objsubid) AS i \
         WHERE l.objoid >= 16384 ORDER BY l.classoid, l.objoid, l.objsubid, l.provider";
    let mut labels = Vec::new();
    for row in db.query("security labels", sql).await? {
        let kind: String = row.get("kind")?;
        let Some(target) = LabelTarget::of_kind(&kind) else {
            continue;
        };
        labels.push(SecurityLabel {
            object: oid_ref(row.get("classoid")?, row.get("objoid")?),
            provider: row.get("provider")?,
            label: row.get("label")?,
            target,
            kind,
            identity: row.get("identity")?,
        });
    }
    Ok(labels)
}

/// The item that sets `label`, needing the object it is on.
pub(super) fn dump(label: &SecurityLabel) -> Item {
    let SecurityLabel {
        object,
        provider,
        label,
        target,
        kind,
        identity,
    } = label;
    let sql = format!(
        "SECURITY LABEL FOR {} ON {} {identity} IS {};\n",
        ident(provider),
        target.keyword(),
        literal(label)
    );
    Item::new(
        ItemKind::SecurityLabel,
        "",
        &format!("{provider} on {kind} {identity}"),
        sql,
    )
    .needing([*object])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn label(kind: &str, identity: &str) -> SecurityLabel {
        SecurityLabel {
            object: oid_ref(class::PG_CLASS, 16_390),
            provider: "selinux".into(),
            label: "system_u:object_r:sepgsql_table_t:s0".into(),
            target: LabelTarget::of_kind(kind).unwrap(),
            kind: kind.into(),
            identity: identity.into(),
        }
    }

    #[test]
    fn a_label_on_a_table_needs_the_table() {
        let item = dump(&label("table", "app.users"));
        assert_eq!(
            item.sql,
            "SECURITY LABEL FOR selinux ON TABLE app.users IS 'system_u:object_r:sepgsql_table_t:s0';\n"
        );
        assert_eq!(
            (item.kind, item.schema.as_str(), item.name.as_str()),
            (ItemKind::SecurityLabel, "", "selinux on table app.users")
        );
        assert_eq!(item.needs, [oid_ref(class::PG_CLASS, 16_390)]);
        assert!(item.owns.is_empty() && item.marks.is_empty());
    }

    #[test]
    fn a_label_on_a_column_is_on_a_column_and_needs_its_table() {
        let mut column = label("view column", "app.active_users.email");
        column.provider = "My Provider".into();
        column.label = "it's secret".into();
        let item = dump(&column);
        assert_eq!(
            item.sql,
            "SECURITY LABEL FOR \"My Provider\" ON COLUMN app.active_users.email IS 'it''s secret';\n"
        );
        assert_eq!(
            item.name,
            "My Provider on view column app.active_users.email"
        );
        assert_eq!(item.needs, [oid_ref(class::PG_CLASS, 16_390)]);
    }

    #[test]
    fn columns_of_every_relation_are_labelled_as_columns() {
        for kind in [
            "table column",
            "view column",
            "foreign table column",
            "materialized view column",
        ] {
            assert_eq!(LabelTarget::of_kind(kind), Some(LabelTarget::Column));
        }
        assert_eq!(
            LabelTarget::of_kind("large object").map(LabelTarget::keyword),
            Some("LARGE OBJECT")
        );
        assert_eq!(
            LabelTarget::of_kind("materialized view").map(LabelTarget::keyword),
            Some("MATERIALIZED VIEW")
        );
        assert_eq!(LabelTarget::of_kind("operator"), None);
    }
}
