//! The supervisor: one actor that owns every process's state.
//!
//! - [`core`]: the pure decisions (`handle(input, now) -> effects`), tested without
//!   processes or clocks;
//! - [`state`]: the lifecycle states and their allowed transitions, as data;
//! - [`actor`]: the select loop that feeds the core and performs its effects;
//! - [`event`] and [`status`]: what observers see.

pub mod actor;
pub mod core;
pub mod event;
pub mod health;
mod launch;
pub mod reload;
pub mod state;
pub mod status;
mod watch;

pub use actor::{Actor, Control, Handle, Options};
pub use event::{Event, EventKind, ExitReason};
pub use reload::ReloadPlan;
pub use state::State;

#[cfg(test)]
mod core_tests;
#[cfg(test)]
mod core_tests_running;
