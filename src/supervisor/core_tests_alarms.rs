//! The supervisor-wide decisions of the core (`alarms`), as tables of inputs at given
//! moments and what came out: the shutdown's escalation (the timeout, a second request,
//! a hang-up) and the config file's debounced reload.

use super::core::*;
use super::core_tests::{Rig, spec};
use super::event::EventKind;

/// One input of a script, at a moment in ms after boot.
#[derive(Debug, Clone, Copy)]
enum In {
    Shutdown,
    HangUp,
    ShutdownAlarm,
    /// `stop` of the process, as a user asks.
    Stop,
    /// The process's stop timeout fires.
    StopTimeout,
    /// The process exits (on its stop signal).
    Exited,
    ConfigChanged,
    /// SIGHUP's reload.
    Reload,
    ReloadAlarm,
}

/// What a script produced, each effect at the moment of the input it answered.
#[derive(Debug, Default)]
struct Out {
    kills: Vec<u64>,
    reloads: Vec<u64>,
    /// (alarm, when it is asked for, in ms after boot).
    alarms: Vec<(Alarm, u64)>,
    notices: Vec<String>,
    report: ShutdownReport,
}

/// The moments of a script: (ms after boot, input).
type Script = &'static [(u64, In)];

fn play(config: &str, script: &[(u64, In)]) -> (Rig, Out) {
    let (mut r, _) = Rig::new(config);
    r.spawned(0, "a");
    let mut out = Out::default();
    for &(ms, input) in script {
        let (id, run_no) = (r.id("a"), r.run_no("a"));
        let fx = match input {
            In::Shutdown => r.at(ms, Input::Shutdown),
            In::HangUp => r.at(ms, Input::HangUp),
            In::ShutdownAlarm => r.at(ms, Input::Alarm(Alarm::ShutdownTimeout)),
            In::Stop => r.request(ms, |names, waiter| Input::Stop { names, waiter }, &["a"]),
            In::StopTimeout => r.at(
                ms,
                Input::Timer {
                    id,
                    run_no,
                    timer: Timer::StopTimeout,
                },
            ),
            In::Exited => r.exited(ms, "a", 0),
            In::ConfigChanged => r.at(ms, Input::ConfigChanged),
            In::Reload => r.at(ms, Input::Reload),
            In::ReloadAlarm => r.at(ms, Input::Alarm(Alarm::Reload)),
        };
        for e in fx {
            match e {
                Effect::Kill { .. } => out.kills.push(ms),
                Effect::Reload => out.reloads.push(ms),
                Effect::SetAlarm { at, alarm } => {
                    out.alarms
                        .push((alarm, at.duration_since(r.t0).as_millis() as u64));
                }
                Effect::Emit(ev) => {
                    if let EventKind::Message { text } = ev.kind {
                        out.notices.push(text);
                    }
                }
                _ => {}
            }
        }
    }
    out.report = r.core.shutdown_report();
    (r, out)
}

const STOPS: &str = r#"
[supervisor]
shutdown_timeout = "5s"
[processes.a]
command = "x"
stop_timeout = "2s"
"#;

#[test]
fn shutdown_escalation() {
    use In::*;
    // (what, script, SIGKILLs at, exit code, timed out)
    let table: &[(&str, Script, &[u64], i32, bool)] = &[
        (
            "a first request stops gracefully",
            &[(10, Shutdown)],
            &[],
            0,
            false,
        ),
        (
            "an alarm before the timeout is not due",
            &[(10, Shutdown), (5009, ShutdownAlarm)],
            &[],
            0,
            false,
        ),
        (
            "the timeout kills what is left",
            &[(10, Shutdown), (5010, ShutdownAlarm)],
            &[5010],
            4,
            true,
        ),
        (
            "the timeout kills once",
            &[(10, Shutdown), (5010, ShutdownAlarm), (6000, ShutdownAlarm)],
            &[5010],
            4,
            true,
        ),
        (
            "a second request kills at once",
            &[(10, Shutdown), (20, Shutdown)],
            &[20],
            5,
            false,
        ),
        (
            "the stop timeout during a shutdown",
            &[(10, Shutdown), (2010, StopTimeout)],
            &[2010],
            3,
            false,
        ),
        (
            "the stop timeout of a user's stop is no shutdown's",
            &[(10, Stop), (2010, StopTimeout)],
            &[2010],
            0,
            false,
        ),
        (
            "a hang-up stops gracefully and never escalates",
            &[(10, HangUp), (20, HangUp)],
            &[],
            0,
            false,
        ),
        (
            "a hang-up after a request is not a second one",
            &[(10, Shutdown), (20, HangUp)],
            &[],
            0,
            false,
        ),
        (
            "a request after a hang-up is",
            &[(10, HangUp), (20, Shutdown)],
            &[20],
            5,
            false,
        ),
        (
            "the timeout after everything stopped does nothing",
            &[(10, Shutdown), (100, Exited), (5010, ShutdownAlarm)],
            &[],
            0,
            false,
        ),
        (
            "an alarm with no shutdown does nothing",
            &[(5010, ShutdownAlarm)],
            &[],
            0,
            false,
        ),
    ];
    for (what, script, kills, code, timed_out) in table {
        let (_, out) = play(STOPS, script);
        assert_eq!(out.kills, *kills, "{what}: {out:?}");
        assert_eq!(out.report.exit_code(), *code, "{what}: {out:?}");
        assert_eq!(out.report.timed_out, *timed_out, "{what}: {out:?}");
    }
}

