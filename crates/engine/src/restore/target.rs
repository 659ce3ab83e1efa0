//! The target server before the items run: the roles plan (`--roles`), the database made
//! by `--create`, the emptiness check and `--clean`, and the settings a restore reads there
//! (the lock table's size, the extensions' schemas, which tables are partitioned).

use std::collections::HashSet;

use tokio_postgres::Client;

use super::roles::{self, RolePlan, RolesMode, RolesReport};
use super::{RestoreError, RestoreOptions, db};
use crate::globals::Globals;
use crate::inventory;
use crate::manifest::Manifest;
use backstop_pg::version::ServerVersion;
use backstop_pg::{PgTarget, column, connect, describe};
use backstop_store::store::Store;

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

/// What a restore does to the target before its items run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Preparation {
    /// The target holds no user object: every item the restore needs is created.
    Empty,
    /// The target holds objects and the whole backup replaces them (`--clean`): everything
    /// is dropped first.
    ReplaceAll,
    /// The target holds objects and some tables are restored beside them (`--tables`): only
    /// those tables' items run; `replace` are the selected tables already there, dropped
    /// first (`--clean`).
    Beside { replace: Vec<String> },
    /// Without the pre-data section: the target already holds the objects, and the rows go
    /// into its tables; `empty` are the tables emptied first (`--clean`).
    Into { empty: Vec<String> },
}

impl Preparation {
    /// Whether anything will be dropped: then every part is checked first.
    pub fn drops(&self) -> bool {
        match self {
            Preparation::Empty => false,
            Preparation::ReplaceAll => true,
            Preparation::Beside { replace } => !replace.is_empty(),
            Preparation::Into { empty } => !empty.is_empty(),
        }
    }
}

/// How long a `--clean` drop waits for a lock held by the target's other sessions.
pub(super) const CLEAN_LOCK_TIMEOUT: &str = "30s";

/// Decides what the restore does to the target, changing nothing: an empty target is filled;
/// one with objects is replaced whole only with `--clean`; `--tables` restores beside the
/// target's objects, replacing a selected table that is there only with `--clean` and only
/// when nothing outside the selection depends on it.
pub(super) async fn plan_target(
    client: &Client,
    target: &PgTarget,
    version: ServerVersion,
    clean: bool,
    selected: Option<&HashSet<String>>,
) -> Result<Preparation, RestoreError> {
    let objects = inventory::read(client, version)
        .await
        .map_err(|e| RestoreError::Database {
            step: "checking the target is empty",
            reason: e.to_string(),
        })?;
    let database = || backstop_pg::database_name(target).unwrap_or_default();
    if objects.is_empty() {
        return Ok(Preparation::Empty);
    }
    let Some(selected) = selected else {
        if clean {
            return Ok(Preparation::ReplaceAll);
        }
        return Err(RestoreError::NotEmpty {
            database: database(),
            count: objects.len(),
            examples: objects
                .iter()
                .take(3)
                .map(|o| o.label())
                .collect::<Vec<_>>()
                .join(", "),
        });
    };
    let mut names: Vec<String> = selected.iter().cloned().collect();
    names.sort();
    let present = present_tables(client, &names).await?;
    if present.is_empty() {
        return Ok(Preparation::Beside { replace: present });
    }
    if !clean {
        return Err(RestoreError::TablesExist {
            database: database(),
            tables: present.join(", "),
        });
    }
    let dependents = dependents_outside(client, &present, &names).await?;
    if !dependents.is_empty() {
        return Err(RestoreError::DependedOn {
            tables: present.join(", "),
            dependents: dependents.join(", "),
        });
    }
    Ok(Preparation::Beside { replace: present })
}

/// Those of `names` (qualified, quoted as items name them) that exist in the target, sorted.
pub(super) async fn present_tables(
    client: &Client,
    names: &[String],
) -> Result<Vec<String>, RestoreError> {
    let rows = client
        .query(
            "SELECT name FROM unnest($1::text[]) AS name WHERE to_regclass(name) IS NOT NULL ORDER BY 1",
            &[&names],
        )
        .await
        .map_err(db("looking for tables in the target"))?;
    column(&rows, 0).map_err(|reason| RestoreError::Database {
        step: "looking for tables in the target",
        reason,
    })
}

