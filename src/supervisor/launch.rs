//! One run of one instance, from spawn to "nothing of it is left": what the actor starts
//! for an `Effect::Spawn`. It reports back only through messages tagged with the run
//! number, so the actor's loop never waits on a child.

use std::collections::HashMap;
use std::io;
use std::os::fd::OwnedFd;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::mpsc;

use super::core::{Input, Instance, InstanceId};
use crate::config::{CommandSpec, ProcessSpec};
use crate::facts::Generation;
use crate::logs::{LogSink, Stream};
use crate::probe::notify::NotifySocket;
use crate::process::cgroup::{Cgroups, HardLimits};
use crate::process::{self, Launch, RUN_ID_VAR, Run, Spawner};

/// How long output is still read after a run's tree is gone once nothing more comes (a
/// pipe may be held open by something outside the tree; we do not wait for that).
const DRAIN: Duration = Duration::from_millis(200);
/// The longest the drain goes on while output keeps waiting in the pipes (a slow disk,
/// a busy machine), before what is left is given up.
const DRAIN_MAX: Duration = Duration::from_secs(10);
/// How long after reporting its exit a run that ended on its own removes its cgroup:
/// time for a restart's spawn (a few milliseconds) to go first. It matters only for a
/// `backoff` below it (the default is 500 ms); a run that warden stops has its cgroup
/// removed before the stop returns.
const RELEASE_AFTER: Duration = Duration::from_millis(20);
/// How long a spawn waits for its log file to open. Past this the process starts
/// anyway and its output is dropped (and counted) until the file opens: a log path that
/// hangs (a FIFO nobody reads, a dead mount) must not keep a process from running.
const OPEN_WAIT: Duration = Duration::from_secs(1);

/// What run tasks send to the actor.
pub(super) enum Msg {
    Input(Input),
    /// Sent before `Input::Spawned`, so signals can reach the run.
    RunStarted {
        id: InstanceId,
        run_no: Generation,
        run: Run,
        /// The run's sd_notify socket, to tell whether messages are waiting in it.
        notify: Option<Arc<NotifySocket>>,
    },
    /// A warning for the user about an instance (its log file, ...).
    Notice {
        name: String,
        text: String,
    },
}

/// Everything a run needs, taken from the instance when the spawn was decided.
pub(super) struct RunPlan {
    id: InstanceId,
    name: String,
    run_no: Generation,
    spec: Arc<ProcessSpec>,
    env: process::Env,
    run_id: Arc<str>,
    /// Where the sd_notify socket goes, with `notify = true`.
    notify_path: Option<std::path::PathBuf>,
    /// `stdin_from` plumbing: this run's ends of the pipes warden holds.
    stdin: Option<OwnedFd>,
    stdout: Option<OwnedFd>,
}

impl RunPlan {
    /// Which run of which instance this is (for a test's fake launcher; the real one
    /// moves the whole plan into the run's task).
    #[cfg(test)]
    pub(super) fn run(&self) -> (InstanceId, Generation) {
        (self.id, self.run_no)
    }

    #[cfg(test)]
    pub(super) fn name(&self) -> &str {
        &self.name
    }

    pub(super) fn new(
        inst: &Instance,
        token: &str,
        runtime_dir: &Path,
        pipes: &Pipes,
    ) -> io::Result<RunPlan> {
        let run_no = inst.run_no;
        let run_id: Arc<str> = format!("{token}:{}:{run_no}", inst.name).into();
        let mut env = child_env(inst);
        env.set(RUN_ID_VAR, &*run_id);
        let notify_path = inst
            .spec
            .notify
            .then(|| runtime_dir.join(format!("n{}-{run_no}", inst.id.0)));
        if let Some(path) = &notify_path {
            env.set("NOTIFY_SOCKET", path.display().to_string());
            if let Some(wd) = inst.spec.watchdog {
                // WATCHDOG_PID is left out: the pid is not known before the fork, and
                // sd_watchdog_enabled() treats a missing WATCHDOG_PID as "for anyone".
                env.set("WATCHDOG_USEC", wd.as_micros().to_string());
            }
        }
        let stdin = pipes
            .reader_for(&inst.process)
            .map(|fd| fd.try_clone())
            .transpose()?;
        let stdout = pipes
            .writer_for(&inst.process)
            .map(|fd| fd.try_clone())
            .transpose()?;
        Ok(RunPlan {
            id: inst.id,
            name: inst.name.clone(),
            run_no,
            spec: inst.spec.clone(),
            env,
            run_id,
            notify_path,
            stdin,
            stdout,
        })
    }
}

