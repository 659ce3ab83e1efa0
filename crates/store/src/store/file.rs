//! The `file://` store: a directory tree, written crash-safely.
//!
//! A put streams into a hidden `.<name>.partial-<id>` file beside the target, fsyncs it,
//! renames it into place and fsyncs the directory, so a reader sees the whole object or
//! nothing. Tags live in a hidden `.<name>.tags.json` beside the object, put in place right
//! after it on the same thread (a refused create-only put touches neither). Hidden names never
//! appear in listings; leftover partial files are reported as pending uploads. A listing waits
//! for the write steps of puts and tag writes already running, which finish even when their
//! caller was cancelled: the cleanup after a stopped put sees all of it. Conditional writes and
//! deletes hold an advisory lock on a hidden `.<name>.lock` beside the object while they
//! compare and swap; an object's version is the SHA-256 of its content. Objects are created
//! 0600 and directories 0700 (less if the umask says so): a set holds a database.

use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::sync::{OwnedRwLockReadGuard, RwLock};

use super::{
    ObjectMeta, ObjectReader, PendingUpload, PutOptions, PutReceipt, Store, StoreError, StoreUrl,
    Tags, Versioned, WriteCondition, validate_key,
};

const COPY_BUFFER: usize = 256 * 1024;
const PRIVATE_FILE: u32 = 0o600;
const PRIVATE_DIR: u32 = 0o700;
const PARTIAL_MARKER: &str = ".partial-";

/// A store in a local directory.
#[derive(Debug, Clone)]
pub struct FileStore {
    url: StoreUrl,
    root: PathBuf,
    /// Held (shared) by every write step that runs on a blocking thread; a listing takes it
    /// whole. tokio finishes a file operation on its thread even when the caller was cancelled,
    /// so without this a stopped backup's last rename could land after the cleanup that
    /// listed its set.
    writing: Arc<RwLock<()>>,
}

impl FileStore {
    pub fn new(root: PathBuf) -> Self {
        Self {
            url: StoreUrl::File { root: root.clone() },
            root,
            writing: Arc::default(),
        }
    }

    fn path_of(&self, key: &str) -> Result<PathBuf, StoreError> {
        validate_key(key)?;
        Ok(self.root.join(key))
    }

    fn not_found(&self, key: &str) -> StoreError {
        StoreError::NotFound {
            store: self.url.to_string(),
            key: key.to_string(),
        }
    }
}

/// Creates `path` (or truncates it) readable and writable by its owner only.
fn create_private(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(PRIVATE_FILE)
        .open(path)
}

/// Creates `dir` and its missing parents, each reachable by its owner only.
fn create_private_dirs(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(PRIVATE_DIR)
        .create(dir)
}

/// Removes a temporary file unless the write it belongs to completed.
struct TempFileGuard {
    path: Option<PathBuf>,
}

impl TempFileGuard {
    fn disarm(&mut self) {
        self.path = None;
    }
}

impl Drop for TempFileGuard {
    fn drop(&mut self) {
        if let Some(path) = self.path.take() {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// A partial file opened for a put, removed unless the put places it. Fields drop in order:
/// if the put was cancelled while opening, the file goes before the hold on the store's writes.
struct Started {
    file: std::fs::File,
    guard: TempFileGuard,
    writing: OwnedRwLockReadGuard<()>,
}

/// Runs `work` on a blocking thread. Cancelling the caller does not stop it: what it owns
/// (a temporary file's guard, a hold on the store's writes) is dropped when it ends.
async fn on_thread<T: Send + 'static>(
    shown: PathBuf,
    work: impl FnOnce() -> std::io::Result<T> + Send + 'static,
) -> std::io::Result<T> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| std::io::Error::other(format!("{}: {e}", shown.display())))
        .and_then(|r| r)
}

