//! Restoring a backup set, and exporting it as one psql script.
//!
//! Restore reads the manifest, settles the roles the backup needs (`roles`: named when
//! missing, or created) and with `--create` makes the database (`target`), refuses a
//! non-empty target unless told to clean it (`--tables` restores beside what is there,
//! replacing only the named tables); before `--clean` drops anything, every part it will load
//! is read and checked. It runs
//! pre-data in one transaction, then loads tables on `jobs` connections, largest first, each
//! in one transaction (`TRUNCATE` + `COPY ... FREEZE`). Every part's SHA-256, row count and row
//! digest are checked while it streams; a mismatch rolls the table back and names the part.
//! A table's index and constraint builds are queued ahead of the remaining loads the moment
//! the table is loaded; the rest of post-data runs last, in dependency order.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;

use tokio_postgres::Client;

use super::catalog::ident;
use super::manifest::{Manifest, Part, TablePart};
use super::script::{self, ScriptItem, preamble};
use super::sql::Edits;
use backstop_pg::version::ServerVersion;
use backstop_pg::{PgTarget, connect, describe};
use backstop_store::layout::{BackupId, MANIFEST_NAME};
use backstop_store::store::Store;

mod chunked;
mod error;
mod into_schema;
mod items;
mod labels;
mod parts;
mod pool;
mod resolve;
pub mod roles;
mod select;
mod statistics;
mod target;
use crate::item::ItemKind;
pub use error::RestoreError;
pub use into_schema::SchemaMove;
pub(crate) use parts::{Capped, Discard, HashingReader, scan_data_part, scan_large_object_part};
pub use parts::{ExportOptions, export, read_script};
use pool::{Job, LoadPlan, run_pool};
pub use resolve::{read_manifest, read_manifest_of, readable, resolve_backup};
pub use roles::{RolePlan, RolesMode, RolesReport};
use select::{ItemFilter, data_left_out, select_tables};
use target::{
    Preparation, Prepared, connect_maintenance, create_database, database_exists, drop_replaced,
    extension_search_path, lock_budget, max_locks_per_transaction, partitioning_tables, plan_into,
    plan_target, prepare_roles,
};
pub use target::{drop_subscriptions, role_plan};

const SEND_BATCH: usize = 256 * 1024;

/// Which backup: a specific id, or the newest committed one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BackupSelector {
    Latest,
    Id(BackupId),
}

impl std::str::FromStr for BackupSelector {
    type Err = backstop_store::layout::InvalidId;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == "latest" {
            Ok(BackupSelector::Latest)
        } else {
            BackupId::parse(s).map(BackupSelector::Id)
        }
    }
}

#[derive(Debug, Clone)]
pub struct RestoreOptions {
    pub jobs: usize,
    /// Restore only these tables (`schema.table`, or `table` when unambiguous; `*` and `?`
    /// as in pg_dump's patterns).
    pub tables: Option<Vec<String>>,
    /// Tables (names or patterns) made without their rows.
    pub exclude_table_data: Vec<String>,
    /// Which of pg_dump's sections to restore.
    pub sections: Sections,
    /// Drop every user object of the target first.
    pub clean: bool,
    /// Leave out `ALTER ... OWNER TO`: objects belong to the role that restores them.
    pub no_owner: bool,
    /// Leave out privileges: GRANT, REVOKE and default privileges.
    pub no_acl: bool,
    /// What to do about roles the backup needs that the target lacks.
    pub roles: RolesMode,
    /// `OLD=NEW`: owners and grants of OLD go to NEW.
    pub role_map: Vec<(String, String)>,
    /// Create the target database (named by the target URL) with the source's properties.
    pub create_database: bool,
    /// Give the planner its statistics as the last phase: the backup's, onto PostgreSQL 18
    /// and later; ANALYZE otherwise. `false` is `--no-statistics`.
    pub statistics: bool,
    /// How long the target server may leave a probe unanswered before the restore stops.
    pub silence_limit: std::time::Duration,
    /// Make the selected tables in this new schema (unquoted name) of a database in use,
    /// beside the live ones, touching nothing else (`--into-schema`).
    pub into_schema: Option<String>,
    /// Cancelled when the restore must stop (SIGINT, SIGTERM): its connections close (the
    /// server rolls back what they had open) and it fails with `Interrupted`.
    pub interrupt: tokio_util::sync::CancellationToken,
}

