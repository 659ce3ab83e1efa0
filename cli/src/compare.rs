//! `backstop compare`: what differs between a table and the copy of it restored beside it, and
//! the SQL that puts the missing and changed rows back, for a person to review and run.

use std::path::{Path, PathBuf};

use backstop::engine::compare::{
    self, Comparison, Found, MatchedOn, default_file_name, key_text, write_putback,
};

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  backstop compare --db postgresql://dba@db:5432/app --table app.orders --with recovered.orders\n  psql -v ON_ERROR_STOP=1 -f orders.putback.sql postgresql://dba@db:5432/app\n\nIt reads only (one READ ONLY transaction) and changes nothing. The SQL it writes inserts the rows the table lacks and updates the changed ones from the recovered table, in one transaction; rows only in the live table are left as they are."
)]
pub struct Args {
    /// The database holding both tables, as psql takes it (a postgresql:// URL, key=value
    /// pairs or a database name); the rest from PGHOST, PGUSER and the other PG* variables,
    /// PGSERVICE and ~/.pgpass.
    #[arg(
        long,
        value_name = "URL",
        env = "BACKSTOP_DATABASE_URL",
        hide_env_values = true
    )]
    db: Option<String>,
    /// The live table: schema.table, or table when one schema has it; a part in double quotes
    /// is taken as written.
    #[arg(long, value_name = "TABLE")]
    table: String,
    /// The copy of it restored beside it, as it was before (e.g. recovered.orders).
    #[arg(long = "with", value_name = "TABLE")]
    with: String,
    /// Write the put-back SQL to this file (default: <table>.putback.sql here); an existing
    /// file is never replaced.
    #[arg(long, value_name = "FILE")]
    output: Option<PathBuf>,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let target = crate::common::target(args.db.as_deref())?;
    if let Some(path) = &args.output {
        // Said before anything is read; the write refuses it again if it appears meanwhile.
        compare::refuse_existing(path)?;
    }
    let comparison = compare::compare(
        &target,
        &args.table,
        &args.with,
        backstop::pg::liveness::DEFAULT_SILENCE_LIMIT,
    )
    .await?;
    let path = args
        .output
        .clone()
        .unwrap_or_else(|| PathBuf::from(default_file_name(&comparison.plan.live.name)));
    write_putback(&path, &comparison.putback_sql())?;
    if args.json {
        report_json(&comparison, &path)
    } else {
        report(&comparison, &path);
        Ok(())
    }
}

fn examples(comparison: &Comparison, found: &Found) -> String {
    if found.example_keys.is_empty() {
        return String::new();
    }
    let keys: Vec<String> = found
        .example_keys
        .iter()
        .map(|key| key_text(&comparison.plan.key_columns, key))
        .collect();
    let more = if found.rows > found.example_keys.len() as u64 {
        ", …"
    } else {
        ""
    };
    format!("; e.g. {}{more}", keys.join(", "))
}

fn report(comparison: &Comparison, written: &Path) {
    let plan = &comparison.plan;
    let live = plan.live.shown();
    let recovered = plan.recovered.shown();
    outln!(
        "compared {live} with {recovered} at {}, {} column(s), on {}",
        comparison.checked_at,
        plan.compared_columns.len(),
        plan.matched_on_text()
    );
    outln!(
        "missing: {} (in {recovered}, not in {live}){}",
        comparison.missing.rows,
        examples(comparison, &comparison.missing)
    );
    if let Some(changed) = &comparison.changed {
        outln!(
            "changed: {} (same key, some column differs){}",
            changed.rows,
            examples(comparison, changed)
        );
    }
    outln!(
        "extra:   {} (in {live}, not in {recovered}; left as they are){}",
        comparison.extra.rows,
        examples(comparison, &comparison.extra)
    );
    let shown = backstop::engine::script::inert(&written.display().to_string());
    if comparison.has_putback() {
        outln!(
            "wrote {shown}: review it, then run it with psql -v ON_ERROR_STOP=1 -f {shown} \
             (it reads {recovered}, which must still exist then)"
        );
    } else {
        outln!(
            "{live} holds every row of {recovered} as it is: nothing to put back (wrote {shown} all \
             the same; it changes nothing unless that changes)"
        );
    }
}

fn report_json(comparison: &Comparison, written: &Path) -> anyhow::Result<()> {
    let plan = &comparison.plan;
    let mut differences = vec![serde_json::json!({
        "difference": "missing",
        "rows": comparison.missing.rows,
        "example_keys": comparison.missing.example_keys,
    })];
    if let Some(changed) = &comparison.changed {
        differences.push(serde_json::json!({
            "difference": "changed",
            "rows": changed.rows,
            "example_keys": changed.example_keys,
        }));
    }
    differences.push(serde_json::json!({
        "difference": "extra",
        "rows": comparison.extra.rows,
        "example_keys": comparison.extra.example_keys,
    }));
    let answer = serde_json::json!({
        "table": plan.live.shown(),
        "recovered_table": plan.recovered.shown(),
        "checked_at": comparison.checked_at,
        "matched_on": plan.matched_on,
        "index": plan.index,
        "key_columns": plan.key_columns,
        "compared_columns": plan.compared_columns,
        "differences": differences,
        "written": written.display().to_string(),
        "message": (plan.matched_on == MatchedOn::WholeRow).then(|| plan.matched_on_text()),
    });
    outln!("{}", serde_json::to_string_pretty(&answer)?);
    Ok(())
}
