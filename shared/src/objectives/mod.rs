//! Recovery objectives: what a team declares (RPO, RTO, a restore-test cadence) and whether the
//! store's evidence meets them, judged as a pure function of the figures health already reads.
//!
//! - RPO now: the age of the newest recovery point, a committed backup or, with a change
//!   stream, the newest point its seals reach (only while a backup can carry a restore there).
//!   Missed at or above the objective; at risk once the run that was due has not landed
//!   ([`late_after`]: an interval and a half), since one more failure then misses it.
//! - RTO: the newest passed test restore's time until the database was ready (statistics in
//!   place). Missed above the objective; at risk from [`RTO_AT_RISK_SHARE`] of it.
//! - Restore test: the newest passed restore-level verification's age against the cadence;
//!   at risk once the scheduled test that was due has not passed.
//!
//! Each judgement is a [`Finding`] that says what brings the objective back, a metric, and a
//! [`Sample`] the monitor keeps under `_backstop/objectives/<database-id>/`, from which
//! `backstop report` tells how long each objective was met over a period.

pub mod samples;

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::alert::Severity;
use crate::health::Finding;
use crate::health::backups::BackupHealth;
use crate::layout::DatabaseId;
use crate::metrics::Metric;

/// The declared objectives of every database, as JSON: database id → [`DeclaredText`], e.g.
/// `{"main": {"rpo": "1h", "rto": "4h", "restore_test_every": "30d", "backup_every": "6h"}}`.
pub const OBJECTIVES_VAR: &str = "BACKSTOP_OBJECTIVES";

/// From this share of the RTO objective on, a measured restore time is at risk.
pub const RTO_AT_RISK_SHARE: f64 = 0.8;

/// When a run that was due counts as not landed: its interval and half of it more (a margin for
/// the scheduler's window and the run's own time).
pub fn late_after(every: Duration) -> Duration {
    every + every / 2
}

/// A default objective from a schedule: two and a half intervals, so one failed run (landing
/// late by up to half an interval) does not miss it and a second does.
pub fn tolerating_one_failure(every: Duration) -> Duration {
    every * 2 + every / 2
}

/// `seconds` for people, when it is a duration at all (a figure read from a store may be
/// anything: negative, not a number, or past what a duration holds).
pub fn seconds_span(seconds: f64) -> String {
    Duration::try_from_secs_f64(seconds).map_or_else(|_| "-".into(), crate::clock::span)
}

/// A figure read from a store, when it can be a restore's seconds: finite, not negative, and
/// under a hundred years.
fn plausible_seconds(seconds: f64) -> Option<f64> {
    (seconds.is_finite() && (0.0..MAX_SECONDS).contains(&seconds)).then_some(seconds)
}

/// A hundred years of seconds: no objective or figure means more.
const MAX_SECONDS: f64 = 100.0 * 366.0 * 86_400.0;

/// The RTO when none is declared: the team's four hours.
pub const DEFAULT_RTO: Duration = Duration::from_secs(4 * 3600);
/// The backup interval when none is given (the module's default schedule, rate(6 hours)).
pub const DEFAULT_BACKUP_EVERY: Duration = Duration::from_secs(6 * 3600);

/// One database's objectives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Objectives {
    /// The most data, as time, a restore may lose.
    #[serde(rename = "rpo_objective_seconds", with = "seconds")]
    pub rpo: Duration,
    /// The longest a restore may take until the database is ready.
    #[serde(rename = "rto_objective_seconds", with = "seconds")]
    pub rto: Duration,
    /// How often a restore must be tested; `None`: not declared, not judged.
    #[serde(
        rename = "restore_test_every_seconds",
        default,
        with = "seconds_option",
        skip_serializing_if = "Option::is_none"
    )]
    pub restore_test_every: Option<Duration>,
}

/// How often the jobs that refresh each figure run: what "the next schedule" means.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Schedules {
    #[serde(
        rename = "backup_every_seconds",
        default,
        with = "seconds_option",
        skip_serializing_if = "Option::is_none"
    )]
    pub backup_every: Option<Duration>,
    /// The change stream's drains, when one runs.
    #[serde(
        rename = "stream_every_seconds",
        default,
        with = "seconds_option",
        skip_serializing_if = "Option::is_none"
    )]
    pub stream_every: Option<Duration>,
    /// The scheduled test restore, when one runs.
    #[serde(
        rename = "restore_test_schedule_seconds",
        default,
        with = "seconds_option",
        skip_serializing_if = "Option::is_none"
    )]
    pub restore_test_schedule: Option<Duration>,
}

