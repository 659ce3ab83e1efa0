//! Sequences: their definitions (identity sequences go with their column) and, after the data, their values.

use std::collections::HashMap;

use super::*;
use crate::sql::Sql;

/// Options of a sequence as an identity clause spells them (its type is the column's).
fn sequence_options(row: &Fields) -> Result<String, CatalogError> {
    Ok(format!(
        "START WITH {} INCREMENT BY {} MINVALUE {} MAXVALUE {} CACHE {}{}",
        row.get::<i64>("seqstart")?,
        row.get::<i64>("seqincrement")?,
        row.get::<i64>("seqmin")?,
        row.get::<i64>("seqmax")?,
        row.get::<i64>("seqcache")?,
        if row.get::<bool>("seqcycle")? {
            " CYCLE"
        } else {
            " NO CYCLE"
        }
    ))
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
    /// `relpersistence`: `u` when unlogged.
    pub persistence: String,
}

/// Identity sequences by (table oid, column number).
pub(super) type IdentitySequences = HashMap<(u32, i16), IdentitySequence>;

pub(super) async fn sequences(
    db: &Db<'_>,
    catalog: &mut Catalog,
) -> Result<IdentitySequences, CatalogError> {
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
    let mut identity = IdentitySequences::new();
    for row in db.query("sequences", &sql).await? {
        let SchemaObject {
            oid,
            schema,
            name,
            q,
        } = row.schema_object()?;
        let owner: String = row.get("owner")?;
        let object = oid_ref(class::PG_CLASS, oid);
        let identity_of = if row.get::<Option<String>>("deptype")?.as_deref() == Some("i") {
            row.get::<Option<String>>("owner_table_name")?
        } else {
            None
        };
        catalog.sequences.push(SequenceRef {
            oid,
            schema: schema.clone(),
            name: name.clone(),
            qualified_name: q.clone(),
            identity_of: identity_of.clone(),
            of_extension: None,
        });
        catalog.items.extend(acl_item(
            &schema,
            &name,
            &format!("SEQUENCE {q}"),
            object,
            &row,
            identity_of.as_deref(),
        )?);
        if row.get::<Option<String>>("deptype")?.as_deref() == Some("i") {
            let key = (
                row.get::<u32>("owner_table")?,
                row.get::<i16>("owner_column")?,
            );
            identity.insert(
                key,
                IdentitySequence {
                    oid,
                    name: q,
                    options: sequence_options(&row)?,
                    persistence: row.get("persistence")?,
                },
            );
            continue;
        }
        let unlogged = if row.get::<String>("persistence")? == "u" {
            "UNLOGGED "
        } else {
            ""
        };
        let mut sql = Sql::from(format!(
            "CREATE {unlogged}SEQUENCE {q} AS {} {};\n",
            row.get::<String>("seqtype")?,
            sequence_options(&row)?
        ));
        sql.owner(&format!("SEQUENCE {q}"), &owner);
        sql.push_str(&comment_sql(&format!("SEQUENCE {q}"), row.get("comment")?));
        catalog
            .items
            .push(Item::new(ItemKind::Sequence, &schema, &name, sql).owning([object]));
        if let Some(owned_by) = row.get::<Option<String>>("owned_by")? {
            let table = oid_ref(class::PG_CLASS, row.get("owner_table")?);
            catalog.items.push(
                Item::new(
                    ItemKind::SequenceOwnedBy,
                    &schema,
                    &name,
                    format!("ALTER SEQUENCE {q} OWNED BY {owned_by};\n"),
                )
                .needing([object, table])
                .of_table(&row.get::<String>("owner_table_name")?),
            );
        }
    }
    Ok(identity)
}

/// How many sequences one `pg_sequence_last_value` statement reads (and locks).
const SEQUENCE_VALUES_PER_QUERY: usize = 1000;

/// Reads the current value of each sequence (not snapshot-consistent: call after the data).
/// A query per thousand gives every sequence that was used (`pg_sequence_last_value`); those
/// it cannot (never called, or reset with `setval(..., false)`) are read themselves, a few
/// hundred a query. Each query is a transaction of its own on an autocommit session, so the
/// locks it takes end with it.
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
const SEQUENCES_PER_QUERY: usize = 500;
