//! `backstop advise`: the index advice as a migration to review and apply, and `--check`
//! once it ran.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use backstop::advise::{
    self, Baseline, CheckState, Checked, baseline_key, index_states, judge, migration,
    next_migration_name, qualified_index,
};
use backstop::store::{StoreUrl, open_from_env};
use time::OffsetDateTime;

use crate::common::{Align, database_id, table};

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  backstop advise --db postgresql://dba@db:5432/app --out migrations/ --store s3://my-backups/prod\n  psql -v ON_ERROR_STOP=1 -f migrations/00020_add_missing_indexes.sql \"$DATABASE_URL\"\n  backstop advise --check --db postgresql://dba@db:5432/app --store s3://my-backups/prod\n\nThe advice reads the catalogs and statistics only. --check exits 1 when a proposed index is missing or INVALID."
)]
pub struct Args {
    /// The database, as psql takes it (a postgresql:// URL, key=value pairs
    /// or a database name); the rest from PGHOST, PGUSER and the other PG* variables, PGSERVICE
    /// and ~/.pgpass.
    #[arg(
        long,
        value_name = "URL",
        env = "BACKSTOP_DATABASE_URL",
        hide_env_values = true
    )]
    db: Option<String>,
    /// Write the migration to this file, or into this folder of numbered migrations under the
    /// next number (`00020_add_missing_indexes.sql`). Without it, print it.
    #[arg(long, value_name = "PATH")]
    out: Option<PathBuf>,
    /// Keep the advice's baseline (what it proposed, every index's scans) in this store, for
    /// `--check`: file:///path or s3://bucket/prefix.
    #[arg(long, value_name = "STORE")]
    store: Option<String>,
    /// Which database the baseline is for (default: the database name in --db).
    #[arg(long, value_name = "ID")]
    database_id: Option<String>,
    /// After the migration ran: every proposed index exists and is valid, and its scans since.
    #[arg(long)]
    check: bool,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let target = crate::common::target(args.db.as_deref())?;
    let client = backstop::pg::connect(&target).await?;
    let store = match &args.store {
        Some(url) => Some(open_from_env(&url.parse::<StoreUrl>()?).await),
        None => None,
    };
    if args.check {
        let Some(store) = store else {
            bail!(
                "--check needs --store: the store `backstop advise --store` kept the baseline in"
            );
        };
        let database =
            database_id(args.database_id.as_deref(), Some(&target), store.as_ref()).await?;
        let key = baseline_key(&database);
        let Some(found) = store.read_versioned(&key).await? else {
            bail!(
                "no advice baseline for {database} in {}: run `backstop advise --store {}` first",
                store.url(),
                store.url()
            );
        };
        let baseline: Baseline =
            serde_json::from_slice(&found.body).with_context(|| format!("reading {key}"))?;
        let checked = judge(&baseline, &index_states(&client).await?);
        report_check(&checked, &baseline, args.json)?;
        let bad = checked
            .iter()
            .filter(|c| c.state != CheckState::Valid)
            .count();
        if bad > 0 {
            bail!(
                "{bad} of {} proposed indexes are missing or invalid; apply the fixes above",
                checked.len()
            );
        }
        return Ok(());
    }

    let now = OffsetDateTime::now_utc();
    let advice = advise::read(&client).await?;
    let name = backstop::pg::database_name(&target).unwrap_or_else(|| "(default)".into());
    let sql = migration(&advice, &name, now);
    let written = match &args.out {
        Some(out) => Some(write_migration(out, &sql)?),
        None => None,
    };
    if let Some(store) = &store {
        let database =
            database_id(args.database_id.as_deref(), Some(&target), store.as_ref()).await?;
        let scans = index_states(&client)
            .await?
            .into_iter()
            .map(|(index, state)| (index, state.scans))
            .collect();
        let baseline = Baseline {
            at: now,
            proposed: advice.missing.iter().map(qualified_index).collect(),
            scans,
        };
        let body = serde_json::to_vec_pretty(&baseline)?;
        store
            .put(
                &baseline_key(&database),
                &mut body.as_slice(),
                &Default::default(),
            )
            .await?;
    }
    if args.json {
        let answer = serde_json::json!({
            "advice": advice,
            "migration": sql,
            "written": written.as_ref().map(|p| p.display().to_string()),
        });
        outln!("{}", serde_json::to_string_pretty(&answer)?);
    } else if let Some(path) = written {
        outln!(
            "wrote {}: {} index(es) to create, {} drop suggestion(s) (commented out)",
            path.display(),
            advice.missing.len(),
            advice.droppable.len()
        );
    } else {
        out!("{sql}");
    }
    Ok(())
}

/// Writes `sql` to `out`, or into `out` as the next numbered migration when it is a folder.
fn write_migration(out: &Path, sql: &str) -> anyhow::Result<PathBuf> {
    let path = if out.is_dir() {
        let names: Vec<String> = std::fs::read_dir(out)
            .with_context(|| format!("reading {}", out.display()))?
            .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
            .collect();
        out.join(next_migration_name(names.iter().map(String::as_str)))
    } else {
        out.to_path_buf()
    };
    std::fs::write(&path, sql).with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

fn report_check(checked: &[Checked], baseline: &Baseline, json: bool) -> anyhow::Result<()> {
    if json {
        outln!("{}", serde_json::to_string_pretty(checked)?);
        return Ok(());
    }
    if checked.is_empty() {
        outln!("the advice of {} proposed no index", baseline.at);
        return Ok(());
    }
    let rows: Vec<Vec<String>> = checked
        .iter()
        .map(|c| {
            vec![
                c.index.clone(),
                match c.state {
                    CheckState::Valid => "valid".into(),
                    CheckState::Invalid => "INVALID".into(),
                    CheckState::Missing => "missing".into(),
                },
                c.scans_since.to_string(),
                c.fix.clone().unwrap_or_default(),
            ]
        })
        .collect();
    out!(
        "{}",
        table(
            &[
                ("index", Align::Left),
                ("state", Align::Left),
                (&format!("scans since {}", baseline.at.date()), Align::Right),
                ("fix", Align::Left),
            ],
            &rows
        )
    );
    Ok(())
}