impl Schedules {
    /// The interval of the job that makes new recovery points: the stream's when one runs.
    pub fn recovery_point_every(&self) -> Duration {
        self.stream_every
            .or(self.backup_every)
            .unwrap_or(DEFAULT_BACKUP_EVERY)
    }
}

/// Objectives with the schedules they are judged against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Declared {
    #[serde(flatten)]
    pub objectives: Objectives,
    #[serde(flatten)]
    pub schedules: Schedules,
}

/// One database's entry of [`OBJECTIVES_VAR`] (or the CLI's flags), durations as people write
/// them (`90m`, `1h`, `4h 30m`, `30d`); every field optional.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeclaredText {
    pub rpo: Option<String>,
    pub rto: Option<String>,
    pub restore_test_every: Option<String>,
    pub backup_every: Option<String>,
    pub stream_every: Option<String>,
    pub restore_test_schedule: Option<String>,
}

impl DeclaredText {
    /// The objectives, with defaults from the schedules where not declared: an RPO of two and a
    /// half recovery-point intervals (one run may fail), the RTO [`DEFAULT_RTO`], and a restore
    /// test every two and a half scheduled ones when a test restore is scheduled (none judged
    /// otherwise).
    pub fn resolve(&self) -> Result<Declared, String> {
        let field = |name: &str, text: &Option<String>| {
            text.as_deref()
                .map(|t| parse_duration(t).map_err(|e| format!("{name}: {e}")))
                .transpose()
        };
        let schedules = Schedules {
            backup_every: field("backup_every", &self.backup_every)?,
            stream_every: field("stream_every", &self.stream_every)?,
            restore_test_schedule: field("restore_test_schedule", &self.restore_test_schedule)?,
        };
        let objectives = Objectives {
            rpo: field("rpo", &self.rpo)?
                .unwrap_or(tolerating_one_failure(schedules.recovery_point_every())),
            rto: field("rto", &self.rto)?.unwrap_or(DEFAULT_RTO),
            restore_test_every: field("restore_test_every", &self.restore_test_every)?
                .or(schedules.restore_test_schedule.map(tolerating_one_failure)),
        };
        Ok(Declared {
            objectives,
            schedules,
        })
    }
}

/// A duration as people write it: `90m`, `1h`, `4h 30m`, `30d`, `2weeks`. Zero is refused.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let duration = humantime::parse_duration(text.trim())
        .map_err(|e| format!("`{text}` is not a duration such as 30m, 1h or 30d ({e})"))?;
    if duration.is_zero() {
        return Err(format!("`{text}` is zero; give a positive duration"));
    }
    // A year of seconds at most fits every figure it is compared with, many times over.
    if duration > Duration::from_secs(100 * 366 * 86_400) {
        return Err(format!("`{text}` is more than a hundred years"));
    }
    Ok(duration)
}

/// A measured restore time against an RTO objective: missed above it, at risk from
/// [`RTO_AT_RISK_SHARE`] of it.
pub fn judge_rto(seconds: f64, objective: f64) -> State {
    if seconds > objective {
        State::Missed
    } else if seconds >= objective * RTO_AT_RISK_SHARE {
        State::AtRisk
    } else {
        State::Met
    }
}

/// [`OBJECTIVES_VAR`]'s JSON as written: database id → its declared text, unresolved (the CLI's
/// flags go over one entry before it is resolved).
pub fn parse_texts(raw: &str) -> Result<BTreeMap<String, DeclaredText>, String> {
    serde_json::from_str(raw).map_err(|e| {
        format!("not a JSON object of database ids to objectives such as {{\"main\": {{\"rpo\": \"1h\", \"rto\": \"4h\"}}}} ({e})")
    })
}

/// Parses [`OBJECTIVES_VAR`]'s JSON: each database's declared objectives. Errors name the
/// database and the field.
pub fn parse_declared(raw: &str) -> Result<BTreeMap<DatabaseId, Declared>, String> {
    let mut declared = BTreeMap::new();
    for (name, text) in parse_texts(raw)? {
        let id = DatabaseId::new(&name).map_err(|e| e.to_string())?;
        let resolved = text
            .resolve()
            .map_err(|e| format!("database `{name}`: {e}"))?;
        declared.insert(id, resolved);
    }
    Ok(declared)
}

