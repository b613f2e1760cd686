//! Getting a process's output into its log file without ever making anyone else wait.
//!
//! Every file operation (open, write, stat, rename, close) runs on a worker thread of a
//! small elastic pool, never on the thread that reads the pipes and never on the
//! supervisor's. A log path can hang forever: a FIFO nobody reads (`open` blocks, then
//! every `write` once 64 KiB are in it), a dead NFS server. Each sink has its own queue,
//! and at most one worker serves a sink at a time (so its records stay in order); a sink
//! whose worker hangs holds that worker only, and the pool starts another for the rest.
//!
//! The queue between the reader and the file is bounded in bytes, per sink
//! ([`QUEUE_MAX_BYTES`]) and for all sinks together ([`QUEUES_MAX_BYTES`]). While the file
//! takes data, a full queue makes the reader wait (the child then waits on its pipe:
//! nothing is lost to a disk that is merely slow). Once the worker has made no progress
//! for [`STALL`], the sink is stalled: what waits in its queue and what arrives is dropped
//! and counted instead, so the pipe keeps draining, the child never hangs on a log that
//! hangs, and a stalled sink holds no memory. When writing works again, a note says how
//! much is missing. At most [`MAX_ACTIVE`] workers write at once; one more is started
//! only for a sink whose worker hangs.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, PoisonError, Weak};
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::Notify;

use super::batch::Batch;
use super::buffers::{self, Chunk};
use super::file::{LogFile, Notices};
use super::unframed::Unframed;

/// Bytes one sink may have queued before its reader waits.
pub const QUEUE_MAX_BYTES: usize = 1 << 20;
/// Bytes all sinks together may have queued before readers wait (a reader may overshoot
/// by the one chunk it has in hand).
pub const QUEUES_MAX_BYTES: usize = 16 << 20;
/// A sink whose worker made no progress for this long is stalled: its output is dropped.
/// Longer than any pause a busy but working disk imposes on a `write`.
pub const STALL: Duration = Duration::from_secs(2);
/// `2026-11-22T10:15:30.123Z out`: what a timestamped record adds before `| `.
const PREFIX_LEN: usize = 28;
/// A worker serves one sink for about this many bytes before letting others go first.
const TURN: usize = 4 << 20;
/// Workers beyond the first exit after this long without work.
const IDLE_EXIT: Duration = Duration::from_secs(10);
/// Workers that may be writing at once; more would only compete for the same disk.
const MAX_ACTIVE: usize = 8;
/// Hanging sinks each hold a worker beyond [`MAX_ACTIVE`]; this bounds the threads they
/// can cost.
const MAX_WORKERS: usize = 512;

/// A chunk's raw bytes, as the reader has them.
pub enum Raw<'a> {
    Borrowed(&'a [u8]),
    /// The reader's buffer, shared with the ring (see `buffers.rs`).
    Shared(Arc<Chunk>),
}

/// Bytes queued across all sinks.
static QUEUED: AtomicUsize = AtomicUsize::new(0);
/// Signalled whenever a worker has finished an item: room may have been made, in its
/// sink's queue or in all of them.
static ROOM: Notify = Notify::const_new();

#[derive(Default)]
struct FileState {
    file: Option<LogFile>,
    /// Who the file is to belong to, for files opened after it was said.
    owner: Option<(Option<u32>, u32)>,
    /// When opening last failed.
    failed_at: Option<Instant>,
    /// Lost while the file was not open, for the next note.
    unwritten: u64,
}

/// How long a failed open is left alone before data tries again.
const RETRY_OPEN: Duration = Duration::from_secs(1);

/// The result of the last attempt to open the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpenState {
    /// Not tried yet, or being tried.
    Pending,
    Open,
    /// Why it could not be opened, and the errno if there was one.
    Failed(String, Option<i32>),
}

enum Item {
    Open,
    /// Give the file to this user and group (and the files rotation opens later).
    Owner(Option<u32>, u32),
    Records(Arc<Batch>),
    /// A chunk as read, for a timestamped file: the worker frames and stamps it.
    Unframed(Arc<Unframed>),
    /// Often the reader's own buffer, shared with the ring (see `buffers.rs`).
    Bytes(Arc<Chunk>),
}

