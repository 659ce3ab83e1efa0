//! Views and materialized views (refreshed in post-data).

use std::collections::HashMap;

use super::model::Header;
use super::*;
use crate::sql::Sql;

/// A view or a materialized view as the catalog describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct View {
    pub header: Header,
    pub kind: ViewKind,
    /// Its query, as `pg_get_viewdef` writes it.
    pub definition: String,
    /// Its `reloptions` as `WITH (…)` lists them (`check_option=local, security_barrier=true`),
    /// where it has any.
    pub options: Option<String>,
    /// The row type it makes, and that type's array where there is one.
    pub row_type: u32,
    pub row_type_array: Option<u32>,
    /// Its `_RETURN` rule.
    pub rule: Option<u32>,
    /// Its columns' defaults (what an INSERT through it fills in): the `pg_attrdef` rows, and
    /// the `ALTER VIEW … ALTER COLUMN … SET DEFAULT …;` statements that make them, one a line.
    pub default_oids: Vec<u32>,
    pub column_defaults: Option<String>,
    /// `COMMENT ON COLUMN …;` statements, one a line.
    pub column_comments: Option<String>,
}

/// What a view is: a stored query, or one whose rows are stored too.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ViewKind {
    Plain,
    Materialized(Materialized),
}

/// What only a materialized view has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Materialized {
    /// The table access method, quoted, when it is not `heap`.
    pub access_method: Option<String>,
    /// Whether it holds rows (is refreshed after the data).
    pub populated: bool,
    /// Its columns' own settings, in column order.
    pub columns: Vec<MaterializedColumn>,
    /// The materialized views it reads, directly or through plain views: refreshed first.
    pub refreshed_after: Vec<u32>,
}

/// A materialized view column's settings that differ from its type's, as a table's do.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MaterializedColumn {
    /// The column's quoted name.
    pub q: String,
    /// `PLAIN`, `EXTERNAL`, `MAIN` or `EXTENDED`, where not its type's.
    pub storage: Option<String>,
    pub statistics_target: Option<i32>,
    /// `pglz` or `lz4` (14+), where set.
    pub compression: Option<String>,
    /// Its attribute options (`n_distinct=100`), where set.
    pub options: Option<String>,
}

pub(super) async fn views(db: &Db<'_>, catalog: &mut Catalog) -> Result<(), CatalogError> {
    for view in get(db).await? {
        catalog.items.extend(dump(&view));
        catalog.relations.insert(view.header.oid, relation(&view));
    }
    Ok(())
}

