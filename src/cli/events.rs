//! `warden events [--json] [--since SEQ]`: every event as it happens, as
//! `HH:MM:SS.mmm name: text` (local time) or, with `--json`, one JSON object per event
//! (with its `seq`), until the supervisor stops; with `--since`, the events after SEQ
//! that the supervisor still keeps come first. Once subscribed it says so on stderr, so a script knows nothing is
//! missed from then on; events a slow reader missed are reported as skipped.

use std::time::{SystemTime, UNIX_EPOCH};

use super::{ANSWER_TIMEOUT, ClientArgs, Paint};
use crate::api::client::ClientError;
use crate::api::protocol::Request;
use crate::supervisor::Event;

pub fn run(client: &ClientArgs, json: bool, since: Option<u64>) -> i32 {
    let mut conn = match client.connect() {
        Ok(c) => c,
        Err(code) => return code,
    };
    if let Err(e) = conn
        .set_timeout(Some(ANSWER_TIMEOUT))
        .and_then(|()| conn.send(&Request::Events { since }))
    {
        return super::fail(e);
    }
    let paint = Paint::stdout();
    let mut subscribed = false;
    loop {
        let answer = match conn.read_answer() {
            Ok(a) => a,
            Err(ClientError::Closed) if subscribed => {
                eprintln!("warden: the supervisor went away");
                return 0;
            }
            Err(e) => return super::fail(e),
        };
        match answer.ok {
            Some(true) => {
                eprintln!(
                    "warden: {}",
                    answer.message.as_deref().unwrap_or("end of events")
                );
                return 0;
            }
            Some(false) => {
                eprintln!("warden: {}", answer.error.unwrap_or_default());
                return 1;
            }
            None => {}
        }
        if answer.stream.is_some() && !subscribed {
            subscribed = true;
            if let Err(e) = conn.set_timeout(None) {
                return super::fail(e);
            }
            eprintln!("warden: following events (Ctrl-C to stop)");
        }
        let printed = match (&answer.event, &answer.skipped) {
            (Some(event), _) if json => super::out(event.get()),
            (Some(event), _) => super::out(&human(
                event.get(),
                answer.text.as_deref().unwrap_or(""),
                paint,
            )),
            (None, Some(skipped)) => {
                let text = format!("[… {} events skipped …]", skipped.count);
                if json {
                    eprintln!("warden: {text}");
                    true
                } else {
                    super::out(&paint.paint(&text, Some(Paint::DIM)))
                }
            }
            _ => true,
        };
        if !printed {
            return 0;
        }
    }
}

/// `14:03:07.120 web: running → stopping`; supervisor-wide events are `warden: ...`.
/// The supervisor's `text` is used as is (it may know kinds of events this build does
/// not).
fn human(event_json: &str, text: &str, paint: Paint) -> String {
    let event: Option<Event> = serde_json::from_str(event_json).ok();
    let time = event
        .as_ref()
        .map(|e| clock(e.time))
        .unwrap_or_else(|| "--:--:--.---".into());
    let name = match event.as_ref().map(|e| e.name.as_str()) {
        None | Some("") => "warden",
        Some(name) => name,
    };
    format!(
        "{} {}: {text}",
        paint.paint(&time, Some(Paint::DIM)),
        paint.paint(name, Some(Paint::BOLD))
    )
}

/// `HH:MM:SS.mmm` in local time (UTC if the local time cannot be had).
pub fn clock(t: SystemTime) -> String {
    let since = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs() as libc::time_t;
    // SAFETY: `tm` is plain data (a null `tm_zone` is valid); localtime_r writes only
    // into it and keeps no pointer to it.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    let local = unsafe { !libc::localtime_r(&secs, &mut tm).is_null() };
    let (h, m, s) = if local {
        (tm.tm_hour as u64, tm.tm_min as u64, tm.tm_sec as u64)
    } else {
        let day = since.as_secs() % 86_400;
        (day / 3600, day % 3600 / 60, day % 60)
    };
    format!("{h:02}:{m:02}:{s:02}.{:03}", since.subsec_millis())
}
