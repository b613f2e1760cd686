//! The lifecycle of a process instance, as data: the states of SPEC §3 and which moves
//! between them are allowed. The core asserts every move against this table in debug
//! builds, so an impossible transition is a test failure rather than a silent oddity.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    /// Wants to run, waiting on its dependencies.
    Pending,
    /// Spawned (or being spawned), not yet ready.
    Starting,
    Running,
    /// Stop signal sent, waiting for the whole tree to be gone.
    Stopping,
    /// Stopped by request, or never started.
    Stopped,
    /// Finished and not to be restarted.
    Exited,
    /// Waiting to restart.
    Backoff,
    /// Gave up: `max_restarts` reached, or the command cannot be executed.
    Fatal,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Pending => "pending",
            State::Starting => "starting",
            State::Running => "running",
            State::Stopping => "stopping",
            State::Stopped => "stopped",
            State::Exited => "exited",
            State::Backoff => "backoff",
            State::Fatal => "fatal",
        }
    }

    /// A process exists (or is being spawned) in this state.
    pub fn is_live(self) -> bool {
        matches!(self, State::Starting | State::Running | State::Stopping)
    }

    /// Nothing runs and nothing is scheduled: a place a stop or shutdown can end.
    pub fn is_at_rest(self) -> bool {
        matches!(self, State::Stopped | State::Exited | State::Fatal)
    }
}

impl std::fmt::Display for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Every allowed move. Staying in the same state is not a transition.
const ALLOWED: &[(State, &[State])] = {
    use State::*;
    &[
        (Pending, &[Starting, Stopped, Fatal]),
        (Starting, &[Running, Stopping, Backoff, Exited, Fatal]),
        (Running, &[Stopping, Backoff, Exited, Fatal, Starting]),
        (Stopping, &[Stopped, Backoff, Exited, Fatal, Starting]),
        (Stopped, &[Pending, Starting]),
        (Exited, &[Pending, Starting, Stopped]),
        (Backoff, &[Starting, Stopped, Pending, Fatal]),
        (Fatal, &[Pending, Starting, Stopped]),
    ]
};

pub fn allowed(from: State, to: State) -> bool {
    ALLOWED
        .iter()
        .find(|(f, _)| *f == from)
        .is_some_and(|(_, tos)| tos.contains(&to))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_state_has_a_row() {
        use State::*;
        for s in [
            Pending, Starting, Running, Stopping, Stopped, Exited, Backoff, Fatal,
        ] {
            assert!(ALLOWED.iter().any(|(f, _)| *f == s), "{s} has no row");
        }
    }

    #[test]
    fn a_stop_cannot_skip_stopping() {
        assert!(!allowed(State::Running, State::Stopped));
        assert!(allowed(State::Running, State::Stopping));
        assert!(allowed(State::Stopping, State::Stopped));
    }
}
