//! `backstop report`: per database over a period, the objectives and how long each was met or
//! missed, every test restore with its RTO, and whether the verification record is whole; as a
//! table, JSON, or one printable HTML page. A broken record is said on stderr whatever the
//! output.

use std::path::PathBuf;

use backstop::engine::script::inert;
use backstop::layout::DatabaseId;
use backstop::report::page::{
    now_text, objectives_text, share_text, span_text, test_met_text, verdict_text,
};
use backstop::report::{DatabaseReport, Report};
use backstop::status::page::{seconds_text, time_text};
use backstop::store::{StoreUrl, open_from_env};
use time::OffsetDateTime;

use crate::common::{Align, table};

/// The period when `--since` is not given.
const DEFAULT_DAYS: i64 = 90;

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  backstop report --from s3://my-backups/prod\n  backstop report --from s3://my-backups/prod --database-id app --since 2026-10-01 --html report.html\n  backstop report --from s3://my-backups/prod --since 2026-12-01T00:00:00Z --json\n\nThe objectives' figures come from the samples the monitor function keeps when BACKSTOP_OBJECTIVES\nis set; each sample holds until the next, for at most twice the monitor's usual interval (two hours\nat least), and time no sample holds is not observed, never met. Restore tests and the record come\nfrom verifications.\n\nExit status: 0 the report was made (missed objectives included); 1 it could not be made.\nA broken verification record is said on stderr whatever the output."
)]
pub struct Args {
    /// Store to read: file:///path or s3://bucket/prefix.
    #[arg(long, value_name = "STORE")]
    from: String,
    /// Which database (default: every database the store holds backups, samples or a record of).
    #[arg(long, value_name = "ID")]
    database_id: Option<String>,
    /// Start of the period: a date (2026-10-01, midnight UTC) or an RFC 3339 time
    /// (2026-10-01T08:00:00Z); default: 90 days ago. The period ends now.
    #[arg(long, value_name = "DATE", value_parser = parse_since)]
    since: Option<OffsetDateTime>,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
    /// Also write the report as one self-contained, printable HTML page.
    #[arg(long, value_name = "FILE")]
    html: Option<PathBuf>,
}

/// `--since`: a bare date (midnight UTC) or an RFC 3339 time.
fn parse_since(text: &str) -> Result<OffsetDateTime, String> {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    if let Ok(date) = time::Date::parse(text.trim(), &format) {
        return Ok(date.midnight().assume_utc());
    }
    crate::common::parse_time(text).map_err(|_| {
        format!("`{text}` is not a date like 2026-10-01 or a time like 2026-10-01T08:00:00Z")
    })
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let url: StoreUrl = args.from.parse()?;
    let store = open_from_env(&url).await;
    let database = args
        .database_id
        .as_deref()
        .map(DatabaseId::new)
        .transpose()?;
    let now = OffsetDateTime::now_utc();
    let since = args.since.unwrap_or_else(|| {
        let since = now - time::Duration::days(DEFAULT_DAYS);
        since.replace_nanosecond(0).unwrap_or(since)
    });
    let report = backstop::report::gather(store.as_ref(), database.as_ref(), since, now).await?;
    if report.databases.is_empty() {
        anyhow::bail!(
            "no backups, objective samples or verification record in {url}; check the store URL"
        );
    }
    if let Some(path) = &args.html {
        std::fs::write(path, backstop::report::page::render(&report)).map_err(|e| {
            anyhow::anyhow!(
                "cannot write {}: {e}; check the folder exists and is writable",
                path.display()
            )
        })?;
    }
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        out!("{}", text(&report));
    }
    for database in report
        .databases
        .iter()
        .filter(|d| !d.verification_record.intact)
    {
        eprintln!(
            "warning: the verification record of {} is broken ({} problem(s)): {}",
            database.database_id,
            database.verification_record.problems.len(),
            database
                .verification_record
                .problems
                .iter()
                .map(|p| inert(&p.problem))
                .collect::<Vec<_>>()
                .join("; ")
        );
    }
    Ok(())
}

