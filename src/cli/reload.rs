//! `warden reload [--dry-run]`: have the supervisor re-read its config and apply the
//! difference (or only print it). An invalid config changes nothing: its errors are
//! printed as `FILE:LINE:COL: message`, and the exit code is 1.

use super::{ANSWER_TIMEOUT, ClientArgs};
use crate::api::protocol::Request;

pub fn run(client: &ClientArgs, dry_run: bool) -> i32 {
    let mut conn = match client.connect() {
        Ok(c) => c,
        Err(code) => return code,
    };
    let answer = conn
        .set_timeout(Some(ANSWER_TIMEOUT))
        .and_then(|()| conn.call(&Request::Reload { dry_run }));
    match answer {
        Ok(Ok(answer)) => {
            super::out(answer.message.as_deref().unwrap_or(""));
            if dry_run {
                super::out("(dry run: nothing was changed)");
            }
            0
        }
        Ok(Err(errors)) => {
            eprintln!("{errors}");
            eprintln!("warden: the new config is invalid; the running config is kept");
            1
        }
        Err(e) => super::fail(e),
    }
}
