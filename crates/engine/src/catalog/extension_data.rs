//! The data of extension configuration tables (`pg_extension_config_dump`), as pg_dump's
//! `processExtensionTables` finds it: the extension recreates the table and its own rows, so
//! only the rows its condition selects (e.g. PostGIS's `spatial_ref_sys` entries an application
//! added) are the database's, and configuration sequences keep their values.

use super::model::Header;
use super::*;

/// A relation an extension marked as configuration, as the catalog describes it (`header.q`
/// is its quoted, schema-qualified name; no owner).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtensionConfig {
    pub header: Header,
    /// The extension (`pg_extension` OID).
    pub extension: u32,
    pub relation: ConfigRelation,
}

/// What kind of configuration relation it is, with what its data needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigRelation {
    Table {
        /// `WHERE ...` selecting the database's own rows, or empty for every row.
        condition: String,
        /// The columns COPY carries, quoted (not the generated ones).
        columns: Vec<String>,
        bytes: u64,
        pages: u64,
    },
    /// A sequence, whose value is the database's.
    Sequence,
}

pub(super) async fn extension_data(db: &Db<'_>, catalog: &mut Catalog) -> Result<(), CatalogError> {
    let (tables, sequences) = dump(&get(db).await?);
    catalog.tables.extend(tables);
    catalog.sequences.extend(sequences);
    Ok(())
}

/// Every configuration table and sequence of every extension, by schema and name.
pub(super) async fn get(db: &Db<'_>) -> Result<Vec<ExtensionConfig>, CatalogError> {
    let sql = "SELECT c.oid, n.nspname::text AS schema, c.relname::text AS name, \
               quote_ident(n.nspname) || '.' || quote_ident(c.relname) AS q, c.relkind::text AS kind, \
               x.extension, coalesce(x.extcondition[x.ord], '') AS condition, \
               (SELECT array_agg(quote_ident(a.attname) ORDER BY a.attnum) FROM pg_attribute a \
                   WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped \
                   AND a.attgenerated = '') AS columns, \
               pg_relation_size(c.oid) AS bytes, \
               (pg_relation_size(c.oid) / current_setting('block_size')::int8) AS pages \
               FROM (SELECT e.oid AS extension, e.extcondition, u.config, u.ord FROM pg_extension e, \
                     unnest(e.extconfig) WITH ORDINALITY AS u(config, ord)) x \
               JOIN pg_class c ON c.oid = x.config JOIN pg_namespace n ON n.oid = c.relnamespace \
               WHERE c.relkind IN ('r', 'S') ORDER BY n.nspname, c.relname";
    let mut configs = Vec::new();
    for row in db.query("extension configuration tables", sql).await? {
        let relation = if row.get::<String>("kind")? == "S" {
            ConfigRelation::Sequence
        } else {
            ConfigRelation::Table {
                condition: row.get("condition")?,
                columns: row
                    .get::<Option<Vec<String>>>("columns")?
                    .unwrap_or_default(),
                bytes: row.get::<i64>("bytes")?.max(0) as u64,
                pages: row.get::<i64>("pages")?.max(0) as u64,
            }
        };
        configs.push(ExtensionConfig {
            header: Header::of(row.schema_object()?, None, None),
            extension: row.get("extension")?,
            relation,
        });
    }
    Ok(configs)
}

/// The tables whose selected rows are copied, and the sequences whose values are read.
pub(super) fn dump(configs: &[ExtensionConfig]) -> (Vec<DataTable>, Vec<SequenceRef>) {
    let (mut tables, mut sequences) = (Vec::new(), Vec::new());
    for ExtensionConfig {
        header,
        extension,
        relation,
    } in configs
    {
        match relation {
            ConfigRelation::Sequence => sequences.push(SequenceRef {
                oid: header.oid,
                schema: header.schema.clone(),
                name: header.name.clone(),
                qualified_name: header.q.clone(),
                identity_of: None,
                of_extension: Some(*extension),
            }),
            ConfigRelation::Table {
                condition,
                columns,
                bytes,
                pages,
            } => tables.push(DataTable {
                oid: header.oid,
                schema: header.schema.clone(),
                name: header.name.clone(),
                qualified_name: header.q.clone(),
                columns: columns.clone(),
                bytes: *bytes,
                pages: *pages,
                extension_rows: Some(ExtensionRows {
                    extension: *extension,
                    condition: condition.clone(),
                }),
            }),
        }
    }
    (tables, sequences)
}

#[cfg(test)]
mod tests {
    use super::super::model::tests::header;
    use super::*;

    fn table(q: &str, condition: &str) -> ExtensionConfig {
        ExtensionConfig {
            header: header(q, None),
            extension: 16_450,
            relation: ConfigRelation::Table {
                condition: condition.into(),
                columns: vec!["srid".into(), "\"Text\"".into()],
                bytes: 16_384,
                pages: 2,
            },
        }
    }

    #[test]
    fn a_tables_rows_are_those_its_condition_selects() {
        let (tables, sequences) = dump(&[
            table("public.spatial_ref_sys", "WHERE NOT builtin"),
            table("app.settings", ""),
        ]);
        assert!(sequences.is_empty());
        let [spatial, settings] = &tables[..] else {
            panic!("two tables: {tables:?}");
        };
        assert_eq!(
            (
                spatial.oid,
                spatial.schema.as_str(),
                spatial.name.as_str(),
                spatial.qualified_name.as_str()
            ),
            (
                16_400,
                "public",
                "spatial_ref_sys",
                "public.spatial_ref_sys"
            )
        );
        assert_eq!(spatial.columns, ["srid", "\"Text\""]);
        assert_eq!((spatial.bytes, spatial.pages), (16_384, 2));
        let rows = spatial.extension_rows.as_ref().unwrap();
        assert_eq!(
            (rows.extension, rows.condition.as_str()),
            (16_450, "WHERE NOT builtin")
        );
        assert_eq!(
            settings.extension_rows.as_ref().unwrap().condition,
            "",
            "every row"
        );
    }

    #[test]
    fn a_sequence_keeps_its_value_as_its_extensions() {
        let sequence = ExtensionConfig {
            relation: ConfigRelation::Sequence,
            ..table("app.\"Ids\"", "")
        };
        let (tables, sequences) = dump(&[sequence]);
        assert!(tables.is_empty());
        let sequence = &sequences[0];
        assert_eq!(
            (
                sequence.schema.as_str(),
                sequence.name.as_str(),
                sequence.qualified_name.as_str()
            ),
            ("app", "Ids", "app.\"Ids\"")
        );
        assert_eq!(
            (sequence.identity_of.as_deref(), sequence.of_extension),
            (None, Some(16_450))
        );
    }
}