impl RestoreOptions {
    /// Every table, `jobs` connections, the target as it is: roles checked, nothing dropped.
    pub fn new(jobs: usize) -> Self {
        Self {
            jobs,
            tables: None,
            exclude_table_data: Vec::new(),
            sections: Sections::ALL,
            clean: false,
            no_owner: false,
            no_acl: false,
            roles: RolesMode::Check,
            role_map: Vec::new(),
            create_database: false,
            statistics: true,
            silence_limit: backstop_pg::liveness::DEFAULT_SILENCE_LIMIT,
            into_schema: None,
            interrupt: tokio_util::sync::CancellationToken::new(),
        }
    }
}

/// pg_dump's sections: the objects made before the data (pre-data), the rows, large objects'
/// contents and sequence values (data), and the indexes, constraints, triggers and the rest
/// made after (post-data).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sections {
    pub pre_data: bool,
    pub data: bool,
    pub post_data: bool,
}

impl Sections {
    pub const ALL: Sections = Sections {
        pre_data: true,
        data: true,
        post_data: true,
    };
}

/// What a restore reports as it goes, phase by phase.
#[derive(Debug, Clone)]
pub enum RestoreEvent {
    Started {
        backup_id: String,
        tables: usize,
        rows: u64,
    },
    /// Pre-data is in; the data starts loading: `bytes` of stored parts to read, and `builds`
    /// index and constraint builds to run as their tables are loaded.
    DataStarted {
        bytes: u64,
        builds: usize,
    },
    TableLoaded {
        table: String,
        rows: u64,
    },
    /// Index or constraint builds of a loaded table ran.
    Built {
        items: usize,
    },
    PostDataStarted {
        items: usize,
    },
    /// Post-data items ran (a batch of them).
    PostDataRan {
        items: usize,
    },
    /// The last phase: `relations` relations' statistics to apply and `tables` tables to
    /// ANALYZE.
    StatisticsStarted {
        relations: usize,
        tables: usize,
    },
}

#[derive(Debug, Clone)]
pub struct RestoreReport {
    pub backup_id: String,
    pub tables: usize,
    pub rows: u64,
    /// Privileges the target refused to grant or revoke (a warning, not an error, there).
    pub not_granted: Vec<String>,
    /// What a restore of some tables left out that belongs to them (a foreign key to a table
    /// not restored).
    pub left_out: Vec<String>,
    /// What was done about roles (created, mapped, not granted), when the backup has them.
    pub roles: Option<RolesReport>,
    /// The database was created (`--create`).
    pub created_database: Option<String>,
    /// Seconds from the start until the rows were loaded and every index, constraint and the
    /// rest of post-data were made: the database answers, though not yet at its usual speed.
    pub loaded_seconds: f64,
    /// Seconds from the start until the planner had its statistics too (applied from the
    /// backup, or ANALYZE run): queries plan as on the source. The recovery time.
    pub ready_seconds: f64,
    /// How the planner got its statistics.
    pub statistics: StatisticsOutcome,
    /// With `--into-schema`: each restored table (as the backup names it) and where it is now.
    pub moved_to: std::collections::BTreeMap<String, String>,
}

/// How a restored database's planner got its statistics.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case", tag = "how")]
pub enum StatisticsOutcome {
    /// Carried from the backup (PostgreSQL 18 and later as the target): `relations` relations'
    /// statistics applied; `analyzed` tables ANALYZEd because the backup could not read theirs;
    /// `dropped` says what the target could not take or the backup did not carry.
    Applied {
        relations: usize,
        analyzed: usize,
        dropped: Vec<String>,
    },
    /// The target cannot import statistics (before PostgreSQL 18), or the backup holds none:
    /// `tables` tables ANALYZEd as the last phase, in parallel; `dropped` says which could not
    /// be.
    Analyzed { tables: usize, dropped: Vec<String> },
    /// `--no-statistics`: the planner has none until ANALYZE or autovacuum runs.
    Skipped,
}

