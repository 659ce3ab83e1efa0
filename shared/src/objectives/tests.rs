use super::*;

const HOUR: Duration = Duration::from_secs(3600);
const DAY: Duration = Duration::from_secs(86_400);

fn declared(rpo: Duration, backup_every: Duration) -> Declared {
    Declared {
        objectives: Objectives {
            rpo,
            rto: 4 * HOUR,
            restore_test_every: Some(30 * DAY),
        },
        schedules: Schedules {
            backup_every: Some(backup_every),
            stream_every: None,
            restore_test_schedule: Some(7 * DAY),
        },
    }
}

fn tested(age: Duration, ready: f64) -> Option<RestoreTest> {
    Some(RestoreTest {
        backup_id: "20261201T000000Z-0a0b0c0d".into(),
        age,
        ready_seconds: Some(ready),
        loaded_seconds: Some(ready / 2.0),
    })
}

fn checks(findings: &[Finding]) -> Vec<(&str, Severity)> {
    findings
        .iter()
        .map(|f| (f.check.as_str(), f.severity))
        .collect()
}

#[test]
fn the_rpo_is_met_then_at_risk_one_run_before_then_missed() {
    let d = declared(12 * HOUR, 6 * HOUR);
    let judge = |age: Duration| {
        assess(
            &d,
            &Measured {
                rpo: Some(age),
                restore_test: tested(DAY, 600.0),
                ..Measured::default()
            },
            "s3://b/p",
            "main",
        )
    };
    let (figures, findings) = judge(HOUR);
    assert_eq!(figures.rpo.state, State::Met);
    assert!(findings.is_empty(), "{findings:?}");
    // Seven hours: the backup due at six may still be landing.
    assert_eq!(judge(7 * HOUR).0.rpo.state, State::Met);
    // Ten: it did not land (past an interval and a half); if the next fails too, twelve are
    // missed.
    let (figures, findings) = judge(10 * HOUR);
    assert_eq!(figures.rpo.state, State::AtRisk);
    assert_eq!(checks(&findings), [("rpo", Severity::Warning)]);
    assert!(
        findings[0]
            .message
            .contains("the run due every 6 h 0 min did not land; if the next fails too"),
        "{findings:?}"
    );
    let (figures, findings) = judge(12 * HOUR);
    assert_eq!(figures.rpo.state, State::Missed);
    assert_eq!(checks(&findings), [("rpo", Severity::Critical)]);
    assert_eq!(
        findings[0].fix.as_deref(),
        Some("backstop backup --db \"$DATABASE_URL\" --to s3://b/p --database-id main")
    );
    assert_eq!(
        figures
            .metrics()
            .iter()
            .find(|m| m.name == "RpoMet")
            .unwrap()
            .value,
        0.0
    );
    // No recovery point at all is missed too.
    let (figures, findings) = assess(&d, &Measured::default(), "s3://b/p", "main");
    assert_eq!(figures.rpo.state, State::Missed);
    assert!(
        findings[0].message.contains("no recovery point"),
        "{findings:?}"
    );
}

#[test]
fn a_schedule_slower_than_the_rpo_is_said() {
    let d = declared(HOUR, 6 * HOUR);
    let (_, findings) = assess(
        &d,
        &Measured {
            rpo: Some(Duration::from_secs(60)),
            restore_test: tested(DAY, 60.0),
            ..Measured::default()
        },
        "s3://b/p",
        "main",
    );
    assert!(
        findings.iter().any(|f| f.check == "rpo_schedule"),
        "{findings:?}"
    );
}

