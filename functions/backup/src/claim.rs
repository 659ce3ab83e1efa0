//! Event claims: one run per delivered event. A claim records its run's outcome: `claimed`
//! while it runs, `done` once a manifest was committed, `released` once a failure was alerted
//! (or the run stepped aside), so a retry runs again, `dispatched` once the backup was handed
//! to the container task. A claim still `claimed` after the
//! backup lease its run held has expired (or, if it never took one, a lease lifetime after
//! the claim) belongs to a run that died without a word (killed, out of memory, timed out):
//! the redelivered event takes it over and takes the backup.
//!
//! Claims are never deleted here (the function's role may not delete); retention removes
//! them after a week.

use std::time::{Duration, Instant};

use backstop::layout::{DatabaseId, run_claim_key};
use backstop::lease::{self, LeaseRecord, lease_key};
use backstop::store::{Store, WriteCondition};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClaimState {
    Claimed,
    Done,
    Released,
    Dispatched,
}

/// What a claim object says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClaimRecord {
    pub state: ClaimState,
    #[serde(default)]
    pub event: String,
    /// The invocation that claimed it.
    #[serde(default)]
    pub request: String,
    /// The holder name its run takes the backup lease under.
    #[serde(default)]
    pub holder: String,
    /// Unix seconds.
    #[serde(default)]
    pub claimed_at: i64,
    /// The committed backup, once `done`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup_id: Option<String>,
    /// The container task's ARN, once `dispatched`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task: Option<String>,
}

/// What an existing claim means for another delivery of its event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Its run committed a backup or dispatched it (what it did): the delivery is a duplicate.
    Handled(String),
    /// Its run failed (and alerted) or stepped aside: run again.
    Free,
    /// Its run renewed its lease while we watched: it is alive and reports its own outcome.
    Alive,
    /// Its run died: take the claim over.
    Dead,
    /// Not known yet: look again at this time.
    WaitUntil(OffsetDateTime),
}

/// Judges `claim` from the backup lease as it stands `now`. `seen_expiry` is the lease's expiry
/// when we looked before (a later one means the run renewed it since).
pub fn judge(
    claim: &ClaimRecord,
    lease: Option<&LeaseRecord>,
    now: OffsetDateTime,
    lifetime: Duration,
    seen_expiry: Option<OffsetDateTime>,
) -> Verdict {
    match claim.state {
        ClaimState::Done => {
            return Verdict::Handled(format!(
                "backup {} committed",
                claim.backup_id.as_deref().unwrap_or_default()
            ));
        }
        ClaimState::Dispatched => {
            return Verdict::Handled(format!(
                "the backup was dispatched to container task {}",
                claim.task.as_deref().unwrap_or_default()
            ));
        }
        ClaimState::Released => return Verdict::Free,
        ClaimState::Claimed => {}
    }
    match lease.filter(|l| l.holder == claim.holder && !l.token.is_empty()) {
        Some(l) if !l.is_expired(now) => {
            if seen_expiry.is_some_and(|seen| l.expires_at > seen) {
                Verdict::Alive
            } else {
                Verdict::WaitUntil(l.expires_at)
            }
        }
        Some(_) => Verdict::Dead,
        None => {
            let claimed_at = OffsetDateTime::from_unix_timestamp(claim.claimed_at)
                .unwrap_or(OffsetDateTime::UNIX_EPOCH);
            let given_up = claimed_at + lifetime;
            if now >= given_up {
                Verdict::Dead
            } else {
                Verdict::WaitUntil(given_up)
            }
        }
    }
}

/// The outcome of claiming an event for a run.
#[derive(Debug)]
pub enum Claimed {
    /// This run owns the claim at `key` (what it wrote is `record`); `took_over` names the
    /// dead run's request.
    Run {
        key: String,
        record: ClaimRecord,
        took_over: Option<String>,
    },
    /// Nothing to do, and why.
    Skip(String),
}

