//! Draining pipes into sinks, on a thread of their own.
//!
//! Every pump runs on the capture thread ([`spawn_pumps`]), a single-threaded runtime of
//! its own: however fast children write, the runtime that runs the supervisor, the
//! control socket and the probes never has a reader in its way.
//! A pump reads as fast as the child writes while the log file keeps up; when the file's
//! queue is full and its disk is merely slow, the pump waits before its next read (the
//! child then waits on its pipe, and nothing is lost); when the file hangs, the pump
//! reads on and the file's share is dropped and counted (see `writer.rs`).
//!
//! A pump runs until EOF and knows nothing about the child's exit: a grandchild may hold
//! the pipe open long after the child is reaped, so the caller bounds the drain after the
//! exit and then drops (aborts) the pump; the partial last line is flushed either way.

use std::future::Future;
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::sync::{Arc, Mutex, PoisonError};

use nix::errno::Errno;
use nix::fcntl::{FcntlArg, OFlag, fcntl};
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;
use tokio::task::JoinHandle;

use super::{LogSink, Stream};

use super::buffers;

/// One read's worth: a Linux pipe holds 64 KiB by default.
const READ_SIZE: usize = buffers::CHUNK;

/// Runs [`pump`] for a run's stdout and stderr (either may be absent) as one task on the
/// capture thread (started on first use; if that thread cannot be had, out of
/// descriptors or threads, on the caller's runtime, so that output is still read): a
/// task per run rather than per pipe (each task is an allocation
/// of its own that lasts as long as the run, and an idle warden may hold a thousand).
pub fn spawn_pumps(
    stdout: Option<OwnedFd>,
    stderr: Option<OwnedFd>,
    sink: Arc<LogSink>,
) -> Option<JoinHandle<()>> {
    if stdout.is_none() && stderr.is_none() {
        return None;
    }
    let both = async move {
        let one = |fd: Option<OwnedFd>, stream| {
            let sink = Arc::clone(&sink);
            async move {
                if let Some(fd) = fd {
                    pump(fd, stream, sink).await;
                }
            }
        };
        tokio::join!(one(stdout, Stream::Stdout), one(stderr, Stream::Stderr));
    };
    Some(spawn_capture(both))
}

fn spawn_capture(task: impl Future<Output = ()> + Send + 'static) -> JoinHandle<()> {
    static CAPTURE: Mutex<Option<tokio::runtime::Handle>> = Mutex::new(None);
    let mut capture = CAPTURE.lock().unwrap_or_else(PoisonError::into_inner);
    if capture.is_none() {
        match start_capture() {
            Ok(handle) => *capture = Some(handle),
            Err(e) => tracing::warn!("cannot start the output capture thread: {e}"),
        }
    }
    match capture.as_ref() {
        Some(handle) => handle.spawn(task),
        None => tokio::spawn(task),
    }
}

fn start_capture() -> io::Result<tokio::runtime::Handle> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()?;
    let handle = runtime.handle().clone();
    std::thread::Builder::new()
        .name("warden-capture".into())
        .spawn(move || runtime.block_on(std::future::pending::<()>()))?;
    Ok(handle)
}

/// Reads `fd` (the read end of a child's stdout or stderr pipe) until EOF or an error,
/// handing every chunk to `sink`, then ends the stream in the sink. Dropping the future
/// (aborting the task) also ends the stream.
pub async fn pump(fd: OwnedFd, stream: Stream, sink: Arc<LogSink>) {
    let _end = EndOfStream(&sink, stream);
    if let Err(e) = set_nonblocking(&fd) {
        tracing::warn!(process = %sink.name(), ?stream, "cannot read output pipe: {e}");
        return;
    }
    let fd = Arc::new(fd);
    // SAFETY: the descriptor stays open as long as the `Arc` the `AsyncFd` owns, and
    // nothing closes it behind its back (the sink's clone only asks FIONREAD).
    let registered =
        unsafe { AsyncFd::register_with_interest(Arc::clone(&fd), Interest::READABLE) };
    let fd = match registered {
        Ok(registered) => {
            sink.attach(stream, Some(fd));
            registered
        }
        Err(e) => {
            tracing::warn!(process = %sink.name(), ?stream, "cannot watch output pipe: {e}");
            return;
        }
    };
    loop {
        // Boxed while it lasts: the wait (a timer and a notification) is rare and larger
        // than the rest of the pump, which every run holds for its whole life.
        if !sink.has_room() {
            Box::pin(sink.room()).await;
        }
        let mut ready = match fd.readable().await {
            Ok(ready) => ready,
            Err(e) => {
                tracing::warn!(process = %sink.name(), ?stream, "cannot watch output pipe: {e}");
                return;
            }
        };
        match ready.try_io(|fd| read_into(fd.get_ref(), stream, &sink)) {
            Ok(Ok(0)) => return,
            // A full read: there is probably more; let the other pipes have a turn first.
            Ok(Ok(READ_SIZE)) => tokio::task::yield_now().await,
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                tracing::warn!(process = %sink.name(), ?stream, "cannot read output pipe: {e}");
                return;
            }
            // Drained: readiness was cleared, wait for the next wakeup.
            Err(_would_block) => {}
        }
    }
}

/// One `read` into a buffer taken only for that read (an idle pump holds none, and there
/// may be a thousand of them), handed to the sink; Ok(0) at EOF.
fn read_into(fd: &OwnedFd, stream: Stream, sink: &LogSink) -> io::Result<usize> {
    let mut buf = buffers::take();
    loop {
        sink.reading(true);
        let spare = buf.spare_capacity_mut();
        // SAFETY: `read` writes at most `spare.len()` bytes into memory we own; the bytes
        // it reports are initialized from then on.
        let n = unsafe { libc::read(fd.as_raw_fd(), spare.as_mut_ptr().cast(), spare.len()) };
        let read = Errno::result(n).map(|n| n as usize);
        match read {
            Ok(n) if n > 0 => {
                // SAFETY: see above.
                unsafe { buf.set_len(n) };
                sink.write_chunk(stream, buf);
                sink.reading(false);
                return Ok(n);
            }
            _ => sink.reading(false),
        }
        match read {
            Ok(n) => {
                buffers::give(buf);
                return Ok(n);
            }
            Err(Errno::EINTR) => continue,
            Err(errno) => {
                buffers::give(buf);
                // EAGAIN becomes WouldBlock, which `try_io` takes as "not ready".
                return Err(io::Error::from(errno));
            }
        }
    }
}

fn set_nonblocking(fd: &OwnedFd) -> nix::Result<()> {
    let flags = OFlag::from_bits_retain(fcntl(fd.as_fd(), FcntlArg::F_GETFL)?);
    fcntl(fd.as_fd(), FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK))?;
    Ok(())
}

/// Flushes the partial last line when the pump ends, including by being dropped, and
/// lets go of the pipe.
struct EndOfStream<'a>(&'a LogSink, Stream);

impl Drop for EndOfStream<'_> {
    fn drop(&mut self) {
        self.0.attach(self.1, None);
        self.0.end_of_stream(self.1);
    }
}
