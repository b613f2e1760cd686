//! One process instance's output: both streams framed into lines, written to the log
//! file, kept in the ring, broadcast to subscribers and teed to the terminal.
//!
//! Each chunk is handled whole under one lock, so the lines of the two streams never
//! interleave mid-line and the file, the ring and the subscribers see the same order. The
//! lock is held for one chunk only. Subscribers and the terminal can fall behind but
//! never hold up a writer; the file write is the only thing a chunk waits for, and a
//! failing file drops counted data instead of stopping.

use std::cell::RefCell;
#[cfg(test)]
use std::fs::File;
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::broadcast;

use super::file::LogFile;
use super::line::Framer;
use super::ring::Ring;
use super::terminal::Tee;
use super::{LogLine, Stream};
use crate::config::spec::LogSpec;

/// How many lines a subscriber may fall behind before it lags (and skips).
pub const SUBSCRIBER_CAPACITY: usize = 1024;
/// How many stderr lines are kept for the restart history, whatever `buffer_lines` is.
pub const STDERR_HISTORY: usize = 32;

/// Called with each complete line of the child's output, under the sink's lock: keep it
/// short (a regex match), and never call back into the sink.
pub type LineWatch = Box<dyn Fn(&LogLine) + Send + Sync>;

/// The longest prefix of a timestamped record: `2026-11-22T10:15:30.123Z out| `.
const PREFIX_MAX: usize = 64;
/// A thread's format buffer is released beyond this (a chunk of 64 KiB of empty lines
/// formats to 2 MiB).
const FORMAT_KEEP: usize = 4 * 1024 * 1024;

thread_local! {
    /// Where a chunk's records are formatted before their single `write`. Per thread, not
    /// per sink: a thousand idle sinks hold no buffer.
    static FORMAT_BUFFER: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

pub struct LogSink {
    name: Arc<str>,
    path: PathBuf,
    timestamps: bool,
    /// Framers and file; taken first, for the whole chunk.
    state: Mutex<State>,
    /// Taken after `state` while a chunk is framed, and alone by readers, so that
    /// `tail` never waits on a slow disk.
    recent: Mutex<Recent>,
    /// Created on the first `subscribe`: a broadcast channel allocates all its slots up
    /// front, and most sinks are never followed.
    subscribers: OnceLock<broadcast::Sender<Arc<LogLine>>>,
    tee: Option<Tee>,
    dropped: Arc<AtomicU64>,
    origin: Instant,
    /// Nanoseconds from `origin` to the last chunk read, plus one; 0 = nothing yet.
    last_output: AtomicU64,
}

struct State {
    stdout: Framer,
    stderr: Framer,
    file: LogFile,
    seq: u64,
    watch: Option<LineWatch>,
}

struct Recent {
    ring: Ring,
    stderr: Ring,
}

impl std::fmt::Debug for LogSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogSink")
            .field("name", &self.name)
            .field("path", &self.path)
            .field("timestamps", &self.timestamps)
            .finish_non_exhaustive()
    }
}

