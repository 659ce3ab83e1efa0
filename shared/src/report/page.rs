//! A report as one self-contained HTML page (inline style, no script, nothing fetched) that
//! prints as it shows: per database its objectives and their changes, a table of how long
//! each was met and missed with a bar of the period, the misses, the test restores with their
//! RTO against the objective in force then, and the verification record (a broken one in red,
//! at the top of the page too). Every text from the store is escaped.

use std::fmt::Write as _;
use std::time::Duration;

use super::{DatabaseReport, InForce, ObjectiveSummary, Record, Report, RestoreTest};
use crate::engine::verify::Verdict;
use crate::objectives::State;
use crate::status::page::{escape, seconds_text, time_text};

/// Misses listed per objective; the longest stays in the table whatever their number.
pub const MISSES_LISTED: usize = 20;

const MET: &str = "#1f8a4c";
const AT_RISK: &str = "#c98a00";
const MISSED: &str = "#c62828";
const UNKNOWN: &str = "#8a94a6";
const NOT_OBSERVED: &str = "#dde1e8";

const STYLE: &str = "body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px auto;max-width:900px;color:#1d2330;background:#f6f7f9}\
h1{font-size:22px;margin:0 0 4px}h2{font-size:18px;margin:0}.meta{color:#5b6475;margin-bottom:16px}\
table{border-collapse:collapse;width:100%;background:#fff;border:1px solid #dde1e8;margin:4px 0 8px}th,td{padding:5px 8px;text-align:left;border-bottom:1px solid #eceef2;vertical-align:top}th{background:#f0f2f5;font-weight:600}td.num{text-align:right}\
.badge{display:inline-block;padding:2px 9px;border-radius:10px;color:#fff;font-weight:600;font-size:12px;text-transform:uppercase}\
.intact{background:#1f8a4c}.broken{background:#c62828}\
section.database{background:#fff;border:1px solid #dde1e8;border-radius:8px;padding:16px;margin:18px 0}\
.head{display:flex;gap:12px;align-items:center;margin-bottom:8px}\
h3{font-size:13px;margin:12px 0 2px;color:#5b6475;text-transform:uppercase;letter-spacing:.04em}\
.state-met{color:#1f8a4c;font-weight:600}.state-at-risk{color:#8a5d00;font-weight:600}.state-missed{color:#c62828;font-weight:600}.state-unknown,.state-none{color:#5b6475}\
.bar{position:relative;height:12px;min-width:170px;border:1px solid #cfd5de;background:#dde1e8}.bar span{position:absolute;top:0;display:block;height:100%;min-width:1px}td.num{white-space:nowrap}\
.legend{font-size:12px;color:#5b6475}.legend i{display:inline-block;width:10px;height:10px;margin:0 4px 0 10px}\
.note{color:#5b6475;font-size:12px;margin:2px 0}ul.misses{margin:2px 0 8px;padding-left:18px;font-size:13px}\
.alarm{background:#fdecea;border:2px solid #c62828;color:#8e1b1b;border-radius:6px;padding:10px 12px;margin:12px 0;font-weight:600}\
.record-broken{color:#c62828}.record-broken li{color:#c62828}.not-recorded{color:#8a5d00}\
footer{color:#5b6475;font-size:12px;border-top:1px solid #dde1e8;padding-top:8px;margin-top:24px}\
@media print{body{background:#fff;margin:0;max-width:none}section.database{break-inside:avoid;border-color:#9aa3b2}*{-webkit-print-color-adjust:exact;print-color-adjust:exact}}";

