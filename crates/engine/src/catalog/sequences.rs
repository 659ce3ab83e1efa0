//! Sequences: their definitions (identity sequences go with their column) and, after the data, their values.

use std::collections::HashMap;

use super::model::{Header, Persistence};
use super::*;
use crate::sql::Sql;

/// A sequence as the catalog describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sequence {
    pub header: Header,
    pub persistence: Persistence,
    /// Its type, as `format_type` prints it (`bigint`).
    pub data_type: String,
    pub start: i64,
    pub increment: i64,
    pub min: i64,
    pub max: i64,
    pub cache: i64,
    pub cycle: bool,
    pub owned_by: OwnedBy,
}

/// The column a sequence belongs to, if any (its `pg_depend` row on a table).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OwnedBy {
    /// No column: the sequence stands on its own.
    Nothing,
    /// An identity column's sequence, created by that column's clause; `table` is the
    /// table's quoted `schema.name`.
    IdentityColumn {
        table_oid: u32,
        attnum: i16,
        table: String,
    },
    /// A column that `OWNED BY` ties the sequence to (a `serial`'s); `table` is the table's
    /// quoted `schema.name`, `column` the quoted `schema.table.column`.
    Column {
        table_oid: u32,
        table: String,
        column: String,
    },
}

impl Sequence {
    /// The table an identity sequence exists with.
    fn identity_table(&self) -> Option<&str> {
        match &self.owned_by {
            OwnedBy::IdentityColumn { table, .. } => Some(table),
            _ => None,
        }
    }

    /// Its options as `CREATE SEQUENCE` and an identity clause spell them (the clause takes
    /// its type from the column).
    fn options(&self) -> String {
        format!(
            "START WITH {} INCREMENT BY {} MINVALUE {} MAXVALUE {} CACHE {}{}",
            self.start,
            self.increment,
            self.min,
            self.max,
            self.cache,
            if self.cycle { " CYCLE" } else { " NO CYCLE" }
        )
    }
}

const SEQUENCE_COLUMNS: &str = "format_type(s.seqtypid, NULL) AS seqtype, s.seqstart, s.seqincrement, s.seqmin, \
     s.seqmax, s.seqcache, s.seqcycle";

/// An identity sequence: created by its column's clause.
#[derive(Debug, Clone)]
pub(super) struct IdentitySequence {
    pub oid: u32,
    /// Quoted `schema.name`.
    pub name: String,
    /// The clause's options (`START WITH ... CYCLE`).
    pub options: String,
    pub persistence: Persistence,
    /// Its comment: set by the table that makes the sequence.
    pub comment: Option<String>,
}

/// Identity sequences by (table oid, column number).
pub(super) type IdentitySequences = HashMap<(u32, i16), IdentitySequence>;

pub(super) async fn sequences(
    db: &Db<'_>,
    catalog: &mut Catalog,
) -> Result<IdentitySequences, CatalogError> {
    let sequences = get(db).await?;
    for sequence in &sequences {
        catalog.sequences.push(value_ref(sequence));
        catalog.items.extend(dump(sequence));
    }
    Ok(identity_sequences(&sequences))
}

