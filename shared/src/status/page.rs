//! The status as one self-contained HTML page (inline style and SVG, no script, nothing
//! fetched): a summary table, then per database its figures, its findings, a timeline of
//! backups and verifications, their sizes and the measured restore time's trend (until loaded
//! and until ready, two series). Every text from the store is escaped.

use std::fmt::Write as _;

use time::OffsetDateTime;

use super::{BackupPoint, DatabaseStatus, StoreStatus};
use crate::engine::verify::{Level, Verdict};
use crate::health::HealthStatus;
use crate::units::human_bytes;

const WIDTH: f64 = 720.0;
const CHART_HEIGHT: f64 = 90.0;
const MARGIN: f64 = 36.0;
/// The measured restore time's two series: until ready (the RTO), and until loaded.
const READY_COLOUR: &str = "#c62828";
const LOADED_COLOUR: &str = "#0f8b8d";

const STYLE: &str = "body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px auto;max-width:900px;color:#1d2330;background:#f6f7f9}\
h1{font-size:22px;margin:0 0 4px}h2{font-size:18px;margin:0}.meta{color:#5b6475;margin-bottom:16px}\
table{border-collapse:collapse;width:100%;background:#fff;border:1px solid #dde1e8}th,td{padding:6px 8px;text-align:left;border-bottom:1px solid #eceef2}th{background:#f0f2f5;font-weight:600}td.num{text-align:right}\
.badge{display:inline-block;padding:2px 9px;border-radius:10px;color:#fff;font-weight:600;font-size:12px;text-transform:uppercase}\
.healthy{background:#1f8a4c}.warning{background:#c98a00}.critical{background:#c62828}.unknown{background:#6b7280}\
section.database{background:#fff;border:1px solid #dde1e8;border-radius:8px;padding:16px;margin:18px 0}\
.head{display:flex;gap:12px;align-items:center;margin-bottom:10px}.figures{display:grid;grid-template-columns:repeat(4,1fr);gap:8px;margin:8px 0 12px}\
.figure{background:#f6f7f9;border-radius:6px;padding:6px 8px}.figure b{display:block;font-size:16px}.figure span{color:#5b6475;font-size:12px}\
ul.findings{margin:6px 0 12px;padding-left:18px}li.critical{color:#c62828}li.warning{color:#8a5d00}\
h3{font-size:13px;margin:10px 0 2px;color:#5b6475;text-transform:uppercase;letter-spacing:.04em}svg{display:block;background:#fbfbfc;border:1px solid #eceef2}\
.legend{font-size:12px;color:#5b6475}.legend i{display:inline-block;width:10px;height:10px;border-radius:5px;margin:0 4px 0 10px}\
.objectives{font-size:13px;margin:4px 0 8px}.obj-met{color:#1f8a4c}.obj-at-risk{color:#8a5d00;font-weight:600}.obj-missed{color:#c62828;font-weight:600}.obj-unknown{color:#6b7280}";

/// The page for `status`.
pub fn render(status: &StoreStatus) -> String {
    let mut html = String::new();
    let _ = write!(
        html,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <title>Backstop status: {store}</title><style>{STYLE}</style></head><body>\
         <h1>Backstop status {badge}</h1><div class=\"meta\">{store} · {count} database(s) · {at}</div>",
        store = escape(&status.store),
        badge = badge(status.status),
        count = status.databases.len(),
        at = time_text(status.generated_at),
    );
    html.push_str(&summary(status));
    for database in &status.databases {
        html.push_str(&section(database, status.generated_at));
    }
    html.push_str("</body></html>\n");
    html
}

