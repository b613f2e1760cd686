//! `warden history`, `warden completions` and the man page.

use crate::harness::*;

#[test]
fn history_lists_every_exit_with_its_reason_and_stderr() {
    let w = Warden::start(
        r#"
[processes.crashy]
command = "warden-demo-worker crash 0 3"
backoff = "10ms"
max_restarts = 1
[processes.calm]
command = "warden-demo-worker sleep"
"#,
    );
    w.wait_for(state("crashy", State::Fatal));
    let (code, out, err) = run_warden(w.dir.path(), &["history", "crashy", "--json"]);
    assert_eq!(code, 0, "{err}");
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    let list = &json["processes"];
    assert_eq!(list.as_array().unwrap().len(), 1, "{json}");
    assert_eq!(list[0]["name"], "crashy");
    let exits = list[0]["history"].as_array().unwrap();
    assert_eq!(exits.len(), 2, "{json}");
    for (i, exit) in exits.iter().enumerate() {
        assert_eq!(exit["run"], i as u64 + 1);
        assert_eq!(exit["code"], 3);
        assert_eq!(exit["reason"], "crash");
        let tail = exit["stderr_tail"].as_array().unwrap();
        assert!(
            tail.iter().any(|l| l
                .as_str()
                .unwrap()
                .contains("cannot connect to the database")),
            "{exit}"
        );
        assert!(exit["time"].as_str().unwrap().ends_with('Z'));
    }

    let (code, out, _) = run_warden(w.dir.path(), &["history", "crashy", "calm"]);
    assert_eq!(code, 0);
    assert!(out.starts_with("crashy: 2 exits, oldest first\n"), "{out}");
    assert!(out.contains("run 2  exit code 3  crash  after "), "{out}");
    assert!(
        out.contains("| fatal: cannot connect to the database"),
        "{out}"
    );
    assert!(out.ends_with("calm: no exits recorded\n"), "{out}");

    let (code, _, err) = run_warden(w.dir.path(), &["history", "nope"]);
    assert_eq!(code, 1);
    assert!(err.contains("no process named `nope`"), "{err}");
}

#[test]
fn completions_for_each_shell_come_from_the_cli_definition() {
    let dir = std::env::temp_dir();
    for (shell, marker) in [
        ("bash", "complete -F _warden"),
        ("zsh", "#compdef warden"),
        ("fish", "complete -c warden"),
    ] {
        let (code, out, err) = run_warden(&dir, &["completions", shell]);
        assert_eq!(code, 0, "{shell}: {err}");
        assert!(out.contains(marker), "{shell}: {out}");
        for command in ["history", "completions", "reload", "scale"] {
            assert!(out.contains(command), "{shell} lacks `{command}`");
        }
    }
    let (code, _, err) = run_warden(&dir, &["completions", "tcsh"]);
    assert_eq!(code, 2, "a usage error: {err}");
}

#[test]
fn man_pages_come_from_the_cli_definition() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out, err) = run_warden(dir.path(), &["manpage"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with(".ie \\n(.g .ds Aq"), "{}", &out[..80]);
    assert!(out.contains(".TH warden 1"), "{out}");
    assert!(out.contains("history"), "{out}");
    let (code, _, err) = run_warden(dir.path(), &["manpage", "--dir", "man"]);
    assert_eq!(code, 0, "{err}");
    for page in [
        "warden.1",
        "warden-up.1",
        "warden-history.1",
        "warden-completions.1",
    ] {
        let text = std::fs::read_to_string(dir.path().join("man").join(page)).unwrap();
        assert!(text.contains(".TH"), "{page}");
    }
    assert!(!dir.path().join("man/warden-manpage.1").exists());
}