/// Puts the written partial file (owned by `guard`) in place as `path`, then its tags sidecar
/// (written to a partial file of its own first; a stale one removed when there are none), and
/// syncs the directory. A refused create-only placement (the object exists) touches neither the
/// object nor its sidecar, and leaves no partial file behind. The whole runs on one thread
/// while listings wait, so no listing sees the object without its tags.
fn place(
    mut guard: TempFileGuard,
    path: &Path,
    tags: Option<&[u8]>,
    create_only: bool,
) -> std::io::Result<()> {
    let Some(temp) = guard.path.clone() else {
        return Err(std::io::Error::other("the partial file is gone"));
    };
    let tags_file = tags_path(path);
    let tags_temp = match tags {
        Some(tags) => Some(write_partial(&tags_file, tags)?),
        None => None,
    };
    let placed = if create_only {
        // A hard link fails if the name exists: create-only, atomically.
        std::fs::hard_link(&temp, path)
    } else {
        std::fs::rename(&temp, path)
    };
    if let Err(e) = placed {
        drop(tags_temp);
        return Err(e);
    }
    if !create_only {
        guard.disarm();
    }
    drop(guard);
    match tags_temp {
        Some(mut partial) => {
            if let Some(written) = partial.path.clone() {
                std::fs::rename(&written, &tags_file)?;
                partial.disarm();
            }
        }
        None => match std::fs::remove_file(&tags_file) {
            Err(e) if e.kind() != ErrorKind::NotFound => return Err(e),
            _ => {}
        },
    }
    std::fs::File::open(path.parent().unwrap_or(Path::new(".")))?.sync_all()
}

/// Writes `bytes` to a partial file beside `path`, synced; the guard removes it unless taken.
fn write_partial(path: &Path, bytes: &[u8]) -> std::io::Result<TempFileGuard> {
    use std::io::Write;
    let temp = hidden_sibling(path, &format!("{PARTIAL_MARKER}{}", random_id()));
    let guard = TempFileGuard {
        path: Some(temp.clone()),
    };
    let mut file = create_private(&temp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    Ok(guard)
}

/// Writes `bytes` to `path` through a partial file and a rename, on this thread.
fn write_atomically_blocking(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut partial = write_partial(path, bytes)?;
    if let Some(written) = partial.path.clone() {
        std::fs::rename(&written, path)?;
        partial.disarm();
    }
    Ok(())
}

fn hidden_sibling(path: &Path, suffix: &str) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}{suffix}"))
}

fn tags_path(path: &Path) -> PathBuf {
    hidden_sibling(path, ".tags.json")
}

fn modified(meta: &std::fs::Metadata) -> Option<OffsetDateTime> {
    meta.modified().ok().map(OffsetDateTime::from)
}

/// Proves that `file` holds `expected` bytes on disk: the last buffered write finished
/// (tokio reports its error on the next flush, and `sync_all` alone would not), the data is
/// synced, and the file's length is what was written. A full disk is an error here, never an
/// empty or short object.
async fn prove_written(file: &mut tokio::fs::File, expected: u64) -> std::io::Result<()> {
    file.flush().await?;
    file.sync_all().await?;
    let length = file.metadata().await?.len();
    if length != expected {
        return Err(std::io::Error::other(format!(
            "{length} bytes on disk after writing {expected}"
        )));
    }
    Ok(())
}

fn random_id() -> String {
    format!("{:016x}", rand::random::<u64>())
}

/// Walks `dir` recursively; returns (path, metadata) of every file, hidden ones included.
fn walk_files(dir: &Path) -> std::io::Result<Vec<(PathBuf, std::fs::Metadata)>> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        for entry in entries {
            let entry = entry?;
            let meta = entry.metadata()?;
            if meta.is_dir() {
                pending.push(entry.path());
            } else if meta.is_file() {
                files.push((entry.path(), meta));
            }
        }
    }
    Ok(files)
}

impl FileStore {
    /// The directory to walk for keys starting with `prefix`.
    fn walk_root(&self, prefix: &str) -> PathBuf {
        match prefix.rsplit_once('/') {
            Some((dir, _)) => self.root.join(dir),
            None => self.root.clone(),
        }
    }

