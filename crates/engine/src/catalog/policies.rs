//! Row-level security policies.

use std::collections::HashMap;

use super::model::Header;
use super::*;
use crate::sql::Sql;

/// A row-level security policy as the catalog describes it (`header.q` is its bare name).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    pub header: Header,
    pub table_oid: u32,
    pub permissive: bool,
    pub command: PolicyCommand,
    /// The roles it applies to, quoted, or `PUBLIC`.
    pub roles: Vec<String>,
    /// `USING` and `WITH CHECK`, as `pg_get_expr` writes them.
    pub using: Option<String>,
    pub check: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyCommand {
    All,
    Select,
    Insert,
    Update,
    Delete,
}

pub(super) async fn policies(
    db: &Db<'_>,
    catalog: &mut Catalog,
    relations: &HashMap<u32, Relation>,
) -> Result<(), CatalogError> {
    for policy in get(db).await? {
        if let Some(table) = relations.get(&policy.table_oid) {
            catalog.items.push(dump(&policy, table));
        }
    }
    Ok(())
}

/// Every policy on a user table.
pub(super) async fn get(db: &Db<'_>) -> Result<Vec<Policy>, CatalogError> {
    let sql = "SELECT p.oid, p.polrelid, p.polname::text AS name, quote_ident(p.polname) AS q, p.polpermissive, \
         p.polcmd::text AS cmd, pg_get_expr(p.polqual, p.polrelid) AS using_expr, \
         pg_get_expr(p.polwithcheck, p.polrelid) AS check_expr, \
         CASE WHEN p.polroles = '{0}' THEN ARRAY['PUBLIC'] ELSE ARRAY(SELECT quote_ident(pg_get_userbyid(r.role)) \
             FROM unnest(p.polroles) WITH ORDINALITY AS r(role, ord) ORDER BY r.ord) END AS roles, \
         (SELECT description FROM pg_description WHERE objoid = p.oid AND classoid = 'pg_policy'::regclass AND objsubid = 0) AS comment \
         FROM pg_policy p WHERE p.oid >= 16384 ORDER BY p.polrelid, p.polname";
    let mut policies = Vec::new();
    for row in db.query("policies", sql).await? {
        policies.push(Policy {
            header: Header::bare(&row)?,
            table_oid: row.get("polrelid")?,
            permissive: row.get("polpermissive")?,
            command: match row.get::<String>("cmd")?.as_str() {
                "r" => PolicyCommand::Select,
                "a" => PolicyCommand::Insert,
                "w" => PolicyCommand::Update,
                "d" => PolicyCommand::Delete,
                _ => PolicyCommand::All,
            },
            roles: row.get("roles")?,
            using: row.get("using_expr")?,
            check: row.get("check_expr")?,
        });
    }
    Ok(policies)
}

/// The item that creates `policy` on `table`, needing it.
pub(super) fn dump(policy: &Policy, table: &Relation) -> Item {
    let header = &policy.header;
    let t = &table.qualified_name;
    let kind = if policy.permissive {
        "PERMISSIVE"
    } else {
        "RESTRICTIVE"
    };
    let command = match policy.command {
        PolicyCommand::Select => "SELECT",
        PolicyCommand::Insert => "INSERT",
        PolicyCommand::Update => "UPDATE",
        PolicyCommand::Delete => "DELETE",
        PolicyCommand::All => "ALL",
    };
    let mut sql = Sql::from(format!(
        "CREATE POLICY {} ON {t} AS {kind} FOR {command} TO ",
        header.q
    ));
    sql.roles(&policy.roles, ", ");
    if let Some(using) = &policy.using {
        sql.push_str(&format!(" USING ({using})"));
    }
    if let Some(check) = &policy.check {
        sql.push_str(&format!(" WITH CHECK ({check})"));
    }
    sql.push_str(";\n");
    sql.append(header.tail_as("POLICY", &format!("{} ON {t}", header.q)));
    Item::new(ItemKind::Policy, &table.schema, &header.name, sql)
        .owning([oid_ref(class::PG_POLICY, header.oid)])
        .needing([oid_ref(class::PG_CLASS, policy.table_oid)])
        .of_table(t)
}

#[cfg(test)]
mod tests {
    use super::super::model::tests::{header, relation};
    use super::*;

    #[test]
    fn a_restrictive_policy_for_two_roles_and_a_permissive_one_for_everyone() {
        let table = relation("notes");
        let mut policy = Policy {
            header: header("mine", None),
            table_oid: 16_390,
            permissive: false,
            command: PolicyCommand::Update,
            roles: vec!["reader".into(), "\"Writer\"".into()],
            using: Some("(owner = CURRENT_USER)".into()),
            check: Some("(owner = CURRENT_USER)".into()),
        };
        policy.header.comment = Some("own rows".into());
        let item = dump(&policy, &table);
        assert_eq!(
            item.sql,
            "CREATE POLICY mine ON app.notes AS RESTRICTIVE FOR UPDATE TO reader, \"Writer\" \
             USING ((owner = CURRENT_USER)) WITH CHECK ((owner = CURRENT_USER));\n\
             COMMENT ON POLICY mine ON app.notes IS 'own rows';\n"
        );
        assert_eq!(
            (item.schema.as_str(), item.table.as_deref()),
            ("app", Some("app.notes"))
        );
        policy.permissive = true;
        policy.command = PolicyCommand::All;
        policy.roles = vec!["PUBLIC".into()];
        policy.check = None;
        policy.header.comment = None;
        assert_eq!(
            dump(&policy, &table).sql,
            "CREATE POLICY mine ON app.notes AS PERMISSIVE FOR ALL TO PUBLIC USING ((owner = CURRENT_USER));\n"
        );
    }
}
