//! The core's decisions for running it for real: `scale`, schedules and watch-restarts.

use super::core::*;
use super::core_tests::{Rig, reply, spawns, spec};
use super::event::ExitReason;
use super::state::State;
use crate::facts::Generation;

fn names(r: &Rig) -> Vec<String> {
    r.core.instances().map(|i| i.name.clone()).collect()
}

fn scale(r: &mut Rig, ms: u64, process: &str, replicas: u32) -> Vec<Effect> {
    r.waiter += 1;
    let waiter = r.waiter;
    r.at(
        ms,
        Input::Scale {
            process: process.into(),
            replicas,
            waiter,
        },
    )
}

fn stops(fx: &[Effect]) -> Vec<InstanceId> {
    fx.iter()
        .filter_map(|e| match e {
            Effect::Stop { id, .. } => Some(*id),
            _ => None,
        })
        .collect()
}

const WEB_AND_DB: &str = "[processes.web]\ncommand = \"x\"\n[processes.db]\ncommand = \"y\"\n";

#[test]
fn scaling_up_keeps_the_running_instance_and_names_every_replica() {
    let (mut r, _) = Rig::new(WEB_AND_DB);
    r.spawned(0, "web");
    r.spawned(0, "db");
    let web = r.id("web");
    let fx = scale(&mut r, 10, "web", 3);
    assert_eq!(names(&r), ["web.0", "web.1", "web.2", "db"]);
    assert_eq!(r.id("web.0"), web, "the same instance, renamed");
    assert_eq!(r.run_no("web.0"), Generation(1));
    assert_eq!(r.state("web.0"), State::Running, "not restarted");
    assert!(stops(&fx).is_empty());
    assert_eq!(spawns(&fx), 2);
    assert_eq!(reply(&fx), None, "answered once applied");
    let inst = r.core.instance(r.id("web.2")).unwrap();
    assert_eq!(inst.replica, Some(2));
    assert_eq!(r.core.replicas("web"), Some((1, 3)));
    r.spawned(20, "web.1");
    let fx = r.spawned(20, "web.2");
    let answer = reply(&fx).unwrap().unwrap();
    assert!(
        answer.contains("web.1: running") && answer.contains("web.2: running"),
        "{answer}"
    );
}

#[test]
fn scaling_down_stops_the_highest_indices_and_forgets_them() {
    let (mut r, _) = Rig::new("[processes.w]\ncommand = \"x\"\nreplicas = 4\n");
    for n in ["w.0", "w.1", "w.2", "w.3"] {
        r.spawned(0, n);
    }
    let (w2, w3) = (r.id("w.2"), r.id("w.3"));
    let fx = scale(&mut r, 10, "w", 2);
    let mut stopped = stops(&fx);
    stopped.sort();
    assert_eq!(stopped, [w2, w3]);
    assert_eq!(r.state("w.1"), State::Running);
    r.exited(20, "w.3", 0);
    assert_eq!(names(&r), ["w.0", "w.1", "w.2"], "w.3 is gone once stopped");
    let fx = r.exited(30, "w.2", 0);
    assert_eq!(names(&r), ["w.0", "w.1"]);
    let answer = reply(&fx).unwrap().unwrap();
    assert!(answer.contains("w.3: stopped and removed"), "{answer}");
    assert_eq!(r.core.replicas("w"), Some((4, 2)));
}

#[test]
fn scale_refuses_what_it_cannot_do() {
    let (mut r, _) = Rig::new("[processes.w]\ncommand = \"x\"\nreplicas = 2\n");
    let err = |fx: Vec<Effect>| reply(&fx).unwrap().unwrap_err();
    assert!(err(scale(&mut r, 0, "nope", 2)).starts_with("no process named `nope`"));
    assert!(err(scale(&mut r, 0, "w.1", 2)).starts_with("no process named `w.1`"));
    assert!(err(scale(&mut r, 0, "w", 0)).contains("`warden stop w` stops them all"));
    assert_eq!(names(&r), ["w.0", "w.1"]);
    let fx = scale(&mut r, 0, "w", 2);
    assert_eq!(
        reply(&fx),
        Some(Ok("w: already 2 replicas; nothing to do".into()))
    );
}

