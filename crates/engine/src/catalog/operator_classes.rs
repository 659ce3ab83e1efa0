//! Operator families and operator classes, as pg_dump's `dumpOpfamily` and `dumpOpclass`.
//!
//! An operator or support function belongs either to a class (created with it) or loosely to
//! a family (added by `ALTER OPERATOR FAMILY ... ADD`); `pg_depend` says which. A class is
//! always written with its `FAMILY`, so every family is created once, by its own item.

use std::collections::HashMap;

use super::model::Header;
use super::*;
use crate::sql::Sql;

/// An operator family as the catalog describes it, with the members it holds loosely.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperatorFamily {
    pub header: Header,
    /// The access method, quoted.
    pub method: String,
    pub members: Members,
}

/// An operator class as the catalog describes it, with its members.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperatorClass {
    pub header: Header,
    /// The access method, quoted.
    pub method: String,
    /// The default class of its type for its access method.
    pub default: bool,
    /// The type it indexes.
    pub input_type: String,
    /// The type the index stores, when it is another.
    pub storage: Option<String>,
    pub family_oid: u32,
    /// Its family, quoted and schema-qualified.
    pub family: String,
    pub members: Members,
}

/// The operators and support functions a class or family holds, operators first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Members {
    /// Each as `CREATE OPERATOR CLASS` and `ALTER OPERATOR FAMILY … ADD` list them:
    /// `OPERATOR 1 app.<(app.t,app.t)`, `FUNCTION 1 (app.t, app.t) app.cmp(app.t,app.t)`.
    pub entries: Vec<String>,
    /// Their catalog rows (`pg_amop`, `pg_amproc`).
    pub objects: Vec<ObjectRef>,
}

pub(super) async fn operator_classes(
    db: &Db<'_>,
    catalog: &mut Catalog,
) -> Result<(), CatalogError> {
    let (families, classes) = get(db).await?;
    catalog.items.extend(families.iter().map(dump_family));
    catalog.items.extend(classes.iter().map(dump_class));
    Ok(())
}

/// Every user operator family and class (not an extension's), with their members.
pub(super) async fn get(
    db: &Db<'_>,
) -> Result<(Vec<OperatorFamily>, Vec<OperatorClass>), CatalogError> {
    let mut members = members(db).await?;
    let sql = format!(
        "SELECT f.oid, n.nspname::text AS schema, f.opfname::text AS name, \
         quote_ident(n.nspname) || '.' || quote_ident(f.opfname) AS q, quote_ident(a.amname) AS am, \
         quote_ident(pg_get_userbyid(f.opfowner)) AS owner, (SELECT description FROM pg_description WHERE objoid = f.oid AND classoid = 'pg_opfamily'::regclass AND objsubid = 0) AS comment \
         FROM pg_opfamily f JOIN pg_namespace n ON n.oid = f.opfnamespace JOIN pg_am a ON a.oid = f.opfmethod \
         WHERE f.oid >= 16384 AND {USER_SCHEMA} AND {} ORDER BY f.oid",
        not_in_extension("pg_opfamily", "f.oid")
    );
    let mut families = Vec::new();
    for row in db.query("operator families", &sql).await? {
        let header = Header::of(row.schema_object()?, row.get("owner")?, row.get("comment")?);
        let members = members
            .remove(&oid_ref(class::PG_OPFAMILY, header.oid))
            .unwrap_or_default();
        families.push(OperatorFamily {
            header,
            method: row.get("am")?,
            members,
        });
    }

    let sql = format!(
        "SELECT c.oid, n.nspname::text AS schema, c.opcname::text AS name, \
         quote_ident(n.nspname) || '.' || quote_ident(c.opcname) AS q, quote_ident(a.amname) AS am, \
         c.opcdefault, format_type(c.opcintype, NULL) AS input_type, \
         CASE WHEN c.opckeytype <> 0 THEN format_type(c.opckeytype, NULL) END AS storage, c.opcfamily, \
         (SELECT quote_ident(fn.nspname) || '.' || quote_ident(f.opfname) FROM pg_opfamily f \
             JOIN pg_namespace fn ON fn.oid = f.opfnamespace WHERE f.oid = c.opcfamily) AS family, \
         quote_ident(pg_get_userbyid(c.opcowner)) AS owner, (SELECT description FROM pg_description WHERE objoid = c.oid AND classoid = 'pg_opclass'::regclass AND objsubid = 0) AS comment \
         FROM pg_opclass c JOIN pg_namespace n ON n.oid = c.opcnamespace JOIN pg_am a ON a.oid = c.opcmethod \
         WHERE c.oid >= 16384 AND {USER_SCHEMA} AND {} ORDER BY c.oid",
        not_in_extension("pg_opclass", "c.oid")
    );
    let mut classes = Vec::new();
    for row in db.query("operator classes", &sql).await? {
        let header = Header::of(row.schema_object()?, row.get("owner")?, row.get("comment")?);
        let members = members
            .remove(&oid_ref(class::PG_OPCLASS, header.oid))
            .unwrap_or_default();
        classes.push(OperatorClass {
            header,
            method: row.get("am")?,
            default: row.get("opcdefault")?,
            input_type: row.get("input_type")?,
            storage: row.get("storage")?,
            family_oid: row.get("opcfamily")?,
            family: row.get("family")?,
            members,
        });
    }
    Ok((families, classes))
}

