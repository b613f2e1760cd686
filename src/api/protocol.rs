//! The control protocol, version 1: JSON lines over a Unix stream socket.
//!
//! A client writes one request per line, a JSON object with the protocol version `v` and
//! a verb `cmd`:
//!
//! ```text
//! {"v":1,"cmd":"status"}
//! {"v":1,"cmd":"restart","names":["web"]}
//! {"v":1,"cmd":"signal","names":["web"],"signal":"HUP"}
//! {"v":1,"cmd":"logs","names":["web"],"lines":100,"follow":true}
//! {"v":1,"cmd":"events"}
//! {"v":1,"cmd":"events","since":0}
//! {"v":1,"cmd":"subscribe","refresh":true}
//! {"v":1,"cmd":"subscribe","refresh":true,"since":0}
//! {"v":1,"cmd":"describe","name":"web"}
//! {"v":1,"cmd":"reload","dry_run":true}
//! {"v":1,"cmd":"history","names":["web"]}
//! {"v":1,"cmd":"scale","name":"web","replicas":3}
//! {"v":1,"cmd":"tree","names":["web"]}
//! ```
//!
//! The server answers each request with one or more lines, each one JSON object
//! ([`Answer`]). The last line of every answer carries `ok`: `{"ok":true,...}` with what
//! was asked for, or `{"ok":false,"error":"..."}`. Streams (`events`, `subscribe`, `logs`
//! with `follow`) first send a header line, then items without `ok`, and end with an `ok`
//! line when the stream ends (the supervisor stops, or nothing is left to follow).
//!
//! `subscribe` (SPEC §6) is list-then-watch: its header carries a `snapshot` (the status
//! report with its `seq`), then come `event` items, each with the next `seq`, with no gap
//! and no duplicate; if the client was too slow and events fell out of the supervisor's
//! backlog, a `skipped` item says how many, in their place. With `refresh`, `snapshot`
//! items come too (only after changes; at most ten a second for small configs, down to
//! one a second for 500 processes), each placed right after the last event it includes.
//!
//! The supervisor keeps its latest events from start-up (a bounded backlog). `events`
//! with `since: N` starts with the kept events after N (`0`: all of them), a `skipped`
//! item first if some after N are no longer kept. `subscribe` with `since: N` sends, right
//! after its header, the kept events after N that its snapshot already includes (their
//! `seq` is at most the snapshot's): history for a view, not changes to apply.
//!
//! A connection may carry several requests in turn. A request that cannot be decoded
//! (not JSON, unknown verb, another version) is answered with an error and the connection
//! is closed. Decoding is total: every byte string is a request or an error message.
//! Unknown fields are ignored, so that a newer client can add optional ones.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// The protocol version this build speaks.
pub const VERSION: u32 = 1;

/// The longest request line the server reads (newline excluded).
pub const MAX_REQUEST: usize = 64 * 1024;

/// `logs` without `lines`.
pub const DEFAULT_LOG_LINES: usize = 100;

/// What a client asks. The set of verbs is closed; names are process or instance names
/// (or `all`), resolved by the supervisor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "snake_case")]
pub enum Request {
    /// The server's pid, protocol version and config file.
    Hello,
    /// The status report of SPEC §4.
    Status,
    Start {
        names: Vec<String>,
    },
    Stop {
        names: Vec<String>,
    },
    Restart {
        names: Vec<String>,
    },
    /// `signal` is a name (`HUP`, `SIGUSR1`) or a number (`9`).
    Signal {
        names: Vec<String>,
        signal: String,
    },
    Logs {
        names: Vec<String>,
        #[serde(default = "default_log_lines")]
        lines: usize,
        #[serde(default)]
        follow: bool,
        /// Keep the child's colours (SGR sequences) in `ansi`; other sequences are
        /// removed all the same.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        colors: bool,
    },
    /// Every event from now on; with `since`, the kept events after that number first.
    Events {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        since: Option<u64>,
    },
    /// A snapshot, then every later event (and, with `refresh`, fresher snapshots); with
    /// `since`, the kept events up to the snapshot's come right after it.
    Subscribe {
        #[serde(default)]
        refresh: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        since: Option<u64>,
    },
    /// How one instance is run: command, cwd, environment (secrets masked).
    Describe {
        name: String,
    },
    Reload {
        #[serde(default)]
        dry_run: bool,
    },
    /// Stop everything and exit; answered once everything has stopped.
    Down,
    /// The restart history of the named instances.
    History {
        names: Vec<String>,
    },
    /// Run `replicas` instances of the declared process `name`; answered once applied.
    Scale {
        name: String,
        replicas: u32,
    },
    /// Every process of each named instance's tree, with its own CPU and memory.
    Tree {
        names: Vec<String>,
    },
}

fn default_log_lines() -> usize {
    DEFAULT_LOG_LINES
}

