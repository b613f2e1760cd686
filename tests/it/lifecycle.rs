//! States, restart policies, backoff, give-up, dependencies, replicas, spawn failures.

use crate::harness::*;

#[test]
fn crash_loop_backs_off_exponentially_then_goes_fatal() {
    let w = Warden::start(
        r#"
[processes.crashy]
command = "warden-demo-worker crash 0 3"
backoff = "50ms"
backoff_max = "10s"
max_restarts = 4
"#,
    );
    let f = w.wait_for(fatal("crashy"));
    assert!(
        detail(&f).contains("gave up after 5 consecutive failed runs"),
        "{f:?}"
    );
    let events = w.events();
    let delays: Vec<u64> = all(&events, &restarting_any("crashy"))
        .iter()
        .map(delay_ms)
        .collect();
    assert_eq!(
        delays,
        vec![50, 100, 200, 400],
        "delays double from `backoff`"
    );
    let runs: Vec<u64> = events
        .iter()
        .filter_map(|e| match e.kind {
            EventKind::Exited {
                run,
                code: Some(3),
                reason: ExitReason::Crash,
                ..
            } if e.name == "crashy" => Some(run.0),
            _ => None,
        })
        .collect();
    assert_eq!(runs, [1, 2, 3, 4, 5], "the first run and four restarts");
    w.wait_for(state("crashy", State::Fatal));
    w.assert_no_leftovers();
}

#[test]
fn backoff_is_capped_at_backoff_max() {
    let w = Warden::start(
        r#"
[processes.crashy]
command = "warden-demo-worker crash 0 1"
backoff = "20ms"
backoff_max = "60ms"
"#,
    );
    let restarts = w.wait_for_n(5, restarting_any("crashy"));
    let delays: Vec<u64> = restarts.iter().take(5).map(delay_ms).collect();
    assert_eq!(delays, vec![20, 40, 60, 60, 60]);
}

#[test]
fn restart_policies_decide_what_an_exit_means() {
    let w = Warden::start(
        r#"
[processes.once]
command = "warden-demo-worker job 10"
restart = "on-failure"
[processes.never]
command = "warden-demo-worker crash 0 7"
restart = "never"
[processes.odd]
command = "warden-demo-worker crash 0 42"
restart = "on-failure"
success_exit_codes = [0, 42]
"#,
    );
    w.wait_for(state("once", State::Exited));
    w.wait_for(exited_with("never", 1, 7, ExitReason::Crash));
    w.wait_for(state("never", State::Exited));
    w.wait_for(exited_with("odd", 1, 42, ExitReason::Exited));
    w.wait_for(state("odd", State::Exited));
    let restarts: Vec<Event> = w
        .events()
        .into_iter()
        .filter(|e| matches!(e.kind, EventKind::Restarting { .. }))
        .collect();
    assert!(restarts.is_empty(), "nothing restarts: {restarts:?}");
}

#[test]
fn a_command_that_cannot_run_is_fatal_with_a_clear_reason() {
    let w = Warden::start(
        r#"
[processes.missing]
command = "no-such-program-here --flag"
[processes.badcwd]
command = "true"
cwd = "does/not/exist"
[processes.notexec]
command = "./plain.txt"
[processes.badshebang]
command = "./script.sh"
"#,
    );
    std::fs::write(w.path("plain.txt"), "hello").unwrap();
    let script = w.path("script.sh");
    std::fs::write(&script, "#!/nonexistent/interp\necho hi\n").unwrap();
    std::os::unix::fs::PermissionsExt::set_mode(
        &mut std::fs::metadata(&script).unwrap().permissions(),
        0o755,
    );
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let f = w.wait_for(fatal("missing"));
    assert!(
        detail(&f).starts_with("command `no-such-program-here` not found in PATH"),
        "{f:?}"
    );
    let f = w.wait_for(fatal("badcwd"));
    assert!(
        detail(&f).starts_with("working directory")
            && detail(&f).contains("does/not/exist` cannot be used: it does not exist"),
        "{f:?}"
    );
    // The files are written after warden started: these two may race with the write, so
    // only the message shape is checked when they lost the race.
    let l = w.wait_for(fatal("notexec"));
    let d = detail(&l);
    assert!(
        d.contains("not executable") || d.contains("cannot be run"),
        "{l:?}"
    );
    let l = w.wait_for(fatal("badshebang"));
    let d = detail(&l);
    assert!(
        d.contains("interpreter `/nonexistent/interp`") || d.contains("cannot be run"),
        "{l:?}"
    );
}

