//! Resource figures of process trees: CPU and memory of each run, sampled only while
//! someone needs them, from the run's cgroup when it has one and from its tree of pids
//! (each one's `/proc/PID/stat`) otherwise.
//!
//! This module measures and keeps history; it decides nothing. What a figure means for a
//! run (a `memory` or `cpu` rule) is the core's business, and when to sample is the
//! actor's. It must stay cheap: one sample of a run costs a few small reads, however many
//! processes the run has in cgroup mode.

mod history;
mod procstat;
#[cfg(test)]
mod procstat_tests;
mod sampler;

pub use history::{UsageHistory, UsageSample};
pub use sampler::{Figures, Sampler};

pub use crate::facts::Usage;
