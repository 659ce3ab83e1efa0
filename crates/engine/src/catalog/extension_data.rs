//! The data of extension configuration tables (`pg_extension_config_dump`), as pg_dump's
//! `processExtensionTables` finds it: the extension recreates the table and its own rows, so
//! only the rows its condition selects (e.g. PostGIS's `spatial_ref_sys` entries an application
//! added) are the database's, and configuration sequences keep their values.

use super::*;

pub(super) async fn extension_data(db: &Db<'_>, catalog: &mut Catalog) -> Result<(), CatalogError> {
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
    for row in db.query("extension configuration tables", sql).await? {
        let SchemaObject {
            oid,
            schema,
            name,
            q,
        } = row.schema_object()?;
        if row.get::<String>("kind")? == "S" {
            catalog.sequences.push(SequenceRef {
                oid,
                schema,
                name,
                qualified_name: q,
                identity_of: None,
                of_extension: Some(row.get("extension")?),
            });
            continue;
        }
        catalog.tables.push(DataTable {
            oid,
            schema,
            name,
            qualified_name: q,
            columns: row
                .get::<Option<Vec<String>>>("columns")?
                .unwrap_or_default(),
            bytes: row.get::<i64>("bytes")?.max(0) as u64,
            pages: row.get::<i64>("pages")?.max(0) as u64,
            extension_rows: Some(ExtensionRows {
                extension: row.get("extension")?,
                condition: row.get("condition")?,
            }),
        });
    }
    Ok(())
}
