//! Base types (`CREATE TYPE name (INPUT = ..., OUTPUT = ...)`) and shell types, as pg_dump's
//! `dumpBaseType` and `dumpShellType`.
//!
//! A base type and its I/O functions need each other: the functions take or return the type,
//! the type names the functions. As pg_dump does, a shell (`CREATE TYPE name;`) comes first,
//! the functions are created against it, then the full definition fills it in. The I/O
//! functions' dependency on the type is redirected to the shell ([`redirect_io_functions`]).

use std::collections::HashSet;

use super::*;
use crate::order::DependEdge;
use crate::sql::Sql;

/// `(function, type)`: an I/O function of a base type, which needs only the type's shell.
pub(super) type IoFunctions = HashSet<(u32, u32)>;

pub(super) async fn base_types(
    db: &Db<'_>,
    catalog: &mut Catalog,
) -> Result<IoFunctions, CatalogError> {
    // Subscripting functions are a type property from 14.
    let subscript = if db.version.at_least(14) {
        "NULLIF(t.typsubscript, 0)"
    } else {
        "NULL::oid"
    };
    let sql = format!(
        "SELECT t.oid, n.nspname::text AS schema, t.typname::text AS name, \
         quote_ident(n.nspname) || '.' || quote_ident(t.typname) AS q, t.typtype::text AS kind, t.typisdefined, t.typnamespace, \
         t.typarray, t.typlen::int4 AS typlen, t.typbyval, t.typalign::text AS align, t.typstorage::text AS storage, \
         t.typcategory::text AS category, t.typispreferred, t.typdelim::text AS delim, t.typcollation <> 0 AS collatable, \
         CASE WHEN t.typelem <> 0 THEN format_type(t.typelem, NULL) END AS element, \
         pg_get_expr(t.typdefaultbin, 0) AS default_expr, t.typdefault, \
         ARRAY[t.typinput, t.typoutput, t.typreceive, t.typsend, t.typmodin, t.typmodout, t.typanalyze, \
               coalesce({subscript}, 0)]::oid[] AS functions, \
         t.typinput::regproc::text AS input, t.typoutput::regproc::text AS output, \
         NULLIF(t.typreceive, 0)::regproc::text AS receive, NULLIF(t.typsend, 0)::regproc::text AS send, \
         NULLIF(t.typmodin, 0)::regproc::text AS typmod_in, NULLIF(t.typmodout, 0)::regproc::text AS typmod_out, \
         NULLIF(t.typanalyze, 0)::regproc::text AS analyze, {subscript}::regproc::text AS subscript, \
         quote_ident(pg_get_userbyid(t.typowner)) AS owner, (SELECT description FROM pg_description WHERE objoid = t.oid AND classoid = 'pg_type'::regclass AND objsubid = 0) AS comment, \
         {} \
         FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace \
         WHERE t.oid >= 16384 AND {USER_SCHEMA} AND {} \
         AND (t.typtype = 'b' OR (t.typtype = 'p' AND NOT t.typisdefined)) \
         AND NOT (t.typtype = 'b' AND t.typcategory = 'A' AND t.typelem <> 0 \
                  AND EXISTS (SELECT 1 FROM pg_type e WHERE e.oid = t.typelem AND e.typarray = t.oid)) \
         ORDER BY t.oid",
        acl_columns("t.typacl", "t.typowner", 'T'),
        not_in_extension("pg_type", "t.oid")
    );
    let mut io = IoFunctions::new();
    for row in db.query("base types", &sql).await? {
        let SchemaObject {
            oid,
            schema,
            name,
            q,
        } = row.schema_object()?;
        let owner: String = row.get("owner")?;
        let shell = Item::new(
            ItemKind::Type,
            &schema,
            &name,
            format!("CREATE TYPE {q};\n"),
        )
        .owning([oid_ref(class::SHELL_TYPE, oid)])
        .needing([oid_ref(class::PG_NAMESPACE, row.get("typnamespace")?)]);
        if !row.get::<bool>("typisdefined")? {
            // A shell on its own (`CREATE TYPE name;`): the type is no more than its name.
            catalog
                .items
                .push(shell.owning([oid_ref(class::PG_TYPE, oid)]));
            continue;
        }
        catalog.items.push(shell);
        for function in row.get::<Vec<u32>>("functions")? {
            if function != 0 {
                io.insert((function, oid));
            }
        }
        let mut sql = Sql::from(format!(
            "CREATE TYPE {q} (\n    {}\n);\n",
            properties(&row)?.join(",\n    ")
        ));
        sql.owner(&format!("TYPE {q}"), &owner);
        sql.push_str(&comment_sql(&format!("TYPE {q}"), row.get("comment")?));
        let object = oid_ref(class::PG_TYPE, oid);
        // The shell is claimed by its own item (created first, so it is the one dependents
        // wait for) and by this one, so that excluding the type leaves no shell behind.
        let mut owns = vec![object, oid_ref(class::SHELL_TYPE, oid)];
        let array: u32 = row.get("typarray")?;
        if array != 0 {
            owns.push(oid_ref(class::PG_TYPE, array));
        }
        catalog.items.push(
            Item::new(ItemKind::Type, &schema, &name, sql)
                .owning(owns)
                .needing([oid_ref(class::SHELL_TYPE, oid)]),
        );
        catalog.items.extend(acl_item(
            &schema,
            &name,
            &format!("TYPE {q}"),
            object,
            &row,
            None,
        )?);
    }
    Ok(io)
}