/// Every user view and materialized view (not an extension's).
pub(super) async fn get(db: &Db<'_>) -> Result<Vec<View>, CatalogError> {
    let sql = format!(
        "SELECT c.oid, n.nspname::text AS schema, c.relname::text AS name, quote_ident(n.nspname) || '.' || quote_ident(c.relname) AS q, \
         c.relkind::text AS kind, pg_get_viewdef(c.oid) AS def, array_to_string(c.reloptions, ', ') AS options, \
         c.relispopulated, c.reltype, (SELECT t.typarray FROM pg_type t WHERE t.oid = c.reltype) AS rowtype_array, \
         (SELECT r.oid FROM pg_rewrite r WHERE r.ev_class = c.oid AND r.rulename = '_RETURN') AS rule, \
         CASE WHEN am.amname <> 'heap' THEN quote_ident(am.amname) END AS am, \
         quote_ident(pg_get_userbyid(c.relowner)) AS owner, (SELECT description FROM pg_description WHERE objoid = c.oid AND classoid = 'pg_class'::regclass AND objsubid = 0) AS comment, \
         {}, \
         (SELECT string_agg(format('COMMENT ON COLUMN %s.%I IS %L;', quote_ident(n.nspname) || '.' || quote_ident(c.relname), a.attname, d.description), E'\\n' ORDER BY a.attnum) \
          FROM pg_attribute a JOIN pg_description d ON d.objoid = c.oid AND d.classoid = 'pg_class'::regclass AND d.objsubid = a.attnum \
          WHERE a.attrelid = c.oid) AS column_comments, \
         (SELECT string_agg(format('ALTER VIEW %s ALTER COLUMN %I SET DEFAULT %s;', quote_ident(n.nspname) || '.' || quote_ident(c.relname), \
              a.attname, pg_get_expr(d.adbin, d.adrelid)), E'\\n' ORDER BY a.attnum) \
          FROM pg_attrdef d JOIN pg_attribute a ON a.attrelid = d.adrelid AND a.attnum = d.adnum \
          WHERE d.adrelid = c.oid) AS column_defaults, \
         ARRAY(SELECT d.oid FROM pg_attrdef d WHERE d.adrelid = c.oid) AS attrdefs \
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace LEFT JOIN pg_am am ON am.oid = c.relam \
         WHERE c.relkind IN ('v', 'm') AND c.oid >= 16384 AND {USER_SCHEMA} AND {}",
        acl_columns("c.relacl", "c.relowner", 'r'),
        not_in_extension("pg_class", "c.oid")
    );
    let mut columns = materialized_columns(db).await?;
    let mut refreshed_after = refresh_order(db).await?;
    let mut views = Vec::new();
    for row in db.query("views", &sql).await? {
        let header = Header::of(row.schema_object()?, row.get("owner")?, row.get("comment")?)
            .with_acl(&row)?;
        let kind = if row.get::<String>("kind")? == "m" {
            ViewKind::Materialized(Materialized {
                access_method: row.get("am")?,
                populated: row.get("relispopulated")?,
                columns: columns.remove(&header.oid).unwrap_or_default(),
                refreshed_after: refreshed_after.remove(&header.oid).unwrap_or_default(),
            })
        } else {
            ViewKind::Plain
        };
        views.push(View {
            header,
            kind,
            definition: row.get("def")?,
            options: row
                .get::<Option<String>>("options")?
                .filter(|o| !o.is_empty()),
            row_type: row.get("reltype")?,
            row_type_array: row.get::<Option<u32>>("rowtype_array")?.filter(|a| *a != 0),
            rule: row.get("rule")?,
            default_oids: row.get("attrdefs")?,
            column_defaults: row.get("column_defaults")?,
            column_comments: row.get("column_comments")?,
        });
    }
    Ok(views)
}

/// The settings of every materialized view's columns, by view: each column's storage,
/// statistics target, compression and options (`n_distinct`…), as a table's columns keep.
async fn materialized_columns(
    db: &Db<'_>,
) -> Result<HashMap<u32, Vec<MaterializedColumn>>, CatalogError> {
    let compression = if db.version.at_least(14) {
        "CASE a.attcompression WHEN 'p' THEN 'pglz' WHEN 'l' THEN 'lz4' END"
    } else {
        "NULL::text"
    };
    let sql = format!(
        "SELECT a.attrelid, quote_ident(a.attname) AS q, \
         CASE WHEN a.attstorage <> t.typstorage THEN CASE a.attstorage WHEN 'p' THEN 'PLAIN' WHEN 'e' THEN 'EXTERNAL' \
             WHEN 'm' THEN 'MAIN' WHEN 'x' THEN 'EXTENDED' END END AS storage, \
         coalesce(a.attstattarget::int4, -1) AS target, {compression} AS compression, \
         array_to_string(a.attoptions, ', ') AS options \
         FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_type t ON t.oid = a.atttypid \
         WHERE c.relkind = 'm' AND c.oid >= 16384 AND a.attnum > 0 AND NOT a.attisdropped \
         ORDER BY a.attrelid, a.attnum"
    );
    let mut columns: HashMap<u32, Vec<MaterializedColumn>> = HashMap::new();
    for row in db.query("materialized view columns", &sql).await? {
        columns
            .entry(row.get("attrelid")?)
            .or_default()
            .push(MaterializedColumn {
                q: row.get("q")?,
                storage: row.get("storage")?,
                statistics_target: Some(row.get::<i32>("target")?).filter(|t| *t >= 0),
                compression: row.get("compression")?,
                options: row
                    .get::<Option<String>>("options")?
                    .filter(|o| !o.is_empty()),
            });
    }
    Ok(columns)
}

