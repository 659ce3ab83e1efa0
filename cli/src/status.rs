//! `backstop status`: every database in a store on one screen (or as JSON, or as one HTML
//! page), with `health`'s exit codes for the worst of them.

use std::path::PathBuf;

use backstop::health::{HealthStatus, Thresholds};
use backstop::status::page::{
    age_text, loaded_text, seconds_text, size_text, time_text, verified_text,
};
use backstop::store::{StoreUrl, open_from_env};
use time::OffsetDateTime;

use crate::common::{Align, table};

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  backstop status --from s3://my-backups/prod\n  backstop status --from s3://my-backups/prod --html status.html\n\nExit status: 0 every database healthy, 1 a warning, 2 critical, 3 unknown (as `health`)."
)]
pub struct Args {
    /// Store to read: file:///path or s3://bucket/prefix.
    #[arg(long, value_name = "STORE")]
    from: String,
    /// Print the status as JSON.
    #[arg(long)]
    json: bool,
    /// Also write the status as one self-contained HTML page (timelines, sizes, restore times).
    #[arg(long, value_name = "FILE")]
    html: Option<PathBuf>,
}

pub async fn run(args: Args) -> anyhow::Result<HealthStatus> {
    let url: StoreUrl = args.from.parse()?;
    let store = open_from_env(&url).await;
    let status = backstop::status::gather(
        store.as_ref(),
        OffsetDateTime::now_utc(),
        &Thresholds::default(),
    )
    .await?;
    if let Some(path) = &args.html {
        std::fs::write(path, backstop::status::page::render(&status)).map_err(|e| {
            anyhow::anyhow!(
                "cannot write {}: {e}; check the folder exists and is writable",
                path.display()
            )
        })?;
    }
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&status)?);
    } else if status.databases.is_empty() {
        eprintln!("no backups in {url}");
    } else {
        let rows: Vec<Vec<String>> = status
            .databases
            .iter()
            .map(|d| {
                vec![
                    d.database_id.clone(),
                    d.status.as_str().to_string(),
                    age_text(d.backups.age_seconds),
                    d.tier.clone().unwrap_or_else(|| "-".into()),
                    size_text(d),
                    verified_text(d),
                    loaded_text(d),
                    d.rto_seconds.map_or("-".into(), seconds_text),
                    d.recovery_point.map_or("-".into(), time_text),
                    match d.encrypted {
                        Some(true) => "yes".into(),
                        Some(false) => "no".into(),
                        None => "-".into(),
                    },
                    d.findings
                        .first()
                        .map(|f| {
                            let more = d.findings.len() - 1;
                            if more > 0 {
                                format!("{} (+{more})", f.message)
                            } else {
                                f.message.clone()
                            }
                        })
                        .unwrap_or_default(),
                ]
            })
            .collect();
        out!(
            "{}",
            table(
                &[
                    ("DATABASE", Align::Left),
                    ("STATUS", Align::Left),
                    ("AGE", Align::Right),
                    ("TIER", Align::Left),
                    ("SIZE", Align::Right),
                    ("VERIFIED", Align::Left),
                    ("RTO LOADED", Align::Right),
                    ("RTO READY", Align::Right),
                    ("PITR THROUGH", Align::Left),
                    ("ENCRYPTED", Align::Left),
                    ("FINDINGS", Align::Left),
                ],
                &rows
            )
        );
    }
    Ok(if status.databases.is_empty() {
        HealthStatus::Unknown
    } else {
        status.status
    })
}
