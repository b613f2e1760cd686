//! The dashboard: a live terminal view of processes, probes, logs and events, and the
//! actions a person takes on them.
//!
//! - [`app`]: the state and its pure `update` (keys, snapshots, events in; commands
//!   out), tested with synthetic keys;
//! - [`view`]: drawing the state, tested against `TestBackend` snapshots;
//! - [`keys`]: the one key table behind the handler, the help overlay and the key bar;
//! - [`layout`]: where everything goes, shared by drawing and mouse hit-testing;
//! - `backend`: the supervisor in this process or behind a socket, one interface;
//! - `runner` and `terminal`: the loop, and taking and giving back the terminal.
//!
//! The dashboard is an observer like any client: it reads snapshots and events (SPEC §6)
//! and acts only with the CLI's requests. It must never block the supervisor: it runs on
//! a thread of its own, takes bounded amounts from each source and skips (saying so)
//! when it cannot keep up.

pub mod app;
mod backend;
mod embed;
pub mod keys;
pub mod layout;
pub mod logbuf;
mod runner;
mod terminal;
#[cfg(test)]
mod test_support;
pub mod theme;
pub mod view;

pub use backend::Source;
pub use embed::{Embedded, StderrToFile};
pub use runner::{Exit, run};

/// Whether the dashboard can run here: stdout (which it draws on) and stdin (which it
/// reads keys from) are both terminals.
pub fn usable() -> bool {
    use std::io::IsTerminal;
    std::io::stdout().is_terminal() && std::io::stdin().is_terminal()
}