/// The materialized views each one reads, directly or through plain views (as pg_dump's
/// buildMatViewRefreshDependencies finds them), by the view that reads them.
async fn refresh_order(db: &Db<'_>) -> Result<HashMap<u32, Vec<u32>>, CatalogError> {
    let sql = "WITH RECURSIVE w AS ( \
           SELECT c1.oid AS objid, d2.refobjid, c2.relkind AS refrelkind \
             FROM pg_class c1 JOIN pg_rewrite r1 ON r1.ev_class = c1.oid \
             JOIN pg_depend d2 ON d2.classid = 'pg_rewrite'::regclass AND d2.objid = r1.oid AND d2.refobjid <> c1.oid \
             JOIN pg_class c2 ON c2.oid = d2.refobjid AND c2.relkind IN ('m', 'v') \
            WHERE c1.relkind = 'm' \
           UNION \
           SELECT w.objid, d3.refobjid, c3.relkind FROM w \
             JOIN pg_rewrite r3 ON r3.ev_class = w.refobjid \
             JOIN pg_depend d3 ON d3.classid = 'pg_rewrite'::regclass AND d3.objid = r3.oid AND d3.refobjid <> w.refobjid \
             JOIN pg_class c3 ON c3.oid = d3.refobjid AND c3.relkind IN ('m', 'v') \
            WHERE w.refrelkind = 'v') \
         SELECT DISTINCT objid, refobjid FROM w WHERE refrelkind = 'm' AND objid >= 16384";
    let mut refreshed_after: HashMap<u32, Vec<u32>> = HashMap::new();
    for row in db.query("materialized view refresh order", sql).await? {
        refreshed_after
            .entry(row.get("objid")?)
            .or_default()
            .push(row.get("refobjid")?);
    }
    Ok(refreshed_after)
}

/// The items of `view`: the one that creates it (with its row type, rule and column
/// defaults), its grants, and a populated materialized view's refresh.
pub(super) fn dump(view: &View) -> Vec<Item> {
    let header = &view.header;
    let q = &header.q;
    let object = oid_ref(class::PG_CLASS, header.oid);
    let mut owns = vec![object, oid_ref(class::PG_TYPE, view.row_type)];
    owns.extend(view.row_type_array.map(|a| oid_ref(class::PG_TYPE, a)));
    owns.extend(view.rule.map(|r| oid_ref(class::PG_REWRITE, r)));
    owns.extend(
        view.default_oids
            .iter()
            .map(|d| oid_ref(class::PG_ATTRDEF, *d)),
    );
    let definition = view.definition.trim().trim_end_matches(';');
    let options = view
        .options
        .as_ref()
        .map(|o| format!(" WITH ({o})"))
        .unwrap_or_default();
    let (item_kind, word, create) = match &view.kind {
        ViewKind::Materialized(materialized) => {
            let using = materialized
                .access_method
                .as_ref()
                .map(|am| format!(" USING {am}"))
                .unwrap_or_default();
            (
                ItemKind::MaterializedView,
                "MATERIALIZED VIEW",
                format!(
                    "CREATE MATERIALIZED VIEW {q}{using}{options} AS\n {definition}\n  WITH NO DATA;\n"
                ),
            )
        }
        ViewKind::Plain => (
            ItemKind::View,
            "VIEW",
            format!("CREATE VIEW {q}{options} AS\n {definition};\n"),
        ),
    };
    let mut sql = Sql::from(create);
    sql.append(header.tail(word));
    if let ViewKind::Materialized(materialized) = &view.kind {
        for column in &materialized.columns {
            for setting in column_settings(column) {
                sql.push_str(&format!(
                    "ALTER MATERIALIZED VIEW {q} ALTER COLUMN {} {setting};\n",
                    column.q
                ));
            }
        }
    }
    for statements in [&view.column_defaults, &view.column_comments]
        .into_iter()
        .flatten()
    {
        sql.push_str(statements);
        sql.push_str("\n");
    }
    let mut items = vec![
        Item::new(item_kind, &header.schema, &header.name, sql)
            .owning(owns)
            .of_table(q),
    ];
    items.extend(header.acl_item("TABLE", object).map(|acl| acl.of_table(q)));
    if let ViewKind::Materialized(materialized) = &view.kind {
        items.extend(refresh(header, materialized));
    }
    items
}

