//! `make bench`: Backstop against pg_dump/pg_restore on a ~1.2 GB database, in one run.
//!
//! Builds pgbench scale 40 plus a 2M-row table of jsonb and text in the harness PostgreSQL
//! (and a half-size copy for the memory comparison), then times backup and restore with each
//! tool and prints one table. Peak memory is the child's maximum resident set (wait4 rusage).
//! `BENCH_SCALE` (default 40) scales everything for a quick run. Backstop runs twice: plain,
//! and encrypted to an age recipient (restored with its identity).
//!
//! Then the many-objects datasets (`BENCH_TABLES`, default `4000,20000`: schema-per-tenant
//! databases of ten small tables per tenant): backup and restore time beside `pg_dump | zstd`
//! and `pg_restore -j2`, the backup's catalog phase (read, checked, ordered: before its first
//! row) in all and per database object, objects stored and store requests. `BENCH_TABLES=`
//! skips them.
//!
//! Last, the change stream (`BENCH_STREAM`, default 20000 pgbench transactions; 0 skips it):
//! drain throughput in changes per second, the replay's, and the RPO a 5-minute schedule
//! gives at the load pgbench made. `BENCH_ONLY=stream` runs only that, `BENCH_ONLY=tables` only
//! the many-objects rows.
//!
//! Time to ready onto PostgreSQL 18 and 15 (the harness's clusters), from the full dataset:
//! Backstop's restore (rows, indexes, constraints and the planner's statistics) beside
//! `pg_restore -j2` followed by `vacuumdb -j2 --analyze-only`, both with two connections, and
//! the ratio; then, on the restored copy, the GIN and a btree index of `events` built again
//! with no parallel maintenance worker and with one. `BENCH_ONLY=ready` runs only that.
//!
//! `BENCH_ONLY=incremental` runs only the incremental backups, on a database shaped like an
//! application's (`BENCH_INCREMENTAL_MB`, default 1000): an append-only `events` table (80 %),
//! reference tables (15 %) and hot tables (5 %). Ten `backup --incremental` sets with 1 % of
//! the events appended and 2 % of the hot rows updated between them: each one's time, size,
//! bytes added to the store, peak memory and the compressed size of the rows that changed; an
//! eleventh of the unchanged database; every set restored and compared with pg_dump, the
//! tenth's restore timed beside a full set's; then `prune --keep-last 3` (under faketime, two
//! hours on, so the sweep sees every chunk as old enough), `verify --level deep` of the kept
//! sets and the chunks left that no kept set names. It exits non-zero when a restored copy
//! differs, a verification fails or such a chunk is left.
//!
//! `BENCH_ONLY=order` runs only the row-order scenario: one append-mostly table (`events`,
//! `BENCH_ORDER_MB`, default 200, with its primary key and an index on `account`, autovacuum
//! off) and an incremental set after each kind of change to its physical row order: 1 %
//! appended, nothing, 1 % updated (not HOT), a plain VACUUM then 1 % appended (into the freed
//! space), 1 % deleted then VACUUM, VACUUM FULL, CLUSTER on `account`, CLUSTER on the primary
//! key. For each, the bytes the set added to the store as a share of the table's stored bytes
//! in the first set (100 % less what it reused). It exits non-zero only when a command fails
//! or a set's row count is not the table's.
//!
//! `BENCH_ONLY=table` runs only the table-level point-in-time restore, on the full dataset plus
//! `orders` (8,000 rows per unit of `BENCH_SCALE`, ~50 MB with its primary key and an index at
//! 40, some 3 % of the database): a change stream (`stream --no-base`, then `backup`), 5 s of
//! pgbench writes to `orders` and tpcb-like, a time T from the server's clock with the table's
//! rows digested (count and md5 in key order), 2 s more and a drain. Then `BENCH_RUNS` (default
//! 3) rounds of (a) the whole database restored `--to-time T` into a new one and (b)
//! `--tables public.orders --to-time T --into-schema recovered` into the live one: each one's
//! median, the phases of its last run, and (b)/(a) against a bar of 15 %. It exits non-zero
//! when `recovered.orders` does not hold the rows of T. The full run ends with it.
//!
//! `BENCH_BASELINE=/path/to/an/older/backstop` instead compares two builds on the full
//! dataset: `BENCH_RUNS` (default 3) rounds, each backing up and restoring with both in turn,
//! and prints each one's median and fastest time.
#![allow(unsafe_code)]

// In bench/ beside this file: a file of the bin folder itself is a binary of its own to Cargo.
#[path = "bench/table.rs"]
mod table;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{Context, bail};
use backstop_tests::postgres::{
    PgCluster, TestDb, cluster, cluster_of, fresh_database, fresh_database_on,
};

struct Measured {
    seconds: f64,
    max_rss_bytes: u64,
}

/// Runs `command` to completion, returning wall time and the child's peak RSS.
fn measure(mut command: Command) -> anyhow::Result<Measured> {
    let started = Instant::now();
    let child = command
        .stdin(Stdio::null())
        .spawn()
        .context("spawning a benchmark command")?;
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value for wait4 to fill in.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: waiting on our own child with valid pointers; `child` is not waited elsewhere.
    let waited = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    let seconds = started.elapsed().as_secs_f64();
    std::mem::forget(child);
    if waited != pid || !libc::WIFEXITED(status) || libc::WEXITSTATUS(status) != 0 {
        bail!("benchmark command failed: {command:?}");
    }
    Ok(Measured {
        seconds,
        max_rss_bytes: usage.ru_maxrss.max(0) as u64 * 1024,
    })
}

/// The server's own version of a client tool when it is installed beside the server (the
/// fair comparison, and a dump its psql can load), else the harness's client tools.
fn server_tool(pg: &PgCluster, name: &str) -> String {
    let own = Path::new("/usr/lib/postgresql")
        .join(pg.major.to_string())
        .join("bin")
        .join(name);
    if own.exists() {
        own.display().to_string()
    } else {
        pg.bin_dir.join(name).display().to_string()
    }
}

fn shell(script: &str) -> Command {
    let mut command = Command::new("bash");
    command.args(["-o", "pipefail", "-c", script]);
    command
}

fn size_of(path: &Path) -> u64 {
    if path.is_dir() {
        std::fs::read_dir(path)
            .map(|d| d.flatten().map(|e| size_of(&e.path())).sum())
            .unwrap_or(0)
    } else {
        std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
    }
}

fn mib(bytes: u64) -> String {
    format!("{:.0} MiB", bytes as f64 / 1048576.0)
}

