//! A store that fails on demand, around a real one: the faults a real store will not produce
//! when asked (a lease write refused halfway through a run, a store that turns slow or stalls
//! mid-upload, a listing that fails or leaves an object out, another run changing the store
//! between two reads of one, writes a bucket policy denies). Every other call goes to the wrapped store as it is.

use std::fmt::Debug;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use async_trait::async_trait;
use backstop::store::{
    ObjectMeta, ObjectReader, PendingUpload, PutOptions, PutReceipt, Store, StoreError, StoreUrl,
    Tags, Versioned, WriteCondition,
};
use futures::future::BoxFuture;
use tokio::io::{AsyncRead, ReadBuf};

/// Wraps a store; faults are switched on while it is in use.
#[derive(Debug)]
pub struct FailingStore {
    inner: Arc<dyn Store>,
    state_writes_fail: AtomicBool,
    writes_denied: AtomicBool,
    put_delay_ms: AtomicU64,
    /// Puts so far, and the one (1-based) that fails part way through its body; 0: none.
    puts: AtomicU64,
    failing_put: AtomicU64,
    before_part_read: std::sync::Mutex<Option<Hook>>,
    /// `(after, pause)`: each put stalls once for `pause` after `after` bytes.
    stall: std::sync::Mutex<Option<(usize, Duration)>>,
    listings: std::sync::Mutex<Listings>,
    /// Run before the next manifest put, which then lands `.1` later whatever its caller
    /// does meanwhile (as S3 completes a request its client stopped waiting for).
    manifest_put: std::sync::Mutex<Option<(Hook, Duration)>>,
    /// Deletes still allowed before every delete fails (a run killed there); `u64::MAX`: all.
    deletes_left: AtomicU64,
}

/// What `list` does.
#[derive(Debug, Default, Clone)]
enum Listings {
    #[default]
    Whole,
    /// Fails as S3 does with an internal error.
    Fail,
    /// Leaves out every key containing this.
    Hide(String),
}

/// A one-shot hook; its future is not `Debug`.
struct Hook(BoxFuture<'static, ()>);

impl Debug for Hook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Hook")
    }
}

impl FailingStore {
    pub fn new(inner: Arc<dyn Store>) -> Self {
        Self {
            inner,
            state_writes_fail: AtomicBool::new(false),
            writes_denied: AtomicBool::new(false),
            put_delay_ms: AtomicU64::new(0),
            puts: AtomicU64::new(0),
            failing_put: AtomicU64::new(0),
            before_part_read: std::sync::Mutex::new(None),
            stall: std::sync::Mutex::new(None),
            listings: std::sync::Mutex::new(Listings::Whole),
            manifest_put: std::sync::Mutex::new(None),
            deletes_left: AtomicU64::new(u64::MAX),
        }
    }

    /// After `n` more deletes, every delete fails: a run that deletes in steps (retention)
    /// stopped at that step, as if killed there.
    pub fn stop_deleting_after(&self, n: u64) {
        self.deletes_left.store(n, Ordering::SeqCst);
    }

    /// From now on, conditional writes (leases, claims) fail as a store that stopped
    /// answering would.
    pub fn fail_state_writes(&self) {
        self.state_writes_fail.store(true, Ordering::SeqCst);
    }

    /// From now on, every write (put, conditional write, tags, delete) is refused as S3
    /// refuses what the bucket policy or the credentials do not allow; reads still work.
    pub fn deny_writes(&self) {
        self.writes_denied.store(true, Ordering::SeqCst);
    }

    fn denied(&self, operation: &'static str, key: &str) -> Result<(), StoreError> {
        if self.writes_denied.load(Ordering::SeqCst) {
            return Err(StoreError::AccessDenied {
                store: self.inner.url().to_string(),
                operation,
                key: key.into(),
            });
        }
        Ok(())
    }

    /// From now on, each `put` waits this long before it starts: a slow store.
    pub fn delay_puts(&self, delay: Duration) {
        self.put_delay_ms
            .store(delay.as_millis() as u64, Ordering::SeqCst);
    }

