//! The restore's worker pool: `jobs` connections take table loads (largest first), bundles of
//! small tables and large-object parts; as each table finishes loading, its index and
//! constraint builds become ready, and ready builds go before the remaining loads, the
//! largest first ([`items::build_cost`]). A build the target can run with parallel
//! maintenance workers gets as many as the server would plan for it, with the memory they
//! need ([`maintenance::plan`]); `jobs` counts connections, and the workers lent at once never
//! exceed the server's pool.

use std::cmp::{Ordering as Order, Reverse};
use std::collections::{BinaryHeap, HashMap, HashSet, VecDeque};
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use futures::SinkExt;
use tokio::sync::{Mutex, Notify, OnceCell};
use tokio::task::JoinSet;
use tokio_postgres::{Client, CopyInSink};

use super::items;
use super::parts::{BlockSink, copy_statement, scan_data_part, scan_large_object_part};
use super::{RestoreError, RestoreEvent, run_batch, run_item};
use crate::manifest::{Manifest, Part, TablePart};
use crate::script::ScriptItem;
use backstop_pg::{PgTarget, connect, describe};
use backstop_store::store::Store;

mod maintenance;
use maintenance::{Limits, Method};

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
    /// Where a table's rows go when it is not under its own name (`--into-schema`).
    pub moved_to: HashMap<String, String>,
}

impl LoadPlan {
    /// The name the rows of `table` (quoted, qualified) are loaded into.
    fn load_into<'a>(&'a self, table: &'a str) -> &'a str {
        self.moved_to.get(table).map_or(table, String::as_str)
    }
}

/// A build whose table is loaded, waiting for a connection.
struct Ready {
    cost: u64,
    /// Queued earlier: first among equal costs (a table's builds keep their order).
    seq: u64,
    job: Job,
}

impl Ready {
    fn key(&self) -> (u64, Reverse<u64>) {
        (self.cost, Reverse(self.seq))
    }
}

impl PartialEq for Ready {
    fn eq(&self, other: &Self) -> bool {
        self.key() == other.key()
    }
}

impl Eq for Ready {}

impl PartialOrd for Ready {
    fn partial_cmp(&self, other: &Self) -> Option<Order> {
        Some(self.cmp(other))
    }
}

impl Ord for Ready {
    fn cmp(&self, other: &Self) -> Order {
        self.key().cmp(&other.key())
    }
}

/// The pool's work and who is doing it, changed under one lock.
struct State {
    /// Loads and large-object parts, largest first.
    loads: VecDeque<Job>,
    /// Builds of loaded tables, largest first.
    ready: BinaryHeap<Ready>,
    /// Builds of tables still to load.
    per_table: HashMap<String, Vec<ScriptItem>>,
    /// Connections running a job.
    running: usize,
    /// Parallel workers lent to running builds.
    lent: usize,
    /// Table loads running (each may make builds ready).
    loads_running: usize,
    seq: u64,
}

/// What a connection does next.
enum Next {
    Run(Job),
    /// Work is queued or will be (a load is running) but no place is free: wait for a change.
    Wait,
    /// Nothing is left for any connection to take.
    Done,
}

impl State {
    fn next(&mut self, jobs: usize) -> Next {
        if self.ready.is_empty() && self.loads.is_empty() {
            return match self.loads_running {
                0 => Next::Done,
                _ => Next::Wait,
            };
        }
        if self.running >= jobs {
            return Next::Wait;
        }
        let job = match self.ready.pop() {
            Some(ready) => ready.job,
            None => match self.loads.pop_front() {
                Some(job) => job,
                None => return Next::Wait,
            },
        };
        if let Job::Load(..) | Job::LoadBundle(..) = &job {
            self.loads_running += 1;
        }
        self.running += 1;
        Next::Run(job)
    }

    fn push_ready(&mut self, cost: u64, job: Job) {
        self.seq += 1;
        self.ready.push(Ready {
            cost,
            seq: self.seq,
            job,
        });
    }
}