/// The members of every user class and family, keyed by the one that holds them (pg_depend's
/// reference).
async fn members(db: &Db<'_>) -> Result<HashMap<ObjectRef, Members>, CatalogError> {
    let operator_sql = "SELECT ao.oid, d.refclassid::oid AS holder_class, d.refobjid AS holder, \
         'OPERATOR ' || ao.amopstrategy || ' ' || ao.amopopr::regoperator::text || \
         CASE WHEN ao.amoppurpose = 'o' THEN ' FOR ORDER BY ' || (SELECT quote_ident(sn.nspname) || '.' || quote_ident(sf.opfname) \
             FROM pg_opfamily sf JOIN pg_namespace sn ON sn.oid = sf.opfnamespace WHERE sf.oid = ao.amopsortfamily) ELSE '' END AS entry \
         FROM pg_amop ao JOIN pg_depend d ON d.classid = 'pg_amop'::regclass AND d.objid = ao.oid \
             AND d.refclassid IN ('pg_opclass'::regclass, 'pg_opfamily'::regclass) \
         WHERE d.refobjid >= 16384 ORDER BY d.refobjid, ao.amopstrategy, ao.amoplefttype, ao.amoprighttype";
    let function_sql = "SELECT ap.oid, d.refclassid::oid AS holder_class, d.refobjid AS holder, \
         'FUNCTION ' || ap.amprocnum || ' (' || format_type(ap.amproclefttype, NULL) || ', ' || \
         format_type(ap.amprocrighttype, NULL) || ') ' || ap.amproc::regprocedure::text AS entry \
         FROM pg_amproc ap JOIN pg_depend d ON d.classid = 'pg_amproc'::regclass AND d.objid = ap.oid \
             AND d.refclassid IN ('pg_opclass'::regclass, 'pg_opfamily'::regclass) \
         WHERE d.refobjid >= 16384 ORDER BY d.refobjid, ap.amprocnum, ap.amproclefttype, ap.amprocrighttype";
    let mut members: HashMap<ObjectRef, Members> = HashMap::new();
    for (what, sql, member_class) in [
        ("operator class operators", operator_sql, class::PG_AMOP),
        ("operator class functions", function_sql, class::PG_AMPROC),
    ] {
        for row in db.query(what, sql).await? {
            let holder = oid_ref(row.get("holder_class")?, row.get("holder")?);
            let of_holder = members.entry(holder).or_default();
            of_holder.entries.push(row.get("entry")?);
            of_holder
                .objects
                .push(oid_ref(member_class, row.get("oid")?));
        }
    }
    Ok(members)
}

/// The item that creates `family` and adds its loose members.
pub(super) fn dump_family(family: &OperatorFamily) -> Item {
    let (header, am) = (&family.header, &family.method);
    let q = &header.q;
    let mut sql = Sql::from(format!("CREATE OPERATOR FAMILY {q} USING {am};\n"));
    if !family.members.entries.is_empty() {
        sql.push_str(&format!(
            "ALTER OPERATOR FAMILY {q} USING {am} ADD\n    {};\n",
            family.members.entries.join(",\n    ")
        ));
    }
    sql.append(header.tail_as("OPERATOR FAMILY", &format!("{q} USING {am}")));
    Item::new(
        ItemKind::OperatorFamily,
        &header.schema,
        &format!("{} USING {am}", header.name),
        sql,
    )
    .owning([oid_ref(class::PG_OPFAMILY, header.oid)])
    .owning(family.members.objects.iter().copied())
}

/// The item that creates `operator_class` with its members, needing its family.
pub(super) fn dump_class(operator_class: &OperatorClass) -> Item {
    let (header, am) = (&operator_class.header, &operator_class.method);
    let q = &header.q;
    let mut entries = operator_class.members.entries.clone();
    // STORAGE when the index stores another type; alone when there is nothing else to
    // write (the syntax needs one entry).
    match &operator_class.storage {
        Some(storage) => entries.push(format!("STORAGE {storage}")),
        None if entries.is_empty() => {
            entries.push(format!("STORAGE {}", operator_class.input_type))
        }
        None => {}
    }
    let default = if operator_class.default {
        " DEFAULT"
    } else {
        ""
    };
    let mut sql = Sql::from(format!(
        "CREATE OPERATOR CLASS {q}{default}\n    FOR TYPE {} USING {am} FAMILY {} AS\n    {};\n",
        operator_class.input_type,
        operator_class.family,
        entries.join(",\n    ")
    ));
    sql.append(header.tail_as("OPERATOR CLASS", &format!("{q} USING {am}")));
    Item::new(
        ItemKind::OperatorClass,
        &header.schema,
        &format!("{} USING {am}", header.name),
        sql,
    )
    .owning([oid_ref(class::PG_OPCLASS, header.oid)])
    .owning(operator_class.members.objects.iter().copied())
    .needing([oid_ref(class::PG_OPFAMILY, operator_class.family_oid)])
}