/// Every user sequence (not an extension's), identity sequences included.
pub(super) async fn get(db: &Db<'_>) -> Result<Vec<Sequence>, CatalogError> {
    let sql = format!(
        "SELECT c.oid, n.nspname::text AS schema, c.relname::text AS name, quote_ident(n.nspname) || '.' || quote_ident(c.relname) AS q, \
         {SEQUENCE_COLUMNS}, c.relpersistence::text AS persistence, \
         quote_ident(pg_get_userbyid(c.relowner)) AS owner, (SELECT description FROM pg_description WHERE objoid = c.oid AND classoid = 'pg_class'::regclass AND objsubid = 0) AS comment, \
         {}, \
         d.refobjid AS owner_table, d.refobjsubid::int2 AS owner_column, d.deptype::text AS deptype, \
         quote_ident(tn.nspname) || '.' || quote_ident(tc.relname) || '.' || quote_ident(a.attname) AS owned_by, \
         quote_ident(tn.nspname) || '.' || quote_ident(tc.relname) AS owner_table_name \
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace JOIN pg_sequence s ON s.seqrelid = c.oid \
         LEFT JOIN pg_depend d ON d.classid = 'pg_class'::regclass AND d.objid = c.oid \
             AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i') \
         LEFT JOIN pg_class tc ON tc.oid = d.refobjid LEFT JOIN pg_namespace tn ON tn.oid = tc.relnamespace \
         LEFT JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid \
         WHERE c.relkind = 'S' AND c.oid >= 16384 AND {USER_SCHEMA} AND {}",
        acl_columns("c.relacl", "c.relowner", 's'),
        not_in_extension("pg_class", "c.oid")
    );
    let mut sequences = Vec::new();
    for row in db.query("sequences", &sql).await? {
        let owned_by = match (
            row.get::<Option<String>>("deptype")?.as_deref(),
            row.get::<Option<String>>("owned_by")?,
        ) {
            (Some("i"), _) => OwnedBy::IdentityColumn {
                table_oid: row.get("owner_table")?,
                attnum: row.get("owner_column")?,
                table: row.get("owner_table_name")?,
            },
            (_, Some(column)) => OwnedBy::Column {
                table_oid: row.get("owner_table")?,
                table: row.get("owner_table_name")?,
                column,
            },
            _ => OwnedBy::Nothing,
        };
        let header = Header::of(row.schema_object()?, row.get("owner")?, row.get("comment")?);
        sequences.push(Sequence {
            header: header.with_acl(&row)?,
            persistence: Persistence::from_code(&row.get::<String>("persistence")?),
            data_type: row.get("seqtype")?,
            start: row.get("seqstart")?,
            increment: row.get("seqincrement")?,
            min: row.get("seqmin")?,
            max: row.get("seqmax")?,
            cache: row.get("seqcache")?,
            cycle: row.get("seqcycle")?,
            owned_by,
        });
    }
    Ok(sequences)
}

/// The items of `sequence`: its grants, then (unless an identity column creates it) its
/// `CREATE SEQUENCE` and the column it is `OWNED BY`. An identity sequence's grants go with
/// its table.
pub(super) fn dump(sequence: &Sequence) -> Vec<Item> {
    let header = &sequence.header;
    let q = &header.q;
    let object = oid_ref(class::PG_CLASS, header.oid);
    let mut items: Vec<Item> = header
        .acl_item("SEQUENCE", object)
        .map(|acl| match sequence.identity_table() {
            Some(table) => acl.of_table(table),
            None => acl,
        })
        .into_iter()
        .collect();
    if sequence.identity_table().is_some() {
        return items;
    }
    let mut sql = Sql::from(format!(
        "CREATE {}SEQUENCE {q} AS {} {};\n",
        sequence.persistence.create_word(),
        sequence.data_type,
        sequence.options()
    ));
    sql.append(header.tail("SEQUENCE"));
    items.push(Item::new(ItemKind::Sequence, &header.schema, &header.name, sql).owning([object]));
    if let OwnedBy::Column {
        table_oid,
        table,
        column,
    } = &sequence.owned_by
    {
        items.push(
            Item::new(
                ItemKind::SequenceOwnedBy,
                &header.schema,
                &header.name,
                format!("ALTER SEQUENCE {q} OWNED BY {column};\n"),
            )
            .needing([object, oid_ref(class::PG_CLASS, *table_oid)])
            .of_table(table),
        );
    }
    items
}

/// The sequence as its value is read after the data.
fn value_ref(sequence: &Sequence) -> SequenceRef {
    let header = &sequence.header;
    SequenceRef {
        oid: header.oid,
        schema: header.schema.clone(),
        name: header.name.clone(),
        qualified_name: header.q.clone(),
        identity_of: sequence.identity_table().map(str::to_string),
        of_extension: None,
    }
}

/// The identity sequences among `sequences`, by their column, as the tables' identity
/// clauses name them.
fn identity_sequences(sequences: &[Sequence]) -> IdentitySequences {
    let mut identity = IdentitySequences::new();
    for sequence in sequences {
        if let OwnedBy::IdentityColumn {
            table_oid, attnum, ..
        } = sequence.owned_by
        {
            identity.insert(
                (table_oid, attnum),
                IdentitySequence {
                    oid: sequence.header.oid,
                    name: sequence.header.q.clone(),
                    options: sequence.options(),
                    persistence: sequence.persistence,
                    comment: sequence.header.comment.clone(),
                },
            );
        }
    }
    identity
}

/// How many sequences one `pg_sequence_last_value` statement reads (and locks).
const SEQUENCE_VALUES_PER_QUERY: usize = 250;

