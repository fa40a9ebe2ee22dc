//! Per-layer progress of a pull or push, shown on stderr.
//!
//! On a terminal each layer gets an indicatif bar, laid out like Docker's
//! (`a3ed95caeb02: Downloading [=====>   ]  1.2MB/2.2MB`). When stderr is not
//! a terminal each status change is one plain line (`a3ed95caeb02: Pull
//! complete`), as Docker prints when its output is piped; byte counts are
//! then left out so logs stay short. Quiet mode prints nothing.

use std::io::{IsTerminal, Write};
use std::sync::Arc;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Quiet,
    Lines,
    Bars,
}

/// Where and how progress is shown.
#[derive(Debug, Clone)]
pub struct Progress {
    mode: Mode,
    multi: Option<Arc<MultiProgress>>,
}

impl Progress {
    /// Bars when stderr is a terminal, plain lines otherwise.
    pub fn auto() -> Self {
        if std::io::stderr().is_terminal() {
            Self::bars()
        } else {
            Self::lines()
        }
    }

    /// Plain status lines on stderr.
    pub fn lines() -> Self {
        Self {
            mode: Mode::Lines,
            multi: None,
        }
    }

    /// Progress bars on stderr.
    pub fn bars() -> Self {
        Self {
            mode: Mode::Bars,
            multi: Some(Arc::new(MultiProgress::with_draw_target(
                ProgressDrawTarget::stderr(),
            ))),
        }
    }

    /// Nothing at all.
    pub fn quiet() -> Self {
        Self {
            mode: Mode::Quiet,
            multi: None,
        }
    }

    /// Whether anything is shown.
    pub fn is_quiet(&self) -> bool {
        self.mode == Mode::Quiet
    }

    /// One line of text (e.g. `latest: Pulling from library/busybox`).
    pub fn line(&self, text: &str) {
        match (&self.mode, &self.multi) {
            (Mode::Quiet, _) => {}
            (_, Some(multi)) => {
                multi.suspend(|| {
                    let _ = writeln!(std::io::stderr().lock(), "{text}");
                });
            }
            (_, None) => {
                let _ = writeln!(std::io::stderr().lock(), "{text}");
            }
        }
    }

    /// A progress line for one layer, named by its short id.
    pub fn item(&self, id: &str, status: &str) -> Item {
        let bar = match (&self.mode, &self.multi) {
            (Mode::Bars, Some(multi)) => {
                let bar = multi.add(ProgressBar::new(0));
                bar.set_style(
                    ProgressStyle::with_template("{prefix}: {msg}").expect("valid template"),
                );
                bar.set_prefix(id.to_string());
                bar.set_message(status.to_string());
                Some(bar)
            }
            _ => None,
        };
        let item = Item {
            id: id.to_string(),
            mode: self.mode,
            bar,
            multi: self.multi.clone(),
        };
        if item.mode == Mode::Lines {
            item.print(status);
        }
        item
    }
}

/// The progress line of one layer.
#[derive(Debug)]
pub struct Item {
    id: String,
    mode: Mode,
    bar: Option<ProgressBar>,
    multi: Option<Arc<MultiProgress>>,
}

impl Item {
    fn print(&self, status: &str) {
        let _ = writeln!(std::io::stderr().lock(), "{}: {status}", self.id);
    }

    /// A new status (`Waiting`, `Downloading`, `Verifying Checksum`, …).
    pub fn status(&self, status: &str) {
        match self.mode {
            Mode::Quiet => {}
            Mode::Lines => self.print(status),
            Mode::Bars => {
                if let Some(bar) = &self.bar {
                    bar.set_message(status.to_string());
                }
            }
        }
    }

    /// Starts byte counting towards `total`.
    pub fn start(&self, status: &str, total: u64) {
        if let Some(bar) = &self.bar {
            bar.set_style(
                ProgressStyle::with_template(
                    "{prefix}: {msg:<18} {wide_bar:.cyan/blue} {bytes}/{total_bytes}",
                )
                .expect("valid template")
                .progress_chars("=> "),
            );
            bar.set_length(total);
            bar.set_position(0);
            bar.set_message(status.to_string());
        } else {
            self.status(status);
        }
    }

    /// `n` more bytes moved.
    pub fn advance(&self, n: u64) {
        if let Some(bar) = &self.bar {
            bar.inc(n);
        }
    }

    /// Restarts the count (a retried download).
    pub fn reset(&self, status: &str) {
        if let Some(bar) = &self.bar {
            bar.set_position(0);
        }
        self.status(status);
    }

    /// The final status, printed as a plain line.
    pub fn finish(&self, status: &str) {
        match &self.bar {
            Some(bar) => {
                // The finished line becomes plain text above the live bars,
                // so nothing is left half-drawn when the last bar ends.
                bar.finish_and_clear();
                match &self.multi {
                    Some(multi) => multi.suspend(|| self.print(status)),
                    None => self.print(status),
                }
            }
            None => self.status(status),
        }
    }
}
