//! Spawns side by side: a clone waits for its child's `execve`, so a child slow to get
//! there must hold up its own spawner thread only. The slow child is made slow through a
//! cgroup's `tasks` file, so this needs root and a cgroup v2 (skipped, saying so, without).

use std::io::Read;
use std::time::Duration;

use super::cgroup::Placement;
use super::test_cgroup::{Leaf, full_pipe};
use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_child_slow_to_exec_holds_up_no_other_spawn() {
    if std::thread::available_parallelism().map_or(1, |n| n.get()) < 2 {
        eprintln!("side by side: skipped, one core means one spawner thread");
        return;
    }
    let Some(leaf) = Leaf::new("side-by-side") else {
        return;
    };
    let spawner = Spawner::start().unwrap();
    // The first child's "cgroup v1 `tasks`" is a full pipe: it blocks writing its `0`
    // there, before `execve`, and its spawner thread waits for it.
    let (mut drain, tasks) = full_pipe();
    let placement = Placement {
        dir: leaf.open(),
        v1_tasks: vec![tasks],
    };
    let slow = tokio::spawn({
        let spawner = spawner.clone();
        async move {
            spawner
                .spawn(Launch::plain(&["true"], Some(placement)))
                .await
        }
    });
    // It is blocked once it is in its cgroup v2 (where it is born, or which it joins
    // before its v1 `tasks`).
    let procs = leaf.dir.join("cgroup.procs");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while std::fs::read_to_string(&procs).unwrap().trim().is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "the first child never started"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let other = tokio::time::timeout(
        Duration::from_secs(10),
        spawner.spawn(Launch::plain(&["true"], None)),
    )
    .await;
    // Let the first child go on (room for its `0`), whatever happened to the second.
    drain.read_exact(&mut [0; 4096]).unwrap();
    let slow = slow
        .await
        .unwrap()
        .expect("the slow child starts once it may");
    let other = other
        .expect("the second spawn waited for the first child's execve")
        .expect("the second child starts");
    for child in [slow.handle, other.handle] {
        child.exited().await.unwrap();
        child.reap().unwrap();
    }
}
