//! The restart decision: what a run's end leads to, as a pure function of the run's
//! facts, the process's restart rules and its streak of failed and short runs. No state,
//! no clock: [`Core`](super::Core) gathers the facts and applies the answer.

use std::time::Duration;

use crate::config::{ProcessSpec, RestartPolicy};
use crate::supervisor::event::ExitReason;

/// The facts of a run that just ended, as far as the decision goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunFacts {
    pub reason: ExitReason,
    pub uptime: Duration,
    /// It is wanted up (no stop was asked for).
    pub want_up: bool,
    /// A restart was asked for while it was stopping: it starts again at once.
    pub start_after_stop: bool,
    /// It runs on a `schedule`: its next run is at its next time.
    pub scheduled: bool,
}

/// The restart keys of a process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RestartRules {
    pub policy: RestartPolicy,
    pub min_uptime: Duration,
    /// 0: no limit.
    pub max_restarts: u32,
    pub backoff: Duration,
    pub backoff_max: Duration,
}

impl RestartRules {
    pub fn of(spec: &ProcessSpec) -> RestartRules {
        RestartRules {
            policy: spec.restart,
            min_uptime: spec.min_uptime,
            max_restarts: spec.max_restarts,
            backoff: spec.backoff,
            backoff_max: spec.backoff_max,
        }
    }
}

/// Consecutive failed runs (towards `max_restarts`) and consecutive runs shorter than
/// `min_uptime` (the backoff's exponent).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Streak {
    pub failures: u32,
    pub short_runs: u32,
}

/// What the end of a run leads to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterExit {
    /// It was being stopped: it stays stopped.
    Stopped,
    /// A restart was asked for: start again at once, with a fresh streak.
    StartAgain,
    /// Not restarted (its policy, or its schedule): it rests in `exited`.
    Exited,
    /// `max_restarts` consecutive failures were exceeded: give up.
    Fatal { failures: u32 },
    /// Start again after `delay` (zero: at once).
    Restart { delay: Duration },
}

/// The decision for a run that ended, and the streak that follows.
pub fn after_exit(run: RunFacts, rules: RestartRules, streak: Streak) -> (AfterExit, Streak) {
    if !run.want_up {
        return (AfterExit::Stopped, streak);
    }
    if run.start_after_stop {
        return (AfterExit::StartAgain, Streak::default());
    }
    if run.scheduled {
        return (AfterExit::Exited, streak);
    }
    let failed = run.reason.is_failure();
    let restart = match rules.policy {
        RestartPolicy::Always => true,
        RestartPolicy::OnFailure => failed,
        RestartPolicy::Never => false,
    };
    if !restart {
        return (AfterExit::Exited, streak);
    }
    let mut next = streak;
    if run.uptime >= rules.min_uptime {
        next = Streak::default();
    }
    next.failures = if failed { next.failures + 1 } else { 0 };
    if rules.max_restarts > 0 && next.failures > rules.max_restarts {
        return (
            AfterExit::Fatal {
                failures: next.failures,
            },
            next,
        );
    }
    let delay = backoff_delay(rules.backoff, rules.backoff_max, next.short_runs);
    next.short_runs = next.short_runs.saturating_add(1);
    (AfterExit::Restart { delay }, next)
}

/// `backoff` doubled per consecutive short run, capped at `backoff_max` (never below
/// `backoff`).
pub fn backoff_delay(backoff: Duration, max: Duration, short_runs: u32) -> Duration {
    let factor = 1u32.checked_shl(short_runs.min(31)).unwrap_or(u32::MAX);
    backoff.saturating_mul(factor).min(max.max(backoff))
}

#[cfg(test)]
mod tests {
    use super::*;
    use AfterExit::{Fatal, Restart, StartAgain, Stopped};
    use ExitReason::{Crash, Liveness, Oom, Reload, Request};
    use RestartPolicy::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn rules(policy: RestartPolicy, max_restarts: u32) -> RestartRules {
        RestartRules {
            policy,
            min_uptime: ms(1000),
            max_restarts,
            backoff: ms(100),
            backoff_max: ms(1000),
        }
    }

