//! The pure half of a report: how long each objective was met over a period, from the
//! monitor's samples, and each test restore against the RTO in force when it ran.
//!
//! A sample holds from its `checked_at` until the next sample, for at most [`hold_of`] the
//! samples (two hours, or twice their median interval when that is longer): time no sample
//! holds is not observed, and is never counted as met.

use serde::Serialize;
use time::OffsetDateTime;

use crate::engine::verify::Verdict;
use crate::objectives::samples::Sample;
use crate::objectives::{Objectives, State, judge_rto};

/// The least a sample holds for, however often the monitor ran.
pub const MIN_HOLD_SECONDS: f64 = 2.0 * 3600.0;

/// One of the declared objectives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Objective {
    Rpo,
    Rto,
    RestoreTest,
}

impl Objective {
    pub const ALL: [Objective; 3] = [Objective::Rpo, Objective::Rto, Objective::RestoreTest];

    /// As people read it in a table.
    pub fn label(self) -> &'static str {
        match self {
            Objective::Rpo => "RPO",
            Objective::Rto => "RTO",
            Objective::RestoreTest => "restore test",
        }
    }

    /// Where `sample` judged this objective: its state, measured figure and objective, in
    /// seconds; `None` when it did not (no restore-test cadence was declared then).
    fn judged(self, sample: &Sample) -> Option<(State, Option<f64>, f64)> {
        let judged = match self {
            Objective::Rpo => &sample.figures.rpo,
            Objective::Rto => &sample.figures.rto,
            Objective::RestoreTest => sample.figures.restore_test.as_ref()?,
        };
        Some((judged.state, judged.seconds, judged.objective_seconds))
    }
}

/// The objectives a database declared, in whole seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct InForce {
    pub rpo_objective_seconds: u64,
    pub rto_objective_seconds: u64,
    /// `None`: no restore-test cadence declared.
    pub restore_test_every_seconds: Option<u64>,
}

impl From<&Objectives> for InForce {
    fn from(o: &Objectives) -> Self {
        Self {
            rpo_objective_seconds: o.rpo.as_secs(),
            rto_objective_seconds: o.rto.as_secs(),
            restore_test_every_seconds: o.restore_test_every.map(|d| d.as_secs()),
        }
    }
}

/// The objectives as declared from a sample on, when they differ from the sample before.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ObjectiveChange {
    #[serde(with = "time::serde::rfc3339")]
    pub changed_at: OffsetDateTime,
    #[serde(flatten)]
    pub objectives: InForce,
}

/// One stretch of time an objective was missed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Miss {
    /// When the first sample to judge it missed was taken (the period's start for a miss
    /// already under way then).
    #[serde(with = "time::serde::rfc3339")]
    pub began_at: OffsetDateTime,
    /// When the first sample that did not judge it missed was taken; `None`: still missed
    /// at the newest sample.
    #[serde(with = "time::serde::rfc3339::option")]
    pub ended_at: Option<OffsetDateTime>,
    /// The time the samples observed it missed, within the period (a gap no sample holds is
    /// not counted).
    pub missed_seconds: f64,
}

/// How one objective fared over the period.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ObjectiveSummary {
    pub objective: Objective,
    /// Where it stands at the period's end; `None` when no sample holds then.
    pub state: Option<State>,
    /// The newest sample's measured figure (the recovery point's age, the restore time, the
    /// newest test restore's age).
    pub measured_seconds: Option<f64>,
    /// The newest sample's objective.
    pub objective_seconds: Option<f64>,
    pub met_seconds: f64,
    /// Met, but one more failed run (or a little slower restore) would miss it.
    pub at_risk_seconds: f64,
    pub missed_seconds: f64,
    /// Observed, but nothing had measured it yet (no test restore for the RTO).
    pub unknown_seconds: f64,
    /// No sample holds it: none was taken, a gap beyond the hold, or not declared then.
    pub not_observed_seconds: f64,
    /// Time met (at risk included: still met) over the observed time; `None` when none was
    /// observed.
    pub met_share: Option<f64>,
    pub misses: Vec<Miss>,
    pub longest_miss_seconds: Option<f64>,
    /// The period in order: each stretch a sample held, consecutive ones of one state joined
    /// (what lies between them is not observed). For drawing; not in the JSON.
    #[serde(skip)]
    pub stretches: Vec<Stretch>,
}

