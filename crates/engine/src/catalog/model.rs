//! The catalog as data: a kind's `get` decodes each row once into a struct with named fields
//! (every version gate of the kind lives there), and its `dump` renders the struct into an
//! item, a pure function tested from struct literals without a server. What every object
//! carries besides its definition is its [`Header`], rendered by one tail for all kinds.

use super::{CatalogError, Fields, SchemaObject, grants, literal};
use crate::acl::{Grant, acl_statements};
use crate::item::{Item, ItemKind, ObjectRef};
use crate::sql::Sql;

/// Who an object is, as statements and messages name it, and what every object carries
/// besides its definition: its owner and its comment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Header {
    pub oid: u32,
    /// The object's schema, `""` for objects outside schemas (casts, languages).
    pub schema: String,
    /// The bare name, for ordering and messages.
    pub name: String,
    /// The object as statements name it after their kind keyword: `public."C"`,
    /// `(integer AS text)`.
    pub q: String,
    /// The owner (quoted); `None` for kinds that have none (casts).
    pub owner: Option<String>,
    pub comment: Option<String>,
    /// The privileges granted on it, `None` when they are the default for its kind (and
    /// for kinds without privileges); each grant made by another grantor names it.
    pub acl: Option<Vec<Grant>>,
    /// The default the ACL is told against (what `acldefault` gives its owner).
    pub acl_default: Vec<Grant>,
}

impl Header {
    /// A schema object's header from its [`SchemaObject`] columns.
    pub(super) fn of(object: SchemaObject, owner: Option<String>, comment: Option<String>) -> Self {
        Header {
            oid: object.oid,
            schema: object.schema,
            name: object.name,
            q: object.q,
            owner,
            comment,
            acl: None,
            acl_default: Vec::new(),
        }
    }

    /// The header of an object statements name by its bare name, outside any schema
    /// (extensions, access methods, publications...) or `ON` its table (policies, rules,
    /// triggers): the row's `oid`, `name`, `q` and `comment`, no owner.
    pub(super) fn bare(row: &Fields) -> Result<Self, CatalogError> {
        Ok(Header {
            oid: row.get("oid")?,
            name: row.get("name")?,
            q: row.get("q")?,
            comment: row.get("comment")?,
            ..Header::default()
        })
    }

    /// This header with the ACL the row's `acl` and `acl_default` columns hold
    /// (`acl_columns`).
    pub(super) fn with_acl(self, row: &Fields) -> Result<Self, CatalogError> {
        Ok(Header {
            acl: grants(row, "acl")?,
            acl_default: grants(row, "acl_default")?.unwrap_or_default(),
            ..self
        })
    }

    /// The item that grants and revokes what differs from the default, needing `object`;
    /// `None` when the privileges are the default.
    pub fn acl_item(&self, keyword: &str, object: ObjectRef) -> Option<Item> {
        let sql = acl_statements(
            &format!("{keyword} {}", self.q),
            None,
            self.acl.as_deref(),
            &self.acl_default,
        );
        (!sql.is_empty())
            .then(|| Item::new(ItemKind::Acl, &self.schema, &self.name, sql).needing([object]))
    }

    /// The statements every object's item ends with, in pg_dump's order: the owner, then the
    /// comment. `keyword` names the kind as `ALTER` and `COMMENT ON` do (`COLLATION`).
    pub fn tail(&self, keyword: &str) -> Sql {
        self.tail_as(keyword, &self.q)
    }

    /// [`Header::tail`] for an object that statements name with more than its `q`: a policy
    /// or a rule `ON` its table.
    pub fn tail_as(&self, keyword: &str, named: &str) -> Sql {
        let mut sql = Sql::new();
        if let Some(owner) = &self.owner {
            sql.owner(&format!("{keyword} {named}"), owner);
        }
        if let Some(comment) = &self.comment {
            sql.push_str(&format!(
                "COMMENT ON {keyword} {named} IS {};\n",
                literal(comment)
            ));
        }
        sql
    }
}

/// When a trigger, rule or event trigger fires (`tgenabled`, `ev_enabled`, `evtenabled`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Enabled {
    /// On origin and local changes: the default.
    Origin,
    Disabled,
    Replica,
    Always,
}

impl Enabled {
    /// From the catalog's one-letter code (`O`, `D`, `R`, `A`).
    pub fn from_code(code: &str) -> Self {
        match code {
            "D" => Enabled::Disabled,
            "R" => Enabled::Replica,
            "A" => Enabled::Always,
            _ => Enabled::Origin,
        }
    }
}

