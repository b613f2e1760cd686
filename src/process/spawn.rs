//! Spawning children: a few long-lived threads do every fork, so that the parent-death
//! signal armed in each child stays tied to a thread that lives as long as warden.
//!
//! `PR_SET_PDEATHSIG` fires when the *thread* that forked the child exits, so forking
//! from tokio's blocking pool (whose threads come and go) would kill children at random.
//! A spawner thread is suspended from its clone until the child has exec'd, so there is
//! one per core (up to [`MAX_THREADS`]): a start-up of hundreds execs on every core. Each
//! holds the [`Registry`]'s forking lock (shared) across fork + registration, so the
//! orphan reaper (which takes it exclusively) can never mistake a just-forked child for
//! an adopted orphan.
//!
//! This file resolves the program (so that "not found" names the right file), sets up
//! stdio and explains failures; the clone and the child's side are in `fork.rs`.

use std::io;
use std::os::fd::AsRawFd;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex, mpsc};

use nix::unistd::Pid;
use tokio::sync::oneshot;

use super::child::ChildHandle;
use super::credentials::Credentials;
use super::env::Env;
use super::fork;
use super::registry::Registry;

/// What to run. Built by the supervisor from a validated spec.
#[derive(Debug)]
pub struct Launch {
    /// argv; `argv[0]` is resolved against `PATH` (from `env`) before forking.
    pub argv: Vec<String>,
    pub cwd: PathBuf,
    /// The complete environment of the child (nothing else is inherited).
    pub env: Env,
    /// Capture stdout/stderr through pipes (false: both go to `/dev/null`).
    pub capture: bool,
    /// Arm `PR_SET_PDEATHSIG` (false only for the guard, which must outlive warden).
    pub die_with_warden: bool,
    /// The read end of a pipe to use as stdin; `None` = `/dev/null`.
    pub stdin: Option<OwnedFd>,
    /// With `capture`: a descriptor to use as stdout instead of a captured pipe (the write
    /// end of a `stdin_from` pipe). stderr is still captured.
    pub stdout: Option<OwnedFd>,
    /// The run's cgroups: the child is born in its v2 cgroup (or joins it, and its v1
    /// cgroups, before it execs).
    pub cgroup: Option<super::cgroup::Placement>,
    /// Switch to this identity before `execve`; its `HOME`, `USER` and `LOGNAME` are
    /// added to `env` where `env` does not have them.
    pub credentials: Option<Arc<Credentials>>,
    /// The child's umask; `None` = warden's.
    pub umask: Option<u32>,
}

#[cfg(test)]
impl Launch {
    /// What the unit tests spawn: `argv` in `/` with a minimal `PATH`, output to
    /// `/dev/null`, in `cgroup`.
    pub(crate) fn plain(argv: &[&str], cgroup: Option<super::cgroup::Placement>) -> Launch {
        Launch {
            argv: argv.iter().map(|a| a.to_string()).collect(),
            cwd: "/".into(),
            env: Env::from(vec![("PATH".into(), "/usr/bin:/bin".into())]),
            capture: false,
            die_with_warden: true,
            stdin: None,
            stdout: None,
            cgroup,
            credentials: None,
            umask: None,
        }
    }
}

/// A started child with its pipes.
#[derive(Debug)]
pub struct Spawned {
    pub handle: Arc<ChildHandle>,
    pub stdout: Option<OwnedFd>,
    pub stderr: Option<OwnedFd>,
}

/// Why a command could not be started, phrased for the user.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct SpawnError {
    pub message: String,
    /// warden ran out of something (descriptors, processes, memory): trying again later
    /// may work, and the command itself is not at fault.
    pub transient: bool,
}

impl SpawnError {
    pub fn new(message: impl Into<String>) -> SpawnError {
        SpawnError {
            message: message.into(),
            transient: false,
        }
    }

    /// `what` failed with `e`, said in terms of the resource that ran out when it is one.
    pub fn resource(what: &str, e: &io::Error) -> SpawnError {
        let errno = e.raw_os_error();
        let why = match errno {
            Some(libc::EMFILE) => format!(
                "too many open files: warden's limit of {} descriptors (RLIMIT_NOFILE) is reached",
                super::limits::nofile_soft()
            ),
            Some(libc::ENFILE) => {
                "too many open files in the system: the kernel's limit (fs.file-max) is reached"
                    .into()
            }
            Some(libc::EAGAIN) => "the limit on processes is reached (RLIMIT_NPROC, a cgroup's pids.max, or kernel.threads-max)".into(),
            Some(libc::ENOMEM) => "out of memory".into(),
            _ => describe_errno(e),
        };
        SpawnError {
            message: format!("{what}: {why}"),
            transient: matches!(
                errno,
                Some(libc::EMFILE | libc::ENFILE | libc::EAGAIN | libc::ENOMEM | libc::ETXTBSY)
            ),
        }
    }
}

