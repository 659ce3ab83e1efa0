//! The behaviour every store must have, run against each implementation.

use backstop::store::{PutOptions, Store, StoreError};
use sha2::{Digest, Sha256};
use tokio::io::AsyncReadExt;

use crate::support::noise;

pub async fn read_all(store: &dyn Store, key: &str) -> Vec<u8> {
    let mut bytes = Vec::new();
    store
        .get(key)
        .await
        .unwrap()
        .read_to_end(&mut bytes)
        .await
        .unwrap();
    bytes
}

/// put/get/head/list/tags/delete round trip, replacing objects, absent objects.
pub async fn round_trip(store: &dyn Store) {
    let data = noise(300_000, 7);
    let options = PutOptions {
        tags: vec![("backstop-tier".into(), "weekly".into())],
        create_only: false,
    };
    let receipt = store
        .put("main/set-1/part.bin", &mut data.as_slice(), &options)
        .await
        .unwrap();
    assert_eq!(receipt.bytes, data.len() as u64);
    assert_eq!(receipt.sha256, hex::encode(Sha256::digest(&data)));

    assert_eq!(read_all(store, "main/set-1/part.bin").await, data);
    let meta = store
        .head("main/set-1/part.bin")
        .await
        .unwrap()
        .expect("object exists");
    assert_eq!(meta.size, data.len() as u64);
    assert!(meta.last_modified.is_some());
    assert_eq!(
        store.get_tags("main/set-1/part.bin").await.unwrap(),
        options.tags
    );

    store
        .put_tags(
            "main/set-1/part.bin",
            &vec![("backstop-tier".into(), "monthly".into())],
        )
        .await
        .unwrap();
    assert_eq!(
        store.get_tags("main/set-1/part.bin").await.unwrap(),
        vec![("backstop-tier".to_string(), "monthly".to_string())]
    );

    store
        .put(
            "main/set-1/manifest.json",
            &mut &b"{}"[..],
            &PutOptions::default(),
        )
        .await
        .unwrap();
    store
        .put(
            "main/set-10/manifest.json",
            &mut &b"{}"[..],
            &PutOptions::default(),
        )
        .await
        .unwrap();
    store
        .put(
            "other/set-2/manifest.json",
            &mut &b"{}"[..],
            &PutOptions::default(),
        )
        .await
        .unwrap();
    let keys = |objects: Vec<backstop::store::ObjectMeta>| -> Vec<String> {
        objects.into_iter().map(|o| o.key).collect()
    };
    assert_eq!(
        keys(store.list("main/").await.unwrap()),
        [
            "main/set-1/manifest.json",
            "main/set-1/part.bin",
            "main/set-10/manifest.json"
        ]
    );
    assert_eq!(keys(store.list("main/set-1/").await.unwrap()).len(), 2);
    assert_eq!(
        keys(store.list("main/set-1").await.unwrap()).len(),
        3,
        "a prefix is not a folder"
    );
    assert_eq!(keys(store.list("").await.unwrap()).len(), 4);
    assert!(store.list("nothing-here/").await.unwrap().is_empty());

    // A put replaces the object whole.
    store
        .put(
            "main/set-1/part.bin",
            &mut &b"short"[..],
            &PutOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(read_all(store, "main/set-1/part.bin").await, b"short");

    store.delete("main/set-1/part.bin").await.unwrap();
    store
        .delete("main/set-1/part.bin")
        .await
        .expect("deleting an absent object succeeds");
    assert_eq!(store.head("main/set-1/part.bin").await.unwrap(), None);
    match store.get("main/set-1/part.bin").await {
        Err(e @ StoreError::NotFound { .. }) => {
            assert!(e.to_string().contains("main/set-1/part.bin"))
        }
        Err(other) => panic!("expected NotFound, got {other}"),
        Ok(_) => panic!("expected NotFound, got an object"),
    }
    assert!(store.pending_uploads("").await.unwrap().is_empty());
}

/// A stream that fails part-way stores nothing and leaves no pending upload.
pub async fn failed_source_leaves_nothing(store: &dyn Store, fail_after: usize) {
    let reader = FailingReader {
        data: noise(fail_after, 3),
        position: 0,
    };
    let mut reader = reader;
    let error = store
        .put(
            "main/set-x/data/0001.copy.zst",
            &mut reader,
            &PutOptions::default(),
        )
        .await
        .expect_err("a failing source must fail the put");
    assert!(matches!(error, StoreError::Source { .. }), "{error}");
    assert!(
        error.to_string().contains("main/set-x/data/0001.copy.zst"),
        "{error}"
    );
    assert_eq!(
        store.head("main/set-x/data/0001.copy.zst").await.unwrap(),
        None
    );
    assert!(store.list("main/set-x/").await.unwrap().is_empty());
    assert!(
        store.pending_uploads("").await.unwrap().is_empty(),
        "a pending upload was left behind"
    );
}

/// Yields `data`, then an I/O error (like a COPY stream cut off by a killed backend).
pub struct FailingReader {
    pub data: Vec<u8>,
    pub position: usize,
}

impl tokio::io::AsyncRead for FailingReader {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let remaining = self.data.len() - self.position;
        if remaining == 0 {
            return std::task::Poll::Ready(Err(std::io::Error::new(
                std::io::ErrorKind::ConnectionReset,
                "server closed the connection unexpectedly",
            )));
        }
        let n = remaining.min(buf.remaining()).min(64 * 1024);
        let start = self.position;
        buf.put_slice(&self.data[start..start + n]);
        self.position += n;
        std::task::Poll::Ready(Ok(()))
    }
}

