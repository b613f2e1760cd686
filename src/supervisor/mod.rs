//! The supervisor: one actor that owns every process's state.
//!
//! - [`core`]: the pure decisions (`handle(input, now) -> effects`), tested without
//!   processes or clocks;
//! - [`state`]: the lifecycle states and their allowed transitions, as data;
//! - [`actor`]: the select loop that feeds the core and performs its effects;
//! - [`event`] and [`status`]: what observers see, typed, the same types on both sides
//!   of the socket; [`observe`]: how they follow it (a numbered event stream bounded in
//!   bytes, snapshot-then-events subscriptions); [`describe`]: one instance's command
//!   and environment, on demand.

pub mod actor;
pub mod core;
pub mod describe;
mod drift;
pub mod event;
mod files;
pub mod health;
mod launch;
mod launcher;
pub mod observe;
pub mod reload;
mod sampling;
pub mod state;
pub mod status;
mod watch;

pub use actor::{Actor, Control, Handle, Options, ShutdownReport, Sig, Sources};
pub use describe::Description;
pub use event::{Event, EventKind, ExitReason};
pub use launch::{hard_limits, unenforced_limits};
pub use observe::{EventCursor, EventLog, Subscription, Update};
pub use reload::ReloadPlan;
pub use state::State;
pub use status::Snapshot;

#[cfg(test)]
mod actor_tests;
#[cfg(test)]
mod core_tests;
#[cfg(test)]
mod core_tests_alarms;
#[cfg(test)]
mod core_tests_rules;
#[cfg(test)]
mod core_tests_running;
