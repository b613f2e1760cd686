//! The health rules of the core ([`super::core`]'s `rules`), input by input, with no
//! processes and no clock: sd_notify messages, watchdog, silence, output matched,
//! limits, probes, checks.

use super::core::*;
use super::core_tests::Rig;
use super::event::EventKind;
use super::state::State;
use crate::facts::NotifyMessage;

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
                EventKind::NotifyRefused { run, pid, refused } => Some((run, pid, refused)),
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
                run_no: 1,
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
            run_no: 0,
            sender: None,
        },
    );
    assert!(refusals(&fx).is_empty());
    // The run's own READY=1 still counts.
    r.at(
        40,
        Input::Notify {
            id,
            run_no: 1,
            message: NotifyMessage::Ready,
        },
    );
    assert_eq!(r.state("svc"), State::Running);
}
