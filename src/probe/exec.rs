//! `exec` probes: run a command through warden's spawner; exit code 0 passes.
//!
//! The command runs in its own session and process group with its own `WARDEN_RUN_ID`,
//! like any child of warden. At the timeout its whole tree is SIGKILLed (the group, and
//! any descendant that left it), then the leader is reaped and adopted orphans collected,
//! so a probe never leaves a zombie or an orphan behind (research D2: killing only the
//! direct child leaks grandchildren, and waiting for the output pipes to close waits on
//! them).
//!
//! The child is owned by a task of its own, not by the caller's future: if the caller is
//! dropped (a prober aborted mid-probe), the task sees its result channel close, kills
//! the tree at once and reaps it. Dropping a future cannot do that, since killing and
//! reaping take awaits, and a spawn whose reply were dropped would leave a child nobody
//! holds.

use std::os::fd::OwnedFd;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::Poll;
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::net::unix::pipe;
use tokio::sync::oneshot;
use tokio::time::Instant;

use super::{ProbeContext, escape_into};
use crate::human;
use crate::process::{ExitStatus, Launch, RUN_ID_VAR, Run};

/// How much of the command's output is kept for the error message.
const TAIL: usize = 200;
/// After the deadline, how long the caller waits for the kill and the reap (SIGKILL takes
/// effect at once, unless a process is in uninterruptible sleep). Past this the caller
/// gets its answer and the task finishes the cleanup on its own.
const REAP_GRACE: Duration = Duration::from_millis(500);
/// After the tree is gone, how long its pipes are drained (they are at EOF by then,
/// unless something we could not kill still holds them).
const DRAIN_GRACE: Duration = Duration::from_millis(100);

/// The verdict, plus the pid the command ran as (for tests that check it is gone).
pub(super) struct ExecResult {
    pub(super) result: Result<(), String>,
    #[cfg_attr(not(test), allow(dead_code))]
    pub(super) pid: Option<i32>,
}

pub(super) async fn probe(argv: &[String], timeout: Duration, ctx: &ProbeContext) -> ExecResult {
    if argv.is_empty() {
        return ExecResult {
            result: Err("empty command".into()),
            pid: None,
        };
    }
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let run_id: Arc<str> = format!("{}:{}", ctx.run_id, SEQ.fetch_add(1, Ordering::Relaxed)).into();
    let mut env = ctx.env.clone();
    env.set(RUN_ID_VAR, &*run_id);
    let launch = Launch {
        argv: argv.to_vec(),
        cwd: ctx.cwd.clone(),
        env,
        capture: true,
        die_with_warden: true,
        stdin: None,
        stdout: None,
        cgroup: None,
        credentials: ctx.credentials.clone(),
        umask: ctx.umask,
    };
    let deadline = Instant::now() + timeout;
    let (tx, rx) = oneshot::channel();
    tokio::spawn(own_child(
        ctx.clone(),
        launch,
        run_id,
        deadline,
        timeout,
        tx,
    ));
    match tokio::time::timeout_at(deadline + REAP_GRACE, rx).await {
        Ok(Ok(done)) => done,
        Ok(Err(_)) => ExecResult {
            result: Err("the exec probe task failed".into()),
            pid: None,
        },
        Err(_) => ExecResult {
            result: Err(killed(timeout, "")),
            pid: None,
        },
    }
}

enum End {
    Exited(ExitStatus),
    /// `waitid` on the pidfd failed (not expected: the pid is ours until we reap it).
    Failed(String),
    TimedOut,
    Abandoned,
}

