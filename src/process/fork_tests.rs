//! The spawner's two ways into a cgroup v2: born there by `clone3`, or joining before
//! `execve` (forced here, as kernels without `CLONE_INTO_CGROUP` get it), and how a
//! refused cgroup is reported. The cgroups are made below the test's own and removed.

use std::io::Read;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::*;
use crate::process::env::Env;

/// A leaf cgroup of the test's own, removed on drop (also when the test fails).
struct Leaf {
    dir: PathBuf,
    /// `/leaf/path` as `/proc/PID/cgroup` shows it after `0::`.
    shown: String,
}

impl Leaf {
    /// `None` (with the reason printed) where this test may not create cgroups.
    fn new(test: &str) -> Option<Leaf> {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("{test}: skipped, needs root to create cgroups");
            return None;
        }
        let Some(own) = super::super::cgroup::own_v2_dir() else {
            eprintln!("{test}: skipped, no cgroup v2 here");
            return None;
        };
        let name = format!("warden-unit-{}-{test}", std::process::id());
        let dir = own.join(&name);
        if let Err(e) = std::fs::create_dir(&dir) {
            eprintln!("{test}: skipped, cannot create `{}`: {e}", dir.display());
            return None;
        }
        let mine = std::fs::read_to_string("/proc/self/cgroup").unwrap();
        let path = mine
            .lines()
            .find_map(|l| l.strip_prefix("0::"))
            .unwrap()
            .trim_end_matches('/');
        Some(Leaf {
            dir,
            shown: format!("{path}/{name}"),
        })
    }

    fn open(&self) -> OwnedFd {
        open_path(&self.dir)
    }
}

impl Drop for Leaf {
    fn drop(&mut self) {
        // Busy for a moment after its last process was reaped.
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::fs::remove_dir(&self.dir).is_err() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}

fn open_path(dir: &Path) -> OwnedFd {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_PATH | libc::O_DIRECTORY)
        .open(dir)
        .unwrap()
        .into()
}

/// Spawn `cat /proc/self/cgroup` with its cgroup v2 folder at `cgroup`; returns how it
/// was spawned, and what it printed once it exited (it is reaped here).
fn cat_own_cgroup(cgroup: &OwnedFd, via: Via) -> Result<(bool, String), (Option<Step>, io::Error)> {
    let (read, write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).unwrap();
    let null: OwnedFd = std::fs::File::open("/dev/null").unwrap().into();
    let (write, null) = (above_stdio(write).unwrap(), above_stdio(null).unwrap());
    let prep = Prepared::new(
        Path::new("/bin/cat"),
        &["cat".into(), "/proc/self/cgroup".into()],
        &Env::from(Vec::new()),
        Path::new("/"),
        [null.as_raw_fd(), write.as_raw_fd(), null.as_raw_fd()],
        false,
        Become {
            identity: None,
            umask: None,
            cgroup: Some(cgroup.as_raw_fd()),
            v1_tasks: Vec::new(),
        },
    )
    .unwrap();
    let forked = spawn(&prep, via)?;
    drop(write);
    let mut out = String::new();
    std::fs::File::from(read).read_to_string(&mut out).unwrap();
    nix::sys::wait::waitid(
        nix::sys::wait::Id::PIDFd(std::os::fd::AsFd::as_fd(&forked.pidfd)),
        nix::sys::wait::WaitPidFlag::WEXITED,
    )
    .unwrap();
    Ok((forked.born_in_cgroup, out))
}

fn v2_line(out: &str) -> &str {
    out.lines()
        .find_map(|l| l.strip_prefix("0::"))
        .unwrap_or_else(|| panic!("no cgroup v2 line in {out:?}"))
}

#[test]
fn children_are_born_in_their_cgroup() {
    let Some(leaf) = Leaf::new("born") else {
        return;
    };
    let (born, out) = cat_own_cgroup(&leaf.open(), Via::Best).unwrap();
    // Born there: the child was handed no `cgroup.procs` to join, and yet it is in.
    if cfg!(target_arch = "x86_64") && !CLONE3_REFUSED.load(Ordering::Relaxed) {
        assert!(born, "the clone3 path was not taken");
    } else {
        eprintln!("born: clone3 with CLONE_INTO_CGROUP is not available here; joined instead");
    }
    assert_eq!(v2_line(&out), leaf.shown);
}

#[test]
fn without_clone3_children_join_their_cgroup() {
    let Some(leaf) = Leaf::new("joined") else {
        return;
    };
    let (born, out) = cat_own_cgroup(&leaf.open(), Via::Clone).unwrap();
    assert!(!born);
    assert_eq!(v2_line(&out), leaf.shown);
}

#[test]
fn a_folder_that_is_no_cgroup_is_a_cgroup_error() {
    // Any directory will do: nothing is created in it.
    let dir = open_path(Path::new("/"));
    for via in [Via::Best, Via::Clone] {
        let (step, e) = cat_own_cgroup(&dir, via).unwrap_err();
        assert_eq!(step, Some(Step::Cgroup), "{via:?}: {e}");
    }
    // A refusal about the cgroup is not the kernel refusing clone3.
    assert!(!CLONE3_REFUSED.load(Ordering::Relaxed));
}