#[test]
fn the_first_request_asks_for_the_timeout_and_says_so() {
    let (r, out) = play(STOPS, &[(10, In::Shutdown), (5010, In::ShutdownAlarm)]);
    assert_eq!(out.alarms, [(Alarm::ShutdownTimeout, 5010)]);
    assert_eq!(
        out.report.deadline,
        Some(r.t0 + std::time::Duration::from_millis(5010))
    );
    assert_eq!(
        out.notices,
        [
            "shutting down (a second Ctrl-C or SIGTERM kills everything at once)",
            "shutdown timeout reached: killing what is left"
        ]
    );
    let (_, out) = play(STOPS, &[(10, In::HangUp), (20, In::HangUp)]);
    assert_eq!(out.alarms, [(Alarm::ShutdownTimeout, 5010)]);
    assert_eq!(
        out.notices[0],
        "the terminal closed (SIGHUP): stopping everything"
    );
}

#[test]
fn a_reload_brings_its_shutdown_timeout() {
    let (mut r, _) = Rig::new(STOPS);
    let new = spec(&STOPS.replace("\"5s\"", "\"1s\""));
    let old = spec(STOPS);
    r.core.reload(&old, &new, r.now());
    let fx = r.at(10, Input::Shutdown);
    let alarm = fx.iter().find_map(|e| match e {
        Effect::SetAlarm { at, alarm } => Some((*alarm, at.duration_since(r.t0))),
        _ => None,
    });
    assert_eq!(
        alarm,
        Some((
            Alarm::ShutdownTimeout,
            std::time::Duration::from_millis(1010)
        ))
    );
}

#[test]
fn config_reload_debounce() {
    use In::*;
    let quiet = RELOAD_DEBOUNCE.as_millis() as u64;
    assert_eq!(quiet, 300, "the table below is written for 300 ms");
    // (what, script, reloads at, reload alarms asked for at)
    let table: &[(&str, Script, &[u64], &[u64])] = &[
        (
            "a change reloads once quiet",
            &[(10, ConfigChanged), (309, ReloadAlarm), (310, ReloadAlarm)],
            &[310],
            &[310],
        ),
        (
            "once",
            &[(10, ConfigChanged), (310, ReloadAlarm), (320, ReloadAlarm)],
            &[310],
            &[310],
        ),
        (
            "a burst is one reload, after its last change",
            &[
                (10, ConfigChanged),
                (100, ConfigChanged),
                (200, ConfigChanged),
                (310, ReloadAlarm),
                (500, ReloadAlarm),
            ],
            &[500],
            &[310, 400, 500],
        ),
        ("SIGHUP reloads at once", &[(10, Reload)], &[10], &[]),
        (
            "SIGHUP takes a pending change along",
            &[(10, ConfigChanged), (100, Reload), (310, ReloadAlarm)],
            &[100],
            &[310],
        ),
        (
            "nothing reloads during a shutdown",
            &[
                (5, Shutdown),
                (10, ConfigChanged),
                (310, ReloadAlarm),
                (400, Reload),
            ],
            &[],
            &[],
        ),
        (
            "a shutdown drops a pending change",
            &[(10, ConfigChanged), (20, Shutdown), (310, ReloadAlarm)],
            &[],
            &[310],
        ),
    ];
    for (what, script, reloads, asked) in table {
        let (_, out) = play(STOPS, script);
        assert_eq!(out.reloads, *reloads, "{what}: {out:?}");
        let alarms: Vec<u64> = out
            .alarms
            .iter()
            .filter(|(a, _)| *a == Alarm::Reload)
            .map(|(_, at)| *at)
            .collect();
        assert_eq!(alarms, *asked, "{what}: {out:?}");
    }
}
