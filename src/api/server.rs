//! The control socket server: an accept loop and one task per connection.
//!
//! Control requests always get an answer, however many streams and idle connections are
//! open, because those two have budgets of their own: at most [`MAX_IDLE`] connections
//! may wait for their request at once (a new one closes the longest-waiting, with a
//! reason), and at most [`MAX_STREAMS`] `logs -f`/`events` streams run at once (one more
//! is refused, and its connection stays usable). What is left of [`MAX_CONNECTIONS`] is
//! for requests being answered. When warden runs out of descriptors, a spare one kept
//! for the purpose lets the next client in.
//!
//! Everything else a client can make us hold is bounded too: a request line of at most
//! [`MAX_REQUEST`] bytes (never buffered beyond that), [`IDLE_TIMEOUT`] to send a whole
//! request, [`WRITE_TIMEOUT`] to take each answer line, and what a stream holds (a slow
//! reader skips, see `streams`). The peer's uid is checked on every connection. A
//! client's misbehaviour ends its own connection and nothing else; no error here reaches
//! the supervisor.
//!
//! Requests with one answer are performed by [`super::dispatch`], streams by `streams`,
//! both over the connection's `conn` half; this module keeps no state about
//! processes.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, oneshot, watch};

use tokio::task::JoinHandle;
use tokio::time::timeout;

use super::bind::{Bound, Files};
pub use super::conn::WRITE_TIMEOUT;
use super::conn::{Peer, stopped, until_hangup};
use super::dispatch::act;
use super::lines::{ReadLine, read_line};
use super::protocol::{Answer, MAX_REQUEST, Request, parse_request};
use crate::supervisor::{Control, Handle};

/// Connections served at once, whatever they do (a bound on descriptors); beyond it a
/// client is told so and closed, after the longest-idle connection was closed instead.
pub const MAX_CONNECTIONS: usize = 4096;
/// Connections that may be waiting for their request at once.
pub const MAX_IDLE: usize = 64;
/// `logs -f` and `events` streams that may run at once.
pub const MAX_STREAMS: usize = 256;
/// Time a client has to send each whole request (from connecting, or after an answer).
/// A stream, once started, has no idle limit.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long shutting down waits for connections to send their last answer.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(2);
/// After `accept` fails for lack of file descriptors, wait this long instead of spinning.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);
/// Repeated warnings of one kind are logged at most this often.
const WARN_EVERY: Duration = Duration::from_secs(60);

/// The running server. [`Server::shutdown`] stops it and removes its files; dropping it
/// removes the files too.
pub struct Server {
    socket: PathBuf,
    stop: watch::Sender<bool>,
    accept: Option<JoinHandle<()>>,
    fifo: Option<JoinHandle<()>>,
    limiter: Arc<Semaphore>,
    files: Option<Files>,
}

