use std::time::Duration;

use super::*;
use crate::objectives::{Judged, ObjectiveFigures};

const HOUR: f64 = 3600.0;

fn at(hours: f64) -> OffsetDateTime {
    OffsetDateTime::UNIX_EPOCH
        + time::Duration::days(20_000)
        + time::Duration::seconds_f64(hours * HOUR)
}

fn objectives(rto_hours: u64) -> Objectives {
    Objectives {
        rpo: Duration::from_secs(12 * 3600),
        rto: Duration::from_secs(rto_hours * 3600),
        restore_test_every: None,
    }
}

fn judged(state: State, seconds: f64, objective: f64) -> Judged {
    Judged {
        state,
        seconds: Some(seconds),
        objective_seconds: objective,
    }
}

/// A sample at `hours` with the RPO in `rpo` and the RTO met.
fn sample(hours: f64, rpo: State) -> Sample {
    sample_with(hours, rpo, objectives(4))
}

fn sample_with(hours: f64, rpo: State, objectives: Objectives) -> Sample {
    Sample {
        database_id: "app".into(),
        checked_at: at(hours),
        objectives,
        figures: ObjectiveFigures {
            rpo: judged(rpo, 3600.0, objectives.rpo.as_secs_f64()),
            rto: judged(State::Met, 60.0, objectives.rto.as_secs_f64()),
            restore_test: None,
            rto_backup_id: None,
            rto_is_loaded: false,
        },
    }
}

fn rpo(summary: &Summary) -> &ObjectiveSummary {
    &summary.summaries[0]
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-6
}

#[test]
fn hourly_samples_hold_until_the_next_and_the_met_share_counts_at_risk_as_met() {
    let samples: Vec<Sample> = (0..10)
        .map(|h| sample(h as f64, if h == 4 { State::AtRisk } else { State::Met }))
        .collect();
    let summary = summarize(&samples, at(0.0), at(10.0));
    let rpo = rpo(&summary);
    assert!(close(rpo.met_seconds, 9.0 * HOUR), "{rpo:?}");
    assert!(close(rpo.at_risk_seconds, HOUR));
    assert!(close(rpo.not_observed_seconds, 0.0));
    assert_eq!(rpo.met_share, Some(1.0));
    assert!(rpo.misses.is_empty() && rpo.longest_miss_seconds.is_none());
    assert_eq!(rpo.state, Some(State::Met));
    assert_eq!(summary.samples, 10);
    assert!(close(summary.sample_hold_seconds, 2.0 * HOUR));
    // The restore test was not declared: nothing observed, never met.
    let test = &summary.summaries[2];
    assert_eq!(test.objective, Objective::RestoreTest);
    assert!(close(test.not_observed_seconds, 10.0 * HOUR) && test.met_share.is_none());
}

#[test]
fn a_gap_beyond_the_hold_is_not_observed_never_met() {
    // Hourly to 3 h, then nothing until 12 h: the 3 h sample holds two hours (twice the
    // median interval of one hour), the seven after are not observed.
    let times = [0.0, 1.0, 2.0, 3.0, 12.0, 13.0];
    let samples: Vec<Sample> = times.iter().map(|&h| sample(h, State::Met)).collect();
    let summary = summarize(&samples, at(0.0), at(14.0));
    let rpo = rpo(&summary);
    assert!(close(rpo.met_seconds, 7.0 * HOUR), "{rpo:?}");
    assert!(close(rpo.not_observed_seconds, 7.0 * HOUR));
    assert!(close(rpo.met_share.unwrap_or(0.0), 1.0));
    // Two stretches met, the gap between them left out.
    assert_eq!(
        rpo.stretches
            .iter()
            .map(|s| (s.start_seconds / HOUR, s.end_seconds / HOUR, s.state))
            .collect::<Vec<_>>(),
        vec![(0.0, 5.0, Some(State::Met)), (12.0, 14.0, Some(State::Met))]
    );
    // Samples once a day hold up to two days each.
    let daily: Vec<Sample> = (0..4)
        .map(|d| sample(d as f64 * 24.0, State::Met))
        .collect();
    assert!(close(
        hold_of(&daily.iter().map(|s| s.checked_at).collect::<Vec<_>>()),
        48.0 * HOUR
    ));
    let summary = summarize(&daily, at(0.0), at(96.0));
    assert!(close(summary.summaries[0].met_seconds, 96.0 * HOUR));
}