impl Request {
    /// The verb, as on the command line.
    pub fn verb(&self) -> &'static str {
        match self {
            Request::Hello => "hello",
            Request::Status => "status",
            Request::Start { .. } => "start",
            Request::Stop { .. } => "stop",
            Request::Restart { .. } => "restart",
            Request::Signal { .. } => "signal",
            Request::Logs { .. } => "logs",
            Request::Events { .. } => "events",
            Request::Subscribe { .. } => "subscribe",
            Request::Describe { .. } => "describe",
            Request::Reload { .. } => "reload",
            Request::Down => "down",
            Request::History { .. } => "history",
            Request::Scale { .. } => "scale",
            Request::Tree { .. } => "tree",
        }
    }

    /// The request line, newline included.
    pub fn to_line(&self) -> Vec<u8> {
        #[derive(Serialize)]
        struct Envelope<'a> {
            v: u32,
            #[serde(flatten)]
            request: &'a Request,
        }
        let mut line = serde_json::to_vec(&Envelope {
            v: VERSION,
            request: self,
        })
        .expect("a request always serializes");
        line.push(b'\n');
        line
    }
}

/// Decode one request line (without its newline). Never panics.
pub fn parse_request(line: &[u8]) -> Result<Request, String> {
    let mut object: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(line)
        .map_err(|e| {
            format!(
                "a request is one JSON object per line, like {{\"v\":1,\"cmd\":\"status\"}}: {e}"
            )
        })?;
    match object.remove("v") {
        None => {
            return Err(format!(
                "the request has no protocol version `v`; this warden speaks version {VERSION}"
            ));
        }
        Some(v) if v.as_u64() == Some(u64::from(VERSION)) => {}
        Some(v) => {
            return Err(format!(
                "protocol version {v} is not supported: this warden speaks version {VERSION} (is the client from another warden release?)"
            ));
        }
    }
    let request: Request = serde_json::from_value(serde_json::Value::Object(object))
        .map_err(|e| format!("bad request: {e}"))?;
    match &request {
        Request::Start { names }
        | Request::Stop { names }
        | Request::Restart { names }
        | Request::Logs { names, .. }
        | Request::History { names }
        | Request::Tree { names }
            if names.is_empty() =>
        {
            Err(format!(
                "`{}` needs at least one process name (or `all`)",
                request.verb()
            ))
        }
        Request::Signal { names, .. } if names.is_empty() => {
            Err("`signal` needs a process name".into())
        }
        _ => Ok(request),
    }
}

/// One line from the server. Which fields are set depends on the request; every field is
/// optional, so that old clients ignore what new servers add.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Answer {
    /// Set on the last line of an answer only: whether the request succeeded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ok: Option<bool>,
    /// Why it failed (`ok: false`); may span several lines (config errors).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The supervisor's reply to an action, or a stream's closing words, for humans.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// `hello`: the server's protocol version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u32>,
    /// `hello`: the supervisor's pid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    /// `hello`: the config file the supervisor runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<String>,
    /// `status`: the report of SPEC §4, exactly as `status --json` prints it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<Box<RawValue>>,
    /// `subscribe` header and refresh items: the status report with its `seq`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<Box<RawValue>>,
    /// `describe`: the instance's command, cwd and environment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<Box<RawValue>>,
    /// `tree`: per instance, `{"name": …, "processes": [{"pid", "parent", "name",
    /// "rss_bytes", "cpu_percent"}, …]}`, the leader first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trees: Option<Box<RawValue>>,
    /// `reload`: the plan (added, removed, changed, unchanged, notes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan: Option<Box<RawValue>>,
    /// Stream header: which stream this is (`events`, `logs`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<String>,
    /// `logs` header: the instances whose lines follow, in order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instances: Option<Vec<String>>,
    /// `logs` item: one line of output.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<LogRecord>,
    /// `events` item: the event, in its JSON shape.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<Box<RawValue>>,
    /// `events` item: the event as one line for humans (without time and name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// `history`: `{"processes":[{"name":…,"history":[exit records, oldest first]}]}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub history: Option<Box<RawValue>>,
    /// Stream item: this subscriber fell behind and missed some items.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skipped: Option<Skipped>,
}

impl Answer {
    pub fn success() -> Answer {
        Answer {
            ok: Some(true),
            ..Answer::default()
        }
    }

    pub fn message(text: impl Into<String>) -> Answer {
        Answer {
            message: Some(text.into()),
            ..Answer::success()
        }
    }

    pub fn error(text: impl Into<String>) -> Answer {
        Answer {
            ok: Some(false),
            error: Some(text.into()),
            ..Answer::default()
        }
    }

    /// The line, newline included.
    pub fn to_line(&self) -> Vec<u8> {
        let mut line = serde_json::to_vec(self).expect("an answer always serializes");
        line.push(b'\n');
        line
    }
}

