//! The respawn floor of `make bench`'s restart workload: a restart with no supervisor
//! logic at all. It runs one child and, each time the child dies, sees the death on the
//! pidfd it holds, reaps it and `posix_spawn`s the same command again, nothing else.
//! `bench.py restart` kills the child and times it as it times warden, s6 and supervisord.
//!
//! Unlike the spawn floor, this pays for the death itself and for waking up after it,
//! which on an idle machine (a virtual one above all) is a good part of any restart.
//! SIGTERM kills and reaps the child, then ends the loop.
//!
//! `cargo run --release --example respawn_floor -- COMMAND [ARG...]`

use std::ffi::CString;
use std::io::Error;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;

fn main() {
    let command: Vec<CString> = std::env::args_os()
        .skip(1)
        .map(|a| CString::new(a.as_bytes()).expect("no NUL in arguments"))
        .collect();
    if command.is_empty() {
        fail("usage: respawn_floor COMMAND [ARG...]");
    }
    let env: Vec<CString> = std::env::vars_os()
        .map(|(k, v)| {
            let mut kv = k.as_bytes().to_vec();
            kv.push(b'=');
            kv.extend_from_slice(v.as_bytes());
            CString::new(kv).expect("no NUL in the environment")
        })
        .collect();
    // Made once: a restart spawns from these and does nothing else.
    let argv = null_terminated(&command);
    let envp = null_terminated(&env);
    let term = term_signals();
    let attr = unblocked_attr();

    let mut child = spawn(&attr, &argv, &envp);
    loop {
        let mut fds = [poll_in(&child.1), poll_in(&term)];
        // SAFETY: two valid pollfd structures.
        if unsafe { libc::poll(fds.as_mut_ptr(), 2, -1) } < 0 {
            let e = Error::last_os_error();
            if e.raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            end(&child);
            fail(&format!("poll: {e}"));
        }
        if fds[1].revents != 0 {
            end(&child);
            return;
        }
        if fds[0].revents != 0 {
            reap(child.0);
            child = spawn(&attr, &argv, &envp);
        }
    }
}

/// A child's pid and the pidfd held since its spawn.
type Child = (libc::pid_t, OwnedFd);

fn spawn(
    attr: &libc::posix_spawnattr_t,
    argv: &[*mut libc::c_char],
    envp: &[*mut libc::c_char],
) -> Child {
    let mut pid = 0;
    // SAFETY: both arrays end with a null pointer and point to NUL-terminated strings
    // that outlive the call.
    let rc = unsafe {
        libc::posix_spawn(
            &mut pid,
            argv[0],
            std::ptr::null(),
            attr,
            argv.as_ptr(),
            envp.as_ptr(),
        )
    };
    if rc != 0 {
        fail(&format!("posix_spawn: {}", Error::from_raw_os_error(rc)));
    }
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        let e = Error::last_os_error();
        // SAFETY: our own unreaped child.
        unsafe { libc::kill(pid, libc::SIGKILL) };
        reap(pid);
        fail(&format!("pidfd_open: {e}"));
    }
    // SAFETY: a descriptor just returned to us and owned by nobody else.
    (pid, unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// SIGKILL the child and reap it.
fn end(child: &Child) {
    // SAFETY: our own child, not reaped yet, so the pid cannot have been reused.
    unsafe { libc::kill(child.0, libc::SIGKILL) };
    reap(child.0);
}

fn reap(pid: libc::pid_t) {
    // SAFETY: waiting for our own child.
    while unsafe { libc::waitpid(pid, std::ptr::null_mut(), 0) } < 0
        && Error::last_os_error().raw_os_error() == Some(libc::EINTR)
    {}
}

/// SIGTERM and SIGINT, blocked and read from a descriptor, so that the loop polls for them
/// beside the child.
fn term_signals() -> OwnedFd {
    // SAFETY: a signal set built and used on this thread, before any other exists.
    unsafe {
        let mut set = std::mem::zeroed::<libc::sigset_t>();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        let fd = libc::signalfd(-1, &set, libc::SFD_CLOEXEC);
        if fd < 0 {
            fail(&format!("signalfd: {}", Error::last_os_error()));
        }
        OwnedFd::from_raw_fd(fd)
    }
}

/// Spawn attributes that give the child an empty signal mask (ours blocks SIGTERM).
fn unblocked_attr() -> libc::posix_spawnattr_t {
    // SAFETY: the attributes are initialised before use and live as long as `main`.
    unsafe {
        let mut attr = std::mem::zeroed::<libc::posix_spawnattr_t>();
        let mut empty = std::mem::zeroed::<libc::sigset_t>();
        libc::sigemptyset(&mut empty);
        libc::posix_spawnattr_init(&mut attr);
        libc::posix_spawnattr_setsigmask(&mut attr, &empty);
        libc::posix_spawnattr_setflags(&mut attr, libc::POSIX_SPAWN_SETSIGMASK as _);
        attr
    }
}

fn null_terminated(strings: &[CString]) -> Vec<*mut libc::c_char> {
    let mut ptrs: Vec<*mut libc::c_char> = strings.iter().map(|s| s.as_ptr().cast_mut()).collect();
    ptrs.push(std::ptr::null_mut());
    ptrs
}

fn poll_in(fd: &OwnedFd) -> libc::pollfd {
    libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    }
}

fn fail(message: &str) -> ! {
    eprintln!("respawn_floor: {message}");
    std::process::exit(1)
}
