//! The terminal tee of `warden up --no-tui`: every process's lines as `name │ text`.
//!
//! A terminal can stall (a paused pager, a hung ssh session, Ctrl-S). One dedicated OS
//! thread does all the printing, fed through a bounded queue; when the queue is full a
//! line is dropped and counted, and a notice says how many were not shown. The terminal
//! may miss lines but never slows a child: the log file is the lossless sink. Text is
//! always [`LogLine::display_text`], never the child's raw bytes.

use std::io::{self, BufWriter, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TryRecvError, TrySendError};
#[cfg(test)]
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use super::LogLine;
use super::display::sanitize;

/// Lines waiting for the printer before new ones are dropped.
pub const TEE_QUEUE: usize = 1024;
/// Under a sustained flood the printer never catches up; it still reports drops this often.
const REPORT_EVERY: Duration = Duration::from_secs(1);
const WARDEN: &str = "warden";

/// A handle on the printer thread; cheap to clone, one per sink.
#[derive(Clone)]
pub struct Tee {
    queue: SyncSender<Message>,
    shared: Arc<Shared>,
}

enum Message {
    /// The lines of one chunk of output: one queue operation instead of one per line.
    Lines(Arc<str>, Vec<Arc<LogLine>>),
    Notice(String),
    Flush(mpsc::Sender<()>),
}

#[derive(Default)]
struct Shared {
    /// Names are padded to this many characters.
    width: AtomicUsize,
    dropped: AtomicU64,
    unreported: AtomicU64,
    /// warden's own notices that found the queue full. They are few and they are what a
    /// user most needs to see, so they wait here instead of being dropped.
    overflow: std::sync::Mutex<std::collections::VecDeque<String>>,
}

impl std::fmt::Debug for Tee {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tee")
            .field("dropped", &self.dropped_lines())
            .finish()
    }
}

impl Tee {
    /// Starts the printer thread writing to `out`, with a stable colour per process name
    /// if `color`. The thread ends once every handle is dropped.
    pub fn spawn(out: Box<dyn Write + Send>, color: bool) -> Tee {
        let (queue, receiver) = mpsc::sync_channel(TEE_QUEUE);
        let shared = Arc::new(Shared::default());
        shared.width.store(WARDEN.len(), Ordering::Relaxed);
        let printer = Printer {
            out: BufWriter::with_capacity(64 * 1024, out),
            color,
            shared: shared.clone(),
        };
        let spawned = std::thread::Builder::new()
            .name("warden-tee".into())
            .spawn(move || printer.run(receiver));
        if let Err(e) = spawned {
            // The receiver is gone: every line will count as dropped. Output still
            // reaches the log files.
            tracing::warn!("cannot start the terminal printer thread: {e}");
        }
        Tee { queue, shared }
    }

    /// Pads names to at least `width` characters.
    pub fn set_width(&self, width: usize) {
        self.shared.width.fetch_max(width, Ordering::Relaxed);
    }

    /// Makes room for `name` in the padding.
    pub fn register(&self, name: &str) {
        self.set_width(name.chars().count());
    }

    /// Queues `line` for printing under `name`, or drops it if the printer is behind.
    pub fn send(&self, name: &Arc<str>, line: &Arc<LogLine>) {
        self.send_lines(name, vec![Arc::clone(line)]);
    }

    /// Queues the lines of one chunk together, or drops them all if the printer is behind.
    pub fn send_lines(&self, name: &Arc<str>, lines: Vec<Arc<LogLine>>) {
        let n = lines.len() as u64;
        if self
            .queue
            .try_send(Message::Lines(Arc::clone(name), lines))
            .is_err()
        {
            self.shared.dropped.fetch_add(n, Ordering::Relaxed);
            self.shared.unreported.fetch_add(n, Ordering::Relaxed);
        }
    }

    /// Queues one of warden's own notices, printed under the name `warden`.
    pub fn message(&self, text: &str) {
        if let Err(TrySendError::Full(Message::Notice(text))) =
            self.queue.try_send(Message::Notice(text.to_owned()))
        {
            // The printer is busy, so it will come round to the overflow soon.
            let mut overflow = self
                .shared
                .overflow
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            overflow.push_back(text);
        }
    }

    /// Lines dropped so far because the printer was behind.
    pub fn dropped_lines(&self) -> u64 {
        self.shared.dropped.load(Ordering::Relaxed)
    }

