//! Running a probe on a timer, and counting consecutive results into verdicts.
//!
//! A prober is one task that sleeps on a timer between probes: no thread, no polling, so
//! hundreds of idle probers cost next to nothing. It runs one probe at a time (like the
//! kubelet's worker per probe): a probe that outlasts its period delays the next one
//! instead of overlapping it, so slow targets never pile up probes (research D2).

use std::sync::OnceLock;
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::{Kept, Outcome, ProbeContext, run_keeping};
use crate::config::spec::ProbeSpec;

/// Start probing: after `initial_delay`, one probe every `period`, start to start; when a
/// probe takes longer than the period the next one starts right after it. Every outcome
/// goes to `report`, raw: thresholds are the caller's (the supervisor's `Thresholds`).
///
/// Abort the handle to stop. Aborting mid-probe is safe: an exec probe's command is then
/// killed and reaped by the task that owns it.
pub fn spawn_prober(
    spec: ProbeSpec,
    ctx: ProbeContext,
    report: impl Fn(Outcome) + Send + 'static,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        tokio::time::sleep(spec.initial_delay).await;
        let mut ticks = Ticks::new(grid_origin(), Instant::now(), spec.period);
        let mut due = ticks.first();
        let mut kept = Kept::default();
        loop {
            tokio::time::sleep_until(due).await;
            // Not `report(run_keeping(..).await)`: that would hold `&report` across the
            // await and demand `Sync` of the callback.
            let outcome = run_keeping(&spec.target, spec.timeout, &ctx, &mut kept).await;
            report(outcome);
            due = ticks.after(Instant::now());
        }
    })
}

/// Probers share wake-ups: every probe is due on a multiple of [`GRID`] (counted from one
/// process-wide origin), so probers with the same period fire together instead of each on
/// its own millisecond. Waking a thread costs more than a probe itself; with 500 probers
/// at 1 s this turns 500 wake-ups a second into at most 1 s / `GRID`. Periods shorter than
/// a few grid steps are left alone.
const GRID: Duration = Duration::from_millis(20);

fn grid_origin() -> Instant {
    static ORIGIN: OnceLock<Instant> = OnceLock::new();
    *ORIGIN.get_or_init(Instant::now)
}

/// When a prober's probes are due: one every `period`, start to start, each on the next
/// grid step after its exact time, so the period holds on average and every probe stays on
/// the grid (a schedule that only started on it would leave it at the first late wake-up,
/// and probers would drift apart onto wake-ups of their own). A probe that outlasts its
/// period is followed by one right away (on the next step), then the period again: no
/// catch-up burst.
#[derive(Debug)]
struct Ticks {
    origin: Instant,
    /// The exact time of the probe last made due, before it was moved onto the grid.
    exact: Instant,
    period: Duration,
}

impl Ticks {
    fn new(origin: Instant, now: Instant, period: Duration) -> Ticks {
        // A zero period would probe in a loop; the config never yields one.
        let period = period.max(Duration::from_millis(1));
        Ticks {
            origin,
            exact: now,
            period,
        }
    }

    fn first(&self) -> Instant {
        self.on_grid(self.exact)
    }

    /// The next probe's due time, the last one having ended at `now`.
    fn after(&mut self, now: Instant) -> Instant {
        self.exact += self.period;
        if self.on_grid(self.exact) < now {
            self.exact = now;
        }
        self.on_grid(self.exact)
    }

    /// The first grid step at or after `t`. `t` may be before the origin: a test's paused
    /// clock is a clock of its own, and the origin is whichever came first.
    fn on_grid(&self, t: Instant) -> Instant {
        if self.period < GRID * 5 {
            return t;
        }
        let grid = GRID.as_nanos();
        let to_step = match t.checked_duration_since(self.origin) {
            Some(since) => (grid - since.as_nanos() % grid) % grid,
            None => (self.origin - t).as_nanos() % grid,
        };
        t + Duration::from_nanos(to_step as u64)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};
    use std::time::{Duration, Instant};

    use tokio::net::TcpListener;
    use tokio::sync::mpsc;

    use super::*;
    use crate::config::spec::{ProbeSpec, ProbeTarget};
    use crate::probe::test_support::{PATIENT, ctx, tcp};

    fn spec(target: ProbeTarget, period_ms: u64, timeout_ms: u64) -> ProbeSpec {
        ProbeSpec {
            target,
            initial_delay: Duration::ZERO,
            period: Duration::from_millis(period_ms),
            timeout: Duration::from_millis(timeout_ms),
            success_threshold: 1,
            failure_threshold: 3,
        }
    }

    /// Starts a prober and returns when it has reported `n` outcomes, with the time of each.
    async fn collect(spec: ProbeSpec, n: usize) -> Vec<(Instant, Outcome)> {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let prober = spawn_prober(spec, ctx(), move |o| {
            let _ = tx.send((Instant::now(), o));
        });
        let mut got = Vec::new();
        while got.len() < n {
            let next = tokio::time::timeout(PATIENT, rx.recv()).await;
            got.push(next.expect("a probe result in time").expect("prober alive"));
        }
        prober.abort();
        got
    }

