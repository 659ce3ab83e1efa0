//! Functions, procedures and aggregates.

use super::model::Header;
use super::*;
use crate::sql::Sql;

/// A function or procedure as the catalog describes it. `header.q` is its signature as
/// `ALTER`, `COMMENT ON` and `GRANT` name it (`app.f(integer, text)`), `header.name` its name
/// with its arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Function {
    pub header: Header,
    pub kind: FunctionKind,
    /// `CREATE OR REPLACE …` as `pg_get_functiondef` writes it.
    pub definition: String,
}

/// What a routine is (`prokind`, aggregates apart).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FunctionKind {
    Function,
    Window,
    Procedure,
}

impl FunctionKind {
    /// The keyword `ALTER`, `COMMENT ON` and `GRANT` name it by.
    fn keyword(self) -> &'static str {
        match self {
            FunctionKind::Procedure => "PROCEDURE",
            FunctionKind::Function | FunctionKind::Window => "FUNCTION",
        }
    }
}

/// An aggregate as the catalog describes it, as pg_dump's `dumpAgg` reads it. `header.q`
/// names it as `CREATE`, `ALTER` and `COMMENT ON AGGREGATE` do: `app.agg(*)` when it takes no
/// arguments, `app.pct(double precision ORDER BY double precision)` for an ordered-set one.
/// Every function is as `regproc` prints it, every type as `format_type` does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Aggregate {
    pub header: Header,
    /// As `GRANT … ON FUNCTION` names it: the identity arguments of a normal aggregate, the
    /// argument types alone of an ordered-set or hypothetical-set one.
    pub grant_signature: String,
    pub kind: AggregateKind,
    pub transition: String,
    pub state_type: String,
    /// The state's size estimate, 0 when unset.
    pub state_space: i32,
    pub final_function: Option<String>,
    pub final_extra: bool,
    pub final_modify: FinalModify,
    pub combine_function: Option<String>,
    pub serial_function: Option<String>,
    pub deserial_function: Option<String>,
    pub initial_value: Option<String>,
    /// The moving-aggregate mode's functions, state and initial value.
    pub moving_transition: Option<String>,
    pub moving_inverse: Option<String>,
    pub moving_state_type: Option<String>,
    pub moving_state_space: i32,
    pub moving_final_function: Option<String>,
    pub moving_final_extra: bool,
    pub moving_final_modify: FinalModify,
    pub moving_initial_value: Option<String>,
    /// The sort operator, as `regoperator` prints it.
    pub sort_operator: Option<String>,
    pub parallel: Parallel,
}

/// What an aggregate aggregates (`aggkind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AggregateKind {
    Normal,
    /// `direct ORDER BY aggregated` arguments, which only `CREATE` and `ALTER AGGREGATE`
    /// accept.
    OrderedSet,
    HypotheticalSet,
}

/// What an aggregate's final function does to its state (`aggfinalmodify`,
/// `aggmfinalmodify`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FinalModify {
    ReadOnly,
    Shareable,
    ReadWrite,
}

impl FinalModify {
    fn from_code(code: &str) -> Self {
        match code {
            "s" => FinalModify::Shareable,
            "w" => FinalModify::ReadWrite,
            _ => FinalModify::ReadOnly,
        }
    }

    /// As `CREATE AGGREGATE` spells it.
    fn word(self) -> &'static str {
        match self {
            FinalModify::ReadOnly => "READ_ONLY",
            FinalModify::Shareable => "SHAREABLE",
            FinalModify::ReadWrite => "READ_WRITE",
        }
    }

    /// What `CREATE AGGREGATE` assumes unless told: a normal aggregate's final function
    /// leaves its state alone, an ordered-set or hypothetical-set one's may write it.
    fn default_for(kind: AggregateKind) -> Self {
        match kind {
            AggregateKind::Normal => FinalModify::ReadOnly,
            AggregateKind::OrderedSet | AggregateKind::HypotheticalSet => FinalModify::ReadWrite,
        }
    }
}

