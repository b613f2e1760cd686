//! `warden tree`: every process of a run, leader first and each child under its parent,
//! as text and as JSON, for people without the dashboard.

use std::time::Instant;

use serde_json::Value;

use crate::harness::*;

/// `warden tree NAME --json` until `pred` holds (bounded).
fn wait_tree(w: &Warden, name: &str, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let (code, out, err) = run_warden(w.dir.path(), &["tree", name, "--json"]);
        if code == 0 {
            let v: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
            if pred(&v) {
                return v;
            }
            assert!(
                Instant::now() < deadline,
                "no {what} within {PATIENCE:?}: {v}"
            );
        } else {
            assert!(Instant::now() < deadline, "no {what}: {err}");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

#[test]
fn tree_shows_each_child_under_its_leader_as_text_and_json() {
    let mut w = Warden::start(
        r#"
[processes.family]
command = ["sh", "-c", "warden-demo-worker sleep & warden-demo-worker sleep & wait"]
[processes.idle]
command = "warden-demo-worker sleep"
autostart = false
"#,
    );
    let leader = w.run_pid("family", 1);
    let v = wait_tree(&w, "family", "two children", |v| {
        v[0]["processes"].as_array().is_some_and(|p| p.len() == 3)
    });
    let procs = v[0]["processes"].as_array().unwrap();
    assert_eq!(v[0]["name"], "family");
    assert_eq!(procs[0]["pid"], leader, "the leader first: {v}");
    let kids: Vec<i64> = procs[1..]
        .iter()
        .map(|p| {
            assert_eq!(p["parent"], leader, "{v}");
            p["pid"].as_i64().unwrap()
        })
        .collect();

    let (code, out, err) = run_warden(w.dir.path(), &["tree"]);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    let at = lines
        .iter()
        .position(|l| l.starts_with("family: 3 processes, cpu "))
        .unwrap_or_else(|| panic!("no heading for family: {out}"));
    assert!(
        lines[at + 1].contains("PID") && lines[at + 1].contains("COMMAND"),
        "{out}"
    );
    assert!(lines[at + 2].contains(&format!("{leader} ")), "{out}");
    assert!(
        lines[at + 2]
            .ends_with("  sh -c warden-demo-worker sleep & warden-demo-worker sleep & wait"),
        "{out}"
    );
    let (first, second) = (kids[0].min(kids[1]), kids[0].max(kids[1]));
    assert!(lines[at + 3].contains(&first.to_string()), "{out}");
    assert!(
        lines[at + 3].ends_with("├─ warden-demo-worker sleep"),
        "{out}"
    );
    assert!(lines[at + 4].contains(&second.to_string()), "{out}");
    assert!(
        lines[at + 4].ends_with("└─ warden-demo-worker sleep"),
        "{out}"
    );
    assert!(lines.contains(&"idle: not running"), "{out}");

    let (code, _, err) = run_warden(w.dir.path(), &["tree", "nobody"]);
    assert_eq!(code, 1);
    assert!(err.contains("no process named `nobody`"), "{err}");
    assert_eq!(w.shutdown(), Some(0));
    w.assert_no_leftovers();
}
