//! The core's decisions, input by input, with no processes and no clock.

use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

use nix::sys::signal::Signal;

use super::core::*;
use super::event::{EventKind, ExitReason};
use super::state::State;
use crate::config::{Spec, load_str};
use crate::facts::ExitStatus;
use crate::facts::Generation;

pub(super) fn spec(toml: &str) -> Spec {
    load_str(Path::new("/etc/warden/warden.toml"), toml).expect("valid test config")
}

/// A core plus a hand-driven clock.
pub(super) struct Rig {
    pub(super) core: Core,
    pub(super) t0: Instant,
    pub(super) ms: u64,
    pub(super) waiter: WaiterId,
}

impl Rig {
    pub(super) fn new(toml: &str) -> (Rig, Vec<Effect>) {
        let mut core = Core::new(&spec(toml));
        let t0 = Instant::now();
        let fx = core.boot(Now {
            mono: t0,
            wall: SystemTime::UNIX_EPOCH,
        });
        (
            Rig {
                core,
                t0,
                ms: 0,
                waiter: 0,
            },
            fx,
        )
    }

    pub(super) fn now(&self) -> Now {
        Now {
            mono: self.t0 + Duration::from_millis(self.ms),
            wall: SystemTime::UNIX_EPOCH,
        }
    }

    pub(super) fn at(&mut self, ms: u64, input: Input) -> Vec<Effect> {
        self.ms = ms;
        let now = self.now();
        self.core.handle(input, now)
    }

    pub(super) fn id(&self, name: &str) -> InstanceId {
        self.core
            .instances()
            .find(|i| i.name == name)
            .expect(name)
            .id
    }

    pub(super) fn state(&self, name: &str) -> State {
        self.core.instance(self.id(name)).unwrap().state
    }

    pub(super) fn run_no(&self, name: &str) -> Generation {
        self.core.instance(self.id(name)).unwrap().run_no
    }

    pub(super) fn spawned(&mut self, ms: u64, name: &str) -> Vec<Effect> {
        let (id, run_no) = (self.id(name), self.run_no(name));
        self.at(
            ms,
            Input::Spawned {
                id,
                run_no,
                pid: 1000 + run_no.0 as u32,
            },
        )
    }

