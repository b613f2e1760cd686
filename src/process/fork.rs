//! The fork itself: `clone(CLONE_VM | CLONE_VFORK | CLONE_PIDFD)`, the way `posix_spawn`
//! does it, but with the child set-up warden needs (a new session, clean signals, the
//! parent-death signal) that `posix_spawn` cannot express. A run with a cgroup v2 is
//! born in it instead, by `clone3` with `CLONE_INTO_CGROUP` (`clone3.rs`), where the
//! kernel allows; where it does not, the child joins its cgroup before it execs.
//!
//! Why not `fork`: copying the address space of a supervisor holding hundreds of children
//! costs a millisecond a spawn (page tables, then copy-on-write faults in both processes),
//! which is most of a restart's latency. With `CLONE_VM | CLONE_VFORK` the child borrows
//! warden's memory until it calls `execve`, and the parent thread sleeps meanwhile; and
//! `CLONE_PIDFD` hands back a pidfd atomically, so there is no window in which the pid
//! could be recycled before we hold it.
//!
//! The descriptor table: a child cloned without `CLONE_FILES` gets a copy of warden's
//! whole table (a reference to every pipe, pidfd and log file of every run), and its
//! `execve` then closes them one by one; with hundreds of runs that was the largest part
//! of a start (see BENCHMARKS.md). So the child starts on warden's own table
//! (`CLONE_FILES`) and its first act on it is `close_range(K, ~0, CLOSE_RANGE_UNSHARE)`,
//! which gives it a private copy of descriptors `0..K` only; warden's table is not
//! touched. The child's stdio reaches it through three [`Slots`] below `K`. Each thread
//! that spawns has its own, so that spawner threads fork side by side; they are reserved
//! when the thread starts (so their numbers stay small) and kept open while it lives (so
//! that no other thread is ever handed their numbers). A child whose `K` is above another
//! thread's slots keeps those too until its `execve`, which closes them (close-on-exec).
//!
//! The child runs [`child_main`] on a stack of its own and must only make raw system
//! calls: no allocation, no locks, no panics. Everything it needs is prepared in a
//! [`Prepared`] before the clone; a failure is written into it (the memory is shared)
//! before `_exit`, and read by the parent once the clone returns.

use std::cell::RefCell;
use std::ffi::{CString, c_char, c_int, c_void};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};

use super::clone3;

/// What went wrong in the child before `execve` returned, as (step, errno).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Step {
    Cgroup,
    Setsid,
    Dup,
    Setgroups,
    Setgid,
    Setuid,
    Chdir,
    Deathsig,
    Exec,
}

const STEPS: [Step; 9] = [
    Step::Cgroup,
    Step::Setsid,
    Step::Dup,
    Step::Setgroups,
    Step::Setgid,
    Step::Setuid,
    Step::Chdir,
    Step::Deathsig,
    Step::Exec,
];

/// Who the child becomes before `execve`, and where it goes.
pub(super) struct Become {
    pub identity: Option<Identity>,
    /// `None`: keep warden's umask.
    pub umask: Option<u32>,
    /// The run's cgroup v2 folder, open: the child is born there, or joins it.
    pub cgroup: Option<RawFd>,
    /// The `tasks` files of the run's cgroup v1 folders, joined (writing `0`) first thing.
    pub v1_tasks: Vec<RawFd>,
}

/// The identity the child switches to, as the raw ids the system calls take.
pub(super) struct Identity {
    /// `-1` (as `uid_t`): keep the uid.
    pub uid: libc::uid_t,
    pub gid: libc::gid_t,
    pub groups: Vec<libc::gid_t>,
}