#[test]
fn the_rto_is_judged_on_the_ready_figure_and_the_loaded_one_when_that_is_all() {
    let d = declared(12 * HOUR, 6 * HOUR);
    let judge = |test: Option<RestoreTest>| {
        assess(
            &d,
            &Measured {
                rpo: Some(HOUR),
                restore_test: test,
                ..Measured::default()
            },
            "s3://b/p",
            "main",
        )
    };
    let (figures, findings) = judge(tested(DAY, 3600.0));
    assert_eq!(figures.rto.state, State::Met);
    assert!(findings.is_empty(), "{findings:?}");
    let (figures, findings) = judge(tested(DAY, 0.9 * 4.0 * 3600.0));
    assert_eq!(figures.rto.state, State::AtRisk);
    assert_eq!(checks(&findings), [("rto", Severity::Warning)]);
    let (figures, findings) = judge(tested(DAY, 5.0 * 3600.0));
    assert_eq!(figures.rto.state, State::Missed);
    assert_eq!(checks(&findings), [("rto", Severity::Critical)]);
    assert!(
        findings[0]
            .message
            .contains("5 h 0 min until the database was ready")
    );
    // A result from before readiness was measured: its loaded time.
    let loaded_only = Some(RestoreTest {
        ready_seconds: None,
        loaded_seconds: Some(5.0 * 3600.0),
        ..tested(DAY, 0.0).unwrap()
    });
    let (figures, findings) = judge(loaded_only);
    assert!(figures.rto_is_loaded);
    assert!(findings[0].message.contains("was loaded"), "{findings:?}");
    // Never tested: unknown; the cadence is not missed while there was no time for a test.
    let (figures, findings) = judge(None);
    assert_eq!(figures.rto.state, State::Unknown);
    assert_eq!(figures.restore_test.unwrap().state, State::Unknown);
    assert_eq!(
        checks(&findings),
        [
            ("rto", Severity::Warning),
            ("restore_test", Severity::Warning)
        ]
    );
    // Backed up for longer than the cadence, never tested: missed.
    let (figures, findings) = assess(
        &d,
        &Measured {
            rpo: Some(HOUR),
            backed_up_for: Some(40 * DAY),
            ..Measured::default()
        },
        "s3://b/p",
        "main",
    );
    assert_eq!(figures.restore_test.unwrap().state, State::Missed);
    assert!(
        findings
            .iter()
            .any(|f| f.check == "restore_test" && f.severity == Severity::Critical),
        "{findings:?}"
    );
}

#[test]
fn the_restore_test_cadence_warns_when_the_next_scheduled_test_is_the_last_chance() {
    let d = declared(12 * HOUR, 6 * HOUR);
    let judge = |age: Duration| {
        assess(
            &d,
            &Measured {
                rpo: Some(HOUR),
                restore_test: tested(age, 60.0),
                ..Measured::default()
            },
            "s3://b/p",
            "main",
        )
        .0
        .restore_test
        .unwrap()
        .state
    };
    assert_eq!(judge(10 * DAY), State::Met);
    assert_eq!(judge(24 * DAY), State::AtRisk);
    assert_eq!(judge(31 * DAY), State::Missed);
}

