//! `backstop incidents`: the transactions of a database's change stream to look at first when
//! rows went missing (mass deletes and updates, TRUNCATEs, bursts of deletes, a new table
//! beside a mass delete), most suspicious first, each with the restore command that brings
//! back what it took; `--show XID` previews the rows one transaction changed.
//!
//! Every name from a store or a database reaches the terminal escaped, and every argument of a
//! printed command is shell-quoted: nothing in it runs but what it says.

use std::sync::Arc;

use backstop::engine::encryption::Identities;
use backstop::engine::script::inert;
use backstop::engine::stream::decoding::{Column, Value};
use backstop::engine::stream::history::{History, read_history, read_transaction};
use backstop::engine::stream::incidents::{
    Action, ChangedRow, Incident, TableEffect, TablePreview, describe_columns, effects_of, rank,
    restore_command, restore_command_as_of, schema_incidents,
};
use backstop::layout::DatabaseId;
use backstop::store::{Store, StoreUrl, open_from_env};
use serde::Serialize;
use time::{Duration, OffsetDateTime};

use crate::common::database_id;

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  backstop incidents --from s3://my-backups/prod --database-id app\n  backstop incidents --from s3://my-backups/prod --database-id app --since 2026-12-01T00:00:00Z --json\n  backstop incidents --from s3://my-backups/prod --database-id app --show 48213\n\nEach incident ends with the restore that brings its tables back as they were just before it,\ninto the schema `recovered` beside the live ones: set DATABASE_URL to the database first.\nThe change stream comes from `backstop stream`; the shares are estimated from the backups' rows."
)]
pub struct Args {
    /// Store to read: file:///path or s3://bucket/prefix.
    #[arg(long, value_name = "STORE")]
    from: String,
    /// Which database (default: the only one in the store).
    #[arg(long, value_name = "ID")]
    database_id: Option<String>,
    /// Look at the transactions committed since this time (RFC 3339, e.g.
    /// 2026-12-01T10:30:00Z; default: the last 7 days).
    #[arg(long, value_name = "TIME", value_parser = crate::common::parse_time)]
    since: Option<OffsetDateTime>,
    /// List at most this many incidents; with --show, this many rows per table.
    #[arg(long, value_name = "N", default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..))]
    limit: u32,
    /// Preview the rows transaction XID (as listed) changed, per table.
    #[arg(long, value_name = "XID")]
    show: Option<u64>,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    identity: crate::keys::IdentityArgs,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let url: StoreUrl = args.from.parse()?;
    let store = open_from_env(&url).await;
    let database = database_id(args.database_id.as_deref(), None, store.as_ref()).await?;
    let identities = args.identity.identities()?;
    let since = args.since.unwrap_or_else(|| {
        let week_ago = OffsetDateTime::now_utc() - Duration::days(7);
        week_ago.replace_nanosecond(0).unwrap_or(week_ago)
    });
    let history = read_history(store.as_ref(), &database, since, identities.as_ref()).await?;
    for backup in &history.unreadable_backups {
        eprintln!(
            "warning: backup {} cannot be read ({}); shares are estimated from the other backups",
            backup.key,
            inert(&backup.problem)
        );
    }
    for segment in &history.unreadable_segments {
        eprintln!(
            "warning: segment {} cannot be read ({}): a transaction in it is not looked at",
            inert(&segment.key),
            inert(&segment.problem)
        );
    }
    let context = Context {
        store: args.from.clone(),
        database,
        since,
    };
    match args.show {
        Some(xid) => {
            show(
                store.as_ref(),
                &context,
                &history,
                xid,
                identities.as_ref(),
                args.limit as usize,
                args.json,
            )
            .await
        }
        None => list(&context, &history, args.limit as usize, args.json),
    }
}

/// What every printed command and line names.
struct Context {
    /// `--from` as given: what the printed commands read from.
    store: String,
    database: DatabaseId,
    since: OffsetDateTime,
}

impl Context {
    fn restore(&self, tables: &[String], before_xid: u64) -> String {
        restore_command(&self.store, self.database.as_str(), tables, before_xid)
    }

