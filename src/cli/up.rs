//! `warden up`: run the supervisor in the foreground until Ctrl-C / SIGTERM: with the
//! dashboard when stdin and stdout are a terminal, else (or with `--no-tui`, as a
//! container's init, or as the daemon of `up --detach`) printing every process's output
//! with a `name │` prefix.

use std::io::IsTerminal;
use std::path::Path;

use crate::api::{self, Bound, Server};
use crate::logs::Tee;
use std::sync::Arc;

use crate::process::cgroup::Cgroups;
use crate::process::{Spawner, guard::Guard};
use crate::supervisor::{Actor, Options};

/// Exit code: 0 after a clean shutdown, 1 if the config is invalid or warden cannot start
/// (another warden already runs for this config, the socket cannot be bound, ...), and
/// otherwise what [`crate::supervisor::ShutdownReport::exit_code`] says. `init`: act as a
/// container's init even when not pid 1 (see `process::init`).
/// `daemon`: run as the background supervisor of `up --detach` (see `daemon.rs`): events
/// go to stdout with their time, the processes' output only to their log files.
pub fn run(config: &Path, no_tui: bool, socket: Option<&Path>, init: bool, daemon: bool) -> i32 {
    let init = init || crate::process::init::is_pid1();
    let (loaded, config_text) = crate::config::load_with_text(config);
    let spec = match loaded {
        Ok(s) => s,
        Err(errors) => {
            eprintln!("{errors}");
            return 1;
        }
    };
    // Claim the control socket first: a second `up` on the same config must refuse
    // before it starts anything, and the socket is bound under a umask that must not
    // leak into a thread or child (none exists yet).
    let path = api::socket_path(config, spec.supervisor.socket.as_deref(), socket);
    let bound = match Bound::claim(&path, spec.supervisor.control_fifo) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("warden: {e}");
            return 1;
        }
    };
    tracing::info!("control socket: {}", bound.socket().display());
    if let Some(fifo) = bound.fifo() {
        tracing::info!("control fifo: {}", fifo.display());
    }
    let config = spec.path.clone();
    // A container's init and a daemon print prefixed output or events, never a dashboard.
    let dashboard = !no_tui && !init && !daemon && crate::tui::usable();
    let mode = Mode {
        init,
        daemon,
        dashboard,
    };
    match start(spec, config_text, bound, &config, mode) {
        Ok(report) => report.exit_code(),
        Err(e) => {
            eprintln!("warden: {e:#}");
            1
        }
    }
}

/// `warden 0.1.0: 12 processes (14 instances), 1 check; config /srv/warden.toml; socket
/// /run/user/1000/warden/….sock`: what `up` says about itself before anything starts.
fn banner(spec: &crate::config::Spec, socket: &Path) -> String {
    let processes = spec.processes.len();
    let instances: u32 = spec.processes.values().map(|p| p.replicas.max(1)).sum();
    let plural =
        |n: usize, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
    let mut text = format!(
        "warden {}: {}",
        env!("CARGO_PKG_VERSION"),
        plural(processes, "process", "processes")
    );
    if instances as usize != processes {
        text.push_str(&format!(
            " ({})",
            plural(instances as usize, "instance", "instances")
        ));
    }
    if !spec.checks.is_empty() {
        text.push_str(&format!(
            ", {}",
            plural(spec.checks.len(), "check", "checks")
        ));
    }
    text.push_str(&format!(
        "; config {}; socket {}",
        spec.path.display(),
        socket.display()
    ));
    text
}

/// The longest instance name, for the terminal's name column: fixed from the start, so
/// that the column does not grow while the first lines print.
fn longest_name(spec: &crate::config::Spec) -> usize {
    spec.processes
        .values()
        .map(|p| {
            let base = p.name.chars().count();
            match p.replicas {
                0 | 1 => base,
                n => base + 1 + (n - 1).to_string().len(),
            }
        })
        .max()
        .unwrap_or(0)
}

/// How this `up` runs: as a container's init, as the daemon of `up --detach`, with the
/// dashboard (at most one of the last two).
#[derive(Debug, Clone, Copy)]
struct Mode {
    init: bool,
    daemon: bool,
    dashboard: bool,
}

