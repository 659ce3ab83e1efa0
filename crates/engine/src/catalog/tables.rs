//! Tables and their partitions, row security and replica identity; typed tables (`OF type`)
//! and foreign tables (`SERVER`, with their own and their columns' options). Their columns
//! are [`columns`](super::columns)'.

use super::columns::{
    self, Column, Generated, TableContext, Written, column_definition, column_settings,
    inherited_column,
};
use super::foreign_data::{options_sql, options_text};
use super::model::{Header, Persistence};
use super::sequences::IdentitySequences;
use super::*;
use crate::sql::Sql;
use backstop_pg::version::ServerVersion;

/// A table as the catalog describes it, with its columns.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Table {
    pub header: Header,
    pub kind: TableKind,
    pub persistence: Persistence,
    pub row_security: bool,
    pub force_row_security: bool,
    /// The type of a typed table (`OF type`), as `format_type` writes it.
    pub of_type: Option<String>,
    /// The table's row type and its array type, made with it.
    pub rowtype: u32,
    pub rowtype_array: Option<u32>,
    /// Storage parameters as `name=value, ...`, the TOAST table's as `toast.name=value`.
    pub options: Option<String>,
    pub replica_identity: ReplicaIdentity,
    /// A table access method other than `heap`, quoted.
    pub access_method: Option<String>,
    /// The parents of an inheritance child (not a partition), quoted and qualified, in order.
    pub inherits_from: Option<String>,
    /// A partitioned table's key as `pg_get_partkeydef` writes it.
    pub partition_key: Option<String>,
    pub partition_of: Option<PartitionOf>,
    /// The table's size on disk, measured or estimated ([`SMALL_TABLE_BYTES`]): what plans
    /// its data parts.
    pub bytes: u64,
    pub pages: u64,
    pub foreign: Option<ForeignTable>,
    pub columns: Vec<Column>,
}

/// The kinds of relation that are tables (`relkind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TableKind {
    #[default]
    Ordinary,
    Partitioned,
    Foreign,
}

impl TableKind {
    fn from_code(code: &str) -> Self {
        match code {
            "p" => TableKind::Partitioned,
            "f" => TableKind::Foreign,
            _ => TableKind::Ordinary,
        }
    }

    /// The catalog's `relkind` letter, as [`Relation::kind`] holds it.
    pub fn code(self) -> &'static str {
        match self {
            TableKind::Ordinary => "r",
            TableKind::Partitioned => "p",
            TableKind::Foreign => "f",
        }
    }
}

/// What a table's rows carry to a logical replica to identify them (`relreplident`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ReplicaIdentity {
    /// The primary key.
    #[default]
    Default,
    Full,
    Nothing,
    /// An index of its own (set with the index).
    Index,
}

/// The table a partition belongs to and its bound.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionOf {
    pub parent: u32,
    /// The parent, quoted and qualified.
    pub parent_name: String,
    /// `FOR VALUES ...` or `DEFAULT`.
    pub bound: String,
}

/// Where a foreign table's rows live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForeignTable {
    /// The server, quoted.
    pub server: String,
    /// The table's options as `name 'value', ...`.
    pub options: Option<String>,
}

pub(super) async fn tables(
    db: &Db<'_>,
    catalog: &mut Catalog,
    identity: &IdentitySequences,
) -> Result<(), CatalogError> {
    dump(get(db).await?, identity, db.version, catalog);
    Ok(())
}

