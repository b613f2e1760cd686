//! `warden scale NAME N`: run N replicas of a declared process from now on. Returns once
//! the added replicas are running and ready and the removed ones (highest indices first)
//! have stopped; exit 1 with the reasons when some did not come up.

use std::time::Duration;

use super::ClientArgs;
use crate::api::protocol::Request;

pub fn run(client: &ClientArgs, name: String, replicas: u32, timeout: Option<Duration>) -> i32 {
    match client.call(&Request::Scale { name, replicas }, timeout) {
        Ok(answer) => {
            if let Some(message) = answer.message.filter(|m| !m.is_empty()) {
                super::out(&message);
            }
            0
        }
        Err(code) => code,
    }
}
