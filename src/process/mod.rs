//! Processes as the kernel sees them: spawning in a new session (and in a cgroup of the
//! run's own, where the host allows), signalling through pidfds, killing whole trees, and
//! reaping without stealing anyone's exit status.
//!
//! This module makes no decisions: when to stop, restart or give up is the supervisor's.
//! It must never block the supervisor's loop (waiting is async, via pidfd readiness) and
//! never signal a pid it has already reaped.

pub mod cgroup;
mod child;
mod clone3;
mod credentials;
mod env;
mod fork;
pub mod guard;
pub mod init;
pub mod limits;
mod registry;
mod spawn;
mod sweep;
mod tree;

pub use cgroup::{Counters, Placement, RunCgroup};
pub use child::{ChildHandle, ExitStatus};
pub use credentials::{Credentials, LOGIN_VARS};
pub use env::Env;
pub use registry::{Adopted, Registry};
pub use spawn::{Launch, SpawnError, Spawned, Spawner};
pub use tree::{RUN_ID_VAR, proc_is_ours, reap_orphans};

use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

/// How long to keep killing and reaping a tree after SIGKILL before reporting survivors
/// (a process in uninterruptible sleep cannot die until its I/O completes).
const KILL_DEADLINE: Duration = Duration::from_secs(5);

/// One run of a child: its handle, the marker that finds its escaped descendants, and
/// its cgroup when it has one (which holds every descendant, marker or not).
#[derive(Debug, Clone)]
pub struct Run {
    pub handle: Arc<ChildHandle>,
    pub run_id: Arc<str>,
    pub registry: Arc<Registry>,
    pub cgroup: Option<Arc<RunCgroup>>,
    /// When the leader was spawned.
    pub started: Instant,
    /// Who the run's processes run as (its exec probes run the same way).
    pub credentials: Option<Arc<Credentials>>,
}

/// What became of a run once nothing of it is left.
#[derive(Debug, Clone)]
pub struct RunEnd {
    pub status: ExitStatus,
    /// Processes of the tree still alive when we gave up waiting for them.
    pub survivors: bool,
    /// Processes the kernel's OOM killer killed in the run's cgroup.
    pub oom_kills: u64,
    /// The run's peak memory, where its cgroup keeps one.
    pub memory_peak: Option<u64>,
}

impl Run {
    /// Record, before any signal is queued, that warden is ending this run (a stop, a
    /// kill): a run that dies meanwhile then has its cgroup removed before its exit is
    /// reported, as a stopped run's is.
    pub fn mark_stopping(&self) {
        self.handle.mark_stopping();
    }

    /// The graceful stop: the signal and SIGCONT (a stopped process cannot act on TERM
    /// until continued) to the group, every escaped descendant and the whole cgroup.
    pub fn stop(&self, sig: Signal) {
        self.handle.mark_stopping();
        let adopted = self.sweep_now();
        self.stop_with(sig, adopted.as_ref());
    }

    /// SIGKILL to everything the run spawned.
    pub fn kill(&self) {
        self.handle.mark_stopping();
        let adopted = self.sweep_now();
        self.kill_with(adopted.as_ref());
    }

    /// `sig` (or SIGKILL with `None`) to each run's tree, after one sweep for them all:
    /// what stopping many runs at once costs is then one look at warden's children, not
    /// one per run. The sweep is taken after the batch was decided, as each run's own
    /// would be.
    pub fn signal_batch(batch: &[(Run, Option<Signal>)]) {
        let mut sweeps: Vec<(&Arc<Registry>, Adopted)> = Vec::new();
        for (run, _) in batch.iter().filter(|(r, _)| r.cgroup.is_none()) {
            if !sweeps.iter().any(|(r, _)| Arc::ptr_eq(r, &run.registry)) {
                sweeps.push((&run.registry, tree::sweep(&run.registry)));
            }
        }
        for (run, signal) in batch {
            run.handle.mark_stopping();
            let adopted = sweeps
                .iter()
                .find(|(r, _)| Arc::ptr_eq(r, &run.registry) && run.cgroup.is_none())
                .map(|(_, a)| a);
            match signal {
                Some(sig) => run.stop_with(*sig, adopted),
                None => run.kill_with(adopted),
            }
        }
    }

    /// Without a cgroup, the run's escaped descendants are found through warden's
    /// adopted orphans; with one, the cgroup holds them all.
    fn sweep_now(&self) -> Option<Adopted> {
        self.cgroup.is_none().then(|| tree::sweep(&self.registry))
    }