/// Backup and restore of `db` with `baseline` and `current`, in alternating rounds so that
/// the machine's drift touches both alike; prints the median and fastest of each.
fn compare_with_baseline(
    baseline: &Path,
    current: &Path,
    db: &TestDb,
    work: &Path,
) -> anyhow::Result<()> {
    let runs: usize = std::env::var("BENCH_RUNS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    let builds = [("baseline", baseline), ("current", current)];
    let mut times: Vec<(Vec<f64>, Vec<f64>)> = vec![Default::default(); builds.len()];
    for round in 1..=runs {
        for (n, (label, bin)) in builds.iter().enumerate() {
            eprintln!("round {round}/{runs}: {label} backup and restore...");
            let store = work.join(format!("compare-{label}"));
            let _ = std::fs::remove_dir_all(&store);
            let url = format!("file://{}", store.display());
            let mut backup = Command::new(bin);
            backup
                .args(["backup", "--db", &db.url(), "--to", &url, "--jobs", "2"])
                .stdout(Stdio::null());
            times[n].0.push(measure(backup)?.seconds);
            let target = fresh_database(&format!("bench compare {label}"));
            let mut restore = Command::new(bin);
            restore
                .args(["restore", "--from", &url, "--database-id", &db.name])
                .args(["--db", &target.url(), "--jobs", "2"])
                .stdout(Stdio::null());
            times[n].1.push(measure(restore)?.seconds);
        }
    }
    let summary = |values: &[f64]| {
        let mut sorted = values.to_vec();
        sorted.sort_by(f64::total_cmp);
        format!(
            "{:.1} s / {:.1} s",
            sorted[sorted.len() / 2],
            sorted.first().copied().unwrap_or_default()
        )
    };
    println!();
    println!("{runs} rounds; median / fastest");
    println!("{:<10} {:>18} {:>18}", "build", "backup", "restore");
    for ((label, bin), (backups, restores)) in builds.iter().zip(&times) {
        println!(
            "{label:<10} {:>18} {:>18}   {}",
            summary(backups),
            summary(restores),
            bin.display()
        );
    }
    Ok(())
}

fn build_dataset(pg: &PgCluster, db: &TestDb, scale: u64) -> anyhow::Result<()> {
    let status = Command::new(pg.bin_dir.join("pgbench"))
        .args(["-i", "-q", "-s", &scale.to_string(), "-d", &db.url()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()?;
    if !status.success() {
        bail!("pgbench -i failed");
    }
    let rows = scale * 50_000;
    db.psql(&format!(
        "CREATE TABLE public.events (id bigint PRIMARY KEY, kind text NOT NULL, payload jsonb NOT NULL, \
             note text, created_at timestamptz NOT NULL);
         INSERT INTO public.events SELECT g, (ARRAY['click','view','buy','refund'])[1 + g % 4],
             jsonb_build_object('user', g % 100000, 'tags', jsonb_build_array('t' || (g % 50), 't' || (g % 7)),
                 'price', (g % 1000) / 10.0, 'meta', jsonb_build_object('ua', md5(g::text))),
             repeat(md5((g * 7)::text), 3), timestamptz '2026-01-01' - g * interval '1 second'
         FROM generate_series(1, {rows}) g;
         CREATE INDEX events_payload ON public.events USING gin (payload);
         CREATE INDEX events_kind_created ON public.events (kind, created_at);"
    ));
    db.psql("VACUUM ANALYZE");
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let scale: u64 = std::env::var("BENCH_SCALE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(40);
    let bin = std::env::current_exe()?
        .parent()
        .context("binary folder")?
        .join("backstop");
    let work = backstop_tests::workspace_root().join("target/bench");
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work)?;
    let pg = cluster();
    let tool = |name: &str| server_tool(pg, name);

    let stream_transactions: u64 = std::env::var("BENCH_STREAM")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20_000);
    if std::env::var("BENCH_ONLY").as_deref() == Ok("stream") {
        return change_stream(pg, &bin, &work, stream_transactions);
    }
    if std::env::var("BENCH_ONLY").as_deref() == Ok("tables") {
        return many_objects_table(pg, &bin, &work);
    }
    if std::env::var("BENCH_ONLY").as_deref() == Ok("incremental") {
        return incremental(pg, &bin, &work);
    }
    if std::env::var("BENCH_ONLY").as_deref() == Ok("order") {
        return row_order(pg, &bin, &work);
    }
    eprintln!(
        "building the datasets (pgbench scale {scale} + {} events, and half of that)...",
        scale * 50_000
    );
    if let Ok(baseline) = std::env::var("BENCH_BASELINE") {
        let full = fresh_database("bench full");
        build_dataset(pg, &full, scale)?;
        return compare_with_baseline(Path::new(&baseline), &bin, &full, &work);
    }
    if std::env::var("BENCH_ONLY").as_deref() == Ok("table") {
        let full = fresh_database("bench full");
        build_dataset(pg, &full, scale)?;
        table::table_restore(pg, &bin, &full, &work, scale)?;
        let _ = std::fs::remove_dir_all(&work);
        return Ok(());
    }
    if std::env::var("BENCH_ONLY").as_deref() == Ok("ready") {
        let full = fresh_database("bench full");
        build_dataset(pg, &full, scale)?;
        eprintln!("backup: Backstop, and pg_dump -Fd -j2...");
        let store = work.join("backstop");
        let mut backup = Command::new(&bin);
        backup
            .args(["backup", "--db", &full.url(), "--to"])
            .arg(format!("file://{}", store.display()))
            .args(["--jobs", "2"])
            .stdout(Stdio::null());
        measure(backup)?;
        let directory = work.join("dump.dir");
        measure(shell(&format!(
            "{} --no-sync -Fd -j2 -f {} -d '{}'",
            tool("pg_dump"),
            directory.display(),
            full.url()
        )))?;
        time_to_ready(&bin, &full, &store, &directory, scale)?;
        let _ = std::fs::remove_dir_all(&work);
        return Ok(());
    }
    let half = fresh_database("bench half");
    build_dataset(pg, &half, scale / 2)?;
    let full = fresh_database("bench full");
    build_dataset(pg, &full, scale)?;
    let db_bytes: i64 = full
        .psql("SELECT pg_database_size(current_database())")
        .trim()
        .parse()?;

    let backstop_backup = |db: &TestDb, store: &Path| {
        let mut c = Command::new(&bin);
        c.args([
            "backup",
            "--db",
            &db.url(),
            "--to",
            &format!("file://{}", store.display()),
            "--jobs",
            "2",
        ])
        .stdout(Stdio::null());
        c
    };
    let backstop_restore = |source: &TestDb, store: &Path, target: &TestDb| {
        let mut c = Command::new(&bin);
        c.args([
            "restore",
            "--from",
            &format!("file://{}", store.display()),
            "--database-id",
            &source.name,
            "--db",
            &target.url(),
            "--jobs",
            "2",
        ])
        .stdout(Stdio::null());
        c
    };
    let mut rows: Vec<(String, String, String, String)> = Vec::new();
    let mut note = |tool: &str, backup: Option<(&Measured, u64)>, restore: Option<&Measured>| {
        rows.push((
            tool.to_string(),
            backup
                .map(|(m, _)| format!("{:.1} s", m.seconds))
                .unwrap_or_else(|| "-".into()),
            backup
                .map(|(_, bytes)| mib(bytes))
                .unwrap_or_else(|| "-".into()),
            restore
                .map(|m| format!("{:.1} s", m.seconds))
                .unwrap_or_else(|| "-".into()),
        ));
    };

    eprintln!("backup: Backstop (half size, for memory)...");
    let half_store = work.join("backstop-half");
    let half_backup = measure(backstop_backup(&half, &half_store))?;

    eprintln!("backup: Backstop...");
    let store = work.join("backstop");
    let backup = measure(backstop_backup(&full, &store))?;
    eprintln!("restore: Backstop...");
    let target = fresh_database("bench restore backstop");
    let restore = measure(backstop_restore(&full, &store, &target))?;
    drop(target);
    note(
        "Backstop (--jobs 2)",
        Some((&backup, size_of(&store))),
        Some(&restore),
    );

    eprintln!("backup and restore: Backstop, encrypted...");
    let key = work.join("bench.key");
    let output = Command::new(&bin)
        .args(["keygen", "-o", &key.display().to_string()])
        .output()?;
    let recipient = String::from_utf8_lossy(&output.stdout).trim().to_string();
    let sealed = work.join("backstop-encrypted");
    let mut sealed_backup = backstop_backup(&full, &sealed);
    sealed_backup.args(["--recipient", &recipient]);
    let sealed_backup = measure(sealed_backup)?;
    let target = fresh_database("bench restore backstop encrypted");
    let mut sealed_restore = backstop_restore(&full, &sealed, &target);
    sealed_restore.args(["--identity", &key.display().to_string()]);
    let sealed_restore = measure(sealed_restore)?;
    drop(target);
    note(
        "Backstop, encrypted (age)",
        Some((&sealed_backup, size_of(&sealed))),
        Some(&sealed_restore),
    );
    let encryption_cost = sealed_backup.seconds / backup.seconds;

    let dump = |args: &str, out: &Path| {
        shell(&format!(
            "{} --no-sync {args} {} -d '{}'",
            tool("pg_dump"),
            out.display(),
            full.url()
        ))
    };
    eprintln!("backup: pg_dump | gzip...");
    let gz = work.join("plain.sql.gz");
    let m = measure(shell(&format!(
        "{} --no-sync -d '{}' | gzip > {}",
        tool("pg_dump"),
        full.url(),
        gz.display()
    )))?;
    note("pg_dump | gzip", Some((&m, size_of(&gz))), None);

    eprintln!("backup: pg_dump | zstd -3 -T2...");
    let zst = work.join("plain.sql.zst");
    let m = measure(shell(&format!(
        "{} --no-sync -d '{}' | zstd -q -3 -T2 -o {}",
        tool("pg_dump"),
        full.url(),
        zst.display()
    )))?;
    eprintln!("restore: zstd -dc | psql...");
    let target = fresh_database("bench restore psql");
    let r = measure(shell(&format!(
        "zstd -dc {} | {} -X -q -v ON_ERROR_STOP=1 -d '{}' > /dev/null",
        zst.display(),
        tool("psql"),
        target.url()
    )))?;
    drop(target);
    note(
        "pg_dump | zstd -3 -T2, psql",
        Some((&m, size_of(&zst))),
        Some(&r),
    );

    eprintln!("backup: pg_dump -Fc...");
    let custom = work.join("dump.custom");
    let m = measure(dump("-Fc -f", &custom))?;
    note("pg_dump -Fc", Some((&m, size_of(&custom))), None);

    eprintln!("backup: pg_dump -Fd -j2...");
    let directory = work.join("dump.dir");
    let m = measure(dump("-Fd -j2 -f", &directory))?;
    eprintln!("restore: pg_restore -j2...");
    let target = fresh_database("bench restore pg_restore");
    let r = measure(shell(&format!(
        "{} -j2 -d '{}' {}",
        tool("pg_restore"),
        target.url(),
        directory.display()
    )))?;
    drop(target);
    note(
        "pg_dump -Fd -j2, pg_restore -j2",
        Some((&m, size_of(&directory))),
        Some(&r),
    );

    println!();
    println!(
        "database: {} (pgbench scale {scale} + {} jsonb/text rows), PostgreSQL in the test harness",
        mib(db_bytes.max(0) as u64),
        scale * 50_000
    );
    println!(
        "{:<34} {:>10} {:>10} {:>10}",
        "tool", "backup", "size", "restore"
    );
    for (tool, b, s, r) in &rows {
        println!("{tool:<34} {b:>10} {s:>10} {r:>10}");
    }
    println!();
    println!(
        "Backstop backup peak memory: {} at half size, {} at full size",
        mib(half_backup.max_rss_bytes),
        mib(backup.max_rss_bytes)
    );
    println!(
        "Backstop restore peak memory: {}",
        mib(restore.max_rss_bytes)
    );
    println!("Backstop backup with encryption: {encryption_cost:.2}x the time without");
    time_to_ready(&bin, &full, &store, &directory, scale)?;
    many_objects_table(pg, &bin, &work)?;
    if stream_transactions > 0 {
        change_stream(pg, &bin, &work, stream_transactions)?;
    }
    table::table_restore(pg, &bin, &full, &work, scale)?;
    let _ = std::fs::remove_dir_all(&work);
    Ok(())
}

/// Time to ready onto PostgreSQL 18 and 15, each in one run: Backstop's restore of `store`
/// (the backup of `source`) against `pg_restore -j2` of `directory` (its `pg_dump -Fd`)
/// followed by `vacuumdb -j2 --analyze-only`, with the target's own tools; then the index
/// builds of `events` on Backstop's copy with no parallel maintenance worker and with one.
fn time_to_ready(
    bin: &Path,
    source: &TestDb,
    store: &Path,
    directory: &Path,
    scale: u64,
) -> anyhow::Result<()> {
    struct Row {
        major: u32,
        backstop: f64,
        /// CPU seconds of the server's sessions and the client, for each of the two.
        backstop_cpu: f64,
        pair_cpu: f64,
        loaded: f64,
        statistics: String,
        pg_restore: f64,
        analyze: f64,
        /// Per index: (name, method, seconds with no worker, seconds with one).
        builds: Vec<(String, String, f64, f64)>,
    }
    let mut rows = Vec::new();
    for major in [18, 15] {
        let Some(target_cluster) = cluster_of(major) else {
            continue;
        };
        let tool = |name: &str| server_tool(target_cluster, name);
        eprintln!("time to ready onto {major}: Backstop...");
        let target = fresh_database_on(target_cluster, &format!("bench ready backstop {major}"));
        let report = store.with_extension(format!("ready-{major}.json"));
        let cpu_before = cpu_seconds(target_cluster);
        let restore = measure(shell(&format!(
            "{} restore --from file://{} --database-id '{}' --db '{}' --jobs 2 --json > {}",
            bin.display(),
            store.display(),
            source.name,
            target.url(),
            report.display()
        )))?;
        let report: serde_json::Value = serde_json::from_slice(&std::fs::read(&report)?)?;
        let backstop_cpu = cpu_seconds(target_cluster) - cpu_before;

        eprintln!("time to ready onto {major}: pg_restore -j2, vacuumdb -j2 --analyze-only...");
        let other = fresh_database_on(target_cluster, &format!("bench ready pg_restore {major}"));
        let cpu_before = cpu_seconds(target_cluster);
        let pg_restore = measure(shell(&format!(
            "{} -j2 -d '{}' {}",
            tool("pg_restore"),
            other.url(),
            directory.display()
        )))?;
        let analyze = measure(shell(&format!(
            "{} -q -j2 --analyze-only -d '{}'",
            tool("vacuumdb"),
            other.url()
        )))?;
        let pair_cpu = cpu_seconds(target_cluster) - cpu_before;
        drop(other);

        eprintln!("index builds onto {major}, with and without a parallel worker...");
        let mut builds = Vec::new();
        for index in ["events_payload", "events_kind_created"] {
            let definition = target
                .psql(&format!(
                    "SELECT pg_get_indexdef('public.{index}'::regclass)"
                ))
                .trim()
                .to_string();
            let method = target
                .psql(&format!(
                    "SELECT amname FROM pg_class JOIN pg_am ON pg_am.oid = relam                      WHERE pg_class.oid = 'public.{index}'::regclass"
                ))
                .trim()
                .to_string();
            let mut seconds = [0.0; 2];
            for (workers, time) in seconds.iter_mut().enumerate() {
                target.psql(&format!("DROP INDEX public.{index}"));
                let started = Instant::now();
                target.psql(&format!(
                    "SET max_parallel_maintenance_workers = {workers}; {definition}"
                ));
                *time = started.elapsed().as_secs_f64();
            }
            builds.push((index.to_string(), method, seconds[0], seconds[1]));
        }
        drop(target);
        rows.push(Row {
            major,
            backstop: restore.seconds,
            backstop_cpu,
            pair_cpu,
            loaded: report["loaded_seconds"].as_f64().unwrap_or_default(),
            // How the planner got its statistics: applied, analyzed or skipped.
            statistics: report["statistics"]["how"]
                .as_str()
                .unwrap_or("-")
                .to_string(),
            pg_restore: pg_restore.seconds,
            analyze: analyze.seconds,
            builds,
        });
    }
    println!();
    println!(
        "time to ready (restore + planner statistics), two connections, {} events rows: \
         Backstop restore --jobs 2 against pg_restore -j2 then vacuumdb -j2 --analyze-only",
        scale * 50_000
    );
    println!(
        "{:<7} {:>10} {:>10} {:>24} {:>12} {:>10} {:>8}   statistics",
        "onto", "Backstop", "(loaded)", "pg_restore + vacuumdb", "(restore)", "(analyze)", "ratio"
    );
    for row in &rows {
        let pair = row.pg_restore + row.analyze;
        println!(
            "{:<7} {:>8.1} s {:>8.1} s {:>22.1} s {:>10.1} s {:>8.1} s {:>7.2}x   {}",
            format!("PG {}", row.major),
            row.backstop,
            row.loaded,
            pair,
            row.pg_restore,
            row.analyze,
            pair / row.backstop.max(f64::EPSILON),
            row.statistics
        );
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "CPU work (the server's sessions and workers, and the client), and the least time {cores} cores can do it in:"
    );
    for row in &rows {
        println!(
            "  PG {}: Backstop {:.1} CPU-s (at least {:.1} s); pg_restore + vacuumdb {:.1} CPU-s (at least {:.1} s)",
            row.major,
            row.backstop_cpu,
            row.backstop_cpu / cores as f64,
            row.pair_cpu,
            row.pair_cpu / cores as f64
        );
    }
    println!("index builds of events on the restored copy: no parallel maintenance worker / one");
    for row in &rows {
        let builds: Vec<String> = row
            .builds
            .iter()
            .map(|(index, method, none, one)| {
                format!("{index} ({method}) {none:.1} s / {one:.1} s")
            })
            .collect();
        println!("  PG {}: {}", row.major, builds.join(";  "));
    }
    Ok(())
}

/// CPU seconds so far of the processes `cluster`'s server has reaped (its sessions and
/// parallel workers) and of this program's reaped children (the client commands), from
/// /proc (`cutime` and `cstime`, in USER_HZ: 100 a second on Linux); 0 where /proc is not.
fn cpu_seconds(cluster: &PgCluster) -> f64 {
    let reaped = |stat: &str| -> f64 {
        // The fields after the command's closing parenthesis; cutime and cstime are the 16th
        // and 17th of the line, the 14th and 15th after it.
        stat.rsplit_once(')')
            .map(|(_, rest)| {
                rest.split_whitespace()
                    .skip(13)
                    .take(2)
                    .filter_map(|v| v.parse::<f64>().ok())
                    .sum::<f64>()
                    / 100.0
            })
            .unwrap_or(0.0)
    };
    let postmaster = std::fs::read_to_string(cluster.data_dir.join("postmaster.pid"))
        .ok()
        .and_then(|pid| pid.lines().next().map(str::to_string))
        .and_then(|pid| std::fs::read_to_string(format!("/proc/{pid}/stat")).ok())
        .map_or(0.0, |stat| reaped(&stat));
    let own = std::fs::read_to_string("/proc/self/stat").map_or(0.0, |stat| reaped(&stat));
    postmaster + own
}

/// The change stream under pgbench's simple-update load: how fast a drain reads and stores
/// changes, how fast a restore replays them, and the RPO a 5-minute schedule gives.
fn change_stream(pg: &PgCluster, bin: &Path, work: &Path, transactions: u64) -> anyhow::Result<()> {
    if transactions == 0 {
        return Ok(());
    }
    let db = fresh_database("bench stream");
    let status = Command::new(pg.bin_dir.join("pgbench"))
        .args(["-i", "-q", "-s", "10", "-d", &db.url()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()?;
    if !status.success() {
        bail!("pgbench -i failed");
    }
    let store = work.join("stream-store");
    let store_url = format!("file://{}", store.display());
    let stream = || {
        let mut c = Command::new(bin);
        c.args(["stream", "--db", &db.url(), "--to", &store_url, "--json"]);
        c
    };
    // The first drain makes the slot and takes the base.
    let output = stream().output()?;
    if !output.status.success() {
        bail!(
            "backstop stream failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let clients = 2;
    let load = Instant::now();
    let status = Command::new(pg.bin_dir.join("pgbench"))
        .args([
            "-n",
            "-b",
            "simple-update",
            "-c",
            &clients.to_string(),
            "-j",
            "2",
            "-t",
            &(transactions / clients).to_string(),
            "-d",
            &db.url(),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()?;
    if !status.success() {
        bail!("pgbench failed");
    }
    let load_seconds = load.elapsed().as_secs_f64();
    let drain = Instant::now();
    let output = stream().output()?;
    let drain_seconds = drain.elapsed().as_secs_f64();
    if !output.status.success() {
        bail!(
            "backstop stream failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let report: serde_json::Value = serde_json::from_slice(&output.stdout)?;
    let changes = report["changes"].as_u64().unwrap_or(0);
    let drained = report["transactions"].as_u64().unwrap_or(0);
    let bytes = report["bytes"].as_u64().unwrap_or(0);
    let target = fresh_database("bench stream restore");
    let restore = Instant::now();
    let output = Command::new(bin)
        .args([
            "restore",
            "--from",
            &store_url,
            "--database-id",
            &db.name,
            "--db",
            &target.url(),
            "--json",
        ])
        .output()?;
    let restore_seconds = restore.elapsed().as_secs_f64();
    if !output.status.success() {
        bail!(
            "backstop restore failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let write_rate = drained as f64 / load_seconds;
    let drain_rate = changes as f64 / drain_seconds;
    // Five minutes of this load, drained at the measured rate: the newest recovery point is
    // at most one interval plus one such drain old.
    let five_minutes_drain =
        write_rate * 300.0 * (changes as f64 / drained.max(1) as f64) / drain_rate;
    println!();
    println!("change stream (pgbench simple-update, scale 10, {clients} clients):");
    println!(
        "  load: {drained} transactions, {changes} changes in {load_seconds:.1} s ({write_rate:.0} transactions/s)"
    );
    println!(
        "  drain: {drain_seconds:.1} s, {drain_rate:.0} changes/s, {} stored ({:.1} bytes per change)",
        mib(bytes),
        bytes as f64 / changes.max(1) as f64
    );
    println!(
        "  restore (base + replay of {changes} changes): {restore_seconds:.1} s ({:.0} changes/s including the base)",
        changes as f64 / restore_seconds
    );
    println!(
        "  RPO with a 5-minute schedule at this load: at most 300 s + {five_minutes_drain:.1} s (the drain of 5 minutes of changes)"
    );
    Ok(())
}

/// The many-objects table: one row per `BENCH_TABLES` count (default 4,000 and 20,000).
fn many_objects_table(pg: &PgCluster, bin: &Path, work: &Path) -> anyhow::Result<()> {
    let tables: Vec<usize> = std::env::var("BENCH_TABLES")
        .unwrap_or_else(|_| "4000,20000".into())
        .split(',')
        .filter_map(|n| n.trim().parse().ok())
        .collect();
    if !tables.is_empty() {
        println!();
        println!(
            "{:<8} {:>9} {:>9} {:>11} {:>8} {:>9} {:>13} {:>9} {:>14} {:>12}",
            "tables",
            "backup",
            "catalog",
            "per object",
            "objects",
            "requests",
            "pg_dump|zstd",
            "restore",
            "pg_restore -j2",
            "requests"
        );
    }
    for count in tables {
        many_objects(pg, bin, work, count)?;
    }
    Ok(())
}

/// One row of the many-objects table: `count` small tables in schemas of ten.
fn many_objects(pg: &PgCluster, bin: &Path, work: &Path, count: usize) -> anyhow::Result<()> {
    let tool = |name: &str| server_tool(pg, name);
    eprintln!("building {count} small tables...");
    let db = fresh_database(&format!("bench {count} tables"));
    let script = work.join(format!("tenants-{count}.sql"));
    std::fs::write(
        &script,
        backstop_tests::datasets::tenant_schemas(count.div_ceil(10)),
    )?;
    db.psql_file(&script);
    db.psql("VACUUM ANALYZE");

    eprintln!("backup: Backstop, {count} tables...");
    let store = work.join(format!("backstop-{count}"));
    let url = format!("file://{}", store.display());
    let summary = work.join(format!("backup-{count}.json"));
    let backup = measure(shell(&format!(
        "{} backup --db '{}' --to {url} --jobs 2 --json > {}",
        bin.display(),
        db.url(),
        summary.display()
    )))?;
    let summary: serde_json::Value = serde_json::from_slice(&std::fs::read(&summary)?)?;
    // The catalog phase (read, checked against the inventory, ordered) per database object.
    let catalog = summary["catalog_seconds"].as_f64().unwrap_or_default();
    let database_objects = summary["database_objects"].as_u64().unwrap_or_default();
    // pg_dump locks every table in one transaction: past the server's lock table (about
    // max_locks_per_transaction x max_connections, 6,400 by default) it fails "out of shared
    // memory", and its columns say so instead of a time.
    eprintln!("backup: pg_dump | zstd, {count} tables...");
    let zst = work.join(format!("tenants-{count}.sql.zst"));
    let dump = measure(shell(&format!(
        "{} --no-sync -d '{}' | zstd -q -3 -T2 -o {}",
        tool("pg_dump"),
        db.url(),
        zst.display()
    )))
    .ok();
    let directory = work.join(format!("tenants-{count}.dir"));
    let dumped_directory = measure(shell(&format!(
        "{} --no-sync -Fd -j2 -f {} -d '{}'",
        tool("pg_dump"),
        directory.display(),
        db.url()
    )))
    .is_ok();

    eprintln!("restore: Backstop, {count} tables...");
    let target = fresh_database(&format!("bench {count} restored"));
    let restored = work.join(format!("restore-{count}.json"));
    let restore = measure(shell(&format!(
        "{} restore --from {url} --database-id '{}' --db '{}' --jobs 2 --json > {}",
        bin.display(),
        db.name,
        target.url(),
        restored.display()
    )))?;
    let restored: serde_json::Value = serde_json::from_slice(&std::fs::read(&restored)?)?;
    if dump.is_some() {
        if target.pg_dump() != db.pg_dump() {
            bail!("the restored copy of {count} tables differs from its source");
        }
    } else {
        // No pg_dump to compare with: Backstop's own restore-level verification recomputes
        // every table's rows and digest and compares the object inventory.
        measure(shell(&format!(
            "{} verify --from {url} --database-id '{}' --level restore --scratch-db '{}' > /dev/null",
            bin.display(),
            db.name,
            pg.url("postgres")
        )))
        .context("the restored copy's verification")?;
    }
    drop(target);
    let pg_restore = if dumped_directory {
        eprintln!("restore: pg_restore -j2, {count} tables...");
        let target = fresh_database(&format!("bench {count} pg_restore"));
        let measured = measure(shell(&format!(
            "{} -j2 -d '{}' {}",
            tool("pg_restore"),
            target.url(),
            directory.display()
        )))?;
        drop(target);
        Some(measured)
    } else {
        None
    };
    let total = |v: &serde_json::Value| {
        ["writes", "reads", "lists", "other"]
            .iter()
            .filter_map(|k| v["requests"][k].as_u64())
            .sum::<u64>()
    };
    let seconds = |m: &Option<Measured>| match m {
        Some(m) => format!("{:.1} s", m.seconds),
        None => "fails".to_string(),
    };
    println!(
        "{count:<8} {:>7.1} s {:>7.2} s {:>8.0} µs {:>8} {:>9} {:>13} {:>7.1} s {:>14} {:>12}",
        backup.seconds,
        catalog,
        catalog * 1e6 / database_objects.max(1) as f64,
        summary["objects"],
        total(&summary),
        seconds(&dump),
        restore.seconds,
        seconds(&pg_restore),
        total(&restored)
    );
    Ok(())
}

/// Table rows of the incremental workload, scaled to about `megabytes` in the database.
struct Workload {
    /// Append-only, in id order: about 80 % of the database.
    events: u64,
    /// The large reference table (with three small ones beside it): about 15 %.
    products: u64,
    /// The hot tables, 2 % of their rows updated between backups: about 5 %.
    accounts: u64,
    stock: u64,
}

impl Workload {
    fn of_megabytes(megabytes: u64) -> Self {
        // Bytes each row takes in the database (heap and indexes), as measured on PostgreSQL 15.
        let rows = |share: f64, bytes_per_row: f64| {
            ((megabytes as f64 * 1048576.0 * share / bytes_per_row) as u64).max(100)
        };
        let products = rows(0.145, 365.0);
        Workload {
            events: rows(0.80, 284.0),
            products,
            accounts: rows(0.035, 200.0),
            stock: rows(0.015, 76.0).min(products),
        }
    }

    /// The schema, the reference tables and the hot tables, then `events` up to its size.
    fn create(&self, db: &TestDb) {
        let Workload {
            events,
            products,
            accounts,
            stock,
        } = self;
        let categories = (products / 100).max(10);
        db.psql(&format!(
            "CREATE TABLE public.countries (code char(2) PRIMARY KEY, name text NOT NULL, currency char(3) NOT NULL);
             INSERT INTO public.countries SELECT chr(65 + g / 26) || chr(65 + g % 26), 'Country ' || g,
                 chr(65 + g % 26) || chr(65 + (g / 3) % 26) || chr(65 + (g / 7) % 26) FROM generate_series(0, 249) g;
             CREATE TABLE public.tax_rates (id integer PRIMARY KEY, country char(2) NOT NULL REFERENCES public.countries,
                 name text NOT NULL, rate numeric(5,4) NOT NULL, valid_from date NOT NULL);
             INSERT INTO public.tax_rates SELECT g, chr(65 + (g % 250) / 26) || chr(65 + (g % 250) % 26),
                 'rate ' || g, (g % 25) / 100.0, date '2020-01-01' + g FROM generate_series(1, 1000) g;
             CREATE TABLE public.categories (id integer PRIMARY KEY, parent_id integer REFERENCES public.categories,
                 name text NOT NULL, slug text NOT NULL);
             INSERT INTO public.categories SELECT g, CASE WHEN g > 10 THEN 1 + g % 10 END, 'Category ' || g,
                 'category-' || substr(md5(g::text), 1, 8) FROM generate_series(1, {categories}) g;
             CREATE TABLE public.products (id integer PRIMARY KEY, sku text NOT NULL UNIQUE,
                 category_id integer NOT NULL REFERENCES public.categories, name text NOT NULL,
                 description text NOT NULL, attributes jsonb NOT NULL, price numeric(10,2) NOT NULL);
             INSERT INTO public.products SELECT g, 'SKU-' || lpad(g::text, 9, '0'), 1 + g % {categories},
                 'Product ' || substr(md5(g::text), 1, 10),
                 'A ' || (ARRAY['sturdy','light','compact','classic','modern'])[1 + g % 5] || ' product for '
                     || (ARRAY['home','office','travel','garden','kitchen'])[1 + (g / 5) % 5] || '. '
                     || repeat(md5((g * 3)::text) || ' ', 3) || 'Made to last.',
                 jsonb_build_object('colour', (ARRAY['red','green','blue','black','white'])[1 + g % 5],
                     'weight_g', (g * 37) % 5000, 'tags', jsonb_build_array('t' || g % 40, 't' || g % 13)),
                 ((hashint4(g) & 2147483647) % 100000) / 100.0
             FROM generate_series(1, {products}) g;
             CREATE TABLE public.accounts (id integer PRIMARY KEY, email text NOT NULL, name text NOT NULL,
                 country char(2) NOT NULL REFERENCES public.countries, balance numeric(12,2) NOT NULL,
                 status text NOT NULL, settings jsonb NOT NULL, created_at timestamptz NOT NULL,
                 updated_at timestamptz NOT NULL);
             INSERT INTO public.accounts SELECT g, 'user' || g || '@example.com', 'User ' || substr(md5(g::text), 1, 12),
                 chr(65 + (g % 250) / 26) || chr(65 + (g % 250) % 26), ((hashint4(g) & 2147483647) % 10000000) / 100.0,
                 (ARRAY['active','active','active','suspended'])[1 + g % 4],
                 jsonb_build_object('locale', 'en', 'newsletter', g % 2 = 0, 'theme', 'light', 'last_seen', 0),
                 timestamptz '2024-01-01 00:00:00+00' + g * interval '1 minute',
                 timestamptz '2024-01-01 00:00:00+00' + g * interval '1 minute'
             FROM generate_series(1, {accounts}) g;
             CREATE TABLE public.stock (product_id integer PRIMARY KEY REFERENCES public.products,
                 warehouse smallint NOT NULL, quantity integer NOT NULL, reserved integer NOT NULL,
                 updated_at timestamptz NOT NULL);
             INSERT INTO public.stock SELECT g, hashint4(g * 3) & 7, hashint4(g) & 1023, hashint4(-g) & 15,
                 timestamptz '2024-01-01 00:00:00+00' FROM generate_series(1, {stock}) g;
             CREATE TABLE public.events (id bigint PRIMARY KEY, occurred_at timestamptz NOT NULL,
                 account_id integer NOT NULL, kind text NOT NULL, payload jsonb NOT NULL);"
        ));
        self.append_events(db, 1, *events);
        db.psql("VACUUM ANALYZE");
    }

    /// Appends events `first..=last`, in id order, as an application writes them.
    fn append_events(&self, db: &TestDb, first: u64, last: u64) {
        db.psql(&format!(
            "INSERT INTO public.events SELECT g,
                 timestamptz '2025-01-01 00:00:00+00' + g * interval '2 seconds' + (hashint8(g) & 1023) * interval '1 ms',
                 1 + (hashint8(g) & 2147483647) % {accounts},
                 (ARRAY['page_view','page_view','page_view','click','click','search','add_to_cart','purchase'])[1 + (hashint8(-g) & 7)],
                 jsonb_build_object('session', md5((g / 20)::text), 'request', substr(md5(g::text), 1, 16),
                     'path', '/products/' || 1 + (hashint8(g * 3) & 2147483647) % {products},
                     'duration_ms', hashint8(g * 5) & 4095,
                     'ip', '10.' || (hashint8(g / 20 * 7) & 255) || '.' || (hashint8(g / 20 * 11) & 255) || '.' || (g / 20) % 254 + 1,
                     'agent', (ARRAY['Mozilla/5.0 (X11; Linux x86_64)','Mozilla/5.0 (Macintosh)','Mozilla/5.0 (iPhone)'])[1 + (hashint8(g / 20) & 3)])
             FROM generate_series({first}::bigint, {last}) g",
            accounts = self.accounts,
            products = self.products,
        ));
    }
}

/// A table group's data parts in one set.
#[derive(Clone, Copy, Default)]
struct Group {
    stored: u64,
    plain: u64,
    /// The bytes of its chunks that no earlier set named.
    new: u64,
}

/// A manifest's data parts by table group: `events`; the reference tables (and bundles of
/// small tables); the hot tables. `seen` holds the chunks earlier sets named, and then these.
fn by_group(
    manifest: &serde_json::Value,
    seen: &mut std::collections::HashSet<String>,
) -> [Group; 3] {
    let mut groups = [Group::default(); 3];
    for part in manifest["parts"].as_array().into_iter().flatten() {
        let table = part["table"]["name"]
            .as_str()
            .or_else(|| part["bundle"][0]["name"].as_str());
        let group = &mut groups[match table {
            Some("events") => 0,
            Some("accounts" | "stock") => 2,
            Some(_) => 1,
            None => continue,
        }];
        group.stored += part["bytes"].as_u64().unwrap_or(0);
        group.plain += part["plain_bytes"].as_u64().unwrap_or(0);
        for chunk in part["chunks"].as_array().into_iter().flatten() {
            if let Some(id) = chunk["id"].as_str()
                && seen.insert(id.to_string())
            {
                group.new += chunk["bytes"].as_u64().unwrap_or(0);
            }
        }
    }
    groups
}

/// `zstd -1` size of what `script`'s COPY statements print from `db`.
fn compressed_copy(db: &TestDb, script: &Path) -> anyhow::Result<u64> {
    let output = shell(&format!(
        "{} -X -q -v ON_ERROR_STOP=1 -d '{}' -f {} | zstd -q -1 -c | wc -c",
        db.cluster().bin_dir.join("psql").display(),
        db.url(),
        script.display()
    ))
    .stdin(Stdio::null())
    .output()?;
    if !output.status.success() {
        bail!(
            "the COPY of the changed rows failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&output.stdout).trim().parse()?)
}

/// `pg_dump` (schema and data) of `db` into `out`, zstd-compressed, with the lines
/// [`TestDb::pg_dump`] leaves out (`\restrict`, whose key changes on every run), and each
/// table's rows as their count and an order-independent digest: a set carried by row deltas
/// restores the same rows in another physical order than its source holds them.
fn dump_compressed(db: &TestDb, out: &Path) -> anyhow::Result<()> {
    use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
    use std::io::{BufRead, Write};
    let mut child = Command::new(db.cluster().bin_dir.join("pg_dump"))
        .args(["--no-sync", "-d", &db.url()])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .context("spawning pg_dump")?;
    let stdout = child.stdout.take().context("pg_dump's output")?;
    let mut encoder = zstd::Encoder::new(std::fs::File::create(out)?, 1)?;
    let hasher = BuildHasherDefault::<DefaultHasher>::default();
    // Inside a COPY block: its rows so far and the wrapping sum of their hashes.
    let mut rows: Option<(u64, u64)> = None;
    for line in std::io::BufReader::with_capacity(1 << 20, stdout).split(b'\n') {
        let line = line?;
        if let Some((count, sum)) = rows.as_mut() {
            if line == b"\\." {
                writeln!(encoder, "-- {count} rows, digest {sum:016x}")?;
                rows = None;
            } else {
                *count += 1;
                *sum = sum.wrapping_add(hasher.hash_one(&line));
                continue;
            }
        }
        if line.starts_with(b"\\restrict") || line.starts_with(b"\\unrestrict") {
            continue;
        }
        if line.starts_with(b"COPY ") && line.ends_with(b"FROM stdin;") {
            rows = Some((0, 0));
        }
        encoder.write_all(&line)?;
        encoder.write_all(b"\n")?;
    }
    encoder.finish()?;
    if !child.wait()?.success() {
        bail!("pg_dump of {} failed", db.name);
    }
    Ok(())
}

/// The first line where two dumps written by [`dump_compressed`] differ: its number and each
/// side's text (shortened), or `None` when they are the same.
fn first_difference(a: &Path, b: &Path) -> anyhow::Result<Option<(u64, String, String)>> {
    use std::io::BufRead;
    let lines = |path: &Path| -> anyhow::Result<_> {
        let decoder = zstd::Decoder::new(std::fs::File::open(path)?)?;
        Ok(std::io::BufReader::with_capacity(1 << 20, decoder).split(b'\n'))
    };
    let show = |line: Option<Vec<u8>>| match line {
        Some(line) => String::from_utf8_lossy(&line).chars().take(120).collect(),
        None => "<end>".to_string(),
    };
    let (mut a, mut b) = (lines(a)?, lines(b)?);
    let mut number = 0;
    loop {
        number += 1;
        match (a.next().transpose()?, b.next().transpose()?) {
            (None, None) => return Ok(None),
            (x, y) if x == y => continue,
            (x, y) => return Ok(Some((number, show(x), show(y)))),
        }
    }
}

/// Sizes for the incremental table: KiB under one MiB, tenths of a MiB under 100.
fn amount(bytes: u64) -> String {
    let mib = bytes as f64 / 1048576.0;
    if bytes < 1048576 {
        format!("{:.0} KiB", bytes as f64 / 1024.0)
    } else if mib < 100.0 {
        format!("{mib:.1} MiB")
    } else {
        format!("{mib:.0} MiB")
    }
}

/// One backup of the incremental scenario.
struct Taken {
    id: String,
    seconds: f64,
    rss: u64,
    bytes: u64,
    new_bytes: u64,
    /// `zstd -1` size of the rows changed since the previous backup.
    changed: Option<u64>,
    /// The source's dump right after the backup.
    dump: std::path::PathBuf,
    restore_seconds: Option<f64>,
    identical: Option<bool>,
    /// Its data parts by table group (incremental sets).
    groups: [Group; 3],
    /// Tables the backup read (the others were named from the set before).
    read: usize,
    /// Bytes of change segments the stream stored since the previous backup.
    streamed: u64,
}

/// `BENCH_ONLY=incremental`: ten `backup --incremental` sets of a database shaped like an
/// application's, with 1 % of `events` appended and 2 % of the hot rows updated between them,
/// each restored and compared; an eleventh of the unchanged database; a full set of the final
/// state restored beside the tenth; then `prune --keep-last 3`, `verify --level deep` of the
/// kept sets and the chunks left that no kept set names. Fails when a restored copy differs,
/// a verification fails or such a chunk is left.
fn incremental(pg: &'static PgCluster, bin: &Path, work: &Path) -> anyhow::Result<()> {
    let megabytes: u64 = std::env::var("BENCH_INCREMENTAL_MB")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1000);
    let work = work.join("incremental");
    std::fs::create_dir_all(&work)?;
    let workload = Workload::of_megabytes(megabytes);
    eprintln!(
        "building the application database (~{megabytes} MB: {} events, {} products, {} accounts, {} stock rows)...",
        workload.events, workload.products, workload.accounts, workload.stock
    );
    let db = fresh_database_on(pg, "bench incremental");
    workload.create(&db);
    let shares = db.psql(
        "SELECT pg_database_size(current_database()),
             sum(pg_total_relation_size(c.oid)) FILTER (WHERE relname = 'events'),
             sum(pg_total_relation_size(c.oid)) FILTER (WHERE relname IN ('products','categories','countries','tax_rates')),
             sum(pg_total_relation_size(c.oid)) FILTER (WHERE relname IN ('accounts','stock'))
         FROM pg_class c WHERE relnamespace = 'public'::regnamespace AND relkind = 'r'",
    );
    let shares: Vec<u64> = shares
        .trim()
        .split('|')
        .map(|v| v.parse().unwrap_or(0))
        .collect();
    let [database_bytes, events_bytes, reference_bytes, hot_bytes] = shares[..] else {
        bail!("cannot read the database's size");
    };
    let tables_bytes = (events_bytes + reference_bytes + hot_bytes).max(1);
    let share = |bytes: u64| 100.0 * bytes as f64 / tables_bytes as f64;

    let store = work.join("store");
    let url = format!("file://{}", store.display());
    let backup = |n: usize, store_url: &str, incremental: bool| -> anyhow::Result<Taken> {
        let report = work.join(format!("backup-{n}.json"));
        let mut command = Command::new(bin);
        command
            .args(["backup", "--db", &db.url(), "--to", store_url])
            .args(["--database-id", &db.name, "--jobs", "2", "--json"])
            .stdout(std::fs::File::create(&report)?);
        if incremental {
            command.arg("--incremental");
        }
        let measured = measure(command)?;
        let summary: serde_json::Value = serde_json::from_slice(&std::fs::read(&report)?)?;
        Ok(Taken {
            id: summary["backup_id"]
                .as_str()
                .context("the backup's report has no backup_id")?
                .to_string(),
            seconds: measured.seconds,
            rss: measured.max_rss_bytes,
            bytes: summary["bytes"].as_u64().unwrap_or_default(),
            new_bytes: summary["new_bytes"].as_u64().unwrap_or_default(),
            changed: None,
            dump: work.join(format!("source-{n}.sql.zst")),
            restore_seconds: None,
            identical: None,
            groups: [Group::default(); 3],
            read: 0,
            streamed: 0,
        })
    };
    // With a change stream (`BENCH_INCREMENTAL_STREAM=1`), it is drained after each round of
    // changes, as its schedule would, and each backup drains what came after.
    let with_stream = std::env::var("BENCH_INCREMENTAL_STREAM").as_deref() == Ok("1");
    let stream_folder = store.join(&db.name).join("stream");
    let drain = || -> anyhow::Result<()> {
        let status = Command::new(bin)
            .args([
                "stream",
                "--db",
                &db.url(),
                "--to",
                &url,
                "--database-id",
                &db.name,
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .status()?;
        if !status.success() {
            bail!("backstop stream failed ({status})");
        }
        Ok(())
    };
    if with_stream {
        eprintln!("the change stream's first drain (its slot, and a base backup)...");
        drain()?;
    }
    let streamed = || {
        if with_stream {
            size_of(&stream_folder)
        } else {
            0
        }
    };
    let tables_read = |manifest: &serde_json::Value| {
        manifest["parts"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|part| {
                part["table"]
                    .as_object()
                    .into_iter()
                    .chain(
                        part["bundle"]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .filter_map(|b| b.as_object()),
                    )
                    .cloned()
                    .collect::<Vec<_>>()
            })
            .filter(|block| block["proof"]["how"].as_str() == Some("read"))
            .count()
    };

    let appended = (workload.events / 100).max(1);
    let mut last_event = workload.events;
    let mut sets: Vec<Taken> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for n in 1..=10 {
        let mut changed = None;
        if n > 1 {
            eprintln!(
                "round {n}: appending {appended} events, updating 2 % of accounts and stock..."
            );
            workload.append_events(&db, last_event + 1, last_event + appended);
            let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(n as u64);
            let mut pick = |rows: u64| {
                rand::seq::index::sample(&mut rng, rows as usize, (rows as usize / 50).max(1))
                    .iter()
                    .map(|i| (i + 1).to_string())
                    .collect::<Vec<_>>()
                    .join(",")
            };
            let (accounts, stock) = (pick(workload.accounts), pick(workload.stock));
            let updates = work.join(format!("round-{n}.sql"));
            std::fs::write(
                &updates,
                format!(
                    "UPDATE public.accounts SET balance = balance + (id % 2000 - 1000) / 100.0,
                         settings = jsonb_set(settings, '{{last_seen}}', to_jsonb({n})), updated_at = now()
                     WHERE id = ANY('{{{accounts}}}'::integer[]);
                     UPDATE public.stock SET quantity = (quantity + {n} * 7) % 1000, reserved = (reserved + 1) % 20,
                         updated_at = now()
                     WHERE product_id = ANY('{{{stock}}}'::integer[]);"
                ),
            )?;
            db.psql_file(&updates);
            let copy = work.join(format!("changed-{n}.sql"));
            std::fs::write(
                &copy,
                format!(
                    "COPY (SELECT * FROM public.events WHERE id > {last_event}) TO STDOUT;
                     COPY (SELECT * FROM public.accounts WHERE id = ANY('{{{accounts}}}'::integer[])) TO STDOUT;
                     COPY (SELECT * FROM public.stock WHERE product_id = ANY('{{{stock}}}'::integer[])) TO STDOUT;"
                ),
            )?;
            changed = Some(compressed_copy(&db, &copy)?);
            last_event += appended;
        }
        let streamed_before = streamed();
        if with_stream && n > 1 {
            drain()?;
        }
        eprintln!("backup {n}/10 (--incremental)...");
        let mut taken = backup(n, &url, true)?;
        taken.changed = changed;
        taken.streamed = streamed() - streamed_before;
        let manifest = store.join(&db.name).join(&taken.id).join("manifest.json");
        let manifest: serde_json::Value = serde_json::from_slice(&std::fs::read(manifest)?)?;
        taken.groups = by_group(&manifest, &mut seen);
        taken.read = tables_read(&manifest);
        dump_compressed(&db, &taken.dump)?;
        sets.push(taken);
    }
    eprintln!("backup 11 (--incremental), of the unchanged database...");
    let streamed_before = streamed();
    let mut unchanged = backup(11, &url, true)?;
    unchanged.streamed = streamed() - streamed_before;
    let manifest = store
        .join(&db.name)
        .join(&unchanged.id)
        .join("manifest.json");
    let manifest: serde_json::Value = serde_json::from_slice(&std::fs::read(manifest)?)?;
    unchanged.groups = by_group(&manifest, &mut seen);
    unchanged.read = tables_read(&manifest);
    eprintln!("a full backup (not incremental) of the final state...");
    let full_store = work.join("full-store");
    let full_url = format!("file://{}", full_store.display());
    let mut full = backup(12, &full_url, false)?;

    let mut failures: Vec<String> = Vec::new();
    let restore = |store_url: &str, taken: &mut Taken, failures: &mut Vec<String>| {
        let target = fresh_database_on(pg, &format!("bench incremental restore {}", taken.id));
        let mut command = Command::new(bin);
        command
            .args(["restore", "--from", store_url, "--database-id", &db.name])
            .args(["--backup", &taken.id, "--db", &target.url(), "--jobs", "2"])
            .stdout(Stdio::null());
        let restored = work.join("restored.sql.zst");
        let outcome = measure(command).and_then(|m| {
            taken.restore_seconds = Some(m.seconds);
            dump_compressed(&target, &restored)?;
            first_difference(&taken.dump, &restored)
        });
        drop(target);
        let _ = std::fs::remove_file(&restored);
        match outcome {
            Ok(None) => taken.identical = Some(true),
            Ok(Some((line, source, copy))) => {
                taken.identical = Some(false);
                failures.push(format!(
                    "the restored copy of {} differs from its source at line {line} of pg_dump ({source:?} against {copy:?})",
                    taken.id
                ));
            }
            Err(e) => {
                taken.identical = Some(false);
                failures.push(format!("the restore of {} failed: {e:#}", taken.id));
            }
        }
    };
    for (n, taken) in sets.iter_mut().enumerate() {
        eprintln!("restore {}/10 and compare...", n + 1);
        restore(&url, taken, &mut failures);
    }
    eprintln!("restore of the full set and compare...");
    full.dump = sets[9].dump.clone();
    restore(&full_url, &mut full, &mut failures);
    for taken in &sets {
        let _ = std::fs::remove_file(&taken.dump);
    }

    eprintln!("prune --keep-last 3, two hours on (past the chunk sweep's hour)...");
    let database_folder = store.join(&db.name);
    let store_before = size_of(&store);
    let prune_args = [
        "prune",
        "--from",
        &url,
        "--database-id",
        &db.name,
        "--keep-last",
        "3",
        "--json",
    ];
    let faked = Command::new("faketime")
        .args(["-f", "+2h"])
        .arg(bin)
        .args(prune_args)
        .env("FAKETIME_DONT_FAKE_MONOTONIC", "1")
        .stdin(Stdio::null())
        .output();
    let (output, clock) = match faked {
        Ok(output) => (output, "faketime +2h"),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => (
            Command::new(bin)
                .args(prune_args)
                .stdin(Stdio::null())
                .output()?,
            "no faketime: chunks younger than an hour were left and count below",
        ),
        Err(e) => return Err(e).context("spawning faketime"),
    };
    if !output.status.success() {
        bail!(
            "backstop prune failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    let prune: serde_json::Value = serde_json::from_slice(&output.stdout)?;
    let store_after = size_of(&store);

    // The kept sets (those with a manifest) and the chunks their manifests name.
    let mut kept: Vec<(String, serde_json::Value)> = Vec::new();
    for entry in std::fs::read_dir(&database_folder)?.flatten() {
        let manifest = entry.path().join("manifest.json");
        if manifest.is_file() {
            let name = entry.file_name().to_string_lossy().into_owned();
            kept.push((name, serde_json::from_slice(&std::fs::read(&manifest)?)?));
        }
    }
    kept.sort_by(|a, b| a.0.cmp(&b.0));
    let named: std::collections::HashSet<String> = kept
        .iter()
        .flat_map(|(_, manifest)| manifest["parts"].as_array().cloned().unwrap_or_default())
        .flat_map(|part| part["chunks"].as_array().cloned().unwrap_or_default())
        .filter_map(|chunk| chunk["id"].as_str().map(str::to_string))
        .collect();
    // Chunk objects are `<id>.zst`; the file store keeps hidden files beside them (a chunk's
    // tags, `.<id>.zst.tags.json`, and the lock of a delete), which are no objects.
    let mut stored = std::collections::HashSet::new();
    let mut hidden = Vec::new();
    let mut unnamed = 0;
    let mut unnamed_bytes = 0;
    for folder in std::fs::read_dir(database_folder.join("chunks"))?.flatten() {
        for chunk in std::fs::read_dir(folder.path())?.flatten() {
            let file = chunk.file_name().to_string_lossy().into_owned();
            if let Some(beside) = file.strip_prefix('.') {
                hidden.push(beside.split('.').next().unwrap_or_default().to_string());
                continue;
            }
            let id = file.split('.').next().unwrap_or_default().to_string();
            if !named.contains(&id) {
                unnamed += 1;
                unnamed_bytes += size_of(&chunk.path());
            }
            stored.insert(id);
        }
    }
    // Hidden files whose chunk is gone.
    let stray = hidden.iter().filter(|id| !stored.contains(*id)).count();
    let missing = named.difference(&stored).count();
    if unnamed > 0 {
        failures.push(format!(
            "{unnamed} chunks ({}) are left that no kept set names",
            amount(unnamed_bytes)
        ));
    }
    if missing > 0 {
        failures.push(format!(
            "{missing} chunks the kept sets name are not in the store"
        ));
    }
    let mut verified = Vec::new();
    for (id, _) in &kept {
        eprintln!("verify --level deep {id}...");
        let started = Instant::now();
        let status = Command::new(bin)
            .args(["verify", "--from", &url, "--database-id", &db.name])
            .args(["--backup", id, "--level", "deep", "--json"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .status()?;
        if !status.success() {
            failures.push(format!("verify --level deep of {id} failed ({status})"));
        }
        verified.push((
            id.clone(),
            status.success(),
            started.elapsed().as_secs_f64(),
        ));
    }

    let first = sets[0].bytes.max(1) as f64;
    println!();
    println!(
        "incremental backups (backup --incremental --jobs 2) of an application database: {} \
         ({} in tables: events {:.0} %, reference {:.0} %, hot {:.0} %)",
        mib(database_bytes),
        mib(tables_bytes),
        share(events_bytes),
        share(reference_bytes),
        share(hot_bytes),
    );
    let groups: Vec<String> = ["events", "reference", "hot"]
        .iter()
        .zip(sets[0].groups)
        .map(|(group, Group { stored, plain, .. })| {
            format!(
                "{group} {} ({:.1}:1 from {} of COPY text)",
                amount(stored),
                plain as f64 / stored.max(1) as f64,
                amount(plain)
            )
        })
        .collect();
    println!("set 1's data parts: {}", groups.join(", "));
    println!(
        "between backups: {appended} events appended (1 %), 2 % of accounts ({}) and stock ({}) updated",
        workload.accounts / 50,
        workload.stock / 50
    );
    println!(
        "{:<5} {:>5} {:>9} {:>8} {:>9} {:>10} {:>9} {:>10} {:>9} {:>9} {:>11} {:>9} {:>9} {:>10}",
        "set",
        "read",
        "streamed",
        "backup",
        "bytes",
        "new_bytes",
        "of set 1",
        "in events",
        "in hot",
        "peak RSS",
        "changed",
        "new/chg",
        "restore",
        "identical"
    );
    let row = |label: &str, taken: &Taken| {
        let ratio = match taken.changed {
            Some(changed) if changed > 0 => {
                format!("{:.1}x", taken.new_bytes as f64 / changed as f64)
            }
            _ => "-".to_string(),
        };
        let new_in = |group: usize| match taken.groups[group].stored {
            0 => "-".to_string(),
            _ => amount(taken.groups[group].new),
        };
        println!(
            "{label:<5} {:>5} {:>9} {:>6.1} s {:>9} {:>10} {:>7.2} % {:>10} {:>9} {:>9} {:>11} {:>9} {:>9} {:>10}",
            taken.read,
            amount(taken.streamed),
            taken.seconds,
            amount(taken.bytes),
            amount(taken.new_bytes),
            100.0 * taken.new_bytes as f64 / first,
            new_in(0),
            new_in(2),
            mib(taken.rss),
            taken.changed.map_or("-".to_string(), amount),
            ratio,
            taken
                .restore_seconds
                .map_or("-".to_string(), |s| format!("{s:.1} s")),
            match taken.identical {
                Some(true) => "yes",
                Some(false) => "NO",
                None => "-",
            }
        );
    };
    for (n, taken) in sets.iter().enumerate() {
        row(&(n + 1).to_string(), taken);
    }
    row("11", &unchanged);
    row("full", &full);
    println!(
        "read: tables the backup read (the others named from the set before); streamed: change \
         segments the stream stored since the backup before ({}); in events / in hot: new_bytes \
         in chunks of events / of the hot tables; changed: the rows changed since the previous \
         backup, COPY text through zstd -1; new/chg: new_bytes over that; identical: the same \
         schema and the same rows in each table (in any order); full: backup without \
         --incremental of the final state",
        if with_stream {
            "drained once after each round, and by each backup"
        } else {
            "no stream"
        }
    );
    let most = sets[1..].iter().map(|t| t.new_bytes).max().unwrap_or(0);
    println!(
        "stored per backup after the first: at most {} = {:.2} % of the first set (target <= 10 %)",
        amount(most),
        100.0 * most as f64 / first
    );
    println!(
        "unchanged database: new_bytes {} = {:.3} % of a full set ({}) (target < 1 %)",
        amount(unchanged.new_bytes),
        100.0 * unchanged.new_bytes as f64 / full.bytes.max(1) as f64,
        amount(full.bytes)
    );
    let seconds = |t: &Taken| t.restore_seconds.unwrap_or(f64::NAN);
    println!(
        "restore --jobs 2: set 1 {:.1} s, set 10 {:.1} s, full set {:.1} s; tenth / full = {:.2}x (target <= 1.1x)",
        seconds(&sets[0]),
        seconds(&sets[9]),
        seconds(&full),
        seconds(&sets[9]) / seconds(&full)
    );
    println!(
        "prune --keep-last 3 ({clock}): {} sets deleted, {} kept; chunks: {} referenced, {} removed ({}), {} deferred; \
         store {} before, {} after",
        prune["deleted"].as_array().map_or(0, Vec::len),
        kept.len(),
        prune["chunks"]["referenced"],
        prune["chunks"]["removed"],
        amount(prune["chunks"]["removed_bytes"].as_u64().unwrap_or(0)),
        prune["chunks"]["deferred"],
        amount(store_before),
        amount(store_after)
    );
    for (id, passed, seconds) in &verified {
        println!(
            "verify --level deep {id}: {} ({seconds:.1} s)",
            if *passed { "pass" } else { "FAIL" }
        );
    }
    println!(
        "chunks in the store that no kept set names: {unnamed} (must be 0); named but missing: {missing}; \
         hidden files beside the chunks: {} ({stray} of chunks no longer there)",
        hidden.len()
    );
    drop(db);
    let _ = std::fs::remove_dir_all(&work);
    if !failures.is_empty() {
        bail!("{}", failures.join("\n"));
    }
    Ok(())
}

/// Accounts the row-order table's rows are spread over (its indexed column).
const ORDER_ACCOUNTS: u64 = 100_000;

/// A statement that appends rows `first..=last` of the row-order table, in id order as an
/// application writes them, and returns how many it added.
fn order_rows(first: u64, last: u64) -> String {
    format!(
        "WITH added AS (INSERT INTO public.events SELECT g,
             timestamptz '2025-01-01 00:00:00+00' + g * interval '1 second' + (hashint8(g) & 1023) * interval '1 ms',
             1 + (hashint8(g) & 2147483647) % {ORDER_ACCOUNTS},
             (ARRAY['login','view','view','view','click','click','search','purchase'])[1 + (hashint8(-g) & 7)]
                 || ' session=' || md5((g / 20)::text) || ' request=' || substr(md5(g::text), 1, 16)
                 || ' path=/items/' || (hashint8(g * 3) & 65535)
                 || ' agent=' || (ARRAY['Mozilla/5.0 (X11; Linux x86_64)','Mozilla/5.0 (Macintosh)',
                     'Mozilla/5.0 (iPhone)'])[1 + (hashint8(g / 20) & 3) % 3]
         FROM generate_series({first}::bigint, {last}) g RETURNING 1)
         SELECT count(*) FROM added"
    )
}

/// One incremental set of the row-order scenario, and what its parts of `events` hold.
struct OrderSet {
    seconds: f64,
    new_bytes: u64,
    /// The table's data parts: how many, their stored bytes, their COPY text and rows.
    parts: usize,
    stored: u64,
    plain: u64,
    rows: u64,
    /// Their chunks, and those that no earlier set named.
    chunks: usize,
    new_chunks: usize,
    /// Whether a part was named from an earlier set unread (WAL summaries).
    proven: bool,
}

/// `BENCH_ONLY=order`: how much of one append-mostly table's stored chunks an incremental set
/// reuses after each kind of change to its physical row order (which is the order its COPY
/// reads, and so the order of the bytes the chunks are cut from).
fn row_order(pg: &'static PgCluster, bin: &Path, work: &Path) -> anyhow::Result<()> {
    let megabytes: u64 = std::env::var("BENCH_ORDER_MB")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(200);
    let work = work.join("order");
    std::fs::create_dir_all(&work)?;
    let db = fresh_database_on(pg, "bench order");
    db.psql(
        "CREATE TABLE public.events (id bigint PRIMARY KEY, at timestamptz NOT NULL,
             account integer NOT NULL, payload text NOT NULL) WITH (autovacuum_enabled = off);
         CREATE INDEX events_account ON public.events (account);",
    );
    let number = |text: String| -> anyhow::Result<u64> {
        text.trim()
            .parse()
            .with_context(|| format!("not a number: {text:?}"))
    };
    // The rows of about `megabytes` in the database (heap and both indexes), from the size a
    // first batch takes.
    let probe = 20_000;
    db.psql(&order_rows(1, probe));
    let probe_bytes = number(db.psql("SELECT pg_total_relation_size('public.events')"))?;
    let rows = (megabytes * 1048576 * probe / probe_bytes.max(1)).max(probe);
    eprintln!("loading events: {rows} rows (~{megabytes} MB)...");
    if rows > probe {
        db.psql(&order_rows(probe + 1, rows));
    }
    let sizes = db.psql(
        "SELECT current_setting('server_version'), count(*), pg_relation_size('public.events'),
             pg_indexes_size('public.events'), pg_total_relation_size('public.events')
         FROM public.events",
    );
    let sizes: Vec<&str> = sizes.trim().split('|').collect();
    let [version, _, heap, indexes, total] = sizes[..] else {
        bail!("cannot read the table's size");
    };
    let (heap, indexes, total): (u64, u64, u64) = (heap.parse()?, indexes.parse()?, total.parse()?);

    let store = work.join("store");
    let url = format!("file://{}", store.display());
    let mut seen = std::collections::HashSet::new();
    let mut backup = |n: usize| -> anyhow::Result<OrderSet> {
        let report = work.join(format!("backup-{n}.json"));
        let mut command = Command::new(bin);
        command
            .args(["backup", "--db", &db.url(), "--to", &url])
            .args([
                "--database-id",
                &db.name,
                "--jobs",
                "2",
                "--json",
                "--incremental",
            ])
            .stdout(std::fs::File::create(&report)?);
        let measured = measure(command)?;
        let summary: serde_json::Value = serde_json::from_slice(&std::fs::read(&report)?)?;
        let id = summary["backup_id"]
            .as_str()
            .context("the backup's report has no backup_id")?;
        let manifest: serde_json::Value = serde_json::from_slice(&std::fs::read(
            store.join(&db.name).join(id).join("manifest.json"),
        )?)?;
        let mut set = OrderSet {
            seconds: measured.seconds,
            new_bytes: summary["new_bytes"]
                .as_u64()
                .context("the backup's report has no new_bytes")?,
            parts: 0,
            stored: 0,
            plain: 0,
            rows: 0,
            chunks: 0,
            new_chunks: 0,
            proven: false,
        };
        for part in manifest["parts"].as_array().into_iter().flatten() {
            if part["table"]["name"].as_str() != Some("events") {
                continue;
            }
            set.parts += 1;
            set.stored += part["bytes"].as_u64().unwrap_or(0);
            set.plain += part["plain_bytes"].as_u64().unwrap_or(0);
            set.rows += part["table"]["rows"].as_u64().unwrap_or(0);
            set.proven |= part["table"]["proof"]["how"].as_str() == Some("wal-summary");
            for chunk in part["chunks"].as_array().into_iter().flatten() {
                set.chunks += 1;
                if let Some(id) = chunk["id"].as_str()
                    && seen.insert(id.to_string())
                {
                    set.new_chunks += 1;
                }
            }
        }
        Ok(set)
    };

    let percent = rows / 100;
    let mut last = rows;
    let mut append = || {
        let statement = order_rows(last + 1, last + percent);
        last += percent;
        statement
    };
    let changed = |salt: u64, statement: &str| {
        format!(
            "WITH changed AS ({statement} WHERE (hashint8(id + {salt}) & 2147483647) % 100 = 0 \
             RETURNING 1) SELECT count(*) FROM changed"
        )
    };
    let steps: Vec<(&str, Vec<String>)> = vec![
        ("initial load, in id order", vec![]),
        ("append 1 % at the end", vec![append()]),
        ("nothing", vec![]),
        (
            "UPDATE 1 % (account: not HOT)",
            vec![changed(
                1_000_003,
                &format!("UPDATE public.events SET account = account % {ORDER_ACCOUNTS} + 1"),
            )],
        ),
        (
            "VACUUM, then append 1 %",
            vec!["VACUUM public.events".to_string(), append()],
        ),
        (
            "DELETE 1 %, then VACUUM",
            vec![
                changed(2_000_003, "DELETE FROM public.events"),
                "VACUUM public.events".to_string(),
            ],
        ),
        ("VACUUM FULL", vec!["VACUUM FULL public.events".to_string()]),
        (
            "CLUSTER USING events_account",
            vec!["CLUSTER public.events USING events_account".to_string()],
        ),
        (
            "CLUSTER USING events_pkey",
            vec!["CLUSTER public.events USING events_pkey".to_string()],
        ),
    ];

    let mut failures = Vec::new();
    // Per step: its change, the rows it touched, the heap's size after it, the set.
    let mut taken: Vec<(&str, Option<u64>, u64, OrderSet)> = Vec::new();
    for (n, (change, statements)) in steps.into_iter().enumerate() {
        eprintln!("step {n}: {change}...");
        let mut touched = (n == 0).then_some(rows);
        for statement in &statements {
            let output = db.psql(statement);
            if !output.trim().is_empty() {
                *touched.get_or_insert(0) += number(output)?;
            }
        }
        let state =
            db.psql("SELECT count(*), pg_relation_size('public.events') FROM public.events");
        let (count, heap_now) = state
            .trim()
            .split_once('|')
            .context("cannot read the table's rows and size")?;
        let (count, heap_now): (u64, u64) = (count.parse()?, heap_now.parse()?);
        eprintln!("backup {n} (--incremental)...");
        let set = backup(n)?;
        if set.rows != count {
            failures.push(format!(
                "set {n} holds {} rows of events, the table {count}",
                set.rows
            ));
        }
        taken.push((change, touched, heap_now, set));
    }

    let first = &taken[0].3;
    let base = first.stored.max(1) as f64;
    println!();
    println!(
        "row order and chunk reuse: PostgreSQL {version}, events(id bigint primary key, at timestamptz, \
         account int, payload text), index on account, fillfactor 100, autovacuum off"
    );
    println!(
        "events at set 0: {rows} rows, heap {}, indexes {}, {} in all (BENCH_ORDER_MB={megabytes}); \
         {} of COPY text ({} bytes a row) in {} part(s), {} chunks, {} stored ({:.1}:1)",
        amount(heap),
        amount(indexes),
        amount(total),
        amount(first.plain),
        first.plain / first.rows.max(1),
        first.parts,
        first.chunks,
        amount(first.stored),
        first.plain as f64 / base,
    );
    let split = backstop::engine::backup::BackupOptions::new(
        backstop::layout::DatabaseId::new("bench").map_err(|e| anyhow::anyhow!("{e}"))?,
    )
    .split_pages;
    println!(
        "chunks: FastCDC 2020 (normalization 1, gear seeded by the database's chunk key) over each \
         data part's COPY text, min {} / average {} / max {} (~{} rows a chunk here), each zstd -1; \
         parts: a table's rows in heap order, split by ctid range past {} of heap; \
         backup --incremental --jobs 2; no VACUUM or ANALYZE before a backup but the steps' own",
        amount(backstop::engine::chunks::MIN_CHUNK.into()),
        amount(backstop::engine::chunks::AVERAGE_CHUNK.into()),
        amount(backstop::engine::chunks::MAX_CHUNK.into()),
        u64::from(backstop::engine::chunks::AVERAGE_CHUNK) * first.rows.max(1) / first.plain.max(1),
        amount(split * 8192),
    );
    println!(
        "{:<4} {:<31} {:>7} {:>9} {:>10} {:>9} {:>13} {:>8}",
        "step", "change", "rows", "heap", "new_bytes", "of set 0", "chunks new", "backup"
    );
    for (n, (change, touched, heap_now, set)) in taken.iter().enumerate() {
        println!(
            "{n:<4} {change:<31} {:>7} {:>9} {:>10} {:>7.1} % {:>13} {:>6.1} s",
            touched.map_or("-".to_string(), |t| t.to_string()),
            amount(*heap_now),
            amount(set.new_bytes),
            100.0 * set.new_bytes as f64 / base,
            format!(
                "{}/{}{}",
                set.new_chunks,
                set.chunks,
                if set.proven { " proven" } else { "" }
            ),
            set.seconds,
        );
    }
    println!(
        "rows: rows the step added, updated or deleted; heap: the table's heap after it; new_bytes: \
         what the set added to the store (backup --json); of set 0: that over the table's stored \
         bytes in set 0 ({}), = 100 % less the reuse; chunks new: the table's chunks no earlier \
         set named, of its chunks in the set",
        amount(first.stored)
    );
    drop(db);
    let _ = std::fs::remove_dir_all(&work);
    if !failures.is_empty() {
        bail!("{}", failures.join("\n"));
    }
    Ok(())
}