fn summary(status: &StoreStatus) -> String {
    let mut html = String::from(
        "<table id=\"summary\"><tr><th>Database</th><th>Status</th><th>Last backup</th><th>Tier</th>\
         <th>Size</th><th>Verified</th><th>RTO: loaded</th><th>RTO: ready</th><th>PITR through</th><th>Encrypted</th></tr>",
    );
    for d in &status.databases {
        let _ = write!(
            html,
            "<tr><td><a href=\"#db-{id}\">{id}</a></td><td>{badge}</td><td>{age}</td><td>{tier}</td>\
             <td class=\"num\">{size}</td><td>{verified}</td><td class=\"num\">{loaded}</td><td class=\"num\">{ready}</td><td>{pitr}</td><td>{enc}</td></tr>",
            id = escape(&d.database_id),
            badge = badge(d.status),
            age = age_text(d.backups.age_seconds),
            tier = d.tier.as_deref().map_or("-".into(), escape),
            size = size_text(d),
            verified = verified_text(d),
            loaded = loaded_text(d),
            ready = d.rto_seconds.map_or("-".into(), seconds_text),
            pitr = d.recovery_point.map_or("-".into(), time_text),
            enc = match d.encrypted {
                Some(true) => "yes",
                Some(false) => "no",
                None => "-",
            },
        );
    }
    html.push_str("</table>");
    html
}

/// The objectives as the monitor last judged them: each with its figure, its objective and its
/// state.
fn objectives_line(sample: &crate::objectives::samples::Sample) -> String {
    use crate::objectives::Judged;
    let judged = |name: &str, j: &Judged| {
        format!(
            "<span class=\"obj-{}\">{}</span>",
            j.state.as_str(),
            escape(&j.describe(name))
        )
    };
    let f = &sample.figures;
    let mut parts = vec![judged("RPO", &f.rpo), judged("RTO", &f.rto)];
    if let Some(test) = &f.restore_test {
        parts.push(judged("last restore test", test));
    }
    format!(
        "<div class=\"objectives\">Objectives, as the monitor judged them {}: {}</div>",
        time_text(sample.checked_at),
        parts.join(" · ")
    )
}

fn section(d: &DatabaseStatus, now: OffsetDateTime) -> String {
    let id = escape(&d.database_id);
    let mut html = format!(
        "<section class=\"database\" id=\"db-{id}\" data-status=\"{status}\"><div class=\"head\"><h2>{id}</h2>{badge}</div>\
         <div class=\"figures\">{f1}{f2}{f3}{f4}</div>",
        status = d.status.as_str(),
        badge = badge(d.status),
        f1 = figure(&age_text(d.backups.age_seconds), "since the last backup"),
        f2 = figure(
            &size_text(d),
            &format!("{} backups kept", d.backups.backup_count)
        ),
        f3 = figure(
            &d.rto_seconds.map_or("-".into(), seconds_text),
            &match d.rto_seconds {
                Some(_) => format!(
                    "measured RTO: ready (statistics in place); loaded in {}",
                    loaded_text(d)
                ),
                None => "measured RTO".into(),
            }
        ),
        f4 = figure(&verified_text(d), "last verification"),
    );
    if let Some(sample) = &d.objectives {
        html.push_str(&objectives_line(sample));
    }
    if d.findings.is_empty() {
        html.push_str("<ul class=\"findings\"><li>No findings.</li></ul>");
    } else {
        html.push_str("<ul class=\"findings\">");
        for f in &d.findings {
            let _ = write!(
                html,
                "<li class=\"{}\">{}</li>",
                escape(&format!("{:?}", f.severity).to_lowercase()),
                escape(&f.message)
            );
        }
        html.push_str("</ul>");
    }
    let points: Vec<&BackupPoint> = d
        .timeline
        .iter()
        .filter(|p| p.started_at.is_some())
        .collect();
    html.push_str("<h3>Backups and verifications</h3>");
    html.push_str(&timeline(&points, now));
    html.push_str(
        "<div class=\"legend\">backup:<i style=\"background:#2f6fdb\"></i>daily<i style=\"background:#7b4bd6\"></i>weekly\
         <i style=\"background:#d6731f\"></i>monthly · ring: <i style=\"background:#1f8a4c\"></i>verified\
         <i style=\"background:#c62828\"></i>failed</div>",
    );
    html.push_str("<h3>Size</h3>");
    html.push_str(&sizes(&points, now));
    html.push_str("<h3>Measured restore time</h3>");
    html.push_str(&rto_trend(&points, now));
    html.push_str("</section>");
    html
}

fn figure(value: &str, label: &str) -> String {
    format!(
        "<div class=\"figure\"><b>{}</b><span>{}</span></div>",
        escape(value),
        escape(label)
    )
}

