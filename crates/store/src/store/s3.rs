//! The `s3://` store on aws-sdk-s3.
//!
//! A put reads the stream part by part: a stream shorter than one part becomes a single
//! `PutObject`; anything longer becomes a multipart upload whose parts are sent while the
//! next one is read, a bounded number in flight, each with its SHA-256 so S3 verifies it.
//! Every failure path aborts the upload, and so does dropping an unfinished put.

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_s3::Client;
use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{ChecksumAlgorithm, CompletedMultipartUpload, CompletedPart, Tag, Tagging};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::task::JoinSet;

use super::{
    ObjectMeta, ObjectReader, PendingUpload, PutOptions, PutReceipt, Store, StoreError, StoreUrl,
    Tags, Versioned, WriteCondition, validate_key,
};

/// S3's smallest allowed part (all but the last).
pub const MIN_PART_SIZE: usize = 5 * 1024 * 1024;
/// S3's largest number of parts in one upload.
pub const MAX_PARTS: i32 = 10_000;
/// The part size we start with; it grows for very long streams (see [`part_size_for`]).
const BASE_PART_SIZE: usize = 8 * 1024 * 1024;
const MAX_PART_SIZE: usize = 128 * 1024 * 1024;
const PARTS_PER_SIZE_STEP: i32 = 2_000;
/// Parts uploading while the next is read; bounds memory to (this + 1) parts per put.
const PARTS_IN_FLIGHT: usize = 2;

/// Size of part `part_number` (1-based) of a stream of unknown length: 8 MiB, doubling every
/// 2 000 parts up to 128 MiB, so 10 000 parts hold ~500 GB while small objects stay cheap.
pub fn part_size_for(part_number: i32) -> usize {
    let step = ((part_number.max(1) - 1) / PARTS_PER_SIZE_STEP) as u32;
    BASE_PART_SIZE
        .saturating_mul(1usize << step.min(8))
        .min(MAX_PART_SIZE)
}

/// A store under an S3 bucket and prefix.
#[derive(Debug, Clone)]
pub struct S3Store {
    client: Client,
    url: StoreUrl,
    bucket: String,
    prefix: String,
}

impl S3Store {
    pub fn new(client: Client, bucket: String, prefix: String) -> Self {
        let url = StoreUrl::S3 {
            bucket: bucket.clone(),
            prefix: prefix.clone(),
        };
        Self {
            client,
            url,
            bucket,
            prefix,
        }
    }

    fn object_key(&self, key: &str) -> Result<String, StoreError> {
        validate_key(key)?;
        Ok(self.join(key))
    }

    fn join(&self, key: &str) -> String {
        if self.prefix.is_empty() {
            key.to_string()
        } else {
            format!("{}/{key}", self.prefix)
        }
    }

