//! `backstop health`: backup freshness and database health, with what to do about it.

use backstop::alert::Severity;
use backstop::health::{HealthReport, HealthStatus, Thresholds, check};
use backstop::store::{StoreUrl, open_from_env};
use time::OffsetDateTime;

use crate::common::{database_id, size};

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Exit status (Nagios convention): 0 healthy, 1 warning, 2 critical, 3 unknown (the check could not run).\n\nExample:\n  backstop health --from s3://my-backups/prod --database-id app --db postgresql://monitor@db:5432/app"
)]
pub struct Args {
    /// Store with the backups: file:///path or s3://bucket/prefix.
    #[arg(long, value_name = "STORE")]
    from: String,
    /// Which database (default: the database name in --db, else the only one in the store).
    #[arg(long, value_name = "ID")]
    database_id: Option<String>,
    /// Also check the database itself (read-only queries), as psql takes it (a postgresql:// URL, key=value pairs
    /// or a database name); the rest from PGHOST, PGUSER and the other PG* variables, PGSERVICE
    /// and ~/.pgpass.
    #[arg(
        long,
        value_name = "URL",
        env = "BACKSTOP_DATABASE_URL",
        hide_env_values = true
    )]
    db: Option<String>,
    /// Also check the connection pooler: PgBouncer's admin console, as a postgresql:// URL
    /// to its `pgbouncer` database (a user in admin_users or stats_users). Its pools for the
    /// --db database are reported (every pool without --db).
    #[arg(
        long,
        value_name = "URL",
        env = "BACKSTOP_POOLER_URL",
        hide_env_values = true
    )]
    pooler: Option<String>,
    /// Judge the recovery point objective: the newest recovery point may be at most this old
    /// (30m, 1h, 12h...). Any objective flag, or this database in BACKSTOP_OBJECTIVES (the
    /// monitor's JSON), turns the judgement on; the flags win over the variable.
    #[arg(long, value_name = "DURATION", value_parser = duration)]
    rpo: Option<String>,
    /// Judge the recovery time objective against the newest test restore's time (4h...).
    #[arg(long, value_name = "DURATION", value_parser = duration)]
    rto: Option<String>,
    /// A passed test restore is due this often (30d...).
    #[arg(long, value_name = "DURATION", value_parser = duration)]
    restore_test_every: Option<String>,
    /// How often backups are scheduled (default 6h): the RPO is at risk when one more missed
    /// backup would miss it.
    #[arg(long, value_name = "DURATION", value_parser = duration)]
    backup_every: Option<String>,
    /// How often the change stream is drained, when one runs (5m...).
    #[arg(long, value_name = "DURATION", value_parser = duration)]
    stream_every: Option<String>,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

fn duration(text: &str) -> Result<String, String> {
    backstop::objectives::parse_duration(text).map(|_| text.to_string())
}

/// The objectives to judge `database` against: BACKSTOP_OBJECTIVES' entry, the flags over it;
/// `None` when neither says anything.
fn declared(
    args: &Args,
    database: &backstop::layout::DatabaseId,
) -> anyhow::Result<Option<backstop::objectives::Declared>> {
    use backstop::objectives::{DeclaredText, OBJECTIVES_VAR};
    let mut text = match std::env::var(OBJECTIVES_VAR) {
        Ok(raw) if !raw.trim().is_empty() => {
            let mut all = backstop::objectives::parse_texts(&raw)
                .map_err(|e| anyhow::anyhow!("{OBJECTIVES_VAR} is {e}"))?;
            all.remove(database.as_str())
        }
        _ => None,
    };
    let flags = [
        &args.rpo,
        &args.rto,
        &args.restore_test_every,
        &args.backup_every,
        &args.stream_every,
    ];
    if text.is_none() && flags.iter().all(|f| f.is_none()) {
        return Ok(None);
    }
    let text = text.get_or_insert_with(DeclaredText::default);
    let set = |field: &mut Option<String>, flag: &Option<String>| {
        if flag.is_some() {
            field.clone_from(flag);
        }
    };
    set(&mut text.rpo, &args.rpo);
    set(&mut text.rto, &args.rto);
    set(&mut text.restore_test_every, &args.restore_test_every);
    set(&mut text.backup_every, &args.backup_every);
    set(&mut text.stream_every, &args.stream_every);
    let resolved = text
        .resolve()
        .map_err(|e| anyhow::anyhow!("objectives of database `{database}`: {e}"))?;
    Ok(Some(resolved))
}

