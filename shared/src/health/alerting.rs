//! When a health status deserves an alert: on a change, when a check newly finds something
//! while the status stays what it was (an objective at risk beside a warning already there),
//! when a critical status persists (at most every `realert_after`), and when it recovers. The state lives in the store under
//! `_backstop/health/<database-id>.json`, so every run of a stateless function agrees.

use std::collections::BTreeSet;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::HealthStatus;
use crate::layout::{DatabaseId, STATE_PREFIX};
use crate::store::{PutOptions, Store, StoreError};

/// What the previous runs decided.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertState {
    pub status: HealthStatus,
    #[serde(with = "time::serde::rfc3339")]
    pub since: OffsetDateTime,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub last_alert: Option<OffsetDateTime>,
    /// The checks that found something worth a warning or worse at the last run; `None` in a
    /// state kept before they were.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checks: Option<BTreeSet<String>>,
}

/// Why an alert goes out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// The status changed to warning or critical (or a first run found it so).
    Entered(HealthStatus),
    /// Still critical, and the last alert is `realert_after` old.
    StillCritical,
    /// Back to healthy from `was`.
    Recovered { was: HealthStatus },
    /// The status stays, but `check` newly found something.
    Added { status: HealthStatus, check: String },
}

/// Decides whether `status` at `now` deserves an alert, and the state to keep.
pub fn decide(
    previous: Option<&AlertState>,
    status: HealthStatus,
    now: OffsetDateTime,
    realert_after: Duration,
) -> (Option<Notice>, AlertState) {
    let fresh = |last_alert| AlertState {
        status,
        since: now,
        last_alert,
        checks: None,
    };
    match previous {
        None if status == HealthStatus::Healthy => (None, fresh(None)),
        None => (Some(Notice::Entered(status)), fresh(Some(now))),
        Some(before) if before.status != status => {
            let notice = if status == HealthStatus::Healthy {
                Notice::Recovered { was: before.status }
            } else {
                Notice::Entered(status)
            };
            (Some(notice), fresh(Some(now)))
        }
        Some(before) => {
            let due = status == HealthStatus::Critical
                && before
                    .last_alert
                    .is_none_or(|last| now - last >= realert_after);
            if due {
                (
                    Some(Notice::StillCritical),
                    AlertState {
                        last_alert: Some(now),
                        ..before.clone()
                    },
                )
            } else {
                (None, before.clone())
            }
        }
    }
}

/// [`decide`], and also an alert when a check in `checks` (those finding a warning or worse)
/// was not among the last run's while the status stays a warning or worse.
pub fn decide_with_checks(
    previous: Option<&AlertState>,
    status: HealthStatus,
    checks: &BTreeSet<String>,
    now: OffsetDateTime,
    realert_after: Duration,
) -> (Option<Notice>, AlertState) {
    let (mut notice, mut state) = decide(previous, status, now, realert_after);
    if notice.is_none()
        && status != HealthStatus::Healthy
        && let Some(before) = previous.and_then(|p| p.checks.as_ref())
        && let Some(added) = checks.iter().find(|c| !before.contains(*c))
    {
        notice = Some(Notice::Added {
            status,
            check: added.clone(),
        });
        state.last_alert = Some(now);
    }
    state.checks = Some(checks.clone());
    (notice, state)
}

fn state_key(database: &DatabaseId) -> String {
    format!("{STATE_PREFIX}/health/{database}.json")
}

/// The state the previous run kept (`None` on a first run or an unreadable state object).
pub async fn load(
    store: &dyn Store,
    database: &DatabaseId,
) -> Result<Option<AlertState>, StoreError> {
    Ok(store
        .read_versioned(&state_key(database))
        .await?
        .and_then(|v| serde_json::from_slice(&v.body).ok()))
}

