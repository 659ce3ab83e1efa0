//! Operators (`CREATE OPERATOR`), as pg_dump's `dumpOpr`.
//!
//! A commutator or negator is named as `OPERATOR(schema.name)`: if it does not exist yet the
//! server makes a shell for it, which its own `CREATE OPERATOR` later fills in. A shell that
//! nothing ever filled (an operator only ever named as another's commutator) is recreated by
//! the operator that names it, so it is claimed without SQL of its own.

use super::model::Header;
use super::*;
use crate::sql::Sql;

/// A defined operator as the catalog describes it. `header.q` is its signature as `ALTER`
/// and `COMMENT ON` name it (`app.=== (integer, integer)`), `header.name` the name with its
/// arguments for ordering.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operator {
    pub header: Header,
    /// The operator as `CREATE OPERATOR` names it (`app.===`).
    pub operator: String,
    /// The function, as `regproc` prints it.
    pub function: String,
    /// The argument types; `None` for a prefix operator's left.
    pub left: Option<String>,
    pub right: Option<String>,
    /// `OPERATOR(schema.name)` of the commutator and negator.
    pub commutator: Option<String>,
    pub negator: Option<String>,
    pub merges: bool,
    pub hashes: bool,
    pub restrict: Option<String>,
    pub join: Option<String>,
}

pub(super) async fn operators(db: &Db<'_>, catalog: &mut Catalog) -> Result<(), CatalogError> {
    let (operators, shells) = get(db).await?;
    catalog.recreated.extend(shells);
    catalog.items.extend(operators.iter().map(dump));
    Ok(())
}

/// Every user operator (not an extension's), and the shells nothing filled in (recreated by
/// the operators that name them).
pub(super) async fn get(db: &Db<'_>) -> Result<(Vec<Operator>, Vec<ObjectRef>), CatalogError> {
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
    let (mut operators, mut shells) = (Vec::new(), Vec::new());
    for row in db.query("operators", &sql).await? {
        let SchemaObject {
            oid,
            schema,
            name,
            q,
        } = row.schema_object()?;
        if !row.get::<bool>("defined")? {
            shells.push(oid_ref(class::PG_OPERATOR, oid));
            continue;
        }
        let (left, right): (Option<String>, Option<String>) =
            (row.get("left_type")?, row.get("right_type")?);
        let arguments = format!(
            "{}, {}",
            left.as_deref().unwrap_or("NONE"),
            right.as_deref().unwrap_or("NONE")
        );
        operators.push(Operator {
            header: Header {
                oid,
                schema,
                name: format!("{name}({arguments})"),
                q: format!("{q} ({arguments})"),
                owner: row.get("owner")?,
                comment: row.get("comment")?,
                ..Header::default()
            },
            operator: q,
            function: row.get("function")?,
            left,
            right,
            commutator: row.get("commutator")?,
            negator: row.get("negator")?,
            merges: row.get("oprcanmerge")?,
            hashes: row.get("oprcanhash")?,
            restrict: row.get("restrict")?,
            join: row.get("join")?,
        });
    }
    Ok((operators, shells))
}

/// The item that creates `operator`.
pub(super) fn dump(operator: &Operator) -> Item {
    let header = &operator.header;
    let mut options = vec![format!("FUNCTION = {}", operator.function)];
    let labelled = [
        ("LEFTARG", &operator.left),
        ("RIGHTARG", &operator.right),
        ("COMMUTATOR", &operator.commutator),
        ("NEGATOR", &operator.negator),
    ];
    options.extend(
        labelled
            .iter()
            .filter_map(|(label, value)| value.as_ref().map(|v| format!("{label} = {v}"))),
    );
    if operator.merges {
        options.push("MERGES".into());
    }
    if operator.hashes {
        options.push("HASHES".into());
    }
    for (label, function) in [("RESTRICT", &operator.restrict), ("JOIN", &operator.join)] {
        if let Some(function) = function {
            options.push(format!("{label} = {function}"));
        }
    }
    let mut sql = Sql::from(format!(
        "CREATE OPERATOR {} (\n    {}\n);\n",
        operator.operator,
        options.join(",\n    ")
    ));
    sql.append(header.tail("OPERATOR"));
    Item::new(ItemKind::Operator, &header.schema, &header.name, sql)
        .owning([oid_ref(class::PG_OPERATOR, header.oid)])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_operator_with_every_option_and_a_prefix_one() {
        let mut operator = Operator {
            header: Header {
                oid: 16_420,
                schema: "app".into(),
                name: "===(integer, integer)".into(),
                q: "app.=== (integer, integer)".into(),
                owner: Some("app".into()),
                comment: Some("same".into()),
                ..Header::default()
            },
            operator: "app.===".into(),
            function: "app.same".into(),
            left: Some("integer".into()),
            right: Some("integer".into()),
            commutator: Some("OPERATOR(app.===)".into()),
            negator: Some("OPERATOR(app.!==)".into()),
            merges: true,
            hashes: true,
            restrict: Some("eqsel".into()),
            join: Some("eqjoinsel".into()),
        };
        assert_eq!(
            dump(&operator).sql,
            "CREATE OPERATOR app.=== (\n    FUNCTION = app.same,\n    LEFTARG = integer,\n    RIGHTARG = integer,\n    \
             COMMUTATOR = OPERATOR(app.===),\n    NEGATOR = OPERATOR(app.!==),\n    MERGES,\n    HASHES,\n    \
             RESTRICT = eqsel,\n    JOIN = eqjoinsel\n);\n\
             ALTER OPERATOR app.=== (integer, integer) OWNER TO app;\n\
             COMMENT ON OPERATOR app.=== (integer, integer) IS 'same';\n"
        );
        operator.left = None;
        operator.commutator = None;
        operator.negator = None;
        operator.merges = false;
        operator.hashes = false;
        operator.restrict = None;
        operator.join = None;
        operator.header.comment = None;
        assert_eq!(
            dump(&operator).sql,
            "CREATE OPERATOR app.=== (\n    FUNCTION = app.same,\n    RIGHTARG = integer\n);\n\
             ALTER OPERATOR app.=== (integer, integer) OWNER TO app;\n"
        );
    }
}