#[test]
fn a_miss_under_way_at_the_period_start_counts_from_the_start() {
    // Missed from 8 h; the period starts at 10 h; met again at 13 h; missed again 15 h to 16 h.
    let mut samples = Vec::new();
    for h in 8..20 {
        let state = match h {
            8..=12 | 15 => State::Missed,
            _ => State::Met,
        };
        samples.push(sample(h as f64, state));
    }
    let summary = summarize(&samples, at(10.0), at(20.0));
    let rpo = rpo(&summary);
    assert_eq!(rpo.misses.len(), 2, "{rpo:?}");
    assert_eq!(rpo.misses[0].began_at, at(10.0));
    assert_eq!(rpo.misses[0].ended_at, Some(at(13.0)));
    assert!(close(rpo.misses[0].missed_seconds, 3.0 * HOUR));
    assert_eq!(rpo.misses[1].began_at, at(15.0));
    assert!(close(rpo.misses[1].missed_seconds, HOUR));
    assert!(close(rpo.missed_seconds, 4.0 * HOUR));
    assert!(close(rpo.met_seconds, 6.0 * HOUR));
    assert_eq!(rpo.longest_miss_seconds, Some(3.0 * HOUR));
    assert!(close(rpo.met_share.unwrap_or(0.0), 0.6));
    // Only the samples taken within the period are counted as its samples.
    assert_eq!(summary.samples, 10);
}

#[test]
fn a_miss_still_under_way_has_no_end_and_a_miss_ended_before_the_period_is_not_counted() {
    let samples = vec![
        sample(0.0, State::Missed),
        sample(1.0, State::Met),
        sample(5.0, State::Met),
        sample(6.0, State::Missed),
        sample(7.0, State::Missed),
    ];
    let summary = summarize(&samples, at(2.0), at(8.0));
    let rpo = rpo(&summary);
    assert_eq!(rpo.misses.len(), 1, "{rpo:?}");
    assert_eq!(rpo.misses[0].began_at, at(6.0));
    assert_eq!(rpo.misses[0].ended_at, None);
    assert!(close(rpo.misses[0].missed_seconds, 2.0 * HOUR));
    assert_eq!(rpo.state, Some(State::Missed));
}

#[test]
fn an_empty_period_observes_nothing() {
    let summary = summarize(&[], at(0.0), at(24.0));
    assert_eq!(summary.objectives, None);
    assert_eq!(summary.samples, 0);
    for s in &summary.summaries {
        assert!(close(s.not_observed_seconds, 24.0 * HOUR), "{s:?}");
        assert_eq!(s.met_share, None);
        assert_eq!(s.state, None);
        assert!(s.misses.is_empty());
    }
    // A period of no length, with samples: nothing to count either.
    let samples = vec![sample(0.0, State::Missed)];
    let summary = summarize(&samples, at(1.0), at(1.0));
    let rpo = rpo(&summary);
    assert!(close(rpo.missed_seconds, 0.0) && rpo.misses.is_empty());
    assert_eq!(rpo.met_share, None);
    // The newest sample is an hour old, within its hold: it still says where it stands.
    assert_eq!(rpo.state, Some(State::Missed));
}

#[test]
fn the_state_at_the_end_is_not_observed_once_the_newest_sample_is_past_its_hold() {
    let samples = vec![sample(0.0, State::Met), sample(1.0, State::Met)];
    let summary = summarize(&samples, at(0.0), at(10.0));
    let rpo = rpo(&summary);
    assert_eq!(rpo.state, None);
    assert_eq!(rpo.measured_seconds, None);
    assert_eq!(rpo.objective_seconds, Some(12.0 * HOUR));
    assert!(close(rpo.met_seconds, 3.0 * HOUR));
    assert!(close(rpo.not_observed_seconds, 7.0 * HOUR));
}

