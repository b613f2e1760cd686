//! The spawner's two ways into a cgroup v2: born there by `clone3`, or joining before
//! `execve` (forced here, as kernels without `CLONE_INTO_CGROUP` get it), and how a
//! refused cgroup is reported. The cgroups are made below the test's own and removed.

use std::io::Read;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::*;
use crate::process::env::Env;
use crate::process::test_cgroup::{Leaf, full_pipe, open_path};

/// Spawn `cat /proc/self/cgroup` with its cgroup v2 folder at `cgroup`; returns how it
/// was spawned, and what it printed once it exited (it is reaped here).
fn cat_own_cgroup(cgroup: &OwnedFd, via: Via) -> Result<(bool, String), (Option<Step>, io::Error)> {
    cat(
        "/proc/self/cgroup",
        Some(cgroup.as_raw_fd()),
        via,
        Table::Shared,
    )
}

/// `/bin/cat FILE`, spawned in `cgroup` (if any) by `via` on a `table`: whether it was
/// born in its cgroup, and what it printed, read to the end (which only comes if no copy
/// of the pipe's write end stayed behind in warden). It is reaped here.
fn cat(
    file: &str,
    cgroup: Option<RawFd>,
    via: Via,
    table: Table,
) -> Result<(bool, String), (Option<Step>, io::Error)> {
    let (read, write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).unwrap();
    let null: OwnedFd = std::fs::File::open("/dev/null").unwrap().into();
    let (write, null) = (above_stdio(write).unwrap(), above_stdio(null).unwrap());
    let prep = Prepared::new(
        Path::new("/bin/cat"),
        &["cat".into(), file.into()],
        &Env::from(Vec::new()),
        Path::new("/"),
        [null.as_raw_fd(), write.as_raw_fd(), null.as_raw_fd()],
        false,
        Become {
            identity: None,
            umask: None,
            cgroup,
            v1_tasks: Vec::new(),
        },
    )
    .unwrap();
    let forked = spawn(&prep, via, table)?;
    drop(write);
    let out = read_to_end(read, Instant::now() + Duration::from_secs(30));
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

#[test]
fn a_child_slow_to_exec_holds_up_no_spawn_on_another_thread() {
    use std::sync::mpsc;
    // The slow child's "v1 `tasks`" is a full pipe: it blocks writing its `0` there,
    // before `execve`, and the thread that cloned it waits.
    let (mut drain, tasks) = full_pipe();
    let (tid_tx, tid) = mpsc::channel();
    let slow = std::thread::spawn(move || {
        tid_tx.send(nix::unistd::gettid().as_raw()).unwrap();
        let null = above_stdio(std::fs::File::open("/dev/null").unwrap().into()).unwrap();
        let become_ = Become {
            identity: None,
            umask: None,
            cgroup: None,
            v1_tasks: vec![tasks.as_raw_fd()],
        };
        let prep = Prepared::new(
            Path::new("/bin/true"),
            &["true".into()],
            &Env::from(Vec::new()),
            Path::new("/"),
            [null.as_raw_fd(); 3],
            false,
            become_,
        )
        .unwrap();
        let forked = spawn(&prep, Via::Best, Table::Shared).unwrap();
        nix::sys::wait::waitid(
            nix::sys::wait::Id::PIDFd(std::os::fd::AsFd::as_fd(&forked.pidfd)),
            nix::sys::wait::WaitPidFlag::WEXITED,
        )
        .unwrap();
    });
    // Cloned once its thread has a child.
    let children = format!("/proc/self/task/{}/children", tid.recv().unwrap());
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::fs::read_to_string(&children)
        .unwrap()
        .trim()
        .is_empty()
    {
        assert!(Instant::now() < deadline, "the slow child never started");
        std::thread::sleep(Duration::from_millis(5));
    }
    let (done, other) = mpsc::channel();
    std::thread::spawn(move || done.send(cat_own_status(Table::Shared)));
    let other = other.recv_timeout(Duration::from_secs(10));
    // Let the slow child go on (room for its `0`), whatever happened to the other.
    drain.read_exact(&mut [0; 4096]).unwrap();
    slow.join().unwrap();
    let status = other.expect("a spawn on another thread waited for the slow child's execve");
    assert!(status.contains("\nPid:"), "{status}");
}

/// What `/bin/cat /proc/self/status` says when spawned with `table`.
fn cat_own_status(table: Table) -> String {
    cat("/proc/self/status", None, Via::Best, table).unwrap().1
}

/// Everything until end of file, or a panic at `deadline` (a writer left open).
fn read_to_end(fd: OwnedFd, deadline: Instant) -> String {
    use std::os::fd::AsFd;
    let mut file = std::fs::File::from(fd);
    let mut out = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(
            !left.is_zero(),
            "no end of file: {:?}",
            String::from_utf8_lossy(&out)
        );
        let mut poll = [nix::poll::PollFd::new(
            file.as_fd(),
            nix::poll::PollFlags::POLLIN,
        )];
        let ms = u16::try_from(left.as_millis()).unwrap_or(u16::MAX);
        if nix::poll::poll(&mut poll, ms).unwrap() == 0 {
            continue;
        }
        let mut buf = [0u8; 4096];
        match file.read(&mut buf).unwrap() {
            0 => return String::from_utf8(out).unwrap(),
            n => out.extend_from_slice(&buf[..n]),
        }
    }
}