/// The pipes of `stdin_from`: one per consumer process, created once and held open by
/// warden for its whole life, so that either end can restart without the other seeing
/// EOF or EPIPE, and what was written while the reader restarted waits in the pipe.
#[derive(Default)]
pub(super) struct Pipes {
    /// consumer process → (producer process, read end, write end)
    by_consumer: HashMap<String, (String, OwnedFd, OwnedFd)>,
}

/// A bigger pipe buffer absorbs a consumer's restart without blocking the producer.
const PIPE_SIZE: i32 = 1 << 20;

impl Pipes {
    /// Make sure every `stdin_from` of `spec` has its pipe.
    pub(super) fn ensure(&mut self, spec: &crate::config::Spec) -> io::Result<()> {
        for p in spec.processes.values() {
            let Some(producer) = &p.stdin_from else {
                continue;
            };
            if self
                .by_consumer
                .get(&p.name)
                .is_some_and(|(prod, _, _)| prod == producer)
            {
                continue;
            }
            let (read, write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
            // Best effort: the default 64 KiB still works, it just blocks sooner.
            let _ = nix::fcntl::fcntl(&write, nix::fcntl::FcntlArg::F_SETPIPE_SZ(PIPE_SIZE));
            self.by_consumer
                .insert(p.name.clone(), (producer.clone(), read, write));
        }
        Ok(())
    }

    fn reader_for(&self, consumer: &str) -> Option<&OwnedFd> {
        self.by_consumer.get(consumer).map(|(_, r, _)| r)
    }

    fn writer_for(&self, producer: &str) -> Option<&OwnedFd> {
        self.by_consumer
            .values()
            .find(|(p, _, _)| p == producer)
            .map(|(_, _, w)| w)
    }
}

/// The environment of the instance's processes: warden's, then `env` on top, then
/// warden's own variables (`WARDEN_RUN_ID` is added per run by [`RunPlan`]).
pub(super) fn child_env(inst: &Instance) -> process::Env {
    let spec = &inst.spec;
    let mut env = process::Env::inherited();
    env.remove(RUN_ID_VAR);
    // warden's own HOME, USER and LOGNAME are not the user's; the spawner adds the user's.
    if spec.user.is_some() {
        for k in process::LOGIN_VARS {
            env.remove(k);
        }
    }
    for (k, v) in &spec.env {
        env.set(k, v);
    }
    env.set("WARDEN_PROCESS", &inst.name);
    if let Some(r) = inst.replica {
        env.set("WARDEN_REPLICA", r.to_string());
    }
    env
}

/// Spawn, watch, and report one run.
///
/// The spawn's state (the plan, the spec, the spawner's request) lives in a box of its
/// own, freed once the child runs: the task that then waits for the run's whole life
/// (500 idle processes, 500 such tasks) holds only what watching needs: 640 bytes
/// instead of 1,280 in a release build. (An `async fn` would keep its arguments in the
/// task as well.)
pub(super) fn run(
    plan: RunPlan,
    spawner: Spawner,
    cgroups: Option<Arc<Cgroups>>,
    sink: Arc<LogSink>,
    tx: mpsc::UnboundedSender<Msg>,
) -> impl std::future::Future<Output = ()> + Send + 'static {
    let starting = Box::pin(start(plan, spawner, cgroups, sink.clone(), tx.clone()));
    async move {
        if let Some(started) = starting.await {
            watch(Box::new(started), &sink, &tx).await;
        }
    }
}

/// A run whose child runs, for [`watch`].
struct Started {
    id: InstanceId,
    run_no: Generation,
    run: Run,
    /// Both pipes' pumps, one task.
    pumps: Option<tokio::task::JoinHandle<()>>,
    notifications: Option<tokio::task::JoinHandle<()>>,
}