/// The report as text: per database its objectives, a table of the objectives, one of the
/// test restores, and the record.
fn text(report: &Report) -> String {
    let mut out = format!(
        "Report of {} from {} to {}\n",
        inert(&report.store),
        time_text(report.period_start_at),
        time_text(report.period_end_at)
    );
    if !report.record_intact {
        out.push_str("\nTHE VERIFICATION RECORD IS BROKEN: see below.\n");
    }
    for database in &report.databases {
        out.push('\n');
        out.push_str(&database_text(database));
    }
    out
}

fn database_text(d: &DatabaseReport) -> String {
    let record = &d.verification_record;
    let mut out = format!("{}\n", d.database_id);
    match &d.summary.objectives {
        Some(objectives) => out.push_str(&format!("  objectives: {}\n", objectives_text(objectives))),
        None => out.push_str(
            "  no objective recorded: the monitor kept no sample in the period (BACKSTOP_OBJECTIVES)\n",
        ),
    }
    if let (Some(start), false) = (
        &d.summary.objectives_at_start,
        d.summary.objective_changes.is_empty(),
    ) {
        out.push_str(&format!(
            "  at the period's start: {}\n",
            objectives_text(start)
        ));
    }
    for change in &d.summary.objective_changes {
        out.push_str(&format!(
            "  changed {}: {}\n",
            time_text(change.changed_at),
            objectives_text(&change.objectives)
        ));
    }
    let rows: Vec<Vec<String>> = d
        .summary
        .summaries
        .iter()
        .map(|s| {
            vec![
                s.objective.label().to_string(),
                now_text(s, d.summary.objectives.as_ref()),
                share_text(s.met_share),
                span_text(s.missed_seconds),
                s.misses.len().to_string(),
                s.longest_miss_seconds.map_or("-".into(), span_text),
                span_text(s.not_observed_seconds),
            ]
        })
        .collect();
    out.push_str(&indent(&table(
        &[
            ("OBJECTIVE", Align::Left),
            ("NOW", Align::Left),
            ("MET", Align::Right),
            ("MISSED", Align::Right),
            ("MISSES", Align::Right),
            ("LONGEST MISS", Align::Right),
            ("NOT OBSERVED", Align::Right),
        ],
        &rows,
    )));
    out.push_str(&format!(
        "  {} sample(s), each holding at most {}{}\n",
        d.summary.samples,
        span_text(d.summary.sample_hold_seconds),
        if d.unreadable_samples > 0 {
            format!("; {} unreadable, left out", d.unreadable_samples)
        } else {
            String::new()
        }
    ));
    if d.restore_tests.is_empty() {
        out.push_str("  no test restore in the period\n");
    } else {
        let rows: Vec<Vec<String>> = d
            .restore_tests
            .iter()
            .map(|t| {
                vec![
                    time_text(t.checked_at),
                    inert(&t.backup_id),
                    format!(
                        "restore {}{}",
                        verdict_text(t.verdict),
                        if t.recorded {
                            ""
                        } else {
                            " (not in the record)"
                        }
                    ),
                    t.restore_seconds.map_or("-".into(), seconds_text),
                    t.loaded_seconds.map_or("-".into(), seconds_text),
                    t.rto_objective_seconds
                        .map_or("-".into(), |s| span_text(s as f64)),
                    test_met_text(t),
                    t.by.as_deref().map_or("-".into(), inert),
                ]
            })
            .collect();
        out.push_str(&indent(&table(
            &[
                ("TESTED", Align::Left),
                ("BACKUP", Align::Left),
                ("LEVEL", Align::Left),
                ("RTO READY", Align::Right),
                ("RTO LOADED", Align::Right),
                ("OBJECTIVE", Align::Right),
                ("MET", Align::Left),
                ("BY", Align::Left),
            ],
            &rows,
        )));
    }
    if record.intact {
        out.push_str(&format!(
            "  verification record: intact, {} entries{}\n",
            record.entries,
            record
                .head
                .as_deref()
                .map_or(String::new(), |h| format!(", newest hash {}", inert(h)))
        ));
    } else {
        out.push_str(&format!(
            "  VERIFICATION RECORD BROKEN: {} entries read, {} problem(s):\n",
            record.entries,
            record.problems.len()
        ));
        for problem in &record.problems {
            out.push_str(&format!("    {}\n", inert(&problem.problem)));
        }
    }
    out
}

fn indent(text: &str) -> String {
    text.lines().map(|line| format!("  {line}\n")).collect()
}
