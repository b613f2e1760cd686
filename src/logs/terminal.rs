//! The terminal tee of `warden up --no-tui`: every process's lines as `name │ text`.
//!
//! A terminal can stall (a paused pager, a hung ssh session, Ctrl-S) or simply be slower
//! than a child that writes a gigabyte a second. One dedicated OS thread does all the
//! printing, fed through a queue bounded in bytes ([`TEE_MAX_BYTES`]) that holds whole
//! chunks of output (shared with the ring, not copied); a chunk that finds the queue full
//! is dropped and its lines counted, and a notice says how many were not shown. The
//! terminal may miss lines but never slows a child: the log file is the lossless sink.
//! Text is always made inert first ([`super::display`]), never the child's raw bytes.

use std::collections::VecDeque;
use std::io::{self, BufWriter, Write};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use super::Stream;
use super::batch::Batch;
use super::display::{is_plain, sanitize};
use super::unframed::Unframed;

/// Bytes of output waiting for the printer before chunks are dropped.
pub const TEE_MAX_BYTES: usize = 1 << 20;
/// warden's own notices waiting for the printer before they are dropped too. They are
/// few and they are what a user most needs to see, so they have a budget of their own.
const NOTICES_MAX_BYTES: usize = 1 << 20;
/// Under a sustained flood the printer never catches up; it still reports drops this often.
const REPORT_EVERY: Duration = Duration::from_secs(1);
const WARDEN: &str = "warden";

/// A handle on the printer thread; cheap to clone, one per sink. The thread ends once
/// every handle is dropped.
#[derive(Clone)]
pub struct Tee {
    handle: Arc<Handle>,
}

/// Dropping the last one tells the printer to finish.
struct Handle(Arc<Shared>);

impl Drop for Handle {
    fn drop(&mut self) {
        lock(&self.0.queue).closed = true;
        self.0.wake.notify_all();
    }
}

enum Message {
    /// One chunk of a process's output.
    Lines(Arc<str>, Arc<Batch>),
    /// One chunk of a process's output as it was read: the printer frames it.
    Chunk(Arc<str>, Arc<Unframed>),
    Notice(String),
    Flush(mpsc::Sender<()>),
}

#[derive(Default)]
struct Queue {
    messages: VecDeque<Message>,
    bytes: usize,
    notice_bytes: usize,
    closed: bool,
}

#[derive(Default)]
struct Shared {
    queue: Mutex<Queue>,
    wake: Condvar,
    /// Names are padded to this many characters.
    width: AtomicUsize,
    dropped: AtomicU64,
    unreported: AtomicU64,
}