/// Spawns the command, waits for it until `deadline`, kills and reaps its tree, and
/// reports on `tx` (unless nobody listens any more).
async fn own_child(
    ctx: ProbeContext,
    launch: Launch,
    run_id: Arc<str>,
    deadline: Instant,
    timeout: Duration,
    mut tx: oneshot::Sender<ExecResult>,
) {
    // Not cancellable: once the spawner has forked, we must hold the handle.
    let spawned = match ctx.spawner.spawn(launch).await {
        Ok(s) => s,
        Err(e) => {
            let _ = tx.send(ExecResult {
                result: Err(e.to_string()),
                pid: None,
            });
            return;
        }
    };
    let pid = spawned.handle.pid().as_raw();
    let run = Run {
        handle: spawned.handle,
        run_id,
        registry: ctx.spawner.registry().clone(),
        cgroup: None,
        started: std::time::Instant::now(),
        credentials: ctx.credentials.clone(),
    };
    let tail = Mutex::new(Tail::default());
    let mut drain = std::pin::pin!(drain(spawned.stdout, spawned.stderr, &tail));
    let mut drained = false;
    let end = loop {
        tokio::select! {
            // An exit that happened in time wins over a deadline that passed while warden
            // was stalled: read what is there before judging.
            biased;
            status = run.handle.exited() => break match status {
                Ok(status) => End::Exited(status),
                Err(e) => End::Failed(format!("cannot wait for the command: {e}")),
            },
            _ = tokio::time::sleep_until(deadline) => break End::TimedOut,
            _ = tx.closed() => break End::Abandoned,
            _ = &mut drain, if !drained => drained = true,
        }
    };
    if !matches!(end, End::Exited(_)) {
        run.kill();
    }
    // `finished` kills whatever the command left running, reaps the leader, then waits
    // until every process of the tree has been reaped. The caller's answer waits for the
    // leader's reap only: the rest are dead already (SIGKILL), and when warden is not
    // their reaper (tests) init may take its time collecting them.
    let mut finishing = std::pin::pin!(run.finished());
    let finished = std::future::poll_fn(|cx| match finishing.as_mut().poll(cx) {
        Poll::Ready(_) => Poll::Ready(true),
        Poll::Pending if run.handle.is_reaped() => Poll::Ready(false),
        Poll::Pending => Poll::Pending,
    })
    .await;
    if !drained {
        // The killed held the pipes; they are at EOF unless something unkillable holds them.
        let _ = tokio::time::timeout(DRAIN_GRACE, &mut drain).await;
    }
    let output = tail.lock().unwrap_or_else(|e| e.into_inner()).text();
    let result = match end {
        End::Abandoned => None,
        End::TimedOut => Some(Err(killed(timeout, &output))),
        End::Failed(e) => Some(Err(e)),
        End::Exited(status) => Some(verdict(status, &output)),
    };
    if let Some(result) = result {
        let _ = tx.send(ExecResult {
            result,
            pid: Some(pid),
        });
    }
    if !finished {
        finishing.await;
    }
}

fn verdict(status: ExitStatus, output: &str) -> Result<(), String> {
    if status.code == Some(0) {
        return Ok(());
    }
    let mut text = status.describe();
    if !output.is_empty() {
        text.push_str(": ");
        text.push_str(output);
    }
    Err(text)
}

fn killed(timeout: Duration, output: &str) -> String {
    let mut text = format!("killed after timeout {}", human::config_duration(timeout));
    if !output.is_empty() {
        text.push_str(": ");
        text.push_str(output);
    }
    text
}

/// Reads both pipes to EOF, keeping the last [`TAIL`] bytes of what came out.
async fn drain(stdout: Option<OwnedFd>, stderr: Option<OwnedFd>, tail: &Mutex<Tail>) {
    let one = |fd: Option<OwnedFd>| async move {
        let Some(mut rx) = fd.and_then(|fd| pipe::Receiver::from_owned_fd(fd).ok()) else {
            return;
        };
        let mut buf = vec![0u8; 4096];
        while let Ok(n @ 1..) = rx.read(&mut buf).await {
            tail.lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(&buf[..n]);
        }
    };
    tokio::join!(one(stdout), one(stderr));
}

/// The last bytes of the command's output (both streams, in arrival order).
#[derive(Default)]
struct Tail(Vec<u8>);

impl Tail {
    fn push(&mut self, bytes: &[u8]) {
        let bytes = &bytes[bytes.len().saturating_sub(TAIL)..];
        self.0.extend_from_slice(bytes);
        if self.0.len() > 2 * TAIL {
            let cut = self.0.len() - TAIL;
            self.0.drain(..cut);
        }
    }