/// What dropping `tables` would take along that the restore of `selected` does not make
/// again: objects of other tables (foreign keys, defaults, triggers, policies), views,
/// functions, tables that inherit from them or are their partitions, columns of their row
/// type. Each named by its table (or itself), with what it is.
async fn dependents_outside(
    client: &Client,
    tables: &[String],
    selected: &[String],
) -> Result<Vec<String>, RestoreError> {
    let sql = "WITH selected AS (SELECT to_regclass(name)::oid AS oid FROM unnest($2::text[]) AS name), \
         dropped AS (SELECT to_regclass(name)::oid AS oid FROM unnest($1::text[]) AS name), \
         gone AS ( \
           SELECT 'pg_class'::regclass::oid AS classid, oid AS objid FROM dropped \
           UNION SELECT 'pg_type'::regclass, c.reltype FROM pg_class c JOIN dropped d ON c.oid = d.oid \
           UNION SELECT 'pg_class'::regclass, dep.objid FROM pg_depend dep JOIN dropped d ON dep.refobjid = d.oid \
             WHERE dep.refclassid = 'pg_class'::regclass AND dep.classid = 'pg_class'::regclass AND dep.deptype IN ('a', 'i') \
         ), \
         owners AS ( \
           SELECT dep.classid, dep.objid, dep.objsubid, CASE dep.classid \
             WHEN 'pg_constraint'::regclass THEN (SELECT nullif(conrelid, 0) FROM pg_constraint WHERE oid = dep.objid) \
             WHEN 'pg_rewrite'::regclass THEN (SELECT ev_class FROM pg_rewrite WHERE oid = dep.objid) \
             WHEN 'pg_attrdef'::regclass THEN (SELECT adrelid FROM pg_attrdef WHERE oid = dep.objid) \
             WHEN 'pg_trigger'::regclass THEN (SELECT tgrelid FROM pg_trigger WHERE oid = dep.objid) \
             WHEN 'pg_policy'::regclass THEN (SELECT polrelid FROM pg_policy WHERE oid = dep.objid) \
             WHEN 'pg_class'::regclass THEN dep.objid END AS rel \
           FROM pg_depend dep JOIN gone g ON dep.refclassid = g.classid AND dep.refobjid = g.objid \
           WHERE dep.deptype = 'n' \
         ) \
         SELECT DISTINCT CASE WHEN o.rel IS NULL THEN i.type || ' ' || i.identity \
           ELSE r.type || ' ' || r.identity || CASE WHEN o.classid = 'pg_class'::regclass THEN '' \
             ELSE ' (' || pg_describe_object(o.classid, o.objid, 0) || ')' END END \
         FROM owners o \
         CROSS JOIN LATERAL pg_identify_object(o.classid, o.objid, 0) i \
         LEFT JOIN LATERAL pg_identify_object('pg_class'::regclass, o.rel, 0) r ON o.rel IS NOT NULL \
         WHERE o.rel IS NULL OR (o.rel NOT IN (SELECT objid FROM gone WHERE classid = 'pg_class'::regclass) \
           AND o.rel NOT IN (SELECT oid FROM selected)) \
         UNION \
         SELECT i.type || ' ' || i.identity FROM gone g CROSS JOIN LATERAL pg_identify_object(g.classid, g.objid, 0) i \
         JOIN pg_class c ON g.classid = 'pg_class'::regclass AND c.oid = g.objid \
         WHERE c.relkind IN ('r', 'p', 'f') AND g.objid NOT IN (SELECT oid FROM selected) \
         ORDER BY 1";
    let rows = client.query(sql, &[&tables, &selected]).await.map_err(db(
        "looking for what depends on the tables --clean would replace",
    ))?;
    column(&rows, 0).map_err(|reason| RestoreError::Database {
        step: "looking for what depends on the tables --clean would replace",
        reason,
    })
}