/// Every user table, foreign and partitioned ones included, with its columns.
pub(super) async fn get(db: &Db<'_>) -> Result<Vec<Table>, CatalogError> {
    let sql = format!(
        "SELECT c.oid, n.nspname::text AS schema, c.relname::text AS name, quote_ident(n.nspname) || '.' || quote_ident(c.relname) AS q, \
         c.relkind::text AS kind, c.relpersistence::text AS persistence, c.relrowsecurity, c.relforcerowsecurity, \
         c.relispartition, CASE WHEN c.reloftype <> 0 THEN format_type(c.reloftype, NULL) END AS of_type, c.reltype, c.reltype AS rowtype, \
         (SELECT t.typarray FROM pg_type t WHERE t.oid = c.reltype) AS rowtype_array, \
         array_to_string(c.reloptions || ARRAY(SELECT 'toast.' || o FROM pg_class t, unnest(t.reloptions) AS o \
             WHERE t.oid = c.reltoastrelid), ', ') AS options, c.relreplident::text AS replident, \
         CASE WHEN am.amname <> 'heap' THEN quote_ident(am.amname) END AS am, \
         (SELECT string_agg(quote_ident(pn.nspname) || '.' || quote_ident(pc.relname), ', ' ORDER BY i.inhseqno) \
             FROM pg_inherits i JOIN pg_class pc ON pc.oid = i.inhparent JOIN pg_namespace pn ON pn.oid = pc.relnamespace \
             WHERE i.inhrelid = c.oid AND NOT c.relispartition) AS inherits_from, \
         (SELECT array_agg(i.inhparent ORDER BY i.inhseqno) FROM pg_inherits i \
             WHERE i.inhrelid = c.oid AND NOT c.relispartition) AS parents, \
         CASE WHEN c.relkind = 'p' THEN pg_get_partkeydef(c.oid) END AS partition_key, \
         CASE WHEN c.relispartition THEN pg_get_expr(c.relpartbound, c.oid) END AS partition_bound, \
         (SELECT i.inhparent FROM pg_inherits i WHERE i.inhrelid = c.oid AND c.relispartition) AS partition_parent, \
         (SELECT quote_ident(pn.nspname) || '.' || quote_ident(pc.relname) FROM pg_inherits i JOIN pg_class pc ON pc.oid = i.inhparent \
             JOIN pg_namespace pn ON pn.oid = pc.relnamespace WHERE i.inhrelid = c.oid AND c.relispartition) AS partition_parent_name, \
         quote_ident(pg_get_userbyid(c.relowner)) AS owner, (SELECT description FROM pg_description WHERE objoid = c.oid AND classoid = 'pg_class'::regclass AND objsubid = 0) AS comment, \
         {}, size.bytes, size.bytes / current_setting('block_size')::int8 AS pages, \
         (SELECT quote_ident(fs.srvname) FROM pg_foreign_server fs WHERE fs.oid = ft.ftserver) AS foreign_server, \
         {} AS foreign_options \
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace LEFT JOIN pg_am am ON am.oid = c.relam \
         LEFT JOIN pg_foreign_table ft ON ft.ftrelid = c.oid \
         CROSS JOIN LATERAL (SELECT CASE WHEN c.relpages = 0 OR c.reltuples < 0 \
             OR c.relpages::int8 * current_setting('block_size')::int8 >= {SMALL_TABLE_BYTES} \
             THEN pg_relation_size(c.oid) ELSE c.relpages::int8 * current_setting('block_size')::int8 END AS bytes) size \
         WHERE c.relkind IN ('r', 'p', 'f') AND c.oid >= 16384 AND {USER_SCHEMA} AND {} \
         ORDER BY c.oid",
        acl_columns("c.relacl", "c.relowner", 'r'),
        options_sql("ft.ftoptions"),
        not_in_extension("pg_class", "c.oid")
    );
    let mut columns = columns::get(db).await?;
    let mut tables = Vec::new();
    for row in db.query("tables", &sql).await? {
        let object = row.schema_object()?;
        let oid = object.oid;
        let header =
            Header::of(object, Some(row.get("owner")?), row.get("comment")?).with_acl(&row)?;
        let partition_of = match (
            row.get::<Option<u32>>("partition_parent")?,
            row.get::<Option<String>>("partition_parent_name")?,
            row.get::<Option<String>>("partition_bound")?,
        ) {
            (Some(parent), Some(parent_name), Some(bound)) => Some(PartitionOf {
                parent,
                parent_name,
                bound,
            }),
            _ => None,
        };
        let foreign = match row.get::<Option<String>>("foreign_server")? {
            Some(server) => Some(ForeignTable {
                server,
                options: row
                    .get::<Option<String>>("foreign_options")?
                    .filter(|o| !o.is_empty()),
            }),
            None => None,
        };
        tables.push(Table {
            header,
            kind: TableKind::from_code(&row.get::<String>("kind")?),
            persistence: Persistence::from_code(&row.get::<String>("persistence")?),
            row_security: row.get("relrowsecurity")?,
            force_row_security: row.get("relforcerowsecurity")?,
            of_type: row.get("of_type")?,
            rowtype: row.get("rowtype")?,
            rowtype_array: row.get::<Option<u32>>("rowtype_array")?.filter(|a| *a != 0),
            options: row
                .get::<Option<String>>("options")?
                .filter(|o| !o.is_empty()),
            replica_identity: match row.get::<String>("replident")?.as_str() {
                "f" => ReplicaIdentity::Full,
                "n" => ReplicaIdentity::Nothing,
                "i" => ReplicaIdentity::Index,
                _ => ReplicaIdentity::Default,
            },
            access_method: row.get("am")?,
            inherits_from: row.get("inherits_from")?,
            partition_key: row.get("partition_key")?,
            partition_of,
            bytes: row.get::<i64>("bytes")?.max(0) as u64,
            pages: row.get::<i64>("pages")?.max(0) as u64,
            foreign,
            columns: columns.remove(&oid).unwrap_or_default(),
        });
    }
    Ok(tables)
}

