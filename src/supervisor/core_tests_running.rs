//! The core's decisions for running it for real: `scale`, schedules and watch-restarts.

use super::core::*;
use super::core_tests::{Rig, reply, spawns, spec};
use super::event::ExitReason;
use super::state::State;

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
    assert_eq!(r.run_no("web.0"), 1);
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
