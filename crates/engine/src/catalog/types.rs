//! Enum, composite and domain types, with domain constraints.

use std::collections::HashMap;

use super::model::Header;
use super::*;
use crate::sql::Sql;

/// An enum, composite or domain type as the catalog describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Type {
    pub header: Header,
    /// Its array type, where it has one.
    pub array: Option<u32>,
    pub definition: TypeDefinition,
}

/// What a type is made of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TypeDefinition {
    /// Its labels in order, each a literal, joined by `, `.
    Enum {
        labels: String,
    },
    /// Its attributes as `CREATE TYPE … AS (…)` lists them (name, type, a collation other
    /// than the type's), and its `COMMENT ON COLUMN …;` statements, one a line.
    Composite {
        relation: u32,
        attributes: String,
        attribute_comments: Option<String>,
    },
    Domain(Domain),
}

/// A domain: its base type and what it holds its values to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Domain {
    /// As `format_type` prints it, with its modifier (`numeric(10,2)`).
    pub base_type: String,
    /// A collation other than the base type's, quoted.
    pub collation: Option<String>,
    pub default: Option<String>,
    /// `NOT NULL` as a property of the domain (before 17; from 17 it is one of its
    /// `constraints`).
    pub not_null: bool,
    /// By name.
    pub constraints: Vec<DomainConstraint>,
}

/// A domain's constraint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainConstraint {
    pub oid: u32,
    /// Its quoted name.
    pub q: String,
    /// As `pg_get_constraintdef` writes it (`CHECK ((VALUE > 0))`).
    pub definition: String,
    /// `false` for one added `NOT VALID` and never validated.
    pub validated: bool,
    pub comment: Option<String>,
}

pub(super) async fn types(db: &Db<'_>, catalog: &mut Catalog) -> Result<(), CatalogError> {
    for user_type in get(db).await? {
        catalog.items.extend(dump(&user_type));
    }
    Ok(())
}

/// Every user enum, composite (not a table's row type) and domain type, not an extension's.
pub(super) async fn get(db: &Db<'_>) -> Result<Vec<Type>, CatalogError> {
    let sql = format!(
        "SELECT t.oid, t.typtype::text AS kind, n.nspname::text AS schema, t.typname::text AS name, \
         quote_ident(n.nspname) || '.' || quote_ident(t.typname) AS q, t.typarray, t.typrelid, \
         quote_ident(pg_get_userbyid(t.typowner)) AS owner, (SELECT description FROM pg_description WHERE objoid = t.oid AND classoid = 'pg_type'::regclass AND objsubid = 0) AS comment, \
         {}, \
         (SELECT string_agg(quote_literal(e.enumlabel), ', ' ORDER BY e.enumsortorder) FROM pg_enum e WHERE e.enumtypid = t.oid) AS labels, \
         (SELECT string_agg(quote_ident(a.attname) || ' ' || format_type(a.atttypid, a.atttypmod) || \
             CASE WHEN a.attcollation <> 0 AND a.attcollation <> at.typcollation \
             THEN ' COLLATE ' || quote_ident(cn.nspname) || '.' || quote_ident(co.collname) ELSE '' END, ', ' ORDER BY a.attnum) \
          FROM pg_attribute a JOIN pg_type at ON at.oid = a.atttypid \
          LEFT JOIN pg_collation co ON co.oid = a.attcollation LEFT JOIN pg_namespace cn ON cn.oid = co.collnamespace \
          WHERE a.attrelid = t.typrelid AND a.attnum > 0 AND NOT a.attisdropped) AS attributes, \
         (SELECT string_agg(format('COMMENT ON COLUMN %s.%I IS %L;', quote_ident(n.nspname) || '.' || quote_ident(t.typname), \
             a.attname, d.description), E'\\n' ORDER BY a.attnum) \
          FROM pg_attribute a JOIN pg_description d ON d.objoid = t.typrelid AND d.classoid = 'pg_class'::regclass \
             AND d.objsubid = a.attnum WHERE a.attrelid = t.typrelid) AS attribute_comments, \
         format_type(t.typbasetype, t.typtypmod) AS base_type, t.typnotnull, t.typdefault, \
         CASE WHEN t.typtype = 'd' AND t.typcollation <> 0 AND t.typcollation <> bt.typcollation \
             THEN quote_ident(dcn.nspname) || '.' || quote_ident(dco.collname) END AS collation \
         FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace \
         LEFT JOIN pg_type bt ON bt.oid = t.typbasetype \
         LEFT JOIN pg_collation dco ON dco.oid = t.typcollation LEFT JOIN pg_namespace dcn ON dcn.oid = dco.collnamespace \
         WHERE t.oid >= 16384 AND {USER_SCHEMA} AND {} AND t.typtype IN ('e', 'c', 'd') \
         AND (t.typtype <> 'c' OR (SELECT c.relkind FROM pg_class c WHERE c.oid = t.typrelid) = 'c')",
        acl_columns("t.typacl", "t.typowner", 'T'),
        not_in_extension("pg_type", "t.oid")
    );
    let mut constraints = domain_constraints(db).await?;
    let mut types = Vec::new();
    for row in db.query("types", &sql).await? {
        let header = Header::of(row.schema_object()?, row.get("owner")?, row.get("comment")?)
            .with_acl(&row)?;
        let text = |column: &str| -> Result<String, CatalogError> {
            Ok(row.get::<Option<String>>(column)?.unwrap_or_default())
        };
        let definition = match row.get::<String>("kind")?.as_str() {
            "e" => TypeDefinition::Enum {
                labels: text("labels")?,
            },
            "c" => TypeDefinition::Composite {
                relation: row.get("typrelid")?,
                attributes: text("attributes")?,
                attribute_comments: row.get("attribute_comments")?,
            },
            _ => TypeDefinition::Domain(Domain {
                base_type: row.get("base_type")?,
                collation: row.get("collation")?,
                default: row.get("typdefault")?,
                // From 17 a domain's NOT NULL is a named constraint, read with the others.
                not_null: row.get::<bool>("typnotnull")? && !db.version.at_least(17),
                constraints: constraints.remove(&header.oid).unwrap_or_default(),
            }),
        };
        types.push(Type {
            array: Some(row.get::<u32>("typarray")?).filter(|a| *a != 0),
            header,
            definition,
        });
    }
    Ok(types)
}

