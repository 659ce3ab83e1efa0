//! Operator families and operator classes, as pg_dump's `dumpOpfamily` and `dumpOpclass`.
//!
//! An operator or support function belongs either to a class (created with it) or loosely to
//! a family (added by `ALTER OPERATOR FAMILY ... ADD`); `pg_depend` says which. A class is
//! always written with its `FAMILY`, so every family is created once, by its own item.

use std::collections::HashMap;

use super::*;
use crate::sql::Sql;

pub(super) async fn operator_classes(
    db: &Db<'_>,
    catalog: &mut Catalog,
) -> Result<(), CatalogError> {
    // Members, keyed by the class or family that holds them (pg_depend's reference).
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
    let mut members: HashMap<ObjectRef, (Vec<String>, Vec<ObjectRef>)> = HashMap::new();
    for (what, sql, member_class) in [
        ("operator class operators", operator_sql, class::PG_AMOP),
        ("operator class functions", function_sql, class::PG_AMPROC),
    ] {
        for row in db.query(what, sql).await? {
            let holder = oid_ref(row.get("holder_class")?, row.get("holder")?);
            let entry = members.entry(holder).or_default();
            entry.0.push(row.get("entry")?);
            entry.1.push(oid_ref(member_class, row.get("oid")?));
        }
    }

    let sql = format!(
        "SELECT f.oid, n.nspname::text AS schema, f.opfname::text AS name, \
         quote_ident(n.nspname) || '.' || quote_ident(f.opfname) AS q, quote_ident(a.amname) AS am, \
         quote_ident(pg_get_userbyid(f.opfowner)) AS owner, (SELECT description FROM pg_description WHERE objoid = f.oid AND classoid = 'pg_opfamily'::regclass AND objsubid = 0) AS comment \
         FROM pg_opfamily f JOIN pg_namespace n ON n.oid = f.opfnamespace JOIN pg_am a ON a.oid = f.opfmethod \
         WHERE f.oid >= 16384 AND {USER_SCHEMA} AND {} ORDER BY f.oid",
        not_in_extension("pg_opfamily", "f.oid")
    );
    for row in db.query("operator families", &sql).await? {
        let SchemaObject {
            oid,
            schema,
            name,
            q,
        } = row.schema_object()?;
        let am: String = row.get("am")?;
        let owner: String = row.get("owner")?;
        let object = oid_ref(class::PG_OPFAMILY, oid);
        let (entries, member_refs) = members.remove(&object).unwrap_or_default();
        let mut sql = format!("CREATE OPERATOR FAMILY {q} USING {am};\n");
        if !entries.is_empty() {
            sql.push_str(&format!(
                "ALTER OPERATOR FAMILY {q} USING {am} ADD\n    {};\n",
                entries.join(",\n    ")
            ));
        }
        let mut sql = Sql::from(sql);
        sql.owner(&format!("OPERATOR FAMILY {q} USING {am}"), &owner);
        sql.push_str(&comment_sql(
            &format!("OPERATOR FAMILY {q} USING {am}"),
            row.get("comment")?,
        ));
        catalog.items.push(
            Item::new(
                ItemKind::OperatorFamily,
                &schema,
                &format!("{name} USING {am}"),
                sql,
            )
            .owning([object])
            .owning(member_refs),
        );
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
    for row in db.query("operator classes", &sql).await? {
        let SchemaObject {
            oid,
            schema,
            name,
            q,
        } = row.schema_object()?;
        let am: String = row.get("am")?;
        let owner: String = row.get("owner")?;
        let object = oid_ref(class::PG_OPCLASS, oid);
        let (mut entries, member_refs) = members.remove(&object).unwrap_or_default();
        // STORAGE when the index stores another type; alone when there is nothing else to
        // write (the syntax needs one entry).
        match row.get::<Option<String>>("storage")? {
            Some(storage) => entries.push(format!("STORAGE {storage}")),
            None if entries.is_empty() => {
                entries.push(format!("STORAGE {}", row.get::<String>("input_type")?))
            }
            None => {}
        }
        let default = if row.get::<bool>("opcdefault")? {
            " DEFAULT"
        } else {
            ""
        };
        let sql = format!(
            "CREATE OPERATOR CLASS {q}{default}\n    FOR TYPE {} USING {am} FAMILY {} AS\n    {};\n",
            row.get::<String>("input_type")?,
            row.get::<String>("family")?,
            entries.join(",\n    ")
        );
        let mut sql = Sql::from(sql);
        sql.owner(&format!("OPERATOR CLASS {q} USING {am}"), &owner);
        sql.push_str(&comment_sql(
            &format!("OPERATOR CLASS {q} USING {am}"),
            row.get("comment")?,
        ));
        catalog.items.push(
            Item::new(
                ItemKind::OperatorClass,
                &schema,
                &format!("{name} USING {am}"),
                sql,
            )
            .owning([object])
            .owning(member_refs)
            .needing([oid_ref(class::PG_OPFAMILY, row.get("opcfamily")?)]),
        );
    }
    Ok(())
}
