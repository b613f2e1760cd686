//! One spawned child, addressed through a pidfd so that no signal can reach a recycled pid.
//!
//! The leader is observed exiting with `WNOWAIT` and stays a zombie until [`ChildHandle::reap`]:
//! while it is unreaped its pid, and so its process-group id, cannot be reused, which is
//! what makes `killpg` on that group safe. Signalling and reaping take the same lock, so a
//! group signal is never sent after the reap.

use std::io;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use nix::sys::signal::Signal;
use nix::sys::wait::{Id, WaitPidFlag, WaitStatus, waitid};
use nix::unistd::Pid;
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;

pub use crate::facts::ExitStatus;

#[derive(Debug)]
pub struct ChildHandle {
    pid: Pid,
    pidfd: OwnedFd,
    /// `true` once reaped; guarded so that signals and the reap are serialized.
    reaped: Mutex<bool>,
    /// Set when warden itself stops or kills the run (not when a user's signal is relayed).
    stopping: AtomicBool,
}

impl ChildHandle {
    pub(super) fn from_pidfd(pid: Pid, pidfd: OwnedFd) -> ChildHandle {
        ChildHandle {
            pid,
            pidfd,
            reaped: Mutex::new(false),
            stopping: AtomicBool::new(false),
        }
    }

    pub fn pid(&self) -> Pid {
        self.pid
    }

    /// The child is its own session and group leader, so the group id is its pid.
    pub fn pgid(&self) -> Pid {
        self.pid
    }

    /// Record that warden is stopping or killing this run.
    pub(super) fn mark_stopping(&self) {
        self.stopping.store(true, Ordering::Relaxed);
    }

    /// Whether warden stopped or killed this run (rather than it dying on its own).
    pub fn stopping(&self) -> bool {
        self.stopping.load(Ordering::Relaxed)
    }

    /// Signal the whole process group. Safe from pid reuse: the leader is unreaped.
    pub fn signal_group(&self, sig: Signal) -> bool {
        let reaped = self.reaped.lock().unwrap_or_else(|e| e.into_inner());
        !*reaped && nix::sys::signal::killpg(self.pgid(), sig).is_ok()
    }

    /// Wait until the leader has exited, without reaping it.
    pub async fn exited(&self) -> io::Result<ExitStatus> {
        // SAFETY: the pidfd outlives this AsyncFd, which is dropped before we return.
        let afd =
            unsafe { AsyncFd::register_with_interest(self.pidfd.as_raw_fd(), Interest::READABLE)? };
        loop {
            if let Some(status) = self.peek_exit()? {
                return Ok(status);
            }
            let mut guard = afd.readable().await?;
            guard.clear_ready();
        }
    }

    /// The exit status if the leader has exited, leaving it a zombie.
    pub fn peek_exit(&self) -> io::Result<Option<ExitStatus>> {
        let flags = WaitPidFlag::WEXITED | WaitPidFlag::WNOHANG | WaitPidFlag::WNOWAIT;
        match waitid(Id::PIDFd(self.pidfd.as_fd()), flags) {
            Ok(status) => Ok(to_status(status)),
            Err(e) => Err(io::Error::from(e)),
        }
    }

    /// Reap the (exited) leader. After this no signal will be sent through this handle.
    pub fn reap(&self) -> io::Result<()> {
        let mut reaped = self.reaped.lock().unwrap_or_else(|e| e.into_inner());
        if *reaped {
            return Ok(());
        }
        waitid(Id::PIDFd(self.pidfd.as_fd()), WaitPidFlag::WEXITED).map_err(io::Error::from)?;
        *reaped = true;
        Ok(())
    }

    pub fn is_reaped(&self) -> bool {
        *self.reaped.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn to_status(status: WaitStatus) -> Option<ExitStatus> {
    match status {
        WaitStatus::Exited(_, code) => Some(ExitStatus {
            code: Some(code),
            signal: None,
        }),
        WaitStatus::Signaled(_, sig, _) => Some(ExitStatus {
            code: None,
            signal: Some(sig as i32),
        }),
        _ => None,
    }
}

pub(super) fn pidfd_open(pid: Pid) -> io::Result<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid.as_raw(), 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel just handed us this descriptor; we own it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

pub(super) fn pidfd_send_signal(fd: &OwnedFd, sig: Signal) -> io::Result<()> {
    // SAFETY: a valid pidfd, a valid signal number, no siginfo, no flags.
    let r = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            fd.as_raw_fd(),
            sig as i32,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}