fn start(
    spec: crate::config::Spec,
    config_text: Option<Vec<u8>>,
    bound: Bound,
    config: &Path,
    mode: Mode,
) -> anyhow::Result<crate::supervisor::ShutdownReport> {
    let Mode {
        init,
        daemon,
        dashboard,
    } = mode;
    use anyhow::Context;
    crate::process::become_subreaper().context("cannot become a child subreaper")?;
    limit_malloc_arenas();
    // Before any thread or child exists: children get the limit warden was started with.
    if let Err(e) = crate::process::limits::raise_nofile_limit() {
        tracing::warn!("cannot raise the descriptor limit: {e}");
    }
    let spawner = Spawner::start().context("cannot start the spawner threads")?;
    let registry = spawner.registry().clone();
    if !crate::process::proc_is_ours() {
        tracing::warn!(
            "/proc shows another pid namespace than warden's (mount one of this namespace, e.g. `unshare --mount-proc`): escaped descendants cannot be found, only process groups are stopped"
        );
    }
    let token = random_token();
    let cgroups = crate::process::cgroup::setup(spec.supervisor.cgroup, &token)
        .map_err(anyhow::Error::msg)?;
    let cgroup_status = cgroups.status();
    let cgroups = match cgroups {
        crate::process::cgroup::Setup::On(c) => Some(Arc::new(c)),
        crate::process::cgroup::Setup::Off(_) => None,
    };
    // Whatever goes wrong from here on, warden's cgroups must not stay behind.
    let teardown = Teardown(cgroups.clone(), Vec::new());
    let unenforced =
        crate::supervisor::unenforced_limits(&spec, cgroups.as_deref(), &cgroup_status);
    if spec.supervisor.cgroup == crate::config::CgroupMode::Required && !unenforced.is_empty() {
        anyhow::bail!(
            "`[supervisor] cgroup = \"required\"`, but {}",
            unenforced.join("; ")
        );
    }
    let exe = std::env::current_exe().context("cannot find warden's own executable")?;
    let guard_args = cgroups.as_ref().map(|c| c.guard_args()).unwrap_or_default();
    let guard = Guard::start(&spawner, &exe, &token, guard_args)
        .context("cannot start the guard process")?;
    let teardown = Teardown(teardown.take(), vec![guard.handle.pid().as_raw()]);
    // Without the dashboard, output goes to stdout, prefixed (the daemon logs events
    // instead); with it, warden's own messages go to a file while it draws. Formatting
    // every line of a flood for /dev/null would only take a core from the log files.
    let tee = (!dashboard && !daemon && !stdout_is_dev_null()).then(|| {
        let stdout = std::io::stdout();
        let color = super::use_color(stdout.is_terminal());
        let tee = Tee::spawn(Box::new(stdout), color);
        tee.set_width(longest_name(&spec));
        tee.message(&banner(&spec, bound.socket()));
        tee
    });
    let printer = tee.clone();
    let stderr_file = if dashboard {
        let path = spec.supervisor.log_dir.join("warden.log");
        Some(
            crate::tui::StderrToFile::new(&path)
                .with_context(|| format!("cannot send warden's messages to {}", path.display()))?,
        )
    } else {
        None
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let metrics_addr = spec.supervisor.metrics.clone();
    let result = runtime.block_on(async move {
        let metrics = match metrics_addr {
            Some(addr) => Some(
                tokio::net::TcpListener::bind(&addr)
                    .await
                    .with_context(|| format!("cannot serve metrics on `{addr}`"))?,
            ),
            None => None,
        };
        let (actor, handle) = Actor::new(
            spec,
            spawner,
            Options {
                tee,
                token,
                cgroups,
                cgroup_status,
                config_text,
                // As init, SIGHUP reloads, as it does for any warden without a terminal.
                hangup_stops: on_a_terminal() && !init,
                // The daemon's own event log is no one watching.
                quiet_followers: usize::from(daemon),
            },
        );
        for text in &unenforced {
            let _ = handle.control.send(crate::supervisor::Control::Notice {
                text: format!("warning: {text}"),
            });
        }
        let metrics = metrics.map(|l| tokio::spawn(crate::api::metrics::serve(l, handle.clone())));
        let event_log = daemon.then(|| {
            let cursor = handle.events.follow();
            tokio::spawn(super::daemon::log_events(handle.events.clone(), cursor))
        });
        let view = if dashboard {
            Some(
                crate::tui::Embedded::start(handle.clone(), config)
                    .context("cannot start the dashboard")?,
            )
        } else {
            None
        };
        let server =
            Server::start(bound, handle, config).context("cannot serve the control socket")?;
        // On a worker thread, beside the probers and readers that feed it: messages between
        // tasks of one worker need no cross-thread wake-up.
        let result = match tokio::spawn(actor.run()).await {
            Ok(r) => r,
            Err(e) => Err(std::io::Error::other(format!(
                "the supervisor task failed: {e}"
            ))),
        };
        if let Some(m) = metrics {
            m.abort();
        }
        // Stop taking requests and remove the socket before the last cleanup, so that a
        // `warden down` that returns means a new `warden up` can start.
        server.shutdown().await;
        guard.finish().await;
        if let Some(log) = event_log {
            let _ = tokio::time::timeout(std::time::Duration::from_secs(2), log).await;
        }
        // The dashboard leaves once the supervisor has finished; the terminal is the
        // user's again before anything more is printed.
        if let Some(view) = view {
            tokio::task::spawn_blocking(move || view.join()).await.ok();
        }
        // Every run is over and the guard is gone: warden's cgroups go now.
        drop(teardown);
        result.map_err(anyhow::Error::from)
    });
    // Log files get what was read before the end; a file that hangs is not waited for.
    let flushed = crate::logs::flush_all(FLUSH_LOGS);
    if let Some(f) = stderr_file {
        let path = f.path.clone();
        if f.finish() {
            eprintln!(
                "warden: its messages from this run are in {}",
                path.display()
            );
        }
    }
    let mut report = result?;
    if init {
        let deadline = report.deadline.unwrap_or_else(std::time::Instant::now);
        if crate::process::init::sweep(deadline, &registry) {
            report.timed_out = true;
        }
    }
    if let Some(printer) = printer {
        if !flushed {
            printer
                .message("some log files could not be written to the end (see the notices above)");
        }
        printer.message("everything has stopped; warden exits");
        printer.flush(std::time::Duration::from_secs(2));
    }
    Ok(report)
}

/// Removes warden's cgroups when dropped: after a clean shutdown, and on the error paths
/// of start-up (the guard covers warden's death).
struct Teardown(Option<Arc<Cgroups>>, Vec<i32>);

impl Teardown {
    fn take(mut self) -> Option<Arc<Cgroups>> {
        self.0.take()
    }
}

impl Drop for Teardown {
    fn drop(&mut self) {
        if let Some(c) = self.0.take() {
            c.teardown(&self.1);
        }
    }
}

/// How long the end of `up` waits for log files that are still taking data.
const FLUSH_LOGS: std::time::Duration = std::time::Duration::from_secs(10);

fn random_token() -> String {
    use std::io::Read;
    let mut bytes = [0u8; 8];
    if std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .is_err()
    {
        bytes = (std::process::id() as u64
            ^ std::time::UNIX_EPOCH
                .elapsed()
                .unwrap_or_default()
                .as_nanos() as u64)
            .to_le_bytes();
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// One malloc arena instead of one per thread (before any thread exists): warden's threads
/// allocate little and rarely at once, and every extra arena keeps its own free memory.
fn limit_malloc_arenas() {
    #[cfg(target_env = "gnu")]
    // SAFETY: mallopt only changes allocator settings; called before other threads start.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
}

/// Whether stdout is the null device (the same character device as `/dev/null`).
fn stdout_is_dev_null() -> bool {
    use nix::sys::stat::{SFlag, fstat, stat};
    let (Ok(out), Ok(null)) = (fstat(std::io::stdout()), stat("/dev/null")) else {
        return false;
    };
    let is_char = |mode| SFlag::from_bits_truncate(mode) & SFlag::S_IFMT == SFlag::S_IFCHR;
    is_char(out.st_mode) && is_char(null.st_mode) && out.st_rdev == null.st_rdev
}

/// Whether warden runs in the foreground of a terminal (any of stdin, stdout, stderr is
/// one): then SIGHUP means the terminal closed and stops everything; without one (a
/// service, `--detach`), SIGHUP asks for a reload.
fn on_a_terminal() -> bool {
    std::io::stdin().is_terminal()
        || std::io::stdout().is_terminal()
        || std::io::stderr().is_terminal()
}
