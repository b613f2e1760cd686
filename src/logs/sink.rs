//! One process instance's output: both streams framed into records, handed to the log
//! file's writer, kept in the ring, teed to the terminal, offered to followers.
//!
//! Each chunk read from a pipe becomes one [`Unframed`] chunk, counted but not framed,
//! which a timestamped file's writer, the terminal's printer and the ring frame on their
//! own threads; or, when its lines are needed as it comes (see [`LogSink::per_line`]),
//! one [`Batch`] of records. Either is published under one short lock that assigns its
//! sequence numbers, so the file, the ring, the terminal and the followers all see the
//! same order and the two streams never interleave mid-line. Nothing under
//! that lock waits: the writer queues (its worker does the file I/O), the terminal queues
//! or drops, followers are only told that there is more. The only thing a chunk may wait
//! for is room in the writer's queue, and only while the file is taking data (see
//! `writer.rs`); that wait happens in the pump, before the next read.

use std::collections::VecDeque;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::watch;

use super::batch::{Batch, BatchBuilder};
use super::buffers::{self, Chunk};
use super::file::Notices;
use super::line::{Framer, MAX_LINE};
use super::ring::{Entry, Ring};
use super::terminal::Tee;
use super::unframed::Unframed;
use super::writer::{FileWriter, OpenState, Raw};
use super::{LogLine, Stream};
use crate::config::spec::LogSpec;

/// How many stderr lines are kept for the restart history, whatever `buffer_lines` is.
pub const STDERR_HISTORY: usize = 16;
/// Each of them at most this long (bytes): it is a hint for a human, not a log.
const STDERR_LINE_MAX: usize = 512;

/// Called with the text of each complete line of the child's output (not warden's
/// markers), on the thread that reads the pipes: keep it short (a regex match), and never
/// call back into the sink.
pub type LineWatch = Box<dyn Fn(&[u8]) + Send + Sync>;

pub struct LogSink {
    name: Arc<str>,
    timestamps: bool,
    /// One per stream (stdout, stderr): the fragment of a line still waiting for its end.
    framers: [Mutex<Framer>; 2],
    /// Taken for the publication of one chunk.
    inner: Mutex<Inner>,
    /// Taken after `inner` while publishing, and alone by readers (`tail`, followers) and
    /// by [`super::ring::settle`].
    ring: Arc<Mutex<Ring>>,
    writer: FileWriter,
    tee: Option<Tee>,
    watch: Mutex<Option<LineWatch>>,
    /// The sequence number of the newest record, for followers to wait on. Made by the
    /// first follower: most sinks never have one, and a channel costs 350 bytes.
    newest: Mutex<Option<watch::Sender<u64>>>,
    origin: Instant,
    /// Nanoseconds from `origin` to the last chunk read, plus one; 0 = nothing yet.
    last_output: AtomicU64,
    /// The pipes being read (stdout, stderr), to tell output that is waiting to be read.
    pipes: Mutex<[Option<Arc<OwnedFd>>; 2]>,
    /// Pumps between a `read` and recording its time.
    reading: AtomicUsize,
    /// Someone wants records kept in the ring: `buffer_lines > 0` or a follower.
    keeps_lines: AtomicUsize,
}

/// What a chunk becomes, before its sequence numbers.
enum Framed {
    Lines(Batch),
    Unframed(Unframed),
}

struct Inner {
    seq: u64,
    stderr: VecDeque<Box<[u8]>>,
}

impl std::fmt::Debug for LogSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogSink")
            .field("name", &self.name)
            .field("path", &self.writer.path())
            .field("timestamps", &self.timestamps)
            .finish_non_exhaustive()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic elsewhere (in a line watch) must not stop the output of a process.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

fn index(stream: Stream) -> usize {
    usize::from(stream == Stream::Stderr)
}

impl LogSink {
    /// Hand the log file (and the files rotation opens later) to the process's user.
    /// The `chown` happens on the writer's worker, like every file operation.
    pub fn set_owner(&self, uid: Option<u32>, gid: u32) {
        self.writer.set_owner(uid, gid);
    }