/// Everything the child reads, laid out before the clone.
pub(super) struct Prepared {
    program: CString,
    _argv: Vec<CString>,
    argv_ptrs: Vec<*const c_char>,
    _envp: Vec<CString>,
    envp_ptrs: Vec<*const c_char>,
    cwd: CString,
    /// Descriptors for 0, 1, 2; all at 3 or above (see [`above_stdio`]).
    stdio: [RawFd; 3],
    /// What the child `dup2`s onto 0, 1, 2: the [`Slots`] with a shared table, `stdio`
    /// without. Set by [`spawn`] just before the clone.
    child_stdio: [AtomicI32; 3],
    /// With a shared table: the `K` of `close_range(K, ~0, CLOSE_RANGE_UNSHARE)`, above
    /// the slots; `-1` when the child got a copy of the table. Set by [`spawn`].
    keep_below: AtomicI32,
    /// The run's cgroup v2 folder (see [`Become::cgroup`]).
    cgroup: Option<RawFd>,
    /// The v2 `cgroup.procs` the child joins first, where it could not be born in its
    /// cgroup; `-1` when it was (or has none). Set by [`spawn`] just before the clone.
    v2_procs: AtomicI32,
    /// See [`Become::v1_tasks`].
    v1_tasks: Vec<RawFd>,
    parent: libc::pid_t,
    deathsig: bool,
    /// The descriptor limit warden was started with (warden raised its own).
    nofile: Option<libc::rlimit>,
    identity: Option<Identity>,
    /// `-1`: keep warden's umask.
    umask: libc::mode_t,
    /// `step index + 1` (0 = none) and errno, written by the child on failure.
    failed_step: AtomicI32,
    failed_errno: AtomicI32,
}

impl Prepared {
    pub(super) fn new(
        program: &Path,
        argv: &[String],
        env: &super::env::Env,
        cwd: &Path,
        stdio: [RawFd; 3],
        deathsig: bool,
        who: Become,
    ) -> io::Result<Prepared> {
        use std::os::unix::ffi::OsStrExt;
        let nul = |e| io::Error::new(io::ErrorKind::InvalidInput, e);
        let program = CString::new(program.as_os_str().as_bytes()).map_err(nul)?;
        let argv: Vec<CString> = argv
            .iter()
            .map(|a| CString::new(a.as_bytes()))
            .collect::<Result<_, _>>()
            .map_err(nul)?;
        let envp: Vec<CString> = env
            .iter()
            .map(|(k, v)| CString::new(format!("{k}={v}")))
            .collect::<Result<_, _>>()
            .map_err(nul)?;
        let ptrs = |v: &[CString]| {
            v.iter()
                .map(|c| c.as_ptr())
                .chain([std::ptr::null()])
                .collect()
        };
        Ok(Prepared {
            argv_ptrs: ptrs(&argv),
            envp_ptrs: ptrs(&envp),
            program,
            _argv: argv,
            _envp: envp,
            cwd: CString::new(cwd.as_os_str().as_bytes()).map_err(nul)?,
            stdio,
            child_stdio: stdio.map(AtomicI32::new),
            keep_below: AtomicI32::new(-1),
            cgroup: who.cgroup,
            v2_procs: AtomicI32::new(-1),
            v1_tasks: who.v1_tasks,
            parent: std::process::id() as libc::pid_t,
            deathsig,
            nofile: super::limits::child_nofile(),
            identity: who.identity,
            umask: who.umask.map_or(libc::mode_t::MAX, |m| m as libc::mode_t),
            failed_step: AtomicI32::new(0),
            failed_errno: AtomicI32::new(0),
        })
    }
}

/// Size of the child's stack until `execve`: it only makes a handful of system calls.
const CHILD_STACK: usize = 64 * 1024;

/// How the child may be created.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Via {
    /// Born in its cgroup with `clone3` where the run has one and the kernel allows.
    Best,
    /// `clone`, then the child joins its cgroup: what kernels without `clone3`'s
    /// `CLONE_INTO_CGROUP` get (tests force it to check that path).
    #[cfg_attr(not(test), allow(dead_code))]
    Clone,
}

/// How the child gets its descriptor table (see the module doc).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Table {
    /// warden's own (`CLONE_FILES`), traded at once for a copy of its first slots.
    Shared,
    /// A copy of the whole table, closed at `execve`: what a child gets when the slots
    /// cannot be reserved (tests compare the two).
    #[cfg_attr(not(test), allow(dead_code))]
    Copied,
}

/// Three descriptors at low numbers through which the child's stdio travels with a
/// shared table. Between spawns they are `/dev/null`: they are never closed, so no other
/// thread can be given one of their numbers and see it replaced under its feet.
struct Slots {
    fds: [OwnedFd; 3],
    null: OwnedFd,
}