fn badge(status: HealthStatus) -> String {
    format!("<span class=\"badge {0}\">{0}</span>", status.as_str())
}

/// The x position of `at` on a chart whose right edge is `now` and left edge `span` before.
fn x_of(at: OffsetDateTime, now: OffsetDateTime, span: f64) -> f64 {
    let before = (now - at).as_seconds_f64().clamp(0.0, span);
    MARGIN + (WIDTH - 2.0 * MARGIN) * (1.0 - before / span)
}

/// The span of the charts: back to the oldest point shown, at least a day.
fn span_of(points: &[&BackupPoint], now: OffsetDateTime) -> f64 {
    points
        .iter()
        .filter_map(|p| p.started_at)
        .map(|t| (now - t).as_seconds_f64())
        .fold(86_400.0_f64, f64::max)
        * 1.05
}

fn axis(now: OffsetDateTime, span: f64, height: f64) -> String {
    let mut svg = format!(
        "<line x1=\"{MARGIN}\" y1=\"{y}\" x2=\"{x2}\" y2=\"{y}\" stroke=\"#9aa3b2\"/>",
        y = height - 18.0,
        x2 = WIDTH - MARGIN
    );
    for (x, anchor, label) in [
        (
            MARGIN,
            "start",
            time_text(now - time::Duration::seconds_f64(span)),
        ),
        (WIDTH - MARGIN, "end", "now".to_string()),
    ] {
        let _ = write!(
            svg,
            "<text x=\"{x}\" y=\"{y}\" font-size=\"10\" fill=\"#5b6475\" text-anchor=\"{anchor}\">{}</text>",
            escape(&label),
            y = height - 4.0
        );
    }
    svg
}

fn timeline(points: &[&BackupPoint], now: OffsetDateTime) -> String {
    let height = 70.0;
    let span = span_of(points, now);
    let mut svg = format!(
        "<svg class=\"timeline\" width=\"{WIDTH}\" height=\"{height}\" viewBox=\"0 0 {WIDTH} {height}\" role=\"img\" aria-label=\"backups and verifications\">"
    );
    svg.push_str(&axis(now, span, height));
    // Oldest first, so that the newest is drawn on top where backups are close together.
    for p in points.iter().rev() {
        let Some(at) = p.started_at else { continue };
        let x = x_of(at, now, span);
        let fill = match p.tier.as_deref() {
            Some("weekly") => "#7b4bd6",
            Some("monthly") => "#d6731f",
            Some(_) => "#2f6fdb",
            None => "#6b7280",
        };
        let ring = match p
            .verifications
            .iter()
            .map(|v| v.verdict)
            .max_by_key(|v| *v == Verdict::Failed)
        {
            Some(Verdict::Passed) => Some("#1f8a4c"),
            Some(Verdict::Failed) => Some("#c62828"),
            _ => None,
        };
        if let Some(ring) = ring {
            let _ = write!(
                svg,
                "<circle class=\"verification\" cx=\"{x:.1}\" cy=\"26\" r=\"10\" fill=\"none\" stroke=\"{ring}\" stroke-width=\"3\"/>"
            );
        }
        let _ = write!(
            svg,
            "<circle class=\"backup\" cx=\"{x:.1}\" cy=\"26\" r=\"6\" fill=\"{fill}\"><title>{}</title></circle>",
            escape(&format!(
                "{} · {} · {}",
                p.backup_id,
                p.tier.as_deref().unwrap_or("unreadable"),
                p.bytes.map_or("-".into(), human_bytes)
            ))
        );
    }
    svg.push_str("</svg>");
    svg
}

