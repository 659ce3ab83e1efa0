//! A full disk under the file store (a real tmpfs) and a reader that closes its pipe.

use super::*;
use backstop_tests::tmpfs::Tmpfs;

/// A file store on a disk that fills up during the backup, at sizes that run out in the
/// manifest, in a part, and before anything: the backup fails within its bound in one line
/// naming the full disk, no set is listed as committed, no partial file is left, `health` does
/// not call the store healthy, and once space is back the next backup succeeds and restores.
/// (Before the file store proved its writes, the small sizes exited 0 with 0-byte objects.)
/// The same for an incremental backup, whose chunks and chunk key are written beside the sets.
#[test]
fn a_backup_to_a_full_disk_fails_in_one_line_and_commits_nothing() {
    backup_to_a_full_disk(&[]);
}

#[test]
fn an_incremental_backup_to_a_full_disk_fails_in_one_line_and_commits_nothing() {
    backup_to_a_full_disk(&["--incremental"]);
}

fn backup_to_a_full_disk(extra: &[&str]) {
    let db = fresh_database("fulldisk");
    db.psql(
        "CREATE TABLE events AS
           SELECT g AS id, md5(g::text) || md5((g * 7)::text) AS note
           FROM generate_series(1, 40000) g;",
    );
    for free_kib in [2u64, 12, 48, 200] {
        let Some(disk) = Tmpfs::mount(2 << 20) else {
            return;
        };
        disk.fill_leaving(free_kib * 1024);
        let root = disk.path().join("backups");
        let store = format!("file://{}", root.display());
        let url = db.url();
        let mut args = vec![
            "backup",
            "--db",
            &url,
            "--to",
            &store,
            "--database-id",
            "main",
        ];
        args.extend_from_slice(extra);
        let output = backstop_within(BOUND, &args, &[]);
        let line = single_error_line(&output);
        assert!(
            line.contains("No space left on device"),
            "with {free_kib} KiB free the error does not say the disk is full: {line}"
        );
        assert!(
            committed(&store).is_empty(),
            "with {free_kib} KiB free a set is listed as committed"
        );
        let leftovers: Vec<_> = files_under(&root)
            .into_iter()
            .filter(|path| path.to_string_lossy().contains(".partial-"))
            .collect();
        assert!(leftovers.is_empty(), "partial files left: {leftovers:?}");
        let health = backstop(&["health", "--from", &store, "--database-id", "main"], &[]);
        assert_ne!(
            health.status.code(),
            Some(0),
            "health calls a store with no backup healthy:\n{}",
            String::from_utf8_lossy(&health.stdout)
        );

        // Space back: the same command now succeeds and the set restores.
        disk.unfill();
        backstop_ok(&args, &[]);
        let target = fresh_database("fulldisk_restore");
        backstop_ok(
            &[
                "restore",
                "--from",
                &store,
                "--database-id",
                "main",
                "--db",
                &target.url(),
            ],
            &[],
        );
        assert_eq!(
            target.psql("SELECT count(*), md5(string_agg(note, ',' ORDER BY id)) FROM events"),
            db.psql("SELECT count(*), md5(string_agg(note, ',' ORDER BY id)) FROM events"),
        );
    }
}

