//! What the harness waits on: the supervisor's typed events, read from its control socket
//! (`{"cmd":"events","since":0}`, so the events from before the follower attached are
//! there too, from the backlog kept since start-up), and predicates over them.
//!
//! A follower is started on the first wait after each `warden up`; events of every `up`
//! accumulate in one list, like the printed lines. Nothing here reads human text.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

pub use warden::supervisor::{Event, EventKind, ExitReason, State};

#[derive(Default)]
pub struct Seen {
    pub events: Vec<Event>,
    /// Events the backlog no longer held when the follower asked (a test that printed a
    /// lot before its first wait): a wait that fails says so.
    pub skipped: u64,
    /// The follower of the current `up` has ended (the supervisor stopped or never
    /// answered).
    pub ended: bool,
    /// Why the follower could not follow, if it could not.
    pub trouble: Option<String>,
}

pub type Shared = Arc<(Mutex<Seen>, Condvar)>;

/// Follow the supervisor at `socket` from its first kept event, in a thread, until it
/// stops. `gone()` says that warden has exited (no point waiting for its socket).
pub fn follow(socket: PathBuf, seen: Shared, gone: impl Fn() -> bool + Send + 'static) {
    seen.0.lock().unwrap().ended = false;
    std::thread::spawn(move || {
        let trouble = read_all(&socket, &seen, gone).err();
        let (lock, cv) = &*seen;
        let mut s = lock.lock().unwrap();
        s.ended = true;
        s.trouble = trouble;
        cv.notify_all();
    });
}

fn read_all(socket: &PathBuf, seen: &Shared, gone: impl Fn() -> bool) -> Result<(), String> {
    let deadline = Instant::now() + super::harness::PATIENCE;
    let stream = loop {
        match UnixStream::connect(socket) {
            Ok(s) => break s,
            Err(e) if gone() || Instant::now() >= deadline => {
                return Err(format!("cannot follow events at {socket:?}: {e}"));
            }
            Err(_) => std::thread::sleep(Duration::from_millis(10)),
        }
    };
    let mut writer = stream.try_clone().map_err(|e| e.to_string())?;
    writer
        .write_all(b"{\"v\":1,\"cmd\":\"events\",\"since\":0}\n")
        .map_err(|e| e.to_string())?;
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line).map_err(|e| e.to_string())? == 0 {
            return Ok(());
        }
        let answer: serde_json::Value =
            serde_json::from_str(&line).map_err(|e| format!("not JSON ({e}): {line}"))?;
        if answer.get("ok").is_some() {
            return match answer["ok"].as_bool() {
                Some(true) => Ok(()),
                _ => Err(format!("events refused: {answer}")),
            };
        }
        let (lock, cv) = &**seen;
        if let Some(event) = answer.get("event") {
            let event: Event = serde_json::from_value(event.clone())
                .map_err(|e| format!("not an event ({e}): {event}"))?;
            lock.lock().unwrap().events.push(event);
            cv.notify_all();
        } else if let Some(n) = answer["skipped"]["count"].as_u64() {
            lock.lock().unwrap().skipped += n;
        }
    }
}

/// A named condition on one event, for waits and their failure messages.
pub struct Pred {
    pub what: String,
    pub test: Box<dyn Fn(&Event) -> bool>,
}

impl Pred {
    pub fn new(what: impl Into<String>, test: impl Fn(&Event) -> bool + 'static) -> Pred {
        Pred {
            what: what.into(),
            test: Box::new(test),
        }
    }

    pub fn matches(&self, e: &Event) -> bool {
        (self.test)(e)
    }

    /// This condition and `more` on the same event.
    pub fn and(self, what: &str, more: impl Fn(&Event) -> bool + 'static) -> Pred {
        let test = self.test;
        Pred {
            what: format!("{} with {what}", self.what),
            test: Box::new(move |e| test(e) && more(e)),
        }
    }
}

/// `name` went into state `to` (from any state).
pub fn state(name: &str, to: State) -> Pred {
    let n = name.to_owned();
    Pred::new(format!("{name}: → {to}"), move |e| {
        e.name == n && matches!(e.kind, EventKind::State { to: t, .. } if t == to)
    })
}

/// `name` went from `from` to `to`.
pub fn transition(name: &str, from: State, to: State) -> Pred {
    let n = name.to_owned();
    Pred::new(format!("{name}: {from} → {to}"), move |e| {
        e.name == n && matches!(e.kind, EventKind::State { from: f, to: t } if f == from && t == to)
    })
}

/// Run `run` of `name` was spawned.
pub fn spawned(name: &str, run: u64) -> Pred {
    let n = name.to_owned();
    Pred::new(format!("{name}: run {run} spawned"), move |e| {
        e.name == n && matches!(e.kind, EventKind::Spawned { run: r, .. } if r.0 == run)
    })
}

/// Run `run` of `name` ended (any way).
pub fn exited(name: &str, run: u64) -> Pred {
    let n = name.to_owned();
    Pred::new(format!("{name}: run {run} ended"), move |e| {
        e.name == n && matches!(e.kind, EventKind::Exited { run: r, .. } if r.0 == run)
    })
}

/// Run `run` of `name` ended with exit code `code`, for `reason`.
pub fn exited_with(name: &str, run: u64, code: i32, reason: ExitReason) -> Pred {
    exited(name, run).and(&format!("exit code {code}, {}", reason.as_str()), move |e| {
        matches!(e.kind, EventKind::Exited { code: Some(c), reason: r, .. } if c == code && r == reason)
    })
}