type Job = (Launch, oneshot::Sender<Result<Spawned, SpawnError>>);

/// The most spawner threads: beyond a few, starts wait for the kernel (`execve`, the
/// cgroups), not for a thread.
const MAX_THREADS: usize = 4;

/// Handle to the spawner threads. Cheap to clone.
#[derive(Clone)]
pub struct Spawner {
    tx: mpsc::Sender<Job>,
    registry: Arc<Registry>,
}

impl Spawner {
    /// Start the spawner threads, one per core up to [`MAX_THREADS`]: a clone waits
    /// for its child's `execve`, so one thread forks one child at a time, and 500 starts
    /// go as fast as the cores exec them. Fails only if not even one can be started.
    /// They live until every `Spawner` clone is dropped.
    pub fn start() -> io::Result<Spawner> {
        let registry = Arc::new(Registry::default());
        let (tx, rx) = mpsc::channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        let wanted = std::thread::available_parallelism().map_or(1, |n| n.get().min(MAX_THREADS));
        let (ready_tx, ready) = mpsc::channel();
        let mut started = 0;
        for _ in 0..wanted {
            let (reg, rx, ready_tx) = (registry.clone(), rx.clone(), ready_tx.clone());
            let thread = std::thread::Builder::new()
                .name("warden-spawner".into())
                .spawn(move || serve(&reg, &rx, ready_tx));
            match thread {
                Ok(_) => started += 1,
                Err(e) if started == 0 => return Err(e),
                Err(e) => {
                    tracing::warn!(
                        "cannot start more than {started} spawner threads ({e}): starts take longer"
                    );
                    break;
                }
            }
        }
        // Each thread's slots are reserved before warden opens anything else, so their
        // numbers (and the part of the table each child keeps) stay small. (A thread that
        // died first drops its sender: the wait ends with it.)
        drop(ready_tx);
        for _ in 0..started {
            let _ = ready.recv();
        }
        Ok(Spawner { tx, registry })
    }

    pub fn registry(&self) -> &Arc<Registry> {
        &self.registry
    }

    /// Fork and exec `launch` on a spawner thread.
    pub async fn spawn(&self, launch: Launch) -> Result<Spawned, SpawnError> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send((launch, tx))
            .map_err(|_| SpawnError::new("the spawner threads are gone"))?;
        rx.await
            .map_err(|_| SpawnError::new("the spawner threads are gone"))?
    }

    /// Blocking variant for callers outside the runtime (the guard at startup).
    pub fn spawn_blocking(&self, launch: Launch) -> Result<Spawned, SpawnError> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send((launch, tx))
            .map_err(|_| SpawnError::new("the spawner threads are gone"))?;
        rx.blocking_recv()
            .map_err(|_| SpawnError::new("the spawner threads are gone"))?
    }
}

/// A spawner thread: reserve its slots, say so, then fork each job it takes until the
/// queue closes.
fn serve(registry: &Registry, jobs: &Mutex<mpsc::Receiver<Job>>, ready: mpsc::Sender<()>) {
    fork::reserve_slots();
    let _ = ready.send(());
    loop {
        // One thread waits for the next job, the others for the lock, which is let go
        // before the spawn.
        let job = jobs.lock().unwrap_or_else(|e| e.into_inner()).recv();
        let Ok((launch, reply)) = job else { break };
        // A panic must not end the thread: its children's parent-death signal would kill
        // them.
        let spawned = std::panic::catch_unwind(AssertUnwindSafe(|| spawn_now(registry, launch)))
            .unwrap_or_else(|_| {
                Err(SpawnError::new(
                    "the spawner failed (a bug in warden; see its log)",
                ))
            });
        let _ = reply.send(spawned);
    }
}