impl Slots {
    fn open() -> io::Result<Slots> {
        let null: OwnedFd = std::fs::File::open("/dev/null")?.into();
        let slot = || {
            // SAFETY: F_DUPFD_CLOEXEC returns a new descriptor we own, or -1. At 3 or
            // above, so that the child's `dup2`s onto 0, 1, 2 never overwrite a slot.
            let fd = unsafe { libc::fcntl(null.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 3) };
            if fd < 0 {
                return Err(io::Error::last_os_error());
            }
            // SAFETY: just created, owned by nobody else.
            Ok(unsafe { OwnedFd::from_raw_fd(fd) })
        };
        Ok(Slots {
            fds: [slot()?, slot()?, slot()?],
            null,
        })
    }

    /// `K`: the child keeps descriptors below it.
    fn keep_below(&self) -> RawFd {
        self.fds.iter().map(AsRawFd::as_raw_fd).max().unwrap_or(2) + 1
    }

    /// Put `fds` into the slots (`Err` leaves some of them holding a child's descriptor;
    /// the caller then drops the slots).
    fn fill(&self, fds: [RawFd; 3]) -> io::Result<()> {
        for (slot, fd) in self.fds.iter().zip(fds) {
            // SAFETY: both descriptors are open; the slot's number is ours alone.
            if unsafe { libc::dup3(fd, slot.as_raw_fd(), libc::O_CLOEXEC) } < 0 {
                return Err(io::Error::last_os_error());
            }
        }
        Ok(())
    }
}

thread_local! {
    /// This thread's slots; `None` until first used (or after they could not be
    /// refilled). Each spawning thread has its own, so that spawns on different threads
    /// run side by side: one child at a time travels through a thread's slots.
    static SLOTS: RefCell<Option<Slots>> = const { RefCell::new(None) };
}

/// Run `f` on this thread's slots, reserved now if they are not yet.
fn with_slots<T>(f: impl FnOnce(&mut Option<Slots>) -> T) -> T {
    SLOTS.with_borrow_mut(|slots| {
        if slots.is_none() {
            *slots = Slots::open()
                .map_err(|e| tracing::warn!("cannot reserve descriptors for spawning ({e}): children get a copy of warden's descriptor table"))
                .ok();
        }
        f(slots)
    })
}

/// Reserve this thread's slots while warden's descriptor numbers are still small (each
/// spawner thread calls this as it starts; its first spawn would otherwise).
pub(super) fn reserve_slots() {
    with_slots(|_| ());
}

/// A started child.
#[derive(Debug)]
pub(super) struct Forked {
    pub pid: libc::pid_t,
    pub pidfd: OwnedFd,
    /// Created in its cgroup v2 by `clone3`, rather than moved there before `execve`
    /// (what the tests check).
    #[cfg_attr(not(test), allow(dead_code))]
    pub born_in_cgroup: bool,
}

/// Set once the kernel has refused `clone3` with `CLONE_INTO_CGROUP` (too old, or a
/// seccomp filter that answers ENOSYS, as container runtimes' default ones do): from then
/// on every child joins its cgroup, without a failing system call first.
static CLONE3_REFUSED: AtomicBool = AtomicBool::new(false);

/// Clone and exec. Returns the child, or the step that failed with its errno (the child
/// is then already reaped).
pub(super) fn spawn(
    prep: &Prepared,
    via: Via,
    table: Table,
) -> Result<Forked, (Option<Step>, io::Error)> {
    if table == Table::Copied {
        return spawn_copied(prep, via);
    }
    with_slots(|held| {
        let Some(slots) = held.as_ref() else {
            return spawn_copied(prep, via);
        };
        if let Err(e) = slots.fill(prep.stdio) {
            held.take();
            return Err((Some(Step::Dup), e));
        }
        for (to, slot) in prep.child_stdio.iter().zip(&slots.fds) {
            to.store(slot.as_raw_fd(), Ordering::Relaxed);
        }
        prep.keep_below.store(slots.keep_below(), Ordering::Relaxed);
        let result = spawn_with(prep, via, true);
        // The slots must not keep the child's pipes open (its output would never end).
        if let Err(e) = slots.fill([slots.null.as_raw_fd(); 3]) {
            tracing::warn!("cannot empty the spawning descriptors ({e}): reserving new ones");
            held.take();
        }
        result
    })
}

