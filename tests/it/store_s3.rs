//! The s3:// store against moto's server.

use std::time::Duration;

use aws_sdk_s3::types::ChecksumMode;
use backstop::store::{PutOptions, S3Store, Store, StoreError, StoreUrl, open};
use backstop_tests::moto::moto;
use futures::StreamExt;
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use crate::store_contract::{self, read_all};
use crate::support::noise;

const MIB: usize = 1024 * 1024;

async fn store_in_new_bucket(label: &str, prefix: &str) -> (std::sync::Arc<dyn Store>, String) {
    let bucket = moto().new_bucket(label).await;
    let url: StoreUrl = format!("s3://{bucket}/{prefix}").parse().unwrap();
    (open(&url, &moto().sdk_config().await), bucket)
}

async fn pending_uploads_in(bucket: &str) -> usize {
    let s3 = moto().s3().await;
    let listed = s3
        .list_multipart_uploads()
        .bucket(bucket)
        .send()
        .await
        .unwrap();
    listed.uploads().len()
}

#[tokio::test]
async fn s3_store_keeps_the_store_contract() {
    let (store, _) = store_in_new_bucket("contract", "team/prod").await;
    store_contract::round_trip(store.as_ref()).await;
}

#[tokio::test]
async fn s3_store_writes_conditionally() {
    let (store, _) = store_in_new_bucket("conditional", "team").await;
    store_contract::conditional_writes(store.as_ref()).await;
}

#[tokio::test]
async fn s3_store_never_replaces_backup_data() {
    let (store, bucket) = store_in_new_bucket("create-only", "team").await;
    store_contract::create_only_writes(store.as_ref()).await;
    assert_eq!(
        pending_uploads_in(&bucket).await,
        0,
        "the refused upload was aborted"
    );
}

#[tokio::test]
async fn s3_store_without_prefix_keeps_the_store_contract() {
    let (store, _) = store_in_new_bucket("contract-root", "").await;
    store_contract::round_trip(store.as_ref()).await;
}

#[tokio::test]
async fn a_21_mib_stream_is_uploaded_in_parts_with_sha256_checksums() {
    let (store, bucket) = store_in_new_bucket("multipart", "backups").await;
    let data = noise(21 * MIB, 11);
    let options = PutOptions {
        tags: vec![("backstop-tier".into(), "daily".into())],
        create_only: true,
    };
    let receipt = store
        .put("main/s1/data/0001.copy.zst", &mut data.as_slice(), &options)
        .await
        .unwrap();
    assert_eq!(receipt.bytes, data.len() as u64);
    assert_eq!(receipt.sha256, hex::encode(Sha256::digest(&data)));

    let s3 = moto().s3().await;
    let head = s3
        .head_object()
        .bucket(&bucket)
        .key("backups/main/s1/data/0001.copy.zst")
        .checksum_mode(ChecksumMode::Enabled)
        .send()
        .await
        .unwrap();
    let etag = head.e_tag().unwrap_or_default();
    assert!(
        etag.trim_matches('"').ends_with("-3"),
        "expected 3 parts (8+8+5 MiB), ETag {etag}"
    );
    assert!(
        head.checksum_sha256().is_some(),
        "S3 holds no SHA-256 checksum for the object"
    );
    assert_eq!(
        read_all(store.as_ref(), "main/s1/data/0001.copy.zst").await,
        data
    );
    assert_eq!(
        store.get_tags("main/s1/data/0001.copy.zst").await.unwrap(),
        options.tags
    );
    assert_eq!(pending_uploads_in(&bucket).await, 0);
}

#[tokio::test]
async fn listing_pages_through_more_than_1000_keys() {
    let (store, _) = store_in_new_bucket("paginate", "p").await;
    let keys: Vec<String> = (0..1100)
        .map(|i| format!("main/set/data/{i:04}.copy.zst"))
        .collect();
    futures::stream::iter(keys.iter())
        .map(|key| {
            let store = store.clone();
            async move {
                store
                    .put(key, &mut &b"row\n"[..], &PutOptions::default())
                    .await
                    .unwrap()
            }
        })
        .buffer_unordered(32)
        .collect::<Vec<_>>()
        .await;
    store
        .put(
            "main2/set/manifest.json",
            &mut &b"{}"[..],
            &PutOptions::default(),
        )
        .await
        .unwrap();
    let listed = store.list("main/").await.unwrap();
    assert_eq!(listed.len(), 1100);
    let listed_keys: Vec<&str> = listed.iter().map(|o| o.key.as_str()).collect();
    assert_eq!(
        listed_keys,
        keys.iter().map(String::as_str).collect::<Vec<_>>()
    );
    assert_eq!(store.list("").await.unwrap().len(), 1101);
}