impl LogSink {
    /// Hand the log file (and the files rotation opens later) to the process's user.
    pub fn set_owner(&self, uid: Option<u32>, gid: u32) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.file.set_owner(uid, gid);
    }

    /// Opens the log file at `path` (see [`LogFile::open`]) and sets up the ring. `name`
    /// is the instance name shown by the terminal tee.
    pub fn open(
        name: &str,
        path: &Path,
        spec: &LogSpec,
        tee: Option<Tee>,
    ) -> io::Result<Arc<LogSink>> {
        let file = LogFile::open(path, spec.max_size, spec.keep)?;
        if let Some(tee) = &tee {
            tee.register(name);
        }
        Ok(Arc::new(LogSink {
            name: name.into(),
            path: path.to_owned(),
            timestamps: spec.timestamps,
            dropped: file.dropped_counter(),
            state: Mutex::new(State {
                stdout: Framer::new(),
                stderr: Framer::new(),
                file,
                seq: 0,
                watch: None,
            }),
            recent: Mutex::new(Recent {
                ring: Ring::new(spec.buffer_lines),
                stderr: Ring::new(STDERR_HISTORY),
            }),
            subscribers: OnceLock::new(),
            tee,
            origin: Instant::now(),
            last_output: AtomicU64::new(0),
        }))
    }

    pub fn name(&self) -> &Arc<str> {
        &self.name
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Takes a chunk read from the child's `stream`. A [`Stream::Warden`] chunk is taken
    /// as a marker.
    pub fn write(&self, stream: Stream, chunk: &[u8]) {
        if chunk.is_empty() {
            return;
        }
        if stream == Stream::Warden {
            self.marker(&String::from_utf8_lossy(chunk));
            return;
        }
        let since = self.origin.elapsed().as_nanos() as u64;
        self.last_output
            .store(since.saturating_add(1), Ordering::Relaxed);
        self.frame(stream, Some(chunk));
    }

    /// The child's `stream` has ended (or its reader was stopped): the fragment left
    /// without a newline, if any, is written out as a partial line. The stream may start
    /// again afterwards (the next run).
    pub fn end_of_stream(&self, stream: Stream) {
        if stream != Stream::Warden {
            self.frame(stream, None);
        }
    }

    /// A line from warden itself (`--- run 3 started, pid 4242`): into the ring, to the
    /// subscribers and the terminal, and into the file when it is timestamped (a verbatim
    /// file holds the child's bytes only).
    pub fn marker(&self, text: &str) {
        let time = SystemTime::now();
        // A newline inside would break the one-record-per-line file format.
        let text: String = text
            .chars()
            .map(|c| if c == '\n' || c == '\r' { ' ' } else { c })
            .collect();
        let mut state = self.lock_state();
        state.seq += 1;
        let line = Arc::new(LogLine {
            seq: state.seq,
            time,
            stream: Stream::Warden,
            text: text.into_bytes().into_boxed_slice(),
            partial: false,
        });
        self.publish(&mut lock(&self.recent), line.clone(), None, &mut Vec::new());
        if self.timestamps {
            with_format_buffer(|buf| {
                let (prefix, len) = prefix(time, Stream::Warden);
                buf.extend_from_slice(&prefix[..len]);
                buf.extend_from_slice(b"| ");
                buf.extend_from_slice(&line.text);
                buf.push(b'\n');
                state.file.write(buf);
            });
        }
    }

    /// The last `n` lines kept (at most `buffer_lines`), oldest first.
    pub fn tail(&self, n: usize) -> Vec<Arc<LogLine>> {
        lock(&self.recent).ring.tail(n)
    }

    /// Every line from now on. A subscriber more than [`SUBSCRIBER_CAPACITY`] lines behind
    /// gets `RecvError::Lagged` and skips ahead; it never holds up the writer.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<LogLine>> {
        self.subscribers
            .get_or_init(|| broadcast::channel(SUBSCRIBER_CAPACITY).0)
            .subscribe()
    }

    /// The last `n` stderr lines (at most [`STDERR_HISTORY`]) as display text, oldest
    /// first, for the restart history. Kept even when `buffer_lines` is 0.
    pub fn last_stderr(&self, n: usize) -> Vec<String> {
        lock(&self.recent)
            .stderr
            .tail(n)
            .iter()
            .map(|line| line.display_text())
            .collect()
    }

    /// When the child last wrote anything, on either stream (for `output.silence`).
    pub fn last_output_at(&self) -> Option<Instant> {
        match self.last_output.load(Ordering::Relaxed) {
            0 => None,
            n => Some(self.origin + Duration::from_nanos(n - 1)),
        }
    }

    /// Bytes that could not be written to the log file so far (disk full, ...).
    pub fn dropped_bytes(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Sets (or, with `None`, removes) the function called with each complete line.
    pub fn set_line_watch(&self, watch: Option<LineWatch>) {
        self.lock_state().watch = watch;
    }

    #[cfg(test)]
    pub(crate) fn set_check_interval(&self, every: Duration) {
        self.lock_state().file.set_check_interval(every);
    }

    /// Frames a chunk (`None`: the end of the stream) and sends its lines everywhere.
    fn frame(&self, stream: Stream, chunk: Option<&[u8]>) {
        let time = SystemTime::now();
        let mut guard = self.lock_state();
        let state = &mut *guard;
        let framer = if stream == Stream::Stderr {
            &mut state.stderr
        } else {
            &mut state.stdout
        };
        if chunk.is_none() && !framer.has_pending() {
            return;
        }
        let lines_wanted = self.tee.is_some() || state.watch.is_some() || self.has_subscribers();
        let mut recent = lock(&self.recent);
        let lines_wanted = lines_wanted || recent.ring.capacity() > 0;
        let (prefix, prefix_len) = if self.timestamps {
            prefix(time, stream)
        } else {
            ([0; PREFIX_MAX], 0)
        };
        with_format_buffer(|buf| {
            if self.timestamps && state.file.gap() > 0 {
                let note = format!(
                    "{} ---| [warden: {} bytes of log data could not be written]\n",
                    humantime::format_rfc3339_millis(time),
                    state.file.gap()
                );
                state.file.write_note(note.as_bytes());
            }
            let seq = &mut state.seq;
            let watch = state.watch.as_ref();
            let mut for_terminal = Vec::new();
            let mut emit = |text: &[u8], partial: bool| {
                if self.timestamps {
                    buf.extend_from_slice(&prefix[..prefix_len]);
                    buf.extend_from_slice(if partial { b"+ " } else { b"| " });
                    buf.extend_from_slice(text);
                    buf.push(b'\n');
                }
                *seq += 1;
                if lines_wanted || stream == Stream::Stderr {
                    let line = Arc::new(LogLine {
                        seq: *seq,
                        time,
                        stream,
                        text: text.into(),
                        partial,
                    });
                    self.publish(&mut recent, line, watch, &mut for_terminal);
                }
            };
            match chunk {
                Some(chunk) => framer.feed(chunk, &mut emit),
                None => framer.finish(&mut emit),
            }
            drop(recent);
            if let Some(tee) = self.tee.as_ref().filter(|_| !for_terminal.is_empty()) {
                tee.send_lines(&self.name, for_terminal);
            }
            if self.timestamps {
                state.file.write(buf);
            } else if let Some(chunk) = chunk {
                state.file.write(chunk);
            }
        });
    }

    /// `for_terminal` collects the lines for the tee, sent once per chunk by the caller.
    fn publish(
        &self,
        recent: &mut Recent,
        line: Arc<LogLine>,
        watch: Option<&LineWatch>,
        for_terminal: &mut Vec<Arc<LogLine>>,
    ) {
        if let Some(watch) = watch
            && !line.partial
            && line.stream != Stream::Warden
        {
            watch(&line);
        }
        if line.stream == Stream::Stderr {
            recent.stderr.push(line.clone());
        }
        if let Some(subscribers) = self.subscribers.get().filter(|s| s.receiver_count() > 0) {
            // Fails only when the last subscriber just left.
            let _ = subscribers.send(line.clone());
        }
        // warden's own markers reach the terminal as events, not as the child's output.
        if self.tee.is_some() && line.stream != Stream::Warden {
            for_terminal.push(line.clone());
        }
        recent.ring.push(line);
    }

    fn has_subscribers(&self) -> bool {
        self.subscribers
            .get()
            .is_some_and(|s| s.receiver_count() > 0)
    }

    fn lock_state(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }
}