#[cfg(test)]
mod tests {
    use super::super::model::tests::header;
    use super::*;

    fn members(entries: &[&str]) -> Members {
        Members {
            entries: entries.iter().map(|e| e.to_string()).collect(),
            objects: (0..entries.len() as u32)
                .map(|n| oid_ref(class::PG_AMOP, 17_000 + n))
                .collect(),
        }
    }

    #[test]
    fn a_family_and_the_members_it_holds_loosely() {
        let mut family = OperatorFamily {
            header: header("app.money_ops", Some("app")),
            method: "btree".into(),
            members: Members::default(),
        };
        let item = dump_family(&family);
        assert_eq!(
            item.sql,
            "CREATE OPERATOR FAMILY app.money_ops USING btree;\n\
             ALTER OPERATOR FAMILY app.money_ops USING btree OWNER TO app;\n"
        );
        assert_eq!(
            (item.kind, item.schema.as_str(), item.name.as_str()),
            (ItemKind::OperatorFamily, "app", "money_ops USING btree")
        );
        assert_eq!(item.owns, [oid_ref(class::PG_OPFAMILY, 16_400)]);

        family.members = members(&[
            "OPERATOR 1 app.<(app.money,integer)",
            "FUNCTION 1 (app.money, integer) app.cmp(app.money,integer)",
        ]);
        family.header.comment = Some("cross-type".into());
        let item = dump_family(&family);
        assert_eq!(
            item.sql,
            "CREATE OPERATOR FAMILY app.money_ops USING btree;\n\
             ALTER OPERATOR FAMILY app.money_ops USING btree ADD\n    \
             OPERATOR 1 app.<(app.money,integer),\n    \
             FUNCTION 1 (app.money, integer) app.cmp(app.money,integer);\n\
             ALTER OPERATOR FAMILY app.money_ops USING btree OWNER TO app;\n\
             COMMENT ON OPERATOR FAMILY app.money_ops USING btree IS 'cross-type';\n"
        );
        assert_eq!(item.owns.len(), 3);
        assert_eq!(item.marks.len(), 2, "the owner change and its role");
    }

    #[test]
    fn a_class_with_its_members_storage_and_family() {
        let mut operator_class = OperatorClass {
            header: header("app.money_ops", Some("app")),
            method: "gist".into(),
            default: true,
            input_type: "app.money".into(),
            storage: Some("box".into()),
            family_oid: 16_399,
            family: "app.money_ops".into(),
            members: members(&["OPERATOR 3 app.&&(app.money,app.money)"]),
        };
        let item = dump_class(&operator_class);
        assert_eq!(
            item.sql,
            "CREATE OPERATOR CLASS app.money_ops DEFAULT\n    \
             FOR TYPE app.money USING gist FAMILY app.money_ops AS\n    \
             OPERATOR 3 app.&&(app.money,app.money),\n    STORAGE box;\n\
             ALTER OPERATOR CLASS app.money_ops USING gist OWNER TO app;\n"
        );
        assert_eq!(
            (item.kind, item.name.as_str()),
            (ItemKind::OperatorClass, "money_ops USING gist")
        );
        assert_eq!(
            item.owns,
            [
                oid_ref(class::PG_OPCLASS, 16_400),
                oid_ref(class::PG_AMOP, 17_000)
            ]
        );
        assert_eq!(item.needs, [oid_ref(class::PG_OPFAMILY, 16_399)]);

        // Nothing else to write: the input type as its storage, alone.
        operator_class.default = false;
        operator_class.storage = None;
        operator_class.members = Members::default();
        assert!(dump_class(&operator_class).sql.starts_with(
            "CREATE OPERATOR CLASS app.money_ops\n    \
             FOR TYPE app.money USING gist FAMILY app.money_ops AS\n    STORAGE app.money;\n"
        ));

        // Members and no storage of its own: no STORAGE.
        operator_class.members = members(&["OPERATOR 1 app.<(app.money,app.money)"]);
        assert!(
            dump_class(&operator_class)
                .sql
                .contains("AS\n    OPERATOR 1 app.<(app.money,app.money);\n")
        );
    }
}
