//! Base types (`CREATE TYPE name (INPUT = ..., OUTPUT = ...)`) and shell types, as pg_dump's
//! `dumpBaseType` and `dumpShellType`.
//!
//! A base type and its I/O functions need each other: the functions take or return the type,
//! the type names the functions. As pg_dump does, a shell (`CREATE TYPE name;`) comes first,
//! the functions are created against it, then the full definition fills it in. The I/O
//! functions' dependency on the type is redirected to the shell ([`redirect_io_functions`]).

use std::collections::HashSet;

use super::model::Header;
use super::*;
use crate::order::DependEdge;
use crate::sql::Sql;

/// A base type, or a shell nothing filled in, as the catalog describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseType {
    pub header: Header,
    /// Its schema's oid, which the shell needs.
    pub namespace: u32,
    /// `None` for a shell on its own (`CREATE TYPE name;`).
    pub definition: Option<BaseDefinition>,
}

/// What a defined base type is: its functions and storage properties. Every function is as
/// `regproc` prints it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseDefinition {
    /// Its array type, where it has one.
    pub array: Option<u32>,
    /// The oids of its I/O, typmod, analyze and (14+) subscripting functions.
    pub function_oids: Vec<u32>,
    /// Bytes, or -1 for a variable length.
    pub length: i32,
    pub input: String,
    pub output: String,
    pub receive: Option<String>,
    pub send: Option<String>,
    pub typmod_in: Option<String>,
    pub typmod_out: Option<String>,
    pub analyze: Option<String>,
    /// 14+.
    pub subscript: Option<String>,
    pub collatable: bool,
    pub default: Option<TypeDefault>,
    /// The element type, as `format_type` prints it.
    pub element: Option<String>,
    /// `typcategory`, one letter (`U` for user-defined, the default).
    pub category: String,
    pub preferred: bool,
    pub delimiter: String,
    pub alignment: Alignment,
    pub storage: Storage,
    pub by_value: bool,
}

/// A base type's default value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TypeDefault {
    /// Stored as an expression, as `pg_get_expr` writes it.
    Expression(String),
    /// Stored as text, written as a literal.
    Text(String),
}

/// How a base type's values are aligned (`typalign`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alignment {
    Char,
    Int2,
    Int4,
    Double,
}

/// How a base type's values are stored (`typstorage`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Storage {
    Plain,
    External,
    Extended,
    Main,
}

/// `(function, type)`: an I/O function of a base type, which needs only the type's shell.
pub(super) type IoFunctions = HashSet<(u32, u32)>;

pub(super) async fn base_types(
    db: &Db<'_>,
    catalog: &mut Catalog,
) -> Result<IoFunctions, CatalogError> {
    let base_types = get(db).await?;
    for base_type in &base_types {
        catalog.items.extend(dump(base_type));
    }
    Ok(io_functions(&base_types))
}

/// Every user base type, and shell type nothing filled in (not an extension's; an array
/// type comes with its element type).
pub(super) async fn get(db: &Db<'_>) -> Result<Vec<BaseType>, CatalogError> {
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
    let mut base_types = Vec::new();
    for row in db.query("base types", &sql).await? {
        let header = Header::of(row.schema_object()?, row.get("owner")?, row.get("comment")?)
            .with_acl(&row)?;
        base_types.push(BaseType {
            header,
            namespace: row.get("typnamespace")?,
            definition: if row.get::<bool>("typisdefined")? {
                Some(definition(&row)?)
            } else {
                None
            },
        });
    }
    Ok(base_types)
}

/// The definition of the defined base type on `row`.
fn definition(row: &Fields) -> Result<BaseDefinition, CatalogError> {
    let default = match row.get::<Option<String>>("default_expr")? {
        Some(expression) => Some(TypeDefault::Expression(expression)),
        None => row
            .get::<Option<String>>("typdefault")?
            .map(TypeDefault::Text),
    };
    let mut function_oids: Vec<u32> = row.get("functions")?;
    function_oids.retain(|f| *f != 0);
    Ok(BaseDefinition {
        array: Some(row.get::<u32>("typarray")?).filter(|a| *a != 0),
        function_oids,
        length: row.get("typlen")?,
        input: row.get("input")?,
        output: row.get("output")?,
        receive: row.get("receive")?,
        send: row.get("send")?,
        typmod_in: row.get("typmod_in")?,
        typmod_out: row.get("typmod_out")?,
        analyze: row.get("analyze")?,
        subscript: row.get("subscript")?,
        collatable: row.get("collatable")?,
        default,
        element: row.get("element")?,
        category: row.get("category")?,
        preferred: row.get("typispreferred")?,
        delimiter: row.get("delim")?,
        alignment: match row.get::<String>("align")?.as_str() {
            "c" => Alignment::Char,
            "s" => Alignment::Int2,
            "d" => Alignment::Double,
            _ => Alignment::Int4,
        },
        storage: match row.get::<String>("storage")?.as_str() {
            "e" => Storage::External,
            "x" => Storage::Extended,
            "m" => Storage::Main,
            _ => Storage::Plain,
        },
        by_value: row.get("typbyval")?,
    })
}

