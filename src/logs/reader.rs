//! Draining one pipe into a sink.
//!
//! A pump reads as fast as the child writes, so the child never blocks on a full pipe
//! while the sink keeps up. It runs until EOF and knows nothing about the child's exit:
//! a grandchild may hold the pipe open long after the child is reaped, so the caller
//! bounds the drain after the exit and then drops (aborts) the pump; the partial last
//! line is flushed either way.

use std::cell::RefCell;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::Arc;

use nix::errno::Errno;
use nix::fcntl::{FcntlArg, OFlag, fcntl};
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;

use super::{LogSink, Stream};

/// One read's worth: a Linux pipe holds 64 KiB by default.
const READ_SIZE: usize = 64 * 1024;

thread_local! {
    /// The read buffer, per worker thread rather than per pump: an idle pump holds no
    /// buffer, and there may be a thousand of them.
    static READ_BUFFER: RefCell<Box<[u8]>> = RefCell::new(vec![0; READ_SIZE].into_boxed_slice());
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
    // SAFETY: an `OwnedFd` is an open descriptor that nothing else closes; the `AsyncFd`
    // owns it from here until it is dropped, and `as_raw_fd` always returns it.
    let registered = unsafe { AsyncFd::register_with_interest(fd, Interest::READABLE) };
    let fd = match registered {
        Ok(fd) => fd,
        Err(e) => {
            tracing::warn!(process = %sink.name(), ?stream, "cannot watch output pipe: {e}");
            return;
        }
    };
    loop {
        let mut ready = match fd.readable().await {
            Ok(ready) => ready,
            Err(e) => {
                tracing::warn!(process = %sink.name(), ?stream, "cannot watch output pipe: {e}");
                return;
            }
        };
        match ready.try_io(|fd| read_into(fd.get_ref(), stream, &sink)) {
            Ok(Ok(0)) => return,
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

/// One `read` into the thread's buffer, handed to the sink; Ok(0) at EOF.
fn read_into(fd: &OwnedFd, stream: Stream, sink: &LogSink) -> io::Result<usize> {
    READ_BUFFER.with(|cell| {
        let mut fresh;
        let mut borrowed;
        // Never re-entered in practice (a sink does not read pipes), but never panic.
        let buf: &mut [u8] = match cell.try_borrow_mut() {
            Ok(b) => {
                borrowed = b;
                &mut borrowed[..]
            }
            Err(_) => {
                fresh = vec![0; READ_SIZE];
                &mut fresh[..]
            }
        };
        loop {
            match nix::unistd::read(fd, buf) {
                Ok(n) => {
                    sink.write(stream, &buf[..n]);
                    return Ok(n);
                }
                Err(Errno::EINTR) => continue,
                // EAGAIN becomes WouldBlock, which `try_io` takes as "not ready".
                Err(errno) => return Err(io::Error::from(errno)),
            }
        }
    })
}

fn set_nonblocking(fd: &OwnedFd) -> nix::Result<()> {
    let flags = OFlag::from_bits_retain(fcntl(fd.as_fd(), FcntlArg::F_GETFL)?);
    fcntl(fd.as_fd(), FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK))?;
    Ok(())
}

/// Flushes the partial last line when the pump ends, including by being dropped.
struct EndOfStream<'a>(&'a LogSink, Stream);

impl Drop for EndOfStream<'_> {
    fn drop(&mut self) {
        self.0.end_of_stream(self.1);
    }
}
