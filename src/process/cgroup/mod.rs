//! cgroup containment: each run in a cgroup v2 of its own, created before the spawn; the
//! child is born in it (`clone3` with `CLONE_INTO_CGROUP`) or, where the kernel cannot do
//! that, joins it before it execs, so nothing of the run can leave it by forking,
//! `setsid` or clearing its environment. Stopping ends with `cgroup.kill`; figures come
//! from the cgroup's own counters; `memory.events` names an OOM kill.
//!
//! On hybrid hosts (cgroup v2 mounted without controllers, memory/cpu/pids bound to v1
//! hierarchies, as systemd's hybrid mode does) v2 still contains and kills, and the run
//! also joins a v1 cgroup per controller it needs, for memory figures, OOM detection and
//! the hard limits. [`setup`] decides what is available and says why.
//!
//! This module creates, fills, reads and removes cgroups; it never decides when a run
//! stops. It must leave no empty cgroup behind: a run's cgroups go once its last process
//! is gone, warden's own folder at shutdown, and the guard removes both if warden dies.

mod discover;
mod setup;

pub use discover::Controller;
#[cfg(test)]
pub(crate) use setup::cleanup;
pub use setup::{CgroupStatus, Cgroups, Setup, guard_cleanup, setup};

use std::io::{self, Write};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use nix::sys::signal::Signal;
use nix::unistd::Pid;

use super::child::{pidfd_open, pidfd_send_signal};

/// The CPU quota period written with `cpu_max` (the kernel's default, 100 ms).
const CPU_PERIOD_US: u64 = 100_000;

/// Where a controller's files are for warden's runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    /// In the run's v2 cgroup.
    V2,
    /// In a v1 cgroup of the run's, in that controller's hierarchy.
    V1,
}

/// The kernel's hard limits for one run, as the config gives them.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct HardLimits {
    pub memory_max: Option<u64>,
    pub cpu_max: Option<f64>,
    pub pids_max: Option<u64>,
}

/// The cgroups of one run. Small (it lives as long as the run): the folders are warden's
/// subtree's plus the run's leaf name. Dropping it removes nothing: [`RunCgroup::remove`]
/// does, once the run is over.
#[derive(Debug)]
pub struct RunCgroup {
    owner: Arc<Cgroups>,
    /// `web@3`.
    leaf: Box<str>,
    /// The v1 hierarchies the run joined, as a bit per [`Controller::ALL`] entry.
    v1: u8,
}

impl RunCgroup {
    /// The v2 folder.
    pub fn dir(&self) -> PathBuf {
        self.owner.dir().join(&*self.leaf)
    }