/// The page for `report`.
pub fn render(report: &Report) -> String {
    let mut html = String::new();
    let period = format!(
        "{} to {}",
        time_text(report.period_start_at),
        time_text(report.period_end_at)
    );
    let _ = write!(
        html,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <title>Backstop report: {store}</title><style>{STYLE}</style></head><body>\
         <h1>Recovery objectives report</h1><div class=\"meta\">{store} · {period} · {count} database(s)</div>",
        store = escape(&report.store),
        period = escape(&period),
        count = report.databases.len(),
    );
    let broken: Vec<&DatabaseReport> = report
        .databases
        .iter()
        .filter(|d| !d.verification_record.intact)
        .collect();
    if !broken.is_empty() {
        let names: Vec<String> = broken.iter().map(|d| escape(&d.database_id)).collect();
        let _ = write!(
            html,
            "<div class=\"alarm\" id=\"record-broken\">The verification record of {} is broken: \
             entries are missing, changed or unreadable (named below). What it says cannot be \
             taken as evidence until that is explained.</div>",
            names.join(", ")
        );
    }
    if report.databases.is_empty() {
        html.push_str("<p>No database in this store has backups, objective samples or a verification record.</p>");
    }
    let seconds = (report.period_end_at - report.period_start_at).as_seconds_f64();
    for database in &report.databases {
        html.push_str(&section(database, seconds));
    }
    let _ = writeln!(
        html,
        "<footer>Period {period} · store {store} · generated {at} by Backstop {version}. Each \
         objective sample holds until the next, for at most twice the monitor's usual interval \
         (two hours at least); time no sample holds is not observed, never counted as met.</footer></body></html>",
        period = escape(&period),
        store = escape(&report.store),
        at = time_text(report.generated_at),
        version = env!("CARGO_PKG_VERSION"),
    );
    html
}

fn section(d: &DatabaseReport, period: f64) -> String {
    let id = escape(&d.database_id);
    let record = &d.verification_record;
    let (badge_class, badge) = if record.intact {
        ("intact", "record intact")
    } else {
        ("broken", "record broken")
    };
    let mut html = format!(
        "<section class=\"database\" id=\"db-{id}\" data-record=\"{badge_class}\"><div class=\"head\"><h2>{id}</h2>\
         <span class=\"badge {badge_class}\">{badge}</span></div>"
    );
    match &d.summary.objectives {
        Some(objectives) => {
            let _ = write!(
                html,
                "<p class=\"objectives\"><b>Objectives:</b> {}</p>",
                escape(&objectives_text(objectives))
            );
        }
        None => html.push_str(
            "<p class=\"objectives\"><b>No objective recorded:</b> the monitor kept no sample of \
             this database in the period (declare them in BACKSTOP_OBJECTIVES).</p>",
        ),
    }
    if !d.summary.objective_changes.is_empty() {
        html.push_str("<ul class=\"changes\">");
        if let Some(start) = &d.summary.objectives_at_start {
            let _ = write!(
                html,
                "<li>At the period's start: {}</li>",
                escape(&objectives_text(start))
            );
        }
        for change in &d.summary.objective_changes {
            let _ = write!(
                html,
                "<li>Changed {}: {}</li>",
                time_text(change.changed_at),
                escape(&objectives_text(&change.objectives))
            );
        }
        html.push_str("</ul>");
    }
    html.push_str(&objectives_table(
        &d.summary.summaries,
        d.summary.objectives.as_ref(),
        period,
    ));
    let _ = write!(
        html,
        "<p class=\"note\">{} sample(s) in the period, each holding at most {}{}.</p>",
        d.summary.samples,
        span_text(d.summary.sample_hold_seconds),
        if d.unreadable_samples > 0 {
            format!(
                "; {} sample(s) could not be read and were left out",
                d.unreadable_samples
            )
        } else {
            String::new()
        }
    );
    html.push_str(&misses(&d.summary.summaries));
    html.push_str("<h3>Restore tests</h3>");
    html.push_str(&restore_tests(&d.restore_tests));
    html.push_str("<h3>Verification record</h3>");
    html.push_str(&record_html(record));
    html.push_str("</section>");
    html
}

fn objectives_table(
    summaries: &[ObjectiveSummary],
    in_force: Option<&InForce>,
    period: f64,
) -> String {
    let mut html = String::from(
        "<table class=\"objectives-table\"><tr><th>Objective</th><th>Now</th><th>Met</th>\
         <th>Over the period</th><th>Time missed</th><th>Misses</th><th>Longest miss</th><th>Not observed</th></tr>",
    );
    for s in summaries {
        let _ = write!(
            html,
            "<tr class=\"objective-{key}\"><td>{label}</td><td class=\"state-{class}\">{now}</td>\
             <td class=\"num\">{share}</td><td>{bar}</td><td class=\"num\">{missed}</td>\
             <td class=\"num\">{count}</td><td class=\"num\">{longest}</td><td class=\"num\">{unobserved}</td></tr>",
            key = objective_key(s),
            label = s.objective.label(),
            class = s.state.map_or("none", State::as_str),
            now = escape(&now_text(s, in_force)),
            share = share_text(s.met_share),
            bar = bar(s, period),
            missed = span_text(s.missed_seconds),
            count = s.misses.len(),
            longest = s.longest_miss_seconds.map_or("-".into(), span_text),
            unobserved = span_text(s.not_observed_seconds),
        );
    }
    html.push_str("</table><div class=\"legend\">over the period, oldest on the left:");
    for (colour, label) in [
        (MET, "met"),
        (AT_RISK, "at risk"),
        (MISSED, "missed"),
        (UNKNOWN, "unknown"),
        (NOT_OBSERVED, "not observed"),
    ] {
        let _ = write!(html, "<i style=\"background:{colour}\"></i>{label}");
    }
    html.push_str("</div>");
    html
}