/// Reads the current value of each sequence (not snapshot-consistent: call once the snapshot
/// is taken, and the value is at least what the backed-up rows used). A query per 250 gives
/// every sequence that was used (`pg_sequence_last_value`); those it cannot (never called, or
/// reset with `setval(..., false)`) are read themselves, 250 a query. Each query is a
/// transaction of its own on an autocommit session, so the locks it takes end with it.
pub async fn sequence_values(
    db: &Db<'_>,
    sequences: &[SequenceRef],
) -> Result<Vec<Item>, CatalogError> {
    let oids: Vec<String> = sequences.iter().map(|s| s.oid.to_string()).collect();
    let mut values: HashMap<u32, (i64, bool)> = HashMap::new();
    // A statement per chunk: reading a sequence locks it until the statement's transaction
    // ends (see `backup::run`, which reads them on a session of their own).
    for chunk in oids.chunks(SEQUENCE_VALUES_PER_QUERY) {
        let sql = format!(
            "SELECT s AS oid, pg_sequence_last_value(s) AS last_value \
             FROM unnest('{{{}}}'::oid[]) AS s",
            chunk.join(",")
        );
        for row in db.query("sequence values", &sql).await? {
            if let Some(value) = row.get::<Option<i64>>("last_value")? {
                values.insert(row.get("oid")?, (value, true));
            }
        }
    }
    let unread: Vec<&SequenceRef> = sequences
        .iter()
        .filter(|s| !values.contains_key(&s.oid))
        .collect();
    for chunk in unread.chunks(SEQUENCES_PER_QUERY) {
        let sql = chunk
            .iter()
            .map(|sequence| {
                format!(
                    "SELECT {}::int8 AS oid, last_value, is_called FROM {}",
                    sequence.oid, sequence.qualified_name
                )
            })
            .collect::<Vec<_>>()
            .join(" UNION ALL ");
        for row in db.query("sequence values", &sql).await? {
            let oid: i64 = row.get("oid")?;
            values.insert(oid as u32, (row.get("last_value")?, row.get("is_called")?));
        }
    }
    let mut items = Vec::with_capacity(sequences.len());
    for sequence in sequences {
        let Some((value, called)) = values.get(&sequence.oid) else {
            continue;
        };
        let sql = format!(
            "SELECT pg_catalog.setval({}, {value}, {called});\n",
            literal(&sequence.qualified_name)
        );
        let item = Item::new(
            ItemKind::SequenceValue,
            &sequence.schema,
            &sequence.name,
            sql,
        )
        .needing([oid_ref(class::PG_CLASS, sequence.oid)]);
        items.push(match &sequence.identity_of {
            Some(table) => item.of_table(table),
            None => item,
        });
    }
    Ok(items)
}

/// Sequences read per `UNION ALL` query.
const SEQUENCES_PER_QUERY: usize = 250;

#[cfg(test)]
mod tests {
    use super::super::model::tests::header;
    use super::*;
    use crate::acl::Grant;

    fn sequence(owned_by: OwnedBy) -> Sequence {
        Sequence {
            header: header("app.\"Order_seq\"", Some("app")),
            persistence: Persistence::Permanent,
            data_type: "bigint".into(),
            start: 1,
            increment: 1,
            min: 1,
            max: i64::MAX,
            cache: 1,
            cycle: false,
            owned_by,
        }
    }

    fn reader_may_use() -> Option<Vec<Grant>> {
        Some(vec![Grant {
            grantee: "reader".into(),
            privilege: "USAGE".into(),
            grantable: false,
            grantor: None,
        }])
    }

    #[test]
    fn a_sequence_of_its_own_with_its_owner_and_comment() {
        let mut standalone = sequence(OwnedBy::Nothing);
        standalone.header.comment = Some("order numbers".into());
        let items = dump(&standalone);
        assert_eq!(items.len(), 1);
        assert_eq!(
            items[0].sql,
            "CREATE SEQUENCE app.\"Order_seq\" AS bigint START WITH 1 INCREMENT BY 1 MINVALUE 1 \
             MAXVALUE 9223372036854775807 CACHE 1 NO CYCLE;\n\
             ALTER SEQUENCE app.\"Order_seq\" OWNER TO app;\n\
             COMMENT ON SEQUENCE app.\"Order_seq\" IS 'order numbers';\n"
        );
        assert_eq!(items[0].kind, ItemKind::Sequence);
        assert_eq!(
            (items[0].schema.as_str(), items[0].name.as_str()),
            ("app", "Order_seq")
        );
        assert_eq!(items[0].owns, [oid_ref(class::PG_CLASS, 16_400)]);
        assert_eq!(items[0].table, None);
        assert!(
            items[0]
                .marks
                .iter()
                .any(|m| m.is == crate::sql::Marked::OwnerChange)
        );
        assert!(identity_sequences(&[standalone]).is_empty());
    }

