//! `backstop`: the command line for operators. Parses arguments, calls the core, and turns
//! every failure into one readable line on stderr and a non-zero exit code.

#[macro_use]
mod output;

mod advise;
mod backup;
mod common;
mod compare;
mod doctor;
mod health;
mod incidents;
mod keys;
mod list;
mod progress;
mod prune;
mod report;
mod restore;
mod show;
mod status;
mod stream;
mod verify;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Exit code for a failed command (clap itself exits 2 for bad arguments).
const EXIT_FAILURE: u8 = 1;
/// Exit code of `verify` when it could not verify at all.
const EXIT_CANNOT_VERIFY: u8 = 2;
/// Exit code of `health` when the check could not run (Nagios "unknown").
const EXIT_HEALTH_UNKNOWN: u8 = 3;

#[derive(Debug, Parser)]
#[command(
    name = "backstop",
    version,
    about = "Verified PostgreSQL backups: take, check, list and restore them",
    after_help = "Examples:\n  backstop doctor --store s3://my-backups/prod --db postgresql://backup@db:5432/app\n  backstop backup --db postgresql://backup@db:5432/app --to s3://my-backups/prod\n  backstop list --from s3://my-backups/prod\n  backstop verify --from s3://my-backups/prod --database-id app --level deep\n  backstop health --from s3://my-backups/prod --database-id app\n  backstop status --from s3://my-backups/prod --html status.html\n  backstop report --from s3://my-backups/prod --since 2026-10-01 --html report.html\n  backstop restore --from s3://my-backups/prod --database-id app --db postgresql://postgres@localhost/app_copy\n\nExit status: 0 success; 1 failure (one line on stderr says what to do); 2 bad arguments.\n`verify` exits 2 when it could not verify; `health` exits 0/1/2/3 for healthy/warning/critical/unknown.\n--db takes what psql takes (URL, key=value pairs or a database name) and reads PGHOST, PGPORT, PGUSER, PGDATABASE, PGPASSWORD, PGSERVICE and ~/.pgpass as psql does; BACKSTOP_DATABASE_URL also sets it. AWS settings from the usual AWS_* variables."
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
    /// Drain a database's change stream into a store (point-in-time recovery).
    Stream(stream::Args),
    /// Write a backup as one psql script.
    Export(restore::ExportArgs),
    /// Check that a store can hold backups and that a database is reachable.
    Doctor(doctor::Args),
    /// List the backups in a store.
    List(list::Args),
    /// What is inside a backup: its tables, rows and sizes, every item, what was excluded.
    Show(show::Args),
    /// The streamed transactions to look at first when rows went missing, each with its restore.
    Incidents(incidents::Args),
    /// Check a backup: its manifest, every part, or a test restore into a scratch database.
    Verify(verify::Args),
    /// Delete the backups a keep-daily/weekly/monthly policy does not keep.
    Prune(prune::Args),
    /// Backup freshness and database health (exit 0 healthy, 1 warning, 2 critical, 3 unknown).
    Health(health::Args),
    /// Every database in a store on one screen: age, size, verification, RTO, PITR (or --html).
    Status(status::Args),
    /// Per database over a period: objectives met and missed, restore tests, the record (or --html).
    Report(report::Args),
    /// Index advice as a migration to review and apply; --check once it ran.
    Advise(advise::Args),
    /// What differs between a table and its copy restored beside it, and SQL to put rows back.
    Compare(compare::Args),
    /// Make an age identity for encrypted backups and print its recipient.
    Keygen(keys::KeygenArgs),
    /// Print a shell completion script, e.g. `backstop completions bash > /etc/bash_completion.d/backstop`.
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
    /// Write the man pages (backstop.1 and one per command) into a folder, e.g.
    /// `backstop manpages /usr/local/share/man/man1`.
    Manpages {
        /// The folder to write them into (it must exist).
        dir: std::path::PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Command::Completions { shell } = cli.command {
        use clap::CommandFactory;
        clap_complete::generate(
            shell,
            &mut Cli::command(),
            "backstop",
            &mut std::io::stdout(),
        );
        return ExitCode::SUCCESS;
    }
    if let Command::Manpages { dir } = &cli.command {
        use clap::CommandFactory;
        return match clap_mangen::generate_to(Cli::command(), dir) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!(
                    "error: cannot write the man pages into {}: {e}; check the folder exists and is writable",
                    dir.display()
                );
                ExitCode::from(EXIT_FAILURE)
            }
        };
    }
    // Colour only on a terminal (and not with NO_COLOR); the AWS SDK's own warnings only with
    // RUST_LOG: what they say reaches the one error line, without their debug dumps.
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
                tracing_subscriber::EnvFilter::new(
                    "warn,aws_config=error,aws_runtime=error,aws_smithy_runtime=error,aws_smithy_runtime_api=error,aws_sdk_s3=error",
                )
            }),
        )
        .with_ansi(
            std::io::IsTerminal::is_terminal(&std::io::stderr())
                && std::env::var_os("NO_COLOR").is_none(),
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
    let failure_code = match cli.command {
        Command::Verify(_) => EXIT_CANNOT_VERIFY,
        Command::Health(_) | Command::Status(_) => EXIT_HEALTH_UNKNOWN,
        _ => EXIT_FAILURE,
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Backup(args) => backup::run(args).await.map(|()| 0),
            Command::Restore(args) => restore::run_restore(args).await.map(|()| 0),
            Command::Export(args) => restore::run_export(args).await.map(|()| 0),
            Command::Stream(args) => stream::run(args).await.map(|()| 0),
            Command::Doctor(args) => doctor::run(args).await.map(|()| 0),
            Command::Advise(args) => advise::run(args).await.map(|()| 0),
            Command::Compare(args) => compare::run(args).await.map(|()| 0),
            Command::List(args) => list::run(args).await.map(|()| 0),
            Command::Show(args) => show::run(args).await.map(|()| 0),
            Command::Incidents(args) => incidents::run(args).await.map(|()| 0),
            Command::Prune(args) => prune::run(args).await.map(|()| 0),
            Command::Report(args) => report::run(args).await.map(|()| 0),
            Command::Completions { .. } | Command::Manpages { .. } => Ok(0),
            Command::Keygen(args) => keys::run_keygen(args).map(|()| 0),
            Command::Health(args) => health::run(args).await.map(health_exit),
            Command::Status(args) => status::run(args).await.map(health_exit),
            Command::Verify(args) => verify::run(args).await.map(|verdict| match verdict {
                backstop::engine::verify::Verdict::Passed => 0,
                backstop::engine::verify::Verdict::Failed => EXIT_FAILURE,
                backstop::engine::verify::Verdict::NotVerifiableNow => EXIT_CANNOT_VERIFY,
            }),
        }
    });
    match result {
        Ok(code) => ExitCode::from(code),
        Err(error) if output::is_closed_pipe(&error) => ExitCode::from(output::EXIT_CLOSED_PIPE),
        Err(error) => {
            eprintln!("error: {}", one_line(&error));
            ExitCode::from(failure_code)
        }
    }
}

/// `health`'s exit code for a status (the Nagios convention).
fn health_exit(status: backstop::health::HealthStatus) -> u8 {
    match status {
        backstop::health::HealthStatus::Healthy => 0,
        backstop::health::HealthStatus::Warning => 1,
        backstop::health::HealthStatus::Critical => 2,
        backstop::health::HealthStatus::Unknown => EXIT_HEALTH_UNKNOWN,
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