fn sizes(points: &[&BackupPoint], now: OffsetDateTime) -> String {
    let span = span_of(points, now);
    let largest = points
        .iter()
        .filter_map(|p| p.bytes)
        .max()
        .unwrap_or(1)
        .max(1) as f64;
    let mut svg = format!(
        "<svg class=\"sizes\" width=\"{WIDTH}\" height=\"{CHART_HEIGHT}\" viewBox=\"0 0 {WIDTH} {CHART_HEIGHT}\" role=\"img\" aria-label=\"backup sizes\">"
    );
    svg.push_str(&axis(now, span, CHART_HEIGHT));
    let base = CHART_HEIGHT - 18.0;
    for p in points {
        let (Some(at), Some(bytes)) = (p.started_at, p.bytes) else {
            continue;
        };
        let h = ((bytes as f64 / largest) * (base - 10.0)).max(1.0);
        let _ = write!(
            svg,
            "<rect class=\"size\" x=\"{x:.1}\" y=\"{y:.1}\" width=\"6\" height=\"{h:.1}\" fill=\"#2f6fdb\"><title>{}</title></rect>",
            escape(&format!("{} · {}", p.backup_id, human_bytes(bytes))),
            x = x_of(at, now, span) - 3.0,
            y = base - h,
        );
    }
    let _ = write!(
        svg,
        "<text x=\"4\" y=\"12\" font-size=\"10\" fill=\"#5b6475\">{}</text></svg>",
        escape(&human_bytes(largest as u64))
    );
    svg
}

/// The measured restore's time until loaded, when measured (results from before it was are
/// shown as `-`).
pub fn loaded_text(d: &DatabaseStatus) -> String {
    match d.rto_seconds {
        Some(_) => d.rto_loaded_seconds.map_or("-".into(), seconds_text),
        None => "-".into(),
    }
}

/// The measured restore times, two series on one scale: until ready (the RTO) and until
/// loaded, with a legend.
fn rto_trend(points: &[&BackupPoint], now: OffsetDateTime) -> String {
    let mut measured: Vec<(OffsetDateTime, f64, Option<f64>)> = points
        .iter()
        .flat_map(|p| p.verifications.iter())
        .filter(|v| v.level == Level::Restore)
        .filter_map(|v| {
            v.restore_seconds
                .map(|s| (v.checked_at, s, v.loaded_seconds))
        })
        .collect();
    measured.sort_by_key(|(at, _, _)| *at);
    if measured.is_empty() {
        return "<p class=\"rto none\">No restore has been measured yet: run a restore-level \
                verification (<code>backstop verify --level restore</code>, or the weekly verify \
                function).</p>"
            .into();
    }
    let span = span_of(points, now);
    let largest = measured
        .iter()
        .flat_map(|(_, ready, loaded)| [Some(*ready), *loaded])
        .flatten()
        .fold(1.0_f64, f64::max);
    let base = CHART_HEIGHT - 18.0;
    let y_of = |seconds: f64| base - (seconds / largest) * (base - 10.0);
    let mut svg = format!(
        "<svg class=\"rto\" width=\"{WIDTH}\" height=\"{CHART_HEIGHT}\" viewBox=\"0 0 {WIDTH} {CHART_HEIGHT}\" role=\"img\" aria-label=\"measured restore time: loaded and ready\">"
    );
    svg.push_str(&axis(now, span, CHART_HEIGHT));
    let ready: Vec<(f64, f64, f64)> = measured
        .iter()
        .map(|(at, s, _)| (x_of(*at, now, span), y_of(*s), *s))
        .collect();
    let loaded: Vec<(f64, f64, f64)> = measured
        .iter()
        .filter_map(|(at, _, loaded)| loaded.map(|s| (x_of(*at, now, span), y_of(s), s)))
        .collect();
    // Loaded is drawn first and wider (a line under the ready line, a ring around its point),
    // so that both stay visible where the two are the same.
    for (series, colour, label, coords) in [
        ("loaded", LOADED_COLOUR, "loaded", &loaded),
        ("ready", READY_COLOUR, "ready", &ready),
    ] {
        let (line_width, radius) = match series {
            "ready" => (2.0, 3.5),
            _ => (5.0, 6.0),
        };
        if coords.is_empty() {
            continue;
        }
        let path: Vec<String> = coords
            .iter()
            .map(|(x, y, _)| format!("{x:.1},{y:.1}"))
            .collect();
        let _ = write!(
            svg,
            "<polyline class=\"rto-{series}\" points=\"{}\" fill=\"none\" stroke=\"{colour}\" stroke-width=\"{line_width}\"/>",
            path.join(" ")
        );
        let point_class = match series {
            "ready" => "rto-point",
            _ => "rto-loaded-point",
        };
        for (x, y, s) in coords {
            let _ = write!(
                svg,
                "<circle class=\"{point_class}\" cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"{radius}\" fill=\"{colour}\"><title>{}</title></circle>",
                escape(&format!("{label}: {}", seconds_text(*s)))
            );
        }
    }
    let _ = write!(
        svg,
        "<text x=\"4\" y=\"12\" font-size=\"10\" fill=\"#5b6475\">{}</text></svg>",
        escape(&seconds_text(largest))
    );
    let _ = write!(
        svg,
        "<div class=\"legend rto-legend\">measured restore time:<i style=\"background:{LOADED_COLOUR}\"></i>loaded \
         (rows, indexes, constraints)<i style=\"background:{READY_COLOUR}\"></i>ready (statistics in place: the RTO)</div>"
    );
    svg
}