/// How a relation outlives a session and a crash (`relpersistence`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Persistence {
    #[default]
    Permanent,
    /// Not written to the WAL: emptied by a crash, not replicated.
    Unlogged,
}

impl Persistence {
    /// From the catalog's one-letter code (`p`, `u`; a temporary relation is never dumped).
    pub fn from_code(code: &str) -> Self {
        match code {
            "u" => Persistence::Unlogged,
            _ => Persistence::Permanent,
        }
    }

    /// The word `CREATE` takes before the kind: `"UNLOGGED "` or nothing.
    pub fn create_word(self) -> &'static str {
        match self {
            Persistence::Unlogged => "UNLOGGED ",
            Persistence::Permanent => "",
        }
    }
}

/// The index of a partitioned table that a partition's index (its own, or its key's) is
/// attached to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParentIndex {
    pub oid: u32,
    /// The index quoted and schema-qualified.
    pub q: String,
}

impl ParentIndex {
    /// From the row's `parent_index` and `parent_index_oid` columns; `None` for an index
    /// attached to none.
    pub(super) fn of(row: &Fields) -> Result<Option<Self>, CatalogError> {
        Ok(
            match (
                row.get::<Option<String>>("parent_index")?,
                row.get::<Option<u32>>("parent_index_oid")?,
            ) {
                (Some(q), Some(oid)) => Some(ParentIndex { oid, q }),
                _ => None,
            },
        )
    }

    /// The item named `name` that attaches index `child` on `table` (`qualified`, as
    /// statements name it) to this one, needing both.
    pub fn attach(&self, child: u32, qualified: &str, table: &super::Relation, name: &str) -> Item {
        use crate::item::class::PG_CLASS;
        Item::new(
            ItemKind::IndexAttach,
            &table.schema,
            name,
            format!("ALTER INDEX {} ATTACH PARTITION {qualified};\n", self.q),
        )
        .needing([
            super::oid_ref(PG_CLASS, child),
            super::oid_ref(PG_CLASS, self.oid),
        ])
        .of_table(&table.qualified_name)
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// A header for struct literals in the kinds' tests.
    pub(in crate::catalog) fn header(q: &str, owner: Option<&str>) -> Header {
        let (schema, name) = q.split_once('.').unwrap_or(("", q));
        Header {
            oid: 16_400,
            schema: schema.to_string(),
            name: name.trim_matches('"').to_string(),
            q: q.to_string(),
            owner: owner.map(str::to_string),
            comment: None,
            acl: None,
            acl_default: Vec::new(),
        }
    }

    /// A table in schema `app`, as the relation-bound kinds' tests need one.
    pub(in crate::catalog) fn relation(name: &str) -> super::super::Relation {
        super::super::Relation {
            schema: "app".into(),
            name: name.into(),
            qualified_name: format!("app.{name}"),
            kind: "r".into(),
            inherits: false,
        }
    }

    #[test]
    fn the_tail_is_the_owner_then_the_comment() {
        let mut h = header("public.c", Some("app"));
        assert_eq!(
            h.tail("COLLATION").text,
            "ALTER COLLATION public.c OWNER TO app;\n"
        );
        h.comment = Some("it's".into());
        h.owner = None;
        assert_eq!(
            h.tail("CAST").text,
            "COMMENT ON CAST public.c IS 'it''s';\n"
        );
    }

    #[test]
    fn privileges_are_told_against_the_default() {
        let grant = |grantee: &str, privilege: &str| Grant {
            grantee: grantee.into(),
            privilege: privilege.into(),
            grantable: false,
            grantor: None,
        };
        let object = ObjectRef {
            class: 2615,
            oid: 16_400,
        };
        let mut h = header("app", Some("owner"));
        assert_eq!(
            h.acl_item("SCHEMA", object),
            None,
            "a default ACL is no item"
        );
        h.acl_default = vec![grant("owner", "USAGE"), grant("owner", "CREATE")];
        h.acl = Some(vec![
            grant("owner", "USAGE"),
            grant("owner", "CREATE"),
            grant("reader", "USAGE"),
        ]);
        let item = h.acl_item("SCHEMA", object).unwrap();
        assert_eq!(item.sql, "GRANT USAGE ON SCHEMA app TO reader;\n");
        assert_eq!(
            (item.kind, item.needs.as_slice()),
            (ItemKind::Acl, &[object][..])
        );
        h.acl = Some(vec![]);
        assert_eq!(
            h.acl_item("SCHEMA", object).unwrap().sql,
            "REVOKE USAGE ON SCHEMA app FROM owner;\nREVOKE CREATE ON SCHEMA app FROM owner;\n"
        );
    }
}