#[test]
fn scaling_to_the_count_it_has_changes_nothing_not_even_names() {
    let (mut r, _) = Rig::new(WEB_AND_DB);
    r.spawned(0, "web");
    scale(&mut r, 5, "web", 1);
    assert_eq!(names(&r), ["web", "db"]);
    let old = spec(WEB_AND_DB);
    let (plan, fx) = r.core.reload(&old, &old, r.now());
    assert_eq!(plan.unchanged, ["web", "db"]);
    assert!(stops(&fx).is_empty());
}

#[test]
fn a_stopped_process_scales_to_stopped_replicas() {
    let (mut r, fx) = Rig::new("[processes.w]\ncommand = \"x\"\nautostart = false\n");
    assert_eq!(spawns(&fx), 0);
    let fx = scale(&mut r, 0, "w", 2);
    assert_eq!(spawns(&fx), 0);
    assert_eq!(r.state("w.1"), State::Stopped);
    assert!(reply(&fx).unwrap().unwrap().contains("stay stopped"));
}

#[test]
fn a_reload_keeps_a_scale_unless_the_file_changes_replicas() {
    let (mut r, _) = Rig::new(WEB_AND_DB);
    r.spawned(0, "web");
    scale(&mut r, 10, "web", 3);
    r.spawned(20, "web.1");
    r.spawned(20, "web.2");
    let old = spec(WEB_AND_DB);
    // An unrelated edit: the scale stays, nothing of web restarts.
    let edited = spec("[processes.web]\ncommand = \"x\"\n[processes.db]\ncommand = \"z\"\n");
    let (plan, _) = r.core.reload(&old, &edited, r.now());
    assert_eq!(plan.unchanged, ["web.0", "web.1", "web.2"]);
    assert_eq!(plan.changed.len(), 1);
    assert!(
        plan.notes[0].contains("`web` keeps its 3 replicas from `warden scale`"),
        "{:?}",
        plan.notes
    );
    assert_eq!(r.core.replicas("web"), Some((1, 3)));
    // The file now says 2: it wins, and web.2 goes.
    let two =
        spec("[processes.web]\ncommand = \"x\"\nreplicas = 2\n[processes.db]\ncommand = \"z\"\n");
    let (plan, fx) = r.core.reload(&edited, &two, r.now());
    assert_eq!(plan.removed, ["web.2"]);
    assert_eq!(plan.unchanged, ["web.0", "web.1", "db"]);
    assert_eq!(stops(&fx), [r.id("web.2")]);
    assert_eq!(r.core.replicas("web"), Some((2, 2)));
}

#[test]
fn scaled_down_replicas_record_why_they_ended() {
    let (mut r, _) = Rig::new("[processes.w]\ncommand = \"x\"\nreplicas = 2\n");
    r.spawned(0, "w.0");
    r.spawned(0, "w.1");
    scale(&mut r, 5, "w", 1);
    let id = r.id("w.1");
    assert_eq!(r.state("w.1"), State::Stopping);
    let fx = r.exited(10, "w.1", 0);
    assert!(r.core.instance(id).is_none());
    let reasons: Vec<ExitReason> = fx
        .iter()
        .filter_map(|e| match e {
            Effect::Emit(ev) => match ev.kind {
                super::event::EventKind::Exited { reason, .. } => Some(reason),
                _ => None,
            },
            _ => None,
        })
        .collect();
    assert_eq!(reasons, [ExitReason::Scale]);
}

/// A core driven by a clock whose wall time starts at `base` (UTC) and moves with `ms`.
struct Clocked {
    core: Core,
    t0: std::time::Instant,
    base: std::time::SystemTime,
    waiter: WaiterId,
}

impl Clocked {
    fn new(toml: &str, base: &str) -> (Clocked, Vec<Effect>) {
        let mut c = Clocked {
            core: Core::new(&spec(toml)),
            t0: std::time::Instant::now(),
            base: humantime::parse_rfc3339(base).unwrap(),
            waiter: 0,
        };
        let fx = c.core.boot(c.now(0));
        (c, fx)
    }

    fn now(&self, ms: u64) -> Now {
        let d = std::time::Duration::from_millis(ms);
        Now {
            mono: self.t0 + d,
            wall: self.base + d,
        }
    }

