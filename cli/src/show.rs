//! `backstop show`: what is inside a backup, as `pg_restore -l` shows an archive: the set (when,
//! from what server, how big, encrypted, sealed), its tables with their rows and stored sizes,
//! every pre-data and post-data item in restore order, the objects per kind the source held,
//! and what was excluded when it was taken.

use backstop::engine::manifest::{Manifest, PartKind};
use backstop::engine::restore::{BackupSelector, read_manifest, read_script};
use backstop::engine::script::{self, ScriptItem};
use backstop::store::{Store, StoreUrl, open_from_env};
use serde::Serialize;

use crate::common::{Align, database_id, size, table};

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  backstop show --from s3://my-backups/prod --database-id app\n  backstop show --from s3://my-backups/prod --database-id app --backup 20261122T060000Z-1a2b3c4d --json | jq '.tables[] | select(.rows > 1000000)'\n\nAn encrypted backup shows its tables and items with --identity; without it, what its manifest says openly."
)]
pub struct Args {
    #[command(flatten)]
    set: crate::common::SetArgs,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    identity: crate::keys::IdentityArgs,
}

#[derive(Debug, Serialize)]
struct Shown {
    database_id: String,
    backup_id: String,
    database_name: String,
    server_version: String,
    tier: String,
    started_at: String,
    finished_at: String,
    reason: Option<String>,
    encrypted: bool,
    /// Whether the manifest's seal matches it (absent for sets written before seals).
    sealed: Option<bool>,
    /// Stored bytes of every part.
    bytes: u64,
    parts: usize,
    /// `None` when the set is encrypted and no identity was given.
    tables: Option<Vec<ShownTable>>,
    items: Option<Vec<ShownItem>>,
    large_object_parts: usize,
    inventory: std::collections::BTreeMap<String, u64>,
    excluded: Vec<String>,
}

#[derive(Debug, Serialize)]
struct ShownTable {
    table: String,
    rows: u64,
    /// Stored bytes of the parts that hold this table alone; `None` for a table bundled with
    /// other small ones.
    bytes: Option<u64>,
}

#[derive(Debug, Serialize)]
struct ShownItem {
    section: &'static str,
    kind: String,
    name: String,
    table: Option<String>,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let url: StoreUrl = args.set.from.parse()?;
    let store = open_from_env(&url).await;
    let database = database_id(args.set.database_id.as_deref(), None, store.as_ref()).await?;
    let selector: BackupSelector = args.set.backup.parse()?;
    let stored = read_manifest(store.as_ref(), &database, &selector).await?;
    let identities = args.identity.identities()?;
    crate::keys::warn_if_plaintext(&stored, identities.is_some());
    let readable = !stored.is_encrypted() || identities.is_some();
    let manifest = if readable {
        stored.open(identities)?
    } else {
        stored
    };
    let shown = describe(store.as_ref(), &manifest, readable).await?;
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&shown)?);
    } else {
        print_text(&shown);
    }
    Ok(())
}

