//! Running as a container's init (pid 1, or `warden up --init`): what is left after the
//! supervised processes have stopped.
//!
//! Every supervised run is stopped by the supervisor, tree and all. What can remain are
//! processes warden never knew: orphans that cleared their environment (so carry no
//! `WARDEN_RUN_ID`), or, as pid 1, anything that entered the namespace from outside
//! (`docker exec`) and was re-parented to warden. They are reaped whenever they exit
//! (see `tree::reap_orphans`); at the end they get SIGTERM, the time left until the
//! shutdown deadline, then SIGKILL, the way an init's last stage does.
//!
//! Run it once the supervisor has stopped everything it runs. It reaps only what nobody
//! else waits for, and never signals a pid it has not just seen as its own (except, as
//! pid 1, through `kill(-1)`, which cannot reach outside the namespace).

use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::sys::wait::{Id, WaitPidFlag, waitid};
use nix::unistd::Pid;

use super::child::{pidfd_open, pidfd_send_signal};
use super::registry::Registry;
use super::tree::{children_of, ppid_of, reap_orphans};

/// Whether this process is its pid namespace's init.
pub fn is_pid1() -> bool {
    std::process::id() == 1
}

/// How long SIGKILLed leftovers get to die and be reaped before warden stops waiting.
const KILL_GRACE: Duration = Duration::from_secs(5);

/// Stop and reap whatever is left. As pid 1 that is every other process of the
/// namespace (`kill(-1)`); otherwise warden's own descendants. SIGTERM first, SIGKILL at
/// `deadline`. Returns whether something was still alive at the deadline.
pub fn sweep(deadline: Instant, registry: &Registry) -> bool {
    let pid1 = is_pid1();
    if !signal_all(pid1, Signal::SIGTERM, registry) {
        return false;
    }
    if wait_until_none(pid1, deadline, registry) {
        return false;
    }
    signal_all(pid1, Signal::SIGKILL, registry);
    wait_until_none(pid1, Instant::now() + KILL_GRACE, registry);
    true
}

/// Send `sig` to what is left; false if nothing is.
fn signal_all(pid1: bool, sig: Signal, registry: &Registry) -> bool {
    reap_orphans(registry);
    if pid1 {
        // Every process of the namespace but init itself; ESRCH: there is none.
        return kill(Pid::from_raw(-1), sig).is_ok();
    }
    let mut sent = false;
    for (pid, parent) in descendants() {
        // Through a pidfd, re-checking the parent link, so a recycled pid is never hit.
        let Ok(fd) = pidfd_open(Pid::from_raw(pid)) else {
            continue;
        };
        if ppid_of(pid) == Some(parent) && pidfd_send_signal(&fd, sig).is_ok() {
            sent = true;
        }
    }
    sent
}

/// Reap until no child is left (true) or `deadline` passes (false).
fn wait_until_none(pid1: bool, deadline: Instant, registry: &Registry) -> bool {
    let mut pause = Duration::from_millis(1);
    loop {
        reap_orphans(registry);
        let none_left = if pid1 {
            // ECHILD: no child at all. Orphans of the namespace are re-parented to us,
            // so no child means nothing else is alive.
            let peek = WaitPidFlag::WEXITED | WaitPidFlag::WNOHANG | WaitPidFlag::WNOWAIT;
            matches!(waitid(Id::All, peek), Err(nix::errno::Errno::ECHILD))
        } else {
            descendants().is_empty()
        };
        if none_left {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(50));
    }
}

/// warden's descendants, each with the parent it was seen under.
fn descendants() -> Vec<(i32, i32)> {
    let me = std::process::id() as i32;
    let mut out = Vec::new();
    let mut stack: Vec<(i32, i32)> = children_of(me).into_iter().map(|c| (c, me)).collect();
    while let Some((pid, parent)) = stack.pop() {
        if out.iter().any(|(p, _)| *p == pid) {
            continue;
        }
        stack.extend(children_of(pid).into_iter().map(|c| (c, pid)));
        out.push((pid, parent));
    }
    out.retain(|(pid, _)| !is_zombie(*pid));
    out
}

fn is_zombie(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rfind(')').map(|i| s[i + 2..].starts_with('Z')))
        .unwrap_or(true)
}
