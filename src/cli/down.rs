//! `warden down`: stop every process and the supervisor. Returns once everything has
//! stopped and the supervisor has let go of its socket (so `warden up` may follow at once).

use std::time::Duration;

use super::ClientArgs;
use crate::api::protocol::Request;

/// How long to wait, after the supervisor said it stopped everything, for it to close.
const CLOSE_WAIT: Duration = Duration::from_secs(10);

pub fn run(client: &ClientArgs) -> i32 {
    let mut conn = match client.connect() {
        Ok(c) => c,
        Err(code) => return code,
    };
    // No time limit: stopping may take up to `shutdown_timeout`, then kills.
    let answer = match conn.call(&Request::Down) {
        Ok(Ok(answer)) => answer,
        Ok(Err(reason)) => {
            eprintln!("warden: {reason}");
            return 1;
        }
        Err(e) => return super::fail(e),
    };
    // Everything is stopped; the socket goes away a moment later.
    let _ = conn.wait_closed(CLOSE_WAIT);
    super::out(answer.message.as_deref().unwrap_or("stopped"));
    0
}