/// The items of `tables`, the ones holding rows as [`DataTable`]s, and each as a
/// [`Relation`] for the kinds attached to tables. `identity` gives the sequences of identity
/// columns; `version`, whether such a sequence can be logged or not on its own (15+).
pub(super) fn dump(
    tables: Vec<Table>,
    identity: &IdentitySequences,
    version: ServerVersion,
    catalog: &mut Catalog,
) {
    for table in tables {
        let (oid, q) = (table.header.oid, table.header.q.clone());
        let inherits = table.inherits_from.is_some();
        let object = oid_ref(class::PG_CLASS, oid);
        let mut written = Written {
            owns: vec![object, oid_ref(class::PG_TYPE, table.rowtype)],
            ..Written::default()
        };
        written
            .owns
            .extend(table.rowtype_array.map(|a| oid_ref(class::PG_TYPE, a)));
        let context = TableContext {
            oid,
            schema: &table.header.schema,
            q: &q,
            typed: table.of_type.is_some(),
            inherits,
            unlogged: table.persistence == Persistence::Unlogged,
            version,
        };
        let mut lines = Vec::new();
        let mut copy_columns = Vec::new();
        for column in &table.columns {
            if context.inherits && !column.local {
                // Inherited: the parent's CREATE brings it; only what the child changed on
                // it is set here (its default, a NOT NULL of its own).
                inherited_column(column, &q, &mut written);
            } else {
                let line = column_definition(column, &context, identity, &mut written);
                if !context.typed || !line.ends_with(" WITH OPTIONS") {
                    lines.push(line);
                }
            }
            if column.generated == Generated::None {
                copy_columns.push(column.q.clone());
            }
            column_settings(column, &q, &mut written.after);
        }
        catalog.items.append(&mut written.items);
        catalog.items.push(
            Item::new(
                ItemKind::Table,
                &table.header.schema,
                &table.header.name,
                create_table(&table, &lines, &written.after),
            )
            .owning(written.owns)
            .of_table(&q),
        );
        catalog.items.extend(
            table
                .header
                .acl_item("TABLE", object)
                .map(|item| item.of_table(&q)),
        );
        let properties = table_properties(&table);
        if !properties.is_empty() {
            catalog.items.push(
                Item::new(
                    ItemKind::TableProperties,
                    &table.header.schema,
                    &table.header.name,
                    properties,
                )
                .needing([object])
                .of_table(&q),
            );
        }
        if let Some(partition) = &table.partition_of {
            catalog.items.push(
                Item::new(
                    ItemKind::PartitionAttach,
                    &table.header.schema,
                    &table.header.name,
                    format!(
                        "ALTER TABLE ONLY {} ATTACH PARTITION {q} {};\n",
                        partition.parent_name, partition.bound
                    ),
                )
                .needing([object, oid_ref(class::PG_CLASS, partition.parent)])
                .of_table(&q),
            );
        }
        // A partitioned table holds no rows of its own; a foreign table's live elsewhere.
        if table.kind == TableKind::Ordinary {
            catalog.tables.push(DataTable {
                oid,
                schema: table.header.schema.clone(),
                name: table.header.name.clone(),
                qualified_name: q.clone(),
                columns: copy_columns,
                bytes: table.bytes,
                pages: table.pages,
                extension_rows: None,
            });
        }
        catalog.relations.insert(
            oid,
            Relation {
                schema: table.header.schema,
                name: table.header.name,
                qualified_name: q,
                kind: table.kind.code().to_string(),
                inherits,
            },
        );
    }
}