    #[test]
    fn an_unlogged_cycling_sequence() {
        let mut unlogged = sequence(OwnedBy::Nothing);
        unlogged.persistence = Persistence::Unlogged;
        unlogged.data_type = "smallint".into();
        (unlogged.start, unlogged.increment) = (100, -5);
        (unlogged.min, unlogged.max, unlogged.cache) = (-32768, 100, 20);
        unlogged.cycle = true;
        assert_eq!(
            dump(&unlogged)[0].sql,
            "CREATE UNLOGGED SEQUENCE app.\"Order_seq\" AS smallint START WITH 100 INCREMENT BY -5 \
             MINVALUE -32768 MAXVALUE 100 CACHE 20 CYCLE;\n\
             ALTER SEQUENCE app.\"Order_seq\" OWNER TO app;\n"
        );
    }

    #[test]
    fn a_serial_sequence_is_owned_by_its_column_after_its_grants() {
        let mut serial = sequence(OwnedBy::Column {
            table_oid: 16_390,
            table: "app.orders".into(),
            column: "app.orders.id".into(),
        });
        serial.header.acl = reader_may_use();
        let items = dump(&serial);
        assert_eq!(items.len(), 3);
        assert_eq!(
            (
                items[0].kind,
                items[0].sql.as_str(),
                items[0].table.as_deref()
            ),
            (
                ItemKind::Acl,
                "GRANT USAGE ON SEQUENCE app.\"Order_seq\" TO reader;\n",
                None
            )
        );
        assert_eq!(items[1].kind, ItemKind::Sequence);
        let owned_by = &items[2];
        assert_eq!(owned_by.kind, ItemKind::SequenceOwnedBy);
        assert_eq!(
            owned_by.sql,
            "ALTER SEQUENCE app.\"Order_seq\" OWNED BY app.orders.id;\n"
        );
        assert_eq!(
            owned_by.needs,
            [
                oid_ref(class::PG_CLASS, 16_400),
                oid_ref(class::PG_CLASS, 16_390)
            ]
        );
        assert_eq!(owned_by.table.as_deref(), Some("app.orders"));
        assert!(owned_by.owns.is_empty());
        assert_eq!(value_ref(&serial).identity_of, None);
    }

    #[test]
    fn an_identity_sequence_is_made_by_its_column_and_granted_with_its_table() {
        let mut identity = sequence(OwnedBy::IdentityColumn {
            table_oid: 16_390,
            attnum: 2,
            table: "app.orders".into(),
        });
        identity.header.comment = Some("order ids".into());
        assert!(dump(&identity).is_empty(), "default privileges: no item");
        identity.header.acl = reader_may_use();
        let items = dump(&identity);
        assert_eq!(items.len(), 1);
        assert_eq!(
            items[0].sql,
            "GRANT USAGE ON SEQUENCE app.\"Order_seq\" TO reader;\n"
        );
        assert_eq!(items[0].table.as_deref(), Some("app.orders"));
        assert_eq!(items[0].needs, [oid_ref(class::PG_CLASS, 16_400)]);

        let value = value_ref(&identity);
        assert_eq!(value.identity_of.as_deref(), Some("app.orders"));
        assert_eq!(value.qualified_name, "app.\"Order_seq\"");

        identity.persistence = Persistence::Unlogged;
        let by_column = identity_sequences(&[identity]);
        let clause = &by_column[&(16_390, 2)];
        assert_eq!(
            (clause.oid, clause.name.as_str(), clause.persistence),
            (16_400, "app.\"Order_seq\"", Persistence::Unlogged)
        );
        assert_eq!(
            clause.options,
            "START WITH 1 INCREMENT BY 1 MINVALUE 1 MAXVALUE 9223372036854775807 CACHE 1 NO CYCLE"
        );
    }
}
