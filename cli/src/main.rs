//! `backstop`: the command line for operators. Parses arguments, calls the core, and turns
//! every failure into one readable line on stderr and a non-zero exit code.

mod backup;
mod common;
mod doctor;
mod list;
mod restore;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Exit code for a failed command (clap itself exits 2 for bad arguments).
const EXIT_FAILURE: u8 = 1;

#[derive(Debug, Parser)]
#[command(
    name = "backstop",
    version,
    about = "Verified PostgreSQL backups: take, check, list and restore them",
    after_help = "Examples:\n  backstop backup --db postgresql://backup@db:5432/app --to s3://my-backups/prod\n  backstop list --from s3://my-backups/prod\n  backstop restore --from s3://my-backups/prod --database-id app --db postgresql://postgres@localhost/app_copy\n  backstop doctor --store s3://my-backups/prod --db postgresql://backup@db:5432/app"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Take a backup of a database into a store.
    Backup(backup::Args),
    /// Restore a backup into a database.
    Restore(restore::RestoreArgs),
    /// Write a backup as one psql script.
    Export(restore::ExportArgs),
    /// Check that a store can hold backups and that a database is reachable.
    Doctor(doctor::Args),
    /// List the backups in a store.
    List(list::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(EXIT_FAILURE);
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Backup(args) => backup::run(args).await,
            Command::Restore(args) => restore::run_restore(args).await,
            Command::Export(args) => restore::run_export(args).await,
            Command::Doctor(args) => doctor::run(args).await,
            Command::List(args) => list::run(args).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {}", one_line(&error));
            ExitCode::from(EXIT_FAILURE)
        }
    }
}

/// The error and its causes on one line, without repeating a cause already in the message.
fn one_line(error: &anyhow::Error) -> String {
    let mut line = error.to_string();
    for cause in error.chain().skip(1) {
        let cause = cause.to_string();
        if !line.contains(&cause) {
            line.push_str(": ");
            line.push_str(&cause);
        }
    }
    line.replace('\n', " ")
}