/// Whether a routine may run in a parallel worker (`proparallel`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parallel {
    Unsafe,
    Restricted,
    Safe,
}

pub(super) async fn functions(db: &Db<'_>, catalog: &mut Catalog) -> Result<(), CatalogError> {
    for function in get_functions(db).await? {
        catalog.items.extend(dump_function(&function));
    }
    Ok(())
}

pub(super) async fn aggregates(db: &Db<'_>, catalog: &mut Catalog) -> Result<(), CatalogError> {
    for aggregate in get_aggregates(db).await? {
        catalog.items.extend(dump_aggregate(&aggregate));
    }
    Ok(())
}

/// Every user function and procedure (not an extension's, nor one an object made for itself).
pub(super) async fn get_functions(db: &Db<'_>) -> Result<Vec<Function>, CatalogError> {
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
    let mut functions = Vec::new();
    for row in db.query("functions", &sql).await? {
        functions.push(Function {
            header: routine_header(&row, row.get("signature")?)?,
            kind: match row.get::<String>("kind")?.as_str() {
                "p" => FunctionKind::Procedure,
                "w" => FunctionKind::Window,
                _ => FunctionKind::Function,
            },
            definition: row.get("def")?,
        });
    }
    Ok(functions)
}

/// The header of a function, procedure or aggregate that statements name `q`.
fn routine_header(row: &Fields, q: String) -> Result<Header, CatalogError> {
    Header {
        oid: row.get("oid")?,
        schema: row.get("schema")?,
        name: row.get("name")?,
        q,
        owner: row.get("owner")?,
        comment: row.get("comment")?,
        ..Header::default()
    }
    .with_acl(row)
}

/// The items that create `function` and grant on it.
pub(super) fn dump_function(function: &Function) -> Vec<Item> {
    let header = &function.header;
    let keyword = function.kind.keyword();
    let mut sql = Sql::from(format!("{};\n", function.definition.trim_end()));
    sql.append(header.tail(keyword));
    let object = oid_ref(class::PG_PROC, header.oid);
    let mut items =
        vec![Item::new(ItemKind::Function, &header.schema, &header.name, sql).owning([object])];
    items.extend(header.acl_item(keyword, object));
    items
}

/// Every user aggregate (not an extension's).
pub(super) async fn get_aggregates(db: &Db<'_>) -> Result<Vec<Aggregate>, CatalogError> {
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
         NULLIF(a.aggmfinalfn, 0)::regproc::text AS mfinalfunc, a.aggmfinalextra, a.aggmfinalmodify::text AS mfinalmodify, a.aggminitval, \
         NULLIF(a.aggsortop, 0)::regoperator::text AS sortop, p.proparallel::text AS parallel, \
         quote_ident(pg_get_userbyid(p.proowner)) AS owner, (SELECT description FROM pg_description WHERE objoid = p.oid AND classoid = 'pg_proc'::regclass AND objsubid = 0) AS comment, \
         {} \
         FROM pg_proc p JOIN pg_aggregate a ON a.aggfnoid = p.oid JOIN pg_namespace n ON n.oid = p.pronamespace \
         WHERE p.oid >= 16384 AND {USER_SCHEMA} AND {} AND a.aggkind IN ('n', 'o', 'h')",
        acl_columns("p.proacl", "p.proowner", 'f'),
        not_in_extension("pg_proc", "p.oid")
    );
    let mut aggregates = Vec::new();
    for row in db.query("aggregates", &sql).await? {
        let signature: String = row.get("signature")?;
        let kind = match row.get::<String>("aggkind")?.as_str() {
            "o" => AggregateKind::OrderedSet,
            "h" => AggregateKind::HypotheticalSet,
            _ => AggregateKind::Normal,
        };
        let grant_signature = match kind {
            AggregateKind::Normal => signature.clone(),
            _ => row.get("grant_signature")?,
        };
        aggregates.push(Aggregate {
            header: routine_header(&row, aggregate_named(signature))?,
            grant_signature,
            kind,
            transition: row.get("sfunc")?,
            state_type: row.get("stype")?,
            state_space: row.get("aggtransspace")?,
            final_function: row.get("finalfunc")?,
            final_extra: row.get("aggfinalextra")?,
            final_modify: FinalModify::from_code(&row.get::<String>("finalmodify")?),
            combine_function: row.get("combinefunc")?,
            serial_function: row.get("serialfunc")?,
            deserial_function: row.get("deserialfunc")?,
            initial_value: row.get("agginitval")?,
            moving_transition: row.get("msfunc")?,
            moving_inverse: row.get("minvfunc")?,
            moving_state_type: row.get("mstype")?,
            moving_state_space: row.get("aggmtransspace")?,
            moving_final_function: row.get("mfinalfunc")?,
            moving_final_extra: row.get("aggmfinalextra")?,
            moving_final_modify: FinalModify::from_code(&row.get::<String>("mfinalmodify")?),
            moving_initial_value: row.get("aggminitval")?,
            sort_operator: row.get("sortop")?,
            parallel: match row.get::<String>("parallel")?.as_str() {
                "s" => Parallel::Safe,
                "r" => Parallel::Restricted,
                _ => Parallel::Unsafe,
            },
        });
    }
    Ok(aggregates)
}