    /// Waits, at most `timeout`, until everything queued so far is written and flushed
    /// (for shutdown). Returns whether it was.
    pub fn flush(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let (ack, done) = mpsc::channel();
        let mut message = Message::Flush(ack);
        loop {
            match self.queue.try_send(message) {
                Ok(()) => break,
                Err(TrySendError::Full(m)) if Instant::now() < deadline => {
                    message = m;
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err(_) => return false,
            }
        }
        done.recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .is_ok()
    }
}

struct Printer {
    out: BufWriter<Box<dyn Write + Send>>,
    color: bool,
    shared: Arc<Shared>,
}

impl Printer {
    fn run(mut self, queue: Receiver<Message>) {
        let mut last_report = Instant::now();
        loop {
            let message = match queue.try_recv() {
                Ok(message) => message,
                Err(TryRecvError::Empty) => {
                    // Caught up: the right moment to say what was missed, and to flush.
                    self.report_drops();
                    last_report = Instant::now();
                    let _ = self.out.flush();
                    match queue.recv() {
                        Ok(message) => message,
                        Err(_) => break,
                    }
                }
                Err(TryRecvError::Disconnected) => break,
            };
            self.print_overflow();
            // Terminal errors (EPIPE, EIO after a hangup) are ignored: keep draining.
            let _ = match message {
                Message::Lines(name, lines) => lines
                    .iter()
                    .try_for_each(|line| self.print(&name, &line.display_text())),
                Message::Notice(text) => self.print(WARDEN, &sanitize(text.as_bytes())),
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
        self.print_overflow();
        self.report_drops();
        let _ = self.out.flush();
    }

    fn print_overflow(&mut self) {
        let notices: Vec<String> = {
            let mut overflow = self
                .shared
                .overflow
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            overflow.drain(..).collect()
        };
        for text in notices {
            let _ = self.print(WARDEN, &sanitize(text.as_bytes()));
        }
    }

    fn report_drops(&mut self) {
        let missed = self.shared.unreported.swap(0, Ordering::Relaxed);
        if missed > 0 {
            let s = if missed == 1 { "" } else { "s" };
            let _ = self.print(WARDEN, &format!("[warden: {missed} line{s} not shown]"));
        }
    }

    fn print(&mut self, name: &str, text: &str) -> io::Result<()> {
        let width = self.shared.width.load(Ordering::Relaxed);
        if self.color {
            let color = if name == WARDEN {
                "1"
            } else {
                name_color(name)
            };
            writeln!(self.out, "\x1b[{color}m{name:<width$} │\x1b[0m {text}")
        } else {
            writeln!(self.out, "{name:<width$} │ {text}")
        }
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

    use super::super::Stream;
    use super::*;

    fn line(text: &[u8]) -> Arc<LogLine> {
        Arc::new(LogLine {
            seq: 1,
            time: SystemTime::now(),
            stream: Stream::Stdout,
            text: text.into(),
            partial: false,
        })
    }

    #[test]
    fn prints_padded_sanitised_lines() {
        let buffer = SharedBuffer::default();
        let tee = Tee::spawn(Box::new(buffer.clone()), false);
        tee.register("database");
        let web: Arc<str> = "web".into();
        tee.send(&web, &line(b"hello \x1b]0;pwned\x07world"));
        tee.message("--- web exited");
        assert!(tee.flush(Duration::from_secs(5)));
        assert_eq!(
            buffer.text(),
            "web      │ hello world\nwarden   │ --- web exited\n"
        );
    }

    #[test]
    fn colours_are_stable_per_name() {
        let buffer = SharedBuffer::default();
        let tee = Tee::spawn(Box::new(buffer.clone()), true);
        let web: Arc<str> = "web".into();
        tee.send(&web, &line(b"a"));
        tee.send(&web, &line(b"b"));
        assert!(tee.flush(Duration::from_secs(5)));
        let color = name_color("web");
        assert_eq!(
            buffer.text(),
            format!("\x1b[{color}mweb    │\x1b[0m a\n\x1b[{color}mweb    │\x1b[0m b\n")
        );
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
        let total = 3 * TEE_QUEUE as u64 + 64 * 1024;
        let started = Instant::now();
        for i in 0..total {
            tee.send(&name, &line(format!("line {i}").as_bytes()));
        }
        // Sending never waits on the terminal.
        assert!(started.elapsed() < Duration::from_secs(10));
        let dropped = tee.dropped_lines();
        assert!(dropped >= total - TEE_QUEUE as u64 - 64 * 1024, "{dropped}");

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