/// Where an objective stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum State {
    Met,
    /// Met now; one more failed run, or a little slower restore, misses it.
    AtRisk,
    Missed,
    /// Nothing measured it yet.
    Unknown,
}

impl Judged {
    /// `RPO 2 h 0 min of 12 h 0 min: met`: the measured figure against the objective.
    pub fn describe(&self, name: &str) -> String {
        format!(
            "{name} {} of {}: {}",
            self.seconds.map_or("unmeasured".into(), seconds_span),
            seconds_span(self.objective_seconds),
            self.state.as_str()
        )
    }
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Met => "met",
            State::AtRisk => "at-risk",
            State::Missed => "missed",
            State::Unknown => "unknown",
        }
    }

    /// 1 met, 0 otherwise (an at-risk objective is still met), for the `*Met` metrics.
    pub fn met_value(self) -> f64 {
        match self {
            State::Met | State::AtRisk => 1.0,
            State::Missed | State::Unknown => 0.0,
        }
    }
}

/// One objective against its measurement.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Judged {
    pub state: State,
    /// The measured figure, in seconds; `None` when nothing measured it.
    #[serde(
        rename = "measured_seconds",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub seconds: Option<f64>,
    pub objective_seconds: f64,
}

/// Every declared objective of one database, judged at one moment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ObjectiveFigures {
    pub rpo: Judged,
    pub rto: Judged,
    /// The newest passed test restore's age against the cadence; absent when no cadence is
    /// declared.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restore_test: Option<Judged>,
    /// The test restore the RTO comes from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rto_backup_id: Option<String>,
    /// Whether the RTO is the loaded figure (a result from before readiness was measured).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub rto_is_loaded: bool,
}

impl ObjectiveFigures {
    pub fn metrics(&self) -> Vec<Metric> {
        let mut metrics = vec![
            Metric::seconds("RpoObjectiveSeconds", self.rpo.objective_seconds),
            Metric::count("RpoMet", self.rpo.state.met_value()),
            Metric::seconds("RtoObjectiveSeconds", self.rto.objective_seconds),
        ];
        if let Some(rpo) = self.rpo.seconds {
            metrics.push(Metric::seconds("RpoSeconds", rpo));
        }
        if let Some(rto) = self.rto.seconds {
            metrics.push(Metric::seconds("RtoSeconds", rto));
            metrics.push(Metric::count("RtoMet", self.rto.state.met_value()));
        }
        if let Some(test) = &self.restore_test {
            metrics.push(Metric::count("RestoreTestMet", test.state.met_value()));
            if let Some(age) = test.seconds {
                metrics.push(Metric::seconds("RestoreTestAgeSeconds", age));
            }
        }
        metrics
    }
}

/// What the store says, for the judgement.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Measured {
    /// Age of the newest recovery point (backup or stream); `None`: there is none.
    pub rpo: Option<Duration>,
    /// Whether a change stream gives the newest recovery point.
    pub from_stream: bool,
    /// The newest passed test restore: its backup, its age, ready and loaded seconds.
    pub restore_test: Option<RestoreTest>,
    /// How long the database has been backed up (the oldest committed backup's age): a
    /// cadence is missed without any test only once there was time for one.
    pub backed_up_for: Option<Duration>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RestoreTest {
    pub backup_id: String,
    pub age: Duration,
    pub ready_seconds: Option<f64>,
    pub loaded_seconds: Option<f64>,
}

impl Measured {
    /// The figures health read from the store. `watched_for`: how long the monitor has been
    /// keeping samples of this database (its oldest sample's age), which retention does not
    /// shorten as it does the oldest backup's.
    pub fn from_backups(backups: &BackupHealth, watched_for: Option<Duration>) -> Self {
        let backup = backups.age_seconds.map(Duration::from_secs);
        let point = backups.recovery_point_age_seconds.map(Duration::from_secs);
        // The stream's point counts only while a backup can carry a restore to it.
        let rpo = match (backup, point) {
            (Some(b), Some(p)) => Some(b.min(p)),
            (b, _) => b,
        };
        let backed_up_for = backups
            .oldest_backup_age_seconds
            .map(Duration::from_secs)
            .max(watched_for);
        Self {
            rpo,
            backed_up_for,
            from_stream: backup.is_some() && point.is_some() && point == rpo,
            restore_test: backups.last_restore_test.as_ref().map(|t| RestoreTest {
                backup_id: t.backup_id.clone(),
                age: Duration::from_secs(t.age_seconds),
                ready_seconds: backups.rto_seconds.and_then(plausible_seconds),
                loaded_seconds: backups.rto_loaded_seconds.and_then(plausible_seconds),
            }),
        }
    }
}

