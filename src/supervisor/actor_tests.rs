//! The actor with paused time (`start_paused`): its timeouts fire at their virtual
//! moment, so a test can tell a 30 s stop timeout from an hour without waiting for
//! either. The first tests run real processes (a shell that ignores SIGTERM), stopped by
//! the real signaller; only the clock and the signals are the test's. The last ones
//! run the actor with a [`Fake`] launcher and no process at all.
//!
//! Time moves only when the test says (`advance`): a blocking task held for the whole
//! test keeps tokio from jumping to the next timer while the runtime waits on the real
//! world (the spawner threads, a child's exit). If the actor never does what is awaited,
//! that hold ends after [`HOLD`] of real time, time runs freely, and the test's
//! (virtual) timeouts fail it.

use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use nix::sys::signal::Signal;

use super::actor::{Actor, Control, Handle, Options, ShutdownReport, Sig, Sources};
use super::core::{Input, InstanceId};
use super::event::{Event, EventKind};
use super::launch::{Msg, RunPlan};
use super::launcher::Launcher;
use crate::facts::{ExitStatus, Generation};
use crate::logs::LogSink;
use crate::process::{Run, Spawner};

/// A process that ignores SIGTERM (inherited across `exec`): only SIGKILL ends it.
const STUBBORN: &str = r#"command = ["sh", "-c", "trap '' TERM; exec sleep 1000"]"#;

/// How long time is held still, in real time, at most.
const HOLD: Duration = Duration::from_secs(20);

