//! Spawning children: one long-lived thread does every fork, so that the parent-death
//! signal armed in each child stays tied to a thread that lives as long as warden.
//!
//! `PR_SET_PDEATHSIG` fires when the *thread* that forked the child exits, so forking
//! from tokio's blocking pool (whose threads come and go) would kill children at random.
//! The spawner thread also holds the [`Registry`] lock across fork + registration, so the
//! orphan reaper can never mistake a just-forked child for an adopted orphan.

use std::collections::{HashMap, HashSet};
use std::ffi::OsString;
use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};

use nix::unistd::Pid;
use tokio::sync::oneshot;

use super::child::ChildHandle;

/// What to run. Built by the supervisor from a validated spec.
#[derive(Debug)]
pub struct Launch {
    /// argv; `argv[0]` is resolved against `PATH` (from `env`) before forking.
    pub argv: Vec<String>,
    pub cwd: PathBuf,
    /// The complete environment of the child (nothing else is inherited).
    pub env: Vec<(String, String)>,
    /// Capture stdout/stderr through pipes (false: both go to `/dev/null`).
    pub capture: bool,
    /// Arm `PR_SET_PDEATHSIG` (false only for the guard, which must outlive warden).
    pub die_with_warden: bool,
    /// The read end of a pipe to use as stdin; `None` = `/dev/null`.
    pub stdin: Option<OwnedFd>,
    /// With `capture`: a descriptor to use as stdout instead of a captured pipe (the write
    /// end of a `stdin_from` pipe). stderr is still captured.
    pub stdout: Option<OwnedFd>,
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
#[error("{0}")]
pub struct SpawnError(pub String);

/// Pids of children that someone else will reap (leaders, exec probes, the guard).
/// Any other child of warden is an adopted orphan, reaped by [`super::reap_orphans`].
#[derive(Debug, Default)]
pub struct Registry {
    pub(super) managed: Mutex<HashSet<i32>>,
}

type Job = (Launch, oneshot::Sender<Result<Spawned, SpawnError>>);

/// Handle to the spawner thread. Cheap to clone.
#[derive(Clone)]
pub struct Spawner {
    tx: mpsc::Sender<Job>,
    registry: Arc<Registry>,
}

impl Spawner {
    /// Start the spawner thread. It lives until every `Spawner` clone is dropped.
    pub fn start() -> io::Result<Spawner> {
        let registry = Arc::new(Registry::default());
        let (tx, rx) = mpsc::channel::<Job>();
        let reg = registry.clone();
        std::thread::Builder::new()
            .name("warden-spawner".into())
            .spawn(move || {
                let parent = nix::unistd::getpid();
                for (launch, reply) in rx {
                    let _ = reply.send(spawn_now(&reg, parent, launch));
                }
            })?;
        Ok(Spawner { tx, registry })
    }

    pub fn registry(&self) -> &Arc<Registry> {
        &self.registry
    }

    /// Fork and exec `launch` on the spawner thread.
    pub async fn spawn(&self, launch: Launch) -> Result<Spawned, SpawnError> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send((launch, tx))
            .map_err(|_| SpawnError("the spawner thread is gone".into()))?;
        rx.await
            .map_err(|_| SpawnError("the spawner thread is gone".into()))?
    }

    /// Blocking variant for callers outside the runtime (the guard at startup).
    pub fn spawn_blocking(&self, launch: Launch) -> Result<Spawned, SpawnError> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send((launch, tx))
            .map_err(|_| SpawnError("the spawner thread is gone".into()))?;
        rx.blocking_recv()
            .map_err(|_| SpawnError("the spawner thread is gone".into()))?
    }
}

