//! The dashboard's loop: terminal input, the supervisor's messages and a one-second
//! clock in; `App::update`; commands out; a frame drawn when something changed, at most
//! [`FRAME`] apart. Idle, it wakes once a second (uptimes move) and draws only the cells
//! that changed.

use std::future::poll_fn;
use std::time::{Duration, Instant, SystemTime};

use futures_core::Stream;
use ratatui::crossterm::event::{Event as TermEvent, EventStream};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::app::{App, Cmd, Mode, Msg};
use super::backend::Source;
use super::terminal;
use super::theme::Theme;
use super::view;
use crate::supervisor::Control;

/// The shortest time between two frames (about 30 a second).
pub const FRAME: Duration = Duration::from_millis(33);
/// Messages taken from the sources before a frame is considered.
const DRAIN: usize = 512;

/// How the loop ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Exit {
    /// The user quit (or, in process, the supervisor finished).
    Quit,
    /// The terminal went away (closed, hung up).
    TerminalGone,
    /// SIGTERM or SIGHUP (`warden tui` only; under `warden up` the supervisor has them).
    Signalled,
}

/// Run the dashboard on this terminal until the user quits.
pub async fn run(mode: Mode, source: Source) -> std::io::Result<Exit> {
    let mut term = terminal::enter()?;
    let result = event_loop(&mut term, mode, source).await;
    terminal::restore();
    result
}

async fn event_loop(
    term: &mut terminal::Term,
    mode: Mode,
    source: Source,
) -> std::io::Result<Exit> {
    let size = term.size()?;
    let mut app = App::new(
        mode,
        Theme::from_env(),
        (size.width, size.height),
        Instant::now(),
        SystemTime::now(),
    );
    app.utc_offset = utc_offset(SystemTime::now());
    app.cwd = std::env::current_dir().ok();
    let (tx, mut rx) = mpsc::channel::<Msg>(1024);
    let feed = tokio::spawn(source.clone().feed(tx.clone()));
    let _feed = AbortOnDrop(feed);
    // The current log follow; replacing it aborts the previous one.
    let mut _following: Option<AbortOnDrop> = None;
    let mut input = EventStream::new();
    let mut clock = tokio::time::interval(Duration::from_secs(1));
    clock.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut sigterm = signal(SignalKind::terminate())?;
    let mut sighup = signal(SignalKind::hangup())?;
    let mut sigcont = signal(SignalKind::from_raw(libc::SIGCONT))?;
    let attached = mode == Mode::Attached;
    let mut last_frame = Instant::now() - FRAME;
    let mut terminal_ok = true;
    loop {
        let frame_due = (app.dirty && terminal_ok).then_some(last_frame + FRAME);
        let msg = tokio::select! {
            // Frames and keys first: a flood of messages must not starve either.
            biased;
            _ = sleep_until(frame_due), if frame_due.is_some() => {
                if let Err(e) = term.draw(|f| view::draw(f, &app)) {
                    tracing::warn!("cannot draw on the terminal any more: {e}");
                    terminal_ok = false;
                }
                app.dirty = false;
                last_frame = Instant::now();
                continue;
            }
            ev = poll_fn(|cx| Pin::new(&mut input).poll_next(cx)), if terminal_ok => match ev {
                Some(Ok(TermEvent::Key(k))) => Msg::Key(k),
                Some(Ok(TermEvent::Mouse(m))) => Msg::Mouse(m),
                Some(Ok(TermEvent::Resize(w, h))) => Msg::Resize(w, h),
                Some(Ok(_)) => continue,
                Some(Err(e)) => {
                    tracing::warn!("cannot read the terminal any more: {e}");
                    terminal_ok = false;
                    if !attached {
                        stop_all(&source);
                        continue;
                    }
                    return Ok(Exit::TerminalGone);
                }
                None => {
                    // The terminal is gone (closed, ssh dropped). Under `warden up` that
                    // is the same as closing it: stop everything (SIGHUP does too).
                    terminal_ok = false;
                    if !attached {
                        stop_all(&source);
                        continue;
                    }
                    return Ok(Exit::TerminalGone);
                }
            },
            _ = sigcont.recv() => {
                // Stopped and continued by someone else: the shell may have reset the
                // terminal meanwhile.
                if terminal_ok && let Err(e) = terminal::resume(term) {
                    tracing::warn!("cannot take the terminal back after a stop: {e}");
                    terminal_ok = false;
                }
                app.dirty = true;
                continue;
            }
            _ = sigterm.recv(), if attached => return Ok(Exit::Signalled),
            _ = sighup.recv(), if attached => return Ok(Exit::Signalled),
            Some(m) = rx.recv() => m,
            _ = clock.tick() => {
                let wall = SystemTime::now();
                Msg::Tick(Instant::now(), wall, utc_offset(wall))
            }
        };
        let mut queue = vec![msg];
        while queue.len() < DRAIN {
            match rx.try_recv() {
                Ok(m) => queue.push(m),
                Err(_) => break,
            }
        }
        for msg in queue {
            app.now = Instant::now();
            for cmd in app.update(msg) {
                match cmd {
                    Cmd::Quit => return Ok(Exit::Quit),
                    Cmd::Suspend => {
                        if let Err(e) = terminal::suspend(term) {
                            tracing::warn!("cannot take the terminal back after Ctrl-Z: {e}");
                            terminal_ok = false;
                        }
                        app.dirty = true;
                    }
                    Cmd::Shutdown => stop_all(&source),
                    Cmd::FollowLogs { generation, names } => {
                        _following = Some(AbortOnDrop(tokio::spawn(source.clone().follow_logs(
                            names,
                            generation,
                            tx.clone(),
                        ))));
                    }
                    Cmd::Act { what, request } => {
                        let (s, tx) = (source.clone(), tx.clone());
                        tokio::spawn(async move {
                            let result = s.act(request).await;
                            let _ = tx.send(Msg::Done { what, result }).await;
                        });
                    }
                    Cmd::Describe(name) => {
                        let (s, tx) = (source.clone(), tx.clone());
                        tokio::spawn(async move {
                            let result = s.describe(name.clone()).await;
                            let _ = tx.send(Msg::Described { name, result }).await;
                        });
                    }
                    Cmd::Tree(name) => {
                        let (s, tx) = (source.clone(), tx.clone());
                        tokio::spawn(async move {
                            let result = s.tree(name.clone()).await;
                            let _ = tx.send(Msg::Tree { name, result }).await;
                        });
                    }
                    Cmd::PlanReload => {
                        let (s, tx) = (source.clone(), tx.clone());
                        tokio::spawn(async move {
                            let _ = tx.send(Msg::Plan(s.plan().await)).await;
                        });
                    }
                }
            }
        }
    }
}

/// `warden up`: ask the supervisor to stop everything (a second time: kill it all).
fn stop_all(source: &Source) {
    if let Source::Local { handle, .. } = source {
        let _ = handle.control.send(Control::Shutdown { reply: None });
    }
}

struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}

/// Local time minus UTC at `t`, in seconds (0 if the local time cannot be had).
pub fn utc_offset(t: SystemTime) -> i64 {
    let secs = t
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs() as libc::time_t;
    // SAFETY: `tm` is plain data (a null `tm_zone` is valid); localtime_r writes only
    // into it and keeps no pointer to it.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    if unsafe { libc::localtime_r(&secs, &mut tm) }.is_null() {
        return 0;
    }
    tm.tm_gmtoff
}
