//! Publications (`CREATE PUBLICATION`, with `FOR ALL TABLES` and the publish options) and
//! their members: tables with their column lists and row filters, and schemas (15+), after
//! the data as pg_dump does.

use std::collections::HashMap;

use super::*;
use crate::sql::Sql;

pub(super) async fn publications(
    db: &Db<'_>,
    catalog: &mut Catalog,
    relations: &HashMap<u32, Relation>,
) -> Result<(), CatalogError> {
    let generated = if db.version.at_least(18) {
        "p.pubgencols::text"
    } else {
        "'n'"
    };
    let sql = format!(
        "SELECT p.oid, p.pubname::text AS name, quote_ident(p.pubname) AS q, p.puballtables, \
         p.pubinsert, p.pubupdate, p.pubdelete, p.pubtruncate, p.pubviaroot, {generated} AS generated, \
         quote_ident(pg_get_userbyid(p.pubowner)) AS owner, (SELECT description FROM pg_description WHERE objoid = p.oid AND classoid = 'pg_publication'::regclass AND objsubid = 0) AS comment \
         FROM pg_publication p WHERE p.oid >= 16384 AND {} ORDER BY p.pubname",
        not_in_extension("pg_publication", "p.oid")
    );
    let mut names = HashMap::new();
    for row in db.query("publications", &sql).await? {
        let (oid, name, q, owner): (u32, String, String, String) = (
            row.get("oid")?,
            row.get("name")?,
            row.get("q")?,
            row.get("owner")?,
        );
        let publish: Vec<&str> = [
            ("pubinsert", "insert"),
            ("pubupdate", "update"),
            ("pubdelete", "delete"),
            ("pubtruncate", "truncate"),
        ]
        .into_iter()
        .filter_map(|(column, action)| match row.get::<bool>(column) {
            Ok(true) => Some(Ok(action)),
            Ok(false) => None,
            Err(e) => Some(Err(e)),
        })
        .collect::<Result<_, _>>()?;
        let mut sql = format!("CREATE PUBLICATION {q}");
        if row.get::<bool>("puballtables")? {
            sql.push_str(" FOR ALL TABLES");
        }
        sql.push_str(&format!(" WITH (publish = '{}'", publish.join(", ")));
        if row.get::<bool>("pubviaroot")? {
            sql.push_str(", publish_via_partition_root = true");
        }
        if row.get::<String>("generated")? == "s" {
            sql.push_str(", publish_generated_columns = stored");
        }
        sql.push_str(");\n");
        let mut sql = Sql::from(sql);
        sql.owner(&format!("PUBLICATION {q}"), &owner);
        sql.push_str(&comment_sql(
            &format!("PUBLICATION {q}"),
            row.get("comment")?,
        ));
        catalog.items.push(
            Item::new(ItemKind::Publication, "", &name, sql)
                .owning([oid_ref(class::PG_PUBLICATION, oid)]),
        );
        names.insert(oid, (name, q));
    }

    // Members: tables (with their column list and row filter from 15), and schemas from 15.
    let (filter, columns) = if db.version.at_least(15) {
        (
            "pg_get_expr(r.prqual, r.prrelid)",
            "(SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY k.n) \
               FROM unnest(r.prattrs) WITH ORDINALITY AS k(attnum, n) \
               JOIN pg_attribute a ON a.attrelid = r.prrelid AND a.attnum = k.attnum)",
        )
    } else {
        ("NULL::text", "NULL::text")
    };
    let sql = format!(
        "SELECT r.oid, r.prpubid, r.prrelid, {filter} AS filter, {columns} AS columns \
         FROM pg_publication_rel r ORDER BY r.prpubid, r.prrelid"
    );
    for row in db.query("publication tables", &sql).await? {
        let (oid, publication, table_oid): (u32, u32, u32) =
            (row.get("oid")?, row.get("prpubid")?, row.get("prrelid")?);
        let (Some((name, q)), Some(table)) = (names.get(&publication), relations.get(&table_oid))
        else {
            continue;
        };
        let mut sql = format!(
            "ALTER PUBLICATION {q} ADD TABLE ONLY {}",
            table.qualified_name
        );
        if let Some(columns) = row.get::<Option<String>>("columns")? {
            sql.push_str(&format!(" ({columns})"));
        }
        if let Some(filter) = row.get::<Option<String>>("filter")? {
            sql.push_str(&format!(" WHERE ({filter})"));
        }
        sql.push_str(";\n");
        catalog.items.push(
            Item::new(
                ItemKind::PublicationMember,
                &table.schema,
                &format!("{name} {}", table.name),
                sql,
            )
            .owning([oid_ref(class::PG_PUBLICATION_REL, oid)])
            .needing([
                oid_ref(class::PG_PUBLICATION, publication),
                oid_ref(class::PG_CLASS, table_oid),
            ])
            .of_table(&table.qualified_name),
        );
    }
    if db.version.at_least(15) {
        let sql = "SELECT s.oid, s.pnpubid, s.pnnspid, n.nspname::text AS schema, quote_ident(n.nspname) AS q \
                   FROM pg_publication_namespace s JOIN pg_namespace n ON n.oid = s.pnnspid \
                   ORDER BY s.pnpubid, n.nspname";
        for row in db.query("publication schemas", sql).await? {
            let (oid, publication, namespace): (u32, u32, u32) =
                (row.get("oid")?, row.get("pnpubid")?, row.get("pnnspid")?);
            let Some((name, q)) = names.get(&publication) else {
                continue;
            };
            let (schema, schema_q): (String, String) = (row.get("schema")?, row.get("q")?);
            catalog.items.push(
                Item::new(
                    ItemKind::PublicationMember,
                    &schema,
                    &format!("{name} {schema}"),
                    format!("ALTER PUBLICATION {q} ADD TABLES IN SCHEMA {schema_q};\n"),
                )
                .owning([oid_ref(class::PG_PUBLICATION_NAMESPACE, oid)])
                .needing([
                    oid_ref(class::PG_PUBLICATION, publication),
                    oid_ref(class::PG_NAMESPACE, namespace),
                ]),
            );
        }
    }
    Ok(())
}
