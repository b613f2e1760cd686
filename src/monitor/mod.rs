//! Resource figures of process trees: CPU and memory of each run, sampled only while
//! someone needs them, from the run's cgroup when it has one and from its tree of pids
//! (through `sysinfo`) otherwise.
//!
//! This module measures and keeps history; it decides nothing. What a figure means for a
//! run (a `memory` or `cpu` rule) is the core's business, and when to sample is the
//! actor's. It must stay cheap: one sample of a run costs a few small reads, however many
//! processes the run has in cgroup mode.

mod history;
mod sampler;

pub use history::{UsageHistory, UsageSample};
pub use sampler::{Figures, Sampler};

use std::time::Duration;

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
}