    /// The restore an incident prints: just before its transaction, or as of a time.
    fn restore_of(&self, incident: &Incident) -> String {
        match incident.restore_at {
            Some(at) if incident.restore_tables.is_empty() => format!(
                "its name is not kept for an encrypted stream: `backstop show` of the backup \
                 before lists the tables; restore it with --tables NAME --to-time {} \
                 --into-schema recovered",
                rfc3339(at)
            ),
            Some(at) => restore_command_as_of(
                &self.store,
                self.database.as_str(),
                &incident.restore_tables,
                at,
            ),
            // A schema change with no drain stored before it: no moment to restore to.
            None if incident.before_xid == 0 => "no drain before it is stored: restore a backup \
                taken before it (`backstop list`) with --backup ID --tables NAME --into-schema \
                recovered"
                .to_string(),
            None => self.restore(&incident.restore_tables, incident.before_xid),
        }
    }
}

fn rfc3339(time: OffsetDateTime) -> String {
    time.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

#[derive(Debug, Serialize)]
struct Listed {
    database_id: String,
    store: String,
    searched_from_at: String,
    segments: usize,
    transactions: usize,
    unjudged_transactions: u64,
    unreadable_segments: Vec<UnreadableSegment>,
    unreadable_backups: Vec<UnreadableBackup>,
    incidents: Vec<ListedIncident>,
}

#[derive(Debug, Serialize)]
struct UnreadableSegment {
    segment: String,
    problem: String,
}

#[derive(Debug, Serialize)]
struct UnreadableBackup {
    backup_id: String,
    problem: String,
}

#[derive(Debug, Serialize)]
struct ListedIncident {
    pattern: &'static str,
    score: f64,
    /// `null` for a dropped table: the transaction that dropped it is gone from the catalog.
    xid: Option<u64>,
    xids: Vec<u64>,
    committed_at: String,
    last_committed_at: Option<String>,
    commit_lsn: String,
    /// The role that ran it: the change stream does not say.
    role: Option<String>,
    tables: Vec<ListedTable>,
    related_xid: Option<u64>,
    message: String,
    fix: String,
}

#[derive(Debug, Serialize)]
struct ListedTable {
    table: String,
    inserts: u64,
    updates: u64,
    deletes: u64,
    truncates: u64,
    rows_before: Option<u64>,
    share: Option<f64>,
    estimated_from_backup_id: Option<String>,
}

impl From<&TableEffect> for ListedTable {
    fn from(effect: &TableEffect) -> Self {
        Self {
            table: effect.table.clone(),
            inserts: effect.inserts,
            updates: effect.updates,
            deletes: effect.deletes,
            truncates: effect.truncates,
            rows_before: effect.rows_before,
            share: effect.share().map(|s| (s * 1000.0).round() / 1000.0),
            estimated_from_backup_id: effect.estimated_from_backup_id.clone(),
        }
    }
}

fn listed(context: &Context, history: &History, incidents: &[Incident]) -> Listed {
    Listed {
        database_id: context.database.to_string(),
        store: context.store.clone(),
        searched_from_at: rfc3339(context.since),
        segments: history.segments.len(),
        transactions: history
            .transactions
            .iter()
            .filter(|t| t.committed_at >= context.since)
            .count(),
        unjudged_transactions: history.unrecorded,
        unreadable_segments: history
            .unreadable_segments
            .iter()
            .map(|u| UnreadableSegment {
                segment: u.key.clone(),
                problem: u.problem.clone(),
            })
            .collect(),
        unreadable_backups: history
            .unreadable_backups
            .iter()
            .map(|u| UnreadableBackup {
                backup_id: u.key.clone(),
                problem: u.problem.clone(),
            })
            .collect(),
        incidents: incidents
            .iter()
            .map(|incident| ListedIncident {
                pattern: incident.pattern.as_str(),
                score: (incident.score * 1000.0).round() / 1000.0,
                xid: (incident.xid != 0).then_some(incident.xid),
                xids: incident.xids.clone(),
                committed_at: rfc3339(incident.committed_at),
                last_committed_at: incident.last_committed_at.map(rfc3339),
                commit_lsn: incident.commit_lsn.to_string(),
                role: None,
                tables: incident.tables.iter().map(ListedTable::from).collect(),
                related_xid: incident.related_xid,
                message: incident.message.clone(),
                fix: context.restore_of(incident),
            })
            .collect(),
    }
}

fn list(context: &Context, history: &History, limit: usize, json: bool) -> anyhow::Result<()> {
    let mut incidents = rank(&history.transactions, &history.bases, context.since);
    incidents.extend(schema_incidents(&history.segments, context.since));
    incidents.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then(b.committed_at.cmp(&a.committed_at))
    });
    let found = incidents.len();
    incidents.truncate(limit);
    let report = listed(context, history, &incidents);
    if json {
        outln!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_list(context, history, &report, &incidents, found);
    }
    match history.unreadable_segments.len() {
        0 => Ok(()),
        n => anyhow::bail!(
            "{n} segment(s) of the change stream of {} could not be read (named above): an \
             incident in them is not listed; find out what damaged them (`backstop health` \
             checks the stream) before trusting this list",
            context.database
        ),
    }
}

