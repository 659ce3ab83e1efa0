//! Rules on tables and views (`CREATE RULE`, not a view's own `_RETURN`), with their enable
//! state, after the data as pg_dump does.

use std::collections::HashMap;

use super::model::{Enabled, Header};
use super::*;
use crate::sql::Sql;

/// A rule as the catalog describes it (`header.q` is its bare name).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub header: Header,
    pub table_oid: u32,
    /// `CREATE RULE …;` as `pg_get_ruledef` writes it.
    pub definition: String,
    pub enabled: Enabled,
}

pub(super) async fn rules(
    db: &Db<'_>,
    catalog: &mut Catalog,
    relations: &HashMap<u32, Relation>,
) -> Result<(), CatalogError> {
    for rule in get(db).await? {
        if let Some(table) = relations.get(&rule.table_oid) {
            catalog.items.push(dump(&rule, table));
        }
    }
    Ok(())
}

/// Every user rule but views' own `_RETURN` (not an extension's).
pub(super) async fn get(db: &Db<'_>) -> Result<Vec<Rule>, CatalogError> {
    let sql = format!(
        "SELECT r.oid, r.ev_class, r.rulename::text AS name, quote_ident(r.rulename) AS q, \
         pg_get_ruledef(r.oid) AS def, r.ev_enabled::text AS enabled, \
         (SELECT description FROM pg_description WHERE objoid = r.oid AND classoid = 'pg_rewrite'::regclass AND objsubid = 0) AS comment \
         FROM pg_rewrite r WHERE r.oid >= 16384 AND r.rulename <> '_RETURN' AND {} \
         ORDER BY r.ev_class, r.rulename",
        not_in_extension("pg_rewrite", "r.oid")
    );
    let mut rules = Vec::new();
    for row in db.query("rules", &sql).await? {
        rules.push(Rule {
            header: Header::bare(&row)?,
            table_oid: row.get("ev_class")?,
            definition: row.get("def")?,
            enabled: Enabled::from_code(&row.get::<String>("enabled")?),
        });
    }
    Ok(rules)
}

/// The item that creates `rule` on `table`, needing it.
pub(super) fn dump(rule: &Rule, table: &Relation) -> Item {
    let header = &rule.header;
    let (t, q) = (&table.qualified_name, &header.q);
    let mut sql = Sql::from(format!("{}\n", rule.definition.trim_end()));
    match rule.enabled {
        Enabled::Disabled => sql.push_str(&format!("ALTER TABLE {t} DISABLE RULE {q};\n")),
        Enabled::Replica => sql.push_str(&format!("ALTER TABLE {t} ENABLE REPLICA RULE {q};\n")),
        Enabled::Always => sql.push_str(&format!("ALTER TABLE {t} ENABLE ALWAYS RULE {q};\n")),
        Enabled::Origin => &mut sql,
    };
    sql.append(header.tail_as("RULE", &format!("{q} ON {t}")));
    Item::new(ItemKind::Rule, &table.schema, &header.name, sql)
        .owning([oid_ref(class::PG_REWRITE, header.oid)])
        .needing([oid_ref(class::PG_CLASS, rule.table_oid)])
        .of_table(t)
}

#[cfg(test)]
mod tests {
    use super::super::model::tests::{header, relation};
    use super::*;

    #[test]
    fn a_disabled_rule_with_its_comment() {
        let table = relation("log");
        let mut rule = Rule {
            header: header("no_delete", None),
            table_oid: 16_390,
            definition: "CREATE RULE no_delete AS\n    ON DELETE TO app.log DO INSTEAD NOTHING;\n"
                .into(),
            enabled: Enabled::Disabled,
        };
        rule.header.comment = Some("keep it".into());
        assert_eq!(
            dump(&rule, &table).sql,
            "CREATE RULE no_delete AS\n    ON DELETE TO app.log DO INSTEAD NOTHING;\n\
             ALTER TABLE app.log DISABLE RULE no_delete;\n\
             COMMENT ON RULE no_delete ON app.log IS 'keep it';\n"
        );
    }
}