/// The table's `CREATE` from its column `lines`, followed by `after` (what its columns set
/// once it exists), its owner and its comment.
fn create_table(table: &Table, lines: &[String], after: &str) -> Sql {
    let q = &table.header.q;
    let unlogged = table.persistence.create_word();
    let mut sql = match (&table.of_type, lines.is_empty()) {
        (Some(of_type), true) => format!("CREATE {unlogged}TABLE {q} OF {of_type}"),
        (Some(of_type), false) => format!(
            "CREATE {unlogged}TABLE {q} OF {of_type} (\n{}\n)",
            lines.join(",\n")
        ),
        (None, _) if table.kind == TableKind::Foreign => {
            format!("CREATE FOREIGN TABLE {q} (\n{}\n)", lines.join(",\n"))
        }
        (None, _) => format!("CREATE {unlogged}TABLE {q} (\n{}\n)", lines.join(",\n")),
    };
    if let Some(parents) = &table.inherits_from {
        sql.push_str(&format!("\nINHERITS ({parents})"));
    }
    if let Some(key) = &table.partition_key {
        sql.push_str(&format!("\nPARTITION BY {key}"));
    }
    if let Some(foreign) = &table.foreign {
        sql.push_str(&format!("\nSERVER {}", foreign.server));
        sql.push_str(&options_text(foreign.options.as_deref()));
    }
    if let Some(am) = &table.access_method {
        sql.push_str(&format!(" USING {am}"));
    }
    if let Some(options) = &table.options {
        sql.push_str(&format!(" WITH ({options})"));
    }
    sql.push_str(";\n");
    sql.push_str(after);
    let mut sql = Sql::from(sql);
    if let Some(owner) = &table.header.owner {
        sql.owner(&format!("TABLE {q}"), owner);
    }
    let word = if table.kind == TableKind::Foreign {
        "FOREIGN TABLE"
    } else {
        "TABLE"
    };
    sql.push_str(&comment_sql(
        &format!("{word} {q}"),
        table.header.comment.clone(),
    ));
    sql
}

/// What a table sets after its creation: row level security, a replica identity other than
/// its default.
fn table_properties(table: &Table) -> String {
    let q = &table.header.q;
    let mut properties = String::new();
    if table.row_security {
        properties.push_str(&format!("ALTER TABLE {q} ENABLE ROW LEVEL SECURITY;\n"));
    }
    if table.force_row_security {
        properties.push_str(&format!("ALTER TABLE {q} FORCE ROW LEVEL SECURITY;\n"));
    }
    // A foreign table has no replica identity (it reads as NOTHING).
    match table.replica_identity {
        _ if table.kind == TableKind::Foreign => {}
        ReplicaIdentity::Full => {
            properties.push_str(&format!("ALTER TABLE ONLY {q} REPLICA IDENTITY FULL;\n"))
        }
        ReplicaIdentity::Nothing => {
            properties.push_str(&format!("ALTER TABLE ONLY {q} REPLICA IDENTITY NOTHING;\n"))
        }
        ReplicaIdentity::Default | ReplicaIdentity::Index => {}
    }
    properties
}

