//! `backstop doctor`: checks the configuration, the store, and the database and its role's
//! privileges, and says what to fix. Exit 1 when something would make a backup fail.

use backstop::engine::catalog::ident;
use backstop::readiness::check_role;
use backstop::store::{StoreUrl, open_from_env, probe};
use serde::Serialize;

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Example:\n  backstop doctor --store file:///var/backups/backstop --db postgresql://postgres@localhost/app\n\nExit status: 0 ready (warnings allowed), 1 something must be fixed first."
)]
pub struct Args {
    /// Store to check: file:///path or s3://bucket/prefix.
    #[arg(long, value_name = "STORE")]
    store: Option<String>,
    /// Database to check, as psql takes it (a postgresql:// URL, key=value pairs
    /// or a database name); the rest from PGHOST, PGUSER and the other PG* variables, PGSERVICE
    /// and ~/.pgpass.
    #[arg(
        long,
        value_name = "URL",
        env = "BACKSTOP_DATABASE_URL",
        hide_env_values = true
    )]
    db: Option<String>,
    /// Print the checks as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
enum Outcome {
    Ok,
    Warning,
    Failed,
}

#[derive(Debug, Serialize)]
struct Check {
    check: &'static str,
    outcome: Outcome,
    message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    fix: Option<String>,
}

fn check(check: &'static str, outcome: Outcome, message: String, fix: Option<String>) -> Check {
    Check {
        check,
        outcome,
        message,
        fix,
    }
}

fn examples(names: &[String]) -> String {
    let mut shown: Vec<&str> = names.iter().take(3).map(String::as_str).collect();
    if names.len() > 3 {
        shown.push("...");
    }
    shown.join(", ")
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    if args.store.is_none() && args.db.is_none() {
        anyhow::bail!("nothing to check; pass --store STORE and/or --db URL");
    }
    let mut checks = Vec::new();
    let env = |name: &str| std::env::var(name).ok();
    if env(backstop::config::DATABASES_VAR).is_some() || env(backstop::config::STORE_VAR).is_some()
    {
        checks.push(match backstop::config::FunctionConfig::from_lookup(env) {
            Ok(config) => check(
                "config",
                Outcome::Ok,
                format!(
                    "function settings name {} database(s)",
                    config.databases.len()
                ),
                None,
            ),
            Err(e) => check("config", Outcome::Failed, e.to_string(), None),
        });
    }
    // Encryption as the functions would see it: a recipient that does not parse (or none
    // where encryption is required) would refuse every backup.
    let encryption_set = [
        backstop::config::RECIPIENTS_VAR,
        backstop::config::REQUIRE_ENCRYPTION_VAR,
    ]
    .iter()
    .any(|var| env(var).is_some());
    if encryption_set {
        checks.push(match backstop::config::recipients(&env) {
            Ok(Some(recipients)) => check(
                "encryption",
                Outcome::Ok,
                format!(
                    "backups are encrypted to {} ({} recipient(s)); restores need a matching --identity",
                    recipients.names().join(", "),
                    recipients.names().len()
                ),
                None,
            ),
            Ok(None) => check(
                "encryption",
                Outcome::Warning,
                format!("{} is set but empty: backups are not encrypted", backstop::config::RECIPIENTS_VAR),
                Some("set it to the age1... recipients (`backstop keygen` makes one), or unset it".into()),
            ),
            Err(e) => check(
                "encryption",
                Outcome::Failed,
                e.to_string(),
                Some("`backstop keygen -o FILE` makes an identity and prints its age1... recipient".into()),
            ),
        });
    }
    if let Some(raw) = &args.store {
        let url: StoreUrl = raw.parse()?;
        if matches!(url, StoreUrl::S3 { .. }) {
            let aws = backstop::aws::load_sdk_config().await;
            if aws.region().is_none() {
                checks.push(check(
                    "aws",
                    Outcome::Failed,
                    "no AWS region is configured".into(),
                    Some("export AWS_REGION=eu-west-1 (or set a profile with a region)".into()),
                ));
            }
        }
        let store = open_from_env(&url).await;
        checks.push(match probe(store.as_ref()).await {
            Ok(report) => check(
                "store",
                Outcome::Ok,
                format!(
                    "{url}: wrote, tagged, listed, read back and deleted {} KiB",
                    report.bytes / 1024
                ),
                None,
            ),
            Err(e) => check("store", Outcome::Failed, e.to_string(), None),
        });
    }
    if let Some(raw) = &args.db {
        let target = crate::common::target(Some(raw))?;
        match backstop::pg::connect(&target).await {
            Err(e) => checks.push(check(
                "database",
                Outcome::Failed,
                e.to_string(),
                Some("check host, port, password and sslmode in the URL, and that the server accepts this client".into()),
            )),
            Ok(client) => {
                let version = client
                    .simple_query("SELECT current_setting('server_version')")
                    .await
                    .ok()
                    .and_then(|m| {
                        m.into_iter().find_map(|m| match m {
                            tokio_postgres::SimpleQueryMessage::Row(r) => {
                                r.get(0).map(str::to_string)
                            }
                            _ => None,
                        })
                    })
                    .unwrap_or_default();
                match check_role(&client).await {
                    Err(e) => checks.push(check("database", Outcome::Failed, e, None)),
                    Ok(role) => {
                        checks.push(check(
                            "database",
                            Outcome::Ok,
                            format!(
                                "{}: PostgreSQL {version}, connected as {}",
                                backstop::pg::database_name(&target).unwrap_or_default(),
                                role.role
                            ),
                            None,
                        ));
                        checks.extend(role_checks(&role));
                        checks.push(stream_check(&client).await);
                    }
                }
            }
        }
    }
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&checks)?);
    } else {
        for c in &checks {
            let label = match c.outcome {
                Outcome::Ok => "ok  ",
                Outcome::Warning => "WARN",
                Outcome::Failed => "FAIL",
            };
            outln!("{:<9} {label}  {}", c.check, c.message);
            if let Some(fix) = &c.fix {
                outln!("{:<9}       fix: {fix}", "");
            }
        }
    }
    if let Some(first) = checks.iter().find(|c| c.outcome == Outcome::Failed) {
        let fix = first
            .fix
            .as_ref()
            .map(|f| format!("; fix: {f}"))
            .unwrap_or_default();
        anyhow::bail!("{}: {}{fix}", first.check, first.message);
    }
    Ok(())
}

