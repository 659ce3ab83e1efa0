//! `backstop keygen`, and the encryption options the other subcommands share.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, bail};
use backstop::engine::encryption::{self, Identities, Recipients};

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Example:\n  backstop keygen -o backstop-restore.key\n\nKeep the key file offline (or in a secret store only restores may read); give backups the\nage1… recipient it prints: `backstop backup --recipient age1…`."
)]
pub struct KeygenArgs {
    /// Where to write the new identity (created with mode 0600; never overwritten).
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    output: PathBuf,
}

/// Writes a new identity and prints its recipient.
pub fn run_keygen(args: KeygenArgs) -> anyhow::Result<()> {
    let (file, recipient) = encryption::generate();
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut out = options.open(&args.output).with_context(|| {
        format!(
            "cannot create {} (an existing key is never overwritten)",
            args.output.display()
        )
    })?;
    out.write_all(file.as_bytes())?;
    out.sync_all()?;
    eprintln!(
        "wrote a new identity to {}; its recipient:",
        args.output.display()
    );
    outln!("{recipient}");
    Ok(())
}

/// `--recipient` (and `BACKSTOP_RECIPIENTS`), `BACKSTOP_REQUIRE_ENCRYPTION`: what a backup is
/// encrypted to, refusing an unencrypted backup where encryption is required.
#[derive(Debug, clap::Args)]
pub struct RecipientArgs {
    /// Encrypt every object of the backup to this age recipient (age1…; repeatable). Only the
    /// holder of a matching identity can read the backup.
    #[arg(
        long = "recipient",
        value_name = "AGE1...",
        env = "BACKSTOP_RECIPIENTS",
        value_delimiter = ','
    )]
    recipients: Vec<String>,
    /// Refuse to take a backup that is not encrypted.
    #[arg(long, env = "BACKSTOP_REQUIRE_ENCRYPTION")]
    require_encryption: bool,
}

impl RecipientArgs {
    pub fn recipients(&self) -> anyhow::Result<Option<Recipients>> {
        let values: Vec<&str> = self
            .recipients
            .iter()
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
            .collect();
        if values.is_empty() {
            if self.require_encryption {
                bail!(
                    "encryption is required (BACKSTOP_REQUIRE_ENCRYPTION) and no recipient is set: pass --recipient age1… or set BACKSTOP_RECIPIENTS"
                );
            }
            return Ok(None);
        }
        Ok(Some(Recipients::parse(&values)?))
    }
}

/// `--identity`: the key an encrypted backup is read with.
#[derive(Debug, clap::Args)]
pub struct IdentityArgs {
    /// An age identity file (from `backstop keygen` or `age-keygen`) to read encrypted backups.
    #[arg(long = "identity", value_name = "FILE", env = "BACKSTOP_IDENTITY_FILE")]
    identity: Option<PathBuf>,
}

impl IdentityArgs {
    pub fn identities(&self) -> anyhow::Result<Option<Arc<Identities>>> {
        self.identity
            .as_deref()
            .map(|path| Identities::from_file(path).map(Arc::new))
            .transpose()
            .map_err(Into::into)
    }
}

/// A set read with `--identity` that is not encrypted is said so: a set that should have been
/// encrypted may have been replaced by one that anyone who can write the store wrote.
pub fn warn_if_plaintext(manifest: &backstop::engine::manifest::Manifest, identity_given: bool) {
    if identity_given && !manifest.is_encrypted() {
        eprintln!(
            "warning: backup {} is not encrypted, though an identity was given: if its backups are \
             meant to be encrypted, this set was not written by them; check where it came from",
            manifest.backup_id
        );
    }
}