/// The items of `base_type`: its shell, then (when it is defined) the `CREATE TYPE` that
/// fills the shell in, and its grants.
pub(super) fn dump(base_type: &BaseType) -> Vec<Item> {
    let header = &base_type.header;
    let q = &header.q;
    let shell = Item::new(
        ItemKind::Type,
        &header.schema,
        &header.name,
        format!("CREATE TYPE {q};\n"),
    )
    .owning([oid_ref(class::SHELL_TYPE, header.oid)])
    .needing([oid_ref(class::PG_NAMESPACE, base_type.namespace)]);
    let object = oid_ref(class::PG_TYPE, header.oid);
    let Some(definition) = &base_type.definition else {
        // A shell on its own: the type is no more than its name.
        return vec![shell.owning([object])];
    };
    let mut sql = Sql::from(format!(
        "CREATE TYPE {q} (\n    {}\n);\n",
        properties(definition).join(",\n    ")
    ));
    sql.append(header.tail("TYPE"));
    // The shell is claimed by its own item (created first, so it is the one dependents
    // wait for) and by this one, so that excluding the type leaves no shell behind.
    let mut owns = vec![object, oid_ref(class::SHELL_TYPE, header.oid)];
    owns.extend(definition.array.map(|a| oid_ref(class::PG_TYPE, a)));
    let mut items = vec![
        shell,
        Item::new(ItemKind::Type, &header.schema, &header.name, sql)
            .owning(owns)
            .needing([oid_ref(class::SHELL_TYPE, header.oid)]),
    ];
    items.extend(header.acl_item("TYPE", object));
    items
}

/// The `CREATE TYPE` properties, in pg_dump's order, leaving out those at their defaults.
fn properties(definition: &BaseDefinition) -> Vec<String> {
    let length = match definition.length {
        -1 => "variable".to_string(),
        length => length.to_string(),
    };
    let mut out = vec![format!("INTERNALLENGTH = {length}")];
    let functions = [
        ("INPUT", Some(&definition.input)),
        ("OUTPUT", Some(&definition.output)),
        ("RECEIVE", definition.receive.as_ref()),
        ("SEND", definition.send.as_ref()),
        ("TYPMOD_IN", definition.typmod_in.as_ref()),
        ("TYPMOD_OUT", definition.typmod_out.as_ref()),
        ("ANALYZE", definition.analyze.as_ref()),
        ("SUBSCRIPT", definition.subscript.as_ref()),
    ];
    for (label, function) in functions {
        if let Some(function) = function {
            out.push(format!("{label} = {function}"));
        }
    }
    if definition.collatable {
        out.push("COLLATABLE = true".into());
    }
    match &definition.default {
        Some(TypeDefault::Expression(default)) => out.push(format!("DEFAULT = {default}")),
        Some(TypeDefault::Text(default)) => out.push(format!("DEFAULT = {}", literal(default))),
        None => {}
    }
    if let Some(element) = &definition.element {
        out.push(format!("ELEMENT = {element}"));
    }
    if definition.category != "U" {
        out.push(format!("CATEGORY = {}", literal(&definition.category)));
    }
    if definition.preferred {
        out.push("PREFERRED = true".into());
    }
    if definition.delimiter != "," {
        out.push(format!("DELIMITER = {}", literal(&definition.delimiter)));
    }
    let alignment = match definition.alignment {
        Alignment::Char => "char",
        Alignment::Int2 => "int2",
        Alignment::Int4 => "int4",
        Alignment::Double => "double",
    };
    out.push(format!("ALIGNMENT = {alignment}"));
    let storage = match definition.storage {
        Storage::Plain => "plain",
        Storage::External => "external",
        Storage::Extended => "extended",
        Storage::Main => "main",
    };
    out.push(format!("STORAGE = {storage}"));
    if definition.by_value {
        out.push("PASSEDBYVALUE".into());
    }
    out
}

