//! The control FIFO (`[supervisor] control_fifo = true`): a named pipe beside the socket
//! (`<hash>.control`), mode 0600, where each line is a command as the CLI takes it
//! (`restart web`, `signal web HUP`, `stop all`, `reload`, `down`), so that a shell script
//! or a child process can steer warden with `echo`.
//!
//! Nobody reads a reply from a FIFO, so verbs that only answer (`status`, `logs`,
//! `events`) are refused. A line that cannot be used is ignored and reported as a
//! `Message` event (`control fifo: ignored `LINE`: reason`) and a warning; an action the
//! supervisor refuses (an unknown name) is reported the same way. Lines longer than
//! [`MAX_LINE`] are skipped without being buffered.
//!
//! The FIFO is opened read-write, so it never reads end-of-file when a writer closes: one
//! open lasts for the supervisor's life.

use std::path::PathBuf;

use tokio::io::BufReader;
use tokio::net::unix::pipe;
use tokio::sync::watch;

use super::conn::stopped;
use super::dispatch::act;
use super::lines::{ReadLine, read_line, skip_line};
use super::protocol::Request;
use crate::supervisor::{Control, Handle};

/// The longest command line taken from the FIFO.
pub const MAX_LINE: usize = 4096;

pub(super) async fn run(
    path: PathBuf,
    handle: Handle,
    config: String,
    mut stop: watch::Receiver<bool>,
) {
    let receiver = match pipe::OpenOptions::new()
        .read_write(true)
        .open_receiver(&path)
    {
        Ok(r) => r,
        Err(e) => {
            report(
                &handle,
                format!("control fifo: cannot open `{}`: {e}", path.display()),
            );
            return;
        }
    };
    let mut rd = BufReader::new(receiver);
    loop {
        let read = tokio::select! {
            biased;
            () = stopped(&mut stop) => return,
            r = read_line(&mut rd, MAX_LINE) => r,
        };
        match read {
            Ok(ReadLine::Line(line)) => on_line(&line, &handle, &config),
            Ok(ReadLine::TooLong) => {
                report(
                    &handle,
                    format!("control fifo: ignored a line longer than {MAX_LINE} bytes"),
                );
                let skipped = tokio::select! {
                    biased;
                    () = stopped(&mut stop) => return,
                    r = skip_line(&mut rd) => r,
                };
                if !matches!(skipped, Ok(true)) {
                    return;
                }
            }
            // Cannot happen while we hold a write end ourselves; do not spin if it does.
            Ok(ReadLine::Eof) => return,
            Err(e) => {
                report(
                    &handle,
                    format!("control fifo: read failed, no longer reading it: {e}"),
                );
                return;
            }
        }
    }
}

fn on_line(raw: &[u8], handle: &Handle, config: &str) {
    let Ok(text) = std::str::from_utf8(raw) else {
        return report(
            handle,
            format!(
                "control fifo: ignored `{}`: not UTF-8",
                shown(&String::from_utf8_lossy(raw))
            ),
        );
    };
    let text = text.trim();
    if text.is_empty() || text.starts_with('#') {
        return;
    }
    let request = match parse_line(text) {
        Ok(r) => r,
        Err(why) => {
            return report(
                handle,
                format!("control fifo: ignored `{}`: {why}", shown(text)),
            );
        }
    };
    tracing::info!("control fifo: {text}");
    let (handle, config, line) = (handle.clone(), config.to_string(), shown(text));
    // Actions answer once they took effect (a restart waits for readiness): do not hold
    // up the lines after this one.
    tokio::spawn(async move {
        let answer = act(&handle, &config, request).await;
        if let (Some(false), Some(error)) = (answer.ok, answer.error) {
            report(&handle, format!("control fifo: `{line}` failed: {error}"));
        }
    });
}

/// A FIFO line, split like a shell would, as a request.
pub fn parse_line(line: &str) -> Result<Request, String> {
    let words = shlex::split(line).ok_or("unbalanced quotes")?;
    let Some((verb, args)) = words.split_first() else {
        return Err("empty command".into());
    };
    let names = || {
        if args.is_empty() {
            Err(format!(
                "`{verb}` needs at least one process name (or `all`)"
            ))
        } else {
            Ok(args.to_vec())
        }
    };
    match verb.as_str() {
        "start" => Ok(Request::Start { names: names()? }),
        "stop" => Ok(Request::Stop { names: names()? }),
        "restart" => Ok(Request::Restart { names: names()? }),
        "signal" => match args {
            [name, signal] => {
                crate::config::units::parse_signal(signal)?;
                Ok(Request::Signal {
                    names: vec![name.clone()],
                    signal: signal.clone(),
                })
            }
            _ => Err("usage: `signal NAME SIGNAL`".into()),
        },
        "scale" => match args {
            [name, n] => Ok(Request::Scale {
                name: name.clone(),
                replicas: n
                    .parse()
                    .map_err(|_| format!("`{n}` is not a replica count"))?,
            }),
            _ => Err("usage: `scale NAME N`".into()),
        },
        "reload" | "down" if !args.is_empty() => Err(format!("`{verb}` takes no arguments here")),
        "reload" => Ok(Request::Reload { dry_run: false }),
        "down" => Ok(Request::Down),
        "status" | "logs" | "events" | "hello" | "history" => Err(format!(
            "`{verb}` only answers, and nobody reads answers from the fifo: use the socket (`warden {verb}`)"
        )),
        other => Err(format!(
            "unknown command `{other}`; the fifo takes start, stop, restart, signal, scale, reload and down"
        )),
    }
}

/// A line as quoted in a message: control characters replaced, at most 200 characters.
fn shown(line: &str) -> String {
    let mut out: String = line
        .chars()
        .take(200)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    if line.chars().count() > 200 {
        out.push('…');
    }
    out
}

fn report(handle: &Handle, text: String) {
    tracing::warn!("{text}");
    // Through the actor, so that `up` shows it as well as `events`.
    let _ = handle.control.send(Control::Notice { text });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_become_requests_like_the_cli_verbs() {
        let ok = |l: &str| parse_line(l).unwrap();
        assert_eq!(
            ok("restart web"),
            Request::Restart {
                names: vec!["web".into()]
            }
        );
        assert_eq!(
            ok("stop 'web' db"),
            Request::Stop {
                names: vec!["web".into(), "db".into()]
            }
        );
        assert_eq!(
            ok("start all"),
            Request::Start {
                names: vec!["all".into()]
            }
        );
        assert_eq!(
            ok("signal web HUP"),
            Request::Signal {
                names: vec!["web".into()],
                signal: "HUP".into()
            }
        );
        assert_eq!(ok("reload"), Request::Reload { dry_run: false });
        assert_eq!(ok("down"), Request::Down);
    }

    #[test]
    fn bad_lines_say_why() {
        for (line, why) in [
            ("bogus", "unknown command `bogus`"),
            ("restart", "needs at least one process name"),
            ("signal web", "usage"),
            ("signal web NOPE", "not a signal"),
            ("reload now", "takes no arguments"),
            ("status", "nobody reads answers"),
            ("stop 'web", "unbalanced quotes"),
        ] {
            let err = parse_line(line).unwrap_err();
            assert!(err.contains(why), "{line}: {err}");
        }
    }

    #[test]
    fn shown_lines_are_safe_and_short() {
        assert_eq!(shown("a\x1b[31mb"), "a?[31mb");
        assert_eq!(shown(&"x".repeat(300)).chars().count(), 201);
    }
}
