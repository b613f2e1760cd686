//! A cgroup v2 leaf below the test process's own, for unit tests of the spawner and of a
//! run's end; removed on drop (also when the test fails), with whatever is below it
//! killed first.

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

pub(crate) struct Leaf {
    pub dir: PathBuf,
    /// `/leaf/path` as `/proc/PID/cgroup` shows it after `0::`.
    pub shown: String,
}

impl Leaf {
    /// `None` (with the reason printed) where this test may not create cgroups.
    pub fn new(test: &str) -> Option<Leaf> {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("{test}: skipped, needs root to create cgroups");
            return None;
        }
        let Some(own) = super::cgroup::own_v2_dir() else {
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

    /// The folder, open with `O_PATH`.
    pub fn open(&self) -> OwnedFd {
        open_path(&self.dir)
    }
}

impl Drop for Leaf {
    /// As warden removes its own folder: every run folder below killed, then all removed.
    fn drop(&mut self) {
        super::cgroup::cleanup(&self.dir, &[], None, &[]);
    }
}

/// `dir`, open with `O_PATH`.
pub(crate) fn open_path(dir: &Path) -> OwnedFd {
    super::cgroup::open_dir(dir).unwrap()
}

/// A pipe whose buffer is full: a blocking write to `.1` waits until `.0` is read. Given
/// to a child as a cgroup v1 `tasks` file, it holds the child before its `execve`.
pub(crate) fn full_pipe() -> (std::fs::File, OwnedFd) {
    use nix::fcntl::{FcntlArg, OFlag, fcntl};
    use std::io::Write;
    let (read, write) = nix::unistd::pipe2(OFlag::O_CLOEXEC | OFlag::O_NONBLOCK).unwrap();
    let mut writer = std::fs::File::from(write);
    while writer.write(&[0; 4096]).is_ok() {}
    fcntl(&writer, FcntlArg::F_SETFL(OFlag::empty())).unwrap();
    (std::fs::File::from(read), writer.into())
}
