//! `backstop report`: real backups, a deep and two restore-level verifications through the
//! CLI (each an entry of the verification record), and a history of the monitor's samples
//! kept through `objectives::samples::record` (the RPO met, missed for four hours, a gap no
//! sample holds, the RTO objective changed between the two test restores). The JSON's
//! periods, shares, misses and test restores are checked; the HTML page is opened in headless
//! Chromium and checked on the screenshot; an entry of the record edited afterwards makes every
//! output name it, and the report still exits 0.

use std::time::Duration;

use backstop::objectives::samples::{Sample, record};
use backstop::objectives::{Judged, ObjectiveFigures, Objectives, State};
use backstop::store::{FileStore, Store};
use backstop_tests::browser::Browser;
use backstop_tests::postgres::{cluster, fresh_database};
use serde_json::Value;
use time::OffsetDateTime;

use crate::support::{backstop, backstop_ok, single_error_line};

const HOUR: f64 = 3600.0;
/// Colours the page draws with (shared/src/report/page.rs).
const MET: [u8; 3] = [0x1f, 0x8a, 0x4c];
const MISSED: [u8; 3] = [0xc6, 0x28, 0x28];

fn objectives(rto_hours: u64) -> Objectives {
    Objectives {
        rpo: Duration::from_secs(6 * 3600),
        rto: Duration::from_secs(rto_hours * 3600),
        restore_test_every: Some(Duration::from_secs(7 * 86_400)),
    }
}

fn sample(database: &str, at: OffsetDateTime, rpo: State, objectives: Objectives) -> Sample {
    let judged = |state, seconds, objective: Duration| Judged {
        state,
        seconds: Some(seconds),
        objective_seconds: objective.as_secs_f64(),
    };
    Sample {
        database_id: database.into(),
        checked_at: at,
        objectives,
        figures: ObjectiveFigures {
            rpo: judged(
                rpo,
                if rpo == State::Missed { 7.0 } else { 2.0 } * HOUR,
                objectives.rpo,
            ),
            rto: judged(State::Met, 30.0, objectives.rto),
            restore_test: Some(judged(State::Met, HOUR, Duration::from_secs(7 * 86_400))),
            rto_backup_id: None,
            rto_is_loaded: false,
        },
    }
}

fn json(output: &std::process::Output) -> Value {
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "no JSON ({e}): {}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    })
}

fn near(value: &Value, expected: f64, within: f64) -> bool {
    value
        .as_f64()
        .is_some_and(|v| (v - expected).abs() <= within)
}