impl Item {
    fn cost(&self) -> usize {
        match self {
            Item::Open | Item::Owner(..) => 0,
            Item::Records(batch) => batch.cost(),
            Item::Unframed(chunk) => chunk.cost(),
            Item::Bytes(bytes) => bytes.len(),
        }
    }
}

/// The writing side of one sink; dropping it closes the file (on a worker).
pub struct FileWriter {
    shared: Arc<Shared>,
}

struct Shared {
    path: PathBuf,
    max_size: u64,
    keep: u32,
    timestamps: bool,
    queue: Mutex<Queue>,
    /// Only ever locked by the one worker serving this sink (and by tests).
    file: Mutex<FileState>,
    dropped: Arc<AtomicU64>,
    /// Open attempts so far, and the last one's outcome. Held inline with a `Notify`
    /// rather than in a `watch` channel, which allocates its shared state (0.4 KiB per
    /// sink, with 500 idle processes 0.2 MiB) for a wait that happens once per run.
    opened: Mutex<(u64, OpenState)>,
    open_done: Notify,
    notices: Option<Notices>,
}

struct Queue {
    items: VecDeque<Item>,
    bytes: usize,
    /// In the pool's ready list, or being served by a worker.
    scheduled: bool,
    /// The worker is between taking items and handing them back.
    busy: bool,
    /// The last time the worker finished something, or the queue started waiting.
    since: Instant,
    /// Dropped while stalled since the file last took data: the next note reports them.
    unwritten: u64,
    /// Dropping since the file last took data (the user has been told).
    dropping: bool,
    closed: bool,
}

impl Queue {
    fn stalled(&self, now: Instant) -> bool {
        (self.busy || !self.items.is_empty()) && now.duration_since(self.since) >= STALL
    }
}

impl FileWriter {
    pub fn new(
        path: &Path,
        max_size: u64,
        keep: u32,
        timestamps: bool,
        notices: Option<Notices>,
    ) -> FileWriter {
        let shared = Arc::new(Shared {
            path: path.to_owned(),
            max_size,
            keep,
            timestamps,
            queue: Mutex::new(Queue {
                items: VecDeque::new(),
                bytes: 0,
                scheduled: false,
                busy: false,
                since: Instant::now(),
                unwritten: 0,
                dropping: false,
                closed: false,
            }),
            file: Mutex::default(),
            dropped: Arc::new(AtomicU64::new(0)),
            opened: Mutex::new((0, OpenState::Pending)),
            open_done: Notify::new(),
            notices,
        });
        registry().push(Arc::downgrade(&shared));
        FileWriter { shared }
    }

    pub fn path(&self) -> &Path {
        &self.shared.path
    }

    /// Bytes queued for the file now (an item a worker is writing included).
    pub fn queued_bytes(&self) -> usize {
        lock(&self.shared.queue).bytes
    }

    pub fn open_state(&self) -> OpenState {
        lock(&self.shared.opened).1.clone()
    }

    /// Bytes that did not reach the file (write errors, or dropped while stalled).
    pub fn dropped_bytes(&self) -> u64 {
        self.shared.dropped.load(Ordering::Relaxed)
    }

    /// Whether the reader may queue more now: the queue has room, or the file is stalled
    /// (then what comes is dropped, and waiting would only hold up the child).
    pub fn has_room(&self) -> bool {
        let q = lock(&self.shared.queue);
        (q.bytes < QUEUE_MAX_BYTES && QUEUED.load(Ordering::Relaxed) < QUEUES_MAX_BYTES)
            || q.stalled(Instant::now())
    }

    /// Waits until [`FileWriter::has_room`]. Only sinks that take data hold queued bytes
    /// (a stalled one drops its queue), so waiting for room always ends.
    pub async fn room(&self) {
        loop {
            let notified = ROOM.notified();
            if self.has_room() {
                return;
            }
            // The stall is noticed by time, not by an event.
            let _ = tokio::time::timeout(STALL / 4, notified).await;
        }
    }

    /// Queues a chunk's records (timestamped files) or raw bytes (verbatim files).
    pub fn write_records(&self, batch: &Arc<Batch>) {
        if self.shared.timestamps {
            self.push(Item::Records(Arc::clone(batch)));
        }
    }