/// [`spawn`] with a copy of warden's table for the child, closed at `execve`.
fn spawn_copied(prep: &Prepared, via: Via) -> Result<Forked, (Option<Step>, io::Error)> {
    for (to, &fd) in prep.child_stdio.iter().zip(&prep.stdio) {
        to.store(fd, Ordering::Relaxed);
    }
    prep.keep_below.store(-1, Ordering::Relaxed);
    spawn_with(prep, via, false)
}

/// [`spawn`] once the child's stdio is in place; `share`: `CLONE_FILES`.
fn spawn_with(prep: &Prepared, via: Via, share: bool) -> Result<Forked, (Option<Step>, io::Error)> {
    let mut stack = vec![0u8; CHILD_STACK];
    let files = if share { libc::CLONE_FILES } else { 0 };
    let mut pidfd: c_int = -1;
    let arg = prep as *const Prepared as *mut c_void;
    let mut born_in_cgroup = false;
    // Signals stay blocked across the clone: a handler of warden's must never run in the
    // child, which shares warden's memory until it execs. The child resets every
    // disposition before unblocking.
    let mut all: libc::sigset_t = unsafe { std::mem::zeroed() };
    let mut old: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: valid sigset pointers; the spawner thread's mask is restored below.
    unsafe {
        libc::sigfillset(&mut all);
        libc::pthread_sigmask(libc::SIG_SETMASK, &all, &mut old);
    }
    let cloned = (|| {
        let Some(dir) = prep.cgroup else {
            return plain_clone(&mut stack, &mut pidfd, arg, files);
        };
        if via == Via::Best && !CLONE3_REFUSED.load(Ordering::Relaxed) {
            // SAFETY: as for `plain_clone`: `stack` and `prep` outlive the child's use of
            // them, since the parent is suspended until the child execs or exits.
            match unsafe { clone3::spawn(dir, share, &mut stack, &mut pidfd, child_main, arg) } {
                clone3::Outcome::Child(pid) => {
                    born_in_cgroup = true;
                    return Ok(pid);
                }
                // No clone3 (ENOSYS: before 5.3, or a seccomp filter; EPERM: older
                // container runtimes' filters), or no CLONE_INTO_CGROUP (E2BIG: our
                // `clone_args` is larger than the kernel knows, before 5.7; EINVAL: an
                // unknown flag). Nothing was created: join instead, from now on. (A cgroup
                // that may not be written says EACCES, and the join would say it too.)
                clone3::Outcome::Failed(
                    e @ (libc::ENOSYS | libc::E2BIG | libc::EINVAL | libc::EPERM),
                ) => {
                    CLONE3_REFUSED.store(true, Ordering::Relaxed);
                    tracing::info!(
                        "the kernel refused clone3 with CLONE_INTO_CGROUP ({}): children join their cgroup before they exec",
                        io::Error::from_raw_os_error(e)
                    );
                }
                clone3::Outcome::Failed(e) => {
                    let step = cgroup_errno(e).then_some(Step::Cgroup);
                    return Err((step, io::Error::from_raw_os_error(e)));
                }
                clone3::Outcome::Unavailable => {}
            }
        }
        // The child writes `0` into this before anything else; it is closed when this
        // function returns (after the child exec'd: CLONE_VFORK).
        let procs = open_procs(dir).map_err(|e| (Some(Step::Cgroup), e))?;
        prep.v2_procs.store(procs.as_raw_fd(), Ordering::Relaxed);
        let pid = plain_clone(&mut stack, &mut pidfd, arg, files);
        prep.v2_procs.store(-1, Ordering::Relaxed);
        drop(procs);
        pid
    })();
    // SAFETY: restoring the mask saved above.
    unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut()) };
    drop(stack);
    let pid = cloned?;
    // SAFETY: with CLONE_PIDFD the kernel stored a new descriptor that we now own.
    let pidfd = unsafe { OwnedFd::from_raw_fd(pidfd) };
    let step = prep.failed_step.load(Ordering::Acquire);
    if step == 0 {
        return Ok(Forked {
            pid,
            pidfd,
            born_in_cgroup,
        });
    }
    let errno = prep.failed_errno.load(Ordering::Acquire);
    // The child has exited: reap it so it does not linger as a zombie.
    let _ = nix::sys::wait::waitid(
        nix::sys::wait::Id::PIDFd(std::os::fd::AsFd::as_fd(&pidfd)),
        nix::sys::wait::WaitPidFlag::WEXITED,
    );
    Err((
        STEPS.get(step as usize - 1).copied(),
        io::Error::from_raw_os_error(errno),
    ))
}