fn spawn_now(registry: &Registry, parent: Pid, launch: Launch) -> Result<Spawned, SpawnError> {
    let env: HashMap<&str, &str> = launch
        .env
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    check_cwd(&launch.cwd)?;
    let program = resolve_program(&launch.argv[0], &launch.cwd, env.get("PATH").copied())?;

    let mut cmd = Command::new(&program);
    cmd.arg0(&launch.argv[0])
        .args(&launch.argv[1..])
        .current_dir(&launch.cwd)
        .env_clear()
        .envs(launch.env.iter().map(|(k, v)| (k, v)));
    match launch.stdin {
        Some(fd) => cmd.stdin(Stdio::from(fd)),
        None => cmd.stdin(Stdio::null()),
    };
    if launch.capture {
        match launch.stdout {
            Some(fd) => cmd.stdout(Stdio::from(fd)),
            None => cmd.stdout(Stdio::piped()),
        };
        cmd.stderr(Stdio::piped());
    } else {
        cmd.stdout(Stdio::null()).stderr(Stdio::null());
    }
    let die_with_warden = launch.die_with_warden;
    // SAFETY: the closure runs in the forked child before exec and only makes
    // async-signal-safe system calls (no allocation, no locks).
    unsafe {
        cmd.pre_exec(move || prepare_child(parent, die_with_warden));
    }

    let mut managed = registry.managed.lock().unwrap_or_else(|e| e.into_inner());
    let mut child = cmd
        .spawn()
        .map_err(|e| explain_exec_error(&launch.argv[0], &program, e))?;
    let pid = child.id() as i32;
    managed.insert(pid);
    drop(managed);

    let handle = ChildHandle::new(Pid::from_raw(pid))
        .map_err(|e| SpawnError(format!("cannot open a pidfd for pid {pid}: {e}")))?;
    Ok(Spawned {
        handle: Arc::new(handle),
        stdout: child.stdout.take().map(OwnedFd::from),
        stderr: child.stderr.take().map(OwnedFd::from),
    })
}

/// Runs in the child between fork and exec. Async-signal-safe calls only.
fn prepare_child(parent: Pid, die_with_warden: bool) -> io::Result<()> {
    // A new session (and so a new process group) whose id is the child's pid: signals
    // go to the whole group, and the terminal's Ctrl-C reaches warden alone.
    // SAFETY: plain system calls with valid arguments.
    unsafe {
        if libc::setsid() < 0 {
            return Err(io::Error::last_os_error());
        }
        // Children start clean: warden's signal mask and ignored signals are its own.
        let mut empty: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut empty);
        libc::sigprocmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut());
        for sig in 1..32 {
            if sig != libc::SIGKILL && sig != libc::SIGSTOP {
                libc::signal(sig, libc::SIG_DFL);
            }
        }
        // Descriptors warden inherited without CLOEXEC must not leak into children.
        libc::syscall(
            libc::SYS_close_range,
            3u32,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        );
        if die_with_warden {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong) < 0 {
                return Err(io::Error::last_os_error());
            }
            // warden may have died between fork and prctl: then nobody will signal us.
            if libc::getppid() != parent.as_raw() {
                libc::_exit(1);
            }
        }
    }
    Ok(())
}

fn check_cwd(cwd: &Path) -> Result<(), SpawnError> {
    match std::fs::metadata(cwd) {
        Ok(m) if m.is_dir() => Ok(()),
        Ok(_) => Err(SpawnError(format!(
            "working directory `{}` is not a directory",
            cwd.display()
        ))),
        Err(e) => Err(SpawnError(format!(
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
            Err(e) => Err(SpawnError(format!(
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
        Some(p) => Err(SpawnError(format!(
            "command `{program}` found at `{}` but it is not an executable file",
            p.display()
        ))),
        None => Err(SpawnError(format!(
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
        _ => format!("`{shown}` cannot be executed: {}", describe_errno(&e)),
    };
    SpawnError(if name == shown.to_string() {
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
        _ => e.to_string(),
    }
}

/// warden's own environment, as the base of every child's.
pub fn inherited_env() -> Vec<(String, String)> {
    std::env::vars_os()
        .filter_map(|(k, v): (OsString, OsString)| {
            Some((k.into_string().ok()?, v.into_string().ok()?))
        })
        .filter(|(k, _)| k != "NOTIFY_SOCKET" && k != "LISTEN_FDS" && k != "LISTEN_PID")
        .collect()
}
