//! Whole-tree killing and orphan reaping.
//!
//! A process group does not hold a tree together: a descendant may `setsid()` or
//! double-fork out of it. warden is a child subreaper, so such escapees are re-parented
//! to warden when their parent dies; every child carries `WARDEN_RUN_ID` in its
//! environment, which survives setsid and re-parenting and tells us which run an adopted
//! orphan belongs to. A tree is therefore: the process group, the leader's descendants,
//! and the adopted orphans of that run with their descendants.
//!
//! Reaping here is by pid, never `waitpid(-1)`: only children that are not in the
//! spawner's registry (adopted orphans, whoever they descend from: as pid 1 that is
//! every orphan of the namespace) are reaped, so no exit status that a
//! [`super::ChildHandle`] waits for is ever stolen.

use std::collections::{HashMap, HashSet};
use std::fs;

use nix::sys::signal::Signal;
use nix::sys::wait::{Id, WaitPidFlag, waitid, waitpid};
use nix::unistd::Pid;

use super::child::{ChildHandle, pidfd_open, pidfd_send_signal};
use super::registry::{Adopted, Registry};

/// The environment variable that marks every process of one run.
pub const RUN_ID_VAR: &str = "WARDEN_RUN_ID";

/// Whether `/proc` shows warden's own pid namespace. In a namespace without a `/proc` of
/// its own (`unshare --pid` without `--mount-proc`), the pids under `/proc` are another
/// namespace's: reading them would name the wrong processes, so nothing is read and
/// trees are reached through their process groups and pidfds alone.
pub fn proc_is_ours() -> bool {
    static OURS: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *OURS.get_or_init(|| {
        fs::read_to_string("/proc/self/stat")
            .ok()
            .and_then(|s| s.split_whitespace().next()?.parse::<u32>().ok())
            == Some(std::process::id())
    })
}

/// Direct children of `pid`, across all its threads. Runs once per process and sample,
/// so it is frugal: a single-threaded process (the `task` folder's link count is 2 + its
/// threads) has one `children` file to read, and no file is `stat`ed for a size hint.
pub(super) fn children_of(pid: i32) -> Vec<i32> {
    use std::os::unix::fs::MetadataExt;
    let mut out = Vec::new();
    if !proc_is_ours() {
        return out;
    }
    let mut buf = Vec::new();
    let task = format!("/proc/{pid}/task");
    match fs::metadata(&task).map(|m| m.nlink()) {
        Ok(3) => read_ids(&format!("{task}/{pid}/children"), &mut buf, &mut out),
        Ok(_) => {
            for t in fs::read_dir(&task).into_iter().flatten().flatten() {
                let path = t.path().join("children");
                read_ids(&path.to_string_lossy(), &mut buf, &mut out);
            }
        }
        Err(_) => {}
    }
    out
}

/// warden's children that can be adopted orphans: those of its main thread, one file
/// where reading every thread's costs one per thread (ten or so), on every run's end.
///
/// `/proc/PID/task/TID/children` lists the children whose parent is the thread TID: the
/// thread that forked them, or the one they were re-parented to. An orphan goes to the
/// subreaper's first live thread (the kernel's `find_new_reaper`, through
/// `find_alive_thread`, walks the thread group from its leader), and so do the children
/// of a thread that exits: to warden's main thread, which lives as long as warden does
/// (`main` blocks on the runtime; when it returns, the process exits). The other threads'
/// children are those they forked and someone waits for (the spawner's leaders, exec
/// probes, the guard): never an adopted orphan. `orphans_are_children_of_the_main_thread`
/// checks those semantics on the running kernel.
pub(super) fn adoptable_children() -> Vec<i32> {
    let mut out = Vec::new();
    if proc_is_ours() {
        let me = std::process::id();
        read_ids(
            &format!("/proc/{me}/task/{me}/children"),
            &mut Vec::new(),
            &mut out,
        );
    }
    out
}