/// Restores `manifest`'s backup into the database at `target`, stopping if the server stops
/// answering.
pub async fn restore(
    store: Arc<dyn Store>,
    manifest: &Manifest,
    target: &PgTarget,
    options: &RestoreOptions,
    on_event: &(dyn Fn(RestoreEvent) + Sync),
) -> Result<RestoreReport, RestoreError> {
    // With --create the target database does not exist yet: the server is watched through
    // its maintenance database.
    let mut watched = target.clone();
    if options.create_database {
        watched.config.dbname("postgres");
    }
    let database = || backstop_pg::database_name(target).unwrap_or_default();
    let stopped = tokio::select! {
        biased;
        restored = restore_unwatched(store, manifest, target, options, on_event) => return restored,
        reason = backstop_pg::liveness::silence(&watched, options.silence_limit) => {
            RestoreError::ServerSilent { database: database(), reason }
        }
        _ = options.interrupt.cancelled() => RestoreError::Interrupted { database: database() },
    };
    // Into a schema apart, what is left is in that schema alone.
    Err(match &options.into_schema {
        Some(schema) => RestoreError::IntoSchemaStopped {
            database: database(),
            schema: schema.clone(),
            quoted: ident(schema),
            reason: match stopped {
                RestoreError::ServerSilent { reason, .. } => {
                    format!("the target server stopped answering ({reason})")
                }
                _ => "the restore was interrupted".into(),
            },
        },
        None => stopped,
    })
}

