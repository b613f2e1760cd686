//! The `sd_notify` protocol: a Unix datagram socket whose path a child finds in
//! `NOTIFY_SOCKET`, and on which it reports `READY=1`, `STATUS=…`, `WATCHDOG=1`,
//! `STOPPING=1` as newline-separated `KEY=VALUE` lines, one datagram per report.
//!
//! The socket passes credentials (`SO_PASSCRED`), so the kernel stamps every datagram
//! with the sender's pid, which the sender cannot forge; the caller checks that pid
//! against the process tree it runs, since anything that can reach the path could write
//! to it. This module only receives and parses: it never decides what a message means
//! for a process, and never trusts the text for who sent it.

use std::io::{self, IoSliceMut};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use nix::sys::socket::{
    ControlMessageOwned, MsgFlags, UnixCredentials, recvmsg, setsockopt, sockopt,
};
use tokio::io::Interest;
use tokio::net::UnixDatagram;

/// Largest datagram read whole. systemd caps messages at a few KiB; a longer one is cut
/// and its last, partial line dropped.
const MAX_DATAGRAM: usize = 64 * 1024;

pub use crate::facts::NotifyMessage;

/// The receiving end of `NOTIFY_SOCKET`. The socket file is removed on drop.
#[derive(Debug)]
pub struct NotifySocket {
    socket: UnixDatagram,
    path: PathBuf,
    /// Device and inode of the socket file we bound, so that drop never removes a file
    /// that someone put in its place.
    identity: (u64, u64),
}