    /// The `n`th put from now (1-based) reads part of its body, then fails as a connection
    /// reset or a full disk would: nothing of it is stored.
    pub fn fail_nth_put(&self, n: u64) {
        self.puts.store(0, Ordering::SeqCst);
        self.failing_put.store(n, Ordering::SeqCst);
    }

    /// Puts made since the last [`FailingStore::fail_nth_put`] (or since the store was made).
    pub fn puts(&self) -> u64 {
        self.puts.load(Ordering::SeqCst)
    }

    /// From now on, each put stalls once for `pause` after `after` bytes of its body: storage
    /// slower than any local server is on demand.
    pub fn stall_puts_after(&self, after: usize, pause: Duration) {
        *self.stall.lock().unwrap() = Some((after, pause));
    }

    /// At the next put of a manifest: runs `hook`, then stores the manifest `lands_after`
    /// later in a task of its own, so the write lands even if its caller stops waiting (as a
    /// request already sent to S3 completes).
    pub fn at_next_manifest_put(&self, hook: BoxFuture<'static, ()>, lands_after: Duration) {
        *self.manifest_put.lock().unwrap() = Some((Hook(hook), lands_after));
    }

    /// From now on, listings fail (an S3 internal error).
    pub fn fail_listings(&self) {
        *self.listings.lock().unwrap() = Listings::Fail;
    }

    /// From now on, listings silently leave out every key containing `part`.
    pub fn hide_from_listings(&self, part: &str) {
        *self.listings.lock().unwrap() = Listings::Hide(part.to_string());
    }

    /// Runs `hook` to its end before the next read of a backup's data part (once): what
    /// another run does while a reader is between a set's manifest and its parts.
    pub fn before_next_part_read(&self, hook: BoxFuture<'static, ()>) {
        *self.before_part_read.lock().unwrap() = Some(Hook(hook));
    }

    fn injected(key: &str) -> StoreError {
        StoreError::Io {
            operation: "conditional write",
            path: key.into(),
            source: std::io::Error::new(std::io::ErrorKind::TimedOut, "injected fault"),
        }
    }
}

#[async_trait]
impl Store for FailingStore {
    fn url(&self) -> &StoreUrl {
        self.inner.url()
    }

    async fn put(
        &self,
        key: &str,
        body: &mut (dyn AsyncRead + Send + Unpin),
        options: &PutOptions,
    ) -> Result<PutReceipt, StoreError> {
        self.denied("PutObject", key)?;
        let nth = self.puts.fetch_add(1, Ordering::SeqCst) + 1;
        if nth == self.failing_put.load(Ordering::SeqCst) {
            let mut some = [0u8; 1024];
            let _ = tokio::io::AsyncReadExt::read(body, &mut some).await;
            return Err(StoreError::Io {
                operation: "write",
                path: key.into(),
                source: std::io::Error::new(
                    std::io::ErrorKind::ConnectionReset,
                    format!("injected fault at put {nth}"),
                ),
            });
        }
        let delay = self.put_delay_ms.load(Ordering::SeqCst);
        if delay > 0 {
            tokio::time::sleep(Duration::from_millis(delay)).await;
        }
        if key.ends_with("/manifest.json") {
            let armed = self.manifest_put.lock().unwrap().take();
            if let Some((Hook(hook), lands_after)) = armed {
                hook.await;
                let mut bytes = Vec::new();
                tokio::io::AsyncReadExt::read_to_end(body, &mut bytes)
                    .await
                    .map_err(|source| StoreError::Io {
                        operation: "read",
                        path: key.into(),
                        source,
                    })?;
                let (inner, key, options) = (self.inner.clone(), key.to_string(), options.clone());
                let landing = tokio::spawn(async move {
                    tokio::time::sleep(lands_after).await;
                    inner.put(&key, &mut bytes.as_slice(), &options).await
                });
                return landing.await.unwrap_or_else(|e| {
                    Err(StoreError::Io {
                        operation: "put",
                        path: "manifest".into(),
                        source: std::io::Error::other(e.to_string()),
                    })
                });
            }
        }
        let stall = *self.stall.lock().unwrap();
        match stall {
            Some((after, pause)) => {
                let mut reader = StallingReader {
                    inner: body,
                    remaining: after,
                    pause,
                    sleep: None,
                };
                self.inner.put(key, &mut reader, options).await
            }
            None => self.inner.put(key, body, options).await,
        }
    }

