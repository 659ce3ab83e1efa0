//! Functions, procedures and aggregates.

use super::*;
use crate::sql::Sql;

pub(super) async fn functions(db: &Db<'_>, catalog: &mut Catalog) -> Result<(), CatalogError> {
    let sql = format!(
        "SELECT p.oid, n.nspname::text AS schema, p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ')' AS name, \
         quote_ident(n.nspname) || '.' || quote_ident(p.proname) || '(' || pg_get_function_identity_arguments(p.oid) || ')' AS signature, \
         p.prokind::text AS kind, pg_get_functiondef(p.oid) AS def, \
         quote_ident(pg_get_userbyid(p.proowner)) AS owner, (SELECT description FROM pg_description WHERE objoid = p.oid AND classoid = 'pg_proc'::regclass AND objsubid = 0) AS comment, \
         {} \
         FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace \
         WHERE p.oid >= 16384 AND {USER_SCHEMA} AND {} AND p.prokind IN ('f', 'p', 'w') \
         AND NOT EXISTS (SELECT 1 FROM pg_depend i WHERE i.classid = 'pg_proc'::regclass \
             AND i.objid = p.oid AND i.deptype = 'i')",
        acl_columns("p.proacl", "p.proowner", 'f'),
        not_in_extension("pg_proc", "p.oid")
    );
    for row in db.query("functions", &sql).await? {
        let (oid, schema, name, signature, kind, def, owner): (
            u32,
            String,
            String,
            String,
            String,
            String,
            String,
        ) = (
            row.get("oid")?,
            row.get("schema")?,
            row.get("name")?,
            row.get("signature")?,
            row.get("kind")?,
            row.get("def")?,
            row.get("owner")?,
        );
        let word = if kind == "p" { "PROCEDURE" } else { "FUNCTION" };
        let mut sql = Sql::from(format!("{};\n", def.trim_end()));
        sql.owner(&format!("{word} {signature}"), &owner);
        sql.push_str(&comment_sql(
            &format!("{word} {signature}"),
            row.get("comment")?,
        ));
        let object = oid_ref(class::PG_PROC, oid);
        catalog
            .items
            .push(Item::new(ItemKind::Function, &schema, &name, sql).owning([object]));
        catalog.items.extend(acl_item(
            &schema,
            &name,
            &format!("{word} {signature}"),
            object,
            &row,
            None,
        )?);
    }
    Ok(())
}