#[cfg(test)]
mod tests {
    use super::super::columns::{ColumnDefault, Identity, NotNull, NotNullConstraint};
    use super::super::model::tests::header;
    use super::super::sequences::IdentitySequence;
    use super::*;
    use crate::acl::Grant;

    const V14: ServerVersion = ServerVersion(140_018);
    const V17: ServerVersion = ServerVersion(170_006);
    const V18: ServerVersion = ServerVersion(180_001);

    fn table(q: &str, columns: Vec<Column>) -> Table {
        let mut header = header(q, Some("app"));
        header.oid = 16_500;
        Table {
            header,
            rowtype: 16_502,
            rowtype_array: Some(16_501),
            columns,
            ..Table::default()
        }
    }

    fn column(attnum: i16, q: &str, type_name: &str) -> Column {
        Column {
            attnum,
            q: q.into(),
            type_name: type_name.into(),
            local: true,
            ..Column::default()
        }
    }

    fn dumped(tables: Vec<Table>, identity: &IdentitySequences, version: ServerVersion) -> Catalog {
        let mut catalog = Catalog::default();
        dump(tables, identity, version, &mut catalog);
        catalog
    }

    #[test]
    fn a_table_is_its_columns_then_what_they_set_its_owner_and_comment() {
        let mut id = column(1, "id", "bigint");
        id.default = Some(ColumnDefault {
            oid: 16_503,
            expr: "nextval('app.t_id_seq'::regclass)".into(),
        });
        id.not_null = NotNull::Plain;
        let mut name = column(2, "name", "text");
        name.collation = Some("pg_catalog.\"C\"".into());
        name.storage = Some("EXTERNAL".into());
        name.statistics_target = Some(500);
        name.compression = Some("lz4".into());
        name.options = Some("n_distinct=100".into());
        name.comment = Some("it's".into());
        let mut total = column(3, "total", "numeric");
        total.generated = Generated::Stored;
        total.default = Some(ColumnDefault {
            oid: 16_504,
            expr: "(id * 2)".into(),
        });
        let mut t = table("app.t", vec![id, name, total]);
        t.header.comment = Some("orders".into());
        t.options = Some("fillfactor=70, toast.autovacuum_enabled=false".into());
        t.access_method = Some("heap2".into());
        let catalog = dumped(vec![t], &IdentitySequences::new(), V17);
        assert_eq!(catalog.items.len(), 1);
        let item = &catalog.items[0];
        assert_eq!(
            item.sql,
            "CREATE TABLE app.t (\n    id bigint DEFAULT nextval('app.t_id_seq'::regclass) NOT NULL,\n    \
             name text COLLATE pg_catalog.\"C\",\n    total numeric GENERATED ALWAYS AS ((id * 2)) STORED\n) \
             USING heap2 WITH (fillfactor=70, toast.autovacuum_enabled=false);\n\
             ALTER TABLE ONLY app.t ALTER COLUMN name SET STORAGE EXTERNAL;\n\
             ALTER TABLE ONLY app.t ALTER COLUMN name SET STATISTICS 500;\n\
             ALTER TABLE ONLY app.t ALTER COLUMN name SET COMPRESSION lz4;\n\
             ALTER TABLE ONLY app.t ALTER COLUMN name SET (n_distinct=100);\n\
             COMMENT ON COLUMN app.t.name IS 'it''s';\n\
             ALTER TABLE app.t OWNER TO app;\n\
             COMMENT ON TABLE app.t IS 'orders';\n"
        );
        assert_eq!(
            item.owns,
            [
                oid_ref(class::PG_CLASS, 16_500),
                oid_ref(class::PG_TYPE, 16_502),
                oid_ref(class::PG_TYPE, 16_501),
                oid_ref(class::PG_ATTRDEF, 16_503),
                oid_ref(class::PG_ATTRDEF, 16_504),
            ]
        );
        assert_eq!(item.table.as_deref(), Some("app.t"));
        // The generated column is recomputed on load: COPY carries the others.
        assert_eq!(catalog.tables[0].columns, ["id", "name"]);
        assert_eq!(catalog.relations[&16_500].kind, "r");
    }

