//! `backstop stream`: one drain of a database's change stream, and the base backup it calls
//! for when the stream starts, breaks or sees a schema change.

use std::time::Instant;

use backstop::engine::backup::{BackupOptions, backup_exclusively};
use backstop::engine::stream::{StreamOptions, drain_exclusively};
use backstop::store::{StoreUrl, open_from_env};

use crate::common::{database_id, size};

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Example (run it every few minutes; the Lambda schedule runs it every 5):\n  backstop stream --db postgresql://backup@db.internal:5432/app --to s3://my-backups/prod\nThe role needs REPLICATION (RDS: rds_replication) and the server wal_level = logical.\nRestore to a point with `backstop restore ... --to-time 2026-12-01T10:30:00Z`."
)]
pub struct Args {
    /// Database to drain, as psql takes it (a postgresql:// URL, key=value pairs
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
    /// Decoded rows per segment.
    #[arg(long, value_name = "N", default_value_t = 50_000, value_parser = clap::value_parser!(u32).range(1..))]
    page_changes: u32,
    /// Drop the slot (and start a new stream, with a new base backup) once it holds back more
    /// WAL than this many MiB, before it can fill the server's disk.
    #[arg(long, value_name = "MIB")]
    max_slot_wal_mib: Option<u64>,
    /// Do not take the base backup a new or broken stream needs; only say so.
    #[arg(long)]
    no_base: bool,
    #[command(flatten)]
    encryption: crate::keys::RecipientArgs,
    /// Print the outcome as JSON.
    #[arg(long)]
    json: bool,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let started = Instant::now();
    let url: StoreUrl = args.to.parse()?;
    let store = open_from_env(&url).await;
    let config = crate::common::target(args.db.as_deref())?;
    let database = database_id(args.database_id.as_deref(), Some(&config), store.as_ref()).await?;
    let mut options = StreamOptions::new(database.clone());
    options.page_changes = args.page_changes;
    options.max_retained_bytes = args.max_slot_wal_mib.map(|m| m.saturating_mul(1024 * 1024));
    options.recipients = args.encryption.recipients()?;
    crate::common::interrupt_on_signals(&options.interrupt);
    let holder = crate::common::lease_holder();
    let report = drain_exclusively(&config, store.clone(), &options, &holder).await?;
    let needs_base = report.needs_base();
    let base = match (&needs_base, args.no_base) {
        (Some(_), false) => {
            let mut backup = BackupOptions::new(database.clone());
            backup.recipients = options.recipients.clone();
            backup.reason = Some("base of the change stream".into());
            backup.interrupt = options.interrupt.clone();
            Some(backup_exclusively(&config, store, &backup, &holder, &|_| {}).await?)
        }
        _ => None,
    };
    let through = report.through.map(|t| {
        t.format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default()
    });
    if args.json {
        let summary = serde_json::json!({
            "database_id": database.to_string(),
            "slot": report.slot,
            "chain": report.chain,
            "segments": report.segments,
            "transactions": report.transactions,
            "changes": report.changes,
            "bytes": report.stored_bytes,
            "recoverable_through": through,
            "lag_bytes": report.lag_bytes,
            "retained_bytes": report.retained_bytes,
            "wal_status": report.wal_status,
            "new_chain": report.new_chain,
            "schema_changed": report.schema_changed,
            "unidentified_tables": report.unidentified,
            "unlogged_tables": report.unlogged,
            "unreplayable": report.unreplayable,
            "incomplete": report.incomplete,
            "unlimited_slot_wal": report.unlimited_wal_keep,
            "needs_base": needs_base,
            "base_backup_id": base.as_ref().map(|m| m.backup_id.clone()),
            "duration_seconds": started.elapsed().as_secs_f64(),
        });
        outln!("{}", serde_json::to_string_pretty(&summary)?);
        return Ok(());
    }
    outln!(
        "drained {} of {}: {} transactions, {} changes, {} stored in {} segments; recoverable through {} ({:.1}s)",
        report.slot,
        database,
        report.transactions,
        report.changes,
        size(report.stored_bytes),
        report.segments.len(),
        through.as_deref().unwrap_or("-"),
        started.elapsed().as_secs_f64()
    );
    for table in &report.unidentified {
        outln!(
            "warning: {table} has no replica identity: its UPDATE and DELETE cannot be replayed; \
             run ALTER TABLE {table} REPLICA IDENTITY FULL (or give it a primary key)"
        );
    }
    for table in &report.unreplayable {
        outln!(
            "warning: changes to {table} were streamed that a restore cannot replay; a point-in-time \
             restore past them fails"
        );
    }
    if !report.unlogged.is_empty() {
        outln!(
            "note: unlogged tables are not in the change stream (a restore has them as the base does): {}",
            report.unlogged.join(", ")
        );
    }
    if report.unlimited_wal_keep {
        outln!(
            "warning: max_slot_wal_keep_size is unlimited: a stream that stops draining holds WAL until the disk fills; set it, or pass --max-slot-wal-mib"
        );
    }
    if report.incomplete {
        outln!("note: stopped at the deadline with changes left; the next drain continues");
    }
    if let Some(why) = needs_base {
        match &base {
            Some(manifest) => outln!("{why}: took base backup {}", manifest.backup_id),
            None => {
                outln!("{why}: take a backup now (`backstop backup`) to restore past this point")
            }
        }
    }
    Ok(())
}
