//! `backstop restore` and `backstop export`.

use std::time::Instant;

use backstop::engine::restore::roles::describe_plan;
use backstop::engine::restore::{
    BackupSelector, ExportOptions, RestoreEvent, RestoreOptions, RolesMode, Sections,
    StatisticsOutcome, export, read_manifest, restore, role_plan,
};
use backstop::engine::stream::decoding::TableName;
use backstop::engine::stream::plan::RecoveryTarget;
use backstop::engine::stream::replay::{
    ReplayReport, TableScope, find_transaction, has_stream, plan_recovery, replay, replay_tables,
};
use backstop::engine::stream::segment::Lsn;
use backstop::store::{CountingStore, StoreUrl, open_from_env};
use tokio::io::AsyncWriteExt;

use crate::common::{at_least_one, database_id};
use crate::progress::{Progress, Unit};

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  backstop restore --from s3://my-backups/prod --database-id app --db postgresql://postgres@localhost/app_restored\n  backstop restore --from file:///var/backups --db postgresql://localhost/app --backup 20261122T060000Z-1a2b3c4d --tables public.orders --clean\n  backstop restore --from s3://my-backups/prod --database-id app --db postgresql://dev@localhost/app_copy --no-owner --no-acl\n  backstop restore --from s3://my-backups/prod --database-id app --db postgresql://admin@new-server/app --create --roles create\nWith a change stream (`backstop stream`), add --to-time 2026-12-01T10:30:00Z to recover to a moment."
)]
pub struct RestoreArgs {
    /// Store to read: file:///path or s3://bucket/prefix.
    #[arg(long, value_name = "STORE")]
    from: String,
    /// Database to restore into (empty, or replaced with --clean; with --tables it may hold
    /// other objects), as psql takes it (a postgresql:// URL, key=value pairs
    /// or a database name); the rest from PGHOST, PGUSER and the other PG* variables, PGSERVICE
    /// and ~/.pgpass.
    #[arg(long, value_name = "URL", hide_env_values = true)]
    db: Option<String>,
    /// Which database's backups (default: the database name in --db).
    #[arg(long, value_name = "ID")]
    database_id: Option<String>,
    /// A backup id, or `latest` (with a change stream: the newest backup carried to the
    /// newest change streamed).
    #[arg(long, value_name = "ID", default_value = "latest")]
    backup: String,
    /// Recover to this time (RFC 3339, e.g. 2026-12-01T10:30:00Z): the newest backup before
    /// it, then every streamed transaction committed by then (without a change stream, the
    /// newest backup before it, and how far that is from it).
    #[arg(long, value_name = "TIME", value_parser = crate::common::parse_time, conflicts_with = "to_lsn")]
    to_time: Option<time::OffsetDateTime>,
    /// Recover to this WAL position (as pg_current_wal_lsn() prints it).
    #[arg(long, value_name = "LSN", value_parser = parse_lsn, conflicts_with = "before_xid")]
    to_lsn: Option<Lsn>,
    /// Recover to just before this transaction committed (its xid, as `backstop incidents`
    /// or pg_current_xact_id() gives it): everything committed before it, nothing of it.
    #[arg(long, value_name = "XID", conflicts_with = "to_time")]
    before_xid: Option<u64>,
    /// Make the tables of --tables in this new schema of the database in use, beside the
    /// live ones (with their indexes, constraints, owners and grants; without triggers, rules
    /// or foreign keys to other tables), replaying only their changes; nothing else is
    /// touched. Refused when the schema exists. Compare with `backstop compare`.
    #[arg(long, value_name = "SCHEMA")]
    into_schema: Option<String>,
    /// Parallel connections for loading and index builds.
    #[arg(long, value_name = "N", default_value_t = 2, value_parser = at_least_one)]
    jobs: usize,
    /// Restore only these tables (comma-separated schema.table or table; `*` and `?` match as
    /// in pg_dump's patterns, e.g. 'app.*'): into an empty database with the schemas, types and
    /// functions they need; into one with other objects, the tables alone, beside them.
    #[arg(short = 't', long, value_name = "LIST")]
    tables: Option<Vec<String>>,
    /// Restore only the tables of this schema (repeatable; a pattern): as --tables 'SCHEMA.*'.
    #[arg(short = 'n', long = "schema", value_name = "SCHEMA")]
    schemas: Vec<String>,
    /// Make these tables (names or patterns, repeatable) without their rows.
    #[arg(long, value_name = "PATTERN")]
    exclude_table_data: Vec<String>,
    /// Only the schema: every object, no table's rows, no large objects, no sequence values
    /// (the pre-data and post-data sections).
    #[arg(short = 's', long, conflicts_with_all = ["data_only", "section"])]
    schema_only: bool,
    /// Only the data, into the tables the target already has, empty (or emptied first with
    /// --clean): rows, large objects' contents and sequence values (the data section). Needs
    /// a superuser: the tables' foreign keys and triggers are held back while rows go in.
    #[arg(short = 'a', long, conflicts_with = "section")]
    data_only: bool,
    /// Restore only these of pg_dump's sections (repeatable): pre-data (the objects), data
    /// (the rows), post-data (indexes, constraints, triggers...). Without pre-data the target
    /// must already hold the objects.
    #[arg(long, value_enum, value_name = "SECTION")]
    section: Vec<SectionArg>,
    /// Read selections from this file, in pg_dump 17's `--filter` syntax: one per line,
    /// `include table PATTERN`, `include schema PATTERN` or `exclude table_data PATTERN`
    /// (`#` starts a comment).
    #[arg(long, value_name = "FILE")]
    filter: Option<std::path::PathBuf>,
    /// Replace what is there: every object of the target database, or with --tables only
    /// those tables. Every part is read and checked first; nothing is dropped if one is bad,
    /// or if something outside --tables depends on a table it would replace.
    #[arg(long)]
    clean: bool,
    /// Skip `ALTER ... OWNER TO`: objects belong to the role that restores them (for a
    /// server without the source's roles).
    #[arg(long)]
    no_owner: bool,
    /// Skip privileges: GRANT, REVOKE and default privileges.
    #[arg(long)]
    no_acl: bool,
    /// Create the database named in --db, with the source's owner, encoding, locale,
    /// comment, grants and settings, then restore into it.
    #[arg(long)]
    create: bool,
    /// Leave the planner without statistics: skip the last phase (applying the backup's onto
    /// PostgreSQL 18 and later, ANALYZE before 18). Queries may plan badly until ANALYZE or
    /// autovacuum runs.
    #[arg(long)]
    no_statistics: bool,
    /// Roles the backup needs that the target lacks: `plan` prints which are there, which are
    /// missing and what `create` would do, and changes nothing; `create` makes them
    /// (attributes, settings, memberships, no password); `skip` does not look. Default:
    /// restore only if none is missing, else name them and change nothing.
    #[arg(long, value_enum, value_name = "WHAT")]
    roles: Option<RolesArg>,
    /// OLD=NEW: objects and grants of role OLD go to NEW (repeatable).
    #[arg(long = "role-map", value_name = "OLD=NEW", value_parser = role_pair)]
    role_map: Vec<(String, String)>,
    #[command(flatten)]
    identity: crate::keys::IdentityArgs,
    /// Print the outcome as JSON (tables, rows, duration, store requests).
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum SectionArg {
    PreData,
    Data,
    PostData,
}

/// The sections `-s`, `-a` and `--section` ask for (all of them when none does).
fn sections(args: &RestoreArgs) -> Sections {
    if args.schema_only {
        return Sections {
            data: false,
            ..Sections::ALL
        };
    }
    if args.data_only {
        return Sections {
            pre_data: false,
            data: true,
            post_data: false,
        };
    }
    if args.section.is_empty() {
        return Sections::ALL;
    }
    Sections {
        pre_data: args.section.contains(&SectionArg::PreData),
        data: args.section.contains(&SectionArg::Data),
        post_data: args.section.contains(&SectionArg::PostData),
    }
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum RolesArg {
    Plan,
    Create,
    Skip,
}

/// The newest committed backup of `database` taken at or before `time`, with when it started
/// (its snapshot is taken as it starts).
async fn newest_backup_before(
    store: &dyn backstop::store::Store,
    database: &backstop::layout::DatabaseId,
    time: time::OffsetDateTime,
) -> anyhow::Result<(backstop::layout::BackupId, time::OffsetDateTime)> {
    let listing = store
        .list(&backstop::layout::database_prefix(database))
        .await?;
    let ids = backstop::layout::committed_backups(database, listing.iter().map(|o| o.key.as_str()));
    // Ids hold whole seconds, at or before the true start: the manifest has the exact time.
    for id in ids
        .iter()
        .rev()
        .filter(|id| id.started_at().is_some_and(|s| s <= time))
    {
        let manifest = read_manifest(store, database, &BackupSelector::Id(id.clone())).await?;
        if manifest.started_at <= time {
            return Ok((id.clone(), manifest.started_at));
        }
    }
    match ids.first() {
        Some(oldest) => anyhow::bail!(
            "no backup of {database} was taken before {}: the oldest is {oldest}; restore that one with --backup {oldest}, or pick a later time",
            rfc3339(time)
        ),
        None => anyhow::bail!(
            "no backups of {database} in {}; take one with `backstop backup`",
            store.url()
        ),
    }
}

/// What `--tables`, `--schema`, `--exclude-table-data` and `--filter` select, together.
#[derive(Debug, Default, PartialEq, Eq)]
struct Selection {
    /// `None`: every table.
    tables: Option<Vec<String>>,
    exclude_table_data: Vec<String>,
}

impl Selection {
    fn of(args: &RestoreArgs) -> anyhow::Result<Self> {
        // Commas inside a double-quoted name are the name's (`public."a,b"`).
        let mut tables: Option<Vec<String>> = args
            .tables
            .as_ref()
            .map(|lists| lists.iter().flat_map(|l| split_names(l)).collect());
        let mut include = |name: String| tables.get_or_insert_with(Vec::new).push(name);
        for schema in &args.schemas {
            include(format!("{schema}.*"));
        }
        let mut exclude_table_data = args.exclude_table_data.clone();
        if let Some(path) = &args.filter {
            let text = std::fs::read_to_string(path).map_err(|e| {
                anyhow::anyhow!("cannot read the filter file {}: {e}", path.display())
            })?;
            for (number, line) in text.lines().enumerate() {
                let line = line.split('#').next().unwrap_or_default().trim();
                if line.is_empty() {
                    continue;
                }
                let words: Vec<&str> = line.splitn(3, char::is_whitespace).collect();
                match words.as_slice() {
                    ["include", "table", pattern] => include(pattern.trim().to_string()),
                    ["include", "schema", pattern] => include(format!("{}.*", pattern.trim())),
                    ["exclude", "table_data", pattern] => {
                        exclude_table_data.push(pattern.trim().to_string())
                    }
                    _ => anyhow::bail!(
                        "{} line {}: `{line}` is not one a restore takes; use `include table PATTERN`, \
                         `include schema PATTERN` or `exclude table_data PATTERN`",
                        path.display(),
                        number + 1
                    ),
                }
            }
        }
        Ok(Self {
            tables,
            exclude_table_data,
        })
    }
}

/// A comma-separated list of names split at the commas outside double quotes.
fn split_names(list: &str) -> Vec<String> {
    let mut names = Vec::new();
    let (mut current, mut quoted) = (String::new(), false);
    for c in list.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                current.push(c);
            }
            ',' if !quoted => names.push(std::mem::take(&mut current)),
            _ => current.push(c),
        }
    }
    names.push(current);
    names.into_iter().filter(|n| !n.is_empty()).collect()
}

