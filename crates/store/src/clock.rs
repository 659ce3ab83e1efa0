//! Clocks that disagree. Backup ids, ages and retention read the writer's clock, so a backup
//! refuses to start when this host's clock and the database server's differ by more than
//! [`MAX_SKEW`], and a set whose start lies beyond [`MAX_SKEW`] in the future (its writer's
//! clock was ahead, or the reader's is behind) is never taken for the newest: not by
//! "latest", not by retention's rails, not by the freshness check.

use std::fmt;
use std::time::Duration;

use time::OffsetDateTime;

/// How far two clocks may disagree before it matters.
pub const MAX_SKEW: Duration = Duration::from_secs(5 * 60);

/// How far, and which way, this host's clock is off another's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Skew {
    /// This host's clock is ahead (else behind).
    pub ahead: bool,
    pub by: Duration,
}

impl fmt::Display for Skew {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let direction = if self.ahead { "ahead" } else { "behind" };
        write!(f, "{} {direction}", span(self.by))
    }
}

/// `by` for people: `3 d 2 h`, `2 h 5 min`, `7 min 3 s`.
pub fn span(by: Duration) -> String {
    let s = by.as_secs();
    match s {
        s if s >= 86_400 => format!("{} d {} h", s / 86_400, s % 86_400 / 3600),
        s if s >= 3600 => format!("{} h {} min", s / 3600, s % 3600 / 60),
        s => format!("{} min {} s", s / 60, s % 60),
    }
}

/// The skew of `local` against `reference` read at the same moment, when past [`MAX_SKEW`].
pub fn skew(local: OffsetDateTime, reference: OffsetDateTime) -> Option<Skew> {
    let difference = local - reference;
    let by = Duration::try_from(difference.abs()).unwrap_or(Duration::MAX);
    (by > MAX_SKEW).then_some(Skew {
        ahead: difference.is_positive(),
        by,
    })
}

/// Whether a set that started at `started` lies in the future at `now` (past [`MAX_SKEW`]).
pub fn in_the_future(started: OffsetDateTime, now: OffsetDateTime) -> bool {
    started - now > MAX_SKEW
}

/// The newest of `committed` (oldest first) whose start is not in the future at `now`; when
/// every one is, the newest of them, since nothing better exists.
pub fn newest_not_in_the_future(
    committed: &[crate::layout::BackupId],
    now: OffsetDateTime,
) -> Option<crate::layout::BackupId> {
    committed
        .iter()
        .rev()
        .find(|id| !id.started_at().is_some_and(|t| in_the_future(t, now)))
        .or(committed.last())
        .cloned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::BackupId;
    use time::macros::datetime;

    #[test]
    fn the_newest_is_never_a_set_from_the_future_unless_it_is_all_there_is() {
        let now = datetime!(2026-12-05 12:00 UTC);
        let past = BackupId::generate(now - time::Duration::hours(1));
        let future = BackupId::generate(now + time::Duration::days(1));
        assert_eq!(
            newest_not_in_the_future(&[past.clone(), future.clone()], now),
            Some(past)
        );
        assert_eq!(
            newest_not_in_the_future(std::slice::from_ref(&future), now),
            Some(future)
        );
        assert_eq!(newest_not_in_the_future(&[], now), None);
    }

    #[test]
    fn skew_is_said_only_past_the_tolerance_and_says_which_way() {
        let server = datetime!(2026-12-05 12:00 UTC);
        assert_eq!(skew(server + time::Duration::minutes(4), server), None);
        let ahead = skew(server + time::Duration::hours(26), server).unwrap();
        assert!(ahead.ahead);
        assert_eq!(ahead.to_string(), "1 d 2 h ahead");
        let behind = skew(server - time::Duration::minutes(7), server).unwrap();
        assert_eq!(behind.to_string(), "7 min 0 s behind");
    }

    #[test]
    fn a_start_is_in_the_future_only_past_the_tolerance() {
        let now = datetime!(2026-12-05 12:00 UTC);
        assert!(!in_the_future(now + time::Duration::minutes(5), now));
        assert!(in_the_future(now + time::Duration::minutes(6), now));
        assert!(!in_the_future(now - time::Duration::days(3), now));
    }
}