fn objective_key(s: &ObjectiveSummary) -> &'static str {
    match s.objective {
        super::Objective::Rpo => "rpo",
        super::Objective::Rto => "rto",
        super::Objective::RestoreTest => "restore-test",
    }
}

/// The period as a strip, oldest on the left: each stretch a sample held in its state's
/// colour over the not-observed background, at its place in time.
fn bar(s: &ObjectiveSummary, period: f64) -> String {
    let mut html = String::from("<div class=\"bar\">");
    if period > 0.0 {
        for stretch in &s.stretches {
            let (colour, class) = match stretch.state {
                Some(State::Met) => (MET, "met"),
                Some(State::AtRisk) => (AT_RISK, "at-risk"),
                Some(State::Missed) => (MISSED, "missed"),
                Some(State::Unknown) => (UNKNOWN, "unknown"),
                None => continue,
            };
            let _ = write!(
                html,
                "<span class=\"{class}\" style=\"left:{:.3}%;width:{:.3}%;background:{colour}\" title=\"{}\"></span>",
                stretch.start_seconds / period * 100.0,
                (stretch.end_seconds - stretch.start_seconds) / period * 100.0,
                escape(&format!(
                    "{}: {}",
                    class.replace('-', " "),
                    span_text(stretch.end_seconds - stretch.start_seconds)
                ))
            );
        }
    }
    html.push_str("</div>");
    html
}

fn misses(summaries: &[ObjectiveSummary]) -> String {
    let mut html = String::new();
    for s in summaries.iter().filter(|s| !s.misses.is_empty()) {
        let _ = write!(
            html,
            "<h3>{} misses</h3><ul class=\"misses\">",
            s.objective.label()
        );
        for miss in s.misses.iter().take(MISSES_LISTED) {
            let _ = write!(
                html,
                "<li>from {} {}: {} missed</li>",
                time_text(miss.began_at),
                miss.ended_at
                    .map_or("(still missed at the newest sample)".into(), |at| format!(
                        "to {}",
                        time_text(at)
                    )),
                span_text(miss.missed_seconds)
            );
        }
        if s.misses.len() > MISSES_LISTED {
            let _ = write!(
                html,
                "<li>and {} more (all of them in --json)</li>",
                s.misses.len() - MISSES_LISTED
            );
        }
        html.push_str("</ul>");
    }
    html
}

fn restore_tests(tests: &[RestoreTest]) -> String {
    if tests.is_empty() {
        return "<p class=\"restore-tests none\">No test restore in the period: run a \
                restore-level verification (<code>backstop verify --level restore</code>, or the \
                weekly verify function).</p>"
            .into();
    }
    let mut html = String::from(
        "<table class=\"restore-tests\"><tr><th>Date</th><th>Backup</th><th>Level</th>\
         <th>RTO: ready</th><th>RTO: loaded</th><th>Objective</th><th>Met?</th></tr>",
    );
    for t in tests {
        let mut level = format!("restore {}", verdict_text(t.verdict));
        if !t.recorded {
            level.push_str(" (not in the verification record)");
        }
        let _ = write!(
            html,
            "<tr class=\"restore-test\"><td>{at}</td><td>{backup}</td><td class=\"{level_class}\">{level}{problem}</td>\
             <td class=\"num\">{ready}</td><td class=\"num\">{loaded}</td><td class=\"num\">{objective}</td>\
             <td class=\"state-{state_class}\">{met}</td></tr>",
            at = time_text(t.checked_at),
            backup = escape(&t.backup_id),
            level_class = match (t.verdict, t.recorded) {
                (Verdict::Failed, _) => "state-missed",
                (_, false) => "not-recorded",
                _ => "",
            },
            level = escape(&level),
            problem = t
                .problem
                .iter()
                .map(|p| p.to_string())
                .chain(t.by.iter().map(|by| format!("by {by}")))
                .map(|note| format!("<br><span class=\"note\">{}</span>", escape(&note)))
                .collect::<String>(),
            ready = t.restore_seconds.map_or("-".into(), seconds_text),
            loaded = t.loaded_seconds.map_or("-".into(), seconds_text),
            objective = t
                .rto_objective_seconds
                .map_or("-".into(), |s| span_text(s as f64)),
            state_class = t.rto_state.map_or("none", State::as_str),
            met = escape(&test_met_text(t)),
        );
    }
    html.push_str("</table>");
    html
}