fn print_list(
    context: &Context,
    history: &History,
    report: &Listed,
    incidents: &[Incident],
    found: usize,
) {
    outln!(
        "change stream of {} since {}: {} transactions in {} segments",
        context.database,
        report.searched_from_at,
        report.transactions,
        report.segments
    );
    if incidents.is_empty() {
        outln!(
            "nothing to look at first: no transaction deleted or updated a large share of a \
             table or truncated one, and no burst of deletes or updates"
        );
    } else {
        outln!(
            "{} incident(s), most suspicious first{}:",
            found,
            match found > incidents.len() {
                true => format!(" (the first {}; --limit shows more)", incidents.len()),
                false => String::new(),
            }
        );
    }
    for (n, (incident, shown)) in incidents.iter().zip(&report.incidents).enumerate() {
        let xid = match incident.xids.len() {
            0 => "xid unknown".to_string(),
            1 => format!("xid {}", incident.xid),
            more => format!(
                "xid {} (first of {more}, the last at {})",
                incident.xid,
                shown.last_committed_at.as_deref().unwrap_or("-")
            ),
        };
        let tables: Vec<String> = incident.tables.iter().map(TableEffect::describe).collect();
        outln!(
            "\n{}. {}  {xid}  {}",
            n + 1,
            shown.committed_at,
            tables.join("; ")
        );
        outln!("   {}", incident.message);
        outln!("   {}", shown.fix);
    }
    if !incidents.is_empty() {
        outln!(
            "\neach command restores the tables as they were just before the transaction, into \
             the schema recovered; `backstop incidents --show XID` previews the rows one changed"
        );
    }
    if history.unrecorded > 0 {
        outln!(
            "{} transaction(s) come from segments written before seals recorded tables: they were \
             not looked at",
            history.unrecorded
        );
    }
    if history.hidden_bases > 0 {
        outln!(
            "{} backup(s) are encrypted: pass --identity to estimate shares from their rows",
            history.hidden_bases
        );
    }
}

#[derive(Debug, Serialize)]
struct Shown {
    database_id: String,
    xid: u64,
    committed_at: String,
    commit_lsn: String,
    segment: String,
    role: Option<String>,
    fix: String,
    tables: Vec<ShownTable>,
}

#[derive(Debug, Serialize)]
struct ShownTable {
    table: String,
    inserts: u64,
    updates: u64,
    deletes: u64,
    truncates: u64,
    rows_before: Option<u64>,
    share: Option<f64>,
    /// Row changes to the table (a TRUNCATE counts once).
    changes: u64,
    /// Whether the old values shown are whole rows (`null`: unknown, or none shown).
    old_values_complete: Option<bool>,
    preview: Vec<ShownRow>,
}

#[derive(Debug, Serialize)]
struct ShownRow {
    action: &'static str,
    old: Option<Vec<ShownColumn>>,
    new: Option<Vec<ShownColumn>>,
}

#[derive(Debug, Serialize)]
struct ShownColumn {
    column: String,
    value: Option<String>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    unchanged_toast: bool,
}

fn shown_columns(columns: &[Column]) -> Vec<ShownColumn> {
    columns
        .iter()
        .map(|c| ShownColumn {
            column: c.name.clone(),
            value: match &c.value {
                Value::Text(text) => Some(text.clone()),
                Value::Null | Value::UnchangedToast => None,
            },
            unchanged_toast: c.value == Value::UnchangedToast,
        })
        .collect()
}