impl std::fmt::Debug for Tee {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tee")
            .field("dropped", &self.dropped_lines())
            .finish()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Tee {
    /// Starts the printer thread writing to `out`, with a stable colour per process name
    /// if `color`.
    pub fn spawn(out: Box<dyn Write + Send>, color: bool) -> Tee {
        let shared = Arc::new(Shared::default());
        shared.width.store(WARDEN.len(), Ordering::Relaxed);
        let printer = Printer {
            out: BufWriter::with_capacity(64 * 1024, out),
            color,
            shared: shared.clone(),
        };
        let spawned = std::thread::Builder::new()
            .name("warden-tee".into())
            .spawn(move || printer.run());
        if let Err(e) = spawned {
            // Nothing will be printed; output still reaches the log files.
            tracing::warn!("cannot start the terminal printer thread: {e}");
        }
        Tee {
            handle: Arc::new(Handle(shared)),
        }
    }

    fn shared(&self) -> &Shared {
        &self.handle.0
    }

    /// Pads names to at least `width` characters.
    pub fn set_width(&self, width: usize) {
        self.shared().width.fetch_max(width, Ordering::Relaxed);
    }

    /// Makes room for `name` in the padding.
    pub fn register(&self, name: &str) {
        self.set_width(name.chars().count());
    }

    /// Queues a chunk of `name`'s output, or drops it (counting its lines) if the printer
    /// is that far behind.
    pub fn send_batch(&self, name: &Arc<str>, batch: &Arc<Batch>) {
        if batch.is_empty() || batch.stream == Stream::Warden {
            return;
        }
        let message = Message::Lines(Arc::clone(name), Arc::clone(batch));
        self.send(message, batch.cost(), batch.len());
    }

    /// [`Tee::send_batch`] of a chunk as it was read; the printer frames it, so that the
    /// thread that reads the pipes does not.
    pub fn send_chunk(&self, name: &Arc<str>, chunk: &Arc<Unframed>) {
        if chunk.is_empty() || chunk.stream == Stream::Warden {
            return;
        }
        let message = Message::Chunk(Arc::clone(name), Arc::clone(chunk));
        self.send(message, chunk.cost(), chunk.len());
    }

    fn send(&self, message: Message, cost: usize, lines: usize) {
        let shared = self.shared();
        let mut q = lock(&shared.queue);
        if q.bytes + cost > TEE_MAX_BYTES {
            drop(q);
            let n = lines as u64;
            shared.dropped.fetch_add(n, Ordering::Relaxed);
            shared.unreported.fetch_add(n, Ordering::Relaxed);
            return;
        }
        q.bytes += cost;
        q.messages.push_back(message);
        drop(q);
        shared.wake.notify_one();
    }

    /// Queues one of warden's own notices, printed under the name `warden`, one line per
    /// line of `text`.
    pub fn message(&self, text: &str) {
        let shared = self.shared();
        let mut q = lock(&shared.queue);
        if q.notice_bytes + text.len() > NOTICES_MAX_BYTES {
            drop(q);
            shared.unreported.fetch_add(1, Ordering::Relaxed);
            return;
        }
        q.notice_bytes += text.len();
        q.messages.push_back(Message::Notice(text.to_owned()));
        drop(q);
        shared.wake.notify_one();
    }

    /// Lines dropped so far because the printer was behind.
    pub fn dropped_lines(&self) -> u64 {
        self.shared().dropped.load(Ordering::Relaxed)
    }

    /// Waits, at most `timeout`, until everything queued so far is written and flushed
    /// (for shutdown). Returns whether it was.
    pub fn flush(&self, timeout: Duration) -> bool {
        let (ack, done) = mpsc::channel();
        let shared = self.shared();
        lock(&shared.queue).messages.push_back(Message::Flush(ack));
        shared.wake.notify_one();
        done.recv_timeout(timeout).is_ok()
    }
}

struct Printer {
    out: BufWriter<Box<dyn Write + Send>>,
    color: bool,
    shared: Arc<Shared>,
}

impl Printer {
    fn run(mut self) {
        lower_priority();
        let mut last_report = Instant::now();
        // Messages are taken from the queue all at once, and their bytes stay counted
        // until they are printed. The printer runs at the lowest priority, and whenever it
        // holds the queue's lock the capture thread may have to wait for it to run again:
        // under a flood it takes the lock once per batch (to give the last one back and
        // take the next) instead of once per chunk.
        let mut taken = VecDeque::new();
        loop {
            let (bytes, notice_bytes) = costs(&taken);
            // Dropped outside the lock: the last reference to a chunk gives its buffer back.
            taken.clear();
            let mut q = lock(&self.shared.queue);
            q.bytes -= bytes;
            q.notice_bytes -= notice_bytes;
            while q.messages.is_empty() && !q.closed {
                // Caught up: the right moment to say what was missed, and to flush.
                drop(q);
                self.report_drops();
                last_report = Instant::now();
                let _ = self.out.flush();
                q = lock(&self.shared.queue);
                if q.messages.is_empty() && !q.closed {
                    q = self
                        .shared
                        .wake
                        .wait(q)
                        .unwrap_or_else(PoisonError::into_inner);
                }
            }
            std::mem::swap(&mut taken, &mut q.messages);
            drop(q);
            if taken.is_empty() {
                break; // closed, and everything printed
            }
            for message in &taken {
                // Terminal errors (EPIPE, EIO after a hangup) are ignored: keep draining.
                let _ = match message {
                    Message::Lines(name, batch) => self.print_batch(name, batch),
                    Message::Chunk(name, chunk) => self.print_chunk(name, chunk),
                    Message::Notice(text) => text
                        .lines()
                        .try_for_each(|line| self.print(WARDEN, &sanitize(line.as_bytes()))),
                    Message::Flush(ack) => {
                        self.report_drops();
                        let flushed = self.out.flush();
                        let _ = ack.send(());
                        flushed
                    }
                };
                if last_report.elapsed() >= REPORT_EVERY {
                    self.report_drops();
                    last_report = Instant::now();
                }
            }
        }
        self.report_drops();
        let _ = self.out.flush();
    }

