//! `make demo`: a throwaway PostgreSQL holding a sample events-ticketing database (~100 MB),
//! then the real `backstop` CLI through the whole cycle: doctor, two backups, list, verify at
//! restore level, health (with the index advisor), a prune dry run, a restore into a new
//! database and a check that `pg_dump` of the copy matches the source. The store is
//! `file://.local/demo/store` unless `DEMO_STORE` names another (`s3://bucket/prefix` with
//! `AWS_ENDPOINT_URL` for a local S3 such as moto; the bucket is created when missing).
//! `DEMO_SCALE` (default 1) multiplies the sample's row counts: 0.1 makes it ~20 MB.

use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, bail};
use backstop::store::StoreUrl;
use backstop_tests::postgres::{cluster, fresh_database};
use serde_json::Value;

struct Step {
    name: &'static str,
    seconds: f64,
    result: String,
}

/// Runs the CLI; exit codes in `ok` count as success. Returns standard output.
fn backstop(args: &[&str], ok: &[i32]) -> anyhow::Result<String> {
    let output = Command::new(backstop_bin()?).args(args).output()?;
    if !output.status.code().is_some_and(|c| ok.contains(&c)) {
        bail!(
            "backstop {} failed: {}",
            args[0],
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

fn json(args: &[&str], ok: &[i32]) -> anyhow::Result<Value> {
    let out = backstop(args, ok)?;
    serde_json::from_str(&out).with_context(|| format!("backstop {} printed no JSON", args[0]))
}

fn timed<T>(f: impl FnOnce() -> anyhow::Result<T>) -> anyhow::Result<(f64, T)> {
    let started = Instant::now();
    let value = f()?;
    Ok((started.elapsed().as_secs_f64(), value))
}

fn mib(bytes: &Value) -> String {
    format!(
        "{:.1} MiB",
        bytes.as_f64().unwrap_or(0.0) / (1024.0 * 1024.0)
    )
}

/// The store for this run: a fresh local folder, or `DEMO_STORE` (its bucket created if need be).
async fn demo_store() -> anyhow::Result<String> {
    match std::env::var("DEMO_STORE") {
        Ok(raw) => {
            let url: StoreUrl = raw.parse()?;
            if let StoreUrl::S3 { bucket, .. } = &url {
                let aws = backstop::aws::load_sdk_config().await;
                let s3 = backstop::aws::s3_client(&aws);
                if s3.head_bucket().bucket(bucket).send().await.is_err() {
                    s3.create_bucket()
                        .bucket(bucket)
                        .send()
                        .await
                        .with_context(|| format!("creating bucket {bucket}"))?;
                }
            }
            Ok(url.to_string())
        }
        Err(_) => {
            let dir = backstop_tests::workspace_root().join(".local/demo/store");
            let _ = std::fs::remove_dir_all(&dir);
            Ok(format!("file://{}", dir.display()))
        }
    }
}

/// `DEMO_SCALE`, the factor of the sample's row counts: 1 unless set.
fn demo_scale() -> anyhow::Result<String> {
    let Ok(raw) = std::env::var("DEMO_SCALE") else {
        return Ok("1".into());
    };
    match raw.trim().parse::<f64>() {
        Ok(scale) if scale > 0.0 && scale.is_finite() => Ok(scale.to_string()),
        _ => bail!("DEMO_SCALE={raw}: give a number above 0 (1 is ~100 MB)"),
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let started = Instant::now();
    let store = demo_store().await?;
    println!("Backstop demo\n");
    let pg = cluster();
    let db = fresh_database("demo ticketing");
    let fixture = backstop_tests::workspace_root().join("tests/fixtures/demo/ticketing.sql");
    let scale = demo_scale()?;
    let (seconds, size) = timed(|| {
        db.psql_file_with(&fixture, &[("scale", &scale)]);
        Ok(db.psql("SELECT pg_size_pretty(pg_database_size(current_database()))"))
    })?;
    println!(
        "  PostgreSQL   throwaway cluster on {}:{} (removed when the demo ends)",
        pg.host, pg.port
    );
    println!(
        "  database     {} (events ticketing, {}, built in {seconds:.1}s)",
        db.name,
        size.trim()
    );
    println!("  store        {store}\n");
    let url = db.url();
    let id = db.name.as_str();
    let mut steps = Vec::new();

    let (seconds, out) = timed(|| backstop(&["doctor", "--store", &store, "--db", &url], &[0]))?;
    let warnings = out.lines().filter(|l| l.contains(" WARN ")).count();
    steps.push(Step {
        name: "doctor",
        seconds,
        result: format!(
            "{} checks, {warnings} warnings",
            out.lines()
                .filter(|l| !l.trim_start().starts_with("fix:"))
                .count()
        ),
    });

    let (seconds, first) =
        timed(|| json(&["backup", "--db", &url, "--to", &store, "--json"], &[0]))?;
    steps.push(Step {
        name: "backup",
        seconds,
        result: format!(
            "{}: {} tables, {} rows, {} stored, tier {}",
            first["backup_id"].as_str().unwrap_or("?"),
            first["tables"],
            first["rows"],
            mib(&first["bytes"]),
            first["tier"].as_str().unwrap_or("?")
        ),
    });
    db.psql("INSERT INTO ticketing.brands VALUES (41, 'Late Night Co', '{}')");
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let (seconds, second) =
        timed(|| json(&["backup", "--db", &url, "--to", &store, "--json"], &[0]))?;
    steps.push(Step {
        name: "backup #2",
        seconds,
        result: format!(
            "{}: tier {} (a later backup the same day)",
            second["backup_id"].as_str().unwrap_or("?"),
            second["tier"].as_str().unwrap_or("?")
        ),
    });

    let (seconds, out) =
        timed(|| backstop(&["list", "--from", &store, "--database-id", id], &[0]))?;
    print!("{out}");
    steps.push(Step {
        name: "list",
        seconds,
        result: format!("{} backups", out.lines().count().saturating_sub(1)),
    });

    let scratch = pg.url("postgres");
    let (seconds, verified) = timed(|| {
        json(
            &[
                "verify",
                "--from",
                &store,
                "--database-id",
                id,
                "--level",
                "restore",
                "--scratch-db",
                &scratch,
                "--json",
            ],
            &[0],
        )
    })?;
    steps.push(Step {
        name: "verify",
        seconds,
        result: format!(
            "{} at restore level, test restore took {:.1}s (the RTO)",
            verified["verdict"].as_str().unwrap_or("?"),
            verified["restore_seconds"].as_f64().unwrap_or(0.0)
        ),
    });

    let (seconds, health) = timed(|| {
        json(
            &[
                "health",
                "--from",
                &store,
                "--database-id",
                id,
                "--db",
                &url,
                "--json",
            ],
            &[0, 1],
        )
    })?;
    let findings = health["findings"].as_array().cloned().unwrap_or_default();
    println!("\n  advisor:");
    for finding in findings.iter().filter(|f| f["check"] == "fk_without_index") {
        println!("    {}", finding["message"].as_str().unwrap_or(""));
        println!("      fix: {}", finding["fix"].as_str().unwrap_or(""));
    }
    println!();
    steps.push(Step {
        name: "health",
        seconds,
        result: format!(
            "{}, {} finding(s) with advice",
            health["status"].as_str().unwrap_or("?"),
            findings.len()
        ),
    });

    let (seconds, pruned) = timed(|| {
        json(
            &[
                "prune",
                "--from",
                &store,
                "--database-id",
                id,
                "--keep-last",
                "1",
                "--dry-run",
                "--json",
            ],
            &[0],
        )
    })?;
    steps.push(Step {
        name: "prune",
        seconds,
        result: format!(
            "dry run with --keep-last 1: would delete {}, keep {}",
            pruned["deleted"].as_array().map_or(0, Vec::len),
            pruned["kept"].as_array().map_or(0, Vec::len)
        ),
    });

    let copy = fresh_database("demo ticketing restored");
    let (seconds, _) = timed(|| {
        backstop(
            &[
                "restore",
                "--from",
                &store,
                "--database-id",
                id,
                "--db",
                &copy.url(),
                "--jobs",
                "2",
            ],
            &[0],
        )
    })?;
    steps.push(Step {
        name: "restore",
        seconds,
        result: format!("latest backup into {}", copy.name),
    });

    let (seconds, same) = timed(|| Ok(db.pg_dump() == copy.pg_dump()))?;
    steps.push(Step {
        name: "compare",
        seconds,
        result: if same {
            "pg_dump of the restored copy is identical to the source".into()
        } else {
            "pg_dump of the restored copy DIFFERS from the source".into()
        },
    });

    println!("  {:<10} {:>7}  result", "step", "time");
    for step in &steps {
        println!(
            "  {:<10} {:>6.1}s  {}",
            step.name, step.seconds, step.result
        );
    }
    println!("\n  whole demo in {:.1}s", started.elapsed().as_secs_f64());
    if !same {
        bail!("the restored database differs from the source");
    }
    Ok(())
}

fn backstop_bin() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let bin = exe.parent().context("binary folder")?.join("backstop");
    if !bin.exists() {
        bail!("{} is missing; run `cargo build --bins`", bin.display());
    }
    Ok(bin)
}