    /// A sink writing to the log file at `path`. Touches no file here: the file is opened
    /// by the writer's worker (see [`LogSink::ensure_open`]). `name` is the instance name
    /// shown by the terminal tee; `notices` receives warnings about the file (disk full).
    pub fn new(
        name: &str,
        path: &Path,
        spec: &LogSpec,
        tee: Option<Tee>,
        notices: Option<Notices>,
    ) -> Arc<LogSink> {
        if let Some(tee) = &tee {
            tee.register(name);
        }
        let writer = FileWriter::new(path, spec.max_size, spec.keep, spec.timestamps, notices);
        Arc::new(LogSink {
            name: name.into(),
            timestamps: spec.timestamps,
            framers: Default::default(),
            inner: Mutex::new(Inner {
                seq: 0,
                stderr: VecDeque::new(),
            }),
            ring: Ring::shared(spec.buffer_lines),
            writer,
            tee,
            watch: Mutex::new(None),
            newest: Mutex::new(None),
            origin: Instant::now(),
            last_output: AtomicU64::new(0),
            pipes: Mutex::default(),
            reading: AtomicUsize::new(0),
            keeps_lines: AtomicUsize::new(usize::from(spec.buffer_lines > 0)),
        })
    }

    pub fn name(&self) -> &Arc<str> {
        &self.name
    }

    pub fn path(&self) -> &Path {
        self.writer.path()
    }

    /// Opens the log file if it is not open, waiting at most `limit` for the outcome.
    /// `Err(Some(why, errno))` if it cannot be opened; `Err(None)` if opening is still
    /// going on after `limit` (a FIFO without a reader, a hung mount): output is then
    /// dropped and counted until it opens.
    pub async fn ensure_open(&self, limit: Duration) -> Result<(), Option<(String, Option<i32>)>> {
        self.writer.ensure_open(limit).await
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
        self.record_output();
        if !self.per_line(stream) {
            return self.skim(stream, Chunk::copy(chunk));
        }
        if let Some(batch) = self.frame(stream, Some(chunk)) {
            self.publish(Some(Framed::Lines(batch)), Some(Raw::Borrowed(chunk)));
        }
    }

    /// [`LogSink::write`] of a chunk in a buffer from `buffers.rs`, which a verbatim
    /// file's writer takes over instead of copying it. For the pipe reader.
    pub(super) fn write_chunk(&self, stream: Stream, chunk: Vec<u8>) {
        if chunk.is_empty() || stream == Stream::Warden {
            self.write(stream, &chunk);
            return buffers::give(chunk);
        }
        self.record_output();
        if !self.per_line(stream) {
            return self.skim(stream, Chunk::new(chunk));
        }
        let batch = self.frame(stream, Some(&chunk));
        // A timestamped file takes the records, not the bytes.
        let raw = match self.timestamps {
            true => {
                buffers::give(chunk);
                None
            }
            false => Some(Raw::Shared(Chunk::new(chunk))),
        };
        self.publish(batch.map(Framed::Lines), raw);
    }

    /// A chunk whose lines nobody needs on the capture thread: a verbatim file takes its
    /// bytes; a timestamped file, the terminal and the ring (if it keeps anything) take the
    /// chunk as it is, with the one time it was read, and frame it themselves.
    fn skim(&self, stream: Stream, chunk: Arc<Chunk>) {
        let time = SystemTime::now();
        let (records, carried) = lock(&self.framers[index(stream)]).skim(&chunk);
        let kept = self.keeps_lines.load(Ordering::Relaxed) > 0;
        let entry = (kept || self.timestamps || self.tee.is_some()).then(|| {
            Framed::Unframed(Unframed::new(
                time,
                stream,
                carried,
                Arc::clone(&chunk),
                records,
            ))
        });
        self.publish(entry, Some(Raw::Shared(chunk)));
    }