/// A stretch of the period in one state, in seconds from the period's start.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stretch {
    pub start_seconds: f64,
    pub end_seconds: f64,
    /// `None`: held by samples that did not judge the objective.
    pub state: Option<State>,
}

/// What the samples say of a period.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    /// The newest sample's objectives; `None`: no sample, no objective recorded.
    pub objectives: Option<InForce>,
    /// The objectives in force at the period's start: those of the newest sample before it,
    /// else of the first within it.
    pub objectives_at_start: Option<InForce>,
    /// Each change of the objectives within the period.
    pub objective_changes: Vec<ObjectiveChange>,
    /// Samples taken within the period.
    pub samples: usize,
    /// How long a sample holds at most.
    pub sample_hold_seconds: f64,
    pub summaries: Vec<ObjectiveSummary>,
}

/// How long a sample taken at one of `times` (oldest first) holds at most:
/// [`MIN_HOLD_SECONDS`], or twice the median interval between them when that is longer.
pub fn hold_of(times: &[OffsetDateTime]) -> f64 {
    let mut gaps: Vec<f64> = times
        .windows(2)
        .map(|w| (w[1] - w[0]).as_seconds_f64())
        .collect();
    gaps.sort_by(f64::total_cmp);
    let median = match gaps.len() {
        0 => 0.0,
        n if n % 2 == 1 => gaps[n / 2],
        n => (gaps[n / 2 - 1] + gaps[n / 2]) / 2.0,
    };
    (2.0 * median).max(MIN_HOLD_SECONDS)
}

/// What `samples` (any order; those before `from` are read for what holds into the period,
/// those after `to` are left out) say of the period `from`..`to`.
pub fn summarize(samples: &[Sample], from: OffsetDateTime, to: OffsetDateTime) -> Summary {
    let mut samples: Vec<&Sample> = samples.iter().filter(|s| s.checked_at <= to).collect();
    samples.sort_by_key(|s| s.checked_at);
    let times: Vec<OffsetDateTime> = samples.iter().map(|s| s.checked_at).collect();
    let hold = hold_of(&times);
    let period = (to - from).as_seconds_f64().max(0.0);
    // Each sample's held stretch, clipped to the period: (start, end) in seconds from `from`.
    let held: Vec<(f64, f64)> = samples
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let start = (s.checked_at - from).as_seconds_f64();
            let next = samples
                .get(i + 1)
                .map_or(f64::INFINITY, |n| (n.checked_at - from).as_seconds_f64());
            let end = next.min(start + hold);
            (start.clamp(0.0, period), end.clamp(0.0, period))
        })
        .collect();

    let summaries = Objective::ALL
        .iter()
        .map(|&objective| summarize_one(objective, &samples, &held, from, period, hold, to))
        .collect();

    let mut objective_changes = Vec::new();
    for pair in samples.windows(2) {
        if pair[1].objectives != pair[0].objectives && pair[1].checked_at >= from {
            objective_changes.push(ObjectiveChange {
                changed_at: pair[1].checked_at,
                objectives: InForce::from(&pair[1].objectives),
            });
        }
    }
    Summary {
        objectives: samples.last().map(|s| InForce::from(&s.objectives)),
        objectives_at_start: samples
            .iter()
            .rev()
            .find(|s| s.checked_at <= from)
            .or(samples.first())
            .map(|s| InForce::from(&s.objectives)),
        objective_changes,
        samples: samples.iter().filter(|s| s.checked_at >= from).count(),
        sample_hold_seconds: hold,
        summaries,
    }
}