    fn key_of(&self, path: &Path) -> Option<String> {
        let relative = path.strip_prefix(&self.root).ok()?;
        let parts: Vec<_> = relative.iter().map(|p| p.to_string_lossy()).collect();
        Some(parts.join("/"))
    }

    async fn walk(&self, prefix: &str) -> Result<Vec<(PathBuf, std::fs::Metadata)>, StoreError> {
        let start = self.walk_root(prefix);
        let walked = start.clone();
        // Every write step already on a thread lands (or fails) before the walk sees the tree.
        let _settled = self.writing.write().await;
        tokio::task::spawn_blocking(move || walk_files(&walked))
            .await
            .map_err(|e| StoreError::Io {
                operation: "list",
                path: start.clone(),
                source: std::io::Error::other(e),
            })?
            .map_err(|source| StoreError::Io {
                operation: "list",
                path: start,
                source,
            })
    }
}

#[async_trait]
impl Store for FileStore {
    fn url(&self) -> &StoreUrl {
        &self.url
    }

    async fn put(
        &self,
        key: &str,
        body: &mut (dyn AsyncRead + Send + Unpin),
        options: &PutOptions,
    ) -> Result<PutReceipt, StoreError> {
        let path = self.path_of(key)?;
        let dir = path.parent().unwrap_or(&self.root).to_path_buf();
        let temp = hidden_sibling(&path, &format!("{PARTIAL_MARKER}{}", random_id()));
        let writing = self.writing.clone().read_owned().await;
        let opening = (dir.clone(), temp.clone());
        let Started {
            file,
            guard,
            writing,
        } = on_thread(dir.clone(), move || {
            let (dir, temp) = opening;
            create_private_dirs(&dir)?;
            let file = create_private(&temp)?;
            Ok(Started {
                file,
                guard: TempFileGuard { path: Some(temp) },
                writing,
            })
        })
        .await
        .map_err(|source| StoreError::NotWritable {
            path: dir.clone(),
            source,
        })?;
        let mut file = tokio::fs::File::from_std(file);
        drop(writing);

        let write_error = |source| StoreError::Io {
            operation: "write",
            path: temp.clone(),
            source,
        };
        let mut hasher = Sha256::new();
        let mut bytes = 0u64;
        let mut buffer = vec![0u8; COPY_BUFFER];
        loop {
            let n = body
                .read(&mut buffer)
                .await
                .map_err(|source| StoreError::Source {
                    key: key.to_string(),
                    source,
                })?;
            if n == 0 {
                break;
            }
            hasher.update(&buffer[..n]);
            file.write_all(&buffer[..n]).await.map_err(write_error)?;
            bytes += n as u64;
        }
        prove_written(&mut file, bytes).await.map_err(write_error)?;
        drop(file);

        // Tags, then the object, then the directory: one step on one thread, which lands whole
        // (or not at all) even if this call is cancelled while it runs.
        let writing = self.writing.clone().read_owned().await;
        let tags = (!options.tags.is_empty()).then(|| tags_json(&options.tags));
        let create_only = options.create_only;
        let placing = path.clone();
        let placed = on_thread(path.clone(), move || {
            let _writing = writing;
            place(guard, &placing, tags.as_deref(), create_only)
        })
        .await;
        match placed {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::AlreadyExists => {
                return Err(StoreError::AlreadyExists {
                    store: self.url.to_string(),
                    key: key.to_string(),
                });
            }
            Err(source) => return Err(StoreError::NotWritable { path, source }),
        }

        Ok(PutReceipt {
            key: key.to_string(),
            bytes,
            sha256: hex::encode(hasher.finalize()),
            requests: 1,
        })
    }