    pub(super) fn exited(&mut self, ms: u64, name: &str, code: i32) -> Vec<Effect> {
        let (id, run_no) = (self.id(name), self.run_no(name));
        let status = ExitStatus {
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

    pub(super) fn request(
        &mut self,
        ms: u64,
        make: impl Fn(Vec<String>, WaiterId) -> Input,
        names: &[&str],
    ) -> Vec<Effect> {
        self.waiter += 1;
        let input = make(names.iter().map(|s| s.to_string()).collect(), self.waiter);
        self.at(ms, input)
    }
}

pub(super) fn spawns(fx: &[Effect]) -> usize {
    fx.iter()
        .filter(|e| matches!(e, Effect::Spawn { .. }))
        .count()
}

fn backoff_timer(fx: &[Effect]) -> Option<Instant> {
    fx.iter().find_map(|e| match e {
        Effect::Schedule {
            at,
            timer: Timer::Backoff,
            ..
        } => Some(*at),
        _ => None,
    })
}

pub(super) fn reply(fx: &[Effect]) -> Option<Result<String, String>> {
    fx.iter().find_map(|e| match e {
        Effect::Reply { result, .. } => Some(result.clone()),
        _ => None,
    })
}

#[test]
fn crashes_back_off_exponentially_and_give_up_at_max_restarts() {
    let (mut r, fx) = Rig::new(
        "[processes.a]\ncommand = \"x\"\nbackoff = \"100ms\"\nbackoff_max = \"1s\"\nmax_restarts = 3\n",
    );
    assert_eq!(spawns(&fx), 1);
    let mut t = 0;
    let mut delays = Vec::new();
    for _ in 0..3 {
        r.spawned(t, "a");
        let fx = r.exited(t + 5, "a", 1);
        assert_eq!(r.state("a"), State::Backoff);
        let at = backoff_timer(&fx).expect("a backoff timer");
        delays.push((at - r.now().mono).as_millis());
        t = (at - r.t0).as_millis() as u64;
        let (id, run_no) = (r.id("a"), r.run_no("a"));
        let fx = r.at(
            t,
            Input::Timer {
                id,
                run_no,
                timer: Timer::Backoff,
            },
        );
        assert_eq!(spawns(&fx), 1);
    }
    assert_eq!(delays, [100, 200, 400]);
    r.spawned(t, "a");
    let fx = r.exited(t + 5, "a", 1);
    assert_eq!(r.state("a"), State::Fatal);
    assert!(
        fx.iter()
            .any(|e| matches!(e, Effect::Emit(ev) if matches!(ev.kind, EventKind::Fatal { .. })))
    );
    assert_eq!(r.core.instance(r.id("a")).unwrap().history.len(), 4);
}

#[test]
fn a_run_longer_than_min_uptime_resets_the_backoff() {
    let (mut r, _) = Rig::new(
        "[processes.a]\ncommand = \"x\"\nbackoff = \"100ms\"\nmin_uptime = \"1s\"\nmax_restarts = 1\n",
    );
    r.spawned(0, "a");
    let fx = r.exited(10, "a", 1);
    assert_eq!(
        (backoff_timer(&fx).unwrap() - r.now().mono).as_millis(),
        100
    );
    let (id, run_no) = (r.id("a"), r.run_no("a"));
    r.at(
        110,
        Input::Timer {
            id,
            run_no,
            timer: Timer::Backoff,
        },
    );
    r.spawned(110, "a");
    // Ran for 5s: not a crash loop any more, so neither fatal nor a longer delay.
    let fx = r.exited(5110, "a", 1);
    assert_eq!(r.state("a"), State::Backoff);
    assert_eq!(
        (backoff_timer(&fx).unwrap() - r.now().mono).as_millis(),
        100
    );
}

#[test]
fn reports_from_an_earlier_run_are_ignored() {
    let (mut r, _) = Rig::new("[processes.a]\ncommand = \"x\"\n");
    r.spawned(0, "a");
    let id = r.id("a");
    let stale = Input::Exited {
        id,
        run_no: Generation(0),
        status: ExitStatus {
            code: Some(1),
            signal: None,
        },
        stderr_tail: vec![],
        oom_kills: 0,
        memory_peak: None,
    };
    assert!(r.at(10, stale).is_empty());
    let fx = r.at(
        10,
        Input::Timer {
            id,
            run_no: Generation(0),
            timer: Timer::StopTimeout,
        },
    );
    assert!(fx.is_empty());
    assert_eq!(r.state("a"), State::Running);
}

#[test]
fn a_stop_signals_then_escalates_and_replies_once_gone() {
    let (mut r, _) =
        Rig::new("[processes.a]\ncommand = \"x\"\nstop_signal = \"INT\"\nstop_timeout = \"2s\"\n");
    r.spawned(0, "a");
    let fx = r.request(100, |names, waiter| Input::Stop { names, waiter }, &["a"]);
    assert!(fx.contains(&Effect::Stop {
        id: r.id("a"),
        run_no: Generation(1),
        signal: Signal::SIGINT
    }));
    assert!(reply(&fx).is_none(), "no reply before the process is gone");
    let fx = r.at(
        2100,
        Input::Timer {
            id: r.id("a"),
            run_no: Generation(1),
            timer: Timer::StopTimeout,
        },
    );
    assert!(fx.contains(&Effect::Kill {
        id: r.id("a"),
        run_no: Generation(1)
    }));
    let fx = r.exited(2110, "a", 137);
    assert_eq!(r.state("a"), State::Stopped);
    assert_eq!(reply(&fx), Some(Ok("a: stopped".into())));
    let last = r
        .core
        .instance(r.id("a"))
        .unwrap()
        .last_exit()
        .unwrap()
        .clone();
    assert_eq!(last.reason, ExitReason::Request);
    assert!(
        last.detail
            .unwrap()
            .contains("killed by SIGKILL after stop timeout (2s)")
    );
}

#[test]
fn unknown_names_fail_the_request_before_anything_happens() {
    let (mut r, _) = Rig::new("[processes.a]\ncommand = \"x\"\n");
    r.spawned(0, "a");
    let fx = r.request(
        5,
        |names, waiter| Input::Stop { names, waiter },
        &["a", "nope"],
    );
    assert_eq!(fx.len(), 1);
    assert!(
        reply(&fx)
            .unwrap()
            .unwrap_err()
            .contains("no process named `nope`")
    );
    assert_eq!(r.state("a"), State::Running);
}

#[test]
fn dependents_wait_for_their_condition() {
    let (mut r, fx) = Rig::new(
        "[processes.db]\ncommand = \"x\"\n[processes.job]\ncommand = \"x\"\nrestart = \"never\"\n\
         [processes.api]\ncommand = \"x\"\ndepends_on = { db = \"started\", job = \"completed\" }\n",
    );
    assert_eq!(spawns(&fx), 2, "db and job start; api waits");
    assert_eq!(r.state("api"), State::Pending);
    assert_eq!(spawns(&r.spawned(1, "db")), 0);
    r.spawned(2, "job");
    assert_eq!(
        spawns(&r.exited(3, "job", 1)),
        0,
        "a failed job is not `completed`"
    );
    assert_eq!(r.state("job"), State::Exited);
    let fx = r.request(4, |names, waiter| Input::Start { names, waiter }, &["job"]);
    assert_eq!(spawns(&fx), 1);
    r.spawned(5, "job");
    assert_eq!(
        spawns(&r.exited(6, "job", 0)),
        1,
        "api starts once job completed"
    );
    assert_eq!(r.state("api"), State::Starting);
}

#[test]
fn shutdown_stops_dependents_first() {
    let (mut r, _) = Rig::new(
        "[processes.db]\ncommand = \"x\"\n[processes.api]\ncommand = \"x\"\ndepends_on = [\"db\"]\n",
    );
    r.spawned(0, "db");
    r.spawned(1, "api");
    let fx = r.at(10, Input::Shutdown);
    let stops: Vec<InstanceId> = fx
        .iter()
        .filter_map(|e| match e {
            Effect::Stop { id, .. } => Some(*id),
            _ => None,
        })
        .collect();
    assert_eq!(stops, [r.id("api")]);
    let fx = r.exited(20, "api", 0);
    assert!(
        fx.iter()
            .any(|e| matches!(e, Effect::Stop { id, .. } if *id == r.id("db")))
    );
    let fx = r.exited(30, "db", 0);
    assert!(fx.contains(&Effect::Finished));
}

#[test]
fn restart_during_backoff_spawns_at_once_and_waits_for_the_new_run() {
    let (mut r, _) = Rig::new("[processes.a]\ncommand = \"x\"\nbackoff = \"10s\"\n");
    r.spawned(0, "a");
    r.exited(5, "a", 1);
    let fx = r.request(10, |names, waiter| Input::Restart { names, waiter }, &["a"]);
    assert_eq!(spawns(&fx), 1);
    assert!(reply(&fx).is_none());
    let fx = r.spawned(11, "a");
    assert_eq!(reply(&fx), Some(Ok("a: running (pid 1002)".into())));
}

#[test]
fn reload_restarts_only_what_changed() {
    let old = spec(
        "[processes.a]\ncommand = \"x\"\n[processes.b]\ncommand = \"y\"\n[processes.c]\ncommand = \"z\"\n",
    );
    let new = spec(
        "[processes.a]\ncommand = \"x\"\n[processes.b]\ncommand = \"y2\"\n[processes.d]\ncommand = \"w\"\n",
    );
    let (mut r, _) = Rig::new(
        "[processes.a]\ncommand = \"x\"\n[processes.b]\ncommand = \"y\"\n[processes.c]\ncommand = \"z\"\n",
    );
    for n in ["a", "b", "c"] {
        r.spawned(0, n);
    }
    let (plan, fx) = r.core.reload(&old, &new, r.now());
    assert_eq!(plan.unchanged, ["a"]);
    assert_eq!(plan.changed.len(), 1);
    assert_eq!(plan.changed[0].keys, ["command"]);
    assert_eq!(plan.removed, ["c"]);
    assert_eq!(plan.added, ["d"]);
    let stopped: Vec<InstanceId> = fx
        .iter()
        .filter_map(|e| match e {
            Effect::Stop { id, .. } => Some(*id),
            _ => None,
        })
        .collect();
    assert_eq!(stopped, [r.id("c"), r.id("b")]);
    assert_eq!(spawns(&fx), 1, "d starts");
    assert_eq!(
        spawns(&r.exited(10, "b", 0)),
        1,
        "b comes back with its new command"
    );
    let c = r.id("c");
    r.at(
        11,
        Input::Exited {
            id: c,
            run_no: Generation(1),
            status: ExitStatus {
                code: Some(0),
                signal: None,
            },
            stderr_tail: vec![],
            oom_kills: 0,
            memory_peak: None,
        },
    );
    assert!(
        r.core.instances().all(|i| i.name != "c"),
        "c is forgotten once stopped"
    );
    assert_eq!(r.state("a"), State::Running);
}

#[test]
fn backoff_delay_doubles_and_caps() {
    let ms = |n| backoff_delay(Duration::from_millis(500), Duration::from_secs(3), n).as_millis();
    assert_eq!(
        [ms(0), ms(1), ms(2), ms(3), ms(40)],
        [500, 1000, 2000, 3000, 3000]
    );
}

#[test]
fn a_zero_backoff_respawns_in_the_same_step() {
    let (mut r, _) = Rig::new("[processes.a]\ncommand = \"x\"\nbackoff = \"0s\"\n");
    r.spawned(0, "a");
    let fx = r.exited(1, "a", 137);
    assert_eq!(spawns(&fx), 1, "no timer round trip");
    assert!(backoff_timer(&fx).is_none());
    assert_eq!(r.state("a"), State::Starting);
    assert_eq!(r.core.instance(r.id("a")).unwrap().restarts, 1);
}

#[test]
fn a_start_waiting_on_readiness_fails_once_readiness_fails() {
    use super::health::{ProbeResult, Role};
    let (mut r, _) = Rig::new(
        "[processes.a]\ncommand = \"x\"\nautostart = false\n[processes.a.readiness]\ntcp = \"127.0.0.1:1\"\nfailure_threshold = 2\n",
    );
    r.request(0, |names, waiter| Input::Start { names, waiter }, &["a"]);
    let fx = r.spawned(1, "a");
    assert!(fx.contains(&Effect::StartProbe {
        id: r.id("a"),
        run_no: Generation(1),
        role: Role::Readiness
    }));
    assert_eq!(r.state("a"), State::Starting, "not ready yet");
    let fail = || ProbeResult {
        ok: false,
        latency: Duration::from_millis(1),
        error: Some("connection refused".into()),
        stale: None,
    };
    let (id, run_no) = (r.id("a"), Generation(1));
    assert!(
        reply(&r.at(
            2,
            Input::Probe {
                id,
                run_no,
                role: Role::Readiness,
                result: fail()
            }
        ))
        .is_none()
    );
    let fx = r.at(
        3,
        Input::Probe {
            id,
            run_no,
            role: Role::Readiness,
            result: fail(),
        },
    );
    let err = reply(&fx).unwrap().unwrap_err();
    assert!(
        err.contains("not ready: readiness probe failing: connection refused"),
        "{err}"
    );
    assert_eq!(r.state("a"), State::Starting, "readiness never kills");
}

// ----- resource rules ---------------------------------------------------------------------

fn usage(rss: u64, cpu_percent: f64) -> crate::facts::Usage {
    crate::facts::Usage {
        rss,
        resident: None,
        cpu_percent,
        peak: None,
        window: Duration::from_millis(100),
        periodic: true,
    }
}

fn sample(rig: &mut Rig, ms: u64, name: &str, rss: u64, cpu: f64) -> Vec<Effect> {
    let (id, run_no) = (rig.id(name), rig.run_no(name));
    rig.at(
        ms,
        Input::Usage {
            id,
            run_no,
            usage: usage(rss, cpu),
        },
    )
}

/// The `crossing` events of some effects: (rule, over).
fn limit_events(fx: &[Effect]) -> Vec<(String, bool)> {
    fx.iter()
        .filter_map(|e| match e {
            Effect::Emit(ev) => match &ev.kind {
                EventKind::Crossing { rule, over, .. } => Some((rule.clone(), *over)),
                _ => None,
            },
            _ => None,
        })
        .collect()
}

fn stops(fx: &[Effect]) -> usize {
    fx.iter()
        .filter(|e| matches!(e, Effect::Stop { .. }))
        .count()
}

#[test]
fn a_cpu_spike_shorter_than_for_is_announced_and_left_alone() {
    let (mut rig, _) =
        Rig::new("[processes.w]\ncommand = \"w\"\n[processes.w.limits]\ncpu = 50\nfor = \"1s\"\n");
    rig.spawned(0, "w");
    let fx = sample(&mut rig, 100, "w", 1, 90.0);
    assert_eq!(limit_events(&fx), [("cpu".to_string(), true)]);
    assert_eq!(stops(&fx), 0);
    let fx = sample(&mut rig, 900, "w", 1, 95.0);
    assert!(limit_events(&fx).is_empty(), "no news while it stays over");
    assert_eq!(stops(&fx), 0);
    let fx = sample(&mut rig, 1000, "w", 1, 10.0);
    assert_eq!(limit_events(&fx), [("cpu".to_string(), false)]);
    let back = fx.iter().find_map(|e| match e {
        Effect::Emit(ev) => match &ev.kind {
            EventKind::Crossing { over_ms, .. } => *over_ms,
            _ => None,
        },
        _ => None,
    });
    assert_eq!(back, Some(900));
    // A new crossing starts a new window: 1.5 s after the first one is not "for 1s".
    sample(&mut rig, 1500, "w", 1, 90.0);
    let fx = sample(&mut rig, 2400, "w", 1, 90.0);
    assert_eq!(stops(&fx), 0);
    assert_eq!(rig.state("w"), State::Running);
}

#[test]
fn cpu_sustained_for_its_window_stops_the_run_and_the_history_says_so() {
    let (mut rig, _) =
        Rig::new("[processes.w]\ncommand = \"w\"\n[processes.w.limits]\ncpu = 50\nfor = \"1s\"\n");
    rig.spawned(0, "w");
    sample(&mut rig, 100, "w", 1, 90.0);
    let fx = sample(&mut rig, 1100, "w", 1, 90.0);
    assert_eq!(stops(&fx), 1);
    assert_eq!(rig.state("w"), State::Stopping);
    rig.exited(1200, "w", 143);
    let inst = rig.core.instance(rig.id("w")).unwrap();
    let exit = inst.last_exit().unwrap();
    assert_eq!(exit.reason, ExitReason::Cpu);
    let limit = exit.limit.as_ref().expect("the limit is recorded");
    assert_eq!(
        (
            limit.rule.as_str(),
            limit.value,
            limit.limit,
            limit.window_ms
        ),
        ("cpu", 90.0, 50.0, 1000)
    );
}

#[test]
fn memory_over_its_limit_stops_the_run_at_once() {
    let (mut rig, _) =
        Rig::new("[processes.w]\ncommand = \"w\"\n[processes.w.limits]\nmemory = \"10MB\"\n");
    rig.spawned(0, "w");
    assert_eq!(stops(&sample(&mut rig, 100, "w", 9_000_000, 0.0)), 0);
    let fx = sample(&mut rig, 200, "w", 11_000_000, 0.0);
    assert_eq!(limit_events(&fx), [("memory".to_string(), true)]);
    assert_eq!(stops(&fx), 1);
    rig.exited(300, "w", 143);
    let exit = rig.core.instance(rig.id("w")).unwrap().last_exit().unwrap();
    assert_eq!(exit.reason, ExitReason::Memory);
    let limit = exit.limit.as_ref().unwrap();
    assert_eq!(
        (
            limit.rule.as_str(),
            limit.value,
            limit.limit,
            limit.window_ms
        ),
        ("memory", 11e6, 10e6, 100)
    );
}

#[test]
fn an_oom_kill_is_named_and_counts_as_a_failure() {
    let (mut rig, _) = Rig::new(
        "[processes.w]\ncommand = \"w\"\nrestart = \"on-failure\"\n[processes.w.limits]\nmemory_max = \"50MB\"\n",
    );
    rig.spawned(0, "w");
    let (id, run_no) = (rig.id("w"), rig.run_no("w"));
    let fx = rig.at(
        500,
        Input::Exited {
            id,
            run_no,
            status: ExitStatus {
                code: None,
                signal: Some(9),
            },
            stderr_tail: vec![],
            oom_kills: 1,
            memory_peak: Some(49_999_872),
        },
    );
    assert!(backoff_timer(&fx).is_some(), "on-failure restarts it");
    let exit = rig.core.instance(id).unwrap().last_exit().unwrap();
    assert_eq!(exit.reason, ExitReason::Oom);
    assert!(
        exit.detail
            .as_deref()
            .unwrap()
            .contains("OOM killer killed a process"),
        "{:?}",
        exit.detail
    );
    let limit = exit.limit.as_ref().unwrap();
    assert_eq!(
        (limit.rule.as_str(), limit.limit, limit.value),
        ("memory_max", 50e6, 49_999_872.0)
    );
}

#[test]
fn the_memory_rule_judges_resident_memory_not_page_cache() {
    let (mut rig, _) =
        Rig::new("[processes.w]\ncommand = \"w\"\n[processes.w.limits]\nmemory = \"10MB\"\n");
    rig.spawned(0, "w");
    let (id, run_no) = (rig.id("w"), rig.run_no("w"));
    let mut cached = usage(900_000_000, 0.0);
    cached.resident = Some(4_000_000);
    let fx = rig.at(
        100,
        Input::Usage {
            id,
            run_no,
            usage: cached,
        },
    );
    assert_eq!(stops(&fx), 0);
    assert!(limit_events(&fx).is_empty());
    assert_eq!(rig.core.instance(id).unwrap().rss, Some(900_000_000));
}

#[test]
fn samples_without_limits_are_kept_for_status_and_history() {
    let (mut rig, _) = Rig::new("[processes.w]\ncommand = \"w\"\n");
    rig.spawned(0, "w");
    let fx = sample(&mut rig, 100, "w", 4096, 2.5);
    assert!(fx.iter().all(|e| !matches!(e, Effect::Stop { .. })));
    let inst = rig.core.instance(rig.id("w")).unwrap();
    assert_eq!((inst.rss, inst.cpu_percent), (Some(4096), Some(2.5)));
    assert_eq!(inst.usage.samples().count(), 1);
}

#[test]
fn a_sample_on_demand_updates_the_figures_but_is_no_point_of_the_history() {
    let (mut rig, _) = Rig::new("[processes.w]\ncommand = \"w\"\n");
    rig.spawned(0, "w");
    sample(&mut rig, 100, "w", 4096, 2.5);
    let (id, run_no) = (rig.id("w"), rig.run_no("w"));
    let on_demand = crate::facts::Usage {
        periodic: false,
        ..usage(8192, 7.5)
    };
    rig.at(
        150,
        Input::Usage {
            id,
            run_no,
            usage: on_demand,
        },
    );
    let inst = rig.core.instance(id).unwrap();
    assert_eq!((inst.rss, inst.cpu_percent), (Some(8192), Some(7.5)));
    assert_eq!(inst.memory_peak, Some(8192));
    let points: Vec<u64> = inst.usage.samples().map(|s| s.rss_bytes).collect();
    assert_eq!(points, [4096], "only the periodic sample is a point");
}

#[test]
fn a_spawn_that_ran_out_of_resources_is_retried_in_the_same_run() {
    let (mut r, _) = Rig::new(
        r#"
[processes.a]
command = "x"
backoff = "50ms"
max_restarts = 1
"#,
    );
    let id = r.id("a");
    for attempt in 0..3u64 {
        let fx = r.at(
            10 + attempt * 1000,
            Input::SpawnFailed {
                id,
                run_no: Generation(1),
                error: "cannot create a pipe: too many open files".into(),
                transient: true,
            },
        );
        assert_eq!(r.state("a"), State::Backoff, "attempt {attempt}");
        let due = backoff_timer(&fx).expect("a retry is scheduled");
        // The usual doubling, but never less than MIN_RETRY.
        let delay = due - (r.t0 + Duration::from_millis(10 + attempt * 1000));
        assert_eq!(delay, Duration::from_millis((50 << attempt).max(100)));
        assert!(fx.iter().any(|e| matches!(e, Effect::Emit(ev)
            if matches!(&ev.kind, EventKind::Message { text } if text.starts_with("could not start: cannot create a pipe")))));
        let fx = r.at(
            500 + attempt * 1000,
            Input::Timer {
                id,
                run_no: Generation(1),
                timer: Timer::Backoff,
            },
        );
        assert_eq!(spawns(&fx), 1);
        // Not a new run, not a restart, and max_restarts is not used up.
        assert_eq!(r.run_no("a"), Generation(1));
        assert_eq!(r.core.instance(id).unwrap().restarts, 0);
    }
    r.spawned(4000, "a");
    assert_eq!(r.state("a"), State::Running);
    // A spawn that fails for good is fatal at once.
    let (mut r, _) = Rig::new("[processes.a]\ncommand = \"x\"\n");
    let id = r.id("a");
    r.at(
        10,
        Input::SpawnFailed {
            id,
            run_no: Generation(1),
            error: "command `x` not found in PATH".into(),
            transient: false,
        },
    );
    assert_eq!(r.state("a"), State::Fatal);
}
