//! Publications (`CREATE PUBLICATION`, with `FOR ALL TABLES` and the publish options) and
//! their members: tables with their column lists and row filters, and schemas (15+), after
//! the data as pg_dump does.

use std::collections::HashMap;

use super::model::Header;
use super::*;
use crate::sql::Sql;

/// A publication as the catalog describes it (`header.q` is its quoted name).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Publication {
    pub header: Header,
    pub all_tables: bool,
    /// The changes it publishes.
    pub insert: bool,
    pub update: bool,
    pub delete: bool,
    pub truncate: bool,
    /// A partition's changes are published as its root table's.
    pub via_root: bool,
    /// Stored generated columns are published (18+).
    pub stored_generated_columns: bool,
}

/// A table a publication publishes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishedTable {
    pub oid: u32,
    pub publication_oid: u32,
    pub table_oid: u32,
    /// The columns it publishes, quoted, joined by `, `; `None` for all (always before 15).
    pub columns: Option<String>,
    /// The rows it publishes, as `pg_get_expr` writes the condition (15+).
    pub filter: Option<String>,
}

/// A schema whose tables a publication publishes (15+).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishedSchema {
    pub oid: u32,
    pub publication_oid: u32,
    pub schema_oid: u32,
    pub schema: String,
    /// The schema quoted.
    pub q: String,
}

/// The publications of the database and what they publish.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Publications {
    pub publications: Vec<Publication>,
    pub tables: Vec<PublishedTable>,
    pub schemas: Vec<PublishedSchema>,
}

pub(super) async fn publications(
    db: &Db<'_>,
    catalog: &mut Catalog,
    relations: &HashMap<u32, Relation>,
) -> Result<(), CatalogError> {
    catalog.items.extend(dump(&get(db).await?, relations));
    Ok(())
}

/// Every user publication (not an extension's), and every table and schema published.
pub(super) async fn get(db: &Db<'_>) -> Result<Publications, CatalogError> {
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
    let mut publications = Vec::new();
    for row in db.query("publications", &sql).await? {
        publications.push(Publication {
            header: Header {
                owner: row.get("owner")?,
                ..Header::bare(&row)?
            },
            all_tables: row.get("puballtables")?,
            insert: row.get("pubinsert")?,
            update: row.get("pubupdate")?,
            delete: row.get("pubdelete")?,
            truncate: row.get("pubtruncate")?,
            via_root: row.get("pubviaroot")?,
            stored_generated_columns: row.get::<String>("generated")? == "s",
        });
    }
    Ok(Publications {
        publications,
        tables: get_tables(db).await?,
        schemas: get_schemas(db).await?,
    })
}

async fn get_tables(db: &Db<'_>) -> Result<Vec<PublishedTable>, CatalogError> {
    // A column list and a row filter from 15.
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
    let mut tables = Vec::new();
    for row in db.query("publication tables", &sql).await? {
        tables.push(PublishedTable {
            oid: row.get("oid")?,
            publication_oid: row.get("prpubid")?,
            table_oid: row.get("prrelid")?,
            columns: row.get("columns")?,
            filter: row.get("filter")?,
        });
    }
    Ok(tables)
}

async fn get_schemas(db: &Db<'_>) -> Result<Vec<PublishedSchema>, CatalogError> {
    if !db.version.at_least(15) {
        return Ok(Vec::new());
    }
    let sql = "SELECT s.oid, s.pnpubid, s.pnnspid, n.nspname::text AS schema, quote_ident(n.nspname) AS q \
               FROM pg_publication_namespace s JOIN pg_namespace n ON n.oid = s.pnnspid \
               ORDER BY s.pnpubid, n.nspname";
    let mut schemas = Vec::new();
    for row in db.query("publication schemas", sql).await? {
        schemas.push(PublishedSchema {
            oid: row.get("oid")?,
            publication_oid: row.get("pnpubid")?,
            schema_oid: row.get("pnnspid")?,
            schema: row.get("schema")?,
            q: row.get("q")?,
        });
    }
    Ok(schemas)
}

