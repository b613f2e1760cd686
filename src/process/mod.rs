//! Processes as the kernel sees them: spawning in a new session, signalling through
//! pidfds, killing whole trees, and reaping without stealing anyone's exit status.
//!
//! This module makes no decisions: when to stop, restart or give up is the supervisor's.
//! It must never block the supervisor's loop (waiting is async, via pidfd readiness) and
//! never signal a pid it has already reaped.

mod child;
mod credentials;
mod fork;
pub mod guard;
pub mod init;
pub mod limits;
mod spawn;
mod tree;

pub use child::{ChildHandle, ExitStatus};
pub use credentials::{Credentials, LOGIN_VARS};
pub use spawn::{Launch, Registry, SpawnError, Spawned, Spawner, inherited_env};
pub use tree::{RUN_ID_VAR, proc_is_ours, reap_orphans, ticks_per_second, tree_usage};

use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

/// How long to keep killing and reaping a tree after SIGKILL before reporting survivors
/// (a process in uninterruptible sleep cannot die until its I/O completes).
const KILL_DEADLINE: Duration = Duration::from_secs(5);

/// One run of a child: its handle plus the marker that finds its escaped descendants.
#[derive(Debug, Clone)]
pub struct Run {
    pub handle: Arc<ChildHandle>,
    pub run_id: Arc<str>,
    pub registry: Arc<Registry>,
    /// Who the run's processes run as (its exec probes run the same way).
    pub credentials: Option<Arc<Credentials>>,
}

/// What became of a run once nothing of it is left.
#[derive(Debug, Clone)]
pub struct RunEnd {
    pub status: ExitStatus,
    /// Processes of the tree still alive when we gave up waiting for them.
    pub survivors: bool,
}

impl Run {
    /// The graceful stop: the signal and SIGCONT (a stopped process cannot act on TERM
    /// until continued) to the group and every escaped descendant.
    pub fn stop(&self, sig: Signal) {
        tree::signal_tree(&self.handle, &self.run_id, &self.registry, sig);
        if sig != Signal::SIGKILL {
            tree::signal_tree(&self.handle, &self.run_id, &self.registry, Signal::SIGCONT);
        }
    }

    /// SIGKILL to everything the run spawned.
    pub fn kill(&self) {
        tree::signal_tree(&self.handle, &self.run_id, &self.registry, Signal::SIGKILL);
    }

    /// Send a user's signal to the process group.
    pub fn signal(&self, sig: Signal) -> bool {
        self.handle.signal_group(sig)
    }

    /// Wait for the leader to exit, then make sure nothing of the tree outlives it:
    /// leftovers are killed while the leader is still an unreaped zombie (so its group id
    /// cannot be recycled), then the leader is reaped and adopted orphans collected.
    pub async fn finished(&self) -> RunEnd {
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
        self.kill();
        if let Err(e) = self.handle.reap() {
            tracing::error!(pid = %self.handle.pid(), "reaping the process failed: {e}");
        }
        tree::unregister(&self.registry, self.handle.pid());
        let deadline = Instant::now() + KILL_DEADLINE;
        let mut pause = Duration::from_micros(200);
        loop {
            reap_orphans(&self.registry);
            if !tree::tree_alive(&self.handle, &self.run_id, &self.registry) {
                return RunEnd {
                    status,
                    survivors: false,
                };
            }
            if Instant::now() >= deadline {
                tracing::warn!(
                    pid = %self.handle.pid(),
                    "processes of this run are still alive {}s after SIGKILL",
                    KILL_DEADLINE.as_secs()
                );
                return RunEnd {
                    status,
                    survivors: true,
                };
            }
            tree::signal_tree(&self.handle, &self.run_id, &self.registry, Signal::SIGKILL);
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(50));
        }
    }
}

/// Make warden the reaper of its orphaned descendants (they are re-parented to it
/// instead of to init, so escaped grandchildren stay within reach).
pub fn become_subreaper() -> nix::Result<()> {
    nix::sys::prctl::set_child_subreaper(true)
}