    fn at(&mut self, ms: u64, input: Input) -> Vec<Effect> {
        let now = self.now(ms);
        self.core.handle(input, now)
    }

    fn inst(&self, name: &str) -> &Instance {
        self.core.instances().find(|i| i.name == name).unwrap()
    }

    /// Fire the schedule timer that `fx` armed, at its time (or `ms` if given).
    fn fire(
        &mut self,
        armed: (std::time::Instant, InstanceId, Generation),
        ms: Option<u64>,
    ) -> Vec<Effect> {
        let (at, id, run_no) = armed;
        let ms = ms.unwrap_or((at - self.t0).as_millis() as u64);
        self.at(
            ms,
            Input::Timer {
                id,
                run_no,
                timer: Timer::Cron,
            },
        )
    }

    fn spawned(&mut self, ms: u64, name: &str) -> Vec<Effect> {
        let i = self.inst(name);
        let (id, run_no) = (i.id, i.run_no);
        self.at(
            ms,
            Input::Spawned {
                id,
                run_no,
                pid: 4000,
            },
        )
    }

    fn exited(&mut self, ms: u64, name: &str, code: i32) -> Vec<Effect> {
        let i = self.inst(name);
        let (id, run_no) = (i.id, i.run_no);
        let status = crate::facts::ExitStatus {
            code: Some(code),
            signal: None,
        };
        self.at(
            ms,
            Input::Exited {
                id,
                run_no,
                status,
                stderr_tail: vec![],
                oom_kills: 0,
                memory_peak: None,
            },
        )
    }

    fn request(
        &mut self,
        ms: u64,
        make: fn(Vec<String>, WaiterId) -> Input,
        name: &str,
    ) -> Vec<Effect> {
        self.waiter += 1;
        let input = make(vec![name.to_string()], self.waiter);
        self.at(ms, input)
    }
}

fn cron_timer(fx: &[Effect]) -> Option<(std::time::Instant, InstanceId, Generation)> {
    fx.iter().find_map(|e| match e {
        Effect::Schedule {
            at,
            id,
            run_no,
            timer: Timer::Cron,
        } => Some((*at, *id, *run_no)),
        _ => None,
    })
}

fn skips(fx: &[Effect]) -> Vec<u32> {
    fx.iter()
        .filter_map(|e| match e {
            Effect::Emit(ev) => match &ev.kind {
                super::event::EventKind::Skipped { skipped, .. } => Some(*skipped),
                _ => None,
            },
            _ => None,
        })
        .collect()
}

const EVERY_MINUTE: &str = "[processes.job]\ncommand = \"x\"\nschedule = \"* * * * *\"\n";

#[test]
fn a_schedule_runs_at_its_times_skips_while_a_run_goes_on_and_never_restarts() {
    let (mut c, fx) = Clocked::new(EVERY_MINUTE, "2026-01-01T00:00:30Z");
    assert_eq!(spawns(&fx), 0, "nothing runs before its time");
    assert_eq!(c.inst("job").state, State::Pending);
    let first = cron_timer(&fx).expect("armed at boot");
    assert_eq!((first.0 - c.t0).as_secs(), 30, "the next whole minute");
    let next = humantime::format_rfc3339(c.inst("job").next_run.unwrap()).to_string();
    assert_eq!(next, "2026-01-01T00:01:00Z");

    let fx = c.fire(first, None);
    assert_eq!(spawns(&fx), 1);
    let second = cron_timer(&fx).expect("the next time is armed at once");
    assert_eq!((second.0 - first.0).as_secs(), 60);
    c.spawned(30_010, "job");

    // Still running at the next time: skipped and counted, nothing spawned.
    let fx = c.fire(second, None);
    assert_eq!(spawns(&fx), 0);
    assert_eq!(skips(&fx), [1]);
    assert_eq!(c.inst("job").skipped, 1);
    let third = cron_timer(&fx).unwrap();

    // A run that ends is not restarted, whatever its exit code.
    let fx = c.exited(100_000, "job", 1);
    assert_eq!(c.inst("job").state, State::Exited);
    assert_eq!(spawns(&fx), 0);
    assert!(!fx.iter().any(|e| matches!(
        e,
        Effect::Schedule {
            timer: Timer::Backoff,
            ..
        }
    )));

    let fx = c.fire(third, None);
    assert_eq!(spawns(&fx), 1, "the next time runs again");
    assert_eq!(c.inst("job").run_no, Generation(2));
    assert_eq!(c.inst("job").skipped, 1);
}