/// `3 h 20 min`-style ages.
pub fn age_text(seconds: Option<u64>) -> String {
    match seconds {
        None => "-".into(),
        Some(s) if s < 3600 => format!("{} min", s / 60),
        Some(s) if s < 172_800 => format!("{} h {} min", s / 3600, s % 3600 / 60),
        Some(s) => format!("{} d {} h", s / 86_400, s % 86_400 / 3600),
    }
}

/// `1 min 5 s`-style durations.
pub fn seconds_text(seconds: f64) -> String {
    let whole = seconds.round() as u64;
    if whole < 60 {
        format!("{seconds:.1} s")
    } else {
        format!("{} min {} s", whole / 60, whole % 60)
    }
}

/// The newest backup's size, with its trend against the ones before.
pub fn size_text(d: &DatabaseStatus) -> String {
    let Some(bytes) = d.backups.newest_bytes else {
        return "-".into();
    };
    match d.size_ratio {
        Some(ratio) => format!("{} ({:+.0} %)", human_bytes(bytes), (ratio - 1.0) * 100.0),
        None => human_bytes(bytes),
    }
}

/// The newest verification: its level and verdict, and how long ago.
pub fn verified_text(d: &DatabaseStatus) -> String {
    match &d.backups.last_verification {
        None => "never".into(),
        Some(v) => format!(
            "{} {} ({} ago)",
            v.level.as_str(),
            match v.verdict {
                Verdict::Passed => "passed",
                Verdict::Failed => "FAILED",
                Verdict::NotVerifiableNow => "not verifiable now",
            },
            age_text(Some(v.age_seconds))
        ),
    }
}

/// A time as people read it in a status page: `2026-12-06 14:05 UTC`.
pub fn time_text(at: OffsetDateTime) -> String {
    let at = at.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02} UTC",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute()
    )
}

