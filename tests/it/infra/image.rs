//! The container task's image as `make image` leaves it: an OCI archive per architecture built
//! (`IMAGE_ARCHES`, arm64 by default: the architecture the module's task runs on) whose config
//! names the architecture and the backup binary as entrypoint; the arm64 one's rootfs,
//! unpacked with umoci, runs a backup job against the harness PostgreSQL and moto on its own
//! (in a chroot when the tests run as root: nothing from the host but the kernel, and on an
//! x86_64 host qemu's user-mode emulator, which `make infra-deps` installs).

use std::path::{Path, PathBuf};
use std::process::Command;

use backstop_tests::moto::moto;

/// `target/image/backstop-<arch>.oci.tar`, which `make image` writes.
fn archive(arch: &str) -> PathBuf {
    let path =
        backstop_tests::workspace_root().join(format!("target/image/backstop-{arch}.oci.tar"));
    assert!(
        path.exists(),
        "{} is missing; run `make image`",
        path.display()
    );
    path
}

fn run(command: &mut Command) -> String {
    let output = command
        .output()
        .expect("the tool is installed (make infra-deps)");
    assert!(
        output.status.success(),
        "{command:?} failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn blob(layout: &Path, digest: &str) -> serde_json::Value {
    let hex = digest.strip_prefix("sha256:").unwrap();
    serde_json::from_slice(&std::fs::read(layout.join("blobs/sha256").join(hex)).unwrap()).unwrap()
}

/// The image's config (architecture, entrypoint, environment), read from the archive's own
/// index, manifest and config blobs.
fn image_config(arch: &str, work: &Path) -> serde_json::Value {
    let layout = work.join(format!("{arch}-layout"));
    std::fs::create_dir_all(&layout).unwrap();
    run(Command::new("tar")
        .arg("-xf")
        .arg(archive(arch))
        .arg("-C")
        .arg(&layout));
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    let manifests = index["manifests"].as_array().unwrap();
    assert_eq!(manifests.len(), 1, "one image per archive: {index}");
    let manifest = blob(&layout, manifests[0]["digest"].as_str().unwrap());
    blob(&layout, manifest["config"]["digest"].as_str().unwrap())
}

/// The architectures `make image` built (`IMAGE_ARCHES`, default arm64).
fn built_arches() -> Vec<String> {
    std::env::var("IMAGE_ARCHES")
        .ok()
        .filter(|list| !list.trim().is_empty())
        .unwrap_or_else(|| "arm64".into())
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

#[test]
#[ignore = "needs make image: run by make infra-check"]
fn each_archive_names_its_architecture_and_the_backup_entrypoint() {
    let work = tempfile::tempdir().unwrap();
    for arch in built_arches() {
        let arch = arch.as_str();
        let config = image_config(arch, work.path());
        assert_eq!(config["architecture"], arch, "{config}");
        assert_eq!(config["os"], "linux");
        assert_eq!(
            config["config"]["Entrypoint"],
            serde_json::json!(["/backup"])
        );
        assert_eq!(config["config"]["User"], "65534:65534");
        let env: Vec<&str> = config["config"]["Env"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|v| v.as_str())
            .collect();
        assert!(
            env.contains(&"SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt"),
            "{env:?}"
        );
    }
}

#[tokio::test]
#[ignore = "needs make image: run by make infra-check"]
async fn the_arm64_image_runs_a_backup_job_against_the_harness() {
    let work = tempfile::tempdir().unwrap();
    let layout = work.path().join("layout");
    run(Command::new("skopeo")
        .args(["copy", "--quiet"])
        .arg(format!("oci-archive:{}", archive("arm64").display()))
        .arg(format!("oci:{}:backstop", layout.display())));
    let bundle = work.path().join("bundle");
    run(Command::new("umoci")
        .args(["unpack", "--rootless", "--image"])
        .arg(format!("{}:backstop", layout.display()))
        .arg(&bundle));
    let rootfs = bundle.join("rootfs");
    for file in [
        "backup",
        "stream",
        "verify",
        "etc/ssl/certs/ca-certificates.crt",
        "tmp",
    ] {
        assert!(rootfs.join(file).exists(), "{file} is not in the image");
    }
    // The runtime spec umoci wrote: what a container runtime would run.
    let spec: serde_json::Value =
        serde_json::from_slice(&std::fs::read(bundle.join("config.json")).unwrap()).unwrap();
    let args: Vec<String> = spec["process"]["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_string())
        .collect();
    assert_eq!(args, ["/backup"]);
    let image_env: Vec<(String, String)> = spec["process"]["env"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|v| v.as_str()?.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();

    let db = backstop_tests::postgres::fresh_database("image job");
    db.psql(
        "CREATE TABLE invoices (id bigint PRIMARY KEY, total numeric);
         INSERT INTO invoices SELECT g, g * 1.5 FROM generate_series(1, 777) g;",
    );
    let bucket = moto().new_bucket("image").await;
    let inbox = moto().alert_inbox("image").await;
    // On another architecture the binary runs under qemu's static user-mode emulator, put
    // into this unpacked copy of the rootfs (not into the image) so that the chroot holds it.
    let emulator = (std::env::consts::ARCH != "aarch64").then(|| {
        let qemu = Path::new("/usr/bin/qemu-aarch64-static");
        assert!(
            qemu.exists(),
            "{} is missing; run `make infra-deps` (Debian's qemu-user-static)",
            qemu.display()
        );
        std::fs::copy(qemu, rootfs.join("qemu-aarch64-static")).unwrap();
        "/qemu-aarch64-static"
    });
    let program: Vec<String> = emulator
        .map(str::to_string)
        .into_iter()
        .chain(args)
        .collect();
    // As root, the job runs in a chroot of the image: only what the image holds.
    let as_root =
        std::os::unix::fs::MetadataExt::uid(&std::fs::metadata("/proc/self").unwrap()) == 0;
    let mut command = if as_root {
        let mut chroot = Command::new("/usr/sbin/chroot");
        chroot.arg(&rootfs).args(&program);
        chroot
    } else {
        // Without root: the same files, from the unpacked rootfs.
        let inside = |path: &str| rootfs.join(path.trim_start_matches('/'));
        let mut direct = Command::new(inside(&program[0]));
        direct.args(program[1..].iter().map(|path| inside(path)));
        direct
    };
    command
        .env_clear()
        .envs(image_env)
        .env("BACKSTOP_JOB", r#"{"database": "main", "tier": "auto"}"#)
        .env("BACKSTOP_STORE", format!("s3://{bucket}/backups"))
        .env(
            "BACKSTOP_DATABASES",
            r#"{"main": {"url_env": "MAIN_DATABASE_URL"}}"#,
        )
        .env("MAIN_DATABASE_URL", db.url())
        .env("BACKSTOP_ALERT_TOPIC_ARN", &inbox.topic_arn);
    for (name, value) in moto().env() {
        command.env(name, value);
    }
    let output = command.output().unwrap();
    assert!(
        output.status.success(),
        "the image's job failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let answer: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let done = &answer["backups"][0];
    assert_eq!(done["rows"], 777, "{answer}");
    assert_eq!(done["database"], "main", "{answer}");
    super::assert_manifest_stored(&bucket, done).await;
    assert!(
        inbox.drain().await.is_empty(),
        "a committed job sends no alert"
    );
}
