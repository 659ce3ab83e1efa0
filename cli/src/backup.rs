//! `backstop backup`: takes a backup of a database into a store.

use std::time::Instant;

use backstop::engine::backup::{BackupError, BackupEvent, BackupOptions, backup_exclusively};
use backstop::engine::inventory::{PRIVILEGE_KIND, SECURITY_LABEL_KIND, STATISTICS_KIND};
use backstop::store::{CountingStore, Requests, StoreUrl, open_from_env};
use backstop::tier::Tier;
use serde::Serialize;

use crate::common::{TierChoice, at_least_one, database_id, size};
use crate::progress::{Progress, Unit};

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Example:\n  backstop backup --db postgresql://backup@db.internal:5432/app --to s3://my-backups/prod --jobs 4"
)]
pub struct Args {
    /// Database to back up, as psql takes it (a postgresql:// URL, key=value pairs
    /// or a database name); the rest from PGHOST, PGUSER and the other PG* variables, PGSERVICE
    /// and ~/.pgpass.
    #[arg(
        long,
        value_name = "URL",
        env = "BACKSTOP_DATABASE_URL",
        hide_env_values = true
    )]
    db: Option<String>,
    /// Store to write to: file:///path or s3://bucket/prefix.
    #[arg(long, value_name = "STORE")]
    to: String,
    /// Name of the database in the store (default: the database name in the URL).
    #[arg(long, value_name = "ID")]
    database_id: Option<String>,
    /// Parallel COPY connections.
    #[arg(long, value_name = "N", default_value_t = 2, value_parser = at_least_one)]
    jobs: usize,
    /// Tier tag for lifecycle rules; auto: monthly for the first backup of a month, weekly for
    /// the first of an ISO week, else daily.
    #[arg(long, value_name = "TIER", value_enum, default_value_t = TierChoice::Auto)]
    tier: TierChoice,
    /// Leave out an object the engine cannot reproduce, as `KIND IDENTITY` (repeatable).
    #[arg(long, value_name = "OBJECT")]
    exclude: Vec<String>,
    /// zstd level for the parts (1 is fastest; higher is smaller and slower).
    #[arg(long, value_name = "LEVEL", default_value_t = 1, value_parser = clap::value_parser!(i32).range(1..=19))]
    compression_level: i32,
    /// Why this backup is taken (recorded in the manifest), e.g. "before migration 00021".
    #[arg(long, value_name = "TEXT")]
    reason: Option<String>,
    /// Keep the roles' password hashes in the backup, so a restore onto a new server creates
    /// them with their passwords (needs a superuser; the hashes are then in the store).
    #[arg(long)]
    include_role_passwords: bool,
    #[command(flatten)]
    encryption: crate::keys::RecipientArgs,
    /// Store table data as shared chunks: what an earlier backup of the database already
    /// stored is named, not stored again, so each backup stores about what changed.
    #[arg(long, env = "BACKSTOP_INCREMENTAL")]
    incremental: bool,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Serialize)]