fn record_html(record: &Record) -> String {
    if record.intact {
        return format!(
            "<p class=\"record record-intact\">Intact: {} entr{}{}.</p>",
            record.entries,
            if record.entries == 1 { "y" } else { "ies" },
            record.head.as_deref().map_or(String::new(), |h| format!(
                ", the newest's hash <code>{}</code>",
                escape(h)
            ))
        );
    }
    let mut html = format!(
        "<div class=\"record record-broken\"><p><b>Broken:</b> {} entr{} read; {} problem(s):</p><ul>",
        record.entries,
        if record.entries == 1 { "y" } else { "ies" },
        record.problems.len()
    );
    for problem in &record.problems {
        let _ = write!(html, "<li>{}</li>", escape(&problem.problem));
    }
    html.push_str("</ul></div>");
    html
}

/// `RPO 1 h 0 min · RTO 4 h 0 min · restore test every 30 d 0 h`.
pub fn objectives_text(o: &InForce) -> String {
    let span = |s: u64| crate::clock::span(Duration::from_secs(s));
    let mut text = format!(
        "RPO {} · RTO {}",
        span(o.rpo_objective_seconds),
        span(o.rto_objective_seconds)
    );
    match o.restore_test_every_seconds {
        Some(every) => {
            let _ = write!(text, " · restore test every {}", span(every));
        }
        None => text.push_str(" · no restore-test cadence"),
    }
    text
}

/// Where an objective stands at the period's end, with its figure: `met (20 min 5 s of 1 h 0
/// min)`; `not observed` when no sample holds then,
/// `not declared` for a restore-test cadence the newest objectives (`in_force`) leave out.
pub fn now_text(s: &ObjectiveSummary, in_force: Option<&InForce>) -> String {
    let undeclared = s.objective == super::Objective::RestoreTest
        && in_force.is_some_and(|o| o.restore_test_every_seconds.is_none());
    match s.state {
        None if undeclared => "not declared".into(),
        None => "not observed".into(),
        Some(state) => match (s.measured_seconds, s.objective_seconds) {
            (Some(measured), Some(objective)) => format!(
                "{} ({} of {})",
                state_text(state),
                span_text(measured),
                span_text(objective)
            ),
            _ => state_text(state).into(),
        },
    }
}

/// A restore test's RTO against its objective, as a word.
pub fn test_met_text(t: &RestoreTest) -> String {
    match (t.rto_state, t.rto_objective_seconds) {
        (Some(state), _) => state_text(state).into(),
        (None, None) => "no objective recorded".into(),
        (None, Some(_)) => "-".into(),
    }
}

pub fn state_text(state: State) -> &'static str {
    match state {
        State::Met => "met",
        State::AtRisk => "at risk",
        State::Missed => "missed",
        State::Unknown => "unknown",
    }
}

pub fn verdict_text(verdict: Verdict) -> &'static str {
    match verdict {
        Verdict::Passed => "passed",
        Verdict::Failed => "FAILED",
        Verdict::NotVerifiableNow => "not verifiable now",
    }
}

/// A share as a percentage, rounded down: `100 %` only when wholly met.
pub fn share_text(share: Option<f64>) -> String {
    match share {
        None => "-".into(),
        Some(share) => {
            let tenths = (share * 1000.0).floor() / 10.0;
            format!("{tenths:.1} %")
        }
    }
}

/// A stretch of time for people: `0`, `40 s`, `12 min 0 s`, `3 h 20 min`, `2 d 4 h`.
pub fn span_text(seconds: f64) -> String {
    if seconds <= 0.0 {
        "0".into()
    } else if seconds < 60.0 {
        format!("{:.0} s", seconds.ceil())
    } else {
        crate::objectives::seconds_span(seconds)
    }
}

#[cfg(test)]
#[path = "page_tests.rs"]
mod tests;