    /// On one line: lines joined with ` | `, non-printables escaped; empty if the
    /// command printed nothing but blanks.
    fn text(&self) -> String {
        let bytes = &self.0[self.0.len().saturating_sub(TAIL)..];
        // A cut may have split a UTF-8 sequence; skip its continuation bytes.
        let start = bytes
            .iter()
            .position(|&b| b & 0xC0 != 0x80)
            .unwrap_or(bytes.len());
        let mut out = String::new();
        for line in bytes[start..].split(|&b| b == b'\n') {
            let line = line.trim_ascii();
            if line.is_empty() {
                continue;
            }
            if !out.is_empty() {
                out.push_str(" | ");
            }
            escape_into(&mut out, line, usize::MAX, false);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use nix::errno::Errno;
    use nix::sys::signal::kill;
    use nix::unistd::Pid;

    use super::*;
    use crate::config::spec::ProbeTarget;
    use crate::probe::test_support::{MARGIN, PATIENT, ctx, ctx_with_env};
    use crate::probe::{run_once, spawn_prober};

    fn argv(args: &[&str]) -> Vec<String> {
        args.iter().map(|s| s.to_string()).collect()
    }

    fn exec(args: &[&str]) -> ProbeTarget {
        ProbeTarget::Exec { argv: argv(args) }
    }

    /// Pids of live processes whose environment holds `marker`.
    fn marked(marker: &str) -> Vec<i32> {
        let needle = marker.as_bytes();
        std::fs::read_dir("/proc")
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
            .filter(|pid| {
                std::fs::read(format!("/proc/{pid}/environ"))
                    .is_ok_and(|env| env.split(|&b| b == 0).any(|kv| kv == needle))
            })
            .collect()
    }

    /// Polls `cond` until it holds or `within` passes.
    async fn eventually(within: Duration, mut cond: impl FnMut() -> bool) -> bool {
        let deadline = Instant::now() + within;
        loop {
            if cond() {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    fn marker(name: &str) -> (String, String) {
        let value = format!("{name}-{}", std::process::id());
        ("WARDEN_PROBE_TEST".to_string(), value)
    }

    #[tokio::test]
    async fn true_passes_false_fails() {
        let out = run_once(&exec(&["true"]), PATIENT, &ctx()).await;
        assert!(out.ok, "{out:?}");
        let out = run_once(&exec(&["false"]), PATIENT, &ctx()).await;
        assert_eq!(out.error.as_deref(), Some("exit code 1"));
    }

    #[tokio::test]
    async fn failure_quotes_the_last_output() {
        // Both lines on one stream: the order across two pipes is not defined.
        let script = "echo starting >&2; echo 'no route to db' >&2; exit 3";
        let target = exec(&["sh", "-c", script]);
        let out = run_once(&target, PATIENT, &ctx()).await;
        assert_eq!(
            out.error.as_deref(),
            Some("exit code 3: starting | no route to db")
        );
    }

    #[tokio::test]
    async fn missing_command() {
        let out = run_once(&exec(&["no-such-probe-command"]), PATIENT, &ctx()).await;
        let error = out.error.unwrap();
        assert!(error.contains("not found"), "{error}");
    }

    #[tokio::test]
    async fn timeout_kills_and_reaps() {
        let timeout = Duration::from_millis(200);
        let start = Instant::now();
        let done = probe(&argv(&["sleep", "10"]), timeout, &ctx()).await;
        let took = start.elapsed();
        assert_eq!(done.result, Err("killed after timeout 200ms".into()));
        assert!(took < timeout + MARGIN, "took {took:?}");
        let pid = done.pid.expect("the command was started");
        assert_eq!(kill(Pid::from_raw(pid), None), Err(Errno::ESRCH));
    }

    #[tokio::test]
    async fn timeout_kills_grandchildren() {
        let (k, v) = marker("grandchildren");
        let needle = format!("{k}={v}");
        let ctx = ctx_with_env(vec![(k, v)]);
        let timeout = Duration::from_millis(300);
        let start = Instant::now();
        let target = exec(&["sh", "-c", "sleep 100 & sleep 100"]);
        let out = run_once(&target, timeout, &ctx).await;
        assert_eq!(out.error.as_deref(), Some("killed after timeout 300ms"));
        assert!(start.elapsed() < timeout + MARGIN);
        // Killed ones may linger a moment as zombies of init (the test is no subreaper),
        // and zombies have no environment left to match.
        assert!(
            eventually(Duration::from_secs(2), || marked(&needle).is_empty()).await,
            "left behind: {:?}",
            marked(&needle)
        );
    }

    #[tokio::test]
    async fn leftovers_of_a_passing_probe_are_killed() {
        let (k, v) = marker("leftovers");
        let needle = format!("{k}={v}");
        let ctx = ctx_with_env(vec![(k, v)]);
        let target = exec(&["sh", "-c", "sleep 100 >/dev/null 2>&1 & exit 0"]);
        let out = run_once(&target, PATIENT, &ctx).await;
        assert!(out.ok, "{out:?}");
        assert!(
            eventually(Duration::from_secs(2), || marked(&needle).is_empty()).await,
            "left behind: {:?}",
            marked(&needle)
        );
    }

    #[tokio::test]
    async fn aborting_the_prober_kills_the_probe() {
        let (k, v) = marker("abort");
        let needle = format!("{k}={v}");
        let ctx = ctx_with_env(vec![(k, v)]);
        let spec = crate::config::spec::ProbeSpec {
            target: exec(&["sleep", "100"]),
            initial_delay: Duration::ZERO,
            period: Duration::from_secs(60),
            timeout: Duration::from_secs(60),
            success_threshold: 1,
            failure_threshold: 3,
        };
        let prober = spawn_prober(spec, ctx, |_| {});
        assert!(
            eventually(PATIENT, || !marked(&needle).is_empty()).await,
            "the probe never started"
        );
        prober.abort();
        assert!(
            eventually(Duration::from_secs(2), || marked(&needle).is_empty()).await,
            "left behind: {:?}",
            marked(&needle)
        );
    }

    #[test]
    fn tail_keeps_the_end_on_one_line() {
        let mut t = Tail::default();
        t.push(b"first\n");
        t.push(b"\x1b[31mred\x1b[0m\r\n\n");
        assert_eq!(t.text(), "first | \\u{1b}[31mred\\u{1b}[0m");
        let mut t = Tail::default();
        t.push(&[b'x'; 1000]);
        t.push("é".repeat(300).as_bytes());
        assert_eq!(t.text(), "é".repeat(100));
    }
}
