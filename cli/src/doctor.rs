//! `backstop doctor`: proves a store can hold backups and a database answers.

use anyhow::Context;
use backstop::store::{StoreUrl, open_from_env, probe};

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Example:\n  backstop doctor --store file:///var/backups/backstop --db postgresql://postgres@localhost/app"
)]
pub struct Args {
    /// Store to check: file:///path or s3://bucket/prefix.
    #[arg(long, value_name = "STORE")]
    store: Option<String>,
    /// Database to check, as a postgresql:// URL.
    #[arg(
        long,
        value_name = "URL",
        env = "BACKSTOP_DATABASE_URL",
        hide_env_values = true
    )]
    db: Option<String>,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    if args.store.is_none() && args.db.is_none() {
        anyhow::bail!("nothing to check; pass --store STORE and/or --db URL");
    }
    if let Some(raw) = &args.store {
        let url: StoreUrl = raw.parse()?;
        let store = open_from_env(&url).await;
        let report = probe(store.as_ref()).await?;
        println!(
            "store     {url}  ok: wrote, tagged, listed, read back and deleted {} KiB",
            report.bytes / 1024
        );
    }
    if let Some(raw) = &args.db {
        let config = backstop::pg::parse_url(raw)?;
        let client = backstop::pg::connect(&config).await?;
        let row = client
            .query_one("SELECT current_setting('server_version'), current_user::text, current_database()::text", &[])
            .await
            .context("querying the server version")?;
        let (version, user, database): (String, String, String) =
            (row.get(0), row.get(1), row.get(2));
        println!("database  {database}  ok: PostgreSQL {version}, connected as {user}");
    }
    Ok(())
}