    fn record_output(&self) {
        let since = self.origin.elapsed().as_nanos() as u64;
        self.last_output
            .store(since.saturating_add(1), Ordering::SeqCst);
    }

    /// The child's `stream` has ended (or its reader was stopped): the fragment left
    /// without a newline, if any, is written out as a partial line. The stream may start
    /// again afterwards (the next run).
    pub fn end_of_stream(&self, stream: Stream) {
        if stream != Stream::Warden
            && let Some(batch) = self.frame(stream, None)
        {
            self.publish(Some(Framed::Lines(batch)), None);
        }
    }

    /// A line from warden itself (`--- run 3 started, pid 4242`): into the ring, to the
    /// followers, and into the file when it is timestamped (a verbatim file holds the
    /// child's bytes only). Never to the terminal: warden prints its events there itself.
    pub fn marker(&self, text: &str) {
        // A newline inside would break the one-record-per-line file format.
        let text: String = text
            .chars()
            .map(|c| if c == '\n' || c == '\r' { ' ' } else { c })
            .collect();
        let mut cut = text.len().min(MAX_LINE);
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        let mut b = BatchBuilder::default();
        b.push(&text.as_bytes()[..cut], false);
        let batch = b.finish(SystemTime::now(), Stream::Warden);
        self.publish(Some(Framed::Lines(batch)), None);
    }

    /// Whether something needs this chunk's lines on the capture thread, as they come:
    /// the restart history (stderr), a line watch. Otherwise the chunk is counted, not
    /// framed: a timestamped file's writer and the terminal's printer frame it on their
    /// own threads (every record of a chunk has the time it was read), and the ring when
    /// someone reads it.
    fn per_line(&self, stream: Stream) -> bool {
        stream == Stream::Stderr || lock(&self.watch).is_some()
    }

    /// Frames a chunk (`None`: the end of the stream) into the batch to publish; `None`
    /// when the stream ends with nothing pending.
    fn frame(&self, stream: Stream, chunk: Option<&[u8]>) -> Option<Batch> {
        let time = SystemTime::now();
        let mut records = BatchBuilder::with_capacity(chunk.map_or(0, <[u8]>::len));
        {
            let mut framer = lock(&self.framers[index(stream)]);
            if chunk.is_none() && !framer.has_pending() {
                return None;
            }
            match chunk {
                Some(chunk) => framer.feed(chunk, |text, partial| records.push(text, partial)),
                None => framer.finish(|text, partial| records.push(text, partial)),
            }
        }
        let batch = records.finish(time, stream);
        if let Some(watch) = lock(&self.watch).as_ref() {
            for record in batch.records().filter(|r| !r.partial) {
                watch(record.text);
            }
        }
        Some(batch)
    }

    /// Gives a chunk's records their sequence numbers and hands them to everyone, in one
    /// order, after the chunk's raw bytes.
    fn publish(&self, framed: Option<Framed>, raw: Option<Raw<'_>>) {
        let mut inner = lock(&self.inner);
        if let Some(raw) = raw {
            self.writer.write_bytes(raw);
        }
        let entry = match framed {
            Some(Framed::Lines(batch)) if !batch.is_empty() => {
                Entry::Lines(self.publish_lines(&mut inner, batch))
            }
            Some(Framed::Unframed(mut chunk)) if !chunk.is_empty() => {
                chunk.first_seq = inner.seq + 1;
                inner.seq += chunk.len() as u64;
                let chunk = Arc::new(chunk);
                self.writer.write_unframed(&chunk);
                if let Some(tee) = &self.tee {
                    tee.send_chunk(&self.name, &chunk);
                }
                // Asked again under `inner`, which a new follower holds while it takes
                // its cursor: a chunk numbered after it is in the ring.
                if self.keeps_lines.load(Ordering::Relaxed) == 0 {
                    return;
                }
                Entry::Unframed(chunk)
            }
            _ => return,
        };
        lock(&self.ring).push(entry);
        let newest = inner.seq;
        drop(inner);
        super::ring::settle();
        if let Some(newest_tx) = &*lock(&self.newest) {
            newest_tx.send_replace(newest);
        }
    }

