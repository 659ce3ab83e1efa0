//! Stop signals: SIGTERM (`kill`, an ECS task being stopped) and SIGINT (Ctrl-C), which a run
//! answers by stopping cleanly rather than being cut off.

use tokio::signal::unix::{SignalKind, signal};

/// Completes at the next SIGTERM or SIGINT; never, when they cannot be listened for.
pub async fn stop_signal() {
    let (Ok(mut terminate), Ok(mut interrupt)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = terminate.recv() => {}
        _ = interrupt.recv() => {}
    }
}