/// An aggregate's `signature` as its own statements name it: one of no arguments is `agg(*)`
/// there (and `agg()` in `GRANT`).
fn aggregate_named(signature: String) -> String {
    match signature.strip_suffix("()") {
        Some(name) => format!("{name}(*)"),
        None => signature,
    }
}

/// The items that create `aggregate` and grant on it.
pub(super) fn dump_aggregate(aggregate: &Aggregate) -> Vec<Item> {
    let header = &aggregate.header;
    let mut sql = Sql::from(format!(
        "CREATE AGGREGATE {} (\n    {}\n);\n",
        header.q,
        aggregate_options(aggregate).join(",\n    ")
    ));
    sql.append(header.tail("AGGREGATE"));
    let object = oid_ref(class::PG_PROC, header.oid);
    let mut items =
        vec![Item::new(ItemKind::Aggregate, &header.schema, &header.name, sql).owning([object])];
    // GRANT names an aggregate by its argument types alone.
    let granted = Header {
        q: aggregate.grant_signature.clone(),
        ..header.clone()
    };
    items.extend(granted.acl_item("FUNCTION", object));
    items
}

/// The options of `CREATE AGGREGATE`, leaving out those at their defaults.
fn aggregate_options(aggregate: &Aggregate) -> Vec<String> {
    let mut options = vec![
        format!("SFUNC = {}", aggregate.transition),
        format!("STYPE = {}", aggregate.state_type),
    ];
    let named = [
        ("FINALFUNC", &aggregate.final_function),
        ("COMBINEFUNC", &aggregate.combine_function),
        ("SERIALFUNC", &aggregate.serial_function),
        ("DESERIALFUNC", &aggregate.deserial_function),
        ("MSFUNC", &aggregate.moving_transition),
        ("MINVFUNC", &aggregate.moving_inverse),
        ("MSTYPE", &aggregate.moving_state_type),
        ("MFINALFUNC", &aggregate.moving_final_function),
        ("SORTOP", &aggregate.sort_operator),
    ];
    for (label, value) in named {
        if let Some(value) = value {
            options.push(format!("{label} = {value}"));
        }
    }
    let initial = [
        ("INITCOND", &aggregate.initial_value),
        ("MINITCOND", &aggregate.moving_initial_value),
    ];
    for (label, value) in initial {
        if let Some(value) = value {
            options.push(format!("{label} = {}", literal(value)));
        }
    }
    for (label, space) in [
        ("SSPACE", aggregate.state_space),
        ("MSSPACE", aggregate.moving_state_space),
    ] {
        if space != 0 {
            options.push(format!("{label} = {space}"));
        }
    }
    for (flag, set) in [
        ("FINALFUNC_EXTRA", aggregate.final_extra),
        ("MFINALFUNC_EXTRA", aggregate.moving_final_extra),
    ] {
        if set {
            options.push(flag.into());
        }
    }
    // Any final modify but a normal aggregate's READ_ONLY is written, the default of its
    // kind included; the moving one only when it is not its kind's default.
    let default = FinalModify::default_for(aggregate.kind);
    if aggregate.final_modify != FinalModify::ReadOnly || default != FinalModify::ReadOnly {
        options.push(format!(
            "FINALFUNC_MODIFY = {}",
            aggregate.final_modify.word()
        ));
    }
    if aggregate.moving_final_modify != default {
        options.push(format!(
            "MFINALFUNC_MODIFY = {}",
            aggregate.moving_final_modify.word()
        ));
    }
    match aggregate.parallel {
        Parallel::Safe => options.push("PARALLEL = SAFE".into()),
        Parallel::Restricted => options.push("PARALLEL = RESTRICTED".into()),
        Parallel::Unsafe => {}
    }
    if aggregate.kind == AggregateKind::HypotheticalSet {
        options.push("HYPOTHETICAL".into());
    }
    options
}

