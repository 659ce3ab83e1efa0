//! `backstop list`: the committed backups in a store, per database, newest first, from their
//! manifests, with the restore time a passed restore-level verification measured: until the
//! database was loaded, and until it was ready (statistics in place: the recovery time).

use std::collections::BTreeSet;

use backstop::engine::restore::{BackupSelector, read_manifest};
use backstop::engine::verify::{Level, Verdict, stored_result};
use backstop::layout::{DatabaseId, STATE_PREFIX, committed_backups, database_prefix};
use backstop::store::{StoreUrl, open_from_env};
use serde::Serialize;

use crate::common::{Align, size, table};
use backstop::status::page::seconds_text;

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  backstop list --from s3://my-backups/prod --database-id app\n  backstop list --from s3://my-backups/prod --database-id app --before 2026-12-01T10:29:00Z --json | jq -r '.[0].backup_id'\n\nNewest first: with --before, the first one listed is the last backup taken before that time."
)]
pub struct Args {
    /// Store to read: file:///path or s3://bucket/prefix.
    #[arg(long, value_name = "STORE")]
    from: String,
    /// Only this database (default: every database in the store).
    #[arg(long, value_name = "ID")]
    database_id: Option<String>,
    /// Only backups started before this time (RFC 3339, e.g. 2026-12-01T10:29:00Z).
    #[arg(long, value_name = "TIME", value_parser = crate::common::parse_time)]
    before: Option<time::OffsetDateTime>,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Serialize)]
struct Entry {
    database_id: String,
    backup_id: String,
    started_at: Option<String>,
    tier: Option<String>,
    bytes: Option<u64>,
    /// What the backup added to the store: all its bytes, or for an incremental one its own
    /// objects and the shared chunks it stored first.
    new_bytes: Option<u64>,
    tables: Option<usize>,
    rows: Option<u64>,
    /// A passed restore-level verification's measured restore: seconds until the database
    /// was loaded (rows, indexes, constraints; `None` for a result from before it was
    /// measured), and until it was ready (statistics in place: the recovery time).
    loaded_seconds: Option<f64>,
    restore_seconds: Option<f64>,
    /// Why the manifest could not be read, when it could not.
    problem: Option<String>,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let url: StoreUrl = args.from.parse()?;
    let store = open_from_env(&url).await;
    let objects = match &args.database_id {
        Some(id) => store.list(&database_prefix(&DatabaseId::new(id)?)).await?,
        None => store.list("").await?,
    };
    let mut databases: Vec<DatabaseId> = objects
        .iter()
        .filter_map(|o| o.key.split('/').next())
        .filter(|d| *d != STATE_PREFIX)
        .filter_map(|d| DatabaseId::new(d).ok())
        .collect();
    databases.dedup();
    let keys: BTreeSet<&str> = objects.iter().map(|o| o.key.as_str()).collect();

    let mut entries = Vec::new();
    for database in &databases {
        let mut ids = committed_backups(database, objects.iter().map(|o| o.key.as_str()));
        ids.reverse();
        for id in ids {
            if let Some(before) = args.before
                && id.started_at().is_none_or(|started| started >= before)
            {
                continue;
            }
            let started_at = id.started_at().and_then(|t| {
                t.format(&time::format_description::well_known::Rfc3339)
                    .ok()
            });
            let mut entry = Entry {
                database_id: database.to_string(),
                backup_id: id.to_string(),
                started_at,
                tier: None,
                bytes: None,
                new_bytes: None,
                tables: None,
                rows: None,
                loaded_seconds: None,
                restore_seconds: None,
                problem: None,
            };
            if let Some(result) =
                stored_result(store.as_ref(), &keys, database, &id, Level::Restore).await?
                && result.verdict == Verdict::Passed
                && result.restore_seconds.is_some()
            {
                entry.loaded_seconds = result.loaded_seconds;
                entry.restore_seconds = result.restore_seconds;
            }
            match read_manifest(store.as_ref(), database, &BackupSelector::Id(id)).await {
                Ok(manifest) => {
                    entry.tier = Some(manifest.tier.as_str().to_string());
                    entry.bytes = Some(manifest.total_bytes());
                    entry.new_bytes = Some(manifest.added_bytes());
                    // An encrypted set keeps its tables and rows to itself: shown as `-`.
                    if !manifest.is_encrypted() {
                        entry.tables = Some(manifest.tables().len());
                        entry.rows = Some(manifest.total_rows());
                    }
                }
                Err(e) => entry.problem = Some(e.to_string()),
            }
            entries.push(entry);
        }
    }

    if args.json {
        outln!("{}", serde_json::to_string_pretty(&entries)?);
    } else if entries.is_empty() {
        eprintln!("no backups in {url}");
    } else {
        let or_dash = |v: Option<String>| v.unwrap_or_else(|| "-".into());
        let rows: Vec<Vec<String>> = entries
            .iter()
            .map(|e| {
                vec![
                    e.database_id.clone(),
                    e.backup_id.clone(),
                    or_dash(e.tier.clone()),
                    or_dash(e.bytes.map(size)),
                    or_dash(e.new_bytes.map(size)),
                    or_dash(e.tables.map(|t| t.to_string())),
                    or_dash(e.rows.map(|r| r.to_string())),
                    // A result from before loaded was measured: `-` for loaded.
                    or_dash(e.loaded_seconds.map(seconds_text)),
                    or_dash(e.restore_seconds.map(seconds_text)),
                    format!(
                        "{}{}",
                        e.started_at.as_deref().unwrap_or("-"),
                        e.problem
                            .as_ref()
                            .map(|p| format!("  UNREADABLE: {p}"))
                            .unwrap_or_default()
                    ),
                ]
            })
            .collect();
        out!(
            "{}",
            table(
                &[
                    ("DATABASE", Align::Left),
                    ("BACKUP", Align::Left),
                    ("TIER", Align::Left),
                    ("SIZE", Align::Right),
                    ("NEW", Align::Right),
                    ("TABLES", Align::Right),
                    ("ROWS", Align::Right),
                    ("RTO LOADED", Align::Right),
                    ("RTO READY", Align::Right),
                    ("STARTED", Align::Left),
                ],
                &rows
            )
        );
        // With a change stream, any moment up to its newest drain can be restored to.
        for database in &databases {
            let seals = backstop::engine::stream::segment::seal_keys(
                database,
                objects.iter().map(|o| o.key.as_str()),
            );
            let Some(newest) = seals.last() else { continue };
            if let Ok(seal) = backstop::engine::stream::read_seal(store.as_ref(), newest).await {
                outln!(
                    "{database}: point-in-time recovery (restore --to-time) through {}, change stream {}",
                    seal.through
                        .format(&time::format_description::well_known::Rfc3339)
                        .unwrap_or_default(),
                    seal.slot
                );
            }
        }
    }
    Ok(())
}