/// Text made safe for HTML content and attributes.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::health::Finding;
    use crate::health::backups::BackupHealth;
    use crate::status::VerificationPoint;

    fn status_with(message: &str) -> StoreStatus {
        let now = OffsetDateTime::UNIX_EPOCH + time::Duration::days(20_000);
        let point = |days: i64, tier: &str, verdict: Option<Verdict>| BackupPoint {
            backup_id: format!("b{days}"),
            started_at: Some(now - time::Duration::days(days)),
            tier: Some(tier.into()),
            bytes: Some(1_000_000 + days as u64),
            encrypted: Some(true),
            problem: None,
            verifications: verdict
                .map(|verdict| VerificationPoint {
                    level: Level::Restore,
                    verdict,
                    checked_at: now - time::Duration::days(days) + time::Duration::hours(2),
                    restore_seconds: Some(40.0 + days as f64),
                    // The oldest result is from before loaded was measured.
                    loaded_seconds: (days < 7).then_some(30.0 + days as f64),
                })
                .into_iter()
                .collect(),
        };
        StoreStatus {
            store: "s3://bucket/<prod>".into(),
            generated_at: now,
            status: HealthStatus::Warning,
            databases: vec![DatabaseStatus {
                database_id: "app".into(),
                status: HealthStatus::Warning,
                backups: BackupHealth {
                    last_backup: Some("b1".into()),
                    age_seconds: Some(86_400),
                    backup_count: 3,
                    total_bytes: 3_000_000,
                    newest_bytes: Some(1_000_001),
                    median_previous_bytes: Some(1_000_002),
                    last_verification: None,
                    recovery_point_age_seconds: None,
                    in_progress: None,
                    rto_seconds: Some(41.0),
                    rto_loaded_seconds: Some(31.0),
                    last_restore_test: None,
                    oldest_backup_age_seconds: None,
                },
                tier: Some("daily".into()),
                size_ratio: Some(0.99),
                encrypted: Some(true),
                rto_seconds: Some(41.0),
                rto_loaded_seconds: Some(31.0),
                recovery_point: None,
                objectives: None,
                findings: vec![Finding::new(
                    "backup_age",
                    crate::alert::Severity::Warning,
                    message,
                )],
                timeline: vec![
                    point(1, "daily", Some(Verdict::Passed)),
                    point(7, "weekly", Some(Verdict::Failed)),
                    point(30, "monthly", None),
                ],
            }],
        }
    }

    #[test]
    fn the_page_draws_every_backup_verification_and_measured_restore() {
        let html = render(&status_with("late"));
        assert_eq!(html.matches("class=\"backup\"").count(), 3);
        assert_eq!(html.matches("class=\"verification\"").count(), 2);
        assert_eq!(html.matches("class=\"rto-point\"").count(), 2);
        // Loaded and ready as two series; the result from before loaded was measured has a
        // ready point only.
        assert_eq!(html.matches("class=\"rto-loaded-point\"").count(), 1);
        assert!(html.contains("class=\"rto-ready\"") && html.contains("class=\"rto-loaded\""));
        assert!(html.contains("rto-legend"));
        assert!(html.contains("<td class=\"num\">31.0 s</td><td class=\"num\">41.0 s</td>"));
        assert_eq!(html.matches("class=\"size\"").count(), 3);
        assert!(html.contains("id=\"db-app\"") && html.contains("badge warning"));
        assert!(!html.contains("<script") && !html.contains("src=\"http"));
    }

    #[test]
    fn a_restore_measured_before_loaded_was_shows_a_dash_for_loaded() {
        let mut status = status_with("late");
        status.databases[0].rto_loaded_seconds = None;
        let html = render(&status);
        assert!(
            html.contains("<td class=\"num\">-</td><td class=\"num\">41.0 s</td>"),
            "{html}"
        );
        assert!(html.contains("loaded in -"));
    }

    #[test]
    fn text_from_the_store_is_escaped() {
        let html = render(&status_with("<img src=x onerror=alert(1)> & 'more'"));
        assert!(!html.contains("<img"), "{html}");
        assert!(html.contains("&lt;img src=x onerror=alert(1)&gt; &amp; &#39;more&#39;"));
        assert!(html.contains("s3://bucket/&lt;prod&gt;"));
    }

    #[test]
    fn the_objectives_show_each_figure_against_its_objective_and_its_state() {
        use crate::objectives::{Judged, ObjectiveFigures, Objectives, State, samples::Sample};
        let judged = |state, seconds, objective| Judged {
            state,
            seconds,
            objective_seconds: objective,
        };
        let sample = Sample {
            database_id: "app".into(),
            checked_at: time::macros::datetime!(2026-12-06 10:00 UTC),
            objectives: Objectives {
                rpo: std::time::Duration::from_secs(43_200),
                rto: std::time::Duration::from_secs(14_400),
                restore_test_every: None,
            },
            figures: ObjectiveFigures {
                rpo: judged(State::AtRisk, Some(25_200.0), 43_200.0),
                rto: judged(State::Unknown, None, 14_400.0),
                restore_test: None,
                rto_backup_id: None,
                rto_is_loaded: false,
            },
        };
        let line = objectives_line(&sample);
        assert!(
            line.contains(
                "<span class=\"obj-at-risk\">RPO 7 h 0 min of 12 h 0 min: at-risk</span>"
            ),
            "{line}"
        );
        assert!(
            line.contains("RTO unmeasured of 4 h 0 min: unknown"),
            "{line}"
        );
    }
}
