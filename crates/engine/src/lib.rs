//! The native backup engine: catalog reading, dependency order, consistent parallel data
//! export, the backup set format, and restore.

pub mod acl;
pub mod backup;
pub mod catalog;
pub mod chunks;
pub mod compare;
pub mod delta;
pub mod digest;
pub mod encryption;
pub mod globals;
pub mod inventory;
pub mod item;
pub mod large_objects;
pub mod legacy;
pub mod lexer;
pub mod manifest;
pub mod order;
pub mod restore;
pub mod script;
pub mod sql;
pub mod stored;
pub mod stream;
pub mod verify;

use tokio::sync::mpsc::UnboundedReceiver;
use tokio::task::JoinSet;

/// Waits for every worker, forwarding their events as they arrive. The first error aborts the
/// other workers and is returned; a worker that panicked becomes `crashed(message)`.
pub(crate) async fn join_workers<T: 'static, E: 'static, V>(
    mut workers: JoinSet<Result<T, E>>,
    mut events: UnboundedReceiver<V>,
    on_event: &(dyn Fn(V) + Sync),
    crashed: impl Fn(String) -> E,
) -> Result<Vec<T>, E> {
    let mut results = Vec::new();
    let mut failure = None;
    loop {
        tokio::select! {
            Some(event) = events.recv() => on_event(event),
            joined = workers.join_next() => match joined {
                None => break,
                Some(Ok(Ok(result))) => results.push(result),
                Some(Ok(Err(e))) => {
                    failure.get_or_insert(e);
                    workers.abort_all();
                }
                Some(Err(e)) if e.is_cancelled() => {}
                Some(Err(e)) => {
                    failure.get_or_insert(crashed(e.to_string()));
                    workers.abort_all();
                }
            },
        }
    }
    while let Ok(event) = events.try_recv() {
        on_event(event);
    }
    match failure {
        Some(e) => Err(e),
        None => Ok(results),
    }
}

/// Runs `produce`, which feeds a bounded channel, beside `store`, which drains it into the
/// store. When storing fails first (a full disk, a store error) the producer is dropped
/// rather than awaited: it would wait forever for room in a channel nobody reads any more.
/// The producer's error wins when both failed: the store's is then only its echo.
pub(crate) async fn produce_and_store<T, U, E>(
    produce: impl std::future::Future<Output = Result<T, E>>,
    store: impl std::future::Future<Output = Result<U, E>>,
) -> Result<(T, U), E> {
    // Boxed: both are large, and the callers' futures stay small.
    let mut produce = Box::pin(produce);
    let mut store = Box::pin(store);
    tokio::select! {
        produced = &mut produce => {
            let produced = produced?;
            Ok((produced, store.await?))
        }
        stored = &mut store => match stored {
            Ok(stored) => Ok((produce.await?, stored)),
            // The store may only be echoing the producer's failure: the cause, if it is there.
            Err(e) => match futures::FutureExt::now_or_never(&mut produce) {
                Some(Err(cause)) => Err(cause),
                _ => Err(e),
            },
        }
    }
}
