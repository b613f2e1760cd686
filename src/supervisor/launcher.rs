//! Where the actor's runs come from and how their trees are signalled: the seam between
//! the actor and the processes. [`Processes`] is the real one (the spawner threads fork,
//! [`launch::run`] watches the run, a signaller thread stops it); a test gives the actor
//! a fake that records launches and reports exits it controls, so the actor's timing is
//! tested with no process at all.
//!
//! It carries out what it is told; it decides nothing.

use std::sync::Arc;

use nix::sys::signal::Signal;
use tokio::sync::mpsc;

use super::core::InstanceId;
use super::launch::{self, Msg, RunPlan};
use crate::facts::Generation;
use crate::logs::LogSink;
use crate::process::cgroup::Cgroups;
use crate::process::{Run, Spawner};

/// Starts runs and signals them.
pub(super) trait Launcher: Send {
    /// Start the run `plan` describes. Whatever becomes of it comes back on `tx` only,
    /// tagged with its run number: `Msg::RunStarted` (for a real process), then
    /// `Input::Spawned` and at last `Input::Exited`, or `Input::SpawnFailed`.
    fn launch(&mut self, plan: RunPlan, sink: Arc<LogSink>, tx: mpsc::UnboundedSender<Msg>);

    /// The graceful stop (`Some(signal)`, with SIGCONT) or SIGKILL (`None`) to the run
    /// `run_no` of `id`, whose process the actor holds as `run` when it is a real one.
    fn signal(
        &mut self,
        id: InstanceId,
        run_no: Generation,
        run: Option<&Run>,
        signal: Option<Signal>,
    );
}

/// Real processes: forked by the spawner threads, each in a cgroup of its own where
/// warden has them, stopped from the signaller thread.
pub(super) struct Processes {
    spawner: Spawner,
    cgroups: Option<Arc<Cgroups>>,
    signaller: Signaller,
}

impl Processes {
    pub(super) fn new(spawner: Spawner, cgroups: Option<Arc<Cgroups>>) -> Processes {
        Processes {
            spawner,
            cgroups,
            signaller: Signaller::start(),
        }
    }
}

impl Launcher for Processes {
    fn launch(&mut self, plan: RunPlan, sink: Arc<LogSink>, tx: mpsc::UnboundedSender<Msg>) {
        tokio::spawn(launch::run(
            plan,
            self.spawner.clone(),
            self.cgroups.clone(),
            sink,
            tx,
        ));
    }

    fn signal(&mut self, _: InstanceId, _: Generation, run: Option<&Run>, signal: Option<Signal>) {
        // No run: it ended (or never started) before the effect came; nothing to signal.
        if let Some(run) = run {
            // Here, on the actor's thread where the stop was decided, not when the signal
            // thread gets to it: `launch::watch` reads it to order the cgroup's removal.
            run.mark_stopping();
            self.signaller.send(run, signal);
        }
    }
}

/// Sends stop and kill signals to whole trees, in order, on a thread of its own: finding
/// a tree's escaped members reads /proc, and stopping five hundred processes at once
/// must not keep the actor from answering meanwhile.
struct Signaller(Option<std::sync::mpsc::Sender<(Run, Option<Signal>)>>);

impl Signaller {
    fn start() -> Signaller {
        let (tx, rx) = std::sync::mpsc::channel::<(Run, Option<Signal>)>();
        let started = std::thread::Builder::new()
            .name("warden-signal".into())
            .spawn(move || {
                // What queued up meanwhile goes out as one batch: one look at warden's
                // adopted orphans for all of it (stopping 500 runs is one, not 500).
                while let Ok(first) = rx.recv() {
                    let mut batch = vec![first];
                    batch.extend(rx.try_iter());
                    Run::signal_batch(&batch);
                }
            });
        // Without the thread, signals are sent from the actor itself.
        Signaller(started.ok().map(|_| tx))
    }

    /// `signal` (and SIGCONT) to the tree, or SIGKILL with `None`.
    fn send(&self, run: &Run, signal: Option<Signal>) {
        let queued = self
            .0
            .as_ref()
            .is_some_and(|tx| tx.send((run.clone(), signal)).is_ok());
        if !queued {
            match signal {
                Some(signal) => run.stop(signal),
                None => run.kill(),
            }
        }
    }
}