    fn report_drops(&mut self) {
        let missed = self.shared.unreported.swap(0, Ordering::Relaxed);
        if missed > 0 {
            let s = if missed == 1 { "" } else { "s" };
            let _ = self.print(WARDEN, &format!("[warden: {missed} line{s} not shown]"));
        }
    }

    fn print_batch(&mut self, name: &str, batch: &Batch) -> io::Result<()> {
        let head = self.head(name);
        for record in batch.records() {
            self.print_line(&head, record.text)?;
        }
        Ok(())
    }

    fn print_chunk(&mut self, name: &str, chunk: &Unframed) -> io::Result<()> {
        let head = self.head(name);
        // Checked once for the whole chunk, in a way that vectorises: most output is.
        let plain = chunk.is_plain();
        let mut result = Ok(());
        chunk.frame(|text, _| {
            if result.is_ok() {
                result = match plain {
                    true => self.print_plain(&head, text),
                    false => self.print_line(&head, text),
                };
            }
        });
        result
    }

    fn print_plain(&mut self, head: &[u8], text: &[u8]) -> io::Result<()> {
        self.out.write_all(head)?;
        self.out.write_all(text)?;
        self.out.write_all(b"\n")
    }

    fn print(&mut self, name: &str, text: &str) -> io::Result<()> {
        let head = self.head(name);
        self.print_plain(&head, text.as_bytes())
    }

    /// One line of a child's output after `head`: plain printable ASCII as it is (most
    /// lines, and no allocation), anything else made inert first.
    fn print_line(&mut self, head: &[u8], text: &[u8]) -> io::Result<()> {
        if is_plain(text, false) {
            return self.print_plain(head, text);
        }
        self.print_plain(head, sanitize(text).as_bytes())
    }

    /// `name │ `, padded and coloured, formatted once per chunk.
    fn head(&self, name: &str) -> Vec<u8> {
        let width = self.shared.width.load(Ordering::Relaxed);
        let head = if self.color {
            let color = if name == WARDEN {
                "1"
            } else {
                name_color(name)
            };
            format!("\x1b[{color}m{name:<width$} │\x1b[0m ")
        } else {
            format!("{name:<width$} │ ")
        };
        head.into_bytes()
    }
}

/// What `messages` count against the queue's bounds: (output bytes, notice bytes).
fn costs(messages: &VecDeque<Message>) -> (usize, usize) {
    messages.iter().fold((0, 0), |(bytes, notices), m| match m {
        Message::Lines(_, batch) => (bytes + batch.cost(), notices),
        Message::Chunk(_, chunk) => (bytes + chunk.cost(), notices),
        Message::Notice(text) => (bytes, notices + text.len()),
        Message::Flush(_) => (bytes, notices),
    })
}

/// The terminal's printer runs at the lowest priority: under a flood, the terminal is
/// what should give (it drops lines, counted), not capture, logs or control. At nice 5 it
/// still took a quarter of the core that the capture and the log file needed; at 19 it
/// takes what they leave, and printing at an ordinary rate needs little of that.
fn lower_priority() {
    // SAFETY: plain system calls on the calling thread.
    unsafe {
        let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
        libc::setpriority(libc::PRIO_PROCESS, tid, 19);
    }
}

/// A stable colour per name (the same name gets the same colour in every run).
fn name_color(name: &str) -> &'static str {
    const PALETTE: [&str; 10] = ["36", "33", "32", "35", "34", "96", "93", "92", "95", "94"];
    // FNV-1a: stable across runs and builds, unlike the std hasher.
    let hash = name.bytes().fold(0x811c_9dc5_u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    });
    PALETTE[hash as usize % PALETTE.len()]
}

/// A writer into a shared buffer, for tests here and elsewhere.
#[cfg(test)]
#[derive(Clone, Default)]
pub(crate) struct SharedBuffer(pub(crate) Arc<Mutex<Vec<u8>>>);

#[cfg(test)]
impl SharedBuffer {
    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap_or_else(PoisonError::into_inner)).into_owned()
    }
}

#[cfg(test)]
impl Write for SharedBuffer {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use super::super::batch::BatchBuilder;
    use super::*;