/// The items of `publications`, then of the tables among the dumped `relations` and the
/// schemas they publish (after the data, as pg_dump adds them).
pub(super) fn dump(publications: &Publications, relations: &HashMap<u32, Relation>) -> Vec<Item> {
    let mut items: Vec<Item> = publications
        .publications
        .iter()
        .map(dump_publication)
        .collect();
    let by_oid: HashMap<u32, &Header> = publications
        .publications
        .iter()
        .map(|p| (p.header.oid, &p.header))
        .collect();
    for member in &publications.tables {
        let (Some(publication), Some(table)) = (
            by_oid.get(&member.publication_oid),
            relations.get(&member.table_oid),
        ) else {
            continue;
        };
        items.push(dump_table(member, publication, table));
    }
    for member in &publications.schemas {
        if let Some(publication) = by_oid.get(&member.publication_oid) {
            items.push(dump_schema(member, publication));
        }
    }
    items
}

/// The item that creates `publication`.
pub(super) fn dump_publication(publication: &Publication) -> Item {
    let header = &publication.header;
    let publish: Vec<&str> = [
        (publication.insert, "insert"),
        (publication.update, "update"),
        (publication.delete, "delete"),
        (publication.truncate, "truncate"),
    ]
    .into_iter()
    .filter_map(|(on, action)| on.then_some(action))
    .collect();
    let mut create = format!("CREATE PUBLICATION {}", header.q);
    if publication.all_tables {
        create.push_str(" FOR ALL TABLES");
    }
    create.push_str(&format!(" WITH (publish = '{}'", publish.join(", ")));
    if publication.via_root {
        create.push_str(", publish_via_partition_root = true");
    }
    if publication.stored_generated_columns {
        create.push_str(", publish_generated_columns = stored");
    }
    create.push_str(");\n");
    let mut sql = Sql::from(create);
    sql.append(header.tail("PUBLICATION"));
    Item::new(ItemKind::Publication, "", &header.name, sql)
        .owning([oid_ref(class::PG_PUBLICATION, header.oid)])
}

/// The item that adds `member`, `table`, to `publication`, needing both.
fn dump_table(member: &PublishedTable, publication: &Header, table: &Relation) -> Item {
    let mut sql = format!(
        "ALTER PUBLICATION {} ADD TABLE ONLY {}",
        publication.q, table.qualified_name
    );
    if let Some(columns) = &member.columns {
        sql.push_str(&format!(" ({columns})"));
    }
    if let Some(filter) = &member.filter {
        sql.push_str(&format!(" WHERE ({filter})"));
    }
    sql.push_str(";\n");
    Item::new(
        ItemKind::PublicationMember,
        &table.schema,
        &format!("{} {}", publication.name, table.name),
        sql,
    )
    .owning([oid_ref(class::PG_PUBLICATION_REL, member.oid)])
    .needing([
        oid_ref(class::PG_PUBLICATION, member.publication_oid),
        oid_ref(class::PG_CLASS, member.table_oid),
    ])
    .of_table(&table.qualified_name)
}

/// The item that adds the tables in schema `member` to `publication`, needing both.
fn dump_schema(member: &PublishedSchema, publication: &Header) -> Item {
    Item::new(
        ItemKind::PublicationMember,
        &member.schema,
        &format!("{} {}", publication.name, member.schema),
        format!(
            "ALTER PUBLICATION {} ADD TABLES IN SCHEMA {};\n",
            publication.q, member.q
        ),
    )
    .owning([oid_ref(class::PG_PUBLICATION_NAMESPACE, member.oid)])
    .needing([
        oid_ref(class::PG_PUBLICATION, member.publication_oid),
        oid_ref(class::PG_NAMESPACE, member.schema_oid),
    ])
}

#[cfg(test)]
mod tests {
    use super::super::model::tests::{header, relation};
    use super::*;

    const PUBLICATION: u32 = 16_400;

    fn publication() -> Publication {
        Publication {
            header: header("\"Orders\"", Some("app")),
            all_tables: false,
            insert: true,
            update: true,
            delete: true,
            truncate: true,
            via_root: false,
            stored_generated_columns: false,
        }
    }

    fn table(columns: Option<&str>, filter: Option<&str>) -> PublishedTable {
        PublishedTable {
            oid: 16_500,
            publication_oid: PUBLICATION,
            table_oid: 16_390,
            columns: columns.map(str::to_string),
            filter: filter.map(str::to_string),
        }
    }

