//! `backstop restore` and `backstop export`.

use std::time::Instant;

use backstop::engine::restore::{
    BackupSelector, RestoreEvent, RestoreOptions, export, read_manifest, restore,
};
use backstop::store::{CountingStore, StoreUrl, open_from_env};
use tokio::io::AsyncWriteExt;

use crate::common::{at_least_one, database_id};
use crate::progress::Progress;

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  backstop restore --from s3://my-backups/prod --database-id app --db postgresql://postgres@localhost/app_restored\n  backstop restore --from file:///var/backups --db postgresql://localhost/app --backup 20261122T060000Z-1a2b3c4d --tables public.orders --clean\n  backstop restore --from s3://my-backups/prod --database-id app --db postgresql://dev@localhost/app_copy --no-owner --no-acl"
)]
pub struct RestoreArgs {
    /// Store to read: file:///path or s3://bucket/prefix.
    #[arg(long, value_name = "STORE")]
    from: String,
    /// Database to restore into (must be empty unless --clean), as a postgresql:// URL.
    #[arg(long, value_name = "URL", hide_env_values = true)]
    db: String,
    /// Which database's backups (default: the database name in --db).
    #[arg(long, value_name = "ID")]
    database_id: Option<String>,
    /// A backup id, or `latest`.
    #[arg(long, value_name = "ID", default_value = "latest")]
    backup: String,
    /// Parallel connections for loading and index builds.
    #[arg(long, value_name = "N", default_value_t = 2, value_parser = at_least_one)]
    jobs: usize,
    /// Restore only these tables (comma-separated schema.table).
    #[arg(long, value_name = "LIST", value_delimiter = ',')]
    tables: Option<Vec<String>>,
    /// Drop every object in the target database first.
    #[arg(long)]
    clean: bool,
    /// Skip `ALTER ... OWNER TO`: objects belong to the role that restores them (for a
    /// server without the source's roles).
    #[arg(long)]
    no_owner: bool,
    /// Skip privileges: GRANT, REVOKE and default privileges.
    #[arg(long)]
    no_acl: bool,
    /// Print the outcome as JSON (tables, rows, seconds, store requests).
    #[arg(long)]
    json: bool,
}

pub async fn run_restore(args: RestoreArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let url: StoreUrl = args.from.parse()?;
    let counted = std::sync::Arc::new(CountingStore::new(open_from_env(&url).await));
    let store: std::sync::Arc<dyn backstop::store::Store> = counted.clone();
    let target = backstop::pg::parse_url(&args.db)?;
    let database = database_id(args.database_id.as_deref(), Some(&args.db), store.as_ref()).await?;
    let selector: BackupSelector = args.backup.parse()?;
    let manifest = read_manifest(store.as_ref(), &database, &selector).await?;
    let options = RestoreOptions {
        jobs: args.jobs,
        tables: args.tables,
        clean: args.clean,
        no_owner: args.no_owner,
        no_acl: args.no_acl,
    };
    let progress = Progress::rows(manifest.total_rows());
    let on_event = |event: RestoreEvent| match event {
        RestoreEvent::Started {
            backup_id,
            tables,
            rows,
        } => progress.note(format!(
            "restoring backup {backup_id}: {tables} tables, {rows} rows"
        )),
        RestoreEvent::TableLoaded { table, rows } => {
            progress.note(format!("  loaded {table} ({rows} rows)"));
            progress.advance(rows, table);
        }
        RestoreEvent::PostDataStarted { items } => {
            progress.note(format!("  building the remaining {items} post-data items"));
            progress.advance(0, "indexes and constraints".into());
        }
    };
    let report = restore(store, &manifest, &target, &options, &on_event).await;
    progress.finish();
    let report = report?;
    let requests = counted.requests();
    if args.json {
        let summary = serde_json::json!({
            "backup_id": report.backup_id,
            "database_id": manifest.database_id,
            "tables": report.tables,
            "rows": report.rows,
            "seconds": started.elapsed().as_secs_f64(),
            "requests": requests,
        });
        println!("{}", serde_json::to_string_pretty(&summary)?);
        return Ok(());
    }
    println!(
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

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Example:\n  backstop export --from s3://my-backups/prod --database-id app -o app.sql && psql -d new_app -f app.sql"
)]
pub struct ExportArgs {
    /// Store to read: file:///path or s3://bucket/prefix.
    #[arg(long, value_name = "STORE")]
    from: String,
    /// Which database's backups (default: the only one in the store).
    #[arg(long, value_name = "ID")]
    database_id: Option<String>,
    /// A backup id, or `latest`.
    #[arg(long, value_name = "ID", default_value = "latest")]
    backup: String,
    /// Write the script here instead of standard output.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    output: Option<std::path::PathBuf>,
}

pub async fn run_export(args: ExportArgs) -> anyhow::Result<()> {
    let url: StoreUrl = args.from.parse()?;
    let store = open_from_env(&url).await;
    let database = database_id(args.database_id.as_deref(), None, store.as_ref()).await?;
    let selector: BackupSelector = args.backup.parse()?;
    let manifest = read_manifest(store.as_ref(), &database, &selector).await?;
    match &args.output {
        Some(path) => {
            let temp = path.with_extension("partial");
            let mut file = tokio::fs::File::create(&temp)
                .await
                .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", temp.display()))?;
            let result = export(store.as_ref(), &manifest, &mut file).await;
            if let Err(e) = result {
                let _ = tokio::fs::remove_file(&temp).await;
                return Err(e.into());
            }
            file.sync_all().await?;
            tokio::fs::rename(&temp, path).await?;
            eprintln!(
                "exported backup {} to {}",
                manifest.backup_id,
                path.display()
            );
        }
        None => {
            let mut stdout = tokio::io::stdout();
            export(store.as_ref(), &manifest, &mut stdout).await?;
            stdout.flush().await?;
        }
    }
    Ok(())
}