/// What `ALTER COLUMN` sets on a materialized view's `column`, in pg_dump's order.
fn column_settings(column: &MaterializedColumn) -> Vec<String> {
    let mut settings = Vec::new();
    if let Some(storage) = &column.storage {
        settings.push(format!("SET STORAGE {storage}"));
    }
    if let Some(target) = column.statistics_target {
        settings.push(format!("SET STATISTICS {target}"));
    }
    if let Some(compression) = &column.compression {
        settings.push(format!("SET COMPRESSION {compression}"));
    }
    if let Some(options) = &column.options {
        settings.push(format!("SET ({options})"));
    }
    settings
}

/// The item that refreshes a populated materialized view after the data, after the
/// materialized views it reads; `None` for one created `WITH NO DATA` and left so.
fn refresh(header: &Header, materialized: &Materialized) -> Option<Item> {
    let q = &header.q;
    materialized.populated.then(|| {
        Item::new(
            ItemKind::Refresh,
            &header.schema,
            &header.name,
            format!("REFRESH MATERIALIZED VIEW {q};\n"),
        )
        .owning([oid_ref(class::REFRESH, header.oid)])
        .needing([oid_ref(class::PG_CLASS, header.oid)])
        .needing(
            materialized
                .refreshed_after
                .iter()
                .map(|m| oid_ref(class::REFRESH, *m)),
        )
        .of_table(q)
    })
}

/// What the readers after this one need to know of `view`.
fn relation(view: &View) -> Relation {
    let header = &view.header;
    Relation {
        schema: header.schema.clone(),
        name: header.name.clone(),
        qualified_name: header.q.clone(),
        kind: match view.kind {
            ViewKind::Plain => "v",
            ViewKind::Materialized(_) => "m",
        }
        .to_string(),
        inherits: false,
    }
}

#[cfg(test)]
mod tests {
    use super::super::model::tests::header;
    use super::*;
    use crate::acl::Grant;

    fn view(kind: ViewKind) -> View {
        View {
            header: header("app.totals", Some("app")),
            kind,
            definition: " SELECT orders.id,\n    orders.total\n   FROM app.orders;".into(),
            options: None,
            row_type: 16_401,
            row_type_array: Some(16_402),
            rule: Some(16_403),
            default_oids: Vec::new(),
            column_defaults: None,
            column_comments: None,
        }
    }

    fn materialized(populated: bool) -> Materialized {
        Materialized {
            access_method: None,
            populated,
            columns: Vec::new(),
            refreshed_after: Vec::new(),
        }
    }

    #[test]
    fn a_view_with_its_options_column_defaults_comments_and_grants() {
        let mut plain = view(ViewKind::Plain);
        plain.options = Some("check_option=local, security_barrier=true".into());
        plain.header.comment = Some("per order".into());
        plain.default_oids = vec![16_404];
        plain.column_defaults =
            Some("ALTER VIEW app.totals ALTER COLUMN total SET DEFAULT 0;".into());
        plain.column_comments = Some(
            "COMMENT ON COLUMN app.totals.id IS 'id';\nCOMMENT ON COLUMN app.totals.total IS 'sum';"
                .into(),
        );
        plain.header.acl = Some(vec![Grant {
            grantee: "reader".into(),
            privilege: "SELECT".into(),
            grantable: false,
            grantor: None,
        }]);
        let items = dump(&plain);
        assert_eq!(items.len(), 2);
        assert_eq!(
            items[0].sql,
            "CREATE VIEW app.totals WITH (check_option=local, security_barrier=true) AS\n \
             SELECT orders.id,\n    orders.total\n   FROM app.orders;\n\
             ALTER VIEW app.totals OWNER TO app;\n\
             COMMENT ON VIEW app.totals IS 'per order';\n\
             ALTER VIEW app.totals ALTER COLUMN total SET DEFAULT 0;\n\
             COMMENT ON COLUMN app.totals.id IS 'id';\nCOMMENT ON COLUMN app.totals.total IS 'sum';\n"
        );
        assert_eq!(items[0].kind, ItemKind::View);
        assert_eq!(items[0].table.as_deref(), Some("app.totals"));
        assert_eq!(
            items[0].owns,
            [
                oid_ref(class::PG_CLASS, 16_400),
                oid_ref(class::PG_TYPE, 16_401),
                oid_ref(class::PG_TYPE, 16_402),
                oid_ref(class::PG_REWRITE, 16_403),
                oid_ref(class::PG_ATTRDEF, 16_404)
            ]
        );
        assert_eq!(
            (items[1].kind, items[1].sql.as_str()),
            (
                ItemKind::Acl,
                "GRANT SELECT ON TABLE app.totals TO reader;\n"
            )
        );
        assert_eq!(items[1].table.as_deref(), Some("app.totals"));
        assert_eq!(items[1].needs, [oid_ref(class::PG_CLASS, 16_400)]);
        assert_eq!(relation(&plain).kind, "v");
    }

