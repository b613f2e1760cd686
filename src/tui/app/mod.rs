//! The dashboard's state and its pure `update`: a message in (a key, a snapshot, an
//! event, log lines, an action's result, a tick of the clock), commands out (act on
//! processes, follow other logs, quit). No I/O and no clock here: time arrives in
//! messages, so every behaviour is tested with synthetic keys and fixed snapshots.
//!
//! The dashboard acts only through the same requests as the CLI
//! ([`crate::api::protocol::Request`]); it never reaches into the supervisor.

mod input;
pub use input::context;
pub mod scale;
pub mod table;

use std::collections::{BTreeSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use ratatui::crossterm::event::{KeyEvent, MouseEvent};

use super::layout;
pub use super::layout::Pane;
use super::logbuf::{LogBuf, LogEntry};
use super::theme::Theme;
use crate::api::protocol::Request;
use crate::api::tree::TreeProcess;
use crate::supervisor::status::{ProcessStatus, Snapshot};
use crate::supervisor::{Description, Event, ReloadPlan};
use table::{Sort, StateFilter};

/// The most events the events pane keeps.
pub const MAX_EVENTS: usize = 2_000;
/// The most instances whose logs are merged at once (each followed instance costs the
/// supervisor a subscription).
pub const MAX_MERGED: usize = 64;

/// Where the dashboard runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Inside `warden up`: quitting stops the supervisor.
    InProcess,
    /// `warden tui`: quitting closes the view; the supervisor goes on.
    Attached,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Screen {
    Main,
    Detail,
    Connectivity,
    /// One instance's process tree, refreshed while it is shown.
    Tree,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Link {
    Connecting,
    Connected,
    /// The supervisor went away; the last picture stays.
    Lost {
        since: Instant,
        why: String,
    },
}

#[derive(Debug)]
pub enum Msg {
    Key(KeyEvent),
    Mouse(MouseEvent),
    Resize(u16, u16),
    /// The clock: monotonic, wall, and the local time's offset from UTC in seconds.
    Tick(Instant, SystemTime, i64),
    /// Connected (again): the picture to start from.
    Connected(Arc<Snapshot>),
    Snapshot(Arc<Snapshot>),
    Event(Arc<Event>),
    /// Events lost between the supervisor and this view.
    Skipped(u64),
    Disconnected(String),
    /// Lines of the logs being followed (`generation` tells which follow they are from).
    Logs {
        generation: u64,
        lines: Vec<LogEntry>,
        skipped: u64,
    },
    /// An action finished.
    Done {
        what: String,
        result: Result<String, String>,
    },
    Described {
        name: String,
        result: Result<Box<Description>, String>,
    },
    Plan(Result<ReloadPlan, String>),
    /// The answer to [`Cmd::Tree`].
    Tree {
        name: String,
        result: Result<Vec<TreeProcess>, String>,
    },
    /// The supervisor finished (`warden up`): time to go.
    Ended,
}

/// What the runner does for `update`.
#[derive(Debug, Clone, PartialEq)]
pub enum Cmd {
    /// Send a request; its result comes back as [`Msg::Done`].
    Act {
        what: String,
        request: Request,
    },
    Describe(String),
    /// Ask for the reload plan (`reload --dry-run`).
    PlanReload,
    /// Ask for this instance's process tree; the answer comes back as [`Msg::Tree`].
    Tree(String),
    /// Follow these instances' logs instead (none: stop following).
    FollowLogs {
        generation: u64,
        names: Vec<String>,
    },
    /// Stop everything (`warden up` only); a second one kills.
    Shutdown,
    Quit,
    Suspend,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Overlay {
    Help { scroll: usize },
    Confirm(Confirm),
    Signal { cursor: usize, targets: Vec<String> },
    Input { purpose: Purpose, text: String },
    Plan(PlanState),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    Filter,
    Search,
}

#[derive(Debug, Clone, PartialEq)]
pub enum PlanState {
    Loading,
    Ready(ReloadPlan),
    Failed(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Confirm {
    pub title: String,
    pub body: Vec<String>,
    pub yes: String,
    pub no: String,
    pub then: Vec<Cmd>,
    /// Status line text once confirmed.
    pub doing: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct StatusLine {
    pub text: String,
    pub level: Level,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Info,
    Good,
    Bad,
}

#[derive(Debug, Clone, PartialEq)]
pub enum EventRow {
    Event(Arc<Event>),
    Skipped(u64),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Detail {
    pub name: String,
    /// The restart history entry whose stderr is shown (index into `history`).
    pub cursor: usize,
    /// The cursor is on the newest entry and stays there as runs end.
    pub newest: bool,
    pub description: Option<Result<Box<Description>, String>>,
}

/// The tree view: one instance's processes, asked for again every tick while shown.
#[derive(Debug, Clone, PartialEq)]
pub struct TreeView {
    pub name: String,
    /// Where Esc goes back to.
    pub from: Screen,
    /// The last tree received (`None` before the first answer).
    pub processes: Option<Vec<TreeProcess>>,
    /// Why the last request failed, if it did (the last tree stays on screen).
    pub error: Option<String>,
    /// A request is on its way: no second one until it is answered.
    pub pending: bool,
    /// The first row on screen.
    pub scroll: usize,
}

/// The signals the picker offers, in this order.
pub const SIGNALS: &[(&str, &str)] = &[
    ("HUP", "reload, by convention"),
    ("INT", "interrupt, as Ctrl-C"),
    ("QUIT", "quit, often with a dump"),
    ("TERM", "terminate politely"),
    ("KILL", "kill at once, no cleanup"),
    ("USR1", "user-defined 1"),
    ("USR2", "user-defined 2"),
    ("STOP", "pause"),
    ("CONT", "resume after STOP"),
    ("WINCH", "window size changed"),
];

pub struct App {
    pub mode: Mode,
    pub theme: Theme,
    pub size: (u16, u16),
    pub now: Instant,
    pub wall: SystemTime,
    /// Local time minus UTC, in seconds, for the clock times shown.
    pub utc_offset: i64,
    /// The view's working folder: paths under it are shown relative to it.
    pub cwd: Option<std::path::PathBuf>,
    pub snapshot: Arc<Snapshot>,
    /// When the snapshot arrived: uptimes are advanced from there.
    pub snapshot_at: Instant,
    pub link: Link,
    pub screen: Screen,
    pub focus: Pane,
    pub zoom: bool,
    pub overlay: Option<Overlay>,
    rows: Vec<usize>,
    pub cursor: usize,
    pub selected: Option<String>,
    /// The first table row on screen.
    pub offset: usize,
    pub marked: BTreeSet<String>,
    pub filter: String,
    pub state_filter: StateFilter,
    pub sort: Sort,
    pub logs: LogBuf,
    pub log_all: bool,
    /// The instances whose logs are followed now.
    pub log_names: Vec<String>,
    log_generation: u64,
    pub wrap: bool,
    pub events: VecDeque<EventRow>,
    /// Events from the bottom the events pane is scrolled up by.
    pub events_scroll: usize,
    pub detail: Option<Detail>,
    pub tree: Option<TreeView>,
    /// Scale requests sent and not yet seen in a snapshot: declared process → (replicas
    /// asked for, answered). A second `+` counts from here, not from a stale snapshot.
    pub scaling: std::collections::BTreeMap<String, (u32, bool)>,
    pub conn_scroll: usize,
    pub status: Option<StatusLine>,
    pub shutting_down: bool,
    /// Something on screen changed since the last frame.
    pub dirty: bool,
}

impl App {
    pub fn new(mode: Mode, theme: Theme, size: (u16, u16), now: Instant, wall: SystemTime) -> App {
        App {
            mode,
            theme,
            size,
            now,
            wall,
            utc_offset: 0,
            cwd: None,
            snapshot: Arc::new(Snapshot::default()),
            snapshot_at: now,
            link: Link::Connecting,
            screen: Screen::Main,
            focus: Pane::Table,
            zoom: false,
            overlay: None,
            rows: Vec::new(),
            cursor: 0,
            selected: None,
            offset: 0,
            marked: BTreeSet::new(),
            filter: String::new(),
            state_filter: StateFilter::All,
            sort: Sort::default(),
            logs: LogBuf::default(),
            log_all: false,
            log_names: Vec::new(),
            log_generation: 0,
            wrap: false,
            events: VecDeque::new(),
            events_scroll: 0,
            detail: None,
            tree: None,
            scaling: Default::default(),
            conn_scroll: 0,
            status: None,
            shutting_down: false,
            dirty: true,
        }
    }

    /// The table's rows: indices into `snapshot.processes`.
    pub fn rows(&self) -> &[usize] {
        &self.rows
    }

    pub fn row(&self, i: usize) -> Option<&ProcessStatus> {
        self.rows
            .get(i)
            .and_then(|&p| self.snapshot.processes.get(p))
    }

    pub fn selected_process(&self) -> Option<&ProcessStatus> {
        self.snapshot.process(self.selected.as_deref()?)
    }

    /// Uptime now, advanced from the snapshot while connected.
    pub fn uptime_ms(&self, p: &ProcessStatus) -> Option<u64> {
        let base = p.uptime_ms?;
        if self.link != Link::Connected {
            return Some(base);
        }
        let since = self.now.saturating_duration_since(self.snapshot_at);
        Some(base + since.as_millis() as u64)
    }

    /// Handle one message; what the runner must do follows.
    pub fn update(&mut self, msg: Msg) -> Vec<Cmd> {
        let mut cmds = Vec::new();
        self.dirty = true;
        match msg {
            Msg::Key(key) => input::key(self, key, &mut cmds),
            Msg::Mouse(ev) => input::mouse(self, ev),
            Msg::Resize(w, h) => {
                self.size = (w, h);
                self.keep_cursor_visible();
            }
            Msg::Tick(now, wall, offset) => {
                self.now = now;
                self.wall = wall;
                self.utc_offset = offset;
                if let Some(c) = self.refresh_tree() {
                    cmds.push(c);
                }
            }
            Msg::Connected(s) => {
                let again = matches!(self.link, Link::Lost { .. });
                self.link = Link::Connected;
                self.set_snapshot(s);
                // Whatever was followed before ended with the old connection.
                self.log_names.clear();
                if again {
                    self.say(Level::Good, "connected to the supervisor again");
                }
            }
            Msg::Snapshot(s) => self.set_snapshot(s),
            Msg::Event(e) => self.push_event(EventRow::Event(e)),
            Msg::Skipped(n) => self.push_event(EventRow::Skipped(n)),
            Msg::Disconnected(why) => {
                if !matches!(self.link, Link::Lost { .. }) {
                    self.link = Link::Lost {
                        since: self.now,
                        why: why.clone(),
                    };
                    let text = match self.mode {
                        Mode::Attached => {
                            format!(
                                "lost the supervisor: {why}; showing the last picture, reconnecting"
                            )
                        }
                        Mode::InProcess => format!("the supervisor stopped: {why}"),
                    };
                    self.say(Level::Bad, &text);
                }
            }
            Msg::Logs {
                generation,
                lines,
                skipped,
            } => {
                if generation == self.log_generation {
                    self.logs.skipped += skipped;
                    for line in lines {
                        self.logs.push(line);
                    }
                } else {
                    self.dirty = false;
                }
            }
            Msg::Done { what, result } => {
                scale::answered(self, &what, result.is_ok());
                match result {
                    Ok(text) => {
                        let text = text.lines().next().unwrap_or("").to_string();
                        let msg = if text.is_empty() {
                            format!("{what}: done")
                        } else {
                            format!("{what}: done ({text})")
                        };
                        self.say(Level::Good, &msg);
                    }
                    Err(e) => {
                        let e = e.lines().collect::<Vec<_>>().join("; ");
                        self.say(Level::Bad, &format!("{what} failed: {e}"));
                    }
                }
            }
            Msg::Described { name, result } => {
                if let Some(d) = self.detail.as_mut().filter(|d| d.name == name) {
                    d.description = Some(result);
                }
            }
            Msg::Plan(result) => {
                if let Some(Overlay::Plan(state)) = &mut self.overlay {
                    *state = match result {
                        Ok(plan) => PlanState::Ready(plan),
                        Err(e) => PlanState::Failed(e),
                    };
                }
            }
            Msg::Tree { name, result } => {
                if let Some(tv) = self.tree.as_mut().filter(|tv| tv.name == name) {
                    tv.pending = false;
                    match result {
                        Ok(list) => {
                            tv.processes = Some(list);
                            tv.error = None;
                        }
                        Err(e) => tv.error = Some(e),
                    }
                } else {
                    self.dirty = false;
                }
            }
            Msg::Ended => cmds.push(Cmd::Quit),
        }
        if let Some(c) = self.follow_logs() {
            cmds.push(c);
        }
        cmds
    }

    pub(super) fn say(&mut self, level: Level, text: &str) {
        self.status = Some(StatusLine {
            text: text.to_string(),
            level,
        });
    }

    fn set_snapshot(&mut self, s: Arc<Snapshot>) {
        self.snapshot = s;
        // A scale that was answered is in this picture.
        self.scaling.retain(|_, (_, answered)| !*answered);
        self.snapshot_at = self.now;
        let names: BTreeSet<&str> = self
            .snapshot
            .processes
            .iter()
            .map(|p| p.name.as_str())
            .collect();
        self.marked.retain(|m| names.contains(m.as_str()));
        self.refresh_rows();
        if let Some(d) = &mut self.detail
            && let Some(p) = self.snapshot.process(&d.name)
        {
            let last = p.history.len().saturating_sub(1);
            d.cursor = if d.newest { last } else { d.cursor.min(last) };
        }
    }

    /// Ask for the shown tree again, unless an answer is still awaited.
    fn refresh_tree(&mut self) -> Option<Cmd> {
        if self.screen != Screen::Tree || self.link != Link::Connected {
            return None;
        }
        let tv = self.tree.as_mut().filter(|tv| !tv.pending)?;
        tv.pending = true;
        Some(Cmd::Tree(tv.name.clone()))
    }

    /// Open the tree view of `name`; Esc goes back to the screen shown now.
    pub(super) fn open_tree(&mut self, name: String, cmds: &mut Vec<Cmd>) {
        self.tree = Some(TreeView {
            name: name.clone(),
            from: self.screen,
            processes: None,
            error: None,
            pending: true,
            scroll: 0,
        });
        self.screen = Screen::Tree;
        cmds.push(Cmd::Tree(name));
    }

    /// Recompute the rows after the snapshot, the filters or the sort changed; the
    /// selection stays on the same process if it is still shown.
    pub(super) fn refresh_rows(&mut self) {
        self.rows = table::rows(&self.snapshot, &self.filter, self.state_filter, self.sort);
        let found = self.selected.as_deref().and_then(|name| {
            self.rows
                .iter()
                .position(|&i| self.snapshot.processes[i].name == name)
        });
        match found {
            Some(i) => self.cursor = i,
            None => {
                self.cursor = self.cursor.min(self.rows.len().saturating_sub(1));
                self.selected = self.row(self.cursor).map(|p| p.name.clone());
            }
        }
        self.keep_cursor_visible();
    }

    pub(super) fn select(&mut self, i: usize) {
        if self.rows.is_empty() {
            return;
        }
        self.cursor = i.min(self.rows.len() - 1);
        self.selected = self.row(self.cursor).map(|p| p.name.clone());
        self.keep_cursor_visible();
    }

    /// Where each part of the screen goes now.
    pub fn areas(&self) -> layout::Areas {
        layout::areas(&layout::Shape {
            size: self.size,
            main: self.screen == Screen::Main,
            zoom: self.zoom,
            focus: self.focus,
            rows: self.rows.len(),
        })
    }

    /// Table rows that fit on screen.
    pub fn table_page(&self) -> usize {
        self.areas()
            .table
            .map_or(10, |r| r.height.saturating_sub(3) as usize)
            .max(1)
    }

    /// Log lines that fit on screen.
    pub fn logs_page(&self) -> usize {
        self.areas()
            .logs
            .map_or(10, |r| r.height.saturating_sub(2) as usize)
            .max(1)
    }

    pub fn events_page(&self) -> usize {
        self.areas()
            .events
            .map_or(10, |r| r.height.saturating_sub(2) as usize)
            .max(1)
    }

    fn keep_cursor_visible(&mut self) {
        let page = self.table_page();
        if self.cursor < self.offset {
            self.offset = self.cursor;
        } else if self.cursor >= self.offset + page {
            self.offset = self.cursor + 1 - page;
        }
        self.offset = self.offset.min(self.rows.len().saturating_sub(page));
    }

    fn push_event(&mut self, row: EventRow) {
        self.events.push_back(row);
        if self.events_scroll > 0 {
            self.events_scroll += 1;
        }
        if self.events.len() > MAX_EVENTS {
            self.events.pop_front();
        }
        self.events_scroll = self.events_scroll.min(self.events.len().saturating_sub(1));
    }

    /// The instances whose logs the pane should show.
    fn wanted_logs(&self) -> Vec<String> {
        if self.link != Link::Connected {
            return self.log_names.clone();
        }
        if self.log_all {
            let shown: BTreeSet<usize> = self.rows.iter().copied().collect();
            return self
                .snapshot
                .processes
                .iter()
                .enumerate()
                .filter(|(i, _)| shown.contains(i))
                .map(|(_, p)| p.name.clone())
                .take(MAX_MERGED)
                .collect();
        }
        let name = match (self.screen, &self.detail, &self.tree) {
            (Screen::Tree, _, Some(tv)) => Some(tv.name.clone()),
            (Screen::Detail, Some(d), _) => Some(d.name.clone()),
            _ => self.selected.clone(),
        };
        name.into_iter().collect()
    }

    /// A new follow, if the instances to show changed.
    fn follow_logs(&mut self) -> Option<Cmd> {
        let names = self.wanted_logs();
        if names == self.log_names && self.log_generation > 0 {
            return None;
        }
        if names.is_empty() && self.log_names.is_empty() {
            return None;
        }
        self.log_generation += 1;
        self.logs.clear();
        self.log_names = names.clone();
        Some(Cmd::FollowLogs {
            generation: self.log_generation,
            names,
        })
    }

    /// The processes an action applies to: the marked ones, else the selected one (in
    /// the detail view, that process).
    pub fn targets(&self) -> Vec<String> {
        if self.screen == Screen::Tree {
            return self.tree.iter().map(|t| t.name.clone()).collect();
        }
        if self.screen == Screen::Detail {
            return self.detail.iter().map(|d| d.name.clone()).collect();
        }
        if !self.marked.is_empty() {
            return self
                .snapshot
                .processes
                .iter()
                .filter(|p| self.marked.contains(&p.name))
                .map(|p| p.name.clone())
                .collect();
        }
        self.selected.iter().cloned().collect()
    }

    /// `path` as shown: relative to the view's folder when it is inside it.
    pub fn display_path(&self, path: &str) -> String {
        let Some(cwd) = &self.cwd else {
            return path.to_string();
        };
        match std::path::Path::new(path).strip_prefix(cwd) {
            Ok(rel) if rel.as_os_str().is_empty() => ".".into(),
            Ok(rel) => rel.display().to_string(),
            Err(_) => path.to_string(),
        }
    }

    /// How long the supervisor has been gone, if it is.
    pub fn lost_for(&self) -> Option<Duration> {
        match &self.link {
            Link::Lost { since, .. } => Some(self.now.saturating_duration_since(*since)),
            _ => None,
        }
    }
}

/// `web`, `web and db`, `web, db and 3 more`.
pub fn names_phrase(names: &[String]) -> String {
    match names {
        [] => "nothing".into(),
        [one] => one.clone(),
        [a, b] => format!("{a} and {b}"),
        [a, b, rest @ ..] => format!("{a}, {b} and {} more", rest.len()),
    }
}

#[cfg(test)]
mod tests;