fn spawn_now(registry: &Registry, mut launch: Launch) -> Result<Spawned, SpawnError> {
    let identity = launch.credentials.as_deref().map(|c| {
        for (k, v) in &c.env {
            launch.env.set_default(k, v);
        }
        fork::Identity {
            uid: c.uid.unwrap_or(libc::uid_t::MAX),
            gid: c.gid,
            groups: c.groups.clone(),
        }
    });
    // Asking for the identity warden already has needs no switch (and, without root, no
    // `setgroups` would be allowed anyway).
    let identity = identity.filter(|id| {
        let euid = nix::unistd::geteuid().as_raw();
        euid == 0
            || !(matches!(id.uid, u if u == libc::uid_t::MAX || u == euid)
                && id.gid == nix::unistd::getegid().as_raw())
    });
    let path = launch.env.get("PATH");
    check_cwd(&launch.cwd)?;
    let program = resolve_program(&launch.argv[0], &launch.cwd, path)?;
    let io_error = |what: &str, e: io::Error| SpawnError::resource(&format!("cannot {what}"), &e);

    // The parent's ends stay here; the child's ends are dup'ed onto 0, 1, 2 by the child
    // and closed here once it has exec'd.
    let null = |write: bool| {
        std::fs::OpenOptions::new()
            .read(!write)
            .write(write)
            .open("/dev/null")
            .map(OwnedFd::from)
    };
    let stdin = match launch.stdin {
        Some(fd) => fd,
        None => null(false).map_err(|e| io_error("open /dev/null", e))?,
    };
    let (mut stdout_read, mut stderr_read) = (None, None);
    let (stdout, stderr) = if launch.capture {
        let out = match launch.stdout {
            Some(fd) => fd,
            None => {
                let (r, w) = pipe().map_err(|e| io_error("create a pipe", e))?;
                stdout_read = Some(r);
                w
            }
        };
        let (r, w) = pipe().map_err(|e| io_error("create a pipe", e))?;
        stderr_read = Some(r);
        (out, w)
    } else {
        let n = null(true).map_err(|e| io_error("open /dev/null", e))?;
        (
            n.try_clone()
                .map_err(|e| io_error("duplicate a descriptor", e))?,
            n,
        )
    };
    let lift = |fd| fork::above_stdio(fd).map_err(|e| io_error("move a descriptor", e));
    let (stdin, stdout, stderr) = (lift(stdin)?, lift(stdout)?, lift(stderr)?);
    let prepared = fork::Prepared::new(
        &program,
        &launch.argv,
        &launch.env,
        &launch.cwd,
        [stdin.as_raw_fd(), stdout.as_raw_fd(), stderr.as_raw_fd()],
        launch.die_with_warden,
        fork::Become {
            identity,
            umask: launch.umask,
            cgroup: launch.cgroup.as_ref().map(|c| c.dir.as_raw_fd()),
            v1_tasks: launch
                .cgroup
                .iter()
                .flat_map(|c| &c.v1_tasks)
                .map(AsRawFd::as_raw_fd)
                .collect(),
        },
    )
    .map_err(|e| SpawnError::new(format!("command `{}`: {e}", launch.argv[0])))?;

    let forking = registry.forking();
    let forked = fork::spawn(&prepared, fork::Via::Best, fork::Table::Shared).map_err(
        |(step, e)| match step {
            Some(fork::Step::Exec) => explain_exec_error(&launch.argv[0], &program, e),
            Some(fork::Step::Cgroup) => SpawnError::resource(
                &format!("cannot place `{}` in its cgroup", launch.argv[0]),
                &e,
            ),
            Some(fork::Step::Setgroups | fork::Step::Setgid | fork::Step::Setuid) => {
                let who = launch
                    .credentials
                    .as_ref()
                    .map_or("another user".to_string(), |c| c.described.clone());
                let why = match e.raw_os_error() {
                    Some(libc::EPERM) => "operation not permitted (warden is not root)".to_string(),
                    _ => e.to_string(),
                };
                SpawnError::new(format!("cannot run `{}` as {who}: {why}", launch.argv[0]))
            }
            Some(fork::Step::Chdir) => SpawnError::new(format!(
                "working directory `{}` cannot be used by {}: {}",
                launch.cwd.display(),
                launch
                    .credentials
                    .as_ref()
                    .map_or("the process".to_string(), |c| c.described.clone()),
                describe_errno(&e)
            )),
            Some(step) => SpawnError::resource(
                &format!("cannot prepare `{}` ({step:?})", launch.argv[0]),
                &e,
            ),
            // clone() takes a process slot, and a descriptor for the pidfd.
            None => SpawnError::resource("cannot create the process: clone() failed", &e),
        },
    )?;
    registry.register(forked.pid);
    drop(forking);
    Ok(Spawned {
        handle: Arc::new(ChildHandle::from_pidfd(
            Pid::from_raw(forked.pid),
            forked.pidfd,
        )),
        stdout: stdout_read,
        stderr: stderr_read,
    })
}

fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    Ok(nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?)
}

fn check_cwd(cwd: &Path) -> Result<(), SpawnError> {
    match std::fs::metadata(cwd) {
        Ok(m) if m.is_dir() => Ok(()),
        Ok(_) => Err(SpawnError::new(format!(
            "working directory `{}` is not a directory",
            cwd.display()
        ))),
        Err(e) => Err(SpawnError::new(format!(
            "working directory `{}` cannot be used: {}",
            cwd.display(),
            describe_errno(&e)
        ))),
    }
}

/// Resolve `program` like `execvp` would, so that "not found" names the right thing.
fn resolve_program(program: &str, cwd: &Path, path: Option<&str>) -> Result<PathBuf, SpawnError> {
    if program.contains('/') {
        let p = cwd.join(program);
        return match std::fs::metadata(&p) {
            Ok(_) => Ok(p),
            Err(e) => Err(SpawnError::new(format!(
                "command `{program}` cannot be run: {}",
                describe_errno(&e)
            ))),
        };
    }
    let search = path.unwrap_or("/usr/local/bin:/usr/bin:/bin");
    let mut denied = None;
    for dir in search.split(':').filter(|d| !d.is_empty()) {
        let candidate = cwd.join(dir).join(program);
        if let Ok(meta) = std::fs::metadata(&candidate) {
            use std::os::unix::fs::PermissionsExt;
            if meta.is_file() && meta.permissions().mode() & 0o111 != 0 {
                return Ok(candidate);
            }
            denied.get_or_insert(candidate);
        }
    }
    match denied {
        Some(p) => Err(SpawnError::new(format!(
            "command `{program}` found at `{}` but it is not an executable file",
            p.display()
        ))),
        None => Err(SpawnError::new(format!(
            "command `{program}` not found in PATH (`{search}`)"
        ))),
    }
}

fn explain_exec_error(name: &str, program: &Path, e: io::Error) -> SpawnError {
    let shown = program.display();
    let why = match e.raw_os_error() {
        // The file exists (we resolved it), so ENOENT means its `#!` interpreter is missing.
        Some(libc::ENOENT) => match read_shebang(program) {
            Some(interp) => {
                format!("interpreter `{interp}` named in the `#!` line of `{shown}` was not found")
            }
            None => format!("`{shown}` cannot be executed: a file it needs was not found"),
        },
        Some(libc::EACCES) => format!("`{shown}` is not executable (permission denied)"),
        Some(libc::ENOEXEC) => {
            format!("`{shown}` is not a binary and has no `#!` line saying how to run it")
        }
        Some(libc::ENOMEM | libc::ETXTBSY | libc::EMFILE | libc::ENFILE | libc::EAGAIN) => {
            return SpawnError::resource(&format!("cannot execute `{shown}`"), &e);
        }
        _ => format!("`{shown}` cannot be executed: {}", describe_errno(&e)),
    };
    SpawnError::new(if name == shown.to_string() {
        why
    } else {
        format!("command `{name}`: {why}")
    })
}

fn read_shebang(path: &Path) -> Option<String> {
    use std::io::Read;
    let mut head = [0u8; 256];
    let n = std::fs::File::open(path).ok()?.read(&mut head).ok()?;
    let line = head[..n].strip_prefix(b"#!")?;
    let end = line.iter().position(|&b| b == b'\n').unwrap_or(line.len());
    let text = String::from_utf8_lossy(&line[..end]);
    text.split_whitespace().next().map(str::to_owned)
}

fn describe_errno(e: &io::Error) -> String {
    match e.raw_os_error() {
        Some(libc::ENOENT) => "it does not exist".into(),
        Some(libc::EACCES) => "permission denied".into(),
        Some(libc::ENOTDIR) => "a part of the path is not a directory".into(),
        Some(code) => {
            let text = nix::errno::Errno::from_raw(code).desc();
            let mut chars = text.chars();
            chars
                .next()
                .map(|c| c.to_lowercase().chain(chars).collect())
                .unwrap_or_default()
        }
        None => e.to_string(),
    }
}
