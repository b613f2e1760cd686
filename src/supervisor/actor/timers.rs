//! The actor's time: its clock (tokio's, so a test may pause it), the timers the core
//! asked for and which of them is due, how late warden was when one came due, and when
//! the next status snapshot is owed. Nothing here decides what a timer means: that is
//! the core's, once the due timer comes back to it as an input.

use super::*;

/// The actor's clock: tokio's, which a test may pause (`start_paused`); otherwise the
/// same as `std::time::Instant::now()`.
pub(super) fn clock() -> Instant {
    tokio::time::Instant::now().into_std()
}

/// The moment an input is handled, on the actor's clock.
pub(super) fn now() -> Now {
    Now {
        mono: clock(),
        wall: SystemTime::now(),
    }
}

pub(super) async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d.into()).await,
        None => std::future::pending().await,
    }
}

impl Actor {
    /// Whether a timer due at `due` fired so late that warden must have been stalled; says
    /// so (once per stall: the timers a stall delayed all come due within moments).
    pub(super) fn stalled(&mut self, due: Instant, now: Instant) -> bool {
        let late = now.saturating_duration_since(due);
        if late < LATE {
            return false;
        }
        if self
            .stall_noticed
            .is_none_or(|t| now.duration_since(t) > Duration::from_secs(1))
        {
            self.stall_noticed = Some(now);
            self.notice(&format!(
                "warden was stalled for {:.1}s (a timer came due that late: stopped, starved of CPU, or a suspended machine); health verdicts wait until what arrived meanwhile is read",
                late.as_secs_f64()
            ));
        }
        true
    }

    pub(super) fn pop_due(&mut self) -> Option<Input> {
        let now = clock();
        if self.snapshot_due().is_some_and(|d| d <= now) {
            self.publish_snapshot(now);
        }
        if let Some(alarm) = self
            .alarms
            .iter()
            .find(|(_, at)| **at <= now)
            .map(|(a, _)| *a)
        {
            self.alarms.remove(&alarm);
            return Some(Input::Alarm(alarm));
        }
        let (&key, _) = self.timers.first_key_value().filter(|(k, _)| k.0 <= now)?;
        let (id, run_no, timer) = self.timers.remove(&key)?;
        match timer {
            Timer::Silence => {
                let sink = self.sinks.get(&id).cloned();
                // Pending first: output read after this shows in `last_output_at`.
                let pending = sink.as_ref().is_some_and(|s| s.output_pending());
                let last_output = sink.and_then(|s| s.last_output_at());
                let stalled = self.stalled(key.0, now);
                let unread = pending || stalled;
                Some(Input::Silence {
                    id,
                    run_no,
                    last_output,
                    unread,
                })
            }
            Timer::Watchdog => {
                let pending = self
                    .notify_sockets
                    .get(&id)
                    .is_some_and(|(n, socket)| *n == run_no && socket.has_pending());
                let stalled = self.stalled(key.0, now);
                let unread = pending || stalled;
                Some(Input::Watchdog { id, run_no, unread })
            }
            _ => Some(Input::Timer { id, run_no, timer }),
        }
    }

    /// Whether an observer follows the events (warden's own followers do not count).
    pub(super) fn watched(&self) -> bool {
        self.events.followers() > self.opts.quiet_followers
    }

    /// When a fresh snapshot is due for the subscribers that want them, if one is.
    pub(super) fn snapshot_due(&mut self) -> Option<Instant> {
        if self.snapshots.receiver_count() == 0 {
            self.snapshot_stale = false;
            return None;
        }
        if !self.snapshot_stale {
            // Anything published since the last one makes it stale; so does any input,
            // but those always publish or come with a change the loop marks below.
            self.snapshot_stale = self.snapshots.borrow().seq != self.events.last_seq();
        }
        self.snapshot_stale
            .then_some(self.snapshot_built + snapshot_every(self.core.instances().count()))
    }

    pub(super) fn publish_snapshot(&mut self, now: Instant) {
        let snapshot = Arc::new(self.snapshot(now));
        self.snapshots.send_replace(snapshot);
        self.snapshot_built = now;
        self.snapshot_stale = false;
    }
}
