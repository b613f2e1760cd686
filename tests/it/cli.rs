//! The command line as a newcomer meets it: names optional where that makes sense, usage
//! lines that say what is optional, clear words when the config is not where expected.

use std::path::Path;

use crate::control::ok;
use crate::harness::*;

#[test]
fn logs_without_names_shows_every_process_n_lines_each() {
    let w = Warden::start(
        r#"
[processes.alpha]
command = "sh -c 'for i in 1 2 3 4 5; do echo alpha $i; done; exec sleep 600'"
[processes.b]
command = "sh -c 'for i in 1 2 3 4 5; do echo b $i; done; exec sleep 600'"
"#,
    );
    w.wait_line("alpha's output", |l| {
        output_of(l, "alpha") == Some("alpha 5")
    });
    w.wait_line("b's output", |l| output_of(l, "b") == Some("b 5"));
    let out = ok(&w, &["logs", "-n", "2"]);
    let mut lines: Vec<&str> = out.lines().collect();
    lines.sort();
    assert_eq!(
        lines,
        [
            "alpha │ alpha 4",
            "alpha │ alpha 5",
            "b     │ b 4",
            "b     │ b 5"
        ],
        "{out}"
    );
}

#[test]
fn status_takes_names() {
    let w = Warden::start(
        r#"
[processes.web]
command = "warden-demo-worker sleep"
replicas = 2
[processes.db]
command = "warden-demo-worker sleep"
"#,
    );
    wait_status(&w, "running", |s| {
        s["processes"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["state"] == "running")
    });
    let json: serde_json::Value =
        serde_json::from_str(&ok(&w, &["status", "--json", "web"])).unwrap();
    let names: Vec<&str> = json["processes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["web.0", "web.1"]);
    let table = ok(&w, &["status", "db", "web.1"]);
    // The header and one row per name; warden's own lines follow a blank line.
    let rows = table.lines().take_while(|l| !l.is_empty()).count();
    assert_eq!(rows, 3, "{table}");
    assert!(table.contains("db ") && table.contains("web.1") && !table.contains("web.0"));
    let (code, _, err) = run_warden(w.dir.path(), &["status", "nosuch"]);
    assert_eq!(
        (code, err.as_str()),
        (1, "warden: no process or check named `nosuch`\n")
    );
}

#[test]
fn without_a_config_here_clients_and_up_say_so() {
    let dir = tempfile::tempdir().unwrap();
    let here = dir.path().display();
    let (code, _, err) = run_warden(dir.path(), &["status"]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.ends_with(&format!(
            "no socket there; and there is no `warden.toml` (looked in {here}): name the config `warden up` runs with `-c FILE`\n"
        )),
        "{err}"
    );
    let (code, _, err) = run_warden(dir.path(), &["up"]);
    assert_eq!(code, 1, "{err}");
    assert_eq!(
        err,
        format!(
            "warden.toml: no such file (looked in {here}); create it, or name the config with `-c FILE`\n"
        )
    );
}

#[test]
fn usage_lines_show_what_is_optional_and_positionals_are_explained() {
    let (code, _, err) = run_warden(Path::new("/"), &["start"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("Usage: warden start [-c FILE] [--timeout DURATION] NAME..."),
        "{err}"
    );
    let (_, help, _) = run_warden(Path::new("/"), &["signal", "--help"]);
    assert!(help.contains("<NAME>    A process"), "{help}");
    assert!(help.contains("<SIGNAL>  A signal name"), "{help}");
}

#[test]
fn a_zero_timeout_gives_up_at_once_instead_of_failing() {
    let w = Warden::start(
        "[processes.web]\ncommand = \"warden-demo-worker ignore-term\"\nstop_timeout = \"200ms\"\n",
    );
    wait_status(&w, "running", |s| s["processes"][0]["state"] == "running");
    let (code, _, err) = run_warden(w.dir.path(), &["stop", "web", "--timeout", "0s"]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("no answer within 0s; the action goes on"),
        "{err}"
    );
    // The action did go on.
    w.wait_for(transition("web", State::Running, State::Stopping));
}

#[test]
fn the_name_column_is_as_wide_as_the_longest_name_from_the_first_line() {
    let w = Warden::start(
        r#"
[processes.a]
command = "warden-demo-worker sleep"
[processes.a-much-longer-name]
command = "warden-demo-worker sleep"
autostart = false
replicas = 2
"#,
    );
    let first = w.wait_line("the banner", |l| l.contains("warden 0.1"));
    assert!(first.starts_with("warden               │ "), "{first:?}");
    let a = w.wait_line("a's start", |l| {
        notice(l).is_some() && l.contains("a: run 1")
    });
    assert!(a.starts_with("warden               │ "), "{a:?}");
}

#[test]
fn rotation_can_be_turned_off() {
    let mut w = Warden::start(
        r#"
[processes.big]
command = "warden-demo-worker spew 5000 100"
restart = "never"
log = { max_size = "0", keep = 2, timestamps = false }
"#,
    );
    w.wait_for(state("big", State::Exited));
    assert_eq!(w.shutdown(), Some(0));
    assert_eq!(
        std::fs::metadata(w.path("logs/big.log")).unwrap().len(),
        5000 * 100
    );
    assert!(!w.path("logs/big.log.1").exists());
}
