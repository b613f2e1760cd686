//! `warden start|stop|restart NAME...`: act on processes and return once the action has
//! taken effect (running and ready, or nothing left alive), printing the supervisor's
//! reply; exit 1 with its reasons when any target failed.

use super::ClientArgs;
use crate::api::protocol::Request;

pub fn start(client: &ClientArgs, names: Vec<String>) -> i32 {
    run(client, Request::Start { names })
}

pub fn stop(client: &ClientArgs, names: Vec<String>) -> i32 {
    run(client, Request::Stop { names })
}

pub fn restart(client: &ClientArgs, names: Vec<String>) -> i32 {
    run(client, Request::Restart { names })
}

fn run(client: &ClientArgs, request: Request) -> i32 {
    // No time limit: a start waits for readiness, a stop for `stop_timeout`.
    match client.call(&request, None) {
        Ok(answer) => {
            if let Some(message) = answer.message.filter(|m| !m.is_empty()) {
                super::out(&message);
            }
            0
        }
        Err(code) => code,
    }
}