pub(super) async fn aggregates(db: &Db<'_>, catalog: &mut Catalog) -> Result<(), CatalogError> {
    let sql = format!(
        "SELECT p.oid, n.nspname::text AS schema, p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ')' AS name, \
         quote_ident(n.nspname) || '.' || quote_ident(p.proname) || '(' || pg_get_function_identity_arguments(p.oid) || ')' AS signature, \
         quote_ident(n.nspname) || '.' || quote_ident(p.proname) || '(' || oidvectortypes(p.proargtypes) || ')' AS grant_signature, \
         a.aggkind::text AS aggkind, a.aggtransfn::regproc::text AS sfunc, format_type(a.aggtranstype, NULL) AS stype, a.aggtransspace, \
         NULLIF(a.aggfinalfn, 0)::regproc::text AS finalfunc, a.aggfinalextra, a.aggfinalmodify::text AS finalmodify, \
         NULLIF(a.aggcombinefn, 0)::regproc::text AS combinefunc, NULLIF(a.aggserialfn, 0)::regproc::text AS serialfunc, \
         NULLIF(a.aggdeserialfn, 0)::regproc::text AS deserialfunc, a.agginitval, \
         NULLIF(a.aggmtransfn, 0)::regproc::text AS msfunc, NULLIF(a.aggminvtransfn, 0)::regproc::text AS minvfunc, \
         CASE WHEN a.aggmtranstype <> 0 THEN format_type(a.aggmtranstype, NULL) END AS mstype, a.aggmtransspace, \
         NULLIF(a.aggmfinalfn, 0)::regproc::text AS mfinalfunc, a.aggmfinalextra, a.aggminitval, \
         NULLIF(a.aggsortop, 0)::regoperator::text AS sortop, p.proparallel::text AS parallel, \
         quote_ident(pg_get_userbyid(p.proowner)) AS owner, (SELECT description FROM pg_description WHERE objoid = p.oid AND classoid = 'pg_proc'::regclass AND objsubid = 0) AS comment, \
         {} \
         FROM pg_proc p JOIN pg_aggregate a ON a.aggfnoid = p.oid JOIN pg_namespace n ON n.oid = p.pronamespace \
         WHERE p.oid >= 16384 AND {USER_SCHEMA} AND {} AND a.aggkind IN ('n', 'o', 'h')",
        acl_columns("p.proacl", "p.proowner", 'f'),
        not_in_extension("pg_proc", "p.oid")
    );
    for row in db.query("aggregates", &sql).await? {
        let (oid, schema, name, signature, owner): (u32, String, String, String, String) = (
            row.get("oid")?,
            row.get("schema")?,
            row.get("name")?,
            row.get("signature")?,
            row.get("owner")?,
        );
        let mut options = vec![
            format!("SFUNC = {}", row.get::<String>("sfunc")?),
            format!("STYPE = {}", row.get::<String>("stype")?),
        ];
        let mut add = |label: &str, column: &str| -> Result<(), CatalogError> {
            if let Some(value) = row.get::<Option<String>>(column)? {
                options.push(format!("{label} = {value}"));
            }
            Ok(())
        };
        add("FINALFUNC", "finalfunc")?;
        add("COMBINEFUNC", "combinefunc")?;
        add("SERIALFUNC", "serialfunc")?;
        add("DESERIALFUNC", "deserialfunc")?;
        add("MSFUNC", "msfunc")?;
        add("MINVFUNC", "minvfunc")?;
        add("MSTYPE", "mstype")?;
        add("MFINALFUNC", "mfinalfunc")?;
        add("SORTOP", "sortop")?;
        if let Some(init) = row.get::<Option<String>>("agginitval")? {
            options.push(format!("INITCOND = {}", literal(&init)));
        }
        if let Some(init) = row.get::<Option<String>>("aggminitval")? {
            options.push(format!("MINITCOND = {}", literal(&init)));
        }
        if row.get::<i32>("aggtransspace")? != 0 {
            options.push(format!("SSPACE = {}", row.get::<i32>("aggtransspace")?));
        }
        if row.get::<i32>("aggmtransspace")? != 0 {
            options.push(format!("MSSPACE = {}", row.get::<i32>("aggmtransspace")?));
        }
        if row.get::<bool>("aggfinalextra")? {
            options.push("FINALFUNC_EXTRA".into());
        }
        if row.get::<bool>("aggmfinalextra")? {
            options.push("MFINALFUNC_EXTRA".into());
        }
        match row.get::<String>("finalmodify")?.as_str() {
            "s" => options.push("FINALFUNC_MODIFY = SHAREABLE".into()),
            "w" => options.push("FINALFUNC_MODIFY = READ_WRITE".into()),
            _ => {}
        }
        match row.get::<String>("parallel")?.as_str() {
            "s" => options.push("PARALLEL = SAFE".into()),
            "r" => options.push("PARALLEL = RESTRICTED".into()),
            _ => {}
        }
        // Ordered-set and hypothetical-set aggregates take `direct ORDER BY aggregated`
        // arguments, which only CREATE and ALTER AGGREGATE accept; GRANT names the types.
        let aggkind = row.get::<String>("aggkind")?;
        if aggkind == "h" {
            options.push("HYPOTHETICAL".into());
        }
        let grant_signature = if aggkind == "n" {
            signature.clone()
        } else {
            row.get::<String>("grant_signature")?
        };
        // An aggregate of no arguments is `agg(*)` in its own statements (GRANT names it `agg()`).
        let aggregate = match signature.strip_suffix("()") {
            Some(name) => format!("{name}(*)"),
            None => signature.clone(),
        };
        let mut sql = Sql::from(format!(
            "CREATE AGGREGATE {aggregate} (\n    {}\n);\n",
            options.join(",\n    ")
        ));
        sql.owner(&format!("AGGREGATE {aggregate}"), &owner);
        sql.push_str(&comment_sql(
            &format!("AGGREGATE {aggregate}"),
            row.get("comment")?,
        ));
        let object = oid_ref(class::PG_PROC, oid);
        catalog
            .items
            .push(Item::new(ItemKind::Aggregate, &schema, &name, sql).owning([object]));
        catalog.items.extend(acl_item(
            &schema,
            &name,
            &format!("FUNCTION {grant_signature}"),
            object,
            &row,
            None,
        )?);
    }
    Ok(())
}
