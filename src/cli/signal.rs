//! `warden signal NAME SIGNAL`: send a signal to the process group of each running
//! instance of NAME. The signal is checked here, so a bad one is a usage error (exit 2).

use nix::sys::signal::Signal;

use super::{ANSWER_TIMEOUT, ClientArgs};
use crate::api::protocol::Request;

pub fn run(client: &ClientArgs, name: String, signal: Signal) -> i32 {
    let request = Request::Signal {
        names: vec![name],
        signal: signal.as_str().to_string(),
    };
    match client.call(&request, Some(ANSWER_TIMEOUT)) {
        Ok(answer) => {
            if let Some(message) = answer.message {
                super::out(&message);
            }
            0
        }
        Err(code) => code,
    }
}