fn rfc3339(at: OffsetDateTime) -> String {
    at.format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

#[test]
fn report_tells_how_long_each_objective_was_met_every_test_restore_and_the_record() {
    let db = fresh_database("report app");
    db.psql("CREATE TABLE orders (id int PRIMARY KEY, note text); INSERT INTO orders SELECT g, 'n' || g FROM generate_series(1, 2000) g");
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("store");
    let store = format!("file://{}", root.display());
    let id = db.name.clone();
    for _ in 0..2 {
        backstop_ok(&["backup", "--db", &db.url(), "--to", &store], &[]);
    }
    let scratch = cluster().url("postgres");
    let verify = |level: &str| {
        backstop_ok(
            &[
                "verify",
                "--from",
                &store,
                "--database-id",
                &id,
                "--level",
                level,
                "--scratch-db",
                &scratch,
            ],
            &[],
        );
    };
    verify("deep");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let file_store = FileStore::new(root.clone());
    let keep = |samples: Vec<Sample>| {
        runtime.block_on(async {
            for s in &samples {
                record(&file_store as &dyn Store, s).await.unwrap();
            }
        });
    };

    // The history: hourly samples over the last 48 hours, the RPO missed for four of them,
    // then no sample for ten hours (the one before holds two: eight not observed).
    let start = {
        let now = OffsetDateTime::now_utc();
        now.replace_nanosecond(0).unwrap() - time::Duration::hours(48)
    };
    let mut history = Vec::new();
    for hour in (0..=18).chain(28..=47) {
        let rpo = if (11..=14).contains(&hour) {
            State::Missed
        } else {
            State::Met
        };
        history.push(sample(
            &id,
            start + time::Duration::hours(hour),
            rpo,
            objectives(4),
        ));
    }
    keep(history);
    // The first test restore runs under an RTO of 4 h; the objective is then lowered to 2 h
    // and the second runs under it.
    verify("restore");
    std::thread::sleep(Duration::from_millis(1100));
    keep(vec![sample(
        &id,
        OffsetDateTime::now_utc(),
        State::Met,
        objectives(2),
    )]);
    std::thread::sleep(Duration::from_millis(1100));
    verify("restore");

    let page = dir.path().join("report.html");
    let since = rfc3339(start);
    let args = [
        "report",
        "--from",
        &store,
        "--database-id",
        &id,
        "--since",
        &since,
        "--json",
        "--html",
        page.to_str().unwrap(),
    ];
    let output = backstop(&args, &[]);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report = json(&output);
    assert_eq!(report["record_intact"], true, "{report}");
    assert_eq!(report["period_start_at"], since.as_str());
    let databases = report["databases"].as_array().unwrap();
    assert_eq!(databases.len(), 1);
    let app = &databases[0];
    assert_eq!(app["database_id"], id.as_str());
    assert_eq!(app["unreadable_samples"], 0);
    assert_eq!(app["samples"], 40, "{app}");
    assert_eq!(app["objectives"]["rto_objective_seconds"], 7200, "{app}");
    assert_eq!(app["objectives"]["rpo_objective_seconds"], 6 * 3600);
    assert_eq!(
        app["objectives_at_start"]["rto_objective_seconds"], 14_400,
        "{app}"
    );
    let changes = app["objective_changes"].as_array().unwrap();
    assert_eq!(changes.len(), 1, "{app}");
    assert_eq!(changes[0]["rto_objective_seconds"], 7200);

    // The RPO: met for 36 of the 40 observed hours (the period runs on to now, a few seconds
    // or minutes past the 48 hours, held by the newest sample).
    let rpo = &app["summaries"][0];
    assert_eq!(rpo["objective"], "rpo");
    assert_eq!(rpo["state"], "met");
    assert!(near(&rpo["missed_seconds"], 4.0 * HOUR, 1.0), "{rpo}");
    assert!(near(&rpo["not_observed_seconds"], 8.0 * HOUR, 1.0), "{rpo}");
    assert!(near(&rpo["met_seconds"], 36.0 * HOUR, 600.0), "{rpo}");
    assert!(near(&rpo["met_share"], 0.9, 0.005), "{rpo}");
    let misses = rpo["misses"].as_array().unwrap();
    assert_eq!(misses.len(), 1, "{rpo}");
    assert_eq!(
        misses[0]["began_at"],
        rfc3339(start + time::Duration::hours(11)).as_str()
    );
    assert_eq!(
        misses[0]["ended_at"],
        rfc3339(start + time::Duration::hours(15)).as_str()
    );
    assert!(near(&rpo["longest_miss_seconds"], 4.0 * HOUR, 1.0));
    // The RTO and the restore test were met whenever observed.
    for s in &app["summaries"].as_array().unwrap()[1..] {
        assert_eq!(s["met_share"], 1.0, "{s}");
        assert!(s["misses"].as_array().unwrap().is_empty());
    }

    // Both test restores, from the record, each under the objective in force when it ran.
    let tests = app["restore_tests"].as_array().unwrap();
    assert_eq!(tests.len(), 2, "{app}");
    for (test, objective) in tests.iter().zip([14_400, 7200]) {
        assert_eq!(test["verdict"], "passed", "{test}");
        assert_eq!(test["recorded"], true, "{test}");
        assert_eq!(test["rto_objective_seconds"], objective, "{test}");
        assert_eq!(test["rto_state"], "met", "{test}");
        assert!(test["restore_seconds"].as_f64().unwrap() > 0.0);
        assert!(
            test["loaded_seconds"].as_f64().unwrap() <= test["restore_seconds"].as_f64().unwrap()
        );
        assert!(test["seq"].as_u64().is_some());
    }
    let record = &app["verification_record"];
    assert_eq!(record["intact"], true, "{record}");
    assert_eq!(record["entries"], 3, "{record}");
    assert_eq!(record["head"].as_str().unwrap().len(), 64);

    // The table.
    let text = backstop_ok(&["report", "--from", &store, "--since", &since], &[]);
    let text = String::from_utf8_lossy(&text.stdout);
    for expected in [
        id.as_str(),
        "objectives: RPO 6 h 0 min · RTO 2 h 0 min · restore test every 7 d 0 h",
        "at the period's start: RPO 6 h 0 min · RTO 4 h 0 min",
        "90.0 %",
        "4 h 0 min",
        "restore passed",
        "verification record: intact, 3 entries",
    ] {
        assert!(text.contains(expected), "{expected} missing:\n{text}");
    }
    // A database the store knows nothing of is one line, exit 1.
    let unknown = backstop(&["report", "--from", &store, "--database-id", "nope"], &[]);
    assert_eq!(unknown.status.code(), Some(1));
    assert!(single_error_line(&unknown).contains(&id));

    check_page(dir.path(), &page, &id);

    // An entry edited after it was written: named by every output, and still a report.
    let entry = root.join(format!("_backstop/verifications/{id}/000000000002.json"));
    let original = std::fs::read_to_string(&entry).unwrap();
    let edited = original.replace("\"passed\"", "\"failed\"");
    std::fs::write(&entry, edited).unwrap();
    let output = backstop(&args, &[]);
    assert_eq!(output.status.code(), Some(0));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!(
            "warning: the verification record of {id} is broken"
        )) && stderr.contains("entry 2 (_backstop/verifications/"),
        "{stderr}"
    );
    let report = json(&output);
    assert_eq!(report["record_intact"], false);
    let record = &report["databases"][0]["verification_record"];
    assert_eq!(record["intact"], false);
    let problems = record["problems"].as_array().unwrap();
    // Entry 2's hash of entry 1 may be edited too: entry 1 cannot be checked.
    assert_eq!(problems.len(), 2, "{record}");
    assert_eq!(problems[0]["seq"], 2);
    assert_eq!(problems[1]["seq"], 1);
    assert!(
        problems[1]["problem"]
            .as_str()
            .unwrap()
            .contains("cannot be checked: entry 2"),
        "{record}"
    );
    let problem = problems[0]["problem"].as_str().unwrap();
    assert!(
        problem.starts_with(&format!(
            "entry 2 (_backstop/verifications/{id}/000000000002.json) was changed"
        )),
        "{problem}"
    );
    let text = backstop(&["report", "--from", &store], &[]);
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.contains("THE VERIFICATION RECORD IS BROKEN")
            && text.contains("VERIFICATION RECORD BROKEN: 3 entries read, 2 problem(s):")
            && text.contains(problem),
        "{text}"
    );
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(html.contains("id=\"record-broken\"") && html.contains("badge broken"));
    assert!(html.contains(&format!(
        "<li>entry 2 (_backstop/verifications/{id}/000000000002.json) was changed"
    )));

    // The newest entry, deleted once the monitor's check (here `health`) saw it: no entry
    // after it tells, what the check remembers does.
    std::fs::write(&entry, original).unwrap();
    backstop(&["health", "--from", &store, "--database-id", &id], &[]);
    let output = backstop_ok(&args, &[]);
    assert_eq!(json(&output)["record_intact"], true);
    std::fs::remove_file(root.join(format!("_backstop/verifications/{id}/000000000003.json")))
        .unwrap();
    let output = backstop(&args, &[]);
    assert_eq!(output.status.code(), Some(0));
    let report = json(&output);
    let record = &report["databases"][0]["verification_record"];
    assert_eq!(record["intact"], false, "{record}");
    assert_eq!(record["entries"], 2);
    assert_eq!(record["problems"][0]["seq"], 3, "{record}");
    let problem = record["problems"][0]["problem"].as_str().unwrap();
    assert!(
        problem.starts_with(&format!(
            "entry 3 (_backstop/verifications/{id}/000000000003.json), seen by the monitor at "
        )) && problem.ends_with("is gone"),
        "{problem}"
    );
    assert!(String::from_utf8_lossy(&output.stderr).contains(problem));
}

