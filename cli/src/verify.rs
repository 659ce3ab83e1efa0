//! `backstop verify`: checks a backup at the manifest, deep or restore level.

use backstop::engine::restore::{BackupSelector, RestoreError, read_manifest_of, resolve_backup};
use backstop::engine::verify::{
    Level, Verdict, VerifyOptions, record, record_unreadable, unreadable_manifest, verify,
};
use backstop::store::{StoreUrl, open_from_env};

use crate::common::{LevelChoice, at_least_one, database_id};

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Exit status: 0 verified, 1 verification failed, 2 could not verify (bad arguments, store or scratch server unreachable, parts archived).\n\nExamples:\n  backstop verify --from s3://my-backups/prod --database-id app --level deep\n  backstop verify --from s3://my-backups/prod --database-id app --level restore --scratch-db postgresql://verifier@scratch:5432/postgres"
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
    let result = match read_manifest_of(store.as_ref(), &database, &backup).await {
        // A manifest that is there but is not one: a damaged backup, a failed verification.
        Err(RestoreError::Manifest { reason, .. }) => {
            let result = unreadable_manifest(&database, &backup, level, &reason);
            if let Err(e) = record_unreadable(store.as_ref(), &database, &backup, &result).await {
                eprintln!("warning: the result was not recorded in the store: {e}");
            }
            result
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
            let result = verify(store.clone(), &manifest, &options).await;
            match &result {
                Ok(_) => progress.finish(),
                Err(_) => progress.abandon(),
            }
            let result = result?;
            if let Err(e) = record(store.as_ref(), &manifest, &result).await {
                eprintln!("warning: the result was not recorded in the store: {e}");
            }
            result
        }
    };
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&result)?);
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
    }
    Ok(result.verdict)
}