    async fn get(&self, key: &str) -> Result<ObjectReader, StoreError> {
        if key.contains("/data/") {
            let hook = self.before_part_read.lock().unwrap().take();
            if let Some(Hook(hook)) = hook {
                hook.await;
            }
        }
        self.inner.get(key).await
    }

    async fn head(&self, key: &str) -> Result<Option<ObjectMeta>, StoreError> {
        self.inner.head(key).await
    }

    async fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>, StoreError> {
        let listings = self.listings.lock().unwrap().clone();
        match listings {
            Listings::Whole => self.inner.list(prefix).await,
            Listings::Fail => Err(StoreError::S3 {
                operation: "ListObjectsV2",
                bucket: "b".into(),
                key: prefix.into(),
                message: "InternalError: We encountered an internal error".into(),
                retryable: true,
            }),
            Listings::Hide(part) => Ok(self
                .inner
                .list(prefix)
                .await?
                .into_iter()
                .filter(|o| !o.key.contains(part.as_str()))
                .collect()),
        }
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.denied("DeleteObject", key)?;
        let left =
            self.deletes_left
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| match n {
                    u64::MAX => Some(n),
                    0 => None,
                    n => Some(n - 1),
                });
        if left.is_err() {
            return Err(StoreError::S3 {
                operation: "DeleteObject",
                bucket: "test".into(),
                key: key.into(),
                message: "the run was stopped here".into(),
                retryable: false,
            });
        }
        self.inner.delete(key).await
    }

    async fn get_tags(&self, key: &str) -> Result<Tags, StoreError> {
        self.inner.get_tags(key).await
    }

    async fn put_tags(&self, key: &str, tags: &Tags) -> Result<(), StoreError> {
        self.denied("PutObjectTagging", key)?;
        self.inner.put_tags(key, tags).await
    }

    async fn pending_uploads(&self, prefix: &str) -> Result<Vec<PendingUpload>, StoreError> {
        self.inner.pending_uploads(prefix).await
    }

    async fn abort_upload(&self, upload: &PendingUpload) -> Result<(), StoreError> {
        self.inner.abort_upload(upload).await
    }

    async fn read_versioned(&self, key: &str) -> Result<Option<Versioned>, StoreError> {
        self.inner.read_versioned(key).await
    }

    async fn write_if(
        &self,
        key: &str,
        body: &[u8],
        condition: WriteCondition<'_>,
    ) -> Result<Option<String>, StoreError> {
        self.denied("PutObject", key)?;
        if self.state_writes_fail.load(Ordering::SeqCst) {
            return Err(Self::injected(key));
        }
        self.inner.write_if(key, body, condition).await
    }

    async fn delete_if(&self, key: &str, version: &str) -> Result<bool, StoreError> {
        self.denied("DeleteObject", key)?;
        self.inner.delete_if(key, version).await
    }
}

/// A body that stops for `pause` once `remaining` bytes have been read.
struct StallingReader<'a> {
    inner: &'a mut (dyn AsyncRead + Send + Unpin),
    remaining: usize,
    pause: Duration,
    sleep: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl AsyncRead for StallingReader<'_> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        if self.remaining == 0 {
            let pause = self.pause;
            let sleep = self
                .sleep
                .get_or_insert_with(|| Box::pin(tokio::time::sleep(pause)));
            if sleep.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            self.remaining = usize::MAX;
        }
        let mut chunk = vec![0u8; self.remaining.min(buf.remaining()).min(64 * 1024)];
        let mut limited = ReadBuf::new(&mut chunk);
        let result = Pin::new(&mut *self.inner).poll_read(cx, &mut limited);
        if let Poll::Ready(Ok(())) = &result {
            let read = limited.filled().len();
            buf.put_slice(limited.filled());
            self.remaining = self.remaining.saturating_sub(read);
        }
        result
    }
}