/// One line of a process's output, made safe for a terminal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogRecord {
    /// The instance (`web`, `web.1`).
    pub name: String,
    /// Per instance and log sink, increasing.
    pub seq: u64,
    /// RFC 3339, milliseconds, UTC.
    pub time: String,
    /// `stdout`, `stderr`, or `warden` for warden's own markers (run started, exited).
    pub stream: String,
    /// Lossy UTF-8 with escape sequences and control characters removed.
    pub text: String,
    /// With `colors`: the text with the child's SGR sequences (colours, bold) kept and
    /// every other sequence removed; absent when it would equal `text`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ansi: Option<String>,
    /// The line continues in the next record (it was too long), or ended without newline.
    #[serde(default)]
    pub partial: bool,
}

/// How many stream items a slow subscriber missed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Skipped {
    /// The instance whose lines were skipped (`logs`); absent for `events`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub count: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_round_trip_through_their_line() {
        let all = [
            Request::Hello,
            Request::Status,
            Request::Start {
                names: vec!["web".into()],
            },
            Request::Stop {
                names: vec!["all".into()],
            },
            Request::Restart {
                names: vec!["web".into(), "db".into()],
            },
            Request::Signal {
                names: vec!["web".into()],
                signal: "HUP".into(),
            },
            Request::Logs {
                names: vec!["web".into()],
                lines: 5,
                follow: true,
                colors: true,
            },
            Request::Events { since: None },
            Request::Events { since: Some(0) },
            Request::Subscribe {
                refresh: true,
                since: None,
            },
            Request::Subscribe {
                refresh: true,
                since: Some(7),
            },
            Request::Describe { name: "web".into() },
            Request::Reload { dry_run: true },
            Request::Down,
            Request::History {
                names: vec!["web".into()],
            },
            Request::Scale {
                name: "web".into(),
                replicas: 3,
            },
            Request::Tree {
                names: vec!["web".into()],
            },
        ];
        for r in all {
            let line = r.to_line();
            assert_eq!(line.last(), Some(&b'\n'));
            assert!(
                line.starts_with(b"{\"v\":1,\"cmd\":"),
                "{}",
                String::from_utf8_lossy(&line)
            );
            assert_eq!(parse_request(&line[..line.len() - 1]), Ok(r));
        }
    }

    #[test]
    fn defaults_fill_optional_fields() {
        assert_eq!(
            parse_request(br#"{"v":1,"cmd":"logs","names":["a"],"extra":true}"#),
            Ok(Request::Logs {
                names: vec!["a".into()],
                lines: DEFAULT_LOG_LINES,
                follow: false,
                colors: false,
            })
        );
        assert_eq!(
            parse_request(br#"{"cmd":"reload","v":1}"#),
            Ok(Request::Reload { dry_run: false })
        );
        assert_eq!(
            parse_request(br#"{"v":1,"cmd":"subscribe"}"#),
            Ok(Request::Subscribe {
                refresh: false,
                since: None
            })
        );
        assert_eq!(
            parse_request(br#"{"v":1,"cmd":"events"}"#),
            Ok(Request::Events { since: None })
        );
    }

    #[test]
    fn bad_requests_get_a_reason() {
        let cases: &[(&[u8], &str)] = &[
            (b"{{{", "one JSON object per line"),
            (b"", "one JSON object per line"),
            (b"[1,2]", "one JSON object per line"),
            (b"\xff\xfe", "one JSON object per line"),
            (br#"{"cmd":"status"}"#, "no protocol version"),
            (
                br#"{"v":2,"cmd":"status"}"#,
                "protocol version 2 is not supported",
            ),
            (
                br#"{"v":"1","cmd":"status"}"#,
                "protocol version \"1\" is not supported",
            ),
            (br#"{"v":1}"#, "missing field `cmd`"),
            (br#"{"v":1,"cmd":"rm -rf"}"#, "unknown variant `rm -rf`"),
            (br#"{"v":1,"cmd":"start"}"#, "missing field `names`"),
            (
                br#"{"v":1,"cmd":"start","names":[]}"#,
                "needs at least one process name",
            ),
            (br#"{"v":1,"cmd":"start","names":"web"}"#, "invalid type"),
            (
                br#"{"v":1,"cmd":"logs","names":["a"],"lines":-1}"#,
                "invalid value",
            ),
        ];
        for (line, want) in cases {
            let err = parse_request(line).unwrap_err();
            assert!(
                err.contains(want),
                "{}: {err}",
                String::from_utf8_lossy(line)
            );
        }
    }

    #[test]
    fn answers_put_ok_first_and_omit_what_is_unset() {
        assert_eq!(
            Answer::message("web: running").to_line(),
            b"{\"ok\":true,\"message\":\"web: running\"}\n"
        );
        assert_eq!(
            Answer::error("no").to_line(),
            b"{\"ok\":false,\"error\":\"no\"}\n"
        );
        let raw = serde_json::value::to_raw_value(&serde_json::json!({"processes": []})).unwrap();
        let a = Answer {
            status: Some(raw),
            ..Answer::success()
        };
        let back: Answer = serde_json::from_slice(&a.to_line()).unwrap();
        assert_eq!(back.status.unwrap().get(), r#"{"processes":[]}"#);
    }
}