    #[test]
    fn privileges_properties_and_a_partition_are_items_of_their_own() {
        let mut t = table("app.events_2026", vec![column(1, "at", "date")]);
        t.header.acl = Some(vec![Grant {
            grantee: "reader".into(),
            privilege: "SELECT".into(),
            grantable: false,
            grantor: None,
        }]);
        t.row_security = true;
        t.force_row_security = true;
        t.replica_identity = ReplicaIdentity::Full;
        t.partition_of = Some(PartitionOf {
            parent: 16_400,
            parent_name: "app.events".into(),
            bound: "FOR VALUES FROM ('2026-01-01') TO ('2027-01-01')".into(),
        });
        let catalog = dumped(vec![t], &IdentitySequences::new(), V17);
        let kinds: Vec<ItemKind> = catalog.items.iter().map(|i| i.kind).collect();
        assert_eq!(
            kinds,
            [
                ItemKind::Table,
                ItemKind::Acl,
                ItemKind::TableProperties,
                ItemKind::PartitionAttach
            ]
        );
        assert_eq!(
            catalog.items[1].sql,
            "GRANT SELECT ON TABLE app.events_2026 TO reader;\n"
        );
        assert_eq!(catalog.items[1].table.as_deref(), Some("app.events_2026"));
        assert_eq!(
            catalog.items[2].sql,
            "ALTER TABLE app.events_2026 ENABLE ROW LEVEL SECURITY;\n\
             ALTER TABLE app.events_2026 FORCE ROW LEVEL SECURITY;\n\
             ALTER TABLE ONLY app.events_2026 REPLICA IDENTITY FULL;\n"
        );
        assert_eq!(
            catalog.items[3].sql,
            "ALTER TABLE ONLY app.events ATTACH PARTITION app.events_2026 \
             FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');\n"
        );
        assert_eq!(
            catalog.items[3].needs,
            [
                oid_ref(class::PG_CLASS, 16_500),
                oid_ref(class::PG_CLASS, 16_400)
            ]
        );
    }

    #[test]
    fn partitioned_and_foreign_tables_hold_no_rows_of_their_own() {
        let mut parent = table("app.events", vec![column(1, "at", "date")]);
        parent.kind = TableKind::Partitioned;
        parent.partition_key = Some("RANGE (at)".into());
        parent.persistence = Persistence::Unlogged;
        let mut remote_column = column(1, "id", "integer");
        remote_column.fdw_options = Some("column_name 'ID'".into());
        let mut remote = table("app.remote", vec![remote_column]);
        remote.header.oid = 16_600;
        remote.kind = TableKind::Foreign;
        remote.replica_identity = ReplicaIdentity::Nothing;
        remote.header.comment = Some("elsewhere".into());
        remote.foreign = Some(ForeignTable {
            server: "films".into(),
            options: Some("table_name 'remote'".into()),
        });
        let catalog = dumped(vec![parent, remote], &IdentitySequences::new(), V17);
        assert!(catalog.tables.is_empty());
        assert_eq!(
            catalog.items.len(),
            2,
            "a foreign table has no replica identity"
        );
        assert_eq!(
            catalog.items[0].sql,
            "CREATE UNLOGGED TABLE app.events (\n    at date\n)\nPARTITION BY RANGE (at);\n\
             ALTER TABLE app.events OWNER TO app;\n"
        );
        assert_eq!(
            catalog.items[1].sql,
            "CREATE FOREIGN TABLE app.remote (\n    id integer\n)\nSERVER films OPTIONS (\n    table_name 'remote'\n);\n\
             ALTER FOREIGN TABLE ONLY app.remote ALTER COLUMN id OPTIONS (\n    column_name 'ID'\n);\n\
             ALTER TABLE app.remote OWNER TO app;\n\
             COMMENT ON FOREIGN TABLE app.remote IS 'elsewhere';\n"
        );
        assert_eq!(catalog.relations[&16_600].kind, "f");
    }