    fn relative<'a>(&self, object_key: &'a str) -> Option<&'a str> {
        if self.prefix.is_empty() {
            Some(object_key)
        } else {
            object_key.strip_prefix(&self.prefix)?.strip_prefix('/')
        }
    }

    /// Maps an SDK error to a one-line [`StoreError`].
    fn error<E>(
        &self,
        operation: &'static str,
        key: &str,
        err: SdkError<E, HttpResponse>,
    ) -> StoreError
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let status = err.raw_response().map(|r| r.status().as_u16());
        let code = err.code().map(str::to_string);
        match (code.as_deref(), status) {
            (Some("NoSuchBucket"), _) => {
                return StoreError::BucketNotFound {
                    bucket: self.bucket.clone(),
                };
            }
            (Some("PreconditionFailed"), _) | (_, Some(412))
                if matches!(operation, "PutObject" | "CompleteMultipartUpload") =>
            {
                return StoreError::AlreadyExists {
                    store: self.url.to_string(),
                    key: key.to_string(),
                };
            }
            (Some("NoSuchKey" | "NotFound"), _) | (None, Some(404)) => {
                return StoreError::NotFound {
                    store: self.url.to_string(),
                    key: key.to_string(),
                };
            }
            (Some("AccessDenied" | "InvalidAccessKeyId" | "SignatureDoesNotMatch"), _)
            | (None, Some(403)) => {
                return StoreError::AccessDenied {
                    store: self.url.to_string(),
                    operation,
                    key: key.to_string(),
                };
            }
            _ => {}
        }
        let retryable = match &err {
            SdkError::TimeoutError(_)
            | SdkError::DispatchFailure(_)
            | SdkError::ResponseError(_) => true,
            SdkError::ServiceError(_) => {
                status.is_some_and(|s| s >= 500)
                    || matches!(
                        code.as_deref(),
                        Some("SlowDown" | "Throttling" | "RequestTimeout" | "InternalError")
                    )
            }
            _ => false,
        };
        let message = crate::aws::describe_error(&err);
        StoreError::S3 {
            operation,
            bucket: self.bucket.clone(),
            key: self.join(key),
            message,
            retryable,
        }
    }

    async fn put_single(
        &self,
        key: &str,
        object_key: String,
        data: Bytes,
        options: &PutOptions,
    ) -> Result<PutReceipt, StoreError> {
        let digest = Sha256::digest(&data);
        let bytes = data.len() as u64;
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(object_key)
            .content_length(bytes as i64)
            .checksum_sha256(BASE64.encode(digest))
            .set_tagging(tagging_header(&options.tags))
            .set_if_none_match(options.create_only.then(|| "*".to_string()))
            .body(ByteStream::from(data))
            .send()
            .await
            .map_err(|e| self.error("PutObject", key, e))?;
        Ok(PutReceipt {
            key: key.to_string(),
            bytes,
            sha256: hex::encode(digest),
            requests: 1,
        })
    }

    async fn put_multipart(
        &self,
        key: &str,
        object_key: String,
        first_part: Bytes,
        body: &mut (dyn AsyncRead + Send + Unpin),
        options: &PutOptions,
    ) -> Result<PutReceipt, StoreError> {
        let created = self
            .client
            .create_multipart_upload()
            .bucket(&self.bucket)
            .key(&object_key)
            .checksum_algorithm(ChecksumAlgorithm::Sha256)
            .set_tagging(tagging_header(&options.tags))
            .send()
            .await
            .map_err(|e| self.error("CreateMultipartUpload", key, e))?;
        let upload_id = created.upload_id().unwrap_or_default().to_string();
        let guard = AbortOnDrop {
            client: self.client.clone(),
            bucket: self.bucket.clone(),
            key: object_key.clone(),
            upload_id: Some(upload_id.clone()),
        };
        match self
            .upload_parts(key, &object_key, &upload_id, first_part, body, options)
            .await
        {
            Ok(receipt) => {
                guard.disarm();
                Ok(receipt)
            }
            Err(e) => {
                guard.abort().await;
                Err(e)
            }
        }
    }

    async fn upload_parts(
        &self,
        key: &str,
        object_key: &str,
        upload_id: &str,
        first_part: Bytes,
        body: &mut (dyn AsyncRead + Send + Unpin),
        options: &PutOptions,
    ) -> Result<PutReceipt, StoreError> {
        let mut hasher = Sha256::new();
        let mut bytes = 0u64;
        let mut in_flight: JoinSet<Result<CompletedPart, StoreError>> = JoinSet::new();
        let mut completed = Vec::new();
        let mut part_number = 1;
        let mut data = first_part;
        loop {
            hasher.update(&data);
            bytes += data.len() as u64;
            while in_flight.len() >= PARTS_IN_FLIGHT {
                completed.push(self.join_part(key, &mut in_flight).await?);
            }
            let store = self.clone();
            let (part_key, part_object_key, part_upload_id) = (
                key.to_string(),
                object_key.to_string(),
                upload_id.to_string(),
            );
            in_flight.spawn(async move {
                store
                    .upload_part(
                        &part_key,
                        part_object_key,
                        part_upload_id,
                        part_number,
                        data,
                    )
                    .await
            });

            data = read_part(body, part_size_for(part_number + 1))
                .await
                .map_err(|source| StoreError::Source {
                    key: key.to_string(),
                    source,
                })?;
            if data.is_empty() {
                break;
            }
            if part_number == MAX_PARTS {
                return Err(StoreError::S3 {
                    operation: "UploadPart",
                    bucket: self.bucket.clone(),
                    key: object_key.to_string(),
                    message: format!(
                        "the stream exceeds {MAX_PARTS} parts; split the object into smaller ones"
                    ),
                    retryable: false,
                });
            }
            part_number += 1;
        }
        while !in_flight.is_empty() {
            completed.push(self.join_part(key, &mut in_flight).await?);
        }
        completed.sort_by_key(|p| p.part_number());
        let completed_parts = completed.len();

        self.client
            .complete_multipart_upload()
            .bucket(&self.bucket)
            .key(object_key)
            .upload_id(upload_id)
            .set_if_none_match(options.create_only.then(|| "*".to_string()))
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(completed))
                    .build(),
            )
            .send()
            .await
            .map_err(|e| self.error("CompleteMultipartUpload", key, e))?;
        Ok(PutReceipt {
            key: key.to_string(),
            bytes,
            sha256: hex::encode(hasher.finalize()),
            // CreateMultipartUpload, every part, CompleteMultipartUpload.
            requests: completed_parts as u64 + 2,
        })
    }

    async fn join_part(
        &self,
        key: &str,
        in_flight: &mut JoinSet<Result<CompletedPart, StoreError>>,
    ) -> Result<CompletedPart, StoreError> {
        match in_flight.join_next().await {
            Some(Ok(result)) => result,
            Some(Err(join_error)) => Err(StoreError::S3 {
                operation: "UploadPart",
                bucket: self.bucket.clone(),
                key: self.join(key),
                message: format!("the part upload task failed: {join_error}"),
                retryable: false,
            }),
            None => Err(StoreError::S3 {
                operation: "UploadPart",
                bucket: self.bucket.clone(),
                key: self.join(key),
                message: "no part upload was in flight".to_string(),
                retryable: false,
            }),
        }
    }

    async fn upload_part(
        &self,
        key: &str,
        object_key: String,
        upload_id: String,
        part_number: i32,
        data: Bytes,
    ) -> Result<CompletedPart, StoreError> {
        let checksum = BASE64.encode(Sha256::digest(&data));
        let output = self
            .client
            .upload_part()
            .bucket(&self.bucket)
            .key(object_key)
            .upload_id(upload_id)
            .part_number(part_number)
            .content_length(data.len() as i64)
            .checksum_sha256(&checksum)
            .body(ByteStream::from(data))
            .send()
            .await
            .map_err(|e| self.error("UploadPart", key, e))?;
        Ok(CompletedPart::builder()
            .part_number(part_number)
            .set_e_tag(output.e_tag().map(str::to_string))
            .checksum_sha256(checksum)
            .build())
    }
}