/// Spawn the run's child, or report why not (`None`).
async fn start(
    plan: RunPlan,
    spawner: Spawner,
    cgroups: Option<Arc<Cgroups>>,
    sink: Arc<LogSink>,
    tx: mpsc::UnboundedSender<Msg>,
) -> Option<Started> {
    let RunPlan {
        id,
        name,
        run_no,
        spec,
        env,
        run_id,
        notify_path,
        stdin,
        stdout,
    } = plan;
    let send = |input| {
        let _ = tx.send(Msg::Input(input));
    };
    // Running out of descriptors or memory is worth another try (`transient`).
    let failed = |error: String, transient: bool| {
        sink.marker(&format!("run {run_no} could not start: {error}"));
        send(Input::SpawnFailed {
            id,
            run_no,
            error,
            transient,
        })
    };
    let credentials = match resolve_credentials(&spec).await {
        Ok(c) => c,
        Err(error) => {
            failed(error, false);
            return None;
        }
    };
    if let Some(c) = &credentials {
        // The process must be able to read what it wrote, whatever warden's umask.
        sink.set_owner(c.uid, c.gid);
    }
    match sink.ensure_open(OPEN_WAIT).await {
        Ok(()) => {}
        Err(Some((why, errno))) => {
            // Out of descriptors (or memory): say which limit, and try again later.
            let (error, transient) = match errno.filter(|&e| crate::logs::is_transient(Some(e))) {
                Some(e) => {
                    let e = process::SpawnError::resource(
                        "cannot open its log file",
                        &std::io::Error::from_raw_os_error(e),
                    );
                    (e.message, true)
                }
                None => (format!("cannot open its log file: {why}"), false),
            };
            send(Input::SpawnFailed {
                id,
                run_no,
                error,
                transient,
            });
            return None;
        }
        Err(None) => {
            let text = format!(
                "log file `{}` is still not open after {}s (a FIFO nobody reads? a hung mount?): starting anyway; its output is dropped, and counted, until the file opens",
                sink.path().display(),
                OPEN_WAIT.as_secs()
            );
            let _ = tx.send(Msg::Notice {
                name: name.clone(),
                text,
            });
        }
    }
    let notify = match notify_path
        .map(|path| bind_notify(path, credentials.as_deref()))
        .transpose()
    {
        Ok(n) => n.map(Arc::new),
        Err(e) => {
            let error = format!("cannot create its sd_notify socket: {e}");
            let transient = crate::logs::is_transient(e.raw_os_error());
            send(Input::SpawnFailed {
                id,
                run_no,
                error,
                transient,
            });
            return None;
        }
    };
    let argv = match &spec.command {
        CommandSpec::Argv(a) => a.clone(),
        CommandSpec::Shell(s) => vec!["/bin/sh".into(), "-c".into(), s.clone()],
    };
    let cgroup = match cgroups.map(|c| c.create(&format!("{name}@{run_no}"), &hard_limits(&spec))) {
        None => None,
        Some(Ok(cg)) => Some(Arc::new(cg)),
        Some(Err(e)) => {
            let e = process::SpawnError::resource("cannot create its cgroup", &e);
            failed(e.message, e.transient);
            return None;
        }
    };
    let placement = match cgroup.as_ref().map(|cg| cg.placement()).transpose() {
        Ok(placement) => placement,
        Err(e) => {
            let _ = cgroup.as_ref().map(|cg| cg.remove());
            let e = process::SpawnError::resource("cannot open its cgroup", &e);
            failed(e.message, e.transient);
            return None;
        }
    };
    let launch = Launch {
        argv,
        cwd: spec.cwd.clone(),
        env,
        capture: true,
        die_with_warden: true,
        stdin,
        stdout,
        cgroup: placement,
        credentials: credentials.clone(),
        umask: spec.umask,
    };
    let spawned = match spawner.spawn(launch).await {
        Ok(s) => s,
        Err(e) => {
            let _ = cgroup.as_ref().map(|cg| cg.remove());
            failed(e.message, e.transient);
            return None;
        }
    };
    let pid = spawned.handle.pid().as_raw() as u32;
    let run = Run {
        handle: spawned.handle,
        run_id: run_id.clone(),
        registry: spawner.registry().clone(),
        cgroup,
        started: std::time::Instant::now(),
        credentials,
    };
    sink.marker(&format!("run {run_no} started, pid {pid}"));
    watch_lines(&sink, &spec, id, run_no, &tx);
    let pumps = crate::logs::spawn_pumps(spawned.stdout, spawned.stderr, sink.clone());
    let notifications = notify.clone().map(|socket| {
        tokio::spawn(relay_notifications(
            socket,
            id,
            run_no,
            pid,
            run_id,
            tx.clone(),
        ))
    });
    let _ = tx.send(Msg::RunStarted {
        id,
        run_no,
        run: run.clone(),
        notify,
    });
    send(Input::Spawned { id, run_no, pid });
    Some(Started {
        id,
        run_no,
        run,
        pumps,
        notifications,
    })
}

