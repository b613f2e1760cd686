//! warden: a process supervisor and health monitor.
//!
//! # Layout
//!
//! - [`config`]: TOML → validated [`config::Spec`], with every error located.
//! - [`supervisor`]: one actor owning all process state; its decisions live in the pure
//!   [`supervisor::core`] (every timer's meaning too: backoff, stop and shutdown
//!   timeouts, the config reload's debounce), its loop in [`supervisor::actor`], which is
//!   handed its sources (signals, config changes) and what starts its runs (a launcher).
//! - [`facts`]: which run it is, how it ended, what it said over sd_notify, what it used
//!   lately: the facts mechanisms observe and the core decides on, in neutral ground
//!   between them.
//!
//! No module imports one that imports it back (a test reads the sources and fails on a
//! new cycle): `cli` and `tui` sit on `api`, which sits on `supervisor`, which sits on the
//! mechanisms (`process`, `logs`, `probe`, `monitor`) and on `facts`, `config`, `human`.
//! - [`human`]: how durations, sizes and exits read to people, written once for every
//!   layer (it imports nothing of warden).
//! - [`process`]: spawning in a new session (as another user if asked) and in a cgroup of
//!   the run's own where the host allows it, pidfd signalling, whole-tree kills, reaping,
//!   the descriptor limit, and the last stage of an init (pid 1).
//! - [`monitor`]: CPU and memory of each run's tree, sampled only while someone needs them.
//! - [`logs`]: the capture thread, line framing, rings, the log file writers (rotating
//!   files), the terminal tee; every queue bounded in bytes.
//! - [`probe`]: the probe kinds (tcp, udp, unix, http, exec), their scheduler, and the
//!   sd_notify socket; raw results only, verdicts are the core's.
//! - [`api`]: the control socket (protocol, server, client), the control FIFO and the
//!   metrics endpoint.
//! - [`cli`]: one file per subcommand; the client commands talk to [`api`]; `up
//!   --detach` re-executes warden as a daemon.
//! - [`tui`]: the dashboard (`up` on a terminal, `warden tui`): an observer like any
//!   client, its state and pure update apart from its drawing.
//!
//! # Theory of operation
//!
//! `warden up` loads the config, claims its control socket (refusing to start if another
//! warden holds it), makes itself a child subreaper, raises its descriptor limit (children
//! get the original), starts the spawner threads (every fork happens there, so the
//! parent-death signal stays armed) and a guard process (which kills everything warden
//! started if warden dies without cleaning up), then runs the actor. The actor feeds inputs (a spawn finished, a run ended, a timer fired, a user
//! asked) to `Core::handle`, which returns effects (spawn, signal, schedule, reply, emit).
//! Each run has a task that waits on its pidfd, kills what is left of its tree while the
//! leader is still an unreaped zombie, reaps it, drains its pipes (while output is still
//! waiting in them, up to a bound) and reports the exit, tagged with its run number so that
//! stale reports are dropped. The pipes themselves are read on a capture thread of their
//! own, and log files are written by writer threads: no child's output, and no log file
//! that hangs, can occupy the runtime the actor, the control server and the probes share.
//! Stop and kill signals go out from a signaller thread, in order.
//! Where warden may create cgroups, each run gets one before its child execs: a stop ends
//! with `cgroup.kill`, figures come from the cgroup's counters, and an OOM kill is named.
//! Probers, the sd_notify relay, output rules and resource samples feed the same loop as
//! inputs tagged with the run number (the actor samples only while there is a reason:
//! limits to enforce, someone watching, a status request, so an idle warden sleeps); file
//! watches (`watch`) feed it "these files changed". Time-driven decisions (backoff, stop
//! timeouts, schedules, the quiet period after file changes) are timers the core asks for
//! and gets back as inputs, so the core never reads a clock; so are the supervisor-wide
//! ones (the shutdown timeout's SIGKILL, the quiet period before reloading an edited
//! config file). A timer that fires late means
//! warden was stalled: what arrived meanwhile is read before any verdict (silence,
//! watchdog), and a probe that took far longer than its timeout is not counted. When the
//! actor has stopped everything, `up` says how it went in its exit code, and as a
//! container's init it also stops and reaps what nobody supervised. Beside the actor, the
//! control server ([`api`])
//! turns each client request into a `Control` message and forwards the reply, or streams
//! events and log lines back.
//!
//! Observers (the CLI, the metrics endpoint, the dashboard, tests) see one typed
//! contract: a [`supervisor::Snapshot`] (the status JSON), numbered
//! [`supervisor::Event`]s from a byte-bounded [`supervisor::EventLog`], and
//! subscriptions that start from a snapshot and continue with every later event. None
//! of it costs anything while nobody watches.

pub mod api;
pub mod cli;
pub mod config;
pub mod facts;
pub mod human;
pub mod logs;
pub mod monitor;
pub mod probe;
pub mod process;
pub mod supervisor;
pub mod tui;
