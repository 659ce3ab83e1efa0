//! `backstop list`: the committed backups in a store, per database.

use backstop::layout::{DatabaseId, STATE_PREFIX, committed_backups, database_prefix};
use backstop::store::{StoreUrl, open_from_env};
use serde::Serialize;

#[derive(Debug, clap::Args)]
#[command(after_help = "Example:\n  backstop list --from s3://my-backups/prod --database-id app")]
pub struct Args {
    /// Store to read: file:///path or s3://bucket/prefix.
    #[arg(long, value_name = "STORE")]
    from: String,
    /// Only this database (default: every database in the store).
    #[arg(long, value_name = "ID")]
    database_id: Option<String>,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Serialize)]
struct Entry {
    database: String,
    backup: String,
    started_at: Option<String>,
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

    let mut entries = Vec::new();
    for database in &databases {
        for id in committed_backups(database, objects.iter().map(|o| o.key.as_str())) {
            let started_at = id.started_at().and_then(|t| {
                t.format(&time::format_description::well_known::Rfc3339)
                    .ok()
            });
            entries.push(Entry {
                database: database.to_string(),
                backup: id.to_string(),
                started_at,
            });
        }
    }

    if args.json {
        println!("{}", serde_json::to_string_pretty(&entries)?);
    } else if entries.is_empty() {
        eprintln!("no backups in {url}");
    } else {
        println!("{:<24} {:<26} STARTED", "DATABASE", "BACKUP");
        for e in &entries {
            println!(
                "{:<24} {:<26} {}",
                e.database,
                e.backup,
                e.started_at.as_deref().unwrap_or("-")
            );
        }
    }
    Ok(())
}
