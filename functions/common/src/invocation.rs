//! The time a Lambda invocation has left, from the deadline its runtime API reports.

use std::time::Duration;

use time::OffsetDateTime;

/// Deadlines before this (10^12 ms after the epoch, in 2001) are not wall-clock deadlines.
/// Lambda always sends one in the future; local emulators send none (0) or a fixed relative
/// value (`cargo lambda watch` sends 600000), which would read as a deadline long gone.
const EARLIEST_WALL_CLOCK_MS: u64 = 1_000_000_000_000;

/// Time left at `now_ms` before `deadline_ms` (both ms since the epoch); zero once passed.
/// `None` when the runtime gave no wall-clock deadline (a local run).
pub fn time_left_at(deadline_ms: u64, now_ms: i128) -> Option<Duration> {
    if deadline_ms < EARLIEST_WALL_CLOCK_MS {
        return None;
    }
    Some(Duration::from_millis(
        (i128::from(deadline_ms) - now_ms).max(0) as u64,
    ))
}

/// [`time_left_at`] now.
pub fn time_left(deadline_ms: u64) -> Option<Duration> {
    time_left_at(
        deadline_ms,
        OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i128 = 1_795_000_000_000; // 2026-11

    #[test]
    fn a_wall_clock_deadline_gives_the_time_left() {
        assert_eq!(
            time_left_at(1_795_000_060_000, NOW),
            Some(Duration::from_secs(60))
        );
        assert_eq!(time_left_at(1_794_999_999_000, NOW), Some(Duration::ZERO));
    }

    #[test]
    fn emulators_without_a_wall_clock_deadline_give_none() {
        assert_eq!(time_left_at(0, NOW), None);
        assert_eq!(time_left_at(600_000, NOW), None, "cargo lambda watch");
    }
}
