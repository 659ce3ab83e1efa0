//! The target server before the items run: the roles plan (`--roles`), the database made
//! by `--create`, the emptiness check and `--clean`, and the settings a restore reads there
//! (the lock table's size, the extensions' schemas, which tables are partitioned).

use std::collections::HashSet;

use tokio_postgres::Client;

use super::roles::{self, RolePlan, RolesMode, RolesReport};
use super::{RestoreError, RestoreOptions, db};
use crate::engine::globals::Globals;
use crate::engine::inventory;
use crate::engine::manifest::Manifest;
use crate::pg::{PgTarget, column, connect, describe};
use crate::store::Store;
use crate::version::ServerVersion;

/// What `--roles plan` prints for restoring `manifest` onto `target`: which roles are there,
/// which would be created or mapped. Changes nothing.
pub async fn role_plan(
    store: &dyn Store,
    manifest: &Manifest,
    target: &PgTarget,
    options: &RestoreOptions,
) -> Result<RolePlan, RestoreError> {
    let admin = match options.create_database {
        true => connect_maintenance(target).await?,
        false => connect(target).await?,
    };
    let options = RestoreOptions {
        roles: RolesMode::Plan,
        ..options.clone()
    };
    match prepare_roles(store, manifest, &admin, &options).await? {
        Some(prepared) => Ok(prepared.plan),
        None => Err(RestoreError::NoGlobals {
            backup: manifest.backup_id.clone(),
            what: "plan",
        }),
    }
}

/// What a restore knows about roles before it changes anything.
pub(super) struct Prepared {
    pub globals: Globals,
    pub plan: RolePlan,
    /// `None` when the target's roles are not looked at (`--roles skip`, or `--no-owner
    /// --no-acl` unasked): the plan is then the operator's `--role-map` alone.
    pub on_target: Option<roles::TargetRoles>,
}

/// The backup's roles file, the target's roles and the plan for them; `None` for a backup
/// without the file when nothing asks for it.
pub(super) async fn prepare_roles(
    store: &dyn Store,
    manifest: &Manifest,
    admin: &Client,
    options: &RestoreOptions,
) -> Result<Option<Prepared>, RestoreError> {
    // Without owners and grants the roles matter only to policies: left to the server.
    let look = match options.roles {
        RolesMode::Skip => false,
        RolesMode::Check => !(options.no_owner && options.no_acl),
        RolesMode::Plan | RolesMode::Create => true,
    };
    if !look && !options.create_database {
        return Ok(None);
    }
    let Some(globals) = roles::read_globals(store, manifest).await? else {
        let what = match options.roles {
            RolesMode::Create => Some("create"),
            RolesMode::Plan => Some("plan"),
            _ if options.create_database => Some("check"),
            _ => None,
        };
        return match what {
            Some(what) => Err(RestoreError::NoGlobals {
                backup: manifest.backup_id.clone(),
                what,
            }),
            None => Ok(None),
        };
    };
    if !look {
        let plan = RolePlan {
            map: options.role_map.iter().cloned().collect(),
            ..RolePlan::default()
        };
        return Ok(Some(Prepared {
            globals,
            plan,
            on_target: None,
        }));
    }
    let on_target = roles::read_target(admin).await?;
    let plan = roles::plan(&globals, &on_target, &options.role_map, options.roles);
    if !plan.problems.is_empty() {
        return Err(RestoreError::RoleOptions {
            problems: plan.problems,
        });
    }
    Ok(Some(Prepared {
        globals,
        plan,
        on_target: Some(on_target),
    }))
}

/// A connection to the target's server through a database that always exists (`postgres`,
/// else `template1`), for what must happen outside the target database.
pub(super) async fn connect_maintenance(target: &PgTarget) -> Result<Client, RestoreError> {
    let mut first = None;
    for name in ["postgres", "template1"] {
        let mut maintenance = target.clone();
        maintenance.config.dbname(name);
        match connect(&maintenance).await {
            Ok(client) => return Ok(client),
            Err(e) => {
                first.get_or_insert(e);
            }
        }
    }
    Err(first
        .map(RestoreError::Connect)
        .unwrap_or(RestoreError::Roles {
            reason: "no maintenance database to connect to".into(),
        }))
}