    /// The run's v1 folders.
    fn v1_dirs(&self) -> impl Iterator<Item = (Controller, PathBuf)> + '_ {
        self.owner
            .v1_dirs()
            .filter(|(c, _)| self.v1 & bit(*c) != 0)
            .map(|(c, d)| (c, d.join(&*self.leaf)))
    }

    /// Where `c`'s files are for this run.
    fn dir_of(&self, c: Controller) -> Option<(Place, PathBuf)> {
        match self.owner.place(c)? {
            Place::V2 => Some((Place::V2, self.dir())),
            Place::V1 => self
                .v1_dirs()
                .find(|(vc, _)| *vc == c)
                .map(|(_, d)| (Place::V1, d)),
        }
    }

    /// What the spawner needs to put the run's child in its cgroups: the v2 folder
    /// (where the child is born) and the v1 folders' `tasks` files (which it joins).
    pub fn placement(&self) -> io::Result<Placement> {
        // O_PATH is all CLONE_INTO_CGROUP needs, and enough for `openat` of its
        // `cgroup.procs` where the kernel lacks it.
        let dir = open_dir(&self.dir())?;
        let v1_tasks = self
            .v1_dirs()
            .map(|(_, d)| {
                std::fs::OpenOptions::new()
                    .write(true)
                    .open(d.join("tasks"))
                    .map(OwnedFd::from)
            })
            .collect::<io::Result<_>>()?;
        Ok(Placement { dir, v1_tasks })
    }

    /// SIGKILL every process of the cgroup at once (`cgroup.kill`, Linux 5.14+), or one
    /// by one where the kernel is older.
    pub fn kill(&self) {
        if write(&self.dir().join("cgroup.kill"), "1").is_err() {
            self.signal(Signal::SIGKILL);
        }
    }

    /// Send `sig` to every process of the cgroup. Returns how many were signalled. Where
    /// `/proc` is another pid namespace's, membership cannot be checked and nothing is
    /// sent (`cgroup.kill` needs no pid).
    pub fn signal(&self, sig: Signal) -> usize {
        if !super::tree::proc_is_ours() {
            return 0;
        }
        let mut sent = 0;
        for pid in self.pids() {
            // The pid was read from cgroup.procs; after taking a pidfd, check that it still
            // names a member, so that a pid recycled in between is never signalled.
            let Ok(fd) = pidfd_open(Pid::from_raw(pid)) else {
                continue;
            };
            if self.contains(pid) && pidfd_send_signal(&fd, sig).is_ok() {
                sent += 1;
            }
        }
        sent
    }

    /// Whether any live process is still in the cgroup (a zombie does not count: a
    /// leader that has exited leaves its cgroup unpopulated before it is reaped). When
    /// that cannot be read, someone is assumed to be there, so that the caller kills and
    /// looks again rather than leave a process behind.
    pub fn populated(&self) -> bool {
        let read = |name: &str| self.open(None, name).and_then(std::io::read_to_string);
        match read("cgroup.events") {
            Ok(text) => counter(&text, "populated") != Some(0),
            // Gone: nothing can be in it.
            Err(e) if e.kind() == io::ErrorKind::NotFound => false,
            // Unreadable (out of descriptors, say): the process list, if that can be read.
            Err(_) => read("cgroup.procs").map_or(true, |t| !t.trim().is_empty()),
        }
    }

    /// The processes in the cgroup.
    pub fn pids(&self) -> Vec<i32> {
        self.open(None, "cgroup.procs")
            .and_then(std::io::read_to_string)
            .map(|t| t.lines().filter_map(|l| l.trim().parse().ok()).collect())
            .unwrap_or_default()
    }

    /// Whether `pid` is in this cgroup (v2), per `/proc/PID/cgroup`.
    pub fn contains(&self, pid: i32) -> bool {
        let path = format!("{}/{}", self.owner.path(), self.leaf);
        std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
            .is_ok_and(|text| text.lines().any(|l| l.strip_prefix("0::") == Some(&path)))
    }

    /// CPU time used by every process that ever ran in the cgroup, in microseconds.
    pub fn cpu_usage_usec(&self) -> Option<u64> {
        usage_usec(&self.open(None, "cpu.stat").ok()?)
    }

    /// The memory charged to the cgroup now, in bytes (`None` without a memory controller).
    pub fn memory_current(&self) -> Option<u64> {
        number(&self.open_memory(Memory::Current)?.ok()?)
    }

    /// Resident memory (anonymous and mapped file pages, as a process's RSS counts them),
    /// in bytes. Dearer to read than the charge, which also counts page cache that the
    /// kernel would reclaim: read when a `memory` rule needs the truth.
    pub fn memory_resident(&self) -> Option<u64> {
        let (place, dir) = self.dir_of(Controller::Memory)?;
        let text = std::fs::read_to_string(dir.join("memory.stat")).ok()?;
        let keys = match place {
            Place::V2 => ["anon", "file_mapped"],
            Place::V1 => ["total_rss", "total_mapped_file"],
        };
        keys.iter().map(|k| counter(&text, k)).sum()
    }

    /// The most memory the cgroup was charged, in bytes, where the kernel keeps it.
    pub fn memory_peak(&self) -> Option<u64> {
        number(&self.open_memory(Memory::Peak)?.ok()?)
    }

    /// The run's file `name`, in its v2 folder (`v1`: `None`) or its folder of a v1
    /// controller, opened relative to warden's folder where that is held open.
    fn open(&self, v1: Option<Controller>, name: &str) -> io::Result<std::fs::File> {
        use nix::fcntl::{OFlag, openat};
        use nix::sys::stat::Mode;
        match self.owner.handle(v1) {
            Some(dir) => {
                let path = format!("{}/{name}", self.leaf);
                let flags = OFlag::O_RDONLY | OFlag::O_CLOEXEC;
                Ok(openat(dir, path.as_str(), flags, Mode::empty())?.into())
            }
            None => {
                let dir = match v1 {
                    None => self.dir(),
                    Some(c) => self.dir_of(c).ok_or(io::ErrorKind::NotFound)?.1,
                };
                std::fs::File::open(dir.join(name))
            }
        }
    }

    /// The run's memory file `which`, open (`None` without a memory controller).
    fn open_memory(&self, which: Memory) -> Option<io::Result<std::fs::File>> {
        let place = self.owner.place(Controller::Memory)?;
        let v1 = match place {
            Place::V2 => None,
            Place::V1 if self.v1 & bit(Controller::Memory) != 0 => Some(Controller::Memory),
            // The run did not join the hierarchy.
            Place::V1 => return None,
        };
        Some(self.open(v1, memory_name(place, which)))
    }

    /// The counter files, held open for periodic sampling.
    pub fn counters(&self) -> io::Result<Counters> {
        Ok(Counters {
            cpu: self.open(None, "cpu.stat")?,
            memory: self.open_memory(Memory::Current).transpose()?,
        })
    }

    /// How many processes of the cgroup the OOM killer killed.
    pub fn oom_kills(&self) -> u64 {
        self.open_memory(Memory::Events)
            .and_then(|f| std::io::read_to_string(f.ok()?).ok())
            .and_then(|t| counter(&t, "oom_kill"))
            .unwrap_or(0)
    }

    /// Remove the run's cgroups. Call once nothing of the run is left; `EBUSY` means "not
    /// yet" (try again shortly).
    pub fn remove(&self) -> io::Result<()> {
        let mut first_error = None;
        for dir in self.v1_dirs().map(|(_, d)| d).chain([self.dir()]) {
            if let Err(e) = remove_dir(&dir) {
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    fn apply(&self, limits: &HardLimits) -> io::Result<()> {
        let context = |what: &str, e: io::Error| io::Error::new(e.kind(), format!("{what}: {e}"));
        let memory = self.dir_of(Controller::Memory);
        if let (Some(max), Some((place, dir))) = (limits.memory_max, memory) {
            let max = max.to_string();
            match place {
                Place::V2 => {
                    write(&dir.join("memory.max"), &max).map_err(|e| context("memory.max", e))?;
                    // Beyond `memory_max` the kernel reclaims, then kills; it must not
                    // swap instead. Absent without swap accounting, which is as good.
                    let _ = write(&dir.join("memory.swap.max"), "0");
                }
                Place::V1 => {
                    write(&dir.join("memory.limit_in_bytes"), &max)
                        .map_err(|e| context("memory.limit_in_bytes", e))?;
                    let _ = write(&dir.join("memory.memsw.limit_in_bytes"), &max);
                }
            }
        }
        if let (Some(cores), Some((place, dir))) = (limits.cpu_max, self.dir_of(Controller::Cpu)) {
            let quota = ((cores * CPU_PERIOD_US as f64).round() as u64).max(1000);
            match place {
                Place::V2 => write(&dir.join("cpu.max"), &format!("{quota} {CPU_PERIOD_US}"))
                    .map_err(|e| context("cpu.max", e))?,
                Place::V1 => {
                    write(&dir.join("cpu.cfs_period_us"), &CPU_PERIOD_US.to_string())
                        .map_err(|e| context("cpu.cfs_period_us", e))?;
                    write(&dir.join("cpu.cfs_quota_us"), &quota.to_string())
                        .map_err(|e| context("cpu.cfs_quota_us", e))?;
                }
            }
        }
        if let (Some(max), Some((_, dir))) = (limits.pids_max, self.dir_of(Controller::Pids)) {
            write(&dir.join("pids.max"), &max.to_string()).map_err(|e| context("pids.max", e))?;
        }
        Ok(())
    }
}

/// A run's cgroups, open for its spawn ([`RunCgroup::placement`]); closed once the child
/// has exec'd.
#[derive(Debug)]
pub struct Placement {
    /// The run's cgroup v2 folder (`O_PATH`): the child is created in it, or writes `0`
    /// into its `cgroup.procs` where the kernel cannot create it there.
    pub dir: OwnedFd,
    /// The `tasks` file of each of the run's cgroup v1 folders, which the child joins
    /// (writing `0`) before it execs: v1 has no way to be born in a cgroup.
    pub v1_tasks: Vec<OwnedFd>,
}

/// The folder of this process's own cgroup v2, for tests that make a cgroup of their own
/// below it.
#[cfg(test)]
pub(crate) fn own_v2_dir() -> Option<PathBuf> {
    let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
    let me = discover::parse_proc_cgroup(&read("/proc/self/cgroup"));
    let mounts = discover::parse_mountinfo(&read("/proc/self/mountinfo"));
    discover::v2_dir(&mounts, discover::v2_path(&me)?)
}

/// The bit of `c` in [`RunCgroup`]'s `v1` set.
fn bit(c: Controller) -> u8 {
    1 << Controller::ALL.iter().position(|x| *x == c).unwrap_or(0)
}

/// A folder, open (`O_PATH`) for `openat` below it, or to be born in with `clone3`.
pub(crate) fn open_dir(dir: &Path) -> io::Result<OwnedFd> {
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_PATH | libc::O_DIRECTORY)
        .open(dir)?;
    Ok(file.into())
}

/// The file of a memory figure, where the memory controller is `place`.
fn memory_name(place: Place, which: Memory) -> &'static str {
    match (place, which) {
        (Place::V2, Memory::Current) => "memory.current",
        (Place::V2, Memory::Peak) => "memory.peak",
        (Place::V1, Memory::Current) => "memory.usage_in_bytes",
        (Place::V1, Memory::Peak) => "memory.max_usage_in_bytes",
        (Place::V2, Memory::Events) => "memory.events",
        (Place::V1, Memory::Events) => "memory.oom_control",
    }
}