/// Each defined base type's I/O functions, with the type.
fn io_functions(base_types: &[BaseType]) -> IoFunctions {
    base_types
        .iter()
        .filter_map(|t| Some((t.header.oid, t.definition.as_ref()?)))
        .flat_map(|(oid, definition)| definition.function_oids.iter().map(move |f| (*f, oid)))
        .collect()
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
    use super::super::model::tests::header;
    use super::*;
    use crate::acl::Grant;

    /// A variable-length text-like type at every default (as a 13 server reads it: no
    /// subscripting function).
    fn definition() -> BaseDefinition {
        BaseDefinition {
            array: Some(16_401),
            function_oids: vec![16_410, 16_411],
            length: -1,
            input: "app.tag_in".into(),
            output: "app.tag_out".into(),
            receive: None,
            send: None,
            typmod_in: None,
            typmod_out: None,
            analyze: None,
            subscript: None,
            collatable: false,
            default: None,
            element: None,
            category: "U".into(),
            preferred: false,
            delimiter: ",".into(),
            alignment: Alignment::Int4,
            storage: Storage::Plain,
            by_value: false,
        }
    }

    fn base_type(definition: Option<BaseDefinition>) -> BaseType {
        BaseType {
            header: header("app.tag", Some("app")),
            namespace: 16_390,
            definition,
        }
    }

    #[test]
    fn a_shell_on_its_own_is_only_its_name() {
        let items = dump(&base_type(None));
        assert_eq!(items.len(), 1);
        assert_eq!(items[0].sql, "CREATE TYPE app.tag;\n");
        assert_eq!(
            items[0].owns,
            [
                oid_ref(class::SHELL_TYPE, 16_400),
                oid_ref(class::PG_TYPE, 16_400)
            ]
        );
        assert_eq!(items[0].needs, [oid_ref(class::PG_NAMESPACE, 16_390)]);
        assert!(io_functions(&[base_type(None)]).is_empty());
    }

    #[test]
    fn a_base_type_fills_in_its_shell() {
        let mut tag = base_type(Some(BaseDefinition {
            default: Some(TypeDefault::Text("it's".into())),
            ..definition()
        }));
        tag.header.comment = Some("a tag".into());
        let items = dump(&tag);
        assert_eq!(items.len(), 2);
        assert_eq!(items[0].sql, "CREATE TYPE app.tag;\n");
        assert_eq!(items[0].owns, [oid_ref(class::SHELL_TYPE, 16_400)]);
        assert_eq!(
            items[1].sql,
            "CREATE TYPE app.tag (\n    INTERNALLENGTH = variable,\n    INPUT = app.tag_in,\n    \
             OUTPUT = app.tag_out,\n    DEFAULT = 'it''s',\n    ALIGNMENT = int4,\n    STORAGE = plain\n);\n\
             ALTER TYPE app.tag OWNER TO app;\n\
             COMMENT ON TYPE app.tag IS 'a tag';\n"
        );
        assert_eq!(
            items[1].owns,
            [
                oid_ref(class::PG_TYPE, 16_400),
                oid_ref(class::SHELL_TYPE, 16_400),
                oid_ref(class::PG_TYPE, 16_401)
            ]
        );
        assert_eq!(items[1].needs, [oid_ref(class::SHELL_TYPE, 16_400)]);
        assert_eq!(
            io_functions(&[tag]),
            IoFunctions::from([(16_410, 16_400), (16_411, 16_400)])
        );
    }

    #[test]
    fn a_base_type_with_every_property_and_its_grants() {
        // 14+: a subscripting function.
        let mut vector = base_type(Some(BaseDefinition {
            array: None,
            length: 16,
            receive: Some("app.tag_recv".into()),
            send: Some("app.tag_send".into()),
            typmod_in: Some("app.tag_typmod_in".into()),
            typmod_out: Some("app.tag_typmod_out".into()),
            analyze: Some("app.tag_analyze".into()),
            subscript: Some("array_subscript_handler".into()),
            collatable: true,
            default: Some(TypeDefault::Expression("'0'::app.tag".into())),
            element: Some("real".into()),
            category: "N".into(),
            preferred: true,
            delimiter: ";".into(),
            alignment: Alignment::Double,
            storage: Storage::Extended,
            by_value: true,
            ..definition()
        }));
        vector.header.acl = Some(vec![Grant {
            grantee: "PUBLIC".into(),
            privilege: "USAGE".into(),
            grantable: false,
            grantor: None,
        }]);
        let items = dump(&vector);
        assert_eq!(
            items[1].sql,
            "CREATE TYPE app.tag (\n    INTERNALLENGTH = 16,\n    INPUT = app.tag_in,\n    OUTPUT = app.tag_out,\n    \
             RECEIVE = app.tag_recv,\n    SEND = app.tag_send,\n    TYPMOD_IN = app.tag_typmod_in,\n    \
             TYPMOD_OUT = app.tag_typmod_out,\n    ANALYZE = app.tag_analyze,\n    \
             SUBSCRIPT = array_subscript_handler,\n    COLLATABLE = true,\n    DEFAULT = '0'::app.tag,\n    \
             ELEMENT = real,\n    CATEGORY = 'N',\n    PREFERRED = true,\n    DELIMITER = ';',\n    \
             ALIGNMENT = double,\n    STORAGE = extended,\n    PASSEDBYVALUE\n);\n\
             ALTER TYPE app.tag OWNER TO app;\n"
        );
        assert_eq!(
            (items[2].kind, items[2].sql.as_str()),
            (ItemKind::Acl, "GRANT USAGE ON TYPE app.tag TO PUBLIC;\n")
        );
        assert_eq!(items[2].needs, [oid_ref(class::PG_TYPE, 16_400)]);
    }

    #[test]
    fn the_other_alignments_and_storages() {
        for (alignment, storage, expected) in [
            (
                Alignment::Char,
                Storage::Main,
                "ALIGNMENT = char,\n    STORAGE = main\n",
            ),
            (
                Alignment::Int2,
                Storage::External,
                "ALIGNMENT = int2,\n    STORAGE = external\n",
            ),
        ] {
            let sql = properties(&BaseDefinition {
                alignment,
                storage,
                ..definition()
            })
            .join(",\n    ");
            assert!(format!("{sql}\n").ends_with(expected), "{sql}");
        }
    }

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