/// libc's `clone`: the child runs `child_main(arg)` on `stack`; `files` is
/// `CLONE_FILES` or 0.
fn plain_clone(
    stack: &mut [u8],
    pidfd: &mut c_int,
    arg: *mut c_void,
    files: c_int,
) -> Result<libc::pid_t, (Option<Step>, io::Error)> {
    // The stack grows down; keep the top 16-byte aligned as the ABI wants.
    let top = (stack.as_mut_ptr() as usize + stack.len()) & !15;
    // SAFETY: `child_main` only reads the `Prepared` behind `arg` (alive until the caller
    // returns, as the parent is suspended until the child execs or exits) and makes raw
    // system calls on its own stack, which outlives the child's use of it for the same
    // reason.
    let pid = unsafe {
        libc::clone(
            child_main,
            top as *mut c_void,
            libc::CLONE_VM | libc::CLONE_VFORK | libc::CLONE_PIDFD | files | libc::SIGCHLD,
            arg,
            pidfd as *mut c_int,
        )
    };
    if pid < 0 {
        return Err((None, io::Error::last_os_error()));
    }
    Ok(pid)
}

/// Errors of `clone3` that are about the target cgroup (not a cgroup v2 folder, gone,
/// not a leaf, not ours to write, outside our cgroup namespace), not about creating a
/// process.
fn cgroup_errno(errno: c_int) -> bool {
    matches!(
        errno,
        libc::EBADF | libc::ENODEV | libc::EBUSY | libc::EOPNOTSUPP | libc::EACCES | libc::ENOENT
    )
}