    /// The run's adopted orphans, from a sweep taken after the caller decided to signal.
    fn roots<'a>(&self, adopted: Option<&'a Adopted>) -> &'a [i32] {
        adopted.map_or(&[], |a| a.roots(&self.run_id))
    }

    fn stop_with(&self, sig: Signal, adopted: Option<&Adopted>) {
        let sigs: &[Signal] = match sig {
            Signal::SIGKILL => &[Signal::SIGKILL],
            _ => &[sig, Signal::SIGCONT],
        };
        self.signal_all(sigs, adopted);
    }

    fn kill_with(&self, adopted: Option<&Adopted>) {
        match &self.cgroup {
            Some(cg) => {
                self.handle.signal_group(Signal::SIGKILL);
                // An empty cgroup has no one to kill, and `cgroup.kill` would take the
                // kernel's cgroup lock, which a restart's spawn into its new cgroup needs.
                // That is the usual end: a leader that ran alone has exited, and a zombie
                // does not count.
                if cg.populated() {
                    cg.kill();
                }
            }
            None => self.signal_all(&[Signal::SIGKILL], adopted),
        }
    }

    /// `sigs`, in order, to the group, and to every process of the cgroup when the run
    /// has one (it holds every descendant, escaped or not), or else to every descendant
    /// that left the group, found through children links and the adopted orphans.
    fn signal_all(&self, sigs: &[Signal], adopted: Option<&Adopted>) {
        match &self.cgroup {
            Some(cg) => {
                for &sig in sigs {
                    self.handle.signal_group(sig);
                    cg.signal(sig);
                }
            }
            None => {
                tree::signal_tree(&self.handle, self.roots(adopted), sigs);
            }
        }
    }

    /// The pids of the run's tree, leader first: its cgroup's members, or the group, the
    /// leader's descendants and the orphans adopted from this run.
    /// Empty where `/proc` is another pid namespace's: its pids would name others.
    pub fn pids(&self, adopted: &Adopted) -> Vec<i32> {
        if !tree::proc_is_ours() {
            return Vec::new();
        }
        if let Some(cg) = &self.cgroup {
            let leader = self.handle.pid().as_raw();
            let mut pids = cg.pids();
            if let Some(i) = pids.iter().position(|&p| p == leader) {
                pids.swap(0, i);
            }
            return pids;
        }
        tree::pids(&self.handle, &self.run_id, adopted)
    }

    /// Send a user's signal to the process group.
    pub fn signal(&self, sig: Signal) -> bool {
        self.handle.signal_group(sig)
    }

    /// Wait for the leader to exit, then make sure nothing of the tree outlives it:
    /// leftovers are killed while the leader is still an unreaped zombie (so its group id
    /// cannot be recycled), then the leader is reaped and adopted orphans collected; the
    /// run's cgroup is removed last ([`Run::ended`], then [`Run::release`]).
    pub async fn finished(&self) -> RunEnd {
        let end = self.ended().await;
        self.release(&end).await;
        end
    }

    /// [`Run::finished`] but for the removal of the run's cgroup: once this returns,
    /// nothing of the tree is alive (unless `survivors`), and a restart may begin while
    /// [`Run::release`] removes the empty cgroup.
    pub async fn ended(&self) -> RunEnd {
        let status = match self.handle.exited().await {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(pid = %self.handle.pid(), "waiting for the process failed: {e}");
                ExitStatus {
                    code: None,
                    signal: None,
                }
            }
        };
        // Leftovers die while the leader is an unreaped zombie, so its group id cannot be
        // recycled; its escaped descendants are orphans of warden by now (and so are its
        // children: the leader is gone).
        let adopted = match &self.cgroup {
            Some(_) => None,
            None => Some(
                self.registry
                    .sweeps
                    .fresh(|| tree::sweep(&self.registry))
                    .await,
            ),
        };
        self.kill_with(adopted.as_deref());
        if let Err(e) = tree::reap_and_unregister(&self.registry, &self.handle) {
            tracing::error!(pid = %self.handle.pid(), "reaping the process failed: {e}");
        }
        let deadline = Instant::now() + KILL_DEADLINE;
        let mut pause = Duration::from_micros(200);
        let survivors = loop {
            // With a cgroup, an empty cgroup and a group without a member (not even a
            // zombie) are the whole answer: the cgroup held every live descendant, and
            // no sweep is needed. Otherwise a sweep reaps the group's zombies (they keep
            // the group "alive") and finds what is left of the run, as freshly as a
            // sweep of our own (see `sweep`).
            let empty = |cg: &RunCgroup| !cg.populated() && !tree::group_alive(&self.handle);
            if self.cgroup.as_deref().is_some_and(empty) {
                break false;
            }
            let adopted = self
                .registry
                .sweeps
                .fresh(|| tree::sweep(&self.registry))
                .await;
            let adopted = self.cgroup.is_none().then_some(&*adopted);
            let alive = match self.cgroup.as_deref() {
                Some(cg) => !empty(cg),
                None => tree::tree_alive(&self.handle, self.roots(adopted)),
            };
            if !alive {
                break false;
            }
            if Instant::now() >= deadline {
                tracing::warn!(
                    pid = %self.handle.pid(),
                    "processes of this run are still alive {}s after SIGKILL",
                    KILL_DEADLINE.as_secs()
                );
                break true;
            }
            self.kill_with(adopted);
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(50));
        };
        let (oom_kills, memory_peak) = match &self.cgroup {
            Some(cg) => (cg.oom_kills(), cg.memory_peak()),
            None => (0, None),
        };
        RunEnd {
            status,
            survivors,
            oom_kills,
            memory_peak,
        }
    }

    /// Remove the cgroup of a run that has [`Run::ended`] with nothing left alive (it is
    /// kept where processes survived: they are still in it).
    pub async fn release(&self, end: &RunEnd) {
        if let Some(cg) = self.cgroup.as_ref().filter(|_| !end.survivors) {
            remove_cgroup(cg, Instant::now() + KILL_DEADLINE).await;
        }
    }
}

/// Remove an emptied run's cgroups, retrying while the kernel still holds them busy.
async fn remove_cgroup(cg: &RunCgroup, deadline: Instant) {
    let mut pause = Duration::from_micros(200);
    loop {
        match cg.remove() {
            Ok(()) => return,
            Err(e) if Instant::now() >= deadline => {
                tracing::warn!("cannot remove the cgroup `{}`: {e}", cg.dir().display());
                return;
            }
            Err(_) => {
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_millis(50));
            }
        }
    }
}

/// Make warden the reaper of its orphaned descendants (they are re-parented to it
/// instead of to init, so escaped grandchildren stay within reach).
pub fn become_subreaper() -> nix::Result<()> {
    nix::sys::prctl::set_child_subreaper(true)
}

#[cfg(test)]
#[path = "run_tests.rs"]
mod run_tests;
#[cfg(test)]
#[path = "spawn_tests.rs"]
mod spawn_tests;
#[cfg(test)]
mod test_cgroup;
