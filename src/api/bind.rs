//! Claiming the control socket for `warden up`, before anything is started.
//!
//! 1. The default folder (`/tmp/warden-<euid>`, `$XDG_RUNTIME_DIR/warden`) is created with
//!    mode 0700; if it exists it must be a real folder, ours, and closed to everyone else
//!    (we never chmod a folder we did not create: someone may have planted it).
//! 2. An exclusive `flock` on the lock file beside the socket, holding our pid, keeps a
//!    second supervisor for the same socket out: it fails with "already running (pid N)".
//!    Without the lock, two `up`s racing over a stale socket could both unlink and bind.
//! 3. A socket file left by a crashed run is detected (connecting is refused) and removed;
//!    a live one (connecting works) means another supervisor, and we refuse to start.
//! 4. The socket is bound under `umask(0o177)`, so it is 0600 from birth, not after a
//!    chmod. This runs before warden starts any thread, so the process-wide umask cannot
//!    leak into a child forked meanwhile.
//!
//! Everything created here is removed when [`Bound`] (or the [`crate::api::Server`] it
//! becomes) is dropped, on every path out of `up`.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};
use nix::sys::stat::{Mode, umask};

use super::{MAX_SOCKET_PATH, default_dir, fifo_path, lock_path};

#[derive(Debug, thiserror::Error)]
pub enum BindError {
    #[error("another warden is already running for this config (socket {}, pid {pid})", .socket.display())]
    AlreadyRunning { socket: PathBuf, pid: String },
    #[error(
        "the socket path `{}` is {len} bytes long; unix sockets allow at most {MAX_SOCKET_PATH}: set a shorter `[supervisor] socket` or --socket",
        .socket.display()
    )]
    PathTooLong { socket: PathBuf, len: usize },
    #[error("`{}` is not safe for the control socket: {why}", .path.display())]
    Unsafe { path: PathBuf, why: String },
    #[error("{what} `{}`: {source}", .path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        source: io::Error,
    },
}

fn io_err(what: &'static str, path: &Path) -> impl FnOnce(io::Error) -> BindError + use<> {
    let path = path.to_owned();
    move |source| BindError::Io { what, path, source }
}

/// The socket, bound and owner-only, plus the lock and (optionally) the control FIFO.
/// Dropping it removes them.
pub struct Bound {
    pub(super) listener: UnixListener,
    pub(super) files: Files,
}

impl Bound {
    /// Claim `socket` (and `<socket>.control` if `fifo`). Call before any thread exists.
    pub fn claim(socket: &Path, fifo: bool) -> Result<Bound, BindError> {
        let len = socket.as_os_str().len();
        if len > MAX_SOCKET_PATH {
            return Err(BindError::PathTooLong {
                socket: socket.to_owned(),
                len,
            });
        }
        let dir = match socket.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_owned(),
            _ => PathBuf::from("."),
        };
        if dir == default_dir() {
            private_dir(&dir)?;
        } else if !dir.exists() {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&dir)
                .map_err(io_err("cannot create", &dir))?;
        }
        let lock_path = lock_path(socket);
        let lock = take_lock(&lock_path, socket)?;
        // From here on, `files` cleans up whatever exists so far if a later step fails.
        let mut files = Files {
            socket: None,
            fifo: None,
            lock: Some((lock_path, lock)),
        };
        remove_stale(socket)?;
        let listener = {
            let old = umask(Mode::from_bits_truncate(0o177));
            let bound = UnixListener::bind(socket);
            umask(old);
            bound.map_err(io_err("cannot bind the control socket", socket))?
        };
        files.socket = Some(socket.to_owned());
        // Belt and braces: the mode is exact whatever umask bits were in force.
        fs::set_permissions(socket, fs::Permissions::from_mode(0o600))
            .map_err(io_err("cannot chmod", socket))?;
        if fifo {
            let path = fifo_path(socket);
            make_fifo(&path)?;
            files.fifo = Some(path);
        }
        Ok(Bound { listener, files })
    }

    pub fn socket(&self) -> &Path {
        self.files.socket.as_deref().expect("bound")
    }

    pub fn fifo(&self) -> Option<&Path> {
        self.files.fifo.as_deref()
    }
}

/// What `Bound` created; removed on drop (the lock file last, then the lock released).
pub(super) struct Files {
    pub(super) socket: Option<PathBuf>,
    pub(super) fifo: Option<PathBuf>,
    lock: Option<(PathBuf, Flock<File>)>,
}

impl Drop for Files {
    fn drop(&mut self) {
        for path in [self.socket.take(), self.fifo.take()].into_iter().flatten() {
            let _ = fs::remove_file(path);
        }
        // Unlinking while still holding the lock is safe: a waiter that locked the old
        // inode sees that the path no longer names it and tries again (`take_lock`).
        if let Some((path, lock)) = self.lock.take() {
            let _ = fs::remove_file(path);
            drop(lock);
        }
    }
}

fn private_dir(dir: &Path) -> Result<(), BindError> {
    match fs::DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => return Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(io_err("cannot create the socket folder", dir)(e)),
    }
    let md = fs::symlink_metadata(dir).map_err(io_err("cannot inspect", dir))?;
    let me = nix::unistd::geteuid().as_raw();
    let unsafe_dir = |why: String| {
        Err(BindError::Unsafe {
            path: dir.to_owned(),
            why,
        })
    };
    if !md.is_dir() {
        return unsafe_dir("it exists and is not a folder (a symlink?); remove it".into());
    }
    if md.uid() != me {
        return unsafe_dir(format!(
            "it belongs to uid {}, not to us (uid {me}); remove it, or choose another path with --socket",
            md.uid()
        ));
    }
    if md.mode() & 0o077 != 0 {
        return unsafe_dir(format!(
            "its mode is {:04o}, so other users can reach it; make it 0700 (`chmod 700 {}`)",
            md.mode() & 0o7777,
            dir.display()
        ));
    }
    Ok(())
}