#[test]
fn defaults_come_from_the_schedules() {
    let text: DeclaredText =
        serde_json::from_str(r#"{"backup_every": "6h", "restore_test_schedule": "7d"}"#).unwrap();
    let d = text.resolve().unwrap();
    // Two and a half intervals: one failed run, landing late, does not miss them.
    assert_eq!(d.objectives.rpo, 15 * HOUR);
    assert_eq!(d.objectives.rto, DEFAULT_RTO);
    assert_eq!(d.objectives.restore_test_every, Some(17 * DAY + 12 * HOUR));
    // With a stream, the RPO follows the drains.
    let text: DeclaredText =
        serde_json::from_str(r#"{"backup_every": "6h", "stream_every": "5m"}"#).unwrap();
    let d = text.resolve().unwrap();
    assert_eq!(d.objectives.rpo, Duration::from_secs(750));
    assert_eq!(d.objectives.restore_test_every, None);
    // Declared values win.
    let declared =
        parse_declared(r#"{"main": {"rpo": "1h", "rto": "4h", "restore_test_every": "30d"}}"#)
            .unwrap();
    let main = &declared[&DatabaseId::new("main").unwrap()];
    assert_eq!(main.objectives.rpo, HOUR);
    assert_eq!(main.objectives.restore_test_every, Some(30 * DAY));
}

#[test]
fn bad_declarations_name_the_database_and_the_field() {
    for (raw, expected) in [
        (
            r#"{"main": {"rpo": "soon"}}"#,
            "database `main`: rpo: `soon`",
        ),
        (r#"{"main": {"rto": "0s"}}"#, "rto: `0s` is zero"),
        (
            r#"{"main": {"rpo_minutes": 5}}"#,
            "unknown field `rpo_minutes`",
        ),
        (r#"{"_x": {}}"#, "_x"),
        ("[]", "not a JSON object"),
    ] {
        let err = parse_declared(raw).unwrap_err();
        assert!(err.contains(expected), "{raw}: {err}");
    }
}

#[test]
fn a_sample_reads_back_as_it_was_written() {
    let d = declared(12 * HOUR, 6 * HOUR);
    let (figures, _) = assess(
        &d,
        &Measured {
            rpo: Some(HOUR),
            restore_test: tested(DAY, 60.0),
            ..Measured::default()
        },
        "s3://b/p",
        "main",
    );
    let sample = samples::Sample {
        database_id: "main".into(),
        checked_at: time::macros::datetime!(2026-12-06 10:00:00 UTC),
        objectives: d.objectives,
        figures,
    };
    let json = serde_json::to_string(&sample).unwrap();
    assert!(json.contains("\"state\":\"met\""), "{json}");
    assert_eq!(
        serde_json::from_str::<samples::Sample>(&json).unwrap(),
        sample
    );
    assert_eq!(
        samples::sample_key(&DatabaseId::new("main").unwrap(), sample.checked_at),
        "_backstop/objectives/main/20261206T100000Z.json"
    );
}

#[test]
fn a_stream_point_counts_only_with_a_backup_and_store_figures_are_checked() {
    use crate::health::backups::{BackupHealth, RestoreTested};
    let health = |age: Option<u64>, point: Option<u64>, ready: f64| BackupHealth {
        last_backup: age.map(|_| "20261201T000000Z-0a0b0c0d".into()),
        age_seconds: age,
        backup_count: usize::from(age.is_some()),
        total_bytes: 0,
        newest_bytes: None,
        median_previous_bytes: None,
        last_verification: None,
        recovery_point_age_seconds: point,
        in_progress: None,
        rto_seconds: Some(ready),
        rto_loaded_seconds: Some(ready),
        oldest_backup_age_seconds: age,
        last_restore_test: Some(RestoreTested {
            backup_id: "20261201T000000Z-0a0b0c0d".into(),
            age_seconds: 60,
        }),
    };
    // A stream beside a backup: its point is the RPO.
    let measured = Measured::from_backups(&health(Some(7200), Some(120), 60.0), None);
    assert_eq!(measured.rpo, Some(Duration::from_secs(120)));
    assert!(measured.from_stream);
    // Drains with no backup that can carry a restore to them: nothing is recoverable.
    let measured = Measured::from_backups(&health(None, Some(120), 60.0), None);
    assert_eq!(measured.rpo, None);
    let (figures, _) = assess(
        &declared(12 * HOUR, 6 * HOUR),
        &measured,
        "s3://b/p",
        "main",
    );
    assert_eq!(figures.rpo.state, State::Missed);
    // A restore's seconds read from a store that are no duration are no measurement, and no
    // panic.
    for bad in [1e20, -5.0, f64::NAN, f64::INFINITY] {
        let measured = Measured::from_backups(&health(Some(60), None, bad), None);
        let (figures, _) = assess(
            &declared(12 * HOUR, 6 * HOUR),
            &measured,
            "s3://b/p",
            "main",
        );
        assert_eq!(figures.rto.state, State::Unknown, "{bad}");
    }
    assert_eq!(seconds_span(1e20), "-");
    assert_eq!(seconds_span(-1.0), "-");
    // How long the monitor has watched counts when retention kept less history.
    let measured = Measured::from_backups(&health(Some(60), None, 60.0), Some(40 * DAY));
    assert_eq!(measured.backed_up_for, Some(40 * DAY));
}