fn summarize_one(
    objective: Objective,
    samples: &[&Sample],
    held: &[(f64, f64)],
    from: OffsetDateTime,
    period: f64,
    hold: f64,
    to: OffsetDateTime,
) -> ObjectiveSummary {
    let mut summary = ObjectiveSummary {
        objective,
        state: None,
        measured_seconds: None,
        objective_seconds: None,
        met_seconds: 0.0,
        at_risk_seconds: 0.0,
        missed_seconds: 0.0,
        unknown_seconds: 0.0,
        not_observed_seconds: 0.0,
        met_share: None,
        misses: Vec::new(),
        longest_miss_seconds: None,
        stretches: Vec::new(),
    };
    // A miss under way: when it began, and the missed time observed within the period.
    let mut run: Option<(OffsetDateTime, f64)> = None;
    for (sample, &(start, end)) in samples.iter().zip(held) {
        let judged = objective.judged(sample);
        let seconds = end - start;
        push_stretch(
            &mut summary.stretches,
            Stretch {
                start_seconds: start,
                end_seconds: end,
                state: judged.map(|j| j.0),
            },
        );
        match judged.map(|j| j.0) {
            Some(State::Met) => summary.met_seconds += seconds,
            Some(State::AtRisk) => summary.at_risk_seconds += seconds,
            Some(State::Missed) => summary.missed_seconds += seconds,
            Some(State::Unknown) => summary.unknown_seconds += seconds,
            None => {}
        }
        if judged.is_some_and(|j| j.0 == State::Missed) {
            let (_, missed) = run.get_or_insert((sample.checked_at, 0.0));
            *missed += seconds;
        } else if let Some((began_at, missed)) = run.take() {
            push_miss(
                &mut summary.misses,
                began_at,
                Some(sample.checked_at),
                missed,
                from,
            );
        }
    }
    if let Some((began_at, missed)) = run {
        push_miss(&mut summary.misses, began_at, None, missed, from);
    }
    let observed = summary.met_seconds
        + summary.at_risk_seconds
        + summary.missed_seconds
        + summary.unknown_seconds;
    summary.not_observed_seconds = (period - observed).max(0.0);
    summary.met_share =
        (observed > 0.0).then(|| (summary.met_seconds + summary.at_risk_seconds) / observed);
    summary.longest_miss_seconds = summary
        .misses
        .iter()
        .map(|m| m.missed_seconds)
        .max_by(f64::total_cmp);
    if let Some(newest) = samples.last()
        && let Some((state, measured, objective_seconds)) = objective.judged(newest)
    {
        summary.objective_seconds = Some(objective_seconds);
        let reaches_the_end = (to - newest.checked_at).as_seconds_f64() <= hold;
        if reaches_the_end {
            summary.state = Some(state);
            summary.measured_seconds = measured;
        }
    }
    summary
}

/// Adds `stretch` to `stretches`, joined to the one before when it goes on from it in the
/// same state; a stretch of no length is left out.
fn push_stretch(stretches: &mut Vec<Stretch>, stretch: Stretch) {
    if stretch.end_seconds <= stretch.start_seconds {
        return;
    }
    match stretches.last_mut() {
        Some(last) if last.state == stretch.state && last.end_seconds >= stretch.start_seconds => {
            last.end_seconds = stretch.end_seconds;
        }
        _ => stretches.push(stretch),
    }
}

/// Keeps a miss when the samples observed some of it within the period.
fn push_miss(
    misses: &mut Vec<Miss>,
    began_at: OffsetDateTime,
    ended_at: Option<OffsetDateTime>,
    missed_seconds: f64,
    from: OffsetDateTime,
) {
    if missed_seconds > 0.0 {
        misses.push(Miss {
            began_at: began_at.max(from),
            ended_at,
            missed_seconds,
        });
    }
}