#[test]
fn objectives_that_changed_are_listed_with_when() {
    let samples = vec![
        sample_with(0.0, State::Met, objectives(4)),
        sample_with(1.0, State::Met, objectives(4)),
        sample_with(2.0, State::Met, objectives(2)),
        sample_with(3.0, State::Met, objectives(2)),
        sample_with(4.0, State::Met, objectives(1)),
    ];
    let summary = summarize(&samples, at(1.5), at(5.0));
    assert_eq!(
        summary
            .objective_changes
            .iter()
            .map(|c| (c.changed_at, c.objectives.rto_objective_seconds))
            .collect::<Vec<_>>(),
        vec![(at(2.0), 7200), (at(4.0), 3600)]
    );
    assert_eq!(
        summary.objectives,
        Some(InForce {
            rpo_objective_seconds: 12 * 3600,
            rto_objective_seconds: 3600,
            restore_test_every_seconds: None,
        })
    );
    // What held at the start: the newest sample's before it.
    assert_eq!(
        summary.objectives_at_start.map(|o| o.rto_objective_seconds),
        Some(4 * 3600)
    );
    // A change before the period is not one of the period's.
    let summary = summarize(&samples, at(2.5), at(3.5));
    assert!(summary.objective_changes.is_empty());
    assert_eq!(
        summary.objectives_at_start.map(|o| o.rto_objective_seconds),
        Some(2 * 3600)
    );
    // No sample before the period: the first within it.
    let summary = summarize(&samples[2..], at(0.0), at(5.0));
    assert_eq!(
        summary.objectives_at_start.map(|o| o.rto_objective_seconds),
        Some(2 * 3600)
    );
}

fn test_record(hours: f64, ready: f64, verdict: Verdict, seq: Option<u64>) -> TestRecord {
    TestRecord {
        seq,
        backup_id: format!("b{hours}"),
        verdict,
        checked_at: at(hours),
        restore_seconds: Some(ready),
        loaded_seconds: Some(ready / 2.0),
        problem: None,
        by: None,
    }
}

#[test]
fn each_restore_test_is_judged_against_the_rto_in_force_when_it_ran() {
    let samples = vec![
        sample_with(1.0, State::Met, objectives(4)),
        sample_with(5.0, State::Met, objectives(1)),
    ];
    let logged = vec![
        // Before any sample: the newest sample's objective (1 h).
        test_record(0.5, 2.0 * HOUR, Verdict::Passed, Some(1)),
        // Under the 4 h objective: 2 h met, 3.5 h at risk.
        test_record(2.0, 2.0 * HOUR, Verdict::Passed, Some(2)),
        test_record(3.0, 3.5 * HOUR, Verdict::Passed, Some(3)),
        // Under the 1 h objective: missed.
        test_record(6.0, 2.0 * HOUR, Verdict::Passed, Some(4)),
        // A failed test measures no RTO.
        test_record(7.0, 60.0, Verdict::Failed, Some(5)),
        // Outside the period.
        test_record(30.0, 60.0, Verdict::Passed, Some(6)),
    ];
    let tests = restore_tests(&logged, &[], &samples, at(0.0), at(24.0));
    let judged: Vec<(Option<u64>, Option<u64>, Option<State>)> = tests
        .iter()
        .map(|t| (t.seq, t.rto_objective_seconds, t.rto_state))
        .collect();
    assert_eq!(
        judged,
        vec![
            (Some(1), Some(3600), Some(State::Missed)),
            (Some(2), Some(14_400), Some(State::Met)),
            (Some(3), Some(14_400), Some(State::AtRisk)),
            (Some(4), Some(3600), Some(State::Missed)),
            (Some(5), Some(3600), None),
        ]
    );
    assert!(tests.iter().all(|t| t.recorded));
    // No sample at all: no objective recorded, nothing judged.
    let tests = restore_tests(&logged, &[], &[], at(0.0), at(24.0));
    assert!(
        tests
            .iter()
            .all(|t| t.rto_objective_seconds.is_none() && t.rto_state.is_none())
    );
}

#[test]
fn a_stored_result_the_record_lacks_is_listed_as_not_recorded() {
    let logged = vec![test_record(2.0, 60.0, Verdict::Passed, Some(1))];
    let mut same = test_record(2.0, 60.0, Verdict::Passed, None);
    same.checked_at += time::Duration::milliseconds(400);
    let lacking = test_record(3.0, 70.0, Verdict::Passed, None);
    let tests = restore_tests(&logged, &[same, lacking], &[], at(0.0), at(24.0));
    assert_eq!(
        tests
            .iter()
            .map(|t| (t.backup_id.as_str(), t.recorded))
            .collect::<Vec<_>>(),
        vec![("b2", true), ("b3", false)]
    );
}

#[test]
fn the_rto_is_judged_as_the_monitor_judges_it() {
    assert_eq!(judge_rto(100.0, 100.0), State::AtRisk);
    assert_eq!(judge_rto(100.5, 100.0), State::Missed);
    assert_eq!(judge_rto(79.0, 100.0), State::Met);
}
