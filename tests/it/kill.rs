//! Killing and reaping: stop timeouts, SIGSTOPped children, escaped descendants, warden's
//! own death, clean children.

use std::time::{Duration, Instant};

use crate::harness::*;

#[test]
fn a_child_that_ignores_sigterm_is_killed_after_stop_timeout() {
    let mut w = Warden::start(
        r#"
[processes.stubborn]
command = "warden-demo-worker ignore-term"
stop_timeout = "300ms"
"#,
    );
    w.wait_line("ready", |l| {
        output_of(l, "stubborn") == Some("ignoring SIGTERM")
    });
    assert_eq!(
        w.shutdown(),
        Some(3),
        "exit code 3: a process needed SIGKILL"
    );
    let l = w.wait_for(exited("stubborn", 1));
    assert_eq!(status(&l), (None, Some(libc::SIGKILL)), "{l:?}");
    assert!(
        detail(&l).contains("killed by SIGKILL after stop timeout (300ms)"),
        "{l:?}"
    );
    let k = w.wait_for(killed("stubborn", 1));
    assert!(
        matches!(
            k.kind,
            EventKind::Killed {
                after_ms: Some(300),
                ..
            }
        ),
        "{k:?}"
    );
    w.assert_no_leftovers();
}

#[test]
fn a_stopped_child_is_continued_and_exits_gracefully() {
    let mut w = Warden::start(
        r#"
[processes.frozen]
command = "warden-demo-worker stop-self"
stop_timeout = "20s"
"#,
    );
    let pid = w.run_pid("frozen", 1);
    let deadline = std::time::Instant::now() + PATIENCE;
    while proc_state(pid) != Some('T') {
        assert!(
            std::time::Instant::now() < deadline,
            "the worker never stopped itself"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    assert_eq!(w.shutdown(), Some(0));
    let l = w.wait_for(exited("frozen", 1));
    assert_eq!(
        status(&l),
        (Some(0), None),
        "TERM then CONT lets it exit cleanly: {l:?}"
    );
}

#[test]
fn stopping_kills_a_double_forked_escapee() {
    let mut w = Warden::start(
        r#"
[processes.sneaky]
command = "warden-demo-worker escape"
"#,
    );
    let l = w.wait_line("escapee pid", |l| {
        output_of(l, "sneaky").is_some_and(|t| t.starts_with("escaped "))
    });
    let pid: i32 = output_of(&l, "sneaky").unwrap()["escaped ".len()..]
        .parse()
        .unwrap();
    assert!(alive(pid));
    assert_eq!(w.shutdown(), Some(0));
    assert!(
        !alive(pid),
        "the escapee is dead once warden reports the stop"
    );
    w.assert_no_leftovers();
}

#[test]
fn a_crash_kills_the_rest_of_the_group() {
    let w = Warden::start(
        r#"
[processes.family]
command = "sh -c 'warden-demo-worker group 2 & sleep 0.3; exit 1'"
restart = "never"
"#,
    );
    let members = w.wait_lines("two members", 2, |l| {
        output_of(l, "family").is_some_and(|t| t.starts_with("member "))
    });
    w.wait_for(state("family", State::Exited));
    for m in members {
        let pid: i32 = output_of(&m, "family").unwrap()["member ".len()..]
            .parse()
            .unwrap();
        assert!(!alive(pid), "group member {pid} outlived its leader");
    }
    w.assert_no_leftovers();
}

#[test]
fn killing_warden_with_sigkill_leaves_no_child_alive() {
    let mut w = Warden::start(
        r#"
[processes.sneaky]
command = "warden-demo-worker escape"
[processes.family]
command = "warden-demo-worker group 3"
[processes.chat]
command = "warden-demo-worker chatter 50"
"#,
    );
    w.wait_line("escapee", |l| {
        output_of(l, "sneaky").is_some_and(|t| t.starts_with("escaped "))
    });
    w.wait_lines("members", 3, |l| {
        output_of(l, "family").is_some_and(|t| t.starts_with("member "))
    });
    w.wait_line("chatter", |l| output_of(l, "chat").is_some());
    assert!(w.leftovers().len() >= 6, "{:?}", w.leftovers());
    w.signal(libc::SIGKILL);
    assert!(w.wait_exit(PATIENCE).is_some());
    w.assert_no_leftovers();
}

#[test]
fn a_second_sigint_kills_everything_at_once() {
    let mut w = Warden::start(
        r#"
[processes.stubborn]
command = "warden-demo-worker ignore-term"
stop_timeout = "60s"
"#,
    );
    w.wait_line("ready", |l| {
        output_of(l, "stubborn") == Some("ignoring SIGTERM")
    });
    w.signal(libc::SIGINT);
    // Its output may come before warden has seen the spawn: `starting` or `running`.
    w.wait_for(state("stubborn", State::Stopping));
    w.signal(libc::SIGINT);
    assert_eq!(
        w.wait_exit(PATIENCE),
        Some(5),
        "the second signal does not wait for stop_timeout, and exit code 5 says so"
    );
    w.assert_no_leftovers();
}

#[test]
fn children_start_with_a_clean_signal_state_and_no_inherited_fds() {
    // C programs, so that no language runtime of the child's own changes what it reports.
    let w = Warden::start(
        r#"
[processes.sig]
command = "grep -E '^Sig(Blk|Ign)' /proc/self/status"
restart = "never"
[processes.fds]
command = "ls /proc/self/fd"
restart = "never"
[processes.stdin]
command = "readlink /proc/self/fd/0"
restart = "never"
"#,
    );
    let blk = w.wait_line("SigBlk", |l| {
        output_of(l, "sig").is_some_and(|t| t.starts_with("SigBlk"))
    });
    let ign = w.wait_line("SigIgn", |l| {
        output_of(l, "sig").is_some_and(|t| t.starts_with("SigIgn"))
    });
    let mask = |l: &str| u64::from_str_radix(l.rsplit('\t').next().unwrap().trim(), 16).unwrap();
    assert_eq!(mask(output_of(&blk, "sig").unwrap()), 0, "{blk}");
    // Classic signals only: glibc may mark its two real-time signals (32, 33) ignored.
    assert_eq!(
        mask(output_of(&ign, "sig").unwrap()) & 0x7fff_ffff,
        0,
        "{ign}"
    );
    w.wait_for(state("fds", State::Exited));
    // From the ring, which holds every line of the run once it has exited (the terminal
    // tee prints on a thread of its own and may still be behind under load).
    let (code, out, err) = run_warden(w.path("").as_path(), &["logs", "fds", "-n", "100"]);
    assert_eq!(code, 0, "{out}{err}");
    // One process asked for: its lines come without a name, between run markers.
    let fds: Vec<String> = out
        .lines()
        .filter(|t| !t.starts_with("---"))
        .map(str::to_owned)
        .collect();
    // 0, 1, 2 and the descriptor `ls` opened to list the folder.
    assert_eq!(fds, ["0", "1", "2", "3"], "{out}");
    w.wait_line("stdin", |l| output_of(l, "stdin") == Some("/dev/null"));
}

#[test]
fn orphaned_grandchildren_are_reaped_not_left_as_zombies() {
    let w = Warden::start(
        r#"
[processes.spawner]
command = "sh -c 'for i in $(seq 1 50); do (sleep 0.05 &); done; echo spawned; exec sleep 100'"
"#,
    );
    w.wait_line("spawned", |l| output_of(l, "spawner") == Some("spawned"));
    let me = w.pid();
    let zombies = || {
        std::fs::read_dir("/proc")
            .unwrap()
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
            .filter(|pid| {
                let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
                let Some(i) = stat.rfind(')') else {
                    return false;
                };
                let mut f = stat[i + 2..].split_whitespace();
                let state = f.next();
                let ppid = f.next().and_then(|p| p.parse::<i32>().ok());
                state == Some("Z") && ppid == Some(me)
            })
            .count()
    };
    // The sleeps are re-parented to warden (a subreaper) and exit after 50 ms.
    let deadline = std::time::Instant::now() + PATIENCE;
    while zombies() > 0 || w.leftovers().len() > 1 {
        assert!(
            std::time::Instant::now() < deadline,
            "{} zombies of warden left",
            zombies()
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[test]
fn every_exit_code_is_recorded_exactly() {
    let mut config = String::new();
    for code in 0..40 {
        config += &format!(
            "[processes.p{code}]\ncommand = \"sh -c 'exit {code}'\"\nrestart = \"never\"\n"
        );
    }
    let w = Warden::start(&config);
    for code in 0..40 {
        let l = w.wait_for(exited(&format!("p{code}"), 1));
        assert_eq!(status(&l), (Some(code), None), "{l:?}");
    }
}

#[test]
fn an_exit_is_recorded_even_while_a_grandchild_holds_the_pipe() {
    let w = Warden::start(
        r#"
[processes.leaky]
command = "sh -c 'setsid sh -c \"while :; do echo holding; sleep 0.05; done\" & sleep 0.2; exit 0'"
restart = "never"
"#,
    );
    w.wait_line("holder", |l| output_of(l, "leaky") == Some("holding"));
    w.wait_for(exited_with("leaky", 1, 0, ExitReason::Exited));
    w.wait_for(state("leaky", State::Exited));
    w.assert_no_leftovers();
}

#[test]
fn closing_stdout_is_not_an_exit() {
    let w = Warden::start(
        r#"
[processes.quiet]
command = "sh -c 'echo closing; exec 1>&- 2>&-; sleep 0.5'"
restart = "never"
"#,
    );
    w.wait_line("closing", |l| output_of(l, "quiet") == Some("closing"));
    let closed = std::time::Instant::now();
    w.wait_for(exited_with("quiet", 1, 0, ExitReason::Exited));
    assert!(
        closed.elapsed() >= std::time::Duration::from_millis(300),
        "the exit came with the EOF"
    );
}

/// A leader that leaves an escapee behind at once (`early`, which records the SIGTERM it
/// gets in `term.PID`) and another when told to stop (`late`, made after warden looked for
/// the run's escapees to signal them, and deaf to SIGTERM), each in a session of its own
/// whose parent exits (so warden adopts it), each recording its pid. The leader exits
/// once both have done so.
const ESCAPER: &str = r#"#!/bin/sh
escape() { (setsid sh -c 'echo $$ > "$1.tmp" && mv "$1.tmp" "$1"; exec sleep 600' _ "$1" &); }
(setsid sh -c 'trap "echo > term.$$; exit 0" TERM; echo $$ > "$1.tmp" && mv "$1.tmp" "$1"
  while :; do sleep 1; done' _ "early.$$" &)
trap 'trap "" TERM; escape "late.$$"
  while [ ! -e "late.$$" ] || [ ! -e "term.$(cat "early.$$")" ]; do sleep 0.01; done
  exit 0' TERM
sleep 600 &
wait
"#;

/// The pids the escapees of `kind` (`early`, `late`) recorded in `dir`.
fn escapees(dir: &std::path::Path, kind: &str) -> Vec<i32> {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .filter(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name.starts_with(&format!("{kind}.")) && !name.ends_with(".tmp")
        })
        .map(|e| {
            let text = std::fs::read_to_string(e.path()).unwrap();
            text.trim().parse().unwrap()
        })
        .collect()
}

/// Without cgroups, escapees are found through the orphans warden adopts. Twenty runs
/// stopped at once share the look at warden's children (one for the whole burst of stop
/// signals, a few for the runs that end together), and none may lose an escapee: those
/// that escaped before the stop get the stop signal, those made after it are killed.
#[test]
fn stopping_many_runs_at_once_kills_every_escapee_without_cgroups() {
    let w = Warden::start_with(
        r#"
[supervisor]
cgroup = "off"

[processes.sneaky]
command = ["sh", "escaper.sh"]
replicas = 20
stop_timeout = "5s"
"#,
        |dir| std::fs::write(dir.join("escaper.sh"), ESCAPER).unwrap(),
    );
    let dir = w.dir.path().to_path_buf();
    let deadline = Instant::now() + PATIENCE;
    while escapees(&dir, "early").len() < 20 {
        assert!(Instant::now() < deadline, "the escapees never all started");
        std::thread::sleep(Duration::from_millis(20));
    }
    let early = escapees(&dir, "early");
    assert!(early.iter().all(|&p| alive(p)));
    let (code, out, err) = run_warden(&dir, &["stop", "sneaky"]);
    assert_eq!(code, 0, "{out}{err}");
    // `stopped` means nothing of the runs is alive: checked at once, not waited for.
    assert_eq!(
        w.leftovers(),
        Vec::<i32>::new(),
        "alive after the stop returned"
    );
    let late = escapees(&dir, "late");
    assert_eq!(
        late.len(),
        20,
        "every leader made its late escapee: {late:?}"
    );
    for pid in &early {
        assert!(
            dir.join(format!("term.{pid}")).exists(),
            "escapee {pid} was killed without its stop signal first"
        );
    }
    for pid in early.iter().chain(&late) {
        assert!(!alive(*pid), "escapee {pid} outlived the stop");
    }
    w.assert_no_leftovers();
}

/// Each run but the last leaves an escapee (its own session, re-parented to warden) and
/// crashes; the next run, started at once (`backoff = "0s"`), records whether the one
/// before it is still alive. A zombie counts as dead: it was killed and awaits its reaping.
const PHOENIX: &str = r#"#!/bin/sh
n=$(ls | grep -c '^run\.')
touch "run.$n"
if [ "$n" -gt 0 ]; then
  p=$(cat "esc.$((n - 1))")
  st=$(sed 's/.*) //' "/proc/$p/stat" 2>/dev/null | cut -d' ' -f1)
  if [ -z "$st" ] || [ "$st" = Z ]; then echo dead > "seen.$n"; else echo "alive $st" > "seen.$n"; fi
fi
[ "$n" -ge 3 ] && exec sleep 600
(setsid sh -c 'echo $$ > "$1.tmp" && mv "$1.tmp" "$1"; exec sleep 600' _ "esc.$n" &)
while [ ! -e "esc.$n" ]; do sleep 0.01; done
exit 1
"#;

/// A restart begins only once the whole tree of the run before it is dead: its escapees
/// too, found through its cgroup or, without one, through warden's adopted orphans.
fn a_restart_waits_for_the_escapees_of_the_run_before(cgroup: &str) {
    let mut w = Warden::start_with(
        &format!(
            r#"
[supervisor]
cgroup = "{cgroup}"

[processes.phoenix]
command = ["sh", "phoenix.sh"]
backoff = "0s"
"#
        ),
        |dir| std::fs::write(dir.join("phoenix.sh"), PHOENIX).unwrap(),
    );
    w.wait_for(spawned("phoenix", 4));
    let dir = w.dir.path();
    let deadline = Instant::now() + PATIENCE;
    while (1..=3).any(|n| !dir.join(format!("seen.{n}")).exists()) {
        assert!(Instant::now() < deadline, "the runs never all looked");
        std::thread::sleep(Duration::from_millis(20));
    }
    for n in 1..=3 {
        let seen = std::fs::read_to_string(dir.join(format!("seen.{n}"))).unwrap();
        assert_eq!(
            seen.trim(),
            "dead",
            "run {} saw the escapee of the run before it",
            n + 1
        );
    }
    assert_eq!(w.shutdown(), Some(0));
    w.assert_no_leftovers();
}

#[test]
fn a_restart_waits_for_the_escapees_of_the_run_before_in_cgroup_mode() {
    a_restart_waits_for_the_escapees_of_the_run_before("auto");
}

#[test]
fn a_restart_waits_for_the_escapees_of_the_run_before_in_proc_mode() {
    a_restart_waits_for_the_escapees_of_the_run_before("off");
}