    fn lines(texts: &[&[u8]]) -> Arc<Batch> {
        let mut b = BatchBuilder::default();
        for t in texts {
            b.push(t, false);
        }
        Arc::new(b.finish(SystemTime::now(), Stream::Stdout))
    }

    #[test]
    fn prints_padded_sanitised_lines() {
        let buffer = SharedBuffer::default();
        let tee = Tee::spawn(Box::new(buffer.clone()), false);
        tee.register("database");
        let web: Arc<str> = "web".into();
        tee.send_batch(&web, &lines(&[b"hello \x1b]0;pwned\x07world"]));
        tee.message("--- web exited");
        tee.message("two errors:\nfirst\nsecond");
        assert!(tee.flush(Duration::from_secs(5)));
        assert_eq!(
            buffer.text(),
            "web      │ hello world\nwarden   │ --- web exited\nwarden   │ two errors:\n\
             warden   │ first\nwarden   │ second\n"
        );
    }

    #[test]
    fn colours_are_stable_per_name() {
        let buffer = SharedBuffer::default();
        let tee = Tee::spawn(Box::new(buffer.clone()), true);
        let web: Arc<str> = "web".into();
        tee.send_batch(&web, &lines(&[b"a", b"b"]));
        assert!(tee.flush(Duration::from_secs(5)));
        let color = name_color("web");
        assert_eq!(
            buffer.text(),
            format!("\x1b[{color}mweb    │\x1b[0m a\n\x1b[{color}mweb    │\x1b[0m b\n")
        );
    }

    #[test]
    fn printed_output_gives_its_room_back() {
        let buffer = SharedBuffer::default();
        let tee = Tee::spawn(Box::new(buffer.clone()), false);
        let name: Arc<str> = "web".into();
        let line = vec![b'x'; 1000];
        let chunk = lines(&vec![line.as_slice(); 100]);
        // Four times the queue's bytes, each chunk printed before the next is sent.
        let chunks = 4 * TEE_MAX_BYTES / chunk.cost() + 1;
        for _ in 0..chunks {
            tee.send_batch(&name, &chunk);
            assert!(tee.flush(Duration::from_secs(5)));
        }
        assert_eq!(tee.dropped_lines(), 0);
        assert_eq!(buffer.text().lines().count(), chunks * 100);
    }

    /// A terminal that takes nothing until released.
    struct Stalled(Arc<(Mutex<bool>, std::sync::Condvar)>, SharedBuffer);

    impl Write for Stalled {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            let (lock, released) = &*self.0;
            let mut open = lock.lock().unwrap();
            while !*open {
                open = released.wait(open).unwrap();
            }
            self.1.write(buf)
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_stalled_terminal_drops_and_reports_instead_of_blocking() {
        let gate = Arc::new((Mutex::new(false), std::sync::Condvar::new()));
        let buffer = SharedBuffer::default();
        let tee = Tee::spawn(Box::new(Stalled(gate.clone(), buffer.clone())), false);
        let name: Arc<str> = "web".into();
        // 100 chunks of 1000 lines: far more than the queue's bytes.
        let chunk: Vec<Vec<u8>> = (0..1000)
            .map(|i| format!("line {i:040}").into_bytes())
            .collect();
        let texts: Vec<&[u8]> = chunk.iter().map(Vec::as_slice).collect();
        let total = 100 * 1000;
        let started = Instant::now();
        for _ in 0..100 {
            tee.send_batch(&name, &lines(&texts));
        }
        // Sending never waits on the terminal.
        assert!(started.elapsed() < Duration::from_secs(10));
        let dropped = tee.dropped_lines();
        assert!(dropped >= total - 30 * 1000, "{dropped}");

        *gate.0.lock().unwrap() = true;
        gate.1.notify_all();
        assert!(tee.flush(Duration::from_secs(10)));
        let text = buffer.text();
        let shown = text.lines().filter(|l| l.starts_with("web ")).count() as u64;
        assert_eq!(shown + dropped, total);
        // Drops are reported whenever the printer catches up, so possibly in parts.
        let reported: u64 = text
            .lines()
            .filter_map(|l| {
                l.split("[warden: ")
                    .nth(1)?
                    .split(' ')
                    .next()?
                    .parse::<u64>()
                    .ok()
            })
            .sum();
        assert_eq!(reported, dropped, "{}", &text[text.len() - 200..]);
    }
}
