//! What the actor's users hold and send: the [`Handle`] and its [`Control`] messages,
//! the process-wide signals as [`Sig`]s and the other [`Sources`] it hears, and the
//! [`Options`] it starts with. Types only; the loop that answers them is `mod.rs`.

use super::*;

/// The process-wide signals the actor acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sig {
    /// SIGINT: Ctrl-C.
    Interrupt,
    /// SIGTERM.
    Terminate,
    /// SIGCHLD: an orphan may be waiting to be reaped.
    Child,
    /// SIGHUP: reload, or stop everything if the terminal closed (`hangup_stops`).
    Hangup,
}

/// What the actor hears from outside, besides requests: [`Actor::run`] connects the real
/// sources, a test its own channels.
pub struct Sources {
    pub signals: mpsc::UnboundedReceiver<Sig>,
    /// "The config file may have changed" (its watch fired).
    pub config_changes: mpsc::UnboundedReceiver<()>,
}

/// Requests from observers (CLI, dashboard, tests). Replies come once the action has
/// taken effect.
///
/// Names are `all`, a declared process (every replica) or an instance (`web.1`). An
/// unknown name fails the whole request before anything is done.
pub enum Control {
    /// Reply once every target is running and ready (Ok) or has failed to be (Err).
    Start {
        names: Vec<String>,
        reply: oneshot::Sender<Result<String, String>>,
    },
    /// Reply once nothing of any target is left alive.
    Stop {
        names: Vec<String>,
        reply: oneshot::Sender<Result<String, String>>,
    },
    /// Stop, then start; replies like `Start`, about the new run.
    Restart {
        names: Vec<String>,
        reply: oneshot::Sender<Result<String, String>>,
    },
    /// Run `replicas` instances of a declared process; reply once the new ones are
    /// running and ready and the removed ones are gone.
    Scale {
        process: String,
        replicas: u32,
        reply: oneshot::Sender<Result<String, String>>,
    },
    /// Send a signal to the process group of each running target.
    Signal {
        names: Vec<String>,
        signal: Signal,
        reply: oneshot::Sender<Result<String, String>>,
    },
    Status {
        reply: oneshot::Sender<Snapshot>,
    },
    /// A snapshot and every later event (SPEC §6); with `refresh`, fresher snapshots
    /// too, while anything changes, at most every [`snapshot_every`] of them.
    /// With `since`, the subscription also carries the kept events after that number
    /// that the snapshot already includes (a view's history).
    Subscribe {
        refresh: bool,
        since: Option<u64>,
        reply: oneshot::Sender<Subscription>,
    },
    /// How one instance is run (command, cwd, masked environment), for a detail view.
    Describe {
        name: String,
        reply: oneshot::Sender<Result<Description, String>>,
    },
    /// A status report for `/metrics`, which also keeps the sampling going for a while.
    Metrics {
        reply: oneshot::Sender<Snapshot>,
    },
    /// Every process of each named instance's tree, with its own figures (pid order is
    /// the tree walk's; the leader first).
    Tree {
        names: Vec<String>,
        reply: oneshot::Sender<Result<Vec<NamedTree>, String>>,
    },
    /// An observer started following the events: a nudge, so the actor starts sampling.
    Watched,
    /// The log sinks of the named targets (in-memory ring and live subscription), in
    /// instance order, for `logs` and `logs -f`.
    Logs {
        names: Vec<String>,
        reply: oneshot::Sender<Result<Vec<NamedSink>, String>>,
    },
    /// Re-read the config file and apply the difference (or only describe it). An invalid
    /// config is an `Err` with every error, one per line, and changes nothing.
    Reload {
        dry_run: bool,
        reply: oneshot::Sender<Result<ReloadPlan, String>>,
    },
    /// The restart history of the named targets, in instance order.
    History {
        names: Vec<String>,
        reply: oneshot::Sender<Result<HistoryReport, String>>,
    },
    /// A line for `up`'s terminal and the event stream (from the control FIFO).
    Notice {
        text: String,
    },
    /// Stop everything (reverse dependency order) and exit. `reply` fires once everything
    /// has stopped, just before the supervisor returns.
    Shutdown {
        reply: Option<oneshot::Sender<()>>,
    },
}

/// An instance name and its log sink.
pub type NamedSink = (String, Arc<LogSink>);

/// An instance name and the processes of its tree.
pub type NamedTree = (String, Vec<Figures>);

/// What `warden history` shows: the exits of each instance asked for, oldest first.
#[derive(Debug, Clone, serde::Serialize)]
pub struct HistoryReport {
    pub processes: Vec<InstanceHistory>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct InstanceHistory {
    pub name: String,
    pub history: Vec<crate::supervisor::event::ExitRecord>,
}

/// What observers hold: a way to send requests and to follow events. A snapshot and
/// the events after it come from [`Control::Subscribe`].
#[derive(Clone)]
pub struct Handle {
    pub control: mpsc::UnboundedSender<Control>,
    pub events: Arc<EventLog>,
}

impl Handle {
    /// Follow the events from now on. A follower is a reason to sample (the actor asks
    /// the log whether anyone follows), so the actor is nudged to look again.
    pub fn follow(&self) -> EventCursor {
        self.follow_since(u64::MAX)
    }

    /// Follow the events after `seq`, starting with those still kept (0: every kept
    /// event); like [`Handle::follow`] otherwise.
    pub fn follow_since(&self, seq: u64) -> EventCursor {
        let cursor = self.events.follow_since(seq);
        let _ = self.control.send(Control::Watched);
        cursor
    }
}

pub struct Options {
    /// Print child output and notices on the terminal (`up --no-tui`).
    pub tee: Option<Tee>,
    /// Random per-supervisor token: the prefix of every child's `WARDEN_RUN_ID`.
    pub token: String,
    /// warden's cgroup subtree, when each run gets a cgroup.
    pub cgroups: Option<Arc<Cgroups>>,
    /// What status says about cgroups.
    pub cgroup_status: CgroupStatus,
    /// The config text the spec was loaded from, to notice when the file differs.
    pub config_text: Option<Vec<u8>>,
    /// SIGHUP stops everything, as Ctrl-C does (a foreground `up` whose terminal
    /// closed), instead of reloading.
    pub hangup_stops: bool,
    /// Followers of the events that are warden's own (the daemon's event log), not
    /// observers: they are no reason to sample.
    pub quiet_followers: usize,
}