impl Server {
    /// Serve `bound` (and its control FIFO, if any) with requests going to `handle`.
    /// `config` is what `hello` reports. Must be called inside a tokio runtime.
    pub fn start(bound: Bound, handle: Handle, config: &Path) -> io::Result<Server> {
        let Bound { listener, files } = bound;
        listener.set_nonblocking(true)?;
        let listener = UnixListener::from_std(listener)?;
        let socket = files.socket.clone().unwrap_or_default();
        let (stop, stop_rx) = watch::channel(false);
        let limiter = Arc::new(Semaphore::new(MAX_CONNECTIONS));
        let shared = Arc::new(Shared {
            handle,
            config: config.display().to_string(),
            euid: nix::unistd::geteuid().as_raw(),
            stop: stop_rx.clone(),
            busy: Throttle::default(),
            refused: Throttle::default(),
            accept_failed: Throttle::default(),
            idle: Idle::default(),
            streams: AtomicUsize::new(0),
        });
        let fifo = files.fifo.clone().map(|path| {
            tokio::spawn(super::fifo::run(
                path,
                shared.handle.clone(),
                shared.config.clone(),
                stop_rx.clone(),
            ))
        });
        let accept = tokio::spawn(accept_loop(listener, shared, limiter.clone()));
        Ok(Server {
            socket,
            stop,
            accept: Some(accept),
            fifo,
            limiter,
            files: Some(files),
        })
    }

    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// Stop accepting, remove the socket, FIFO and lock (so a new `warden up` may start
    /// at once), end every stream, and give answers in flight a moment to be written.
    pub async fn shutdown(mut self) {
        // Files first: a client that sees its connection close may rely on them being gone.
        drop(self.files.take());
        let _ = self.stop.send(true);
        if let Some(task) = self.accept.take() {
            let _ = task.await;
        }
        if let Some(task) = self.fifo.take() {
            let _ = task.await;
        }
        let _ = timeout(
            DRAIN_TIMEOUT,
            self.limiter.acquire_many(MAX_CONNECTIONS as u32),
        )
        .await;
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

struct Shared {
    handle: Handle,
    config: String,
    euid: u32,
    stop: watch::Receiver<bool>,
    busy: Throttle,
    refused: Throttle,
    accept_failed: Throttle,
    idle: Idle,
    /// Streams running now.
    streams: AtomicUsize,
}

impl Shared {
    /// A line for the user (shown by `up` and `warden events`), not a raw log line.
    fn notice(&self, text: String) {
        let _ = self.handle.control.send(Control::Notice { text });
    }
}

/// The connections waiting for a request, oldest first; each can be told to close.
#[derive(Default)]
struct Idle {
    waiting: Mutex<BTreeMap<u64, oneshot::Sender<()>>>,
    next: AtomicU64,
}

impl Idle {
    /// Registers a connection that waits for its request. Returns its ticket and what
    /// resolves if it is closed to make room; closes the longest-waiting one if there
    /// are now too many.
    fn wait(&self) -> (u64, oneshot::Receiver<()>) {
        let (tx, rx) = oneshot::channel();
        let ticket = self.next.fetch_add(1, Ordering::Relaxed);
        let mut waiting = self.waiting.lock().unwrap_or_else(|e| e.into_inner());
        waiting.insert(ticket, tx);
        while waiting.len() > MAX_IDLE {
            if let Some((_, evict)) = waiting.pop_first() {
                let _ = evict.send(());
            }
        }
        (ticket, rx)
    }

    fn done(&self, ticket: u64) {
        self.waiting
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&ticket);
    }
}

/// A stream slot, released when dropped.
struct StreamSlot(Arc<Shared>);

impl Drop for StreamSlot {
    fn drop(&mut self) {
        self.0.streams.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Conn {
    /// A slot for a stream, or why not.
    fn stream_slot(&self) -> Result<StreamSlot, String> {
        let streams = &self.shared.streams;
        if streams.fetch_add(1, Ordering::Relaxed) >= MAX_STREAMS {
            streams.fetch_sub(1, Ordering::Relaxed);
            return Err(format!(
                "busy: {MAX_STREAMS} streams (`logs -f`, `events`) are open; close one and try again"
            ));
        }
        Ok(StreamSlot(Arc::clone(&self.shared)))
    }
}

/// A descriptor kept open for the moment warden runs out of them: closing it lets one
/// more client be accepted (and told what is going on) instead of waiting in the backlog.
fn spare_descriptor() -> Option<std::fs::File> {
    std::fs::File::open("/dev/null").ok()
}

async fn accept_loop(listener: UnixListener, shared: Arc<Shared>, limiter: Arc<Semaphore>) {
    let mut stop = shared.stop.clone();
    let mut spare = spare_descriptor();
    loop {
        if spare.is_none() {
            spare = spare_descriptor();
        }
        let accepted = tokio::select! {
            biased;
            () = stopped(&mut stop) => return,
            r = listener.accept() => r,
        };
        let accepted = match accepted {
            Err(e) if matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE)) => {
                match spare.take() {
                    Some(fd) => {
                        drop(fd);
                        listener.accept().await
                    }
                    None => Err(e),
                }
            }
            other => other,
        };
        match accepted {
            Ok((stream, _)) => match limiter.clone().try_acquire_owned() {
                Ok(permit) => {
                    tokio::spawn(serve(stream, shared.clone(), permit));
                }
                Err(_) => {
                    if let Some(more) = shared.busy.allow() {
                        shared.notice(format!(
                            "control socket: {MAX_CONNECTIONS} connections open, refusing more ({more} refused since the last notice)"
                        ));
                    }
                    // A fresh socket's buffer is empty: this write does not block.
                    let line = Answer::error(format!(
                        "busy: {MAX_CONNECTIONS} clients connected, try again"
                    ))
                    .to_line();
                    let _ = stream.try_write(&line);
                }
            },
            Err(e) => {
                if let Some(more) = shared.accept_failed.allow() {
                    shared.notice(format!(
                        "control socket: accept failed: {e} ({more} more failures since the last notice)"
                    ));
                }
                // EMFILE and friends leave the listener readable: back off, don't spin.
                tokio::time::sleep(ACCEPT_BACKOFF).await;
            }
        }
    }
}

async fn serve(stream: UnixStream, shared: Arc<Shared>, _permit: OwnedSemaphorePermit) {
    if let Err(why) = check_peer(&stream, &shared) {
        let (_, mut wr) = stream.into_split();
        let _ = timeout(
            Duration::from_secs(1),
            wr.write_all(&Answer::error(why).to_line()),
        )
        .await;
        return;
    }
    let peer = Peer::new(stream, shared.handle.clone(), shared.stop.clone());
    let mut conn = Conn { peer, shared };
    conn.run().await;
}

/// Only our own uid and root may talk to the supervisor. The 0600 socket in a 0700
/// folder already keeps others out; this holds even if those modes were loosened.
fn check_peer(stream: &UnixStream, shared: &Shared) -> Result<(), String> {
    let cred = stream
        .peer_cred()
        .map_err(|e| format!("cannot read the peer's credentials: {e}"))?;
    if cred.uid() == shared.euid || cred.uid() == 0 {
        return Ok(());
    }
    if let Some(more) = shared.refused.allow() {
        shared.notice(format!(
            "control socket: refused uid {} (pid {}): only uid {} and root may use it ({more} more refused since the last notice)",
            cred.uid(),
            cred.pid()
                .map(|p| p.to_string())
                .unwrap_or_else(|| "unknown".into()),
            shared.euid
        ));
    }
    Err(format!(
        "unauthorized uid {}: only uid {} and root may use this supervisor",
        cred.uid(),
        shared.euid
    ))
}

/// One client connection: requests in turn, each answered in full before the next.
struct Conn {
    peer: Peer,
    shared: Arc<Shared>,
}

impl Conn {
    async fn run(&mut self) {
        loop {
            let (ticket, evicted) = self.shared.idle.wait();
            let read = tokio::select! {
                biased;
                () = stopped(&mut self.peer.stop) => None,
                _ = evicted => Some(Err(())),
                r = timeout(IDLE_TIMEOUT, read_line(&mut self.peer.rd, MAX_REQUEST)) => Some(Ok(r)),
            };
            self.shared.idle.done(ticket);
            let read = match read {
                None => return,
                Some(Ok(read)) => read,
                Some(Err(())) => {
                    let why = format!(
                        "closed to make room: {MAX_IDLE} connections were waiting for a request; send the request right after connecting"
                    );
                    let _ = self.peer.send(&Answer::error(why)).await;
                    return;
                }
            };
            let line = match read {
                Err(_) => {
                    let why = format!("no request within {}s: closing", IDLE_TIMEOUT.as_secs());
                    let _ = self.peer.send(&Answer::error(why)).await;
                    return;
                }
                Ok(Err(_)) | Ok(Ok(ReadLine::Eof)) => return,
                Ok(Ok(ReadLine::TooLong)) => {
                    let why = format!("request longer than {MAX_REQUEST} bytes: closing");
                    let _ = self.peer.send(&Answer::error(why)).await;
                    return;
                }
                Ok(Ok(ReadLine::Line(line))) => line,
            };
            if line.trim_ascii().is_empty() {
                continue;
            }
            let request = match parse_request(&line) {
                Ok(r) => r,
                Err(why) => {
                    let _ = self.peer.send(&Answer::error(why)).await;
                    return;
                }
            };
            match self.handle(request).await {
                Ok(true) => {}
                Ok(false) | Err(_) => return,
            }
        }
    }

