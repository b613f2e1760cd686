//! The guard: a tiny helper process that kills every process of this warden if warden
//! itself dies without cleaning up (SIGKILL, a crash, the OOM killer).
//!
//! The parent-death signal reaches only direct children; grandchildren and escapees would
//! outlive warden. The guard holds the read end of a pipe whose write end only warden
//! holds (close-on-exec, so no child inherits it). When warden dies the kernel closes it,
//! the guard reads EOF and SIGKILLs every process whose `WARDEN_RUN_ID` carries this
//! warden's token, then kills and removes warden's cgroups (which also catches whatever
//! cleared its environment) and removes warden's private runtime folder (the sd_notify
//! sockets), which a killed warden could not. After a clean shutdown it finds nothing and
//! exits.

use std::io::Read;
use std::os::fd::OwnedFd;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::ChildHandle;
use super::spawn::{Launch, Spawner};
use super::tree::RUN_ID_VAR;

/// The hidden subcommand the binary dispatches to [`run`].
pub const GUARD_ARG: &str = "__guard";

/// warden's end of the guard's pipe; dropping it (or dying) releases the guard.
pub struct Guard {
    pub handle: Arc<ChildHandle>,
    _pipe: OwnedFd,
}

impl Guard {
    /// Start the guard for `token`. `exe` is warden's own binary; `cgroups` says what to
    /// remove of warden's cgroups ([`super::cgroup::Cgroups::guard_args`]).
    pub fn start(
        spawner: &Spawner,
        exe: &std::path::Path,
        token: &str,
        cgroups: Vec<String>,
    ) -> std::io::Result<Guard> {
        let (read, write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
        let mut env = super::Env::inherited();
        env.remove(RUN_ID_VAR);
        let launch = Launch {
            argv: [exe.display().to_string(), GUARD_ARG.into(), token.into()]
                .into_iter()
                .chain(cgroups)
                .collect(),
            cwd: "/".into(),
            env,
            capture: false,
            die_with_warden: false,
            stdin: Some(read),
            stdout: None,
            cgroup: None,
            credentials: None,
            umask: None,
        };
        let spawned = spawner
            .spawn_blocking(launch)
            .map_err(std::io::Error::other)?;
        Ok(Guard {
            handle: spawned.handle,
            _pipe: write,
        })
    }

    /// Release the guard and reap it. The byte it is sent first says "a clean shutdown":
    /// warden removes its cgroups itself, after the guard is gone.
    pub async fn finish(self) {
        let Guard { handle, _pipe } = self;
        let _ = nix::unistd::write(&_pipe, b"x");
        drop(_pipe);
        let _ = tokio::time::timeout(Duration::from_secs(2), handle.exited()).await;
        let _ = handle.reap();
    }
}

/// The guard's main: wait for warden to go away, then kill what it left behind and remove
/// its cgroups (`cgroups` as [`Guard::start`] passed them).
pub fn run(token: &str, cgroups: &[String]) -> ! {
    let mut buf = [0u8; 64];
    let mut stdin = std::io::stdin();
    let mut clean = false;
    loop {
        match stdin.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(_) => clean = true,
        }
    }
    let prefix = format!("{RUN_ID_VAR}={token}:");
    if !super::proc_is_ours() {
        // The pids under /proc are another namespace's: killing by them would hit
        // strangers. The parent-death signal still takes warden's direct children.
        std::process::exit(0);
    }
    let me = std::process::id() as i32;
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        let victims: Vec<i32> = std::fs::read_dir("/proc")
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
            .filter(|&pid| pid != me && has_marker(pid, prefix.as_bytes()))
            .collect();
        if victims.is_empty() {
            break;
        }
        for pid in victims {
            let _ =
                nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::SIGKILL);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    if !clean {
        super::cgroup::guard_cleanup(cgroups);
    }
    // Gone already after a clean shutdown.
    let _ = std::fs::remove_dir_all(runtime_dir(token));
    std::process::exit(0)
}

/// warden's private folder for the runs' sd_notify sockets (mode 0700), named by its token.
pub fn runtime_dir(token: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("warden-{token}"))
}

fn has_marker(pid: i32, prefix: &[u8]) -> bool {
    std::fs::read(format!("/proc/{pid}/environ"))
        .map(|env| env.split(|&b| b == 0).any(|kv| kv.starts_with(prefix)))
        .unwrap_or(false)
}
