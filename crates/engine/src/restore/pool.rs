//! The restore's worker pool: `jobs` connections take table loads (largest first), bundles of
//! small tables and large-object parts, and, as each table finishes loading, that table's
//! index and constraint builds at the front of the queue.

use std::collections::{HashMap, HashSet, VecDeque};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use futures::SinkExt;
use tokio::sync::{Mutex, Notify};
use tokio::task::JoinSet;
use tokio_postgres::{Client, CopyInSink};

use super::parts::{BlockSink, copy_header, scan_data_part, scan_large_object_part};
use super::{RestoreError, RestoreEvent, run_batch, run_item};
use crate::manifest::{Manifest, Part, TablePart};
use crate::script::ScriptItem;
use backstop_pg::{PgTarget, connect, describe};
use backstop_store::store::Store;

pub(super) enum Job {
    /// A table in parts of its own (one, or several block ranges).
    Load(String, Vec<Part>),
    /// A bundle of small tables.
    LoadBundle(Box<Part>),
    /// A part of large-object contents.
    LargeObjects(Box<Part>),
    Build(ScriptItem),
    /// A small table's builds, in one transaction.
    Builds(Vec<ScriptItem>),
}

impl Job {
    /// Stored bytes of the parts the job loads.
    pub fn stored_bytes(&self) -> u64 {
        match self {
            Job::Load(_, parts) => parts.iter().map(|p| p.bytes).sum(),
            Job::LoadBundle(part) | Job::LargeObjects(part) => part.bytes,
            Job::Build(_) | Job::Builds(_) => 0,
        }
    }

    /// The parts the job loads.
    pub fn parts(&self) -> Vec<Part> {
        match self {
            Job::Load(_, parts) => parts.clone(),
            Job::LoadBundle(part) | Job::LargeObjects(part) => vec![(**part).clone()],
            Job::Build(_) | Job::Builds(_) => Vec::new(),
        }
    }
}

/// What every worker needs to know of the restore.
pub(super) struct LoadPlan {
    /// `None`: every table.
    pub selected: Option<HashSet<String>>,
    /// Tables a bundle load empties and fills in one transaction.
    pub tables_per_transaction: usize,
    /// What each worker session runs first.
    pub preamble: String,
    /// The tables are the target's own, already there and empty: rows are added with a plain
    /// `COPY` (no `TRUNCATE`, so no `FREEZE`).
    pub into_existing: bool,
}

struct Pool {
    queue: Mutex<VecDeque<Job>>,
    loads_running: AtomicUsize,
    wake: Notify,
    per_table: Mutex<HashMap<String, Vec<ScriptItem>>>,
    plan: LoadPlan,
}

pub(super) async fn run_pool(
    store: Arc<dyn Store>,
    manifest: &Manifest,
    target: &PgTarget,
    jobs: usize,
    (queue, per_table, plan): (VecDeque<Job>, HashMap<String, Vec<ScriptItem>>, LoadPlan),
    on_event: &(dyn Fn(RestoreEvent) + Sync),
) -> Result<u64, RestoreError> {
    let pool = Arc::new(Pool {
        queue: Mutex::new(queue),
        loads_running: AtomicUsize::new(0),
        wake: Notify::new(),
        per_table: Mutex::new(per_table),
        plan,
    });
    let manifest = Arc::new(manifest.clone());
    let (events_tx, events_rx) = tokio::sync::mpsc::unbounded_channel();
    let mut workers = JoinSet::new();
    for _ in 0..jobs {
        let (pool, store, manifest, target, events) = (
            pool.clone(),
            store.clone(),
            manifest.clone(),
            target.clone(),
            events_tx.clone(),
        );
        workers.spawn(async move { work(pool, store, manifest, target, events).await });
    }
    drop(events_tx);
    let rows = crate::join_workers(workers, events_rx, on_event, |reason| {
        RestoreError::Database {
            step: "a restore worker",
            reason,
        }
    })
    .await?;
    Ok(rows.into_iter().sum())
}