/// A panic elsewhere (in a line watch) must not stop the output of a process.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// `2026-11-22T10:15:30.123Z out` (no separator): computed once per chunk.
fn prefix(time: SystemTime, stream: Stream) -> ([u8; PREFIX_MAX], usize) {
    let mut prefix = [0; PREFIX_MAX];
    let mut rest = &mut prefix[..];
    let _ = write!(
        rest,
        "{} {}",
        humantime::format_rfc3339_millis(time),
        stream.tag()
    );
    let len = PREFIX_MAX - rest.len();
    (prefix, len)
}

fn with_format_buffer<R>(f: impl FnOnce(&mut Vec<u8>) -> R) -> R {
    FORMAT_BUFFER.with(|cell| match cell.try_borrow_mut() {
        Ok(mut buf) => {
            buf.clear();
            let result = f(&mut buf);
            if buf.capacity() > FORMAT_KEEP {
                *buf = Vec::new();
            }
            result
        }
        // Re-entered from a line watch: rare, a fresh buffer will do.
        Err(_) => f(&mut Vec::new()),
    })
}

#[cfg(test)]
mod tests {
    use std::fs;

    use super::*;

    #[test]
    fn a_gap_in_a_timestamped_log_is_noted_once_writable_again() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("web.log");
        let spec = LogSpec {
            file: None,
            max_size: 1 << 40,
            keep: 0,
            timestamps: true,
            buffer_lines: 10,
        };
        let sink = LogSink::open("web", &path, &spec, None).unwrap();
        sink.write(Stream::Stdout, b"kept 1\n");
        let real = fs::OpenOptions::new().append(true).open(&path).unwrap();
        sink.lock_state()
            .file
            .replace_file(File::options().write(true).open("/dev/full").unwrap());
        sink.write(Stream::Stdout, b"lost\n");
        sink.write(Stream::Stdout, b"lost too\n");
        assert_eq!(sink.dropped_bytes(), 35 + 39);
        sink.lock_state().file.replace_file(real);
        sink.write(Stream::Stdout, b"kept 2\n");
        sink.write(Stream::Stdout, b"kept 3\n");
        let log = String::from_utf8(fs::read(&path).unwrap()).unwrap();
        let records: Vec<_> = log.lines().map(|l| &l[25..]).collect();
        assert_eq!(
            records,
            [
                "out| kept 1",
                "---| [warden: 74 bytes of log data could not be written]",
                "out| kept 2",
                "out| kept 3"
            ]
        );
        assert_eq!(sink.dropped_bytes(), 74);
        // The ring lost nothing.
        assert_eq!(sink.tail(10).len(), 5);
    }
}