/// Every domain constraint, by domain, each domain's by name.
async fn domain_constraints(
    db: &Db<'_>,
) -> Result<HashMap<u32, Vec<DomainConstraint>>, CatalogError> {
    let sql = "SELECT c.oid, c.contypid, quote_ident(c.conname) AS q, pg_get_constraintdef(c.oid) AS def, \
         c.convalidated, (SELECT description FROM pg_description WHERE objoid = c.oid AND classoid = 'pg_constraint'::regclass AND objsubid = 0) AS comment \
         FROM pg_constraint c WHERE c.contypid <> 0 ORDER BY c.contypid, c.conname";
    let mut constraints: HashMap<u32, Vec<DomainConstraint>> = HashMap::new();
    for row in db.query("domain constraints", sql).await? {
        constraints
            .entry(row.get("contypid")?)
            .or_default()
            .push(DomainConstraint {
                oid: row.get("oid")?,
                q: row.get("q")?,
                definition: row.get("def")?,
                validated: row.get("convalidated")?,
                comment: row.get("comment")?,
            });
    }
    Ok(constraints)
}

/// The items of `user_type`: a domain's constraints added `NOT VALID` (after the data, which
/// they may not hold for), the one that creates it, and its grants.
pub(super) fn dump(user_type: &Type) -> Vec<Item> {
    let header = &user_type.header;
    let q = &header.q;
    let object = oid_ref(class::PG_TYPE, header.oid);
    let mut owns = vec![object];
    owns.extend(user_type.array.map(|a| oid_ref(class::PG_TYPE, a)));
    let mut items = Vec::new();
    let (keyword, mut sql) = match &user_type.definition {
        TypeDefinition::Enum { labels } => (
            "TYPE",
            Sql::from(format!("CREATE TYPE {q} AS ENUM ({labels});\n")),
        ),
        TypeDefinition::Composite {
            relation,
            attributes,
            ..
        } => {
            owns.push(oid_ref(class::PG_CLASS, *relation));
            (
                "TYPE",
                Sql::from(format!("CREATE TYPE {q} AS ({attributes});\n")),
            )
        }
        TypeDefinition::Domain(domain) => {
            owns.extend(
                domain
                    .constraints
                    .iter()
                    .map(|c| oid_ref(class::PG_CONSTRAINT, c.oid)),
            );
            let (create, not_valid) = create_domain(q, domain);
            if !not_valid.is_empty() {
                // After the data, with the tables' NOT VALID checks.
                items.push(
                    Item::new(
                        ItemKind::ForeignKey,
                        &header.schema,
                        &header.name,
                        not_valid,
                    )
                    .needing([object]),
                );
            }
            ("DOMAIN", Sql::from(create))
        }
    };
    sql.append(header.tail(keyword));
    if let TypeDefinition::Composite {
        attribute_comments: Some(comments),
        ..
    } = &user_type.definition
    {
        sql.push_str(comments);
        sql.push_str("\n");
    }
    items.push(Item::new(ItemKind::Type, &header.schema, &header.name, sql).owning(owns));
    items.extend(header.acl_item("TYPE", object));
    items
}