async fn restore_unwatched(
    store: Arc<dyn Store>,
    manifest: &Manifest,
    target: &PgTarget,
    options: &RestoreOptions,
    on_event: &(dyn Fn(RestoreEvent) + Sync),
) -> Result<RestoreReport, RestoreError> {
    readable(manifest)?;
    if manifest.seal_holds() == Some(false) {
        return Err(RestoreError::Corrupt {
            backup: manifest.backup_id.clone(),
            part: MANIFEST_NAME.into(),
            reason: "it was changed after the backup wrote it (its seal does not match)".into(),
        });
    }
    let tables = manifest.tables();
    let selected: Option<HashSet<String>> = match &options.tables {
        None => None,
        Some(names) => Some(select_tables(manifest, &tables, names)?),
    };
    if let Some(schema) = &options.into_schema {
        into_schema::check_options(schema, options)?;
    }
    // The tables whose rows are loaded: the selected ones, less those made without rows.
    let without_rows = data_left_out(
        manifest,
        &tables,
        &options.exclude_table_data,
        !options.sections.data,
    )?;
    let with_rows: Option<HashSet<String>> = if without_rows.is_empty() {
        selected.clone()
    } else {
        Some(
            tables
                .keys()
                .filter(|t| selected.as_ref().is_none_or(|s| s.contains(**t)))
                .filter(|t| !without_rows.contains(**t))
                .map(|t| t.to_string())
                .collect(),
        )
    };

    let clock = std::time::Instant::now();
    if options.roles == RolesMode::Plan {
        return Err(RestoreError::Roles {
            reason: "--roles plan changes nothing: ask for the plan itself (`role_plan`)".into(),
        });
    }
    let mut pre = None;
    let mut post = None;
    let mut statistics_part = None;
    for part in &manifest.parts {
        match part.kind {
            super::manifest::PartKind::PreData => pre = Some(part),
            super::manifest::PartKind::PostData => post = Some(part),
            super::manifest::PartKind::Statistics => statistics_part = Some(part),
            super::manifest::PartKind::Data => {}
        }
    }
    let items = async |part: Option<&Part>, what: &str| {
        let part = part.ok_or_else(|| RestoreError::Manifest {
            key: MANIFEST_NAME.into(),
            reason: format!("it lists no {what} part"),
        })?;
        parse(
            manifest,
            &read_script(store.as_ref(), manifest, part).await?,
        )
    };
    let pre_items = items(pre, "pre-data").await?;
    let post_items = items(post, "post-data").await?;
    // A backup from before statistics were carried has no such part.
    let statistics_items = match statistics_part {
        Some(part) if options.statistics => items(Some(part), "statistics").await?,
        _ => Vec::new(),
    };

    // With --create the database does not exist yet: roles and the database are made from
    // the server's maintenance database.
    let admin = match options.create_database {
        true => connect_maintenance(target).await?,
        false => connect(target).await?,
    };
    let target_version = ServerVersion::read(&admin)
        .await
        .map_err(|e| RestoreError::Database {
            step: "reading the target's version",
            reason: e.to_string(),
        })?;
    let source_major = ServerVersion(manifest.server_version_num).major();
    if target_version.major() < source_major {
        return Err(RestoreError::OlderTarget {
            backup: manifest.backup_id.clone(),
            source_version: manifest.server_version.clone(),
            source_major,
            target: target_version,
        });
    }
    let database_name = backstop_pg::database_name(target).unwrap_or_default();
    let (roles_report, role_map) = roles_and_database(
        store.as_ref(),
        manifest,
        &admin,
        &database_name,
        options,
        &post_items,
    )
    .await?;
    drop(admin);

    let (main, notices) = backstop_pg::connect_keeping_notices(target).await?;
    // One connection per job, and the server watched on one more: no more than it allows.
    let jobs = backstop_pg::budget::cap_jobs(&main, options.jobs.max(1), 1).await;
    main.batch_execute(&preamble())
        .await
        .map_err(db("preparing the session"))?;

    // A grant made by another grantor is made as that role (SET SESSION AUTHORIZATION),
    // which only a superuser may do: for any other role it is made by that role, and said.
    let superuser = is_superuser(&main).await?;
    let map_role = |name: &str| role_map.get(name).cloned();
    let edits = Edits {
        no_owner: options.no_owner,
        no_acting_as: !superuser,
        role: &map_role,
    };
    let mut grantors_lost = Vec::new();
    let pre_items = items::apply_options(pre_items, options.no_acl, &edits, &mut grantors_lost)?;
    let post_items = items::apply_options(post_items, options.no_acl, &edits, &mut grantors_lost)?;
    let preparation = if let Some(schema) = &options.into_schema {
        into_schema::check_absent(&main, target, schema).await?;
        Preparation::Beside {
            replace: Vec::new(),
        }
    } else if options.sections.pre_data {
        plan_target(
            &main,
            target,
            target_version,
            options.clean,
            selected.as_ref(),
        )
        .await?
    } else {
        let needed: Vec<String> = tables
            .keys()
            .filter(|t| selected.as_ref().is_none_or(|s| s.contains(**t)))
            .map(|t| t.to_string())
            .collect();
        let filled: Vec<String> = tables
            .keys()
            .filter(|t| with_rows.as_ref().is_none_or(|s| s.contains(**t)))
            .map(|t| t.to_string())
            .collect();
        let filled = if options.sections.data {
            filled
        } else {
            Vec::new()
        };
        // Into tables that are there, their foreign keys and triggers hold already: the
        // rows go in any order with them held back, which only a superuser may ask.
        if options.sections.data && !superuser {
            return Err(RestoreError::NotReady {
                database: database_name.clone(),
                what: "a restore of the data alone",
                reason: "loading into existing tables holds back their foreign-key checks and \
                         triggers (session_replication_role = replica), which needs a superuser \
                         (rds_superuser on RDS); restore as one, or restore whole into an empty \
                         database"
                    .into(),
            });
        }
        plan_into(&main, target, &needed, &filled, options.clean).await?
    };
    let into_existing = matches!(preparation, Preparation::Into { .. });
    let filter = ItemFilter::new(
        &main,
        selected.as_ref(),
        (
            matches!(preparation, Preparation::Beside { .. }),
            options.into_schema.is_some(),
        ),
        &pre_items,
        &post_items,
    )
    .await?;
    // Into a schema apart: the selected tables' items name them (and what they own) there.
    let moves = match (&options.into_schema, &selected) {
        (Some(schema), Some(selected)) => {
            let mut moved: Vec<(String, String, String)> = tables
                .iter()
                .filter(|(q, _)| selected.contains(**q))
                .filter_map(|(q, blocks)| {
                    let (_, t) = blocks.first()?;
                    Some((q.to_string(), t.schema.clone(), t.name.clone()))
                })
                .collect();
            moved.sort();
            into_schema::check_distinct(schema, &moved)?;
            Some(SchemaMove::new(
                schema,
                &moved,
                pre_items.iter().chain(post_items.iter()),
                &filter.owned_sequences,
            ))
        }
        _ => None,
    };
    let (pre_items, post_items) = match &moves {
        Some(moves) => (
            into_schema::move_items(moves, pre_items, |i| filter.keeps(i))?,
            into_schema::move_items(moves, post_items, |i| filter.keeps(i))?,
        ),
        None => (pre_items, post_items),
    };
    let moved_to: HashMap<String, String> = match (&moves, &selected) {
        (Some(moves), Some(selected)) => selected
            .iter()
            .filter_map(|t| moves.name_of(t).map(|n| (t.clone(), n.to_string())))
            .collect(),
        _ => HashMap::new(),
    };

    let is_loaded = |table: &str| with_rows.as_ref().is_none_or(|s| s.contains(table));
    let (loads, large_objects) = plan_loads(
        manifest,
        &tables,
        with_rows.as_ref(),
        selected.is_none() && options.sections.data,
    );
    // Destructive steps come last: every part to load is checked before anything is dropped.
    if preparation.drops() {
        let to_check = loads
            .iter()
            .flat_map(|(_, job)| job.parts())
            .chain(large_objects.iter().cloned())
            .collect();
        parts::check_all(store.as_ref(), manifest, to_check, jobs)
            .await
            .map_err(|e| RestoreError::NothingDropped {
                source: Box::new(e),
            })?;
        drop_replaced(&main, &preparation, target_version).await?;
    }
    let loaded_tables: HashSet<String> = tables
        .keys()
        .filter(|t| is_loaded(t))
        .map(|t| t.to_string())
        .collect();
    on_event(RestoreEvent::Started {
        backup_id: manifest.backup_id.clone(),
        tables: loaded_tables.len(),
        rows: tables
            .iter()
            .filter(|(t, _)| is_loaded(t))
            .flat_map(|(_, blocks)| blocks.iter().map(|(_, b)| b.rows))
            .sum(),
    });

    // Extended statistics (CREATE STATISTICS) are built by ANALYZE alone: their tables.
    let extended: Vec<String> = post_items
        .iter()
        .filter(|i| i.header.kind == ItemKind::Statistics && filter.keeps(i))
        .filter_map(|i| i.header.table.clone())
        .collect();
    let table_bytes: HashMap<String, u64> = tables
        .iter()
        .map(|(name, blocks)| (name.to_string(), blocks.iter().map(|(p, _)| p.bytes).sum()))
        .collect();

    // Once a first batch is committed, a failure leaves part of the backup behind.
    let committed = std::cell::Cell::new(false);
    let filled = async {
        // Pre-data in transactions the lock table can hold (a plain psql of a dump runs each
        // statement in its own): thousands of tables would exhaust it in one.
        tracing::debug!(seconds = clock.elapsed().as_secs_f64(), "parts read");
        let max_locks = max_locks_per_transaction(&main).await?;
        // Each item in its section; a sequence value is data, wherever its part puts it.
        let keeps = |i: &ScriptItem, section: bool| {
            filter.keeps(i)
                && match i.header.kind {
                    ItemKind::SequenceValue => options.sections.data,
                    _ => section,
                }
        };
        let pre_items: Vec<&ScriptItem> = pre_items
            .iter()
            .filter(|i| keeps(i, options.sections.pre_data))
            .collect();
        if let Some(schema) = &options.into_schema {
            main.batch_execute(&format!("CREATE SCHEMA {}", ident(schema)))
                .await
                .map_err(db("creating the new schema"))?;
            committed.set(true);
        }
        for chunk in pre_items.chunks(max_locks.max(16)) {
            run_batch(&main, chunk).await?;
            committed.set(true);
        }

        // Extension functions whose bodies name their own types and functions unqualified (as
        // earthdistance's do before 16) fail under an empty search_path when an index, a generated
        // column or a refresh calls them: from here on, the extensions' schemas follow pg_catalog.
        let session_path = extension_search_path(&main).await?;
        main.batch_execute(&session_path)
            .await
            .map_err(db("setting the search path for data and post-data"))?;
        let partitioning = partitioning_tables(&main).await?;
        let (per_table, serial) = items::schedule_post_data(
            post_items
                .into_iter()
                .filter(|i| keeps(i, options.sections.post_data)),
            &loaded_tables,
            &partitioning,
        );
        let queue: VecDeque<Job> = loads
            .into_iter()
            .map(|(_, job)| job)
            .chain(
                large_objects
                    .into_iter()
                    .map(|p| Job::LargeObjects(Box::new(p))),
            )
            .collect();
        let plan = LoadPlan {
            selected: with_rows.clone(),
            tables_per_transaction: lock_budget(max_locks),
            preamble: format!(
                "{}{session_path}{}",
                preamble(),
                if into_existing {
                    "SET session_replication_role = replica;\n"
                } else {
                    ""
                }
            ),
            into_existing,
            moved_to: moved_to.clone(),
        };
        tracing::debug!(seconds = clock.elapsed().as_secs_f64(), "pre-data restored");
        on_event(RestoreEvent::DataStarted {
            bytes: queue.iter().map(Job::stored_bytes).sum(),
            builds: per_table.values().map(Vec::len).sum(),
        });
        let rows = run_pool(
            store.clone(),
            manifest,
            target,
            jobs,
            (queue, per_table, plan),
            on_event,
        )
        .await?;

        tracing::debug!(
            seconds = clock.elapsed().as_secs_f64(),
            "data loaded and built"
        );
        on_event(RestoreEvent::PostDataStarted {
            items: serial.len(),
        });
        let serial: Vec<&ScriptItem> = serial.iter().collect();
        for chunk in serial.chunks(max_locks.max(16)) {
            run_batch(&main, chunk).await?;
            on_event(RestoreEvent::PostDataRan { items: chunk.len() });
        }
        let loaded_seconds = clock.elapsed().as_secs_f64();

        let wanted = options.statistics && (options.sections.data || options.sections.post_data);
        let statistics = if wanted && !moved_to.is_empty() {
            // The backup's statistics name the live tables: the moved ones are analyzed.
            on_event(RestoreEvent::StatisticsStarted {
                relations: 0,
                tables: moved_to.len(),
            });
            into_schema::analyze(&main, moved_to.values()).await?
        } else if wanted {
            let earlier = notices.take();
            let kept: Vec<&ScriptItem> = statistics_items
                .iter()
                .filter(|i| filter.keeps(i))
                .collect();
            let plan = statistics::plan(
                &kept,
                &loaded_tables,
                &table_bytes,
                target_version,
                &extended,
            );
            on_event(RestoreEvent::StatisticsStarted {
                relations: plan.apply.len(),
                tables: plan.analyze.len(),
            });
            let outcome = statistics::give(
                &main,
                &notices,
                target,
                &session_path,
                jobs,
                &plan,
                max_locks,
            )
            .await;
            notices.keep(earlier);
            outcome
        } else {
            StatisticsOutcome::Skipped
        };
        Ok::<_, RestoreError>((rows, loaded_seconds, statistics))
    }
    .await;
    // With --create, the database (and any roles made for it) exist from the start.
    let created_roles = roles_report
        .as_ref()
        .map(|r| r.created.clone())
        .unwrap_or_default();
    let (rows, loaded_seconds, statistics) = filled.map_err(|e| {
        let database = backstop_pg::database_name(target).unwrap_or_default();
        if let Some(schema) = &options.into_schema
            && committed.get()
        {
            return RestoreError::IntoSchemaStopped {
                database,
                quoted: ident(schema),
                schema: schema.clone(),
                reason: e.to_string(),
            };
        }
        let remedy = match (options.create_database, created_roles.is_empty()) {
            (false, _) if !committed.get() => return e,
            (false, _) => "restore again with --clean to replace it".to_string(),
            (true, true) => format!(
                "drop it (DROP DATABASE {}) and restore again",
                ident(&database)
            ),
            (true, false) => format!(
                "drop it (DROP DATABASE {}) and restore again; the roles it created stay: {}",
                ident(&database),
                created_roles.join(", ")
            ),
        };
        RestoreError::Incomplete {
            database,
            source: Box::new(e),
            remedy,
        }
    })?;
    tracing::debug!(
        seconds = clock.elapsed().as_secs_f64(),
        "post-data restored"
    );
    let ready_seconds = clock.elapsed().as_secs_f64();
    // A GRANT by a role without the grant option succeeds with a warning and grants nothing
    // (an extension's function owned by the bootstrap superuser, restored by a non-superuser).
    let not_granted = notices
        .take()
        .into_iter()
        .filter(|n| {
            [
                tokio_postgres::error::SqlState::WARNING_PRIVILEGE_NOT_GRANTED,
                tokio_postgres::error::SqlState::WARNING_PRIVILEGE_NOT_REVOKED,
            ]
            .contains(n.code())
        })
        .map(|n| {
            format!(
                "{}: the restoring role holds no grant option there (the owner is a role it cannot act as)",
                n.message()
            )
        })
        .chain(grantors_lost)
        .collect();
    Ok(RestoreReport {
        left_out: filter.left_out,
        backup_id: manifest.backup_id.clone(),
        tables: loaded_tables.len(),
        rows,
        not_granted,
        roles: roles_report,
        created_database: options.create_database.then_some(database_name),
        loaded_seconds,
        ready_seconds,
        statistics,
        moved_to: moved_to.into_iter().collect(),
    })
}