#[test]
fn dependencies_start_in_order_and_stop_in_reverse() {
    let mut w = Warden::start(
        r#"
[processes.web]
command = "warden-demo-worker sleep 60000"
depends_on = ["api"]
[processes.api]
command = "warden-demo-worker sleep 60000"
depends_on = { db = "started", migrate = "completed" }
[processes.db]
command = "warden-demo-worker sleep 60000"
[processes.migrate]
command = "warden-demo-worker job 100"
restart = "never"
"#,
    );
    w.wait_for(state("web", State::Running));
    // The order of events is their sequence number.
    let seq = |w: &Warden, pred: Pred| w.wait_for(pred).seq;
    use State::*;
    assert!(
        seq(&w, transition("db", Pending, Starting))
            < seq(&w, transition("api", Pending, Starting))
    );
    assert!(seq(&w, exited("migrate", 1)) < seq(&w, transition("api", Pending, Starting)));
    assert!(
        seq(&w, transition("api", Starting, Running))
            < seq(&w, transition("web", Pending, Starting))
    );
    assert_eq!(w.shutdown(), Some(0));
    assert!(
        seq(&w, transition("web", Stopping, Stopped))
            < seq(&w, transition("api", Running, Stopping)),
        "web stops before api"
    );
    assert!(
        seq(&w, transition("api", Stopping, Stopped))
            < seq(&w, transition("db", Running, Stopping)),
        "api stops before db"
    );
    w.assert_no_leftovers();
}

#[test]
fn replicas_get_their_own_instance_name_and_number() {
    let w = Warden::start(
        r#"
[processes.worker]
command = "sh -c 'echo I am $WARDEN_PROCESS replica $WARDEN_REPLICA arg {replica}; sleep 60'"
replicas = 3
"#,
    );
    for r in 0..3 {
        let name = format!("worker.{r}");
        w.wait_line(&format!("{name} output"), |l| {
            output_of(l, &name) == Some(&format!("I am worker.{r} replica {r} arg {r}"))
        });
        assert!(w.path(&format!("logs/worker.{r}.log")).exists());
    }
}

#[test]
fn env_overrides_what_warden_inherited_and_adds_its_own_once() {
    // The harness starts warden with NO_COLOR=1 and WARDEN_TEST set.
    let w = Warden::start(
        r#"
[processes.web]
command = "sleep 600"
env = { NO_COLOR = "0", EXTRA = "x" }
"#,
    );
    let env = environ_of(w.run_pid("web", 1));
    let vars: Vec<&[u8]> = env.split(|&b| b == 0).filter(|v| !v.is_empty()).collect();
    let with = |key: &str| -> Vec<String> {
        let prefix = format!("{key}=");
        vars.iter()
            .map(|v| String::from_utf8_lossy(v).into_owned())
            .filter(|v| v.starts_with(&prefix))
            .collect()
    };
    assert_eq!(
        with("NO_COLOR"),
        ["NO_COLOR=0"],
        "the process's own value, once"
    );
    assert_eq!(with("EXTRA"), ["EXTRA=x"]);
    assert_eq!(with("WARDEN_PROCESS"), ["WARDEN_PROCESS=web"]);
    assert_eq!(with("WARDEN_RUN_ID").len(), 1);
    assert_eq!(
        with("WARDEN_TEST").len(),
        1,
        "warden's own variables are inherited"
    );
}

#[test]
fn autostart_false_stays_stopped() {
    let mut w = Warden::start(
        r#"
[processes.manual]
command = "warden-demo-worker sleep 60000"
autostart = false
[processes.auto]
command = "warden-demo-worker sleep 60000"
"#,
    );
    w.wait_for(state("auto", State::Running));
    let manual: Vec<Event> = w
        .events()
        .into_iter()
        .filter(|e| e.name == "manual")
        .collect();
    assert!(manual.is_empty(), "{manual:?}");
    assert_eq!(w.shutdown(), Some(0));
}

