//! Progress on a terminal: a bar with throughput and ETA; nothing at all when stderr is not a
//! terminal (logs and CI stay clean).

use indicatif::{ProgressBar, ProgressStyle};

use crate::common::interactive;

/// A progress bar, or nothing when not on a terminal.
pub struct Progress {
    bar: ProgressBar,
}

impl Progress {
    fn new(total: u64, template: &str) -> Self {
        let bar = if interactive() {
            ProgressBar::new(total)
        } else {
            ProgressBar::hidden()
        };
        if let Ok(style) = ProgressStyle::with_template(template) {
            bar.set_style(style.progress_chars("=> "));
        }
        Self { bar }
    }

    /// Progress over `total` bytes of table data.
    pub fn bytes(total: u64) -> Self {
        Self::new(
            total,
            "  [{bar:32}] {bytes}/{total_bytes}  {bytes_per_sec}  ETA {eta}  {msg}",
        )
    }

    /// Progress over `total` rows.
    pub fn rows(total: u64) -> Self {
        Self::new(
            total,
            "  [{bar:32}] {human_pos}/{human_len} rows  {per_sec}  ETA {eta}  {msg}",
        )
    }

    pub fn set_total(&self, total: u64) {
        self.bar.set_length(total);
    }

    pub fn advance(&self, by: u64, message: String) {
        self.bar.inc(by);
        self.bar.set_message(message);
    }

    /// Prints a line above the bar (or nowhere, off a terminal).
    pub fn note(&self, line: String) {
        if !self.bar.is_hidden() {
            self.bar.println(line);
        }
    }

    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}