/// The page in headless Chromium: the database, its objectives, the period bars, the test
/// restores and the record where a person sees them; the screenshot kept as
/// target/report-page.png.
fn check_page(dir: &std::path::Path, page: &std::path::Path, id: &str) {
    let Some(browser) = Browser::start(dir) else {
        return;
    };
    browser.open(page);
    browser.fit_to_page();
    let whole = browser.screenshot(None);
    let kept = backstop_tests::workspace_root().join("target/report-page.png");
    std::fs::write(&kept, &whole).unwrap();
    eprintln!("report page screenshot: {}", kept.display());

    let section = format!("#db-{id}");
    assert_eq!(browser.visible("section.database").len(), 1);
    let shown = browser.text(&browser.visible(&section)[0]).to_lowercase();
    for expected in [
        id,
        "Objectives: RPO 6 h 0 min · RTO 2 h 0 min · restore test every 7 d 0 h",
        "At the period's start: RPO 6 h 0 min · RTO 4 h 0 min",
        "Changed",
        "90.0 %",
        "RESTORE TESTS",
        "restore passed",
        "Intact: 3 entries",
    ] {
        assert!(
            shown.contains(&expected.to_lowercase()),
            "{expected} is not shown:\n{shown}"
        );
    }
    assert_eq!(
        browser.visible(&format!("{section} tr.restore-test")).len(),
        2
    );
    for (selector, colour) in [
        (format!("{section} .badge.intact"), MET),
        (format!("{section} tr.objective-rpo .bar"), MET),
        (format!("{section} tr.objective-rpo .bar"), MISSED),
    ] {
        let elements = browser.visible(&selector);
        let element = elements
            .first()
            .unwrap_or_else(|| panic!("{selector} is not shown"));
        assert!(
            has_colour(&browser.screenshot(Some(element)), colour),
            "{selector} shows no pixel of #{:02x}{:02x}{:02x}",
            colour[0],
            colour[1],
            colour[2]
        );
    }
    assert!(browser.visible("#record-broken").is_empty());
}

/// Whether some pixel of the PNG is within a few steps of `colour`.
fn has_colour(png_bytes: &[u8], colour: [u8; 3]) -> bool {
    let decoder = png::Decoder::new(std::io::Cursor::new(png_bytes));
    let mut reader = decoder.read_info().unwrap();
    let mut buffer = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buffer).unwrap();
    buffer.truncate(info.buffer_size());
    let step = match info.color_type {
        png::ColorType::Rgba => 4,
        png::ColorType::Rgb => 3,
        other => panic!("screenshot in {other:?}"),
    };
    buffer
        .chunks_exact(step)
        .any(|px| px.iter().zip(colour).all(|(a, b)| a.abs_diff(b) <= 6))
}
