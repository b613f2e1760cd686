//! warden's descriptor limit, and the one its children get.
//!
//! A supervisor holds a few descriptors per child (pipes, a pidfd, a log file), so the
//! common default soft limit of 1024 runs out at a few hundred processes. Like systemd,
//! warden raises its own soft `RLIMIT_NOFILE` to the hard limit at start, and gives its
//! children the limit it was started with: many programs still use `select()`, which
//! breaks on descriptors above 1023, and a child that wants more can raise it itself.
//!
//! This module only reads and sets limits; it decides nothing about processes.

use std::io;
use std::sync::OnceLock;

/// The limit warden was started with, to restore in each child; set once warden has
/// raised its own.
static CHILD_NOFILE: OnceLock<libc::rlimit> = OnceLock::new();

/// Raises the soft descriptor limit to the hard one. Returns (soft before, soft now).
/// Children spawned afterwards get the limit as it was before.
pub fn raise_nofile_limit() -> io::Result<(u64, u64)> {
    let before = get()?;
    if before.rlim_cur >= before.rlim_max {
        return Ok((before.rlim_cur, before.rlim_cur));
    }
    let raised = libc::rlimit {
        rlim_cur: before.rlim_max,
        rlim_max: before.rlim_max,
    };
    // SAFETY: a valid rlimit struct.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } < 0 {
        return Err(io::Error::last_os_error());
    }
    let _ = CHILD_NOFILE.set(before);
    Ok((before.rlim_cur, raised.rlim_cur))
}

/// What a child's `RLIMIT_NOFILE` is to be set to before `execve`, if not warden's own.
pub(super) fn child_nofile() -> Option<libc::rlimit> {
    CHILD_NOFILE.get().copied()
}

/// warden's current soft descriptor limit (0 if it cannot be read).
pub fn nofile_soft() -> u64 {
    get().map_or(0, |l| l.rlim_cur)
}

fn get() -> io::Result<libc::rlimit> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes the struct we pass.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(limit)
}
