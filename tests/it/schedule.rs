//! `schedule`: a process run at cron times, a time skipped while the last run goes on.

use serde_json::Value;
use warden::facts::Generation;

use crate::harness::*;

fn job(w: &Warden) -> Value {
    let (code, out, err) = run_warden(w.dir.path(), &["status", "--json"]);
    assert_eq!(code, 0, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    v["processes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "job")
        .unwrap()
        .clone()
}

#[test]
fn a_scheduled_process_runs_at_its_times_and_skips_while_busy() {
    // Every second (the optional seconds field); the first run holds on until the test
    // lets it go, so the times in between must be skipped.
    let w = Warden::start(
        r#"
[processes.job]
command = ["sh", "-c", "while [ ! -e release ]; do sleep 0.02; done; echo done"]
schedule = "* * * * * *"
"#,
    );
    // The socket is up before anything is spawned.
    w.wait_for(spawned("job", 1));
    let armed = job(&w);
    assert_eq!(armed["schedule"]["cron"], "* * * * * *");
    assert!(armed["schedule"]["next_run"].is_string(), "{armed}");
    let s = w.wait_for(skipped("job"));
    assert!(
        matches!(
            s.kind,
            EventKind::Skipped {
                run: Generation(1),
                skipped: 1,
                ..
            }
        ),
        "{s:?}"
    );
    let busy = job(&w);
    assert_eq!(busy["state"], "running");
    assert!(busy["schedule"]["skipped"].as_u64().unwrap() >= 1, "{busy}");
    std::fs::write(w.path("release"), "").unwrap();
    w.wait_for(exited_with("job", 1, 0, ExitReason::Exited));
    w.wait_for(transition("job", State::Running, State::Exited));
    w.wait_for(spawned("job", 2));
    let after = job(&w);
    assert_eq!(after["schedule"]["last_result"], "success", "{after}");
    let restarts = all(&w.events(), &restarting_any("job"));
    assert!(
        restarts.is_empty(),
        "a scheduled process is not restarted: {restarts:?}"
    );
}

#[test]
fn restart_keys_next_to_a_schedule_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("warden.toml"),
        "[processes.job]\ncommand = \"true\"\nschedule = \"*/5 * * * *\"\nrestart = \"always\"\n",
    )
    .unwrap();
    let (code, _, err) = run_warden(dir.path(), &["check", "-c", "warden.toml"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("warden.toml:4:11: processes.job.restart: `restart` does not apply to a scheduled process"),
        "{err}"
    );
}
