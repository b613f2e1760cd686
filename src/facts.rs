//! Facts about a run, as the decisions see them: which run it is ([`Generation`]), how it
//! ended ([`ExitStatus`]), what it said over sd_notify ([`NotifyMessage`]), what it
//! used ([`Usage`]) and lately ([`UsageHistory`]).
//!
//! Neutral ground between the mechanisms that observe these facts (`process` reaps,
//! `probe::notify` parses datagrams, `monitor` samples) and the supervisor core that
//! decides on them: both import from here, so the core imports no mechanism's type and
//! no mechanism imports the core. Plain data; nothing here touches a process or a socket.

use std::collections::VecDeque;
use std::time::{Duration, SystemTime};

/// A run's number within its instance (1 for the first run, 0 = never spawned). Every
/// message about a child carries the one it belongs to, so a late report from an earlier
/// run is told apart from the current one. Also the instance's schedule and file-change
/// generations, which drop a timer set before a later stop or change. Serialised as the
/// bare number.
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(transparent)]
pub struct Generation(pub u64);

impl Generation {
    /// The one after this.
    pub fn next(self) -> Generation {
        Generation(self.0 + 1)
    }
}

impl std::fmt::Display for Generation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct ExitStatus {
    pub code: Option<i32>,
    pub signal: Option<i32>,
}

impl ExitStatus {
    pub fn describe(&self) -> String {
        crate::human::exit_status(self.code, self.signal)
    }
}

/// One `KEY=VALUE` line of a notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotifyMessage {
    /// `READY=1`
    Ready,
    /// `STOPPING=1`
    Stopping,
    /// `RELOADING=1`
    Reloading,
    /// `WATCHDOG=1`: the keep-alive ping.
    Watchdog,
    /// `WATCHDOG=trigger`: the process asks to be treated as hung.
    WatchdogTrigger,
    /// `STATUS=…`: free text for the dashboard.
    Status(String),
    /// `MAINPID=…`
    MainPid(i32),
    /// `ERRNO=…`
    Errno(i32),
    /// Any other well-formed line, verbatim (`EXTEND_TIMEOUT_USEC=…`, `FDSTORE=1`, …).
    Other(String),
}

/// One sample of a run's whole tree.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Usage {
    /// Memory (bytes): the cgroup's charge (page cache included, as systemd shows it), or
    /// the resident memory summed over the tree's processes.
    pub rss: u64,
    /// Resident memory where it differs from `rss` and was read: in cgroup mode, when the
    /// charge is over the run's `memory` rule (the rule is about resident memory).
    pub resident: Option<u64>,
    /// Percent of one core over `window`.
    pub cpu_percent: f64,
    /// The run's peak memory, where its cgroup keeps one.
    pub peak: Option<u64>,
    /// What the CPU figure covers: the time since the previous sample of the run (or since
    /// it started, for its first sample).
    pub window: Duration,
    /// One of the samples taken every `sample_interval`, rather than on demand for a
    /// request: only these become points of the history, so that its points are evenly
    /// spaced and a burst of `status` requests neither fills nor enlarges it.
    pub periodic: bool,
}

/// Samples kept per instance: a minute at the default `sample_interval`.
const HISTORY_KEEP: usize = 60;

/// One point of a sparkline.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct UsageSample {
    pub time: SystemTime,
    pub cpu_percent: f64,
    pub rss_bytes: u64,
}

/// The last periodic samples of an instance, oldest first, for the dashboard's sparklines
/// and `status --json`: a bounded ring the core keeps and observers read.
#[derive(Debug, Clone, Default)]
pub struct UsageHistory(VecDeque<UsageSample>);

impl UsageHistory {
    pub fn push(&mut self, time: SystemTime, cpu_percent: f64, rss_bytes: u64) {
        if self.0.len() == HISTORY_KEEP {
            self.0.pop_front();
        }
        self.0.push_back(UsageSample {
            time,
            cpu_percent: (cpu_percent * 10.0).round() / 10.0,
            rss_bytes,
        });
    }

    pub fn samples(&self) -> impl Iterator<Item = &UsageSample> {
        self.0.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_history_keeps_the_last_samples_in_order() {
        let mut h = UsageHistory::default();
        for i in 0..(HISTORY_KEEP as u64 + 5) {
            h.push(SystemTime::UNIX_EPOCH, i as f64, i);
        }
        let kept: Vec<u64> = h.samples().map(|s| s.rss_bytes).collect();
        assert_eq!(kept.len(), HISTORY_KEEP);
        assert_eq!(kept[0], 5);
        assert_eq!(*kept.last().unwrap(), HISTORY_KEEP as u64 + 4);
    }
}