/// `CREATE DOMAIN` with its validated constraints, and their comments; and the statements
/// that add the others `NOT VALID` (then comment on them), empty when there are none.
fn create_domain(q: &str, domain: &Domain) -> (String, String) {
    let mut create = format!("CREATE DOMAIN {q} AS {}", domain.base_type);
    if let Some(collation) = &domain.collation {
        create.push_str(&format!(" COLLATE {collation}"));
    }
    if let Some(default) = &domain.default {
        create.push_str(&format!(" DEFAULT {default}"));
    }
    if domain.not_null {
        create.push_str(" NOT NULL");
    }
    let (mut comments, mut not_valid) = (String::new(), String::new());
    for constraint in &domain.constraints {
        let (cq, definition) = (&constraint.q, &constraint.definition);
        let comment = comment_sql(
            &format!("CONSTRAINT {cq} ON DOMAIN {q}"),
            constraint.comment.clone(),
        );
        if constraint.validated {
            create.push_str(&format!(" CONSTRAINT {cq} {definition}"));
            comments.push_str(&comment);
        } else {
            not_valid.push_str(&format!(
                "ALTER DOMAIN {q} ADD CONSTRAINT {cq} {definition};\n"
            ));
            not_valid.push_str(&comment);
        }
    }
    create.push_str(";\n");
    create.push_str(&comments);
    (create, not_valid)
}

#[cfg(test)]
mod tests {
    use super::super::model::tests::header;
    use super::*;
    use crate::acl::Grant;

    fn user_type(definition: TypeDefinition) -> Type {
        Type {
            header: header("app.mood", Some("app")),
            array: Some(16_401),
            definition,
        }
    }

    fn domain(not_null: bool, constraints: Vec<DomainConstraint>) -> Type {
        user_type(TypeDefinition::Domain(Domain {
            base_type: "character varying(20)".into(),
            collation: Some("public.\"C\"".into()),
            default: Some("'ok'::character varying".into()),
            not_null,
            constraints,
        }))
    }

    fn constraint(oid: u32, q: &str, definition: &str, validated: bool) -> DomainConstraint {
        DomainConstraint {
            oid,
            q: q.into(),
            definition: definition.into(),
            validated,
            comment: None,
        }
    }

    #[test]
    fn an_enum_its_owner_comment_and_grants() {
        let mut mood = user_type(TypeDefinition::Enum {
            labels: "'sad', 'it''s ok'".into(),
        });
        mood.header.comment = Some("how it feels".into());
        mood.header.acl = Some(vec![Grant {
            grantee: "reader".into(),
            privilege: "USAGE".into(),
            grantable: false,
            grantor: None,
        }]);
        let items = dump(&mood);
        assert_eq!(items.len(), 2);
        assert_eq!(
            items[0].sql,
            "CREATE TYPE app.mood AS ENUM ('sad', 'it''s ok');\n\
             ALTER TYPE app.mood OWNER TO app;\n\
             COMMENT ON TYPE app.mood IS 'how it feels';\n"
        );
        assert_eq!(
            (
                items[0].kind,
                items[0].schema.as_str(),
                items[0].name.as_str()
            ),
            (ItemKind::Type, "app", "mood")
        );
        assert_eq!(
            items[0].owns,
            [
                oid_ref(class::PG_TYPE, 16_400),
                oid_ref(class::PG_TYPE, 16_401)
            ]
        );
        assert_eq!(
            (items[1].kind, items[1].sql.as_str()),
            (ItemKind::Acl, "GRANT USAGE ON TYPE app.mood TO reader;\n")
        );
        assert_eq!(items[1].needs, [oid_ref(class::PG_TYPE, 16_400)]);
    }