async fn work(
    pool: Arc<Pool>,
    store: Arc<dyn Store>,
    manifest: Arc<Manifest>,
    target: PgTarget,
    events: tokio::sync::mpsc::UnboundedSender<RestoreEvent>,
) -> Result<u64, RestoreError> {
    let client = connect(&target).await?;
    client
        .batch_execute(&pool.plan.preamble)
        .await
        .map_err(|e| RestoreError::Database {
            step: "preparing a restore session",
            reason: describe(&e),
        })?;
    let mut rows = 0;
    loop {
        let job = {
            let mut queue = pool.queue.lock().await;
            let job = queue.pop_front();
            if let Some(Job::Load(..) | Job::LoadBundle(..)) = &job {
                pool.loads_running.fetch_add(1, Ordering::SeqCst);
            }
            job
        };
        let loaded = match job {
            Some(Job::Load(table, parts)) => {
                let into_existing = pool.plan.into_existing;
                let loaded = load_table(
                    &client,
                    store.as_ref(),
                    &manifest,
                    &table,
                    &parts,
                    into_existing,
                )
                .await
                .map(|rows| vec![(table.clone(), rows)]);
                pool.loaded(loaded, &[table], false).await
            }
            Some(Job::LoadBundle(part)) => {
                let wanted: Vec<String> = part
                    .bundle
                    .iter()
                    .map(|t| t.qualified_name.clone())
                    .filter(|t| pool.plan.selected.as_ref().is_none_or(|s| s.contains(t)))
                    .collect();
                let mut bundle = BundleLoad {
                    client: &client,
                    wanted: &wanted,
                    per_transaction: pool.plan.tables_per_transaction,
                    in_transaction: 0,
                    sink: None,
                    loaded: Vec::new(),
                    into_existing: pool.plan.into_existing,
                };
                let outcome = scan_data_part(store.as_ref(), &manifest, &part, &mut bundle).await;
                let loaded = bundle.close(outcome).await;
                pool.loaded(loaded, &wanted, true).await
            }
            Some(Job::LargeObjects(part)) => {
                load_large_objects(&client, store.as_ref(), &manifest, &part).await?;
                continue;
            }
            Some(Job::Build(item)) => {
                run_item(&client, &item).await?;
                let _ = events.send(RestoreEvent::Built { items: 1 });
                continue;
            }
            Some(Job::Builds(items)) => {
                let items: Vec<&ScriptItem> = items.iter().collect();
                run_batch(&client, &items).await?;
                let _ = events.send(RestoreEvent::Built { items: items.len() });
                continue;
            }
            None if pool.loads_running.load(Ordering::SeqCst) == 0 => break,
            None => {
                let notified = pool.wake.notified();
                if pool.queue.lock().await.is_empty()
                    && pool.loads_running.load(Ordering::SeqCst) > 0
                {
                    notified.await;
                }
                continue;
            }
        };
        for (table, n) in loaded? {
            rows += n;
            let _ = events.send(RestoreEvent::TableLoaded { table, rows: n });
        }
    }
    Ok(rows)
}

impl Pool {
    /// After a load (whatever its outcome): queues the builds of `tables` ahead of everything
    /// else and wakes the workers waiting for work. A big table's builds are jobs of their
    /// own, so they spread over the workers; a small table's go together.
    async fn loaded(
        &self,
        outcome: Result<Vec<(String, u64)>, RestoreError>,
        tables: &[String],
        small: bool,
    ) -> Result<Vec<(String, u64)>, RestoreError> {
        let mut builds = Vec::new();
        {
            let mut per_table = self.per_table.lock().await;
            for table in tables {
                let items = per_table.remove(table).unwrap_or_default();
                match small {
                    true if !items.is_empty() => builds.push(Job::Builds(items)),
                    true => {}
                    false => builds.extend(items.into_iter().map(Job::Build)),
                }
            }
        }
        {
            let mut queue = self.queue.lock().await;
            for job in builds.into_iter().rev() {
                queue.push_front(job);
            }
        }
        self.loads_running.fetch_sub(1, Ordering::SeqCst);
        self.wake.notify_waiters();
        outcome
    }
}

/// Loads a bundle's wanted tables, `per_transaction` at a time: each is emptied and filled
/// with `COPY ... FREEZE` in the transaction that empties it, after its block has matched the
/// manifest.
struct BundleLoad<'a> {
    client: &'a Client,
    wanted: &'a [String],
    per_transaction: usize,
    /// Tables loaded in the open transaction (0: none open).
    in_transaction: usize,
    sink: Option<Pin<Box<CopyInSink<Bytes>>>>,
    loaded: Vec<(String, u64)>,
    /// Into the target's own empty tables: neither emptied nor frozen.
    into_existing: bool,
}

impl BundleLoad<'_> {
    fn load_error(table: &str, e: &tokio_postgres::Error) -> RestoreError {
        RestoreError::Load {
            table: table.to_string(),
            reason: describe(e),
        }
    }

    /// Commits what is open when the scan succeeded; rolls it back when it did not.
    async fn close(
        mut self,
        outcome: Result<u64, RestoreError>,
    ) -> Result<Vec<(String, u64)>, RestoreError> {
        // A COPY left open (the part failed inside a block) is aborted first.
        drop(self.sink.take());
        match outcome {
            Ok(_) if self.in_transaction > 0 => {
                let last = self
                    .loaded
                    .last()
                    .map(|(t, _)| t.clone())
                    .unwrap_or_default();
                self.client
                    .batch_execute("COMMIT")
                    .await
                    .map_err(|e| Self::load_error(&last, &e))?;
                Ok(self.loaded)
            }
            Ok(_) => Ok(self.loaded),
            Err(e) => {
                if self.in_transaction > 0 {
                    let _ = self.client.batch_execute("ROLLBACK").await;
                }
                Err(e)
            }
        }
    }
}