    /// Numbers `batch` and hands it to everyone who takes records as they come.
    fn publish_lines(&self, inner: &mut Inner, mut batch: Batch) -> Arc<Batch> {
        batch.first_seq = inner.seq + 1;
        inner.seq += batch.len() as u64;
        let batch = Arc::new(batch);
        if batch.stream == Stream::Stderr {
            let keep = batch.len().min(STDERR_HISTORY);
            for record in batch.records().skip(batch.len() - keep) {
                if inner.stderr.len() == STDERR_HISTORY {
                    inner.stderr.pop_front();
                }
                let text = &record.text[..record.text.len().min(STDERR_LINE_MAX)];
                inner.stderr.push_back(text.into());
            }
        }
        self.writer.write_records(&batch);
        if let Some(tee) = &self.tee {
            tee.send_batch(&self.name, &batch);
        }
        batch
    }

    /// The last `n` lines kept (at most `buffer_lines`), oldest first.
    pub fn tail(&self, n: usize) -> Vec<LogLine> {
        lock(&self.ring).tail(n)
    }

    /// The last `n` lines, and from then on every new line (see [`Follow`]).
    pub fn follow(self: &Arc<Self>, n: usize) -> (Vec<LogLine>, Follow) {
        let inner = lock(&self.inner);
        let mut ring = lock(&self.ring);
        ring.follow(true);
        self.keeps_lines.fetch_add(1, Ordering::Relaxed);
        let tail = ring.tail(n);
        let cursor = inner.seq;
        // Made while `inner` is held: a record published after `cursor` is announced on
        // the channel, since its publisher looks for one only after it let go of `inner`.
        let newest = lock(&self.newest)
            .get_or_insert_with(|| watch::Sender::new(cursor))
            .subscribe();
        drop((ring, inner));
        let follow = Follow {
            sink: Arc::downgrade(self),
            ring: self.ring.clone(),
            newest,
            cursor,
        };
        (tail, follow)
    }

    /// The last `n` stderr lines (at most [`STDERR_HISTORY`]) as display text, oldest
    /// first, for the restart history. Kept even when `buffer_lines` is 0.
    pub fn last_stderr(&self, n: usize) -> Vec<String> {
        let inner = lock(&self.inner);
        let skip = inner.stderr.len().saturating_sub(n);
        inner
            .stderr
            .iter()
            .skip(skip)
            .map(|text| super::display::sanitize(text))
            .collect()
    }

    /// When the child last wrote anything that warden has read, on either stream.
    pub fn last_output_at(&self) -> Option<Instant> {
        match self.last_output.load(Ordering::SeqCst) {
            0 => None,
            n => Some(self.origin + Duration::from_nanos(n - 1)),
        }
    }

    /// Whether the child wrote output that warden has not read yet (it waits in a pipe,
    /// or a reader is between reading it and noting when). A verdict about silence must
    /// not be taken while this holds: warden was behind, not the child.
    pub fn output_pending(&self) -> bool {
        // This order matters: bytes leave the pipe before `reading` drops back, and
        // `reading` drops after `last_output` is set.
        let waiting = lock(&self.pipes)
            .iter()
            .flatten()
            .any(|fd| bytes_waiting(fd) > 0);
        waiting || self.reading.load(Ordering::SeqCst) > 0
    }

    /// Bytes that did not reach the log file so far (disk full, a stalled sink, ...).
    pub fn dropped_bytes(&self) -> u64 {
        self.writer.dropped_bytes()
    }

    /// Bytes waiting for the log file's writer.
    pub fn queued_bytes(&self) -> usize {
        self.writer.queued_bytes()
    }

    /// Sets (or, with `None`, removes) the function called with each complete line.
    pub fn set_line_watch(&self, watch: Option<LineWatch>) {
        *lock(&self.watch) = watch;
    }