/// Before any item runs, from the maintenance connection `admin`: the roles the set needs
/// (checked, or made as the options say, with `--role-map` applied), every security label
/// provider the restore names, and with `--create` the database. Returns what was done to the
/// roles and the role names the items are restored with. `database_name` is the target's.
async fn roles_and_database(
    store: &dyn Store,
    manifest: &Manifest,
    admin: &Client,
    database_name: &str,
    options: &RestoreOptions,
    post_items: &[ScriptItem],
) -> Result<(Option<RolesReport>, HashMap<String, String>), RestoreError> {
    let prepared = prepare_roles(store, manifest, admin, options).await?;
    if let Some(prepared) = &prepared
        && options.roles == RolesMode::Check
        && !prepared.plan.missing.is_empty()
    {
        return Err(RestoreError::RolesMissing {
            backup: manifest.backup_id.clone(),
            roles: prepared.plan.missing.join(", "),
        });
    }
    if options.create_database && database_exists(admin, database_name).await? {
        return Err(RestoreError::DatabaseExists {
            database: database_name.to_string(),
        });
    }
    // Every security label provider the restore will name must be loaded on the target.
    let mut providers = labels::providers(post_items);
    if let Some(prepared) = &prepared {
        providers.extend(labels::global_providers(
            &prepared.globals,
            &prepared.plan,
            options.create_database,
        ));
    }
    labels::check_providers(admin, &manifest.backup_id, providers).await?;
    let mut roles_report = None;
    let mut role_map = options.role_map.iter().cloned().collect::<HashMap<_, _>>();
    if let Some(Prepared {
        globals,
        plan,
        on_target,
    }) = &prepared
    {
        role_map = plan.map.clone().into_iter().collect();
        let mut report = match on_target {
            Some(on_target) => roles::apply(admin, plan, globals, on_target).await?,
            None => RolesReport::default(),
        };
        if options.create_database {
            create_database(admin, globals, plan, database_name, &mut report).await?;
        }
        roles_report = Some(report);
    }
    Ok((roles_report, role_map))
}