    /// Queues a chunk as read for a timestamped file (a verbatim file takes its bytes
    /// through [`FileWriter::write_bytes`]).
    pub fn write_unframed(&self, chunk: &Arc<Unframed>) {
        if self.shared.timestamps {
            self.push(Item::Unframed(Arc::clone(chunk)));
        }
    }

    /// Queues a chunk's raw bytes for a verbatim file; `Raw::Shared` passes the reader's
    /// buffer itself (see `buffers.rs`).
    pub fn write_bytes(&self, raw: Raw<'_>) {
        let bytes = match raw {
            _ if self.shared.timestamps => return,
            Raw::Borrowed(b) => Chunk::copy(b),
            Raw::Shared(chunk) => chunk,
        };
        if !bytes.is_empty() {
            self.push(Item::Bytes(bytes));
        }
    }

    /// Gives the file (now, and after every rotation) to the process's user.
    pub fn set_owner(&self, uid: Option<u32>, gid: u32) {
        self.push(Item::Owner(uid, gid));
    }

    fn push(&self, item: Item) {
        let mut q = lock(&self.shared.queue);
        if q.closed {
            return;
        }
        let now = Instant::now();
        if !matches!(item, Item::Open | Item::Owner(..)) && q.stalled(now) {
            // What waits is dropped too: a stalled sink holds no memory.
            let mut lost = self.shared.file_size(&item);
            let mut freed = 0;
            q.items.retain(|queued| {
                if matches!(queued, Item::Open | Item::Owner(..)) {
                    return true;
                }
                lost += self.shared.file_size(queued);
                freed += queued.cost();
                false
            });
            q.bytes -= freed;
            QUEUED.fetch_sub(freed, Ordering::Relaxed);
            q.unwritten += lost;
            self.shared.dropped.fetch_add(lost, Ordering::Relaxed);
            let first = !std::mem::replace(&mut q.dropping, true);
            // Perhaps no worker could be started (out of threads): try again.
            let kick = q.scheduled && !q.busy;
            drop(q);
            if freed > 0 {
                ROOM.notify_waiters();
            }
            if kick {
                pool().kick();
            }
            if let Some(notices) = self.shared.notices.as_ref().filter(|_| first) {
                notices(format!(
                    "log file `{}` has taken no data for {}s (a FIFO nobody reads? a hung mount?): its output is dropped, and counted, until it does",
                    self.shared.path.display(),
                    STALL.as_secs()
                ));
            }
            return;
        }
        if q.items.is_empty() && !q.busy {
            q.since = now;
        }
        q.bytes += item.cost();
        QUEUED.fetch_add(item.cost(), Ordering::Relaxed);
        q.items.push_back(item);
        if !q.scheduled {
            q.scheduled = true;
            drop(q);
            pool().submit(Arc::clone(&self.shared));
        } else if !q.busy && now.duration_since(q.since) >= STALL / 2 {
            // Waiting for a worker this long: the others may all hang on their sinks.
            drop(q);
            pool().kick();
        }
    }

    /// Opens the file if it is not open (on a worker), and waits at most `limit` for the
    /// outcome. `Err(None)`: no outcome in time (the open hangs, or the worker is busy
    /// with a hanging write).
    pub async fn ensure_open(&self, limit: Duration) -> Result<(), Option<(String, Option<i32>)>> {
        let before = {
            let state = lock(&self.shared.opened);
            if state.1 == OpenState::Open {
                return Ok(());
            }
            state.0
        };
        self.push(Item::Open);
        let outcome = async {
            loop {
                // Listening before looking, so that an outcome in between is not missed.
                let done = self.shared.open_done.notified();
                tokio::pin!(done);
                done.as_mut().enable();
                {
                    let state = lock(&self.shared.opened);
                    if state.0 > before {
                        return state.1.clone();
                    }
                }
                done.await;
            }
        };
        match tokio::time::timeout(limit, outcome).await {
            Ok(OpenState::Open) => Ok(()),
            Ok(OpenState::Failed(why, errno)) => Err(Some((why, errno))),
            Ok(OpenState::Pending) | Err(_) => Err(None),
        }
    }

    /// Waits, at most `limit`, until everything queued so far is written (or the sink is
    /// stalled). Returns whether it was.
    pub fn flush(&self, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        wait_until(deadline, || self.shared.settled(Instant::now()))
    }