/// `FDSize` of a `/proc/PID/status`: how many slots the descriptor table has.
fn fd_size(status: &str) -> usize {
    status
        .lines()
        .find_map(|l| l.strip_prefix("FDSize:"))
        .unwrap_or_else(|| panic!("no FDSize in {status:?}"))
        .trim()
        .parse()
        .unwrap()
}

#[test]
fn children_do_not_get_a_copy_of_wardens_descriptor_table() {
    // Room for the descriptors below (and for the tests running beside this one).
    let (soft, hard) =
        nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE).unwrap();
    if hard < 4096 {
        eprintln!("descriptor table: skipped, the hard descriptor limit is {hard}");
        return;
    }
    nix::sys::resource::setrlimit(
        nix::sys::resource::Resource::RLIMIT_NOFILE,
        soft.max(4096),
        hard,
    )
    .unwrap();
    // Reserved before the table grows, as the spawner does at its start.
    reserve_slots();
    // A table like warden's with hundreds of runs (each holds a pidfd and pipes).
    let null = std::fs::File::open("/dev/null").unwrap();
    let held: Vec<OwnedFd> = (0..1100)
        .map(|_| null.try_clone().unwrap().into())
        .collect();
    let ours = fd_size(&std::fs::read_to_string("/proc/self/status").unwrap());
    assert!(ours >= 1024, "the test's table is only {ours} slots");
    // The comparison that shows the test can tell: a copied table is as large as ours,
    // and stays that size after `execve` closed its descriptors.
    let copied = fd_size(&cat_own_status(Table::Copied));
    assert!(copied >= 1024, "a copied table has {copied} slots");
    // The child's own table holds the descriptors below the slots only.
    let shared = fd_size(&cat_own_status(Table::Shared));
    assert!(
        shared < ours && shared <= 256,
        "the child's table has {shared} slots, warden's {ours}"
    );
    drop(held);
}

#[test]
fn spawning_leaves_wardens_own_descriptors_alone() {
    use std::os::fd::BorrowedFd;
    let identity = |fd: i32| {
        // SAFETY: 0, 1 and 2 stay open for the test's life (or fstat says EBADF).
        let fd = unsafe { BorrowedFd::borrow_raw(fd) };
        nix::sys::stat::fstat(fd).map(|s| (s.st_dev, s.st_ino)).ok()
    };
    let before: Vec<_> = (0..3).map(identity).collect();
    for table in [Table::Shared, Table::Copied, Table::Shared] {
        // The child's stdout is the pipe it was given, read to its end.
        assert!(cat_own_status(table).contains("\nPid:"), "{table:?}");
    }
    let after: Vec<_> = (0..3).map(identity).collect();
    assert_eq!(before, after, "the child's dup2s reached warden's table");
    // Between spawns the slots hold nothing of a child's.
    with_slots(|slots| {
        let slots = slots.as_ref().expect("slots reserved");
        for slot in &slots.fds {
            let link = std::fs::read_link(format!("/proc/self/fd/{}", slot.as_raw_fd())).unwrap();
            assert_eq!(link, Path::new("/dev/null"));
        }
    });
}
