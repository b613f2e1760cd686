//! Resource figures of process trees: CPU and memory of each run, sampled only while
//! someone needs them, from the run's cgroup when it has one and from its tree of pids
//! (each one's `/proc/PID/stat`) otherwise.
//!
//! This module measures; it decides nothing and keeps nothing. What a figure means for a
//! run (a `memory` or `cpu` rule) is the core's business, and so is the history of its
//! figures (`facts::UsageHistory`); when to sample is the actor's. It must stay cheap: one
//! sample of a run costs a few small reads, however many processes the run has in cgroup
//! mode.

mod procstat;
#[cfg(test)]
mod procstat_tests;
mod sampler;

pub use sampler::{Figures, Sampler};

pub use crate::facts::Usage;