/// Aborts a multipart upload unless disarmed: explicitly on error paths, and from `Drop`
/// (on a spawned task) when the put future is cancelled mid-upload.
struct AbortOnDrop {
    client: Client,
    bucket: String,
    key: String,
    upload_id: Option<String>,
}

impl AbortOnDrop {
    fn disarm(mut self) {
        self.upload_id = None;
    }

    async fn abort(mut self) {
        if let Some(upload_id) = self.upload_id.take() {
            abort_upload(&self.client, &self.bucket, &self.key, &upload_id).await;
        }
    }
}

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        let Some(upload_id) = self.upload_id.take() else {
            return;
        };
        let (client, bucket, key) = (self.client.clone(), self.bucket.clone(), self.key.clone());
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime
                    .spawn(async move { abort_upload(&client, &bucket, &key, &upload_id).await });
            }
            Err(_) => tracing::warn!(
                bucket,
                key,
                upload_id,
                "multipart upload left pending: no runtime to abort it"
            ),
        }
    }
}

async fn abort_upload(client: &Client, bucket: &str, key: &str, upload_id: &str) {
    let result = client
        .abort_multipart_upload()
        .bucket(bucket)
        .key(key)
        .upload_id(upload_id)
        .send()
        .await;
    match result {
        Ok(_) => tracing::debug!(bucket, key, upload_id, "multipart upload aborted"),
        Err(e) if e.code() == Some("NoSuchUpload") => {}
        Err(e) => tracing::warn!(
            bucket, key, upload_id, error = %DisplayErrorContext(&e),
            "could not abort multipart upload; a bucket lifecycle rule or `backstop prune` will remove it"
        ),
    }
}

/// Reads up to `size` bytes; fewer only at the end of the stream.
async fn read_part(
    body: &mut (dyn AsyncRead + Send + Unpin),
    size: usize,
) -> std::io::Result<Bytes> {
    let mut buffer = Vec::with_capacity(size);
    body.take(size as u64).read_to_end(&mut buffer).await?;
    Ok(Bytes::from(buffer))
}

fn tagging_header(tags: &Tags) -> Option<String> {
    if tags.is_empty() {
        return None;
    }
    let mut encoder = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in tags {
        encoder.append_pair(k, v);
    }
    Some(encoder.finish())
}

fn to_offset(dt: &aws_sdk_s3::primitives::DateTime) -> Option<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp(dt.secs())
        .ok()
        .map(|t| t + Duration::from_nanos(u64::from(dt.subsec_nanos())))
}

#[async_trait]
impl Store for S3Store {
    fn url(&self) -> &StoreUrl {
        &self.url
    }

    async fn put(
        &self,
        key: &str,
        body: &mut (dyn AsyncRead + Send + Unpin),
        options: &PutOptions,
    ) -> Result<PutReceipt, StoreError> {
        let object_key = self.object_key(key)?;
        let first_size = part_size_for(1);
        let first = read_part(body, first_size)
            .await
            .map_err(|source| StoreError::Source {
                key: key.to_string(),
                source,
            })?;
        if first.len() < first_size {
            self.put_single(key, object_key, first, options).await
        } else {
            self.put_multipart(key, object_key, first, body, options)
                .await
        }
    }