#[test]
fn a_timer_from_before_a_stop_is_ignored_and_start_runs_now() {
    let (mut c, fx) = Clocked::new(EVERY_MINUTE, "2026-01-01T00:00:30Z");
    let armed = cron_timer(&fx).unwrap();
    let fx = c.request(1_000, |names, waiter| Input::Stop { names, waiter }, "job");
    assert_eq!(c.inst("job").state, State::Stopped);
    assert_eq!(c.inst("job").next_run, None);
    assert_eq!(cron_timer(&fx), None, "a stopped schedule is not armed");
    let fx = c.fire(armed, None);
    assert_eq!(spawns(&fx), 0, "the old timer is dropped");

    let fx = c.request(
        40_000,
        |names, waiter| Input::Start { names, waiter },
        "job",
    );
    assert_eq!(spawns(&fx), 1, "start runs it now");
    assert!(cron_timer(&fx).is_some(), "and arms the schedule again");
    assert_eq!(reply(&fx), None);
    let fx = c.spawned(40_010, "job");
    assert_eq!(reply(&fx), Some(Ok("job: running (pid 4000)".into())));
    c.exited(40_020, "job", 0);
    assert_eq!(c.inst("job").state, State::Exited);
}

#[test]
fn a_timer_early_by_the_wall_clock_waits_for_the_rest() {
    let (mut c, fx) = Clocked::new(EVERY_MINUTE, "2026-01-01T00:00:30Z");
    let armed = cron_timer(&fx).unwrap();
    // The monotonic timer fired, but the wall clock was set back by 10s meanwhile.
    c.base -= std::time::Duration::from_secs(10);
    let fx = c.fire(armed, None);
    assert_eq!(spawns(&fx), 0);
    let again = cron_timer(&fx).expect("set again for the rest");
    assert_eq!((again.0 - armed.0).as_secs(), 10);
    assert_eq!(again.2, armed.2, "the same generation");
    let fx = c.fire(again, None);
    assert_eq!(spawns(&fx), 1);
}

#[test]
fn seconds_make_a_fast_schedule() {
    let (mut c, fx) = Clocked::new(
        "[processes.job]\ncommand = \"x\"\nschedule = \"*/2 * * * * *\"\n",
        "2026-01-01T00:00:00.500Z",
    );
    let armed = cron_timer(&fx).unwrap();
    assert_eq!((armed.0 - c.t0).as_millis(), 1_500);
    let fx = c.fire(armed, None);
    assert_eq!(spawns(&fx), 1);
}

fn watch_timer(fx: &[Effect]) -> Option<(std::time::Instant, InstanceId, Generation)> {
    fx.iter().find_map(|e| match e {
        Effect::Schedule {
            at,
            id,
            run_no,
            timer: Timer::Watch,
        } => Some((*at, *id, *run_no)),
        _ => None,
    })
}

fn changed(r: &mut Rig, ms: u64, path: &str) -> Vec<Effect> {
    r.at(
        ms,
        Input::FilesChanged {
            process: "app".into(),
            paths: vec![path.into()],
            count: 1,
        },
    )
}

fn quiet(r: &mut Rig, armed: (std::time::Instant, InstanceId, Generation)) -> Vec<Effect> {
    let ms = (armed.0 - r.t0).as_millis() as u64;
    r.at(
        ms,
        Input::Timer {
            id: armed.1,
            run_no: armed.2,
            timer: Timer::Watch,
        },
    )
}

const WATCHED: &str =
    "[processes.app]\ncommand = \"x\"\nwatch = [\"src/**/*.py\"]\nwatch_delay = \"300ms\"\n";