    /// Answer one request. Ok(false): the connection is done (a stream ended).
    async fn handle(&mut self, request: Request) -> io::Result<bool> {
        match request {
            // Streams have a budget of their own (see the module docs); a refused one
            // leaves the connection usable.
            Request::Logs {
                names,
                lines,
                follow,
                colors,
            } => {
                let _slot = match follow.then(|| self.stream_slot()).transpose() {
                    Ok(slot) => slot,
                    Err(busy) => return self.peer.send(&Answer::error(busy)).await.map(|()| true),
                };
                super::streams::logs(&mut self.peer, names, lines, follow, colors).await
            }
            Request::Events { since } => {
                let _slot = match self.stream_slot() {
                    Ok(slot) => slot,
                    Err(busy) => return self.peer.send(&Answer::error(busy)).await.map(|()| true),
                };
                super::streams::events(&mut self.peer, since).await
            }
            Request::Subscribe { refresh, since } => {
                let _slot = match self.stream_slot() {
                    Ok(slot) => slot,
                    Err(busy) => return self.peer.send(&Answer::error(busy)).await.map(|()| true),
                };
                super::streams::subscribe(&mut self.peer, refresh, since).await
            }
            // Shutting down goes on whether or not the client waits for it.
            Request::Down => {
                let answer = act(&self.shared.handle, &self.shared.config, Request::Down).await;
                self.peer.send(&answer).await?;
                // Stay: the server closes us once the socket is gone, which tells the
                // client that a new `warden up` may start.
                Ok(true)
            }
            other => {
                let handle = self.shared.handle.clone();
                let config = self.shared.config.clone();
                match until_hangup(&mut self.peer.rd, act(&handle, &config, other)).await {
                    Some(answer) => self.peer.send(&answer).await.map(|()| true),
                    // The action goes on in the supervisor; nobody waits for its answer.
                    None => Ok(false),
                }
            }
        }
    }
}

/// Rate limit for a repeated warning: at most one per [`WARN_EVERY`], counting the rest.
#[derive(Default)]
struct Throttle {
    last: Mutex<Option<Instant>>,
    suppressed: AtomicU64,
}

impl Throttle {
    /// `Some(n)` if a warning may be logged now, `n` being how many were suppressed since.
    fn allow(&self) -> Option<u64> {
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        if last.is_some_and(|t| now.duration_since(t) < WARN_EVERY) {
            self.suppressed.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        *last = Some(now);
        Some(self.suppressed.swap(0, Ordering::Relaxed))
    }
}
