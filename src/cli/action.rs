//! `warden start|stop|restart NAME...`: act on processes and return once the action has
//! taken effect (running and ready, or nothing left alive), printing the supervisor's
//! reply; exit 1 with its reasons when any target failed.

use std::time::Duration;

use super::ClientArgs;
use crate::api::protocol::Request;

pub fn start(client: &ClientArgs, names: Vec<String>, timeout: Option<Duration>) -> i32 {
    run(client, Request::Start { names }, timeout)
}

pub fn stop(client: &ClientArgs, names: Vec<String>, timeout: Option<Duration>) -> i32 {
    run(client, Request::Stop { names }, timeout)
}

pub fn restart(client: &ClientArgs, names: Vec<String>, timeout: Option<Duration>) -> i32 {
    run(client, Request::Restart { names }, timeout)
}

/// By default no time limit: a start waits for readiness (which may never come for a
/// `notify` process that never sends READY=1), a stop for `stop_timeout`.
fn run(client: &ClientArgs, request: Request, timeout: Option<Duration>) -> i32 {
    match client.call(&request, timeout) {
        Ok(answer) => {
            if let Some(message) = answer.message.filter(|m| !m.is_empty()) {
                super::out(&message);
            }
            0
        }
        Err(code) => code,
    }
}
