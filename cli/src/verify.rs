//! `backstop verify`: checks a backup at the manifest, deep or restore level.

use backstop::engine::restore::{BackupSelector, RestoreError, read_manifest_of, resolve_backup};
use backstop::engine::verify::log::{Chain, append, read_chain_against};
use backstop::engine::verify::{
    Level, Verdict, Verification, VerifyOptions, record, record_unreadable, unreadable_manifest,
    verify_counted,
};
use backstop::layout::DatabaseId;
use backstop::store::{Store, StoreUrl, open_from_env};

use crate::common::{LevelChoice, at_least_one, database_id};

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Each verification is added to the database's verification log (_backstop/verifications/<database-id>/), whose chain is then checked.\n\nExit status: 0 verified, 1 verification failed or the verification log found edited or deleted, 2 could not verify (bad arguments, store or scratch server unreachable, parts archived, the verification not added to the log).\n\nExamples:\n  backstop verify --from s3://my-backups/prod --database-id app --level deep\n  backstop verify --from s3://my-backups/prod --database-id app --level restore --scratch-db postgresql://verifier@scratch:5432/postgres"
)]
pub struct Args {
    #[command(flatten)]
    set: crate::common::SetArgs,
    /// manifest: parts exist with their sizes; deep: download and check every part; restore:
    /// restore into a scratch database and compare.
    #[arg(long, value_name = "LEVEL", value_enum, default_value_t = LevelChoice::Deep)]
    level: LevelChoice,
    /// For --level restore: a server where a scratch database may be created and dropped, as
    /// the URL of any database on it.
    #[arg(
        long,
        value_name = "URL",
        env = "BACKSTOP_SCRATCH_URL",
        hide_env_values = true
    )]
    scratch_db: Option<String>,
    /// Parallel connections for the restore level.
    #[arg(long, value_name = "N", default_value_t = 2, value_parser = at_least_one)]
    jobs: usize,
    #[command(flatten)]
    identity: crate::keys::IdentityArgs,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

