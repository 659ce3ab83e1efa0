//! Whether a database role can do what Backstop asks of it: read every table and sequence
//! (backup), without row-level security filtering rows away, see every session (health), and
//! create scratch databases (restore verification). Used by `backstop doctor`.

use serde::Serialize;
use tokio_postgres::{Client, SimpleQueryMessage};

use crate::pg::describe;
use crate::version::ServerVersion;

/// The statements that let `role` read everything: `pg_read_all_data` from 14, before that
/// schema by schema (tables and sequences created later need the same grants again).
pub fn read_everything_fix(readiness: &RoleReadiness) -> String {
    let role = &crate::engine::catalog::ident(&readiness.role);
    if readiness.server_version.at_least(14) {
        return format!("GRANT pg_read_all_data TO {role};");
    }
    readiness
        .unreadable_schemas
        .iter()
        .map(|s| {
            format!(
                "GRANT USAGE ON SCHEMA {s} TO {role}; GRANT SELECT ON ALL TABLES IN SCHEMA {s} TO {role}; \
                 GRANT SELECT ON ALL SEQUENCES IN SCHEMA {s} TO {role};"
            )
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// What the connected role may do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RoleReadiness {
    pub role: String,
    /// The server's version (`server_version_num`).
    pub server_version: ServerVersion,
    pub superuser: bool,
    /// Tables, views and sequences (and schemas) the role cannot read.
    pub unreadable: Vec<String>,
    /// The schemas those are in (quoted).
    pub unreadable_schemas: Vec<String>,
    /// Tables whose rows row-level security would hide from the role.
    pub filtered_by_rls: Vec<String>,
    pub relations: usize,
    /// Member of `pg_monitor` (or superuser): sees every session for the health checks.
    pub monitor: bool,
    /// May `CREATE DATABASE` (for restore verification's scratch databases).
    pub create_database: bool,
}

async fn rows(client: &Client, sql: &str) -> Result<Vec<Vec<String>>, String> {
    let messages = client.simple_query(sql).await.map_err(|e| describe(&e))?;
    Ok(messages
        .into_iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(row) => Some(
                (0..row.len())
                    .map(|i| row.get(i).unwrap_or_default().to_string())
                    .collect(),
            ),
            _ => None,
        })
        .collect())
}

/// Checks the role `client` is connected as.
pub async fn check_role(client: &Client) -> Result<RoleReadiness, String> {
    let version = rows(client, "SHOW server_version_num").await?;
    let server_version = version
        .first()
        .and_then(|r| r.first())
        .and_then(|v| v.parse().ok())
        .map(ServerVersion)
        .ok_or("the server did not say its version (SHOW server_version_num)")?;
    let role = rows(
        client,
        "SELECT current_user, r.rolsuper::text, r.rolbypassrls::text, r.rolcreatedb::text,
                pg_has_role(current_user, 'pg_monitor', 'MEMBER')::text
           FROM pg_roles r WHERE r.rolname = current_user",
    )
    .await?;
    let role = role.first().cloned().unwrap_or_default();
    let flag = |i: usize| role.get(i).is_some_and(|v| v == "true");
    let (superuser, bypass_rls) = (flag(1), flag(2));
    let relations = rows(
        client,
        "SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname),
                (has_schema_privilege(n.oid, 'USAGE') AND has_table_privilege(c.oid, 'SELECT'))::text,
                (c.relrowsecurity AND NOT pg_has_role(c.relowner, 'USAGE'))::text,
                quote_ident(n.nspname)
           FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE c.relkind IN ('r', 'p', 'S', 'm')
            AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%'
          ORDER BY 1",
    )
    .await?;
    let cell = |r: &[String], i: usize| r.get(i).cloned().unwrap_or_default();
    let unreadable_rows: Vec<&Vec<String>> = relations
        .iter()
        .filter(|r| r.get(1).is_some_and(|v| v != "true"))
        .collect();
    let unreadable = unreadable_rows.iter().map(|r| cell(r, 0)).collect();
    let mut unreadable_schemas: Vec<String> = unreadable_rows.iter().map(|r| cell(r, 3)).collect();
    unreadable_schemas.sort();
    unreadable_schemas.dedup();
    let filtered_by_rls = if superuser || bypass_rls {
        Vec::new()
    } else {
        relations
            .iter()
            .filter(|r| r.get(2).is_some_and(|v| v == "true"))
            .map(|r| cell(r, 0))
            .collect()
    };
    Ok(RoleReadiness {
        role: role.first().cloned().unwrap_or_default(),
        server_version,
        superuser,
        unreadable,
        unreadable_schemas,
        filtered_by_rls,
        relations: relations.len(),
        monitor: superuser || flag(4),
        create_database: superuser || flag(3),
    })
}