pub(super) async fn database_exists(admin: &Client, name: &str) -> Result<bool, RestoreError> {
    let row = admin
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_database WHERE datname = $1)",
            &[&name],
        )
        .await
        .map_err(db("looking for the target database"))?;
    row.try_get(0).map_err(|e| RestoreError::Database {
        step: "looking for the target database",
        reason: e.to_string(),
    })
}

/// `CREATE DATABASE` with the source's owner, encoding and locale, then its comment,
/// privileges, settings and its roles' settings in it. Creating it must succeed; a property
/// the target refuses is reported.
pub(super) async fn create_database(
    admin: &Client,
    globals: &Globals,
    plan: &RolePlan,
    name: &str,
    report: &mut RolesReport,
) -> Result<(), RestoreError> {
    let properties = &globals.database;
    let owner = plan.name(&properties.owner);
    admin
        .batch_execute(&properties.create_sql(name, owner))
        .await
        .map_err(|e| RestoreError::Database {
            step: "creating the database",
            reason: describe(&e),
        })?;
    if let Some(space) = &properties.tablespace {
        report.not_granted.push(format!(
            "the source database was in tablespace {space}; this one is in the target's default"
        ));
    }
    let grantee = |role: &str| plan.name(role).to_string();
    let statements = properties
        .properties_sql(name, &grantee)
        .into_iter()
        .chain(roles::database_role_settings(plan, globals, name));
    for sql in statements {
        if let Err(e) = admin.batch_execute(&sql).await {
            report.not_granted.push(format!(
                "`{}` was refused: {}",
                sql.trim_end().trim_end_matches(';'),
                describe(&e)
            ));
        }
    }
    Ok(())
}

/// Partitioned tables and partitions (`schema.name`, quoted as items name them): their keys
/// cannot be attached from an index built on its own, so they are built whole.
pub(super) async fn partitioning_tables(client: &Client) -> Result<HashSet<String>, RestoreError> {
    let rows = client
        .query(
            "SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname) \
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE c.relkind = 'p' OR c.relispartition",
            &[],
        )
        .await
        .map_err(db("listing partitioned tables"))?;
    let names: Vec<String> = column(&rows, 0).map_err(|reason| RestoreError::Database {
        step: "listing partitioned tables",
        reason,
    })?;
    Ok(names.into_iter().collect())
}

pub(super) async fn prepare_target(
    client: &Client,
    target: &PgTarget,
    version: ServerVersion,
    clean: bool,
) -> Result<(), RestoreError> {
    let objects = inventory::read(client, version)
        .await
        .map_err(|e| RestoreError::Database {
            step: "checking the target is empty",
            reason: e.to_string(),
        })?;
    if objects.is_empty() {
        return Ok(());
    }
    if !clean {
        return Err(RestoreError::NotEmpty {
            database: crate::pg::database_name(target).unwrap_or_default(),
            count: objects.len(),
            examples: objects
                .iter()
                .take(3)
                .map(|o| o.label())
                .collect::<Vec<_>>()
                .join(", "),
        });
    }
    drop_subscriptions(client)
        .await
        .map_err(db("dropping the target's subscriptions (--clean)"))?;
    // Schemas take what is in them; event triggers, publications and large objects are
    // outside any schema.
    let rows = client
        .query(
            "SELECT 'DROP EVENT TRIGGER ' || quote_ident(evtname) FROM pg_event_trigger WHERE oid >= 16384 \
             UNION ALL SELECT 'DROP PUBLICATION ' || quote_ident(pubname) FROM pg_publication \
             UNION ALL SELECT 'DROP SCHEMA ' || quote_ident(n.nspname) || ' CASCADE' FROM pg_namespace n WHERE n.nspname NOT IN \
             ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_(toast|temp_|toast_temp_)' \
             UNION ALL SELECT 'DROP EXTENSION ' || quote_ident(x.extname) || ' CASCADE' FROM pg_extension x WHERE x.oid >= 16384 \
             UNION ALL SELECT 'SELECT pg_catalog.lo_unlink(' || oid || ')' FROM pg_largeobject_metadata",
            &[],
        )
        .await
        .map_err(db("listing what --clean drops"))?;
    let mut sql: String = column::<String>(&rows, 0)
        .map_err(|reason| RestoreError::Database {
            step: "listing what --clean drops",
            reason,
        })?
        .iter()
        .map(|statement| format!("{statement};\n"))
        .collect();
    // The public schema as initdb of the target's version makes it.
    sql.push_str(if version.at_least(15) {
        "CREATE SCHEMA public;\nALTER SCHEMA public OWNER TO pg_database_owner;\n\
         COMMENT ON SCHEMA public IS 'standard public schema';\nGRANT USAGE ON SCHEMA public TO PUBLIC;\n"
    } else {
        "CREATE SCHEMA public;\nCOMMENT ON SCHEMA public IS 'standard public schema';\n\
         GRANT ALL ON SCHEMA public TO PUBLIC;\n\
         DO $$ BEGIN EXECUTE format('ALTER SCHEMA public OWNER TO %I', (SELECT rolname FROM pg_roles WHERE oid = 10)); END $$;\n"
    });
    client
        .batch_execute(&format!("BEGIN;\n{sql}COMMIT;"))
        .await
        .map_err(db("dropping the target's objects (--clean)"))
}

