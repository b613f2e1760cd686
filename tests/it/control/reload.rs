//! `reload`: only the difference is applied, an invalid file disturbs nothing, `--dry-run`
//! changes nothing.

use super::*;

pub const BEFORE: &str = r#"
[processes.keep]
command = "warden-demo-worker sleep"
[processes.change]
command = "warden-demo-worker sleep"
env = { FLAVOUR = "vanilla" }
[processes.gone]
command = "warden-demo-worker sleep"
"#;

pub const AFTER: &str = r#"
[processes.keep]
command = "warden-demo-worker sleep"
[processes.change]
command = "warden-demo-worker sleep"
env = { FLAVOUR = "chocolate" }
[processes.added]
command = "warden-demo-worker sleep"
"#;

fn all_running(s: &Value, names: &[&str]) -> bool {
    names.iter().all(|n| running(s, n))
}

#[test]
fn reload_applies_only_the_difference() {
    let w = Warden::start(BEFORE);
    wait_status(&w, "all running", |s| {
        all_running(s, &["keep", "change", "gone"])
    });
    let (keep, change, gone) = (pid_of(&w, "keep"), pid_of(&w, "change"), pid_of(&w, "gone"));
    let follow = Bg::spawn(w.dir.path(), &["logs", "-f", "change"]);
    follow
        .out
        .wait("the tail", |l| l.starts_with("--- run 1 started"));
    std::fs::write(w.path("warden.toml"), AFTER).unwrap();
    let out = ok(&w, &["reload"]);
    assert!(out.contains("start    added (new)"), "{out}");
    assert!(out.contains("restart  change (changed: env)"), "{out}");
    assert!(out.contains("stop     gone (removed)"), "{out}");
    assert!(out.contains("keep     keep"), "{out}");
    let s = wait_status(&w, "the new config running", |s| {
        all_running(s, &["keep", "change", "added"])
            && process(s, "change")["pid"] != change
            && s["processes"]
                .as_array()
                .unwrap()
                .iter()
                .all(|p| p["name"] != "gone")
    });
    assert_eq!(process(&s, "keep")["pid"], keep, "untouched: same pid");
    assert!(gone_soon(gone as i32), "the removed process is gone");
    assert!(
        gone_soon(change as i32),
        "the changed process's old run is gone"
    );
    let pid = process(&s, "change")["pid"].as_i64().unwrap() as i32;
    assert!(
        environ_of(pid)
            .split(|&b| b == 0)
            .any(|kv| kv == b"FLAVOUR=chocolate")
    );
    // `logs -f` follows the changed process onto its new log sink.
    let new_pid = process(&s, "change")["pid"].clone();
    follow.out.wait("the new run", |l| {
        l.ends_with(&format!("started, pid {new_pid}"))
    });
    // Reloading the same file again changes nothing.
    let out = ok(&w, &["reload"]);
    assert!(
        !out.contains("start") && !out.contains("restart") && !out.contains("stop"),
        "{out}"
    );
}

#[test]
fn an_invalid_reload_keeps_everything_running() {
    let w = Warden::start(BEFORE);
    let before = wait_status(&w, "all running", |s| {
        all_running(s, &["keep", "change", "gone"])
    });
    std::fs::write(
        w.path("warden.toml"),
        "[processes.keep]\ncommand = \"warden-demo-worker sleep\"\nstop_timeout = \"soon\"\n[processes.bad]\ncommand = 5\n",
    )
    .unwrap();
    let (code, out, err) = run_warden(w.dir.path(), &["reload"]);
    assert_eq!(code, 1, "{out}{err}");
    // Every error, located: FILE:LINE:COL.
    let located: Vec<&str> = err
        .lines()
        .filter(|l| {
            let Some((_, rest)) = l.split_once("warden.toml:") else {
                return false;
            };
            let mut parts = rest.splitn(3, ':');
            parts.next().is_some_and(|p| p.parse::<u32>().is_ok())
                && parts.next().is_some_and(|p| p.parse::<u32>().is_ok())
        })
        .collect();
    assert!(located.len() >= 2, "both errors, located: {err}");
    assert!(err.contains("running config is kept"), "{err}");
    let after = status(&w);
    for name in ["keep", "change", "gone"] {
        assert_eq!(
            process(&after, name)["pid"],
            process(&before, name)["pid"],
            "{name} untouched"
        );
        assert_eq!(process(&after, name)["state"], "running");
    }
    // The dry run reports the same errors.
    let (code, _, err) = run_warden(w.dir.path(), &["reload", "--dry-run"]);
    assert_eq!(code, 1);
    assert!(err.contains("warden.toml:"), "{err}");
}

#[test]
fn a_dry_run_prints_the_plan_and_changes_nothing() {
    let w = Warden::start(BEFORE);
    let before = wait_status(&w, "all running", |s| {
        all_running(s, &["keep", "change", "gone"])
    });
    std::fs::write(w.path("warden.toml"), AFTER).unwrap();
    let out = ok(&w, &["reload", "--dry-run"]);
    assert!(out.contains("start    added (new)"), "{out}");
    assert!(out.contains("restart  change (changed: env)"), "{out}");
    assert!(out.contains("dry run"), "{out}");
    let after = status(&w);
    assert_eq!(after["processes"].as_array().unwrap().len(), 3, "{after}");
    for name in ["keep", "change", "gone"] {
        assert_eq!(
            process(&after, name)["pid"],
            process(&before, name)["pid"],
            "{name} untouched"
        );
    }
}