/// How long to wait for the lock of a warden that is dying (killed, its threads still
/// being torn down) before calling it running.
const DYING_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// Whether `pid` is a process on its way out: gone, a zombie, or with SIGKILL pending.
/// A warden killed with SIGKILL holds its lock for a few milliseconds more, until its last
/// thread has exited.
fn exiting(pid: &str) -> bool {
    let Ok(status) = fs::read_to_string(format!("/proc/{pid}/status")) else {
        return true;
    };
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .map(str::trim)
            .unwrap_or_default()
            .to_owned()
    };
    let sigkill = |mask: String| u64::from_str_radix(&mask, 16).is_ok_and(|m| m & (1 << 8) != 0);
    field("State:").starts_with('Z') || sigkill(field("ShdPnd:")) || sigkill(field("SigPnd:"))
}

/// Lock the lock file, retrying if the previous holder unlinked it between our open and
/// our lock (then the lock we got is on a file nobody else will ever open), or is dying.
fn take_lock(path: &Path, socket: &Path) -> Result<Flock<File>, BindError> {
    let deadline = std::time::Instant::now() + DYING_WAIT;
    for _ in 0..1000 {
        let file = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(path)
            .map_err(io_err("cannot open the lock file", path))?;
        let lock = match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(lock) => lock,
            Err((mut file, Errno::EWOULDBLOCK)) => {
                let mut pid = String::new();
                let _ = file.read_to_string(&mut pid);
                let pid = pid.trim();
                let pid = if pid.is_empty() {
                    "unknown".into()
                } else {
                    pid.to_string()
                };
                if pid != "unknown" && exiting(&pid) && std::time::Instant::now() < deadline {
                    std::thread::sleep(std::time::Duration::from_millis(5));
                    continue;
                }
                return Err(BindError::AlreadyRunning {
                    socket: socket.to_owned(),
                    pid,
                });
            }
            Err((_, errno)) => return Err(io_err("cannot lock", path)(errno.into())),
        };
        let ours = lock.metadata().map_err(io_err("cannot inspect", path))?;
        match fs::symlink_metadata(path) {
            Ok(now) if now.ino() == ours.ino() && now.dev() == ours.dev() => {
                let mut f: &File = &lock;
                f.set_len(0)
                    .and_then(|()| writeln!(f, "{}", std::process::id()))
                    .map_err(io_err("cannot write the lock file", path))?;
                return Ok(lock);
            }
            _ => continue,
        }
    }
    Err(BindError::Unsafe {
        path: path.to_owned(),
        why: "it keeps being replaced while we lock it".into(),
    })
}

/// We hold the lock, so a socket file here is either stale (nobody accepts) or served by
/// something that does not use our lock: then it is not ours to take.
fn remove_stale(socket: &Path) -> Result<(), BindError> {
    let md = match fs::symlink_metadata(socket) {
        Ok(md) => md,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io_err("cannot inspect", socket)(e)),
    };
    if !md.file_type().is_socket() {
        return Err(BindError::Unsafe {
            path: socket.to_owned(),
            why: "it exists and is not a socket; remove it or choose another path".into(),
        });
    }
    match UnixStream::connect(socket) {
        Ok(stream) => {
            let pid =
                nix::sys::socket::getsockopt(&stream, nix::sys::socket::sockopt::PeerCredentials)
                    .map(|c| c.pid().to_string())
                    .unwrap_or_else(|_| "unknown".into());
            Err(BindError::AlreadyRunning {
                socket: socket.to_owned(),
                pid,
            })
        }
        Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
            let me = nix::unistd::geteuid().as_raw();
            if md.uid() != me && me != 0 {
                return Err(BindError::Unsafe {
                    path: socket.to_owned(),
                    why: format!("a stale socket of uid {} is in the way", md.uid()),
                });
            }
            tracing::info!(
                "removing the stale socket {} left by a previous run",
                socket.display()
            );
            fs::remove_file(socket).map_err(io_err("cannot remove the stale socket", socket))
        }
        Err(e) => Err(io_err("cannot check the existing socket", socket)(e)),
    }
}

fn make_fifo(path: &Path) -> Result<(), BindError> {
    match nix::unistd::mkfifo(path, Mode::from_bits_truncate(0o600)) {
        Ok(()) => {}
        Err(Errno::EEXIST) => {
            // Left by a crashed run (we hold the lock). Reuse it only if it is ours.
            let md = fs::symlink_metadata(path).map_err(io_err("cannot inspect", path))?;
            if !md.file_type().is_fifo() || md.uid() != nix::unistd::geteuid().as_raw() {
                return Err(BindError::Unsafe {
                    path: path.to_owned(),
                    why: "it exists and is not our FIFO; remove it".into(),
                });
            }
        }
        Err(e) => return Err(io_err("cannot create the control FIFO", path)(e.into())),
    }
    fs::set_permissions(path, fs::Permissions::from_mode(0o600))
        .map_err(io_err("cannot chmod", path))
}