    #[test]
    fn a_composite_type_and_its_attribute_comments() {
        let mut pair = user_type(TypeDefinition::Composite {
            relation: 16_402,
            attributes: "x integer, label text COLLATE public.\"C\"".into(),
            attribute_comments: Some("COMMENT ON COLUMN app.mood.x IS 'first';".into()),
        });
        pair.array = None;
        let items = dump(&pair);
        assert_eq!(
            items[0].sql,
            "CREATE TYPE app.mood AS (x integer, label text COLLATE public.\"C\");\n\
             ALTER TYPE app.mood OWNER TO app;\n\
             COMMENT ON COLUMN app.mood.x IS 'first';\n"
        );
        assert_eq!(
            items[0].owns,
            [
                oid_ref(class::PG_TYPE, 16_400),
                oid_ref(class::PG_CLASS, 16_402)
            ]
        );
    }

    #[test]
    fn a_domain_before_17_with_a_not_valid_constraint_added_after_the_data() {
        let mut positive = constraint(
            16_410,
            "positive",
            "CHECK ((length((VALUE)::text) > 0))",
            true,
        );
        positive.comment = Some("not empty".into());
        let mut short = constraint(
            16_411,
            "short",
            "CHECK ((length((VALUE)::text) < 10))",
            false,
        );
        short.comment = Some("short".into());
        let mut status = domain(true, vec![positive, short]);
        status.header.comment = Some("a status".into());
        let items = dump(&status);
        assert_eq!(items.len(), 2);
        assert_eq!(
            (items[0].kind, items[0].sql.as_str()),
            (
                ItemKind::ForeignKey,
                "ALTER DOMAIN app.mood ADD CONSTRAINT short CHECK ((length((VALUE)::text) < 10));\n\
                 COMMENT ON CONSTRAINT short ON DOMAIN app.mood IS 'short';\n"
            )
        );
        assert_eq!(items[0].needs, [oid_ref(class::PG_TYPE, 16_400)]);
        assert!(items[0].owns.is_empty());
        assert_eq!(
            items[1].sql,
            "CREATE DOMAIN app.mood AS character varying(20) COLLATE public.\"C\" \
             DEFAULT 'ok'::character varying NOT NULL \
             CONSTRAINT positive CHECK ((length((VALUE)::text) > 0));\n\
             COMMENT ON CONSTRAINT positive ON DOMAIN app.mood IS 'not empty';\n\
             ALTER DOMAIN app.mood OWNER TO app;\n\
             COMMENT ON DOMAIN app.mood IS 'a status';\n"
        );
        assert_eq!(
            items[1].owns,
            [
                oid_ref(class::PG_TYPE, 16_400),
                oid_ref(class::PG_TYPE, 16_401),
                oid_ref(class::PG_CONSTRAINT, 16_410),
                oid_ref(class::PG_CONSTRAINT, 16_411)
            ]
        );
    }

    #[test]
    fn a_domain_from_17_has_its_not_null_as_a_named_constraint() {
        let status = domain(
            false,
            vec![constraint(16_412, "mood_not_null", "NOT NULL", true)],
        );
        let items = dump(&status);
        assert_eq!(items.len(), 1);
        assert_eq!(
            items[0].sql,
            "CREATE DOMAIN app.mood AS character varying(20) COLLATE public.\"C\" \
             DEFAULT 'ok'::character varying CONSTRAINT mood_not_null NOT NULL;\n\
             ALTER DOMAIN app.mood OWNER TO app;\n"
        );
    }
}
