use std::time::Duration;

use time::OffsetDateTime;

use super::*;
use crate::engine::verify::Verdict;
use crate::objectives::samples::Sample;
use crate::objectives::{Judged, ObjectiveFigures, Objectives, State};
use crate::report::summary::{self, TestRecord};
use crate::report::{DatabaseReport, Record, RecordProblem, Report};

fn at(hours: i64) -> OffsetDateTime {
    OffsetDateTime::UNIX_EPOCH + time::Duration::days(20_000) + time::Duration::hours(hours)
}

fn sample(hours: i64, rpo: State) -> Sample {
    let judged = |state, objective| Judged {
        state,
        seconds: Some(1800.0),
        objective_seconds: objective,
    };
    Sample {
        database_id: "app".into(),
        checked_at: at(hours),
        objectives: Objectives {
            rpo: Duration::from_secs(3600),
            rto: Duration::from_secs(600),
            restore_test_every: Some(Duration::from_secs(7 * 86_400)),
        },
        figures: ObjectiveFigures {
            rpo: judged(rpo, 3600.0),
            rto: judged(State::Met, 600.0),
            restore_test: Some(judged(State::Met, 604_800.0)),
            rto_backup_id: None,
            rto_is_loaded: false,
        },
    }
}

fn report(record: Record, backup_id: &str) -> Report {
    let samples: Vec<Sample> = (0..24)
        .map(|h| {
            sample(
                h,
                if (5..8).contains(&h) {
                    State::Missed
                } else {
                    State::Met
                },
            )
        })
        .collect();
    let logged = vec![TestRecord {
        seq: Some(3),
        backup_id: backup_id.into(),
        verdict: Verdict::Passed,
        checked_at: at(10),
        restore_seconds: Some(42.0),
        loaded_seconds: Some(30.0),
        problem: None,
        by: Some("backstop-verify function (request 7f3a)".into()),
    }];
    let stored = vec![TestRecord {
        seq: None,
        backup_id: "20261206T031553Z-8727e93b".into(),
        verdict: Verdict::Failed,
        checked_at: at(12),
        restore_seconds: None,
        loaded_seconds: None,
        problem: Some("data/0001.copy.zst: rows differ".into()),
        by: None,
    }];
    let intact = record.intact;
    Report {
        store: "s3://bucket/<prod>".into(),
        generated_at: at(24),
        period_start_at: at(0),
        period_end_at: at(24),
        record_intact: intact,
        databases: vec![DatabaseReport {
            database_id: "app".into(),
            summary: summary::summarize(&samples, at(0), at(24)),
            unreadable_samples: 1,
            restore_tests: summary::restore_tests(&logged, &stored, &samples, at(0), at(24)),
            verification_record: record,
        }],
    }
}

fn intact() -> Record {
    Record {
        intact: true,
        entries: 4,
        head: Some("9f2c".into()),
        problems: Vec::new(),
    }
}

#[test]
fn the_page_shows_the_objectives_their_periods_the_tests_and_the_record() {
    let html = render(&report(intact(), "20261206T031553Z-0a0b0c0d"));
    assert!(html.contains("id=\"db-app\"") && html.contains("badge intact"));
    assert!(html.contains("RPO 1 h 0 min · RTO 10 min 0 s · restore test every 7 d 0 h"));
    // The RPO was missed for three of the 24 hours, once.
    assert!(html.contains("<td class=\"num\">87.5 %</td>"), "{html}");
    assert!(html.contains("<td class=\"num\">3 h 0 min</td><td class=\"num\">1</td>"));
    assert!(html.contains("class=\"missed\""));
    assert_eq!(html.matches("class=\"restore-test\"").count(), 2);
    assert!(html.contains("restore passed") && html.contains("42.0 s"));
    assert!(
        html.contains("by backstop-verify function (request 7f3a)"),
        "{html}"
    );
    assert!(html.contains("restore FAILED (not in the verification record)"));
    assert!(html.contains("Intact: 4 entries"));
    assert!(!html.contains("id=\"record-broken\""));
    assert!(html.contains("1 sample(s) could not be read"));
    assert!(!html.contains("<script") && !html.contains("src=\"http"));
    assert!(html.contains("@media print"));
}

#[test]
fn a_broken_record_is_said_at_the_top_and_by_entry() {
    let record = Record {
        intact: false,
        entries: 3,
        head: Some("9f2c".into()),
        problems: vec![RecordProblem {
            seq: Some(2),
            problem: "entry 2 was changed after it was written".into(),
        }],
    };
    let html = render(&report(record, "b"));
    assert!(html.contains("id=\"record-broken\""));
    assert!(html.contains("badge broken"));
    assert!(html.contains("<li>entry 2 was changed after it was written</li>"));
}

#[test]
fn text_from_the_store_is_escaped() {
    let record = Record {
        intact: false,
        entries: 1,
        head: Some("<b>".into()),
        problems: vec![RecordProblem {
            seq: None,
            problem: "<img src=x onerror=alert(1)>".into(),
        }],
    };
    let html = render(&report(record, "<script>alert(1)</script>"));
    assert!(
        !html.contains("<img") && !html.contains("<script"),
        "{html}"
    );
    assert!(html.contains("&lt;img src=x onerror=alert(1)&gt;"));
    assert!(html.contains("s3://bucket/&lt;prod&gt;"));
}

#[test]
fn shares_round_down_and_spans_read_as_people_write_them() {
    assert_eq!(share_text(Some(0.9999)), "99.9 %");
    assert_eq!(share_text(Some(1.0)), "100.0 %");
    assert_eq!(share_text(None), "-");
    assert_eq!(span_text(0.0), "0");
    assert_eq!(span_text(0.2), "1 s");
    assert_eq!(span_text(7200.0), "2 h 0 min");
}

#[test]
fn a_restore_test_cadence_left_out_is_not_declared_rather_than_not_observed() {
    let summary = summary::summarize(&[], at(0), at(1));
    let in_force = InForce {
        rpo_objective_seconds: 3600,
        rto_objective_seconds: 600,
        restore_test_every_seconds: None,
    };
    let test = &summary.summaries[2];
    assert_eq!(now_text(test, None), "not observed");
    assert_eq!(now_text(test, Some(&in_force)), "not declared");
    assert_eq!(
        now_text(&summary.summaries[0], Some(&in_force)),
        "not observed"
    );
}
