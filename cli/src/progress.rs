//! Progress by phase (catalog, data and indexes, post-data, verification), from real counters:
//! the bytes that flow through the store as they flow, rows and items as the engine reports
//! them. On a terminal, a bar per phase with its throughput and ETA; off a terminal, one line
//! per phase when it ends (what it moved, in how long, how fast), so logs and CI stay short
//! and still say where the time went. With `--json`, nothing.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

use crate::common::{interactive, size};

/// What a phase counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Bytes,
    Items,
    /// Nothing counted: the phase's line says only how long it took.
    Time,
}

/// A counter a phase follows (bytes read from the store, say), sampled a few times a second.
type Counter = Box<dyn Fn() -> u64 + Send + Sync>;

struct Phase {
    name: String,
    unit: Unit,
    started: Instant,
    /// The counter and its value when the phase began.
    follows: Option<(Counter, u64)>,
}

struct State {
    bar: ProgressBar,
    phase: Option<Phase>,
}

/// One command's progress.
pub struct Progress {
    command: &'static str,
    on_terminal: bool,
    quiet: bool,
    state: Mutex<State>,
}

impl Progress {
    /// Progress of `command`; `quiet` (for `--json`) shows nothing.
    pub fn new(command: &'static str, quiet: bool) -> Arc<Self> {
        let progress = Arc::new(Self {
            command,
            on_terminal: interactive() && !quiet,
            quiet,
            state: Mutex::new(State {
                bar: ProgressBar::hidden(),
                phase: None,
            }),
        });
        if progress.on_terminal {
            let weak = Arc::downgrade(&progress);
            tokio::spawn(async move {
                while let Some(progress) = weak.upgrade() {
                    progress.sample();
                    drop(progress);
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            });
        }
        progress
    }

    /// Ends the phase under way and starts `name`, over `total` (0: not known).
    pub fn phase(&self, name: &str, total: u64, unit: Unit) {
        self.end_phase();
        let Ok(mut state) = self.state.lock() else {
            return;
        };
        let bar = if self.on_terminal {
            ProgressBar::new(total)
        } else {
            ProgressBar::hidden()
        };
        let counted = match unit {
            Unit::Bytes => "{bytes}/{total_bytes}  {bytes_per_sec}",
            Unit::Items => "{human_pos}/{human_len}  {per_sec}",
            Unit::Time => "{elapsed}",
        };
        let template = format!("  {name:<10} [{{bar:30}}] {counted}  ETA {{eta}}  {{msg}}");
        if let Ok(style) = ProgressStyle::with_template(&template) {
            bar.set_style(style.progress_chars("=> "));
        }
        state.bar = bar;
        state.phase = Some(Phase {
            name: name.to_string(),
            unit,
            started: Instant::now(),
            follows: None,
        });
    }

    /// The phase's position follows `counter` (from its value now).
    pub fn follow(&self, counter: impl Fn() -> u64 + Send + Sync + 'static) {
        if let Ok(mut state) = self.state.lock()
            && let Some(phase) = state.phase.as_mut()
        {
            let base = counter();
            phase.follows = Some((Box::new(counter), base));
        }
    }

    fn sample(&self) {
        if let Ok(state) = self.state.lock()
            && let Some(Phase {
                follows: Some((counter, base)),
                ..
            }) = &state.phase
        {
            state.bar.set_position(counter().saturating_sub(*base));
        }
    }

    pub fn advance(&self, by: u64) {
        if let Ok(state) = self.state.lock() {
            state.bar.inc(by);
        }
    }

    pub fn message(&self, message: String) {
        if let Ok(state) = self.state.lock() {
            state.bar.set_message(message);
        }
    }

    /// A line above the bar, on a terminal only (per-table detail a log does not need).
    pub fn note(&self, line: String) {
        if let Ok(state) = self.state.lock()
            && self.on_terminal
        {
            state.bar.println(line);
        }
    }

    /// A line said wherever stderr goes (unless quiet).
    pub fn say(&self, line: String) {
        if self.quiet {
            return;
        }
        match self.state.lock() {
            Ok(state) if self.on_terminal => state.bar.println(line),
            _ => eprintln!("{line}"),
        }
    }

    /// Ends the last phase.
    pub fn finish(&self) {
        self.end_phase();
    }

    /// Clears the bar of a phase that failed, saying nothing: the error is the one line.
    pub fn abandon(&self) {
        if let Ok(mut state) = self.state.lock() {
            state.phase = None;
            state.bar.finish_and_clear();
        }
    }

    fn end_phase(&self) {
        let Ok(mut state) = self.state.lock() else {
            return;
        };
        let Some(phase) = state.phase.take() else {
            return;
        };
        let done = match &phase.follows {
            Some((counter, base)) => counter().saturating_sub(*base),
            None => state.bar.position(),
        };
        state.bar.finish_and_clear();
        if self.quiet {
            return;
        }
        let seconds = phase.started.elapsed().as_secs_f64();
        let amount = match phase.unit {
            Unit::Bytes => format!(" {}", size(done)),
            Unit::Items => format!(" {done} items"),
            Unit::Time => String::new(),
        };
        let rate = match phase.unit {
            Unit::Bytes if seconds > 0.05 && done > 0 => {
                format!(" ({}/s)", size((done as f64 / seconds) as u64))
            }
            _ => String::new(),
        };
        let line = format!(
            "{}: {}:{amount} in {seconds:.1} s{rate}",
            self.command, phase.name
        );
        eprintln!("{line}");
    }
}