    #[cfg(test)]
    pub(crate) fn with_file<R>(&self, f: impl FnOnce(&mut LogFile) -> R) -> Option<R> {
        lock(&self.shared.file).file.as_mut().map(f)
    }
}

impl Drop for FileWriter {
    fn drop(&mut self) {
        // The file is closed by the worker (a `close` can hang like a `write`), once it
        // is done with what is queued.
        let mut q = lock(&self.shared.queue);
        q.closed = true;
        if !q.scheduled {
            q.scheduled = true;
            drop(q);
            pool().submit(Arc::clone(&self.shared));
        }
    }
}

impl Shared {
    /// The bytes `item` would have put in the file.
    fn file_size(&self, item: &Item) -> u64 {
        match item {
            Item::Open | Item::Owner(..) => 0,
            Item::Bytes(b) => b.len() as u64,
            Item::Records(batch) => (batch.text_len() + batch.len() * (PREFIX_LEN + 3)) as u64,
            // Framed only to count what is lost (a file not open, or stalled: then on the
            // capture thread, per chunk dropped); a file that takes data never asks.
            Item::Unframed(chunk) => (chunk.text_len() + chunk.len() * (PREFIX_LEN + 3)) as u64,
        }
    }

    /// Nothing queued, or nothing that will be written soon.
    fn settled(&self, now: Instant) -> bool {
        let q = lock(&self.queue);
        (q.items.is_empty() && !q.busy) || q.stalled(now)
    }

    fn progress(&self) {
        lock(&self.queue).since = Instant::now();
    }

    /// Serve this sink for one turn. Returns whether it has more to do.
    fn serve(self: &Arc<Self>) -> bool {
        let mut done = 0;
        loop {
            let mut q = lock(&self.queue);
            let Some(item) = q.items.pop_front() else {
                q.scheduled = false;
                let closed = q.closed;
                drop(q);
                if closed {
                    lock(&self.file).file.take();
                }
                return false;
            };
            q.busy = true;
            let unwritten = std::mem::take(&mut q.unwritten);
            drop(q);
            let cost = item.cost();
            self.handle(item, unwritten);
            {
                let mut q = lock(&self.queue);
                q.bytes -= cost;
                q.busy = false;
                q.since = Instant::now();
                q.dropping = false;
            }
            QUEUED.fetch_sub(cost, Ordering::Relaxed);
            ROOM.notify_waiters();
            settled().1.notify_all();
            done += cost.max(1);
            if done >= TURN {
                return true;
            }
        }
    }

    fn handle(&self, item: Item, unwritten: u64) {
        let mut state = lock(&self.file);
        if let Item::Owner(uid, gid) = item {
            state.owner = Some((uid, gid));
            if let Some(f) = state.file.as_mut() {
                f.set_owner(uid, gid);
            }
            return;
        }
        let now = Instant::now();
        // After a failed open, data waits a second for the next try rather than
        // hammering the path with one open per chunk.
        let may_try = matches!(item, Item::Open)
            || state
                .failed_at
                .is_none_or(|t| now.duration_since(t) >= RETRY_OPEN);
        if state.file.is_none() && may_try {
            let attempt = LogFile::open(
                &self.path,
                self.max_size,
                self.keep,
                Arc::clone(&self.dropped),
                self.notices.clone(),
            );
            let outcome = match attempt {
                Ok(mut f) => {
                    if let Some((uid, gid)) = state.owner {
                        f.set_owner(uid, gid);
                    }
                    state.file = Some(f);
                    state.failed_at = None;
                    OpenState::Open
                }
                Err(e) => {
                    state.failed_at = Some(now);
                    OpenState::Failed(e.to_string(), super::file::os_error(&e))
                }
            };
            let mut opened = lock(&self.opened);
            opened.0 += 1;
            opened.1 = outcome;
            drop(opened);
            self.open_done.notify_waiters();
        } else if matches!(item, Item::Open) {
            lock(&self.opened).0 += 1;
            self.open_done.notify_waiters();
        }
        let earlier = std::mem::take(&mut state.unwritten);
        let Some(f) = state.file.as_mut() else {
            let lost = self.file_size(&item);
            state.unwritten = earlier + unwritten + lost;
            self.dropped.fetch_add(lost, Ordering::Relaxed);
            return;
        };
        f.lost(unwritten + earlier);
        match item {
            Item::Open | Item::Owner(..) => {}
            Item::Bytes(bytes) => f.write(&bytes),
            Item::Records(batch) => self.write_records(f, &batch),
            Item::Unframed(chunk) => self.write_unframed(f, &chunk),
        }
    }