/// Conditional writes and deletes: exactly one of many concurrent creators wins, a stale
/// version can neither overwrite nor delete, and the current version can do both.
pub async fn conditional_writes(store: &dyn Store) {
    use backstop::store::WriteCondition::{Absent, Version};
    let key = "_backstop/locks/main/backup";
    assert_eq!(store.read_versioned(key).await.unwrap(), None);

    let attempts = (0..8u8).map(|i| async move { store.write_if(key, &[i], Absent).await });
    let results = futures::future::join_all(attempts).await;
    let winners: Vec<_> = results
        .into_iter()
        .map(|r| r.unwrap())
        .filter(Option::is_some)
        .collect();
    assert_eq!(winners.len(), 1, "exactly one creator wins: {winners:?}");
    let first = store.read_versioned(key).await.unwrap().unwrap();
    assert_eq!(Some(&first.version), winners[0].as_ref());

    let second = store
        .write_if(key, b"taken over", Version(&first.version))
        .await
        .unwrap()
        .expect("the current version may be replaced");
    assert_ne!(second, first.version);
    assert_eq!(
        store
            .write_if(key, b"stale", Version(&first.version))
            .await
            .unwrap(),
        None,
        "a stale version must not overwrite"
    );
    assert!(!store.delete_if(key, &first.version).await.unwrap());
    let now = store.read_versioned(key).await.unwrap().unwrap();
    assert_eq!(now.body, b"taken over");
    assert!(store.delete_if(key, &now.version).await.unwrap());
    assert_eq!(store.read_versioned(key).await.unwrap(), None);
    assert!(!store.delete_if(key, &now.version).await.unwrap());
    assert_eq!(
        store
            .write_if(key, b"x", Version(&now.version))
            .await
            .unwrap(),
        None,
        "replacing an absent object is a lost condition"
    );
    assert!(
        store
            .write_if(key, b"again", Absent)
            .await
            .unwrap()
            .is_some()
    );
    assert!(store.list("_backstop/").await.unwrap().len() == 1);
}

/// A create-only put stores a new object (single and multipart), and refuses to replace an
/// existing one, leaving it intact: backup data is written once.
pub async fn create_only_writes(store: &dyn Store) {
    let create_only = PutOptions {
        tags: Vec::new(),
        create_only: true,
    };
    let first = noise(1000, 3);
    store
        .put(
            "main/set-9/data/0001.copy.zst",
            &mut first.as_slice(),
            &create_only,
        )
        .await
        .unwrap();
    let error = store
        .put(
            "main/set-9/data/0001.copy.zst",
            &mut &b"garbage"[..],
            &create_only,
        )
        .await
        .unwrap_err();
    assert!(matches!(error, StoreError::AlreadyExists { .. }), "{error}");
    assert!(error.to_string().contains("never replaced"), "{error}");
    assert_eq!(
        read_all(store, "main/set-9/data/0001.copy.zst").await,
        first
    );

    // Past the single-request size, through a multipart upload.
    let big = noise(9 * 1024 * 1024, 5);
    store
        .put(
            "main/set-9/data/0002.copy.zst",
            &mut big.as_slice(),
            &create_only,
        )
        .await
        .unwrap();
    let error = store
        .put(
            "main/set-9/data/0002.copy.zst",
            &mut noise(9 * 1024 * 1024, 6).as_slice(),
            &create_only,
        )
        .await
        .unwrap_err();
    assert!(matches!(error, StoreError::AlreadyExists { .. }), "{error}");
    assert_eq!(read_all(store, "main/set-9/data/0002.copy.zst").await, big);
}
