//! `backstop prune`: deletes backups a grandfather-father-son policy does not keep.

use backstop::retention::{Policy, PruneOptions, prune};
use backstop::store::{StoreUrl, open_from_env};
use time::OffsetDateTime;

use crate::common::{Align, database_id, size, table};

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Each --keep-* rule keeps the newest backup of each of its N most recent periods (restic's `forget`); a backup kept by any rule stays. The newest backup and the newest one that passed a restore verification are never deleted.\n\nExample:\n  backstop prune --from s3://my-backups/prod --database-id app --keep-daily 7 --keep-weekly 4 --keep-monthly 12 --dry-run"
)]
pub struct Args {
    /// Store to prune: file:///path or s3://bucket/prefix.
    #[arg(long, value_name = "STORE")]
    from: String,
    /// Which database's backups (default: the only one in the store).
    #[arg(long, value_name = "ID")]
    database_id: Option<String>,
    /// Keep the N newest backups.
    #[arg(long, value_name = "N", default_value_t = 0)]
    keep_last: usize,
    /// Keep the newest backup of each of the last N days that have one.
    #[arg(long, value_name = "N", default_value_t = 0)]
    keep_daily: usize,
    /// Keep the newest backup of each of the last N ISO weeks that have one.
    #[arg(long, value_name = "N", default_value_t = 0)]
    keep_weekly: usize,
    /// Keep the newest backup of each of the last N months that have one.
    #[arg(long, value_name = "N", default_value_t = 0)]
    keep_monthly: usize,
    /// Keep the newest backup of each of the last N years that have one.
    #[arg(long, value_name = "N", default_value_t = 0)]
    keep_yearly: usize,
    /// Point-in-time recovery reaches back this many days: change segments older than the
    /// oldest kept backup of that window go.
    #[arg(long, value_name = "DAYS", default_value_t = 7)]
    keep_stream_days: u32,
    /// Delete at most this many backups in this run (oldest first).
    #[arg(long, value_name = "N", default_value_t = 50)]
    max_deletions: usize,
    /// Show what would be deleted, delete nothing.
    #[arg(long)]
    dry_run: bool,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let url: StoreUrl = args.from.parse()?;
    let store = open_from_env(&url).await;
    let database = database_id(args.database_id.as_deref(), None, store.as_ref()).await?;
    let options = PruneOptions {
        policy: Policy {
            last: args.keep_last,
            daily: args.keep_daily,
            weekly: args.keep_weekly,
            monthly: args.keep_monthly,
            yearly: args.keep_yearly,
        },
        dry_run: args.dry_run,
        max_deletions: args.max_deletions,
        now: OffsetDateTime::now_utc(),
        stream_window: time::Duration::days(i64::from(args.keep_stream_days)),
    };
    // Stopped between two deletions, nothing is half done: a set whose parts were not all
    // deleted has lost its manifest first, and the next prune sweeps its parts.
    let report = tokio::select! {
        biased;
        report = prune(store.as_ref(), &database, &options) => report?,
        _ = backstop::signals::stop_signal() => anyhow::bail!(
            "interrupted; the sets deleted so far are gone, and the parts of one cut short (its manifest already deleted) go with the next prune"
        ),
    };
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    let verb = if report.dry_run {
        "would delete"
    } else {
        "delete"
    };
    let mut rows: Vec<Vec<String>> = Vec::new();
    for kept in &report.kept {
        let reasons: Vec<String> = kept
            .reasons
            .iter()
            .filter_map(|r| serde_json::to_value(r).ok())
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect();
        rows.push(vec![
            "keep".into(),
            kept.backup_id.clone(),
            reasons.join(", "),
        ]);
    }
    for deleted in &report.deleted {
        rows.push(vec![verb.into(), deleted.name.clone(), size(deleted.bytes)]);
    }
    for held in &report.retained_by_lock {
        rows.push(vec![
            "locked".into(),
            held.clone(),
            "Object Lock or legal hold".into(),
        ]);
    }
    for deferred in &report.deferred {
        rows.push(vec![
            "later".into(),
            deferred.clone(),
            "over --max-deletions".into(),
        ]);
    }
    out!(
        "{}",
        table(
            &[
                ("ACTION", Align::Left),
                ("BACKUP", Align::Left),
                ("WHY", Align::Left)
            ],
            &rows
        )
    );
    outln!("{}: {}", report.database, report.summary());
    Ok(())
}