#[test]
fn check_reports_every_error_with_its_location_and_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("warden.toml"),
        "[processes.web]\ncomand = \"x\"\nstop_timeout = \"soon\"\n",
    )
    .unwrap();
    let (code, _, err) = run_warden(dir.path(), &["check"]);
    assert_eq!(code, 1);
    assert!(
        err.contains(
            "warden.toml:2:1: processes.web: unknown key `comand`; did you mean `command`?"
        ),
        "{err}"
    );
    assert!(
        err.contains("warden.toml:3:16: processes.web.stop_timeout:"),
        "{err}"
    );
    assert!(
        err.contains("warden.toml:1:2: processes.web: missing `command`")
            || err.lines().count() >= 2,
        "{err}"
    );
    std::fs::write(
        dir.path().join("warden.toml"),
        "[processes.web]\ncommand = \"x\"\n",
    )
    .unwrap();
    let (code, out, _) = run_warden(dir.path(), &["check"]);
    assert_eq!(
        (code, out.trim()),
        (0, "warden.toml: ok (1 process, 1 instance, 0 checks)")
    );
}

#[test]
fn up_with_an_invalid_config_starts_nothing_and_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("warden.toml"),
        "[processes.web]\ncommand = \"\"\n",
    )
    .unwrap();
    let (code, _, err) = run_warden(dir.path(), &["up", "--no-tui"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("warden.toml:2:11: processes.web.command:"),
        "{err}"
    );
}

#[test]
fn the_restart_history_keeps_every_exit_with_its_stderr() {
    let w = Warden::start(
        r#"
[processes.crashy]
command = "warden-demo-worker crash 0 3"
backoff = "10ms"
max_restarts = 2
"#,
    );
    w.wait_for(state("crashy", State::Fatal));
    let (code, out, err) = run_warden(w.dir.path(), &["status", "--json"]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let p = &v["processes"][0];
    assert_eq!(p["state"], "fatal");
    assert_eq!(p["restarts"], 2);
    assert_eq!(p["last_exit"]["code"], 3);
    assert_eq!(p["last_exit"]["reason"], "crash");
    let history = p["history"].as_array().unwrap();
    assert_eq!(history.len(), 3);
    for (i, exit) in history.iter().enumerate() {
        assert_eq!(exit["run"], i as u64 + 1);
        assert_eq!(exit["code"], 3);
        assert_eq!(exit["reason"], "crash");
        assert!(exit["time"].as_str().unwrap().ends_with('Z'));
        let tail = exit["stderr_tail"].as_array().unwrap();
        assert!(
            tail.iter().any(|l| l
                .as_str()
                .unwrap()
                .contains("cannot connect to the database")),
            "{exit}"
        );
    }
}

#[test]
fn stdin_from_pipes_one_process_into_another_across_restarts() {
    let w = Warden::start(
        r#"
[processes.producer]
command = "sh -c 'for i in $(seq 1 100); do echo $i; done; echo wrote >&2; exec sleep 100'"
[processes.consumer]
command = "sh -c 'while read l; do echo \"got $l\"; done; echo EOF'"
stdin_from = "producer"
autostart = false
"#,
    );
    // Written while nobody reads: it waits in the pipe warden holds.
    w.wait_line("wrote", |l| output_of(l, "producer") == Some("wrote"));
    let (code, _, err) = run_warden(w.dir.path(), &["start", "consumer"]);
    assert_eq!(code, 0, "{err}");
    let got = w.wait_lines("100 lines", 100, |l| {
        output_of(l, "consumer").is_some_and(|t| t.starts_with("got "))
    });
    let numbers: Vec<String> = got
        .iter()
        .map(|l| output_of(l, "consumer").unwrap()[4..].to_string())
        .collect();
    assert_eq!(
        numbers,
        (1..=100).map(|i| i.to_string()).collect::<Vec<_>>()
    );
    // The producer restarts: the consumer sees more input, not end-of-file.
    let (code, _, err) = run_warden(w.dir.path(), &["restart", "producer"]);
    assert_eq!(code, 0, "{err}");
    w.wait_lines("200 lines", 200, |l| {
        output_of(l, "consumer").is_some_and(|t| t.starts_with("got "))
    });
    assert!(
        !w.lines()
            .iter()
            .any(|l| output_of(l, "consumer") == Some("EOF"))
    );
    // The producer's stdout went to the pipe, not to its log.
    assert!(
        !w.lines()
            .iter()
            .any(|l| output_of(l, "producer") == Some("1"))
    );
}