    #[test]
    fn a_publication_with_its_options_on_each_version() {
        // 13 and 14: the actions, all tables, via the root.
        let mut all = publication();
        all.all_tables = true;
        all.truncate = false;
        all.via_root = true;
        all.header.comment = Some("everything".into());
        let item = dump_publication(&all);
        assert_eq!(
            item.sql,
            "CREATE PUBLICATION \"Orders\" FOR ALL TABLES WITH (publish = 'insert, update, delete', \
             publish_via_partition_root = true);\n\
             ALTER PUBLICATION \"Orders\" OWNER TO app;\n\
             COMMENT ON PUBLICATION \"Orders\" IS 'everything';\n"
        );
        assert_eq!(
            (item.kind, item.schema.as_str(), item.name.as_str()),
            (ItemKind::Publication, "", "Orders")
        );
        assert_eq!(item.owns, [oid_ref(class::PG_PUBLICATION, PUBLICATION)]);

        // 18: stored generated columns.
        let mut generated = publication();
        generated.stored_generated_columns = true;
        assert!(dump_publication(&generated).sql.starts_with(
            "CREATE PUBLICATION \"Orders\" WITH (publish = 'insert, update, delete, truncate', \
             publish_generated_columns = stored);\n"
        ));

        let mut nothing = publication();
        (
            nothing.insert,
            nothing.update,
            nothing.delete,
            nothing.truncate,
        ) = (false, false, false, false);
        assert!(
            dump_publication(&nothing)
                .sql
                .starts_with("CREATE PUBLICATION \"Orders\" WITH (publish = '');\n")
        );
    }

    #[test]
    fn published_tables_on_each_version_and_schemas() {
        let relations = HashMap::from([(16_390, relation("orders"))]);
        let publications = Publications {
            publications: vec![publication()],
            tables: vec![
                // Before 15: the whole table.
                table(None, None),
                // 15+: a column list and a row filter.
                table(Some("id, total"), Some("(total > 0)")),
                // Not dumped: a table left out, a publication not dumped.
                PublishedTable {
                    table_oid: 16_391,
                    ..table(None, None)
                },
                PublishedTable {
                    publication_oid: 1,
                    ..table(None, None)
                },
            ],
            schemas: vec![PublishedSchema {
                oid: 16_600,
                publication_oid: PUBLICATION,
                schema_oid: 16_385,
                schema: "Sales".into(),
                q: "\"Sales\"".into(),
            }],
        };
        let items = dump(&publications, &relations);
        assert_eq!(items.len(), 4);
        assert_eq!(
            items[1].sql,
            "ALTER PUBLICATION \"Orders\" ADD TABLE ONLY app.orders;\n"
        );
        assert_eq!(
            items[2].sql,
            "ALTER PUBLICATION \"Orders\" ADD TABLE ONLY app.orders (id, total) WHERE ((total > 0));\n"
        );
        assert_eq!(
            (
                items[1].kind,
                items[1].schema.as_str(),
                items[1].name.as_str(),
                items[1].table.as_deref()
            ),
            (
                ItemKind::PublicationMember,
                "app",
                "Orders orders",
                Some("app.orders")
            )
        );
        assert_eq!(items[1].owns, [oid_ref(class::PG_PUBLICATION_REL, 16_500)]);
        assert_eq!(
            items[1].needs,
            [
                oid_ref(class::PG_PUBLICATION, PUBLICATION),
                oid_ref(class::PG_CLASS, 16_390)
            ]
        );
        assert_eq!(
            items[3].sql,
            "ALTER PUBLICATION \"Orders\" ADD TABLES IN SCHEMA \"Sales\";\n"
        );
        assert_eq!(
            (items[3].schema.as_str(), items[3].name.as_str()),
            ("Sales", "Orders Sales")
        );
        assert_eq!(
            items[3].owns,
            [oid_ref(class::PG_PUBLICATION_NAMESPACE, 16_600)]
        );
        assert_eq!(
            items[3].needs,
            [
                oid_ref(class::PG_PUBLICATION, PUBLICATION),
                oid_ref(class::PG_NAMESPACE, 16_385)
            ]
        );
    }
}