#[cfg(test)]
mod tests {
    use super::super::model::tests::header;
    use super::*;
    use crate::acl::Grant;

    fn execute(grantee: &str) -> Grant {
        Grant {
            grantee: grantee.into(),
            privilege: "EXECUTE".into(),
            grantable: false,
            grantor: None,
        }
    }

    fn function(kind: FunctionKind, definition: &str) -> Function {
        let mut header = header("app.total(integer)", Some("app"));
        header.name = "total(integer)".into();
        Function {
            header,
            kind,
            definition: definition.into(),
        }
    }

    #[test]
    fn a_function_its_owner_comment_and_grants() {
        let mut total = function(
            FunctionKind::Function,
            "CREATE OR REPLACE FUNCTION app.total(integer)\n RETURNS integer\n LANGUAGE sql\nAS $function$SELECT $1$function$\n",
        );
        total.header.comment = Some("the total".into());
        total.header.acl_default = vec![execute("PUBLIC"), execute("app")];
        total.header.acl = Some(vec![execute("app"), execute("reader")]);
        let items = dump_function(&total);
        assert_eq!(
            items[0].sql,
            "CREATE OR REPLACE FUNCTION app.total(integer)\n RETURNS integer\n LANGUAGE sql\n\
             AS $function$SELECT $1$function$;\n\
             ALTER FUNCTION app.total(integer) OWNER TO app;\n\
             COMMENT ON FUNCTION app.total(integer) IS 'the total';\n"
        );
        assert_eq!(
            (
                items[0].kind,
                items[0].schema.as_str(),
                items[0].name.as_str()
            ),
            (ItemKind::Function, "app", "total(integer)")
        );
        assert_eq!(items[0].owns, [oid_ref(class::PG_PROC, 16_400)]);
        assert_eq!(
            items[1].sql,
            "REVOKE EXECUTE ON FUNCTION app.total(integer) FROM PUBLIC;\n\
             GRANT EXECUTE ON FUNCTION app.total(integer) TO reader;\n"
        );
        assert_eq!(
            (items[1].kind, items[1].name.as_str()),
            (ItemKind::Acl, "total(integer)")
        );
        assert_eq!(items[1].needs, [oid_ref(class::PG_PROC, 16_400)]);
    }

