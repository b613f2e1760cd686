//! `warden logs [NAME...] [-n N] [-f]`: the last N lines of each instance's output (every
//! instance when no name is given) from the supervisor's memory, merged by time with
//! `name │ ` in front when there are several instances, then with `-f` every new line
//! until the supervisor stops. A reader that fell behind is told how many lines it missed.

use super::{ANSWER_TIMEOUT, ClientArgs, Paint};
use crate::api::client::ClientError;
use crate::api::protocol::{LogRecord, Request};

pub fn run(client: &ClientArgs, names: Vec<String>, lines: usize, follow: bool) -> i32 {
    let names = if names.is_empty() {
        vec!["all".to_owned()]
    } else {
        names
    };
    let mut conn = match client.connect() {
        Ok(c) => c,
        Err(code) => return code,
    };
    if let Err(e) = conn.set_timeout(Some(ANSWER_TIMEOUT)).and_then(|()| {
        conn.send(&Request::Logs {
            names,
            lines,
            follow,
            colors: false,
        })
    }) {
        return super::fail(e);
    }
    let paint = Paint::stdout();
    let mut width: Option<usize> = None;
    loop {
        let answer = match conn.read_answer() {
            Ok(a) => a,
            Err(ClientError::Closed) if follow && width.is_some() => {
                eprintln!("warden: the supervisor went away");
                return 0;
            }
            Err(e) => return super::fail(e),
        };
        match answer.ok {
            Some(true) => {
                if let Some(m) = answer.message.filter(|_| follow) {
                    eprintln!("warden: {m}");
                }
                return 0;
            }
            Some(false) => {
                eprintln!("warden: {}", answer.error.unwrap_or_default());
                return 1;
            }
            None => {}
        }
        if let Some(instances) = answer.instances {
            width = Some(if instances.len() > 1 {
                instances
                    .iter()
                    .map(|n| n.chars().count())
                    .max()
                    .unwrap_or(0)
            } else {
                0
            });
            if follow {
                // The tail is sent at once; after it, new lines come when they come.
                if let Err(e) = conn.set_timeout(None) {
                    return super::fail(e);
                }
            }
        }
        let w = width.unwrap_or(0);
        let printed = if let Some(line) = &answer.line {
            super::out(&format_line(line, w, paint))
        } else if let Some(skipped) = &answer.skipped {
            let text = format!("[… {} lines skipped …]", skipped.count);
            super::out(&prefixed(
                skipped.name.as_deref().unwrap_or(""),
                w,
                &paint.paint(&text, Some(Paint::DIM)),
            ))
        } else {
            true
        };
        if !printed {
            return 0;
        }
    }
}

/// `text`, `name │ text` when `width` > 0, and warden's own markers as `--- text`.
pub fn format_line(line: &LogRecord, width: usize, paint: Paint) -> String {
    let text = match line.stream.as_str() {
        "warden" => paint.paint(&format!("--- {}", line.text), Some(Paint::DIM)),
        _ => line.text.clone(),
    };
    prefixed(&line.name, width, &text)
}

fn prefixed(name: &str, width: usize, text: &str) -> String {
    if width == 0 {
        text.to_string()
    } else {
        format!("{name:<width$} │ {text}")
    }
}
