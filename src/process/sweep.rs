//! Sweeps: one pass over warden's children that reaps the adopted orphans that exited and
//! lists, by run, those still alive. Every run that ends needs one taken after its leader
//! exited (to kill its escaped descendants, then to tell when none is left); when five
//! hundred runs end together, one sweep serves all of those that asked before it started.
//!
//! A shared sweep is exactly as fresh as one of the caller's own: it is handed only to
//! callers that asked before it began. This file must not hand out an older one, which
//! could miss a process orphaned since, and must not hold its lock while sweeping.

use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

use super::spawn::Registry;
use super::tree::{Adopted, reap};

/// Sweep now: reap exited adopted orphans, index the live ones by run.
pub fn sweep(registry: &Registry) -> Adopted {
    Adopted::of(reap(registry).1)
}

/// Sweeps shared by the runs of one registry (see the module's docs).
#[derive(Debug, Default)]
pub struct Sweeps {
    state: Mutex<State>,
    done: Notify,
}

#[derive(Debug, Default)]
struct State {
    /// Sweeps begun so far (the number of the latest).
    started: u64,
    /// The number of the latest finished sweep, and its result.
    finished: u64,
    last: Arc<Adopted>,
    running: bool,
}

impl Sweeps {
    /// A sweep begun after this call: someone else's, when one starts while we wait.
    pub async fn fresh(&self, registry: &Registry) -> Arc<Adopted> {
        self.numbered(registry).await.1
    }

    /// [`Sweeps::fresh`], with the sweep's number.
    async fn numbered(&self, registry: &Registry) -> (u64, Arc<Adopted>) {
        // The sweep running now, if any, began before we asked: wait for the next one.
        let need = self.lock().started + 1;
        loop {
            let notified = self.done.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let mine = {
                let mut s = self.lock();
                if s.finished >= need {
                    return (s.finished, s.last.clone());
                }
                if s.running {
                    None
                } else {
                    s.running = true;
                    s.started += 1;
                    Some(s.started)
                }
            };
            if let Some(number) = mine {
                let running = Running(self);
                let adopted = Arc::new(sweep(registry));
                let mut s = self.lock();
                s.last = adopted.clone();
                s.finished = number;
                drop(s);
                drop(running);
                return (number, adopted);
            }
            notified.await;
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Ends a sweep, also if it panicked: the next caller then starts one.
struct Running<'a>(&'a Sweeps);

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.0.lock().running = false;
        self.0.done.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn callers_that_ask_together_share_sweeps_and_none_gets_an_older_one() {
        let registry = Arc::new(Registry::default());
        let mut tasks = Vec::new();
        for _ in 0..200 {
            let registry = registry.clone();
            tasks.push(tokio::spawn(async move {
                let asked = registry.sweeps.lock().started;
                let (number, _) = registry.sweeps.numbered(&registry).await;
                // The sweep handed out began after this caller asked.
                assert!(
                    number > asked,
                    "sweep {number} handed to a caller that asked after sweep {asked} began"
                );
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        let sweeps = registry.sweeps.lock().started;
        assert!(
            (1..=200).contains(&sweeps),
            "{sweeps} sweeps for 200 callers"
        );
    }
}