/// Claims `run_id` for `database` on behalf of `holder` (`request` is the invocation id).
pub async fn claim(
    store: &dyn Store,
    database: &DatabaseId,
    run_id: &str,
    request: &str,
    holder: &str,
    lifetime: Duration,
    deadline: Option<Instant>,
) -> Result<Claimed, String> {
    let key = run_claim_key(database, run_id);
    let lease_key = lease_key(database, "backup");
    let mine = ClaimRecord {
        state: ClaimState::Claimed,
        event: run_id.to_string(),
        request: request.to_string(),
        holder: holder.to_string(),
        claimed_at: OffsetDateTime::now_utc().unix_timestamp(),
        backup_id: None,
        task: None,
    };
    let body = serde_json::to_vec(&mine).map_err(|e| e.to_string())?;
    let mut seen_expiry = None;
    for _ in 0..50 {
        if store
            .write_if(&key, &body, WriteCondition::Absent)
            .await
            .map_err(|e| e.to_string())?
            .is_some()
        {
            return Ok(Claimed::Run {
                key,
                record: mine,
                took_over: None,
            });
        }
        let Some(existing) = store
            .read_versioned(&key)
            .await
            .map_err(|e| e.to_string())?
        else {
            continue; // gone between our write and our read
        };
        let theirs: ClaimRecord = match serde_json::from_slice(&existing.body) {
            Ok(record) => record,
            Err(_) => ClaimRecord {
                state: ClaimState::Released,
                event: run_id.to_string(),
                request: String::new(),
                holder: String::new(),
                claimed_at: 0,
                backup_id: None,
                task: None,
            },
        };
        let lease = lease::read(store, &lease_key)
            .await
            .map_err(|e| e.to_string())?;
        let now = OffsetDateTime::now_utc();
        let verdict = judge(&theirs, lease.as_ref(), now, lifetime, seen_expiry);
        let take = async || {
            store
                .write_if(&key, &body, WriteCondition::Version(&existing.version))
                .await
                .map(|won| won.is_some())
                .map_err(|e| e.to_string())
        };
        match verdict {
            Verdict::Handled(what) => {
                return Ok(Claimed::Skip(format!(
                    "event {run_id} was already delivered and handled ({what}); this delivery is a duplicate"
                )));
            }
            Verdict::Alive => {
                return Ok(Claimed::Skip(format!(
                    "event {run_id} is being handled by request {} (its lease is renewed); this delivery is a duplicate",
                    theirs.request
                )));
            }
            Verdict::Free | Verdict::Dead => {
                if take().await? {
                    let took_over = (verdict == Verdict::Dead).then(|| theirs.request.clone());
                    return Ok(Claimed::Run {
                        key,
                        record: mine,
                        took_over,
                    });
                }
            }
            Verdict::WaitUntil(until) => {
                let wait = Duration::try_from(until - now).unwrap_or_default()
                    + Duration::from_millis(250);
                if deadline.is_some_and(|d| Instant::now() + wait >= d) {
                    return Ok(Claimed::Skip(format!(
                        "event {run_id} was claimed by request {}, whose run may still be alive until {until}, past this invocation's deadline",
                        theirs.request
                    )));
                }
                seen_expiry = lease
                    .filter(|l| l.holder == theirs.holder)
                    .map(|l| l.expires_at);
                tokio::time::sleep(wait).await;
            }
        }
    }
    Err(format!("the claim {key} kept changing; try again"))
}

/// Records that the claimed run committed `backup_id`.
pub async fn mark_done(store: &dyn Store, key: &str, claimed: &ClaimRecord, backup_id: &str) {
    let done = ClaimRecord {
        state: ClaimState::Done,
        backup_id: Some(backup_id.to_string()),
        ..claimed.clone()
    };
    write(store, key, &done).await;
}

