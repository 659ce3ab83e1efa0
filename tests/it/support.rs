//! Helpers shared by the integration tests.

use std::path::PathBuf;
use std::process::{Command, Output};

/// An event fixture from tests/fixtures/events.
pub fn fixture(name: &str) -> serde_json::Value {
    let path = backstop_tests::workspace_root()
        .join("tests/fixtures/events")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

/// Deterministic pseudo-random bytes (incompressible, unlike repeated patterns).
pub fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect()
}

/// The `backstop` binary built by `cargo build` next to this test binary.
pub fn backstop_bin() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let bin = exe
        .parent()
        .and_then(|deps| deps.parent())
        .unwrap()
        .join("backstop");
    assert!(
        bin.exists(),
        "{} is missing; run `cargo build --bins` (make test does)",
        bin.display()
    );
    bin
}

/// Runs the CLI with `args` and extra environment.
pub fn backstop(args: &[&str], env: &[(&str, String)]) -> Output {
    let mut command = Command::new(backstop_bin());
    command
        .args(args)
        .env_remove("AWS_ENDPOINT_URL")
        .env("AWS_EC2_METADATA_DISABLED", "true");
    for (k, v) in env {
        command.env(k, v);
    }
    command.output().unwrap()
}

/// [`backstop`], asserting it succeeded (stderr shown when it did not).
pub fn backstop_ok(args: &[&str], env: &[(&str, String)]) -> Output {
    let output = backstop(args, env);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// The error line of a failed run, asserting it is exactly one line; before it, stderr may
/// hold only progress lines (one per phase that ended, and what the run started on), never a
/// second error or a warning.
pub fn single_error_line(output: &Output) -> String {
    assert!(
        !output.status.success(),
        "expected failure, got {:?}",
        output.status
    );
    let stderr = String::from_utf8_lossy(&output.stderr).trim().to_string();
    let said: Vec<&str> = stderr.lines().filter(|l| !is_progress_line(l)).collect();
    assert_eq!(
        said.len(),
        1,
        "expected one line on stderr besides progress, got:\n{stderr}"
    );
    said[0].to_string()
}

/// A progress line off a terminal: `<command>: <phase>: ... in N s`, or what a run starts on.
pub fn is_progress_line(line: &str) -> bool {
    let phase_ended = ["backup: ", "restore: ", "verify: ", "export: "]
        .iter()
        .any(|command| line.starts_with(command))
        && line.contains(" in ")
        && (line.ends_with(" s") || line.ends_with("/s)"));
    phase_ended
        || line.starts_with("backing up ")
        || line.starts_with("restoring backup ")
        || line.starts_with("last measured restore of ")
}

/// Watches `db` and terminates the first backend seen running `COPY ... TO STDOUT` (a backup
/// worker). The task answers whether it terminated one.
pub async fn terminate_copy_when_seen(
    db: &backstop_tests::postgres::TestDb,
) -> tokio::task::JoinHandle<bool> {
    let admin = backstop::pg::connect(&backstop::pg::parse_url(&db.url()).unwrap())
        .await
        .unwrap();
    let database = db.name.clone();
    tokio::spawn(async move {
        for _ in 0..2000 {
            let killed: i64 = admin
                .query_one(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
                     WHERE datname = $1 AND query LIKE 'COPY %TO STDOUT' AND pid <> pg_backend_pid()",
                    &[&database],
                )
                .await
                .unwrap()
                .get(0);
            if killed > 0 {
                return true;
            }
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        false
    })
}

/// Runs the CLI like [`backstop`], but kills it and fails the test if it has not ended within
/// `limit`: every command has a bound, and a hang is a failure that says so. Its output is
/// read while it runs, so a talkative command never blocks on a full pipe.
pub fn backstop_within(
    limit: std::time::Duration,
    args: &[&str],
    env: &[(&str, String)],
) -> Output {
    use std::io::Read;
    use std::process::Stdio;
    let mut command = Command::new(backstop_bin());
    command
        .args(args)
        .env_remove("AWS_ENDPOINT_URL")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        command.env(k, v);
    }
    let mut child = command.spawn().unwrap();
    let drain = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = pipe.read_to_end(&mut bytes);
            bytes
        })
    };
    let stdout = drain(Box::new(child.stdout.take().unwrap()));
    let stderr = drain(Box::new(child.stderr.take().unwrap()));
    let deadline = std::time::Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "`backstop {}` did not end within {limit:?}:\n{}",
                args.join(" "),
                String::from_utf8_lossy(&stderr.join().unwrap_or_default())
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    Output {
        status,
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    }
}
