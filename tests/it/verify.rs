//! Verification levels: an intact backup passes all three; each fault is caught at the
//! cheapest level that can see it, with the part named; the restore level catches a manifest
//! that lies about the data even when every stored checksum matches; the scratch database is
//! dropped on every path.

use std::path::Path;
use std::sync::Arc;

use backstop::engine::manifest::Manifest;
use backstop::engine::restore::{BackupSelector, read_manifest};
use backstop::engine::verify::{Level, Verdict, Verification, VerifyOptions, verify};
use backstop::store::{FileStore, Store};
use backstop_tests::moto::moto;
use backstop_tests::postgres::{TestDb, cluster, fresh_database};

use crate::engine::{options, take};
use crate::support::{backstop, backstop_ok, single_error_line};

const LEVELS: [Level; 3] = [Level::Manifest, Level::Deep, Level::Restore];

pub fn shop(db: &TestDb) {
    db.psql(
        "CREATE TABLE public.customers (id int PRIMARY KEY, name text NOT NULL);
         INSERT INTO public.customers SELECT g, 'customer ' || g FROM generate_series(1, 300) g;
         CREATE TABLE public.orders (id bigserial PRIMARY KEY, customer int REFERENCES public.customers, total numeric(10,2));
         INSERT INTO public.orders (customer, total) SELECT 1 + g % 300, g * 0.5 FROM generate_series(1, 3000) g;
         CREATE INDEX orders_customer ON public.orders (customer);
         CREATE VIEW public.big_orders AS SELECT * FROM public.orders WHERE total > 100;",
    );
}

fn scratch() -> backstop::pg::PgTarget {
    backstop::pg::parse_url(&cluster().url("postgres")).unwrap()
}

/// Verifies the backup `manifest` names, reading its manifest from the store as it is now.
pub async fn check(store: &Arc<dyn Store>, manifest: &Manifest, level: Level) -> Verification {
    let database = backstop::layout::DatabaseId::new(&manifest.database_id).unwrap();
    let backup = backstop::layout::BackupId::parse(&manifest.backup_id).unwrap();
    let stored = read_manifest(store.as_ref(), &database, &BackupSelector::Id(backup))
        .await
        .unwrap();
    let options = VerifyOptions {
        level,
        scratch: Some(scratch()),
        jobs: 2,
        interrupt: Default::default(),
    };
    verify(store.clone(), &stored, &options).await.unwrap()
}

