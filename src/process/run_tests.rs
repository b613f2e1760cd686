//! A run's end in its cgroup: what it takes to know that nothing of the tree is left.
//! The cgroups are made below the test's own (no controller, nothing of the test
//! process moves) and removed, with whatever is in them killed, also when a test fails.

use std::time::{Duration, Instant};

use super::cgroup::{Cgroups, HardLimits};
use super::test_cgroup::Leaf;
use super::*;

/// warden's subtree for one test, below the test's own cgroup v2.
struct Subtree {
    _leaf: Leaf,
    cgroups: Arc<Cgroups>,
}

impl Subtree {
    /// `None` (with the reason printed) where this test may not create cgroups.
    fn new(test: &str) -> Option<Subtree> {
        let leaf = Leaf::new(test)?;
        let cgroups = Arc::new(Cgroups::for_tests(leaf.dir.clone(), leaf.shown.clone()));
        Some(Subtree {
            _leaf: leaf,
            cgroups,
        })
    }
}

/// A run of `argv` in a cgroup of its own below `tree`.
async fn start(tree: &Subtree, spawner: &Spawner, leaf: &str, argv: &[&str]) -> Run {
    let cgroup = Arc::new(tree.cgroups.create(leaf, &HardLimits::default()).unwrap());
    let launch = Launch::plain(argv, Some(cgroup.placement().unwrap()));
    let spawned = spawner.spawn(launch).await.unwrap();
    Run {
        handle: spawned.handle,
        run_id: leaf.into(),
        registry: spawner.registry().clone(),
        cgroup: Some(cgroup),
        started: Instant::now(),
        credentials: None,
    }
}

/// The cgroup holds every live process of the run: once it is empty and the leader's
/// group has no member left, the run is over without a look at warden's children.
#[tokio::test]
async fn a_run_whose_cgroup_is_empty_ends_without_a_sweep() {
    let Some(tree) = Subtree::new("empty") else {
        return;
    };
    let spawner = Spawner::start().unwrap();
    let run = start(&tree, &spawner, "lone@1", &["sleep", "60"]).await;
    let dir = run.cgroup.as_ref().unwrap().dir();
    run.kill();
    let end = tokio::time::timeout(Duration::from_secs(10), run.finished())
        .await
        .unwrap();
    assert_eq!(end.status.signal, Some(libc::SIGKILL));
    assert!(!end.survivors);
    assert_eq!(
        spawner.registry().sweeps.started(),
        0,
        "a sweep was taken for a run whose cgroup said it was empty"
    );
    assert!(!dir.exists(), "the run's cgroup was not removed");
}

/// `ended` is the run's end without the removal of its cgroup, which `release` does, so
/// that a restart need not wait for it.
#[tokio::test]
async fn the_cgroup_of_an_ended_run_is_removed_by_release() {
    let Some(tree) = Subtree::new("release") else {
        return;
    };
    let spawner = Spawner::start().unwrap();
    let run = start(&tree, &spawner, "brief@1", &["sh", "-c", "exit 3"]).await;
    let cg = run.cgroup.clone().unwrap();
    let end = tokio::time::timeout(Duration::from_secs(10), run.ended())
        .await
        .unwrap();
    assert_eq!(end.status.code, Some(3));
    assert!(!end.survivors);
    assert!(!cg.populated());
    assert!(cg.dir().exists(), "`ended` removed the cgroup");
    run.release(&end).await;
    assert!(!cg.dir().exists(), "`release` did not remove the cgroup");
}

/// A run's end writes `cgroup.kill` only while the cgroup is populated, which relies on
/// this: a leader that has exited, still an unreaped zombie, leaves its cgroup empty.
#[tokio::test]
async fn an_exited_leader_does_not_keep_its_cgroup_populated() {
    let Some(tree) = Subtree::new("zombie") else {
        return;
    };
    let spawner = Spawner::start().unwrap();
    let run = start(&tree, &spawner, "lone@1", &["sleep", "60"]).await;
    let cg = run.cgroup.clone().unwrap();
    assert!(cg.populated());
    assert!(run.handle.signal_group(Signal::SIGKILL));
    let status = tokio::time::timeout(Duration::from_secs(10), run.handle.exited())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status.signal, Some(libc::SIGKILL));
    assert!(
        tree::group_alive(&run.handle),
        "the leader was reaped: the test must look at a zombie"
    );
    assert!(!cg.populated(), "a zombie leader counts as populated");
    let end = tokio::time::timeout(Duration::from_secs(10), run.finished())
        .await
        .unwrap();
    assert!(!end.survivors);
}
