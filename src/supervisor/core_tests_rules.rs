//! The health rules of the core ([`super::core`]'s `rules`), input by input, with no
//! processes and no clock: sd_notify messages, watchdog, silence, output matched,
//! limits, probes, checks.

use super::core::*;
use super::core_tests::Rig;
use super::event::EventKind;
use super::state::State;
use crate::facts::{Generation, NotifyMessage};

const NOTIFY: &str = r#"
[processes.svc]
command = "x"
notify = true
"#;

/// The `notify_refused` events among `fx`: (run, pid, refused so far).
fn refusals(fx: &[Effect]) -> Vec<(u64, Option<u32>, u32)> {
    fx.iter()
        .filter_map(|e| match e {
            Effect::Emit(ev) => match ev.kind {
                EventKind::NotifyRefused { run, pid, refused } => Some((run.0, pid, refused)),
                _ => None,
            },
            _ => None,
        })
        .collect()
}

#[test]
fn a_strangers_notify_message_is_counted_and_told_never_acted_on() {
    let (mut r, _) = Rig::new(NOTIFY);
    r.spawned(1, "svc");
    assert_eq!(r.state("svc"), State::Starting);
    let id = r.id("svc");
    let mut told = Vec::new();
    for i in 0..9 {
        let fx = r.at(
            10 + i,
            Input::NotifyRefused {
                id,
                run_no: Generation(1),
                sender: Some(4242),
            },
        );
        told.extend(refusals(&fx));
        assert_eq!(r.state("svc"), State::Starting, "never acted on");
    }
    // Told on a log scale: a flood cannot flood the events.
    assert_eq!(
        told,
        [
            (1, Some(4242), 1),
            (1, Some(4242), 2),
            (1, Some(4242), 4),
            (1, Some(4242), 8)
        ]
    );
    assert_eq!(r.core.instance(id).unwrap().notify_refused, 9);
    // A refusal for an earlier run is dropped like any late message.
    let fx = r.at(
        30,
        Input::NotifyRefused {
            id,
            run_no: Generation(0),
            sender: None,
        },
    );
    assert!(refusals(&fx).is_empty());
    // The run's own READY=1 still counts.
    r.at(
        40,
        Input::Notify {
            id,
            run_no: Generation(1),
            message: NotifyMessage::Ready,
        },
    );
    assert_eq!(r.state("svc"), State::Running);
}

/// What a health input led to, read from the effects.
#[derive(Debug, PartialEq)]
enum Verdict {
    /// Declared hung for this reason, with a detail containing this text.
    Hung(super::event::ExitReason, String),
    /// Not judged yet (warden was behind): said, and looked at again at this ms.
    Recheck(u64),
    /// Healthy so far: looked at again at this ms.
    Again(u64),
    Nothing,
}

fn verdict(r: &Rig, fx: &[Effect]) -> Verdict {
    let ms = |at: std::time::Instant| at.duration_since(r.t0).as_millis() as u64;
    for e in fx {
        if let Effect::Emit(ev) = e
            && let EventKind::Hung { reason, detail, .. } = &ev.kind
        {
            return Verdict::Hung(*reason, detail.clone());
        }
    }
    let said = fx
        .iter()
        .any(|e| matches!(e, Effect::Emit(ev) if matches!(ev.kind, EventKind::Message { .. })));
    for e in fx {
        if let Effect::Schedule {
            at,
            timer: Timer::Watchdog | Timer::Silence,
            ..
        } = e
        {
            return match said {
                true => Verdict::Recheck(ms(*at)),
                false => Verdict::Again(ms(*at)),
            };
        }
    }
    Verdict::Nothing
}

const WATCHDOG: &str = r#"
[processes.svc]
command = "x"
notify = true
watchdog = "1s"
"#;

#[test]
fn watchdog_table() {
    use super::event::ExitReason::Watchdog;
    let missed = || Verdict::Hung(Watchdog, "no WATCHDOG=1 within 1s".into());
    // (last WATCHDOG=1 at ms, or none since the start at 0; the timer fires at ms;
    // messages waiting unread) → verdict
    #[rustfmt::skip]
    let table: &[(Option<u64>, u64, bool, Verdict)] = &[
        (None, 999, false, Verdict::Again(1000)),
        (None, 1000, false, missed()),
        (None, 1500, true, Verdict::Recheck(1600)),
        (Some(600), 1000, false, Verdict::Again(1600)),
        (Some(600), 1600, false, missed()),
        (Some(600), 1600, true, Verdict::Recheck(1700)),
        (Some(600), 1200, true, Verdict::Again(1600)),
    ];
    for (beat, fire, unread, expected) in table {
        let (mut r, _) = Rig::new(WATCHDOG);
        r.spawned(0, "svc");
        let id = r.id("svc");
        if let Some(at) = beat {
            r.at(
                *at,
                Input::Notify {
                    id,
                    run_no: Generation(1),
                    message: NotifyMessage::Watchdog,
                },
            );
        }
        let fx = r.at(
            *fire,
            Input::Watchdog {
                id,
                run_no: Generation(1),
                unread: *unread,
            },
        );
        assert_eq!(
            &verdict(&r, &fx),
            expected,
            "beat {beat:?}, fired at {fire}, unread {unread}"
        );
    }
}