pub async fn save(
    store: &dyn Store,
    database: &DatabaseId,
    state: &AlertState,
) -> Result<(), StoreError> {
    let json = serde_json::to_vec_pretty(state).unwrap_or_default();
    store
        .put(
            &state_key(database),
            &mut json.as_slice(),
            &PutOptions::default(),
        )
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use HealthStatus::*;
    use time::macros::datetime;

    const SIX_HOURS: Duration = Duration::from_secs(6 * 3600);

    #[test]
    fn changes_alert_and_unchanged_states_do_not() {
        let t0 = datetime!(2026-11-22 00:00 UTC);
        let (notice, state) = decide(None, Healthy, t0, SIX_HOURS);
        assert_eq!(notice, None);
        let (notice, state) = decide(
            Some(&state),
            Warning,
            t0 + time::Duration::hours(1),
            SIX_HOURS,
        );
        assert_eq!(notice, Some(Notice::Entered(Warning)));
        let (notice, state) = decide(
            Some(&state),
            Warning,
            t0 + time::Duration::hours(9),
            SIX_HOURS,
        );
        assert_eq!(notice, None, "a lasting warning is not repeated");
        let (notice, state) = decide(
            Some(&state),
            Critical,
            t0 + time::Duration::hours(10),
            SIX_HOURS,
        );
        assert_eq!(notice, Some(Notice::Entered(Critical)));
        let (notice, state) = decide(
            Some(&state),
            Healthy,
            t0 + time::Duration::hours(11),
            SIX_HOURS,
        );
        assert_eq!(notice, Some(Notice::Recovered { was: Critical }));
        assert_eq!(state.status, Healthy);
    }

    #[test]
    fn a_lasting_critical_status_is_repeated_at_most_every_n_hours() {
        let t0 = datetime!(2026-11-22 00:00 UTC);
        let (first, mut state) = decide(None, Critical, t0, SIX_HOURS);
        assert_eq!(first, Some(Notice::Entered(Critical)));
        let mut sent = 1;
        for hour in 1..=12 {
            let (notice, next) = decide(
                Some(&state),
                Critical,
                t0 + time::Duration::hours(hour),
                SIX_HOURS,
            );
            sent += usize::from(notice.is_some());
            state = next;
        }
        assert_eq!(sent, 3, "at 0 h, 6 h and 12 h");
        assert_eq!(state.since, t0);
    }

    #[test]
    fn a_check_newly_finding_something_alerts_while_the_status_stays() {
        let t0 = datetime!(2026-11-22 00:00 UTC);
        let checks = |names: &[&str]| names.iter().map(|n| n.to_string()).collect::<BTreeSet<_>>();
        let (notice, state) = decide_with_checks(None, Warning, &checks(&["rto"]), t0, SIX_HOURS);
        assert_eq!(notice, Some(Notice::Entered(Warning)));
        // The same warning an hour on: nothing.
        let t1 = t0 + time::Duration::hours(1);
        let (notice, state) =
            decide_with_checks(Some(&state), Warning, &checks(&["rto"]), t1, SIX_HOURS);
        assert_eq!(notice, None);
        // The RPO at risk beside it: said, though the status is still a warning.
        let t2 = t0 + time::Duration::hours(2);
        let (notice, state) = decide_with_checks(
            Some(&state),
            Warning,
            &checks(&["rpo", "rto"]),
            t2,
            SIX_HOURS,
        );
        assert_eq!(
            notice,
            Some(Notice::Added {
                status: Warning,
                check: "rpo".into()
            })
        );
        assert_eq!(state.last_alert, Some(t2));
        // One going away is no news; a state from before checks were kept alerts nothing new.
        let (notice, _) =
            decide_with_checks(Some(&state), Warning, &checks(&["rpo"]), t2, SIX_HOURS);
        assert_eq!(notice, None);
        let older = AlertState {
            checks: None,
            ..state
        };
        let (notice, kept) =
            decide_with_checks(Some(&older), Warning, &checks(&["x"]), t2, SIX_HOURS);
        assert_eq!(notice, None);
        assert_eq!(kept.checks, Some(checks(&["x"])));
    }
}