impl BlockSink for BundleLoad<'_> {
    async fn start(&mut self, table: &TablePart) -> Result<(), RestoreError> {
        let name = &table.qualified_name;
        if !self.wanted.contains(name) {
            return Ok(());
        }
        let begin = if self.in_transaction == 0 {
            "BEGIN; "
        } else {
            ""
        };
        let (empty, with) = match self.into_existing {
            true => (String::new(), ""),
            false => (format!("TRUNCATE ONLY {name}"), " WITH (FREEZE)"),
        };
        let statement = format!("{begin}{empty}");
        if !statement.is_empty() {
            self.client
                .batch_execute(&statement)
                .await
                .map_err(|e| Self::load_error(name, &e))?;
        }
        self.in_transaction += 1;
        let copy = copy_header(table).replace(" FROM stdin;\n", &format!(" FROM STDIN{with}"));
        let sink = self
            .client
            .copy_in::<_, Bytes>(&copy)
            .await
            .map_err(|e| Self::load_error(name, &e))?;
        self.sink = Some(Box::pin(sink));
        Ok(())
    }

    async fn rows(&mut self, table: &TablePart, batch: Bytes) -> Result<(), RestoreError> {
        match &mut self.sink {
            Some(sink) => sink
                .send(batch)
                .await
                .map_err(|e| Self::load_error(&table.qualified_name, &e)),
            None => Ok(()),
        }
    }

    async fn finish(&mut self, table: &TablePart) -> Result<(), RestoreError> {
        let Some(mut sink) = self.sink.take() else {
            return Ok(());
        };
        let name = &table.qualified_name;
        let rows = sink
            .as_mut()
            .finish()
            .await
            .map_err(|e| Self::load_error(name, &e))?;
        self.loaded.push((name.clone(), rows));
        if self.in_transaction >= self.per_transaction {
            self.client
                .batch_execute("COMMIT")
                .await
                .map_err(|e| Self::load_error(name, &e))?;
            self.in_transaction = 0;
        }
        Ok(())
    }
}

/// Writes one part of large-object contents in one transaction, checking it as it streams.
async fn load_large_objects(
    client: &Client,
    store: &dyn Store,
    manifest: &Manifest,
    part: &Part,
) -> Result<(), RestoreError> {
    let failed = |e: tokio_postgres::Error| RestoreError::Load {
        table: format!("the large objects of {}", part.key),
        reason: describe(&e),
    };
    client.batch_execute("BEGIN").await.map_err(failed)?;
    match scan_large_object_part(store, manifest, part, Some(client)).await {
        Ok(_) => client.batch_execute("COMMIT").await.map_err(failed),
        Err(e) => {
            let _ = client.batch_execute("ROLLBACK").await;
            Err(e)
        }
    }
}

/// Streams every row of one table's parts into a single `COPY ... FREEZE`.
struct TableCopy<'a> {
    sink: Pin<&'a mut CopyInSink<Bytes>>,
}

impl BlockSink for TableCopy<'_> {
    async fn start(&mut self, _: &TablePart) -> Result<(), RestoreError> {
        Ok(())
    }

    async fn rows(&mut self, table: &TablePart, batch: Bytes) -> Result<(), RestoreError> {
        self.sink.send(batch).await.map_err(|e| RestoreError::Load {
            table: table.qualified_name.clone(),
            reason: describe(&e),
        })
    }

    async fn finish(&mut self, _: &TablePart) -> Result<(), RestoreError> {
        Ok(())
    }
}

/// Loads every part of one table in one transaction, checking each part as it streams.
async fn load_table(
    client: &Client,
    store: &dyn Store,
    manifest: &Manifest,
    table: &str,
    parts: &[Part],
    into_existing: bool,
) -> Result<u64, RestoreError> {
    let load_error = |e: tokio_postgres::Error| RestoreError::Load {
        table: table.to_string(),
        reason: describe(&e),
    };
    let Some(first) = parts.first().and_then(|p| p.table.as_ref()) else {
        return Ok(0);
    };
    // An extension's configuration table already holds the extension's own rows: the
    // backed-up ones are added to them, so it is neither emptied nor frozen.
    let (begin, with) = match first.extension_rows {
        None if !into_existing => (format!("BEGIN; TRUNCATE ONLY {table}"), " WITH (FREEZE)"),
        _ => ("BEGIN".to_string(), ""),
    };
    client.batch_execute(&begin).await.map_err(load_error)?;
    let copy = copy_header(first).replace(" FROM stdin;\n", &format!(" FROM STDIN{with}"));
    let result = async {
        let sink = client
            .copy_in::<_, Bytes>(&copy)
            .await
            .map_err(load_error)?;
        let mut sink = std::pin::pin!(sink);
        let mut rows = 0;
        for part in parts {
            let mut target = TableCopy {
                sink: sink.as_mut(),
            };
            rows += scan_data_part(store, manifest, part, &mut target).await?;
        }
        sink.as_mut().finish().await.map_err(load_error)?;
        Ok::<u64, RestoreError>(rows)
    }
    .await;
    match result {
        Ok(rows) => {
            client.batch_execute("COMMIT").await.map_err(load_error)?;
            Ok(rows)
        }
        Err(e) => {
            let _ = client.batch_execute("ROLLBACK").await;
            Err(e)
        }
    }
}