    async fn get(&self, key: &str) -> Result<ObjectReader, StoreError> {
        let path = self.path_of(key)?;
        match tokio::fs::File::open(&path).await {
            Ok(file) => Ok(Box::new(file)),
            Err(e) if e.kind() == ErrorKind::NotFound => Err(self.not_found(key)),
            Err(source) => Err(StoreError::Io {
                operation: "open",
                path,
                source,
            }),
        }
    }

    async fn head(&self, key: &str) -> Result<Option<ObjectMeta>, StoreError> {
        let path = self.path_of(key)?;
        match tokio::fs::metadata(&path).await {
            Ok(meta) if meta.is_file() => Ok(Some(ObjectMeta::listed(
                key.to_string(),
                meta.len(),
                modified(&meta),
            ))),
            Ok(_) => Ok(None),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(source) => Err(StoreError::Io {
                operation: "stat",
                path,
                source,
            }),
        }
    }

    async fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>, StoreError> {
        let mut objects: Vec<ObjectMeta> = self
            .walk(prefix)
            .await?
            .into_iter()
            .filter_map(|(path, meta)| {
                let key = self.key_of(&path)?;
                let visible = !key.split('/').any(|s| s.starts_with('.'));
                (visible && key.starts_with(prefix))
                    .then(|| ObjectMeta::listed(key, meta.len(), modified(&meta)))
            })
            .collect();
        objects.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(objects)
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        let path = self.path_of(key)?;
        remove_if_exists(&tags_path(&path)).await?;
        remove_if_exists(&path).await?;
        // Prune directories the deletion left empty, up to the root.
        let mut dir = path.parent();
        while let Some(d) = dir {
            if d == self.root || tokio::fs::remove_dir(d).await.is_err() {
                break;
            }
            dir = d.parent();
        }
        Ok(())
    }

    async fn get_tags(&self, key: &str) -> Result<Tags, StoreError> {
        let path = self.path_of(key)?;
        if self.head(key).await?.is_none() {
            return Err(self.not_found(key));
        }
        let tags_file = tags_path(&path);
        match tokio::fs::read(&tags_file).await {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| StoreError::Io {
                operation: "read tags",
                path: tags_file,
                source: std::io::Error::new(ErrorKind::InvalidData, e),
            }),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(Vec::new()),
            Err(source) => Err(StoreError::Io {
                operation: "read tags",
                path: tags_file,
                source,
            }),
        }
    }

    async fn put_tags(&self, key: &str, tags: &Tags) -> Result<(), StoreError> {
        let path = self.path_of(key)?;
        if self.head(key).await?.is_none() {
            return Err(self.not_found(key));
        }
        let writing = self.writing.clone().read_owned().await;
        let tags = tags_json(tags);
        let tags_file = tags_path(&path);
        on_thread(tags_file.clone(), move || {
            let _writing = writing;
            write_atomically_blocking(&tags_file, &tags)
        })
        .await
        .map_err(|source| StoreError::NotWritable { path, source })
    }

    async fn pending_uploads(&self, prefix: &str) -> Result<Vec<PendingUpload>, StoreError> {
        let mut uploads: Vec<PendingUpload> = self
            .walk(prefix)
            .await?
            .into_iter()
            .filter_map(|(path, meta)| {
                let name = path.file_name()?.to_string_lossy().into_owned();
                let (target, _) = name.strip_prefix('.')?.rsplit_once(PARTIAL_MARKER)?;
                // A partial tags file belongs to its object: aborting the object's pending
                // upload removes it (it lives beside the object, as every partial does).
                let target = match target.strip_prefix('.') {
                    Some(hidden) => hidden.strip_suffix(".tags.json")?,
                    None => target,
                };
                let key = self.key_of(&path.with_file_name(target))?;
                key.starts_with(prefix).then(|| PendingUpload {
                    key,
                    upload_id: name,
                    initiated: modified(&meta),
                })
            })
            .collect();
        uploads.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(uploads)
    }

    async fn read_versioned(&self, key: &str) -> Result<Option<Versioned>, StoreError> {
        let path = self.path_of(key)?;
        match tokio::fs::read(&path).await {
            Ok(body) => Ok(Some(Versioned {
                version: content_version(&body),
                body,
            })),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(source) => Err(StoreError::Io {
                operation: "read",
                path,
                source,
            }),
        }
    }

    async fn write_if(
        &self,
        key: &str,
        body: &[u8],
        condition: WriteCondition<'_>,
    ) -> Result<Option<String>, StoreError> {
        let path = self.path_of(key)?;
        let expected = match condition {
            WriteCondition::Absent => None,
            WriteCondition::Version(v) => Some(v.to_string()),
        };
        let body = body.to_vec();
        blocking(path.clone(), move || {
            let _lock = lock_beside(&path)?;
            if current_version(&path)? != expected {
                return Ok(None);
            }
            let temp = hidden_sibling(&path, &format!("{PARTIAL_MARKER}{}", random_id()));
            let mut guard = TempFileGuard {
                path: Some(temp.clone()),
            };
            let mut file = {
                use std::os::unix::fs::OpenOptionsExt;
                std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(PRIVATE_FILE)
                    .open(&temp)?
            };
            std::io::Write::write_all(&mut file, &body)?;
            file.sync_all()?;
            if file.metadata()?.len() != body.len() as u64 {
                return Err(std::io::Error::other("short write"));
            }
            std::fs::rename(&temp, &path)?;
            guard.disarm();
            Ok(Some(content_version(&body)))
        })
        .await
    }

    async fn delete_if(&self, key: &str, version: &str) -> Result<bool, StoreError> {
        let path = self.path_of(key)?;
        let version = version.to_string();
        blocking(path.clone(), move || {
            let _lock = lock_beside(&path)?;
            if current_version(&path)?.as_deref() != Some(version.as_str()) {
                return Ok(false);
            }
            std::fs::remove_file(&path)?;
            Ok(true)
        })
        .await
    }

    async fn abort_upload(&self, upload: &PendingUpload) -> Result<(), StoreError> {
        let path = self.path_of(&upload.key)?;
        if !upload.upload_id.contains(PARTIAL_MARKER) || upload.upload_id.contains('/') {
            return Err(StoreError::InvalidKey {
                key: upload.upload_id.clone(),
                reason: "it is not a pending upload of this store",
            });
        }
        remove_if_exists(&path.with_file_name(&upload.upload_id)).await
    }
}