#[tokio::test]
async fn a_source_failing_mid_upload_aborts_the_multipart_upload() {
    let (store, bucket) = store_in_new_bucket("source-fails", "b").await;
    // 20 MiB then an error: two parts are already uploaded when the stream breaks.
    store_contract::failed_source_leaves_nothing(store.as_ref(), 20 * MIB).await;
    assert_eq!(pending_uploads_in(&bucket).await, 0);
}

#[tokio::test]
async fn an_upload_aborted_under_our_feet_fails_the_put_and_leaves_nothing() {
    let (store, bucket) = store_in_new_bucket("aborted", "b").await;
    let (mut writer, mut reader) = tokio::io::duplex(MIB);
    let producer_bucket = bucket.clone();
    let producer = tokio::spawn(async move {
        writer.write_all(&noise(9 * MIB, 5)).await.unwrap();
        // The upload exists now: abort it from outside, as a lifecycle rule or operator might.
        let s3 = moto().s3().await;
        let upload = loop {
            let listed = s3
                .list_multipart_uploads()
                .bucket(&producer_bucket)
                .send()
                .await
                .unwrap();
            if let Some(upload) = listed.uploads().first() {
                break upload.clone();
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        s3.abort_multipart_upload()
            .bucket(&producer_bucket)
            .key(upload.key().unwrap())
            .upload_id(upload.upload_id().unwrap())
            .send()
            .await
            .unwrap();
        let _ = writer.write_all(&noise(9 * MIB, 6)).await;
    });
    let error = store
        .put(
            "main/s1/data/0002.copy.zst",
            &mut reader,
            &PutOptions::default(),
        )
        .await
        .unwrap_err();
    producer.await.unwrap();
    let message = error.to_string();
    assert!(matches!(error, StoreError::S3 { .. }), "{message}");
    assert!(
        message.contains("b/main/s1/data/0002.copy.zst"),
        "{message}"
    );
    assert_eq!(
        store.head("main/s1/data/0002.copy.zst").await.unwrap(),
        None
    );
    assert_eq!(pending_uploads_in(&bucket).await, 0);
}

#[tokio::test]
async fn a_cancelled_put_aborts_its_upload() {
    let (store, bucket) = store_in_new_bucket("cancelled", "b").await;
    let (mut writer, mut reader) = tokio::io::duplex(MIB);
    let producer = tokio::spawn(async move {
        writer.write_all(&noise(10 * MIB, 9)).await.unwrap();
        // Then stall, as a slow COPY would, until the put gives up.
        tokio::time::sleep(Duration::from_secs(30)).await;
    });
    let options = PutOptions::default();
    let put = store.put("main/s1/data/0003.copy.zst", &mut reader, &options);
    let outcome = tokio::time::timeout(Duration::from_secs(3), put).await;
    assert!(outcome.is_err(), "the put should still be waiting for data");
    let mut waited = Duration::ZERO;
    while pending_uploads_in(&bucket).await > 0 && waited < Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(100)).await;
        waited += Duration::from_millis(100);
    }
    assert_eq!(
        pending_uploads_in(&bucket).await,
        0,
        "the cancelled upload was not aborted"
    );
    producer.abort();
}

#[tokio::test]
async fn a_missing_bucket_is_named_in_one_line() {
    let url: StoreUrl = "s3://backstop-no-such-bucket/prod".parse().unwrap();
    let store = S3Store::new(
        moto().s3().await,
        "backstop-no-such-bucket".into(),
        "prod".into(),
    );
    assert_eq!(store.url(), &url);
    for error in [
        store
            .put("main/x", &mut &b"data"[..], &PutOptions::default())
            .await
            .unwrap_err(),
        store.list("main/").await.unwrap_err(),
    ] {
        assert!(
            matches!(error, StoreError::BucketNotFound { .. }),
            "{error}"
        );
        let message = error.to_string();
        assert!(
            message.contains("`backstop-no-such-bucket` does not exist"),
            "{message}"
        );
        assert_eq!(message.lines().count(), 1);
    }
}