/// The pids listed in a `children` file, appended to `out`.
fn read_ids(path: &str, buf: &mut Vec<u8>, out: &mut Vec<i32>) {
    use std::io::Read;
    buf.clear();
    let Ok(mut file) = fs::File::open(path) else {
        return;
    };
    let mut chunk = [0u8; 512];
    loop {
        match file.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    out.extend(
        buf.split(u8::is_ascii_whitespace)
            .filter_map(|s| std::str::from_utf8(s).ok()?.parse::<i32>().ok()),
    );
}

fn run_id_of(pid: i32) -> Option<String> {
    if !proc_is_ours() {
        return None;
    }
    let environ = fs::read(format!("/proc/{pid}/environ")).ok()?;
    let prefix = format!("{RUN_ID_VAR}=");
    environ
        .split(|&b| b == 0)
        .find_map(|kv| kv.strip_prefix(prefix.as_bytes()))
        .map(|v| String::from_utf8_lossy(v).into_owned())
}

/// Parent pid, from `/proc/PID/stat` (the field after the parenthesised command name).
pub(super) fn ppid_of(pid: i32) -> Option<i32> {
    if !proc_is_ours() {
        return None;
    }
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &stat[stat.rfind(')')? + 2..];
    after.split_whitespace().nth(1)?.parse().ok()
}

/// Every live process of a run, except the leader: the leader's descendants and the
/// run's adopted orphans (`roots`, from a [`Sweep`]) with theirs. Found by walking
/// children links, so each pid comes with the parent it was seen under.
fn members(leader: Option<&ChildHandle>, roots: &[i32]) -> Vec<(i32, i32)> {
    let me = std::process::id() as i32;
    let mut stack: Vec<(i32, i32)> = roots.iter().map(|&r| (r, me)).collect();
    if let Some(l) = leader.filter(|l| !l.is_reaped()) {
        stack.extend(
            children_of(l.pid().as_raw())
                .into_iter()
                .map(|c| (c, l.pid().as_raw())),
        );
    }
    let mut seen: HashSet<i32> = HashSet::new();
    let mut out = Vec::new();
    while let Some((pid, parent)) = stack.pop() {
        if !seen.insert(pid) {
            continue;
        }
        stack.extend(children_of(pid).into_iter().map(|c| (c, pid)));
        out.push((pid, parent));
    }
    out
}

/// Send each of `sigs`, in order, to the whole tree of a run: its group and every
/// descendant that left it (`roots`: the run's adopted orphans, from a [`Sweep`] taken
/// after the caller decided to signal). Returns how many processes outside the group
/// were signalled.
pub fn signal_tree(leader: &ChildHandle, roots: &[i32], sigs: &[Signal]) -> usize {
    for &sig in sigs {
        leader.signal_group(sig);
    }
    let mut sent = 0;
    for (pid, parent) in members(Some(leader), roots) {
        // The pid was read from its parent's children list; re-check that link after
        // taking a pidfd, so a pid recycled in between is never signalled.
        let Ok(fd) = pidfd_open(Pid::from_raw(pid)) else {
            continue;
        };
        if ppid_of(pid) == Some(parent) && sigs.iter().all(|&s| pidfd_send_signal(&fd, s).is_ok()) {
            sent += 1;
        }
    }
    sent
}

/// Whether anything of the run is still alive or unreaped. Call after the leader has been
/// reaped, with `roots` from a sweep taken after that; zombies of the group keep it
/// "alive" until a sweep collects them, which is what we want: the group id stays
/// reserved until the last member is gone. So does a zombie anywhere in the tree: it
/// died after the sweep listed warden's children, and its own children have moved to
/// warden since, where only the next sweep sees them.
pub fn tree_alive(leader: &ChildHandle, roots: &[i32]) -> bool {
    group_alive(leader) || !members(None, roots).is_empty()
}

/// Whether any process, zombies included, is still in the leader's group.
pub fn group_alive(leader: &ChildHandle) -> bool {
    nix::sys::signal::killpg(leader.pgid(), None).is_ok()
}

/// Reap every exited child of warden that nobody else waits for: adopted orphans.
/// A child being spawned is never mistaken for one: the main thread's children never
/// include it (its parent is a spawner thread), and the look at all of warden's children
/// waits for spawns to be registered.
pub fn reap_orphans(registry: &Registry) -> usize {
    reap(registry).0
}

/// [`reap_orphans`], which also returns the adopted orphans it found alive.
pub(super) fn reap(registry: &Registry) -> (usize, Vec<i32>) {
    let mut reaped = 0;
    let mut alive = Vec::new();
    {
        let managed = registry.managed.lock().unwrap_or_else(|e| e.into_inner());
        for child in adoptable_children() {
            if managed.contains(&child) {
                continue;
            }
            match waitpid(Pid::from_raw(child), Some(WaitPidFlag::WNOHANG)) {
                Ok(nix::sys::wait::WaitStatus::StillAlive) => alive.push(child),
                Ok(_) => reaped += 1,
                Err(_) => {}
            }
        }
    }
    let managed = registry.settled();
    // Without a /proc of warden's own pid namespace (a container that shows the host's,
    // or none), the scan above finds nothing. So also ask the kernel, one exited child at
    // a time, without reaping it (WNOWAIT), and reap it by pid unless someone waits for
    // it; a managed leader in the way ends this round (its task reaps it, and its
    // SIGCHLD-driven next round goes on).
    let peek = WaitPidFlag::WEXITED | WaitPidFlag::WNOHANG | WaitPidFlag::WNOWAIT;
    while let Ok(status) = waitid(Id::All, peek) {
        match status.pid() {
            Some(pid) if !managed.contains(&pid.as_raw()) => {
                let _ = waitpid(pid, Some(WaitPidFlag::WNOHANG));
                reaped += 1;
            }
            _ => break,
        }
    }
    (reaped, alive)
}

/// Sweep now: reap exited adopted orphans, index the live ones by run.
pub(super) fn sweep(registry: &Registry) -> Adopted {
    Adopted::of(reap(registry).1)
}

/// Reap the (exited) leader and forget it, under the registry's lock: a spawn that is
/// given the freed pid registers it only after it has been forgotten here.
pub fn reap_and_unregister(registry: &Registry, leader: &ChildHandle) -> std::io::Result<()> {
    let mut managed = registry.managed.lock().unwrap_or_else(|e| e.into_inner());
    let reaped = leader.reap();
    managed.remove(&leader.pid().as_raw());
    reaped
}

impl Adopted {
    pub fn scan(registry: &Registry) -> Adopted {
        let orphans: Vec<i32> = {
            // Main-thread children only: a child being spawned is not among them.
            let managed = registry.managed.lock().unwrap_or_else(|e| e.into_inner());
            adoptable_children()
                .into_iter()
                .filter(|child| !managed.contains(child))
                .collect()
        };
        Adopted::of(orphans)
    }

    /// Build from a list of live adopted orphans (their environments are read here).
    pub(super) fn of(orphans: impl IntoIterator<Item = i32>) -> Adopted {
        let mut by_run: HashMap<String, Vec<i32>> = HashMap::new();
        for child in orphans {
            if let Some(run_id) = run_id_of(child) {
                by_run.entry(run_id).or_default().push(child);
            }
        }
        Adopted(by_run)
    }
}

/// The live pids of a run's tree, leader first: the leader, its descendants, and the
/// orphans adopted from the run with their descendants.
pub fn pids(leader: &ChildHandle, run_id: &str, adopted: &Adopted) -> Vec<i32> {
    let mut stack: Vec<i32> = adopted.0.get(run_id).cloned().unwrap_or_default();
    if !leader.is_reaped() {
        stack.push(leader.pid().as_raw());
    }
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    while let Some(pid) = stack.pop() {
        if seen.insert(pid) {
            out.push(pid);
            stack.extend(children_of(pid));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};

    use super::*;

    /// The kernel semantics [`adoptable_children`] relies on, checked in a process of its
    /// own (the test binary again, running only [`in_a_subreaper`]): making a process a
    /// subreaper must not change the process the other tests run in.
    #[test]
    fn orphans_are_children_of_the_main_thread() {
        let out = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "process::tree::tests::in_a_subreaper",
                "--ignored",
                "--test-threads=1",
            ])
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "{text}");
        assert!(text.contains("1 passed"), "the check did not run: {text}");
    }

    fn children(tid: i32) -> Vec<i32> {
        let mut out = Vec::new();
        read_ids(
            &format!("/proc/self/task/{tid}/children"),
            &mut Vec::new(),
            &mut out,
        );
        out
    }

    /// Children of the test, killed and reaped on drop, also when an assertion failed.
    /// They stay our children until reaped, so their pids cannot have been reused.
    struct Kids(std::sync::Mutex<Vec<i32>>);

    impl Kids {
        fn add(&self, pid: i32) {
            self.0.lock().unwrap().push(pid);
        }
    }

    impl Drop for Kids {
        fn drop(&mut self) {
            for &pid in self.0.lock().unwrap().iter() {
                let _ = nix::sys::signal::kill(Pid::from_raw(pid), Signal::SIGKILL);
                let _ = waitpid(Pid::from_raw(pid), None);
            }
        }
    }

    #[test]
    #[ignore = "run by orphans_are_children_of_the_main_thread, in a process of its own"]
    fn in_a_subreaper() {
        nix::sys::prctl::set_child_subreaper(true).unwrap();
        let main = std::process::id() as i32;
        let kids = std::sync::Arc::new(Kids(Default::default()));
        let k = kids.clone();
        let (orphan, own, tid) = std::thread::spawn(move || {
            let tid = nix::unistd::gettid().as_raw();
            assert_ne!(tid, main);
            // `sh`, forked by this thread, leaves `sleep` behind and exits.
            let out = Command::new("sh")
                .args(["-c", "sleep 60 >/dev/null 2>&1 & echo $!"])
                .stdout(Stdio::piped())
                .output()
                .unwrap();
            let orphan: i32 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
            k.add(orphan);
            let own = Command::new("sleep")
                .arg("60")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap()
                .id() as i32;
            k.add(own);
            assert!(
                children(tid).contains(&own),
                "a child of the thread that forked it"
            );
            assert!(
                !children(tid).contains(&orphan),
                "an orphan of the forking thread"
            );
            assert!(
                children(main).contains(&orphan),
                "the orphan is the main thread's"
            );
            assert!(!children(main).contains(&own));
            let adoptable = adoptable_children();
            assert!(adoptable.contains(&orphan) && !adoptable.contains(&own));
            (orphan, own, tid)
        })
        .join()
        .unwrap();
        // The thread has exited: its child moves to the main thread (once the kernel has
        // finished the thread's exit, a little after `join` returns).
        let deadline = Instant::now() + Duration::from_secs(10);
        while !children(main).contains(&own) {
            assert!(
                Instant::now() < deadline,
                "the child of exited thread {tid} did not move to the main thread"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        let adoptable = adoptable_children();
        assert!(adoptable.contains(&own) && adoptable.contains(&orphan));
    }
}