/// The `CREATE TYPE` properties, in pg_dump's order, leaving out those at their defaults.
fn properties(row: &Fields) -> Result<Vec<String>, CatalogError> {
    let length: i32 = row.get("typlen")?;
    let mut out = vec![format!(
        "INTERNALLENGTH = {}",
        if length == -1 {
            "variable".to_string()
        } else {
            length.to_string()
        }
    )];
    for (label, column) in [
        ("INPUT", "input"),
        ("OUTPUT", "output"),
        ("RECEIVE", "receive"),
        ("SEND", "send"),
        ("TYPMOD_IN", "typmod_in"),
        ("TYPMOD_OUT", "typmod_out"),
        ("ANALYZE", "analyze"),
        ("SUBSCRIPT", "subscript"),
    ] {
        if let Some(function) = row.get::<Option<String>>(column)? {
            out.push(format!("{label} = {function}"));
        }
    }
    if row.get::<bool>("collatable")? {
        out.push("COLLATABLE = true".into());
    }
    // A default stored as an expression is written as one; a plain text default as a literal.
    if let Some(default) = row.get::<Option<String>>("default_expr")? {
        out.push(format!("DEFAULT = {default}"));
    } else if let Some(default) = row.get::<Option<String>>("typdefault")? {
        out.push(format!("DEFAULT = {}", literal(&default)));
    }
    if let Some(element) = row.get::<Option<String>>("element")? {
        out.push(format!("ELEMENT = {element}"));
    }
    let category: String = row.get("category")?;
    if category != "U" {
        out.push(format!("CATEGORY = {}", literal(&category)));
    }
    if row.get::<bool>("typispreferred")? {
        out.push("PREFERRED = true".into());
    }
    let delimiter: String = row.get("delim")?;
    if delimiter != "," {
        out.push(format!("DELIMITER = {}", literal(&delimiter)));
    }
    let align = match row.get::<String>("align")?.as_str() {
        "c" => "char",
        "s" => "int2",
        "d" => "double",
        _ => "int4",
    };
    out.push(format!("ALIGNMENT = {align}"));
    let storage = match row.get::<String>("storage")?.as_str() {
        "e" => "external",
        "x" => "extended",
        "m" => "main",
        _ => "plain",
    };
    out.push(format!("STORAGE = {storage}"));
    if row.get::<bool>("typbyval")? {
        out.push("PASSEDBYVALUE".into());
    }
    Ok(out)
}

/// Points each I/O function's dependency on its base type at the type's shell instead, so the
/// function is created between the two.
pub(super) fn redirect_io_functions(edges: &mut [DependEdge], io: &IoFunctions) {
    for edge in edges {
        if edge.from.class == class::PG_PROC
            && edge.to.class == class::PG_TYPE
            && io.contains(&(edge.from.oid, edge.to.oid))
        {
            edge.to = oid_ref(class::SHELL_TYPE, edge.to.oid);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_io_functions_edge_to_its_own_type_moves_to_the_shell() {
        let edge = |from: u32, to: u32| DependEdge {
            from: oid_ref(class::PG_PROC, from),
            to: oid_ref(class::PG_TYPE, to),
        };
        let mut edges = vec![edge(1, 10), edge(2, 10), edge(1, 11)];
        redirect_io_functions(&mut edges, &IoFunctions::from([(1, 10)]));
        assert_eq!(edges[0].to, oid_ref(class::SHELL_TYPE, 10));
        assert_eq!(edges[1].to, oid_ref(class::PG_TYPE, 10));
        assert_eq!(edges[2].to, oid_ref(class::PG_TYPE, 11));
    }
}
