//! What can go wrong in a restore, each with what to do about it.

use backstop_pg::ConnectError;
use backstop_pg::version::ServerVersion;
use backstop_store::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    #[error(transparent)]
    Connect(#[from] ConnectError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Open(#[from] crate::manifest::OpenError),
    #[error(
        "no backups of `{database}` in {store}; check --database-id or take one with `backstop backup`"
    )]
    NoBackups { database: String, store: String },
    #[error(
        "backup {backup} of `{database}` not found in {store}; `backstop list --from {store}` shows what is there"
    )]
    BackupNotFound {
        backup: String,
        database: String,
        store: String,
    },
    #[error("manifest `{key}` is unreadable: {reason}")]
    Manifest { key: String, reason: String },
    #[error(
        "manifest `{key}` has format version {found}, newer than this Backstop understands ({supported}); upgrade Backstop"
    )]
    ManifestNewer {
        key: String,
        found: u32,
        supported: u32,
    },
    #[error(
        "part `{part}` of backup {backup} is corrupt: {reason}; restore an earlier backup (`backstop list` shows them)"
    )]
    Corrupt {
        backup: String,
        part: String,
        reason: String,
    },
    #[error(
        "part `{part}` of backup {backup} is carried forward by {bytes} bytes of row deltas, more than the {limit} bytes a restore holds in memory to apply them; restore another backup (`backstop list` shows them)"
    )]
    DeltasTooLarge {
        backup: String,
        part: String,
        bytes: u64,
        limit: u64,
    },
    #[error(
        "target database `{database}` is not empty ({count} objects, e.g. {examples}); restore into an empty database or pass --clean to drop them first"
    )]
    NotEmpty {
        database: String,
        count: usize,
        examples: String,
    },
    #[error("target database `{database}` is not ready for {what}: {reason}")]
    NotReady {
        database: String,
        what: &'static str,
        reason: String,
    },
    #[error(
        "tables {tables} already exist in target database `{database}`; pass --clean to replace them (only them), or restore into another database"
    )]
    TablesExist { database: String, tables: String },
    #[error(
        "replacing {tables} would drop what depends on them from outside --tables: {dependents}; nothing was dropped. \
         Add the tables among them to --tables, drop the others first, or restore into an empty database and copy the rows you need"
    )]
    DependedOn { tables: String, dependents: String },
    #[error(
        "--clean could not lock what it replaces within {waited}: other sessions are using it ({reason}); nothing was dropped. \
         Stop the application's connections to the target and restore again"
    )]
    CleanLocked {
        waited: &'static str,
        reason: String,
    },
    #[error(
        "the target server stopped answering ({reason}); the restore stopped, and database `{database}` may hold part of the backup: once the server answers, restore again with --clean"
    )]
    ServerSilent { database: String, reason: String },
    #[error(
        "the restore was interrupted; database `{database}` may hold part of the backup (what was loading was rolled back): restore again with --clean"
    )]
    Interrupted { database: String },
    #[error("{source}; nothing was dropped: every part is checked before --clean drops anything")]
    NothingDropped { source: Box<RestoreError> },
    #[error(
        "backup {backup} was taken on PostgreSQL {source_version}, and the target runs the older {target}: \
         a backup restores onto the same or a newer major version; restore onto PostgreSQL {source_major} or later"
    )]
    OlderTarget {
        backup: String,
        source_version: String,
        source_major: u32,
        target: ServerVersion,
    },
    #[error("no table in backup {backup} matches {names}; tables are named schema.table")]
    UnknownTables { backup: String, names: String },
    #[error("restoring {item} failed: {reason}")]
    Item { item: String, reason: String },
    #[error("loading {table} failed: {reason}")]
    Load { table: String, reason: String },
    #[error("{step} failed: {reason}")]
    Database { step: &'static str, reason: String },
    #[error(
        "the newest backup of {database}, {newest}, starts {ahead} in the future by this host's \
         clock (its writer's clock was ahead, or this host's is behind), so `latest` is not \
         trusted; check both clocks, then pass --backup {newest}{before_now}"
    )]
    LatestInTheFuture {
        database: String,
        newest: String,
        ahead: String,
        before_now: String,
    },
    /// Where the export goes stopped taking it (a closed pipe, a full disk): nothing is wrong
    /// with the backup.
    #[error("writing the export failed: {source} (the backup is not at fault)")]
    Output {
        #[source]
        source: std::io::Error,
    },
    #[error(
        "the target lacks roles backup {backup} needs: {roles}; nothing was changed. \
         Restore with --roles create to make them, --role-map OLD=NEW to use others, or --no-owner --no-acl to drop ownership and grants"
    )]
    RolesMissing { backup: String, roles: String },
    #[error("{}; nothing was changed", problems.join("; "))]
    RoleOptions { problems: Vec<String> },
    #[error("{reason}")]
    Roles { reason: String },
    #[error(
        "backup {backup} holds no roles or database properties (it was taken before Backstop kept them): \
         --roles {what} and --create need them; create the roles by hand, or restore with --no-owner --no-acl"
    )]
    NoGlobals { backup: String, what: &'static str },
    #[error(
        "database `{database}` already exists on the target; --create makes a new one: drop it, or restore into it without --create"
    )]
    DatabaseExists { database: String },
    #[error(
        "backup {backup} holds security labels of {providers}, which the target server has not loaded; \
         load the provider on the target (shared_preload_libraries, then a restart) and restore again; no object was restored"
    )]
    LabelProvidersMissing { backup: String, providers: String },
    #[error(
        "schema `{schema}` already exists in database `{database}`; --into-schema makes a new one \
         beside the live objects and never writes into one that is there: pick another name, or \
         drop it (DROP SCHEMA {quoted} CASCADE) once nothing in it is needed"
    )]
    SchemaExists {
        database: String,
        schema: String,
        quoted: String,
    },
    #[error("--into-schema {reason}")]
    IntoSchema { reason: String },
    #[error(
        "{reason}; database `{database}` holds part of the new schema `{schema}` and nothing else \
         was changed: drop it (DROP SCHEMA {quoted} CASCADE) and restore again"
    )]
    IntoSchemaStopped {
        database: String,
        schema: String,
        quoted: String,
        reason: String,
    },
    #[error("{source}; the target database `{database}` now holds part of the backup: {remedy}")]
    Incomplete {
        database: String,
        source: Box<RestoreError>,
        /// What to do about it: restore again with --clean, or drop what --create made.
        remedy: String,
    },
}

impl RestoreError {
    /// What went wrong, without what it left behind.
    pub fn cause(self) -> RestoreError {
        match self {
            RestoreError::Incomplete { source, .. } | RestoreError::NothingDropped { source } => {
                source.cause()
            }
            other => other,
        }
    }
}