/// The data to load, biggest first: each selected table in parts of its own (one, or several
/// block ranges), each bundle holding a selected table; and, when `with_large_objects`, the
/// large-object parts, which are the whole database's (a restore of some tables leaves them
/// out, as it leaves out their pre-data items).
fn plan_loads(
    manifest: &Manifest,
    tables: &std::collections::BTreeMap<&str, Vec<(&Part, &TablePart)>>,
    selected: Option<&HashSet<String>>,
    with_large_objects: bool,
) -> (Vec<(u64, Job)>, Vec<Part>) {
    let is_selected = |table: &str| selected.is_none_or(|s| s.contains(table));
    let mut loads: Vec<(u64, Job)> = Vec::new();
    for (name, blocks) in tables {
        if is_selected(name) && blocks.iter().all(|(part, _)| part.bundle.is_empty()) {
            let parts: Vec<Part> = blocks.iter().map(|(part, _)| (*part).clone()).collect();
            let bytes = parts.iter().map(|p| p.bytes).sum();
            loads.push((bytes, Job::Load(name.to_string(), parts)));
        }
    }
    for part in &manifest.parts {
        if part.bundle.iter().any(|t| is_selected(&t.qualified_name)) {
            loads.push((part.bytes, Job::LoadBundle(Box::new(part.clone()))));
        }
    }
    loads.sort_by_key(|(bytes, _)| std::cmp::Reverse(*bytes));
    let large_objects: Vec<Part> = manifest
        .parts
        .iter()
        .filter(|p| p.large_objects.is_some() && with_large_objects)
        .cloned()
        .collect();
    (loads, large_objects)
}