/// Records that the claimed run handed the backup to container task `task`.
pub async fn mark_dispatched(store: &dyn Store, key: &str, claimed: &ClaimRecord, task: &str) {
    let dispatched = ClaimRecord {
        state: ClaimState::Dispatched,
        task: Some(task.to_string()),
        ..claimed.clone()
    };
    write(store, key, &dispatched).await;
}

/// Records that the claimed run failed (its alert is out) or stepped aside: a retry may run.
pub async fn release(store: &dyn Store, key: &str, claimed: &ClaimRecord) {
    let released = ClaimRecord {
        state: ClaimState::Released,
        ..claimed.clone()
    };
    write(store, key, &released).await;
}

async fn write(store: &dyn Store, key: &str, record: &ClaimRecord) {
    let body = serde_json::to_vec(record).unwrap_or_default();
    if let Err(e) = store
        .put(key, &mut body.as_slice(), &Default::default())
        .await
    {
        tracing::warn!(key, error = %e, "could not record the event claim's outcome");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIFETIME: Duration = Duration::from_secs(120);

    fn at(seconds: i64) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_800_000_000 + seconds).unwrap()
    }

    fn claimed() -> ClaimRecord {
        ClaimRecord {
            state: ClaimState::Claimed,
            event: "evt".into(),
            request: "req-1".into(),
            holder: "backup Lambda f request req-1".into(),
            claimed_at: at(0).unix_timestamp(),
            backup_id: None,
            task: None,
        }
    }

    fn lease(holder: &str, expires: i64) -> LeaseRecord {
        LeaseRecord {
            holder: holder.into(),
            token: "t".into(),
            acquired_at: at(0),
            expires_at: at(expires),
        }
    }

    #[test]
    fn outcomes_recorded_in_the_claim_decide_at_once() {
        let done = ClaimRecord {
            state: ClaimState::Done,
            backup_id: Some("b1".into()),
            ..claimed()
        };
        assert_eq!(
            judge(&done, None, at(1), LIFETIME, None),
            Verdict::Handled("backup b1 committed".into())
        );
        let released = ClaimRecord {
            state: ClaimState::Released,
            ..claimed()
        };
        assert_eq!(judge(&released, None, at(1), LIFETIME, None), Verdict::Free);
        let dispatched = ClaimRecord {
            state: ClaimState::Dispatched,
            task: Some("arn:aws:ecs:us-east-1:1:task/backstop/7".into()),
            ..claimed()
        };
        assert_eq!(
            judge(&dispatched, None, at(1), LIFETIME, None),
            Verdict::Handled(
                "the backup was dispatched to container task arn:aws:ecs:us-east-1:1:task/backstop/7"
                    .into()
            )
        );
    }

    #[test]
    fn a_claimed_run_is_watched_until_its_lease_is_renewed_or_expires() {
        let claim = claimed();
        let holding = lease(&claim.holder, 100);
        assert_eq!(
            judge(&claim, Some(&holding), at(30), LIFETIME, None),
            Verdict::WaitUntil(at(100))
        );
        let renewed = lease(&claim.holder, 160);
        assert_eq!(
            judge(&claim, Some(&renewed), at(101), LIFETIME, Some(at(100))),
            Verdict::Alive
        );
        assert_eq!(
            judge(&claim, Some(&holding), at(101), LIFETIME, Some(at(100))),
            Verdict::Dead
        );
    }

    #[test]
    fn a_run_that_never_took_its_lease_is_dead_a_lifetime_after_its_claim() {
        let claim = claimed();
        let someone_else = lease("backstop CLI on bastion", 500);
        assert_eq!(
            judge(&claim, Some(&someone_else), at(10), LIFETIME, None),
            Verdict::WaitUntil(at(120))
        );
        assert_eq!(judge(&claim, None, at(121), LIFETIME, None), Verdict::Dead);
        let released = LeaseRecord {
            token: String::new(),
            ..lease(&claim.holder, 5)
        };
        assert_eq!(
            judge(&claim, Some(&released), at(121), LIFETIME, None),
            Verdict::Dead
        );
    }
}
