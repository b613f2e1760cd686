//! The `stat` parser on lines the kernel can write, and the reader on real processes: a
//! held file follows its process to its end and never reads another.

use std::process::{Child, Command};

use nix::sys::signal::{Signal, kill};
use nix::sys::wait::{Id, WaitPidFlag, waitid};
use nix::unistd::Pid;

use super::procstat::{Missing, Stat, StatFiles, name};

/// A `stat` line of process 42 named `comm`, in state `state`, with utime 7, stime 5,
/// start time 1234 and 300 resident pages.
fn line(comm: &str, state: char) -> String {
    format!(
        "42 ({comm}) {state} 1 42 42 0 -1 4194560 110 0 0 0 7 5 0 0 20 0 3 0 1234 \
         9273344 300 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0 0 0 0 0 0 0 0 0\n"
    )
}

#[test]
fn parses_the_fields_after_the_last_parenthesis() {
    let expected = Stat {
        state: b'S',
        ppid: 1,
        cpu_ticks: 12,
        start_ticks: 1234,
        rss_pages: 300,
    };
    for comm in ["sleep", "a b", "x) S 9 9 9 (", "))", "(", "new\nline", ""] {
        let l = line(comm, 'S');
        assert_eq!(Stat::parse(l.as_bytes()), Some(expected), "{l:?}");
        assert_eq!(name(l.as_bytes()), Some(comm.as_bytes()), "{l:?}");
    }
    let zombie = Stat::parse(line("sh", 'Z').as_bytes()).unwrap();
    assert!(zombie.is_zombie());
    assert!(!expected.is_zombie());
}

#[test]
fn refuses_lines_that_make_no_sense() {
    let whole = line("sleep", 'S');
    let cut = &whole[..whole.find(" 9273344").unwrap()];
    let bad = [
        "",
        "42 sleep S 1",
        cut,
        &whole.replace(" 7 5 ", " 7 x "),
        &whole.replace(" S ", " SS "),
        &whole.replace(" 1 42 42 ", " -x 42 42 "),
    ];
    for l in bad {
        assert_eq!(Stat::parse(l.as_bytes()), None, "{l:?}");
    }
}

/// A `sleep` child of the test, killed and reaped when dropped (even if the test fails).
struct Sleeper(Child);

impl Sleeper {
    fn start() -> Sleeper {
        Sleeper(Command::new("sleep").arg("60").spawn().expect("sleep"))
    }

    fn pid(&self) -> i32 {
        self.0.id() as i32
    }

    /// Kill it and wait until it has ended, without reaping it: it stays a zombie.
    fn end(&self) {
        kill(Pid::from_raw(self.pid()), Signal::SIGKILL).unwrap();
        let pid = Pid::from_raw(self.pid());
        waitid(Id::Pid(pid), WaitPidFlag::WEXITED | WaitPidFlag::WNOWAIT).unwrap();
    }

    fn reap(&mut self) {
        self.0.wait().unwrap();
    }
}

impl Drop for Sleeper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn reads_a_live_process() {
    let child = Sleeper::start();
    let mut files = StatFiles::with_budget(8);
    let stat = files.read(child.pid(), true, true).unwrap();
    assert_eq!(stat.ppid, std::process::id() as i32);
    assert_ne!(stat.start_ticks, 0);
    assert_eq!(files.open(), 1, "held for the next sample");
    // Twice through the same descriptor: the file is generated anew at each read.
    let again = files.read(child.pid(), true, false).unwrap();
    assert_eq!(again.start_ticks, stat.start_ticks);
    let own = Stat::parse(&std::fs::read("/proc/self/stat").unwrap()).unwrap();
    assert!(own.rss_bytes() > 0);
}