#[test]
fn a_burst_of_changes_restarts_once_after_the_quiet_period() {
    let (mut r, _) = Rig::new(WATCHED);
    r.spawned(0, "app");
    let a = watch_timer(&changed(&mut r, 1_000, "src/a.py")).unwrap();
    let b = watch_timer(&changed(&mut r, 1_100, "src/b.py")).unwrap();
    // Named again in a later report: still one file.
    let c = watch_timer(&changed(&mut r, 1_250, "src/a.py")).unwrap();
    assert_eq!(
        (c.0 - r.t0).as_millis(),
        1_550,
        "each change postpones the restart"
    );
    assert!(
        stops(&quiet(&mut r, a)).is_empty(),
        "a postponed timer does nothing"
    );
    assert!(stops(&quiet(&mut r, b)).is_empty());
    let fx = quiet(&mut r, c);
    assert_eq!(stops(&fx), [r.id("app")]);
    let text: Vec<String> = fx
        .iter()
        .filter_map(|e| match e {
            Effect::Emit(ev) => Some(ev.describe()),
            _ => None,
        })
        .collect();
    assert!(
        text.contains(&"files changed (src/a.py, src/b.py): restarting".to_string()),
        "{text:?}"
    );
    let fx = r.exited(1_600, "app", 0);
    assert_eq!(spawns(&fx), 1, "started again once stopped");
    let last = r
        .core
        .instance(r.id("app"))
        .unwrap()
        .last_exit()
        .unwrap()
        .clone();
    assert_eq!(last.reason, ExitReason::Watch);
    assert_eq!(
        last.detail.as_deref(),
        Some("files changed: src/a.py, src/b.py")
    );
}

#[test]
fn a_change_starts_an_ended_process_again_but_not_a_stopped_one() {
    let (mut r, _) = Rig::new(WATCHED);
    r.spawned(0, "app");
    // Crashed for good: the change is likely the fix.
    let (mut r2, _) = Rig::new(&format!("{WATCHED}restart = \"never\"\n"));
    r2.spawned(0, "app");
    r2.exited(10, "app", 1);
    assert_eq!(r2.state("app"), State::Exited);
    let armed = watch_timer(&changed(&mut r2, 20, "src/a.py")).unwrap();
    let fx = quiet(&mut r2, armed);
    assert_eq!(spawns(&fx), 1);
    // Stopped on request: left alone.
    r.request(5, |names, waiter| Input::Stop { names, waiter }, &["app"]);
    r.exited(6, "app", 0);
    assert_eq!(r.state("app"), State::Stopped);
    let fx = changed(&mut r, 20, "src/a.py");
    assert_eq!(watch_timer(&fx), None);
}

#[test]
fn a_big_change_names_a_few_files_and_counts_the_rest() {
    let (mut r, _) = Rig::new(WATCHED);
    r.spawned(0, "app");
    let paths: Vec<String> = (0..5).map(|i| format!("src/{i}.py")).collect();
    let fx = r.at(
        10,
        Input::FilesChanged {
            process: "app".into(),
            paths,
            count: 1_000,
        },
    );
    let fx = quiet(&mut r, watch_timer(&fx).unwrap());
    let text: Vec<String> = fx
        .iter()
        .filter_map(|e| match e {
            Effect::Emit(ev) => Some(ev.describe()),
            _ => None,
        })
        .collect();
    assert!(
        text.iter()
            .any(|t| t.ends_with("src/3.py, src/4.py and 995 more): restarting")),
        "{text:?}"
    );
}

#[test]
fn a_kill_while_spawning_is_carried_out_once_spawned() {
    let (mut r, fx) = Rig::new("[processes.a]\ncommand = \"x\"\nstop_timeout = \"60s\"\n");
    assert_eq!(spawns(&fx), 1);
    // Ctrl-C twice before the spawn's outcome is back.
    r.at(1, Input::Shutdown);
    let fx = r.at(2, Input::Shutdown);
    assert!(
        !fx.iter().any(|e| matches!(e, Effect::Kill { .. })),
        "nothing to kill yet"
    );
    let fx = r.spawned(3, "a");
    assert!(
        fx.iter().any(|e| matches!(e, Effect::Kill { .. })),
        "SIGKILL, not a graceful stop that waits 60s: {fx:?}"
    );
    assert!(!fx.iter().any(|e| matches!(e, Effect::Stop { .. })));
}