pub async fn run(args: Args) -> anyhow::Result<HealthStatus> {
    let url: StoreUrl = args.from.parse()?;
    let store = open_from_env(&url).await;
    let target = args
        .db
        .as_deref()
        .map(|given| crate::common::target(Some(given)))
        .transpose()?;
    let database =
        database_id(args.database_id.as_deref(), target.as_ref(), store.as_ref()).await?;
    let thresholds = Thresholds::default();
    let mut report = check(
        store.as_ref(),
        &database,
        target.as_ref(),
        OffsetDateTime::now_utc(),
        &thresholds,
    )
    .await?;
    if let Some(pooler) = &args.pooler {
        let console = crate::common::target(Some(pooler))?;
        let name = target.as_ref().and_then(backstop::pg::database_name);
        let gathered = backstop::health::pooler::gather(&console, name.as_deref()).await;
        report = report.with_pooler(gathered, &thresholds.pooler);
    }
    if let Some(declared) = declared(&args, &database)? {
        let watched_since =
            backstop::objectives::samples::oldest_at(store.as_ref(), &database).await?;
        report = report.with_objectives(&declared, &args.from, watched_since);
    }
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        out!("{}", render(&report));
    }
    Ok(report.status)
}

/// `objective RPO 1 h 2 min of 1 h 0 min: missed; RTO ...` in one line.
fn objectives_line(o: &backstop::objectives::ObjectiveFigures) -> String {
    let mut parts = vec![o.rpo.describe("RPO"), o.rto.describe("RTO")];
    if let Some(test) = &o.restore_test {
        parts.push(test.describe("restore test age"));
    }
    format!("objective {}\n", parts.join("; "))
}

fn render(report: &HealthReport) -> String {
    let mut out = format!(
        "{}: {}\n\n",
        report.database,
        report.status.as_str().to_uppercase()
    );
    let b = &report.backups;
    match (&b.last_backup, b.age_seconds) {
        (Some(id), Some(age)) => out.push_str(&format!(
            "backups   newest {id}, {:.1} h old; {} stored, {}\n",
            age as f64 / 3600.0,
            b.backup_count,
            size(b.total_bytes)
        )),
        _ => out.push_str("backups   none\n"),
    }
    if let Some(v) = &b.last_verification {
        out.push_str(&format!(
            "verified  {:?} at {} level, backup {}, {:.1} h ago\n",
            v.verdict,
            v.level.as_str(),
            v.backup_id,
            v.age_seconds as f64 / 3600.0
        ));
    }
    if let Some(ready) = b.rto_seconds {
        out.push_str(&format!(
            "restore   measured: loaded in {}, ready (statistics in place) in {}\n",
            b.rto_loaded_seconds
                .map_or("-".into(), backstop::status::page::seconds_text),
            backstop::status::page::seconds_text(ready)
        ));
    }
    if let Some(o) = &report.objectives {
        out.push_str(&objectives_line(o));
    }
    if let Some(d) = &report.database_health {
        out.push_str(&format!(
            "database  {}, {} tables, {} indexes; {}/{} connections; xid age {:.2} bn\n",
            size(d.database_bytes),
            d.tables,
            d.indexes,
            d.connections,
            d.max_connections,
            d.xid_age as f64 / 1e9
        ));
    }
    if let Some(p) = &report.pooler {
        for pool in &p.pools {
            out.push_str(&format!(
                "pooler    {}/{}: {} client(s) active, {} waiting (longest {:.1} s); {} server connection(s) active, {} idle\n",
                pool.database,
                pool.user,
                pool.clients_active,
                pool.clients_waiting,
                pool.max_wait_seconds,
                pool.servers_active,
                pool.servers_idle
            ));
        }
        if let Some(wait) = p.avg_wait_seconds {
            out.push_str(&format!("pooler    average wait {:.3} s\n", wait));
        }
    }
    if !report.findings.is_empty() {
        out.push('\n');
    }
    for finding in &report.findings {
        let label = match finding.severity {
            _ if finding.unknown => "UNKNOWN ",
            Severity::Critical => "CRITICAL",
            Severity::Warning => "WARNING ",
            Severity::Info => "advice  ",
        };
        out.push_str(&format!("{label} {}\n", finding.message));
        if let Some(fix) = &finding.fix {
            out.push_str(&format!("         fix: {fix}\n"));
        }
    }
    out
}