fn content_version(body: &[u8]) -> String {
    hex::encode(Sha256::digest(body))
}

fn current_version(path: &Path) -> std::io::Result<Option<String>> {
    match std::fs::read(path) {
        Ok(body) => Ok(Some(content_version(&body))),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Creates the object's directory and takes an exclusive advisory lock beside the object,
/// held until the returned file is dropped.
fn lock_beside(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(dir) = path.parent() {
        create_private_dirs(dir)?;
    }
    let file = std::fs::OpenOptions::new()
        .mode(PRIVATE_FILE)
        .create(true)
        .truncate(false)
        .write(true)
        .open(hidden_sibling(path, ".lock"))?;
    file.lock()?;
    Ok(file)
}

/// Runs blocking file work off the async threads; errors name `path`.
async fn blocking<T: Send + 'static>(
    path: PathBuf,
    work: impl FnOnce() -> std::io::Result<T> + Send + 'static,
) -> Result<T, StoreError> {
    let shown = path.clone();
    tokio::task::spawn_blocking(work)
        .await
        .map_err(std::io::Error::other)
        .and_then(|r| r)
        .map_err(|source| StoreError::Io {
            operation: "conditional write",
            path: shown,
            source,
        })
}

fn tags_json(tags: &Tags) -> Vec<u8> {
    serde_json::to_vec(tags).unwrap_or_default()
}

async fn remove_if_exists(path: &Path) -> Result<(), StoreError> {
    match tokio::fs::remove_file(path).await {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
        Err(source) => Err(StoreError::Io {
            operation: "delete",
            path: path.to_path_buf(),
            source,
        }),
    }
}
