//! The installable CLI as `make cli` leaves it (target/cli/backstop-linux-<arch>): statically
//! linked, it runs in a userland that is not the build host's, one holding nothing but a static
//! busybox (no glibc, no OpenSSL, no CA bundle): it backs up the harness PostgreSQL over TLS,
//! lists, verifies and restores, reaching the server through PG* variables and a password file.
//! As root the userland is a chroot; otherwise `unshare -r` makes one.

use std::path::{Path, PathBuf};
use std::process::Command;

use backstop_tests::postgres::{cluster, fresh_database};

/// The binary for this host's architecture.
fn binary() -> PathBuf {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => panic!("no CLI build for {other}"),
    };
    let path = backstop_tests::workspace_root().join(format!("target/cli/backstop-linux-{arch}"));
    assert!(
        path.exists(),
        "{} is missing; run `make cli`",
        path.display()
    );
    path
}

/// A userland of a static busybox and the CLI, nothing else.
fn userland(root: &Path) {
    let busybox = Path::new("/bin/busybox");
    assert!(
        busybox.exists(),
        "{} is missing; run `make infra-deps` (Debian's busybox-static)",
        busybox.display()
    );
    for dir in ["bin", "usr/local/bin", "tmp", "root", "etc"] {
        std::fs::create_dir_all(root.join(dir)).unwrap();
    }
    std::fs::copy(busybox, root.join("bin/busybox")).unwrap();
    std::os::unix::fs::symlink("busybox", root.join("bin/sh")).unwrap();
    std::fs::copy(binary(), root.join("usr/local/bin/backstop")).unwrap();
}

#[test]
#[ignore = "needs make cli: run by make infra-check"]
fn the_static_cli_backs_up_and_restores_from_a_bare_userland() {
    let work = tempfile::tempdir().unwrap();
    let root = work.path().join("rootfs");
    userland(&root);
    // Nothing that could lend the binary a library: no loader, no libc, no libssl.
    let mut files = Vec::new();
    collect(&root, &root, &mut files);
    assert!(
        !files
            .iter()
            .any(|f| f.contains("lib") || f.contains("ssl") || f.contains("ld-")),
        "{files:?}"
    );

    let source = fresh_database("static cli source");
    source.psql(
        "CREATE TABLE invoices (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, total numeric);
         INSERT INTO invoices (total) SELECT g * 1.5 FROM generate_series(1, 321) g;",
    );
    let target = fresh_database("static cli target");
    let c = cluster();
    std::fs::write(
        root.join("root/.pgpass"),
        format!("{}:{}:*:{}:{}\n", c.host, c.port, c.user, c.password),
    )
    .unwrap();
    std::fs::set_permissions(
        root.join("root/.pgpass"),
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    let script = format!(
        "set -e
         backstop --version
         backstop backup --db {source} --to file:///backups --database-id invoices
         backstop list --from file:///backups --json
         backstop verify --from file:///backups --database-id invoices --level deep
         backstop restore --from file:///backups --database-id invoices --db {target}",
        source = source.name,
        target = target.name
    );
    let as_root =
        std::os::unix::fs::MetadataExt::uid(&std::fs::metadata("/proc/self").unwrap()) == 0;
    let mut command = if as_root {
        Command::new("/usr/sbin/chroot")
    } else {
        let mut unshare = Command::new("unshare");
        unshare.args(["-r", "/usr/sbin/chroot"]);
        unshare
    };
    command
        .arg(&root)
        .args(["/bin/sh", "-c", &script])
        .env_clear()
        .env("PATH", "/usr/local/bin:/bin")
        .env("HOME", "/root")
        .env("PGHOST", &c.host)
        .env("PGPORT", c.port.to_string())
        .env("PGUSER", &c.user);
    let output = command.output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "in the bare userland:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.starts_with("backstop "), "{stdout}");
    assert!(stdout.contains("\"backup_id\""), "{stdout}");
    let rows = "SELECT count(*), sum(total) FROM invoices";
    assert_eq!(target.psql(rows), source.psql(rows));
    assert!(target.psql(rows).starts_with("321|"));
}

fn collect(root: &Path, dir: &Path, files: &mut Vec<String>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() && !path.is_symlink() {
            collect(root, &path, files);
        } else {
            files.push(path.strip_prefix(root).unwrap().display().to_string());
        }
    }
}
