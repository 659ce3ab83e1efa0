//! Whether a server still answers: a bound on every command that waits on one.
//!
//! TCP keepalives notice a server that vanished, not one that accepts packets and never
//! replies (a frozen host, a stopped postmaster's backends, a proxy that lost its upstream).
//! A long run watches its server on a connection of its own: a `SELECT 1` every quarter of the
//! limit, each given the whole limit to answer. The run stops when one gets no reply.

use std::time::Duration;

use super::{PgTarget, connect, describe};

/// How long a server may leave a `SELECT 1` unanswered before a run gives up on it.
pub const DEFAULT_SILENCE_LIMIT: Duration = Duration::from_secs(120);

/// Completes, saying why, when the server at `target` stops answering: a probe unanswered
/// within `limit`, or the probe's connection broken. Never completes while it answers, nor
/// when the probe cannot connect in the first place (the run's own connections say why).
pub async fn silence(target: &PgTarget, limit: Duration) -> String {
    let client = match tokio::time::timeout(limit, connect(target)).await {
        Ok(Ok(client)) => client,
        Ok(Err(e)) => {
            tracing::debug!(error = %e, "no connection to watch the server on; carrying on without");
            return std::future::pending().await;
        }
        Err(_) => return format!("a new connection got no answer within {}", seconds(limit)),
    };
    let every = (limit / 4).max(Duration::from_millis(100));
    loop {
        tokio::time::sleep(every).await;
        match tokio::time::timeout(limit, client.simple_query("SELECT 1")).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => return format!("the server closed the connection: {}", describe(&e)),
            Err(_) => return format!("a `SELECT 1` got no answer within {}", seconds(limit)),
        }
    }
}

fn seconds(limit: Duration) -> String {
    format!("{} s", limit.as_secs_f64())
}