    async fn get(&self, key: &str) -> Result<ObjectReader, StoreError> {
        let object_key = self.object_key(key)?;
        let output = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(object_key)
            .send()
            .await
            .map_err(|e| self.error("GetObject", key, e))?;
        Ok(Box::new(output.body.into_async_read()))
    }

    async fn head(&self, key: &str) -> Result<Option<ObjectMeta>, StoreError> {
        let object_key = self.object_key(key)?;
        match self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(object_key)
            .send()
            .await
        {
            Ok(output) => Ok(Some(ObjectMeta {
                key: key.to_string(),
                size: output.content_length().unwrap_or_default().max(0) as u64,
                last_modified: output.last_modified().and_then(to_offset),
                storage_class: output.storage_class().map(|c| c.as_str().to_string()),
                retained_until: output.object_lock_retain_until_date().and_then(to_offset),
                legal_hold: output.object_lock_legal_hold_status()
                    == Some(&aws_sdk_s3::types::ObjectLockLegalHoldStatus::On),
            })),
            Err(e) => match self.error("HeadObject", key, e) {
                StoreError::NotFound { .. } => Ok(None),
                other => Err(other),
            },
        }
    }

    async fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>, StoreError> {
        let mut pages = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(self.join(prefix))
            .into_paginator()
            .send();
        let mut objects = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| self.error("ListObjectsV2", prefix, e))?;
            for object in page.contents() {
                let Some(key) = object.key().and_then(|k| self.relative(k)) else {
                    continue;
                };
                objects.push(ObjectMeta {
                    storage_class: object.storage_class().map(|c| c.as_str().to_string()),
                    ..ObjectMeta::listed(
                        key.to_string(),
                        object.size().unwrap_or_default().max(0) as u64,
                        object.last_modified().and_then(to_offset),
                    )
                });
            }
        }
        objects.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(objects)
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        let object_key = self.object_key(key)?;
        self.client
            .delete_object()
            .bucket(&self.bucket)
            .key(object_key)
            .send()
            .await
            .map_err(|e| self.error("DeleteObject", key, e))?;
        Ok(())
    }

    async fn get_tags(&self, key: &str) -> Result<Tags, StoreError> {
        let object_key = self.object_key(key)?;
        let output = self
            .client
            .get_object_tagging()
            .bucket(&self.bucket)
            .key(object_key)
            .send()
            .await
            .map_err(|e| self.error("GetObjectTagging", key, e))?;
        Ok(output
            .tag_set()
            .iter()
            .map(|t| (t.key().to_string(), t.value().to_string()))
            .collect())
    }

    async fn put_tags(&self, key: &str, tags: &Tags) -> Result<(), StoreError> {
        let object_key = self.object_key(key)?;
        let tag_set = tags
            .iter()
            .map(|(k, v)| Tag::builder().key(k).value(v).build())
            .collect::<Result<Vec<_>, _>>()
            .and_then(|set| Tagging::builder().set_tag_set(Some(set)).build())
            .map_err(|e| StoreError::S3 {
                operation: "PutObjectTagging",
                bucket: self.bucket.clone(),
                key: self.join(key),
                message: e.to_string(),
                retryable: false,
            })?;
        self.client
            .put_object_tagging()
            .bucket(&self.bucket)
            .key(object_key)
            .tagging(tag_set)
            .send()
            .await
            .map_err(|e| self.error("PutObjectTagging", key, e))?;
        Ok(())
    }

    async fn pending_uploads(&self, prefix: &str) -> Result<Vec<PendingUpload>, StoreError> {
        let mut uploads = Vec::new();
        let (mut key_marker, mut upload_id_marker) = (None, None);
        loop {
            let page = self
                .client
                .list_multipart_uploads()
                .bucket(&self.bucket)
                .prefix(self.join(prefix))
                .set_key_marker(key_marker.take())
                .set_upload_id_marker(upload_id_marker.take())
                .send()
                .await
                .map_err(|e| self.error("ListMultipartUploads", prefix, e))?;
            for upload in page.uploads() {
                let (Some(key), Some(upload_id)) = (
                    upload.key().and_then(|k| self.relative(k)),
                    upload.upload_id(),
                ) else {
                    continue;
                };
                uploads.push(PendingUpload {
                    key: key.to_string(),
                    upload_id: upload_id.to_string(),
                    initiated: upload.initiated().and_then(to_offset),
                });
            }
            if page.is_truncated() != Some(true) {
                break;
            }
            key_marker = page.next_key_marker().map(str::to_string);
            upload_id_marker = page.next_upload_id_marker().map(str::to_string);
            if key_marker.is_none() && upload_id_marker.is_none() {
                break;
            }
        }
        Ok(uploads)
    }

    async fn abort_upload(&self, upload: &PendingUpload) -> Result<(), StoreError> {
        let object_key = self.object_key(&upload.key)?;
        let result = self
            .client
            .abort_multipart_upload()
            .bucket(&self.bucket)
            .key(object_key)
            .upload_id(&upload.upload_id)
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) if e.code() == Some("NoSuchUpload") => Ok(()),
            Err(e) => Err(self.error("AbortMultipartUpload", &upload.key, e)),
        }
    }

    async fn read_versioned(&self, key: &str) -> Result<Option<Versioned>, StoreError> {
        let object_key = self.object_key(key)?;
        let output = match self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(object_key)
            .send()
            .await
        {
            Ok(output) => output,
            Err(e) => {
                return match self.error("GetObject", key, e) {
                    StoreError::NotFound { .. } => Ok(None),
                    other => Err(other),
                };
            }
        };
        let version = output.e_tag().unwrap_or_default().to_string();
        let body = output
            .body
            .collect()
            .await
            .map_err(|e| StoreError::S3 {
                operation: "GetObject",
                bucket: self.bucket.clone(),
                key: self.join(key),
                message: e.to_string(),
                retryable: true,
            })?
            .to_vec();
        Ok(Some(Versioned { body, version }))
    }

    async fn write_if(
        &self,
        key: &str,
        body: &[u8],
        condition: WriteCondition<'_>,
    ) -> Result<Option<String>, StoreError> {
        let object_key = self.object_key(key)?;
        let request = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(object_key)
            .body(ByteStream::from(body.to_vec()));
        let request = match condition {
            WriteCondition::Absent => request.if_none_match("*"),
            WriteCondition::Version(version) => request.if_match(version),
        };
        match request.send().await {
            Ok(output) => Ok(Some(output.e_tag().unwrap_or_default().to_string())),
            Err(e) if lost_condition(&e) => Ok(None),
            // `If-Match` on an object deleted meanwhile: the condition did not hold either.
            Err(e) => match self.error("PutObject", key, e) {
                StoreError::NotFound { .. } => Ok(None),
                other => Err(other),
            },
        }
    }

    async fn delete_if(&self, key: &str, version: &str) -> Result<bool, StoreError> {
        let object_key = self.object_key(key)?;
        let result = self
            .client
            .delete_object()
            .bucket(&self.bucket)
            .key(object_key)
            .if_match(version)
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e) if lost_condition(&e) => Ok(false),
            Err(e) => match self.error("DeleteObject", key, e) {
                StoreError::NotFound { .. } => Ok(false),
                other => Err(other),
            },
        }
    }
}

