//! Which processes the table shows, in which order: the name filter, the state filter
//! and the sort column. Rows are indices into the snapshot, recomputed only when the
//! snapshot, the filter or the sort changes (not per frame). Also which columns fit a
//! width, for the view that draws them and the mouse that clicks them.

use std::cmp::Ordering;

use crate::supervisor::State;
use crate::supervisor::status::{Health, ProcessStatus, Snapshot};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Column {
    Name,
    State,
    Pid,
    Uptime,
    Restarts,
    LastExit,
    Cpu,
    Mem,
    Health,
    Ready,
}

impl Column {
    pub const ALL: [Column; 10] = [
        Column::Name,
        Column::State,
        Column::Pid,
        Column::Uptime,
        Column::Restarts,
        Column::LastExit,
        Column::Cpu,
        Column::Mem,
        Column::Health,
        Column::Ready,
    ];

    pub fn title(self) -> &'static str {
        match self {
            Column::Name => "NAME",
            Column::State => "STATE",
            Column::Pid => "PID",
            Column::Uptime => "UPTIME",
            Column::Restarts => "RESTARTS",
            Column::LastExit => "LAST EXIT",
            Column::Cpu => "CPU",
            Column::Mem => "MEM",
            Column::Health => "HEALTH",
            Column::Ready => "READY",
        }
    }
}

/// `None` sorts in config order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Sort {
    pub column: Option<Column>,
    pub descending: bool,
}

impl Sort {
    /// Config order → NAME → STATE → … → READY → config order.
    pub fn next(self) -> Sort {
        let column = match self.column {
            None => Some(Column::ALL[0]),
            Some(c) => {
                let i = Column::ALL.iter().position(|x| *x == c).unwrap_or(0);
                Column::ALL.get(i + 1).copied()
            }
        };
        Sort {
            column,
            descending: self.descending,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StateFilter {
    #[default]
    All,
    /// fatal, backoff, unhealthy, or up but not ready.
    Problems,
    /// starting, running.
    Up,
    /// stopped, exited.
    Down,
}

impl StateFilter {
    pub fn next(self) -> StateFilter {
        match self {
            StateFilter::All => StateFilter::Problems,
            StateFilter::Problems => StateFilter::Up,
            StateFilter::Up => StateFilter::Down,
            StateFilter::Down => StateFilter::All,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            StateFilter::All => "all",
            StateFilter::Problems => "problems",
            StateFilter::Up => "running",
            StateFilter::Down => "stopped",
        }
    }

    pub fn keeps(self, p: &ProcessStatus) -> bool {
        match self {
            StateFilter::All => true,
            StateFilter::Problems => is_problem(p),
            StateFilter::Up => matches!(p.state, State::Starting | State::Running),
            StateFilter::Down => matches!(p.state, State::Stopped | State::Exited),
        }
    }
}

/// Something a person should look at.
pub fn is_problem(p: &ProcessStatus) -> bool {
    matches!(p.state, State::Fatal | State::Backoff)
        || p.health == Health::Unhealthy
        || (p.state == State::Running && !p.ready)
}

/// The indices of the processes to show, filtered and sorted.
pub fn rows(s: &Snapshot, name_filter: &str, state: StateFilter, sort: Sort) -> Vec<usize> {
    let needle = name_filter.to_lowercase();
    let mut rows: Vec<usize> = s
        .processes
        .iter()
        .enumerate()
        .filter(|(_, p)| needle.is_empty() || p.name.to_lowercase().contains(&needle))
        .filter(|(_, p)| state.keeps(p))
        .map(|(i, _)| i)
        .collect();
    if let Some(column) = sort.column {
        rows.sort_by(|&a, &b| {
            let (pa, pb) = (&s.processes[a], &s.processes[b]);
            let o = compare(column, pa, pb).then_with(|| a.cmp(&b));
            if sort.descending { o.reverse() } else { o }
        });
    } else if sort.descending {
        rows.reverse();
    }
    rows
}

fn compare(c: Column, a: &ProcessStatus, b: &ProcessStatus) -> Ordering {
    // Unknown values (None) sort after known ones.
    fn opt<T: PartialOrd>(a: Option<T>, b: Option<T>) -> Ordering {
        match (a, b) {
            (Some(x), Some(y)) => x.partial_cmp(&y).unwrap_or(Ordering::Equal),
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (None, None) => Ordering::Equal,
        }
    }
    match c {
        Column::Name => a.name.cmp(&b.name),
        Column::State => state_rank(a.state).cmp(&state_rank(b.state)),
        Column::Pid => opt(a.pid, b.pid),
        Column::Uptime => opt(a.uptime_ms, b.uptime_ms),
        Column::Restarts => a.restarts.cmp(&b.restarts),
        Column::LastExit => opt(
            a.last_exit.as_ref().map(|e| e.reason.as_str()),
            b.last_exit.as_ref().map(|e| e.reason.as_str()),
        ),
        Column::Cpu => opt(a.cpu_percent, b.cpu_percent),
        Column::Mem => opt(a.rss_bytes, b.rss_bytes),
        Column::Health => health_rank(a.health).cmp(&health_rank(b.health)),
        Column::Ready => b.ready.cmp(&a.ready),
    }
}

/// Problems first.
fn state_rank(s: State) -> u8 {
    match s {
        State::Fatal => 0,
        State::Backoff => 1,
        State::Stopping => 2,
        State::Starting => 3,
        State::Pending => 4,
        State::Running => 5,
        State::Exited => 6,
        State::Stopped => 7,
    }
}

fn health_rank(h: Health) -> u8 {
    match h {
        Health::Unhealthy => 0,
        Health::Unknown => 1,
        Health::Healthy => 2,
        Health::None => 3,
    }
}

/// The marker and glyph column.
pub const LEAD: u16 = 3;
const NAME_MIN: u16 = 8;
const NAME_MAX: u16 = 32;

/// Fixed width and priority (higher stays longer) of each column but the name.
fn spec(c: Column) -> (u16, u8) {
    match c {
        Column::Name => (NAME_MIN, 10),
        Column::State => (8, 9),
        Column::Pid => (7, 8),
        Column::Ready => (5, 7),
        Column::Uptime => (8, 6),
        Column::Health => (16, 5),
        Column::Restarts => (8, 4),
        Column::Cpu => (6, 3),
        Column::Mem => (8, 3),
        Column::LastExit => (18, 2),
    }
}

/// The columns that fit in `width` (the inside of the block), with their widths.
pub fn columns(width: u16) -> Vec<(Column, u16)> {
    let mut shown: Vec<Column> = Column::ALL.to_vec();
    let total =
        |cols: &[Column]| -> u16 { LEAD + cols.iter().map(|c| spec(*c).0 + 1).sum::<u16>() };
    while total(&shown) > width && shown.len() > 2 {
        let weakest = shown
            .iter()
            .enumerate()
            .min_by_key(|(i, c)| (spec(**c).1, std::cmp::Reverse(*i)))
            .map(|(i, _)| i)
            .unwrap_or(0);
        shown.remove(weakest);
    }
    let spare = width.saturating_sub(total(&shown));
    shown
        .into_iter()
        .map(|c| {
            let w = if c == Column::Name {
                (NAME_MIN + spare).min(NAME_MAX)
            } else {
                spec(c).0
            };
            (c, w)
        })
        .collect()
}

/// The column under `x` (relative to the inside of the block), for mouse clicks.
pub fn column_at(width: u16, x: u16) -> Option<Column> {
    let mut at = LEAD;
    for (c, w) in columns(width) {
        if x >= at && x < at + w + 1 {
            return Some(c);
        }
        at += w + 1;
    }
    None
}