/// A test restore as the verification record (or a set's stored result) holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct TestRecord {
    /// Its entry's number in the verification record; `None` for a set's stored result.
    pub seq: Option<u64>,
    pub backup_id: String,
    pub verdict: Verdict,
    pub checked_at: OffsetDateTime,
    pub restore_seconds: Option<f64>,
    pub loaded_seconds: Option<f64>,
    pub problem: Option<String>,
    /// Who ran it, as the record says (`None` for a set's stored result).
    pub by: Option<String>,
}

/// A test restore with its RTO against the objective in force when it ran.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RestoreTest {
    #[serde(with = "time::serde::rfc3339")]
    pub checked_at: OffsetDateTime,
    pub backup_id: String,
    pub verdict: Verdict,
    /// Until the restored database was ready (statistics in place): the RTO.
    pub restore_seconds: Option<f64>,
    pub loaded_seconds: Option<f64>,
    /// The RTO objective in force then; `None`: no objective recorded.
    pub rto_objective_seconds: Option<u64>,
    /// The RTO (ready, else loaded) against it; `None` when the test did not pass, measured
    /// nothing, or no objective was recorded.
    pub rto_state: Option<State>,
    pub problem: Option<String>,
    pub seq: Option<u64>,
    /// Whether the verification record holds it (`false`: only the set's stored result does).
    pub recorded: bool,
    /// Who ran it, as the record says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
}

/// The test restores within `from`..`to`, oldest first: those of the verification record
/// (`logged`), and the sets' stored results (`stored`) the record does not hold (the same
/// backup, checked within a second). Each is judged against the RTO of the newest sample taken
/// before it, else of the newest sample.
pub fn restore_tests(
    logged: &[TestRecord],
    stored: &[TestRecord],
    samples: &[Sample],
    from: OffsetDateTime,
    to: OffsetDateTime,
) -> Vec<RestoreTest> {
    let in_record = |s: &TestRecord| {
        logged.iter().any(|l| {
            l.backup_id == s.backup_id
                && (l.checked_at - s.checked_at).abs().as_seconds_f64() <= 1.0
        })
    };
    let mut tests: Vec<RestoreTest> = logged
        .iter()
        .map(|t| (t, true))
        .chain(stored.iter().filter(|s| !in_record(s)).map(|t| (t, false)))
        .filter(|(t, _)| t.checked_at >= from && t.checked_at <= to)
        .map(|(t, recorded)| judge_test(t, recorded, samples))
        .collect();
    tests.sort_by(|a, b| {
        a.checked_at
            .cmp(&b.checked_at)
            .then_with(|| a.seq.cmp(&b.seq))
    });
    tests
}

fn judge_test(test: &TestRecord, recorded: bool, samples: &[Sample]) -> RestoreTest {
    let in_force = samples
        .iter()
        .filter(|s| s.checked_at <= test.checked_at)
        .max_by_key(|s| s.checked_at)
        .or_else(|| samples.iter().max_by_key(|s| s.checked_at))
        .map(|s| s.objectives.rto.as_secs());
    let rto = test.restore_seconds.or(test.loaded_seconds);
    let rto_state = match (test.verdict, rto, in_force) {
        (Verdict::Passed, Some(seconds), Some(objective)) => {
            Some(judge_rto(seconds, objective as f64))
        }
        _ => None,
    };
    RestoreTest {
        checked_at: test.checked_at,
        backup_id: test.backup_id.clone(),
        verdict: test.verdict,
        restore_seconds: test.restore_seconds,
        loaded_seconds: test.loaded_seconds,
        rto_objective_seconds: in_force,
        rto_state,
        problem: test.problem.clone(),
        seq: test.seq,
        recorded,
        by: test.by.clone(),
    }
}

#[cfg(test)]
#[path = "summary_tests.rs"]
mod tests;