    #[test]
    fn a_typed_table_writes_only_what_its_columns_add() {
        let mut status = column(1, "status", "text");
        status.default = Some(ColumnDefault {
            oid: 16_503,
            expr: "'new'::text".into(),
        });
        status.collation = Some("pg_catalog.\"C\"".into());
        let mut t = table("app.typed", vec![status, column(2, "note", "text")]);
        t.of_type = Some("app.order_row".into());
        let catalog = dumped(vec![t.clone()], &IdentitySequences::new(), V17);
        assert_eq!(
            catalog.items[0].sql,
            "CREATE TABLE app.typed OF app.order_row (\n    status WITH OPTIONS DEFAULT 'new'::text\n);\n\
             ALTER TABLE app.typed OWNER TO app;\n"
        );
        t.columns[0].default = None;
        let catalog = dumped(vec![t], &IdentitySequences::new(), V17);
        assert_eq!(
            catalog.items[0].sql,
            "CREATE TABLE app.typed OF app.order_row;\nALTER TABLE app.typed OWNER TO app;\n"
        );
    }

    #[test]
    fn an_inheritance_child_sets_only_what_it_changed_on_inherited_columns() {
        let inherited = |not_null: NotNull, parent_not_null: bool| Column {
            local: false,
            default: Some(ColumnDefault {
                oid: 16_510,
                expr: "0".into(),
            }),
            not_null,
            parent_not_null,
            ..column(1, "qty", "integer")
        };
        let mut redeclared = column(2, "total", "integer");
        redeclared.generated = Generated::Stored;
        redeclared.generated_as_parent = true;
        redeclared.default = Some(ColumnDefault {
            oid: 16_511,
            expr: "(qty * 2)".into(),
        });
        let child = |qty: Column| {
            let mut t = table("app.child", vec![qty, redeclared.clone()]);
            t.inherits_from = Some("app.parent".into());
            t
        };
        // Before 18 a NOT NULL of the child's own is one no parent has.
        let own = dumped(
            vec![child(inherited(NotNull::Plain, false))],
            &IdentitySequences::new(),
            V17,
        );
        assert_eq!(
            own.items[0].sql,
            "CREATE TABLE app.child (\n    total integer\n)\nINHERITS (app.parent);\n\
             ALTER TABLE ONLY app.child ALTER COLUMN qty SET DEFAULT 0;\n\
             ALTER TABLE ONLY app.child ALTER COLUMN qty SET NOT NULL;\n\
             ALTER TABLE app.child OWNER TO app;\n"
        );
        assert!(own.relations[&16_500].inherits);
        let parents = dumped(
            vec![child(inherited(NotNull::Plain, true))],
            &IdentitySequences::new(),
            V17,
        );
        assert!(!parents.items[0].sql.contains("SET NOT NULL"));
        // From 18 the NOT NULL is a constraint, the child's own when local.
        let constraint = |local: bool| {
            NotNull::Constraint(NotNullConstraint {
                oid: 16_520,
                name: "child_qty_not_null".into(),
                no_inherit: false,
                valid: true,
                local,
            })
        };
        for (local, set) in [(true, true), (false, false)] {
            let catalog = dumped(
                vec![child(inherited(constraint(local), true))],
                &IdentitySequences::new(),
                V18,
            );
            assert_eq!(catalog.items[0].sql.contains("SET NOT NULL"), set);
            assert!(
                catalog.items[0]
                    .owns
                    .contains(&oid_ref(class::PG_CONSTRAINT, 16_520))
            );
        }
        assert_eq!(own.tables[0].columns, ["qty"]);
    }

