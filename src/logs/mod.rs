//! Output capture: the children's stdout and stderr, from the pipe to the log file, the
//! in-memory ring, the live subscribers and the terminal.
//!
//! This module owns, per process instance, one [`LogSink`]: the line framing of both
//! streams, the rotating log file, the ring of recent lines behind `warden logs` and the
//! dashboard, the broadcast of new lines, and the terminal tee of `warden up --no-tui`.
//! [`pump`] drains one pipe into a sink.
//!
//! What it must never do:
//! - block a child: readers never wait on the terminal or on a subscriber (they lag and
//!   are told so), and a failing disk drops counted bytes instead of stopping the reader;
//! - lose or alter a byte on the way to the log file while the disk takes it: the file gets
//!   the raw bytes (non-UTF-8, NULs, escapes, lines of any length, a last line without a
//!   newline);
//! - hand raw child bytes to a terminal: every display goes through
//!   [`LogLine::display_text`];
//! - decide anything about the process: it reports (`last_output_at`, the line watch,
//!   `last_stderr`) and the supervisor decides;
//! - panic on anything a child writes, or on any I/O error.
//!
//! Known limit: the file `write` runs on the reader's runtime thread, under the sink's
//! lock. A disk that fails is handled; a disk that hangs (a dead NFS server) holds up
//! that process's readers and the runtime thread they run on.

mod display;
mod file;
mod line;
mod reader;
mod ring;
mod sink;
mod terminal;
#[cfg(test)]
mod tests;

use std::time::SystemTime;

pub use line::MAX_LINE;
pub use reader::pump;
pub use sink::{LineWatch, LogSink, STDERR_HISTORY, SUBSCRIBER_CAPACITY};
pub use terminal::{TEE_QUEUE, Tee};

/// Where a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stream {
    Stdout,
    Stderr,
    /// Written by warden itself into the process's log (run start and exit markers,
    /// through [`LogSink::marker`]); never read from a pipe.
    Warden,
}

impl Stream {
    /// The three-letter tag used in timestamped log files.
    pub fn tag(self) -> &'static str {
        match self {
            Stream::Stdout => "out",
            Stream::Stderr => "err",
            Stream::Warden => "---",
        }
    }
}

/// One line (or one piece of a line) of a process's output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    /// Per sink, increasing by one per record, markers included; a gap seen by a
    /// subscriber means it lagged.
    pub seq: u64,
    /// When warden read it (the whole chunk shares one time).
    pub time: SystemTime,
    pub stream: Stream,
    /// The raw bytes, without the newline. Not necessarily UTF-8.
    pub text: Box<[u8]>,
    /// No newline followed: the line was longer than [`MAX_LINE`] and continues in the
    /// next record, or it was the last line of the stream and had no newline.
    pub partial: bool,
}

impl LogLine {
    /// The text made safe for a terminal or a widget: lossy UTF-8, escape sequences
    /// (CSI, OSC, DCS, ...) removed, control characters other than tab removed. For the
    /// CLI and the dashboard only; the log file always gets [`LogLine::text`].
    pub fn display_text(&self) -> String {
        display::sanitize(&self.text)
    }

    /// [`LogLine::display_text`] with the child's colours (SGR sequences) kept, for the
    /// dashboard, which draws them as styles.
    pub fn display_ansi(&self) -> String {
        display::sanitize_keep_sgr(&self.text)
    }
}