async fn describe(store: &dyn Store, manifest: &Manifest, readable: bool) -> anyhow::Result<Shown> {
    let mut items = None;
    let mut tables = None;
    if readable {
        let mut listed = Vec::new();
        for (kind, section) in [
            (PartKind::PreData, "pre-data"),
            (PartKind::PostData, "post-data"),
            (PartKind::Statistics, "statistics"),
        ] {
            for part in manifest.parts.iter().filter(|p| p.kind == kind) {
                let text = read_script(store, manifest, part).await?;
                let parsed: Vec<ScriptItem> =
                    script::parse(&text, &manifest.item_marker, manifest.format_version)
                        .map_err(|reason| anyhow::anyhow!("{}: {reason}", part.key))?;
                listed.extend(parsed.into_iter().map(|item| {
                    ShownItem {
                        section,
                        kind: serde_json::to_value(item.header.kind)
                            .ok()
                            .and_then(|v| v.as_str().map(str::to_string))
                            .unwrap_or_default(),
                        name: item.header.name,
                        table: item.header.table,
                    }
                }));
            }
        }
        items = Some(listed);
        tables = Some(
            manifest
                .tables()
                .into_iter()
                .map(|(name, blocks)| ShownTable {
                    table: name.to_string(),
                    rows: blocks.iter().map(|(_, t)| t.rows).sum(),
                    bytes: blocks
                        .iter()
                        .all(|(part, _)| part.table.is_some())
                        .then(|| blocks.iter().map(|(part, _)| part.bytes).sum()),
                })
                .collect(),
        );
    }
    let time = |t: time::OffsetDateTime| {
        t.format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default()
    };
    Ok(Shown {
        database_id: manifest.database_id.clone(),
        backup_id: manifest.backup_id.clone(),
        database_name: manifest.database_name.clone(),
        server_version: manifest.server_version.clone(),
        tier: manifest.tier.as_str().to_string(),
        started_at: time(manifest.started_at),
        finished_at: time(manifest.finished_at),
        reason: manifest.reason.clone(),
        encrypted: manifest.is_encrypted(),
        sealed: manifest.seal_holds(),
        bytes: manifest.total_bytes(),
        parts: manifest.parts.len(),
        tables,
        items,
        large_object_parts: manifest
            .parts
            .iter()
            .filter(|p| p.large_objects.is_some())
            .count(),
        inventory: manifest.inventory.clone(),
        excluded: manifest.excluded.clone(),
    })
}

fn print_text(shown: &Shown) {
    outln!(
        "backup {} of database {} ({}), PostgreSQL {}, {} tier",
        shown.backup_id,
        shown.database_id,
        shown.database_name,
        shown.server_version,
        shown.tier
    );
    outln!("taken {} to {}", shown.started_at, shown.finished_at);
    if let Some(reason) = &shown.reason {
        outln!("reason: {reason}");
    }
    outln!(
        "stored: {} in {} parts; {}; seal {}",
        size(shown.bytes),
        shown.parts,
        if shown.encrypted {
            "encrypted"
        } else {
            "not encrypted"
        },
        match shown.sealed {
            Some(true) => "holds",
            Some(false) => "DOES NOT HOLD (changed after it was written)",
            None => "absent (an older set)",
        }
    );
    match &shown.tables {
        None => outln!("\nencrypted: pass --identity to see its tables and items"),
        Some(tables) => {
            outln!(
                "\n{} tables, {} rows:",
                tables.len(),
                tables.iter().map(|t| t.rows).sum::<u64>()
            );
            let rows: Vec<Vec<String>> = tables
                .iter()
                .map(|t| {
                    vec![
                        t.table.clone(),
                        t.rows.to_string(),
                        t.bytes.map_or("(bundled)".into(), size),
                    ]
                })
                .collect();
            out!(
                "{}",
                table(
                    &[
                        ("TABLE", Align::Left),
                        ("ROWS", Align::Right),
                        ("STORED", Align::Right)
                    ],
                    &rows
                )
            );
        }
    }
    if let Some(items) = &shown.items {
        outln!("\n{} items, in restore order:", items.len());
        for (n, item) in items.iter().enumerate() {
            outln!(
                "{:>5}; {}; {}; {}{}",
                n + 1,
                item.section,
                item.kind,
                item.name,
                item.table
                    .as_ref()
                    .filter(|t| **t != item.name)
                    .map(|t| format!(" (on {t})"))
                    .unwrap_or_default()
            );
        }
    }
    if shown.large_object_parts > 0 {
        outln!("\nlarge objects: {} part(s)", shown.large_object_parts);
    }
    outln!("\nobjects in the source, per kind:");
    for (kind, count) in &shown.inventory {
        outln!("  {kind}: {count}");
    }
    if shown.excluded.is_empty() {
        outln!("\nnothing was excluded");
    } else {
        outln!("\nexcluded when it was taken:");
        for object in &shown.excluded {
            outln!("  {object}");
        }
    }
}
