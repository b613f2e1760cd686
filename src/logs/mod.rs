//! Output capture: the children's stdout and stderr, from the pipe to the log file, the
//! in-memory ring, the followers and the terminal.
//!
//! This module owns, per process instance, one [`LogSink`]: the line framing of both
//! streams, the log file's writer, the ring of recent lines behind `warden logs` and the
//! dashboard, the followers of `logs -f`, and the terminal tee of `warden up --no-tui`.
//! [`spawn_pumps`] drains a run's two pipes into its sink on the capture thread.
//!
//! Where things run: pipes are read on one capture thread of their own; files are
//! opened, written, rotated and closed on the log writer's worker threads; the terminal
//! is written by its printer thread. None of them is the supervisor's runtime, and none
//! waits on another: a stalled log file costs only its own process's log.
//!
//! Every queue is bounded in bytes: the writer's (a full queue makes a pump wait while
//! the disk is slow, and drops while the file hangs), the ring's (per process and in
//! total), the terminal's (drops, counted). A chunk of stdout is not framed on the
//! capture thread, only counted: the file, the ring and the terminal share it as read, and
//! a timestamped file's writer, the terminal's printer, or the ring when someone reads it,
//! frame it on their own threads (`unframed.rs`). Stderr and a process with a line watch
//! are framed as they come, once, into a [`Batch`] that all of them share. An owned
//! [`LogLine`] is made only for a client.
//!
//! What it must never do:
//! - block a child because of the terminal or a follower (they lag and are told so), or
//!   because of a log file that hangs (its data is dropped and counted);
//! - lose or alter a byte on the way to the log file while the disk takes it: the file gets
//!   the raw bytes (non-UTF-8, NULs, escapes, lines of any length, a last line without a
//!   newline);
//! - hand raw child bytes to a terminal: every display goes through [`display_text`];
//! - decide anything about the process: it reports (`last_output_at`, `output_pending`,
//!   the line watch, `last_stderr`, `dropped_bytes`) and the supervisor decides;
//! - panic on anything a child writes, or on any I/O error.

mod batch;
mod buffers;
mod display;
mod file;
mod line;
mod reader;
mod ring;
mod sink;
mod terminal;
#[cfg(test)]
mod test_output;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_stamped;
#[cfg(test)]
mod tests_unframed;
mod unframed;
mod writer;

use std::time::SystemTime;

pub use batch::Batch;
pub use file::Notices;
pub use line::MAX_LINE;
pub use reader::{pump, spawn_pumps};
pub use ring::{FOLLOW_WINDOW, RING_MAX_BYTES, RINGS_MAX_BYTES};
pub use sink::{Follow, Followed, LineWatch, LogSink, STDERR_HISTORY};
pub use terminal::{TEE_MAX_BYTES, Tee};
pub use writer::{OpenState, QUEUE_MAX_BYTES, QUEUES_MAX_BYTES, STALL, flush_all, is_transient};

/// Child bytes made safe for a terminal or a widget: lossy UTF-8, escape sequences (CSI,
/// OSC, DCS, ...) removed, control characters other than tab removed.
pub fn display_text(bytes: &[u8]) -> String {
    display::sanitize(bytes)
}

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