    #[test]
    fn not_null_constraints_of_18_are_named_and_a_not_valid_one_is_checked_after_the_data() {
        let not_null = |valid: bool, no_inherit: bool| {
            NotNull::Constraint(NotNullConstraint {
                oid: 16_520,
                name: "t_id_not_null".into(),
                no_inherit,
                valid,
                local: true,
            })
        };
        let with = |n: NotNull| {
            table(
                "app.t",
                vec![Column {
                    not_null: n,
                    ..column(1, "id", "integer")
                }],
            )
        };
        let valid = dumped(
            vec![with(not_null(true, true))],
            &IdentitySequences::new(),
            V18,
        );
        assert!(
            valid.items[0]
                .sql
                .starts_with("CREATE TABLE app.t (\n    id integer CONSTRAINT t_id_not_null NOT NULL NO INHERIT\n);\n")
        );
        let not_valid = dumped(
            vec![with(not_null(false, false))],
            &IdentitySequences::new(),
            V18,
        );
        assert_eq!(not_valid.items.len(), 2);
        assert_eq!(not_valid.items[0].kind, ItemKind::ForeignKey);
        assert_eq!(
            not_valid.items[0].sql,
            "ALTER TABLE ONLY app.t ADD CONSTRAINT t_id_not_null NOT NULL id NOT VALID;\n"
        );
        assert_eq!(not_valid.items[0].needs, [oid_ref(class::PG_CLASS, 16_500)]);
        assert!(
            not_valid.items[1]
                .sql
                .starts_with("CREATE TABLE app.t (\n    id integer\n);\n")
        );
    }

    #[test]
    fn an_identity_columns_sequence_is_named_in_its_clause_logged_as_it_was_from_15_and_keeps_its_comment()
     {
        let identity = IdentitySequences::from([(
            (16_500, 1),
            IdentitySequence {
                oid: 16_530,
                name: "app.t_id_seq".into(),
                options: "START WITH 1 INCREMENT BY 1 MINVALUE 1 MAXVALUE 9 CACHE 1 NO CYCLE"
                    .into(),
                persistence: Persistence::Permanent,
                comment: Some("ids".into()),
            },
        )]);
        let mut t = table(
            "app.t",
            vec![Column {
                identity: Identity::Always,
                not_null: NotNull::Plain,
                ..column(1, "id", "integer")
            }],
        );
        t.persistence = Persistence::Unlogged;
        let clause = "CREATE UNLOGGED TABLE app.t (\n    id integer GENERATED ALWAYS AS IDENTITY \
             (SEQUENCE NAME app.t_id_seq START WITH 1 INCREMENT BY 1 MINVALUE 1 MAXVALUE 9 CACHE 1 NO CYCLE) NOT NULL\n);\n";
        let v17 = dumped(vec![t.clone()], &identity, V17);
        assert_eq!(
            v17.items[0].sql,
            format!(
                "{clause}ALTER SEQUENCE app.t_id_seq SET LOGGED;\nCOMMENT ON SEQUENCE app.t_id_seq IS 'ids';\n\
                 ALTER TABLE app.t OWNER TO app;\n"
            )
        );
        assert!(
            v17.items[0]
                .owns
                .contains(&oid_ref(class::PG_CLASS, 16_530))
        );
        // Before 15 a sequence has no persistence of its own.
        let v14 = dumped(vec![t.clone()], &identity, V14);
        assert_eq!(
            v14.items[0].sql,
            format!(
                "{clause}COMMENT ON SEQUENCE app.t_id_seq IS 'ids';\nALTER TABLE app.t OWNER TO app;\n"
            )
        );
        t.columns[0].identity = Identity::ByDefault;
        t.persistence = Persistence::Permanent;
        let by_default = dumped(vec![t], &identity, V17);
        assert!(
            by_default.items[0]
                .sql
                .contains("GENERATED BY DEFAULT AS IDENTITY")
        );
        assert!(!by_default.items[0].sql.contains("ALTER SEQUENCE"));
    }

    #[test]
    fn a_virtual_column_is_written_with_its_expression_and_not_copied() {
        let t = table(
            "app.t",
            vec![
                column(1, "a", "integer"),
                Column {
                    generated: Generated::Virtual,
                    default: Some(ColumnDefault {
                        oid: 16_540,
                        expr: "(a + 1)".into(),
                    }),
                    ..column(2, "b", "integer")
                },
            ],
        );
        let catalog = dumped(vec![t], &IdentitySequences::new(), V18);
        assert!(
            catalog.items[0]
                .sql
                .contains("    b integer GENERATED ALWAYS AS ((a + 1)) VIRTUAL\n")
        );
        assert_eq!(catalog.tables[0].columns, ["a"]);
    }
}
