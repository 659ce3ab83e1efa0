//! What several subcommands share: resolving the database id, terminal detection, sizes.

use std::io::IsTerminal;

use anyhow::bail;
use backstop::layout::{DatabaseId, STATE_PREFIX};
use backstop::store::Store;

/// The database `--db` names, as psql reads it: a URL, `key=value` pairs or a database name,
/// completed from the service file, the `PG*` variables and the password file.
pub fn target(given: Option<&str>) -> anyhow::Result<backstop::pg::PgTarget> {
    let environment = backstop::pg::conninfo::Environment::of_process();
    Ok(backstop::pg::conninfo::resolve(given, &environment)?)
}

/// `--database-id`, else the name of the database backed up, else the only database in the
/// store.
pub async fn database_id(
    explicit: Option<&str>,
    target: Option<&backstop::pg::PgTarget>,
    store: &dyn Store,
) -> anyhow::Result<DatabaseId> {
    if let Some(id) = explicit {
        return Ok(DatabaseId::new(id)?);
    }
    if let Some(target) = target
        && let Some(name) = backstop::pg::database_name(target)
    {
        return Ok(DatabaseId::new(&name)?);
    }
    let objects = store.list("").await?;
    let mut ids: Vec<&str> = objects
        .iter()
        .filter_map(|o| o.key.split('/').next())
        .filter(|d| *d != STATE_PREFIX)
        .collect();
    ids.dedup();
    match ids.as_slice() {
        [] => bail!("no backups in {}; check the store URL", store.url()),
        [one] => Ok(DatabaseId::new(one)?),
        many => bail!(
            "{} holds backups of several databases ({}); pass --database-id",
            store.url(),
            many.join(", ")
        ),
    }
}

/// `--from`, `--database-id` and `--backup`: the backup a command reads.
#[derive(Debug, clap::Args)]
pub struct SetArgs {
    /// Store to read: file:///path or s3://bucket/prefix.
    #[arg(long, value_name = "STORE")]
    pub from: String,
    /// Which database's backups (default: the only one in the store).
    #[arg(long, value_name = "ID")]
    pub database_id: Option<String>,
    /// A backup id, or `latest`.
    #[arg(long, value_name = "ID", default_value = "latest")]
    pub backup: String,
}

/// Who holds a lease this command takes, for the people who find it held.
pub fn lease_holder() -> String {
    format!(
        "backstop CLI on {} pid {}",
        std::env::var("HOSTNAME").unwrap_or_else(|_| "this host".into()),
        std::process::id()
    )
}

/// Cancels `interrupt` on the first SIGINT (Ctrl-C) or SIGTERM, so the run stops cleanly:
/// its set removed, its lease released, one line said. A second signal ends the process at
/// once, as it would without this.
pub fn interrupt_on_signals(interrupt: &tokio_util::sync::CancellationToken) {
    let interrupt = interrupt.clone();
    tokio::spawn(async move {
        backstop::signals::stop_signal().await;
        interrupt.cancel();
        backstop::signals::stop_signal().await;
        std::process::exit(130);
    });
}

/// Whether progress lines should be printed (stderr is a terminal).
pub fn interactive() -> bool {
    std::io::stderr().is_terminal()
}

/// `1.5 MiB`-style sizes.
pub fn size(bytes: u64) -> String {
    backstop::units::human_bytes(bytes)
}

/// How a table column lines up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Align {
    Left,
    Right,
}

/// A plain-text table with columns as wide as their widest cell.
pub fn table(headers: &[(&str, Align)], rows: &[Vec<String>]) -> String {
    let widths: Vec<usize> = headers
        .iter()
        .enumerate()
        .map(|(i, (h, _))| {
            rows.iter()
                .filter_map(|r| r.get(i))
                .map(|c| c.chars().count())
                .chain([h.len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |cells: Vec<&str>| {
        let parts: Vec<String> = cells
            .iter()
            .enumerate()
            .map(|(i, cell)| {
                let width = widths.get(i).copied().unwrap_or(0);
                match headers.get(i).map(|h| h.1) {
                    Some(Align::Right) => format!("{cell:>width$}"),
                    _ if i + 1 == cells.len() => cell.to_string(),
                    _ => format!("{cell:<width$}"),
                }
            })
            .collect();
        parts.join("  ").trim_end().to_string()
    };
    let mut out = line(headers.iter().map(|(h, _)| *h).collect());
    out.push('\n');
    for row in rows {
        out.push_str(&line(row.iter().map(String::as_str).collect()));
        out.push('\n');
    }
    out
}

/// `--tier`: a tier, or `auto` to derive it from the store's history.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TierChoice {
    Auto,
    Daily,
    Weekly,
    Monthly,
}

impl TierChoice {
    /// The tier asked for; `None` for `auto`.
    pub fn tier(self) -> Option<backstop::tier::Tier> {
        match self {
            TierChoice::Auto => None,
            TierChoice::Daily => Some(backstop::tier::Tier::Daily),
            TierChoice::Weekly => Some(backstop::tier::Tier::Weekly),
            TierChoice::Monthly => Some(backstop::tier::Tier::Monthly),
        }
    }
}

/// `--level` of a verification.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LevelChoice {
    Manifest,
    Deep,
    Restore,
}

impl From<LevelChoice> for backstop::engine::verify::Level {
    fn from(choice: LevelChoice) -> Self {
        match choice {
            LevelChoice::Manifest => Self::Manifest,
            LevelChoice::Deep => Self::Deep,
            LevelChoice::Restore => Self::Restore,
        }
    }
}

/// A count that must be at least 1 (`--jobs`).
pub fn at_least_one(value: &str) -> Result<usize, String> {
    match value.trim().parse::<usize>() {
        Ok(0) => Err("must be at least 1".into()),
        Ok(n) if n > MAX_JOBS => Err(format!(
            "{n} is more than {MAX_JOBS}; no server takes that many connections from one run"
        )),
        Ok(n) => Ok(n),
        Err(_) => Err(format!("`{value}` is not a whole number")),
    }
}

/// The most parallel connections `--jobs` asks for.
const MAX_JOBS: usize = 1024;

/// A time as `--to-time` and `--before` take it: RFC 3339, with its offset.
pub fn parse_time(text: &str) -> Result<time::OffsetDateTime, String> {
    backstop::engine::stream::decoding::parse_rfc3339(text).ok_or_else(|| {
        format!("`{text}` is not a time like 2026-12-01T10:30:00Z (RFC 3339, with its offset)")
    })
}
