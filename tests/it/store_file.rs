//! The file:// store.

use backstop::store::{
    FileStore, PendingUpload, PutOptions, Store, StoreError, StoreUrl, WriteCondition,
    open_from_env,
};

use crate::store_contract;

#[tokio::test]
async fn file_store_keeps_the_store_contract() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileStore::new(dir.path().join("backups"));
    store_contract::round_trip(&store).await;
}

#[tokio::test]
async fn file_store_writes_conditionally() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileStore::new(dir.path().join("backups"));
    store_contract::conditional_writes(&store).await;
}

#[tokio::test]
async fn file_store_never_replaces_backup_data() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileStore::new(dir.path().join("backups"));
    store_contract::create_only_writes(&store).await;
}

#[tokio::test]
async fn file_store_leaves_nothing_when_the_source_fails() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileStore::new(dir.path().to_path_buf());
    store_contract::failed_source_leaves_nothing(&store, 3 * 1024 * 1024).await;
    let leftovers: Vec<_> = walk(dir.path());
    assert!(leftovers.is_empty(), "files left behind: {leftovers:?}");
}

#[tokio::test]
async fn file_store_reports_and_sweeps_partial_files_of_a_crashed_writer() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileStore::new(dir.path().to_path_buf());
    store
        .put(
            "main/s1/manifest.json",
            &mut &b"{}"[..],
            &PutOptions::default(),
        )
        .await
        .unwrap();
    // What a writer killed mid-put leaves: a hidden partial file beside the target.
    std::fs::write(
        dir.path()
            .join("main/s1/.pre-data.sql.zst.partial-0123abcd"),
        b"half",
    )
    .unwrap();

    let listed: Vec<String> = store
        .list("main/")
        .await
        .unwrap()
        .into_iter()
        .map(|o| o.key)
        .collect();
    assert_eq!(
        listed,
        ["main/s1/manifest.json"],
        "partial files must never be listed"
    );
    let pending = store.pending_uploads("main/").await.unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].key, "main/s1/pre-data.sql.zst");
    store.abort_upload(&pending[0]).await.unwrap();
    assert!(store.pending_uploads("").await.unwrap().is_empty());

    let bogus = PendingUpload {
        key: "main/s1/manifest.json".into(),
        upload_id: "manifest.json".into(),
        initiated: None,
    };
    assert!(
        store.abort_upload(&bogus).await.is_err(),
        "only partial files can be aborted"
    );
    assert!(store.head("main/s1/manifest.json").await.unwrap().is_some());
}

#[tokio::test]
async fn file_store_that_is_not_writable_says_which_path() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, b"not a directory").unwrap();
    let url: StoreUrl = format!("file://{}/backups", file.display())
        .parse()
        .unwrap();
    let store = open_from_env(&url).await;
    let error = store
        .put("main/x", &mut &b"data"[..], &PutOptions::default())
        .await
        .unwrap_err();
    assert!(matches!(error, StoreError::NotWritable { .. }), "{error}");
    let message = error.to_string();
    assert!(
        message.contains(&file.display().to_string()) && message.contains("writable"),
        "{message}"
    );
    assert_eq!(message.lines().count(), 1);
}

#[tokio::test]
async fn deleting_the_last_object_of_a_set_removes_its_folder() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileStore::new(dir.path().to_path_buf());
    store
        .put(
            "main/s1/data/0001.copy.zst",
            &mut &b"x"[..],
            &PutOptions::default(),
        )
        .await
        .unwrap();
    store.delete("main/s1/data/0001.copy.zst").await.unwrap();
    assert!(!dir.path().join("main").exists());
    assert!(dir.path().exists(), "the store root itself stays");
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        if entry.path().is_dir() {
            files.extend(walk(&entry.path()));
        } else {
            files.push(entry.path());
        }
    }
    files
}

#[tokio::test]
async fn file_store_objects_are_readable_by_their_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let store = FileStore::new(dir.path().join("backups"));
    store
        .put(
            "main/s1/data.zst",
            &mut &b"rows"[..],
            &PutOptions::default(),
        )
        .await
        .unwrap();
    store
        .write_if("main/state.json", b"{}", WriteCondition::Absent)
        .await
        .unwrap()
        .expect("nothing was there");
    let mode = |relative: &str| {
        std::fs::metadata(dir.path().join("backups").join(relative))
            .unwrap()
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(mode("main/s1/data.zst"), 0o600, "a streamed object");
    assert_eq!(mode("main/state.json"), 0o600, "a conditional write");
    for directory in ["", "main", "main/s1"] {
        assert_eq!(mode(directory), 0o700, "directory {directory:?}");
    }
}

/// A put with tags cancelled at any moment, as a stopped backup cancels its uploads, then the
/// backup's cleanup (list, delete, abort what is pending): nothing is left, not even a tags
/// sidecar. tokio finishes a file operation on its thread after the caller is gone; before, a
/// rename that landed after the listing left `.pre-data.sql.zst.tags.json` behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_put_cancelled_at_any_moment_leaves_nothing_the_cleanup_misses() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileStore::new(dir.path().to_path_buf());
    let options = PutOptions {
        tags: vec![("tier".to_string(), "daily".to_string())],
        ..PutOptions::default()
    };
    let body = vec![7u8; 64 * 1024];
    for step in 0..200u64 {
        let mut reader = &body[..];
        let put = store.put("main/s1/pre-data.sql.zst", &mut reader, &options);
        let _ = tokio::time::timeout(std::time::Duration::from_micros(step * 20), put).await;
        for object in store.list("main/s1/").await.unwrap() {
            store.delete(&object.key).await.unwrap();
        }
        for upload in store.pending_uploads("main/s1/").await.unwrap() {
            store.abort_upload(&upload).await.unwrap();
        }
        let left = walk(dir.path());
        assert!(
            left.is_empty(),
            "a put cancelled after {step}×20 µs left {left:?}"
        );
    }
}

/// A create-only put refused because the object exists leaves the object's tags as they were,
/// whether the refused put carried other tags or none.
#[tokio::test]
async fn a_refused_create_only_put_keeps_the_existing_objects_tags() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileStore::new(dir.path().to_path_buf());
    let tagged = |tier: &str| PutOptions {
        tags: vec![("tier".to_string(), tier.to_string())],
        create_only: true,
    };
    let key = "main/s1/pre-data.sql.zst";
    store
        .put(key, &mut &b"first"[..], &tagged("daily"))
        .await
        .unwrap();
    for refused in [
        tagged("monthly"),
        PutOptions {
            create_only: true,
            ..PutOptions::default()
        },
    ] {
        let error = store
            .put(key, &mut &b"second"[..], &refused)
            .await
            .unwrap_err();
        assert!(matches!(error, StoreError::AlreadyExists { .. }), "{error}");
        assert_eq!(
            store.get_tags(key).await.unwrap(),
            vec![("tier".to_string(), "daily".to_string())]
        );
    }
    let left: Vec<_> = walk(dir.path())
        .into_iter()
        .filter(|p| p.to_string_lossy().contains(".partial-"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}