/// A change-stream drain on a disk that fills up, at sizes that run out in the segment and in
/// its seal: a drain that cannot store its changes fails in one line and does not advance the
/// slot, so once space is back the next drain stores them and the newest point restores the
/// source exactly. (Before the file store proved its writes, a drain wrote an empty seal, then
/// advanced the slot past changes stored nowhere.)
#[test]
fn a_drain_on_a_full_disk_keeps_its_changes_for_the_next_one() {
    let db = fresh_database("fulldisk stream");
    db.psql(
        "CREATE TABLE ledger (id int PRIMARY KEY, note text);
         INSERT INTO ledger SELECT g, md5(g::text) FROM generate_series(1, 100) g;",
    );
    let Some(disk) = Tmpfs::mount(8 << 20) else {
        return;
    };
    let store = format!("file://{}/backups", disk.path().display());
    let url = db.url();
    let drain = || backstop_within(BOUND, &["stream", "--db", &url, "--to", &store], &[]);
    let first = drain();
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );

    let mut next = 100;
    for free_kib in [0u64, 4, 12, 24, 48] {
        db.psql(&format!(
            "INSERT INTO ledger SELECT g, md5(g::text) || repeat('x', g % 50)
               FROM generate_series({}, {}) g;
             UPDATE ledger SET note = note || ' changed' WHERE id % 7 = {};",
            next + 1,
            next + 1500,
            free_kib % 7
        ));
        next += 1500;
        disk.fill_leaving(free_kib * 1024);
        let output = drain();
        if !output.status.success() {
            let line = single_error_line(&output);
            assert!(
                line.contains("No space left on device"),
                "with {free_kib} KiB free the error does not say the disk is full: {line}"
            );
        }
        disk.unfill();
    }
    let last = drain();
    assert!(
        last.status.success(),
        "{}",
        String::from_utf8_lossy(&last.stderr)
    );

    let target = fresh_database("fulldisk stream restore");
    backstop_ok(
        &[
            "restore",
            "--from",
            &store,
            "--database-id",
            &db.name,
            "--db",
            &target.url(),
        ],
        &[],
    );
    let digest = "SELECT count(*), md5(string_agg(id || ':' || note, ',' ORDER BY id)) FROM ledger";
    assert_eq!(
        target.psql(digest),
        db.psql(digest),
        "the newest point lost changes a drain could not store"
    );
}

/// Runs the CLI with a stdout whose reader has already gone, as `backstop … | head` leaves it
/// once head has what it wants.
fn backstop_into_a_closed_pipe(args: &[&str]) -> std::process::Output {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let mut child = std::process::Command::new(crate::support::backstop_bin())
        .args(args)
        .env_remove("AWS_ENDPOINT_URL")
        .stdout(writer)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + BOUND;
    while child.try_wait().unwrap().is_none() {
        assert!(
            std::time::Instant::now() < deadline,
            "`backstop {}` did not end",
            args.join(" ")
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

/// A reader that stops reading ends the command quietly, as it ends `cat`: status 141 and
/// nothing on stderr, for `list --json` (which panicked with 101) and for `export` (which said
/// a part "is corrupt … restore an earlier backup"); an export to a full disk says the disk is
/// full, blames no part, and leaves no partial file.
#[test]
fn a_closed_pipe_is_a_quiet_exit_and_a_full_disk_blames_no_part() {
    let db = fresh_database("pipes");
    db.psql(
        "CREATE TABLE ledger AS
           SELECT g AS id, md5(g::text) AS note FROM generate_series(1, 20000) g;",
    );
    let dir = tempfile::tempdir().unwrap();
    let store = format!("file://{}/backups", dir.path().display());
    backstop_ok(
        &[
            "backup",
            "--db",
            &db.url(),
            "--to",
            &store,
            "--database-id",
            "main",
        ],
        &[],
    );
    for args in [
        vec!["list", "--from", &store, "--json"],
        vec!["export", "--from", &store, "--database-id", "main"],
    ] {
        let output = backstop_into_a_closed_pipe(&args);
        assert_eq!(
            output.status.code(),
            Some(141),
            "`backstop {}`: {:?}\n{}",
            args.join(" "),
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(
            output.stderr.is_empty(),
            "`backstop {}` wrote: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr)
        );
    }

    let Some(disk) = Tmpfs::mount(256 * 1024) else {
        return;
    };
    let script = disk.path().join("backup.sql");
    let output = backstop_within(
        BOUND,
        &[
            "export",
            "--from",
            &store,
            "--database-id",
            "main",
            "--output",
            script.to_str().unwrap(),
        ],
        &[],
    );
    let line = single_error_line(&output);
    assert!(
        line.contains("No space left on device") && !line.contains("corrupt"),
        "{line}"
    );
    assert!(
        files_under(disk.path()).is_empty(),
        "the failed export left {:?}",
        files_under(disk.path())
    );
}