struct Pool {
    state: Mutex<State>,
    wake: Notify,
    jobs: usize,
    /// Each table's rows as stored (before compression): the size its builds are ordered by.
    table_bytes: HashMap<String, u64>,
    /// The target's parallel maintenance settings, read by the first session.
    limits: OnceCell<Limits>,
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
        table_bytes: table_bytes(&queue),
        state: Mutex::new(State {
            loads: queue,
            ready: BinaryHeap::new(),
            per_table,
            running: 0,
            lent: 0,
            loads_running: 0,
            seq: 0,
        }),
        wake: Notify::new(),
        jobs,
        limits: OnceCell::new(),
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

/// Each table's size as the backup stored its rows (before compression when the manifest
/// records it): a table of its own sums its parts, a bundle's tables share their part's.
fn table_bytes(queue: &VecDeque<Job>) -> HashMap<String, u64> {
    let size = |part: &Part| part.plain_bytes.unwrap_or(part.bytes);
    let mut sizes = HashMap::new();
    for job in queue {
        match job {
            Job::Load(table, parts) => {
                sizes.insert(table.clone(), parts.iter().map(size).sum());
            }
            Job::LoadBundle(part) => {
                let share = size(part) / part.bundle.len().max(1) as u64;
                for table in &part.bundle {
                    sizes.insert(table.qualified_name.clone(), share);
                }
            }
            Job::LargeObjects(_) | Job::Build(_) | Job::Builds(_) => {}
        }
    }
    sizes
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
    // The target's settings as a session has them, before this one gives its builds none.
    pool.limits
        .get_or_try_init(|| Limits::read(&client))
        .await?;
    client
        .batch_execute(maintenance::NO_WORKERS)
        .await
        .map_err(|e| RestoreError::Database {
            step: "preparing a restore session",
            reason: describe(&e),
        })?;
    let mut rows = 0;
    loop {
        // Made before looking, so a change made after the look still wakes this connection.
        let changed = pool.wake.notified();
        let next = pool.state.lock().await.next(pool.jobs);
        let job = match next {
            Next::Run(job) => job,
            Next::Wait => {
                changed.await;
                continue;
            }
            Next::Done => break,
        };
        let loaded = match job {
            Job::Load(table, parts) => {
                let into_existing = pool.plan.into_existing;
                let loaded = load_table(
                    &client,
                    store.as_ref(),
                    &manifest,
                    (&table, pool.plan.load_into(&table)),
                    &parts,
                    into_existing,
                )
                .await
                .map(|rows| vec![(table.clone(), rows)]);
                pool.loaded(loaded, &[table], false).await
            }
            Job::LoadBundle(part) => {
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
                    plan: &pool.plan,
                };
                let outcome = scan_data_part(store.as_ref(), &manifest, &part, &mut bundle).await;
                let loaded = bundle.close(outcome).await;
                pool.loaded(loaded, &wanted, true).await
            }
            Job::LargeObjects(part) => {
                let outcome = load_large_objects(&client, store.as_ref(), &manifest, &part).await;
                pool.finished(0).await;
                outcome?;
                continue;
            }
            Job::Build(item) => {
                let outcome = pool.build(&client, &item).await;
                outcome?;
                let _ = events.send(RestoreEvent::Built { items: 1 });
                continue;
            }
            Job::Builds(items) => {
                let items: Vec<&ScriptItem> = items.iter().collect();
                let outcome = run_batch(&client, &items).await;
                pool.finished(0).await;
                outcome?;
                let _ = events.send(RestoreEvent::Built { items: items.len() });
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
    /// After a load (whatever its outcome): makes the builds of `tables` ready and wakes the
    /// connections waiting for work. A big table's builds are jobs of their own, so they
    /// spread over the connections; a small table's go together.
    async fn loaded(
        &self,
        outcome: Result<Vec<(String, u64)>, RestoreError>,
        tables: &[String],
        small: bool,
    ) -> Result<Vec<(String, u64)>, RestoreError> {
        {
            let mut state = self.state.lock().await;
            for table in tables {
                let items = state.per_table.remove(table).unwrap_or_default();
                let bytes = self.table_bytes.get(table).copied().unwrap_or(0);
                match small {
                    true if !items.is_empty() => {
                        let cost = items.iter().map(|i| items::build_cost(i, bytes)).sum();
                        state.push_ready(cost, Job::Builds(items));
                    }
                    true => {}
                    false => {
                        for item in items {
                            let cost = items::build_cost(&item, bytes);
                            state.push_ready(cost, Job::Build(item));
                        }
                    }
                }
            }
            state.loads_running = state.loads_running.saturating_sub(1);
        }
        self.finished(0).await;
        outcome
    }

    /// A connection's job ended, with `workers` lent to it: their places and its own are free.
    async fn finished(&self, workers: usize) {
        {
            let mut state = self.state.lock().await;
            state.running = state.running.saturating_sub(1);
            state.lent = state.lent.saturating_sub(workers);
        }
        self.wake.notify_waiters();
    }

    /// Runs one build, with the parallel workers [`maintenance::plan`] gives it.
    async fn build(&self, client: &Client, item: &ScriptItem) -> Result<(), RestoreError> {
        let workers = match self.lend(client, item).await {
            Ok(workers) => workers,
            Err(e) => {
                self.finished(0).await;
                return Err(e);
            }
        };
        let mut outcome = run_item(client, item).await;
        if workers > 0 && outcome.is_ok() {
            outcome = client
                .batch_execute(maintenance::WORKERS_RETURNED)
                .await
                .map_err(|e| RestoreError::Database {
                    step: "resetting a session after a parallel index build",
                    reason: describe(&e),
                });
        }
        self.finished(workers).await;
        outcome
    }

    /// The workers `item`'s build takes, taken from the pool's places and set on the session.
    async fn lend(&self, client: &Client, item: &ScriptItem) -> Result<usize, RestoreError> {
        let Some(limits) = self.limits.get() else {
            return Ok(0);
        };
        let method = Method::of(&item.header);
        let Some(table) = item.header.table.as_deref() else {
            return Ok(0);
        };
        if !limits.builds_in_parallel(method) {
            return Ok(0);
        }
        // The heap the server sizes the build's workers by (the moved table's, into a schema
        // apart: the live one may be gone, and is not this restore's to lock).
        let heap_bytes = relation_size(client, self.plan.load_into(table)).await?;
        let plan = {
            let mut state = self.state.lock().await;
            let plan = maintenance::plan(limits, method, heap_bytes, state.lent);
            state.lent += plan.workers;
            plan
        };
        if plan.workers == 0 {
            return Ok(0);
        }
        tracing::debug!(
            item = %item.header.name,
            workers = plan.workers,
            maintenance_work_mem = plan.work_mem,
            "index build with parallel workers"
        );
        match client.batch_execute(&plan.settings(limits)).await {
            Ok(()) => Ok(plan.workers),
            Err(e) => {
                let mut state = self.state.lock().await;
                state.lent = state.lent.saturating_sub(plan.workers);
                Err(RestoreError::Database {
                    step: "giving an index build parallel workers",
                    reason: describe(&e),
                })
            }
        }
    }
}

/// The size of `table`'s heap on the target, in bytes.
async fn relation_size(client: &Client, table: &str) -> Result<u64, RestoreError> {
    let failed = |reason: String| RestoreError::Database {
        step: "reading a loaded table's size",
        reason: format!("{table}: {reason}"),
    };
    let row = client
        .query_one(
            "SELECT pg_catalog.pg_relation_size($1::pg_catalog.text::pg_catalog.regclass)",
            &[&table],
        )
        .await
        .map_err(|e| failed(describe(&e)))?;
    let bytes: i64 = row.try_get(0).map_err(|e| failed(e.to_string()))?;
    Ok(u64::try_from(bytes).unwrap_or(0))
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
    plan: &'a LoadPlan,
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
        let into = self.plan.load_into(name);
        let (empty, with) = match self.into_existing {
            true => (String::new(), ""),
            false => (format!("TRUNCATE ONLY {into}"), " WITH (FREEZE)"),
        };
        let statement = format!("{begin}{empty}");
        if !statement.is_empty() {
            self.client
                .batch_execute(&statement)
                .await
                .map_err(|e| Self::load_error(name, &e))?;
        }
        self.in_transaction += 1;
        let copy = copy_statement(table, into, with);
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
    (table, into): (&str, &str),
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
        None if !into_existing => (format!("BEGIN; TRUNCATE ONLY {into}"), " WITH (FREEZE)"),
        _ => ("BEGIN".to_string(), ""),
    };
    client.batch_execute(&begin).await.map_err(load_error)?;
    let copy = copy_statement(first, into, with);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::item::ItemKind;
    use crate::script::ItemHeader;

    fn build(name: &str) -> Job {
        Job::Build(ScriptItem {
            header: ItemHeader {
                kind: ItemKind::Index,
                name: name.into(),
                table: None,
                marks: Vec::new(),
                references: None,
                slow_build: false,
            },
            sql: String::new(),
        })
    }

    fn name(next: Next) -> String {
        match next {
            Next::Run(Job::Build(item)) => item.header.name,
            Next::Run(Job::Load(table, _)) => table,
            Next::Run(_) => "another job".into(),
            Next::Wait => "wait".into(),
            Next::Done => "done".into(),
        }
    }

    #[test]
    fn ready_builds_go_first_largest_first_within_the_places_jobs_allows() {
        let mut state = State {
            loads: VecDeque::from([
                Job::Load("big".into(), Vec::new()),
                Job::Load("small".into(), Vec::new()),
            ]),
            ready: BinaryHeap::new(),
            per_table: HashMap::new(),
            running: 0,
            lent: 0,
            loads_running: 0,
            seq: 0,
        };
        assert_eq!(name(state.next(1)), "big");
        // One place, taken.
        assert_eq!(name(state.next(1)), "wait");
        state.push_ready(100, build("big_btree"));
        state.push_ready(800, build("big_gin"));
        state.push_ready(100, build("big_key"));
        state.push_ready(300, build("other_btree"));
        state.running -= 1;
        state.loads_running -= 1;
        // Largest first, before the load still queued; equal costs in the order they came.
        let order: Vec<String> = (0..5)
            .map(|_| {
                let next = name(state.next(1));
                state.running -= 1;
                next
            })
            .collect();
        assert_eq!(
            order,
            ["big_gin", "other_btree", "big_btree", "big_key", "small"]
        );
        state.loads_running -= 1;
        assert_eq!(name(state.next(2)), "done");
        // Workers lent to builds take no connection's place.
        state.push_ready(1, build("a"));
        state.running = 1;
        state.lent = 2;
        assert_eq!(name(state.next(2)), "a");
    }
}