    #[test]
    fn a_procedure_is_named_as_one_and_a_window_function_as_a_function() {
        let mut procedure = function(
            FunctionKind::Procedure,
            "CREATE OR REPLACE PROCEDURE app.total(integer)\n LANGUAGE sql\nAS $procedure$SELECT 1$procedure$",
        );
        procedure.header.acl_default = vec![execute("PUBLIC"), execute("app")];
        procedure.header.acl = Some(vec![execute("app")]);
        let items = dump_function(&procedure);
        assert_eq!(
            items[0].sql,
            "CREATE OR REPLACE PROCEDURE app.total(integer)\n LANGUAGE sql\nAS $procedure$SELECT 1$procedure$;\n\
             ALTER PROCEDURE app.total(integer) OWNER TO app;\n"
        );
        assert_eq!(items[0].kind, ItemKind::Function);
        assert_eq!(
            items[1].sql,
            "REVOKE EXECUTE ON PROCEDURE app.total(integer) FROM PUBLIC;\n"
        );
        let window = function(
            FunctionKind::Window,
            "CREATE OR REPLACE FUNCTION app.total(integer)\n RETURNS integer\n LANGUAGE c\n WINDOW\nAS 'x', 'y'\n",
        );
        assert!(
            dump_function(&window)[0]
                .sql
                .ends_with("\nAS 'x', 'y';\nALTER FUNCTION app.total(integer) OWNER TO app;\n")
        );
    }

    fn aggregate(q: &str, kind: AggregateKind) -> Aggregate {
        let mut header = header(q, Some("app"));
        header.name = q.trim_start_matches("app.").into();
        Aggregate {
            header,
            grant_signature: q.into(),
            kind,
            transition: "int8pl".into(),
            state_type: "bigint".into(),
            state_space: 0,
            final_function: None,
            final_extra: false,
            final_modify: FinalModify::default_for(kind),
            combine_function: None,
            serial_function: None,
            deserial_function: None,
            initial_value: None,
            moving_transition: None,
            moving_inverse: None,
            moving_state_type: None,
            moving_state_space: 0,
            moving_final_function: None,
            moving_final_extra: false,
            moving_final_modify: FinalModify::default_for(kind),
            moving_initial_value: None,
            sort_operator: None,
            parallel: Parallel::Unsafe,
        }
    }

    #[test]
    fn an_aggregate_with_every_option() {
        let mut sum = aggregate("app.total(bigint)", AggregateKind::Normal);
        sum.state_space = 16;
        sum.final_function = Some("app.total_final".into());
        sum.final_extra = true;
        sum.final_modify = FinalModify::Shareable;
        sum.combine_function = Some("int8pl".into());
        sum.serial_function = Some("app.total_serial".into());
        sum.deserial_function = Some("app.total_deserial".into());
        sum.initial_value = Some("0".into());
        sum.moving_transition = Some("int8pl".into());
        sum.moving_inverse = Some("int8mi".into());
        sum.moving_state_type = Some("bigint".into());
        sum.moving_state_space = 8;
        sum.moving_final_function = Some("app.total_final".into());
        sum.moving_final_extra = true;
        sum.moving_initial_value = Some("it's".into());
        sum.sort_operator = Some(">(bigint,bigint)".into());
        sum.parallel = Parallel::Safe;
        sum.header.comment = Some("sum".into());
        let items = dump_aggregate(&sum);
        assert_eq!(
            items[0].sql,
            "CREATE AGGREGATE app.total(bigint) (\n    SFUNC = int8pl,\n    STYPE = bigint,\n    \
             FINALFUNC = app.total_final,\n    COMBINEFUNC = int8pl,\n    SERIALFUNC = app.total_serial,\n    \
             DESERIALFUNC = app.total_deserial,\n    MSFUNC = int8pl,\n    MINVFUNC = int8mi,\n    \
             MSTYPE = bigint,\n    MFINALFUNC = app.total_final,\n    SORTOP = >(bigint,bigint),\n    \
             INITCOND = '0',\n    MINITCOND = 'it''s',\n    SSPACE = 16,\n    MSSPACE = 8,\n    \
             FINALFUNC_EXTRA,\n    MFINALFUNC_EXTRA,\n    FINALFUNC_MODIFY = SHAREABLE,\n    PARALLEL = SAFE\n);\n\
             ALTER AGGREGATE app.total(bigint) OWNER TO app;\n\
             COMMENT ON AGGREGATE app.total(bigint) IS 'sum';\n"
        );
        assert_eq!(
            (items[0].kind, items[0].name.as_str()),
            (ItemKind::Aggregate, "total(bigint)")
        );
        assert_eq!(items[0].owns, [oid_ref(class::PG_PROC, 16_400)]);
        assert_eq!(items.len(), 1);
    }