const SILENCE: &str = r#"
[processes.svc]
command = "x"
[processes.svc.output]
silence = "1s"
"#;

#[test]
fn silence_table() {
    use super::event::ExitReason::Output;
    let silent = || Verdict::Hung(Output, "no output for 1s".into());
    // (last output at ms, or none since the start at 100; the timer fires at ms; output
    // waiting unread) → verdict
    #[rustfmt::skip]
    let table: &[(Option<u64>, u64, bool, Verdict)] = &[
        (None, 1099, false, Verdict::Again(1100)),
        (None, 1100, false, silent()),
        (None, 1100, true, Verdict::Recheck(1200)),
        (Some(700), 1100, false, Verdict::Again(1700)),
        (Some(700), 1700, false, silent()),
        (Some(700), 2000, true, Verdict::Recheck(2100)),
        // Output from before the run started does not count as its output: silence is
        // counted from the start.
        (Some(50), 1050, false, Verdict::Again(1100)),
        (Some(50), 1100, false, silent()),
    ];
    for (last, fire, unread, expected) in table {
        let (mut r, _) = Rig::new(SILENCE);
        r.spawned(100, "svc");
        let id = r.id("svc");
        let last_output = last.map(|ms| r.t0 + std::time::Duration::from_millis(ms));
        let fx = r.at(
            *fire,
            Input::Silence {
                id,
                run_no: Generation(1),
                last_output,
                unread: *unread,
            },
        );
        assert_eq!(
            &verdict(&r, &fx),
            expected,
            "last output {last:?}, fired at {fire}, unread {unread}"
        );
    }
}

#[test]
fn notify_and_output_rules_table() {
    use super::event::ExitReason::{Output, Watchdog};
    const WITH_READINESS: &str = r#"
[processes.svc]
command = "x"
notify = true
[processes.svc.readiness]
tcp = "127.0.0.1:1"
"#;
    const HUNG_ON: &str = r#"
[processes.svc]
command = "x"
[processes.svc.output]
hung_on = "deadlock"
"#;
    let notify = |m: NotifyMessage| {
        move |id| Input::Notify {
            id,
            run_no: Generation(1),
            message: m.clone(),
        }
    };
    type Make = Box<dyn Fn(InstanceId) -> Input>;
    // (config, input for run 1, state after, verdict)
    let table: Vec<(&str, Make, State, Verdict)> = vec![
        (
            NOTIFY,
            Box::new(notify(NotifyMessage::Ready)),
            State::Running,
            Verdict::Nothing,
        ),
        // A readiness probe decides readiness: READY=1 is not enough.
        (
            WITH_READINESS,
            Box::new(notify(NotifyMessage::Ready)),
            State::Starting,
            Verdict::Nothing,
        ),
        (
            NOTIFY,
            Box::new(notify(NotifyMessage::Status("busy".into()))),
            State::Starting,
            Verdict::Nothing,
        ),
        (
            NOTIFY,
            Box::new(notify(NotifyMessage::WatchdogTrigger)),
            State::Stopping,
            Verdict::Hung(Watchdog, "the process sent WATCHDOG=trigger".into()),
        ),
        (
            HUNG_ON,
            Box::new(|id| Input::OutputMatched {
                id,
                run_no: Generation(1),
                line: "deadlock in pool".into(),
            }),
            State::Stopping,
            Verdict::Hung(Output, "output matched `hung_on`: deadlock in pool".into()),
        ),
    ];
    for (i, (config, input, state, expected)) in table.into_iter().enumerate() {
        let (mut r, _) = Rig::new(config);
        r.spawned(0, "svc");
        let id = r.id("svc");
        let fx = r.at(10, input(id));
        assert_eq!(verdict(&r, &fx), expected, "row {i}");
        assert_eq!(r.state("svc"), state, "row {i}");
        if let Verdict::Hung(..) = expected {
            // Hung means stopped with the stop signal, and restarted by policy later.
            assert!(
                fx.iter().any(|e| matches!(e, Effect::Stop { .. })),
                "row {i}: {fx:?}"
            );
        }
    }
}
