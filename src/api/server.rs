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
//! This module performs requests by sending [`Control`] messages to the actor and
//! forwarding its replies; it keeps no state about processes.

use std::collections::BTreeMap;
use std::future::Future;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, oneshot, watch};

use tokio::task::JoinHandle;
use tokio::time::timeout;

use super::bind::{Bound, Files};
use super::lines::{ReadLine, read_line};
use super::protocol::{Answer, MAX_REQUEST, Request, VERSION, parse_request};
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
/// Time a client has to take one answer line before it is dropped (a stopped `logs -f`).
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(30);
/// How long shutting down waits for connections to send their last answer.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(2);
/// After `accept` fails for lack of file descriptors, wait this long instead of spinning.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);
/// How often a client that half closed its connection is checked for having gone.
const HANGUP_POLL: Duration = Duration::from_secs(1);
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

pub(super) struct Shared {
    pub handle: Handle,
    pub config: String,
    euid: u32,
    pub stop: watch::Receiver<bool>,
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
pub(super) struct StreamSlot(Arc<Shared>);

impl Drop for StreamSlot {
    fn drop(&mut self) {
        self.0.streams.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Conn {
    /// A slot for a stream, or why not.
    pub(super) fn stream_slot(&self) -> Result<StreamSlot, String> {
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
    let (rd, wr) = stream.into_split();
    let stop = shared.stop.clone();
    let mut conn = Conn {
        rd: BufReader::with_capacity(8 * 1024, rd),
        wr,
        shared,
        stop,
    };
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
pub(super) struct Conn {
    pub rd: BufReader<OwnedReadHalf>,
    wr: OwnedWriteHalf,
    pub shared: Arc<Shared>,
    pub stop: watch::Receiver<bool>,
}

impl Conn {
    async fn run(&mut self) {
        loop {
            let (ticket, evicted) = self.shared.idle.wait();
            let read = tokio::select! {
                biased;
                () = stopped(&mut self.stop) => None,
                _ = evicted => Some(Err(())),
                r = timeout(IDLE_TIMEOUT, read_line(&mut self.rd, MAX_REQUEST)) => Some(Ok(r)),
            };
            self.shared.idle.done(ticket);
            let read = match read {
                None => return,
                Some(Ok(read)) => read,
                Some(Err(())) => {
                    let why = format!(
                        "closed to make room: {MAX_IDLE} connections were waiting for a request; send the request right after connecting"
                    );
                    let _ = self.send(&Answer::error(why)).await;
                    return;
                }
            };
            let line = match read {
                Err(_) => {
                    let why = format!("no request within {}s: closing", IDLE_TIMEOUT.as_secs());
                    let _ = self.send(&Answer::error(why)).await;
                    return;
                }
                Ok(Err(_)) | Ok(Ok(ReadLine::Eof)) => return,
                Ok(Ok(ReadLine::TooLong)) => {
                    let why = format!("request longer than {MAX_REQUEST} bytes: closing");
                    let _ = self.send(&Answer::error(why)).await;
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
                    let _ = self.send(&Answer::error(why)).await;
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
                    Err(busy) => return self.send(&Answer::error(busy)).await.map(|()| true),
                };
                super::streams::logs(self, names, lines, follow, colors).await
            }
            Request::Events { since } => {
                let _slot = match self.stream_slot() {
                    Ok(slot) => slot,
                    Err(busy) => return self.send(&Answer::error(busy)).await.map(|()| true),
                };
                super::streams::events(self, since).await
            }
            Request::Subscribe { refresh, since } => {
                let _slot = match self.stream_slot() {
                    Ok(slot) => slot,
                    Err(busy) => return self.send(&Answer::error(busy)).await.map(|()| true),
                };
                super::streams::subscribe(self, refresh, since).await
            }
            // Shutting down goes on whether or not the client waits for it.
            Request::Down => {
                let answer = act(&self.shared.handle, &self.shared.config, Request::Down).await;
                self.send(&answer).await?;
                // Stay: the server closes us once the socket is gone, which tells the
                // client that a new `warden up` may start.
                Ok(true)
            }
            other => {
                let handle = self.shared.handle.clone();
                let config = self.shared.config.clone();
                match until_hangup(&mut self.rd, act(&handle, &config, other)).await {
                    Some(answer) => self.send(&answer).await.map(|()| true),
                    // The action goes on in the supervisor; nobody waits for its answer.
                    None => Ok(false),
                }
            }
        }
    }

    pub async fn send(&mut self, answer: &Answer) -> io::Result<()> {
        match timeout(WRITE_TIMEOUT, self.wr.write_all(&answer.to_line())).await {
            Ok(r) => r,
            Err(_) => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the client does not read its answers",
            )),
        }
    }
}

/// `fut`, unless the client hangs up first (then `None`). Bytes the client sends
/// meanwhile are left for the next request.
async fn until_hangup<T>(
    rd: &mut BufReader<OwnedReadHalf>,
    fut: impl Future<Output = T>,
) -> Option<T> {
    tokio::select! {
        v = fut => Some(v),
        () = hung_up(rd, false) => None,
    }
}

/// Resolves once the client has closed its connection entirely. A client that only shut
/// down its sending side (`socat`, `nc -N`) still reads answers, so it is not gone. What
/// it sends meanwhile is discarded if `discard`; otherwise it is left for the next
/// request, and this never resolves (the client evidently is there).
pub(super) async fn hung_up(rd: &mut BufReader<OwnedReadHalf>, discard: bool) {
    loop {
        let n = match rd.fill_buf().await {
            Ok(buf) => buf.len(),
            Err(_) => return,
        };
        if n == 0 {
            break;
        }
        if !discard {
            return std::future::pending().await;
        }
        rd.consume(n);
    }
    // End of input: half closed, or gone. Only a full close raises POLLHUP.
    loop {
        if peer_closed(rd.get_ref().as_ref()) {
            return;
        }
        tokio::time::sleep(HANGUP_POLL).await;
    }
}

fn peer_closed(stream: &UnixStream) -> bool {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    use std::os::fd::AsFd;
    let mut fds = [PollFd::new(stream.as_fd(), PollFlags::empty())];
    match poll(&mut fds, PollTimeout::ZERO) {
        Ok(_) => fds[0]
            .revents()
            .is_some_and(|r| r.intersects(PollFlags::POLLHUP | PollFlags::POLLERR)),
        Err(_) => true,
    }
}

/// Resolves once the server is told to stop (or is gone).
pub(super) async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

/// Perform a request that has a single answer (everything but the streams `logs`,
/// `events` and `subscribe`), for the socket, the FIFO and the in-process dashboard alike.
pub async fn act(handle: &Handle, config: &str, request: Request) -> Answer {
    let result = match request {
        Request::Hello => Ok(Answer {
            version: Some(VERSION),
            pid: Some(std::process::id()),
            config: Some(config.to_string()),
            ..Answer::success()
        }),
        Request::Status => ask(handle, |reply| Control::Status { reply })
            .await
            .map(|report| Answer {
                status: Some(
                    serde_json::value::to_raw_value(&report).expect("a status report serializes"),
                ),
                ..Answer::success()
            }),
        Request::Start { names } => ask(handle, |reply| Control::Start { names, reply })
            .await
            .and_then(reply),
        Request::Stop { names } => ask(handle, |reply| Control::Stop { names, reply })
            .await
            .and_then(reply),
        Request::Restart { names } => ask(handle, |reply| Control::Restart { names, reply })
            .await
            .and_then(reply),
        Request::Signal { names, signal } => match crate::config::units::parse_signal(&signal) {
            Ok(signal) => ask(handle, |reply| Control::Signal {
                names,
                signal,
                reply,
            })
            .await
            .and_then(reply),
            Err(e) => Err(e),
        },
        Request::Reload { dry_run } => ask(handle, |reply| Control::Reload { dry_run, reply })
            .await
            .and_then(|r| r)
            .map(|plan| Answer {
                message: Some(plan.describe()),
                plan: Some(
                    serde_json::value::to_raw_value(&plan).expect("a reload plan serializes"),
                ),
                ..Answer::success()
            }),
        Request::Tree { names } => ask(handle, |reply| Control::Tree { names, reply })
            .await
            .and_then(|r| r)
            .map(|trees| {
                #[derive(serde::Serialize)]
                struct Tree {
                    name: String,
                    processes: Vec<crate::monitor::Figures>,
                }
                let trees: Vec<Tree> = trees
                    .into_iter()
                    .map(|(name, processes)| Tree { name, processes })
                    .collect();
                Answer {
                    trees: Some(
                        serde_json::value::to_raw_value(&trees).expect("a tree serializes"),
                    ),
                    ..Answer::success()
                }
            }),
        Request::Down => ask(handle, |reply| Control::Shutdown { reply: Some(reply) })
            .await
            .map(|()| Answer::message("stopped")),
        Request::Scale { name, replicas } => ask(handle, |reply| Control::Scale {
            process: name,
            replicas,
            reply,
        })
        .await
        .and_then(reply),
        Request::History { names } => ask(handle, |reply| Control::History { names, reply })
            .await
            .and_then(|r| r)
            .map(|history| Answer {
                history: Some(
                    serde_json::value::to_raw_value(&history).expect("a history serializes"),
                ),
                ..Answer::success()
            }),
        Request::Describe { name } => ask(handle, |reply| Control::Describe { name, reply })
            .await
            .and_then(|r| r)
            .map(|d| Answer {
                description: Some(
                    serde_json::value::to_raw_value(&d).expect("a description serializes"),
                ),
                ..Answer::success()
            }),
        Request::Logs { .. } | Request::Events { .. } | Request::Subscribe { .. } => Err(format!(
            "`{}` streams: it cannot be used here",
            request.verb()
        )),
    };
    result.unwrap_or_else(Answer::error)
}

fn reply(result: Result<String, String>) -> Result<Answer, String> {
    result.map(Answer::message)
}

/// Send a control message and wait for its reply.
pub async fn ask<T>(
    handle: &Handle,
    make: impl FnOnce(oneshot::Sender<T>) -> Control,
) -> Result<T, String> {
    let (tx, rx) = oneshot::channel();
    handle
        .control
        .send(make(tx))
        .map_err(|_| "the supervisor has stopped".to_string())?;
    rx.await
        .map_err(|_| "the supervisor stopped before answering".to_string())
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