/// Run `run` of `name` ended by a signal `signal`, for `reason`.
pub fn signalled(name: &str, run: u64, signal: i32, reason: ExitReason) -> Pred {
    exited(name, run).and(&format!("signal {signal}, {}", reason.as_str()), move |e| {
        matches!(e.kind, EventKind::Exited { signal: Some(s), reason: r, .. } if s == signal && r == reason)
    })
}

/// `name` is to restart as run `run`.
pub fn restarting(name: &str, run: u64) -> Pred {
    let n = name.to_owned();
    Pred::new(format!("{name}: restarting as run {run}"), move |e| {
        e.name == n && matches!(e.kind, EventKind::Restarting { run: r, .. } if r.0 == run)
    })
}

/// `name` is to restart (as any run).
pub fn restarting_any(name: &str) -> Pred {
    let n = name.to_owned();
    Pred::new(format!("{name}: restarting"), move |e| {
        e.name == n && matches!(e.kind, EventKind::Restarting { .. })
    })
}

/// The delay of a `restarting` event, in ms (0 for other events).
pub fn delay_ms(e: &Event) -> u64 {
    match e.kind {
        EventKind::Restarting { delay_ms, .. } => delay_ms,
        _ => 0,
    }
}

/// The paths a `changed` event names (none for other events).
pub fn changed_paths(e: &Event) -> Vec<String> {
    match &e.kind {
        EventKind::Changed { paths, .. } => paths.clone(),
        _ => Vec::new(),
    }
}

/// `name` gave up (fatal).
pub fn fatal(name: &str) -> Pred {
    let n = name.to_owned();
    Pred::new(format!("{name}: fatal"), move |e| {
        e.name == n && matches!(e.kind, EventKind::Fatal { .. })
    })
}

/// A `role` probe of `name` (`check` for checks) gave `ok`.
pub fn probe(name: &str, role: &str, ok: bool) -> Pred {
    let (n, r) = (name.to_owned(), role.to_owned());
    Pred::new(format!("{name}: {role} probe ok={ok}"), move |e| {
        e.name == n
            && matches!(&e.kind, EventKind::Probe { role, ok: o, .. } if *role == r && *o == ok)
    })
}

/// SIGKILL went to run `run` of `name`.
pub fn killed(name: &str, run: u64) -> Pred {
    let n = name.to_owned();
    Pred::new(format!("{name}: run {run} killed"), move |e| {
        e.name == n && matches!(e.kind, EventKind::Killed { run: r, .. } if r.0 == run)
    })
}

/// A reload was applied.
pub fn reloaded() -> Pred {
    Pred::new("config reloaded", |e| {
        matches!(e.kind, EventKind::Reloaded { .. })
    })
}

/// A reload was rejected.
pub fn reload_failed() -> Pred {
    Pred::new("config reload rejected", |e| {
        matches!(e.kind, EventKind::ReloadFailed { .. })
    })
}

/// An sd_notify message from outside the run of `name` was ignored.
pub fn notify_refused(name: &str) -> Pred {
    let n = name.to_owned();
    Pred::new(format!("{name}: sd_notify message refused"), move |e| {
        e.name == n && matches!(e.kind, EventKind::NotifyRefused { .. })
    })
}

/// Files under `watch` of `name` changed.
pub fn files_changed(name: &str) -> Pred {
    let n = name.to_owned();
    Pred::new(format!("{name}: files changed"), move |e| {
        e.name == n && matches!(e.kind, EventKind::Changed { .. })
    })
}

/// A scheduled run of `name` was skipped.
pub fn skipped(name: &str) -> Pred {
    let n = name.to_owned();
    Pred::new(format!("{name}: scheduled run skipped"), move |e| {
        e.name == n && matches!(e.kind, EventKind::Skipped { .. })
    })
}

/// A notice of `name` (`""`: warden's own) whose text contains `text`. Notices are the
/// one kind of event that is only text (log file trouble, socket refusals, the shutdown
/// timeout): there is no field to match instead.
pub fn message(name: &str, text: &str) -> Pred {
    let (n, t) = (name.to_owned(), text.to_owned());
    Pred::new(format!("{name}: notice `{text}`"), move |e| {
        e.name == n && matches!(&e.kind, EventKind::Message { text } if text.contains(&t))
    })
}

/// The text of a notice (`""` for other events).
pub fn text(e: &Event) -> &str {
    match &e.kind {
        EventKind::Message { text } => text,
        _ => "",
    }
}

/// Every event seen that satisfies `pred`.
pub fn all(events: &[Event], pred: &Pred) -> Vec<Event> {
    events.iter().filter(|e| pred.matches(e)).cloned().collect()
}

/// The reason of an exit, hang or limit event ([`ExitReason::Other`] for other events).
pub fn reason(e: &Event) -> ExitReason {
    match &e.kind {
        EventKind::Exited { reason, .. }
        | EventKind::Hung { reason, .. }
        | EventKind::Limit { reason, .. }
        | EventKind::Killed { reason, .. } => *reason,
        _ => ExitReason::Other,
    }
}

/// The exit code and signal of an exit event (`(None, None)` for other events).
pub fn status(e: &Event) -> (Option<i32>, Option<i32>) {
    match &e.kind {
        EventKind::Exited { code, signal, .. } => (*code, *signal),
        _ => (None, None),
    }
}

/// The detail of an exit, hang or limit event (`""` for other events).
pub fn detail(e: &Event) -> &str {
    match &e.kind {
        EventKind::Exited { detail, .. } => detail.as_deref().unwrap_or(""),
        EventKind::Hung { detail, .. } | EventKind::Limit { detail, .. } => detail,
        EventKind::Fatal { message } => message,
        EventKind::Probe { error, .. } => error.as_deref().unwrap_or(""),
        _ => "",
    }
}
