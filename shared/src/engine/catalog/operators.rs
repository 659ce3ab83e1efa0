//! Operators (`CREATE OPERATOR`), as pg_dump's `dumpOpr`.
//!
//! A commutator or negator is named as `OPERATOR(schema.name)`: if it does not exist yet the
//! server makes a shell for it, which its own `CREATE OPERATOR` later fills in. A shell that
//! nothing ever filled (an operator only ever named as another's commutator) is recreated by
//! the operator that names it, so it is claimed without SQL of its own.

use super::*;

pub(super) async fn operators(db: &Db<'_>, catalog: &mut Catalog) -> Result<(), CatalogError> {
    let named = |column: &str| {
        format!(
            "(SELECT 'OPERATOR(' || quote_ident(rn.nspname) || '.' || r.oprname || ')' FROM pg_operator r \
             JOIN pg_namespace rn ON rn.oid = r.oprnamespace WHERE r.oid = o.{column})"
        )
    };
    let sql = format!(
        "SELECT o.oid, n.nspname::text AS schema, o.oprname::text AS name, \
         quote_ident(n.nspname) || '.' || o.oprname AS q, o.oprcode <> 0 AS defined, \
         o.oprcode::regproc::text AS function, \
         CASE WHEN o.oprleft <> 0 THEN format_type(o.oprleft, NULL) END AS left_type, \
         CASE WHEN o.oprright <> 0 THEN format_type(o.oprright, NULL) END AS right_type, \
         {} AS commutator, {} AS negator, o.oprcanmerge, o.oprcanhash, \
         NULLIF(o.oprrest, 0)::regproc::text AS restrict, NULLIF(o.oprjoin, 0)::regproc::text AS join, \
         quote_ident(pg_get_userbyid(o.oprowner)) AS owner, (SELECT description FROM pg_description WHERE objoid = o.oid AND classoid = 'pg_operator'::regclass AND objsubid = 0) AS comment \
         FROM pg_operator o JOIN pg_namespace n ON n.oid = o.oprnamespace \
         WHERE o.oid >= 16384 AND {USER_SCHEMA} AND {} ORDER BY o.oid",
        named("oprcom"),
        named("oprnegate"),
        not_in_extension("pg_operator", "o.oid")
    );
    for row in db.query("operators", &sql).await? {
        let SchemaObject {
            oid,
            schema,
            name,
            q,
        } = row.schema_object()?;
        let owner: String = row.get("owner")?;
        let object = oid_ref(class::PG_OPERATOR, oid);
        if !row.get::<bool>("defined")? {
            catalog.recreated.push(object);
            continue;
        }
        let (left, right): (Option<String>, Option<String>) =
            (row.get("left_type")?, row.get("right_type")?);
        let mut options = vec![format!("FUNCTION = {}", row.get::<String>("function")?)];
        if let Some(left) = &left {
            options.push(format!("LEFTARG = {left}"));
        }
        if let Some(right) = &right {
            options.push(format!("RIGHTARG = {right}"));
        }
        for (label, column) in [("COMMUTATOR", "commutator"), ("NEGATOR", "negator")] {
            if let Some(other) = row.get::<Option<String>>(column)? {
                options.push(format!("{label} = {other}"));
            }
        }
        if row.get::<bool>("oprcanmerge")? {
            options.push("MERGES".into());
        }
        if row.get::<bool>("oprcanhash")? {
            options.push("HASHES".into());
        }
        for (label, column) in [("RESTRICT", "restrict"), ("JOIN", "join")] {
            if let Some(function) = row.get::<Option<String>>(column)? {
                options.push(format!("{label} = {function}"));
            }
        }
        let arguments = format!(
            "{}, {}",
            left.as_deref().unwrap_or("NONE"),
            right.as_deref().unwrap_or("NONE")
        );
        let signature = format!("{q} ({arguments})");
        let mut sql = format!(
            "CREATE OPERATOR {q} (\n    {}\n);\nALTER OPERATOR {signature} OWNER TO {owner};\n",
            options.join(",\n    ")
        );
        sql.push_str(&comment_sql(
            &format!("OPERATOR {signature}"),
            row.get("comment")?,
        ));
        catalog.items.push(
            Item::new(
                ItemKind::Operator,
                &schema,
                &format!("{name}({arguments})"),
                sql,
            )
            .owning([object]),
        );
    }
    Ok(())
}