/// Scratch databases of `database_id` still present on the cluster.
fn scratch_databases(database_id: &str) -> String {
    let label: String = database_id.chars().take(30).collect();
    cluster()
        .psql(
            "postgres",
            &format!(
                "SELECT datname FROM pg_database WHERE datname LIKE 'backstop_verify_{label}%'"
            ),
        )
        .trim()
        .to_string()
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

fn set_dir(root: &Path, manifest: &Manifest) -> std::path::PathBuf {
    root.join(&manifest.database_id).join(&manifest.backup_id)
}

fn write_manifest(root: &Path, manifest: &Manifest) {
    std::fs::write(
        set_dir(root, manifest).join("manifest.json"),
        serde_json::to_vec_pretty(manifest).unwrap(),
    )
    .unwrap();
}

#[tokio::test]
async fn an_intact_backup_in_s3_passes_every_level_and_the_results_are_recorded() {
    let db = fresh_database("verify intact");
    shop(&db);
    let bucket = moto().new_bucket("verify-intact").await;
    let url: backstop::store::StoreUrl = format!("s3://{bucket}/prod").parse().unwrap();
    let store = backstop::store::open(&url, &moto().sdk_config().await);
    let manifest = take(&db, &store, &options(&db)).await.unwrap();
    // What a verification killed two years ago left behind (its name carries its age).
    let stale = format!("backstop_verify_killed_{:08x}abcd", 1_700_000_000u32);
    cluster().psql("postgres", &format!("CREATE DATABASE {stale}"));
    for level in LEVELS {
        let result = check(&store, &manifest, level).await;
        assert_eq!(
            result.verdict,
            Verdict::Passed,
            "{level:?}: {:?}",
            result.findings
        );
        assert_eq!(result.restore_seconds.is_some(), level == Level::Restore);
        assert_eq!(result.loaded_seconds.is_some(), level == Level::Restore);
        if let (Some(loaded), Some(ready)) = (result.loaded_seconds, result.restore_seconds) {
            assert!(loaded <= ready, "loaded {loaded} s after ready {ready} s");
            assert!(
                ["applied", "analyzed", "skipped"]
                    .contains(&result.statistics.as_deref().unwrap_or("")),
                "{:?}",
                result.statistics
            );
        }
        backstop::engine::verify::record(store.as_ref(), &manifest, &result)
            .await
            .unwrap();
    }
    let database = backstop::layout::DatabaseId::new(&manifest.database_id).unwrap();
    let newest = backstop::engine::verify::newest_verified(store.as_ref(), &database)
        .await
        .unwrap();
    assert_eq!(newest, Some((manifest.backup_id.clone(), Level::Restore)));
    // The stored result keeps both measured times, as the status and list read them.
    let measured = backstop::status::newest_measured_restore(store.as_ref(), &database)
        .await
        .unwrap()
        .expect("the restore-level result is stored with its measured restore");
    let loaded = measured.loaded_seconds.expect("loaded is stored");
    assert!(loaded <= measured.restore_seconds);
    let key = format!(
        "{}/{}/verification/deep.json",
        manifest.database_id, manifest.backup_id
    );
    let tags = store.get_tags(&key).await.unwrap();
    assert_eq!(
        tags,
        [(
            "backstop-tier".to_string(),
            manifest.tier.as_str().to_string()
        )]
    );
    assert!(scratch_databases(&manifest.database_id).is_empty());
    assert!(
        scratch_databases("killed").is_empty(),
        "the stale scratch database was dropped"
    );
}

/// A fault applied to a copy of a good backup: what it does to the stored files.
type Fault = fn(&Path, &Manifest, &Manifest);

#[tokio::test]
async fn each_fault_is_caught_at_the_cheapest_level_that_can_see_it_with_the_part_named() {
    let db = fresh_database("verify faults");
    shop(&db);
    let dir = tempfile::tempdir().unwrap();
    let good_root = dir.path().join("good");
    let good: Arc<dyn Store> = Arc::new(FileStore::new(good_root.clone()));
    let first = take(&db, &good, &options(&db)).await.unwrap();
    db.psql(
        "INSERT INTO public.orders (customer, total) SELECT 1, g FROM generate_series(1, 500) g;",
    );
    let second = take(&db, &good, &options(&db)).await.unwrap();
    let orders_part = |m: &Manifest| {
        m.parts
            .iter()
            .find(|p| p.blocks().any(|t| t.name == "orders"))
            .unwrap()
            .key
            .clone()
    };

    let faults: [(&str, Fault, Level, Option<String>); 5] = [
        (
            "flipped byte",
            |root, m, _| {
                let path = set_dir(root, m).join(
                    &m.parts
                        .iter()
                        .find(|p| p.blocks().next().is_some())
                        .unwrap()
                        .key,
                );
                let mut bytes = std::fs::read(&path).unwrap();
                let middle = bytes.len() / 2;
                bytes[middle] ^= 0x01;
                std::fs::write(&path, bytes).unwrap();
            },
            Level::Deep,
            first
                .parts
                .iter()
                .find(|p| p.blocks().next().is_some())
                .map(|p| p.key.clone()),
        ),
        (
            "truncated part",
            |root, m, _| {
                let path = set_dir(root, m).join("post-data.sql.zst");
                let bytes = std::fs::read(&path).unwrap();
                std::fs::write(&path, &bytes[..bytes.len() - 10]).unwrap();
            },
            Level::Manifest,
            Some("post-data.sql.zst".into()),
        ),
        (
            "missing part",
            |root, m, _| {
                std::fs::remove_file(set_dir(root, m).join("pre-data.sql.zst")).unwrap();
            },
            Level::Manifest,
            Some("pre-data.sql.zst".into()),
        ),
        (
            "edited manifest",
            |root, m, _| {
                let mut edited = m.clone();
                for part in &mut edited.parts {
                    for table in part.table.iter_mut().chain(part.bundle.iter_mut()) {
                        table.rows += 1;
                    }
                }
                write_manifest(root, &edited);
            },
            Level::Manifest,
            Some("manifest.json".into()),
        ),
        (
            "part swapped with another backup's",
            |root, m, other| {
                let key = &m
                    .parts
                    .iter()
                    .find(|p| p.blocks().any(|t| t.name == "orders"))
                    .unwrap()
                    .key;
                std::fs::copy(set_dir(root, other).join(key), set_dir(root, m).join(key)).unwrap();
            },
            Level::Manifest,
            Some(orders_part(&first)),
        ),
    ];

    for (name, fault, caught_at, part) in faults {
        let root = dir.path().join(name.replace(' ', "-"));
        copy_dir(&good_root, &root);
        fault(&root, &first, &second);
        let store: Arc<dyn Store> = Arc::new(FileStore::new(root));
        for level in LEVELS {
            let result = check(&store, &first, level).await;
            if level < caught_at {
                assert_eq!(
                    result.verdict,
                    Verdict::Passed,
                    "{name} at {level:?}: {:?}",
                    result.findings
                );
                continue;
            }
            assert_eq!(
                result.verdict,
                Verdict::Failed,
                "{name} must fail at {level:?}"
            );
            let named = result
                .findings
                .iter()
                .any(|f| f.part == part || f.problem.contains(part.as_deref().unwrap_or("-")));
            assert!(
                named,
                "{name} at {level:?} should name {part:?}: {:?}",
                result.findings
            );
        }
        assert!(
            scratch_databases(&first.database_id).is_empty(),
            "{name}: a scratch database was left behind"
        );
    }

    // The untouched backup still passes, and the other one too.
    for manifest in [&first, &second] {
        let result = check(&good, manifest, Level::Restore).await;
        assert_eq!(result.verdict, Verdict::Passed, "{:?}", result.findings);
    }
}

#[tokio::test]
async fn the_restore_level_catches_a_manifest_that_lies_even_when_every_checksum_matches() {
    let db = fresh_database("verify lying manifest");
    shop(&db);
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("store");
    let store: Arc<dyn Store> = Arc::new(FileStore::new(root.clone()));
    let manifest = take(&db, &store, &options(&db)).await.unwrap();

    // A manifest written with one table too many in its inventory, sealed as if genuine:
    // every part is intact and matches its SHA-256, so only a restore can tell.
    let mut lying = manifest.clone();
    *lying.inventory.entry("table".into()).or_default() += 1;
    let lying = Manifest {
        seal: None,
        ..lying
    }
    .sealed();
    write_manifest(&root, &lying);
    for level in [Level::Manifest, Level::Deep] {
        assert_eq!(check(&store, &lying, level).await.verdict, Verdict::Passed);
    }
    let result = check(&store, &lying, Level::Restore).await;
    assert_eq!(result.verdict, Verdict::Failed);
    assert!(
        result
            .findings
            .iter()
            .any(|f| f.problem.contains("table object(s) backed up")),
        "{:?}",
        result.findings
    );

    // A manifest that names the wrong row count, sealed: the restore refuses the part.
    let mut lying = manifest.clone();
    let part = lying
        .parts
        .iter_mut()
        .find(|p| p.blocks().next().is_some())
        .unwrap();
    let key = part.key.clone();
    if let Some(table) = part.table.iter_mut().chain(part.bundle.iter_mut()).next() {
        table.rows += 7;
    }
    let lying = Manifest {
        seal: None,
        ..lying
    }
    .sealed();
    write_manifest(&root, &lying);
    assert_eq!(
        check(&store, &lying, Level::Manifest).await.verdict,
        Verdict::Passed
    );
    let result = check(&store, &lying, Level::Restore).await;
    assert_eq!(result.verdict, Verdict::Failed);
    assert!(
        result
            .findings
            .iter()
            .any(|f| f.part.as_deref() == Some(key.as_str()) && f.problem.contains("rows")),
        "{:?}",
        result.findings
    );
    assert!(scratch_databases(&manifest.database_id).is_empty());
}

/// A grant on an extension's function dropped from a backup (its part rewritten and the
/// manifest resealed, so every checksum holds): only the restore level can tell, and it does,
/// because the inventory counts privileges.
#[tokio::test]
async fn the_restore_level_catches_a_grant_dropped_from_an_extension_function() {
    use sha2::Digest;
    let db = fresh_database("verify dropped grant");
    shop(&db);
    db.psql(
        "DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'verify_reader') \
           THEN CREATE ROLE verify_reader NOLOGIN; END IF; END $$; \
         CREATE EXTENSION IF NOT EXISTS pgcrypto; \
         GRANT EXECUTE ON FUNCTION gen_random_bytes(integer) TO verify_reader;",
    );
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("store");
    let store: Arc<dyn Store> = Arc::new(FileStore::new(root.clone()));
    let manifest = take(&db, &store, &options(&db)).await.unwrap();
    assert_eq!(
        check(&store, &manifest, Level::Restore).await.verdict,
        Verdict::Passed
    );

    let mut dropped = manifest.clone();
    let part = dropped
        .parts
        .iter_mut()
        .find(|p| p.kind == backstop::engine::manifest::PartKind::PostData)
        .unwrap();
    let path = set_dir(&root, &manifest).join(&part.key);
    let script =
        String::from_utf8(zstd::decode_all(std::fs::read(&path).unwrap().as_slice()).unwrap())
            .unwrap();
    // The whole item goes, its marker line with it, so that what is left is consistent.
    let marker = format!("-- {} ", manifest.item_marker);
    let mut items: Vec<String> = Vec::new();
    for line in script.split_inclusive('\n') {
        if line.starts_with(&marker) || items.is_empty() {
            items.push(String::new());
        }
        items.last_mut().unwrap().push_str(line);
    }
    let without: String = items
        .into_iter()
        .filter(|item| {
            !item.contains(
                "GRANT EXECUTE ON FUNCTION public.gen_random_bytes(integer) TO verify_reader",
            )
        })
        .collect();
    assert_ne!(without, script, "the backup had the grant to drop");
    let stored = zstd::encode_all(without.as_bytes(), 1).unwrap();
    std::fs::write(&path, &stored).unwrap();
    part.bytes = stored.len() as u64;
    part.sha256 = hex::encode(sha2::Sha256::digest(&stored));
    let dropped = Manifest {
        seal: None,
        ..dropped
    }
    .sealed();
    write_manifest(&root, &dropped);
    for level in [Level::Manifest, Level::Deep] {
        assert_eq!(
            check(&store, &dropped, level).await.verdict,
            Verdict::Passed
        );
    }
    let result = check(&store, &dropped, Level::Restore).await;
    assert_eq!(result.verdict, Verdict::Failed);
    assert!(
        result
            .findings
            .iter()
            .any(|f| f.problem.contains("privilege object(s) backed up")),
        "{:?}",
        result.findings
    );
}

#[tokio::test]
async fn archived_parts_are_not_verifiable_now_rather_than_corrupt() {
    let db = fresh_database("verify archived");
    shop(&db);
    let bucket = moto().new_bucket("verify-archived").await;
    let url: backstop::store::StoreUrl = format!("s3://{bucket}/prod").parse().unwrap();
    let store = backstop::store::open(&url, &moto().sdk_config().await);
    let manifest = take(&db, &store, &options(&db)).await.unwrap();
    let s3 = moto().s3().await;
    let key = format!(
        "prod/{}/{}/{}",
        manifest.database_id, manifest.backup_id, manifest.parts[1].key
    );
    s3.copy_object()
        .bucket(&bucket)
        .key(&key)
        .copy_source(format!("{bucket}/{key}"))
        .storage_class(aws_sdk_s3::types::StorageClass::Glacier)
        .send()
        .await
        .unwrap();
    assert_eq!(
        check(&store, &manifest, Level::Manifest).await.verdict,
        Verdict::Passed
    );
    for level in [Level::Deep, Level::Restore] {
        let result = check(&store, &manifest, level).await;
        assert_eq!(result.verdict, Verdict::NotVerifiableNow, "{level:?}");
        assert!(
            result.findings[0].problem.contains("GLACIER"),
            "{:?}",
            result.findings
        );
    }
}

#[test]
fn the_cli_exits_0_verified_1_failed_2_could_not_verify() {
    let db = fresh_database("verify cli");
    shop(&db);
    let dir = tempfile::tempdir().unwrap();
    let store = format!("file://{}/store", dir.path().display());
    backstop_ok(&["backup", "--db", &db.url(), "--to", &store], &[]);

    let scratch = cluster().url("postgres");
    let args = |level: &'static str| {
        vec![
            "verify".to_string(),
            "--from".into(),
            store.clone(),
            "--database-id".into(),
            db.name.clone(),
            "--level".into(),
            level.into(),
            "--scratch-db".into(),
            scratch.clone(),
            "--json".into(),
        ]
    };
    let run = |level: &'static str| {
        let args = args(level);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        backstop(&args, &[])
    };
    let output = run("restore");
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let result: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(result["verdict"], "passed");
    let (Some(loaded), Some(ready)) = (
        result["loaded_seconds"].as_f64(),
        result["restore_seconds"].as_f64(),
    ) else {
        panic!("loaded and ready are measured: {result}");
    };
    assert!(loaded <= ready, "{result}");
    assert!(result["statistics"].is_string(), "{result}");
    // `list` shows the measured restore of the verified backup, as JSON and in its table.
    let list = backstop_ok(
        &[
            "list",
            "--from",
            &store,
            "--database-id",
            &db.name,
            "--json",
        ],
        &[],
    );
    let list: serde_json::Value = serde_json::from_slice(&list.stdout).unwrap();
    let (Some(listed_loaded), Some(listed_ready)) = (
        list[0]["loaded_seconds"].as_f64(),
        list[0]["restore_seconds"].as_f64(),
    ) else {
        panic!("list shows both measured times: {list}");
    };
    assert!((listed_loaded - loaded).abs() < 1e-6, "{list}");
    assert!((listed_ready - ready).abs() < 1e-6, "{list}");
    let table = backstop_ok(&["list", "--from", &store, "--database-id", &db.name], &[]);
    let table = String::from_utf8_lossy(&table.stdout);
    for expected in [
        "RTO LOADED",
        "RTO READY",
        &backstop::status::page::seconds_text(listed_loaded),
        &backstop::status::page::seconds_text(listed_ready),
    ] {
        assert!(table.contains(expected), "{expected} missing:\n{table}");
    }
    let set = std::fs::read_dir(dir.path().join("store").join(&db.name))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    assert!(set.join("verification/restore.json").exists());
    assert!(!String::from_utf8_lossy(&output.stderr).contains(&cluster().password));

    // A flipped byte in a data part: deep verification fails with exit 1 and names the part.
    let data = std::fs::read_dir(set.join("data"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            p.extension().is_some_and(|e| e == "zst")
                && !p.file_name().unwrap().to_string_lossy().starts_with('.')
        })
        .unwrap();
    let mut bytes = std::fs::read(&data).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x40;
    std::fs::write(&data, bytes).unwrap();
    let output = run("deep");
    assert_eq!(output.status.code(), Some(1));
    let result: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(result["verdict"], "failed");
    let part = format!("data/{}", data.file_name().unwrap().to_string_lossy());
    assert_eq!(result["findings"][0]["part"], part.as_str());

    // No such backup: could not verify, exit 2, one line.
    let line = single_error_line(&backstop(
        &[
            "verify",
            "--from",
            &store,
            "--database-id",
            &db.name,
            "--backup",
            "20200101T000000Z-00000000",
        ],
        &[],
    ));
    assert!(line.contains("not found"), "{line}");
    let output = backstop(
        &[
            "verify",
            "--from",
            &store,
            "--database-id",
            &db.name,
            "--backup",
            "20200101T000000Z-00000000",
        ],
        &[],
    );
    assert_eq!(output.status.code(), Some(2));
    let line = single_error_line(&backstop(
        &[
            "verify",
            "--from",
            &store,
            "--database-id",
            &db.name,
            "--level",
            "restore",
        ],
        &[],
    ));
    assert!(line.contains("--scratch-db"), "{line}");
}
