//! The command line: one file per subcommand. `main.rs` parses, this module acts.
//!
//! The client commands (`status`, `start`/`stop`/`restart`, `signal`, `logs`, `events`,
//! `reload`, `down`) talk to a running supervisor through [`crate::api::client`]; each
//! takes `-c FILE` (whose socket to use) and `--socket PATH`. A client that cannot reach
//! a supervisor prints one line and exits 1; usage errors exit 2 (clap).

pub mod action;
pub mod check;
pub mod daemon;
pub mod down;
pub mod events;
pub mod history;
pub mod logs;
pub mod reload;
pub mod scale;
pub mod shell;
pub mod signal;
pub mod status;
pub mod tree;
pub mod tui;
pub mod up;

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};

use crate::api::client::{self, ClientError, Connection, Target};
use crate::api::protocol::{Answer, Request};

#[derive(Debug, Parser)]
#[command(
    name = "warden",
    version,
    about = "A process supervisor and health monitor"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Cmd,
}

#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// Run the supervisor in the foreground (with the dashboard on a terminal).
    Up {
        /// The config file.
        #[arg(
            short = 'c',
            long = "config",
            value_name = "FILE",
            default_value = "warden.toml"
        )]
        config: PathBuf,
        /// Print every process's output with a `name │` prefix instead of the dashboard.
        #[arg(long)]
        no_tui: bool,
        /// Serve the control socket here (overrides WARDEN_SOCKET and the config).
        #[arg(long, value_name = "PATH")]
        socket: Option<PathBuf>,
        /// Act as a container's init even when not pid 1 (as pid 1 it always does): output
        /// prefixed on stdout, and at the end every process left over is stopped.
        #[arg(long)]
        init: bool,
        /// Run in the background: return once the supervisor answers (exit 0), or print
        /// why it could not start (exit 1); its messages go to `<log_dir>/warden.log`.
        #[arg(long, conflicts_with = "daemon")]
        detach: bool,
        /// The background supervisor that `--detach` starts.
        #[arg(long, hide = true)]
        daemon: bool,
    },
    /// Validate the config; print every error as `FILE:LINE:COL: message`.
    #[command(override_usage = "warden check [-c FILE]")]
    Check {
        /// The config file.
        #[arg(
            short = 'c',
            long = "config",
            value_name = "FILE",
            default_value = "warden.toml"
        )]
        config: PathBuf,
    },
    /// Show every process (a table, or the JSON report with --json).
    #[command(override_usage = "warden status [-c FILE] [--json] [NAME]...")]
    Status {
        #[command(flatten)]
        client: ClientArgs,
        /// Print the status report as JSON.
        #[arg(long)]
        json: bool,
        /// Only these processes or checks (`web` also shows `web.0`, `web.1`…); all if none.
        #[arg(value_name = "NAME")]
        names: Vec<String>,
    },
    /// Start processes (`all` = every one); returns once they are running and ready.
    #[command(override_usage = "warden start [-c FILE] [--timeout DURATION] NAME...")]
    Start {
        #[command(flatten)]
        client: ClientArgs,
        /// Processes (`web`, every replica), instances (`web.1`), or `all`.
        #[arg(required = true, value_name = "NAME")]
        names: Vec<String>,
        /// Give up waiting after this long (`30s`, `2m`); the action goes on regardless.
        #[arg(long, value_parser = crate::config::units::parse_duration)]
        timeout: Option<Duration>,
    },
    /// Stop processes (`all` = every one); returns once nothing of them is left.
    #[command(override_usage = "warden stop [-c FILE] [--timeout DURATION] NAME...")]
    Stop {
        #[command(flatten)]
        client: ClientArgs,
        /// Processes (`web`, every replica), instances (`web.1`), or `all`.
        #[arg(required = true, value_name = "NAME")]
        names: Vec<String>,
        /// Give up waiting after this long (`30s`, `2m`); the action goes on regardless.
        #[arg(long, value_parser = crate::config::units::parse_duration)]
        timeout: Option<Duration>,
    },
    /// Restart processes (`all` = every one); returns once the new runs are ready.
    #[command(override_usage = "warden restart [-c FILE] [--timeout DURATION] NAME...")]
    Restart {
        #[command(flatten)]
        client: ClientArgs,
        /// Processes (`web`, every replica), instances (`web.1`), or `all`.
        #[arg(required = true, value_name = "NAME")]
        names: Vec<String>,
        /// Give up waiting after this long (`30s`, `2m`); the action goes on regardless.
        #[arg(long, value_parser = crate::config::units::parse_duration)]
        timeout: Option<Duration>,
    },
    /// Change how many replicas of a process run (highest indices stop first); returns
    /// once the new ones are running and ready and the removed ones have stopped.
    Scale {
        #[command(flatten)]
        client: ClientArgs,
        /// A declared process (not an instance like `web.1`).
        name: String,
        /// How many replicas to run (at least 1).
        #[arg(value_name = "N")]
        replicas: u32,
        /// Give up waiting after this long (`30s`, `2m`); the action goes on regardless.
        #[arg(long, value_parser = crate::config::units::parse_duration)]
        timeout: Option<Duration>,
    },
    /// Send a signal (`HUP`, `SIGUSR1`, `9`) to a process's group.
    #[command(override_usage = "warden signal [-c FILE] NAME SIGNAL")]
    Signal {
        #[command(flatten)]
        client: ClientArgs,
        /// A process (every replica), an instance (`web.1`), or `all`.
        #[arg(value_name = "NAME")]
        name: String,
        /// A signal name (`HUP`, `SIGUSR1`) or number (`9`).
        #[arg(value_name = "SIGNAL", value_parser = crate::config::units::parse_signal)]
        signal: nix::sys::signal::Signal,
    },
    /// Print the last lines of processes' output (every process if none is named); -f follows.
    #[command(override_usage = "warden logs [-c FILE] [-n N] [-f] [NAME]...")]
    Logs {
        #[command(flatten)]
        client: ClientArgs,
        /// Processes (`web`, every replica) or instances (`web.1`); every process if none.
        #[arg(value_name = "NAME")]
        names: Vec<String>,
        /// How many lines, per process.
        #[arg(short = 'n', long = "lines", default_value_t = crate::api::protocol::DEFAULT_LOG_LINES)]
        lines: usize,
        /// Keep printing new lines until the supervisor stops.
        #[arg(short = 'f', long)]
        follow: bool,
    },
    /// Print events (state changes, exits, restarts, probes) as they happen.
    #[command(override_usage = "warden events [-c FILE] [--json] [--since SEQ]")]
    Events {
        #[command(flatten)]
        client: ClientArgs,
        /// One JSON object per event.
        #[arg(long)]
        json: bool,
        /// First the events after number SEQ that the supervisor still keeps (`0`: every
        /// one kept since start-up), then the new ones.
        #[arg(long, value_name = "SEQ")]
        since: Option<u64>,
    },
    /// Re-read the config and apply the difference.
    #[command(override_usage = "warden reload [-c FILE] [--dry-run]")]
    Reload {
        #[command(flatten)]
        client: ClientArgs,
        /// Print what would change, change nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Attach the dashboard to a running supervisor (`q` closes the view only).
    Tui {
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Stop every process and the supervisor.
    #[command(override_usage = "warden down [-c FILE]")]
    Down {
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Show the restart history: when each run ended, why, its exit code or signal, and
    /// the last lines it wrote to stderr.
    History {
        #[command(flatten)]
        client: ClientArgs,
        #[arg(required = true, value_name = "NAME")]
        names: Vec<String>,
        /// Print the history as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show every process of each instance's current run as a tree (leader first, each
    /// child under its parent), with its own CPU and memory.
    #[command(override_usage = "warden tree [-c FILE] [--json] [NAME]...")]
    Tree {
        #[command(flatten)]
        client: ClientArgs,
        /// Processes (`web`, every replica) or instances (`web.1`); every one if none.
        #[arg(value_name = "NAME")]
        names: Vec<String>,
        /// Print the trees as JSON, as the supervisor sends them.
        #[arg(long)]
        json: bool,
    },
    /// Print a shell completion script (`warden completions bash > /etc/bash_completion.d/warden`).
    Completions {
        #[arg(value_name = "SHELL")]
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff), or write one page per command into a folder.
    #[command(hide = true)]
    Manpage {
        /// Write `warden.1` and `warden-COMMAND.1` here instead of printing `warden.1`.
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
}

/// How a client command finds the supervisor.
#[derive(Debug, Clone, clap::Args)]
pub struct ClientArgs {
    /// The supervisor's config file: its control socket is derived from it.
    #[arg(
        short = 'c',
        long = "config",
        value_name = "FILE",
        default_value = "warden.toml"
    )]
    pub config: PathBuf,
    /// The control socket (overrides WARDEN_SOCKET and the config).
    #[arg(long, value_name = "PATH")]
    pub socket: Option<PathBuf>,
}

/// How long a client waits for an answer that needs no waiting on processes.
pub(crate) const ANSWER_TIMEOUT: Duration = Duration::from_secs(30);

impl ClientArgs {
    /// Connect, or print why not.
    pub(crate) fn connect(&self) -> Result<Connection, i32> {
        let target = Target::new(&self.config, self.socket.as_deref());
        client::connect(&target).map_err(fail)
    }

    /// Connect, send `request` and read its one answer (waiting at most `limit` for it).
    /// Any failure is printed (`warden: ...`, the supervisor's reasons one per line) and
    /// becomes exit code 1.
    pub(crate) fn call(&self, request: &Request, limit: Option<Duration>) -> Result<Answer, i32> {
        let mut conn = self.connect()?;
        // A socket cannot wait 0s (that means "forever" to it): `--timeout 0s` gives up
        // as soon as it can, like any timeout that has run out.
        conn.set_timeout(limit.map(|l| l.max(Duration::from_millis(1))))
            .map_err(fail)?;
        let answer = conn.call(request).map_err(|e| match (&e, limit) {
            (ClientError::Io(io), Some(limit))
                if matches!(
                    io.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                eprintln!(
                    "warden: no answer within {}; the action goes on (see `warden status`)",
                    humantime::format_duration(limit)
                );
                1
            }
            _ => fail(e),
        })?;
        match answer {
            Ok(answer) => Ok(answer),
            Err(reason) => {
                for line in reason.lines() {
                    eprintln!("warden: {line}");
                }
                Err(1)
            }
        }
    }
}

/// Print a client error as one line; exit code 1.
pub(crate) fn fail(e: ClientError) -> i32 {
    eprintln!("warden: {e}");
    1
}

/// Write `text` and a newline to stdout. False once stdout is gone (`| head`): the
/// command should stop quietly.
pub(crate) fn out(text: &str) -> bool {
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{text}")
        .and_then(|()| stdout.flush())
        .is_ok()
}

/// Whether to colour output written to a stream that is `is_terminal`.
pub fn use_color(is_terminal: bool) -> bool {
    is_terminal && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// ANSI colours for the client commands' output, or none.
#[derive(Debug, Clone, Copy)]
pub struct Paint(pub bool);

impl Paint {
    pub const GREEN: &str = "32";
    pub const YELLOW: &str = "33";
    pub const RED: &str = "31";
    pub const DIM: &str = "2";
    pub const BOLD: &str = "1";

    /// For stdout.
    pub fn stdout() -> Paint {
        use std::io::IsTerminal;
        Paint(use_color(std::io::stdout().is_terminal()))
    }

    pub fn paint(self, text: &str, code: Option<&str>) -> String {
        match code {
            Some(code) if self.0 => format!("\x1b[{code}m{text}\x1b[0m"),
            _ => text.to_string(),
        }
    }
}