    #[test]
    fn an_aggregate_of_no_arguments_is_agg_star_but_granted_as_agg() {
        assert_eq!(
            aggregate_named("app.count_all()".into()),
            "app.count_all(*)"
        );
        assert_eq!(
            aggregate_named("app.total(bigint)".into()),
            "app.total(bigint)"
        );
        let mut count = aggregate("app.count_all(*)", AggregateKind::Normal);
        count.grant_signature = "app.count_all()".into();
        count.final_modify = FinalModify::ReadWrite;
        count.parallel = Parallel::Restricted;
        count.header.acl_default = vec![execute("PUBLIC"), execute("app")];
        count.header.acl = Some(vec![execute("app")]);
        let items = dump_aggregate(&count);
        assert_eq!(
            items[0].sql,
            "CREATE AGGREGATE app.count_all(*) (\n    SFUNC = int8pl,\n    STYPE = bigint,\n    \
             FINALFUNC_MODIFY = READ_WRITE,\n    PARALLEL = RESTRICTED\n);\n\
             ALTER AGGREGATE app.count_all(*) OWNER TO app;\n"
        );
        assert_eq!(
            items[1].sql,
            "REVOKE EXECUTE ON FUNCTION app.count_all() FROM PUBLIC;\n"
        );
    }

    #[test]
    fn ordered_and_hypothetical_set_aggregates_are_granted_by_their_types() {
        let mut ordered = aggregate(
            "app.pct(double precision ORDER BY double precision)",
            AggregateKind::OrderedSet,
        );
        ordered.grant_signature = "app.pct(double precision, double precision)".into();
        ordered.header.acl_default = vec![execute("PUBLIC"), execute("app")];
        ordered.header.acl = Some(vec![execute("app")]);
        let items = dump_aggregate(&ordered);
        assert!(
            items[0].sql.starts_with(
                "CREATE AGGREGATE app.pct(double precision ORDER BY double precision) (\n    \
                 SFUNC = int8pl,\n    STYPE = bigint,\n    FINALFUNC_MODIFY = READ_WRITE\n);\n"
            ),
            "{}",
            items[0].sql
        );
        assert_eq!(
            items[1].sql,
            "REVOKE EXECUTE ON FUNCTION app.pct(double precision, double precision) FROM PUBLIC;\n"
        );
        let hypothetical = aggregate(
            "app.rank_of(VARIADIC \"any\" ORDER BY VARIADIC \"any\")",
            AggregateKind::HypotheticalSet,
        );
        assert!(dump_aggregate(&hypothetical)[0].sql.contains(
            "STYPE = bigint,\n    FINALFUNC_MODIFY = READ_WRITE,\n    HYPOTHETICAL\n);\n"
        ));
    }

    #[test]
    fn a_final_modify_other_than_its_kinds_default_is_written() {
        // An ordered-set aggregate's final function may write its state unless told.
        let mut ordered = aggregate(
            "app.pct(double precision ORDER BY double precision)",
            AggregateKind::OrderedSet,
        );
        ordered.final_modify = FinalModify::ReadOnly;
        assert!(
            dump_aggregate(&ordered)[0]
                .sql
                .contains("STYPE = bigint,\n    FINALFUNC_MODIFY = READ_ONLY\n);\n")
        );
        // A normal aggregate's moving final function leaves its state alone unless told.
        let mut moving = aggregate("app.total(bigint)", AggregateKind::Normal);
        moving.moving_final_modify = FinalModify::Shareable;
        assert!(
            dump_aggregate(&moving)[0]
                .sql
                .contains("STYPE = bigint,\n    MFINALFUNC_MODIFY = SHAREABLE\n);\n")
        );
        moving.moving_final_modify = FinalModify::ReadOnly;
        assert!(!dump_aggregate(&moving)[0].sql.contains("MODIFY"));
    }
}