/// Whether the role the restore connects as is a superuser.
async fn is_superuser(client: &Client) -> Result<bool, RestoreError> {
    let row = client
        .query_one(
            "SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user",
            &[],
        )
        .await
        .map_err(db("reading the restoring role"))?;
    row.try_get(0).map_err(db("reading the restoring role"))
}

fn db(step: &'static str) -> impl Fn(tokio_postgres::Error) -> RestoreError {
    move |e| RestoreError::Database {
        step,
        reason: describe(&e),
    }
}

fn parse(manifest: &Manifest, text: &str) -> Result<Vec<ScriptItem>, RestoreError> {
    script::parse(text, &manifest.item_marker, manifest.format_version).map_err(|reason| {
        RestoreError::Manifest {
            key: MANIFEST_NAME.into(),
            reason,
        }
    })
}

/// Runs `items` in one transaction and one round trip. When that fails, it is rolled back and
/// the items run one by one, so the error names the item that fails.
async fn run_batch(client: &Client, items: &[&ScriptItem]) -> Result<(), RestoreError> {
    let mut sql = String::from("BEGIN;\n");
    for item in items {
        sql.push_str(&item.sql);
        sql.push('\n');
    }
    sql.push_str("COMMIT;");
    match client.batch_execute(&sql).await {
        Ok(()) => return Ok(()),
        Err(e) => {
            tracing::debug!(error = %describe(&e), "a batch of items failed; running them one by one")
        }
    }
    let _ = client.batch_execute("ROLLBACK").await;
    // Again, an item a round trip, in one transaction still: the batch stays all or nothing.
    client
        .batch_execute("BEGIN")
        .await
        .map_err(db("starting a transaction"))?;
    for item in items {
        if let Err(e) = run_item(client, item).await {
            let _ = client.batch_execute("ROLLBACK").await;
            return Err(e);
        }
    }
    client
        .batch_execute("COMMIT")
        .await
        .map_err(db("committing"))
}

async fn run_item(client: &Client, item: &ScriptItem) -> Result<(), RestoreError> {
    client
        .batch_execute(&item.sql)
        .await
        .map_err(|e| RestoreError::Item {
            item: format!("{:?} {}", item.header.kind, item.header.name).to_lowercase(),
            reason: describe(&e),
        })
}
