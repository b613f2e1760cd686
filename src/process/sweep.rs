//! Sweeps: one pass over warden's children that reaps the adopted orphans that exited and
//! lists, by run, those still alive. Every run without a cgroup that ends needs them,
//! taken after its leader exited (to kill its escaped descendants, then to tell when none
//! is left); a run whose cgroup is empty needs none. When five hundred runs end together,
//! one sweep serves all of those that asked before it started.
//!
//! A shared sweep is exactly as fresh as one of the caller's own: it is handed only to
//! callers that asked before it began. This file must not hand out an older one, which
//! could miss a process orphaned since, and must not hold its lock while sweeping.
//!
//! Only the sharing is here, generic over what a sweep finds: the sweep itself (reap,
//! then index by run) is `tree.rs`'s, so that the [`super::registry::Registry`] can hold
//! its sweeps without this file importing it.

use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

/// Sweeps shared by the runs of one registry (see the module's docs); `T` is what one
/// finds.
#[derive(Debug, Default)]
pub struct Sweeps<T> {
    state: Mutex<State<T>>,
    done: Notify,
}

#[derive(Debug, Default)]
struct State<T> {
    /// Sweeps begun so far (the number of the latest).
    started: u64,
    /// The number of the latest finished sweep, and its result.
    finished: u64,
    last: Arc<T>,
    running: bool,
}

impl<T: Default> Sweeps<T> {
    /// The result of a sweep (`sweep`, run here or by another caller) begun after this
    /// call: someone else's, when one starts while we wait.
    pub async fn fresh(&self, sweep: impl FnOnce() -> T) -> Arc<T> {
        self.numbered(sweep).await.1
    }

    /// [`Sweeps::fresh`], with the sweep's number.
    async fn numbered(&self, sweep: impl FnOnce() -> T) -> (u64, Arc<T>) {
        let mut sweep = Some(sweep);
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
                // `mine` is `Some` once: this branch returns.
                let found = Arc::new(sweep.take().map(|f| f()).unwrap_or_default());
                let mut s = self.lock();
                s.last = found.clone();
                s.finished = number;
                drop(s);
                drop(running);
                return (number, found);
            }
            notified.await;
        }
    }

    /// How many sweeps have begun.
    #[cfg(test)]
    pub fn started(&self) -> u64 {
        self.lock().started
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State<T>> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Ends a sweep, also if it panicked: the next caller then starts one.
struct Running<'a, T: Default>(&'a Sweeps<T>);

impl<T: Default> Drop for Running<'_, T> {
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
        let sweeps = Arc::new(Sweeps::<u64>::default());
        let mut tasks = Vec::new();
        for _ in 0..200 {
            let sweeps = sweeps.clone();
            tasks.push(tokio::spawn(async move {
                let asked = sweeps.lock().started;
                // What a sweep finds here: the number it was given when it began.
                let (number, found) = sweeps.numbered(|| sweeps.lock().started).await;
                assert_eq!(*found, number, "a caller got another sweep's result");
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
        let sweeps = sweeps.lock().started;
        assert!(
            (1..=200).contains(&sweeps),
            "{sweeps} sweeps for 200 callers"
        );
    }
}