/// Judges `measured` against `declared`; the findings say what brings a missed objective back.
/// `store` and `database` go into the commands the findings print.
pub fn assess(
    declared: &Declared,
    measured: &Measured,
    store: &str,
    database: &str,
) -> (ObjectiveFigures, Vec<Finding>) {
    let objectives = &declared.objectives;
    let schedules = &declared.schedules;
    let span = |d: Duration| crate::clock::span(d);
    let mut findings = Vec::new();

    // RPO.
    let every = schedules.recovery_point_every();
    let rpo_state = match measured.rpo {
        None => State::Missed,
        Some(age) if age >= objectives.rpo => State::Missed,
        Some(age) if age >= late_after(every) => State::AtRisk,
        Some(_) => State::Met,
    };
    let backup_now =
        format!("backstop backup --db \"$DATABASE_URL\" --to {store} --database-id {database}");
    let source = if measured.from_stream || schedules.stream_every.is_some() {
        "the change stream's drains and the backups"
    } else {
        "the backups"
    };
    match (rpo_state, measured.rpo) {
        (State::Missed, None) => findings.push(
            Finding::new(
                "rpo",
                Severity::Critical,
                format!(
                    "RPO missed: there is no recovery point at all (objective {}); take a backup",
                    span(objectives.rpo)
                ),
            )
            .with_fix(backup_now.clone()),
        ),
        (State::Missed, Some(age)) => findings.push(
            Finding::new(
                "rpo",
                Severity::Critical,
                format!(
                    "RPO missed: the newest recovery point is {} old, above the objective of {}; \
                     {source} stopped making new ones: read the failing function's errors, and \
                     take a backup to bring it back",
                    span(age),
                    span(objectives.rpo)
                ),
            )
            .with_fix(backup_now.clone()),
        ),
        (State::AtRisk, Some(age)) => findings.push(
            Finding::new(
                "rpo",
                Severity::Warning,
                format!(
                    "RPO at risk: the newest recovery point is {} old against an objective of \
                     {}: the run due every {} did not land; if the next fails too, it is missed",
                    span(age),
                    span(objectives.rpo),
                    span(every)
                ),
            )
            .with_fix(backup_now.clone()),
        ),
        _ => {}
    }
    // A schedule that cannot meet the objective even when every run succeeds.
    if objectives.rpo < late_after(every) {
        findings.push(Finding::new(
            "rpo_schedule",
            Severity::Warning,
            format!(
                "the schedule cannot meet the RPO: recovery points come every {}, so with a \
                 run's margin the newest can be {} old against an objective of {}; back up more \
                 often, or run a change stream",
                span(every),
                span(late_after(every)),
                span(objectives.rpo)
            ),
        ));
    }

    // RTO.
    let test = measured.restore_test.as_ref();
    let rto_measured = test.and_then(|t| t.ready_seconds.or(t.loaded_seconds));
    let rto_is_loaded =
        test.is_some_and(|t| t.ready_seconds.is_none() && t.loaded_seconds.is_some());
    let rto_objective = objectives.rto.as_secs_f64();
    let rto_state = rto_measured.map_or(State::Unknown, |s| judge_rto(s, rto_objective));
    let verify_restore = format!(
        "backstop verify --from {store} --database-id {database} --level restore --scratch-db \"$SCRATCH_URL\""
    );
    let faster = "restore with more parallel jobs (--jobs) on a larger server, or make the slowest \
                  index builds lighter; then test a restore again to measure it";
    match (rto_state, rto_measured, test) {
        (State::Missed, Some(s), Some(t)) => findings.push(
            Finding::new(
                "rto",
                Severity::Critical,
                format!(
                    "RTO missed: the newest test restore (backup {}) took {} until the database \
                     was {}, above the objective of {}; {faster}",
                    t.backup_id,
                    seconds_span(s),
                    if rto_is_loaded { "loaded" } else { "ready" },
                    span(objectives.rto)
                ),
            )
            .with_fix(verify_restore.clone()),
        ),
        (State::AtRisk, Some(s), Some(t)) => findings.push(
            Finding::new(
                "rto",
                Severity::Warning,
                format!(
                    "RTO at risk: the newest test restore (backup {}) took {}, {:.0} % of the \
                     objective of {}; {faster}",
                    t.backup_id,
                    seconds_span(s),
                    s / rto_objective * 100.0,
                    span(objectives.rto)
                ),
            )
            .with_fix(verify_restore.clone()),
        ),
        (State::Unknown, _, _) => findings.push(
            Finding::new(
                "rto",
                if objectives.restore_test_every.is_some() {
                    Severity::Warning
                } else {
                    Severity::Info
                },
                format!(
                    "RTO unknown: no passed test restore has measured how long a restore takes \
                     (objective {}); test one",
                    span(objectives.rto)
                ),
            )
            .with_fix(verify_restore.clone()),
        ),
        _ => {}
    }

    // Restore-test cadence.
    let restore_test = objectives.restore_test_every.map(|cadence| {
        let next = schedules.restore_test_schedule.unwrap_or(Duration::ZERO);
        let state = match test.map(|t| t.age) {
            // No test yet: missed once the database has been backed up for a whole cadence.
            None if measured.backed_up_for.is_none_or(|d| d < cadence) => State::Unknown,
            None => State::Missed,
            Some(age) if age >= cadence => State::Missed,
            Some(age) if !next.is_zero() && age >= late_after(next) => State::AtRisk,
            Some(_) => State::Met,
        };
        match (state, test) {
            (State::Missed, None) => findings.push(
                Finding::new(
                    "restore_test",
                    Severity::Critical,
                    format!(
                        "restore test missed: no passed test restore is on record (one is due \
                         every {}); test one",
                        span(cadence)
                    ),
                )
                .with_fix(verify_restore.clone()),
            ),
            (State::Unknown, _) => findings.push(
                Finding::new(
                    "restore_test",
                    Severity::Warning,
                    format!(
                        "no test restore yet: the first is due within {} of the first backup \
                         ({} ago); test one",
                        span(cadence),
                        span(measured.backed_up_for.unwrap_or_default())
                    ),
                )
                .with_fix(verify_restore.clone()),
            ),
            (State::Missed, Some(t)) => findings.push(
                Finding::new(
                    "restore_test",
                    Severity::Critical,
                    format!(
                        "restore test missed: the newest passed test restore (backup {}) is {} \
                         old, and one is due every {}; test one",
                        t.backup_id,
                        span(t.age),
                        span(cadence)
                    ),
                )
                .with_fix(verify_restore.clone()),
            ),
            (State::AtRisk, Some(t)) => findings.push(
                Finding::new(
                    "restore_test",
                    Severity::Warning,
                    format!(
                        "restore test at risk: the newest passed test restore is {} old, one is \
                         due every {}, and the scheduled one (every {}) that was due has not \
                         passed; if the next fails too, it is missed",
                        span(t.age),
                        span(cadence),
                        span(next)
                    ),
                )
                .with_fix(verify_restore.clone()),
            ),
            _ => {}
        }
        Judged {
            state,
            seconds: test.map(|t| t.age.as_secs_f64()),
            objective_seconds: cadence.as_secs_f64(),
        }
    });

    let figures = ObjectiveFigures {
        rpo: Judged {
            state: rpo_state,
            seconds: measured.rpo.map(|d| d.as_secs_f64()),
            objective_seconds: objectives.rpo.as_secs_f64(),
        },
        rto: Judged {
            state: rto_state,
            seconds: rto_measured,
            objective_seconds: rto_objective,
        },
        restore_test,
        rto_backup_id: test.map(|t| t.backup_id.clone()),
        rto_is_loaded,
    };
    (figures, findings)
}

/// A duration serialized as whole seconds.
mod seconds {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_secs())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Ok(Duration::from_secs(u64::deserialize(d)?))
    }
}

/// An optional duration serialized as whole seconds.
mod seconds_option {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_some(&d.as_secs()),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        Ok(Option::<u64>::deserialize(d)?.map(Duration::from_secs))
    }
}

#[cfg(test)]
mod tests;