/// The `cgroup.procs` of the cgroup v2 folder open at `dir`, for writing.
fn open_procs(dir: RawFd) -> io::Result<OwnedFd> {
    // SAFETY: a NUL-terminated name relative to a directory descriptor we hold.
    let fd = unsafe {
        libc::openat(
            dir,
            c"cgroup.procs".as_ptr(),
            libc::O_WRONLY | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: just opened, owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Runs in the child, in warden's memory, until `execve`. Raw system calls only.
extern "C" fn child_main(arg: *mut c_void) -> c_int {
    // SAFETY: `arg` is the `Prepared` the parent keeps alive while it is suspended.
    let p = unsafe { &*(arg as *const Prepared) };
    let fail = |step: Step| -> c_int {
        let errno = io::Error::last_os_error().raw_os_error().unwrap_or(0);
        let index = STEPS.iter().position(|s| *s == step).unwrap_or(0) as i32 + 1;
        p.failed_errno.store(errno, Ordering::Release);
        p.failed_step.store(index, Ordering::Release);
        // SAFETY: leaving the child without running anything of warden's.
        unsafe { libc::_exit(127) }
    };
    // SAFETY: plain system calls with valid arguments; see the module doc.
    unsafe {
        // Into the run's cgroups first: from here on, whatever the child becomes and
        // forks stays in them. A child born in its cgroup v2 has nothing to join there;
        // one cloned the old way moves in now (a whole-process migration, which waits
        // for the kernel's global lock).
        let v2 = p.v2_procs.load(Ordering::Relaxed);
        if v2 >= 0 && libc::write(v2, b"0".as_ptr().cast(), 1) != 1 {
            return fail(Step::Cgroup);
        }
        // v1 through `tasks`, which moves one thread: for "0" (the caller) the kernel
        // skips the global `cgroup_threadgroup_rwsem` (and its RCU grace period) that a
        // `cgroup.procs` write takes (mainline since 2022; older kernels take it either way).
        // The child is alone in its thread group, so its one thread is the process.
        for &fd in &p.v1_tasks {
            if libc::write(fd, b"0".as_ptr().cast(), 1) != 1 {
                return fail(Step::Cgroup);
            }
        }
        // Still on warden's descriptor table (`CLONE_FILES`): nothing above may change
        // it, and from here on the child has its own, holding only descriptors below
        // the slots. A kernel before 5.9 has no CLOSE_RANGE_UNSHARE: a private copy of
        // the whole table then, as a child cloned without CLONE_FILES has.
        let keep = p.keep_below.load(Ordering::Relaxed);
        if keep >= 0
            && libc::syscall(
                libc::SYS_close_range,
                keep as u32,
                u32::MAX,
                libc::CLOSE_RANGE_UNSHARE,
            ) < 0
            && libc::unshare(libc::CLONE_FILES) < 0
        {
            return fail(Step::Dup);
        }
        // Children start clean: default dispositions (handlers would point into warden),
        // then an empty signal mask.
        let mut dfl: libc::sigaction = std::mem::zeroed();
        dfl.sa_sigaction = libc::SIG_DFL;
        for sig in 1..=libc::SIGRTMAX() {
            if sig != libc::SIGKILL && sig != libc::SIGSTOP {
                libc::sigaction(sig, &dfl, std::ptr::null_mut());
            }
        }
        // A new session, so a new process group whose id is the child's pid: signals go
        // to the whole group, and the terminal's Ctrl-C reaches warden alone.
        if libc::setsid() < 0 {
            return fail(Step::Setsid);
        }
        for (target, fd) in p.child_stdio.iter().enumerate() {
            if libc::dup2(fd.load(Ordering::Relaxed), target as c_int) < 0 {
                return fail(Step::Dup);
            }
        }
        // Raw system calls, not glibc's setuid family: those make every thread of the
        // process switch too (the `setxid` broadcast), and this child shares warden's
        // memory and so its thread list. Groups first and the uid last: once the uid is
        // dropped, the rest is no longer allowed. Before `chdir`, so that the working
        // directory is checked with the process's own permissions.
        if let Some(id) = &p.identity {
            if libc::syscall(libc::SYS_setgroups, id.groups.len(), id.groups.as_ptr()) < 0 {
                return fail(Step::Setgroups);
            }
            if libc::syscall(libc::SYS_setresgid, id.gid, id.gid, id.gid) < 0 {
                return fail(Step::Setgid);
            }
            if id.uid != libc::uid_t::MAX
                && libc::syscall(libc::SYS_setresuid, id.uid, id.uid, id.uid) < 0
            {
                return fail(Step::Setuid);
            }
        }
        if p.umask != libc::mode_t::MAX {
            libc::umask(p.umask);
        }
        if libc::chdir(p.cwd.as_ptr()) < 0 {
            return fail(Step::Chdir);
        }
        // Lowering a soft limit cannot fail; if it did, the child would merely keep more.
        if let Some(limit) = &p.nofile {
            libc::setrlimit(libc::RLIMIT_NOFILE, limit);
        }
        // Anything warden holds (pipes of other children, log files, sockets) is
        // close-on-exec already; this also covers descriptors warden inherited.
        libc::syscall(
            libc::SYS_close_range,
            3u32,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        );
        // After the switch of identity, which clears the parent-death signal.
        if p.deathsig {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong) < 0 {
                return fail(Step::Deathsig);
            }
            // warden may have died between the clone and the prctl: nobody would signal us.
            if libc::getppid() != p.parent {
                libc::_exit(1);
            }
        }
        let empty: libc::sigset_t = {
            let mut s = std::mem::zeroed();
            libc::sigemptyset(&mut s);
            s
        };
        libc::sigprocmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut());
        libc::execve(
            p.program.as_ptr(),
            p.argv_ptrs.as_ptr(),
            p.envp_ptrs.as_ptr(),
        );
    }
    fail(Step::Exec)
}

/// A descriptor for the child's stdio must not sit at 0, 1 or 2 itself, or the `dup2`s
/// could overwrite one another (warden may run with a closed stdin). Move it up.
pub(super) fn above_stdio(fd: OwnedFd) -> io::Result<OwnedFd> {
    if fd.as_raw_fd() > 2 {
        return Ok(fd);
    }
    // SAFETY: F_DUPFD_CLOEXEC returns a new descriptor we own, or -1.
    let new = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 3) };
    if new < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: just created, owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(new) })
}

#[cfg(test)]
#[path = "fork_tests.rs"]
mod tests;