    /// Frames and stamps a chunk as read.
    fn write_unframed(&self, f: &mut LogFile, chunk: &Unframed) {
        let mut out = self.stamped(f, chunk.time, chunk.stream);
        chunk.frame(|text, partial| out.record(text, partial));
        out.finish();
    }

    /// Stamps a batch's records.
    fn write_records(&self, f: &mut LogFile, batch: &Batch) {
        let mut out = self.stamped(f, batch.time, batch.stream);
        for record in batch.records() {
            out.record(record.text, record.partial);
        }
        out.finish();
    }

    /// A writer of records read at `time` from `stream` into `f` (after the note of a
    /// loss, if one is due).
    fn stamped<'a>(
        &'a self,
        f: &'a mut LogFile,
        time: SystemTime,
        stream: super::Stream,
    ) -> Stamped<'a> {
        self.note_gap(f);
        let (line, piece) = stamps(time, stream);
        Stamped {
            shared: self,
            f,
            line,
            piece,
            buf: buffers::take_format(),
        }
    }

    /// Before the first record written after a loss, warden's note about it.
    fn note_gap(&self, f: &mut LogFile) {
        if f.gap() > 0 {
            let note = format!(
                "{} ---| [warden: {} bytes of log data could not be written]\n",
                humantime::format_rfc3339_millis(SystemTime::now()),
                f.gap()
            );
            f.write_note(note.as_bytes());
        }
    }
}

/// Records stamped in one pass into a recycled buffer (see `buffers.rs`), written when
/// the next record might not fit: once for a chunk of 100-byte lines. The stamp is
/// formatted once (a chunk's records share the time it was read).
struct Stamped<'a> {
    shared: &'a Shared,
    f: &'a mut LogFile,
    line: Vec<u8>,
    piece: Vec<u8>,
    buf: Vec<u8>,
}

impl Stamped<'_> {
    /// One record: its text, and whether it is a piece of a line that goes on.
    fn record(&mut self, text: &[u8], partial: bool) {
        let stamp = if partial { &self.piece } else { &self.line };
        // A record is at most MAX_LINE + 31 bytes: it always fits in an empty buffer.
        if self.buf.len() + stamp.len() + text.len() + 1 > self.buf.capacity() {
            self.f.write(&self.buf);
            self.buf.clear();
            self.shared.progress();
        }
        self.buf.extend_from_slice(stamp);
        self.buf.extend_from_slice(text);
        self.buf.push(b'\n');
    }

    fn finish(self) {
        self.f.write(&self.buf);
        buffers::give_format(self.buf);
    }
}

/// `2026-11-22T10:15:30.123Z out| ` and `... out+ `: what goes before a record's text
/// (`+` marks a piece of a line that goes on in the next record).
fn stamps(time: SystemTime, stream: super::Stream) -> (Vec<u8>, Vec<u8>) {
    let head = format!(
        "{} {}",
        humantime::format_rfc3339_millis(time),
        stream.tag()
    );
    let line = format!("{head}| ").into_bytes();
    let piece = format!("{head}+ ").into_bytes();
    (line, piece)
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Every writer, for [`flush_all`].
fn registry() -> MutexGuard<'static, Vec<Weak<Shared>>> {
    static WRITERS: OnceLock<Mutex<Vec<Weak<Shared>>>> = OnceLock::new();
    let mut writers = lock(WRITERS.get_or_init(Mutex::default));
    writers.retain(|w| w.strong_count() > 0);
    writers
}

/// Signalled whenever a worker finishes an item.
fn settled() -> &'static (Mutex<()>, Condvar) {
    static SETTLED: OnceLock<(Mutex<()>, Condvar)> = OnceLock::new();
    SETTLED.get_or_init(Default::default)
}

fn wait_until(deadline: Instant, done: impl Fn() -> bool) -> bool {
    let (m, cv) = settled();
    let mut guard = lock(m);
    loop {
        if done() {
            return true;
        }
        let now = Instant::now();
        if now >= deadline {
            return false;
        }
        // Bounded: a stall is noticed by time.
        let wait = (deadline - now).min(Duration::from_millis(50));
        guard = cv
            .wait_timeout(guard, wait)
            .unwrap_or_else(PoisonError::into_inner)
            .0;
    }
}