/// Whether `backstop stream` can run here, and whether its slot can endanger the server.
async fn stream_check(client: &tokio_postgres::Client) -> Check {
    let row = client
        .query_one(
            "SELECT current_setting('wal_level'), current_setting('max_slot_wal_keep_size'), \
             (SELECT rolreplication OR rolsuper FROM pg_roles WHERE rolname = current_user)",
            &[],
        )
        .await;
    let read = row.and_then(|r| {
        Ok((
            r.try_get::<_, String>(0)?,
            r.try_get::<_, String>(1)?,
            r.try_get::<_, Option<bool>>(2)?.unwrap_or(false),
        ))
    });
    let Ok((wal_level, keep, replication)) = read else {
        return check(
            "stream",
            Outcome::Warning,
            "could not read wal_level and max_slot_wal_keep_size".into(),
            None,
        );
    };
    if wal_level != "logical" {
        return check(
            "stream",
            Outcome::Ok,
            format!("point-in-time recovery (`backstop stream`) needs wal_level = logical; it is {wal_level}"),
            Some("ALTER SYSTEM SET wal_level = logical and restart (RDS/Aurora: rds.logical_replication = 1)".into()),
        );
    }
    if !replication {
        return check(
            "stream",
            Outcome::Warning,
            "wal_level is logical, but this role lacks REPLICATION, which `backstop stream` needs"
                .into(),
            Some("ALTER ROLE ... REPLICATION (RDS: GRANT rds_replication TO ...)".into()),
        );
    }
    if keep == "-1" {
        return check(
            "stream",
            Outcome::Warning,
            "max_slot_wal_keep_size is unlimited: a change stream that stops draining keeps WAL until the disk fills".into(),
            Some("ALTER SYSTEM SET max_slot_wal_keep_size = '10GB'; SELECT pg_reload_conf(); (or drain with --max-slot-wal-mib)".into()),
        );
    }
    check(
        "stream",
        Outcome::Ok,
        format!(
            "point-in-time recovery possible: wal_level = logical, a slot keeps at most {keep} of WAL"
        ),
        None,
    )
}

fn role_checks(role: &backstop::readiness::RoleReadiness) -> Vec<Check> {
    let mut checks = Vec::new();
    checks.push(match role.server_version.supported() {
        Ok(version) => check(
            "server",
            Outcome::Ok,
            format!(
                "PostgreSQL {version} (Backstop reads {} to {})",
                backstop::version::OLDEST_MAJOR,
                backstop::version::NEWEST_MAJOR
            ),
            None,
        ),
        Err(e) => check("server", Outcome::Failed, e.to_string(), None),
    });
    checks.push(if role.unreadable.is_empty() {
        check(
            "backup",
            Outcome::Ok,
            format!(
                "{} can read all {} tables, views and sequences",
                role.role, role.relations
            ),
            None,
        )
    } else {
        check(
            "backup",
            Outcome::Failed,
            format!(
                "{} cannot read {} of {} relations ({}); a backup would fail",
                role.role,
                role.unreadable.len(),
                role.relations,
                examples(&role.unreadable)
            ),
            Some(backstop::readiness::read_everything_fix(role)),
        )
    });
    if !role.filtered_by_rls.is_empty() {
        checks.push(check(
            "rls",
            Outcome::Failed,
            format!(
                "row-level security would hide rows of {} table(s) from {} ({}); a backup refuses to run rather than miss them",
                role.filtered_by_rls.len(),
                role.role,
                examples(&role.filtered_by_rls)
            ),
            Some(format!("ALTER ROLE {} BYPASSRLS;", ident(&role.role))),
        ));
    }
    checks.push(if role.monitor {
        check(
            "health",
            Outcome::Ok,
            "sees every session (pg_monitor)".into(),
            None,
        )
    } else {
        check(
            "health",
            Outcome::Warning,
            "not a member of pg_monitor: health checks see only this role's own sessions".into(),
            Some(format!("GRANT pg_monitor TO {};", ident(&role.role))),
        )
    });
    checks.push(if role.create_database {
        check(
            "verify",
            Outcome::Ok,
            "may create scratch databases for restore verification".into(),
            None,
        )
    } else {
        check(
            "verify",
            Outcome::Warning,
            "cannot CREATE DATABASE: give `verify --level restore` a --scratch-db server where it can".into(),
            None,
        )
    });
    checks
}
