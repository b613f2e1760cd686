//! One client's side of a connection, as the server and the streams both use it: answers
//! written with a deadline, and the two things a wait must end on (the client hanging up,
//! the server stopping).
//!
//! It decides nothing about requests (that is `dispatch`, and the server's budgets), so
//! the server and `streams` share it without importing each other.

use std::future::Future;
use std::io;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::watch;
use tokio::time::timeout;

use super::protocol::Answer;
use crate::supervisor::Handle;

/// Time a client has to take one answer line before it is dropped (a stopped `logs -f`).
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(30);
/// How often a client that half closed its connection is checked for having gone.
const HANGUP_POLL: Duration = Duration::from_secs(1);

/// A client connection's reading and writing halves, the supervisor it talks to, and
/// the server's stop signal.
pub(super) struct Peer {
    pub rd: BufReader<OwnedReadHalf>,
    wr: OwnedWriteHalf,
    pub handle: Handle,
    pub stop: watch::Receiver<bool>,
}

impl Peer {
    pub fn new(stream: UnixStream, handle: Handle, stop: watch::Receiver<bool>) -> Peer {
        let (rd, wr) = stream.into_split();
        Peer {
            rd: BufReader::with_capacity(8 * 1024, rd),
            wr,
            handle,
            stop,
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
pub(super) async fn until_hangup<T>(
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