fn parse_lsn(text: &str) -> Result<Lsn, String> {
    text.parse()
}

fn role_pair(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((old, new)) if !old.is_empty() && !new.is_empty() => {
            Ok((old.to_string(), new.to_string()))
        }
        _ => Err(format!("`{text}` is not OLD=NEW (two role names)")),
    }
}

pub async fn run_restore(args: RestoreArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let url: StoreUrl = args.from.parse()?;
    let counted = std::sync::Arc::new(CountingStore::new(open_from_env(&url).await));
    let store: std::sync::Arc<dyn backstop::store::Store> = counted.clone();
    let target = crate::common::target(args.db.as_deref())?;
    let database = database_id(args.database_id.as_deref(), Some(&target), store.as_ref()).await?;
    let mut selector: BackupSelector = args.backup.parse()?;
    let selection = Selection::of(&args)?;
    // A restore of some tables, or without rows, replays no change stream, unless the tables
    // go into a schema apart: then only their changes are replayed.
    let selective = selection.tables.is_some()
        || sections(&args) != Sections::ALL
        || !selection.exclude_table_data.is_empty();
    let apart = args.into_schema.is_some();
    if apart && selection.tables.is_none() {
        anyhow::bail!(
            "--into-schema restores chosen tables: name them with --tables (or --schema)"
        );
    }
    let identities = args.identity.identities()?;
    let pinned = args.to_time.is_some() || args.to_lsn.is_some() || args.before_xid.is_some();
    if pinned && selector != BackupSelector::Latest {
        anyhow::bail!(
            "--to-time, --to-lsn and --before-xid choose the backup themselves; leave out --backup"
        );
    }
    let streamed = has_stream(store.as_ref(), &database).await?;
    let mut before_full_xid = None;
    let to_lsn = match args.before_xid {
        None => args.to_lsn,
        Some(_) if !streamed => anyhow::bail!(
            "{database} has no change stream, so no transaction can be found in it; restore to \
             a time with --to-time (the newest backup before it)"
        ),
        Some(xid) => {
            let found = find_transaction(store.as_ref(), &database, xid, identities.as_deref())
                .await?
                .ok_or_else(|| {
                    anyhow::anyhow!(
                        "transaction {xid} is not in the change stream of {database} (it wrote \
                         nothing, or it is older than the stream); `backstop incidents --from {}` \
                         lists the streamed ones",
                        args.from
                    )
                })?;
            eprintln!(
                "restoring to just before transaction {} (committed at {}, LSN {})",
                found.xid,
                rfc3339(found.commit_time),
                found.commit_lsn
            );
            before_full_xid = Some(found.xid);
            Some(Lsn(found.commit_lsn.0.saturating_sub(1)))
        }
    };
    let recovery_target = match (args.to_time, to_lsn) {
        // Without a change stream the newest backup before the time is as close as it gets.
        (Some(time), _) if !streamed => {
            let (id, started) = newest_backup_before(store.as_ref(), &database, time).await?;
            eprintln!(
                "{database} has no change stream: restoring backup {id}, taken at {}, {} before \
                 {}; what changed in between is in no backup",
                rfc3339(started),
                backstop::clock::span(
                    std::time::Duration::try_from(time - started).unwrap_or_default()
                ),
                rfc3339(time)
            );
            selector = BackupSelector::Id(id);
            None
        }
        (Some(time), _) => Some(RecoveryTarget::Time(time)),
        (None, Some(lsn)) => Some(RecoveryTarget::Lsn(lsn)),
        (None, None) if selector == BackupSelector::Latest && streamed && (!selective || apart) => {
            Some(RecoveryTarget::Latest)
        }
        (None, None) => None,
    };
    let mut recovery = match recovery_target {
        Some(target) => {
            Some(plan_recovery(store.as_ref(), &database, target, identities.as_deref()).await?)
        }
        None => None,
    };
    // Just before a transaction is no time a seal names: the report says the transaction.
    // A base whose snapshot already holds it (a commit written after the WAL position the
    // backup recorded) cannot be taken back to before it.
    if let (Some(recovery), Some(xid)) = (recovery.as_mut(), before_full_xid) {
        recovery.recovered_to = None;
        let holds = recovery
            .manifest
            .snapshot
            .as_deref()
            .and_then(backstop::engine::stream::segment::Snapshot::parse)
            .is_none_or(|snapshot| snapshot.sees(xid));
        if holds {
            anyhow::bail!(
                "backup {} already holds transaction {xid} (it committed as the backup started), \
                 so it cannot be restored to before it; restore an earlier backup with --backup \
                 (`backstop list` shows them)",
                recovery.manifest.backup_id
            );
        }
    }
    let manifest = match &recovery {
        Some(recovery) => recovery.manifest.clone(),
        None => read_manifest(store.as_ref(), &database, &selector).await?,
    }
    .open(identities.clone())?;
    crate::keys::warn_if_plaintext(&manifest, identities.is_some());
    let options = RestoreOptions {
        jobs: args.jobs,
        tables: selection.tables,
        exclude_table_data: selection.exclude_table_data,
        sections: sections(&args),
        clean: args.clean,
        no_owner: args.no_owner,
        no_acl: args.no_acl,
        roles: match args.roles {
            None => RolesMode::Check,
            Some(RolesArg::Plan) => RolesMode::Plan,
            Some(RolesArg::Create) => RolesMode::Create,
            Some(RolesArg::Skip) => RolesMode::Skip,
        },
        role_map: args.role_map,
        create_database: args.create,
        statistics: !args.no_statistics,
        into_schema: args.into_schema.clone(),
        ..RestoreOptions::new(args.jobs)
    };
    if selective && !apart && recovery.as_ref().is_some_and(|r| !r.segments.is_empty()) {
        anyhow::bail!(
            "a point-in-time restore into the database replays every table's changes; to bring \
             some tables back as of a moment, add --into-schema NAME (they are made in that new \
             schema, beside the live ones), or leave out --tables, --schema, --schema-only, \
             --data-only, --section, --exclude-table-data and --filter"
        );
    }
    if options.roles == RolesMode::Plan {
        let plan = role_plan(store.as_ref(), &manifest, &target, &options).await?;
        if args.json {
            let summary = serde_json::json!({
                "backup_id": manifest.backup_id,
                "present": plan.present,
                "missing": plan.missing,
                "missing_members": plan.missing_members,
                "mapped": plan.map,
                "notes": plan.mapped,
            });
            outln!("{}", serde_json::to_string_pretty(&summary)?);
        } else {
            outln!(
                "roles for backup {} (nothing was changed):",
                manifest.backup_id
            );
            for line in describe_plan(&plan) {
                outln!("  {line}");
            }
        }
        return Ok(());
    }
    let progress = Progress::new("restore", args.json);
    if let Some(measured) =
        backstop::status::newest_measured_restore(store.as_ref(), &database).await?
    {
        progress.say(format!(
            "last measured restore of {database}: {}ready in {} (backup {}, verified {})",
            measured
                .loaded_seconds
                .map(|s| format!("loaded in {}, ", backstop::status::page::seconds_text(s)))
                .unwrap_or_default(),
            backstop::status::page::seconds_text(measured.restore_seconds),
            measured.backup_id,
            rfc3339(
                measured
                    .checked_at
                    .replace_nanosecond(0)
                    .unwrap_or(measured.checked_at)
            )
        ));
    }
    progress.phase("pre-data", 0, Unit::Time);
    let rows_loaded = std::sync::atomic::AtomicU64::new(0);
    let (builds_done, builds_total) = (
        std::sync::atomic::AtomicUsize::new(0),
        std::sync::atomic::AtomicUsize::new(0),
    );
    let on_event = |event: RestoreEvent| match event {
        RestoreEvent::Started {
            backup_id,
            tables,
            rows,
        } => progress.say(format!(
            "restoring backup {backup_id}: {tables} tables, {rows} rows"
        )),
        RestoreEvent::DataStarted { bytes, builds } => {
            builds_total.store(builds, std::sync::atomic::Ordering::Relaxed);
            progress.phase("data", bytes, Unit::Bytes);
            let counted = counted.clone();
            progress.follow(move || counted.bytes_read());
        }
        RestoreEvent::TableLoaded { table, rows } => {
            let total = rows_loaded.fetch_add(rows, std::sync::atomic::Ordering::Relaxed) + rows;
            progress.note(format!("  loaded {table} ({rows} rows)"));
            progress.message(format!("{total} rows; last {table}"));
        }
        RestoreEvent::Built { items } => {
            let done = builds_done.fetch_add(items, std::sync::atomic::Ordering::Relaxed) + items;
            progress.message(format!(
                "{} rows; indexes and constraints {done}/{}",
                rows_loaded.load(std::sync::atomic::Ordering::Relaxed),
                builds_total.load(std::sync::atomic::Ordering::Relaxed)
            ));
        }
        RestoreEvent::PostDataStarted { items } => {
            progress.phase("post-data", items as u64, Unit::Items);
        }
        RestoreEvent::PostDataRan { items } => progress.advance(items as u64),
        RestoreEvent::StatisticsStarted { relations, tables } => {
            progress.phase("statistics", 0, Unit::Time);
            progress.message(match (relations, tables) {
                (0, tables) => format!("ANALYZE of {tables} tables"),
                (relations, 0) => format!("the backup's statistics of {relations} relations"),
                (relations, tables) => format!(
                    "the backup's statistics of {relations} relations, ANALYZE of {tables} tables"
                ),
            });
        }
    };
    crate::common::interrupt_on_signals(&options.interrupt);
    let report = restore(store.clone(), &manifest, &target, &options, &on_event).await;
    match &report {
        Ok(_) => progress.finish(),
        Err(_) => progress.abandon(),
    }
    let report = report?;
    let replayed: Option<ReplayReport> = match &recovery {
        Some(recovery) if !recovery.segments.is_empty() => {
            // The tables by schema and name as they are: the stream's names are matched
            // with those, never with a quoting of them.
            let scope = args.into_schema.as_ref().map(|schema| TableScope {
                tables: manifest
                    .tables()
                    .iter()
                    .filter(|(q, _)| report.moved_to.contains_key(**q))
                    .filter_map(|(_, blocks)| blocks.first())
                    .map(|(_, t)| TableName {
                        schema: t.schema.clone(),
                        name: t.name.clone(),
                    })
                    .collect(),
                schema: schema.clone(),
            });
            let replaying = async {
                match &scope {
                    Some(scope) => {
                        replay_tables(store, recovery, &target, identities.as_deref(), scope).await
                    }
                    None => replay(store, recovery, &target, identities.as_deref()).await,
                }
            };
            // The replay is one transaction: stopped or failed, none of it stays.
            let unfinished = |what: String| match &args.into_schema {
                Some(schema) => anyhow::anyhow!(
                    "{what}; schema {schema} holds the tables as backup {} has them, not carried \
                     forward (the replay is rolled back): drop it (DROP SCHEMA {} CASCADE) and \
                     restore again",
                    report.backup_id,
                    backstop::engine::catalog::ident(schema)
                ),
                None => anyhow::anyhow!(
                    "{what}; the backup is restored and none of the replay was kept: restore \
                     again with --clean"
                ),
            };
            let replayed = tokio::select! {
                biased;
                replayed = replaying => replayed.map_err(|e| unfinished(e.to_string()))?,
                _ = options.interrupt.cancelled() => {
                    return Err(unfinished("interrupted while replaying the change stream".into()))
                }
            };
            Some(replayed)
        }
        _ => None,
    };
    let requests = counted.requests();
    if args.json {
        let roles = report.roles.as_ref().map(|r| {
            serde_json::json!({
                "created": r.created,
                "mapped": r.mapped,
                "not_granted": r.not_granted,
                "joined": r.joined,
                "passwords_to_set": r.passwords_to_set,
            })
        });
        let summary = serde_json::json!({
            "backup_id": report.backup_id,
            "database_id": manifest.database_id,
            "created_database": report.created_database,
            "tables": report.tables,
            "rows": report.rows,
            "roles": roles,
            "not_granted": report.not_granted,
            "left_out": report.left_out,
            "moved_to": report.moved_to,
            "replayed": replayed.as_ref().map(|r| serde_json::json!({
                "segments": r.segments,
                "transactions": r.transactions,
                "changes": r.changes,
                "skipped": r.skipped,
                "sequences": r.sequences,
                "recovered_to": r.recovered_to.map(rfc3339),
                "before_xid": args.before_xid,
            })),
            "statistics": report.statistics,
            "loaded_seconds": report.loaded_seconds,
            "ready_seconds": report.ready_seconds,
            "duration_seconds": started.elapsed().as_secs_f64(),
            "requests": requests,
        });
        outln!("{}", serde_json::to_string_pretty(&summary)?);
        return Ok(());
    }
    if let Some(name) = &report.created_database {
        outln!("created database {name}");
    }
    if let Some(roles) = &report.roles {
        if !roles.created.is_empty() {
            outln!("created roles: {}", roles.created.join(", "));
        }
        for line in &roles.mapped {
            outln!("mapped: {line}");
        }
        for role in &roles.joined {
            outln!("made you a member of {role}, to give it its objects");
        }
        for line in &roles.not_granted {
            outln!("not granted: {line}");
        }
        if !roles.passwords_to_set.is_empty() {
            outln!("these login roles have no password yet; set one for each:");
            for statement in &roles.passwords_to_set {
                outln!("  {statement}");
            }
        }
    }
    for line in &report.not_granted {
        outln!("not granted: {line}");
    }
    for line in &report.left_out {
        outln!("left out: {line}");
    }
    for (table, moved) in &report.moved_to {
        outln!("restored {table} as {moved}");
    }
    if let Some(schema) = &args.into_schema {
        outln!(
            "note: making schema {schema} (and dropping it later) is a schema change to the \
             change stream: a point-in-time restore of the whole database cannot cross it until \
             the next backup; take one once it is dropped"
        );
    }
    if let Some(replayed) = &replayed {
        outln!(
            "replayed {} transactions ({} changes) from {} segments onto it{}; {} sequences set",
            replayed.transactions,
            replayed.changes,
            replayed.segments,
            match (replayed.recovered_to, args.before_xid) {
                (_, Some(xid)) => format!(", recovered to just before transaction {xid}"),
                (Some(t), None) => format!(", recovered to {}", rfc3339(t)),
                (None, None) => String::new(),
            },
            replayed.sequences
        );
    }
    for line in statistics_lines(&report.statistics) {
        outln!("{line}");
    }
    outln!(
        "loaded in {:.1}s, ready (statistics in place) in {:.1}s",
        report.loaded_seconds,
        report.ready_seconds
    );
    outln!(
        "restored backup {} of {} into {}: {} tables, {} rows in {:.1}s ({} store requests)",
        report.backup_id,
        manifest.database_id,
        backstop::pg::database_name(&target).unwrap_or_default(),
        report.tables,
        report.rows,
        started.elapsed().as_secs_f64(),
        requests.total()
    );
    Ok(())
}