async fn show(
    store: &dyn Store,
    context: &Context,
    history: &History,
    xid: u64,
    identities: Option<&Arc<Identities>>,
    limit: usize,
    json: bool,
) -> anyhow::Result<()> {
    let (transaction, segment) = history.find(xid, &context.database)?;
    let preview = read_transaction(store, &context.database, segment, xid, identities, limit)
        .await?
        .tables();
    let effects = effects_of(&history.transactions, &history.bases, xid);
    // What to bring back: the tables it deleted, updated or truncated rows of (an insert alone
    // takes nothing away: then every table it touched).
    let mut harmed: Vec<String> = effects
        .iter()
        .filter(|e| e.deletes + e.updates + e.truncates > 0)
        .map(|e| e.table.clone())
        .collect();
    if harmed.is_empty() {
        harmed = preview.iter().map(|t| t.table.clone()).collect();
    }
    let fix = context.restore(&harmed, xid);
    let seal_key = backstop::engine::stream::segment::Segment::seal_key(
        &context.database,
        &segment.chain,
        segment.start_lsn,
        segment.end_lsn,
    );
    let tables: Vec<ShownTable> = preview
        .iter()
        .map(|table| {
            let effect = effects.iter().find(|e| e.table == table.table);
            ShownTable {
                table: table.table.clone(),
                inserts: effect.map_or(0, |e| e.inserts),
                updates: effect.map_or(0, |e| e.updates),
                deletes: effect.map_or(0, |e| e.deletes),
                truncates: effect.map_or(0, |e| e.truncates),
                rows_before: effect.and_then(|e| e.rows_before),
                share: effect
                    .and_then(TableEffect::share)
                    .map(|s| (s * 1000.0).round() / 1000.0),
                changes: table.changes,
                old_values_complete: table
                    .old_values_complete(history.columns.get(&table.table).map(Vec::as_slice)),
                preview: table
                    .rows
                    .iter()
                    .map(|row| ShownRow {
                        action: row.action.as_str(),
                        old: row.old.as_deref().map(shown_columns),
                        new: row.new.as_deref().map(shown_columns),
                    })
                    .collect(),
            }
        })
        .collect();
    let shown = Shown {
        database_id: context.database.to_string(),
        xid,
        committed_at: rfc3339(transaction.committed_at),
        commit_lsn: transaction.commit_lsn.to_string(),
        segment: seal_key,
        role: None,
        fix,
        tables,
    };
    if json {
        outln!("{}", serde_json::to_string_pretty(&shown)?);
        return Ok(());
    }
    outln!(
        "transaction {xid}, committed {} (LSN {}), in segment {}",
        shown.committed_at,
        shown.commit_lsn,
        inert(&shown.segment)
    );
    for effect in &effects {
        outln!("  {}", effect.describe());
    }
    outln!("restore the tables as they were just before it:");
    outln!("  {}", shown.fix);
    for (table, shown_table) in preview.iter().zip(&shown.tables) {
        print_table(table, shown_table.old_values_complete);
    }
    Ok(())
}

fn print_table(table: &TablePreview, complete: Option<bool>) {
    let name = inert(&table.table);
    outln!(
        "\n{name}: {} change(s){}",
        table.changes,
        match table.changes as usize > table.rows.len() {
            true => format!("; the first {}:", table.rows.len()),
            false => ":".to_string(),
        }
    );
    for row in &table.rows {
        outln!("  {}", describe_row(row));
    }
    let more = table.changes.saturating_sub(table.rows.len() as u64);
    if more > 0 {
        outln!("  ... and {more} more (--limit shows more)");
    }
    let deletes = table.rows.iter().any(|r| r.action == Action::Delete);
    let unidentified = table
        .rows
        .iter()
        .any(|r| r.action == Action::Delete && r.old.is_none());
    if unidentified {
        outln!(
            "  the table has no replica identity: the stream does not say which rows went; the \
             restore command above brings them back"
        );
    } else if deletes && complete == Some(false) {
        outln!(
            "  old values beyond the key are not in the stream (replica identity DEFAULT); the \
             restore command above brings the whole rows back"
        );
    } else if deletes && complete.is_none() {
        outln!(
            "  with replica identity DEFAULT the stream holds only the key of a deleted row; the \
             restore command above brings the whole rows back"
        );
    }
}

fn describe_row(row: &ChangedRow) -> String {
    let columns = |c: &Option<Vec<Column>>| c.as_deref().map(describe_columns);
    match (&row.action, columns(&row.old), columns(&row.new)) {
        (Action::Insert, _, new) => format!("INSERT {}", new.unwrap_or_default()),
        (Action::Update, Some(old), new) => {
            format!("UPDATE {old} -> {}", new.unwrap_or_default())
        }
        (Action::Update, None, new) => format!("UPDATE {}", new.unwrap_or_default()),
        (Action::Delete, Some(old), _) => format!("DELETE {old}"),
        (Action::Delete, None, _) => "DELETE (no replica identity: which row is not said)".into(),
        (Action::Truncate, _, _) => "TRUNCATE".into(),
    }
}