    #[test]
    fn a_materialized_view_left_with_no_data_is_not_refreshed() {
        let mut unpopulated = materialized(false);
        unpopulated.access_method = Some("columnar".into());
        let matview = view(ViewKind::Materialized(unpopulated));
        let items = dump(&matview);
        assert_eq!(items.len(), 1);
        assert_eq!(items[0].kind, ItemKind::MaterializedView);
        assert_eq!(
            items[0].sql,
            "CREATE MATERIALIZED VIEW app.totals USING columnar AS\n \
             SELECT orders.id,\n    orders.total\n   FROM app.orders\n  WITH NO DATA;\n\
             ALTER MATERIALIZED VIEW app.totals OWNER TO app;\n"
        );
        assert_eq!(relation(&matview).kind, "m");
    }

    #[test]
    fn a_populated_materialized_view_is_refreshed_after_those_it_reads() {
        let mut populated = materialized(true);
        populated.refreshed_after = vec![16_390];
        let mut matview = view(ViewKind::Materialized(populated));
        matview.options = Some("fillfactor=70".into());
        let items = dump(&matview);
        assert!(
            items[0].sql.starts_with(
                "CREATE MATERIALIZED VIEW app.totals WITH (fillfactor=70) AS\n SELECT"
            )
        );
        let refresh = &items[1];
        assert_eq!(refresh.kind, ItemKind::Refresh);
        assert_eq!(refresh.sql, "REFRESH MATERIALIZED VIEW app.totals;\n");
        assert_eq!(refresh.owns, [oid_ref(class::REFRESH, 16_400)]);
        assert_eq!(
            refresh.needs,
            [
                oid_ref(class::PG_CLASS, 16_400),
                oid_ref(class::REFRESH, 16_390)
            ]
        );
        assert_eq!(refresh.table.as_deref(), Some("app.totals"));
    }

    #[test]
    fn a_materialized_views_column_settings() {
        let mut settings = materialized(false);
        settings.columns = vec![
            MaterializedColumn {
                q: "id".into(),
                statistics_target: Some(500),
                ..MaterializedColumn::default()
            },
            // 14+: a compression of its own.
            MaterializedColumn {
                q: "\"Total\"".into(),
                storage: Some("EXTERNAL".into()),
                compression: Some("lz4".into()),
                options: Some("n_distinct=100".into()),
                ..MaterializedColumn::default()
            },
            MaterializedColumn {
                q: "plain".into(),
                ..MaterializedColumn::default()
            },
        ];
        let sql = dump(&view(ViewKind::Materialized(settings))).remove(0).sql;
        assert!(
            sql.ends_with(
                "ALTER MATERIALIZED VIEW app.totals OWNER TO app;\n\
                 ALTER MATERIALIZED VIEW app.totals ALTER COLUMN id SET STATISTICS 500;\n\
                 ALTER MATERIALIZED VIEW app.totals ALTER COLUMN \"Total\" SET STORAGE EXTERNAL;\n\
                 ALTER MATERIALIZED VIEW app.totals ALTER COLUMN \"Total\" SET COMPRESSION lz4;\n\
                 ALTER MATERIALIZED VIEW app.totals ALTER COLUMN \"Total\" SET (n_distinct=100);\n"
            ),
            "{sql}"
        );
    }
}