/// What the planner got, in lines: applied or analyzed, and what was not carried.
fn statistics_lines(outcome: &StatisticsOutcome) -> Vec<String> {
    match outcome {
        StatisticsOutcome::Applied {
            relations,
            analyzed,
            dropped,
        } => {
            let mut lines = vec![format!(
                "statistics: the backup's, applied to {relations} relations{}",
                match analyzed {
                    0 => String::new(),
                    n => format!("; {n} tables ANALYZEd (the backup role could not read theirs)"),
                }
            )];
            lines.extend(dropped.iter().map(|d| format!("statistics: {d}")));
            lines
        }
        StatisticsOutcome::Analyzed { tables, dropped } => {
            let mut lines = vec![format!(
                "statistics: {tables} tables ANALYZEd (the target imports none before PostgreSQL 18, or the backup holds none)"
            )];
            lines.extend(dropped.iter().map(|d| format!("statistics: {d}")));
            lines
        }
        StatisticsOutcome::Skipped => vec![
            "statistics: none (--no-statistics); run ANALYZE before relying on query plans".into(),
        ],
    }
}

fn rfc3339(time: time::OffsetDateTime) -> String {
    time.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Example:\n  backstop export --from s3://my-backups/prod --database-id app -o app.sql && psql -d new_app -f app.sql"
)]
pub struct ExportArgs {
    #[command(flatten)]
    set: crate::common::SetArgs,
    /// Write the script here instead of standard output.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    output: Option<std::path::PathBuf>,
    /// Leave out `ALTER ... OWNER TO`: objects belong to whoever runs the script.
    #[arg(long)]
    no_owner: bool,
    /// Leave out privileges: GRANT, REVOKE and default privileges.
    #[arg(long)]
    no_acl: bool,
    /// Leave out the `\restrict KEY` line that makes psql refuse meta-commands in the script
    /// (needed only for psql older than 18, 17.6, 16.10, 15.14, 14.19 and 13.22).
    #[arg(long)]
    no_restrict: bool,
    /// Write the planner's statistics too (as `pg_dump --statistics`): the script then runs
    /// on PostgreSQL 18 and later only, and the restored database plans like the source
    /// without an ANALYZE.
    #[arg(long)]
    statistics: bool,
    #[command(flatten)]
    identity: crate::keys::IdentityArgs,
}

