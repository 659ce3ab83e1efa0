//! A store that counts what it is asked for: the requests a backup or a restore makes (what
//! S3 bills), the objects it writes, and the bytes that flow through it as they flow (what a
//! progress bar and its throughput are drawn from).

use std::fmt::Debug;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use async_trait::async_trait;
use serde::Serialize;
use tokio::io::{AsyncRead, ReadBuf};

use super::{
    ObjectMeta, ObjectReader, PendingUpload, PutOptions, PutReceipt, Store, StoreError, StoreUrl,
    Tags, Versioned, WriteCondition,
};

/// Requests made, by what they did, and objects written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Requests {
    /// Writes: PUTs, and each request of a multipart upload.
    pub writes: u64,
    /// Reads: GETs and HEADs.
    pub reads: u64,
    /// Listings.
    pub lists: u64,
    /// Deletes, tag reads and writes, upload aborts.
    pub other: u64,
    /// Objects stored.
    pub objects_written: u64,
}

impl Requests {
    pub fn total(&self) -> u64 {
        self.writes + self.reads + self.lists + self.other
    }
}

#[derive(Debug, Default)]
struct Counters {
    writes: AtomicU64,
    reads: AtomicU64,
    lists: AtomicU64,
    other: AtomicU64,
    objects_written: AtomicU64,
    bytes_read: Arc<AtomicU64>,
    bytes_written: Arc<AtomicU64>,
}

/// Wraps a store and counts every request made through it.
#[derive(Debug)]
pub struct CountingStore {
    inner: Arc<dyn Store>,
    counters: Counters,
}

impl CountingStore {
    pub fn new(inner: Arc<dyn Store>) -> Self {
        Self {
            inner,
            counters: Counters::default(),
        }
    }

    /// What was asked for so far.
    pub fn requests(&self) -> Requests {
        let c = &self.counters;
        Requests {
            writes: c.writes.load(Ordering::Relaxed),
            reads: c.reads.load(Ordering::Relaxed),
            lists: c.lists.load(Ordering::Relaxed),
            other: c.other.load(Ordering::Relaxed),
            objects_written: c.objects_written.load(Ordering::Relaxed),
        }
    }

    /// Bytes read from objects so far (as the readers consume them).
    pub fn bytes_read(&self) -> u64 {
        self.counters.bytes_read.load(Ordering::Relaxed)
    }

    /// Bytes handed to puts so far (as the uploads consume them).
    pub fn bytes_written(&self) -> u64 {
        self.counters.bytes_written.load(Ordering::Relaxed)
    }

    fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }
}

#[async_trait]
impl Store for CountingStore {
    fn url(&self) -> &StoreUrl {
        self.inner.url()
    }

    async fn put(
        &self,
        key: &str,
        body: &mut (dyn AsyncRead + Send + Unpin),
        options: &PutOptions,
    ) -> Result<PutReceipt, StoreError> {
        let mut counted = CountingReader {
            inner: body,
            count: self.counters.bytes_written.clone(),
        };
        let result = self.inner.put(key, &mut counted, options).await;
        match &result {
            Ok(receipt) => {
                Self::add(&self.counters.writes, receipt.requests);
                Self::add(&self.counters.objects_written, 1);
            }
            Err(_) => Self::add(&self.counters.writes, 1),
        }
        result
    }

    async fn get(&self, key: &str) -> Result<ObjectReader, StoreError> {
        Self::add(&self.counters.reads, 1);
        let reader = self.inner.get(key).await?;
        Ok(Box::new(CountingReader {
            inner: reader,
            count: self.counters.bytes_read.clone(),
        }))
    }

    async fn head(&self, key: &str) -> Result<Option<ObjectMeta>, StoreError> {
        Self::add(&self.counters.reads, 1);
        self.inner.head(key).await
    }

    async fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>, StoreError> {
        let listed = self.inner.list(prefix).await;
        // A listing is a request per thousand keys.
        let pages = listed
            .as_ref()
            .map(|l| l.len() as u64 / 1000 + 1)
            .unwrap_or(1);
        Self::add(&self.counters.lists, pages);
        listed
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        Self::add(&self.counters.other, 1);
        self.inner.delete(key).await
    }

    async fn get_tags(&self, key: &str) -> Result<Tags, StoreError> {
        Self::add(&self.counters.other, 1);
        self.inner.get_tags(key).await
    }

    async fn put_tags(&self, key: &str, tags: &Tags) -> Result<(), StoreError> {
        Self::add(&self.counters.other, 1);
        self.inner.put_tags(key, tags).await
    }

    async fn pending_uploads(&self, prefix: &str) -> Result<Vec<PendingUpload>, StoreError> {
        Self::add(&self.counters.lists, 1);
        self.inner.pending_uploads(prefix).await
    }

    async fn abort_upload(&self, upload: &PendingUpload) -> Result<(), StoreError> {
        Self::add(&self.counters.other, 1);
        self.inner.abort_upload(upload).await
    }

    async fn read_versioned(&self, key: &str) -> Result<Option<Versioned>, StoreError> {
        Self::add(&self.counters.reads, 1);
        self.inner.read_versioned(key).await
    }

    async fn write_if(
        &self,
        key: &str,
        body: &[u8],
        condition: WriteCondition<'_>,
    ) -> Result<Option<String>, StoreError> {
        Self::add(&self.counters.writes, 1);
        self.inner.write_if(key, body, condition).await
    }

    async fn delete_if(&self, key: &str, version: &str) -> Result<bool, StoreError> {
        Self::add(&self.counters.other, 1);
        self.inner.delete_if(key, version).await
    }
}

/// A reader that adds what it reads to a counter.
struct CountingReader<R> {
    inner: R,
    count: Arc<AtomicU64>,
}

impl<R: AsyncRead + Unpin> AsyncRead for CountingReader<R> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        let read = buf.filled().len().saturating_sub(before) as u64;
        self.count.fetch_add(read, Ordering::Relaxed);
        polled
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::FileStore;

    #[tokio::test]
    async fn every_request_is_counted_by_what_it_did() {
        let dir = tempfile::tempdir().unwrap();
        let store = CountingStore::new(Arc::new(FileStore::new(dir.path().to_path_buf())));
        for key in ["a/1", "a/2"] {
            store
                .put(key, &mut &b"x"[..], &PutOptions::default())
                .await
                .unwrap();
        }
        store.list("a/").await.unwrap();
        drop(store.get("a/1").await.unwrap());
        store.delete("a/2").await.unwrap();
        assert_eq!(
            store.requests(),
            Requests {
                writes: 2,
                reads: 1,
                lists: 1,
                other: 1,
                objects_written: 2,
            }
        );
        assert_eq!(store.requests().total(), 5);
    }

    #[tokio::test]
    async fn bytes_are_counted_as_they_flow() {
        let dir = tempfile::tempdir().unwrap();
        let store = CountingStore::new(Arc::new(FileStore::new(dir.path().to_path_buf())));
        let body = vec![7u8; 100_000];
        store
            .put("big", &mut body.as_slice(), &PutOptions::default())
            .await
            .unwrap();
        assert_eq!(store.bytes_written(), 100_000);
        let mut reader = store.get("big").await.unwrap();
        assert_eq!(
            store.bytes_read(),
            0,
            "nothing is read before the reader is"
        );
        let mut half = vec![0u8; 50_000];
        tokio::io::AsyncReadExt::read_exact(&mut reader, &mut half)
            .await
            .unwrap();
        assert_eq!(store.bytes_read(), 50_000);
    }
}