struct Summary {
    backup_id: String,
    database_id: String,
    tier: Tier,
    tables: usize,
    rows: u64,
    bytes: u64,
    /// What the backup added to the store (less than `bytes` when it names shared chunks an
    /// earlier backup stored).
    new_bytes: u64,
    duration_seconds: f64,
    /// Seconds until the catalog was read, checked and ordered (before the first row).
    catalog_seconds: Option<f64>,
    /// Database objects the backup reproduces (the inventory's count).
    database_objects: u64,
    /// Objects the backup set holds.
    objects: u64,
    /// Requests made to the store.
    requests: Requests,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let started = Instant::now();
    let url: StoreUrl = args.to.parse()?;
    let counted = std::sync::Arc::new(CountingStore::new(open_from_env(&url).await));
    let store: std::sync::Arc<dyn backstop::store::Store> = counted.clone();
    let config = crate::common::target(args.db.as_deref())?;
    let mut options = BackupOptions::new(
        database_id(args.database_id.as_deref(), Some(&config), store.as_ref()).await?,
    );
    options.jobs = args.jobs;
    options.tier = args.tier.tier();
    options.exclude = args.exclude;
    options.compression_level = args.compression_level;
    options.reason = args.reason;
    options.include_role_passwords = args.include_role_passwords;
    options.recipients = args.encryption.recipients()?;
    options.incremental = args.incremental;
    options.chunk_key = backstop::config::chunk_key(&|name| std::env::var(name).ok())?;
    let progress = Progress::new("backup", args.json);
    progress.phase("catalog", 0, Unit::Time);
    let catalog_seconds = std::sync::Mutex::new(None);
    let rows_copied = std::sync::atomic::AtomicU64::new(0);
    let on_event = |event: BackupEvent| match event {
        BackupEvent::Started {
            backup_id,
            tables,
            table_bytes,
            catalog_seconds: seconds,
        } => {
            if let Ok(mut recorded) = catalog_seconds.lock() {
                *recorded = Some(seconds);
            }
            // The bar counts the tables' size in the database as their parts are stored;
            // the message, what the store has taken so far (compressed).
            progress.phase("data", table_bytes, Unit::Bytes);
            progress.say(format!(
                "backing up {tables} tables ({}) as {backup_id}",
                size(table_bytes)
            ));
        }
        BackupEvent::PartStored {
            table,
            rows,
            stored_bytes,
            table_bytes,
        } => {
            let total = rows_copied.fetch_add(rows, std::sync::atomic::Ordering::Relaxed) + rows;
            progress.note(format!(
                "  {table}: {rows} rows, {} stored",
                size(stored_bytes)
            ));
            progress.advance(table_bytes);
            progress.message(format!(
                "{total} rows, {} stored",
                size(counted.bytes_written())
            ));
        }
        BackupEvent::Finished { .. } => progress.finish(),
    };
    crate::common::interrupt_on_signals(&options.interrupt);
    let holder = crate::common::lease_holder();
    let manifest = match backup_exclusively(&config, store, &options, &holder, &on_event).await {
        Ok(manifest) => manifest,
        Err(BackupError::Unsupported { objects, arguments }) if args.json => {
            // Every refused object, with the argument that excludes it.
            let refused: Vec<serde_json::Value> = objects
                .iter()
                .zip(&arguments)
                .map(
                    |(object, argument)| serde_json::json!({"object": object, "exclude": argument}),
                )
                .collect();
            outln!(
                "{}",
                serde_json::to_string_pretty(&serde_json::json!({ "refused": refused }))?
            );
            return Err(BackupError::Unsupported { objects, arguments }.into());
        }
        Err(e) => return Err(e.into()),
    };
    let summary = Summary {
        backup_id: manifest.backup_id.clone(),
        database_id: manifest.database_id.clone(),
        tier: manifest.tier,
        tables: manifest.tables().len(),
        rows: manifest.total_rows(),
        bytes: manifest.total_bytes(),
        new_bytes: manifest.added_bytes(),
        duration_seconds: started.elapsed().as_secs_f64(),
        catalog_seconds: catalog_seconds.lock().ok().and_then(|s| *s),
        database_objects: manifest
            .inventory
            .iter()
            .filter(|(kind, _)| {
                ![PRIVILEGE_KIND, SECURITY_LABEL_KIND, STATISTICS_KIND].contains(&kind.as_str())
            })
            .map(|(_, count)| count)
            .sum(),
        objects: manifest.object_count(),
        requests: counted.requests(),
    };
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        let added = match summary.new_bytes < summary.bytes {
            true => format!(" ({} new)", size(summary.new_bytes)),
            false => String::new(),
        };
        outln!(
            "backup {} of {}: {} tables, {} rows, {}{added} stored in {} objects, {} requests, in {:.1}s (tier {})",
            summary.backup_id,
            summary.database_id,
            summary.tables,
            summary.rows,
            size(summary.bytes),
            summary.objects,
            summary.requests.total(),
            summary.duration_seconds,
            summary.tier.as_str()
        );
    }
    Ok(())
}