/// Waits, at most `limit`, until every sink has written what it was given (sinks that
/// are stalled are not waited for). For the end of `warden up`.
pub fn flush_all(limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    wait_until(deadline, || {
        let writers: Vec<Arc<Shared>> = registry().iter().filter_map(Weak::upgrade).collect();
        let now = Instant::now();
        writers.iter().all(|w| w.settled(now))
    })
}

/// The worker threads: started when a sink has work and no worker is idle, gone after
/// [`IDLE_EXIT`] without work (one stays).
struct Pool {
    state: Mutex<PoolState>,
    wake: Condvar,
}

#[derive(Default)]
struct PoolState {
    ready: VecDeque<Arc<Shared>>,
    /// The sinks workers are serving now.
    serving: Vec<Arc<Shared>>,
    workers: usize,
    idle: usize,
}

fn pool() -> &'static Pool {
    static POOL: OnceLock<Pool> = OnceLock::new();
    POOL.get_or_init(|| Pool {
        state: Mutex::default(),
        wake: Condvar::new(),
    })
}

static WORKER_SEQ: AtomicUsize = AtomicUsize::new(0);

impl Pool {
    fn submit(&'static self, job: Arc<Shared>) {
        lock(&self.state).ready.push_back(job);
        self.kick();
    }

    /// Wakes an idle worker for the ready jobs, or starts one if none is idle and fewer
    /// than [`MAX_ACTIVE`] are writing (workers stuck on a hanging sink do not count).
    /// Never called holding a sink's queue lock (this takes them after the pool's).
    fn kick(&'static self) {
        let mut state = lock(&self.state);
        if state.ready.is_empty() {
            return;
        }
        let now = Instant::now();
        let active = state
            .serving
            .iter()
            .filter(|job| !lock(&job.queue).stalled(now))
            .count();
        if state.idle > 0 || active >= MAX_ACTIVE || state.workers >= MAX_WORKERS {
            self.wake.notify_one();
            return;
        }
        state.workers += 1;
        drop(state);
        let n = WORKER_SEQ.fetch_add(1, Ordering::Relaxed);
        let spawned = std::thread::Builder::new()
            .name(format!("warden-log-{n}"))
            .stack_size(256 * 1024)
            .spawn(move || self.work());
        if let Err(e) = spawned {
            // The job waits for the next worker; its sink counts as stalled meanwhile.
            lock(&self.state).workers -= 1;
            tracing::debug!("cannot start a log writer thread: {e}");
        }
    }

    fn work(&'static self) {
        loop {
            let job = {
                let mut state = lock(&self.state);
                loop {
                    if let Some(job) = state.ready.pop_front() {
                        state.serving.push(Arc::clone(&job));
                        break job;
                    }
                    state.idle += 1;
                    // The worker that stays waits without a timeout: an idle warden must
                    // not wake up every IDLE_EXIT to find it has nothing to do.
                    let timed_out = if state.workers > 1 {
                        let (s, timeout) = self
                            .wake
                            .wait_timeout(state, IDLE_EXIT)
                            .unwrap_or_else(PoisonError::into_inner);
                        state = s;
                        timeout.timed_out()
                    } else {
                        state = self
                            .wake
                            .wait(state)
                            .unwrap_or_else(PoisonError::into_inner);
                        false
                    };
                    state.idle -= 1;
                    if timed_out && state.ready.is_empty() && state.workers > 1 {
                        state.workers -= 1;
                        return;
                    }
                }
            };
            let more = job.serve();
            let mut state = lock(&self.state);
            if let Some(i) = state.serving.iter().position(|j| Arc::ptr_eq(j, &job)) {
                state.serving.swap_remove(i);
            }
            if more {
                state.ready.push_back(job);
            }
        }
    }
}

/// For errors the caller wants to classify.
pub fn is_transient(errno: Option<i32>) -> bool {
    matches!(
        errno,
        Some(libc::EMFILE | libc::ENFILE | libc::EAGAIN | libc::ENOMEM | libc::EINTR)
    )
}