/// Keep tokio's paused clock from advancing on its own until dropped (or [`HOLD`]).
struct Hold(#[allow(dead_code)] std::sync::mpsc::Sender<()>);

fn hold_time() -> Hold {
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    tokio::task::spawn_blocking(move || {
        let _ = rx.recv_timeout(HOLD);
    });
    Hold(tx)
}

struct Rig {
    handle: Handle,
    signals: mpsc::UnboundedSender<Sig>,
    config_changed: mpsc::UnboundedSender<()>,
    run: tokio::task::JoinHandle<std::io::Result<ShutdownReport>>,
    _dir: tempfile::TempDir,
}

fn start(config: &str) -> Rig {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("warden.toml");
    std::fs::write(&path, config).unwrap();
    let spec = crate::config::load(&path).expect("a valid test config");
    let spawner = Spawner::start().expect("the spawner threads");
    // Unique per test: the token makes each run's `WARDEN_RUN_ID`, by which a stop finds
    // a tree's members, and two tests sharing one would stop each other's processes.
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let token = format!("actortest{}x{n}", std::process::id());
    let opts = Options {
        tee: None,
        token,
        cgroups: None,
        cgroup_status: Default::default(),
        config_text: None,
        hangup_stops: false,
        // The test's own follower is no reason to sample (no sampling ticks to step
        // through while time is paused).
        quiet_followers: 1,
    };
    let (actor, handle) = Actor::new(spec, spawner, opts);
    rig(actor, handle, dir)
}

/// Runs `actor` with the test's own signal and config-change sources.
fn rig(actor: Actor, handle: Handle, dir: tempfile::TempDir) -> Rig {
    let (signals, rx) = mpsc::unbounded_channel();
    let (config_changed, config_changes) = mpsc::unbounded_channel();
    let run = tokio::spawn(actor.run_with(Sources {
        signals: rx,
        config_changes,
    }));
    Rig {
        handle,
        signals,
        config_changed,
        run,
        _dir: dir,
    }
}

/// Every event published so far and up to the first that satisfies `pred`, waiting (in
/// virtual time, bounded) for it.
async fn until(handle: &Handle, pred: impl Fn(&Event) -> bool) -> Vec<Event> {
    let mut cursor = handle.events.follow_since(0);
    let mut seen = Vec::new();
    let wait = async {
        loop {
            let batch = cursor.take(&handle.events, u64::MAX);
            for e in batch.events {
                let done = pred(&e);
                seen.push((*e).clone());
                if done {
                    return;
                }
            }
            if batch.end || !cursor.changed().await {
                return;
            }
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(24 * 3600), wait).await;
    seen
}

/// The events so far, once the actor has answered a request sent after `advance` (it
/// has run since the clock moved).
async fn settled(handle: &Handle) -> Vec<Event> {
    let (reply, answer) = oneshot::channel();
    // Once the actor is gone, what it published is all there is.
    if handle.control.send(Control::Status { reply }).is_ok() {
        let _ = answer.await;
    }
    let mut cursor = handle.events.follow_since(0);
    let mut seen = Vec::new();
    loop {
        let batch = cursor.take(&handle.events, u64::MAX);
        if batch.events.is_empty() {
            return seen;
        }
        seen.extend(batch.events.iter().map(|e| (**e).clone()));
    }
}

/// The pid of run 1 of `name`, once it ignores SIGTERM (polled in real time: the shell
/// sets its trap on its own schedule).
async fn stubborn_pid(handle: &Handle, name: &str) -> i32 {
    let events = until(handle, |e| {
        e.name == name && matches!(e.kind, EventKind::Spawned { .. })
    })
    .await;
    let pid = events
        .iter()
        .find_map(|e| match e.kind {
            EventKind::Spawned { pid, .. } => Some(pid as i32),
            _ => None,
        })
        .expect("spawned");
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let ignored = status
            .lines()
            .find_map(|l| l.strip_prefix("SigIgn:"))
            .and_then(|m| u64::from_str_radix(m.trim(), 16).ok())
            .unwrap_or(0);
        if ignored & (1 << (libc::SIGTERM - 1)) != 0 {
            return pid;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no TERM trap: {status}"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn killed(events: &[Event]) -> Vec<Option<u64>> {
    events
        .iter()
        .filter_map(|e| match e.kind {
            EventKind::Killed { after_ms, .. } => Some(after_ms),
            _ => None,
        })
        .collect()
}

#[tokio::test(start_paused = true)]
async fn stop_timeout_escalates_to_sigkill_at_its_moment() {
    let hold = hold_time();
    let rig = start(&format!(
        "[processes.stubborn]\n{STUBBORN}\nstop_timeout = \"30s\"\n"
    ));
    stubborn_pid(&rig.handle, "stubborn").await;
    let t0 = tokio::time::Instant::now();
    let (reply, answer) = oneshot::channel();
    rig.handle
        .control
        .send(Control::Stop {
            names: vec!["stubborn".into()],
            reply,
        })
        .unwrap();
    settled(&rig.handle).await;
    tokio::time::advance(Duration::from_millis(29_900)).await;
    let early = killed(&settled(&rig.handle).await);
    assert!(
        early.is_empty(),
        "SIGKILL before the stop timeout: {early:?}"
    );
    tokio::time::advance(Duration::from_millis(100)).await;
    let answer = tokio::time::timeout(Duration::from_secs(3600), answer)
        .await
        .expect("stopped within the hour: the stop timeout escalates")
        .unwrap();
    let took = t0.elapsed();
    assert!(answer.is_ok(), "{answer:?}");
    assert!(
        took >= Duration::from_secs(30) && took < Duration::from_millis(30_010),
        "SIGKILL after the stop timeout, not before nor much later: {took:?}"
    );
    let events = until(&rig.handle, |e| matches!(e.kind, EventKind::Exited { .. })).await;
    assert_eq!(killed(&events), [Some(30_000)], "{events:#?}");
    rig.signals.send(Sig::Terminate).unwrap();
    let report = rig.run.await.unwrap().unwrap();
    assert!(!report.timed_out && !report.forced, "{report:?}");
    drop(hold);
}

#[tokio::test(start_paused = true)]
async fn shutdown_timeout_kills_what_is_left_at_its_moment() {
    let hold = hold_time();
    let rig = start(&format!(
        "[supervisor]\nshutdown_timeout = \"5s\"\n[processes.stubborn]\n{STUBBORN}\nstop_timeout = \"1h\"\n"
    ));
    stubborn_pid(&rig.handle, "stubborn").await;
    let t0 = tokio::time::Instant::now();
    rig.signals.send(Sig::Terminate).unwrap();
    settled(&rig.handle).await;
    tokio::time::advance(Duration::from_millis(4_900)).await;
    let so_far = settled(&rig.handle).await;
    assert!(
        killed(&so_far).is_empty(),
        "SIGKILL before the shutdown timeout: {so_far:#?}"
    );
    tokio::time::advance(Duration::from_millis(100)).await;
    let report = tokio::time::timeout(Duration::from_secs(2 * 3600), rig.run)
        .await
        .expect("the actor ends")
        .unwrap()
        .unwrap();
    let took = t0.elapsed();
    assert!(
        took >= Duration::from_secs(5) && took < Duration::from_millis(5_010),
        "everything SIGKILLed when the shutdown timeout ran out: {took:?}"
    );
    assert!(report.timed_out && !report.stop_timeout, "{report:?}");
    assert_eq!(report.exit_code(), 4);
    let events = until(&rig.handle, |_| false).await;
    assert_eq!(
        killed(&events),
        [None],
        "killed at once, not after stop_timeout"
    );
    drop(hold);
}

#[tokio::test(start_paused = true)]
async fn config_changes_reload_once_the_file_is_quiet() {
    // No process and no real I/O: paused time jumps straight to the actor's next timer
    // whenever everything waits, and only then, so each change below is handled at the
    // virtual moment it was sent.
    let rig = start("[supervisor]\nshutdown_timeout = \"5s\"\n");
    let reloads = |events: &[Event]| {
        events
            .iter()
            .filter(|e| matches!(e.kind, EventKind::Reloaded { .. }))
            .count()
    };
    let t0 = tokio::time::Instant::now();
    rig.config_changed.send(()).unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    // An editor's second write: the quiet period starts again.
    rig.config_changed.send(()).unwrap();
    tokio::time::sleep(Duration::from_millis(299)).await;
    let so_far = settled(&rig.handle).await;
    assert_eq!(
        reloads(&so_far),
        0,
        "reloaded before the file was quiet for 300 ms after its last change: {so_far:#?}"
    );
    let events = until(&rig.handle, |e| {
        matches!(e.kind, EventKind::Reloaded { .. })
    })
    .await;
    let took = t0.elapsed();
    assert_eq!(reloads(&events), 1, "{events:#?}");
    assert!(
        took >= Duration::from_millis(500) && took < Duration::from_millis(510),
        "reloaded 300 ms after the last change: {took:?}"
    );
    tokio::time::sleep(Duration::from_secs(5)).await;
    let events = settled(&rig.handle).await;
    assert_eq!(reloads(&events), 1, "one burst, one reload: {events:#?}");
    rig.signals.send(Sig::Terminate).unwrap();
    let report = rig.run.await.unwrap().unwrap();
    assert_eq!(report.exit_code(), 0, "{report:?}");
}

/// Children that never existed: launches are recorded and answered with `Spawned` at
/// once; a child ends when the test says ([`Fake::exit`]) or on SIGKILL (and on its stop
/// signal if `obeys_stop`). Nothing forks, so paused time runs on its own: it jumps to
/// the actor's next timer whenever everything waits, and only then.
#[derive(Clone, Default)]
struct Fake(std::sync::Arc<std::sync::Mutex<FakeState>>);

#[derive(Default)]
struct FakeState {
    obeys_stop: bool,
    /// (instance, run, when).
    launches: Vec<(String, u64, tokio::time::Instant)>,
    /// (instance, signal or `None` for SIGKILL, when).
    signals: Vec<(String, Option<Signal>, tokio::time::Instant)>,
    live: Vec<(InstanceId, Generation, String, mpsc::UnboundedSender<Msg>)>,
}

impl Fake {
    fn end(&self, name: &str, status: ExitStatus) {
        let mut s = self.0.lock().unwrap();
        let Some(i) = s.live.iter().position(|l| l.2 == name) else {
            return;
        };
        let (id, run_no, _, tx) = s.live.remove(i);
        let _ = tx.send(Msg::Input(Input::Exited {
            id,
            run_no,
            status,
            stderr_tail: Vec::new(),
            oom_kills: 0,
            memory_peak: None,
        }));
    }

    fn exit(&self, name: &str, code: i32) {
        self.end(
            name,
            ExitStatus {
                code: Some(code),
                signal: None,
            },
        );
    }
}

impl Launcher for Fake {
    fn launch(
        &mut self,
        plan: RunPlan,
        _: std::sync::Arc<LogSink>,
        tx: mpsc::UnboundedSender<Msg>,
    ) {
        let (id, run_no) = plan.run();
        let mut s = self.0.lock().unwrap();
        let name = plan.name().to_string();
        s.launches
            .push((name.clone(), run_no.0, tokio::time::Instant::now()));
        let pid = 100_000 + s.launches.len() as u32;
        let _ = tx.send(Msg::Input(Input::Spawned { id, run_no, pid }));
        s.live.push((id, run_no, name, tx));
    }

    fn signal(
        &mut self,
        id: InstanceId,
        run_no: Generation,
        _: Option<&Run>,
        signal: Option<Signal>,
    ) {
        let mut s = self.0.lock().unwrap();
        let Some(name) = s
            .live
            .iter()
            .find(|l| l.0 == id && l.1 == run_no)
            .map(|l| l.2.clone())
        else {
            return;
        };
        s.signals
            .push((name.clone(), signal, tokio::time::Instant::now()));
        let ends = signal.is_none() || s.obeys_stop;
        drop(s);
        if ends {
            let signal = signal.unwrap_or(Signal::SIGKILL) as i32;
            self.end(
                &name,
                ExitStatus {
                    code: None,
                    signal: Some(signal),
                },
            );
        }
    }
}

fn start_fake(config: &str, fake: &Fake) -> Rig {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("warden.toml");
    std::fs::write(&path, config).unwrap();
    let spec = crate::config::load(&path).expect("a valid test config");
    // Started, never asked to fork: no probes here.
    let spawner = Spawner::start().expect("the spawner threads");
    let opts = Options {
        tee: None,
        token: format!("actorfake{}", std::process::id()),
        cgroups: None,
        cgroup_status: Default::default(),
        config_text: None,
        hangup_stops: false,
        quiet_followers: 1,
    };
    let (actor, handle) = Actor::with_launcher(spec, spawner, Box::new(fake.clone()), opts);
    rig(actor, handle, dir)
}

fn spawned(n: usize) -> impl Fn(&Event) -> bool {
    let seen = std::sync::atomic::AtomicUsize::new(0);
    move |e| {
        matches!(e.kind, EventKind::Spawned { .. })
            && seen.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1 == n
    }
}

#[tokio::test(start_paused = true)]
async fn a_fake_child_that_fails_is_launched_again_after_its_backoff() {
    let fake = Fake::default();
    let rig = start_fake(
        "[processes.a]\ncommand = \"x\"\nbackoff = \"2s\"\nmin_uptime = \"1h\"\n",
        &fake,
    );
    until(&rig.handle, spawned(1)).await;
    let t0 = tokio::time::Instant::now();
    fake.exit("a", 1);
    until(&rig.handle, spawned(2)).await;
    fake.exit("a", 1);
    until(&rig.handle, spawned(3)).await;
    let launches: Vec<(String, u64, Duration)> = fake
        .0
        .lock()
        .unwrap()
        .launches
        .iter()
        .map(|(n, r, at)| (n.clone(), *r, at.saturating_duration_since(t0)))
        .collect();
    // The backoff doubles per consecutive short run: 2 s, then 4 s.
    assert_eq!(
        launches,
        [
            ("a".into(), 1, Duration::ZERO),
            ("a".into(), 2, Duration::from_secs(2)),
            ("a".into(), 3, Duration::from_secs(6)),
        ]
    );
    fake.0.lock().unwrap().obeys_stop = true;
    rig.signals.send(Sig::Terminate).unwrap();
    let report = rig.run.await.unwrap().unwrap();
    assert_eq!(report.exit_code(), 0, "it stopped on SIGTERM: {report:?}");
}

#[tokio::test(start_paused = true)]
async fn a_fake_child_ignoring_its_stop_signal_is_killed_at_the_shutdown_timeout() {
    let fake = Fake::default();
    let rig = start_fake(
        "[supervisor]\nshutdown_timeout = \"5s\"\n[processes.a]\ncommand = \"x\"\nstop_timeout = \"1h\"\n",
        &fake,
    );
    until(&rig.handle, spawned(1)).await;
    let t0 = tokio::time::Instant::now();
    rig.signals.send(Sig::Terminate).unwrap();
    let report = rig.run.await.unwrap().unwrap();
    assert!(report.timed_out && !report.forced, "{report:?}");
    let signals: Vec<(Option<Signal>, Duration)> = fake
        .0
        .lock()
        .unwrap()
        .signals
        .iter()
        .map(|(_, s, at)| (*s, at.saturating_duration_since(t0)))
        .collect();
    assert_eq!(
        signals,
        [
            (Some(Signal::SIGTERM), Duration::ZERO),
            (None, Duration::from_secs(5))
        ],
        "SIGTERM at once, SIGKILL when the shutdown timeout ran out"
    );
}