#[derive(Debug, Clone, Copy)]
enum Memory {
    Current,
    Peak,
    /// Where the OOM kills are counted.
    Events,
}

/// A run's counter files, open. A cgroup file is generated anew by each read from its
/// start, so a periodic sample costs one `pread` per figure instead of open, read, close.
#[derive(Debug)]
pub struct Counters {
    cpu: std::fs::File,
    memory: Option<std::fs::File>,
}

impl Counters {
    pub fn cpu_usage_usec(&self) -> Option<u64> {
        usage_usec(&self.cpu)
    }

    pub fn memory_current(&self) -> Option<u64> {
        number(self.memory.as_ref()?)
    }
}

/// The start of a cgroup file (what warden reads is in its first lines).
fn head(file: &std::fs::File, buf: &mut [u8]) -> Option<usize> {
    use std::os::unix::fs::FileExt;
    file.read_at(buf, 0).ok()
}

fn number(file: &std::fs::File) -> Option<u64> {
    let mut buf = [0u8; 32];
    let n = head(file, &mut buf)?;
    std::str::from_utf8(&buf[..n]).ok()?.trim().parse().ok()
}

fn usage_usec(file: &std::fs::File) -> Option<u64> {
    let mut buf = [0u8; 256];
    let n = head(file, &mut buf)?;
    counter(std::str::from_utf8(&buf[..n]).ok()?, "usage_usec")
}