/// Wait for the run's end, drain its output, and report the exit.
async fn watch(mut started: Box<Started>, sink: &LogSink, tx: &mpsc::UnboundedSender<Msg>) {
    // A run spends its life here, in a small future; the end (sweeping, killing what is
    // left, reaping, draining) is boxed once it comes, so that its state is not part of
    // every idle run's task.
    let _ = started.run.handle.exited().await;
    let end = Box::pin(started.run.ended()).await;
    // A run that died on its own may be restarted at once: its empty cgroup is removed
    // after the exit is reported, so the restart does not wait for it (the next run's
    // cgroup has a name of its own). One that warden stopped goes first, so that a stop
    // that has returned has left nothing behind.
    let release_first = started.run.handle.stopping();
    if release_first {
        Box::pin(started.run.release(&end)).await;
    }
    if let Some(n) = &started.notifications {
        n.abort();
    }
    Box::pin(drain(&mut started.pumps, sink)).await;
    // An aborted pump did not get to flush a last line without a newline.
    sink.end_of_stream(Stream::Stdout);
    sink.end_of_stream(Stream::Stderr);
    sink.set_line_watch(None);
    let stderr_tail = sink.last_stderr(5);
    let _ = tx.send(Msg::Input(Input::Exited {
        id: started.id,
        run_no: started.run_no,
        status: end.status,
        stderr_tail,
        oom_kills: end.oom_kills,
        memory_peak: end.memory_peak,
    }));
    if !release_first {
        // Let the actor, woken by that message, decide and spawn the next run first: the
        // removal takes the kernel's cgroup lock, which the spawn into the new run's
        // cgroup takes too (and once more for each v1 hierarchy the run joins), and a
        // removal started at once ran on the core the spawner thread was woken onto.
        tokio::time::sleep(RELEASE_AFTER).await;
        Box::pin(started.run.release(&end)).await;
    }
}

/// The tree is gone, so what is in the pipes is all there will be, unless something
/// outside the tree holds them: drain while output is still waiting, give up once it has
/// stopped coming.
async fn drain(pumps: &mut Option<tokio::task::JoinHandle<()>>, sink: &LogSink) {
    let started = tokio::time::Instant::now();
    if let Some(p) = pumps {
        loop {
            let until = (tokio::time::Instant::now() + DRAIN).min(started + DRAIN_MAX);
            if tokio::time::timeout_at(until, &mut *p).await.is_ok() {
                break;
            }
            if !sink.output_pending() || started.elapsed() >= DRAIN_MAX {
                p.abort();
                let _ = p.await;
                break;
            }
        }
    }
}

/// The kernel's limits of a process, for its cgroup.
pub fn hard_limits(spec: &ProcessSpec) -> HardLimits {
    spec.limits
        .as_ref()
        .map(|l| HardLimits {
            memory_max: l.memory_max,
            cpu_max: l.cpu_max,
            pids_max: l.pids_max,
        })
        .unwrap_or_default()
}