pub async fn run_export(args: ExportArgs) -> anyhow::Result<()> {
    let url: StoreUrl = args.set.from.parse()?;
    let counted = std::sync::Arc::new(CountingStore::new(open_from_env(&url).await));
    let store: std::sync::Arc<dyn backstop::store::Store> = counted.clone();
    let database = database_id(args.set.database_id.as_deref(), None, store.as_ref()).await?;
    let selector: BackupSelector = args.set.backup.parse()?;
    let manifest = read_manifest(store.as_ref(), &database, &selector)
        .await?
        .open(args.identity.identities()?)?;
    crate::keys::warn_if_plaintext(&manifest, args.identity.identities()?.is_some());
    let options = ExportOptions {
        no_owner: args.no_owner,
        no_acl: args.no_acl,
        no_restrict: args.no_restrict,
        statistics: args.statistics,
    };
    if manifest.is_encrypted() {
        eprintln!(
            "warning: backup {} is encrypted; this export of it is plain text: keep it as safe as the key",
            manifest.backup_id
        );
    }
    // Into a pipe (`export | psql`), a bar only when stderr is a terminal: no line in between.
    let progress = Progress::new(
        "export",
        args.output.is_none() && !crate::common::interactive(),
    );
    // Each data part is read twice: checked through, then written (what is written is what
    // was checked); each SQL part once.
    let to_read = manifest
        .parts
        .iter()
        .map(|p| match p.kind {
            backstop::engine::manifest::PartKind::Data => 2 * p.bytes,
            _ => p.bytes,
        })
        .sum();
    progress.phase("export", to_read, Unit::Bytes);
    {
        let counted = counted.clone();
        progress.follow(move || counted.bytes_read());
    }
    match &args.output {
        Some(path) => {
            let temp = path.with_extension("partial");
            // Readable by its owner only: it holds the database's data.
            let mut file = tokio::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&temp)
                .await
                .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", temp.display()))?;
            {
                use std::os::unix::fs::PermissionsExt as _;
                file.set_permissions(std::fs::Permissions::from_mode(0o600))
                    .await
                    .map_err(|e| anyhow::anyhow!("cannot restrict {}: {e}", temp.display()))?;
            }
            let written: anyhow::Result<()> = async {
                export(store.as_ref(), &manifest, &options, &mut file).await?;
                file.sync_all().await?;
                tokio::fs::rename(&temp, path).await?;
                Ok(())
            }
            .await;
            if let Err(e) = written {
                let _ = tokio::fs::remove_file(&temp).await;
                return Err(e);
            }
            progress.finish();
            eprintln!(
                "exported backup {} to {}",
                manifest.backup_id,
                path.display()
            );
        }
        None => {
            let mut stdout = tokio::io::stdout();
            export(store.as_ref(), &manifest, &options, &mut stdout).await?;
            stdout.flush().await?;
            progress.finish();
        }
    }
    Ok(())
}