#[test]
fn a_held_file_follows_its_process_to_its_end() {
    let mut child = Sleeper::start();
    let mut files = StatFiles::with_budget(8);
    let pid = child.pid();
    assert!(!files.read(pid, true, true).unwrap().is_zombie());
    child.end();
    assert!(files.read(pid, true, false).unwrap().is_zombie());
    // Reaped, its pid is free for another process: the held file reads nothing (ESRCH),
    // so whatever has that pid now is never taken for it.
    child.reap();
    assert_eq!(files.read(pid, true, false), Err(Missing::Gone));
    assert_eq!(files.open(), 0, "a gone process's file is closed");
}

#[test]
fn files_are_held_within_the_budget_and_only_while_sampled() {
    let (a, b) = (Sleeper::start(), Sleeper::start());
    let mut files = StatFiles::with_budget(1);
    files.read(a.pid(), true, true).unwrap();
    files.read(b.pid(), true, true).unwrap();
    assert_eq!(files.open(), 1, "over the budget: opened, read and closed");
    // Not kept (a one-off read): the held file goes at the end of the next round.
    files.read(a.pid(), false, true).unwrap();
    files.end_round();
    assert_eq!(files.open(), 1, "kept in the round that opened it");
    files.read(a.pid(), false, true).unwrap();
    files.end_round();
    assert_eq!(files.open(), 0, "not kept since: closed");
    assert_eq!(files.read(-1, true, true), Err(Missing::Gone));
}

/// The layout of the kernel's `struct clone_args` up to `cgroup` (Linux 5.7).
#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

/// A child forked with the pid `pid` (`clone3` with `set_tid`, which needs root), or why
/// the kernel refused. It waits for a signal, and is killed and reaped when dropped.
struct Reused(i32);

impl Reused {
    fn fork_as(pid: i32) -> Result<Reused, std::io::Error> {
        let tid = [pid];
        let args = CloneArgs {
            exit_signal: libc::SIGCHLD as u64,
            set_tid: tid.as_ptr() as u64,
            set_tid_size: 1,
            ..CloneArgs::default()
        };
        // SAFETY: a fork (no shared memory, no CLONE_VM); the child only waits for the
        // signal that ends it, both async-signal-safe.
        let got = unsafe {
            libc::syscall(
                libc::SYS_clone3,
                &args as *const CloneArgs,
                std::mem::size_of::<CloneArgs>(),
            )
        };
        match got {
            0 => loop {
                // SAFETY: see above.
                unsafe { libc::pause() };
            },
            n if n < 0 => Err(std::io::Error::last_os_error()),
            n => Ok(Reused(n as i32)),
        }
    }
}

impl Drop for Reused {
    fn drop(&mut self) {
        let pid = Pid::from_raw(self.0);
        let _ = kill(pid, Signal::SIGKILL);
        let _ = nix::sys::wait::waitpid(pid, None);
    }
}

#[test]
fn a_recycled_pid_is_not_read_as_the_old_process() {
    let mut child = Sleeper::start();
    let mut files = StatFiles::with_budget(8);
    let pid = child.pid();
    files.read(pid, true, true).unwrap();
    child.end();
    child.reap();
    let reused = match Reused::fork_as(pid) {
        Ok(reused) => reused,
        Err(e) => {
            eprintln!(
                "a_recycled_pid_is_not_read_as_the_old_process: skipped, no clone3 with a chosen pid here ({e})"
            );
            return;
        }
    };
    assert_eq!(reused.0, pid);
    // The pid names a live process again, and reading it by name finds it...
    let now = Stat::parse(&std::fs::read(format!("/proc/{pid}/stat")).unwrap()).unwrap();
    assert!(!now.is_zombie());
    // ...but the file held for the old process does not read the new one.
    assert_eq!(files.read(pid, true, false), Err(Missing::Gone));
    // Found alive by a walk (`fresh`), the pid is opened anew: the new process.
    let again = files.read(pid, true, true).unwrap();
    assert_eq!((again.ppid, again.start_ticks), (now.ppid, now.start_ticks));
    assert_eq!(
        now.ppid,
        std::process::id() as i32,
        "the new process is ours"
    );
}