/// `user` and `group`, looked up off the runtime's workers (NSS may be slow).
async fn resolve_credentials(
    spec: &ProcessSpec,
) -> Result<Option<Arc<process::Credentials>>, String> {
    if spec.user.is_none() && spec.group.is_none() {
        return Ok(None);
    }
    let (user, group) = (spec.user.clone(), spec.group.clone());
    tokio::task::spawn_blocking(move || {
        process::Credentials::resolve(user.as_deref(), group.as_deref())
    })
    .await
    .map_err(|e| format!("looking up the user failed: {e}"))?
    .map(|c| Some(Arc::new(c)))
}

/// The run's sd_notify socket, writable by the user the process runs as (the socket
/// checks each sender's credentials, so the file mode is not what keeps others out).
fn bind_notify(
    path: std::path::PathBuf,
    credentials: Option<&process::Credentials>,
) -> io::Result<NotifySocket> {
    let socket = NotifySocket::bind(path)?;
    if let Some(c) = credentials {
        std::os::unix::fs::chown(socket.path(), c.uid, Some(c.gid))?;
    }
    Ok(socket)
}

/// With `output.hung_on`, report the first matching line of this run.
fn watch_lines(
    sink: &LogSink,
    spec: &ProcessSpec,
    id: InstanceId,
    run_no: Generation,
    tx: &mpsc::UnboundedSender<Msg>,
) {
    let Some(pattern) = &spec.output.hung_on else {
        return sink.set_line_watch(None);
    };
    // The config loader compiled it already; a failure here cannot happen.
    let Ok(regex) = regex::bytes::Regex::new(pattern) else {
        return;
    };
    let fired = AtomicBool::new(false);
    let tx = tx.clone();
    sink.set_line_watch(Some(Box::new(move |line: &[u8]| {
        if regex.is_match(line) && !fired.swap(true, Ordering::Relaxed) {
            let line = crate::logs::display_text(line);
            let _ = tx.send(Msg::Input(Input::OutputMatched { id, run_no, line }));
        }
    })));
}

/// Pass sd_notify messages from this run's processes to the core; drop everyone else's.
async fn relay_notifications(
    socket: Arc<NotifySocket>,
    id: InstanceId,
    run_no: Generation,
    pid: u32,
    run_id: Arc<str>,
    tx: mpsc::UnboundedSender<Msg>,
) {
    loop {
        let Ok((sender, messages)) = socket.recv().await else {
            return;
        };
        if !sender.is_some_and(|s| s as u32 == pid || belongs_to_run(s, &run_id)) {
            let _ = tx.send(Msg::Input(Input::NotifyRefused { id, run_no, sender }));
            continue;
        }
        for message in messages {
            let _ = tx.send(Msg::Input(Input::Notify {
                id,
                run_no,
                message,
            }));
        }
    }
}

/// Whether `pid` carries this run's `WARDEN_RUN_ID` (a descendant of the main process).
fn belongs_to_run(pid: i32, run_id: &str) -> bool {
    let needle = format!("{RUN_ID_VAR}={run_id}");
    std::fs::read(format!("/proc/{pid}/environ"))
        .is_ok_and(|env| env.split(|&b| b == 0).any(|kv| kv == needle.as_bytes()))
}

/// The hard limits of the config that nothing here can enforce, one sentence each.
pub fn unenforced_limits(
    spec: &crate::config::Spec,
    cgroups: Option<&Cgroups>,
    status: &crate::process::cgroup::CgroupStatus,
) -> Vec<String> {
    let mut out = Vec::new();
    for p in spec.processes.values() {
        let limits = hard_limits(p);
        let keys = match cgroups {
            Some(c) => c.unenforced(&limits),
            None => [
                (limits.memory_max.is_some(), "memory_max"),
                (limits.cpu_max.is_some(), "cpu_max"),
                (limits.pids_max.is_some(), "pids_max"),
            ]
            .into_iter()
            .filter_map(|(set, key)| set.then_some(key))
            .collect(),
        };
        if !keys.is_empty() {
            let keys: Vec<String> = keys.iter().map(|k| format!("`{k}`")).collect();
            out.push(format!(
                "{} of `{}` cannot be enforced here: {}",
                keys.join(", "),
                p.name,
                status.detail
            ));
        }
    }
    out
}