    fn up(reason: ExitReason, uptime_ms: u64) -> RunFacts {
        RunFacts {
            reason,
            uptime: ms(uptime_ms),
            want_up: true,
            start_after_stop: false,
            scheduled: false,
        }
    }

    fn streak(failures: u32, short_runs: u32) -> Streak {
        Streak {
            failures,
            short_runs,
        }
    }

    #[test]
    fn the_decision_table() {
        let stopped = RunFacts {
            want_up: false,
            ..up(Crash, 5)
        };
        let asked = RunFacts {
            start_after_stop: true,
            ..up(Request, 5)
        };
        let scheduled = RunFacts {
            scheduled: true,
            ..up(Crash, 5)
        };
        #[rustfmt::skip]
        let table: &[(&str, RunFacts, RestartRules, Streak, AfterExit, Streak)] = &[
            ("stopped by request stays stopped, streak kept",
                stopped, rules(Always, 0), streak(2, 3), Stopped, streak(2, 3)),
            ("a restart asked for starts again with a fresh streak",
                asked, rules(Never, 0), streak(2, 3), StartAgain, streak(0, 0)),
            ("a scheduled process waits for its time, whatever its policy",
                scheduled, rules(Always, 0), streak(1, 1), AfterExit::Exited, streak(1, 1)),
            ("never: a crash rests in exited",
                up(Crash, 5), rules(Never, 0), streak(0, 0), AfterExit::Exited, streak(0, 0)),
            ("on-failure: a success rests in exited",
                up(ExitReason::Exited, 5), rules(OnFailure, 0), streak(1, 1), AfterExit::Exited, streak(1, 1)),
            ("on-failure: a crash restarts after backoff",
                up(Crash, 5), rules(OnFailure, 0), streak(0, 0), Restart { delay: ms(100) }, streak(1, 1)),
            ("on-failure: a hung run is a failure",
                up(Liveness, 5), rules(OnFailure, 0), streak(0, 0), Restart { delay: ms(100) }, streak(1, 1)),
            ("on-failure: an OOM kill is a failure",
                up(Oom, 5), rules(OnFailure, 0), streak(0, 0), Restart { delay: ms(100) }, streak(1, 1)),
            ("on-failure: a reload's stop is no failure",
                up(Reload, 5), rules(OnFailure, 0), streak(0, 0), AfterExit::Exited, streak(0, 0)),
            ("always: a success restarts and clears the failures",
                up(ExitReason::Exited, 5), rules(Always, 3), streak(2, 1), Restart { delay: ms(200) }, streak(0, 2)),
            ("short runs double the backoff",
                up(Crash, 5), rules(Always, 0), streak(3, 3), Restart { delay: ms(800) }, streak(4, 4)),
            ("capped at backoff_max",
                up(Crash, 5), rules(Always, 0), streak(9, 9), Restart { delay: ms(1000) }, streak(10, 10)),
            ("a run past min_uptime starts the streak over",
                up(Crash, 1000), rules(Always, 2), streak(2, 5), Restart { delay: ms(100) }, streak(1, 1)),
            ("max_restarts failures in a row are allowed",
                up(Crash, 5), rules(Always, 3), streak(2, 2), Restart { delay: ms(400) }, streak(3, 3)),
            ("one more gives up",
                up(Crash, 5), rules(Always, 3), streak(3, 3), Fatal { failures: 4 }, streak(4, 3)),
            ("max_restarts = 0 never gives up",
                up(Crash, 5), rules(Always, 0), streak(1000, 40), Restart { delay: ms(1000) }, streak(1001, 41)),
        ];
        for (what, run, rules, before, decision, after) in table {
            assert_eq!(
                after_exit(*run, *rules, *before),
                (*decision, *after),
                "{what}"
            );
        }
    }

    #[test]
    fn backoff_never_overflows_and_never_goes_below_backoff() {
        assert_eq!(backoff_delay(ms(100), ms(50), 0), ms(100));
        assert_eq!(backoff_delay(ms(100), ms(10_000), 40), ms(10_000));
        assert_eq!(
            backoff_delay(Duration::MAX, Duration::MAX, u32::MAX),
            Duration::MAX
        );
    }
}