pub async fn run(args: Args) -> anyhow::Result<Verdict> {
    let url: StoreUrl = args.set.from.parse()?;
    let counted = std::sync::Arc::new(backstop::store::CountingStore::new(
        open_from_env(&url).await,
    ));
    let store: std::sync::Arc<dyn backstop::store::Store> = counted.clone();
    let database = database_id(args.set.database_id.as_deref(), None, store.as_ref()).await?;
    let selector: BackupSelector = args.set.backup.parse()?;
    let level: Level = args.level.into();
    let scratch = args
        .scratch_db
        .as_deref()
        .map(|given| crate::common::target(Some(given)))
        .transpose()?;
    let interrupt = tokio_util::sync::CancellationToken::new();
    crate::common::interrupt_on_signals(&interrupt);
    let backup = resolve_backup(store.as_ref(), &database, &selector).await?;
    let (result, checksums_checked) = match read_manifest_of(store.as_ref(), &database, &backup)
        .await
    {
        // A manifest that is there but is not one: a damaged backup, a failed verification.
        Err(RestoreError::Manifest { reason, .. }) => {
            let result = unreadable_manifest(&database, &backup, level, &reason);
            if let Err(e) = record_unreadable(store.as_ref(), &database, &backup, &result).await {
                eprintln!("warning: the result was not recorded in the store: {e}");
            }
            (result, 0)
        }
        Err(e) => return Err(e.into()),
        Ok(manifest) => {
            // The manifest level reads only what an encrypted set keeps in the clear.
            let identities = args.identity.identities()?;
            crate::keys::warn_if_plaintext(&manifest, identities.is_some());
            let manifest = match (level, &identities) {
                (Level::Manifest, None) => manifest,
                _ => manifest.open(identities)?,
            };
            let options = VerifyOptions {
                level,
                scratch,
                jobs: args.jobs,
                interrupt: interrupt.clone(),
            };
            // Every part is read (deep), or read and restored (restore): the bar follows the
            // bytes read from the store against the set's size.
            let progress = crate::progress::Progress::new("verify", args.json);
            if level != Level::Manifest {
                progress.phase(
                    level.as_str(),
                    manifest.total_bytes(),
                    crate::progress::Unit::Bytes,
                );
                let counted = counted.clone();
                progress.follow(move || counted.bytes_read());
            }
            let counted = verify_counted(store.clone(), &manifest, &options).await;
            match &counted {
                Ok(_) => progress.finish(),
                Err(_) => progress.abandon(),
            }
            let counted = counted?;
            let result = counted.verification;
            if let Err(e) = record(store.as_ref(), &manifest, &result).await {
                eprintln!("warning: the result was not recorded in the store: {e}");
            }
            (result, counted.checksums_checked)
        }
    };
    let logged = log(store.as_ref(), &database, &result, checksums_checked).await;
    if args.json {
        let mut json = serde_json::to_value(&result)?;
        if let (Ok((seq, chain)), Some(fields)) = (&logged, json.as_object_mut()) {
            fields.insert("verification_log".into(), log_json(*seq, chain, &database));
        }
        outln!("{}", serde_json::to_string_pretty(&json)?);
    } else {
        let verdict = match result.verdict {
            Verdict::Passed => "passed",
            Verdict::Failed => "FAILED",
            Verdict::NotVerifiableNow => "not verifiable now",
        };
        let replayed = result
            .replayed_through
            .map(|t| {
                format!(
                    " and carried by the change stream to {}",
                    t.format(&time::format_description::well_known::Rfc3339)
                        .unwrap_or_default()
                )
            })
            .unwrap_or_default();
        let rto = result
            .restore_seconds
            .map(|s| format!(", restored{replayed} in {s:.1}s"))
            .unwrap_or_default();
        outln!(
            "backup {} of {}: {} verification {verdict} in {:.1}s{rto}",
            result.backup_id,
            result.database_id,
            level.as_str(),
            result.duration_seconds
        );
        for finding in &result.findings {
            outln!("  {finding}");
        }
        if let Ok((seq, chain)) = &logged {
            match chain.problems.len() {
                0 => outln!(
                    "verification log: entry {seq} added; {} entries, none edited or deleted",
                    chain.entries.len()
                ),
                problems => {
                    outln!(
                        "verification log: entry {seq} added; {problems} problem(s) found, the log was changed after it was written:"
                    );
                    for problem in &chain.problems {
                        outln!("  {}", problem.describe(&database));
                    }
                }
            }
        }
    }
    // The verification counts either way; a log that misses it, or was found changed, is
    // not a clean run.
    match logged {
        Err(line) if result.verdict == Verdict::Failed => {
            eprintln!("error: {line}");
            Ok(Verdict::Failed)
        }
        Err(line) => Err(anyhow::anyhow!(line)),
        Ok((_, chain)) if !chain.problems.is_empty() => Ok(Verdict::Failed),
        Ok(_) => Ok(result.verdict),
    }
}

/// Adds `result` to the database's verification log, then reads the log and checks it
/// against what the monitor last saw: the entry's number and the chain, or one line saying
/// what could not be done.
async fn log(
    store: &dyn Store,
    database: &DatabaseId,
    result: &Verification,
    checksums_checked: u64,
) -> Result<(u64, Chain), String> {
    let by = format!("backstop verify ({})", who());
    let entry = append(store, result, checksums_checked, &by)
        .await
        .map_err(|e| {
            format!("the verification was not added to the verification log of {database}: {e}")
        })?;
    let checked = async {
        let memory = backstop::health::verification_log::remembered(store, database).await?;
        read_chain_against(store, database, memory.seen.as_ref()).await
    };
    let chain = checked.await.map_err(|e| {
        format!(
            "the verification is entry {} of the verification log of {database}, but the log could not be checked: {e}",
            entry.seq
        )
    })?;
    Ok((entry.seq, chain))
}

/// The log's part of `--json`: the entry added, the entries read, and each problem.
fn log_json(seq: u64, chain: &Chain, database: &DatabaseId) -> serde_json::Value {
    let problems: Vec<serde_json::Value> = chain
        .problems
        .iter()
        .map(|p| serde_json::json!({"seq": p.seq(), "problem": p.describe(database)}))
        .collect();
    serde_json::json!({
        "seq": seq,
        "entries": chain.entries.len(),
        "problems": problems,
    })
}

/// Who runs this, as `user@host`, from the environment (what the log's `by` says: a claim,
/// not an identity).
fn who() -> String {
    let user = ["USER", "LOGNAME", "USERNAME"]
        .iter()
        .find_map(|name| std::env::var(name).ok().filter(|v| !v.trim().is_empty()))
        .unwrap_or_else(|| "unknown user".into());
    let host = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok())
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown host".into());
    format!("{user}@{host}")
}