/// The target's `max_locks_per_transaction`: what one transaction's share of the lock table
/// is, whatever the target's setting.
pub(super) async fn max_locks_per_transaction(client: &Client) -> Result<usize, RestoreError> {
    let row = client
        .query_one(
            "SELECT current_setting('max_locks_per_transaction')::int4",
            &[],
        )
        .await
        .map_err(db("reading max_locks_per_transaction"))?;
    let locks: i32 = row
        .try_get(0)
        .map_err(db("reading max_locks_per_transaction"))?;
    Ok(locks.max(1) as usize)
}

/// Tables one transaction may empty and load: a quarter of `max_locks_per_transaction` (a
/// table takes a few locks: itself, its TOAST table and index), at least one.
pub(super) fn lock_budget(max_locks_per_transaction: usize) -> usize {
    (max_locks_per_transaction / 4).max(1)
}

/// `SET search_path` to pg_catalog, then the schemas extensions were installed into.
pub(super) async fn extension_search_path(client: &Client) -> Result<String, RestoreError> {
    let row = client
        .query_one(
            "SELECT coalesce(string_agg(quote_ident(nspname), ', ' ORDER BY first), '') FROM \
             (SELECT n.nspname, min(x.oid) AS first FROM pg_catalog.pg_extension x \
              JOIN pg_catalog.pg_namespace n ON n.oid = x.extnamespace \
              WHERE n.nspname <> 'pg_catalog' GROUP BY n.nspname) s",
            &[],
        )
        .await
        .map_err(db("listing the extensions' schemas"))?;
    let schemas: String = row
        .try_get(0)
        .map_err(db("listing the extensions' schemas"))?;
    Ok(match schemas.as_str() {
        "" => String::new(),
        _ => format!("SET search_path = pg_catalog, {schemas};\n"),
    })
}

/// Drops the subscriptions of the database `client` is connected to without reaching their
/// publishers: each is disabled and loses its slot name first, so the publisher's slot (if
/// any) is left for its operator. A database with subscriptions cannot be dropped.
pub async fn drop_subscriptions(client: &Client) -> Result<(), tokio_postgres::Error> {
    let rows = client
        .query(
            "SELECT quote_ident(subname) FROM pg_catalog.pg_subscription \
             WHERE subdbid = (SELECT oid FROM pg_catalog.pg_database WHERE datname = current_database())",
            &[],
        )
        .await?;
    for row in rows {
        let name: String = row.try_get(0)?;
        client
            .batch_execute(&format!(
                "ALTER SUBSCRIPTION {name} DISABLE; ALTER SUBSCRIPTION {name} SET (slot_name = NONE); \
                 DROP SUBSCRIPTION {name};"
            ))
            .await?;
    }
    Ok(())
}
