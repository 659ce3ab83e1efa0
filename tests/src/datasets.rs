//! Datasets the tests and `make bench` build.

/// `tenants` schemas of ten tables each: a key, a foreign key to the previous table, an index
/// and 20 rows per table (the shape of a multi-tenant SaaS database).
pub fn tenant_schemas(tenants: usize) -> String {
    (1..=tenants)
        .map(|s| {
            format!(
                "DO $$ DECLARE t int; BEGIN CREATE SCHEMA tenant_{s}; FOR t IN 1..10 LOOP \
                 EXECUTE format('CREATE TABLE tenant_{s}.t%s (id serial PRIMARY KEY, parent int %s, label text, \
                     created_at timestamptz DEFAULT now())', t, \
                     CASE WHEN t > 1 THEN format('REFERENCES tenant_{s}.t%s', t - 1) ELSE '' END); \
                 EXECUTE format('CREATE INDEX ON tenant_{s}.t%s (label)', t); \
                 EXECUTE format('INSERT INTO tenant_{s}.t%s (parent, label) SELECT %s, ''row '' || g \
                     FROM generate_series(1, 20) g', t, CASE WHEN t > 1 THEN 'g' ELSE 'NULL' END); \
                 END LOOP; END $$;\n"
            )
        })
        .collect()
}