impl NotifySocket {
    /// Bind at `path` (in a folder the caller owns; the path must fit in 108 bytes).
    /// A stale socket file at the path is replaced; any other file is an error.
    /// Must be called within a tokio runtime.
    pub fn bind(path: impl Into<PathBuf>) -> io::Result<NotifySocket> {
        let path = path.into();
        match std::fs::symlink_metadata(&path) {
            Ok(meta) if meta.file_type().is_socket() => std::fs::remove_file(&path)?,
            Ok(_) => {
                return Err(io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    format!("`{}` exists and is not a socket", path.display()),
                ));
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        let socket = UnixDatagram::bind(&path)?;
        // Set before the path is handed to anyone, so every datagram carries credentials.
        setsockopt(&socket, sockopt::PassCred, &true)?;
        let meta = std::fs::symlink_metadata(&path)?;
        Ok(NotifySocket {
            socket,
            path,
            identity: (meta.dev(), meta.ino()),
        })
    }

    /// The path to put in the child's `NOTIFY_SOCKET`.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether a datagram is waiting to be read: a verdict about missed watchdog pings
    /// must wait until it has been.
    pub fn has_pending(&self) -> bool {
        use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
        use std::os::fd::AsFd;
        let mut fds = [PollFd::new(self.socket.as_fd(), PollFlags::POLLIN)];
        matches!(poll(&mut fds, PollTimeout::ZERO), Ok(n) if n > 0)
    }

    /// Wait for the next datagram: the sender's pid as the kernel reports it (`None` if
    /// the datagram came without credentials, or from outside our pid namespace) and its
    /// well-formed lines. Garbage lines are skipped; an empty datagram gives no messages.
    pub async fn recv(&self) -> io::Result<(Option<i32>, Vec<NotifyMessage>)> {
        let mut buf = vec![0u8; MAX_DATAGRAM];
        let fd = self.socket.as_raw_fd();
        let (pid, len, truncated) = self
            .socket
            .async_io(Interest::READABLE, || receive(fd, &mut buf))
            .await?;
        let mut text = &buf[..len];
        if truncated {
            tracing::warn!(socket = %self.path.display(), "notify datagram longer than {MAX_DATAGRAM} bytes, cut");
            let end = memchr::memrchr(b'\n', text).unwrap_or(0);
            text = &text[..end];
        }
        Ok((pid, parse(text)))
    }
}

impl Drop for NotifySocket {
    fn drop(&mut self) {
        if let Ok(meta) = std::fs::symlink_metadata(&self.path)
            && (meta.dev(), meta.ino()) == self.identity
        {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// One non-blocking `recvmsg`: (sender pid, bytes, whether the datagram was cut).
fn receive(fd: RawFd, buf: &mut [u8]) -> io::Result<(Option<i32>, usize, bool)> {
    let mut iov = [IoSliceMut::new(buf)];
    // Room for the credentials and a few descriptors: a sender may pass some (FDSTORE=1),
    // and we close them; descriptors that do not fit are discarded by the kernel.
    let mut cmsg = nix::cmsg_space!(UnixCredentials, [RawFd; 16]);
    let msg = recvmsg::<()>(
        fd,
        &mut iov,
        Some(&mut cmsg),
        MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_CMSG_CLOEXEC,
    )?;
    let mut pid = None;
    // With the control data cut (MSG_CTRUNC) nix yields no messages at all; the datagram
    // is still delivered, without a pid.
    if let Ok(cmsgs) = msg.cmsgs() {
        for c in cmsgs {
            match c {
                ControlMessageOwned::ScmCredentials(cred) if cred.pid() > 0 => {
                    pid = Some(cred.pid());
                }
                ControlMessageOwned::ScmRights(fds) => {
                    for fd in fds {
                        // SAFETY: the kernel just installed this descriptor for us.
                        drop(unsafe { OwnedFd::from_raw_fd(fd) });
                    }
                }
                _ => {}
            }
        }
    }
    Ok((pid, msg.bytes, msg.flags.contains(MsgFlags::MSG_TRUNC)))
}

/// The lines of one datagram; lines without `=` or with a key that is not
/// `[A-Z0-9_]+` are garbage and skipped.
pub fn parse(datagram: &[u8]) -> Vec<NotifyMessage> {
    let text = String::from_utf8_lossy(datagram);
    text.split('\n').filter_map(parse_line).collect()
}

fn parse_line(line: &str) -> Option<NotifyMessage> {
    let (key, value) = line.split_once('=')?;
    if key.is_empty()
        || !key
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
    {
        return None;
    }
    let other = || Some(NotifyMessage::Other(line.to_string()));
    match (key, value) {
        ("READY", "1") => Some(NotifyMessage::Ready),
        ("STOPPING", "1") => Some(NotifyMessage::Stopping),
        ("RELOADING", "1") => Some(NotifyMessage::Reloading),
        ("WATCHDOG", "1") => Some(NotifyMessage::Watchdog),
        ("WATCHDOG", "trigger") => Some(NotifyMessage::WatchdogTrigger),
        ("STATUS", v) => Some(NotifyMessage::Status(v.to_string())),
        ("MAINPID", v) => v
            .parse()
            .ok()
            .filter(|&p: &i32| p > 0)
            .map(NotifyMessage::MainPid),
        ("ERRNO", v) => v.parse().ok().map(NotifyMessage::Errno),
        _ => other(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::test_support::{PATIENT, short_tempdir, spawner};
    use crate::process::Launch;
    use std::os::unix::net::UnixDatagram as StdDatagram;

    #[test]
    fn parses_lines() {
        use NotifyMessage::*;
        let got = parse(
            b"READY=1\nSTATUS=warming up: 3/4 = 75%\nWATCHDOG=1\nWATCHDOG=trigger\n\
              MAINPID=4242\nERRNO=2\nSTOPPING=1\nRELOADING=1\nEXTEND_TIMEOUT_USEC=5000000\n",
        );
        assert_eq!(
            got,
            vec![
                Ready,
                Status("warming up: 3/4 = 75%".into()),
                Watchdog,
                WatchdogTrigger,
                MainPid(4242),
                Errno(2),
                Stopping,
                Reloading,
                Other("EXTEND_TIMEOUT_USEC=5000000".into()),
            ]
        );
    }

    #[test]
    fn skips_garbage() {
        use NotifyMessage::*;
        let got = parse(b"\n\nhello\n=1\nready=1\nMAINPID=abc\nMAINPID=-1\n\xff\xfe=\x00\nSTATUS=\xffok\nREADY=0");
        assert_eq!(
            got,
            vec![Status("\u{fffd}ok".into()), Other("READY=0".into())]
        );
        assert_eq!(parse(b""), vec![]);
        assert_eq!(parse(&[0u8; 5000]), vec![]);
    }

    #[tokio::test]
    async fn receives_with_the_sender_pid() {
        let dir = short_tempdir();
        let socket = NotifySocket::bind(dir.path().join("n")).unwrap();
        let client = StdDatagram::unbound().unwrap();
        client
            .send_to(b"READY=1\nSTATUS=warming up", socket.path())
            .unwrap();
        let got = tokio::time::timeout(PATIENT, socket.recv())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            got,
            (
                Some(std::process::id() as i32),
                vec![
                    NotifyMessage::Ready,
                    NotifyMessage::Status("warming up".into())
                ]
            )
        );
    }

    #[tokio::test]
    async fn big_datagrams_and_passed_descriptors() {
        let dir = short_tempdir();
        let socket = NotifySocket::bind(dir.path().join("n")).unwrap();
        let client = StdDatagram::unbound().unwrap();
        let status = "x".repeat(6000);
        client
            .send_to(
                format!("STATUS={status}\nWATCHDOG=1").as_bytes(),
                socket.path(),
            )
            .unwrap();
        let (pid, got) = tokio::time::timeout(PATIENT, socket.recv())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(pid, Some(std::process::id() as i32));
        assert_eq!(
            got,
            vec![NotifyMessage::Status(status), NotifyMessage::Watchdog]
        );

        // FDSTORE=1 with a descriptor: the message arrives, the descriptor is closed.
        use nix::sys::socket::{ControlMessage, UnixAddr, sendmsg};
        let (keep, _other) = StdDatagram::pair().unwrap();
        let fds = [keep.as_raw_fd()];
        let addr = UnixAddr::new(socket.path()).unwrap();
        let iov = [std::io::IoSlice::new(b"FDSTORE=1")];
        sendmsg(
            client.as_raw_fd(),
            &iov,
            &[ControlMessage::ScmRights(&fds)],
            MsgFlags::empty(),
            Some(&addr),
        )
        .unwrap();
        let (pid, got) = tokio::time::timeout(PATIENT, socket.recv())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(pid, Some(std::process::id() as i32));
        assert_eq!(got, vec![NotifyMessage::Other("FDSTORE=1".into())]);
    }

    #[tokio::test]
    async fn removes_its_file_and_replaces_a_stale_one() {
        let dir = short_tempdir();
        let path = dir.path().join("n");
        drop(StdDatagram::bind(&path).unwrap());
        assert!(path.exists());
        let socket = NotifySocket::bind(&path).unwrap();
        drop(socket);
        assert!(!path.exists());

        std::fs::write(&path, "not a socket").unwrap();
        assert!(NotifySocket::bind(&path).is_err());
    }

    #[tokio::test]
    async fn python_sdnotify_style_sender() {
        let Ok(python) = which("python3") else {
            eprintln!("python3 not found; skipped");
            return;
        };
        let dir = short_tempdir();
        let socket = NotifySocket::bind(dir.path().join("n")).unwrap();
        // What the `sdnotify` package does: AF_UNIX, SOCK_DGRAM, sendto($NOTIFY_SOCKET).
        let script = "import os, socket\n\
                      s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)\n\
                      s.sendto(b'READY=1\\nSTATUS=from python', os.environ['NOTIFY_SOCKET'])";
        let launch = Launch {
            argv: vec![python.display().to_string(), "-c".into(), script.into()],
            cwd: dir.path().to_path_buf(),
            env: vec![("NOTIFY_SOCKET".into(), socket.path().display().to_string())].into(),
            capture: false,
            die_with_warden: true,
            stdin: None,
            stdout: None,
            cgroup: None,
            credentials: None,
            umask: None,
        };
        let child = spawner().spawn(launch).await.unwrap().handle;
        let python_pid = child.pid().as_raw();
        let got = tokio::time::timeout(PATIENT, socket.recv()).await;
        let status = tokio::time::timeout(PATIENT, child.exited()).await;
        if status.is_err() {
            child.signal_group(nix::sys::signal::Signal::SIGKILL);
            let _ = tokio::time::timeout(PATIENT, child.exited()).await;
        }
        child.reap().unwrap();
        let got = got.expect("a datagram from python").unwrap();
        assert_eq!(status.unwrap().unwrap().code, Some(0));
        assert_eq!(
            got,
            (
                Some(python_pid),
                vec![
                    NotifyMessage::Ready,
                    NotifyMessage::Status("from python".into())
                ]
            )
        );
    }

    fn which(program: &str) -> Result<PathBuf, ()> {
        let path = std::env::var_os("PATH").ok_or(())?;
        std::env::split_paths(&path)
            .map(|dir| dir.join(program))
            .find(|p| p.is_file())
            .ok_or(())
    }
}