    #[tokio::test]
    async fn probes_every_period() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let started = Instant::now();
        let mut s = spec(tcp(&addr, None, None), 100, 1000);
        s.initial_delay = Duration::from_millis(50);
        let got = collect(s, 4).await;
        assert!(got.iter().all(|(_, o)| o.ok), "{got:?}");
        assert!(got[0].0 - started >= Duration::from_millis(50));
        for pair in got.windows(2) {
            let gap = pair[1].0 - pair[0].0;
            assert!(gap >= Duration::from_millis(90), "gap {gap:?}");
        }
    }

    #[tokio::test]
    async fn a_slow_probe_delays_the_next_instead_of_overlapping() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let open = Arc::new(Mutex::new(Vec::new()));
        let held = open.clone();
        tokio::spawn(async move {
            while let Ok((s, _)) = listener.accept().await {
                held.lock().unwrap().push(s);
            }
        });
        // Each probe waits its whole 150ms timeout for a reply; the period is 50ms.
        let got = collect(spec(tcp(&addr, Some("?"), Some("!")), 50, 150), 4).await;
        assert!(got.iter().all(|(_, o)| !o.ok));
        for pair in got.windows(2) {
            let gap = pair[1].0 - pair[0].0;
            assert!(
                gap >= Duration::from_millis(140),
                "gap {gap:?}: probes overlapped"
            );
        }
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// A schedule whose grid starts at `origin`, its prober started 7 ms later.
    fn ticks(period: Duration) -> (tokio::time::Instant, Ticks) {
        let origin = tokio::time::Instant::from_std(Instant::now());
        (origin, Ticks::new(origin, origin + ms(7), period))
    }

    #[test]
    fn every_probe_is_due_on_the_grid_and_the_period_holds_on_average() {
        // 1.25 s is not a multiple of the grid: each probe is moved up to the next step,
        // and the schedule still gains nothing over 40 periods.
        let (origin, mut t) = ticks(ms(1250));
        let mut due = t.first();
        assert_eq!(due, origin + ms(20));
        for n in 1..=40u32 {
            // A wake-up a little late, and a probe of 2 ms, must not move the schedule.
            due = t.after(due + ms(5));
            let exact = origin + ms(7) + ms(1250) * n;
            assert!(due >= exact && due < exact + GRID, "probe {n}: {due:?}");
            assert_eq!((due - origin).as_nanos() % GRID.as_nanos(), 0, "probe {n}");
        }
    }

    #[test]
    fn a_probe_that_outlasts_its_period_is_followed_at_the_next_step_then_the_period() {
        let (origin, mut t) = ticks(ms(1000));
        assert_eq!(t.first(), origin + ms(20));
        // The first probe ends 2.5 s after its start: the next is due at once (the next
        // grid step), not three at once to catch up.
        let late = origin + ms(2507);
        let next = t.after(late);
        assert_eq!(next, origin + ms(2520));
        assert_eq!(t.after(next + ms(3)), origin + ms(3520));
    }

    #[test]
    fn a_time_already_on_the_grid_stays_where_it_is() {
        let origin = tokio::time::Instant::from_std(Instant::now());
        let mut t = Ticks::new(origin, origin + ms(40), ms(1000));
        assert_eq!(t.first(), origin + ms(40));
        assert_eq!(t.after(origin + ms(45)), origin + ms(1040));
        let before = Ticks::new(origin, origin - ms(60), ms(1000));
        assert_eq!(before.first(), origin - ms(60));
    }

    #[test]
    fn a_prober_started_before_the_origin_is_on_the_grid_too() {
        let origin = tokio::time::Instant::from_std(Instant::now()) + ms(3_600_000);
        let mut t = Ticks::new(origin, origin - ms(1007), ms(1000));
        assert_eq!(t.first(), origin - ms(1000));
        assert_eq!(t.after(origin - ms(990)), origin);
        assert_eq!(t.after(origin + ms(4)), origin + ms(1000));
    }

    #[test]
    fn short_periods_are_not_moved_onto_the_grid() {
        let (origin, mut t) = ticks(ms(30));
        assert_eq!(t.first(), origin + ms(7));
        assert_eq!(t.after(origin + ms(9)), origin + ms(37));
        assert_eq!(t.after(origin + ms(90)), origin + ms(90));
    }

    fn cpu_seconds() -> f64 {
        let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
        let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split(' ').collect();
        // utime and stime are fields 14 and 15 of the whole line, 12 and 13 after `)`.
        let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
        // SAFETY: sysconf has no preconditions.
        let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
        ticks as f64 / hz
    }

    /// `cargo test --release --lib idle_cost -- --ignored --nocapture`
    #[test]
    #[ignore = "a measurement, not a check: takes 13s"]
    fn idle_cost_of_500_tcp_probers() {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            // All 500 probers connect in the same instant: the default backlog of 128
            // would overflow and drop SYNs.
            let socket = tokio::net::TcpSocket::new_v4().unwrap();
            socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
            let listener = socket.listen(4096).unwrap();
            let addr = listener.local_addr().unwrap().to_string();
            tokio::spawn(async move {
                while let Ok((s, _)) = listener.accept().await {
                    drop(s);
                }
            });
            let results = Arc::new(Mutex::new((0u64, 0u64)));
            let probers: Vec<_> = (0..500)
                .map(|_| {
                    let results = results.clone();
                    spawn_prober(spec(tcp(&addr, None, None), 1000, 1000), ctx(), move |o| {
                        let mut r = results.lock().unwrap();
                        if o.ok { r.0 += 1 } else { r.1 += 1 }
                    })
                })
                .collect();
            tokio::time::sleep(Duration::from_secs(3)).await;
            let (cpu0, wall0, r0) = (cpu_seconds(), Instant::now(), *results.lock().unwrap());
            tokio::time::sleep(Duration::from_secs(10)).await;
            let (cpu1, wall1, r1) = (cpu_seconds(), Instant::now(), *results.lock().unwrap());
            let share = (cpu1 - cpu0) / (wall1 - wall0).as_secs_f64() * 100.0;
            println!(
                "500 tcp probers at 1s: {share:.2}% of one core over {:.1}s \
                 ({} ok, {} failed probes; listener included)",
                (wall1 - wall0).as_secs_f64(),
                r1.0 - r0.0,
                r1.1 - r0.1
            );
            for p in probers {
                p.abort();
            }
        });
    }
}