/// Drops what `preparation` replaces, in one transaction that waits at most
/// [`CLEAN_LOCK_TIMEOUT`] for each lock: the whole target's user objects, or the selected
/// tables (and what goes with them: indexes, constraints, triggers, owned sequences).
pub(super) async fn drop_replaced(
    client: &Client,
    preparation: &Preparation,
    version: ServerVersion,
) -> Result<(), RestoreError> {
    let sql = match preparation {
        Preparation::Empty => return Ok(()),
        Preparation::Beside { replace } if replace.is_empty() => return Ok(()),
        Preparation::Beside { replace } => format!("DROP TABLE {};\n", replace.join(", ")),
        Preparation::Into { empty } if empty.is_empty() => return Ok(()),
        Preparation::Into { empty } => format!("TRUNCATE {};\n", empty.join(", ")),
        Preparation::ReplaceAll => {
            drop_subscriptions(client)
                .await
                .map_err(db("dropping the target's subscriptions (--clean)"))?;
            everything_sql(client, version).await?
        }
    };
    let run = client
        .batch_execute(&format!(
            "BEGIN;\nSET LOCAL lock_timeout = '{CLEAN_LOCK_TIMEOUT}';\n{sql}COMMIT;"
        ))
        .await;
    if let Err(e) = run {
        let _ = client.batch_execute("ROLLBACK").await;
        if e.code() == Some(&tokio_postgres::error::SqlState::LOCK_NOT_AVAILABLE) {
            return Err(RestoreError::CleanLocked {
                waited: CLEAN_LOCK_TIMEOUT,
                reason: describe(&e),
            });
        }
        return Err(RestoreError::Database {
            step: "dropping the target's objects (--clean)",
            reason: describe(&e),
        });
    }
    Ok(())
}

/// Every user object of the target, dropped: what lives outside schemas first (event
/// triggers, publications, extensions: an extension may own a schema, or live in one), then
/// the schemas with what is in them, then large objects; each `IF EXISTS`, since a `CASCADE`
/// before may have taken it. `public` is made again as initdb of the target's version makes
/// it.
async fn everything_sql(client: &Client, version: ServerVersion) -> Result<String, RestoreError> {
    let rows = client
        .query(
            "SELECT 'DROP EVENT TRIGGER IF EXISTS ' || quote_ident(evtname) FROM pg_event_trigger WHERE oid >= 16384 \
             UNION ALL SELECT 'DROP PUBLICATION IF EXISTS ' || quote_ident(pubname) FROM pg_publication \
             UNION ALL (SELECT 'DROP EXTENSION IF EXISTS ' || quote_ident(x.extname) || ' CASCADE' FROM pg_extension x WHERE x.oid >= 16384 ORDER BY x.oid DESC) \
             UNION ALL SELECT 'DROP SCHEMA IF EXISTS ' || quote_ident(n.nspname) || ' CASCADE' FROM pg_namespace n WHERE n.nspname NOT IN \
             ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_(toast|temp_|toast_temp_)' \
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
    Ok(sql)
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

/// Without the pre-data section, what the restore does to the target: its tables `needed`
/// must all be there; those that get rows (`filled`) must be empty, or with `clean` are
/// emptied (in one `TRUNCATE`, after every part is checked).
pub(super) async fn plan_into(
    client: &Client,
    target: &PgTarget,
    needed: &[String],
    filled: &[String],
    clean: bool,
) -> Result<Preparation, RestoreError> {
    let database = || backstop_pg::database_name(target).unwrap_or_default();
    let present = present_tables(client, needed).await?;
    let missing: Vec<&String> = needed.iter().filter(|t| !present.contains(t)).collect();
    if !missing.is_empty() {
        return Err(RestoreError::NotReady {
            database: database(),
            what: "a restore without the pre-data section",
            reason: format!(
                "it lacks {} table(s), e.g. {}; restore the pre-data section first (--section pre-data)",
                missing.len(),
                missing
                    .iter()
                    .take(3)
                    .map(|t| t.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        });
    }
    let mut holding = Vec::new();
    for table in filled {
        let row = client
            .query_one(&format!("SELECT EXISTS (SELECT FROM {table})"), &[])
            .await
            .map_err(db("checking the target's tables are empty"))?;
        if backstop_pg::value::<bool>(&row, 0).map_err(|reason| RestoreError::Database {
            step: "checking the target's tables are empty",
            reason,
        })? {
            holding.push(table.clone());
        }
    }
    if holding.is_empty() || clean {
        return Ok(Preparation::Into { empty: holding });
    }
    Err(RestoreError::NotReady {
        database: database(),
        what: "its rows",
        reason: format!(
            "{} table(s) already hold rows, e.g. {}; pass --clean to empty them first (only them)",
            holding.len(),
            holding
                .iter()
                .take(3)
                .map(String::as_str)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    })
}