/// Whether a conditional request failed because its condition did not hold (412), or because
/// a concurrent conditional request on the same key won (409).
fn lost_condition<E: ProvideErrorMetadata>(error: &SdkError<E, HttpResponse>) -> bool {
    let status = error.raw_response().map(|r| r.status().as_u16());
    matches!(status, Some(412 | 409))
        || matches!(
            error.code(),
            Some("PreconditionFailed" | "ConditionalRequestConflict")
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn part_sizes_respect_s3_limits_and_cover_large_streams() {
        assert_eq!(part_size_for(1), 8 * 1024 * 1024);
        assert_eq!(part_size_for(2_000), 8 * 1024 * 1024);
        assert_eq!(part_size_for(2_001), 16 * 1024 * 1024);
        assert!((1..=MAX_PARTS).all(|n| part_size_for(n) >= MIN_PART_SIZE));
        assert!((1..=MAX_PARTS).all(|n| part_size_for(n) <= MAX_PART_SIZE));
        let capacity: u64 = (1..=MAX_PARTS).map(|n| part_size_for(n) as u64).sum();
        assert!(
            capacity > 400 * 1024 * 1024 * 1024,
            "10 000 parts hold only {capacity} bytes"
        );
    }

    #[test]
    fn tags_are_url_encoded() {
        let tags = vec![
            ("backstop-tier".to_string(), "daily".to_string()),
            ("a b".into(), "c&d".into()),
        ];
        assert_eq!(
            tagging_header(&tags).unwrap(),
            "backstop-tier=daily&a+b=c%26d"
        );
        assert_eq!(tagging_header(&Vec::new()), None);
    }
}