    /// Waits until the writer may take more (see `writer.rs`).
    pub(super) async fn room(&self) {
        self.writer.room().await;
    }

    /// Whether [`LogSink::room`] would return at once.
    pub(super) fn has_room(&self) -> bool {
        self.writer.has_room()
    }

    /// What the pump reads from; see [`LogSink::output_pending`].
    pub(super) fn attach(&self, stream: Stream, pipe: Option<Arc<OwnedFd>>) {
        lock(&self.pipes)[index(stream)] = pipe;
    }

    /// A pump is about to read (`true`), or has published what it read (`false`).
    pub(super) fn reading(&self, active: bool) {
        if active {
            self.reading.fetch_add(1, Ordering::SeqCst);
        } else {
            self.reading.fetch_sub(1, Ordering::SeqCst);
        }
    }

    /// Waits, at most `limit`, until the log file has everything published so far (or
    /// its writer is stalled). For tests and the end of `up`.
    pub fn flush(&self, limit: Duration) -> bool {
        self.writer.flush(limit)
    }

    /// See [`Ring::shape`].
    #[cfg(test)]
    pub(crate) fn ring_shape(&self) -> (usize, usize, usize) {
        lock(&self.ring).shape()
    }

    #[cfg(test)]
    pub(crate) fn with_file<R>(&self, f: impl FnOnce(&mut super::file::LogFile) -> R) -> Option<R> {
        self.writer.with_file(f)
    }

    /// The outcome of the log file's last open.
    pub fn open_state(&self) -> OpenState {
        self.writer.open_state()
    }
}

/// The number of bytes waiting in a pipe (0 if it cannot be told).
fn bytes_waiting(fd: &OwnedFd) -> usize {
    let mut n: libc::c_int = 0;
    // SAFETY: FIONREAD writes one int; the descriptor is open while we hold it.
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), libc::FIONREAD, &mut n) };
    if r < 0 { 0 } else { n.max(0) as usize }
}

/// A follower of one sink: every record after the ones it has seen, at its own pace.
pub struct Follow {
    sink: Weak<LogSink>,
    /// The sink's ring, held so that what was written before the sink went (the last
    /// lines of a run at shutdown) is still read before [`Followed::Closed`].
    ring: Arc<Mutex<Ring>>,
    newest: watch::Receiver<u64>,
    cursor: u64,
}

/// What a follower gets next.
#[derive(Debug)]
pub enum Followed {
    /// Lines in order, after `skipped` lines that were no longer kept when it came to
    /// them (it fell behind).
    Lines { skipped: u64, lines: Vec<LogLine> },
    /// The sink is gone: the supervisor replaced or removed the instance.
    Closed,
}

impl Follow {
    /// The next lines (at most `max_lines` of them, and about `max_bytes` of text),
    /// waiting for them if need be.
    pub async fn next(&mut self, max_bytes: usize, max_lines: usize) -> Followed {
        // Once the sink is gone nothing more is written: one last look, then the end.
        let mut gone = false;
        loop {
            self.newest.borrow_and_update();
            let (skipped, lines) = lock(&self.ring).after(self.cursor, max_bytes, max_lines);
            if skipped > 0 || !lines.is_empty() {
                self.cursor = lines.last().map_or(self.cursor + skipped, |l| l.seq);
                return Followed::Lines { skipped, lines };
            }
            if gone || self.sink.strong_count() == 0 {
                return Followed::Closed;
            }
            // Holding no sink while waiting: a replaced sink must be able to go. Its
            // sender goes with it, which ends the wait.
            gone = self.newest.changed().await.is_err();
        }
    }
}

impl Drop for Follow {
    fn drop(&mut self) {
        lock(&self.ring).follow(false);
        if let Some(sink) = self.sink.upgrade() {
            sink.keeps_lines.fetch_sub(1, Ordering::Relaxed);
        }
    }
}