/// `key N` in a flat-keyed cgroup file (`cpu.stat`, `memory.events`, `cgroup.events`).
fn counter(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok()).flatten()
    })
}

/// One `write(2)` of `value`, as cgroup files want (they act on each write).
fn write(path: &Path, value: &str) -> io::Result<()> {
    std::fs::OpenOptions::new()
        .write(true)
        .open(path)?
        .write_all(value.as_bytes())
}

/// `rmdir` a cgroup (already gone is fine). It may be busy for a moment after its last
/// process was reaped: callers retry with their own kind of pause.
fn remove_dir(dir: &Path) -> io::Result<()> {
    match std::fs::remove_dir(dir) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flat_keyed_files() {
        let stat = "usage_usec 1234\nuser_usec 1000\nsystem_usec 234\n";
        assert_eq!(counter(stat, "usage_usec"), Some(1234));
        assert_eq!(counter(stat, "usage"), None);
        let events = "low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\noom_group_kill 0\n";
        assert_eq!(counter(events, "oom_kill"), Some(1));
        let v1 = "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n";
        assert_eq!(counter(v1, "oom_kill"), Some(2));
        assert_eq!(counter("populated 0\nfrozen 0\n", "populated"), Some(0));
    }

    /// A run's end writes `cgroup.kill` only into a populated cgroup, and looks until it
    /// is empty: a cgroup that cannot be read must count as populated, one that is gone
    /// as empty. (A plain folder stands in for the cgroup; a folder where a file should
    /// be makes its read fail.)
    #[test]
    fn a_cgroup_that_cannot_be_read_counts_as_populated() {
        let dir = tempfile::tempdir().unwrap();
        let cgroups = Arc::new(Cgroups::for_tests(dir.path().to_path_buf(), "/t".into()));
        let run = cgroups.create("x@1", &HardLimits::default()).unwrap();
        assert!(!run.populated(), "a cgroup without its files is gone");
        std::fs::create_dir(run.dir().join("cgroup.events")).unwrap();
        std::fs::write(run.dir().join("cgroup.procs"), "").unwrap();
        assert!(!run.populated(), "an empty process list");
        std::fs::write(run.dir().join("cgroup.procs"), "4242\n").unwrap();
        assert!(run.populated(), "a process in the list");
        std::fs::remove_file(run.dir().join("cgroup.procs")).unwrap();
        std::fs::create_dir(run.dir().join("cgroup.procs")).unwrap();
        assert!(run.populated(), "neither file could be read");
    }
}
